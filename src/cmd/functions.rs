//! FCALL FCALL_RO and FUNCTION (LOAD DELETE LIST FLUSH DUMP RESTORE STATS
//! KILL HELP). The registry and its Lua VM live in
//! `crate::scripting::functions`.

use super::{CmdResult, Ctx, Error};
use crate::resp::Args;
use crate::scripting::function_dump;
use crate::scripting::functions::{ALLOW_OOM, FLAG_NAMES, Libraries, NO_WRITES, Running};
use crate::scripting::run::{Inputs, Script, run_script};
use crate::util::glob::glob_match;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, super::Handler)] = &[
    ("fcall", fcall),
    ("fcall_ro", fcall_ro),
    ("function|load", function_load),
    ("function|delete", function_delete),
    ("function|list", function_list),
    ("function|flush", function_flush),
    ("function|dump", function_dump),
    ("function|restore", function_restore),
    ("function|stats", function_stats),
    ("function|kill", function_kill),
    ("function|help", function_help),
];

fn fcall(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, true)
}

/// The `numkeys` of FCALL, checked as Redis does (its own wording for a
/// non-number).
fn numkeys(args: &Args<'_>) -> Result<usize, Error> {
    let n = parse_i64(&args[2]).ok_or(Error::msg("ERR Bad number of keys provided"))?;
    if n > (args.len() - 3) as i64 {
        return Err(Error::msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if n < 0 {
        return Err(Error::msg("ERR Number of keys can't be negative"));
    }
    Ok(n as usize)
}

fn fcall_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, read_only: bool) -> CmdResult {
    let srv = ctx.srv;
    let _gate = srv.scripting.gate.enter();
    let functions = &srv.scripting.functions;
    let mut reg = functions.lock();
    let (name, callback, flags) = match reg.libs.find(&args[1]) {
        Some(f) => (f.name.clone(), f.callback.clone(), f.flags),
        None => return Err(Error::msg("ERR Function not found")),
    };
    let nkeys = numkeys(args)?;
    let no_writes = flags & NO_WRITES != 0;
    if read_only && !no_writes {
        return Err(Error::msg(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    if !no_writes && !crate::server::repl::enough_good_replicas(srv) {
        return Err(Error::msg(super::gate::NOREPLICAS));
    }
    let allow_oom = flags & ALLOW_OOM != 0;
    if !no_writes && !allow_oom && crate::server::evict::oom_at_command_start() {
        return Err(Error::msg(crate::server::evict::OOM_ERROR));
    }
    if !no_writes && crate::persist::writes_denied(srv) {
        return Err(Error::msg(crate::persist::write_denied_message(srv)));
    }
    let fvm = reg.vm(srv).map_err(Error::owned)?;
    functions.set_running(Some(Running {
        name: name.clone(),
        argv: args.to_vec(),
    }));
    let script = Script {
        sha: &name,
        read_only: read_only || no_writes,
        is_function: true,
        allow_oom,
        debug: false,
    };
    let inputs = Inputs {
        args,
        first: 3,
        nkeys,
        as_params: true,
    };
    run_script(ctx, &fvm.vm, &callback, inputs, &script);
    functions.set_running(None);
    Ok(())
}

fn function_load(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut replace = false;
    for opt in args.iter().take(args.len() - 1).skip(2) {
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else {
            return Err(Error::owned(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    let code = &args[args.len() - 1];
    let srv = ctx.srv;
    let _gate = srv.scripting.gate.enter();
    let functions = &srv.scripting.functions;
    let mut reg = functions.lock();
    let name = reg.load(srv, code, replace).map_err(Error::owned)?;
    functions.update_counts(&reg);
    ctx.dirty += 1;
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn function_delete(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let functions = &ctx.srv.scripting.functions;
    let mut reg = functions.lock();
    let name = String::from_utf8_lossy(&args[2]);
    reg.libs
        .remove(&name)
        .ok_or(Error::msg("ERR Library not found"))?;
    functions.update_counts(&reg);
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn function_list(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if a.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            if i + 1 >= args.len() {
                return Err(Error::msg("ERR library name argument was not given"));
            }
            i += 1;
            pattern = Some(&args[i]);
        } else {
            return Err(Error::owned(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a)
            )));
        }
        i += 1;
    }
    let reg = ctx.srv.scripting.functions.lock();
    let libs: Vec<_> = reg
        .libs
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| glob_match(p, l.name.as_bytes(), true)))
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for lib in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in lib.functions.values() {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.description {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = FLAG_NAMES
                .iter()
                .enumerate()
                .filter(|(bit, _)| f.flags & (1 << bit) != 0)
                .map(|(_, n)| *n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

fn function_flush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    match args.len() {
        2 => {}
        3 if args[2].eq_ignore_ascii_case(b"sync") || args[2].eq_ignore_ascii_case(b"async") => {}
        3 => {
            return Err(Error::msg(
                "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
            ));
        }
        _ => return Err(subcommand_syntax(args)),
    }
    let functions = &ctx.srv.scripting.functions;
    let mut reg = functions.lock();
    reg.flush();
    functions.update_counts(&reg);
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn subcommand_syntax(args: &Args<'_>) -> Error {
    Error::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

fn function_dump(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let reg = ctx.srv.scripting.functions.lock();
    let payload = function_dump::dump(&reg.libs);
    ctx.out.bulk(&payload);
    Ok(())
}

enum Policy {
    Flush,
    Append,
    Replace,
}

fn function_restore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() > 4 {
        return Err(subcommand_syntax(args));
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
        Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
        Some(_) => {
            return Err(Error::msg(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ));
        }
    };
    let srv = ctx.srv;
    let _gate = srv.scripting.gate.enter();
    let functions = &srv.scripting.functions;
    let mut reg = functions.lock();
    let staged: Libraries =
        function_dump::load_payload(&mut reg, srv, &args[2]).map_err(Error::owned)?;
    match policy {
        Policy::Flush => reg.libs = staged,
        Policy::Append => reg.libs.join(staged, false).map_err(Error::owned)?,
        Policy::Replace => reg.libs.join(staged, true).map_err(Error::owned)?,
    }
    functions.update_counts(&reg);
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn function_stats(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let scripting = &ctx.srv.scripting;
    let running = scripting.running();
    if let Some((false, _)) = running {
        return Err(Error::msg(crate::scripting::BUSY_MSG));
    }
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match (running, scripting.functions.running()) {
        (Some((true, ms)), Some((name, argv))) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.bulk_array(argv.iter().map(Vec::as_slice));
            out.bulk(b"duration_ms");
            out.int(ms);
        }
        _ => out.null(),
    }
    let (libraries, functions) = scripting.functions.counts();
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libraries as i64);
    out.bulk(b"functions_count");
    out.int(functions as i64);
    Ok(())
}

fn function_kill(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.srv.scripting.request_kill(true).map_err(Error::msg)?;
    ctx.out.ok();
    Ok(())
}

fn function_help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "FUNCTION",
        &[
            "LOAD [REPLACE] <code>",
            "    Load the library in <code> (its first line: #!lua name=<library>).",
            "    REPLACE overwrites a library of the same name.",
            "DELETE <library>",
            "    Remove a library and its functions.",
            "LIST [LIBRARYNAME <pattern>] [WITHCODE]",
            "    Describe the libraries (name, engine, functions, and code with",
            "    WITHCODE), only those whose name matches <pattern> if given.",
            "STATS",
            "    The running function, if any, and per engine how many libraries",
            "    and functions are loaded.",
            "KILL",
            "    Stop the running function (only if it has not written yet).",
            "FLUSH [ASYNC|SYNC]",
            "    Remove every library.",
            "DUMP",
            "    A payload holding every library, for FUNCTION RESTORE.",
            "RESTORE <payload> [FLUSH|APPEND|REPLACE]",
            "    Load the libraries of a DUMP payload. FLUSH drops the current",
            "    libraries first; APPEND (the default) fails if a library exists;",
            "    REPLACE replaces libraries of the same name.",
        ],
    );
    Ok(())
}
