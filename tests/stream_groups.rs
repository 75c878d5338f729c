//! Consumer groups through real clients (XREADGROUP BLOCK woken by XADD,
//! by XGROUP DESTROY and by DEL; two consumers splitting work) and through
//! the in-process harness with a fake clock (idle times, XAUTOCLAIM after
//! a consumer crashed, write effects, RENAME/COPY keeping groups).

mod common;

use std::thread;

use ferrokv::testkit::Harness;
use redis::Value;

use common::{blocked_clients, show, wait_blocked};

fn cmd(c: &mut redis::Connection, args: &[&str]) -> String {
    let v: Value = redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap();
    show(&v)
}

/// Runs XREADGROUP on a new connection in a thread; yields the reply, or
/// the error code and text.
fn spawn_readgroup(
    url: String,
    args: &'static [&'static str],
) -> thread::JoinHandle<Result<String, String>> {
    thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("XREADGROUP")
            .arg(args)
            .query::<Value>(&mut w)
            .map(|v| show(&v))
            .map_err(|e| format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")))
    })
}

#[test]
fn xreadgroup_block_is_woken_by_xadd_and_records_the_delivery() {
    let srv = common::Server::start();
    let mut c = srv.client();
    cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let h = spawn_readgroup(
        srv.url(),
        &["GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", ">"],
    );
    wait_blocked(&mut c, 1);
    cmd(&mut c, &["XADD", "s", "1-0", "job", "a"]);
    assert_eq!(h.join().unwrap().unwrap(), "[[s [[1-0 [job a]]]]]");
    assert_eq!(blocked_clients(&mut c), 0);
    assert_eq!(
        cmd(&mut c, &["XPENDING", "s", "g"]),
        "[1 1-0 1-0 [[alice 1]]]"
    );
}

#[test]
fn xreadgroup_block_times_out_and_is_immediate_inside_multi() {
    let srv = common::Server::start();
    let mut c = srv.client();
    cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let h = spawn_readgroup(
        srv.url(),
        &["GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"],
    );
    assert_eq!(h.join().unwrap().unwrap(), "nil");
    let mut raw = srv.raw();
    let multi = common::resp(&[b"MULTI"]);
    let read = common::resp(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"s",
        b">",
    ]);
    let exec = common::resp(&[b"EXEC"]);
    raw.send(&[multi, read, exec].concat());
    let want = b"+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n";
    assert_eq!(raw.read_n(want.len()), want);
}

#[test]
fn two_blocked_consumers_split_the_work() {
    let srv = common::Server::start();
    let mut c = srv.client();
    cmd(
        &mut c,
        &["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"],
    );
    let args: &'static [&'static str] = &[
        "GROUP", "workers", "w1", "COUNT", "1", "BLOCK", "0", "STREAMS", "jobs", ">",
    ];
    let h1 = spawn_readgroup(srv.url(), args);
    wait_blocked(&mut c, 1);
    let args: &'static [&'static str] = &[
        "GROUP", "workers", "w2", "COUNT", "1", "BLOCK", "0", "STREAMS", "jobs", ">",
    ];
    let h2 = spawn_readgroup(srv.url(), args);
    wait_blocked(&mut c, 2);
    cmd(&mut c, &["XADD", "jobs", "1-0", "n", "1"]);
    cmd(&mut c, &["XADD", "jobs", "2-0", "n", "2"]);
    // First come, first served: each waiter takes one entry.
    assert_eq!(h1.join().unwrap().unwrap(), "[[jobs [[1-0 [n 1]]]]]");
    assert_eq!(h2.join().unwrap().unwrap(), "[[jobs [[2-0 [n 2]]]]]");
    assert_eq!(
        cmd(&mut c, &["XPENDING", "jobs", "workers"]),
        "[2 1-0 2-0 [[w1 1] [w2 1]]]"
    );
    // Non-blocking readers share what is left, never the same entry.
    for i in 3..=6 {
        cmd(
            &mut c,
            &["XADD", "jobs", &format!("{i}-0"), "n", &i.to_string()],
        );
    }
    let a = cmd(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "w1",
            "COUNT",
            "2",
            "STREAMS",
            "jobs",
            ">",
        ],
    );
    let b = cmd(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "w2",
            "COUNT",
            "2",
            "STREAMS",
            "jobs",
            ">",
        ],
    );
    assert_eq!(a, "[[jobs [[3-0 [n 3]] [4-0 [n 4]]]]]");
    assert_eq!(b, "[[jobs [[5-0 [n 5]] [6-0 [n 6]]]]]");
    assert_eq!(
        cmd(&mut c, &["XACK", "jobs", "workers", "1-0", "3-0", "4-0"]),
        "3"
    );
    assert_eq!(
        cmd(&mut c, &["XPENDING", "jobs", "workers"]),
        "[3 2-0 6-0 [[w2 3]]]"
    );
}

