//! The `cjson` library (lua-cjson 2.1.0 semantics, as Redis ships it):
//! `cjson.encode`, `cjson.decode`, the `cjson.null` sentinel (a NULL
//! lightuserdata), the configuration functions and `cjson.new()`, which
//! makes an instance with its own configuration. The configuration lives
//! as long as the VM, so a change persists across scripts (as in Redis)
//! until SCRIPT FLUSH rebuilds the VM.
//!
//! Encoding: numbers as `%.<precision>g` (14 by default; NaN/Inf refused,
//! or written as `nan`/`inf` or `null` as configured), strings escaped
//! with cjson's table (`/` as `\/`, DEL and control bytes as `\u00XX`), a
//! table whose keys are all positive integers as an array (holes as
//! `null`; "excessively sparse" ones refused or made objects), any other
//! table as an object, an empty table as `{}`. Decoding: strict JSON with
//! cjson's extensions (numbers through `strtod`, so `inf`/`nan`/hex are
//! accepted unless configured off) and its error messages.
//!
//! Both directions are iterative, with the tables being built or walked
//! kept on the Lua side: nesting is bounded by the configured depth and,
//! as in Redis, by the Lua stack (about 8000 arrays or 4000 objects deep).

use std::sync::Arc;

use mlua::{Function, LightUserData, Lua, Result, Table, Value};
use parking_lot::Mutex;

use super::libs::{LuaArgs, MAX_C_STACK, Results, Walker, exact_value, lib_function, table_walker};

fn err(msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(msg)
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// One instance's settings (lua-cjson's defaults).
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0: refused, 1: written as nan/inf, 2: written as null.
    encode_invalid_numbers: i32,
    decode_invalid_numbers: i32,
    /// Only a memory strategy in cjson: stored and reported.
    keep_buffer: i32,
    precision: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            keep_buffer: 1,
            precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// Lua 5.1's `lua_typename` for a value.
fn type_name(v: &Value) -> &'static str {
    super::libs::type_name(Some(v))
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

/// `%.<precision>g`, as cjson's `fpconv_g_fmt`.
fn fmt_g(n: f64, precision: i32, out: &mut Vec<u8>) {
    let mut buf = [0u8; 64];
    // SAFETY: the format consumes an int and a double; the buffer length
    // bounds the write.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.*g".as_ptr(),
            precision as libc::c_int,
            n,
        )
    };
    out.extend_from_slice(&buf[..(len.max(0) as usize).min(buf.len() - 1)]);
}

fn append_number(cfg: &Config, v: &Value, n: f64, out: &mut Vec<u8>) -> Result<()> {
    match cfg.encode_invalid_numbers {
        _ if n.is_finite() => fmt_g(n, cfg.precision, out),
        0 => return Err(exception(v, "must not be NaN or Inf")),
        2 => out.extend_from_slice(b"null"),
        // NaN's sign is not written.
        _ if n.is_nan() => out.extend_from_slice(b"nan"),
        _ => fmt_g(n, cfg.precision, out),
    }
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

/// C's double -> int conversion on x86-64 (out of range: INT_MIN).
fn c_int(k: f64) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&k) {
        k as i32
    } else {
        i32::MIN
    }
}

/// cjson's `lua_array_length`: the array length when every key is a
/// positive integer, else 0 or less (an object). The running maximum is a
/// C int, so a huge key makes it negative as in cjson.
fn array_length(cfg: &Config, walk: &Walker, slot: usize, t: &Table, v: &Value) -> Result<i32> {
    let mut max: i32 = 0;
    let mut items: i32 = 0;
    walk.restart(slot)?;
    while let Some((k, _)) = walk.next(t, slot)? {
        match as_number(&k) {
            Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                if k > max as f64 {
                    max = c_int(k);
                }
                items = items.wrapping_add(1);
            }
            _ => return Ok(-1),
        }
    }
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Err(exception(v, "excessively sparse array"));
        }
        return Ok(-1);
    }
    Ok(max)
}

/// An open table while encoding; the table is `open[depth]`, an object's
/// last key `keys[depth]`.
#[derive(Clone, Copy)]
enum EFrame {
    Array { len: i64, next: i64 },
    Object { first: bool },
}

struct Encoder {
    cfg: Config,
    out: Vec<u8>,
    frames: Vec<EFrame>,
    /// Lua stack slots cjson would use: the argument, an element per open
    /// array, a key and a value per open object.
    slots: usize,
    open: Table,
    /// Walks the open objects, slot = depth.
    walk: Walker,
}

