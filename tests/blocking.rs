//! Blocking pops through real clients: wake-up on push, timeouts, FIFO
//! order among waiters, clean-up when a waiter goes away, CLIENT UNBLOCK.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use redis::{Commands, Value};

use common::{blocked_clients, wait_blocked};

#[test]
fn blpop_wakes_on_push_and_times_out_with_nil() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let url = srv.url();
    let waiter = thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        let t = Instant::now();
        let got: Option<(String, String)> = w.blpop("q", 5.0).unwrap();
        (got, t.elapsed())
    });
    wait_blocked(&mut c, 1);
    let pushed_at = Instant::now();
    let _: () = c.rpush("q", "job").unwrap();
    let (got, _) = waiter.join().unwrap();
    assert_eq!(got, Some(("q".into(), "job".into())));
    assert!(pushed_at.elapsed() < Duration::from_secs(1));
    assert_eq!(blocked_clients(&mut c), 0);
    // The element went to the waiter, not into the list.
    let exists: i64 = c.exists("q").unwrap();
    assert_eq!(exists, 0);

    let t = Instant::now();
    let got: Option<(String, String)> = c.blpop("q", 0.2).unwrap();
    assert_eq!(got, None);
    assert!(t.elapsed() >= Duration::from_millis(190));
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut handles = Vec::new();
    for i in 0..3 {
        let url = srv.url();
        handles.push(thread::spawn(move || {
            let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
            let got: Option<(String, String)> = w.brpop(&["a", "b"], 5.0).unwrap();
            (i, got)
        }));
        wait_blocked(&mut c, i + 1);
    }
    let _: () = c.rpush("b", &["x", "y", "z"]).unwrap();
    let mut got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    got.sort();
    // BRPOP takes from the tail: the first waiter gets z.
    let expect: Vec<(i64, Option<(String, String)>)> = vec![
        (0, Some(("b".into(), "z".into()))),
        (1, Some(("b".into(), "y".into()))),
        (2, Some(("b".into(), "x".into()))),
    ];
    assert_eq!(got, expect);
}

#[test]
fn a_waiter_that_disconnects_loses_nothing() {
    let srv = common::Server::start();
    let mut c = srv.client();
    {
        let mut raw = srv.raw();
        raw.send(&common::resp(&[b"BLPOP", b"gone", b"0"]));
        wait_blocked(&mut c, 1);
    }
    wait_blocked(&mut c, 0);
    let _: () = c.rpush("gone", "keep").unwrap();
    let v: Vec<String> = c.lrange("gone", 0, -1).unwrap();
    assert_eq!(v, vec!["keep"]);
}

#[test]
fn blmove_moves_atomically_when_served() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let url = srv.url();
    let waiter = thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        let v: Option<String> = redis::cmd("BLMOVE")
            .arg("src")
            .arg("dst")
            .arg("LEFT")
            .arg("RIGHT")
            .arg(5)
            .query(&mut w)
            .unwrap();
        v
    });
    wait_blocked(&mut c, 1);
    let _: () = c.rpush("src", &["1", "2"]).unwrap();
    assert_eq!(waiter.join().unwrap().as_deref(), Some("1"));
    let src: Vec<String> = c.lrange("src", 0, -1).unwrap();
    let dst: Vec<String> = c.lrange("dst", 0, -1).unwrap();
    assert_eq!((src, dst), (vec!["2".to_string()], vec!["1".to_string()]));
}

#[test]
fn bzpopmin_and_bzmpop_serve_sorted_sets() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let url = srv.url();
    let waiter = thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        let v: Value = redis::cmd("BZPOPMIN")
            .arg("z")
            .arg(5)
            .query(&mut w)
            .unwrap();
        v
    });
    wait_blocked(&mut c, 1);
    let _: () = c.zadd_multiple("z", &[(2, "b"), (1, "a")]).unwrap();
    let got = waiter.join().unwrap();
    let expect = Value::Array(vec![
        Value::BulkString(b"z".to_vec()),
        Value::BulkString(b"a".to_vec()),
        Value::BulkString(b"1".to_vec()),
    ]);
    assert_eq!(got, expect);
    let v: Value = redis::cmd("BZMPOP")
        .arg(1)
        .arg(1)
        .arg("z")
        .arg("MAX")
        .query(&mut c)
        .unwrap();
    let expect = Value::Array(vec![
        Value::BulkString(b"z".to_vec()),
        Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"b".to_vec()),
            Value::BulkString(b"2".to_vec()),
        ])]),
    ]);
    assert_eq!(v, expect);
}

#[test]
fn client_unblock_ends_a_wait_as_timeout_or_error() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for (how, expect_err) in [("TIMEOUT", false), ("ERROR", true)] {
        let mut w = srv.client();
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut w).unwrap();
        let h = thread::spawn(move || {
            let r: redis::RedisResult<Option<(String, String)>> = w.blpop("never", 0.0);
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
        let r = h.join().unwrap();
        if expect_err {
            let e = r.unwrap_err();
            assert_eq!(e.code(), Some("UNBLOCKED"));
        } else {
            assert_eq!(r.unwrap(), None);
        }
        wait_blocked(&mut c, 0);
    }
    let n: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(999_999)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn commands_after_a_blocking_one_wait_their_turn() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut raw = srv.raw();
    let mut pipeline = common::resp(&[b"BLPOP", b"p", b"5"]);
    pipeline.extend(common::resp(&[b"PING"]));
    raw.send(&pipeline);
    wait_blocked(&mut c, 1);
    let _: () = c.rpush("p", "v").unwrap();
    let expect = b"*2\r\n$1\r\np\r\n$1\r\nv\r\n+PONG\r\n";
    assert_eq!(raw.read_n(expect.len()), expect);
}

