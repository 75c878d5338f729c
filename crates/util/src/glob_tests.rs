use super::glob_match as m;

#[test]
fn redis_glob_cases() {
    assert!(m(b"", b"", false));
    assert!(m(b"h?llo", b"hello", false));
    assert!(m(b"h*llo", b"heeeello", false));
    assert!(m(b"h[ae]llo", b"hallo", false));
    assert!(!m(b"h[^e]llo", b"hello", false));
    assert!(m(b"h[a-b]llo", b"hbllo", false));
    assert!(m(b"h[b-a]llo", b"hallo", false));
    assert!(m(b"a\\*b", b"a*b", false));
    assert!(!m(b"a\\*b", b"axb", false));
    assert!(m(b"orders.*", b"orders.created", false));
    assert!(!m(b"orders.*", b"order", false));
    assert!(m(b"HELLO", b"hello", true));
    assert!(m(b"*o*", b"foo", false));
    assert!(!m(b"a?", b"a", false));
    assert!(m(b"maxmemory*", b"maxmemory-policy", false));
}

/// Answers checked against redis-server 7.0.15 (KEYS, CONFIG GET, PSUBSCRIBE).
#[test]
fn redis_quirks() {
    // A non-empty pattern never matches "" (SCAN special-cases a lone `*`).
    assert!(!m(b"*", b"", false));
    assert!(!m(b"**", b"", false));
    assert!(!m(b"a", b"", false));
    // Signed byte ranges.
    assert!(m(b"[\x00-\xff]", b"\xff", false));
    assert!(m(b"[\x00-\xff]", b"\x00", false));
    assert!(!m(b"[\x00-\xff]", b"a", false));
    assert!(!m(b"[\x00-\xff]", b"\x80", false));
    assert!(m(b"[a-\x80]", b"\x80", false));
    assert!(m(b"[\x7f-\x81]", b"a", false));
    assert!(!m(b"[\x7f-\x81]", b"\x80", false));
    // nocase lowercases after ordering the ends.
    assert!(!m(b"[Z-a]axmemory", b"maxmemory", true));
    assert!(!m(b"[l-N]axmemory", b"maxmemory", true));
    assert!(m(b"[M]axmemory", b"maxmemory", true));
    // An escape inside a class is case-sensitive even with nocase.
    assert!(!m(b"[\\M]axmemory", b"maxmemory", true));
    assert!(m(b"\\Maxmemory", b"maxmemory", true));
    // Unterminated classes, `[a-]`, trailing backslash.
    assert!(m(b"[abc", b"b", false));
    assert!(!m(b"[", b"[", false));
    assert!(m(b"[^", b"x", false));
    assert!(!m(b"[]]", b"]", false));
    assert!(!m(b"[]", b"a", false));
    assert!(m(b"[^]", b"a", false));
    assert!(m(b"[a-]", b"]", false));
    assert!(m(b"[a-]", b"_", false));
    assert!(!m(b"[a-]", b"b", false));
    assert!(m(b"a\\", b"a\\", false));
    assert!(m(b"[\\]]", b"]", false));
}

#[test]
fn star_limit_as_redis() {
    for (k, want) in [(999, true), (1000, true), (1001, false), (1002, false)] {
        let pat = b"*a".repeat(k);
        assert_eq!(m(&pat, &b"a".repeat(k), false), want, "{k} stars");
    }
    // A trailing star run does not count against the limit, any other does.
    let mut pat = b"*a".repeat(1000);
    pat.push(b'*');
    assert!(m(&pat, &b"a".repeat(1500), false));
    let mut pat = b"a*".repeat(1500);
    pat.push(b'*');
    assert!(!m(&pat, &b"a".repeat(1500), false));
}

#[test]
fn pathological_patterns_are_fast() {
    let start = std::time::Instant::now();
    let pat = [b"a*".repeat(20), b"b".to_vec()].concat();
    assert!(!m(&pat, &b"a".repeat(40), false));
    let pat = [b"*a".repeat(500), b"*b".to_vec()].concat();
    assert!(!m(&pat, &b"a".repeat(5000), false));
    let pat = [b"?*".repeat(300), b"[b]".to_vec()].concat();
    assert!(!m(&pat, &b"a".repeat(5000), true));
    // Seconds of slack for a loaded debug build; the old matcher took years.
    assert!(start.elapsed().as_secs() < 20);
}

