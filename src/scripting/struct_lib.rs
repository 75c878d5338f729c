//! The `struct` library (Roberto Ierusalimschy's struct 0.2 semantics, as
//! Redis ships it): `struct.pack(fmt, ...)`, `struct.unpack(fmt, s [,
//! pos])` and `struct.size(fmt)`.
//!
//! Format letters: `<` / `>` little / big endian (little by default), `!n`
//! maximum alignment (1 by default, `!` alone 8), `x` a zero byte, `b B`
//! char, `h H` short, `l L` long (8 bytes), `T` size_t (8), `i[n] I[n]`
//! an n-byte integer (4 by default, at most 32), `f` float, `d` double,
//! `s` a zero-terminated string, `c[n]` n bytes (`c0`: the whole string
//! when packing, a size taken from the previous result when unpacking),
//! spaces ignored. An item is aligned to the smaller of its size and the
//! maximum alignment (with the library's power-of-two arithmetic even for
//! odd sizes). The format stops at a NUL byte.
//!
//! Integers go through 64 bits as the C library does on x86-64: wider
//! fields are zero-extended when packed and only their low 64 bits are
//! read; conversions of out-of-range numbers follow the hardware.

use mlua::{Lua, Result, Table, Value};

use super::libs::{
    LuaArgs, MAX_C_STACK, Results, lib_function, number_to_integer, runtime_error, to_number,
};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Header {
    big: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            big: false,
            align: 1,
        }
    }
}

/// A format string being read, up to its end or first NUL.
struct Format<'a> {
    fmt: &'a [u8],
    pos: usize,
}

impl Format<'_> {
    fn new(fmt: &[u8]) -> Format<'_> {
        let end = fmt.iter().position(|&b| b == 0).unwrap_or(fmt.len());
        Format {
            fmt: &fmt[..end],
            pos: 0,
        }
    }

    fn next(&mut self) -> Option<u8> {
        let c = *self.fmt.get(self.pos)?;
        self.pos += 1;
        Some(c)
    }

    /// The decimal number at the cursor (an int), or `default` if none.
    fn number(&mut self, default: usize) -> Result<usize> {
        if !self.fmt.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let max = i32::MAX as usize;
        let mut a = 0usize;
        while let Some(&c) = self.fmt.get(self.pos).filter(|c| c.is_ascii_digit()) {
            let d = (c - b'0') as usize;
            if a > max / 10 || a * 10 > max - d {
                return Err(runtime_error("integral size overflow"));
            }
            a = a * 10 + d;
            self.pos += 1;
        }
        Ok(a)
    }

    /// The size of an option, reading its digits (`c`, `i`, `I`).
    fn size(&mut self, opt: u8) -> Result<usize> {
        Ok(match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(runtime_error(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size
            }
            _ => 0,
        })
    }

    /// Endianness, alignment and spaces; anything else is an error.
    fn control(&mut self, args: &LuaArgs<'_>, opt: u8, h: &mut Header) -> Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.big = true,
            b'<' => h.big = false,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if a == 0 || a & (a - 1) != 0 {
                    return Err(runtime_error(format!("alignment {a} is not a power of 2")));
                }
                h.align = a;
            }
            _ => {
                let c = String::from_utf8_lossy(&[opt]).into_owned();
                return Err(args.arg_error(1, &format!("invalid format option '{c}'")));
            }
        }
        Ok(())
    }
}

/// Padding before an item of `size` at offset `len` (the library's
/// formula, which assumes a power-of-two size).
fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
}

/// C's double -> unsigned 64-bit conversion as x86-64 code does it.
fn to_u64(n: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n >= TWO_63 {
        (number_to_integer(n - TWO_63) as u64) ^ (1 << 63)
    } else {
        number_to_integer(n) as u64
    }
}

fn put_integer(n: f64, big: bool, size: usize, out: &mut Vec<u8>) {
    let mut value = if n < 0.0 {
        number_to_integer(n) as u64
    } else {
        to_u64(n)
    };
    let start = out.len();
    for _ in 0..size {
        out.push(value as u8);
        value = value.checked_shr(8).unwrap_or(0);
    }
    if big {
        out[start..].reverse();
    }
}

fn get_integer(bytes: &[u8], big: bool, signed: bool) -> f64 {
    let fold = |l: u64, &b: &u8| (l << 8) | b as u64;
    let l = if big {
        bytes.iter().fold(0, fold)
    } else {
        bytes.iter().rev().fold(0, fold)
    };
    if !signed {
        return l as f64;
    }
    // The sign bit's mask, with x86's shift count modulo 64.
    let mask = u64::MAX.wrapping_shl((bytes.len() * 8).wrapping_sub(1) as u32);
    let l = if l & mask != 0 { l | mask } else { l };
    l as i64 as f64
}

fn float_bytes<const N: usize>(mut b: [u8; N], big: bool) -> [u8; N] {
    if big {
        b.reverse();
    }
    b
}

