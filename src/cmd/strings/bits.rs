//! Bitmaps on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO. Bits are numbered from the most significant bit of the
//! first byte; a string grows (zero-filled) as far as a write reaches.

use super::edit::{clamp_range, edit_in_place};
use super::{Str, find, hit};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::store::{KeySlot, Object, Value};
use crate::util::num::parse_i64;

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A bit offset argument: a non-negative integer whose byte lies within
/// proto-max-bulk-len. `#N` (BITFIELD only) counts in units of `width`.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8], hash_width: Option<u32>) -> Result<u64, Error> {
    let bad = || Error::msg(BAD_OFFSET);
    let (digits, width) = match (hash_width, arg.first()) {
        (Some(w), Some(b'#')) => (&arg[1..], u64::from(w)),
        _ => (arg, 1),
    };
    let n = parse_i64(digits).filter(|&n| n >= 0).ok_or_else(bad)? as u64;
    let offset = n.checked_mul(width).ok_or_else(bad)?;
    let max = ctx.srv.config.proto_max_bulk_len.get().max(0) as u64;
    if offset >> 3 >= max {
        return Err(bad());
    }
    Ok(offset)
}

/// The longest string a bit write creates inside the entry.
const INLINE_MAX: usize = 64;

/// Runs `f` on the string at the key as an editable buffer of at least
/// `bytes` bytes (zero-filled growth), creating the key if missing. The
/// flag returned with `f`'s result says whether the key was created or
/// grew: a change even when no bit differs. WRONGTYPE for other types.
fn with_writable<R>(
    slot: &mut KeySlot<'_, '_>,
    bytes: usize,
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<(R, bool), Error> {
    let (idx, created) = match find(slot) {
        Some(idx) => {
            Str::of(slot.entry(idx).value())?;
            (idx, false)
        }
        // A short string lives in the entry (flagged raw, as Redis creates
        // it); a long one in an object whose buffer grows by doubling, and
        // zeroed memory from the allocator means a far bit touches one page.
        None if bytes <= INLINE_MAX => {
            let zeros = [0u8; INLINE_MAX];
            let value = Value::Bytes {
                bytes: &zeros[..bytes],
                raw: true,
            };
            (slot.insert(value, None), true)
        }
        None => (
            slot.insert(Value::Obj(Box::new(Object::Str(vec![0; bytes]))), None),
            true,
        ),
    };
    // A string stored in the entry and long enough is edited where it is:
    // no copy into an object, and one memory access fewer per command.
    if let Some(s) = slot.entry_mut(idx).str_bytes_mut()
        && s.len() >= bytes
    {
        return Ok((f(s), created));
    }
    let mut grown = false;
    let out = edit_in_place(slot, idx, |s| {
        if s.len() < bytes {
            grown = true;
            if bytes > s.capacity() {
                let mut grown = vec![0; bytes];
                grown[..s.len()].copy_from_slice(s);
                *s = grown;
            } else {
                s.resize(bytes, 0);
            }
        }
        f(s)
    });
    Ok((out, created || grown))
}

fn get_bit(s: &[u8], bit: u64) -> bool {
    let byte = (bit >> 3) as usize;
    byte < s.len() && s[byte] & (0x80 >> (bit & 7)) != 0
}

fn set_bit(s: &mut [u8], bit: u64, on: bool) {
    let byte = (bit >> 3) as usize;
    let mask = 0x80 >> (bit & 7);
    if on {
        s[byte] |= mask;
    } else {
        s[byte] &= !mask;
    }
}

pub fn setbit(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let on = match &args[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return Err(Error::msg("ERR bit is not an integer or out of range")),
    };
    let mut slot = ctx.db.key(&args[1]);
    let (old, reshaped) = with_writable(&mut slot, (offset >> 3) as usize + 1, |s| {
        let old = get_bit(s, offset);
        set_bit(s, offset, on);
        old
    })?;
    // Only a change counts (and is propagated), as in Redis 7.0.
    if reshaped || old != on {
        ctx.dirty += 1;
        ctx.event(class::STRING, "setbit", &args[1]);
    }
    ctx.out.int(i64::from(old));
    Ok(())
}

pub fn getbit(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let mut slot = ctx.db.key(&args[1]);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    let bit = match idx {
        Some(i) => Str::of(slot.entry(i).value())?.with_bytes(|s| get_bit(s, offset)),
        None => false,
    };
    ctx.out.int(i64::from(bit));
    Ok(())
}

/// A bit range worked out from BITCOUNT/BITPOS's `start end [BYTE|BIT]`
/// over a string of `len` bytes: first and last bit (inclusive), or None
/// when empty.
fn bit_range(start: i64, end: i64, bit_unit: bool, len: usize) -> Option<(u64, u64)> {
    // The same negative-index rules as GETRANGE, over bits or bytes.
    let total = if bit_unit { len * 8 } else { len };
    let (from, to) = clamp_range(start, end, total)?;
    let (s, e) = (from as u64, to as u64 - 1);
    Some(if bit_unit { (s, e) } else { (s * 8, e * 8 + 7) })
}

/// `BYTE` or `BIT`: whether the range counts bits.
fn unit(arg: &[u8]) -> Result<bool, Error> {
    keyword(arg, &[("bit", true), ("byte", false)]).ok_or(Error::Syntax)
}

/// Set bits among bits `from..=to` of `s` (both within the string).
fn count_ones(s: &[u8], from: u64, to: u64) -> u64 {
    let (fb, tb) = ((from >> 3) as usize, (to >> 3) as usize);
    let bytes = &s[fb..=tb];
    // Eight bytes at a time: one population count per word, not per byte.
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let mut n: u64 = words
        .map(|w| u64::from(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])).count_ones()))
        .sum();
    n += tail.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
    // Bits of the edge bytes outside the range.
    n -= u64::from((s[fb] & !(0xffu8 >> (from & 7))).count_ones());
    n -= u64::from((s[tb] & (0x7fu8 >> (to & 7))).count_ones());
    n
}