#[test]
fn blocked_readers_fail_when_the_group_or_the_key_goes() {
    let srv = common::Server::start();
    let mut c = srv.client();
    cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let h = spawn_readgroup(
        srv.url(),
        &["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"],
    );
    wait_blocked(&mut c, 1);
    cmd(&mut c, &["XGROUP", "DESTROY", "s", "g"]);
    assert_eq!(
        h.join().unwrap().unwrap_err(),
        "NOGROUP the consumer group this client was blocked on no longer exists"
    );
    cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]);
    let h = spawn_readgroup(
        srv.url(),
        &["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"],
    );
    wait_blocked(&mut c, 1);
    cmd(&mut c, &["DEL", "s"]);
    assert_eq!(
        h.join().unwrap().unwrap_err(),
        "UNBLOCKED the stream key no longer exists"
    );
    // An overwrite by another type counts as a deletion.
    cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let h = spawn_readgroup(
        srv.url(),
        &["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"],
    );
    wait_blocked(&mut c, 1);
    cmd(&mut c, &["SET", "s", "x"]);
    assert_eq!(
        h.join().unwrap().unwrap_err(),
        "UNBLOCKED the stream key no longer exists"
    );
    assert_eq!(blocked_clients(&mut c), 0);
}

/// Issue 11: whole-database removals (FLUSHALL, FLUSHDB, SWAPDB) answer
/// a blocked XREADGROUP as a DEL does (they used to leave it waiting).
#[test]
fn blocked_readers_fail_when_the_database_is_flushed_or_swapped() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for remove in [&["FLUSHALL"][..], &["FLUSHDB"], &["SWAPDB", "0", "1"]] {
        cmd(&mut c, &["FLUSHALL"]);
        cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        let h = spawn_readgroup(
            srv.url(),
            &["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"],
        );
        wait_blocked(&mut c, 1);
        cmd(&mut c, remove);
        assert_eq!(
            h.join().unwrap().unwrap_err(),
            "UNBLOCKED the stream key no longer exists",
            "{remove:?}"
        );
    }
    assert_eq!(blocked_clients(&mut c), 0);
}

#[test]
fn a_history_read_is_answered_at_once_and_a_blocked_new_read_follows_setid() {
    let srv = common::Server::start();
    let mut c = srv.client();
    cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    // An explicit id reads the consumer's history and never blocks, even
    // on an empty stream (Redis 7.0.15 answers the key with an empty list;
    // the suite's "will ignore BLOCK if ID is not >").
    let h = spawn_readgroup(
        srv.url(),
        &[
            "GROUP", "g", "c", "NOACK", "BLOCK", "0", "STREAMS", "s", "0",
        ],
    );
    assert_eq!(h.join().unwrap().unwrap(), "[[s []]]");
    cmd(&mut c, &["XADD", "s", "1-0", "a", "1"]);
    assert_eq!(cmd(&mut c, &["XPENDING", "s", "g"]), "[0 nil nil nil]");
    assert_eq!(
        cmd(&mut c, &["XINFO", "GROUPS", "s"]),
        "[[name g consumers 1 pending 0 last-delivered-id 0-0 entries-read nil lag 1]]"
    );
    // A `>` reader is served from the group's cursor, wherever SETID put it.
    assert_eq!(
        cmd(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]
        ),
        "[[s [[1-0 [a 1]]]]]"
    );
    let h = spawn_readgroup(
        srv.url(),
        &["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"],
    );
    wait_blocked(&mut c, 1);
    cmd(&mut c, &["XGROUP", "SETID", "s", "g", "0"]);
    cmd(&mut c, &["XADD", "s", "2-0", "b", "2"]);
    assert_eq!(
        h.join().unwrap().unwrap(),
        "[[s [[1-0 [a 1]] [2-0 [b 2]]]]]"
    );
}

