//! Transactions through real clients: queuing, EXECABORT, runtime errors
//! inside EXEC, WATCH invalidation by every kind of change, atomicity across
//! shards, blocking commands inside MULTI.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::resp;
use redis::{Commands, Value};

/// Runs `cmds` on a raw connection and returns exactly `expected.len()` bytes.
fn raw_exchange(srv: &common::Server, cmds: &[&[&[u8]]], expected: &[u8]) -> Vec<u8> {
    let mut r = srv.raw();
    let mut bytes = Vec::new();
    for c in cmds {
        bytes.extend(resp(c));
    }
    r.roundtrip(&bytes, expected.len())
}

fn check_raw(srv: &common::Server, cmds: &[&[&[u8]]], expected: &[u8]) {
    let got = raw_exchange(srv, cmds, expected);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

/// WATCH `key` on `c`, let `change` act from another connection, then
/// return what EXEC of a one-command transaction answers.
fn exec_after(srv: &common::Server, key: &str, setup: &[&[&str]], change: &[&[&str]]) -> Value {
    let mut c = srv.client();
    let mut other = srv.client();
    for cmd in setup {
        redis::cmd(cmd[0]).arg(&cmd[1..]).exec(&mut c).unwrap();
    }
    redis::cmd("WATCH").arg(key).exec(&mut c).unwrap();
    for cmd in change {
        redis::cmd(cmd[0]).arg(&cmd[1..]).exec(&mut other).unwrap();
    }
    redis::cmd("MULTI").exec(&mut c).unwrap();
    redis::cmd("SET")
        .arg("touched")
        .arg("1")
        .exec(&mut c)
        .unwrap();
    redis::cmd("EXEC").query(&mut c).unwrap()
}

#[test]
fn queued_replies_and_exec_array() {
    let srv = common::Server::start();
    check_raw(
        &srv,
        &[
            &[b"MULTI"],
            &[b"SET", b"a", b"1"],
            &[b"INCR", b"a"],
            &[b"GET", b"a"],
            &[b"EXEC"],
        ],
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n",
    );
    let mut c = srv.client();
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("x", 5)
        .incr("y", 7)
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b), (5, 7));
}

#[test]
fn errors_while_queuing_abort_exec() {
    let srv = common::Server::start();
    check_raw(
        &srv,
        &[
            &[b"MULTI"],
            &[b"SET", b"a"],
            &[b"NOSUCH"],
            &[b"SET", b"a", b"1"],
            &[b"EXEC"],
            &[b"EXISTS", b"a"],
        ],
        b"+OK\r\n-ERR wrong number of arguments for 'set' command\r\n\
          -ERR unknown command 'NOSUCH', with args beginning with: \r\n+QUEUED\r\n\
          -EXECABORT Transaction discarded because of previous errors.\r\n:0\r\n",
    );
}

#[test]
fn runtime_error_inside_exec_keeps_the_other_commands() {
    let srv = common::Server::start();
    check_raw(
        &srv,
        &[
            &[b"MULTI"],
            &[b"SET", b"s", b"text"],
            &[b"INCR", b"s"],
            &[b"SET", b"t", b"2"],
            &[b"EXEC"],
            &[b"MGET", b"s", b"t"],
        ],
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n\
          -ERR value is not an integer or out of range\r\n+OK\r\n*2\r\n$4\r\ntext\r\n$1\r\n2\r\n",
    );
}

#[test]
fn misuse_errors() {
    let srv = common::Server::start();
    check_raw(
        &srv,
        &[
            &[b"EXEC"],
            &[b"DISCARD"],
            &[b"MULTI"],
            &[b"MULTI"],
            &[b"WATCH", b"k"],
            &[b"SET", b"k", b"v"],
            &[b"DISCARD"],
            &[b"EXISTS", b"k"],
        ],
        b"-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n\
          -ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n\
          +QUEUED\r\n+OK\r\n:0\r\n",
    );
}

