//! Running one script: `redis.call`, the reply, the effects.
//!
//! The hot path (set KEYS/ARGV, call the script, each `redis.call`, convert
//! the reply) works on the Lua stack directly: `redis.call` is a plain C
//! function that finds the running script's state through a thread-local
//! pointer set for the length of the run.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;

use mlua::Function;
use mlua::ffi::{self, lua_State};

use super::convert::{
    ReplyErrors, push_bytes, push_counted_error_table, push_error_table, push_reply, to_bytes,
    write_reply,
};
use super::vm::{Vm, lua_enablereadonlytable};
use crate::cmd::gate::{self, ScriptCall};
use crate::cmd::{Ctx, Effect, flags, resolve, run};
use crate::resp::{Args, Parser, Reply};

/// What the script is and how its errors name it.
pub struct Script<'a> {
    pub sha: &'a str,
    pub read_only: bool,
    pub is_function: bool,
    /// `allow-oom`: `denyoom` commands run even over `maxmemory`.
    pub allow_oom: bool,
    /// Runs as a debugging session (`super::ldb`, which is set up).
    pub debug: bool,
}

/// The keys and arguments a script gets: `args[first..first + nkeys]` are
/// its keys, the rest its arguments. EVAL scripts see them as the globals
/// KEYS and ARGV; functions get them as their two parameters.
pub struct Inputs<'a, 'b> {
    pub args: &'a Args<'b>,
    pub first: usize,
    pub nkeys: usize,
    pub as_params: bool,
}

struct CallState<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    read_only: bool,
    allow_oom: bool,
    /// A write command ran: past that point the script is never stopped
    /// for memory (it would be left half done).
    wrote: bool,
    /// MULTI was published before the script's first write.
    multi_open: bool,
    /// The protocol chosen with `redis.setresp`.
    resp3: bool,
    /// `redis.set_repl` flags: with neither REPL_AOF (1) nor REPL_REPLICA
    /// (2), the script's writes are not published as effects.
    repl: u8,
    /// The Lua thread the script body runs on.
    top: *mut lua_State,
    /// A debugging session runs (`super::ldb`): calls are logged; with
    /// `rollback` (SCRIPT DEBUG YES) their keys are saved first and their
    /// effects not published.
    ldb: bool,
    rollback: bool,
    /// The VM's own hook while a line hook stops a killed script
    /// ([`arm_kill_hook`]); put back when the run ends.
    saved_hook: Option<SavedHook>,
    /// Reused by every `redis.call` of the run.
    argbuf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    reply: Reply,
}

