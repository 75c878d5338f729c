//! Conversions between RESP replies and Lua values, by Redis's rules,
//! working on the Lua stack directly (they run once or more per script
//! call, so they avoid the safe API's per-value handles).
//!
//! Command reply -> Lua (what `redis.call` returns): integer -> number,
//! bulk -> string, nil bulk / nil array -> false (nil under RESP3), array ->
//! table, status -> `{ok=...}`, error -> `{err=...}`, and with
//! `redis.setresp(3)` the RESP3 types (map, set, double, boolean, null, big
//! number, verbatim string).
//!
//! Lua -> reply (what a script returns): number -> integer (truncated),
//! string -> bulk, true -> 1, false -> nil, `{err=}` / `{ok=}` -> error /
//! status, RESP3 tables (`map`, `set`, `double`, ...), and arrays that stop
//! at the first nil.
//!
//! Safety: every function here takes a valid `lua_State` owned by the
//! calling thread, as handed to a C function or a raw closure.
//!
//! Raising: a Lua API call that raises an error `longjmp`s over the Rust
//! frames between it and the catching `lua_pcall`, skipping their
//! destructors (undefined behaviour unless they hold none). The calls made
//! here raise only on a memory error, and the VM has no memory limit
//! (`Vm::new` sets none): mlua's allocator then never returns NULL to Lua,
//! it aborts the process on out-of-memory like any Rust allocation. So the
//! Rust frames here may hold values with destructors (a `Vec`, a
//! `RefMut`) across these calls. Setting a Lua memory limit would break
//! this; do not add one without reworking the callers.

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};

use crate::resp::Reply;

/// How deep a reply may nest on its way into Lua (each level takes stack).
const MAX_DEPTH: usize = 1000;

