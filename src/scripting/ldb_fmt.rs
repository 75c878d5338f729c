//! How the Lua debugger (`ldb`) writes what it shows: Lua values (`print`,
//! `eval`'s result, `redis.debug`), Redis replies (`<reply>` lines),
//! source lines, and the commands it reads. Redis 7.0.15's forms, byte for
//! byte (see tests/script_debug.rs).

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};

/// Nested tables deeper than this print a marker instead (a table that
/// holds itself would never end).
const MAX_DEPTH: usize = 10;
const DEPTH_MARKER: &[u8] = b"<max recursion level reached! Nested table?>";

/// A debugger command may have at most this many arguments, each at most
/// [`MAX_ARG`] bytes long (Redis's limits; past them the script stops with
/// a protocol error).
pub const MAX_ARGS: usize = 1024;
pub const MAX_ARG: usize = 1024;

/// `s` quoted as Redis quotes binary-safe strings: printable ASCII as is,
/// `\\`, `\"`, the usual control escapes, anything else as `\xHH`.
pub fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    crate::util::repr::quote_into(out, s);
}

/// One source line as `list` shows it: `->` on the current line, `#` on a
/// breakpoint, the number left-aligned in three columns.
pub fn source_line(out: &mut Vec<u8>, line: i32, current: bool, bp: bool, code: &[u8]) {
    out.extend_from_slice(if current { b"->" } else { b"  " });
    out.push(if bp { b'#' } else { b' ' });
    out.extend_from_slice(format!("{line:<3} ").as_bytes());
    out.extend_from_slice(code);
}

/// Appends the Lua value at `idx` as the debugger shows it.
///
/// # Safety
/// `l` is a valid state and `idx` a valid absolute index.
pub unsafe fn lua_value(l: *mut lua_State, idx: c_int, out: &mut Vec<u8>) {
    // SAFETY: the caller's contract.
    unsafe { value_at(l, idx, 0, out) }
}

unsafe fn value_at(l: *mut lua_State, idx: c_int, depth: usize, out: &mut Vec<u8>) {
    if depth >= MAX_DEPTH {
        out.extend_from_slice(DEPTH_MARKER);
        return;
    }
    // SAFETY: `idx` is a valid absolute index (the caller's contract);
    // every value pushed here is popped before returning, and room for
    // them is checked first.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
            ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, idx) != 0 {
                b"true"
            } else {
                b"false"
            }),
            ffi::LUA_TNUMBER => number(ffi::lua_tonumber(l, idx), out),
            ffi::LUA_TSTRING => quoted(out, super::convert::to_bytes(l, idx)),
            ffi::LUA_TTABLE => table(l, idx, depth, out),
            t => {
                let name = std::ffi::CStr::from_ptr(ffi::lua_typename(l, t));
                let text = format!(
                    "{}@{:p}",
                    name.to_string_lossy(),
                    ffi::lua_topointer(l, idx)
                );
                quoted(out, text.as_bytes());
            }
        }
    }
}

/// A number as C's `%g` prints it (six significant digits: `1.23457e+06`),
/// which is what Redis's debugger shows, not Lua's `%.14g`.
fn number(n: f64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer's size is passed; the format takes one double.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%g".as_ptr(),
            n as std::ffi::c_double,
        )
    };
    let len = usize::try_from(len).unwrap_or(0).min(buf.len() - 1);
    out.extend_from_slice(&buf[..len]);
}

/// `{v1; v2}` when the keys are 1, 2, 3... in traversal order, else
/// `{[k1]=v1; [k2]=v2}`.
unsafe fn table(l: *mut lua_State, idx: c_int, depth: usize, out: &mut Vec<u8>) {
    // SAFETY: as `value_at`'s; lua_next leaves a key and a value, both
    // popped before the next round.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            out.extend_from_slice(DEPTH_MARKER);
            return;
        }
        let mut as_array = Vec::new();
        let mut full = Vec::new();
        let mut is_array = true;
        let mut expected = 1.0;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            let top = ffi::lua_gettop(l);
            if !as_array.is_empty() {
                as_array.extend_from_slice(b"; ");
                full.extend_from_slice(b"; ");
            }
            value_at(l, top, depth + 1, &mut as_array);
            full.push(b'[');
            value_at(l, top - 1, depth + 1, &mut full);
            full.extend_from_slice(b"]=");
            value_at(l, top, depth + 1, &mut full);
            ffi::lua_pop(l, 1);
            is_array = is_array
                && ffi::lua_type(l, -1) == ffi::LUA_TNUMBER
                && ffi::lua_tonumber(l, -1) == expected;
            expected += 1.0;
        }
        out.push(b'{');
        out.extend_from_slice(if is_array { &as_array } else { &full });
        out.push(b'}');
    }
}

