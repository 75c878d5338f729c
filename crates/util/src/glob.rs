//! Glob matching with Redis's rules (KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE,
//! PUBSUB CHANNELS, COMMAND LIST FILTERBY, FUNCTION LIST): `*` any run, `?` one
//! byte, `[abc]`, `[^abc]`, `[a-z]` (reversed ranges allowed), and `\`
//! escaping the next byte. Bytes, not characters.
//!
//! Matching runs in O(pattern × text) time whatever the input: a `*` is
//! remembered, and on a mismatch only the most recent `*` takes one more byte
//! (earlier stars never need to, because every other element consumes exactly
//! one byte). Patterns such as `a*a*a*...b` against a long run of `a`s
//! otherwise take exponential time while the caller holds a lock.
//!
//! Redis 7.0's quirks, kept so answers are the same (checked against
//! redis-server 7.0.15):
//! - a non-empty pattern never matches the empty string, not even `*`
//!   (callers special-case a lone `*` where Redis does);
//! - a pattern with more than 1000 separate `*` runs followed by something
//!   else matches nothing (Redis's recursion limit);
//! - range ends and the byte are compared as *signed* bytes, so `[\x00-\xff]`
//!   is the range `\xff..\x00` and matches only those two bytes; with nocase
//!   the ends are swapped into order first and lowercased after, so `[Z-a]`
//!   matches nothing;
//! - `\x` inside a class compares case-sensitively even with nocase;
//! - an unterminated class runs to the end of the pattern; `[a-]` is the range
//!   `a..]`; a trailing `\` is a literal backslash.

/// Redis stops recursing (and fails the match) past this many `*` runs.
const MAX_STARS: usize = 1000;

pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    if text.is_empty() {
        return pattern.is_empty();
    }
    let (mut p, mut s) = (0usize, 0usize);
    let mut stars = 0usize;
    // Where to resume after a mismatch: the element after the latest `*`, and
    // the text position that `*` last stopped at.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if s == text.len() {
            while pattern.get(p) == Some(&b'*') {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
        } else if p < pattern.len() {
            if pattern[p] == b'*' {
                while pattern.get(p) == Some(&b'*') {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                stars += 1;
                if stars > MAX_STARS {
                    return false;
                }
                resume = Some((p, s));
                continue;
            }
            let (ok, next) = element(pattern, p, text[s], nocase);
            if ok {
                p = next;
                s += 1;
                continue;
            }
        }
        // Mismatch: let the latest `*` swallow one more byte. It never takes
        // the last byte, which could only leave the rest to match "" (never).
        match resume {
            Some((rp, rs)) if rs + 1 < text.len() => {
                resume = Some((rp, rs + 1));
                p = rp;
                s = rs + 1;
            }
            _ => return false,
        }
    }
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// Matches the one-byte element (not `*`) starting at `pattern[p]` against
/// `c`; answers whether it matched and where the next element starts. Where
/// an element ends depends only on the pattern.
fn element(pattern: &[u8], mut p: usize, c: u8, nocase: bool) -> (bool, usize) {
    let rest = pattern.len() - p;
    match pattern[p] {
        b'?' => (true, p + 1),
        b'\\' if rest >= 2 => (eq(pattern[p + 1], c, nocase), p + 2),
        b'[' => {
            p += 1;
            let negate = pattern.get(p) == Some(&b'^');
            if negate {
                p += 1;
            }
            let mut hit = false;
            loop {
                let rest = pattern.len() - p;
                match pattern.get(p) {
                    // Unterminated: the class runs to the end of the pattern.
                    None => break,
                    Some(b']') => {
                        p += 1;
                        break;
                    }
                    Some(b'\\') if rest >= 2 => {
                        hit |= pattern[p + 1] == c;
                        p += 2;
                    }
                    Some(&lo) if rest >= 3 && pattern[p + 1] == b'-' => {
                        hit |= in_range(lo, pattern[p + 2], c, nocase);
                        p += 3;
                    }
                    Some(&b) => {
                        hit |= eq(b, c, nocase);
                        p += 1;
                    }
                }
            }
            (hit != negate, p)
        }
        b => (eq(b, c, nocase), p + 1),
    }
}

/// Range test as Redis does it: signed bytes, ends put in order, then
/// (nocase) lowercased.
fn in_range(a: u8, b: u8, c: u8, nocase: bool) -> bool {
    let (mut lo, mut hi) = if (a as i8) > (b as i8) {
        (b, a)
    } else {
        (a, b)
    };
    let mut c = c;
    if nocase {
        lo = lo.to_ascii_lowercase();
        hi = hi.to_ascii_lowercase();
        c = c.to_ascii_lowercase();
    }
    (lo as i8) <= (c as i8) && (c as i8) <= (hi as i8)
}

#[cfg(test)]
#[path = "glob_tests.rs"]
mod tests;