/// Pushes the reply in `buf` at `*pos` as one Lua value. False when the
/// Lua stack cannot grow (nothing is left pushed then).
///
/// # Safety
/// `l` must be a valid Lua state of the current thread.
pub unsafe fn push_reply(l: *mut lua_State, buf: &[u8], pos: &mut usize, depth: usize) -> bool {
    // SAFETY: `l` is valid (the caller's contract). Every level first makes
    // room for 4 values, and pushes at most 2 (a table and a string) before
    // the next level checks again; nothing here raises (module doc).
    unsafe {
        if depth > MAX_DEPTH || ffi::lua_checkstack(l, 4) == 0 {
            return false;
        }
        let kind = buf[*pos];
        let line = read_line(buf, pos);
        let num = || {
            std::str::from_utf8(line)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
        };
        match kind {
            b'+' => push_field_table(l, c"ok", line),
            b'-' => {
                let mut msg = Vec::with_capacity(line.len() + 1);
                msg.push(b'-');
                msg.extend_from_slice(line);
                push_counted_error_table(l, &error_code_form(&msg));
            }
            b':' => ffi::lua_pushnumber(l, num().unwrap_or(0) as f64),
            b'$' => match num() {
                Some(n) if n >= 0 => push_bytes(l, read_bytes(buf, pos, n as usize)),
                _ => ffi::lua_pushboolean(l, 0),
            },
            b'*' | b'~' | b'%' => {
                let Some(n) = num().filter(|n| *n >= 0) else {
                    ffi::lua_pushboolean(l, 0);
                    return true;
                };
                let n = n as usize;
                let wrapper = match kind {
                    b'~' => Some(c"set"),
                    b'%' => Some(c"map"),
                    _ => None,
                };
                if wrapper.is_some() {
                    ffi::lua_createtable(l, 0, 1);
                }
                let (narr, nrec) = if kind == b'*' { (n, 0) } else { (0, n) };
                ffi::lua_createtable(l, narr.min(1 << 20) as c_int, nrec.min(1 << 20) as c_int);
                for i in 1..=n {
                    if !push_reply(l, buf, pos, depth + 1) {
                        ffi::lua_pop(l, if wrapper.is_some() { 2 } else { 1 });
                        return false;
                    }
                    match kind {
                        b'*' => ffi::lua_rawseti(l, -2, i as ffi::lua_Integer),
                        b'~' => {
                            ffi::lua_pushboolean(l, 1);
                            ffi::lua_rawset(l, -3);
                        }
                        _ => {
                            if !push_reply(l, buf, pos, depth + 1) {
                                ffi::lua_pop(l, 3);
                                return false;
                            }
                            ffi::lua_rawset(l, -3);
                        }
                    }
                }
                if let Some(field) = wrapper {
                    ffi::lua_setfield(l, -2, field.as_ptr());
                }
            }
            // An attribute (DEBUG PROTOCOL attrib) is not shown to scripts:
            // the reply it annotates is what the call returns.
            b'|' => {
                let pairs = num().filter(|n| *n >= 0).unwrap_or(0) as usize;
                for _ in 0..pairs.saturating_mul(2) {
                    if !push_reply(l, buf, pos, depth + 1) {
                        return false;
                    }
                    ffi::lua_pop(l, 1);
                }
                return push_reply(l, buf, pos, depth + 1);
            }
            b'_' => ffi::lua_pushnil(l),
            b'#' => ffi::lua_pushboolean(l, (line == b"t") as c_int),
            b',' => {
                let d = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0);
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushnumber(l, d);
                ffi::lua_setfield(l, -2, c"double".as_ptr());
            }
            b'(' => push_field_table(l, c"big_number", line),
            b'=' => {
                let n = num().unwrap_or(0) as usize;
                let body = read_bytes(buf, pos, n);
                let (format, text) = body.split_at(body.len().min(3));
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, 2);
                push_bytes(l, format);
                ffi::lua_setfield(l, -2, c"format".as_ptr());
                push_bytes(l, text.get(1..).unwrap_or(b""));
                ffi::lua_setfield(l, -2, c"string".as_ptr());
                ffi::lua_setfield(l, -2, c"verbatim_string".as_ptr());
            }
            _ => ffi::lua_pushnil(l),
        }
        true
    }
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let start = *pos + 1;
    let end = memchr::memchr(b'\r', &buf[start..]).map_or(buf.len(), |i| start + i);
    *pos = (end + 2).min(buf.len());
    &buf[start..end]
}

fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> &'a [u8] {
    let start = *pos;
    let end = (start + n).min(buf.len());
    *pos = (end + 2).min(buf.len());
    &buf[start..end]
}

/// # Safety
/// `l` must be a valid Lua state with room for one value.
pub unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    // SAFETY: `l` is valid with a free slot (the caller's contract); the
    // pointer and length come from one live slice, which Lua copies.
    unsafe {
        ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len());
    }
}

/// Pushes `{<field>=text}`.
unsafe fn push_field_table(l: *mut lua_State, field: &std::ffi::CStr, text: &[u8]) {
    // SAFETY: the caller leaves room for two values (the table, then the
    // string `lua_setfield` pops); `field` is NUL-terminated by its type.
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        push_bytes(l, text);
        ffi::lua_setfield(l, -2, field.as_ptr());
    }
}

/// Pushes `{err=msg}`.
///
/// # Safety
/// `l` must be a valid Lua state with room for two values.
pub unsafe fn push_error_table(l: *mut lua_State, msg: &[u8]) {
    // SAFETY: the same contract as this function's.
    unsafe { push_field_table(l, c"err", msg) }
}

/// The field Redis sets in an error table whose error the error stats
/// already hold (a command's error reply, a refused call): returning or
/// raising that table does not count it again. Scripts see it, as in Redis.
pub const COUNTED_FIELD: &std::ffi::CStr = c"ignore_error_stats_update";

