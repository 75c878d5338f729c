//! Hostile input that used to hang or exhaust the server: glob patterns with
//! exponential matching cost, forged payload lengths, huge random counts, and
//! clients that never read their replies.

mod common;

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult, Value, cmd};

fn err(c: &mut Connection, args: &[&str]) -> String {
    let r: RedisResult<Value> = cmd(args[0]).arg(&args[1..]).query(c);
    let e = r.expect_err("expected an error reply");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

fn used_memory(c: &mut Connection) -> u64 {
    let info: String = cmd("INFO").arg("memory").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Runs `f` on another thread while this one checks that a client needing
/// the same shard (GET of `key`) and PING keep being answered; returns `f`'s
/// result. Fails if `f` takes longer than a minute (the old matcher took
/// years on these patterns).
fn while_others_run<T: Send + 'static>(
    srv: &common::Server,
    key: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let worker = std::thread::spawn(f);
    let mut other = srv.client();
    let start = Instant::now();
    while !worker.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pattern bomb still running"
        );
        let pong: String = cmd("PING").query(&mut other).unwrap();
        assert_eq!(pong, "PONG");
        let _: Value = cmd("GET").arg(key).query(&mut other).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.join().unwrap()
}

/// `a*a*...a*b` with 20 stars: exponential for a backtracking matcher
/// against 40 `a`s.
fn bomb() -> String {
    format!("{}b", "a*".repeat(20))
}

#[test]
fn glob_bombs_answer_quickly() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let long = "a".repeat(40);
    let _: () = cmd("SET").arg(&long).arg("1").query(&mut c).unwrap();
    let _: () = cmd("HSET")
        .arg("h")
        .arg(&long)
        .arg("1")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SADD")
        .arg("s")
        .arg(&long)
        .arg("x")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("ZADD")
        .arg("z")
        .arg(1)
        .arg(&long)
        .query(&mut c)
        .unwrap();

    let url = srv.url();
    let keys: Vec<String> = while_others_run(&srv, &long, move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        cmd("KEYS").arg(bomb()).query(&mut c).unwrap()
    });
    assert!(keys.is_empty());

    for (command, key) in [
        ("SCAN", None),
        ("HSCAN", Some("h")),
        ("SSCAN", Some("s")),
        ("ZSCAN", Some("z")),
    ] {
        let url = srv.url();
        let (cursor, found): (String, Vec<String>) = while_others_run(&srv, &long, move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut q = cmd(command);
            if let Some(k) = key {
                q.arg(k);
            }
            q.arg(0).arg("MATCH").arg(bomb()).arg("COUNT").arg(1000);
            q.query(&mut c).unwrap()
        });
        assert_eq!((cursor.as_str(), found.len()), ("0", 0), "{command}");
    }

    // CONFIG GET matches without case against every parameter name.
    let url = srv.url();
    let found: Vec<String> = while_others_run(&srv, &long, move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let pattern = format!("{}\x01", "*?".repeat(14));
        cmd("CONFIG").arg("GET").arg(pattern).query(&mut c).unwrap()
    });
    assert!(found.is_empty());
}