#[test]
fn xautoclaim_recovers_the_entries_of_a_crashed_consumer() {
    let mut h = Harness::new();
    h.now_ms = Some(10_000);
    h.run(&["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]);
    h.run(&["XADD", "q", "1-0", "job", "a"]);
    h.run(&["XADD", "q", "2-0", "job", "b"]);
    // The crasher takes both and never acknowledges them.
    h.run(&["XREADGROUP", "GROUP", "g", "crasher", "STREAMS", "q", ">"]);
    h.now_ms = Some(10_400);
    assert_eq!(
        h.run(&["XAUTOCLAIM", "q", "g", "rescuer", "1000", "0"]),
        "*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n"
    );
    assert_eq!(
        h.run(&["XPENDING", "q", "g", "IDLE", "300", "-", "+", "10"]),
        "*2\r\n*4\r\n$3\r\n1-0\r\n$7\r\ncrasher\r\n:400\r\n:1\r\n\
         *4\r\n$3\r\n2-0\r\n$7\r\ncrasher\r\n:400\r\n:1\r\n"
    );
    h.now_ms = Some(12_000);
    assert_eq!(
        h.run(&["XAUTOCLAIM", "q", "g", "rescuer", "1000", "0", "COUNT", "1"]),
        "*3\r\n$3\r\n2-0\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$3\r\njob\r\n$1\r\na\r\n*0\r\n"
    );
    h.now_ms = Some(12_500);
    assert_eq!(
        h.run(&["XPENDING", "q", "g", "-", "+", "10"]),
        "*2\r\n*4\r\n$3\r\n1-0\r\n$7\r\nrescuer\r\n:500\r\n:2\r\n\
         *4\r\n$3\r\n2-0\r\n$7\r\ncrasher\r\n:2500\r\n:1\r\n"
    );
    assert_eq!(
        h.run(&["XINFO", "CONSUMERS", "q", "g"]),
        "*2\r\n*6\r\n$4\r\nname\r\n$7\r\ncrasher\r\n$7\r\npending\r\n:1\r\n$4\r\nidle\r\n:2500\r\n\
         *6\r\n$4\r\nname\r\n$7\r\nrescuer\r\n$7\r\npending\r\n:1\r\n$4\r\nidle\r\n:500\r\n"
    );
    // An entry deleted meanwhile is dropped from the PEL and reported.
    h.run(&["XDEL", "q", "2-0"]);
    assert_eq!(
        h.run(&["XAUTOCLAIM", "q", "g", "rescuer", "0", "0", "JUSTID"]),
        "*3\r\n$3\r\n0-0\r\n*1\r\n$3\r\n1-0\r\n*1\r\n$3\r\n2-0\r\n"
    );
    assert_eq!(
        h.run(&["XGROUP", "DELCONSUMER", "q", "g", "rescuer"]),
        ":1\r\n"
    );
    assert_eq!(
        h.run(&["XPENDING", "q", "g"]),
        "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"
    );
}

#[test]
fn group_commands_publish_replayable_effects() {
    let mut h = Harness::new();
    h.now_ms = Some(5_000);
    h.run(&["XADD", "s", "1-0", "a", "1"]);
    h.run(&["XADD", "s", "2-0", "a", "2"]);
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "COUNT",
        "1",
        "STREAMS",
        "s",
        ">",
    ]);
    // A `>` read is published as an XCLAIM per delivered entry; a history
    // read publishes nothing (Redis 7.0 propagates neither as XREADGROUP).
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "9-9"]);
    h.run(&["XCLAIM", "s", "g", "d", "0", "1-0", "9-0", "IDLE", "10"]);
    h.now_ms = Some(6_000);
    h.run(&["XAUTOCLAIM", "s", "g", "e", "500", "0", "JUSTID"]);
    h.run(&["XAUTOCLAIM", "s", "g", "e", "500", "0"]);
    h.run(&["XACK", "s", "g", "1-0", "1-0"]);
    h.run(&["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"]);
    h.run(&["XGROUP", "CREATECONSUMER", "s", "g", "f"]);
    h.run(&["XGROUP", "DELCONSUMER", "s", "g", "f"]);
    h.run(&["XGROUP", "DESTROY", "s", "g"]);
    h.run(&["XGROUP", "DESTROY", "s", "g"]);
    assert_eq!(
        h.take_effects(),
        [
            "0: XADD s 1-0 a 1",
            "0: XADD s 2-0 a 2",
            "0: XGROUP CREATE s g 0",
            "0: XCLAIM s g c 0 1-0 TIME 5000 RETRYCOUNT 1 FORCE JUSTID LASTID 1-0",
            "0: XCLAIM s g d 0 1-0 TIME 4990",
            "0: XCLAIM s g e 0 1-0 TIME 6000 JUSTID",
            "0: XACK s g 1-0 1-0",
            "0: XGROUP SETID s g 0 ENTRIESREAD 0",
            "0: XGROUP CREATECONSUMER s g f",
            "0: XGROUP DELCONSUMER s g f",
            "0: XGROUP DESTROY s g",
        ]
    );
}