/// Pushes `{err=msg, ignore_error_stats_update=true}`.
///
/// # Safety
/// `l` must be a valid Lua state with room for two values.
pub unsafe fn push_counted_error_table(l: *mut lua_State, msg: &[u8]) {
    // SAFETY: the same contract as this function's: the table, then one
    // value `lua_setfield` pops.
    unsafe {
        push_field_table(l, c"err", msg);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_setfield(l, -2, COUNTED_FIELD.as_ptr());
    }
}

/// Redis's rule for error text handed to Lua: a leading `-` means the first
/// word is the error code (`-WRONGTYPE x` -> `WRONGTYPE x`, but a lone word
/// `-bad` gets `ERR bad`); anything else gets the `ERR` code.
pub fn error_code_form(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 4);
    match msg.strip_prefix(b"-") {
        Some(rest) if rest.contains(&b' ') => out.extend_from_slice(rest),
        Some(rest) => {
            out.extend_from_slice(b"ERR ");
            out.extend_from_slice(rest);
        }
        None => {
            out.extend_from_slice(b"ERR ");
            out.extend_from_slice(msg);
        }
    }
    out
}

/// Lua number -> integer as Redis's C cast does on x86 (out of range and
/// NaN become i64::MIN).
pub fn lua_number_to_i64(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// The string at `idx` (which must be a string or a number; a number is
/// converted in place, as `lua_tolstring` does).
///
/// # Safety
/// `l` must be a valid Lua state and `idx` a valid index; the slice lives
/// as long as the value stays on the stack.
pub unsafe fn to_bytes<'l>(l: *mut lua_State, idx: c_int) -> &'l [u8] {
    // SAFETY: `idx` is valid (the caller's contract). A non-NULL result
    // points at `len` bytes of a Lua string that stays alive while the value
    // is on the stack, which the caller promises for `'l`.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            return b"";
        }
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// The error replies written from a script's return value: the command
/// that ran the script failed when there was any, and each counts in the
/// error stats unless its table says it already does ([`COUNTED_FIELD`]).
#[derive(Default)]
pub struct ReplyErrors {
    pub any: bool,
    pub uncounted: Vec<String>,
}

/// Writes the Lua value at `idx` as a reply. `resp3_script` is the
/// protocol chosen with `redis.setresp` (it decides how booleans go out).
///
/// # Safety
/// `l` must be a valid Lua state and `idx` a valid index.
pub unsafe fn write_reply(
    l: *mut lua_State,
    idx: c_int,
    out: &mut Reply,
    errs: &mut ReplyErrors,
    resp3_script: bool,
    depth: usize,
) {
    // SAFETY: `l` and `idx` are valid (the caller's contract); 4 slots are
    // made free before anything is pushed (`write_table` uses up to 3), and
    // the string and number reads do not touch the stack.
    unsafe {
        // As Redis: every value needs room on the Lua stack; a reply nested
        // deeper than the stack allows ends in an error where it stopped.
        if ffi::lua_checkstack(l, 4) == 0 {
            const MSG: &str = "ERR reached lua stack limit";
            errs.any = true;
            errs.uncounted.push(MSG.into());
            return out.error(MSG);
        }
        let idx = absolute(l, idx);
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => out.bulk(to_bytes(l, idx)),
            ffi::LUA_TNUMBER => out.int(lua_number_to_i64(ffi::lua_tonumber(l, idx))),
            ffi::LUA_TBOOLEAN => {
                let b = ffi::lua_toboolean(l, idx) != 0;
                if resp3_script {
                    out.boolean(b);
                } else if b {
                    out.int(1);
                } else {
                    out.null();
                }
            }
            ffi::LUA_TTABLE => write_table(l, idx, out, errs, resp3_script, depth),
            _ => out.null(),
        }
    }
}

unsafe fn absolute(l: *mut lua_State, idx: c_int) -> c_int {
    if idx < 0 && idx > ffi::LUA_REGISTRYINDEX {
        // SAFETY: `lua_gettop` only reads the valid state's stack size.
        unsafe { ffi::lua_gettop(l) + idx + 1 }
    } else {
        idx
    }
}

