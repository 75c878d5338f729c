//! Conversions between RESP replies and Lua values, by Redis's rules.
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

use mlua::{Lua, Table, Value};

use crate::resp::Reply;

/// Parses one reply in `buf` at `*pos` into a Lua value.
pub fn reply_to_lua(lua: &Lua, buf: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    let kind = buf[*pos];
    let line = read_line(buf, pos);
    let num = || {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    Ok(match kind {
        b'+' => status_table(lua, "ok", line)?,
        b'-' => {
            let mut msg = Vec::with_capacity(line.len() + 1);
            msg.push(b'-');
            msg.extend_from_slice(line);
            Value::Table(error_table(lua, &error_code_form(&msg))?)
        }
        b':' => Value::Number(num().unwrap_or(0) as f64),
        b'$' => match num() {
            Some(n) if n >= 0 => {
                Value::String(lua.create_string(read_bytes(buf, pos, n as usize))?)
            }
            _ => Value::Boolean(false),
        },
        b'*' | b'~' | b'%' => {
            let Some(n) = num().filter(|n| *n >= 0) else {
                return Ok(Value::Boolean(false));
            };
            let n = n as usize;
            let t = lua.create_table()?;
            match kind {
                b'*' => {
                    for i in 1..=n {
                        t.raw_set(i, reply_to_lua(lua, buf, pos)?)?;
                    }
                    Value::Table(t)
                }
                b'~' => {
                    for _ in 0..n {
                        t.raw_set(reply_to_lua(lua, buf, pos)?, true)?;
                    }
                    wrap(lua, "set", t)?
                }
                _ => {
                    for _ in 0..n {
                        let k = reply_to_lua(lua, buf, pos)?;
                        let v = reply_to_lua(lua, buf, pos)?;
                        t.raw_set(k, v)?;
                    }
                    wrap(lua, "map", t)?
                }
            }
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(line == b"t"),
        b',' => {
            let d = std::str::from_utf8(line)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            let t = lua.create_table()?;
            t.raw_set("double", d)?;
            Value::Table(t)
        }
        b'(' => status_table(lua, "big_number", line)?,
        b'=' => {
            let n = num().unwrap_or(0) as usize;
            let body = read_bytes(buf, pos, n);
            let (format, text) = body.split_at(body.len().min(3));
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(text.get(1..).unwrap_or(b""))?)?;
            wrap(lua, "verbatim_string", inner)?
        }
        _ => Value::Nil,
    })
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

fn wrap(lua: &Lua, field: &str, inner: Table) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, inner)?;
    Ok(Value::Table(t))
}

fn status_table(lua: &Lua, field: &str, text: &[u8]) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, lua.create_string(text)?)?;
    Ok(Value::Table(t))
}

/// `{err=msg}`.
pub fn error_table(lua: &Lua, msg: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(msg)?)?;
    Ok(t)
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

/// Writes what a script returned as its reply. `resp3_script` is the
/// protocol chosen with `redis.setresp` (it decides how booleans go out).
pub fn lua_to_reply(out: &mut Reply, v: &Value, resp3_script: bool, depth: usize) {
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(lua_number_to_i64(*n)),
        Value::Boolean(b) if resp3_script => out.boolean(*b),
        Value::Boolean(true) => out.int(1),
        Value::Table(t) if depth < 1000 => table_to_reply(out, t, resp3_script, depth),
        _ => out.null(),
    }
}

fn table_to_reply(out: &mut Reply, t: &Table, resp3: bool, depth: usize) {
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        return out.error(&String::from_utf8_lossy(&e.as_bytes()));
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        let text = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        return out.simple(&text);
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        return out.double(d);
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        return out.double(d as f64);
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        return big_number(out, &s.as_bytes());
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().flatten().collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            lua_to_reply(out, k, resp3, depth + 1);
            lua_to_reply(out, v, resp3, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        out.set(keys.len());
        for k in &keys {
            lua_to_reply(out, k, resp3, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        let format: Option<mlua::String> = v.raw_get("format").ok();
        let text: Option<mlua::String> = v.raw_get("string").ok();
        if let (Some(f), Some(s)) = (format, text) {
            return verbatim(out, &f.as_bytes(), &s.as_bytes());
        }
    }
    // An array: elements 1, 2, ... up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    out.array(items.len());
    for v in &items {
        lua_to_reply(out, v, resp3, depth + 1);
    }
}

fn big_number(out: &mut Reply, digits: &[u8]) {
    if out.resp3 {
        out.buf.push(b'(');
        out.buf.extend_from_slice(digits);
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(digits);
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

    #[test]
    fn replies_round_trip_into_lua() {
        let lua = Lua::new();
        let buf = b"*3\r\n:1\r\n$2\r\nab\r\n$-1\r\n";
        let mut pos = 0;
        let v = reply_to_lua(&lua, buf, &mut pos).unwrap();
        let Value::Table(t) = v else { panic!() };
        assert_eq!(t.raw_get::<i64>(1).unwrap(), 1);
        assert_eq!(t.raw_get::<String>(2).unwrap(), "ab");
        assert!(!t.raw_get::<bool>(3).unwrap());
        assert_eq!(pos, buf.len());
    }
}
