//! Command-level tests through the in-process harness: a model-based run
//! (random commands checked against a plain map) under the default and tiny
//! encoding thresholds, and the write effects.

use std::collections::HashMap;

use crate::config::Config;
use crate::testkit::Harness;
use crate::util::num::fmt_double;

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn dbl(d: f64) -> String {
    let mut b = [0u8; 64];
    bulk(std::str::from_utf8(fmt_double(d, &mut b)).unwrap())
}

fn int(n: usize) -> String {
    format!(":{n}\r\n")
}

const NULL: &str = "$-1\r\n";

/// The model: member -> score, and its sorted view.
#[derive(Default)]
struct Model(HashMap<String, f64>);

impl Model {
    fn sorted(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self.0.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        v
    }

    fn list(items: &[(String, f64)], withscores: bool) -> String {
        let mut out = format!("*{}\r\n", items.len() * if withscores { 2 } else { 1 });
        for (m, s) in items {
            out += &bulk(m);
            if withscores {
                out += &dbl(*s);
            }
        }
        out
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        crate::util::rand::next(&mut self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run_model(mut h: Harness, seed: u64, rounds: usize) {
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let long = "L".repeat(70);
    for _ in 0..rounds {
        let member = match rng.below(30) {
            0 => long.clone(),
            n => format!("m{n}"),
        };
        let score = rng.below(21) as f64 / 2.0 - 3.0;
        let sc = format!("{score}");
        match rng.below(12) {
            0..=2 => {
                let opt = ["", "NX", "XX", "GT", "LT", "CH"][rng.below(6) as usize];
                let mut args = vec!["ZADD", "z"];
                if !opt.is_empty() {
                    args.push(opt);
                }
                args.extend([sc.as_str(), member.as_str()]);
                let cur = model.0.get(&member).copied();
                let (add, change) = match (opt, cur) {
                    ("XX", None) => (false, false),
                    ("NX", Some(_)) => (false, false),
                    ("GT", Some(c)) => (false, score > c),
                    ("LT", Some(c)) => (false, score < c),
                    (_, None) => (true, false),
                    (_, Some(c)) => (false, score != c),
                };
                if add || change {
                    model.0.insert(member.clone(), score);
                }
                let n = usize::from(add) + usize::from(opt == "CH" && change);
                assert_eq!(h.run(&args), int(n), "{args:?}");
            }
            3 => {
                let new = model.0.get(&member).copied().unwrap_or(0.0) + score;
                model.0.insert(member.clone(), new);
                assert_eq!(h.run(&["ZINCRBY", "z", &sc, &member]), dbl(new));
            }
            4 => {
                let gone = model.0.remove(&member).is_some();
                assert_eq!(h.run(&["ZREM", "z", &member]), int(gone as usize));
            }
            5 => {
                let want = model.0.get(&member).map_or(NULL.into(), |s| dbl(*s));
                assert_eq!(h.run(&["ZSCORE", "z", &member]), want);
                let sorted = model.sorted();
                let r = sorted.iter().position(|(m, _)| *m == member);
                let want = r.map_or(NULL.into(), int);
                assert_eq!(h.run(&["ZRANK", "z", &member]), want);
                let want = r.map_or(NULL.into(), |r| int(sorted.len() - 1 - r));
                assert_eq!(h.run(&["ZREVRANK", "z", &member]), want);
            }
            6 => {
                let sorted = model.sorted();
                let (a, b) = (rng.below(40) as i64 - 20, rng.below(40) as i64 - 20);
                let n = sorted.len() as i64;
                let norm = |x: i64| if x < 0 { x + n } else { x };
                let (s, e) = (norm(a).max(0), norm(b).min(n - 1));
                let want: Vec<_> = if s > e || s >= n {
                    vec![]
                } else {
                    sorted[s as usize..=e as usize].to_vec()
                };
                let got = h.run(&["ZRANGE", "z", &a.to_string(), &b.to_string(), "WITHSCORES"]);
                assert_eq!(got, Model::list(&want, true));
            }
            7 => {
                let (lo, hi) = (score, score + rng.below(8) as f64 / 2.0);
                let ex = rng.below(2) == 1;
                let min = if ex {
                    format!("({lo}")
                } else {
                    format!("{lo}")
                };
                let want: Vec<_> = model
                    .sorted()
                    .into_iter()
                    .filter(|(_, s)| (if ex { *s > lo } else { *s >= lo }) && *s <= hi)
                    .collect();
                let max = format!("{hi}");
                assert_eq!(
                    h.run(&["ZRANGEBYSCORE", "z", &min, &max]),
                    Model::list(&want, false)
                );
                assert_eq!(h.run(&["ZCOUNT", "z", &min, &max]), int(want.len()));
                let rev: Vec<_> = want.iter().rev().skip(1).take(2).cloned().collect();
                assert_eq!(
                    h.run(&[
                        "ZREVRANGEBYSCORE",
                        "z",
                        &max,
                        &min,
                        "WITHSCORES",
                        "LIMIT",
                        "1",
                        "2"
                    ]),
                    Model::list(&rev, true)
                );
            }
            8 => {
                let count = rng.below(4) as usize;
                let max = rng.below(2) == 1;
                let mut sorted = model.sorted();
                if max {
                    sorted.reverse();
                }
                let popped: Vec<_> = sorted.into_iter().take(count).collect();
                for (m, _) in &popped {
                    model.0.remove(m);
                }
                let cmd = if max { "ZPOPMAX" } else { "ZPOPMIN" };
                assert_eq!(
                    h.run(&[cmd, "z", &count.to_string()]),
                    Model::list(&popped, true)
                );
            }
            9 => {
                let sorted = model.sorted();
                let (a, b) = (rng.below(6) as usize, rng.below(6) as usize);
                let removed: Vec<_> = sorted
                    .iter()
                    .skip(a)
                    .take((b + 1).saturating_sub(a))
                    .collect();
                for (m, _) in &removed {
                    model.0.remove(m);
                }
                let got = h.run(&["ZREMRANGEBYRANK", "z", &a.to_string(), &b.to_string()]);
                assert_eq!(got, int(removed.len()));
            }
            10 => {
                let hi = score + 1.0;
                let doomed: Vec<String> = model
                    .0
                    .iter()
                    .filter(|(_, s)| **s >= score && **s <= hi)
                    .map(|(m, _)| m.clone())
                    .collect();
                for m in &doomed {
                    model.0.remove(m);
                }
                let got = h.run(&["ZREMRANGEBYSCORE", "z", &sc, &format!("{hi}")]);
                assert_eq!(got, int(doomed.len()));
            }
            _ => {
                assert_eq!(h.run(&["ZCARD", "z"]), int(model.0.len()));
                assert_eq!(
                    h.run(&["EXISTS", "z"]),
                    int(usize::from(!model.0.is_empty()))
                );
                let all = Model::list(&model.sorted(), true);
                assert_eq!(h.run(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]), all);
                // A copy through ZUNIONSTORE holds the same members.
                h.run(&["ZUNIONSTORE", "copy", "1", "z"]);
                assert_eq!(h.run(&["ZRANGE", "copy", "0", "-1", "WITHSCORES"]), all);
            }
        }
    }
}

#[test]
fn model_based_default_thresholds() {
    for seed in 1..4 {
        run_model(Harness::new(), seed, 3000);
    }
}

#[test]
fn model_based_tiny_thresholds() {
    for seed in 10..13 {
        let cfg = Config::default();
        cfg.zset_max_listpack_entries.set(3);
        cfg.zset_max_listpack_value.set(4);
        run_model(Harness::with_config(cfg), seed, 3000);
    }
}

#[test]
fn encodings_follow_the_thresholds() {
    let cfg = Config::default();
    cfg.zset_max_listpack_entries.set(2);
    let mut h = Harness::with_config(cfg);
    h.run(&["ZADD", "z", "1", "a", "2", "b"]);
    assert_eq!(h.run(&["OBJECT", "ENCODING", "z"]), bulk("listpack"));
    h.run(&["ZADD", "z", "3", "c"]);
    assert_eq!(h.run(&["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    h.run(&["ZREM", "z", "c", "b"]);
    assert_eq!(h.run(&["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    assert_eq!(h.run(&["TYPE", "z"]), "+zset\r\n");
    h.run(&["ZUNIONSTORE", "u", "1", "z"]);
    assert_eq!(h.run(&["OBJECT", "ENCODING", "u"]), bulk("listpack"));
}

#[test]
fn write_effects() {
    let mut h = Harness::new();
    h.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    h.run(&["ZADD", "z", "1", "a"]);
    h.run(&["ZREM", "z", "nope"]);
    assert_eq!(h.take_effects(), vec!["0: ZADD z 1 a 2 b 3 c"]);
    h.run(&["ZMPOP", "2", "none", "z", "MAX", "COUNT", "5"]);
    // Propagated with the number popped (three), as Redis 7.0.
    assert_eq!(h.take_effects(), vec!["0: ZPOPMAX z 3"]);
    h.run(&["ZADD", "z", "1", "a"]);
    h.run(&["ZPOPMIN", "z"]);
    h.run(&["ZPOPMIN", "z"]);
    assert_eq!(h.take_effects(), vec!["0: ZADD z 1 a", "0: ZPOPMIN z"]);
    h.run(&["ZUNIONSTORE", "d", "1", "none"]);
    assert!(
        h.take_effects().is_empty(),
        "nothing to delete, nothing published"
    );
    h.run(&["ZADD", "z", "1", "a"]);
    h.run(&["ZUNIONSTORE", "d", "1", "z"]);
    h.run(&["ZINTERSTORE", "d", "1", "none"]);
    assert_eq!(
        h.take_effects(),
        vec![
            "0: ZADD z 1 a",
            "0: ZUNIONSTORE d 1 z",
            "0: ZINTERSTORE d 1 none"
        ]
    );
}

/// Bulk strings of a RESP reply, in order (enough for flat arrays).
fn bulks(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = reply.split("\r\n");
    while let Some(l) = lines.next() {
        if l.starts_with('$') && l != "$-1" {
            out.push(lines.next().unwrap().to_string());
        }
    }
    out
}

#[test]
fn zscan_of_a_full_set_returns_every_member_that_stays() {
    let mut h = Harness::new();
    for i in 0..1000 {
        h.run(&[
            "ZADD",
            "z",
            &format!("{}", i as f64 / 4.0),
            &format!("m{i}"),
        ]);
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let r = bulks(&h.run(&["ZSCAN", "z", &cursor, "COUNT", "20"]));
        cursor = r[0].clone();
        for pair in r[1..].chunks(2) {
            let i: usize = pair[0][1..].parse().unwrap();
            assert_eq!(pair[1], dbl(i as f64 / 4.0).split("\r\n").nth(1).unwrap());
            seen.insert(i);
        }
        // Members removed mid-scan may or may not show up; the rest must.
        h.run(&["ZREM", "z", &format!("m{}", 999 - calls)]);
        calls += 1;
        if cursor == "0" {
            break;
        }
    }
    assert!(calls > 5, "a full set is scanned in steps");
    assert!((0..1000 - calls).all(|i| seen.contains(&i)));
    let r = bulks(&h.run(&["ZSCAN", "z", "0", "MATCH", "m1?", "COUNT", "10000"]));
    assert_eq!(r.len(), 1 + 2 * 10);
}

#[test]
fn zrandmember_distinct_and_repeated_picks_on_both_encodings() {
    for entries in [128, 0] {
        let cfg = Config::default();
        cfg.zset_max_listpack_entries.set(entries);
        let mut h = Harness::with_config(cfg);
        for i in 0..50 {
            h.run(&["ZADD", "z", &i.to_string(), &format!("m{i}")]);
        }
        for n in [1, 5, 20, 49] {
            let r = bulks(&h.run(&["ZRANDMEMBER", "z", &n.to_string()]));
            let distinct: std::collections::HashSet<_> = r.iter().collect();
            assert_eq!((r.len(), distinct.len()), (n, n));
        }
        let r = bulks(&h.run(&["ZRANDMEMBER", "z", "-200", "WITHSCORES"]));
        assert_eq!(r.len(), 400);
        for pair in r.chunks(2) {
            assert_eq!(pair[0][1..], pair[1]);
        }
        let one = bulks(&h.run(&["ZRANDMEMBER", "z"]));
        assert!(one[0].starts_with('m'));
    }
}

/// The plain-decimal fast path reads exactly what libc's strtod reads.
#[test]
fn plain_decimals_parse_as_strtod_does() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut fixed: Vec<String> = [
        "0",
        "-0",
        "+0",
        "1",
        "-1",
        ".5",
        "5.",
        ".",
        "+",
        "-",
        "e5",
        "1e",
        "1e+",
        "1e-400",
        "0e-400",
        "1e309",
        "-1e309",
        "4.9e-324",
        "2.4e-324",
        "1.7976931348623157e308",
        "13.361389",
        "38.115556",
        "0.1",
        "9007199254740993",
        "1..2",
        "1e5e5",
        "--1",
        "+-1",
        "00000000000000000000000000001",
        "123456789012345678901234567890",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    const CH: &[u8] = b"0123456789.-+eE";
    for _ in 0..20000 {
        let n = 1 + (next() % 24) as usize;
        fixed.push(
            (0..n)
                .map(|_| CH[(next() % CH.len() as u64) as usize] as char)
                .collect(),
        );
        let mant = next() % 10_000_000_000;
        let exp = (next() % 700) as i64 - 350;
        fixed.push(format!("{mant}.{}e{exp}", next() % 1000));
    }
    for s in &fixed {
        let b = s.as_bytes();
        let slow = super::libc_strtod(b);
        if let Some(v) = super::plain_decimal(b) {
            let (w, range_err) = slow.unwrap_or_else(|| panic!("{s}: libc rejects"));
            assert_eq!(v.to_bits(), w.to_bits(), "{s}");
            assert!(!range_err, "{s}");
        }
        assert_eq!(
            super::strtod(b).map(|(v, _)| v.to_bits()),
            slow.map(|(v, _)| v.to_bits()),
            "{s}"
        );
    }
}