impl Encoder {
    /// Writes a scalar, or opens a table.
    fn value(&mut self, v: Value) -> Result<()> {
        match &v {
            Value::String(s) => append_string(&s.as_bytes(), &mut self.out),
            Value::Integer(i) => append_number(&self.cfg, &v, *i as f64, &mut self.out)?,
            Value::Number(n) => append_number(&self.cfg, &v, *n, &mut self.out)?,
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => {
                let depth = self.frames.len() + 1;
                if depth > self.cfg.encode_max_depth as usize || self.slots + 3 > MAX_C_STACK {
                    return Err(err(format!(
                        "Cannot serialise, excessive nesting ({depth})"
                    )));
                }
                let len = array_length(&self.cfg, &self.walk, depth, t, &v)?;
                self.open.raw_set(depth, t)?;
                let frame = if len > 0 {
                    self.out.push(b'[');
                    self.slots += 1;
                    EFrame::Array {
                        len: len as i64,
                        next: 1,
                    }
                } else {
                    self.out.push(b'{');
                    self.slots += 2;
                    self.walk.restart(depth)?;
                    EFrame::Object { first: true }
                };
                self.frames.push(frame);
            }
            _ => return Err(exception(&v, "type not supported")),
        }
        Ok(())
    }

    fn key(&mut self, k: &Value) -> Result<()> {
        match k {
            Value::String(s) => append_string(&s.as_bytes(), &mut self.out),
            Value::Integer(_) | Value::Number(_) => {
                self.out.push(b'"');
                let n = as_number(k).unwrap_or(0.0);
                append_number(&self.cfg, k, n, &mut self.out)?;
                self.out.push(b'"');
            }
            _ => return Err(exception(k, "table key must be a number or string")),
        }
        Ok(())
    }

    fn close(&mut self, array: bool) -> Result<()> {
        self.out.push(if array { b']' } else { b'}' });
        self.slots -= if array { 1 } else { 2 };
        let depth = self.frames.len();
        self.open.raw_set(depth, Value::Nil)?;
        self.walk.restart(depth)?;
        self.frames.pop();
        Ok(())
    }