/// The obvious recursive matcher for the same rules, written independently:
/// the pattern is first split into elements, then matched by trying every
/// length for each `*`. Exponential, so only for short inputs.
mod reference {
    pub enum Elem {
        Star,
        Any,
        Byte(u8),
        /// (negated, items): an item is (lo, hi, is_range), or an escaped byte
        /// (compared case-sensitively).
        Class(bool, Vec<Item>),
    }

    pub enum Item {
        Escaped(u8),
        Byte(u8),
        Range(u8, u8),
    }

    pub fn parse(p: &[u8]) -> Vec<Elem> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => {
                    if !matches!(out.last(), Some(Elem::Star)) {
                        out.push(Elem::Star);
                    }
                    i += 1;
                }
                b'?' => {
                    out.push(Elem::Any);
                    i += 1;
                }
                b'\\' if i + 1 < p.len() => {
                    out.push(Elem::Byte(p[i + 1]));
                    i += 2;
                }
                b'[' => {
                    i += 1;
                    let neg = i < p.len() && p[i] == b'^';
                    if neg {
                        i += 1;
                    }
                    let mut items = Vec::new();
                    while i < p.len() && p[i] != b']' {
                        if p[i] == b'\\' && i + 1 < p.len() {
                            items.push(Item::Escaped(p[i + 1]));
                            i += 2;
                        } else if i + 2 < p.len() && p[i + 1] == b'-' {
                            items.push(Item::Range(p[i], p[i + 2]));
                            i += 3;
                        } else {
                            items.push(Item::Byte(p[i]));
                            i += 1;
                        }
                    }
                    i += 1; // the `]`, or past the end
                    out.push(Elem::Class(neg, items));
                }
                b => {
                    out.push(Elem::Byte(b));
                    i += 1;
                }
            }
        }
        out
    }

    fn signed_lower(b: u8, nocase: bool) -> i32 {
        let b = if nocase { b.to_ascii_lowercase() } else { b };
        b as i8 as i32
    }

    fn one(e: &Elem, c: u8, nocase: bool) -> bool {
        let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
        match e {
            Elem::Star => unreachable!(),
            Elem::Any => true,
            Elem::Byte(b) => fold(*b) == fold(c),
            Elem::Class(neg, items) => {
                let hit = items.iter().any(|it| match *it {
                    Item::Escaped(b) => b == c,
                    Item::Byte(b) => fold(b) == fold(c),
                    Item::Range(a, b) => {
                        let (a, b) = if (a as i8) <= (b as i8) {
                            (a, b)
                        } else {
                            (b, a)
                        };
                        let x = signed_lower(c, nocase);
                        signed_lower(a, nocase) <= x && x <= signed_lower(b, nocase)
                    }
                });
                hit != *neg
            }
        }
    }

    pub fn matches(p: &[Elem], s: &[u8], nocase: bool) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(Elem::Star) => (0..=s.len()).any(|k| matches(&p[1..], &s[k..], nocase)),
            Some(e) => !s.is_empty() && one(e, s[0], nocase) && matches(&p[1..], &s[1..], nocase),
        }
    }

    pub fn glob(p: &[u8], s: &[u8], nocase: bool) -> bool {
        if s.is_empty() {
            return p.is_empty();
        }
        matches(&parse(p), s, nocase)
    }
}

#[test]
fn agrees_with_reference_on_random_inputs() {
    const PAT: &[u8] = b"ab*?[]^-\\A\x80\xff";
    const TXT: &[u8] = b"abAB]-\\\x80\xff";
    let mut seed = 0x5eed_u64;
    let mut pick = |set: &[u8], max: u64| -> Vec<u8> {
        let n = crate::rand::next(&mut seed) % (max + 1);
        (0..n)
            .map(|_| set[(crate::rand::next(&mut seed) % set.len() as u64) as usize])
            .collect()
    };
    for _ in 0..200_000 {
        let p = pick(PAT, 8);
        let s = pick(TXT, 7);
        for nocase in [false, true] {
            assert_eq!(
                m(&p, &s, nocase),
                reference::glob(&p, &s, nocase),
                "pattern {:?} text {:?} nocase {nocase}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(&s)
            );
        }
    }
}
