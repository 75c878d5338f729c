//! EVAL EVALSHA EVAL_RO EVALSHA_RO and SCRIPT (LOAD EXISTS FLUSH KILL DEBUG
//! HELP).
//! The Lua side lives in `crate::scripting`.

use super::{CmdResult, Ctx, Error};
use crate::resp::Args;
use crate::scripting::ldb::{self, Mode};
use crate::scripting::run::{Inputs, Script, run_script};
use crate::scripting::sha1_hex;
use crate::scripting::vm::ShebangFlags;
use crate::server::evict::{OOM_ERROR, oom_at_command_start};
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, super::Handler)] = &[
    ("eval", eval),
    ("eval_ro", eval_ro),
    ("evalsha", evalsha),
    ("evalsha_ro", evalsha_ro),
    ("script|load", script_load),
    ("script|exists", script_exists),
    ("script|flush", script_flush),
    ("script|kill", script_kill),
    ("script|help", script_help),
    ("script|debug", script_debug),
];

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

fn eval(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

fn eval_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

fn evalsha(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// Checks `numkeys` against the arguments that follow it (at `at`).
pub fn numkeys(args: &Args<'_>, at: usize) -> Result<usize, Error> {
    let n = parse_i64(&args[at]).ok_or(Error::NotInteger)?;
    if n < 0 {
        return Err(Error::msg("ERR Number of keys can't be negative"));
    }
    if n as usize > args.len() - at - 1 {
        return Err(Error::msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(n as usize)
}

fn eval_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, by_sha: bool, read_only: bool) -> CmdResult {
    let nkeys = numkeys(args, 2)?;
    let srv = ctx.srv;
    let _gate = srv.scripting.gate.enter();
    // SCRIPT DEBUG: EVAL on the connection runs as a debugging session (in
    // a transaction, with no connection to talk to, it runs as usual).
    let debug = if ctx.client.ldb != Mode::Off {
        if by_sha {
            return Err(Error::msg(
                "ERR Please use EVAL instead of EVALSHA for debugging",
            ));
        }
        crate::scripting::ldb::take_link()
    } else {
        None
    };
    let mut guard = srv.scripting.vm(srv).map_err(Error::owned)?;
    let vm = guard.as_mut().expect("vm created");
    if let Some(link) = debug {
        return eval_debug(ctx, vm, args, (nkeys, read_only), link);
    }
    let sha = if by_sha {
        // A SHA is hex: anything else names no cached script.
        match std::str::from_utf8(&args[1]) {
            Ok(s) => s.to_ascii_lowercase(),
            Err(_) => return Err(Error::msg(NOSCRIPT)),
        }
    } else {
        sha1_hex(&args[1])
    };
    let (f, flags) = match vm.scripts.get(&sha) {
        Some(entry) => entry,
        None if by_sha => return Err(Error::msg(NOSCRIPT)),
        None => {
            let entry = vm.compile(&args[1]).map_err(Error::owned)?;
            vm.scripts.insert(sha.clone(), entry.clone(), args[1].len());
            // Counted from now on (INFO inside the script sees it).
            srv.scripting.note_eval_vm(Some(vm));
            entry
        }
    };
    up_front_checks(ctx, &flags)?;
    run_eval(ctx, vm, (&f, &flags, &sha), args, (nkeys, read_only), false);
    Ok(())
}

/// Runs a compiled EVAL script (`f` with its shebang `flags`).
fn run_eval(
    ctx: &mut Ctx<'_>,
    vm: &mut crate::scripting::vm::Vm,
    (f, flags, sha): (&mlua::Function, &ShebangFlags, &str),
    args: &Args<'_>,
    (nkeys, read_only): (usize, bool),
    debug: bool,
) {
    let script = Script {
        sha,
        read_only: read_only || flags.no_writes,
        is_function: false,
        allow_oom: flags.allow_oom,
        debug,
    };
    let inputs = Inputs {
        args,
        first: 3,
        nkeys,
        as_params: false,
    };
    run_script(ctx, vm, f, inputs, &script);
    vm.after_run();
    ctx.srv.scripting.note_eval_vm(Some(vm));
}

/// What refuses a script before it runs, from its shebang's flags.
fn up_front_checks(ctx: &Ctx<'_>, flags: &ShebangFlags) -> CmdResult {
    // A script with a shebang that may write is refused up front under
    // OOM; one without runs, and its first `denyoom` call is refused.
    // One that may write needs enough good replicas (min-replicas-to-write).
    if flags.shebang && !flags.no_writes && !crate::server::repl::enough_good_replicas(ctx.srv) {
        return Err(Error::msg(super::gate::NOREPLICAS));
    }
    if flags.shebang && !flags.no_writes && !flags.allow_oom && oom_at_command_start() {
        return Err(Error::msg(OOM_ERROR));
    }
    // Redis counts such a script as a write command: refused while the
    // disk cannot be written.
    if flags.shebang && !flags.no_writes && crate::persist::writes_denied(ctx.srv) {
        return Err(Error::msg(crate::persist::write_denied_message(ctx.srv)));
    }
    Ok(())
}

/// EVAL as a debugging session: the session's last frame (`<endsession>`)
/// goes before the script's reply, and the connection closes after it, as
/// in Redis (redis-cli reconnects).
fn eval_debug(
    ctx: &mut Ctx<'_>,
    vm: &mut crate::scripting::vm::Vm,
    args: &Args<'_>,
    (nkeys, read_only): (usize, bool),
    link: ldb::Link,
) -> CmdResult {
    let srv = ctx.srv;
    ctx.client.close_after_reply = true;
    let mode = ctx.client.ldb;
    let start = ctx.out.len();
    let session = ldb::begin(srv, link, mode, &args[1]);
    let sha = sha1_hex(&args[1]);
    let compiled = match vm.scripts.get(&sha) {
        Some(entry) => Ok(entry),
        None => vm.compile(&args[1]).inspect(|entry| {
            vm.scripts.insert(sha.clone(), entry.clone(), args[1].len());
            srv.scripting.note_eval_vm(Some(vm));
        }),
    };
    let checked = compiled
        .map_err(Error::owned)
        .and_then(|(f, flags)| up_front_checks(ctx, &flags).map(|()| (f, flags)));
    let (f, flags) = match checked {
        Ok(entry) => entry,
        Err(e) => {
            ctx.out.buf.extend_from_slice(&ldb::end_frame());
            return Err(e);
        }
    };
    run_eval(ctx, vm, (&f, &flags, &sha), args, (nkeys, read_only), true);
    if mode == Mode::Yes
        && let Some(undo) = ldb::with_session(|s| std::mem::take(&mut s.undo))
    {
        undo.rollback(ctx);
    }
    let frame = ldb::end_frame();
    drop(session);
    ctx.out.buf.splice(start..start, frame);
    Ok(())
}

/// SCRIPT DEBUG YES|SYNC|NO: how this client's later EVALs run.
fn script_debug(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if ctx.client.in_exec {
        return Err(Error::msg(
            "ERR SCRIPT DEBUG must be called outside a pipeline",
        ));
    }
    let mode = &args[2];
    ctx.client.ldb = if mode.eq_ignore_ascii_case(b"no") {
        Mode::Off
    } else if mode.eq_ignore_ascii_case(b"yes") {
        Mode::Yes
    } else if mode.eq_ignore_ascii_case(b"sync") {
        Mode::Sync
    } else {
        return Err(Error::msg("ERR Use SCRIPT DEBUG YES/SYNC/NO"));
    };
    ctx.out.ok();
    Ok(())
}

fn script_load(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    let mut guard = srv.scripting.vm(srv).map_err(Error::owned)?;
    let vm = guard.as_mut().expect("vm created");
    let sha = sha1_hex(&args[2]);
    if !vm.scripts.contains_key(&sha) {
        let f = vm.compile(&args[2]).map_err(Error::owned)?;
        vm.scripts.insert(sha.clone(), f, args[2].len());
        srv.scripting.note_eval_vm(Some(vm));
    }
    ctx.out.bulk(sha.as_bytes());
    Ok(())
}

fn script_exists(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    let guard = srv.scripting.vm(srv).map_err(Error::owned)?;
    let vm = guard.as_ref().expect("vm created");
    ctx.out.array(args.len() - 2);
    for a in args.iter().skip(2) {
        let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
        ctx.out.int(vm.scripts.contains_key(&sha) as i64);
    }
    Ok(())
}

fn script_flush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mode_ok = match args.len() {
        2 => true,
        3 => args[2].eq_ignore_ascii_case(b"sync") || args[2].eq_ignore_ascii_case(b"async"),
        _ => false,
    };
    if !mode_ok {
        return Err(Error::msg(
            "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
        ));
    }
    // FUNCTION libraries live in the same VM and survive: only the EVAL
    // cache is dropped.
    let srv = ctx.srv;
    let mut guard = srv.scripting.vm(srv).map_err(Error::owned)?;
    if let Some(vm) = guard.as_mut() {
        vm.scripts.clear();
        crate::scripting::libs::reset(&vm.lua);
        vm.lua.gc_collect().ok();
        srv.scripting.note_eval_vm(Some(vm));
    }
    ctx.out.ok();
    Ok(())
}

fn script_kill(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.srv.scripting.request_kill(false).map_err(Error::msg)?;
    ctx.out.ok();
    Ok(())
}

fn script_help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
    Ok(())
}
