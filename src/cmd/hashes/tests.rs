use std::collections::{BTreeMap, HashMap};

use crate::cmd::lists::tests::run3;
use crate::config::Config;
use crate::testkit::Harness;

fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

/// Field/value pairs of an HGETALL reply (RESP2), sorted.
fn pairs(reply: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let mut out = BTreeMap::new();
    let mut i = 1;
    while i + 3 < lines.len() {
        out.insert(lines[i + 1].to_string(), lines[i + 3].to_string());
        i += 4;
    }
    out
}

fn model_run(cfg: Config, seed: u64, steps: usize) {
    let mut h = Harness::with_config(cfg);
    let mut x = seed;
    let mut r = |n: u64| crate::util::rand::next(&mut x) % n;
    let keys = ["h0", "h1"];
    let mut model: Vec<HashMap<String, String>> = vec![HashMap::new(); 2];
    for _ in 0..steps {
        let k = r(2) as usize;
        let key = keys[k];
        let field = format!("f{}", r(40));
        let value = if r(8) == 0 {
            "V".repeat(r(100) as usize)
        } else {
            r(1000).to_string()
        };
        match r(9) {
            0 | 1 => {
                let new = model[k].insert(field.clone(), value.clone()).is_none();
                assert_eq!(h.run(&["HSET", key, &field, &value]), int(new as i64));
            }
            2 => {
                let expect = model[k]
                    .get(&field)
                    .map_or("$-1\r\n".to_string(), |v| bulk(v));
                assert_eq!(h.run(&["HGET", key, &field]), expect);
            }
            3 => {
                let had = model[k].remove(&field).is_some();
                assert_eq!(h.run(&["HDEL", key, &field, "nope"]), int(had as i64));
            }
            4 => {
                let by = r(21) as i64 - 10;
                let cur = model[k].get(&field).map(|v| v.parse::<i64>());
                let reply = h.run(&["HINCRBY", key, &field, &by.to_string()]);
                match cur {
                    Some(Err(_)) => assert_eq!(reply, "-ERR hash value is not an integer\r\n"),
                    Some(Ok(n)) => {
                        assert_eq!(reply, int(n + by));
                        model[k].insert(field, (n + by).to_string());
                    }
                    None => {
                        assert_eq!(reply, int(by));
                        model[k].insert(field, by.to_string());
                    }
                }
            }
            5 => {
                let new = !model[k].contains_key(&field);
                if new {
                    model[k].insert(field.clone(), value.clone());
                }
                assert_eq!(h.run(&["HSETNX", key, &field, &value]), int(new as i64));
            }
            6 => {
                let n = model[k].get(&field).map_or(0, |v| v.len());
                assert_eq!(h.run(&["HSTRLEN", key, &field]), int(n as i64));
                assert_eq!(h.run(&["HLEN", key]), int(model[k].len() as i64));
            }
            7 => {
                // A full HSCAN walk returns exactly the hash.
                let mut cursor = "0".to_string();
                let mut seen = BTreeMap::new();
                loop {
                    let reply = h.run(&["HSCAN", key, &cursor, "COUNT", "3"]);
                    let lines: Vec<&str> = reply.split("\r\n").collect();
                    cursor = lines[2].to_string();
                    let body = lines[3..].join("\r\n");
                    seen.extend(pairs(&body));
                    if cursor == "0" {
                        break;
                    }
                }
                let want: BTreeMap<String, String> = model[k].clone().into_iter().collect();
                assert_eq!(seen, want);
            }
            _ => {
                let want: BTreeMap<String, String> = model[k].clone().into_iter().collect();
                assert_eq!(pairs(&h.run(&["HGETALL", key])), want);
                assert_eq!(h.run(&["EXISTS", key]), int(!model[k].is_empty() as i64));
            }
        }
    }
}

#[test]
fn model_default_thresholds() {
    model_run(Config::default(), 11, 4000);
}