    fn encode(mut self, v: Value) -> Result<Vec<u8>> {
        self.value(v)?;
        while let Some(&frame) = self.frames.last() {
            let depth = self.frames.len();
            let t: Table = self.open.raw_get(depth)?;
            match frame {
                EFrame::Array { len, next } => {
                    if next > len {
                        self.close(true)?;
                        continue;
                    }
                    self.frames[depth - 1] = EFrame::Array {
                        len,
                        next: next + 1,
                    };
                    if next > 1 {
                        self.out.push(b',');
                    }
                    let v = exact_value(&t, &Value::Integer(next), t.raw_get(next)?)?;
                    self.value(v)?;
                }
                EFrame::Object { first } => {
                    let Some((k, v)) = self.walk.next(&t, depth)? else {
                        self.close(false)?;
                        continue;
                    };
                    self.frames[depth - 1] = EFrame::Object { first: false };
                    if !first {
                        self.out.push(b',');
                    }
                    self.key(&k)?;
                    self.out.push(b':');
                    self.value(v)?;
                }
            }
        }
        Ok(self.out)
    }
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

/// An open container while decoding: its table is `open[depth]` (and an
/// object's pending key `keys[depth]`) on the Lua side, so that deep input
/// holds few mlua references.
struct DFrame {
    array: bool,
    next: i64,
}

struct Parser<'a> {
    lua: &'a Lua,
    /// The input with a NUL terminator (cjson stops at the first NUL).
    data: Vec<u8>,
    ptr: usize,
    max_depth: i32,
    invalid_numbers: bool,
    frames: Vec<DFrame>,
    /// Lua stack slots cjson would use: the argument, each open array's
    /// table, each open object's table and key.
    slots: usize,
    open: Table,
    keys: Table,
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
        let numeric = c == b'-' || c.is_ascii_digit();
        if numeric && !self.invalid_numbers && self.is_invalid_number() {
            return self.token(Tok::Error("invalid number"), index);
        }
        // With invalid numbers allowed, strtod also reads inf, nan, hex.
        if numeric
            || (self.invalid_numbers
                && !rest.starts_with(b"true")
                && !rest.starts_with(b"false")
                && !rest.starts_with(b"null")
                && self.is_invalid_number())
        {
            let mut end: *mut libc::c_char = std::ptr::null_mut();
            // SAFETY: `c`, the byte at `ptr`, is not 0 (0 returned
            // `Tok::End` above, and `at` gives 0 past the end), so `ptr` is
            // inside `data` and the offset stays in the allocation.
            let start = unsafe { self.data.as_ptr().add(self.ptr) } as *const libc::c_char;
            // SAFETY: `data` ends with the NUL `decode_with` appended, so
            // strtod stops inside it; `end` is set to a pointer between
            // `start` and that NUL, and nothing else is written.
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

    /// Opens a container needing `slots` Lua stack slots, as cjson's
    /// `json_decode_descend` checks them.
    fn descend(&mut self, array: bool) -> Result<Table> {
        let depth = self.frames.len() + 1;
        let need = if array { 2 } else { 3 };
        if depth > self.max_depth.max(0) as usize || self.slots + need > MAX_C_STACK {
            return Err(err(format!(
                "Found too many nested data structures ({depth}) at character {}",
                self.ptr
            )));
        }
        self.lua.create_table()
    }

    fn push_frame(&mut self, array: bool, table: Table) -> Result<()> {
        self.frames.push(DFrame { array, next: 1 });
        self.slots += if array { 1 } else { 2 };
        self.open.raw_set(self.frames.len(), table)
    }

    /// Reads `"key":` into the open object's pending key; returns the
    /// token starting its value.
    fn object_key(&mut self, t: Token) -> Result<Token> {
        if t.tok != Tok::Str {
            return Err(self.parse_error("object key string", &t));
        }
        let key = self.lua.create_string(&t.string)?;
        self.keys.raw_set(self.frames.len(), key)?;
        let t = self.next_token();
        if t.tok != Tok::Colon {
            return Err(self.parse_error("colon", &t));
        }
        Ok(self.next_token())
    }

    /// A whole value starting with token `t`.
    fn parse(&mut self, mut t: Token) -> Result<Value> {
        loop {
            let mut done = match t.tok {
                Tok::Str => Value::String(self.lua.create_string(&t.string)?),
                Tok::Num => Value::Number(t.number),
                Tok::Bool => Value::Boolean(t.boolean),
                Tok::Null => null(),
                Tok::ObjBegin | Tok::ArrBegin => {
                    let array = t.tok == Tok::ArrBegin;
                    let table = self.descend(array)?;
                    let next = self.next_token();
                    let end = if array { Tok::ArrEnd } else { Tok::ObjEnd };
                    if next.tok == end {
                        Value::Table(table)
                    } else {
                        self.push_frame(array, table)?;
                        t = if array { next } else { self.object_key(next)? };
                        continue;
                    }
                }
                _ => return Err(self.parse_error("value", &t)),
            };
            // Store the value in its container, closing each container
            // it completes.
            loop {
                let depth = self.frames.len();
                let Some(frame) = self.frames.last_mut() else {
                    return Ok(done);
                };
                let array = frame.array;
                let table: Table = self.open.raw_get(depth)?;
                if array {
                    table.raw_set(frame.next, done)?;
                    frame.next += 1;
                } else {
                    let key: Value = self.keys.raw_get(depth)?;
                    table.raw_set(key, done)?;
                }
                let sep = self.next_token();
                let end = if array { Tok::ArrEnd } else { Tok::ObjEnd };
                if sep.tok == end {
                    self.frames.pop();
                    self.slots -= if array { 1 } else { 2 };
                    self.open.raw_set(depth, Value::Nil)?;
                    self.keys.raw_set(depth, Value::Nil)?;
                    done = Value::Table(table);
                    continue;
                }
                if sep.tok != Tok::Comma {
                    let what = if array {
                        "comma or array end"
                    } else {
                        "comma or object end"
                    };
                    return Err(self.parse_error(what, &sep));
                }
                let next = self.next_token();
                t = if array { next } else { self.object_key(next)? };
                break;
            }
        }
    }
}

fn encode_with(lua: &Lua, cfg: Config, step: &Function, v: Value) -> Result<Vec<u8>> {
    Encoder {
        cfg,
        out: Vec::new(),
        frames: Vec::new(),
        slots: 1,
        open: lua.create_table()?,
        walk: Walker::new(lua, step)?,
    }
    .encode(v)
}

fn decode_with(lua: &Lua, cfg: Config, input: &[u8]) -> Result<Value> {
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
        max_depth: cfg.decode_max_depth,
        invalid_numbers: cfg.decode_invalid_numbers != 0,
        frames: Vec::new(),
        slots: 1,
        open: lua.create_table()?,
        keys: lua.create_table()?,
    };
    let t = p.next_token();
    let v = p.parse(t)?;
    let t = p.next_token();
    if t.tok != Tok::End {
        return Err(p.parse_error("the end", &t));
    }
    Ok(v)
}