#[test]
fn rename_and_copy_keep_the_groups() {
    let mut h = Harness::new();
    h.run(&["XADD", "s", "1-0", "a", "1"]);
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]);
    h.run(&["RENAME", "s", "t"]);
    let summary = "*4\r\n:1\r\n$3\r\n1-0\r\n$3\r\n1-0\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n1\r\n";
    assert_eq!(h.run(&["XPENDING", "t", "g"]), summary);
    h.run(&["COPY", "t", "u"]);
    assert_eq!(h.run(&["XACK", "t", "g", "1-0"]), ":1\r\n");
    // The copy has its own PEL.
    assert_eq!(h.run(&["XPENDING", "u", "g"]), summary);
}

#[test]
fn group_commands_notify_their_events() {
    let srv = common::Server::start_with(&["--notify-keyspace-events", "Et"]);
    let mut sub = common::keyevent_subscriber(&srv);
    let mut c = srv.client();
    let script: &[&[&str]] = &[
        &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
        &["XADD", "s", "1-1", "a", "1"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c0"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c0"],
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "c9", "STREAMS", "s", ">"],
        &["XCLAIM", "s", "g", "c2", "0", "1-1"],
        &["XAUTOCLAIM", "s", "g", "c3", "0", "0"],
        &["XACK", "s", "g", "1-1"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c3"],
        &["XGROUP", "DELCONSUMER", "s", "g", "nobody"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XGROUP", "DESTROY", "s", "g"],
    ];
    for args in script {
        let _: Value = redis::cmd(args[0]).arg(&args[1..]).query(&mut c).unwrap();
    }
    // As Redis 7.0.15 sends them (XACK and the claims themselves send none).
    assert_eq!(
        common::read_pmessages(&mut sub, 9)
            .into_iter()
            .map(|(channel, _)| channel.trim_start_matches("__keyevent@0__:").to_string())
            .collect::<Vec<_>>(),
        [
            "xgroup-create",
            "xadd",
            "xgroup-createconsumer",
            "xgroup-createconsumer",
            "xgroup-createconsumer",
            "xgroup-createconsumer",
            "xgroup-delconsumer",
            "xgroup-setid",
            "xgroup-destroy",
        ]
    );
}
