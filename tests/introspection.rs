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

fn slowlog(c: &mut redis::Connection, n: i64) -> Vec<Value> {
    redis::cmd("SLOWLOG").arg("GET").arg(n).query(c).unwrap()
}

/// An entry's arguments as strings.
fn argv(entry: &Value) -> Vec<String> {
    let Value::Array(fields) = entry else {
        panic!("{entry:?}")
    };
    assert_eq!(fields.len(), 6);
    let Value::Array(args) = &fields[3] else {
        panic!("{entry:?}")
    };
    args.iter()
        .map(|a| match a {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn ok(c: &mut redis::Connection, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: Value = cmd.query(c).unwrap();
}

#[test]
fn slowlog_trims_redacts_and_skips_what_redis_skips() {
    let srv = common::Server::start();
    let mut c = srv.client();
    ok(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    ok(&mut c, &["SLOWLOG", "RESET"]);
    ok(&mut c, &["CLIENT", "SETNAME", "probe"]);
    let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
    let mut sadd = redis::cmd("SADD");
    sadd.arg("set").arg(&many);
    let _: i64 = sadd.query(&mut c).unwrap();
    let long = "A".repeat(130);
    ok(&mut c, &["SET", "k", &long]);
    let _: redis::RedisResult<Value> = redis::cmd("AUTH").arg("nosuch").arg("pw").query(&mut c);
    ok(&mut c, &["CONFIG", "SET", "requirepass", ""]);
    ok(&mut c, &["ACL", "SETUSER", "someone", "+get"]);
    ok(&mut c, &["EVAL", "redis.call('set','x','1') return 1", "0"]);
    let _: Value = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("n")
        .query(&mut c)
        .unwrap();
    let log = slowlog(&mut c, -1);
    let all: Vec<Vec<String>> = log.iter().map(argv).collect();
    // Newest first; EXEC itself and the script's SET are not logged.
    assert_eq!(all[0], ["INCR", "n"]);
    assert_eq!(all[1], ["MULTI"]);
    assert_eq!(all[2][0], "EVAL");
    assert!(!all.iter().any(|a| a[0].eq_ignore_ascii_case("exec")));
    assert!(!all.iter().any(|a| a[0] == "set"));
    assert_eq!(all[3], ["ACL", "SETUSER", "(redacted)", "(redacted)"]);
    assert_eq!(all[4], ["CONFIG", "SET", "requirepass", "(redacted)"]);
    assert_eq!(all[5], ["AUTH", "(redacted)", "(redacted)"]);
    assert_eq!(all[6][2], format!("{}... (2 more bytes)", &long[..128]));
    assert_eq!(all[7].len(), 32);
    assert_eq!(all[7][31], "... (4 more arguments)");
    assert_eq!(all[7][30], "28");
    // Ids grow, the client's name and address are there.
    let Value::Array(first) = &log[0] else {
        panic!()
    };
    let Value::Array(second) = &log[1] else {
        panic!()
    };
    match (&first[0], &second[0], &first[5], &first[4]) {
        (Value::Int(a), Value::Int(b), Value::BulkString(name), Value::BulkString(addr)) => {
            assert_eq!(*a, b + 1);
            assert_eq!(name, b"probe");
            assert!(addr.starts_with(b"127.0.0.1:"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(slowlog(&mut c, 2).len(), 2);
    // A shorter maximum cuts the log at once; -1 turns logging off.
    ok(&mut c, &["CONFIG", "SET", "slowlog-max-len", "3"]);
    let n: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(n, 3);
    ok(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    ok(&mut c, &["SLOWLOG", "RESET"]);
    ok(&mut c, &["PING"]);
    let n: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(n, 0);
}

/// The active expiry cycle is timed as Redis's is: one that takes past
/// `latency-monitor-threshold` (here freeing a set of 100k members, each
/// its own allocation) is an `expire-cycle` event. (Redis's suite expects
/// one for a set of a million short integers, which ferrokv keeps inline
/// and frees in a few milliseconds, under the suite's 20 ms.)
#[test]
fn a_slow_active_expire_cycle_is_a_latency_event() {
    let srv = common::Server::start();
    let mut c = srv.client();
    ok(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    let fill = "for i = 1, tonumber(ARGV[1]) do \
                redis.call('sadd', KEYS[1], 'a member long enough to be its own allocation:' .. i) end";
    ok(&mut c, &["EVAL", fill, "1", "big", "100000"]);
    ok(&mut c, &["LATENCY", "RESET"]);
    ok(&mut c, &["PEXPIRE", "big", "10"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the key was not expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let history: Vec<Vec<i64>> = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg("expire-cycle")
        .query(&mut c)
        .unwrap();
    assert!(!history.is_empty(), "no expire-cycle event");
}

fn info_latency(c: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("latencystats").query(c).unwrap()
}

#[test]
fn latency_monitor_and_per_command_histograms() {
    let srv = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    ok(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "5"]);
    ok(&mut c, &["DEBUG", "SLEEP", "0.02"]);
    ok(&mut c, &["GET", "fast"]);
    let latest: Vec<Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    let Value::Array(e) = &latest[0] else {
        panic!()
    };
    assert_eq!(e[0], Value::BulkString(b"command".to_vec()));
    assert!(matches!(e[2], Value::Int(ms) if ms >= 20), "{e:?}");
    let history: Vec<Vec<i64>> = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg("command")
        .query(&mut c)
        .unwrap();
    assert_eq!(history.len(), 1);
    let graph: String = redis::cmd("LATENCY")
        .arg("GRAPH")
        .arg("command")
        .query(&mut c)
        .unwrap();
    assert!(graph.starts_with("command - high "), "{graph}");
    let doctor: String = redis::cmd("LATENCY").arg("DOCTOR").query(&mut c).unwrap();
    assert!(doctor.contains("1. command: 1 latency spikes"), "{doctor}");
    let n: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c).unwrap();
    assert_eq!(n, 1);

    // Histograms: per command, summed over the worker threads.
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    for _ in 0..10 {
        ok(&mut c, &["SET", "a", "b"]);
    }
    ok(&mut c, &["CLIENT", "ID"]);
    let info = info_latency(&mut c);
    assert!(
        info.contains("latency_percentiles_usec_set:p50=") && info.contains(",p99.9="),
        "{info}"
    );
    assert!(
        info.contains("latency_percentiles_usec_client|id:"),
        "{info}"
    );
    let h: Vec<Value> = redis::cmd("LATENCY")
        .arg("HISTOGRAM")
        .arg("set")
        .arg("client")
        .arg("nosuch")
        .query(&mut c)
        .unwrap();
    assert_eq!(h.len(), 4, "{h:?}");
    assert_eq!(h[0], Value::BulkString(b"set".to_vec()));
    let Value::Array(set) = &h[1] else { panic!() };
    assert_eq!(set[1], Value::Int(10));
    let Value::Array(cdf) = &set[3] else { panic!() };
    assert_eq!(cdf.last(), Some(&Value::Int(10)), "cumulative: {cdf:?}");
    ok(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "0 100",
        ],
    );
    assert!(info_latency(&mut c).contains(",p100="));
    ok(&mut c, &["CONFIG", "SET", "latency-tracking", "no"]);
    assert!(!info_latency(&mut c).contains("latency_percentiles_usec_set"));
}

#[test]
fn debug_populate_protocol_and_encoding_probes() {
    let srv = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "key:0", "mine"]);
    ok(&mut c, &["DEBUG", "POPULATE", "3"]);
    ok(&mut c, &["DEBUG", "POPULATE", "1", "p", "10"]);
    let got: Vec<Vec<u8>> = redis::cmd("MGET")
        .arg(&["key:0", "key:1", "key:2", "p:0"])
        .query(&mut c)
        .unwrap();
    assert_eq!(got[0], b"mine", "existing keys are left alone");
    assert_eq!(got[2], b"value:2");
    assert_eq!(got[3], b"value:0\0\0\0");
    let err = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg("-1")
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("must be positive"), "{err}");

    ok(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    ok(&mut c, &["HSET", "h", "f", "v"]);
    let obj: String = redis::cmd("DEBUG")
        .arg("OBJECT")
        .arg("l")
        .query(&mut c)
        .unwrap();
    assert!(
        obj.contains("encoding:quicklist") && obj.contains(" ql_nodes:1 ql_avg_node:3.00 "),
        "{obj}"
    );
    let lp: String = redis::cmd("DEBUG")
        .arg("LISTPACK")
        .arg("h")
        .query(&mut c)
        .unwrap();
    assert_eq!(lp, "Listpack structure printed on stdout");
    let err = redis::cmd("DEBUG")
        .arg("QUICKLIST")
        .arg("h")
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("Not a quicklist encoded object"));
    ok(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1k"]);
    assert!(
        redis::cmd("DEBUG")
            .arg("QUICKLIST-PACKED-THRESHOLD")
            .arg("4gb")
            .query::<Value>(&mut c)
            .is_err()
    );

    // RESP3 types, byte for byte as Redis sends them.
    let mut raw = srv.raw();
    raw.send(&common::resp(&[b"HELLO", b"3"]));
    let mut hello = Vec::new();
    while !hello.ends_with(b"modules\r\n*0\r\n") {
        let b = raw.read_n(1);
        assert!(!b.is_empty());
        hello.extend_from_slice(&b);
    }
    for (t, want) in [
        (&b"bignum"[..], &b"(1234567999999999999999999999999999999\r\n"[..]),
        (b"map", b"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n"),
        (
            b"attrib",
            b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
        ),
        (b"verbatim", b"=29\r\ntxt:This is a verbatim\nstring\r\n"),
    ] {
        let got = raw.roundtrip(&common::resp(&[b"DEBUG", b"PROTOCOL", t]), want.len());
        assert_eq!(got, want, "{}", String::from_utf8_lossy(t));
    }
}

#[test]
fn slowlog_logs_a_blocked_command_when_served() {
    let srv = common::Server::start();
    let mut c = srv.client();
    ok(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let mut waiter = srv.client();
    let pending = std::thread::spawn(move || {
        let v: Vec<String> = redis::cmd("BLPOP")
            .arg("l")
            .arg(0)
            .query(&mut waiter)
            .unwrap();
        v
    });
    common::wait_blocked(&mut c, 1);
    ok(&mut c, &["SLOWLOG", "RESET"]);
    ok(&mut c, &["LPUSH", "l", "foo"]);
    assert_eq!(pending.join().unwrap(), ["l", "foo"]);
    let log = slowlog(&mut c, -1);
    let all: Vec<Vec<String>> = log.iter().map(argv).collect();
    assert!(
        all.contains(&vec!["BLPOP".into(), "l".into(), "0".into()]),
        "{all:?}"
    );
}
