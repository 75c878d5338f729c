//! Keyspace commands through a real server and the `redis` crate.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult, Value, cmd};

fn set(c: &mut Connection, k: &str, v: &str) {
    let _: () = cmd("SET").arg(k).arg(v).query(c).unwrap();
}

fn int(c: &mut Connection, args: &[&str]) -> i64 {
    cmd(args[0]).arg(&args[1..]).query(c).unwrap()
}

fn err(c: &mut Connection, args: &[&str]) -> String {
    let r: RedisResult<Value> = cmd(args[0]).arg(&args[1..]).query(c);
    let e = r.expect_err("expected an error reply");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

/// Runs a full SCAN, returning every key it produced.
fn full_scan(c: &mut Connection, count: usize) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut all = Vec::new();
    loop {
        let (next, keys): (String, Vec<String>) = cmd("SCAN")
            .arg(&cursor)
            .arg("COUNT")
            .arg(count)
            .query(c)
            .unwrap();
        all.extend(keys);
        if next == "0" {
            return all;
        }
        cursor = next;
    }
}

#[test]
fn scan_returns_every_key_present_for_the_whole_scan_while_tables_grow() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let n = 2000;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("orig:{i}")).arg(i).ignore();
    }
    let _: () = p.query(&mut c).unwrap();

    let writer = {
        let mut w = srv.client();
        std::thread::spawn(move || {
            for batch in 0..40 {
                let mut p = redis::pipe();
                for j in 0..1000 {
                    p.cmd("SET").arg(format!("new:{batch}:{j}")).arg(j).ignore();
                }
                let _: () = p.query(&mut w).unwrap();
            }
        })
    };
    // Small steps so that the scan is spread over the growth.
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, keys): (String, Vec<String>) = cmd("SCAN")
            .arg(&cursor)
            .arg("COUNT")
            .arg(5)
            .query(&mut c)
            .unwrap();
        seen.extend(keys);
        calls += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    writer.join().unwrap();
    assert!(calls > 10, "the scan took several calls");
    for i in 0..n {
        assert!(seen.contains(&format!("orig:{i}")), "SCAN missed orig:{i}");
    }
}

