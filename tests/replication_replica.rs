//! The replica side: REPLICAOF host port makes ferrokv follow a master
//! (ferrokv or redis-server), load its payload, apply its stream, answer
//! GETACK and refuse writes from its own clients; WAIT on the master counts
//! the replicas' acknowledgements.

mod common;

use std::time::{Duration, Instant};

use common::{digest, follow, info_field, q, wait_applied, wait_for};

/// Writes of several kinds, in two databases, a transaction and a script.
fn write_mix(m: &mut redis::Connection) {
    q(m, &["SET", "s", "1"]);
    q(m, &["INCR", "s"]);
    q(m, &["RPUSH", "l", "a", "b", "c"]);
    q(m, &["HSET", "h", "f", "v", "g", "w"]);
    q(m, &["ZADD", "z", "1", "a", "2", "b"]);
    q(m, &["SET", "ttl", "v", "EX", "1000"]);
    q(m, &["XADD", "st", "1-1", "a", "b"]);
    q(
        m,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'x') return redis.call('incr', 'cnt')",
            "1",
            "fromscript",
        ],
    );
    let _: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg("tx")
        .arg("1")
        .cmd("SADD")
        .arg("set")
        .arg("m")
        .query(m)
        .unwrap();
    q(m, &["SELECT", "5"]);
    q(m, &["SET", "in5", "v"]);
    q(m, &["SELECT", "0"]);
}

#[test]
fn ferrokv_replica_of_ferrokv_master() {
    let master = common::Server::start_with(&["--enable-debug-command", "local"]);
    let replica = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut m = master.client();
    let mut r = replica.client();
    q(&mut r, &["SET", "stale", "gone after the sync"]);
    q(&mut m, &["SET", "before", "1"]);
    q(&mut m, &["DEBUG", "POPULATE", "300"]);
    follow(&mut r, master.port);
    assert_eq!(info_field(&mut r, "replication", "role"), "slave");
    assert_eq!(
        info_field(&mut r, "replication", "master_port"),
        master.port.to_string()
    );
    // Replaced, not merged.
    assert_eq!(q(&mut r, &["EXISTS", "stale"]), redis::Value::Int(0));
    write_mix(&mut m);
    // WAIT: the replica acknowledges what was written so far.
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut m).unwrap();
    assert_eq!(n, 1);
    assert_eq!(digest(&mut m), digest(&mut r));
    let mut r5 = replica.client();
    q(&mut r5, &["SELECT", "5"]);
    assert_eq!(
        q(&mut r5, &["GET", "in5"]),
        redis::Value::BulkString(b"v".to_vec())
    );
    // Offsets agree once the replica acknowledged everything.
    wait_applied(&mut m, &mut r);
    let off = info_field(&mut m, "replication", "master_repl_offset");
    assert_ne!(off, "0");
    wait_for("the master to see the acknowledged offset", || {
        info_field(&mut m, "replication", "slave0")
            .contains(&format!(",state=online,offset={off},"))
    });
    // Read-only for its own clients.
    let mut raw = replica.raw();
    raw.send(b"SET x 1\r\n");
    let want = b"-READONLY You can't write against a read only replica.\r\n";
    assert_eq!(raw.read_n(want.len()), want);
    // ROLE's replica form.
    let role: redis::Value = redis::cmd("ROLE").query(&mut r).unwrap();
    let redis::Value::Array(items) = role else {
        panic!("{role:?}")
    };
    assert_eq!(items[0], redis::Value::BulkString(b"slave".to_vec()));
    assert_eq!(items[2], redis::Value::Int(i64::from(master.port)));
    assert_eq!(items[3], redis::Value::BulkString(b"connected".to_vec()));
    // A master again, with the data.
    assert_eq!(q(&mut r, &["REPLICAOF", "NO", "ONE"]), redis::Value::Okay);
    assert_eq!(info_field(&mut r, "replication", "role"), "master");
    q(&mut r, &["SET", "x", "1"]);
    assert_eq!(
        q(&mut r, &["GET", "before"]),
        redis::Value::BulkString(b"1".to_vec())
    );
    // The master's write no longer arrives.
    q(&mut m, &["SET", "after", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(q(&mut r, &["EXISTS", "after"]), redis::Value::Int(0));
}

#[test]
fn replica_reconnects_after_the_link_drops() {
    let master = common::Server::start();
    let replica = common::Server::start();
    let mut m = master.client();
    let mut r = replica.client();
    follow(&mut r, master.port);
    q(&mut m, &["SET", "a", "1"]);
    // Same master again: nothing to do.
    let again: String = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port)
        .query(&mut r)
        .unwrap();
    assert_eq!(again, "OK Already connected to specified master");
    q(&mut m, &["CLIENT", "KILL", "TYPE", "replica"]);
    q(&mut m, &["SET", "b", "2"]);
    wait_for("the replica to resync", || {
        info_field(&mut r, "replication", "master_link_status") == "up"
            && q(&mut r, &["GET", "b"]) == redis::Value::BulkString(b"2".to_vec())
    });
}