#[test]
fn model_tiny_thresholds() {
    let cfg = Config::default();
    cfg.hash_max_listpack_entries.set(4);
    cfg.hash_max_listpack_value.set(3);
    model_run(cfg, 12, 4000);
}

#[test]
fn conversion_points() {
    let mut h = Harness::new();
    let enc = |h: &mut Harness, k: &str| h.run(&["OBJECT", "ENCODING", k]);
    // Redis 7.0's default hash-max-listpack-entries is 512.
    for i in 0..512 {
        h.run(&["HSET", "h", &format!("f{i}"), "v"]);
    }
    assert_eq!(enc(&mut h, "h"), bulk("listpack"));
    h.run(&["HSET", "h", "f512", "v"]);
    assert_eq!(enc(&mut h, "h"), bulk("hashtable"));
    // No way back, as in Redis 7.0.
    for i in 0..512 {
        h.run(&["HDEL", "h", &format!("f{i}")]);
    }
    assert_eq!(enc(&mut h, "h"), bulk("hashtable"));
    h.run(&["HSET", "v", "f", &"x".repeat(64)]);
    assert_eq!(enc(&mut h, "v"), bulk("listpack"));
    h.run(&["HSET", "v", "f", &"x".repeat(65)]);
    assert_eq!(enc(&mut h, "v"), bulk("hashtable"));
    h.run(&["HINCRBYFLOAT", "w", &"k".repeat(65), "1"]);
    assert_eq!(enc(&mut h, "w"), bulk("hashtable"));
}

#[test]
fn hrandfield_properties() {
    let mut h = Harness::new();
    for (key, n) in [("small", 5), ("big", 300)] {
        for i in 0..n {
            h.run(&["HSET", key, &format!("f{i}"), &format!("v{i}")]);
        }
        // Positive count: distinct fields, min(count, size) of them.
        for count in [1, 3, n - 1, n, n + 10] {
            let reply = h.run(&["HRANDFIELD", key, &count.to_string()]);
            let fields: Vec<&str> = reply
                .split("\r\n")
                .skip(2)
                .step_by(2)
                .filter(|s| !s.is_empty())
                .collect();
            let mut dedup = fields.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(fields.len(), count.min(n), "{key} {count}");
            assert_eq!(dedup.len(), fields.len(), "distinct");
        }
        // Negative count: exactly |count|, repeats allowed, values match.
        let reply = h.run(&["HRANDFIELD", key, "-20", "WITHVALUES"]);
        let parts: Vec<&str> = reply
            .split("\r\n")
            .skip(2)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(parts.len(), 40);
        for p in parts.chunks(2) {
            assert_eq!(p[0][1..], p[1][1..], "value belongs to field");
        }
        let r3 = run3(&mut h, &["HRANDFIELD", key, "2", "WITHVALUES"]);
        assert!(r3.starts_with("*2\r\n*2\r\n$"), "{r3}");
        let one = h.run(&["HRANDFIELD", key]);
        assert!(one.starts_with("$"));
    }
}

#[test]
fn resp3_shapes() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(
        run3(&mut h, &["HGETALL", "h"]),
        "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(run3(&mut h, &["HGETALL", "nokey"]), "%0\r\n");
    assert_eq!(run3(&mut h, &["HGET", "h", "x"]), "_\r\n");
    assert_eq!(
        run3(&mut h, &["HRANDFIELD", "h", "2", "WITHVALUES"]),
        "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        run3(&mut h, &["HSCAN", "h", "0"]),
        "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
}

#[test]
fn effects() {
    let mut h = Harness::new();
    h.run(&["HSET", "h", "a", "1"]);
    h.run(&["HINCRBYFLOAT", "h", "a", "0.5"]);
    h.run(&["HDEL", "h", "zz"]);
    h.run(&["HSETNX", "h", "a", "x"]);
    h.run(&["HDEL", "h", "a"]);
    assert_eq!(
        h.take_effects(),
        vec!["0: HSET h a 1", "0: HSET h a 1.5", "0: HDEL h a"]
    );
}