thread_local! {
    /// The running script's `RefCell<CallState>`, type-erased; null when
    /// no script runs on this thread.
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// Points [`CURRENT`] at a run's state until dropped.
struct Current(*const ());

impl Current {
    fn enter(state: &RefCell<CallState<'_, '_>>) -> Current {
        let p = state as *const RefCell<CallState<'_, '_>> as *const ();
        Current(CURRENT.with(|c| c.replace(p)))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// True while a script runs on this thread: the commands it calls must not
/// block (they answer as if their timeout had passed).
pub fn in_script() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

/// Runs `f` with the script's state, if a script runs on this thread.
fn with_current<R>(f: impl FnOnce(&mut CallState<'_, '_>) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: `Current` keeps the pointer valid for the length of the run
    // and only this thread sees it.
    let cell = unsafe { &*(p as *const RefCell<CallState<'_, '_>>) };
    let mut st = cell.try_borrow_mut().ok()?;
    Some(f(&mut st))
}

/// `redis.setresp(n)` of the running script.
pub fn set_resp(resp3: bool) {
    with_current(|st| st.resp3 = resp3);
}

pub const REPL_ALL: u8 = 3;

/// `redis.set_repl(flags)` of the running script.
pub fn set_repl(flags: u8) {
    with_current(|st| st.repl = flags);
}

thread_local! {
    /// Who replays the effect of the command running on this thread: all
    /// but while a script that called `redis.set_repl` runs a command.
    static EFFECTS_TO: Cell<u8> = const { Cell::new(crate::store::TO_ALL) };
}

/// Who replays the effect of the command running on this thread
/// (`store::TO_*`; 0: nobody, a script called
/// `redis.set_repl(redis.REPL_NONE)`).
#[inline]
pub fn effect_targets() -> u8 {
    EFFECTS_TO.get()
}

/// How a run ended.
enum Outcome {
    Ok,
    /// Raised: the message, the line, and whether the error stats already
    /// count it.
    Failed(Vec<u8>, i64, bool),
    Internal(String),
}

/// Runs `f` (already compiled in `vm`) with `inputs` and writes its reply
/// into `ctx.out`.
pub fn run_script(
    ctx: &mut Ctx<'_>,
    vm: &Vm,
    f: &Function,
    inputs: Inputs<'_, '_>,
    script: &Script<'_>,
) {
    let srv = ctx.srv;
    // A SELECT inside the script lasts until the script ends; the caller
    // stays in its own database (Redis 7.0).
    let caller_db = ctx.client.db;
    // No locks here: each `redis.call` takes its command's footprint with
    // the job's locks, declared keys or not (`crate::cmd::footprint`).
    srv.scripting
        .start(ctx.client.info.id, script.is_function, script.sha);
    let state = RefCell::new(CallState {
        ctx,
        read_only: script.read_only,
        allow_oom: script.allow_oom,
        wrote: false,
        multi_open: false,
        resp3: false,
        repl: REPL_ALL,
        top: std::ptr::null_mut(),
        ldb: script.debug,
        rollback: script.debug
            && super::ldb::with_session(|s| s.mode == super::ldb::Mode::Yes).unwrap_or(false),
        saved_hook: None,
        argbuf: Vec::new(),
        spans: Vec::new(),
        reply: Reply {
            buf: Vec::new(),
            resp3: false,
            limit: 0,
            sent: 0,
        },
    });
    // The script's records reach consumers as one group (dropped after
    // `end`, which closes it with EXEC; the job still holds its shards).
    let _group = srv.ks.begin_group();
    let end = RunEnd { srv, state: &state };
    let mut outcome = Outcome::Ok;
    let mut errs = ReplyErrors::default();
    let guard = Current::enter(&state);
    // SAFETY: the closure gets this thread's state with the handler and the
    // function on its stack (indexes 1 and 2); it leaves nothing behind.
    let r = unsafe {
        vm.lua.exec_raw::<()>((&vm.handler, f), |l| {
            state.borrow_mut().top = l;
            // The debugger's hook while the script runs (its own is back
            // when `_armed` drops, also on a panic).
            let _armed = script.debug.then(|| super::ldb::arm(l));
            let nargs = push_inputs(l, &inputs);
            if ffi::lua_pcall(l, nargs, 1, 1) == 0 {
                let mut st = state.borrow_mut();
                let resp3 = st.resp3;
                write_reply(l, -1, st.ctx.out, &mut errs, resp3, 0);
            } else {
                outcome = error_of(l);
            }
            ffi::lua_settop(l, 0);
        })
    };
    drop(guard);
    if let Err(e) = r {
        outcome = Outcome::Internal(format!("ERR {e}"));
    }
    drop(end);
    // The VM's own hook is back once `saved_hook` drops (also when a panic
    // unwinds through here).
    let CallState {
        ctx,
        saved_hook: _saved_hook,
        ..
    } = state.into_inner();
    // The script's own writes were published one by one.
    ctx.effect = Effect::Nothing;
    if ctx.client.db != caller_db {
        crate::cmd::connection::select_db(ctx, caller_db);
    }
    // The script's command failed when its reply is an error, and that
    // error counts in the error stats unless a refused or failed call
    // inside already counted it (Redis 7.0's rules).
    let stats = ctx.stats;
    let failed = |msg: Option<&str>| {
        stats.cmds[ctx.cmd.id].failed.add(1);
        if let Some(msg) = msg {
            stats.count_error(msg);
        }
    };
    match outcome {
        Outcome::Ok => {
            if errs.any {
                stats.cmds[ctx.cmd.id].failed.add(1);
            }
            for msg in &errs.uncounted {
                stats.count_error(msg);
            }
        }
        Outcome::Failed(msg, line, counted) => {
            let whence = if script.is_function {
                "user_function"
            } else {
                "user_script"
            };
            let msg = String::from_utf8_lossy(&msg);
            let msg = format!("{msg} script: {}, on @{whence}:{line}.", script.sha);
            failed((!counted).then_some(&msg));
            ctx.out.error(&msg);
        }
        Outcome::Internal(msg) => {
            failed(Some(&msg));
            ctx.out.error(&msg);
        }
    }
}

/// Ends a run however it ends, a panic included: the effects' MULTI is
/// closed and the "a script runs" state other clients wait on is cleared
/// (else every later command would get BUSY for good).
struct RunEnd<'s, 'c, 'a> {
    srv: &'static crate::server::Server,
    state: &'s RefCell<CallState<'c, 'a>>,
}

impl Drop for RunEnd<'_, '_, '_> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.try_borrow_mut()
            && std::mem::take(&mut st.multi_open)
        {
            self.srv.ks.emit(st.ctx.db.index, &[b"EXEC"]);
        }
        self.srv.scripting.finish();
    }
}

