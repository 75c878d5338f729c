//! Glob matching against an obviously-correct reference: a memoized
//! recursion over (pattern position, text position) written from Redis
//! 7.0.15's documented rules and its observed answers (checked with
//! redis-server: KEYS for case-sensitive matching, CONFIG GET for nocase).
//!
//! The rules, quirks included:
//! - `*` matches any run, `?` any one byte, `\x` the byte x (a trailing
//!   `\` is a literal backslash), any other byte itself (ASCII case folded
//!   with nocase);
//! - `[...]` one byte: `^` first negates; `\x` is x compared exactly (even
//!   with nocase); `a-z` a range whose ends and the byte compare as signed
//!   bytes, swapped into order and then (nocase) lowercased, so `[Z-a]`
//!   matches nothing; `]` closes, else the class runs to the pattern's end;
//! - the empty text matches only the empty pattern (the callers
//!   special-case a lone `*`); once a non-empty text is used up, the rest of
//!   the pattern must be stars.
//!
//! Input: byte 0: nocase (bit 0) and where the pattern ends; the rest is
//! pattern then text, each at most 48 bytes.
#![no_main]

use ferrokv::util::glob::glob_match;
use libfuzzer_sys::fuzz_target;

struct Reference<'a> {
    p: &'a [u8],
    s: &'a [u8],
    nocase: bool,
    memo: Vec<Option<bool>>,
}

impl Reference<'_> {
    fn eq(&self, a: u8, b: u8) -> bool {
        a == b || (self.nocase && a.eq_ignore_ascii_case(&b))
    }

    /// Whether the one-byte element at `i` matches `c`, and where the next
    /// element starts.
    fn element(&self, i: usize, c: u8) -> (bool, usize) {
        let p = self.p;
        match p[i] {
            b'?' => (true, i + 1),
            b'\\' if i + 1 < p.len() => (self.eq(p[i + 1], c), i + 2),
            b'[' => {
                let mut j = i + 1;
                let negate = p.get(j) == Some(&b'^');
                if negate {
                    j += 1;
                }
                let mut hit = false;
                while j < p.len() {
                    if p[j] == b'\\' && j + 1 < p.len() {
                        hit |= p[j + 1] == c;
                        j += 2;
                    } else if p[j] == b']' {
                        j += 1;
                        break;
                    } else if j + 2 < p.len() && p[j + 1] == b'-' {
                        let (mut lo, mut hi, mut b) = (p[j] as i8, p[j + 2] as i8, c as i8);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        if self.nocase {
                            let lower = |x: i8| (x as u8).to_ascii_lowercase() as i8;
                            (lo, hi, b) = (lower(lo), lower(hi), lower(b));
                        }
                        hit |= lo <= b && b <= hi;
                        j += 3;
                    } else {
                        hit |= self.eq(p[j], c);
                        j += 1;
                    }
                }
                (hit != negate, j)
            }
            other => (self.eq(other, c), i + 1),
        }
    }

    /// Pattern from `i` against the non-empty text from `k`.
    fn at(&mut self, i: usize, k: usize) -> bool {
        let slot = i * (self.s.len() + 1) + k;
        if let Some(v) = self.memo[slot] {
            return v;
        }
        let v = if i == self.p.len() {
            false
        } else if self.p[i] == b'*' {
            let mut q = i;
            while q < self.p.len() && self.p[q] == b'*' {
                q += 1;
            }
            q == self.p.len() || (k..self.s.len()).any(|k2| self.at(q, k2))
        } else {
            let (ok, next) = self.element(i, self.s[k]);
            if !ok {
                false
            } else if k + 1 == self.s.len() {
                self.p[next..].iter().all(|&c| c == b'*')
            } else {
                self.at(next, k + 1)
            }
        };
        self.memo[slot] = Some(v);
        v
    }
}

fn reference(p: &[u8], s: &[u8], nocase: bool) -> bool {
    if s.is_empty() {
        return p.is_empty();
    }
    let mut r = Reference {
        p,
        s,
        nocase,
        memo: vec![None; (p.len() + 1) * (s.len() + 1)],
    };
    r.at(0, 0)
}

fuzz_target!(|input: &[u8]| {
    let [flags, rest @ ..] = input else {
        return;
    };
    let nocase = flags & 1 == 1;
    let split = ((flags >> 1) as usize).min(rest.len());
    let (p, s) = rest.split_at(split);
    if p.len() > 48 || s.len() > 48 {
        return;
    }
    let want = reference(p, s, nocase);
    let got = glob_match(p, s, nocase);
    assert_eq!(
        got,
        want,
        "pattern {:?} text {:?} nocase {nocase}",
        String::from_utf8_lossy(p),
        String::from_utf8_lossy(s)
    );
});