/// A RESP reply as `<reply>` shows it: `"+OK"`, `"-ERR x"`, `42`, `"bulk"`,
/// `NULL`, `[a,b]`, `{k => v}`, `~(a)`, `(null)`, `(double) 1.5`...
pub fn reply(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    reply_at(buf, &mut pos, &mut out, 0);
    out
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let rest = &buf[(*pos).min(buf.len())..];
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(rest.len());
    *pos += (end + 2).min(rest.len());
    &rest[..end]
}

/// No command nests its reply this deep; past it the rest is not shown
/// (the recursion stays bounded whatever the buffer holds).
const MAX_REPLY_DEPTH: usize = 64;

fn reply_at(buf: &[u8], pos: &mut usize, out: &mut Vec<u8>, depth: usize) {
    if *pos >= buf.len() {
        return;
    }
    if depth > MAX_REPLY_DEPTH {
        out.extend_from_slice(b"...");
        *pos = buf.len();
        return;
    }
    let head = line(buf, pos);
    let (kind, rest) = (head[0], &head[1..]);
    let count = || {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    let mut items = |open: &[u8], close: &[u8], per: usize, sep: &[u8], out: &mut Vec<u8>| {
        let Some(n) = count().filter(|&n| n >= 0) else {
            out.extend_from_slice(b"NULL");
            return;
        };
        out.extend_from_slice(open);
        for i in 0..n as usize {
            if i > 0 {
                out.push(b',');
            }
            reply_at(buf, pos, out, depth + 1);
            for _ in 1..per {
                out.extend_from_slice(sep);
                reply_at(buf, pos, out, depth + 1);
            }
        }
        out.extend_from_slice(close);
    };
    match kind {
        b'+' | b'-' => quoted(out, head),
        b':' => out.extend_from_slice(rest),
        b'$' | b'=' => match count().filter(|&n| n >= 0) {
            Some(n) => {
                let start = (*pos).min(buf.len());
                let end = (start + n as usize).min(buf.len());
                quoted(out, &buf[start..end]);
                *pos = (end + 2).min(buf.len());
            }
            None => out.extend_from_slice(b"NULL"),
        },
        b'*' => items(b"[", b"]", 1, b"", out),
        b'%' => items(b"{", b"}", 2, b" => ", out),
        b'~' => items(b"~(", b")", 1, b"", out),
        b'|' => items(b"|(", b")", 2, b" => ", out),
        b'>' => items(b">(", b")", 1, b"", out),
        b'_' => out.extend_from_slice(b"(null)"),
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(rest);
        }
        b'#' => out.extend_from_slice(if rest == b"t" { b"#true" } else { b"#false" }),
        b'(' => {
            out.extend_from_slice(b"(bignum) ");
            out.extend_from_slice(rest);
        }
        _ => out.extend_from_slice(head),
    }
}

/// What reading one debugger command from the client's bytes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A command; the bytes after it are dropped, as Redis drops them.
    Command(Vec<Vec<u8>>),
    /// More bytes are needed.
    Incomplete,
    /// Not a well-formed multi-bulk within the limits: the script stops.
    Error,
}

