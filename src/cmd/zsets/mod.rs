//! Sorted-set commands. The data structure and its encodings live in
//! `types::zset`; this module parses arguments the way Redis 7.0 does
//! (scores through C `strtod`, ranges, LIMIT...) and shapes the replies.
//!
//! Blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) are built elsewhere on
//! `types::zset::pop`.

pub(crate) mod add;
pub(crate) mod pop;
pub(crate) mod range;
mod setops;
#[cfg(test)]
mod tests;

use super::{Error, Handler};
use crate::resp::Reply;
use crate::server::stats::ThreadStats;
use crate::store::KeySlot;
use crate::types::zset::View;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("zadd", add::zadd),
    ("zincrby", add::zincrby),
    ("zrem", add::zrem),
    ("zcard", add::zcard),
    ("zscore", add::zscore),
    ("zmscore", add::zmscore),
    ("zrank", add::zrank),
    ("zrevrank", add::zrevrank),
    ("zcount", range::zcount),
    ("zlexcount", range::zlexcount),
    ("zrange", range::zrange),
    ("zrangestore", range::zrangestore),
    ("zrevrange", range::zrevrange),
    ("zrangebyscore", range::zrangebyscore),
    ("zrevrangebyscore", range::zrevrangebyscore),
    ("zrangebylex", range::zrangebylex),
    ("zrevrangebylex", range::zrevrangebylex),
    ("zremrangebyrank", range::zremrangebyrank),
    ("zremrangebyscore", range::zremrangebyscore),
    ("zremrangebylex", range::zremrangebylex),
    ("zpopmin", pop::zpopmin),
    ("zpopmax", pop::zpopmax),
    ("zmpop", pop::zmpop),
    ("zrandmember", pop::zrandmember),
    ("zscan", pop::zscan),
    ("zunion", setops::zunion),
    ("zinter", setops::zinter),
    ("zdiff", setops::zdiff),
    ("zunionstore", setops::zunionstore),
    ("zinterstore", setops::zinterstore),
    ("zdiffstore", setops::zdiffstore),
    ("zintercard", setops::zintercard),
];

/// C `strtod` over the argument: the whole argument must be consumed
/// (bytes after a NUL are never seen, as in Redis). Returns the value and
/// whether the conversion overflowed or underflowed (ERANGE).
pub(crate) fn strtod(arg: &[u8]) -> Option<(f64, bool)> {
    match plain_decimal(arg) {
        Some(v) => Some((v, false)),
        None => libc_strtod(arg),
    }
}

/// libc's strtod over the whole argument: the value and whether it was
/// out of range (`ERANGE`), or `None` unless it consumed every byte.
fn libc_strtod(arg: &[u8]) -> Option<(f64, bool)> {
    let mut buf = Vec::with_capacity(arg.len() + 1);
    buf.extend_from_slice(arg);
    buf.push(0);
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated; strtod reads up to the NUL and sets
    // `end` inside the buffer. errno is thread-local.
    let (v, range_err, consumed_all) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtod(buf.as_ptr() as *const libc::c_char, &mut end);
        let range_err = *libc::__errno_location() == libc::ERANGE;
        (v, range_err, *end == 0)
    };
    consumed_all.then_some((v, range_err))
}

/// A plain decimal (`[+-]digits[.digits][e[+-]digits]`, the common case)
/// read without libc: Rust's parser rounds correctly, as strtod does, so
/// the value is the same. `None` sends everything else to strtod: other
/// forms (`inf`, hex, spaces), and results strtod may flag as out of
/// range (overflows, subnormals, nonzero numbers that underflow to zero).
fn plain_decimal(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg.len() > 64 {
        return None;
    }
    let mut nonzero = false;
    let mut in_exponent = false;
    for &c in arg {
        match c {
            b'1'..=b'9' if !in_exponent => nonzero = true,
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b'e' | b'E' => in_exponent = true,
            _ => return None,
        }
    }
    let v: f64 = std::str::from_utf8(arg).ok()?.parse().ok()?;
    let normal = v.is_finite() && v.abs() >= f64::MIN_POSITIVE;
    (normal || (v == 0.0 && !nonzero)).then_some(v)
}

