use std::collections::VecDeque;

use crate::config::Config;
use crate::testkit::Harness;

fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

fn arr<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<&String> = items.into_iter().collect();
    let mut s = format!("*{}\r\n", items.len());
    for i in items {
        s += &bulk(i);
    }
    s
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

/// Runs one command in RESP3.
pub(crate) fn run3(h: &mut Harness, args: &[&str]) -> String {
    h.run3(args)
}

/// Redis's index clamp for LRANGE/LTRIM over a model.
fn clamp(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let s = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let mut e = if stop < 0 { len + stop } else { stop };
    if s > e || s >= len {
        return None;
    }
    e = e.min(len - 1);
    Some((s as usize, e as usize))
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        crate::util::rand::next(&mut self.0) % n.max(1)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn value(&mut self) -> String {
        match self.below(10) {
            0 => "L".repeat(self.below(600) as usize),
            1 => String::new(),
            n => ["a", "b", "c", "dd", "eee", "12", "-7", "x"][n as usize % 8].to_string(),
        }
    }
}

fn model_run(cfg: Config, seed: u64, steps: usize) {
    let mut h = Harness::with_config(cfg);
    let mut rng = Rng(seed);
    let names = ["k0", "k1", "k2"];
    let mut model: Vec<VecDeque<String>> = vec![VecDeque::new(); 3];
    for _ in 0..steps {
        let k = rng.below(3) as usize;
        let key = names[k];
        let len = model[k].len() as i64;
        let op = rng.below(14);
        match op {
            0 | 1 => {
                let vals: Vec<String> = (0..rng.range(1, 4)).map(|_| rng.value()).collect();
                let mut args = vec![if op == 0 { "LPUSH" } else { "RPUSH" }, key];
                args.extend(vals.iter().map(String::as_str));
                for v in &vals {
                    if op == 0 {
                        model[k].push_front(v.clone());
                    } else {
                        model[k].push_back(v.clone());
                    }
                }
                assert_eq!(h.run(&args), int(model[k].len() as i64));
            }
            2 | 3 => {
                let left = op == 2;
                let n = rng.below(4) as usize;
                let cmd = if left { "LPOP" } else { "RPOP" };
                let mut got = Vec::new();
                for _ in 0..n.min(model[k].len()) {
                    got.push(
                        if left {
                            model[k].pop_front()
                        } else {
                            model[k].pop_back()
                        }
                        .unwrap(),
                    );
                }
                let expect = if len == 0 {
                    "*-1\r\n".to_string()
                } else {
                    arr(&got)
                };
                assert_eq!(h.run(&[cmd, key, &n.to_string()]), expect);
            }
            4 => {
                let i = rng.range(-len - 2, len + 2);
                let j = if i < 0 { len + i } else { i };
                let expect = match model[k].get(j as usize) {
                    Some(v) if j >= 0 => bulk(v),
                    _ => "$-1\r\n".into(),
                };
                assert_eq!(h.run(&["LINDEX", key, &i.to_string()]), expect);
            }
            5 => {
                let (a, b) = (rng.range(-len - 3, len + 3), rng.range(-len - 3, len + 3));
                let got: Vec<String> = match clamp(a, b, model[k].len()) {
                    Some((s, e)) => model[k].range(s..=e).cloned().collect(),
                    None => vec![],
                };
                assert_eq!(
                    h.run(&["LRANGE", key, &a.to_string(), &b.to_string()]),
                    arr(&got)
                );
            }
            6 => {
                let i = rng.range(-len - 1, len + 1);
                let j = if i < 0 { len + i } else { i };
                let v = rng.value();
                let expect = if len == 0 {
                    "-ERR no such key\r\n".to_string()
                } else if j < 0 || j >= len {
                    "-ERR index out of range\r\n".to_string()
                } else {
                    model[k][j as usize] = v.clone();
                    "+OK\r\n".to_string()
                };
                assert_eq!(h.run(&["LSET", key, &i.to_string(), &v]), expect);
            }
            7 => {
                let pivot = rng.value();
                let v = rng.value();
                let after = rng.below(2) == 1;
                let expect = if len == 0 {
                    0
                } else {
                    match model[k].iter().position(|x| *x == pivot) {
                        None => -1,
                        Some(p) => {
                            model[k].insert(p + after as usize, v.clone());
                            model[k].len() as i64
                        }
                    }
                };
                let w = if after { "AFTER" } else { "BEFORE" };
                assert_eq!(h.run(&["LINSERT", key, w, &pivot, &v]), int(expect));
            }
            8 => {
                let count = rng.range(-3, 3);
                let v = rng.value();
                let m = &mut model[k];
                let mut idx: Vec<usize> = (0..m.len()).filter(|&i| m[i] == v).collect();
                if count > 0 {
                    idx.truncate(count as usize);
                } else if count < 0 {
                    idx = idx.into_iter().rev().take((-count) as usize).collect();
                }
                idx.sort_unstable();
                for i in idx.iter().rev() {
                    m.remove(*i);
                }
                assert_eq!(
                    h.run(&["LREM", key, &count.to_string(), &v]),
                    int(idx.len() as i64)
                );
            }
            9 => {
                let (a, b) = (rng.range(-len - 2, len + 2), rng.range(-len - 2, len + 2));
                if rng.below(4) != 0 {
                    continue;
                }
                let m = &mut model[k];
                *m = match clamp(a, b, m.len()) {
                    Some((s, e)) => m.range(s..=e).cloned().collect(),
                    None => VecDeque::new(),
                };
                assert_eq!(
                    h.run(&["LTRIM", key, &a.to_string(), &b.to_string()]),
                    "+OK\r\n"
                );
            }
            10 => {
                let d = rng.below(3) as usize;
                let (from, to) = (rng.below(2) == 0, rng.below(2) == 0);
                let w = |l: bool| if l { "LEFT" } else { "RIGHT" };
                let expect = if len == 0 {
                    "$-1\r\n".to_string()
                } else {
                    let v = if from {
                        model[k].pop_front()
                    } else {
                        model[k].pop_back()
                    }
                    .unwrap();
                    if to {
                        model[d].push_front(v.clone());
                    } else {
                        model[d].push_back(v.clone());
                    }
                    bulk(&v)
                };
                assert_eq!(h.run(&["LMOVE", key, names[d], w(from), w(to)]), expect);
            }
            11 => {
                let v = rng.value();
                let rank = [1i64, 2, -1, -2][rng.below(4) as usize];
                let hits: Vec<usize> = if rank > 0 {
                    (0..model[k].len()).filter(|&i| model[k][i] == v).collect()
                } else {
                    (0..model[k].len())
                        .rev()
                        .filter(|&i| model[k][i] == v)
                        .collect()
                };
                let expect = match hits.get(rank.unsigned_abs() as usize - 1) {
                    Some(&i) => int(i as i64),
                    None => "$-1\r\n".into(),
                };
                assert_eq!(h.run(&["LPOS", key, &v, "RANK", &rank.to_string()]), expect);
            }
            _ => {
                assert_eq!(h.run(&["LLEN", key]), int(len));
                let exists = h.run(&["EXISTS", key]);
                assert_eq!(exists, int((len > 0) as i64), "empty lists are deleted");
                let all: Vec<String> = model[k].iter().cloned().collect();
                assert_eq!(h.run(&["LRANGE", key, "0", "-1"]), arr(&all));
            }
        }
    }
    for (k, key) in names.iter().enumerate() {
        let all: Vec<String> = model[k].iter().cloned().collect();
        assert_eq!(h.run(&["LRANGE", key, "0", "-1"]), arr(&all));
    }
}