#[test]
fn glob_bombs_in_pubsub_do_not_freeze_publishers() {
    let srv = common::Server::start();
    let long = "a".repeat(40);
    // A pattern subscriber and a channel subscriber.
    let mut psub = srv.raw();
    let reply = psub.roundtrip(&common::resp(&[b"PSUBSCRIBE", bomb().as_bytes()]), 73);
    assert!(reply.starts_with(b"*3\r\n$10\r\npsubscribe\r\n"));
    let mut sub = srv.raw();
    let reply = sub.roundtrip(&common::resp(&[b"SUBSCRIBE", long.as_bytes()]), 70);
    assert!(reply.ends_with(b":1\r\n"));

    let url = srv.url();
    let ch = long.clone();
    let receivers: i64 = while_others_run(&srv, "k", move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        cmd("PUBLISH").arg(&ch).arg("m").query(&mut c).unwrap()
    });
    assert_eq!(receivers, 1, "only the channel subscriber");

    let url = srv.url();
    let channels: Vec<String> = while_others_run(&srv, "k", move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(bomb())
            .query(&mut c)
            .unwrap()
    });
    assert!(channels.is_empty());

    // As in Redis, a pattern (even `*`) never matches the empty channel.
    let mut star = srv.raw();
    star.roundtrip(&common::resp(&[b"PSUBSCRIBE", b"*"]), 32);
    let mut c = srv.client();
    let n: i64 = cmd("PUBLISH").arg("").arg("m").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let n: i64 = cmd("PUBLISH").arg("x").arg("m").query(&mut c).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn function_restore_with_forged_lzf_length_is_an_error() {
    let srv = common::Server::start();
    let mut c = srv.client();
    // Valid CRC, an LZF string claiming 2^62 bytes.
    let payload = [
        0xf5, 0xc3, 0x01, 0x81, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x0a, 0x00, 0x1a, 0x5e, 0x2e,
        0x99, 0xdf, 0x5e, 0xc3, 0xe5,
    ];
    let mut raw = srv.raw();
    let want = b"-ERR Failed loading library payload\r\n";
    let reply = raw.roundtrip(
        &common::resp(&[b"FUNCTION", b"RESTORE", &payload]),
        want.len(),
    );
    assert_eq!(reply, want);
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn random_counts_get_redis_range_errors() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SADD").arg("s").arg("m").query(&mut c).unwrap();
    let _: () = cmd("ZADD").arg("z").arg(1).arg("m").query(&mut c).unwrap();
    let min = "-9223372036854775808";
    let full = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
    for args in [
        vec!["HRANDFIELD", "h", min],
        vec!["HRANDFIELD", "h", min, "WITHVALUES"],
        vec!["HRANDFIELD", "nokey", min],
        vec!["SRANDMEMBER", "s", min],
        vec!["ZRANDMEMBER", "z", min],
        vec!["ZRANDMEMBER", "z", min, "WITHSCORES"],
    ] {
        assert_eq!(err(&mut c, &args), full, "{args:?}");
    }
    for n in [
        "-9223372036854775807",
        "-4611686018427387904",
        "4611686018427387904",
        "9223372036854775807",
    ] {
        for (command, key, with) in [
            ("HRANDFIELD", "h", "WITHVALUES"),
            ("ZRANDMEMBER", "z", "WITHSCORES"),
        ] {
            assert_eq!(
                err(&mut c, &[command, key, n, with]),
                "ERR value is out of range"
            );
        }
    }
    // Redis checks the argument count before the count's value.
    assert_eq!(
        err(&mut c, &["SRANDMEMBER", "s", min, "x"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["HRANDFIELD", "h", "9223372036854775807", "x"]),
        "ERR syntax error"
    );
}

#[test]
fn huge_random_counts_stop_at_the_output_limit() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SADD").arg("s").arg("m").query(&mut c).unwrap();
    let _: () = cmd("ZADD").arg("z").arg(1).arg("m").query(&mut c).unwrap();
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("normal 4mb 0 0")
        .query(&mut c)
        .unwrap();
    let before = used_memory(&mut c);
    for args in [
        ["SRANDMEMBER", "s", "-1000000000000", ""],
        ["HRANDFIELD", "h", "-1000000000000", "WITHVALUES"],
        ["ZRANDMEMBER", "z", "-1000000000000", "WITHSCORES"],
        ["HRANDFIELD", "h", "-9223372036854775807", ""],
    ] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let mut victim = srv.client();
        let start = Instant::now();
        let r: RedisResult<Value> = cmd(args[0]).arg(&args[1..]).query(&mut victim);
        let e = r.expect_err("the connection is closed");
        assert!(
            e.is_io_error() || e.is_connection_dropped(),
            "{args:?}: {e}"
        );
        assert!(start.elapsed() < Duration::from_secs(30), "{args:?}");
    }
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let after = used_memory(&mut c);
    assert!(
        after < before + 32 * 1024 * 1024,
        "used_memory {before} -> {after}"
    );
}

