//! The `cmsgpack` library (lua-cmsgpack 0.4.0 semantics, as Redis ships
//! it): `pack(...)`, `unpack(s)`, `unpack_one(s [, offset])` and
//! `unpack_limit(s, limit [, offset])`.
//!
//! Encoding: a number that is an exact 64-bit integer takes the smallest
//! msgpack integer type, any other number is a float32 when that is
//! exact, else a float64; strings use the str types (fixstr, str8/16/32);
//! a table whose keys are exactly 1..n is an array (an empty table too),
//! any other one a map in `next` order; tables nested 16 deep, functions,
//! threads and userdata are nil.
//!
//! Decoding accepts every msgpack type except bin and ext. It keeps the
//! account of Lua stack slots lua-cmsgpack would use, so that too deep or
//! too many values fail with its "stack overflow" errors at the same
//! point; it is iterative, so deep input cannot exhaust the thread stack.

use mlua::{Function, Lua, Result, Table, Value};

use super::libs::{
    LuaArgs, MAX_C_STACK, Results, Walker, exact_value, lib_function, runtime_error, table_walker,
    unpositioned_error,
};

/// Tables nested this deep are encoded as nil.
const MAX_NESTING: usize = 16;

// ---------------------------------------------------------------- encoding

fn encode_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        match i {
            0..=0x7f => out.push(i as u8),
            0x80..=0xff => out.extend_from_slice(&[0xcc, i as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(i as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(i as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(i as u64).to_be_bytes());
            }
        }
    } else if i >= -32 {
        out.push(i as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    let as_int = super::libs::number_to_integer(n);
    if n.is_finite() && as_int as f64 == n {
        encode_int(as_int, out);
    } else if (n as f32) as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A header with a length: the fix form when it fits `fix_max`, else the
/// 8/16/32-bit forms whose type bytes are given (0 = no such form).
fn encode_len(len: usize, fix: u8, fix_max: usize, types: [u8; 3], out: &mut Vec<u8>) {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xff && types[0] != 0 {
        out.extend_from_slice(&[types[0], len as u8]);
    } else if len <= 0xffff {
        out.push(types[1]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(types[2]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// The length when the table is an array (keys exactly 1..n), with the
/// number of pairs either way.
fn array_len(walk: &Walker, level: usize, t: &Table) -> Result<(Option<usize>, usize)> {
    let (mut max, mut count, mut array) = (0f64, 0usize, true);
    walk.restart(level)?;
    while let Some((k, _)) = walk.next(t, level)? {
        count += 1;
        let k = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => {
                array = false;
                continue;
            }
        };
        if k >= 1.0 && k <= i32::MAX as f64 && k.trunc() == k {
            max = max.max(k);
        } else {
            array = false;
        }
    }
    let array = array && max == count as f64;
    Ok((array.then_some(count), count))
}

/// Encodes a table at nesting `level`, walking it in the walk slot of
/// that level.
fn encode_table(walk: &Walker, t: &Table, level: usize, out: &mut Vec<u8>) -> Result<()> {
    match array_len(walk, level, t)? {
        (Some(len), _) => {
            encode_len(len, 0x90, 15, [0, 0xdc, 0xdd], out);
            for i in 1..=len {
                let v = exact_value(t, &Value::Integer(i as i64), t.raw_get(i)?)?;
                encode_value(walk, &v, level + 1, out)?;
            }
        }
        (None, count) => {
            encode_len(count, 0x80, 15, [0, 0xde, 0xdf], out);
            walk.restart(level)?;
            while let Some((k, v)) = walk.next(t, level)? {
                encode_value(walk, &k, level + 1, out)?;
                encode_value(walk, &v, level + 1, out)?;
            }
        }
    }
    Ok(())
}

fn encode_value(walk: &Walker, v: &Value, level: usize, out: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::String(s) => {
            let s = s.as_bytes();
            encode_len(s.len(), 0xa0, 31, [0xd9, 0xda, 0xdb], out);
            out.extend_from_slice(&s);
        }
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(*i, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < MAX_NESTING => encode_table(walk, t, level, out)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

/// `cmsgpack.pack`: the arguments encoded one after the other.
fn pack(args: &LuaArgs<'_>, step: &Function) -> Result<Vec<u8>> {
    if args.is_empty() {
        return Err(args.arg_error(0, "MessagePack pack needs input."));
    }
    // lua-cmsgpack wants stack room for as many values again.
    if 2 * args.len() > MAX_C_STACK {
        return Err(args.arg_error(0, "Too many arguments for MessagePack pack."));
    }
    let walk = Walker::new(args.lua, step)?;
    let mut out = Vec::new();
    for i in 1..=args.len() {
        encode_value(&walk, &args.get(i)?.unwrap_or(Value::Nil), 0, &mut out)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------- decoding

enum Fail {
    /// The input ends inside a value.
    Eof,
    /// A type byte msgpack does not define or this library does not read.
    BadFormat,
    /// An error raised as is (stack overflow, bad table key).
    Raise(mlua::Error),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Fail {
        Fail::Raise(e)
    }
}

/// A container being filled. Its table lives in the decoder's Lua-side
/// `open` table (and a map's pending key in `keys`), so that deep input
/// holds no Rust references to Lua values, which mlua has a bounded
/// number of.
struct Frame {
    array: bool,
    /// Items (array elements or map pairs) still to read.
    left: usize,
    /// Next array index.
    next: usize,
    /// A map's key is read and waits for its value.
    has_key: bool,
}

impl Frame {
    /// The Lua stack slots lua-cmsgpack holds for the container while it
    /// decodes its next item: the table, and the index or the key.
    fn slots(&self) -> usize {
        if self.array {
            2
        } else {
            1 + self.has_key as usize
        }
    }
}

/// What a type byte starts.
enum Item {
    Value(Value),
    Array(usize),
    Map(usize),
}

struct Decoder<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    /// Stack slots in use below the value being decoded: the call's
    /// arguments, the values already decoded, the open containers'.
    slots: usize,
    frames: Vec<Frame>,
    open: Table,
    keys: Table,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], Fail> {
        if self.data.len() - self.pos < n {
            return Err(Fail::Eof);
        }
        self.pos += n;
        Ok(&self.data[self.pos - n..self.pos])
    }

    fn be(&mut self, n: usize) -> std::result::Result<u64, Fail> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn string(&mut self, len: usize) -> std::result::Result<Item, Fail> {
        let s = self.lua.create_string(self.take(len)?)?;
        Ok(Item::Value(Value::String(s)))
    }

    fn item(&mut self) -> std::result::Result<Item, Fail> {
        let t = self.take(1)?[0];
        let int = |i: i64| Ok(Item::Value(Value::Integer(i)));
        match t {
            0x00..=0x7f => int(t as i64),
            0xe0..=0xff => int(t as i8 as i64),
            0x80..=0x8f => Ok(Item::Map((t & 0x0f) as usize)),
            0x90..=0x9f => Ok(Item::Array((t & 0x0f) as usize)),
            0xa0..=0xbf => self.string((t & 0x1f) as usize),
            0xc0 => Ok(Item::Value(Value::Nil)),
            0xc2 => Ok(Item::Value(Value::Boolean(false))),
            0xc3 => Ok(Item::Value(Value::Boolean(true))),
            0xca => {
                let f = f32::from_bits(self.be(4)? as u32);
                Ok(Item::Value(Value::Number(f as f64)))
            }
            0xcb => Ok(Item::Value(Value::Number(f64::from_bits(self.be(8)?)))),
            0xcc => int(self.be(1)? as i64),
            0xcd => int(self.be(2)? as i64),
            0xce => int(self.be(4)? as i64),
            // lua-cmsgpack hands a uint64 to Lua through a signed integer.
            0xcf => int(self.be(8)? as i64),
            0xd0 => int(self.be(1)? as i8 as i64),
            0xd1 => int(self.be(2)? as i16 as i64),
            0xd2 => int(self.be(4)? as i32 as i64),
            0xd3 => int(self.be(8)? as i64),
            0xd9 => {
                let n = self.be(1)? as usize;
                self.string(n)
            }
            0xda => {
                let n = self.be(2)? as usize;
                self.string(n)
            }
            0xdb => {
                let n = self.be(4)? as usize;
                self.string(n)
            }
            0xdc => Ok(Item::Array(self.be(2)? as usize)),
            0xdd => Ok(Item::Array(self.be(4)? as usize)),
            0xde => Ok(Item::Map(self.be(2)? as usize)),
            0xdf => Ok(Item::Map(self.be(4)? as usize)),
            _ => Err(Fail::BadFormat),
        }
    }

    /// One complete value, containers included.
    fn value(&mut self) -> std::result::Result<Value, Fail> {
        loop {
            let (array, len) = match self.item()? {
                Item::Value(v) => match self.close(v)? {
                    Some(v) => return Ok(v),
                    None => continue,
                },
                Item::Array(n) => (true, n),
                Item::Map(n) => (false, n),
            };
            if self.slots + 3 > MAX_C_STACK {
                // lua-cmsgpack's map decoder reports its overflow with
                // the top-level "too many return values" text.
                return Err(Fail::Raise(if array {
                    runtime_error("stack overflow (in function mp_decode_to_lua_array)")
                } else {
                    too_many_results(false)
                }));
            }
            // A plain new table, as lua-cmsgpack makes: presizing would
            // change the order `next` later walks a map in.
            let table = self.lua.create_table()?;
            if len == 0 {
                match self.close(Value::Table(table))? {
                    Some(v) => return Ok(v),
                    None => continue,
                }
            }
            let frame = Frame {
                array,
                left: len,
                next: 1,
                has_key: false,
            };
            self.slots += frame.slots();
            self.frames.push(frame);
            self.open.raw_set(self.frames.len(), table)?;
        }
    }

    /// Hands a finished value to its container, closing each container it
    /// completes: Some(value) once the outermost one is done.
    fn close(&mut self, mut done: Value) -> Result<Option<Value>> {
        loop {
            let depth = self.frames.len();
            let Some(frame) = self.frames.last_mut() else {
                return Ok(Some(done));
            };
            let table: Table = self.open.raw_get(depth)?;
            if frame.array {
                table.raw_set(frame.next, done)?;
                frame.next += 1;
            } else if frame.has_key {
                // Read back exactly: a number key may be tiny or -0.
                let slot = Value::Integer(depth as i64);
                let key = exact_value(&self.keys, &slot, self.keys.raw_get(depth)?)?;
                self.keys.raw_set(depth, Value::Nil)?;
                frame.has_key = false;
                self.slots -= 1;
                set_field(&table, key, done)?;
            } else {
                self.keys.raw_set(depth, done)?;
                frame.has_key = true;
                self.slots += 1;
                return Ok(None);
            }
            frame.left -= 1;
            if frame.left > 0 {
                return Ok(None);
            }
            self.slots -= frame.slots();
            self.frames.pop();
            self.open.raw_set(depth, Value::Nil)?;
            done = Value::Table(table);
        }
    }
}

/// `lua_settable` from C: a nil or NaN key is an error without position.
fn set_field(t: &Table, k: Value, v: Value) -> Result<()> {
    let bad = match &k {
        Value::Nil => Some("nil"),
        Value::Number(n) if n.is_nan() => Some("NaN"),
        _ => None,
    };
    if let Some(what) = bad {
        return Err(unpositioned_error(format!("table index is {what}")));
    }
    t.raw_set(k, v)
}

/// The stack overflow lua-cmsgpack raises when the results do not fit.
fn too_many_results(limited: bool) -> mlua::Error {
    runtime_error(if limited {
        "stack overflow (in function mp_unpack_full)"
    } else {
        "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
    })
}

/// `limit` None decodes everything and returns only the values; else at
/// most `limit` values preceded by the next offset (-1 at the end).
/// `base_slots` is the stack the call starts with: all its arguments for
/// `unpack`, one for the others, which drop the rest. Returns the values
/// for [`Results::Spread`].
fn unpack_full(
    lua: &Lua,
    data: &[u8],
    limit: Option<i64>,
    offset: i64,
    base_slots: usize,
) -> Result<(Table, usize, bool)> {
    let len = data.len() as i64;
    // The checks use the full integers, the messages print C ints.
    if offset < 0 || limit.is_some_and(|l| l < 0) {
        return Err(runtime_error(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    }
    if offset > len {
        return Err(runtime_error(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let out = lua.create_table()?;
    let mut d = Decoder {
        lua,
        data,
        pos: offset as usize,
        slots: base_slots,
        frames: Vec::new(),
        open: lua.create_table()?,
        keys: lua.create_table()?,
    };
    // In limit mode the first result is the offset.
    let first = limit.is_some() as usize;
    let mut count = 0usize;
    let max = limit.unwrap_or(i64::MAX);
    while d.pos < data.len() && (count as i64) < max {
        if d.slots + 1 > MAX_C_STACK {
            return Err(too_many_results(false));
        }
        match d.value() {
            Ok(v) => out.raw_set(first + count + 1, v)?,
            Err(Fail::Eof) => return Err(runtime_error("Missing bytes in input.")),
            Err(Fail::BadFormat) => return Err(runtime_error("Bad data format in input.")),
            Err(Fail::Raise(e)) => return Err(e),
        }
        count += 1;
        d.slots += 1;
    }
    if limit.is_some() {
        // Room for the offset.
        if d.slots + 1 > MAX_C_STACK {
            return Err(too_many_results(true));
        }
        let next = if d.pos == data.len() {
            -1
        } else {
            d.pos as i64
        };
        out.raw_set(1, next)?;
    }
    // Only `unpack` keeps its arguments under the results.
    Ok((out, first + count, base_slots > 1))
}

type Unpacker = fn(&LuaArgs<'_>) -> Result<(Table, usize, bool)>;

pub fn install(lua: &Lua) -> Result<()> {
    let m = lua.create_table()?;
    let step = table_walker(lua)?;
    let pack_fn = lib_function(lua, Results::Direct, move |args| {
        args.lua.create_string(pack(args, &step)?)
    })?;
    m.raw_set("pack", pack_fn)?;
    let unpack: Unpacker = |args| {
        let s = args.string(1)?;
        unpack_full(args.lua, &s.as_bytes(), None, 0, args.len())
    };
    // The numbers are read before the string, as lua-cmsgpack does.
    let unpack_one: Unpacker = |args| {
        let offset = args.opt_integer(2, 0)?;
        let s = args.string(1)?;
        unpack_full(args.lua, &s.as_bytes(), Some(1), offset, 1)
    };
    let unpack_limit: Unpacker = |args| {
        let limit = args.integer(2)?;
        let offset = args.opt_integer(3, 0)?;
        let s = args.string(1)?;
        // A limit of 0 means no limit (and no offset returned).
        let limit = (limit != 0).then_some(limit);
        unpack_full(args.lua, &s.as_bytes(), limit, offset, 1)
    };
    for (name, f) in [
        ("unpack", unpack),
        ("unpack_one", unpack_one),
        ("unpack_limit", unpack_limit),
    ] {
        m.raw_set(name, lib_function(lua, Results::Spread, f)?)?;
    }
    m.raw_set("_NAME", "cmsgpack")?;
    m.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    m.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    m.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    lua.globals().raw_set("cmsgpack", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(lua: &Lua, src: &str) -> Vec<u8> {
        let v: mlua::MultiValue = lua.load(src).eval().unwrap();
        let walk = Walker::new(lua, &table_walker(lua).unwrap()).unwrap();
        let mut out = Vec::new();
        for v in v {
            encode_value(&walk, &v, 0, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn integers_take_the_smallest_type() {
        let lua = Lua::new();
        assert_eq!(
            packed(&lua, "return 0, 127, 128, -32, -33"),
            [0x00, 0x7f, 0xcc, 0x80, 0xe0, 0xd0, 0xdf]
        );
        assert_eq!(packed(&lua, "return 65536")[0], 0xce);
        assert_eq!(packed(&lua, "return 2^53")[0], 0xcf);
        assert_eq!(packed(&lua, "return -2^31 - 1")[0], 0xd3);
    }

    #[test]
    fn floats_tables_and_nesting() {
        let lua = Lua::new();
        assert_eq!(packed(&lua, "return 0.5"), [0xca, 0x3f, 0, 0, 0]);
        assert_eq!(packed(&lua, "return 0.1")[0], 0xcb);
        assert_eq!(packed(&lua, "return {}, {1, 2}"), [0x90, 0x92, 1, 2]);
        assert_eq!(packed(&lua, "return {1, nil, 3}"), [0x82, 1, 1, 3, 3]);
        let deep = packed(
            &lua,
            "local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return t",
        );
        assert_eq!(deep, [&[0x91u8; 16][..], &[0xc0]].concat());
    }

    #[test]
    fn decodes_round_trips() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let ok: bool = lua
            .load(
                r#"
                local s = cmsgpack.pack({1, {a = "x"}, 2.5, -70000}, true)
                local t, b = cmsgpack.unpack(s)
                return b == true and t[2].a == "x" and t[3] == 2.5 and t[4] == -70000
                "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
        let e = lua
            .load("return cmsgpack.unpack('\\205\\1')")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("Missing bytes in input."), "{e}");
    }
}