pub fn bitcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    let Some(idx) = idx else {
        ctx.out.int(0);
        return Ok(());
    };
    let value = Str::of(slot.entry(idx).value())?;
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let start = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
            let end = parse_i64(&args[3]).ok_or(Error::NotInteger)?;
            let bit_unit = args.len() == 5 && unit(&args[4])?;
            Some((start, end, bit_unit))
        }
        _ => return Err(Error::Syntax),
    };
    let n = value.with_bytes(|s| {
        let (start, end, bit_unit) = range.unwrap_or((0, -1, false));
        bit_range(start, end, bit_unit, s.len()).map_or(0, |(f, t)| count_ones(s, f, t))
    });
    ctx.out.int(n as i64);
    Ok(())
}

/// The first bit equal to `bit` in `from..=to`.
fn find_bit(s: &[u8], bit: bool, from: u64, to: u64) -> Option<u64> {
    let mut i = from;
    while i <= to {
        let byte = s[(i >> 3) as usize];
        // Whole bytes that cannot hold the bit are skipped at once.
        if i.is_multiple_of(8) && i + 7 <= to && byte == if bit { 0 } else { 0xff } {
            i += 8;
            continue;
        }
        if get_bit(s, i) == bit {
            return Some(i);
        }
        i += 1;
    }
    None
}

pub fn bitpos(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let bit = match parse_i64(&args[2]) {
        Some(1) => true,
        Some(0) => false,
        Some(_) => return Err(Error::msg("ERR The bit argument must be 1 or 0.")),
        None => return Err(Error::NotInteger),
    };
    let mut slot = ctx.db.key(&args[1]);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    let Some(idx) = idx else {
        // A missing key is an empty string: no set bit, a clear bit at 0.
        ctx.out.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let value = Str::of(slot.entry(idx).value())?;
    if args.len() > 6 {
        return Err(Error::Syntax);
    }
    let start = match args.get(3) {
        Some(a) => parse_i64(a).ok_or(Error::NotInteger)?,
        None => 0,
    };
    let end = match args.get(4) {
        Some(a) => parse_i64(a).ok_or(Error::NotInteger)?,
        None => -1,
    };
    let bit_unit = match args.get(5) {
        Some(a) => unit(a)?,
        None => false,
    };
    let end_given = args.len() > 4;
    let pos = value.with_bytes(|s| match bit_range(start, end, bit_unit, s.len()) {
        None => -1,
        Some((from, to)) => match find_bit(s, bit, from, to) {
            Some(p) => p as i64,
            // Looking for a clear bit with no end given: the string is
            // taken as padded with zeros on the right.
            None if !bit && !end_given => to as i64 + 1,
            None => -1,
        },
    });
    ctx.out.int(pos);
    Ok(())
}

/// The value `word` names in `table` (any case).
fn keyword<T: Copy>(word: &[u8], table: &[(&str, T)]) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name.as_bytes()))
        .map(|&(_, v)| v)
}

#[derive(Clone, Copy)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