/// Calls `f` without arguments under the script error handler (a library
/// body at FUNCTION LOAD): Err((message, line)) when it raised.
pub fn call_protected(vm: &Vm, f: &Function) -> Result<(), (Vec<u8>, i64)> {
    let mut outcome = Outcome::Ok;
    // SAFETY: as in `run_script`: handler and function at 1 and 2.
    let r = unsafe {
        vm.lua.exec_raw::<()>((&vm.handler, f), |l| {
            if ffi::lua_pcall(l, 0, 0, 1) != 0 {
                outcome = error_of(l);
            }
            ffi::lua_settop(l, 0);
        })
    };
    match (r, outcome) {
        (Err(e), _) => Err((format!("ERR {e}").into_bytes(), 0)),
        (Ok(()), Outcome::Failed(msg, line, _)) => Err((msg, line)),
        (Ok(()), Outcome::Internal(msg)) => Err((msg.into_bytes(), 0)),
        (Ok(()), Outcome::Ok) => Ok(()),
    }
}

/// Builds the KEYS and ARGV tables: as globals (returns 0 arguments) or
/// left on the stack as the call's two arguments.
unsafe fn push_inputs(l: *mut lua_State, inputs: &Inputs<'_, '_>) -> c_int {
    // SAFETY: `l` runs the `exec_raw` closure, a C function with
    // LUA_MINSTACK (20) free slots; this uses 3 at a time (two tables, or a
    // table, a string and a name) plus the 2 it leaves. The globals table
    // is a valid pseudo-index; the read-only flag is put back before
    // returning. Nothing here raises (convert.rs, "Raising").
    unsafe {
        let args = inputs.args;
        let split = inputs.first + inputs.nkeys;
        // The globals are read-only to scripts; KEYS and ARGV are replaced
        // with the protection lifted for the moment (as Redis does). Should
        // building them fail, no script runs before the next run's inputs
        // put the protection back.
        if !inputs.as_params {
            lua_enablereadonlytable(l, ffi::LUA_GLOBALSINDEX, 0);
        }
        for (name, from, to) in [(c"KEYS", inputs.first, split), (c"ARGV", split, args.len())] {
            ffi::lua_createtable(l, (to - from) as c_int, 0);
            for (i, a) in (from..to).enumerate() {
                push_bytes(l, &args[a]);
                ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
            }
            if !inputs.as_params {
                ffi::lua_pushstring(l, name.as_ptr());
                ffi::lua_insert(l, -2);
                ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
            }
        }
        if !inputs.as_params {
            lua_enablereadonlytable(l, ffi::LUA_GLOBALSINDEX, 1);
        }
        if inputs.as_params { 2 } else { 0 }
    }
}

/// The error table the handler made of a failure: `{err=..., line=...}`.
unsafe fn error_of(l: *mut lua_State) -> Outcome {
    // SAFETY: called after a failed `lua_pcall`, with its error value on
    // top of a stack with free slots (the 20 of the closure's C function);
    // `lua_getfield` on a checked table pushes one value each, both popped.
    unsafe {
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            return Outcome::Failed(b"ERR unknown error".to_vec(), 0, false);
        }
        ffi::lua_getfield(l, -1, c"err".as_ptr());
        let msg = if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
            to_bytes(l, -1).to_vec()
        } else {
            b"ERR unknown error".to_vec()
        };
        ffi::lua_getfield(l, -2, c"line".as_ptr());
        let line = ffi::lua_tonumber(l, -1) as i64;
        ffi::lua_pop(l, 2);
        ffi::lua_pushstring(l, super::convert::COUNTED_FIELD.as_ptr());
        ffi::lua_rawget(l, -2);
        let counted = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_pop(l, 1);
        Outcome::Failed(msg, line, counted)
    }
}

