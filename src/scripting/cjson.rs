//! The `cjson` library (lua-cjson 2.1.0 semantics with its default
//! settings, as Redis ships it): `cjson.encode`, `cjson.decode` and the
//! `cjson.null` sentinel (a NULL lightuserdata).
//!
//! Encoding: numbers as `%.14g` (NaN/Inf refused), strings escaped with
//! cjson's table (`/` as `\/`, DEL and control bytes as `\u00XX`), a table
//! whose keys are all positive integers as an array (holes as `null`,
//! "excessively sparse" ones refused), any other table as an object, an
//! empty table as `{}`. Decoding: strict JSON with cjson's extensions
//! (numbers through `strtod`, so `inf`/`nan`/hex are accepted) and its
//! error messages, nesting limited to 1000 levels both ways.

use mlua::{LightUserData, Lua, Result, Table, Value, Variadic};

const MAX_DEPTH: usize = 1000;
const SPARSE_RATIO: i64 = 2;
const SPARSE_SAFE: i64 = 10;

fn err(msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(msg)
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Lua 5.1's `lua_typename` for a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

fn exception(v: &Value, reason: &str) -> mlua::Error {
    err(format!("Cannot serialise {}: {reason}", type_name(v)))
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// `%.14g`, as cjson's `fpconv_g_fmt` with the default precision.
fn fmt_g14(n: f64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 64];
    // SAFETY: the format consumes one double; the buffer length bounds the write.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.14g".as_ptr(),
            n,
        )
    };
    out.extend_from_slice(&buf[..(len.max(0) as usize).min(buf.len() - 1)]);
}

fn append_number(v: &Value, n: f64, out: &mut Vec<u8>) -> Result<()> {
    if !n.is_finite() {
        return Err(exception(v, "must not be NaN or Inf"));
    }
    fmt_g14(n, out);
    Ok(())
}

fn append_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            8 => out.extend_from_slice(b"\\b"),
            9 => out.extend_from_slice(b"\\t"),
            10 => out.extend_from_slice(b"\\n"),
            12 => out.extend_from_slice(b"\\f"),
            13 => out.extend_from_slice(b"\\r"),
            0..=31 | 127 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

/// cjson's `lua_array_length`: the array length when every key is a
/// positive integer (0 for an empty table), None for an object.
fn array_length(t: &Table, v: &Value) -> Result<Option<i64>> {
    let mut max: i64 = 0;
    let mut items: i64 = 0;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        match as_number(&k) {
            Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                let k = k.min(i32::MAX as f64) as i64;
                max = max.max(k);
                items += 1;
            }
            _ => return Ok(None),
        }
    }
    if max > items * SPARSE_RATIO && max > SPARSE_SAFE {
        return Err(exception(v, "excessively sparse array"));
    }
    Ok(Some(max))
}

fn encode_value(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::String(s) => append_string(&s.as_bytes(), out),
        Value::Integer(i) => append_number(v, *i as f64, out)?,
        Value::Number(n) => append_number(v, *n, out)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(err(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            match array_length(t, v)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let e: Value = t.raw_get(i)?;
                        encode_value(&e, depth, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut comma = false;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, val) = pair?;
                        if comma {
                            out.push(b',');
                        }
                        comma = true;
                        match &k {
                            Value::String(s) => append_string(&s.as_bytes(), out),
                            Value::Integer(_) | Value::Number(_) => {
                                out.push(b'"');
                                append_number(&k, as_number(&k).unwrap_or(0.0), out)?;
                                out.push(b'"');
                            }
                            _ => {
                                return Err(exception(&k, "table key must be a number or string"));
                            }
                        }
                        out.push(b':');
                        encode_value(&val, depth, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        _ => return Err(exception(v, "type not supported")),
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(msg) => msg,
        }
    }
}

struct Token {
    tok: Tok,
    index: usize,
    string: Vec<u8>,
    number: f64,
    boolean: bool,
}

struct Parser<'a> {
    lua: &'a Lua,
    /// The input with a NUL terminator (cjson stops at the first NUL).
    data: Vec<u8>,
    ptr: usize,
    depth: usize,
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for i in 0..4 {
        let d = (*b.get(i)? as char).to_digit(16)?;
        v = (v << 4) | d;
    }
    Some(v)
}

