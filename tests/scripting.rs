//! Lua scripting: redis::Script (EVALSHA, then SCRIPT LOAD and retry),
//! error formats byte for byte, effects, BUSY and SCRIPT KILL.

mod common;

use std::time::{Duration, Instant};

use ferrokv::testkit::Harness;

#[test]
fn script_objects_load_and_retry_on_noscript() {
    let srv = common::Server::start();
    let mut con = srv.client();
    let script = redis::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let n: i64 = script.key("n").arg(5).invoke(&mut con).unwrap();
    assert_eq!(n, 5);
    let n: i64 = script.key("n").arg(1).invoke(&mut con).unwrap();
    assert_eq!(n, 6);
    let exists: Vec<bool> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(script.get_hash())
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, [true]);
}

#[test]
fn error_formats_match_redis() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["EVAL", "return redis.call('incr','x','y')", "0"]),
        "-ERR Wrong number of args calling Redis command from script script: c7d8ad623e739f5be7f1ea520c579a2cf1a1acc6, on @user_script:1.\r\n"
    );
    assert_eq!(
        h.run(&["EVAL", "x=1", "0"]),
        "-ERR user_script:1: Attempt to modify a readonly table script: 7caf6056913504f0508c65faf2dc3f94ff65bcfd, on @user_script:1.\r\n"
    );
    assert_eq!(
        h.run(&["EVAL", "return 1", "2", "a"]),
        "-ERR Number of keys can't be greater than number of args\r\n"
    );
    assert_eq!(
        h.run(&["EVAL", "return 1", "-1"]),
        "-ERR Number of keys can't be negative\r\n"
    );
    assert_eq!(
        h.run(&["EVALSHA", "abc", "0"]),
        "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
    assert_eq!(
        h.run(&["EVAL", "return redis.call('eval','return 1','0')", "0"]),
        "-ERR This Redis command is not allowed from script script: 1e5046f3a9119d3dc9cf5824428b6d9fedd305d2, on @user_script:1.\r\n"
    );
}

