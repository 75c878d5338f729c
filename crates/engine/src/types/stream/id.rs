//! Stream entry ids (`ms-seq`) and the ways commands spell them.

use std::fmt;

use crate::error::Error;

/// An entry id: milliseconds, then a sequence number within them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The id right after this one; `None` past the last possible id.
    pub fn next(self) -> Option<StreamId> {
        match (self.seq.checked_add(1), self.ms.checked_add(1)) {
            (Some(seq), _) => Some(StreamId::new(self.ms, seq)),
            (None, Some(ms)) => Some(StreamId::new(ms, 0)),
            (None, None) => None,
        }
    }

    /// The id right before this one; `None` before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match (self.seq.checked_sub(1), self.ms.checked_sub(1)) {
            (Some(seq), _) => Some(StreamId::new(self.ms, seq)),
            (None, Some(ms)) => Some(StreamId::new(ms, u64::MAX)),
            (None, None) => None,
        }
    }

    /// The id as replies spell it.
    pub fn to_bytes(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn invalid() -> Error {
    Error::msg(INVALID_ID)
}

/// An unsigned number as Redis reads id parts: its strict integer form, and
/// failing that, C's `strtoull` (leading spaces, a sign, leading zeros; a
/// minus wraps around), the whole text consumed, no overflow.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::util::num::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let neg = match s[i] {
        b'-' => {
            i += 1;
            true
        }
        b'+' => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// What an id argument may leave open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Both parts given (or the sequence defaulted).
    Id(StreamId),
    /// `ms-*`: XADD picks the sequence.
    AutoSeq(u64),
}

/// An id argument: `ms[-seq]`, the sequence defaulting to `missing_seq`.
/// `-` and `+` (the extremes) only when `strict` is false; `ms-*` only
/// when `auto_seq` is true.
pub fn parse(arg: &[u8], missing_seq: u64, strict: bool, auto_seq: bool) -> Result<Parsed, Error> {
    if arg.len() > 127 {
        return Err(invalid());
    }
    if !strict && arg.len() == 1 {
        match arg[0] {
            b'-' => return Ok(Parsed::Id(StreamId::MIN)),
            b'+' => return Ok(Parsed::Id(StreamId::MAX)),
            _ => {}
        }
    }
    // Ids travel as C strings in Redis: an embedded NUL ends them.
    let arg = arg.split(|&c| c == 0).next().unwrap_or_default();
    let (ms, seq) = match arg.iter().position(|&c| c == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms).ok_or_else(invalid)?;
    match seq {
        None => Ok(Parsed::Id(StreamId::new(ms, missing_seq))),
        Some(b"*") if auto_seq => Ok(Parsed::AutoSeq(ms)),
        Some(seq) => {
            let seq = parse_u64(seq).ok_or_else(invalid)?;
            Ok(Parsed::Id(StreamId::new(ms, seq)))
        }
    }
}

/// A complete id (no `ms-*`), `-`/`+` allowed unless `strict`.
pub fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, Error> {
    match parse(arg, missing_seq, strict, false)? {
        Parsed::Id(id) => Ok(id),
        Parsed::AutoSeq(_) => Err(invalid()),
    }
}

/// A range bound of XRANGE/XREVRANGE: an id, `-`, `+`, or `(id` for an
/// exclusive bound (strictly parsed). Returns the id and whether exclusive.
pub fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Error> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id(&arg[1..], missing_seq, true)?, true))
    } else {
        Ok((parse_id(arg, missing_seq, false)?, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Option<StreamId> {
        parse_id(s.as_bytes(), 0, false).ok()
    }

    #[test]
    fn parses_redis_spellings() {
        assert_eq!(id("5"), Some(StreamId::new(5, 0)));
        assert_eq!(id("5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(id("-"), Some(StreamId::MIN));
        assert_eq!(id("+"), Some(StreamId::MAX));
        assert_eq!(id("007-1"), Some(StreamId::new(7, 1)));
        assert_eq!(id("+7-1"), Some(StreamId::new(7, 1)));
        assert_eq!(id("1--05"), Some(StreamId::new(1, 5u64.wrapping_neg())));
        assert_eq!(
            id("18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        assert_eq!(id("18446744073709551616"), None);
        assert_eq!(id("-5"), None);
        assert_eq!(id("a-1"), None);
        assert_eq!(id("1-"), None);
        assert_eq!(id("1-2-3"), None);
        assert!(parse_id(b"-", 0, true).is_err());
        assert_eq!(parse(b"5-*", 0, true, true).unwrap(), Parsed::AutoSeq(5));
        assert_eq!(
            parse_interval(b"(5", 0).unwrap(),
            (StreamId::new(5, 0), true)
        );
        assert!(parse_interval(b"(-", 0).is_err());
    }

    #[test]
    fn next_and_prev_cross_millisecond_boundaries() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
    }
}