/// An error a blocked client is answered with later (WRONGTYPE for a move
/// onto a string, UNBLOCKED by CLIENT UNBLOCK ... ERROR) counts in
/// errorstats and as a failed call of its command, as in Redis.
#[test]
fn errors_answered_to_blocked_clients_count_in_errorstats() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("dst").arg("x").query(&mut c).unwrap();
    let url = srv.url();
    let h = thread::spawn(move || {
        let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("BRPOPLPUSH")
            .arg(&["src", "dst", "0"])
            .query::<Value>(&mut w)
            .unwrap_err()
            .code()
            .map(str::to_string)
    });
    wait_blocked(&mut c, 1);
    let _: i64 = c.rpush("src", "a").unwrap();
    assert_eq!(h.join().unwrap().as_deref(), Some("WRONGTYPE"));
    let errors: String = redis::cmd("INFO").arg("errorstats").query(&mut c).unwrap();
    assert!(errors.contains("errorstat_WRONGTYPE:count=1"), "{errors}");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_brpoplpush:"))
        .unwrap_or_default();
    assert!(line.ends_with("failed_calls=1"), "{line}");
}

/// Keys one transaction makes ready in several shards serve their waiters
/// in the order they became ready (Redis's "BLMPOP with multiple blocked
/// clients"). Repeated over key pairs, as which shard comes first varies.
#[test]
fn keys_readied_by_one_transaction_are_served_in_the_order_they_became_ready() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for round in 0..8 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        let spawn = |dir: &'static str, count: &'static str| {
            let (url, a, b) = (srv.url(), a.clone(), b.clone());
            thread::spawn(move || {
                let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
                redis::cmd("BLMPOP")
                    .arg(&["0", "2", &a, &b, dir, "COUNT", count])
                    .query::<Value>(&mut w)
                    .unwrap()
            })
        };
        let first = spawn("LEFT", "1");
        wait_blocked(&mut c, 1);
        let second = spawn("RIGHT", "10");
        wait_blocked(&mut c, 2);
        let mut p = redis::pipe();
        p.atomic()
            .cmd("LPUSH")
            .arg(&a)
            .arg(&["a", "b", "c"])
            .cmd("LPUSH")
            .arg(&b)
            .arg(&["1", "2"]);
        let _: Value = p.query(&mut c).unwrap();
        let key_of = |v: Value| match v {
            Value::Array(mut parts) => match parts.remove(0) {
                Value::BulkString(k) => String::from_utf8(k).unwrap(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(key_of(first.join().unwrap()), a, "round {round}");
        assert_eq!(key_of(second.join().unwrap()), a, "round {round}");
        let _: () = redis::cmd("DEL").arg(&a).arg(&b).query(&mut c).unwrap();
    }
}

/// WAIT with no replicas: asked for none it answers 0 at once; asked for
/// some it waits out its timeout and answers 0; with timeout 0 it waits
/// until CLIENT UNBLOCK (TIMEOUT answers 0, ERROR the UNBLOCKED error),
/// counted as blocked meanwhile.
#[test]
fn wait_without_replicas_times_out_with_zero_or_is_unblocked() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let n: i64 = redis::cmd("WAIT").arg(0).arg(0).query(&mut c).unwrap();
    assert_eq!(n, 0);
    let started = Instant::now();
    let n: i64 = redis::cmd("WAIT").arg(1).arg(150).query(&mut c).unwrap();
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(150));
    for (how, expect_err) in [("TIMEOUT", false), ("ERROR", true)] {
        let mut w = srv.client();
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut w).unwrap();
        let h = thread::spawn(move || redis::cmd("WAIT").arg(2).arg(0).query::<i64>(&mut w));
        wait_blocked(&mut c, 1);
        let _: i64 = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .arg(how)
            .query(&mut c)
            .unwrap();
        match h.join().unwrap() {
            Err(e) if expect_err => assert_eq!(e.code(), Some("UNBLOCKED")),
            Ok(0) if !expect_err => {}
            other => panic!("{how}: unexpected {other:?}"),
        }
        wait_blocked(&mut c, 0);
    }
}

/// A blocked client shows `b` in CLIENT LIST; an EXEC that pushes to its
/// key but sleeps past the key's deadline leaves it blocked (the key has
/// expired by the time blocked clients are served, as in Redis).
#[test]
fn a_key_expired_by_the_time_exec_ends_serves_no_one() {
    let srv = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    let mut w = srv.client();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut w).unwrap();
    let h = thread::spawn(move || {
        let r: redis::RedisResult<Option<(String, String)>> = w.brpop("k", 0.0);
        r
    });
    wait_blocked(&mut c, 1);
    let flags = |c: &mut redis::Connection| -> Option<String> {
        let line: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(id)
            .query(c)
            .unwrap();
        line.split(' ')
            .find_map(|f| f.strip_prefix("flags="))
            .map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while flags(&mut c).as_deref() != Some("b") {
        assert!(Instant::now() < deadline, "not listed as blocked");
        thread::sleep(Duration::from_millis(10));
    }
    let _: () = redis::pipe()
        .cmd("MULTI")
        .ignore()
        .cmd("RPUSH")
        .arg("k")
        .arg("hello")
        .ignore()
        .cmd("PEXPIRE")
        .arg("k")
        .arg(100)
        .ignore()
        .cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.2")
        .ignore()
        .cmd("EXEC")
        .ignore()
        .query(&mut c)
        .unwrap();
    assert_eq!(flags(&mut c).as_deref(), Some("b"));
    let _: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .query(&mut c)
        .unwrap();
    assert_eq!(h.join().unwrap().unwrap(), None);
}
