//! Number parsing and printing with Redis's exact rules.

/// Strict decimal i64 as Redis's string2ll accepts it: optional `-`, no `+`,
/// no leading zeros (except "0" itself), no spaces, no overflow. "-0" is rejected.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// An i64 whose decimal form is exactly `s` (so it can be stored as an
/// integer and printed back unchanged). Same rules as [`parse_i64`].
#[inline]
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    parse_i64(s)
}

/// Formats a double as Redis 7.0 replies it (`%.17g`, `inf`, `-inf`).
pub fn fmt_double(d: f64, buf: &mut [u8; 64]) -> &[u8] {
    if d.is_infinite() {
        return if d > 0.0 { b"inf" } else { b"-inf" };
    }
    // Integers that a double holds exactly print without exponent or point.
    if d == d.trunc() && d.abs() < 1e17 {
        let mut b = itoa::Buffer::new();
        let s = b.format(d as i64).as_bytes();
        let neg_zero = d == 0.0 && d.is_sign_negative();
        let n = if neg_zero {
            buf[..2].copy_from_slice(b"-0");
            2
        } else {
            buf[..s.len()].copy_from_slice(s);
            s.len()
        };
        return &buf[..n];
    }
    // SAFETY: the format consumes one double; the buffer length bounds the write.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.17g".as_ptr(),
            d,
        )
    };
    &buf[..(n.max(0) as usize).min(buf.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"-0"[..],
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"9223372036854775808",
            b"1.0",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn doubles_like_redis() {
        let mut b = [0u8; 64];
        assert_eq!(fmt_double(1.1, &mut b), b"1.1000000000000001");
        assert_eq!(fmt_double(3.0, &mut b), b"3");
        assert_eq!(fmt_double(1e20, &mut b), b"1e+20");
        assert_eq!(fmt_double(1e-7, &mut b), b"9.9999999999999995e-08");
        assert_eq!(fmt_double(f64::NEG_INFINITY, &mut b), b"-inf");
        assert_eq!(fmt_double(123456789.123, &mut b), b"123456789.123");
    }
}
