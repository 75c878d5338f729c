//! Running one script: locking, `redis.call`, the reply, the effects.

use std::cell::RefCell;

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::convert::{error_table, lua_to_reply, reply_to_lua};
use super::vm::Vm;
use crate::cmd::{Ctx, Effect, flags, resolve, run};
use crate::resp::{Parser, Reply};

/// Keyspace-wide commands lock shards by themselves (not through the
/// caller's held locks), so inside a script, which holds every shard of its
/// database, they would wait on their own caller. Refused for now.
const UNSUPPORTED_IN_SCRIPTS: &[&str] = &[
    "dbsize",
    "keys",
    "scan",
    "randomkey",
    "flushdb",
    "flushall",
    "swapdb",
    "info",
];

/// What the script is and how its errors name it.
pub struct Script<'a> {
    pub sha: &'a str,
    pub read_only: bool,
    pub is_function: bool,
}

struct CallState<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    read_only: bool,
    /// MULTI was published before the script's first write.
    multi_open: bool,
}

/// Runs `f` (already compiled in `vm`) with `args` as its Lua arguments
/// and writes its reply into `ctx.out`.
pub fn run_script(ctx: &mut Ctx<'_>, vm: &Vm, f: &Function, args: MultiValue, script: &Script<'_>) {
    let srv = ctx.srv;
    let db = ctx.db.index;
    ctx.db.locks.lock_dbs(&srv.ks, &[db]);
    srv.scripting.start(ctx.client.info.id, script.is_function);
    let _ = vm.hidden.raw_set("resp", 2);
    let state = RefCell::new(CallState {
        ctx,
        read_only: script.read_only,
        multi_open: false,
    });
    let hidden = &vm.hidden;
    let result = vm.lua.scope(|scope| {
        let call = scope.create_function(|lua, args: MultiValue| {
            let mut it = args.into_iter();
            let raise = matches!(it.next(), Some(Value::Boolean(true)));
            call_command(lua, &state, hidden, raise, it.collect())
        })?;
        hidden.raw_set("call", call)?;
        let r = if args.is_empty() {
            vm.protected_call(f)
        } else {
            let bound = bind(&vm.lua, f, args)?;
            vm.protected_call(&bound)
        };
        hidden.raw_set("call", Value::Nil)?;
        Ok(r)
    });
    srv.scripting.finish();
    let CallState {
        ctx, multi_open, ..
    } = state.into_inner();
    if multi_open {
        srv.ks.emit(ctx.db.index, &[b"EXEC"]);
    }
    // The script's own writes were published one by one.
    ctx.effect = Effect::Nothing;
    let resp3 = hidden.raw_get::<i64>("resp").unwrap_or(2) == 3;
    match result {
        Ok(Ok(v)) => lua_to_reply(ctx.out, &v, resp3, 0),
        Ok(Err((msg, line))) => {
            let whence = if script.is_function {
                "user_function"
            } else {
                "user_script"
            };
            let msg = String::from_utf8_lossy(&msg);
            ctx.out.error(&format!(
                "{msg} script: {}, on @{whence}:{line}.",
                script.sha
            ));
        }
        Err(e) => ctx.out.error(&format!("ERR {e}")),
    }
}

/// A function that calls `f` with `args` (FCALL passes KEYS and ARGV as
/// arguments, and xpcall in Lua 5.1 cannot pass any).
fn bind(lua: &Lua, f: &Function, args: MultiValue) -> mlua::Result<Function> {
    let binder: Function = lua
        .load("local f, a, b = ... return function() return f(a, b) end")
        .set_name("=bind")
        .into_function()?;
    let mut it = args.into_iter();
    let a = it.next().unwrap_or(Value::Nil);
    let b = it.next().unwrap_or(Value::Nil);
    binder.call((f.clone(), a, b))
}

/// `redis.call` / `redis.pcall`: runs one command with the script's locks
/// and converts its reply. Returns (value, raise).
fn call_command(
    lua: &Lua,
    state: &RefCell<CallState<'_, '_>>,
    hidden: &Table,
    raise: bool,
    args: Vec<Value>,
) -> mlua::Result<(Value, bool)> {
    let fail = |msg: &str| Ok((Value::Table(error_table(lua, msg.as_bytes())?), raise));
    if args.is_empty() {
        return fail("ERR Please specify at least one argument for this redis lib call");
    }
    let mut buf = Vec::new();
    let mut spans = Vec::with_capacity(args.len());
    for v in args {
        let start = buf.len();
        match v {
            Value::String(s) => buf.extend_from_slice(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => {
                if let Some(s) = lua.coerce_string(v)? {
                    buf.extend_from_slice(&s.as_bytes());
                }
            }
            _ => return fail("ERR Lua redis lib command arguments must be strings or integers"),
        }
        spans.push((start, buf.len()));
    }
    let argv = Parser::args_over(&buf, &spans);
    let mut st = state.borrow_mut();
    let read_only = st.read_only;
    let ctx = &mut *st.ctx;
    let srv = ctx.srv;
    let cmd = match resolve(&srv.commands, &argv) {
        Ok(c) => c,
        Err(m) if m.starts_with("ERR unknown") => {
            return fail("ERR Unknown Redis command called from script");
        }
        Err(_) => return fail("ERR Wrong number of args calling Redis command from script"),
    };
    if cmd.has(flags::NOSCRIPT) {
        return fail("ERR This Redis command is not allowed from script");
    }
    let top = cmd.name.split('|').next().unwrap_or(cmd.name);
    if UNSUPPORTED_IN_SCRIPTS.contains(&top) {
        return fail("ERR This command is not supported inside scripts by ferrokv yet");
    }
    if cmd.has(flags::WRITE) {
        if read_only {
            return fail("ERR Write commands are not allowed from read-only scripts.");
        }
        srv.scripting.mark_write();
        if !st.multi_open && srv.ks.effects_enabled() {
            st.multi_open = true;
            srv.ks.emit(st.ctx.db.index, &[b"MULTI"]);
        }
    }
    let ctx = &mut *st.ctx;
    let resp3 = hidden.raw_get::<i64>("resp").unwrap_or(2) == 3;
    let mut out = Reply::new(resp3);
    let db = ctx.client.db;
    // Watchers of keys outside the held shards (another database) are not
    // marked from inside a script: every shard of its database is held.
    let ran = run(
        srv,
        ctx.client,
        &mut out,
        ctx.db.locks,
        ctx.stats,
        cmd,
        &argv,
        ctx.db.now_ms,
        None,
    );
    if ctx.client.db != db {
        // SELECT inside the script: its new database is locked whole too.
        ctx.db.index = ctx.client.db;
        ctx.db.locks.lock_db_late(&srv.ks, ctx.client.db);
    }
    let mut pos = 0;
    let v = reply_to_lua(lua, &out.buf, &mut pos)?;
    Ok((v, ran.failed && raise))
}
