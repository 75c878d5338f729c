//! SHUTDOWN and SIGTERM on a master whose replica lags: writes pause and
//! the master waits (up to `shutdown-timeout`) for the replica to
//! acknowledge the whole stream, as Redis 7.0 does; SHUTDOWN ABORT cancels
//! the wait, NOW skips it, and a failing final step answers every waiting
//! SHUTDOWN an error while the server keeps running.

mod common;

use std::time::{Duration, Instant};

use common::{
    Server, TempDir, follow, info_opt, q, resp, signal, wait_acked, wait_for, wait_within,
};

/// A replica stopped (SIGSTOP) after acknowledging the master's stream:
/// a write made next leaves it lagging.
struct Pair {
    master: Server,
    replica: Server,
    stopped: bool,
}

impl Pair {
    fn new(master_args: &[&str]) -> Pair {
        let master = Server::start_with(master_args);
        let replica = Server::start_with(&["--save", ""]);
        follow(&mut replica.client(), master.port);
        // Written once the replica is attached, so the stream counts it.
        let mut m = master.client();
        q(&mut m, &["SET", "k", "1"]);
        wait_acked(&mut m, 1);
        signal(replica.pid(), "-STOP");
        Pair {
            master,
            replica,
            stopped: true,
        }
    }

    fn resume(&mut self) {
        if self.stopped {
            signal(self.replica.pid(), "-CONT");
            self.stopped = false;
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.resume();
    }
}

/// Waits for the process to end; `secs` is a bound the test checks.
fn wait_exit(srv: &mut Server, secs: u64) {
    wait_within("the master to exit", Duration::from_secs(secs), || {
        !srv.alive()
    });
}

#[test]
fn shutdown_waits_for_a_lagging_replica_and_abort_cancels() {
    let mut pair = Pair::new(&["--save", "", "--shutdown-timeout", "60"]);
    let mut m = pair.master.client();
    q(&mut m, &["INCR", "k"]);
    let mut sd = pair.master.raw();
    sd.send(&resp(&[b"SHUTDOWN"]));
    let mut sd2 = pair.master.raw();
    sd2.send(&resp(&[b"SHUTDOWN"]));
    wait_for("two blocked SHUTDOWNs", || {
        info_opt(&mut m, "clients", "blocked_clients").as_deref() == Some("2")
    });
    let left: i64 = info_opt(&mut m, "server", "shutdown_in_milliseconds")
        .expect("shutdown_in_milliseconds while waiting")
        .parse()
        .unwrap();
    assert!(left > 0 && left <= 60_000, "{left}");
    // Replicas are not clients in INFO's count (the set-up's own
    // connection may still be closing).
    wait_for("three clients", || {
        info_opt(&mut m, "clients", "connected_clients").as_deref() == Some("3")
    });
    // Writes wait; reads go on.
    let mut w = pair.master.raw();
    w.send(&resp(&[b"SET", b"x", b"1"]));
    assert!(w.nothing_within(300), "a write ran during the wait");
    assert_eq!(
        q(&mut m, &["GET", "k"]),
        redis::Value::BulkString(b"2".to_vec())
    );
    // CLIENT UNPAUSE does not end the shutdown's pause.
    q(&mut m, &["CLIENT", "UNPAUSE"]);
    assert!(w.nothing_within(200), "CLIENT UNPAUSE released a write");

    assert_eq!(q(&mut m, &["SHUTDOWN", "ABORT"]), redis::Value::Okay);
    for c in [&mut sd, &mut sd2] {
        assert_eq!(
            c.read_line(),
            "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
        );
    }
    assert_eq!(w.read_line(), "+OK\r\n");
    assert_eq!(info_opt(&mut m, "server", "shutdown_in_milliseconds"), None);
    let err = redis::cmd("SHUTDOWN")
        .arg("ABORT")
        .query::<()>(&mut m)
        .unwrap_err();
    assert!(err.to_string().contains("No shutdown in progress"), "{err}");
    pair.resume();
    assert!(pair.master.alive());
}

#[test]
fn shutdown_exits_once_the_replica_caught_up() {
    let mut pair = Pair::new(&["--save", "", "--shutdown-timeout", "60"]);
    let mut m = pair.master.client();
    q(&mut m, &["INCR", "k"]);
    let mut sd = pair.master.raw();
    sd.send(&resp(&[b"SHUTDOWN"]));
    wait_for("the shutdown waiting", || {
        info_opt(&mut m, "server", "shutdown_in_milliseconds").is_some()
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(pair.master.alive(), "exited before the replica caught up");
    pair.resume();
    wait_exit(&mut pair.master, 20);
    let mut r = pair.replica.client();
    assert_eq!(
        q(&mut r, &["GET", "k"]),
        redis::Value::BulkString(b"2".to_vec())
    );
}

#[test]
fn sigterm_waits_too_and_gives_up_at_the_timeout() {
    let dir = TempDir::new("shutdown-timeout");
    let log = dir.path().join("master.log");
    let log_arg = log.display().to_string();
    let mut pair = Pair::new(&[
        "--save",
        "",
        "--shutdown-timeout",
        "1",
        "--logfile",
        &log_arg,
    ]);
    let mut m = pair.master.client();
    q(&mut m, &["INCR", "k"]);
    let started = Instant::now();
    signal(pair.master.pid(), "-TERM");
    wait_for("the shutdown waiting", || {
        info_opt(&mut m, "server", "shutdown_in_milliseconds").is_some()
    });
    wait_exit(&mut pair.master, 20);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("Waiting for replicas before shutting down."),
        "{text}"
    );
    assert!(text.contains("Lagging replica"), "{text}");
    assert!(
        text.contains("0 of 1 replicas are in sync when shutting down."),
        "{text}"
    );
}

#[test]
fn shutdown_now_does_not_wait() {
    let mut pair = Pair::new(&["--save", "", "--shutdown-timeout", "60"]);
    let mut m = pair.master.client();
    q(&mut m, &["INCR", "k"]);
    let mut sd = pair.master.raw();
    sd.send(&resp(&[b"SHUTDOWN", b"NOW"]));
    wait_exit(&mut pair.master, 10);
}

#[test]
fn a_failing_final_step_answers_every_waiting_shutdown() {
    let dir = TempDir::new("shutdown-fails");
    let mut pair = Pair::new(&["--save", "", "--dir", &dir.path().display().to_string()]);
    let mut m = pair.master.client();
    q(&mut m, &["INCR", "k"]);
    let mut sd = pair.master.raw();
    sd.send(&resp(&[b"SHUTDOWN"]));
    let mut sd2 = pair.master.raw();
    sd2.send(&resp(&[b"SHUTDOWN", b"NOSAVE"]));
    wait_for("two blocked SHUTDOWNs", || {
        info_opt(&mut m, "clients", "blocked_clients").as_deref() == Some("2")
    });
    // The AOF being written for the first time (slowly) forbids the exit.
    q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "30000000"]);
    q(&mut m, &["CONFIG", "SET", "appendonly", "yes"]);
    pair.resume();
    for c in [&mut sd, &mut sd2] {
        assert_eq!(
            c.read_line(),
            "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
        );
    }
    assert!(pair.master.alive());
    // Writes go on.
    assert_eq!(q(&mut m, &["SET", "after", "1"]), redis::Value::Okay);
    // FORCE exits anyway.
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .arg("FORCE")
        .query::<()>(&mut m);
    wait_exit(&mut pair.master, 20);
}
