//! Set command tests through the in-process harness: RESP3 reply types,
//! the effect stream, and a model-based run against a `HashSet`.

use std::collections::{HashMap, HashSet};

use crate::testkit::Harness;

#[test]
fn resp3_reply_types_match_redis() {
    let mut h = Harness::new();
    h.run(&["SADD", "s", "2", "1"]);
    h.run(&["SADD", "t", "2", "3"]);
    // Sets where Redis replies a set, arrays where it replies an array.
    assert_eq!(h.run3(&["SMEMBERS", "s"]), "~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(h.run3(&["SMEMBERS", "nosuch"]), "~0\r\n");
    assert_eq!(h.run3(&["SINTER", "s", "t"]), "~1\r\n$1\r\n2\r\n");
    assert_eq!(h.run3(&["SINTER", "s", "nosuch"]), "~0\r\n");
    assert_eq!(
        h.run3(&["SUNION", "s", "t"]),
        "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert_eq!(h.run3(&["SDIFF", "s", "t"]), "~1\r\n$1\r\n1\r\n");
    assert_eq!(
        h.run3(&["SRANDMEMBER", "s", "5"]),
        "*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(h.run3(&["SRANDMEMBER", "nosuch", "5"]), "*0\r\n");
    assert_eq!(h.run3(&["SRANDMEMBER", "nosuch"]), "_\r\n");
    assert_eq!(h.run3(&["SPOP", "nosuch"]), "_\r\n");
    assert_eq!(h.run3(&["SPOP", "nosuch", "2"]), "~0\r\n");
    assert_eq!(h.run3(&["SPOP", "s", "0"]), "~0\r\n");
    assert_eq!(h.run3(&["SMISMEMBER", "s", "1", "9"]), "*2\r\n:1\r\n:0\r\n");
    assert_eq!(
        h.run3(&["SSCAN", "s", "0"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(h.run3(&["SPOP", "s", "9"]), "~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
}

#[test]
fn spop_is_replayed_as_srem_or_del() {
    let mut h = Harness::new();
    h.run(&["SADD", "s", "1", "2", "3", "4"]);
    h.take_effects();
    let one = h.run(&["SPOP", "s"]);
    let member = one.lines().nth(1).unwrap().to_string();
    assert_eq!(h.take_effects(), vec![format!("0: SREM s {member}")]);

    let two = h.run(&["SPOP", "s", "2"]);
    let popped: Vec<&str> = two.lines().skip(2).step_by(2).collect();
    assert_eq!(popped.len(), 2);
    assert_eq!(
        h.take_effects(),
        vec![format!("0: SREM s {}", popped.join(" "))]
    );

    // The last member by a plain SPOP: still an SREM (the key goes with it).
    h.run(&["SPOP", "s"]);
    assert!(h.take_effects()[0].starts_with("0: SREM s "));
    assert_eq!(h.run(&["EXISTS", "s"]), ":0\r\n");

    // A count covering the whole set: DEL.
    h.run(&["SADD", "t", "a", "b"]);
    h.take_effects();
    h.run(&["SPOP", "t", "5"]);
    assert_eq!(h.take_effects(), vec!["0: DEL t"]);

    // Nothing popped, nothing published.
    h.run(&["SADD", "u", "a"]);
    h.take_effects();
    h.run(&["SPOP", "u", "0"]);
    h.run(&["SPOP", "nosuch"]);
    h.run(&["SPOP", "nosuch", "3"]);
    assert!(h.take_effects().is_empty());
}

#[test]
fn writes_publish_only_real_changes() {
    let mut h = Harness::new();
    h.run(&["SADD", "a", "1", "2"]);
    h.run(&["SADD", "a", "1"]);
    h.run(&["SREM", "a", "9"]);
    h.run(&["SMOVE", "a", "a", "1"]);
    h.run(&["SMOVE", "a", "b", "9"]);
    h.run(&["SINTERSTORE", "d", "a", "nosuch"]);
    h.run(&["SUNIONSTORE", "d", "nosuch"]);
    h.run(&["SDIFFSTORE", "d", "a", "a"]);
    assert_eq!(h.take_effects(), vec!["0: SADD a 1 2"]);
    h.run(&["SMOVE", "a", "b", "1"]);
    h.run(&["SINTERSTORE", "d", "a", "a"]);
    h.run(&["SDIFFSTORE", "d", "a", "a"]);
    assert_eq!(
        h.take_effects(),
        vec![
            "0: SMOVE a b 1",
            "0: SINTERSTORE d a a",
            "0: SDIFFSTORE d a a"
        ]
    );
}

#[test]
fn reads_count_keyspace_hits() {
    let mut h = Harness::new();
    h.run(&["SADD", "a", "1"]);
    let hits = |h: &Harness| (h.stats.keyspace_hits.get(), h.stats.keyspace_misses.get());
    let before = hits(&h);
    h.run(&["SISMEMBER", "a", "1"]);
    h.run(&["SCARD", "nosuch"]);
    h.run(&["SINTER", "a", "nosuch"]);
    // Store forms look their sources up for writing: not counted.
    h.run(&["SINTERSTORE", "d", "a", "nosuch"]);
    let after = hits(&h);
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 2));
}

/// Members of an array reply (RESP2 bulk strings).
fn bulks(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n");
    let head = lines.next().unwrap();
    assert!(head.starts_with('*'), "not an array: {reply:?}");
    let n: usize = head[1..].parse().unwrap();
    (0..n)
        .map(|_| {
            lines.next().unwrap();
            lines.next().unwrap().to_string()
        })
        .collect()
}

/// The encoding Redis 7.0 would report, tracked beside the model.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Enc {
    IntSet,
    HashTable,
}

fn is_int(m: &str) -> bool {
    crate::util::num::parse_canonical_i64(m.as_bytes()).is_some()
}

struct Model {
    sets: HashMap<String, HashSet<String>>,
    enc: HashMap<String, Enc>,
    intset_max: usize,
}

impl Model {
    /// Redis's setTypeAdd rules, applied member by member.
    fn add(&mut self, key: &str, members: &[String]) -> usize {
        let set = self.sets.entry(key.to_string()).or_default();
        let enc = self.enc.entry(key.to_string()).or_insert(Enc::IntSet);
        let mut added = 0;
        for m in members {
            if set.insert(m.clone()) {
                added += 1;
                if *enc == Enc::IntSet && (!is_int(m) || set.len() > self.intset_max) {
                    *enc = Enc::HashTable;
                }
            }
        }
        added
    }

    /// A fresh set built from members (S*STORE, creation).
    fn built(&self, members: impl IntoIterator<Item = String>) -> (HashSet<String>, Enc) {
        let set: HashSet<String> = members.into_iter().collect();
        let enc = if set.iter().all(|m| is_int(m)) && set.len() <= self.intset_max {
            Enc::IntSet
        } else {
            Enc::HashTable
        };
        (set, enc)
    }

    fn store(&mut self, key: &str, members: HashSet<String>) -> usize {
        let n = members.len();
        if n == 0 {
            self.drop_key(key);
        } else {
            let (set, enc) = self.built(members);
            self.sets.insert(key.to_string(), set);
            self.enc.insert(key.to_string(), enc);
        }
        n
    }

    fn drop_key(&mut self, key: &str) {
        self.sets.remove(key);
        self.enc.remove(key);
    }

    fn cleanup(&mut self, key: &str) {
        if self.sets.get(key).is_some_and(|s| s.is_empty()) {
            self.drop_key(key);
        }
    }

    fn get(&self, key: &str) -> HashSet<String> {
        self.sets.get(key).cloned().unwrap_or_default()
    }
}

fn model_run(intset_max: usize, seed: u64, steps: usize) {
    let mut h = Harness::new();
    h.srv.config.set_max_intset_entries.set(intset_max as i64);
    let mut model = Model {
        sets: HashMap::new(),
        enc: HashMap::new(),
        intset_max,
    };
    let mut x = seed;
    let mut rnd = move |n: u64| crate::util::rand::next(&mut x) % n;
    let keys = ["k1", "k2", "k3"];
    let long = "L".repeat(70);
    let member = |r: u64| -> String {
        match r % 10 {
            0..=5 => (r % 300).to_string(),
            6 => format!("-{}", r % 50 + 1),
            7 => format!("m{}", r % 200),
            8 => format!("0{}", r % 5),
            _ => format!("{long}{}", r % 3),
        }
    };
    for step in 0..steps {
        let k = keys[rnd(3) as usize];
        let k2 = keys[rnd(3) as usize];
        let op = rnd(100);
        let ctx = format!("step {step} op {op} key {k}");
        match op {
            0..=39 => {
                let ms: Vec<String> = (0..rnd(6) + 1)
                    .map(|_| {
                        // Mostly integers so that intsets live long enough to convert.
                        let r = rnd(1 << 20);
                        if rnd(8) == 0 {
                            member(r)
                        } else {
                            (r % 700).to_string()
                        }
                    })
                    .collect();
                let mut args = vec!["SADD", k];
                args.extend(ms.iter().map(|s| s.as_str()));
                let want = model.add(k, &ms);
                assert_eq!(h.run(&args), format!(":{want}\r\n"), "{ctx}");
            }
            40..=59 => {
                let ms: Vec<String> = (0..rnd(8) + 1).map(|_| member(rnd(1 << 20))).collect();
                let mut args = vec!["SREM", k];
                args.extend(ms.iter().map(|s| s.as_str()));
                let set = model.sets.entry(k.to_string()).or_default();
                let want = ms
                    .iter()
                    .collect::<HashSet<_>>()
                    .iter()
                    .filter(|m| set.remove(**m))
                    .count();
                model.cleanup(k);
                assert_eq!(h.run(&args), format!(":{want}\r\n"), "{ctx}");
            }
            60..=67 => {
                let n = rnd(12);
                let got = bulks(&h.run(&["SPOP", k, &n.to_string()]));
                let set = model.sets.entry(k.to_string()).or_default();
                assert_eq!(got.len(), (n as usize).min(set.len()), "{ctx}");
                for m in &got {
                    assert!(set.remove(m), "{ctx}: popped {m} not in the set");
                }
                model.cleanup(k);
            }
            68..=71 => {
                let m = member(rnd(1 << 20));
                let src = model.get(k);
                let want = src.contains(&m);
                if want && k != k2 {
                    model.sets.get_mut(k).unwrap().remove(&m);
                    model.cleanup(k);
                    if model.sets.contains_key(k2) {
                        model.add(k2, std::slice::from_ref(&m));
                    } else {
                        let (set, enc) = model.built([m.clone()]);
                        model.sets.insert(k2.to_string(), set);
                        model.enc.insert(k2.to_string(), enc);
                    }
                }
                assert_eq!(
                    h.run(&["SMOVE", k, k2, &m]),
                    format!(":{}\r\n", want as u8),
                    "{ctx}"
                );
            }
            72..=77 => {
                let (a, b) = (model.get(k), model.get(k2));
                let (cmd, res): (&str, HashSet<String>) = match rnd(3) {
                    0 => ("SINTERSTORE", a.intersection(&b).cloned().collect()),
                    1 => ("SUNIONSTORE", a.union(&b).cloned().collect()),
                    _ => {
                        // SDIFF of two sets always filters: the result's own members decide.
                        ("SDIFFSTORE", a.difference(&b).cloned().collect())
                    }
                };
                let dst = keys[rnd(3) as usize];
                let want = model.store(dst, res);
                assert_eq!(
                    h.run(&[cmd, dst, k, k2]),
                    format!(":{want}\r\n"),
                    "{ctx} {cmd}"
                );
            }
            78..=84 => {
                let n = rnd(10) as i64 - 5;
                let got = bulks(&h.run(&["SRANDMEMBER", k, &n.to_string()]));
                let set = model.get(k);
                let want_len = if n < 0 {
                    if set.is_empty() {
                        0
                    } else {
                        n.unsigned_abs() as usize
                    }
                } else {
                    (n as usize).min(set.len())
                };
                assert_eq!(got.len(), want_len, "{ctx}");
                assert!(got.iter().all(|m| set.contains(m)), "{ctx}");
                if n > 0 {
                    assert_eq!(
                        got.iter().collect::<HashSet<_>>().len(),
                        got.len(),
                        "{ctx}: distinct"
                    );
                }
            }
            85..=89 => {
                let mut cursor = "0".to_string();
                let mut seen = HashSet::new();
                loop {
                    let r = h.run(&["SSCAN", k, &cursor, "COUNT", "7"]);
                    let mut lines = r.split("\r\n");
                    lines.next();
                    lines.next();
                    cursor = lines.next().unwrap().to_string();
                    let rest = lines.collect::<Vec<_>>().join("\r\n");
                    seen.extend(bulks(&rest));
                    if cursor == "0" {
                        break;
                    }
                }
                assert_eq!(seen, model.get(k), "{ctx}");
            }
            _ => {
                let a = model.get(k);
                let got: HashSet<String> = bulks(&h.run(&["SMEMBERS", k])).into_iter().collect();
                assert_eq!(got, a, "{ctx}");
                assert_eq!(h.run(&["SCARD", k]), format!(":{}\r\n", a.len()), "{ctx}");
                let inter: HashSet<String> =
                    bulks(&h.run(&["SINTER", k, k2])).into_iter().collect();
                assert_eq!(
                    inter,
                    a.intersection(&model.get(k2)).cloned().collect(),
                    "{ctx}"
                );
                let diff: HashSet<String> = bulks(&h.run(&["SDIFF", k, k2])).into_iter().collect();
                assert_eq!(
                    diff,
                    a.difference(&model.get(k2)).cloned().collect(),
                    "{ctx}"
                );
                let card = h.run(&["SINTERCARD", "2", k, k2, "LIMIT", "3"]);
                let want = a.intersection(&model.get(k2)).count().min(3);
                assert_eq!(card, format!(":{want}\r\n"), "{ctx}");
            }
        }
        // Encoding and membership after every step.
        for key in keys {
            let enc = h.run(&["OBJECT", "ENCODING", key]);
            match model.enc.get(key) {
                None => assert_eq!(enc, "$-1\r\n", "{ctx}: {key} should not exist"),
                Some(Enc::IntSet) => assert_eq!(enc, "$6\r\nintset\r\n", "{ctx}: {key}"),
                Some(Enc::HashTable) => assert_eq!(enc, "$9\r\nhashtable\r\n", "{ctx}: {key}"),
            }
        }
        if step % 50 == 0 {
            for key in keys {
                let set = model.get(key);
                let got: HashSet<String> = bulks(&h.run(&["SMEMBERS", key])).into_iter().collect();
                assert_eq!(got, set, "{ctx}: members of {key}");
                if let Some(Enc::IntSet) = model.enc.get(key) {
                    let mut sorted: Vec<i64> = set.iter().map(|m| m.parse().unwrap()).collect();
                    sorted.sort_unstable();
                    let listed: Vec<i64> = bulks(&h.run(&["SMEMBERS", key]))
                        .iter()
                        .map(|m| m.parse().unwrap())
                        .collect();
                    assert_eq!(listed, sorted, "{ctx}: intsets list sorted");
                }
            }
        }
    }
}

#[test]
fn model_default_thresholds() {
    model_run(512, 1, 3000);
}

#[test]
fn model_tiny_thresholds() {
    model_run(3, 2, 3000);
    model_run(0, 3, 1000);
}