#[test]
fn ferrokv_replica_of_redis_master() {
    let Some(reference) = common::reference() else {
        eprintln!("redis-server not installed: skipped");
        return;
    };
    let mut m = redis::Client::open(format!("redis://127.0.0.1:{}/", reference.port))
        .unwrap()
        .get_connection()
        .unwrap();
    // Diskless: the payload comes as `$EOF:<mark>`.
    q(&mut m, &["CONFIG", "SET", "repl-diskless-sync", "yes"]);
    q(&mut m, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    q(&mut m, &["DEBUG", "POPULATE", "500"]);
    q(&mut m, &["HSET", "big", "f", &"x".repeat(200)]);
    let replica = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut r = replica.client();
    follow(&mut r, reference.port);
    write_mix(&mut m);
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut m).unwrap();
    assert_eq!(n, 1);
    assert_eq!(digest(&mut m), digest(&mut r));
    // Redis's byte count of its stream and ours agree.
    wait_for("the offsets to agree", || {
        info_field(&mut m, "replication", "master_repl_offset")
            == info_field(&mut r, "replication", "slave_repl_offset")
    });
    assert_eq!(
        info_field(&mut m, "replication", "master_replid"),
        info_field(&mut r, "replication", "master_replid")
    );
}

#[test]
fn redis_replica_of_ferrokv_master() {
    let Some(reference) = common::reference() else {
        eprintln!("redis-server not installed: skipped");
        return;
    };
    let master = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut m = master.client();
    q(&mut m, &["DEBUG", "POPULATE", "200"]);
    let mut r = redis::Client::open(format!("redis://127.0.0.1:{}/", reference.port))
        .unwrap()
        .get_connection()
        .unwrap();
    follow(&mut r, master.port);
    write_mix(&mut m);
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut m).unwrap();
    assert_eq!(n, 1);
    assert_eq!(digest(&mut m), digest(&mut r));
    wait_applied(&mut m, &mut r);
}

#[test]
fn wait_counts_acknowledgements() {
    let master = common::Server::start();
    let mut m = master.client();
    // No replica: nothing acknowledges; a zero count is met at once.
    assert_eq!(q(&mut m, &["WAIT", "0", "0"]), redis::Value::Int(0));
    let started = Instant::now();
    assert_eq!(q(&mut m, &["WAIT", "1", "200"]), redis::Value::Int(0));
    assert!(started.elapsed() >= Duration::from_millis(190));
    let replica = common::Server::start();
    let mut r = replica.client();
    follow(&mut r, master.port);
    q(&mut m, &["SET", "k", "v"]);
    assert_eq!(q(&mut m, &["WAIT", "1", "0"]), redis::Value::Int(1));
    // More than there are: the count at the timeout.
    assert_eq!(q(&mut m, &["WAIT", "2", "300"]), redis::Value::Int(1));
    // A replica refuses WAIT.
    let e = redis::cmd("WAIT").arg(1).arg(0).query::<i64>(&mut r);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("WAIT cannot be used with replica instances"),
    );
}

/// PSYNC with this master's id and an offset its backlog holds continues
/// the stream from there (`+CONTINUE <id>`, then the bytes from that
/// offset); an unknown id gets a full synchronization.
#[test]
fn psync_continues_from_the_backlog() {
    let master = common::Server::start();
    let replica = common::Server::start();
    let mut m = master.client();
    let mut r = replica.client();
    follow(&mut r, master.port);
    q(&mut m, &["SET", "k", "v"]);
    let id = info_field(&mut m, "replication", "master_replid");
    let off: i64 = info_field(&mut m, "replication", "master_repl_offset")
        .parse()
        .unwrap();
    assert_eq!(
        info_field(&mut m, "replication", "repl_backlog_active"),
        "1"
    );
    // The last command, `*3 $3 SET $1 k $1 v`, is 27 bytes.
    let mut raw = master.raw();
    raw.send(format!("PSYNC {id} {}\r\n", off - 26).as_bytes());
    let want = format!("+CONTINUE {id}\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(String::from_utf8(raw.read_n(want.len())).unwrap(), want);
    let mut raw = master.raw();
    raw.send(format!("PSYNC {} 1\r\n", "0".repeat(40)).as_bytes());
    let head = String::from_utf8(raw.read_n(12)).unwrap();
    assert_eq!(head, "+FULLRESYNC ");
}

/// A replica of a replica gets the master's stream as it came (same
/// offsets); promoting the middle one keeps the chain going.
#[test]
fn chained_replicas_and_promotion() {
    let master = common::Server::start_with(&["--enable-debug-command", "local"]);
    let r1 = common::Server::start_with(&["--enable-debug-command", "local"]);
    let r2 = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut m = master.client();
    let mut c1 = r1.client();
    let mut c2 = r2.client();
    q(&mut m, &["SELECT", "3"]);
    q(&mut m, &["SET", "in3", "1"]);
    follow(&mut c1, master.port);
    follow(&mut c2, r1.port);
    // The stream is in database 3 with no SELECT to come.
    q(&mut m, &["SET", "in3", "2"]);
    write_mix(&mut m);
    wait_for("the chain to agree", || {
        let off = info_field(&mut m, "replication", "master_repl_offset");
        info_field(&mut c1, "replication", "master_repl_offset") == off
            && info_field(&mut c2, "replication", "master_repl_offset") == off
    });
    assert_eq!(digest(&mut m), digest(&mut c2));
    assert_eq!(q(&mut c1, &["REPLICAOF", "NO", "ONE"]), redis::Value::Okay);
    q(&mut c1, &["SET", "promoted", "1"]);
    wait_for("the new master's write", || {
        q(&mut c2, &["GET", "promoted"]) == redis::Value::BulkString(b"1".to_vec())
    });
    assert_eq!(digest(&mut c1), digest(&mut c2));
}

/// A failover: the replica is promoted and the old master follows it,
/// continuing from where it was (its own offset, in its stream's
/// database) without a full synchronization that would lose nothing here
/// but must not corrupt anything either.
#[test]
fn roles_swap_and_the_old_master_continues() {
    let a = common::Server::start_with(&["--enable-debug-command", "local"]);
    let b = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut ca = a.client();
    let mut cb = b.client();
    follow(&mut ca, b.port);
    q(&mut cb, &["SELECT", "9"]);
    q(&mut cb, &["RPUSH", "l", "a", "b"]);
    q(&mut cb, &["SET", "y", "2"]);
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut cb).unwrap();
    assert_eq!(n, 1);
    assert_eq!(q(&mut ca, &["REPLICAOF", "NO", "ONE"]), redis::Value::Okay);
    follow(&mut cb, a.port);
    q(&mut ca, &["SELECT", "9"]);
    q(&mut ca, &["RPUSH", "foo", "a", "b", "c"]);
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut ca).unwrap();
    assert_eq!(n, 1);
    assert_eq!(digest(&mut ca), digest(&mut cb));
    assert_eq!(
        info_field(&mut ca, "replication", "master_repl_offset"),
        info_field(&mut cb, "replication", "master_repl_offset")
    );
}