#[test]
fn watch_aborts_on_changes_by_anyone() {
    let srv = common::Server::start();
    let set = &[&["SET", "k", "1"][..]][..];
    let cases: Vec<(&str, Vec<&[&str]>)> = vec![
        ("write", vec![&["SET", "k", "2"]]),
        ("incr", vec![&["INCR", "k"]]),
        ("del", vec![&["DEL", "k"]]),
        ("flushall", vec![&["FLUSHALL"]]),
        ("flushdb", vec![&["FLUSHDB"]]),
        ("swapdb", vec![&["SWAPDB", "0", "1"]]),
        ("rename", vec![&["RENAME", "k", "k2"]]),
        ("expire", vec![&["EXPIRE", "k", "100"]]),
        ("move", vec![&["MOVE", "k", "1"]]),
    ];
    for (what, change) in cases {
        let got = exec_after(&srv, "k", set, &change);
        assert_eq!(got, Value::Nil, "{what} must abort the transaction");
        redis::cmd("FLUSHALL").exec(&mut srv.client()).unwrap();
    }
}

#[test]
fn watch_survives_unrelated_writes_and_reads() {
    let srv = common::Server::start();
    let set = &[&["SET", "k", "1"][..]][..];
    for change in [
        vec![&["SET", "other", "2"][..]],
        vec![&["GET", "k"][..]],
        vec![&["SELECT", "1"][..], &["SET", "k", "9"][..]],
        vec![&["DEL", "missing"][..]],
    ] {
        let got = exec_after(&srv, "k", set, &change);
        assert_eq!(got, Value::Array(vec![Value::Okay]), "{change:?}");
    }
}

#[test]
fn watch_aborts_when_the_key_expires() {
    let srv = common::Server::start();
    let mut c = srv.client();
    redis::cmd("SET")
        .arg("e")
        .arg("1")
        .arg("PX")
        .arg(50)
        .exec(&mut c)
        .unwrap();
    redis::cmd("WATCH").arg("e").exec(&mut c).unwrap();
    thread::sleep(Duration::from_millis(120));
    redis::cmd("MULTI").exec(&mut c).unwrap();
    redis::cmd("PING").exec(&mut c).unwrap();
    let got: Value = redis::cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(got, Value::Nil);
}

#[test]
fn unwatch_and_discard_forget_watches() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut other = srv.client();
    redis::cmd("WATCH").arg("k").exec(&mut c).unwrap();
    redis::cmd("UNWATCH").exec(&mut c).unwrap();
    let _: () = other.set("k", 1).unwrap();
    let got: Value = redis::pipe().atomic().get("k").query(&mut c).unwrap();
    assert_eq!(got, Value::Array(vec![Value::BulkString(b"1".to_vec())]));
}

/// Eight keys (so several shards) incremented together must always read equal.
#[test]
fn exec_is_atomic_across_shards() {
    let srv = common::Server::start();
    let keys: Vec<String> = (0..8).map(|i| format!("counter:{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let url = srv.url();
        let keys = keys.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut p = redis::pipe();
                p.atomic();
                for k in &keys {
                    p.incr(k, 1).ignore();
                }
                p.exec(&mut c).unwrap();
                n += 1;
            }
            n
        })
    };
    let mut c = srv.client();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut reads = 0;
    while Instant::now() < deadline {
        let vals: Vec<Option<i64>> = c.mget(&keys).unwrap();
        let first = vals[0].unwrap_or(0);
        assert!(
            vals.iter().all(|v| v.unwrap_or(0) == first),
            "torn read {vals:?}"
        );
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 10 && reads > 10, "writes {writes} reads {reads}");
}