fn push_utf8(cp: u32, out: &mut Vec<u8>) {
    if cp < 0x80 {
        out.push(cp as u8);
    } else if cp < 0x800 {
        out.push(0xC0 | (cp >> 6) as u8);
        out.push(0x80 | (cp & 0x3F) as u8);
    } else if cp < 0x10000 {
        out.push(0xE0 | (cp >> 12) as u8);
        out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
        out.push(0x80 | (cp & 0x3F) as u8);
    } else {
        out.push(0xF0 | (cp >> 18) as u8);
        out.push(0x80 | ((cp >> 12) & 0x3F) as u8);
        out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
        out.push(0x80 | (cp & 0x3F) as u8);
    }
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn token(&self, tok: Tok, index: usize) -> Token {
        Token {
            tok,
            index,
            string: Vec::new(),
            number: 0.0,
            boolean: false,
        }
    }

    /// cjson's `json_is_invalid_number` (hex, leading zeros, inf, nan).
    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let rest = &self.data[p..];
        rest.len() >= 3
            && (rest[..3].eq_ignore_ascii_case(b"inf") || rest[..3].eq_ignore_ascii_case(b"nan"))
    }

    fn next_token(&mut self) -> Token {
        while matches!(self.at(self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        let index = self.ptr;
        let c = self.at(self.ptr);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            0 => return self.token(Tok::End, index),
            _ => None,
        };
        if let Some(t) = single {
            self.ptr += 1;
            return self.token(t, index);
        }
        if c == b'"' {
            return self.string_token();
        }
        let rest = &self.data[self.ptr..];
        if c == b'-'
            || c.is_ascii_digit()
            || (!rest.starts_with(b"true")
                && !rest.starts_with(b"false")
                && !rest.starts_with(b"null")
                && self.is_invalid_number())
        {
            // SAFETY: `data` is NUL-terminated, so strtod stops inside it.
            let mut end: *mut libc::c_char = std::ptr::null_mut();
            let start = unsafe { self.data.as_ptr().add(self.ptr) } as *const libc::c_char;
            let n = unsafe { libc::strtod(start, &mut end) };
            if std::ptr::eq(end, start) {
                return self.token(Tok::Error("invalid number"), index);
            }
            self.ptr += end as usize - start as usize;
            let mut t = self.token(Tok::Num, index);
            t.number = n;
            return t;
        }
        for (word, tok, b) in [
            (&b"true"[..], Tok::Bool, true),
            (b"false", Tok::Bool, false),
            (b"null", Tok::Null, false),
        ] {
            if rest.starts_with(word) {
                self.ptr += word.len();
                let mut t = self.token(tok, index);
                t.boolean = b;
                return t;
            }
        }
        self.token(Tok::Error("invalid token"), index)
    }

    fn string_token(&mut self) -> Token {
        let start = self.ptr;
        self.ptr += 1;
        let mut s = Vec::new();
        loop {
            let c = self.at(self.ptr);
            if c == b'"' {
                break;
            }
            if c == 0 {
                return self.token(Tok::Error("unexpected end of string"), self.ptr);
            }
            if c == b'\\' {
                let e = match self.at(self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => 9,
                    b'n' => 10,
                    b'f' => 12,
                    b'r' => 13,
                    b'u' => match self.unicode_escape(&mut s) {
                        Some(()) => continue,
                        None => {
                            return self.token(Tok::Error("invalid unicode escape code"), self.ptr);
                        }
                    },
                    _ => return self.token(Tok::Error("invalid escape code"), self.ptr),
                };
                s.push(e);
                self.ptr += 2;
            } else {
                s.push(c);
                self.ptr += 1;
            }
        }
        self.ptr += 1;
        let mut t = self.token(Tok::Str, start);
        t.string = s;
        t
    }

    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let p = self.ptr;
        let mut cp = hex4(&self.data[(p + 2).min(self.data.len())..])?;
        let mut len = 6;
        if (0xDC00..=0xDFFF).contains(&cp) {
            return None;
        }
        if (0xD800..=0xDBFF).contains(&cp) {
            if self.at(p + 6) != b'\\' || self.at(p + 7) != b'u' {
                return None;
            }
            let lo = hex4(&self.data[(p + 8).min(self.data.len())..])?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return None;
            }
            cp = (((cp & 0x3FF) << 10) | (lo & 0x3FF)) + 0x10000;
            len = 12;
        }
        push_utf8(cp, out);
        self.ptr += len;
        Some(())
    }

    fn parse_error(&self, expected: &str, t: &Token) -> mlua::Error {
        err(format!(
            "Expected {expected} but found {} at character {}",
            t.tok.name(),
            t.index + 1
        ))
    }

    fn descend(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.ptr
            )));
        }
        Ok(())
    }

    fn value(&mut self, t: Token) -> Result<Value> {
        Ok(match t.tok {
            Tok::Str => Value::String(self.lua.create_string(&t.string)?),
            Tok::Num => Value::Number(t.number),
            Tok::Bool => Value::Boolean(t.boolean),
            Tok::Null => null(),
            Tok::ObjBegin => self.object()?,
            Tok::ArrBegin => self.array()?,
            _ => return Err(self.parse_error("value", &t)),
        })
    }

    fn object(&mut self) -> Result<Value> {
        self.descend()?;
        let table = self.lua.create_table()?;
        let mut t = self.next_token();
        if t.tok == Tok::ObjEnd {
            self.depth -= 1;
            return Ok(Value::Table(table));
        }
        loop {
            if t.tok != Tok::Str {
                return Err(self.parse_error("object key string", &t));
            }
            let key = self.lua.create_string(&t.string)?;
            t = self.next_token();
            if t.tok != Tok::Colon {
                return Err(self.parse_error("colon", &t));
            }
            let vt = self.next_token();
            let v = self.value(vt)?;
            table.raw_set(key, v)?;
            t = self.next_token();
            if t.tok == Tok::ObjEnd {
                self.depth -= 1;
                return Ok(Value::Table(table));
            }
            if t.tok != Tok::Comma {
                return Err(self.parse_error("comma or object end", &t));
            }
            t = self.next_token();
        }
    }

    fn array(&mut self) -> Result<Value> {
        self.descend()?;
        let table = self.lua.create_table()?;
        let mut t = self.next_token();
        if t.tok == Tok::ArrEnd {
            self.depth -= 1;
            return Ok(Value::Table(table));
        }
        let mut i: i64 = 1;
        loop {
            let v = self.value(t)?;
            table.raw_set(i, v)?;
            i += 1;
            t = self.next_token();
            if t.tok == Tok::ArrEnd {
                self.depth -= 1;
                return Ok(Value::Table(table));
            }
            if t.tok != Tok::Comma {
                return Err(self.parse_error("comma or array end", &t));
            }
            t = self.next_token();
        }
    }
}

