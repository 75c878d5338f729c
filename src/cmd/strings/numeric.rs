//! INCR, DECR, INCRBY, DECRBY and INCRBYFLOAT.

use super::{Str, find};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::store::Value;
use crate::util::num::parse_i64;

pub fn incr(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    incr_decr(ctx, &args[1], 1)
}

pub fn decr(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    incr_decr(ctx, &args[1], -1)
}

pub fn incrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let by = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    incr_decr(ctx, &args[1], by)
}

pub fn decrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let by = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    // -i64::MIN does not exist.
    let by = by
        .checked_neg()
        .ok_or(Error::msg("ERR decrement would overflow"))?;
    incr_decr(ctx, &args[1], by)
}

/// Adds `by` to the integer at `key` (0 when missing). The result is stored
/// integer-encoded, in place when it already was, keeping any TTL.
fn incr_decr(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let mut slot = ctx.db.key(key);
    let idx = find(&mut slot);
    let current = match idx {
        None => 0,
        Some(i) => match Str::of(slot.entry(i).value())? {
            Str::Int(n) => n,
            Str::Bytes(b) => parse_i64(b).ok_or(Error::NotInteger)?,
        },
    };
    let n = current.checked_add(by).ok_or(Error::Overflow)?;
    match idx {
        Some(i) => {
            if !slot.entry_mut(i).set_int_in_place(n) {
                slot.set_value(i, Value::Int(n), true);
            }
        }
        None => {
            slot.insert(Value::Int(n), None);
        }
    }
    ctx.dirty += 1;
    ctx.event(class::STRING, "incrby", key);
    ctx.out.int(n);
    Ok(())
}

pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = &args[1];
    let mut slot = ctx.db.key(key);
    let idx = find(&mut slot);
    let current = match idx {
        Some(i) => Some(Str::of(slot.entry(i).value())?.to_vec()),
        None => None,
    };
    let sum = add_long_double(current.as_deref(), &args[2])?;
    // Stored as the printed string (embstr or raw), never as an integer.
    let value = Value::Bytes {
        bytes: &sum,
        raw: sum.len() > crate::store::entry::EMBSTR_MAX,
    };
    match idx {
        Some(i) => slot.set_value(i, value, true),
        None => {
            slot.insert(value, None);
        }
    }
    ctx.dirty += 1;
    ctx.event(class::STRING, "incrbyfloat", key);
    ctx.out.bulk(&sum);
    // Replicas and the AOF get the result, not the arithmetic.
    ctx.rewrite_effect(vec![
        b"SET".to_vec(),
        key.to_vec(),
        sum,
        b"KEEPTTL".to_vec(),
    ]);
    Ok(())
}

/// Size of the output buffer Redis formats a long double into.
const LONG_DOUBLE_CHARS: usize = 5 * 1024;

unsafe extern "C" {
    fn ferrokv_incrbyfloat(
        a: *const libc::c_char,
        alen: usize,
        b: *const libc::c_char,
        blen: usize,
        out: *mut libc::c_char,
        outcap: usize,
    ) -> libc::c_int;
}

/// `current + incr` computed and printed in C `long double`, exactly as
/// Redis does it (`None` is a missing key, worth 0).
pub fn add_long_double(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; LONG_DOUBLE_CHARS];
    let (a, alen) = match current {
        Some(c) => (c.as_ptr(), c.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: both inputs are valid for their lengths (the C side copies
    // them before reading, refusing any longer than its buffer; `a` may be
    // NULL with length 0, which it reads as 0) and `out` has `out.len()`
    // writable bytes, which bounds its snprintf.
    let n = unsafe {
        ferrokv_incrbyfloat(
            a as *const libc::c_char,
            alen,
            incr.as_ptr() as *const libc::c_char,
            incr.len(),
            out.as_mut_ptr() as *mut libc::c_char,
            out.len(),
        )
    };
    match n {
        -1 => Err(Error::NotFloat),
        -2 => Err(Error::msg("ERR increment would produce NaN or Infinity")),
        n => {
            out.truncate(n.max(0) as usize);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(a: Option<&str>, b: &str) -> Result<String, Error> {
        add_long_double(a.map(str::as_bytes), b.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn sums_print_like_redis() {
        assert_eq!(add(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(add(None, "5.0e3").unwrap(), "5000");
        assert_eq!(add(Some("11"), "-11").unwrap(), "0");
        assert_eq!(add(Some("1"), "-1.0").unwrap(), "0");
        assert_eq!(add(Some("0"), "-0.00000000000000000001").unwrap(), "0");
        assert_eq!(add(Some("3"), "0x10").unwrap(), "19");
        assert_eq!(add(Some("16"), "1e-400").unwrap(), "16");
        assert_eq!(add(None, "1.5").unwrap(), "1.5");
        assert!(
            add(None, "1e400")
                .unwrap()
                .starts_with("1000000000000000000028")
        );
    }

    #[test]
    fn rejects_what_redis_rejects() {
        for bad in [" 1", "1 ", "", "nan", "abc", "1\0", "1e"] {
            assert_eq!(add(Some("1"), bad), Err(Error::NotFloat), "{bad:?}");
        }
        assert_eq!(add(Some("x"), "1"), Err(Error::NotFloat));
        assert_eq!(add(Some(&"1".repeat(5120)), "1"), Err(Error::NotFloat));
        let nan_inf = Err(Error::msg("ERR increment would produce NaN or Infinity"));
        assert_eq!(add(Some("1"), "inf"), nan_inf);
        assert_eq!(add(Some("inf"), "-inf"), nan_inf);
        assert_eq!(add(Some("1e4932"), "1e4932"), nan_inf);
    }
}