#[test]
fn a_script_publishes_its_writes_as_a_transaction() {
    let mut h = Harness::new();
    let reply = h.run(&[
        "EVAL",
        "redis.call('SET', KEYS[1], 'a') redis.call('GET', KEYS[1]) return redis.call('INCR', 'n')",
        "1",
        "k",
    ]);
    assert_eq!(reply, ":1\r\n");
    assert_eq!(
        h.take_effects(),
        ["0: MULTI", "0: SET k a", "0: INCR n", "0: EXEC"]
    );
    h.run(&["EVAL", "return redis.call('GET', 'k')", "0"]);
    assert!(h.take_effects().is_empty());
    // redis.set_repl(REPL_NONE) keeps the writes after it out of the stream.
    h.run(&[
        "EVAL",
        "redis.call('SET', 'a', '1') redis.set_repl(redis.REPL_NONE) \
         redis.call('SET', 'b', '2') redis.set_repl(redis.REPL_ALL) \
         return redis.call('SET', 'c', '3')",
        "0",
    ]);
    assert_eq!(
        h.take_effects(),
        ["0: MULTI", "0: SET a 1", "0: SET c 3", "0: EXEC"]
    );
    assert_eq!(
        h.run(&["MGET", "a", "b", "c"]),
        "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
}

#[test]
fn busy_then_script_kill() {
    let srv = common::Server::start();
    let mut admin = srv.client();
    let mut spin = redis::cmd("EVAL");
    spin.arg("while true do end").arg(0);
    let runner = common::spawn_busy_script(&srv, &mut admin, spin);
    let mut probe = redis::cmd("GET");
    probe.arg("x");
    common::wait_busy(&mut admin, &probe);
    let _: () = redis::cmd("SCRIPT").arg("KILL").query(&mut admin).unwrap();
    let err = runner.join().unwrap();
    assert!(
        err.contains("Script killed by user with SCRIPT KILL"),
        "{err}"
    );
    let err = redis::cmd("SCRIPT")
        .arg("KILL")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert!(err.to_string().contains("No scripts in execution"), "{err}");
}

/// EVAL and FCALL alone and inside MULTI/EXEC, from several connections at
/// once, over keys in many shards: every script and transaction completes
/// (an EXEC holding shards must never wait for a VM that a script waiting
/// for those shards holds), and the counts add up.
#[test]
fn scripts_and_transactions_running_scripts_do_not_deadlock() {
    let srv = common::Server::start();
    let mut con = srv.client();
    let _: () = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=stress\nredis.register_function('bump', function(keys) return redis.call('INCR', keys[1]) end)")
        .query(&mut con)
        .unwrap();
    let rounds = 200;
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let mut con = srv.client();
            // A deadlock shows as a timeout, not a hung test.
            con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            std::thread::spawn(move || {
                for i in 0..rounds {
                    let k = format!("k{}", (i * 7 + t) % 50);
                    match t % 3 {
                        0 => {
                            let _: i64 = redis::cmd("EVAL")
                                .arg("return redis.call('INCR', KEYS[1])")
                                .arg(1)
                                .arg(&k)
                                .query(&mut con)
                                .unwrap();
                        }
                        1 => {
                            let _: (i64, i64, i64) = redis::pipe()
                                .atomic()
                                .cmd("INCR")
                                .arg(format!("other{i}"))
                                .cmd("EVAL")
                                .arg("return redis.call('INCR', KEYS[1])")
                                .arg(1)
                                .arg(&k)
                                .cmd("FCALL")
                                .arg("bump")
                                .arg(1)
                                .arg("fk")
                                .query(&mut con)
                                .unwrap();
                        }
                        _ => {
                            let _: i64 = redis::cmd("FCALL")
                                .arg("bump")
                                .arg(1)
                                .arg(&k)
                                .query(&mut con)
                                .unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let mut total = 0i64;
    for i in 0..50 {
        let v: Option<i64> = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query(&mut con)
            .unwrap();
        total += v.unwrap_or(0);
    }
    // Threads 0/3 (EVAL), 1/4 (EXEC's EVAL) and 2/5 (FCALL) each bump one k.
    assert_eq!(total, 6 * rounds as i64);
    let fk: i64 = redis::cmd("GET").arg("fk").query(&mut con).unwrap();
    assert_eq!(fk, 2 * rounds as i64);
}

/// Scripts that touch keys they did not declare (locked as reached, in any
/// order), next to multi-key commands and transactions over the same keys
/// from other connections: nothing deadlocks, and each script is atomic
/// (its two writes of a pair are never seen apart).
#[test]
fn undeclared_keys_in_scripts_next_to_multi_key_commands() {
    let srv = common::Server::start();
    let rounds = 300;
    let pairs = 40;
    let workers: Vec<_> = (0..6)
        .map(|t| {
            let mut con = srv.client();
            con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            std::thread::spawn(move || {
                for i in 0..rounds {
                    let p = (i * 13 + t * 7) % pairs;
                    let q = (p + 17) % pairs;
                    let (a, b) = (format!("a{p}"), format!("b{p}"));
                    let (c, d) = (format!("a{q}"), format!("b{q}"));
                    match t % 3 {
                        // Declares nothing: all four keys are undeclared.
                        0 => {
                            let _: i64 = redis::cmd("EVAL")
                                .arg(
                                    "redis.call('INCR', ARGV[1]) redis.call('INCR', ARGV[2]) \
                                     redis.call('INCR', ARGV[3]) return redis.call('INCR', ARGV[4])",
                                )
                                .arg(0)
                                .arg(&d)
                                .arg(&c)
                                .arg(&b)
                                .arg(&a)
                                .query(&mut con)
                                .unwrap();
                        }
                        // A multi-key command over both pairs.
                        1 => {
                            let (x, y): (i64, i64) = redis::cmd("EVAL")
                                .arg("return {redis.call('GET', KEYS[1]) or 0, redis.call('GET', KEYS[2]) or 0}")
                                .arg(2)
                                .arg(&a)
                                .arg(&b)
                                .query(&mut con)
                                .unwrap();
                            assert_eq!(x, y, "a script saw half of another's writes");
                            let _: () = redis::cmd("MSET")
                                .arg(format!("m{p}"))
                                .arg(i)
                                .arg(format!("m{q}"))
                                .arg(i)
                                .query(&mut con)
                                .unwrap();
                        }
                        // A transaction over both pairs, and a keyspace read.
                        _ => {
                            let (x, y, z, w): (i64, i64, i64, i64) = redis::pipe()
                                .atomic()
                                .cmd("INCR")
                                .arg(&a)
                                .cmd("INCR")
                                .arg(&b)
                                .cmd("INCR")
                                .arg(&d)
                                .cmd("INCR")
                                .arg(&c)
                                .query(&mut con)
                                .unwrap();
                            assert_eq!(x, y);
                            assert_eq!(z, w);
                            let _: Vec<String> = redis::cmd("EVAL")
                                .arg("return redis.call('KEYS', 'm*')")
                                .arg(0)
                                .query(&mut con)
                                .unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut con = srv.client();
    for p in 0..pairs {
        let a: Option<i64> = redis::cmd("GET")
            .arg(format!("a{p}"))
            .query(&mut con)
            .unwrap();
        let b: Option<i64> = redis::cmd("GET")
            .arg(format!("b{p}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(a, b);
    }
}

/// A script returning a table nested 100,000 deep: the reply goes as deep
/// as Lua's stack allows (as deep as Redis's, byte for byte: 8,000 levels
/// then the error in place of the innermost element) and the server lives.
#[test]
fn deeply_nested_script_reply_ends_in_stack_limit_error() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    let script = "local t = {} local c = t for i=1,100000 do c[1] = {} c = c[1] end return t";
    let cmd = format!(
        "*3\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n0\r\n",
        script.len()
    );
    let error = b"-ERR reached lua stack limit\r\n";
    // What redis-server 7.0.15 answers: 7,995 nested one-element arrays.
    let expected_len = 7995 * 4 + error.len();
    let reply = raw.roundtrip(cmd.as_bytes(), expected_len);
    assert_eq!(reply.len(), expected_len);
    assert!(reply.starts_with(b"*1\r\n*1\r\n"));
    assert!(reply.ends_with(error));
    assert_eq!(raw.roundtrip(b"PING\r\n", 7), b"+PONG\r\n");
}