/// Writes flowing while a replica synchronizes: the stream after the
/// payload waits for the replica's first ACK (a `$EOF` payload ends with
/// its mark, nothing may follow it unread), and the replica comes up with
/// the master's data; reconnecting continues from the backlog
/// (`sync_partial_ok`).
#[test]
fn sync_under_writes_and_partial_resync_counts() {
    let master = common::Server::start_with(&["--enable-debug-command", "local"]);
    let replica = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut m = master.client();
    let mut r = replica.client();
    q(&mut m, &["DEBUG", "POPULATE", "20000"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = master.client();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: i64 = redis::cmd("INCR").arg("ctr").query(&mut w).unwrap();
                n += 1;
            }
            n
        })
    };
    follow(&mut r, master.port);
    q(&mut r, &["CLIENT", "KILL", "TYPE", "master"]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    let n: i64 = redis::cmd("WAIT").arg(1).arg(10000).query(&mut m).unwrap();
    assert_eq!(n, 1);
    assert_eq!(digest(&mut m), digest(&mut r));
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut m).unwrap();
    assert!(stats.contains("\r\nsync_full:1\r\n"), "{stats}");
    assert!(stats.contains("\r\nsync_partial_ok:1\r\n"), "{stats}");
}

/// On a replica a script or function is judged by the flags it declares:
/// one that may write is refused by a read-only replica, one without
/// `allow-stale` by a stale one; an `allow-stale` script's calls of
/// commands a stale replica does not run fail inside it.
#[test]
fn scripts_on_a_replica_follow_their_declared_flags() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let lib = "#!lua name=lib
redis.register_function{function_name='rw', callback=function() return redis.call('set','k','v') end}
redis.register_function{function_name='ro', callback=function() return 'hi' end, flags={'no-writes'}}
redis.register_function{function_name='stale', callback=function() return 'hi' end, flags={'no-writes','allow-stale'}}
redis.register_function{function_name='get', callback=function() return redis.call('get','k') end, flags={'no-writes','allow-stale'}}";
    q(&mut c, &["FUNCTION", "LOAD", lib]);
    q(&mut c, &["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    // A master that is not there: the replica stays stale.
    q(&mut c, &["REPLICAOF", "127.0.0.1", "1"]);
    let err = |c: &mut redis::Connection, args: &[&str]| -> String {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        match cmd.query::<redis::Value>(c) {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")),
        }
    };
    assert!(err(&mut c, &["FCALL", "rw", "0"]).starts_with("READONLY "));
    assert!(err(&mut c, &["FCALL", "ro", "0"]).starts_with("MASTERDOWN "));
    assert!(
        err(&mut c, &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]).starts_with("MASTERDOWN ")
    );
    assert_eq!(
        err(&mut c, &["FCALL", "stale", "0"]),
        "ok bulk-string('\"hi\"')"
    );
    let e = err(&mut c, &["FCALL", "get", "0"]);
    assert!(
        e.contains("Can not execute the command on a stale replica"),
        "{e}"
    );
    q(&mut c, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(
        err(&mut c, &["FCALL", "ro", "0"]),
        "ok bulk-string('\"hi\"')"
    );
}