#[test]
fn blocking_commands_inside_multi_do_not_block() {
    let srv = common::Server::start();
    let t = Instant::now();
    check_raw(
        &srv,
        &[
            &[b"MULTI"],
            &[b"BLPOP", b"nothing", b"0"],
            &[b"BLMOVE", b"nothing", b"d", b"LEFT", b"LEFT", b"0"],
            &[b"EXEC"],
        ],
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n*-1\r\n$-1\r\n",
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn push_inside_exec_serves_a_blocked_client() {
    let srv = common::Server::start();
    let url = srv.url();
    let waiter = thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        let got: Option<(String, String)> = w.blpop("jobs", 5.0).unwrap();
        got
    });
    let mut c = srv.client();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut c).unwrap();
        if info.contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(5));
    }
    let _: () = redis::pipe()
        .atomic()
        .rpush("jobs", "job-1")
        .ignore()
        .set("marker", 1)
        .ignore()
        .query(&mut c)
        .unwrap();
    assert_eq!(
        waiter.join().unwrap(),
        Some(("jobs".to_string(), "job-1".to_string()))
    );
}

#[test]
fn client_list_shows_the_transaction() {
    let srv = common::Server::start();
    let mut r = srv.raw();
    r.send(
        &[
            resp(&[b"MULTI"]),
            resp(&[b"PING"]),
            resp(&[b"CLIENT", b"INFO"]),
            resp(&[b"EXEC"]),
        ]
        .concat(),
    );
    let got = String::from_utf8_lossy(&r.read_n(300)).into_owned();
    assert!(got.contains(" flags=x "), "{got}");
    assert!(got.contains(" multi=2 "), "{got}");
    let mut c = srv.client();
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(info.contains(" multi=-1 "), "{info}");
}

#[test]
fn reset_and_disconnect_drop_transaction_state() {
    let srv = common::Server::start();
    check_raw(
        &srv,
        &[
            &[b"WATCH", b"k"],
            &[b"MULTI"],
            &[b"SET", b"k", b"1"],
            &[b"RESET"],
            &[b"EXEC"],
            &[b"EXISTS", b"k"],
        ],
        b"+OK\r\n+OK\r\n+QUEUED\r\n+RESET\r\n-ERR EXEC without MULTI\r\n:0\r\n",
    );
}

#[test]
fn a_script_inside_exec_runs_with_the_transaction_locks() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let ((), n): ((), i64) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("a")
        .arg(1)
        .cmd("EVAL")
        .arg("return redis.call('INCR', KEYS[1])")
        .arg(1)
        .arg("a")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
}

fn run(c: &mut redis::Connection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap()
}

/// SWAPDB bringing a stale key where a watched key was missing (or stale)
/// is no change: EXEC runs (Redis 7.0). A live watched key that expires
/// still aborts it.
#[test]
fn swapdb_with_stale_keys_does_not_break_watch() {
    let srv = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut c = srv.client();
    run(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    run(&mut c, &["SET", "x", "foo", "PX", "1"]);
    thread::sleep(Duration::from_millis(5));
    run(&mut c, &["SELECT", "1"]);
    run(&mut c, &["WATCH", "x"]);
    run(&mut c, &["SWAPDB", "0", "1"]);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["PING"]);
    assert_eq!(
        run(&mut c, &["EXEC"]),
        Value::Array(vec![Value::SimpleString("PONG".into())])
    );
    run(&mut c, &["SET", "y", "1", "PX", "30"]);
    run(&mut c, &["WATCH", "y"]);
    thread::sleep(Duration::from_millis(60));
    run(&mut c, &["MULTI"]);
    run(&mut c, &["PING"]);
    assert_eq!(run(&mut c, &["EXEC"]), Value::Nil);
}

/// A blocked client is served with the time as it is after the command:
/// a key that expired while EXEC ran (DEBUG SLEEP) serves no one and the
/// client stays blocked, as in Redis.
#[test]
fn key_expired_during_exec_does_not_serve_a_blocked_client() {
    let srv = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut c = srv.client();
    run(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let mut raw = srv.raw();
    raw.send(&resp(&[b"BRPOP", b"k", b"0"]));
    common::wait_blocked(&mut c, 1);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["RPUSH", "k", "hello"]);
    run(&mut c, &["PEXPIRE", "k", "100"]);
    run(&mut c, &["DEBUG", "SLEEP", "0.2"]);
    run(&mut c, &["EXEC"]);
    assert_eq!(common::blocked_clients(&mut c), 1);
    assert_eq!(run(&mut c, &["EXISTS", "k"]), Value::Int(0));
}