#[test]
fn reply_over_the_hard_limit_is_not_sent() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let item = "x".repeat(1000);
    for _ in 0..150 {
        let _: () = cmd("LPUSH").arg("l").arg(&item).query(&mut c).unwrap();
    }
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("normal 100000 0 0")
        .query(&mut c)
        .unwrap();
    let mut raw = srv.raw();
    let mut batch = common::resp(&[b"PING"]);
    batch.extend(common::resp(&[b"LRANGE", b"l", b"0", b"-1"]));
    raw.send(&batch);
    // Nothing at all: the PONG of the same batch is dropped too, as in Redis.
    assert_eq!(raw.read_to_close(), b"");
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn client_not_reading_is_cut_off_at_the_hard_limit() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = cmd("SET")
        .arg("big")
        .arg("x".repeat(10_000))
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("normal 2mb 0 0")
        .query(&mut c)
        .unwrap();
    let before = used_memory(&mut c);
    let mut raw = srv.raw();
    raw.0
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let batch = common::resp(&[b"GET", b"big"]).repeat(1000);
    // 10 GB of replies if the server kept them all; it must close us first.
    let mut outcome = None;
    for _ in 0..1_000_000 {
        if let Err(e) = raw.0.write_all(&batch) {
            outcome = Some(e.kind());
            break;
        }
    }
    assert!(
        matches!(
            outcome,
            Some(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
        ),
        "the server should close a client that does not read: {outcome:?}"
    );
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let after = used_memory(&mut c);
    assert!(
        after < before + 32 * 1024 * 1024,
        "used_memory {before} -> {after}"
    );
}

fn clients(c: &mut Connection) -> usize {
    let list: String = cmd("CLIENT").arg("LIST").query(c).unwrap();
    list.lines().count()
}

#[test]
fn soft_limit_closes_a_client_that_stopped_reading_and_sending() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = cmd("SET")
        .arg("big")
        .arg("x".repeat(20 << 20))
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("normal 0 1mb 1")
        .query(&mut c)
        .unwrap();
    let mut raw = srv.raw();
    // 20 MB of reply, more than the socket buffers hold; then silence.
    raw.send(&common::resp(&[b"GET", b"big"]));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(clients(&mut c), 2, "not closed before the soft seconds");
    let start = Instant::now();
    while clients(&mut c) > 1 {
        assert!(start.elapsed() < Duration::from_secs(20), "still connected");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn inline_command_with_nul_waits_like_redis() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let before = used_memory(&mut c);
    let mut raw = srv.raw();
    raw.0
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Redis never finds the newline past a NUL: no reply, nothing run. This
    // used to split the line into empty arguments forever.
    raw.send(b"ECHO a\0b\r\nPING\r\n");
    assert_eq!(raw.read_n(1), b"");
    std::thread::sleep(Duration::from_millis(300));
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let after = used_memory(&mut c);
    assert!(
        after < before + 8 * 1024 * 1024,
        "used_memory {before} -> {after}"
    );
    // Past the inline limit it is a protocol error, as in Redis.
    raw.0
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    raw.send(&vec![b'x'; 70 * 1024]);
    let reply = raw.read_to_close();
    assert_eq!(reply, b"-ERR Protocol error: too big inline request\r\n");
}

#[test]
fn one_client_with_many_subscriptions_stays_linear() {
    let srv = common::Server::start();
    let n = 100_000;
    let names: Vec<Vec<u8>> = (0..n).map(|i| format!("ch{i}").into_bytes()).collect();
    let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
    args.extend(names.iter().map(|n| n.as_slice()));
    let mut raw = srv.raw();
    let start = Instant::now();
    raw.send(&common::resp(&args));
    // Each name used to be looked up (and removed) by a linear search over
    // the client's subscriptions: quadratic, minutes of a stalled worker.
    let last = format!(":{n}\r\n").into_bytes();
    let mut got = Vec::new();
    let mut buf = [0u8; 1 << 16];
    while !got.ends_with(&last) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "SUBSCRIBE still running"
        );
        let k = std::io::Read::read(&mut raw.0, &mut buf).unwrap();
        assert!(k > 0);
        got.extend_from_slice(&buf[..k]);
    }
    let mut c = srv.client();
    let (_, subs): (String, i64) = cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("ch777")
        .query(&mut c)
        .unwrap();
    assert_eq!(subs, 1);
    drop(raw);
    let start = Instant::now();
    loop {
        let numsub: (String, i64) = cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("ch99999")
            .query(&mut c)
            .unwrap();
        if numsub.1 == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "unsubscribing on close still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