fn one_arg(args: Variadic<Value>, name: &str) -> Result<Value> {
    if args.len() != 1 {
        return Err(err(format!(
            "bad argument #1 to '{name}' (expected 1 argument)"
        )));
    }
    Ok(args.into_iter().next().unwrap_or(Value::Nil))
}

pub fn encode(v: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_value(v, 0, &mut out)?;
    Ok(out)
}

pub fn decode(lua: &Lua, input: &[u8]) -> Result<Value> {
    if input.len() >= 2 && (input[0] == 0 || input[1] == 0) {
        return Err(err(
            "JSON parser does not support UTF-16 or UTF-32".to_string()
        ));
    }
    let mut data = input.to_vec();
    data.push(0);
    let mut p = Parser {
        lua,
        data,
        ptr: 0,
        depth: 0,
    };
    let t = p.next_token();
    let v = p.value(t)?;
    let t = p.next_token();
    if t.tok != Tok::End {
        return Err(p.parse_error("the end", &t));
    }
    Ok(v)
}

pub fn install(lua: &Lua) -> Result<()> {
    let cjson: Table = lua.create_table()?;
    cjson.raw_set(
        "encode",
        lua.create_function(|lua, args: Variadic<Value>| {
            let v = one_arg(args, "encode")?;
            lua.create_string(encode(&v)?)
        })?,
    )?;
    cjson.raw_set(
        "decode",
        lua.create_function(|lua, args: Variadic<Value>| {
            let v = one_arg(args, "decode")?;
            let s = match &v {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone())? {
                    Some(s) => s.as_bytes().to_vec(),
                    None => Vec::new(),
                },
                _ => {
                    return Err(err(format!(
                        "bad argument #1 to 'decode' (string expected, got {})",
                        type_name(&v)
                    )));
                }
            };
            decode(lua, &s)
        })?,
    )?;
    cjson.raw_set("null", null())?;
    cjson.raw_set("_NAME", "cjson")?;
    cjson.raw_set("_VERSION", "2.1.0")?;
    lua.globals().raw_set("cjson", cjson)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(lua: &Lua, src: &str) -> String {
        let v: Value = lua.load(src).eval().unwrap();
        String::from_utf8(encode(&v).unwrap()).unwrap()
    }

    #[test]
    fn encodes_like_cjson() {
        let lua = Lua::new();
        install(&lua).unwrap();
        assert_eq!(enc(&lua, "{1,2,3}"), "[1,2,3]");
        assert_eq!(enc(&lua, "{}"), "{}");
        assert_eq!(enc(&lua, "0.1"), "0.1");
        assert_eq!(enc(&lua, "1e20"), "1e+20");
        assert_eq!(enc(&lua, "'a/\"\\\\\\n\\1'"), "\"a\\/\\\"\\\\\\n\\u0001\"");
        assert_eq!(enc(&lua, "{a={true,cjson.null}}"), "{\"a\":[true,null]}");
    }

    #[test]
    fn decodes_like_cjson() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let v = decode(&lua, br#"[1,"\u00e9\ud83d\ude00",null,{"k":false}]"#).unwrap();
        assert_eq!(
            String::from_utf8(encode(&v).unwrap()).unwrap(),
            "[1,\"\u{e9}\u{1F600}\",null,{\"k\":false}]"
        );
        let e = decode(&lua, b"x").unwrap_err().to_string();
        assert!(
            e.contains("Expected value but found invalid token at character 1"),
            "{e}"
        );
    }
}
