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
}

#[test]
fn busy_then_script_kill() {
    let srv = common::Server::start();
    let mut admin = srv.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg("100")
        .query(&mut admin)
        .unwrap();
    let url = srv.url();
    let runner = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("EVAL")
            .arg("while true do end")
            .arg(0)
            .query::<()>(&mut con)
            .unwrap_err()
            .to_string()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("x").query(&mut admin);
        match r {
            Err(e) if e.to_string().contains("BUSY") => break,
            _ if Instant::now() > deadline => panic!("never got BUSY"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
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