/// `redis.call`: runs one command; a failure is raised.
///
/// # Safety
/// Only Lua calls it, as a C function.
pub unsafe extern "C-unwind" fn redis_call(l: *mut lua_State) -> c_int {
    // SAFETY: Lua hands this C function its own state. Nothing with a
    // destructor is alive here when `lua_error` unwinds.
    unsafe {
        if call_command_caught(l, true) {
            ffi::lua_error(l);
        }
    }
    1
}

/// `redis.pcall`: runs one command; a failure is returned as `{err=...}`.
///
/// # Safety
/// Only Lua calls it, as a C function.
pub unsafe extern "C-unwind" fn redis_pcall(l: *mut lua_State) -> c_int {
    // SAFETY: as `redis_call`.
    unsafe { call_command_caught(l, false) };
    1
}

/// [`call_command`], with a panic turned into an error: unwinding through
/// Lua's C frames would leave the VM inconsistent.
unsafe fn call_command_caught(l: *mut lua_State, raise: bool) -> bool {
    // SAFETY: `l` is the state Lua handed the C function (the caller's
    // contract); `lua_gettop` only reads it.
    let top = unsafe { ffi::lua_gettop(l) };
    // SAFETY: as the caller's.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        call_command(l, raise)
    }));
    r.unwrap_or_else(|_| {
        crate::warning!("a script's redis.call panicked");
        // SAFETY: back to the arguments, then room for one table.
        unsafe {
            ffi::lua_settop(l, top);
            push_error_table(l, b"ERR internal error");
        }
        raise
    })
}

/// Runs the command in the C function's arguments with the script's locks,
/// and pushes its converted reply (or an error table). Returns whether the
/// pushed value must be raised.
#[inline(never)]
unsafe fn call_command(l: *mut lua_State, raise: bool) -> bool {
    // `counted`: the error is already in the error stats (a refused call).
    let fail = |msg: &[u8], counted: bool| {
        // SAFETY: as the caller's.
        unsafe {
            if counted {
                push_counted_error_table(l, msg);
            } else {
                push_error_table(l, msg);
            }
        }
        raise
    };
    // SAFETY: arguments 1..=n are on this C function's stack.
    let n = unsafe { ffi::lua_gettop(l) };
    let ran = with_current(|st| {
        if st.ctx.srv.scripting.kill_requested() {
            // SAFETY: `l` is this C function's state.
            unsafe { arm_kill_hook(l, st) };
        }
        // SAFETY: arguments 1..=n are on this C function's stack.
        let read = unsafe { read_args(l, n, st) };
        // The arguments are copied out: drop them, so that a call with
        // thousands of them (`unpack` of a big table) still has room under
        // Lua's C stack limit for its reply.
        // SAFETY: `l` is this C function's state.
        unsafe { ffi::lua_settop(l, 0) };
        read.map_err(|msg| (msg, false))?;
        exec(st).map_err(|msg| (msg, true))
    });
    // SAFETY: `l` is this C function's state; growing the stack never raises
    // (it returns 0 when it cannot).
    if unsafe { ffi::lua_checkstack(l, 4) } == 0 {
        return fail(b"ERR reached lua stack limit", false);
    }
    match ran {
        None => fail(b"ERR redis.call is not available here", false),
        Some(Err((msg, counted))) => fail(msg, counted),
        Some(Ok(failed)) => {
            let pushed = with_current(|st| {
                let mut pos = 0;
                // SAFETY: room was checked; nested levels check their own.
                unsafe { push_reply(l, &st.reply.buf, &mut pos, 0) }
            });
            if pushed != Some(true) {
                return fail(b"ERR reached lua stack limit", false);
            }
            failed && raise
        }
    }
}

/// The hook a Lua thread had before [`arm_kill_hook`] replaced it; put
/// back when dropped.
struct SavedHook {
    l: *mut lua_State,
    hook: Option<ffi::lua_Hook>,
    mask: c_int,
    count: c_int,
}

