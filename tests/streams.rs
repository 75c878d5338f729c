//! Streams through real clients: XREAD BLOCK woken by XADD from another
//! connection (every reader, none consuming), timeouts, `$`, CLIENT
//! UNBLOCK; then write effects and keyspace events of the stream commands.

mod common;

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use ferrokv::testkit::Harness;
use redis::Value;

use common::{blocked_clients, show, wait_blocked};

fn xadd(c: &mut redis::Connection, key: &str, id: &str, pairs: &[&str]) -> String {
    redis::cmd("XADD")
        .arg(key)
        .arg(id)
        .arg(pairs)
        .query(c)
        .unwrap()
}

/// Runs `XREAD <args>` on a new connection in a thread; yields the reply
/// and how long it took.
fn spawn_xread(
    url: String,
    args: &'static [&'static str],
) -> thread::JoinHandle<(String, Duration)> {
    thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        let t = Instant::now();
        let v: Value = redis::cmd("XREAD").arg(args).query(&mut w).unwrap();
        (show(&v), t.elapsed())
    })
}

#[test]
fn xread_block_dollar_is_woken_by_xadd_from_another_connection() {
    let srv = common::Server::start();
    let mut c = srv.client();
    xadd(&mut c, "s", "1-0", &["old", "1"]);
    let h = spawn_xread(srv.url(), &["BLOCK", "0", "STREAMS", "s", "$"]);
    wait_blocked(&mut c, 1);
    let added_at = Instant::now();
    xadd(&mut c, "s", "2-0", &["new", "2"]);
    let (got, _) = h.join().unwrap();
    // Only what arrived after the block, not the old entry.
    assert_eq!(got, "[[s [[2-0 [new 2]]]]]");
    assert!(added_at.elapsed() < Duration::from_secs(1));
    assert_eq!(blocked_clients(&mut c), 0);
    // Nothing was consumed.
    let n: i64 = redis::cmd("XLEN").arg("s").query(&mut c).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn xread_block_times_out_with_nil() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let t = Instant::now();
    let v: Value = redis::cmd("XREAD")
        .arg(&["BLOCK", "200", "STREAMS", "nokey", "$"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, Value::Nil);
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn every_reader_of_the_key_is_woken_by_one_xadd() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut readers = Vec::new();
    for i in 0..3 {
        readers.push(spawn_xread(
            srv.url(),
            &["BLOCK", "5000", "STREAMS", "s", "$"],
        ));
        wait_blocked(&mut c, i + 1);
    }
    // A reader waiting for ids past the next entry stays blocked.
    let late = spawn_xread(srv.url(), &["BLOCK", "5000", "STREAMS", "s", "100-0"]);
    // And one on two keys is served by the key that got the entry.
    let both = spawn_xread(
        srv.url(),
        &[
            "COUNT", "1", "BLOCK", "5000", "STREAMS", "other", "s", "$", "$",
        ],
    );
    wait_blocked(&mut c, 5);
    xadd(&mut c, "s", "5-0", &["f", "v"]);
    for r in readers {
        assert_eq!(r.join().unwrap().0, "[[s [[5-0 [f v]]]]]");
    }
    assert_eq!(both.join().unwrap().0, "[[s [[5-0 [f v]]]]]");
    wait_blocked(&mut c, 1);
    xadd(&mut c, "s", "101-0", &["g", "w"]);
    assert_eq!(late.join().unwrap().0, "[[s [[101-0 [g w]]]]]");
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn a_list_waiter_on_the_key_does_not_hold_back_stream_readers() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let url = srv.url();
    let pop = thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        let v: Value = redis::cmd("BLPOP").arg("k").arg(1).query(&mut w).unwrap();
        show(&v)
    });
    wait_blocked(&mut c, 1);
    let reader = spawn_xread(srv.url(), &["BLOCK", "5000", "STREAMS", "k", "0"]);
    wait_blocked(&mut c, 2);
    xadd(&mut c, "k", "1-1", &["a", "b"]);
    assert_eq!(reader.join().unwrap().0, "[[k [[1-1 [a b]]]]]");
    // The BLPOP cannot take from a stream: it times out.
    assert_eq!(pop.join().unwrap(), "nil");
}

#[test]
fn served_readers_get_count_entries_and_resp3_maps() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut raw = srv.raw();
    raw.send(&common::resp(&[b"HELLO", b"3"]));
    // HELLO's map ends with its (empty) modules array.
    let mut hello = Vec::new();
    while !hello.ends_with(b"modules\r\n*0\r\n") {
        let mut chunk = [0u8; 1024];
        let n = raw.0.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        hello.extend_from_slice(&chunk[..n]);
    }
    raw.send(&common::resp(&[
        b"XREAD", b"COUNT", b"1", b"BLOCK", b"0", b"STREAMS", b"s", b"0",
    ]));
    wait_blocked(&mut c, 1);
    // One XADD with MULTI of two entries: the reader gets the first only.
    let _: Value = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg(&["s", "1-0", "a", "1"])
        .cmd("XADD")
        .arg(&["s", "2-0", "b", "2"])
        .query(&mut c)
        .unwrap();
    let want = b"%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n";
    assert_eq!(
        String::from_utf8_lossy(&raw.read_n(want.len())),
        String::from_utf8_lossy(want)
    );
}

