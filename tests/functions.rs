//! Redis 7 functions: FUNCTION LOAD / LIST / DUMP / RESTORE / KILL / STATS
//! and FCALL through the `redis` crate, effects, and DUMP payloads moving
//! between ferrokv and the reference redis-server (port 6400, when up).

mod common;

use std::time::Duration;

use ferrokv::testkit::Harness;
use redis::Value;

const LIB: &str = "#!lua name=testlib
redis.register_function('incr_by', function(keys, args)
  return redis.call('INCRBY', keys[1], args[1])
end)
redis.register_function{function_name='peek', callback=function(keys, args)
  return redis.call('GET', keys[1])
end, flags={'no-writes'}, description='read a key'}";

fn load(con: &mut redis::Connection, code: &str) -> redis::RedisResult<String> {
    redis::cmd("FUNCTION").arg("LOAD").arg(code).query(con)
}

#[test]
fn load_call_and_list() {
    let srv = common::Server::start();
    let mut con = srv.client();
    assert_eq!(load(&mut con, LIB).unwrap(), "testlib");
    let n: i64 = redis::cmd("FCALL")
        .arg("incr_by")
        .arg(1)
        .arg("n")
        .arg(5)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 5);
    let v: String = redis::cmd("FCALL_RO")
        .arg("PEEK")
        .arg(1)
        .arg("n")
        .query(&mut con)
        .unwrap();
    assert_eq!(v, "5");
    let err = redis::cmd("FCALL_RO")
        .arg("incr_by")
        .arg(1)
        .arg("n")
        .arg(1)
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Can not execute a script with write flag using *_ro command."),
        "{err}"
    );
    // A second load of the same library needs REPLACE.
    let err = load(&mut con, LIB).unwrap_err();
    assert!(
        err.to_string().contains("Library 'testlib' already exists"),
        "{err}"
    );
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(LIB)
        .query(&mut con)
        .unwrap();
    assert_eq!(name, "testlib");

    let list: Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query(&mut con)
        .unwrap();
    let text = format!("{list:?}");
    for needle in [
        "testlib",
        "LUA",
        "incr_by",
        "peek",
        "read a key",
        "no-writes",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    let stats: Value = redis::cmd("FUNCTION").arg("STATS").query(&mut con).unwrap();
    let text = format!("{stats:?}");
    assert!(text.contains("libraries_count"), "{text}");

    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("testlib")
        .query(&mut con)
        .unwrap();
    let err = redis::cmd("FCALL")
        .arg("peek")
        .arg(0)
        .query::<Value>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("Function not found"), "{err}");
}

#[test]
fn writes_are_published_as_a_transaction() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["FUNCTION", "LOAD", LIB]), "$7\r\ntestlib\r\n");
    assert_eq!(h.take_effects(), [format!("0: FUNCTION LOAD {LIB}")]);
    assert_eq!(h.run(&["FCALL", "incr_by", "1", "k", "2"]), ":2\r\n");
    // One write is atomic alone: published bare, as Redis 7.0 propagates it.
    assert_eq!(h.take_effects(), ["0: INCRBY k 2"]);
    assert_eq!(h.run(&["FCALL", "peek", "1", "k"]), "$1\r\n2\r\n");
    assert!(h.take_effects().is_empty());
    assert_eq!(
        h.run(&["FCALL", "nosuch", "0"]),
        "-ERR Function not found\r\n"
    );
    assert_eq!(
        h.run(&["FCALL", "peek", "x"]),
        "-ERR Bad number of keys provided\r\n"
    );
}

#[test]
fn dump_flush_restore_round_trip() {
    let srv = common::Server::start();
    let mut con = srv.client();
    load(&mut con, LIB).unwrap();
    let payload: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut con).unwrap();
    let _: () = redis::cmd("FUNCTION").arg("FLUSH").query(&mut con).unwrap();
    let list: Vec<Value> = redis::cmd("FUNCTION").arg("LIST").query(&mut con).unwrap();
    assert!(list.is_empty());
    let _: () = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .query(&mut con)
        .unwrap();
    let n: i64 = redis::cmd("FCALL")
        .arg("incr_by")
        .arg(1)
        .arg("n")
        .arg(3)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 3);
    // APPEND (the default) refuses a library that exists; REPLACE takes it.
    let err = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("Library testlib already exists"),
        "{err}"
    );
    let _: () = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .arg("REPLACE")
        .query(&mut con)
        .unwrap();
    let again: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut con).unwrap();
    assert_eq!(again, payload);
    let mut bad = payload.clone();
    *bad.last_mut().unwrap() ^= 0xff;
    let err = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&bad)
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("DUMP payload version or checksum are wrong"),
        "{err}"
    );
}