/// A score or increment as Redis's getDoubleFromObject reads it: no leading
/// space, no empty string, no NaN, no overflow (or underflow to zero).
pub(crate) fn parse_score(arg: &[u8]) -> Option<f64> {
    if arg
        .first()
        .is_none_or(|c| c.is_ascii_whitespace() || *c == 0x0b)
    {
        return None;
    }
    let (v, range_err) = strtod(arg)?;
    if v.is_nan() || (range_err && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

/// One end of a score range: `(` makes it exclusive. Parsed as Redis's
/// zslParseRange does (plain strtod: leading spaces and overflow allowed).
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (ex, text) = match arg.first() {
        Some(b'(') => (true, &arg[1..]),
        _ => (false, arg),
    };
    let (v, _) = strtod(text)?;
    (!v.is_nan()).then_some((v, ex))
}

/// A score interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    pub(crate) fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Error> {
        let err = || Error::msg("ERR min or max is not a float");
        let (min, minex) = parse_score_bound(min).ok_or_else(err)?;
        let (max, maxex) = parse_score_bound(max).ok_or_else(err)?;
        Ok(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }

    fn below_min(&self, s: f64) -> bool {
        if self.minex {
            s <= self.min
        } else {
            s < self.min
        }
    }

    fn within_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

    /// Ranks `lo..hi` of the members in range.
    fn ranks(&self, count_while: impl Fn(&dyn Fn(f64, &[u8]) -> bool) -> usize) -> (usize, usize) {
        let lo = count_while(&|s, _| self.below_min(s));
        let hi = count_while(&|s, _| self.within_max(s));
        (lo, hi.max(lo))
    }
}

/// One end of a lex range.
#[derive(Clone, Copy, Debug)]
enum Lex<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn parse_lex_bound(arg: &[u8]) -> Option<Lex<'_>> {
    // Redis reads the argument as a C string: "+" / "-" must end there.
    let alone = arg.get(1).is_none_or(|c| *c == 0);
    match arg.first()? {
        b'+' if alone => Some(Lex::Max),
        b'-' if alone => Some(Lex::Min),
        b'(' => Some(Lex::Excl(&arg[1..])),
        b'[' => Some(Lex::Incl(&arg[1..])),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct LexRange<'a> {
    min: Lex<'a>,
    max: Lex<'a>,
}

impl<'a> LexRange<'a> {
    pub(crate) fn parse(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, Error> {
        let err = || Error::msg("ERR min or max not valid string range item");
        Ok(LexRange {
            min: parse_lex_bound(min).ok_or_else(err)?,
            max: parse_lex_bound(max).ok_or_else(err)?,
        })
    }

    fn below_min(&self, m: &[u8]) -> bool {
        match self.min {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(b) => m < b,
            Lex::Excl(b) => m <= b,
        }
    }

    fn within_max(&self, m: &[u8]) -> bool {
        match self.max {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(b) => m <= b,
            Lex::Excl(b) => m < b,
        }
    }

    fn ranks(&self, count_while: impl Fn(&dyn Fn(f64, &[u8]) -> bool) -> usize) -> (usize, usize) {
        let lo = count_while(&|_, m| self.below_min(m));
        let hi = count_while(&|_, m| self.within_max(m));
        (lo, hi.max(lo))
    }
}

/// Ranks `lo..hi` for a rank range given as Redis's start/end (negative
/// counts from the end, both inclusive), over a set of `len` members.
/// With `rev`, start/end count from the high end.
fn rank_span(start: i64, end: i64, len: usize, rev: bool) -> (usize, usize) {
    let n = len as i64;
    let mut start = if start < 0 { start + n } else { start };
    let mut end = if end < 0 { end + n } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= n {
        return (0, 0);
    }
    if end >= n {
        end = n - 1;
    }
    if rev {
        ((n - 1 - end) as usize, (n - start) as usize)
    } else {
        (start as usize, (end + 1) as usize)
    }
}

/// Counts a keyspace hit or miss while the key's slot is borrowed.
fn hit(stats: &ThreadStats, found: bool) {
    if found {
        stats.keyspace_hits.add(1);
    } else {
        stats.keyspace_misses.add(1);
    }
}

/// The sorted set at `slot` for reading (marking the key accessed), or
/// None; WRONGTYPE for another type.
pub(crate) fn read<'s>(
    slot: &'s mut KeySlot<'_, '_>,
    stats: &ThreadStats,
) -> Result<Option<View<'s>>, Error> {
    let e = slot.get();
    hit(stats, e.is_some());
    e.map(|e| View::of(e.value())).transpose()
}

/// Array header for `n` members, with or without scores: RESP2 flattens
/// pairs, RESP3 nests them.
fn scored_header(out: &mut Reply, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(2 * n);
    } else {
        out.array(n);
    }
}

fn scored_item(out: &mut Reply, member: &[u8], score: f64, withscores: bool) {
    if withscores {
        if out.resp3 {
            out.array(2);
        }
        out.bulk(member);
        out.double(score);
    } else {
        out.bulk(member);
    }
}

/// A whole list of members with (optionally) scores.
fn scored_list(out: &mut Reply, items: &[(Vec<u8>, f64)], withscores: bool) {
    scored_header(out, items.len(), withscores);
    for (m, s) in items {
        scored_item(out, m, *s, withscores);
    }
}
