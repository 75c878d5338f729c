//! MEMORY, SLOWLOG, LATENCY and DEBUG introspection through a client: the
//! parts whose replies are not deterministic enough for the differential
//! corpus (sizes, timings, ids).

mod common;

use redis::Value;

fn usage(c: &mut redis::Connection, key: &str, samples: Option<i64>) -> i64 {
    let mut cmd = redis::cmd("MEMORY");
    cmd.arg("USAGE").arg(key);
    if let Some(n) = samples {
        cmd.arg("SAMPLES").arg(n);
    }
    cmd.query(c).unwrap()
}

#[test]
fn memory_usage_follows_what_the_key_holds() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("s").arg("x").query(&mut c).unwrap();
    let small = usage(&mut c, "s", None);
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg(vec![b'x'; 10_000])
        .query(&mut c)
        .unwrap();
    let big = usage(&mut c, "s", None);
    assert!(small > 0 && small < 64, "{small}");
    assert!((10_000..10_200).contains(&big), "{big}");

    // A hashtable-encoded hash: every field measured (SAMPLES 0) versus a
    // sample of five that does not see the big values further in.
    for i in 0..1000 {
        let v = if i < 990 {
            "v".repeat(8)
        } else {
            "w".repeat(5000)
        };
        let _: () = redis::cmd("HSET")
            .arg("h")
            .arg(format!("field:{i}"))
            .arg(v)
            .query(&mut c)
            .unwrap();
    }
    let all = usage(&mut c, "h", Some(0));
    assert!(all > 1000 * 16 + 10 * 5000, "{all}");
    assert!(all < 200_000, "{all}");
    let default = usage(&mut c, "h", None);
    assert!(default > 1000 * 16, "{default}");

    // Lists, sets, sorted sets and streams all report more than their bytes.
    for i in 0..500 {
        let m = format!("member-{i:05}");
        let _: () = redis::cmd("RPUSH").arg("l").arg(&m).query(&mut c).unwrap();
        let _: () = redis::cmd("SADD").arg("set").arg(&m).query(&mut c).unwrap();
        let _: () = redis::cmd("ZADD")
            .arg("z")
            .arg(i)
            .arg(&m)
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("XADD")
            .arg("x")
            .arg("*")
            .arg("f")
            .arg(&m)
            .query(&mut c)
            .unwrap();
    }
    for key in ["l", "set", "z", "x"] {
        let n = usage(&mut c, key, Some(0));
        assert!(n > 500 * 12, "{key}: {n}");
        assert!(n < 500 * 200, "{key}: {n}");
    }
    let missing: Value = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("nokey")
        .query(&mut c)
        .unwrap();
    assert_eq!(missing, Value::Nil);
}

#[test]
fn memory_stats_fields_add_up() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: Vec<Value> = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    let names: Vec<String> = v
        .iter()
        .step_by(2)
        .map(|n| match n {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names.len(), 28);
    assert_eq!(names[0], "peak.allocated");
    assert_eq!(names[10], "db.0");
    assert_eq!(names[27], "fragmentation.bytes");
    let int = |name: &str| -> i64 {
        let i = names.iter().position(|n| n == name).unwrap();
        match &v[2 * i + 1] {
            Value::Int(n) => *n,
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(int("keys.count"), 1);
    assert!(int("total.allocated") >= int("startup.allocated"));
    assert_eq!(
        int("dataset.bytes"),
        int("total.allocated") - int("overhead.total")
    );
}