#[test]
fn client_unblock_ends_an_xread_as_timeout_or_error() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for (how, expect_err) in [("TIMEOUT", false), ("ERROR", true)] {
        let mut w = srv.client();
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut w).unwrap();
        let h = thread::spawn(move || {
            let r: redis::RedisResult<Value> = redis::cmd("XREAD")
                .arg(&["BLOCK", "0", "STREAMS", "s", "$"])
                .query(&mut w);
            r
        });
        wait_blocked(&mut c, 1);
        let n: i64 = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .arg(how)
            .query(&mut c)
            .unwrap();
        assert_eq!(n, 1);
        match h.join().unwrap() {
            Err(e) if expect_err => assert_eq!(e.code(), Some("UNBLOCKED")),
            Ok(v) if !expect_err => assert_eq!(v, Value::Nil),
            other => panic!("unexpected {other:?}"),
        }
        wait_blocked(&mut c, 0);
    }
}

#[test]
fn xadd_auto_ids_follow_the_clock_and_survive_it_going_back() {
    let mut h = Harness::new();
    h.now_ms = Some(1_000);
    assert_eq!(h.run(&["XADD", "s", "*", "a", "1"]), "$6\r\n1000-0\r\n");
    assert_eq!(h.run(&["XADD", "s", "*", "a", "1"]), "$6\r\n1000-1\r\n");
    h.now_ms = Some(500);
    assert_eq!(h.run(&["XADD", "s", "*", "a", "1"]), "$6\r\n1000-2\r\n");
    h.now_ms = Some(2_000);
    assert_eq!(h.run(&["XADD", "s", "*", "a", "1"]), "$6\r\n2000-0\r\n");
    assert_eq!(
        h.run(&["XADD", "s", "2000-*", "a", "1"]),
        "$6\r\n2000-1\r\n"
    );
    assert_eq!(
        h.run(&["XADD", "s", "3000-*", "a", "1"]),
        "$6\r\n3000-0\r\n"
    );
}

#[test]
fn stream_writes_publish_replayable_effects() {
    let mut h = Harness::new();
    h.now_ms = Some(7_000);
    h.run(&["XADD", "s", "*", "a", "1"]);
    h.run(&["XADD", "s", "7000-*", "a", "2"]);
    h.run(&["XADD", "s", "MAXLEN", "5", "7001-0", "a", "3"]);
    h.run(&[
        "XADD", "s", "MAXLEN", "~", "1", "LIMIT", "50", "*", "a", "4",
    ]);
    h.run(&["XADD", "s", "MINID", "~", "0", "9000-0", "a", "5"]);
    h.run(&["XADD", "nokey", "NOMKSTREAM", "*", "a", "1"]);
    h.run(&["XDEL", "s", "1-1"]);
    h.run(&["XDEL", "s", "7000-0", "1-1"]);
    // A `~` trim that cannot drop a whole node changes nothing.
    h.run(&["XTRIM", "s", "MAXLEN", "~", "2"]);
    h.run(&["XTRIM", "s", "MAXLEN", "2"]);
    h.run(&["XTRIM", "s", "MAXLEN", "2"]);
    h.run(&["XSETID", "s", "9999-0"]);
    h.run(&["XREAD", "STREAMS", "s", "0"]);
    h.run(&["XRANGE", "s", "-", "+"]);
    assert_eq!(
        h.take_effects(),
        [
            "0: XADD s 7000-0 a 1",
            "0: XADD s 7000-1 a 2",
            "0: XADD s MAXLEN 5 7001-0 a 3",
            // `~` replays as the exact trim it did; LIMIT goes with it.
            "0: XADD s MAXLEN = 4 7001-1 a 4",
            "0: XADD s MINID = 7000-0 9000-0 a 5",
            "0: XDEL s 7000-0 1-1",
            "0: XTRIM s MAXLEN 2",
            "0: XSETID s 9999-0",
        ]
    );
}

#[test]
fn stream_commands_notify_their_events() {
    let srv = common::Server::start_with(&["--notify-keyspace-events", "Et"]);
    let mut sub = common::keyevent_subscriber(&srv);
    let mut c = srv.client();
    let script: &[&[&str]] = &[
        &["XADD", "s", "1-0", "a", "1"],
        &["XADD", "s", "MAXLEN", "1", "2-0", "a", "2"],
        &["XADD", "s", "MAXLEN", "5", "3-0", "a", "3"],
        &["XDEL", "s", "9-9"],
        &["XDEL", "s", "2-0"],
        &["XTRIM", "s", "MAXLEN", "5"],
        &["XTRIM", "s", "MAXLEN", "0"],
        &["XSETID", "s", "10-0"],
    ];
    for args in script {
        let _: Value = redis::cmd(args[0]).arg(&args[1..]).query(&mut c).unwrap();
    }
    let events = ["xadd", "xadd", "xtrim", "xadd", "xdel", "xtrim", "xsetid"];
    let want: Vec<(String, String)> = events
        .iter()
        .map(|e| (format!("__keyevent@0__:{e}"), "s".to_string()))
        .collect();
    assert_eq!(common::read_pmessages(&mut sub, want.len()), want);
}
