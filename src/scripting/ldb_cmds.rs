//! The Lua debugger's commands that work on the Lua stack: `print`,
//! `trace`, `eval` and `redis` (see `super::ldb`).

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};

use super::convert::to_bytes;
use super::ldb::with_session;
use super::ldb_fmt;

/// `print [name]`: the stopped function's locals, or one of them (or the
/// global KEYS or ARGV).
pub(super) unsafe fn print(l: *mut lua_State, ar: *mut ffi::lua_Debug, name: Option<&[u8]>) {
    // SAFETY: `ar` is the record of the function the hook stopped in;
    // lua_getlocal pushes each local's value, popped after use.
    unsafe {
        if ffi::lua_checkstack(l, 8) == 0 {
            return;
        }
        let mut shown = 0;
        let mut n = 1;
        loop {
            let local = ffi::lua_getlocal(l, ar, n);
            if local.is_null() {
                break;
            }
            n += 1;
            let local = std::ffi::CStr::from_ptr(local).to_bytes();
            let mut entry = b"<value> ".to_vec();
            // Stack slots past the active locals are not variables.
            if local == b"(*temporary)" {
                ffi::lua_pop(l, 1);
                continue;
            }
            match name {
                Some(want) if want != local => {
                    ffi::lua_pop(l, 1);
                    continue;
                }
                Some(_) => {}
                None => {
                    entry.extend_from_slice(local);
                    entry.extend_from_slice(b" = ");
                }
            }
            ldb_fmt::lua_value(l, ffi::lua_gettop(l), &mut entry);
            ffi::lua_pop(l, 1);
            with_session(|s| s.log_trimmed(entry));
            shown += 1;
            if name.is_some() {
                return;
            }
        }
        match name {
            None if shown == 0 => {
                with_session(|s| s.log("No local variables in the current context."));
            }
            Some(global @ (b"KEYS" | b"ARGV")) => {
                ffi::lua_pushlstring(l, global.as_ptr().cast(), global.len());
                ffi::lua_rawget(l, ffi::LUA_GLOBALSINDEX);
                let mut entry = b"<value> ".to_vec();
                ldb_fmt::lua_value(l, ffi::lua_gettop(l), &mut entry);
                ffi::lua_pop(l, 1);
                with_session(|s| s.log_trimmed(entry));
            }
            Some(_) => {
                with_session(|s| s.log("No such variable."));
            }
            None => {}
        }
    }
}

/// `trace`: the script's frames, innermost first.
pub(super) unsafe fn trace(l: *mut lua_State) {
    let mut level = 0;
    let mut first = true;
    loop {
        // SAFETY: a zeroed record is what lua_getstack fills in.
        let mut ar: ffi::lua_Debug = unsafe { std::mem::zeroed() };
        // SAFETY: `l` is live; `ar` is filled by lua_getstack before use.
        let found = unsafe { ffi::lua_getstack(l, level, &mut ar) } != 0;
        if !found {
            break;
        }
        level += 1;
        // SAFETY: `ar` came from lua_getstack.
        let (source, what, fname, line) = unsafe {
            ffi::lua_getinfo(l, c"Snl".as_ptr(), &mut ar);
            let text = |p: *const std::ffi::c_char| {
                (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_bytes().to_vec())
            };
            (
                text(ar.source),
                text(ar.what),
                text(ar.name),
                ar.currentline,
            )
        };
        if source.as_deref() != Some(b"@user_script") {
            continue;
        }
        let name = if what.as_deref() == Some(b"main") {
            b"top level".to_vec()
        } else {
            fname.unwrap_or_else(|| b"?".to_vec())
        };
        with_session(|s| {
            let mut entry = if first {
                b"In ".to_vec()
            } else {
                b"From ".to_vec()
            };
            entry.extend_from_slice(&name);
            entry.push(b':');
            s.log(entry);
            s.list(line, 0);
        });
        first = false;
    }
}

/// `eval <code>`: runs the words joined by spaces as Lua, as `return
/// <code>` first, in a frame of its own (globals only).
pub(super) unsafe fn eval(l: *mut lua_State, argv: &[Vec<u8>]) {
    let code = argv[1..].join(&b' ');
    let mut with_return = b"return ".to_vec();
    with_return.extend_from_slice(&code);
    // SAFETY: `l` is live; what is pushed is popped before returning.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            return;
        }
        let load = |src: &[u8]| {
            ffi::luaL_loadbuffer(l, src.as_ptr().cast(), src.len(), c"@ldb_eval".as_ptr())
        };
        if load(&with_return) != 0 {
            ffi::lua_pop(l, 1);
            if load(&code) != 0 {
                log_error(l);
                return;
            }
        }
        if ffi::lua_pcall(l, 0, 1, 0) != 0 {
            log_error(l);
            return;
        }
        let mut entry = b"<retval> ".to_vec();
        ldb_fmt::lua_value(l, ffi::lua_gettop(l), &mut entry);
        ffi::lua_pop(l, 1);
        with_session(|s| s.log_trimmed(entry));
    }
}

/// Logs the error on top of the stack as `<error> ...` and pops it.
unsafe fn log_error(l: *mut lua_State) {
    let mut entry = b"<error> ".to_vec();
    // SAFETY: an error value is on top (the caller's contract).
    unsafe {
        match ffi::lua_type(l, -1) {
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => entry.extend_from_slice(to_bytes(l, -1)),
            ffi::LUA_TTABLE => {
                ffi::lua_getfield(l, -1, c"err".as_ptr());
                if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
                    entry.extend_from_slice(to_bytes(l, -1));
                    ffi::lua_pop(l, 1);
                } else {
                    ffi::lua_pop(l, 1);
                    ldb_fmt::lua_value(l, ffi::lua_gettop(l), &mut entry);
                }
            }
            _ => ldb_fmt::lua_value(l, ffi::lua_gettop(l), &mut entry),
        }
        ffi::lua_pop(l, 1);
    }
    with_session(|s| s.log(entry));
}

/// `redis <cmd> ...`: runs the command as the script's `redis.call` would,
/// logged.
pub(super) unsafe fn redis(l: *mut lua_State, argv: &[Vec<u8>]) {
    // SAFETY: `l` is live; the function, its arguments and its result are
    // all within the room checked, and the stack is put back.
    unsafe {
        if ffi::lua_checkstack(l, argv.len() as c_int + 4) == 0 {
            with_session(|s| s.log("<error> max lua stack reached"));
            return;
        }
        let top = ffi::lua_gettop(l);
        ffi::lua_pushcfunction(l, super::run::redis_call);
        for a in &argv[1..] {
            ffi::lua_pushlstring(l, a.as_ptr().cast(), a.len());
        }
        with_session(|s| s.step = true);
        ffi::lua_pcall(l, argv.len() as c_int - 1, 1, 0);
        with_session(|s| s.step = false);
        ffi::lua_settop(l, top);
    }
}