impl Drop for SavedHook {
    fn drop(&mut self) {
        // SAFETY: the Lua thread the script ran on, which the VM keeps; the
        // hook, mask and count it had before the run.
        unsafe { ffi::lua_sethook(self.l, self.hook, self.mask, self.count) };
    }
}

/// A killed script that calls Redis: from now on every line it runs
/// raises the kill error. The VM's instruction-count hook alone fires
/// mostly inside a `pcall` that loops around `redis.call` (where the
/// script spends its time) and is caught there; a line hook also fires
/// in the code around that `pcall`, as Redis's does once a kill is
/// requested. The run puts the VM's own hook back when it ends.
///
/// # Safety
/// `l` is the state of the running `redis.call`.
unsafe fn arm_kill_hook(l: *mut lua_State, st: &mut CallState<'_, '_>) {
    // The debugger's hook checks for a kill itself, on every line.
    if st.saved_hook.is_some() || l != st.top || st.ldb {
        return;
    }
    // SAFETY: `l` is a live Lua thread (the caller's).
    unsafe {
        st.saved_hook = Some(SavedHook {
            l,
            hook: ffi::lua_gethook(l),
            mask: ffi::lua_gethookmask(l),
            count: ffi::lua_gethookcount(l),
        });
        ffi::lua_sethook(l, Some(kill_hook), ffi::LUA_MASKLINE, 0);
    }
}

/// Raises the kill error (see [`arm_kill_hook`]).
unsafe extern "C-unwind" fn kill_hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY: Lua calls a hook with its own state; nothing with a
    // destructor is alive when `lua_error` unwinds.
    unsafe {
        push_error_table(l, super::vm::KILLED_MSG.as_bytes());
        ffi::lua_error(l);
    }
}

/// Copies the C function's arguments 1..=n into `st.argbuf`/`st.spans`.
///
/// # Safety
/// `l` must be the state of a C function called with `n` arguments.
unsafe fn read_args(
    l: *mut lua_State,
    n: c_int,
    st: &mut CallState<'_, '_>,
) -> Result<(), &'static [u8]> {
    if n == 0 {
        return Err(b"ERR Please specify at least one argument for this redis lib call");
    }
    st.argbuf.clear();
    st.spans.clear();
    for i in 1..=n {
        // SAFETY: `i` is one of the arguments.
        let t = unsafe { ffi::lua_type(l, i) };
        if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
            return Err(b"ERR Lua redis lib command arguments must be strings or integers");
        }
        let start = st.argbuf.len();
        if t == ffi::LUA_TNUMBER {
            // Numbers go as C's `%.17g` prints them (Redis 7.0), not as Lua's
            // tostring (`%.14g`, which loses digits: 2^53-1).
            // SAFETY: `i` is a number argument.
            let n = unsafe { ffi::lua_tonumber(l, i) };
            let mut buf = [0u8; 64];
            st.argbuf
                .extend_from_slice(crate::util::num::fmt_double(n, &mut buf));
        } else {
            // SAFETY: a string argument.
            st.argbuf.extend_from_slice(unsafe { to_bytes(l, i) });
        }
        st.spans.push((start, st.argbuf.len()));
    }
    Ok(())
}

/// `redis.acl_check_cmd(command, ...)`: whether the caller's ACL user may
/// run the command with those arguments; an unknown command or subcommand
/// is an error.
///
/// # Safety
/// Only Lua calls it, as a C function.
pub unsafe extern "C-unwind" fn redis_acl_check_cmd(l: *mut lua_State) -> c_int {
    // SAFETY: Lua hands this C function its own state; nothing with a
    // destructor is alive when `lua_error` unwinds.
    unsafe {
        let n = ffi::lua_gettop(l);
        let known = with_current(|st| {
            read_args(l, n, st)?;
            let argv = Parser::args_over(&st.argbuf, &st.spans);
            let table = &st.ctx.srv.commands;
            let cmd = table.lookup(&argv[0]);
            let cmd = match cmd {
                Some(c) if c.subcommands.is_some() && argv.len() > 1 => {
                    table.lookup_sub(c, &argv[1])
                }
                c => c,
            };
            match cmd {
                Some(c) => Ok(crate::acl::check(st.ctx.srv, st.ctx.client, c, &argv).is_ok()),
                None => Err(&b"ERR Invalid command passed to redis.acl_check_cmd()"[..]),
            }
        });
        match known {
            Some(Ok(allowed)) => {
                ffi::lua_pushboolean(l, c_int::from(allowed));
                1
            }
            Some(Err(msg)) => {
                push_error_table(l, msg);
                ffi::lua_error(l)
            }
            None => {
                push_error_table(l, b"ERR redis.acl_check_cmd is not available here");
                ffi::lua_error(l)
            }
        }
    }
}