#[test]
fn scan_match_type_and_cursor_errors() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for k in ["user:1", "user:2", "item:1"] {
        set(&mut c, k, "v");
    }
    let mut users: Vec<String> = {
        let (_, keys): (String, Vec<String>) = cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg("user:*")
            .arg("COUNT")
            .arg(100)
            .query(&mut c)
            .unwrap();
        keys
    };
    users.sort();
    assert_eq!(users, ["user:1", "user:2"]);
    let (_, none): (String, Vec<String>) = cmd("SCAN")
        .arg(0)
        .arg("TYPE")
        .arg("hash")
        .arg("COUNT")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert!(none.is_empty());
    let mut all = full_scan(&mut c, 1);
    all.sort();
    assert_eq!(all, ["item:1", "user:1", "user:2"]);
    assert_eq!(err(&mut c, &["SCAN", "abc"]), "ERR invalid cursor");
    assert_eq!(
        err(&mut c, &["SCAN", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    // Any u64 is a valid cursor.
    let (_, _keys): (String, Vec<String>) = cmd("SCAN")
        .arg("18446744073709551615")
        .query(&mut c)
        .unwrap();
}

#[test]
fn active_expiry_reclaims_keys_nobody_touches() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut p = redis::pipe();
    for i in 0..500 {
        p.cmd("SET").arg(format!("vol:{i}")).arg(i).ignore();
        p.cmd("PEXPIRE").arg(format!("vol:{i}")).arg(50).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    assert_eq!(int(&mut c, &["DBSIZE"]), 500);
    // Seconds, not one cron tick: a loaded machine delays the cron thread.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // DBSIZE counts entries, reclaimed or not: only the cron can lower it.
        if int(&mut c, &["DBSIZE"]) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "active expiry did not reclaim the keys in 5s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(int(&mut c, &["EXISTS", "vol:0", "vol:499"]), 0);
}

#[test]
fn lazy_expiry_hides_keys_from_every_reader() {
    let srv = common::Server::start_with(&["--hz", "1"]);
    let mut c = srv.client();
    set(&mut c, "live", "v");
    for i in 0..100 {
        set(&mut c, &format!("dead:{i}"), "v");
        let _: i64 = cmd("PEXPIRE")
            .arg(format!("dead:{i}"))
            .arg(30)
            .query(&mut c)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(int(&mut c, &["EXISTS", "dead:0", "dead:1", "live"]), 1);
    assert_eq!(int(&mut c, &["TTL", "dead:2"]), -2);
    let keys: Vec<String> = cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert_eq!(keys, ["live"]);
    // SCAN may return an element twice (Redis's guarantee too) when the
    // table shrinks mid-scan, as the cron's reclaiming of the dead keys
    // can make it here: only the set of keys is asserted.
    let mut scanned = full_scan(&mut c, 7);
    scanned.dedup();
    assert_eq!(scanned, ["live"]);
    for _ in 0..50 {
        let k: String = cmd("RANDOMKEY").query(&mut c).unwrap();
        assert_eq!(k, "live");
    }
    let none: Option<String> = cmd("GET").arg("dead:3").query(&mut c).unwrap();
    assert_eq!(none, None);
}

#[test]
fn expire_options_and_ttl_family() {
    let srv = common::Server::start();
    let mut c = srv.client();
    set(&mut c, "k", "v");
    assert_eq!(int(&mut c, &["TTL", "k"]), -1);
    assert_eq!(int(&mut c, &["PTTL", "nokey"]), -2);
    assert_eq!(int(&mut c, &["EXPIRE", "k", "100", "XX"]), 0);
    assert_eq!(int(&mut c, &["EXPIRE", "k", "100", "NX"]), 1);
    assert_eq!(int(&mut c, &["EXPIRE", "k", "50", "GT"]), 0);
    assert_eq!(int(&mut c, &["EXPIRE", "k", "200", "GT"]), 1);
    assert_eq!(int(&mut c, &["EXPIRE", "k", "300", "LT"]), 0);
    assert_eq!(int(&mut c, &["TTL", "k"]), 200);
    let pttl = int(&mut c, &["PTTL", "k"]);
    assert!((199_000..=200_000).contains(&pttl), "{pttl}");
    let at = int(&mut c, &["PEXPIRETIME", "k"]);
    assert_eq!(int(&mut c, &["EXPIRETIME", "k"]), (at + 500) / 1000);
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "1", "NX", "XX"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "1", "GT", "LT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err(&mut c, &["PEXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(int(&mut c, &["PERSIST", "k"]), 1);
    assert_eq!(int(&mut c, &["TTL", "k"]), -1);
    assert_eq!(int(&mut c, &["EXPIRE", "k", "-5"]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
}

#[test]
fn rename_copy_move_across_databases() {
    let srv = common::Server::start();
    let mut c = srv.client();
    set(&mut c, "a", "1");
    let _: i64 = cmd("EXPIRE").arg("a").arg(1000).query(&mut c).unwrap();
    let _: () = cmd("RENAME").arg("a").arg("b").query(&mut c).unwrap();
    assert_eq!(int(&mut c, &["TTL", "b"]), 1000);
    assert_eq!(err(&mut c, &["RENAME", "a", "b"]), "ERR no such key");
    assert_eq!(int(&mut c, &["COPY", "b", "c", "DB", "3"]), 1);
    assert_eq!(int(&mut c, &["COPY", "b", "c", "DB", "3"]), 0);
    assert_eq!(int(&mut c, &["MOVE", "b", "3"]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "b", "c"]), 0);

    // Look at database 3 from another connection.
    let mut c3 = redis::Client::open(format!("{}3", srv.url()))
        .unwrap()
        .get_connection()
        .ok();
    // SELECT may not exist yet: fall back to SWAPDB.
    let (b, c_) = match c3.as_mut() {
        Some(c3) => (int(c3, &["EXISTS", "b"]), int(c3, &["EXISTS", "c"])),
        None => {
            let _: () = cmd("SWAPDB").arg(0).arg(3).query(&mut c).unwrap();
            let r = (int(&mut c, &["EXISTS", "b"]), int(&mut c, &["EXISTS", "c"]));
            let _: () = cmd("SWAPDB").arg(0).arg(3).query(&mut c).unwrap();
            r
        }
    };
    assert_eq!((b, c_), (1, 1));
    assert_eq!(
        err(&mut c, &["MOVE", "x", "0"]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        err(&mut c, &["MOVE", "x", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut c, &["SWAPDB", "x", "1"]),
        "ERR invalid first DB index"
    );
    let _: () = cmd("FLUSHALL").arg("ASYNC").query(&mut c).unwrap();
    let _: () = cmd("SWAPDB").arg(0).arg(3).query(&mut c).unwrap();
    assert_eq!(int(&mut c, &["DBSIZE"]), 0);
}

#[test]
fn object_reports_redis_encodings_and_refcounts() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let cases = [
        ("123", "int", 2147483647),
        ("-1", "int", 1),
        ("10000", "int", 1),
        ("00123", "embstr", 1),
        ("12345678901234567890", "embstr", 1),
        (&"x".repeat(44), "embstr", 1),
        (&"x".repeat(45), "raw", 1),
    ];
    for (i, (v, enc, refs)) in cases.iter().enumerate() {
        let k = format!("k{i}");
        set(&mut c, &k, v);
        let got: String = cmd("OBJECT").arg("ENCODING").arg(&k).query(&mut c).unwrap();
        assert_eq!(&got, enc, "encoding of {v:?}");
        assert_eq!(
            int(&mut c, &["OBJECT", "REFCOUNT", &k]),
            *refs,
            "refcount of {v:?}"
        );
    }
    let missing: Option<String> = cmd("OBJECT")
        .arg("ENCODING")
        .arg("nope")
        .query(&mut c)
        .unwrap();
    assert_eq!(missing, None);
    assert!(err(&mut c, &["OBJECT", "FREQ", "k0"]).starts_with("ERR An LFU maxmemory policy"));
    assert_eq!(int(&mut c, &["OBJECT", "IDLETIME", "k6"]), 0);
    let help: Vec<String> = cmd("OBJECT").arg("HELP").query(&mut c).unwrap();
    assert!(help.iter().any(|l| l.starts_with("REFCOUNT")));
}

/// COPY reads its options in order, so the last DB wins (as in Redis); a
/// transaction locks that database's key, not the first one named.
#[test]
fn copy_with_two_db_options_copies_into_the_last_also_inside_exec() {
    let srv = common::Server::start();
    let mut c = srv.client();
    set(&mut c, "a", "1");
    assert_eq!(int(&mut c, &["COPY", "a", "b", "DB", "1", "DB", "2"]), 1);
    let (copied,): (i64,) = redis::pipe()
        .atomic()
        .cmd("COPY")
        .arg(&["a", "c", "DB", "1", "DB", "3"])
        .query(&mut c)
        .unwrap();
    assert_eq!(copied, 1);
    let found: (i64, i64, i64, i64) = redis::pipe()
        .cmd("SELECT")
        .arg(2)
        .ignore()
        .cmd("EXISTS")
        .arg("b")
        .cmd("SELECT")
        .arg(3)
        .ignore()
        .cmd("EXISTS")
        .arg("c")
        .cmd("SELECT")
        .arg(1)
        .ignore()
        .cmd("EXISTS")
        .arg("b")
        .cmd("EXISTS")
        .arg("c")
        .cmd("SELECT")
        .arg(0)
        .ignore()
        .query(&mut c)
        .unwrap();
    assert_eq!(found, (1, 1, 0, 0));
}
