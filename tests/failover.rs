//! FAILOVER: a master hands its role to a replica once the replica has
//! the whole stream (writes paused meanwhile), becoming its replica; the
//! target turns master on `PSYNC <replid> <offset> FAILOVER` and
//! continues the old master from its backlog. A timeout, an abort or a
//! refused PSYNC rolls back. Error strings as Redis 7.0.15's.

mod common;

use common::{
    Server, digest, follow, info_field, info_num, q, resp, signal, wait_acked, wait_for,
    wait_link_up,
};

fn err(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(c) {
        Ok(v) => panic!("{args:?} answered {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn role(c: &mut redis::Connection) -> String {
    match q(c, &["ROLE"]) {
        redis::Value::Array(v) => match &v[0] {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn start() -> Server {
    Server::start_with(&["--save", "", "--enable-debug-command", "yes"])
}

/// A master and its replica, which acknowledged the whole stream; a
/// client of the master.
fn pair() -> (Server, Server, redis::Connection) {
    let a = start();
    let b = start();
    follow(&mut b.client(), a.port);
    let mut ma = a.client();
    wait_acked(&mut ma, 1);
    (a, b, ma)
}

/// INFO's `master_failover_state`.
fn failover_state(c: &mut redis::Connection) -> String {
    info_field(c, "replication", "master_failover_state")
}

fn wait_failover_end(c: &mut redis::Connection) {
    wait_for("the failover to end", || failover_state(c) == "no-failover");
}

#[test]
fn errors_are_redis_errors() {
    let master = start();
    let mut m = master.client();
    let port = master.port.to_string();
    assert!(err(&mut m, &["FAILOVER"]).contains("FAILOVER requires connected replicas."));
    assert!(err(&mut m, &["FAILOVER", "ABORT"]).contains("No failover in progress."));
    assert!(err(&mut m, &["FAILOVER", "TO"]).contains("syntax error"));
    assert!(err(&mut m, &["FAILOVER", "ABORT", "TIMEOUT", "5"]).contains("syntax error"));
    assert!(err(&mut m, &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "6"]).contains("syntax error"));
    assert!(err(&mut m, &["FAILOVER", "FORCE", "FORCE"]).contains("syntax error"));
    assert!(err(&mut m, &["FAILOVER", "TO", "h", "x"]).contains("value is not an integer"));
    assert!(
        err(&mut m, &["FAILOVER", "TIMEOUT", "0"])
            .contains("FAILOVER timeout must be greater than 0")
    );
    assert!(err(&mut m, &["FAILOVER", "TIMEOUT", "x"]).contains("value is not an integer"));

    let replica = start();
    follow(&mut replica.client(), master.port);
    let mut r = replica.client();
    assert!(
        err(&mut r, &["FAILOVER", "TO", "127.0.0.1", &port])
            .contains("FAILOVER is not valid when server is a replica.")
    );
    wait_for("the replica attached", || {
        info_field(&mut m, "replication", "connected_slaves") == "1"
    });
    assert!(
        err(&mut m, &["FAILOVER", "FORCE", "TIMEOUT", "10"])
            .contains("FAILOVER with force option requires both a timeout and target HOST and IP.")
    );
    let rport = replica.port.to_string();
    assert!(
        err(&mut m, &["FAILOVER", "TO", "127.0.0.1", &rport, "FORCE"])
            .contains("FAILOVER with force option requires")
    );
    assert!(
        err(&mut m, &["FAILOVER", "TO", "invalidhost", &rport])
            .contains("FAILOVER target HOST and PORT is not a replica.")
    );
    assert!(
        err(&mut m, &["FAILOVER", "TO", "127.0.0.1", "99999"])
            .contains("FAILOVER target HOST and PORT is not a replica.")
    );
    assert_eq!(failover_state(&mut m), "no-failover");
    // PSYNC FAILOVER must name the replica's own history.
    let mut raw = replica.raw();
    raw.send(&resp(&[b"PSYNC", &[b'a'; 40], b"1", b"FAILOVER"]));
    assert_eq!(
        raw.read_line(),
        "-ERR PSYNC FAILOVER replid must match my replid.\r\n"
    );
    assert_eq!(role(&mut r), "slave");
}

#[test]
fn failover_to_a_replica_swaps_the_roles() {
    let a = start();
    let b = start();
    let c = start();
    follow(&mut b.client(), a.port);
    follow(&mut c.client(), a.port);
    let mut ma = a.client();
    for i in 0..100 {
        q(&mut ma, &["SET", &format!("k{i}"), &i.to_string()]);
    }
    q(&mut ma, &["SELECT", "3"]);
    q(&mut ma, &["RPUSH", "list", "x", "y"]);
    q(&mut ma, &["SELECT", "0"]);
    let mut mb = b.client();
    let before = info_num(&mut mb, "stats", "sync_partial_ok");
    assert_eq!(
        q(
            &mut ma,
            &["FAILOVER", "TO", "127.0.0.1", &b.port.to_string()]
        ),
        redis::Value::Okay
    );
    wait_failover_end(&mut ma);
    assert_eq!(role(&mut ma), "slave");
    assert_eq!(role(&mut mb), "master");
    assert_eq!(
        info_field(&mut ma, "replication", "master_port"),
        b.port.to_string()
    );
    wait_link_up(&mut ma);
    // The target continued the old master from its backlog.
    let after = info_num(&mut mb, "stats", "sync_partial_ok");
    assert_eq!(after - before, 1);
    assert_eq!(info_field(&mut mb, "stats", "sync_full"), "0");
    // Writes now go to the new master and reach the old one.
    let e = err(&mut ma, &["SET", "x", "1"]);
    assert!(e.contains("read only replica"), "{e}");
    q(&mut mb, &["SET", "new", "v"]);
    wait_for("the write replicated", || {
        q(&mut ma, &["EXISTS", "new"]) == redis::Value::Int(1)
    });
    // The other replica follows the old master, chained; then the new one.
    let mut mc = c.client();
    follow(&mut c.client(), b.port);
    wait_acked(&mut mb, 2);
    assert_eq!(digest(&mut ma), digest(&mut mb));
    assert_eq!(digest(&mut mb), digest(&mut mc));
}

#[test]
fn failover_to_any_replica_picks_the_one_in_sync() {
    let a = start();
    let b = start();
    follow(&mut b.client(), a.port);
    let mut ma = a.client();
    q(&mut ma, &["SET", "k", "v"]);
    wait_acked(&mut ma, 1);
    assert_eq!(q(&mut ma, &["FAILOVER"]), redis::Value::Okay);
    wait_failover_end(&mut ma);
    let mut mb = b.client();
    assert_eq!(role(&mut mb), "master");
    assert_eq!(role(&mut ma), "slave");
}

#[test]
fn a_timeout_rolls_back_and_writes_resume() {
    let (a, b, mut ma) = pair();
    signal(b.pid(), "-STOP");
    q(&mut ma, &["SET", "case", "1"]);
    let bport = b.port.to_string();
    assert_eq!(
        q(
            &mut ma,
            &["FAILOVER", "TO", "127.0.0.1", &bport, "TIMEOUT", "500"]
        ),
        redis::Value::Okay
    );
    assert_eq!(failover_state(&mut ma), "waiting-for-sync");
    assert!(
        err(&mut ma, &["FAILOVER"]).contains("FAILOVER already in progress."),
        "a second failover"
    );
    let mut w = a.raw();
    w.send(&resp(&[b"SET", b"x", b"1"]));
    assert!(w.nothing_within(100), "a write ran during the failover");
    wait_for("the failover to time out", || {
        failover_state(&mut ma) == "no-failover"
    });
    assert_eq!(w.read_line(), "+OK\r\n");
    assert_eq!(role(&mut ma), "master");
    signal(b.pid(), "-CONT");
    wait_acked(&mut ma, 1);
    let mut mb = b.client();
    assert_eq!(role(&mut mb), "slave");
    assert_eq!(digest(&mut ma), digest(&mut mb));
}

#[test]
fn abort_rolls_back_and_client_unpause_does_not_end_the_pause() {
    let (a, b, mut ma) = pair();
    signal(b.pid(), "-STOP");
    q(&mut ma, &["SET", "case", "2"]);
    let bport = b.port.to_string();
    q(
        &mut ma,
        &["FAILOVER", "TO", "127.0.0.1", &bport, "TIMEOUT", "60000"],
    );
    assert_eq!(failover_state(&mut ma), "waiting-for-sync");
    assert_eq!(
        q(&mut ma, &["GET", "case"]),
        redis::Value::BulkString(b"2".to_vec())
    );
    let mut w = a.raw();
    w.send(&resp(&[b"INCR", b"n"]));
    q(&mut ma, &["CLIENT", "UNPAUSE"]);
    assert!(w.nothing_within(200), "CLIENT UNPAUSE released a write");
    assert_eq!(q(&mut ma, &["FAILOVER", "ABORT"]), redis::Value::Okay);
    assert_eq!(failover_state(&mut ma), "no-failover");
    assert_eq!(w.read_line(), ":1\r\n");
    signal(b.pid(), "-CONT");
    assert_eq!(role(&mut ma), "master");
    wait_acked(&mut ma, 1);
    let mut mb = b.client();
    assert_eq!(digest(&mut ma), digest(&mut mb));
}

#[test]
fn a_refused_psync_rolls_back() {
    let (_a, b, mut ma) = pair();
    let mut mb = b.client();
    q(&mut mb, &["ACL", "SETUSER", "default", "-psync"]);
    q(
        &mut ma,
        &["FAILOVER", "TO", "127.0.0.1", &b.port.to_string()],
    );
    wait_failover_end(&mut ma);
    assert_eq!(role(&mut ma), "master");
    assert_eq!(role(&mut mb), "slave");
    q(&mut mb, &["ACL", "SETUSER", "default", "+psync"]);
    q(&mut ma, &["SET", "after", "1"]);
    wait_for("the replica back", || {
        q(&mut mb, &["EXISTS", "after"]) == redis::Value::Int(1)
    });
}

#[test]
fn force_fails_over_at_the_timeout() {
    let (_a, b, mut ma) = pair();
    signal(b.pid(), "-STOP");
    // Never acknowledged: it waits in b's link when the hand-over starts.
    q(&mut ma, &["SET", "case", "2"]);
    let bport = b.port.to_string();
    q(
        &mut ma,
        &[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            &bport,
            "TIMEOUT",
            "100",
            "FORCE",
        ],
    );
    wait_for("the forced hand-over", || {
        failover_state(&mut ma) == "failover-in-progress"
    });
    assert_eq!(role(&mut ma), "slave");
    signal(b.pid(), "-CONT");
    wait_failover_end(&mut ma);
    let mut mb = b.client();
    assert_eq!(role(&mut mb), "master");
    assert_eq!(role(&mut ma), "slave");
    // b applied the write before taking over, so the old master continued.
    assert_eq!(info_field(&mut mb, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut mb, "stats", "sync_full"), "0");
    assert_eq!(
        q(&mut mb, &["GET", "case"]),
        redis::Value::BulkString(b"2".to_vec())
    );
}

/// Redis 7.0.15 and ferrokv hand the role over to each other: a redis-server
/// master fails over to a ferrokv replica (which first synced through
/// Redis's diskless delay, its keep-alive empty lines before the PSYNC
/// reply), then ferrokv fails back over to the redis-server.
#[test]
fn failover_between_redis_and_ferrokv() {
    let Some(reference) = common::reference() else {
        eprintln!("redis-server not installed: skipped");
        return;
    };
    let mut rm = redis::Client::open(format!("redis://127.0.0.1:{}/", reference.port))
        .unwrap()
        .get_connection()
        .unwrap();
    q(&mut rm, &["CONFIG", "SET", "repl-diskless-sync", "yes"]);
    q(&mut rm, &["CONFIG", "SET", "repl-diskless-sync-delay", "2"]);
    q(&mut rm, &["SET", "a", "1"]);
    let f = start();
    let mut fc = f.client();
    follow(&mut fc, reference.port);
    q(&mut rm, &["SET", "b", "2"]);
    wait_acked(&mut rm, 1);
    assert_eq!(q(&mut rm, &["FAILOVER"]), redis::Value::Okay);
    wait_for("redis to hand over", || {
        failover_state(&mut rm) == "no-failover" && role(&mut fc) == "master"
    });
    assert_eq!(role(&mut rm), "slave");
    q(&mut fc, &["SET", "c", "3"]);
    wait_acked(&mut fc, 1);
    assert_eq!(digest(&mut fc), digest(&mut rm));
    assert_eq!(info_field(&mut fc, "stats", "sync_partial_ok"), "1");

    let rport = reference.port.to_string();
    assert_eq!(
        q(&mut fc, &["FAILOVER", "TO", "127.0.0.1", &rport]),
        redis::Value::Okay
    );
    wait_for("ferrokv to hand back", || {
        failover_state(&mut fc) == "no-failover" && role(&mut rm) == "master"
    });
    assert_eq!(role(&mut fc), "slave");
    q(&mut rm, &["SET", "d", "4"]);
    wait_acked(&mut rm, 1);
    assert_eq!(digest(&mut fc), digest(&mut rm));
}