/// Runs the command in `st.argbuf`; its reply is left in `st.reply`.
/// Ok(failed) once it ran, Err(message) when a script may not run it.
fn exec(st: &mut CallState<'_, '_>) -> Result<bool, &'static [u8]> {
    let CallState {
        ctx,
        read_only,
        allow_oom,
        wrote,
        multi_open,
        resp3,
        repl,
        ldb,
        rollback,
        argbuf,
        spans,
        reply,
        ..
    } = st;
    // A YES debugging session publishes nothing: its changes are undone.
    let repl = if *rollback { 0 } else { *repl };
    let publish = repl & REPL_ALL != 0;
    let argv = Parser::args_over(argbuf, spans);
    if *ldb {
        super::ldb::log_call(&argv);
    }
    let srv = ctx.srv;
    let running = ctx.cmd.name;
    // A refused call counts where Redis counts it: in errorstats and the
    // command's rejected_calls, once, when refused (the error the script
    // gets is marked counted, see `push_counted_error_table`).
    let stats = ctx.stats;
    let refused = |r: gate::Refusal, client: &_, cmd: Option<&'static crate::cmd::Command>| {
        if let Some(c) = r.command(cmd) {
            stats.cmds[c.id].rejected.add(1);
        }
        let msg = r.script_message(srv, client, cmd, &argv, running);
        stats.count_error(msg);
        if *ldb {
            super::ldb::log_refusal(msg.as_bytes());
        }
        Err(msg.as_bytes())
    };
    let cmd = match resolve(&srv.commands, &argv) {
        Ok(c) => c,
        Err(r) => return refused(r, ctx.client, None),
    };
    let situation = ScriptCall {
        read_only: *read_only,
        allow_oom: *allow_oom,
        wrote: *wrote,
    };
    if let Err(r) = gate::script_call(srv, ctx.client, cmd, &argv, situation) {
        return refused(r, ctx.client, Some(cmd));
    }
    if *rollback && cmd.has(flags::WRITE) {
        let undo = super::ldb::with_session(|s| std::mem::take(&mut s.undo));
        if let Some(mut undo) = undo {
            let r = undo.before_write(ctx, cmd, &argv);
            super::ldb::with_session(|s| s.undo = undo);
            if let Err(msg) = r {
                super::ldb::log_refusal(msg);
                return Err(msg);
            }
        }
    }
    if cmd.has(flags::WRITE) {
        *wrote = true;
        srv.scripting.mark_write();
        if publish && !*multi_open && srv.ks.effects_enabled() {
            *multi_open = true;
            srv.ks.emit(ctx.db.index, &[b"MULTI"]);
        }
    }
    reply.buf.clear();
    reply.resp3 = *resp3;
    let outer = EFFECTS_TO.replace(repl & REPL_ALL);
    let mut call = || {
        run(
            srv,
            ctx.client,
            reply,
            ctx.db.locks,
            ctx.stats,
            cmd,
            &argv,
            ctx.db.now_ms,
            None,
        )
    };
    // A YES debugging session's changes are undone: not announced either.
    let ran = if *rollback {
        crate::pubsub::notify::quietly(call)
    } else {
        call()
    };
    EFFECTS_TO.set(outer);
    // A script may take shards in any order: mark what the command could
    // not reach under its locks now rather than after the script.
    for (db, key) in &ran.later {
        ctx.db.locks.shard_for(&srv.ks, *db, key).touch_watched(key);
    }
    // SELECT inside the script: later keys are in the new database.
    ctx.db.index = ctx.client.db;
    if *ldb {
        super::ldb::log_reply(&reply.buf);
    }
    Ok(ran.failed)
}