/// cjson's `json_arg_init`: at most `max` arguments.
fn check_max_args(a: &LuaArgs<'_>, max: usize) -> Result<()> {
    if a.len() > max {
        return Err(a.arg_error(max + 1, "found too many arguments"));
    }
    Ok(())
}

/// cjson's `json_enum_option`: a boolean, or one of `options` by name
/// (the first two meaning false and true). Returns the setting as a
/// boolean when it is one, else by name.
fn enum_option(a: &LuaArgs<'_>, narg: usize, setting: &mut i32, options: &[&str]) -> Result<Value> {
    match a.get(narg)? {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = b as i32,
        Some(_) => {
            let name = a.string(narg)?;
            let name = name.as_bytes();
            match options.iter().position(|o| o.as_bytes() == &name[..]) {
                Some(i) => *setting = i as i32,
                None => {
                    let shown = String::from_utf8_lossy(&name).into_owned();
                    return Err(a.arg_error(narg, &format!("invalid option '{shown}'")));
                }
            }
        }
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        s => Value::String(a.lua.create_string(options[s as usize])?),
    })
}

/// cjson's `json_integer_option` (a C int; its range error always names
/// argument #1).
fn integer_option(
    a: &LuaArgs<'_>,
    narg: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> Result<i64> {
    if !matches!(a.get(narg)?, None | Some(Value::Nil)) {
        let value = a.integer(narg)? as i32;
        if !(min..=max).contains(&value) {
            return Err(a.arg_error(1, &format!("expected integer between {min} and {max}")));
        }
        *setting = value;
    }
    Ok(*setting as i64)
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

type ConfigFn = fn(&LuaArgs<'_>, &mut Config) -> Result<Vec<Value>>;

const CONFIG_FNS: &[(&str, ConfigFn)] = &[
    ("encode_sparse_array", |a, c| {
        check_max_args(a, 3)?;
        let mut convert = c.sparse_convert as i32;
        let convert = enum_option(a, 1, &mut convert, BOOL_OPTIONS).map(|v| {
            c.sparse_convert = matches!(v, Value::Boolean(true));
            v
        })?;
        let ratio = integer_option(a, 2, &mut c.sparse_ratio, 0, i32::MAX)?;
        let safe = integer_option(a, 3, &mut c.sparse_safe, 0, i32::MAX)?;
        Ok(vec![convert, Value::Integer(ratio), Value::Integer(safe)])
    }),
    ("encode_max_depth", |a, c| {
        check_max_args(a, 1)?;
        let v = integer_option(a, 1, &mut c.encode_max_depth, 1, i32::MAX)?;
        Ok(vec![Value::Integer(v)])
    }),
    ("decode_max_depth", |a, c| {
        check_max_args(a, 1)?;
        let v = integer_option(a, 1, &mut c.decode_max_depth, 1, i32::MAX)?;
        Ok(vec![Value::Integer(v)])
    }),
    ("encode_number_precision", |a, c| {
        check_max_args(a, 1)?;
        let v = integer_option(a, 1, &mut c.precision, 1, 14)?;
        Ok(vec![Value::Integer(v)])
    }),
    ("encode_keep_buffer", |a, c| {
        check_max_args(a, 1)?;
        Ok(vec![enum_option(a, 1, &mut c.keep_buffer, BOOL_OPTIONS)?])
    }),
    ("encode_invalid_numbers", |a, c| {
        check_max_args(a, 1)?;
        let options = &["off", "on", "null"];
        Ok(vec![enum_option(
            a,
            1,
            &mut c.encode_invalid_numbers,
            options,
        )?])
    }),
    ("decode_invalid_numbers", |a, c| {
        check_max_args(a, 1)?;
        let options = BOOL_OPTIONS;
        Ok(vec![enum_option(
            a,
            1,
            &mut c.decode_invalid_numbers,
            options,
        )?])
    }),
];

/// A library function with access to its instance's configuration.
fn lib_fn<R: mlua::IntoLuaMulti>(
    lua: &Lua,
    cfg: &Shared,
    f: impl Fn(&LuaArgs<'_>, &Shared) -> Result<R> + Send + 'static,
) -> Result<Function> {
    let cfg = cfg.clone();
    lib_function(lua, Results::Direct, move |a| f(a, &cfg))
}

/// A cjson instance: the module table with its own configuration.
fn instance(lua: &Lua) -> Result<(Table, Shared)> {
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    let cjson = lua.create_table()?;
    let next = table_walker(lua)?;
    cjson.raw_set(
        "encode",
        lib_fn(lua, &cfg, move |a, cfg| {
            if a.len() != 1 {
                return Err(a.arg_error(1, "expected 1 argument"));
            }
            let v = a.get(1)?.unwrap_or(Value::Nil);
            let c = *cfg.lock();
            a.lua.create_string(encode_with(a.lua, c, &next, v)?)
        })?,
    )?;
    cjson.raw_set(
        "decode",
        lib_fn(lua, &cfg, |a, cfg| {
            if a.len() != 1 {
                return Err(a.arg_error(1, "expected 1 argument"));
            }
            let s = a.string(1)?;
            let c = *cfg.lock();
            decode_with(a.lua, c, &s.as_bytes())
        })?,
    )?;
    for &(name, f) in CONFIG_FNS {
        cjson.raw_set(
            name,
            lib_fn(lua, &cfg, move |a, cfg| {
                // Work on a copy: a failed call changes nothing it had
                // not already set, as in cjson, which sets as it goes.
                let mut c = *cfg.lock();
                let r = f(a, &mut c);
                *cfg.lock() = c;
                r.map(mlua::MultiValue::from_iter)
            })?,
        )?;
    }
    cjson.raw_set(
        "new",
        lua.create_function(|lua, _: mlua::MultiValue| Ok(instance(lua)?.0))?,
    )?;
    cjson.raw_set("null", null())?;
    cjson.raw_set("_NAME", "cjson")?;
    cjson.raw_set("_VERSION", "2.1.0")?;
    Ok((cjson, cfg))
}

/// The global instance's configuration, kept to reset it.
struct GlobalConfig(Shared);

pub fn install(lua: &Lua) -> Result<()> {
    let (cjson, cfg) = instance(lua)?;
    lua.set_app_data(GlobalConfig(cfg));
    lua.globals().raw_set("cjson", cjson)
}

/// Back to the default configuration, as the fresh VM Redis makes on
/// SCRIPT FLUSH has.
pub fn reset(lua: &Lua) {
    if let Some(g) = lua.app_data_ref::<GlobalConfig>() {
        *g.0.lock() = Config::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(lua: &Lua, src: &str) -> String {
        let v: Value = lua.load(src).eval().unwrap();
        let next = table_walker(lua).unwrap();
        String::from_utf8(encode_with(lua, Config::default(), &next, v).unwrap()).unwrap()
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
        assert_eq!(enc(&lua, "{[2]=2}"), "[null,2]");
    }

    #[test]
    fn decodes_like_cjson() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let cfg = Config::default();
        let v = decode_with(&lua, cfg, br#"[1,"\u00e9\ud83d\ude00",null,{"k":false}]"#).unwrap();
        let next = table_walker(&lua).unwrap();
        assert_eq!(
            String::from_utf8(encode_with(&lua, cfg, &next, v).unwrap()).unwrap(),
            "[1,\"\u{e9}\u{1F600}\",null,{\"k\":false}]"
        );
        let e = decode_with(&lua, cfg, b"x").unwrap_err().to_string();
        assert!(
            e.contains("Expected value but found invalid token at character 1"),
            "{e}"
        );
    }

    #[test]
    fn configuration_is_per_instance_and_checked() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let r: (i64, i64, String) = lua
            .load(
                "local c = cjson.new() c.encode_max_depth(3) \
                 return c.encode_max_depth(), cjson.encode_max_depth(), \
                 cjson.encode_invalid_numbers('null')",
            )
            .eval()
            .unwrap();
        assert_eq!(r, (3, 1000, "null".to_string()));
        let s: String = lua.load("return cjson.encode({0/0})").eval().unwrap();
        assert_eq!(s, "[null]");
    }
}
