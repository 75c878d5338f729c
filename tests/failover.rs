//! FAILOVER: a master hands its role to a replica once the replica has
//! the whole stream (writes paused meanwhile), becoming its replica; the
//! target turns master on `PSYNC <replid> <offset> FAILOVER` and
//! continues the old master from its backlog. A timeout, an abort or a
//! refused PSYNC rolls back. Error strings as Redis 7.0.15's.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Raw, Server, resp};

fn q(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

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

fn info_field(c: &mut redis::Connection, name: &str) -> String {
    let info: String = redis::cmd("INFO").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn signal(pid: u32, sig: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill")
            .success()
    );
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

fn digest(c: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
}

/// Waits until every replica of `m` acknowledged its whole stream.
fn wait_in_sync(m: &mut redis::Connection, replicas: usize) {
    wait_for("the replicas in sync", 30, || {
        let off = info_field(m, "master_repl_offset");
        (0..replicas)
            .all(|i| info_field(m, &format!("slave{i}")).contains(&format!("offset={off},")))
    });
}

fn follow(replica: &Server, master: &Server) {
    let mut r = replica.client();
    q(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    );
    wait_for("the link up", 30, || {
        info_field(&mut r, "master_link_status") == "up"
    });
}

fn nothing_within(raw: &mut Raw, ms: u64) -> bool {
    raw.0
        .set_read_timeout(Some(Duration::from_millis(ms)))
        .unwrap();
    let mut b = [0u8; 1];
    let r = raw.0.read(&mut b);
    raw.0
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    matches!(r, Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

fn read_line(raw: &mut Raw) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match raw.0.read(&mut b) {
            Ok(1) => line.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&line).into_owned()
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
    follow(&replica, &master);
    let mut r = replica.client();
    assert!(
        err(&mut r, &["FAILOVER", "TO", "127.0.0.1", &port])
            .contains("FAILOVER is not valid when server is a replica.")
    );
    wait_for("the replica attached", 10, || {
        info_field(&mut m, "connected_slaves") == "1"
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
    assert_eq!(info_field(&mut m, "master_failover_state"), "no-failover");
    // PSYNC FAILOVER must name the replica's own history.
    let mut raw = replica.raw();
    raw.send(&resp(&[b"PSYNC", &[b'a'; 40], b"1", b"FAILOVER"]));
    assert_eq!(
        read_line(&mut raw),
        "-ERR PSYNC FAILOVER replid must match my replid.\r\n"
    );
    assert_eq!(role(&mut r), "slave");
}

#[test]
fn failover_to_a_replica_swaps_the_roles() {
    let a = start();
    let b = start();
    let c = start();
    follow(&b, &a);
    follow(&c, &a);
    let mut ma = a.client();
    for i in 0..100 {
        q(&mut ma, &["SET", &format!("k{i}"), &i.to_string()]);
    }
    q(&mut ma, &["SELECT", "3"]);
    q(&mut ma, &["RPUSH", "list", "x", "y"]);
    q(&mut ma, &["SELECT", "0"]);
    let mut mb = b.client();
    let before: i64 = info_field(&mut mb, "sync_partial_ok").parse().unwrap();
    assert_eq!(
        q(
            &mut ma,
            &["FAILOVER", "TO", "127.0.0.1", &b.port.to_string()]
        ),
        redis::Value::Okay
    );
    wait_for("the failover to end", 20, || {
        info_field(&mut ma, "master_failover_state") == "no-failover"
    });
    assert_eq!(role(&mut ma), "slave");
    assert_eq!(role(&mut mb), "master");
    assert_eq!(info_field(&mut ma, "master_port"), b.port.to_string());
    wait_for("the old master's link up", 20, || {
        info_field(&mut ma, "master_link_status") == "up"
    });
    // The target continued the old master from its backlog.
    let after: i64 = info_field(&mut mb, "sync_partial_ok").parse().unwrap();
    assert_eq!(after - before, 1);
    assert_eq!(info_field(&mut mb, "sync_full"), "0");
    // Writes now go to the new master and reach the old one.
    let e = err(&mut ma, &["SET", "x", "1"]);
    assert!(e.contains("read only replica"), "{e}");
    q(&mut mb, &["SET", "new", "v"]);
    wait_for("the write replicated", 20, || {
        q(&mut ma, &["EXISTS", "new"]) == redis::Value::Int(1)
    });
    // The other replica follows the old master, chained; then the new one.
    let mut mc = c.client();
    follow(&c, &b);
    wait_in_sync(&mut mb, 2);
    assert_eq!(digest(&mut ma), digest(&mut mb));
    assert_eq!(digest(&mut mb), digest(&mut mc));
}

#[test]
fn failover_to_any_replica_picks_the_one_in_sync() {
    let a = start();
    let b = start();
    follow(&b, &a);
    let mut ma = a.client();
    q(&mut ma, &["SET", "k", "v"]);
    wait_in_sync(&mut ma, 1);
    assert_eq!(q(&mut ma, &["FAILOVER"]), redis::Value::Okay);
    wait_for("the failover to end", 20, || {
        info_field(&mut ma, "master_failover_state") == "no-failover"
    });
    let mut mb = b.client();
    assert_eq!(role(&mut mb), "master");
    assert_eq!(role(&mut ma), "slave");
}

#[test]
fn a_timeout_rolls_back_and_writes_resume() {
    let a = start();
    let b = start();
    follow(&b, &a);
    let mut ma = a.client();
    wait_in_sync(&mut ma, 1);
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
    assert_eq!(
        info_field(&mut ma, "master_failover_state"),
        "waiting-for-sync"
    );
    assert!(
        err(&mut ma, &["FAILOVER"]).contains("FAILOVER already in progress."),
        "a second failover"
    );
    let mut w = a.raw();
    w.send(&resp(&[b"SET", b"x", b"1"]));
    assert!(
        nothing_within(&mut w, 100),
        "a write ran during the failover"
    );
    wait_for("the failover to time out", 20, || {
        info_field(&mut ma, "master_failover_state") == "no-failover"
    });
    assert_eq!(read_line(&mut w), "+OK\r\n");
    assert_eq!(role(&mut ma), "master");
    signal(b.pid(), "-CONT");
    wait_in_sync(&mut ma, 1);
    let mut mb = b.client();
    assert_eq!(role(&mut mb), "slave");
    assert_eq!(digest(&mut ma), digest(&mut mb));
}

#[test]
fn abort_rolls_back_and_client_unpause_does_not_end_the_pause() {
    let a = start();
    let b = start();
    follow(&b, &a);
    let mut ma = a.client();
    wait_in_sync(&mut ma, 1);
    signal(b.pid(), "-STOP");
    q(&mut ma, &["SET", "case", "2"]);
    let bport = b.port.to_string();
    q(
        &mut ma,
        &["FAILOVER", "TO", "127.0.0.1", &bport, "TIMEOUT", "60000"],
    );
    assert_eq!(
        info_field(&mut ma, "master_failover_state"),
        "waiting-for-sync"
    );
    assert_eq!(
        q(&mut ma, &["GET", "case"]),
        redis::Value::BulkString(b"2".to_vec())
    );
    let mut w = a.raw();
    w.send(&resp(&[b"INCR", b"n"]));
    q(&mut ma, &["CLIENT", "UNPAUSE"]);
    assert!(
        nothing_within(&mut w, 200),
        "CLIENT UNPAUSE released a write"
    );
    assert_eq!(q(&mut ma, &["FAILOVER", "ABORT"]), redis::Value::Okay);
    assert_eq!(info_field(&mut ma, "master_failover_state"), "no-failover");
    assert_eq!(read_line(&mut w), ":1\r\n");
    signal(b.pid(), "-CONT");
    assert_eq!(role(&mut ma), "master");
    wait_in_sync(&mut ma, 1);
    let mut mb = b.client();
    assert_eq!(digest(&mut ma), digest(&mut mb));
}

#[test]
fn a_refused_psync_rolls_back() {
    let a = start();
    let b = start();
    follow(&b, &a);
    let mut ma = a.client();
    let mut mb = b.client();
    wait_in_sync(&mut ma, 1);
    q(&mut mb, &["ACL", "SETUSER", "default", "-psync"]);
    q(
        &mut ma,
        &["FAILOVER", "TO", "127.0.0.1", &b.port.to_string()],
    );
    wait_for("the failover to end", 20, || {
        info_field(&mut ma, "master_failover_state") == "no-failover"
    });
    assert_eq!(role(&mut ma), "master");
    assert_eq!(role(&mut mb), "slave");
    q(&mut mb, &["ACL", "SETUSER", "default", "+psync"]);
    q(&mut ma, &["SET", "after", "1"]);
    wait_for("the replica back", 20, || {
        q(&mut mb, &["EXISTS", "after"]) == redis::Value::Int(1)
    });
}

#[test]
fn force_fails_over_at_the_timeout() {
    let a = start();
    let b = start();
    follow(&b, &a);
    let mut ma = a.client();
    wait_in_sync(&mut ma, 1);
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
    wait_for("the forced hand-over", 20, || {
        info_field(&mut ma, "master_failover_state") == "failover-in-progress"
    });
    assert_eq!(role(&mut ma), "slave");
    signal(b.pid(), "-CONT");
    wait_for("the failover to end", 20, || {
        info_field(&mut ma, "master_failover_state") == "no-failover"
    });
    let mut mb = b.client();
    assert_eq!(role(&mut mb), "master");
    assert_eq!(role(&mut ma), "slave");
    // b applied the write before taking over, so the old master continued.
    assert_eq!(info_field(&mut mb, "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut mb, "sync_full"), "0");
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
    q(
        &mut fc,
        &["REPLICAOF", "127.0.0.1", &reference.port.to_string()],
    );
    wait_for("the link up", 30, || {
        info_field(&mut fc, "master_link_status") == "up"
    });
    q(&mut rm, &["SET", "b", "2"]);
    wait_in_sync(&mut rm, 1);
    assert_eq!(q(&mut rm, &["FAILOVER"]), redis::Value::Okay);
    wait_for("redis to hand over", 20, || {
        info_field(&mut rm, "master_failover_state") == "no-failover" && role(&mut fc) == "master"
    });
    assert_eq!(role(&mut rm), "slave");
    q(&mut fc, &["SET", "c", "3"]);
    wait_in_sync(&mut fc, 1);
    assert_eq!(digest(&mut fc), digest(&mut rm));
    assert_eq!(info_field(&mut fc, "sync_partial_ok"), "1");

    let rport = reference.port.to_string();
    assert_eq!(
        q(&mut fc, &["FAILOVER", "TO", "127.0.0.1", &rport]),
        redis::Value::Okay
    );
    wait_for("ferrokv to hand back", 20, || {
        info_field(&mut fc, "master_failover_state") == "no-failover" && role(&mut rm) == "master"
    });
    assert_eq!(role(&mut fc), "slave");
    q(&mut rm, &["SET", "d", "4"]);
    wait_in_sync(&mut rm, 1);
    assert_eq!(digest(&mut fc), digest(&mut rm));
}