pub fn bitop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let ops = [
        ("and", BitOp::And),
        ("or", BitOp::Or),
        ("xor", BitOp::Xor),
        ("not", BitOp::Not),
    ];
    let op = keyword(&args[1], &ops).ok_or(Error::Syntax)?;
    let sources = args.tail(3);
    if matches!(op, BitOp::Not) && sources.len() != 1 {
        return Err(Error::msg(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(sources.len());
    for key in sources.iter() {
        let mut slot = ctx.db.key(key);
        let v = match find(&mut slot) {
            Some(i) => Some(Str::of(slot.entry(i).value())?.to_vec()),
            None => None,
        };
        values.push(v);
    }
    let len = values.iter().flatten().map(Vec::len).max().unwrap_or(0);
    let mut result = vec![0u8; len];
    let byte = |v: &Option<Vec<u8>>, i: usize| v.as_ref().and_then(|v| v.get(i)).copied();
    for (i, r) in result.iter_mut().enumerate() {
        *r = match op {
            BitOp::Not => !byte(&values[0], i).unwrap_or(0),
            BitOp::And => values.iter().fold(0xff, |a, v| a & byte(v, i).unwrap_or(0)),
            BitOp::Or => values.iter().fold(0, |a, v| a | byte(v, i).unwrap_or(0)),
            BitOp::Xor => values.iter().fold(0, |a, v| a ^ byte(v, i).unwrap_or(0)),
        };
    }
    let mut slot = ctx.db.key(&args[2]);
    if len == 0 {
        if let Some(idx) = slot.lookup() {
            drop(slot.remove_at(idx));
            ctx.dirty += 1;
            ctx.rewrite_effect(vec![b"DEL".to_vec(), args[2].to_vec()]);
            ctx.event(class::GENERIC, "del", &args[2]);
        }
    } else {
        slot.set(Value::Obj(Box::new(Object::Str(result))), None);
        ctx.dirty += 1;
        ctx.event(class::STRING, "set", &args[2]);
    }
    ctx.out.int(len as i64);
    Ok(())
}

/// A BITFIELD integer type: signed (i1..i64) or unsigned (u1..u63).
#[derive(Clone, Copy)]
struct Field {
    signed: bool,
    bits: u32,
}

impl Field {
    fn parse(arg: &[u8]) -> Result<Field, Error> {
        let bad = || {
            Error::msg(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            )
        };
        let signed = match arg.first() {
            Some(b'i' | b'I') => true,
            Some(b'u' | b'U') => false,
            _ => return Err(bad()),
        };
        let bits = parse_i64(&arg[1..]).ok_or_else(bad)?;
        let max = if signed { 64 } else { 63 };
        if !(1..=max).contains(&bits) {
            return Err(bad());
        }
        Ok(Field {
            signed,
            bits: bits as u32,
        })
    }

    fn min(self) -> i128 {
        if self.signed {
            -(1i128 << (self.bits - 1))
        } else {
            0
        }
    }

    fn max(self) -> i128 {
        if self.signed {
            (1i128 << (self.bits - 1)) - 1
        } else {
            (1i128 << self.bits) - 1
        }
    }

    /// Reads the field at bit `offset` (bits past the string are zero).
    fn read(self, s: &[u8], offset: u64) -> i64 {
        let mut raw: u64 = 0;
        for i in 0..u64::from(self.bits) {
            raw = (raw << 1) | u64::from(get_bit(s, offset + i));
        }
        self.decode(raw)
    }

    fn decode(self, raw: u64) -> i64 {
        if self.signed && self.bits < 64 && raw >> (self.bits - 1) & 1 == 1 {
            // Sign extension.
            (raw | (u64::MAX << self.bits)) as i64
        } else {
            raw as i64
        }
    }

    fn write(self, s: &mut [u8], offset: u64, value: i64) {
        let raw = value as u64;
        for i in 0..u64::from(self.bits) {
            let shift = u64::from(self.bits) - 1 - i;
            set_bit(s, offset + i, raw >> shift & 1 == 1);
        }
    }

    /// `value` brought into the field's range by the overflow rule, or
    /// None when it does not fit and the rule is FAIL.
    fn fit(self, value: i128, overflow: Overflow) -> Option<i64> {
        if (self.min()..=self.max()).contains(&value) {
            return Some(value as i64);
        }
        match overflow {
            Overflow::Fail => None,
            Overflow::Sat => Some(value.clamp(self.min(), self.max()) as i64),
            Overflow::Wrap => {
                let mask = (1u128 << self.bits) - 1;
                Some(self.decode((value as u128 & mask) as u64))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

enum FieldOp {
    Get(Field, u64),
    Set(Field, u64, i64, Overflow),
    Incr(Field, u64, i64, Overflow),
}

/// BITFIELD's operations, all parsed before any runs.
fn parse_ops(ctx: &Ctx<'_>, args: &Args<'_>, read_only: bool) -> Result<Vec<FieldOp>, Error> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let word = &args[i];
        let remaining = args.len() - i - 1;
        if word.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
            let rules = [
                ("wrap", Overflow::Wrap),
                ("sat", Overflow::Sat),
                ("fail", Overflow::Fail),
            ];
            overflow = keyword(&args[i + 1], &rules)
                .ok_or_else(|| Error::msg("ERR Invalid OVERFLOW type specified"))?;
            i += 2;
            continue;
        }
        let kind = if word.eq_ignore_ascii_case(b"get") && remaining >= 2 {
            0
        } else if word.eq_ignore_ascii_case(b"set") && remaining >= 3 {
            1
        } else if word.eq_ignore_ascii_case(b"incrby") && remaining >= 3 {
            2
        } else {
            return Err(Error::Syntax);
        };
        let field = Field::parse(&args[i + 1])?;
        let offset = bit_offset(ctx, &args[i + 2], Some(field.bits))?;
        if kind == 0 {
            ops.push(FieldOp::Get(field, offset));
            i += 3;
            continue;
        }
        let value = parse_i64(&args[i + 3]).ok_or(Error::NotInteger)?;
        if read_only {
            return Err(Error::msg(
                "ERR BITFIELD_RO only supports the GET subcommand",
            ));
        }
        ops.push(if kind == 1 {
            FieldOp::Set(field, offset, value, overflow)
        } else {
            FieldOp::Incr(field, offset, value, overflow)
        });
        i += 4;
    }
    Ok(ops)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, read_only: bool) -> CmdResult {
    let ops = parse_ops(ctx, args, read_only)?;
    let writes = ops.iter().any(|op| !matches!(op, FieldOp::Get(..)));
    let mut slot = ctx.db.key(&args[1]);
    if !writes {
        let idx = find(&mut slot);
        hit(ctx.stats, idx.is_some());
        let value = match idx {
            Some(i) => Str::of(slot.entry(i).value())?.to_vec(),
            None => Vec::new(),
        };
        ctx.out.array(ops.len());
        for op in &ops {
            if let FieldOp::Get(f, offset) = *op {
                ctx.out.int(f.read(&value, offset));
            }
        }
        return Ok(());
    }
    // The string grows to cover the furthest field a write names.
    let reach = ops
        .iter()
        .map(|op| match *op {
            // A read past the end reads zeros and grows nothing (Redis).
            FieldOp::Get(..) => 0,
            FieldOp::Set(f, o, ..) | FieldOp::Incr(f, o, ..) => (o + u64::from(f.bits)).div_ceil(8),
        })
        .max()
        .unwrap_or(0);
    let out = &mut *ctx.out;
    let (changes, reshaped) = with_writable(&mut slot, reach as usize, |s| {
        let mut changes = 0;
        out.array(ops.len());
        for op in &ops {
            match *op {
                FieldOp::Get(f, offset) => out.int(f.read(s, offset)),
                FieldOp::Set(f, offset, value, overflow) => {
                    let old = f.read(s, offset);
                    match f.fit(i128::from(value), overflow) {
                        Some(v) => {
                            f.write(s, offset, v);
                            changes += u64::from(v != old);
                            out.int(old);
                        }
                        None => out.null(),
                    }
                }
                FieldOp::Incr(f, offset, by, overflow) => {
                    let old = f.read(s, offset);
                    match f.fit(i128::from(old) + i128::from(by), overflow) {
                        Some(v) => {
                            f.write(s, offset, v);
                            changes += u64::from(v != old);
                            out.int(v);
                        }
                        None => out.null(),
                    }
                }
            }
        }
        changes
    })?;
    let changes = changes.max(u64::from(reshaped));
    if changes > 0 {
        ctx.dirty += changes;
        ctx.event(class::STRING, "setbit", &args[1]);
    }
    Ok(())
}

pub fn bitfield(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

pub fn bitfield_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bits_of_partial_edge_bytes() {
        let s = [0xffu8, 0x0f, 0xf0];
        assert_eq!(count_ones(&s, 0, 23), 16);
        assert_eq!(count_ones(&s, 4, 11), 4);
        assert_eq!(count_ones(&s, 12, 12), 1);
        assert_eq!(count_ones(&s, 11, 11), 0);
    }

    #[test]
    fn fields_wrap_and_saturate() {
        let u8f = Field::parse(b"u8").unwrap();
        assert_eq!(u8f.fit(300, Overflow::Wrap), Some(44));
        assert_eq!(u8f.fit(300, Overflow::Sat), Some(255));
        assert_eq!(u8f.fit(-1, Overflow::Sat), Some(0));
        assert_eq!(u8f.fit(300, Overflow::Fail), None);
        let i8f = Field::parse(b"i8").unwrap();
        assert_eq!(i8f.fit(128, Overflow::Wrap), Some(-128));
        assert_eq!(i8f.fit(-129, Overflow::Sat), Some(-128));
        let i64f = Field::parse(b"i64").unwrap();
        assert_eq!(
            i64f.fit(i128::from(i64::MAX) + 1, Overflow::Wrap),
            Some(i64::MIN)
        );
        let mut s = [0u8; 9];
        i64f.write(&mut s, 4, -2);
        assert_eq!(i64f.read(&s, 4), -2);
        assert!(Field::parse(b"u64").is_err());
        assert!(Field::parse(b"i0").is_err());
    }
}
