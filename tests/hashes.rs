//! Hashes through a real client: sessions, counters, scanning.

mod common;

use std::collections::{HashMap, HashSet};
use std::thread;

use redis::Commands;

#[test]
fn sessions_live_while_read_and_go_on_logout() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let session = [
        ("user_id", "42"),
        ("name", "Ada"),
        ("csrf", "b1946ac92492d2347c6235b4d2611184"),
        ("created", "1700000000"),
    ];
    let _: () = c.hset_multiple("session:abc", &session).unwrap();
    let _: bool = c.expire("session:abc", 1800).unwrap();
    // Every read renews the session.
    for _ in 0..3 {
        let all: HashMap<String, String> = c.hgetall("session:abc").unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all["name"], "Ada");
        let _: bool = c.expire("session:abc", 1800).unwrap();
        let ttl: i64 = c.ttl("session:abc").unwrap();
        assert!((1799..=1800).contains(&ttl));
    }
    // Writes keep the TTL.
    let _: i64 = c.hset("session:abc", "last_seen", "1700000100").unwrap();
    let _: i64 = c.hincr("session:abc", "hits", 1).unwrap();
    let ttl: i64 = c.ttl("session:abc").unwrap();
    assert!(ttl > 0);
    let fields: Vec<String> = c.hkeys("session:abc").unwrap();
    assert_eq!(
        fields,
        ["user_id", "name", "csrf", "created", "last_seen", "hits"]
    );
    let n: i64 = c.del("session:abc").unwrap();
    assert_eq!(n, 1);
    let all: HashMap<String, String> = c.hgetall("session:abc").unwrap();
    assert!(all.is_empty());
}

#[test]
fn concurrent_counters_add_up() {
    let srv = common::Server::start();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let mut c = srv.client();
            thread::spawn(move || {
                for i in 0..750 {
                    let _: i64 = c.hincr("stats", format!("f{i}"), 1).unwrap();
                    let _: f64 = c.hincr("stats", "float", 0.5f64).unwrap();
                    let _: i64 = c.hincr("stats", format!("t{t}"), 2).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = srv.client();
    let all: HashMap<String, String> = c.hgetall("stats").unwrap();
    // 755 fields: past the 512 of hash-max-listpack-entries.
    assert_eq!(all.len(), 750 + 1 + 4);
    assert_eq!(all["float"], "1500");
    for i in 0..750 {
        assert_eq!(all[&format!("f{i}")], "4");
    }
    for t in 0..4 {
        assert_eq!(all[&format!("t{t}")], "1500");
    }
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("stats")
        .query(&mut c)
        .unwrap();
    assert_eq!(enc, "hashtable");
}

#[test]
fn hscan_sees_every_field_present_throughout() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for chunk in (0..5000).collect::<Vec<_>>().chunks(500) {
        let pairs: Vec<(String, i32)> = chunk.iter().map(|i| (format!("keep{i}"), *i)).collect();
        let _: () = c.hset_multiple("big", &pairs).unwrap();
    }
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    let mut round = 0;
    loop {
        let (next, items): (u64, Vec<String>) = redis::cmd("HSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut c)
            .unwrap();
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone());
        }
        // Grow the table mid-scan, then shrink it again.
        round += 1;
        if round == 5 {
            let pairs: Vec<(String, i32)> = (0..20_000).map(|i| (format!("tmp{i}"), i)).collect();
            let _: () = c.hset_multiple("big", &pairs).unwrap();
        }
        if round == 30 {
            let fields: Vec<String> = (0..20_000).map(|i| format!("tmp{i}")).collect();
            let _: i64 = c.hdel("big", fields).unwrap();
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    for i in 0..5000 {
        assert!(
            seen.contains(&format!("keep{i}")),
            "keep{i} was never returned"
        );
    }
}

#[test]
fn small_hash_scans_in_one_call_and_random_fields() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = c
        .hset_multiple("h", &[("a", 1), ("b", 2), ("c", 3)])
        .unwrap();
    let (next, items): (u64, Vec<String>) = redis::cmd("HSCAN")
        .arg("h")
        .arg(0)
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(next, 0);
    assert_eq!(items, ["a", "1", "b", "2", "c", "3"]);
    let f: String = redis::cmd("HRANDFIELD").arg("h").query(&mut c).unwrap();
    assert!(["a", "b", "c"].contains(&f.as_str()));
    let many: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(-10)
        .query(&mut c)
        .unwrap();
    assert_eq!(many.len(), 10);
    let _: () = c.set("s", "x").unwrap();
    let err = c.hget::<_, _, Option<String>>("s", "f").unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
}

/// HRANDFIELD with a negative count draws every field of a table-encoded
/// hash equally often (the suite's chi-square check: the bucket-then-chain
/// pick favoured fields alone in their bucket).
#[test]
fn hrandfield_negative_count_is_uniform_on_a_table() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let long = "x".repeat(80);
    let mut cmd = redis::cmd("HSET");
    cmd.arg("h");
    for i in 0..9 {
        cmd.arg(format!("f{i}")).arg(i);
    }
    cmd.arg("long").arg(&long);
    let _: i64 = cmd.query(&mut c).unwrap();
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("h")
        .query(&mut c)
        .unwrap();
    assert_eq!(enc, "hashtable");
    let draws: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(-10000)
        .query(&mut c)
        .unwrap();
    let mut counts = std::collections::HashMap::new();
    for d in &draws {
        *counts.entry(d.as_str()).or_insert(0f64) += 1.0;
    }
    assert_eq!(counts.len(), 10);
    let p = draws.len() as f64 / 10.0;
    let chi: f64 = counts.values().map(|v| (v - p).powi(2) / p).sum();
    // 9 degrees of freedom: 40 is far in the tail for a uniform draw.
    assert!(chi < 40.0, "chi-square {chi}: {counts:?}");
}