/// Pushes `t[field]` (raw) and returns its type.
unsafe fn get_field(l: *mut lua_State, t: c_int, field: &std::ffi::CStr) -> c_int {
    // SAFETY: `t` is a table's absolute index (callers pass one) and the
    // caller left a free slot; `lua_rawget` replaces the pushed key with the
    // value, calling no metamethod.
    unsafe {
        ffi::lua_pushstring(l, field.as_ptr());
        ffi::lua_rawget(l, t);
        ffi::lua_type(l, -1)
    }
}

unsafe fn write_table(
    l: *mut lua_State,
    t: c_int,
    out: &mut Reply,
    errs: &mut ReplyErrors,
    resp3: bool,
    depth: usize,
) {
    // SAFETY: `t` is the absolute index of a table (`write_reply` checked
    // the type) and `write_reply` left 4 free slots; each probe below pops
    // what it pushed (3 values at most), so the stack is left as found.
    unsafe {
        if get_field(l, t, c"err") == ffi::LUA_TSTRING {
            let msg = String::from_utf8_lossy(to_bytes(l, -1)).into_owned();
            out.error(&msg);
            ffi::lua_pop(l, 1);
            errs.any = true;
            let counted = get_field(l, t, COUNTED_FIELD) == ffi::LUA_TBOOLEAN
                && ffi::lua_toboolean(l, -1) != 0;
            if !counted {
                errs.uncounted.push(msg);
            }
            return ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        if get_field(l, t, c"ok") == ffi::LUA_TSTRING {
            let text = String::from_utf8_lossy(to_bytes(l, -1)).replace(['\r', '\n'], " ");
            out.simple(&text);
            return ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        if get_field(l, t, c"double") == ffi::LUA_TNUMBER {
            out.double(ffi::lua_tonumber(l, -1));
            return ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        if get_field(l, t, c"big_number") == ffi::LUA_TSTRING {
            big_number(out, to_bytes(l, -1));
            return ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        if get_field(l, t, c"map") == ffi::LUA_TTABLE {
            write_pairs(l, out, errs, resp3, depth, true);
            return ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        if get_field(l, t, c"set") == ffi::LUA_TTABLE {
            write_pairs(l, out, errs, resp3, depth, false);
            return ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        if get_field(l, t, c"verbatim_string") == ffi::LUA_TTABLE {
            let v = ffi::lua_gettop(l);
            let f = get_field(l, v, c"format");
            let s = get_field(l, v, c"string");
            if f == ffi::LUA_TSTRING && s == ffi::LUA_TSTRING {
                verbatim(out, to_bytes(l, -2), to_bytes(l, -1));
                return ffi::lua_pop(l, 3);
            }
            ffi::lua_pop(l, 2);
        }
        ffi::lua_pop(l, 1);
        // An array: elements 1, 2, ... up to the first nil.
        let mut n = 0;
        while {
            ffi::lua_rawgeti(l, t, n as ffi::lua_Integer + 1);
            let present = ffi::lua_type(l, -1) != ffi::LUA_TNIL;
            ffi::lua_pop(l, 1);
            present
        } {
            n += 1;
        }
        out.array(n);
        for i in 1..=n {
            ffi::lua_rawgeti(l, t, i as ffi::lua_Integer);
            write_reply(l, -1, out, errs, resp3, depth + 1);
            ffi::lua_pop(l, 1);
        }
    }
}

/// The table on top of the stack as a map (keys and values) or a set (its
/// keys).
unsafe fn write_pairs(
    l: *mut lua_State,
    out: &mut Reply,
    errs: &mut ReplyErrors,
    resp3: bool,
    depth: usize,
    map: bool,
) {
    // SAFETY: the table is on top (the caller pushed it) with free slots for
    // `lua_next`'s key and value. `lua_next` needs the previous key
    // unchanged: `write_reply` reads a key with `to_bytes` only when it is
    // already a string (never converting a number in place) and leaves the
    // stack as found.
    unsafe {
        let t = ffi::lua_gettop(l);
        let mut n = 0;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            n += 1;
            ffi::lua_pop(l, 1);
        }
        if map {
            out.map(n);
        } else {
            out.set(n);
        }
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            write_reply(l, -2, out, errs, resp3, depth + 1);
            if map {
                write_reply(l, -1, out, errs, resp3, depth + 1);
            }
            ffi::lua_pop(l, 1);
        }
    }
}

fn big_number(out: &mut Reply, digits: &[u8]) {
    // CR and LF become spaces, as Redis maps them: the text must not break
    // the protocol (`{big_number='123\r\n123'}`).
    let digits: Vec<u8> = digits
        .iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    if out.resp3 {
        out.buf.push(b'(');
        out.buf.extend_from_slice(&digits);
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(&digits);
    }
}

fn verbatim(out: &mut Reply, format: &[u8], text: &[u8]) {
    if out.resp3 {
        let mut b = itoa::Buffer::new();
        out.buf.push(b'=');
        out.buf
            .extend_from_slice(b.format(text.len() + 4).as_bytes());
        out.buf.extend_from_slice(b"\r\n");
        out.buf.extend_from_slice(format);
        out.buf.push(b':');
        out.buf.extend_from_slice(text);
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    #[test]
    fn error_code_form_follows_redis() {
        assert_eq!(error_code_form(b"-bad"), b"ERR bad");
        assert_eq!(error_code_form(b"-bad x"), b"bad x");
        assert_eq!(error_code_form(b"bad"), b"ERR bad");
        assert_eq!(
            error_code_form(b"-WRONGTYPE Operation"),
            b"WRONGTYPE Operation"
        );
    }

    #[test]
    fn numbers_truncate_like_c() {
        assert_eq!(lua_number_to_i64(3.99), 3);
        assert_eq!(lua_number_to_i64(-0.5), 0);
        assert_eq!(lua_number_to_i64(1e20), i64::MIN);
    }

    /// Pushes each reply into Lua and writes it back out: what `redis.call`
    /// hands a script and what returning it gives the client.
    fn round_trip(input: &[u8], resp3: bool) -> Vec<u8> {
        let lua = Lua::new();
        let mut out = Reply::new(resp3);
        // SAFETY: the raw closure gets this thread's state, with the stack
        // mlua set up for it.
        unsafe {
            lua.exec_raw::<()>((), |l| {
                let mut pos = 0;
                assert!(push_reply(l, input, &mut pos, 0));
                assert_eq!(pos, input.len());
                write_reply(l, -1, &mut out, &mut ReplyErrors::default(), resp3, 0);
                ffi::lua_pop(l, 1);
            })
            .unwrap();
        }
        out.buf
    }

    #[test]
    fn replies_round_trip_through_lua() {
        // Nil bulk becomes false, which goes back out as nil.
        assert_eq!(
            round_trip(b"*3\r\n:1\r\n$2\r\nab\r\n$-1\r\n", false),
            b"*3\r\n:1\r\n$2\r\nab\r\n$-1\r\n"
        );
        // A status is a {ok=} table, an error an {err=} table.
        assert_eq!(round_trip(b"+OK\r\n", false), b"+OK\r\n");
        assert_eq!(round_trip(b"-ERR x y\r\n", false), b"-ERR x y\r\n");
        // RESP3 types keep their type through a RESP3 script.
        assert_eq!(round_trip(b",1.5\r\n", true), b",1.5\r\n");
        assert_eq!(
            round_trip(b"%1\r\n$1\r\na\r\n:1\r\n", true),
            b"%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(round_trip(b"#t\r\n", true), b"#t\r\n");
    }
}