/// Reads one command: the debugger takes only multi-bulks of 1 to
/// [`MAX_ARGS`] non-empty bulk strings of at most [`MAX_ARG`] bytes.
pub fn parse_command(buf: &[u8]) -> Parsed {
    fn number(buf: &[u8], pos: &mut usize, prefix: u8) -> Result<Option<i64>, ()> {
        let rest = &buf[*pos..];
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            // A header longer than any valid one can't become valid.
            return if rest.len() > 32 { Err(()) } else { Ok(None) };
        };
        if rest.first() != Some(&prefix) {
            return Err(());
        }
        let n = std::str::from_utf8(&rest[1..end])
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(())?;
        *pos += end + 2;
        Ok(Some(n))
    }
    if buf.is_empty() {
        return Parsed::Incomplete;
    }
    let mut pos = 0;
    let argc = match number(buf, &mut pos, b'*') {
        Err(()) => return Parsed::Error,
        Ok(None) => return Parsed::Incomplete,
        Ok(Some(n)) if n <= 0 || n as usize > MAX_ARGS => return Parsed::Error,
        Ok(Some(n)) => n as usize,
    };
    let mut argv = Vec::with_capacity(argc.min(64));
    for _ in 0..argc {
        if pos >= buf.len() {
            return Parsed::Incomplete;
        }
        let len = match number(buf, &mut pos, b'$') {
            Err(()) => return Parsed::Error,
            Ok(None) => return Parsed::Incomplete,
            Ok(Some(n)) if n <= 0 || n as usize > MAX_ARG => return Parsed::Error,
            Ok(Some(n)) => n as usize,
        };
        if buf.len() - pos < len + 2 {
            // The payload and its CRLF have not all arrived; bytes where
            // the CRLF belongs that are not one are an error already.
            let have = buf.len() - pos;
            if have > len && buf[pos + len] != b'\r' {
                return Parsed::Error;
            }
            return Parsed::Incomplete;
        }
        if &buf[pos + len..pos + len + 2] != b"\r\n" {
            return Parsed::Error;
        }
        argv.push(buf[pos..pos + len].to_vec());
        pos += len + 2;
    }
    Parsed::Command(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_as_redis_shows_them() {
        assert_eq!(reply(b"+OK\r\n"), b"\"+OK\"");
        assert_eq!(reply(b"-ERR x\r\n"), b"\"-ERR x\"");
        assert_eq!(reply(b":2\r\n"), b"2");
        assert_eq!(reply(b"$-1\r\n"), b"NULL");
        assert_eq!(
            reply(b"*3\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n"),
            b"[\"a\",\"b\",1]"
        );
        assert_eq!(reply(b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"), b"{\"f\" => \"v\"}");
        assert_eq!(reply(b"~1\r\n$2\r\nm1\r\n"), b"~(\"m1\")");
        assert_eq!(reply(b",1.5\r\n"), b"(double) 1.5");
        assert_eq!(reply(b"_\r\n"), b"(null)");
        assert_eq!(reply(b"*0\r\n"), b"[]");
    }

    #[test]
    fn commands_are_strict_multibulks() {
        let cmd = |v: &[&[u8]]| Parsed::Command(v.iter().map(|a| a.to_vec()).collect());
        assert_eq!(parse_command(b"*1\r\n$1\r\ns\r\n"), cmd(&[b"s"]));
        assert_eq!(parse_command(b"*1\r\n$1\r\ns\r\n*1\r\n"), cmd(&[b"s"]));
        assert_eq!(parse_command(b"*2\r\n$4\r\nhelp\r\n"), Parsed::Incomplete);
        assert_eq!(parse_command(b"*1\r\n$4\r\nhe"), Parsed::Incomplete);
        for bad in [
            &b"help\r\n"[..],
            b"*0\r\n",
            b"*1025\r\n",
            b"*1\r\n$0\r\n\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$1048577\r\n",
            b"*1\r\n$1025\r\n",
            b"*1\r\n+4\r\n",
            b"*x\r\n",
            b"*1\r\n$4\r\nhelpXX",
        ] {
            assert_eq!(parse_command(bad), Parsed::Error, "{bad:?}");
        }
    }

    #[test]
    fn quoting_and_lines() {
        let mut o = Vec::new();
        quoted(&mut o, b"a\0\"\n\\");
        assert_eq!(o, b"\"a\\x00\\\"\\n\\\\\"");
        let mut o = Vec::new();
        source_line(&mut o, 4, false, true, b"x");
        assert_eq!(o, b"  #4   x");
        let mut o = Vec::new();
        source_line(&mut o, 10, true, false, b"end");
        assert_eq!(o, b"-> 10  end");
        let mut o = Vec::new();
        for n in [
            1234567.0,
            0.1 + 0.2,
            42.0,
            1e100,
            f64::INFINITY,
            2f64.powi(53),
        ] {
            number(n, &mut o);
            o.push(b' ');
        }
        assert_eq!(o, b"1.23457e+06 0.3 42 1e+100 inf 9.0072e+15 ");
    }
}