#[test]
fn model_default_fill() {
    model_run(Config::default(), 1, 4000);
}

#[test]
fn model_tiny_nodes() {
    for (seed, fill) in [(2, 2i64), (3, 1), (4, 0), (5, -1)] {
        let cfg = Config::default();
        cfg.list_max_listpack_size.set(fill);
        model_run(cfg, seed, 3000);
    }
}

#[test]
fn encoding_is_quicklist_at_every_size() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "a"]);
    assert_eq!(h.run(&["OBJECT", "ENCODING", "l"]), bulk("quicklist"));
    let big = "x".repeat(9000);
    h.run(&["RPUSH", "l", &big]);
    assert_eq!(h.run(&["OBJECT", "ENCODING", "l"]), bulk("quicklist"));
    h.run(&["RPOP", "l"]);
    assert_eq!(h.run(&["OBJECT", "ENCODING", "l"]), bulk("quicklist"));
    assert_eq!(h.run(&["TYPE", "l"]), "+list\r\n");
}

#[test]
fn effects_as_redis_propagates_them() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "a", "b", "c"]);
    h.run(&["LPUSHX", "nokey", "a"]);
    h.run(&["LPOP", "nokey"]);
    h.run(&["LMPOP", "2", "nokey", "l", "LEFT", "COUNT", "5"]);
    h.run(&["RPUSH", "l", "a"]);
    h.run(&["LTRIM", "l", "0", "-1"]);
    h.run(&["LREM", "l", "0", "zz"]);
    h.run(&["RPOPLPUSH", "l", "m"]);
    assert_eq!(
        h.take_effects(),
        vec![
            "0: RPUSH l a b c",
            "0: LPOP l 3",
            "0: RPUSH l a",
            "0: RPOPLPUSH l m",
        ]
    );
}

#[test]
fn resp3_shapes() {
    let mut h = Harness::new();
    assert_eq!(run3(&mut h, &["LPOP", "nokey"]), "_\r\n");
    assert_eq!(run3(&mut h, &["LPOP", "nokey", "2"]), "_\r\n");
    assert_eq!(run3(&mut h, &["LMPOP", "1", "nokey", "LEFT"]), "_\r\n");
    assert_eq!(run3(&mut h, &["LPOS", "nokey", "a"]), "_\r\n");
    h.run(&["RPUSH", "l", "a"]);
    assert_eq!(run3(&mut h, &["LPOP", "l", "0"]), "*0\r\n");
}

#[test]
fn ttl_survives_edits_and_rotation() {
    let mut h = Harness::new();
    h.run(&["RPUSH", "l", "only"]);
    h.run(&["EXPIRE", "l", "100"]);
    h.run(&["RPOPLPUSH", "l", "l"]);
    h.run(&["LPUSH", "l", &"y".repeat(10_000)]);
    h.run(&["LSET", "l", "1", "z"]);
    h.run(&["RPOP", "l"]);
    assert_eq!(h.run(&["TTL", "l"]), ":100\r\n");
}