fn pack(a: &LuaArgs<'_>) -> Result<Vec<u8>> {
    let fmt = a.string(1)?;
    let fmt = fmt.as_bytes();
    // Then the C function pushes a nil after its arguments: the first
    // missing one reads as nil, not "no value".
    let a = a.with_nil_after();
    let mut f = Format::new(&fmt);
    let mut h = Header::default();
    let mut arg = 2;
    let mut out = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        let pad = padding(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                put_integer(a.number(arg)?, h.big, size, &mut out);
                arg += 1;
            }
            b'x' => out.push(0),
            b'f' => {
                let n = a.number(arg)? as f32;
                out.extend_from_slice(&float_bytes(n.to_le_bytes(), h.big));
                arg += 1;
            }
            b'd' => {
                let n = a.number(arg)?;
                out.extend_from_slice(&float_bytes(n.to_le_bytes(), h.big));
                arg += 1;
            }
            b'c' | b's' => {
                let s = a.string(arg)?;
                let s = s.as_bytes();
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                // The library names the argument after the string.
                if s.len() < size {
                    return Err(a.arg_error(arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => f.control(&a, opt, &mut h)?,
        }
    }
    Ok(out)
}

/// Returns the results for [`Results::Spread`]: the values, then the
/// position after the last item read.
fn unpack(a: &LuaArgs<'_>) -> Result<(Table, usize, bool)> {
    let lua = a.lua;
    let fmt = a.string(1)?;
    let fmt = fmt.as_bytes();
    let data = a.string(2)?;
    let data = data.as_bytes();
    let ld = data.len();
    let start = a.opt_integer(3, 1)?;
    if start == 0 {
        return Err(a.arg_error(3, "offset must be 1 or greater"));
    }
    // A size_t in the library: a negative start wraps around (and then
    // fails the length checks).
    let mut pos = (start as usize).wrapping_sub(1);
    let out = lua.create_table()?;
    let mut n = 0usize;
    let mut f = Format::new(&fmt);
    let mut h = Header::default();
    let too_short = |a: &LuaArgs<'_>| a.arg_error(2, "data string too short");
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if size > ld || pos > ld - size {
            return Err(too_short(a));
        }
        // Room for an item and the final position.
        if a.len() + n + 2 > MAX_C_STACK {
            return Err(runtime_error("stack overflow (too many results)"));
        }
        let item = &data[pos..(pos + size).min(ld)];
        let value = match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => Some(Value::Number(
                get_integer(item, h.big, opt.is_ascii_lowercase()),
            )),
            b'x' => None,
            b'f' => {
                let b: [u8; 4] = item.try_into().unwrap_or_default();
                Some(Value::Number(
                    f32::from_le_bytes(float_bytes(b, h.big)) as f64
                ))
            }
            b'd' => {
                let b: [u8; 8] = item.try_into().unwrap_or_default();
                Some(Value::Number(f64::from_le_bytes(float_bytes(b, h.big))))
            }
            b'c' => {
                if size == 0 {
                    // The previous result is the size, and is dropped.
                    let prev: Value = if n == 0 { Value::Nil } else { out.raw_get(n)? };
                    let prev = match prev {
                        Value::Nil => None,
                        v => to_number(lua, Some(&v))?,
                    };
                    let Some(len) = prev else {
                        return Err(runtime_error("format 'c0' needs a previous size"));
                    };
                    out.raw_set(n, Value::Nil)?;
                    n -= 1;
                    size = to_u64(len) as usize;
                    if size > ld || pos > ld - size {
                        return Err(too_short(a));
                    }
                }
                Some(Value::String(lua.create_string(&data[pos..pos + size])?))
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(runtime_error("unfinished string in data"));
                };
                size = len + 1;
                Some(Value::String(lua.create_string(&data[pos..pos + len])?))
            }
            _ => {
                f.control(a, opt, &mut h)?;
                None
            }
        };
        if let Some(v) = value {
            n += 1;
            out.raw_set(n, v)?;
        }
        pos = pos.wrapping_add(size);
    }
    out.raw_set(n + 1, pos.wrapping_add(1) as i64)?;
    Ok((out, n + 1, true))
}

fn size(a: &LuaArgs<'_>) -> Result<i64> {
    let fmt = a.string(1)?;
    let fmt = fmt.as_bytes();
    let mut f = Format::new(&fmt);
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(opt) = f.next() {
        let size = f.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if opt == b's' {
            return Err(a.arg_error(1, "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(a.arg_error(1, "option 'c0' has no fixed size"));
        }
        // Unknown letters and digits are skipped, not refused.
        if !opt.is_ascii_alphanumeric() {
            f.control(a, opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64)
}

pub fn install(lua: &Lua) -> Result<()> {
    let m = lua.create_table()?;
    let pack_fn = lib_function(lua, Results::Direct, |a| a.lua.create_string(pack(a)?))?;
    m.raw_set("pack", pack_fn)?;
    m.raw_set("unpack", lib_function(lua, Results::Spread, unpack)?)?;
    m.raw_set("size", lib_function(lua, Results::Direct, size)?)?;
    lua.globals().raw_set("struct", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_x86_conversions() {
        let mut out = Vec::new();
        put_integer(-2.0, true, 10, &mut out);
        assert_eq!(out, [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        out.clear();
        put_integer(f64::NAN, true, 8, &mut out);
        assert_eq!(out, [0x80, 0, 0, 0, 0, 0, 0, 0]);
        out.clear();
        put_integer(f64::INFINITY, false, 8, &mut out);
        assert_eq!(out, [0; 8]);
        assert_eq!(get_integer(&[0xff, 0xff, 0x80], false, true), -8323073.0);
        assert_eq!(get_integer(&[0xff; 9], false, true), -1.0);
        assert_eq!(
            get_integer(&[0xff; 8], false, false),
            18446744073709551615.0
        );
    }

    #[test]
    fn alignment_uses_the_library_formula() {
        let h = Header {
            big: false,
            align: 8,
        };
        assert_eq!(padding(0, &h, b'i', 5), 4);
        assert_eq!(padding(1, &h, b'i', 12), 7);
        assert_eq!(padding(1, &h, b'I', 3), 2);
        assert_eq!(padding(1, &h, b'c', 8), 0);
    }
}
