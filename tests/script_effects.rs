//! Scripts and the effect stream: `redis.set_repl` sends each write to the
//! AOF, the replicas, both or neither; a replica judges a script by its
//! declaration (a queued one at EXEC too) and refuses a script without a
//! shebang while stale, as Redis 7.0 does.

mod common;

use common::{Server, TempDir, follow, wait_for};

/// The command's result, errors included (`common::q` panics on them).
fn q(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

/// The error as the server sent it: `CODE detail`.
fn err(r: redis::RedisResult<redis::Value>) -> String {
    match r {
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

const SELECTIVE: &str = "redis.call('set','a','1'); \
    redis.set_repl(redis.REPL_NONE); redis.call('set','b','2'); \
    redis.set_repl(redis.REPL_AOF); redis.call('set','c','3'); \
    redis.set_repl(redis.REPL_ALL); redis.call('set','d','4'); \
    redis.set_repl(redis.REPL_REPLICA); redis.call('set','e','5')";

#[test]
fn set_repl_sends_each_write_where_the_script_asked() {
    let dir = TempDir::new("script-effects");
    let master = Server::start_in(
        Some(dir.path()),
        None,
        &["--appendonly", "yes", "--repl-diskless-sync-delay", "0"],
    );
    let replica = Server::start();
    let mut m = master.client();
    let mut r = replica.client();
    follow(&mut r, master.port);
    q(&mut m, &["EVAL", SELECTIVE, "0"]).unwrap();
    q(&mut m, &["PUBLISH", "ch", "hello"]).unwrap();
    q(&mut m, &["SET", "last", "1"]).unwrap();
    // Once the write after the script arrived, the script's have too.
    wait_for("the stream", || {
        q(&mut r, &["EXISTS", "last"]).unwrap() == redis::Value::Int(1)
    });
    let on_replica: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["a", "b", "c", "d", "e"])
        .query(&mut r)
        .unwrap();
    assert_eq!(
        on_replica,
        [Some("1"), None, None, Some("4"), Some("5")].map(|v| v.map(String::from))
    );
    let on_master: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["a", "b", "c", "d", "e"])
        .query(&mut m)
        .unwrap();
    assert!(on_master.iter().all(Option::is_some), "{on_master:?}");
    // The AOF holds a, c and d in the script's transaction, and no PUBLISH.
    let aof_dir = dir.path().join("appendonlydir");
    let incr = std::fs::read_dir(&aof_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .expect("an incremental file");
    let text = String::from_utf8_lossy(&std::fs::read(incr).unwrap()).replace("\r\n", " ");
    let script =
        "*1 $5 MULTI *3 $3 set $1 a $1 1 *3 $3 set $1 c $1 3 *3 $3 set $1 d $1 4 *1 $4 EXEC";
    assert!(text.contains(script), "{text}");
    assert!(!text.contains("$1 b") && !text.contains("$1 e"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("publish"), "{text}");
}

#[test]
fn exec_counts_a_queued_script_by_its_declaration_on_a_read_only_replica() {
    let srv = Server::start();
    let mut rr = srv.client();
    let mut rr2 = srv.client();
    let mut admin = srv.client();
    q(&mut rr, &["MULTI"]).unwrap();
    q(&mut rr2, &["MULTI"]).unwrap();
    // Queued while a master: a shebang script that may write, and one
    // without a shebang whose call writes.
    q(&mut rr, &["EVAL", "#!lua\nreturn 1", "0"]).unwrap();
    q(
        &mut rr2,
        &["EVAL", "redis.call('set','x',1) return 1", "1", "x"],
    )
    .unwrap();
    q(&mut admin, &["REPLICAOF", "127.0.0.1", "1"]).unwrap();
    let e = err(q(&mut rr, &["EXEC"]));
    assert!(
        e.contains("EXECABORT")
            && e.contains("READONLY You can't write against a read only replica."),
        "{e}"
    );
    // The undeclared script runs; its write is refused inside it.
    let v = q(&mut rr2, &["EXEC"]);
    let shown = format!("{v:?}");
    assert!(
        shown.contains("You can't write against a read only replica. script: "),
        "{shown}"
    );
    // A `no-writes` script queued the same way runs.
    q(&mut rr, &["MULTI"]).unwrap();
    q(&mut rr, &["EVAL", "#!lua flags=no-writes\nreturn 7", "0"]).unwrap();
    let v: Vec<i64> = redis::cmd("EXEC").query(&mut rr).unwrap();
    assert_eq!(v, [7]);
    q(&mut admin, &["REPLICAOF", "NO", "ONE"]).unwrap();
}

#[test]
fn a_stale_replica_refuses_scripts_without_a_shebang_or_allow_stale() {
    let srv = Server::start();
    let mut c = srv.client();
    q(&mut c, &["CONFIG", "SET", "replica-serve-stale-data", "no"]).unwrap();
    q(&mut c, &["REPLICAOF", "127.0.0.1", "1"]).unwrap();
    let masterdown =
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
    for script in ["return 1", "#!lua flags=no-writes\nreturn 1"] {
        let e = err(q(&mut c, &["EVAL", script, "0"]));
        assert!(e.contains(masterdown), "{script}: {e}");
    }
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 2")
        .query(&mut c)
        .unwrap();
    let e = err(q(&mut c, &["EVALSHA", &sha, "0"]));
    assert!(e.contains(masterdown), "{e}");
    let v: i64 = redis::cmd("EVAL")
        .arg("#!lua flags=allow-stale,no-writes\nreturn redis.call('echo','3')")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, 3);
    q(&mut c, &["REPLICAOF", "NO", "ONE"]).unwrap();
}
