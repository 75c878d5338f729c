//! Pub/Sub over real sockets: reply shapes (RESP2 arrays, RESP3 pushes),
//! the subscribed-mode rule, delivery order, pattern matching, cleanup and
//! the pubsub output buffer limit.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Raw, Server, resp};

fn cmd(raw: &mut Raw, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    raw.send(&resp(&a));
}

/// Sends a command and expects exactly `want` back.
fn expect(raw: &mut Raw, args: &[&str], want: &[u8]) {
    cmd(raw, args);
    let got = raw.read_n(want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "reply to {args:?}"
    );
}

fn message(kind: &str, parts: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n${}\r\n{kind}\r\n", parts.len() + 1, kind.len()).into_bytes();
    for p in parts {
        v.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    v
}

#[test]
fn resp2_confirmations_messages_and_subscribed_mode() {
    let srv = Server::start();
    let mut sub = srv.raw();
    let mut publ = srv.raw();
    expect(
        &mut sub,
        &["UNSUBSCRIBE"],
        b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
    );
    expect(
        &mut sub,
        &["SUBSCRIBE", "a", "b", "a"],
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n",
    );
    expect(&mut sub, &["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    expect(&mut sub, &["PING", "x"], b"*2\r\n$4\r\npong\r\n$1\r\nx\r\n");
    expect(
        &mut sub,
        &["GET", "x"],
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    expect(
        &mut sub,
        &["CLIENT", "LIST"],
        b"-ERR Can't execute 'client|list': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    expect(
        &mut sub,
        &["PSUBSCRIBE", "p*"],
        b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n",
    );
    expect(&mut publ, &["PUBLISH", "a", "hello"], b":1\r\n");
    let want = message("message", &["a", "hello"]);
    assert_eq!(sub.read_n(want.len()), want);
    expect(&mut publ, &["PUBLISH", "pq", "hi"], b":1\r\n");
    let want = message("pmessage", &["p*", "pq", "hi"]);
    assert_eq!(sub.read_n(want.len()), want);
    expect(&mut publ, &["PUBSUB", "NUMPAT"], b":1\r\n");
    expect(
        &mut publ,
        &["PUBSUB", "NUMSUB", "a", "zz"],
        b"*4\r\n$1\r\na\r\n:1\r\n$2\r\nzz\r\n:0\r\n",
    );
    expect(
        &mut sub,
        &["UNSUBSCRIBE", "zz"],
        b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:3\r\n",
    );
    expect(
        &mut sub,
        &["PUNSUBSCRIBE"],
        b"*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:2\r\n",
    );
    expect(&mut sub, &["RESET"], b"+RESET\r\n");
    expect(&mut sub, &["PING"], b"+PONG\r\n");
    expect(&mut publ, &["PUBLISH", "a", "x"], b":0\r\n");
    expect(&mut publ, &["PUBSUB", "CHANNELS"], b"*0\r\n");
}

#[test]
fn shard_channels_count_on_their_own() {
    let srv = Server::start();
    let mut sub = srv.raw();
    let mut publ = srv.raw();
    expect(
        &mut sub,
        &["SUBSCRIBE", "a"],
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
    );
    expect(
        &mut sub,
        &["SSUBSCRIBE", "s1", "s2"],
        b"*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n*3\r\n$10\r\nssubscribe\r\n$2\r\ns2\r\n:2\r\n",
    );
    expect(&mut publ, &["SPUBLISH", "s2", "m"], b":1\r\n");
    let want = message("smessage", &["s2", "m"]);
    assert_eq!(sub.read_n(want.len()), want);
    expect(
        &mut publ,
        &["PUBSUB", "SHARDNUMSUB", "s1", "x"],
        b"*4\r\n$2\r\ns1\r\n:1\r\n$1\r\nx\r\n:0\r\n",
    );
    expect(
        &mut publ,
        &["PUBSUB", "SHARDCHANNELS", "s1"],
        b"*1\r\n$2\r\ns1\r\n",
    );
    expect(
        &mut sub,
        &["UNSUBSCRIBE"],
        b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n",
    );
    // Still subscribed to shard channels: still in subscribed mode.
    cmd(&mut sub, &["GET", "x"]);
    let got = sub.read_n(24);
    assert_eq!(String::from_utf8_lossy(&got), "-ERR Can't execute 'get'");
}

#[test]
fn resp3_pushes_interleave_with_replies() {
    let srv = Server::start();
    let mut c = srv.raw();
    cmd(&mut c, &["HELLO", "3"]);
    let mut hello = vec![0u8; 4096];
    std::thread::sleep(Duration::from_millis(100));
    let _ = c.0.read(&mut hello);
    expect(
        &mut c,
        &["UNSUBSCRIBE"],
        b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n",
    );
    expect(
        &mut c,
        &["SUBSCRIBE", "ch"],
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    );
    expect(&mut c, &["GET", "x"], b"_\r\n");
    expect(&mut c, &["PING"], b"+PONG\r\n");
    // Publishing to itself: the push comes before PUBLISH's own reply.
    expect(
        &mut c,
        &["PUBLISH", "ch", "me"],
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nme\r\n:1\r\n",
    );
}

#[test]
fn messages_from_one_publisher_arrive_in_order() {
    let srv = Server::start();
    let mut sub = srv.raw();
    expect(
        &mut sub,
        &["SUBSCRIBE", "seq"],
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nseq\r\n:1\r\n",
    );
    let mut publ = srv.raw();
    let n = 10_000;
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend_from_slice(&resp(&[b"PUBLISH", b"seq", i.to_string().as_bytes()]));
    }
    publ.send(&batch);
    let mut want = Vec::new();
    for i in 0..n {
        want.extend_from_slice(&message("message", &["seq", &i.to_string()]));
    }
    let got = sub.read_n(want.len());
    assert!(got == want, "messages out of order or missing");
    assert_eq!(publ.read_n(4 * n), b":1\r\n".repeat(n));
}

#[test]
fn patterns_match_as_redis_globs() {
    let srv = Server::start();
    let mut sub = srv.raw();
    let mut publ = srv.raw();
    let patterns = ["news.*", "h?llo", "[a-c]x", "[^x]y", "lit\\*", "a\\?b"];
    for (i, p) in patterns.iter().enumerate() {
        let want = format!(
            "*3\r\n$10\r\npsubscribe\r\n${}\r\n{p}\r\n:{}\r\n",
            p.len(),
            i + 1
        );
        expect(&mut sub, &["PSUBSCRIBE", p], want.as_bytes());
    }
    let cases = [
        ("news.sport", Some("news.*")),
        ("news", None),
        ("hello", Some("h?llo")),
        ("heello", None),
        ("bx", Some("[a-c]x")),
        ("dx", None),
        ("zy", Some("[^x]y")),
        ("xy", None),
        ("lit*", Some("lit\\*")),
        ("litx", None),
        ("a?b", Some("a\\?b")),
        ("acb", None),
    ];
    for (channel, hit) in cases {
        let n = usize::from(hit.is_some());
        expect(
            &mut publ,
            &["PUBLISH", channel, "m"],
            format!(":{n}\r\n").as_bytes(),
        );
        if let Some(p) = hit {
            let want = message("pmessage", &[p, channel, "m"]);
            assert_eq!(sub.read_n(want.len()), want, "{channel} via {p}");
        }
    }
    expect(&mut publ, &["PUBSUB", "NUMPAT"], b":6\r\n");
}

#[test]
fn client_list_shows_counts_and_disconnect_cleans_up() {
    let srv = Server::start();
    let mut conn = srv.client();
    {
        let mut sub = srv.raw();
        cmd(&mut sub, &["SUBSCRIBE", "a", "b"]);
        cmd(&mut sub, &["PSUBSCRIBE", "x*"]);
        cmd(&mut sub, &["SSUBSCRIBE", "s"]);
        sub.read_n(4 * 28);
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
        let line = list
            .lines()
            .find(|l| l.contains("sub=2"))
            .expect("subscriber listed");
        assert!(line.contains("flags=P "), "{line}");
        assert!(line.contains("psub=1 ssub=1"), "{line}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("a")
            .query(&mut conn)
            .unwrap();
        let pats: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut conn).unwrap();
        if n[0].1 == 0 && pats == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "subscriptions leaked");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_crate_pubsub_round_trip() {
    let srv = Server::start();
    let mut sub_conn = srv.client();
    let mut ps = sub_conn.as_pubsub();
    ps.subscribe("events").unwrap();
    ps.psubscribe("orders.*").unwrap();
    ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut conn = srv.client();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("events")
        .arg("e1")
        .query(&mut conn)
        .unwrap();
    assert_eq!(n, 1);
    let _: i64 = redis::cmd("PUBLISH")
        .arg("orders.42")
        .arg("o1")
        .query(&mut conn)
        .unwrap();
    let m = ps.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "events");
    assert_eq!(m.get_payload::<String>().unwrap(), "e1");
    let m = ps.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "orders.42");
    assert_eq!(m.get_pattern::<String>().unwrap(), "orders.*");
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_subscriber_that_does_not_read_is_cut_off_at_the_pubsub_limit() {
    let srv = Server::start();
    let mut slow = srv.raw();
    expect(
        &mut slow,
        &["SUBSCRIBE", "big"],
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n",
    );
    // A reader that drains everything on its own thread.
    let mut fast = srv.raw();
    expect(
        &mut fast,
        &["SUBSCRIBE", "big"],
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n",
    );
    let payload = vec![b'x'; 100 * 1024];
    let frame_len = message("message", &["big", std::str::from_utf8(&payload).unwrap()]).len();
    let count = 1000; // 100 MB in all
    let reader = std::thread::spawn(move || {
        let mut left = frame_len * count;
        let mut buf = vec![0u8; 1 << 20];
        fast.0
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        while left > 0 {
            match fast.0.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
        (left, fast)
    });
    let mut publ = srv.raw();
    let pid = srv.pid();
    let mut max_rss = 0;
    let mut receivers = Vec::new();
    for chunk in 0..count / 10 {
        let mut batch = Vec::new();
        for _ in 0..10 {
            batch.extend_from_slice(&resp(&[b"PUBLISH", b"big", &payload]));
        }
        publ.send(&batch);
        let replies = publ.read_n(40);
        receivers.push(String::from_utf8_lossy(&replies).into_owned());
        if chunk % 10 == 0 {
            max_rss = max_rss.max(vm_rss_kb(pid));
        }
    }
    let (left, _fast) = reader.join().unwrap();
    assert_eq!(left, 0, "the reading subscriber missed messages");
    // The slow one was dropped along the way: later messages reach one client.
    assert!(
        receivers.last().unwrap().starts_with(":1\r\n"),
        "{:?}",
        receivers.last()
    );
    assert!(slow.read_to_close().len() < 100 * 1024 * 1024);
    let numsub: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("big")
        .query(&mut srv.client())
        .unwrap();
    assert_eq!(numsub[0].1, 1);
    // 100 MB went through; the server never held more than the limit's worth.
    assert!(max_rss < 150 * 1024, "server RSS reached {max_rss} kB");
}

/// Reads pmessage frames until `n` arrived; returns (channel, payload) pairs.
fn read_pmessages(raw: &mut Raw, n: usize) -> Vec<(String, String)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < n && Instant::now() < deadline {
        let mut chunk = [0u8; 4096];
        match raw.0.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let frames: Vec<&str> = text.split("*4\r\n").filter(|f| !f.is_empty()).collect();
        out = frames
            .iter()
            .filter_map(|f| {
                let parts: Vec<&str> = f.split("\r\n").collect();
                (parts.len() >= 8).then(|| (parts[5].to_string(), parts[7].to_string()))
            })
            .collect();
    }
    out
}

#[test]
fn keyspace_notifications_name_redis_events() {
    let srv = Server::start_with(&["--notify-keyspace-events", "KEA"]);
    let mut sub = srv.raw();
    expect(
        &mut sub,
        &["PSUBSCRIBE", "__key*__:*"],
        b"*3\r\n$10\r\npsubscribe\r\n$10\r\n__key*__:*\r\n:1\r\n",
    );
    let mut c = srv.client();
    let script: &[&[&str]] = &[
        &["SET", "k", "v", "EX", "100"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["RPUSH", "l", "a"],
        &["LMOVE", "l", "l2", "LEFT", "RIGHT"],
        &["HSET", "h", "f", "v"],
        &["DEL", "h", "nosuch"],
        &["PSETEX", "gone", "1", "v"],
    ];
    for args in script {
        let _: redis::Value = redis::cmd(args[0]).arg(&args[1..]).query(&mut c).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let _: Option<String> = redis::cmd("GET").arg("gone").query(&mut c).unwrap();
    let events = [
        ("k", "set"),
        ("k", "expire"),
        ("f", "incrbyfloat"),
        ("l", "rpush"),
        ("l2", "rpush"),
        ("l", "lpop"),
        ("l", "del"),
        ("h", "hset"),
        ("h", "del"),
        ("gone", "set"),
        ("gone", "expire"),
        ("gone", "expired"),
    ];
    let mut want = Vec::new();
    for (key, event) in events {
        want.push((format!("__keyspace@0__:{key}"), event.to_string()));
        want.push((format!("__keyevent@0__:{event}"), key.to_string()));
    }
    assert_eq!(read_pmessages(&mut sub, want.len()), want);
}

#[test]
fn numpat_and_info_count_distinct_names() {
    let srv = Server::start();
    let mut a = srv.raw();
    let mut b = srv.raw();
    for c in [&mut a, &mut b] {
        expect(
            c,
            &["PSUBSCRIBE", "p*"],
            b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n",
        );
        expect(
            c,
            &["SUBSCRIBE", "q"],
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n:2\r\n",
        );
    }
    expect(
        &mut a,
        &["SSUBSCRIBE", "s"],
        b"*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n",
    );
    let mut c = srv.client();
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut c).unwrap();
    assert_eq!(numpat, 1);
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    for line in [
        "pubsub_channels:1",
        "pubsub_patterns:1",
        "pubsubshard_channels:1",
    ] {
        assert!(
            info.contains(&format!("{line}\r\n")),
            "{line} missing in {info}"
        );
    }
}

#[test]
fn a_blocked_resp3_subscriber_still_gets_messages() {
    let srv = Server::start();
    let mut c = srv.raw();
    cmd(&mut c, &["HELLO", "3"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut hello = vec![0u8; 4096];
    let _ = c.0.read(&mut hello);
    expect(
        &mut c,
        &["SUBSCRIBE", "ch"],
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    );
    cmd(&mut c, &["BLPOP", "nolist", "3"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut publ = srv.raw();
    let started = Instant::now();
    expect(&mut publ, &["PUBLISH", "ch", "m"], b":1\r\n");
    let want = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n";
    assert_eq!(c.read_n(want.len()), want);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "message waited for the timeout"
    );
    // The BLPOP itself still times out with its null.
    assert_eq!(c.read_n(3), b"_\r\n");
}