#[test]
fn function_kill_stops_a_busy_function() {
    let srv = common::Server::start();
    let mut admin = srv.client();
    load(
        &mut admin,
        "#!lua name=busy\nredis.register_function('spin', function() while true do end end)",
    )
    .unwrap();
    let mut spin = redis::cmd("FCALL");
    spin.arg("spin").arg(1).arg("somekey");
    let runner = common::spawn_busy_script(&srv, &mut admin, spin);
    let mut probe = redis::cmd("GET");
    probe.arg("x");
    let busy = common::wait_busy(&mut admin, &probe);
    assert!(busy.contains("FUNCTION KILL"), "{busy}");
    // STATS answers while the function runs, and names it.
    let stats: Value = redis::cmd("FUNCTION")
        .arg("STATS")
        .query(&mut admin)
        .unwrap();
    let text = format!("{stats:?}");
    assert!(
        text.contains("spin") && text.contains("somekey") && text.contains("duration_ms"),
        "{text}"
    );
    // SCRIPT KILL is the wrong kill for a function.
    let err = redis::cmd("SCRIPT")
        .arg("KILL")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert!(err.to_string().contains("FUNCTION KILL"), "{err}");
    let _: () = redis::cmd("FUNCTION")
        .arg("KILL")
        .query(&mut admin)
        .unwrap();
    let err = runner.join().unwrap();
    assert!(
        err.contains("Script killed by user with SCRIPT KILL") && err.contains("@user_function"),
        "{err}"
    );
    let err = redis::cmd("FUNCTION")
        .arg("KILL")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert!(err.to_string().contains("No scripts in execution"), "{err}");
    let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
    assert_eq!(pong, "PONG");
}

/// The reference server, if one answers on port 6400.
fn reference() -> Option<redis::Connection> {
    let client = redis::Client::open("redis://127.0.0.1:6400/").ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    redis::cmd("PING").query::<String>(&mut con).ok()?;
    Some(con)
}

#[test]
fn payloads_move_between_redis_and_ferrokv() {
    let Some(mut reference) = reference() else {
        eprintln!("no reference redis-server on port 6400: skipped");
        return;
    };
    // The reference is shared: a library name of our own, removed after.
    let lib = format!("ferrokv_test_{}", std::process::id());
    let code = format!(
        "#!lua name={lib}\nredis.register_function('{lib}_f', function(keys, args) return 'from ' .. args[1] end)"
    );
    let _ = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg(&lib)
        .query::<()>(&mut reference);
    load(&mut reference, &code).unwrap();
    let theirs: redis::RedisResult<Vec<u8>> =
        redis::cmd("FUNCTION").arg("DUMP").query(&mut reference);
    let _ = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg(&lib)
        .query::<()>(&mut reference);
    let theirs = theirs.unwrap();

    let srv = common::Server::start();
    let mut con = srv.client();
    let _: () = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&theirs)
        .query(&mut con)
        .unwrap();
    let got: String = redis::cmd("FCALL")
        .arg(format!("{lib}_f"))
        .arg(0)
        .arg("redis")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, "from redis");
    // Same libraries, same bytes: our DUMP is Redis's.
    let ours: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut con).unwrap();
    if ours.len() == theirs.len() {
        assert_eq!(ours, theirs);
    }

    // And back: only our library, restored into the reference.
    let _: () = redis::cmd("FUNCTION").arg("FLUSH").query(&mut con).unwrap();
    load(&mut con, &code).unwrap();
    let ours: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut con).unwrap();
    let restored: redis::RedisResult<()> = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&ours)
        .query(&mut reference);
    let called: redis::RedisResult<String> = redis::cmd("FCALL")
        .arg(format!("{lib}_f"))
        .arg(0)
        .arg("ferrokv")
        .query(&mut reference);
    let _ = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg(&lib)
        .query::<()>(&mut reference);
    restored.unwrap();
    assert_eq!(called.unwrap(), "from ferrokv");
}

#[test]
fn function_commands_while_an_eval_script_runs() {
    let srv = common::Server::start();
    let mut admin = srv.client();
    let mut spin = redis::cmd("EVAL");
    spin.arg("while true do end").arg(0);
    let runner = common::spawn_busy_script(&srv, &mut admin, spin);
    // FUNCTION STATS passes the busy gate but refuses to describe a script.
    let mut probe = redis::cmd("FUNCTION");
    probe.arg("STATS");
    let busy = common::wait_busy(&mut admin, &probe);
    assert!(busy.contains("You can only call SCRIPT KILL"), "{busy}");
    let err = redis::cmd("FUNCTION")
        .arg("KILL")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert!(
        err.to_string().contains("You can only call SCRIPT KILL"),
        "{err}"
    );
    let _: () = redis::cmd("SCRIPT").arg("KILL").query(&mut admin).unwrap();
    let err = runner.join().unwrap();
    assert!(err.contains("@user_script"), "{err}");
}
