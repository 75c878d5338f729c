//! Expired keys on a replica, as Redis 7.0 treats them: its clients' reads
//! miss them but leave them in place (the master's DEL deletes them), the
//! master's own commands still see them, a writable replica's writes
//! delete them, and the keys a writable replica's clients wrote with a
//! deadline are expired by the replica itself. Also the log line of a
//! master's command failing on the replica (DEBUG REPLICATE).

mod common;

use std::time::Duration;

use common::{Server, TempDir, follow, q, wait_applied, wait_for};

const DBG: &[&str] = &["--enable-debug-command", "yes"];

fn int(c: &mut redis::Connection, args: &[&str]) -> i64 {
    match q(c, args) {
        redis::Value::Int(n) => n,
        v => panic!("{args:?}: {v:?}"),
    }
}

/// A master and its replica, linked, both in database 5.
fn pair(replica_extra: &[&str]) -> (Server, Server, redis::Connection, redis::Connection) {
    let master = Server::start_with(DBG);
    let mut args = DBG.to_vec();
    args.extend_from_slice(replica_extra);
    let replica = Server::start_with(&args);
    let mut m = master.client();
    let mut r = replica.client();
    follow(&mut r, master.port);
    q(&mut m, &["SELECT", "5"]);
    q(&mut r, &["SELECT", "5"]);
    (master, replica, m, r)
}

#[test]
fn a_read_only_replica_hides_expired_keys_without_deleting_them() {
    let (_master, _replica, mut m, mut r) = pair(&[]);
    q(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q(&mut m, &["SET", "key1", "5", "PX", "10"]);
    q(&mut m, &["PFADD", "hll", "a", "b", "c"]);
    q(&mut m, &["PEXPIRE", "hll", "10"]);
    wait_applied(&mut m, &mut r);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(int(&mut r, &["EXISTS", "key1", "hll"]), 0);
    assert_eq!(q(&mut r, &["GET", "key1"]), redis::Value::Nil);
    assert_eq!(int(&mut r, &["PFCOUNT", "hll"]), 0);
    // Still there: the master deletes them.
    assert_eq!(int(&mut r, &["DBSIZE"]), 2);
    let _: String = redis::cmd("DEBUG")
        .arg("OBJECT")
        .arg("key1")
        .query(&mut r)
        .unwrap();
    let keys: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .query::<(String, Vec<String>)>(&mut r)
        .unwrap()
        .1;
    assert!(keys.is_empty(), "{keys:?}");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut r).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    // Every key expired: RANDOMKEY still answers one, deleting none.
    let k: String = redis::cmd("RANDOMKEY").query(&mut r).unwrap();
    assert!(k == "key1" || k == "hll", "{k}");
    assert_eq!(int(&mut r, &["DBSIZE"]), 2);
    // The master's DELs do.
    q(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    wait_for("the DELs", || int(&mut r, &["DBSIZE"]) == 0);
}

#[test]
fn pfcount_on_a_read_only_replica_updates_the_cached_cardinality() {
    let (_master, _replica, mut m, mut r) = pair(&[]);
    q(
        &mut m,
        &["PFADD", "key", "a", "b", "c", "d", "e", "f", "g", "h"],
    );
    wait_applied(&mut m, &mut r);
    let before: Vec<u8> = redis::cmd("GET").arg("key").query(&mut r).unwrap();
    assert_eq!(int(&mut r, &["PFCOUNT", "key"]), 8);
    let after: Vec<u8> = redis::cmd("GET").arg("key").query(&mut r).unwrap();
    assert_ne!(before, after);
}

#[test]
fn the_masters_commands_see_a_key_the_replica_holds_expired() {
    let (_master, replica, mut m, mut r) = pair(&[]);
    q(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q(&mut m, &["SET", "k", "1", "PX", "500"]);
    wait_applied(&mut m, &mut r);
    // The replica receives the INCR only once the key has expired there.
    let pid = replica.pid().to_string();
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status();
    assert!(stop.unwrap().success());
    q(&mut m, &["INCR", "k"]);
    std::thread::sleep(Duration::from_millis(600));
    let cont = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
    assert!(cont.unwrap().success());
    wait_applied(&mut m, &mut r);
    // The INCR applied to the expired key (not a new one without a
    // deadline): it is still there, still expired.
    assert_eq!(int(&mut r, &["EXISTS", "k"]), 0);
    let obj: String = redis::cmd("DEBUG")
        .arg("OBJECT")
        .arg("k")
        .query(&mut r)
        .unwrap();
    assert!(obj.contains("encoding:int"), "{obj}");
}

#[test]
fn a_writable_replicas_writes_delete_expired_keys_and_its_own_keys_expire() {
    let (_master, _replica, mut m, mut r) = pair(&["--replica-read-only", "no"]);
    q(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q(&mut m, &["SET", "key1", "5", "PX", "10"]);
    q(&mut m, &["SET", "key2", "5", "PX", "10"]);
    q(&mut m, &["SET", "key3", "5", "PX", "10"]);
    wait_applied(&mut m, &mut r);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(int(&mut r, &["DBSIZE"]), 3);
    // The INCR expires key1 and creates it again, without a deadline.
    assert_eq!(int(&mut r, &["INCR", "key1"]), 1);
    assert_eq!(int(&mut r, &["TTL", "key1"]), -1);
    assert_eq!(q(&mut r, &["GET", "key2"]), redis::Value::Nil);
    assert_eq!(int(&mut r, &["DBSIZE"]), 3);
    let expired = |r: &mut redis::Connection| {
        let info: String = redis::cmd("INFO").arg("stats").query(r).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("expired_keys:"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(expired(&mut r), "1");
    // A transaction that writes expires what it meets too.
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("key3")
        .query(&mut r)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(expired(&mut r), "2");
    q(&mut r, &["DEL", "key1", "key2", "key3"]);

    // A deadline already past is set, not acted on (Redis's replica does
    // the same); the replica's own sweep deletes such keys.
    q(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q(&mut r, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "-1"]), 1);
    q(&mut r, &["SET", "k", "v", "EXAT", "1"]);
    assert_eq!(int(&mut r, &["EXISTS", "foo", "k"]), 0);
    assert_eq!(int(&mut r, &["DBSIZE"]), 2);
    q(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    wait_for("the sweep", || int(&mut r, &["DBSIZE"]) == 0);

    // Keys the replica's own clients gave a deadline: it expires them.
    q(&mut r, &["SET", "own1", "1", "PX", "50"]);
    q(&mut r, &["SET", "own2", "1"]);
    q(&mut r, &["PEXPIRE", "own2", "50"]);
    q(&mut r, &["SET", "own3", "1"]);
    wait_for("the replica's own keys to expire", || {
        int(&mut r, &["DBSIZE"]) == 1
    });
    assert_eq!(int(&mut r, &["EXISTS", "own3"]), 1);
}

#[test]
fn a_masters_command_failing_on_the_replica_is_logged() {
    let dir = TempDir::new("repl-divergence");
    let log = dir.path().join("replica.log");
    let log_arg = log.to_string_lossy().into_owned();
    let (_master, _replica, mut m, mut r) = pair(&["--logfile", &log_arg]);
    q(
        &mut r,
        &["CONFIG", "SET", "propagation-error-behavior", "ignore"],
    );
    q(&mut m, &["DEBUG", "REPLICATE", "fake-command-1"]);
    q(&mut m, &["SET", "foo", "bar"]);
    wait_applied(&mut m, &mut r);
    q(&mut r, &["CONFIG", "SET", "replica-read-only", "no"]);
    q(&mut r, &["SET", "number2", "foo"]);
    q(&mut m, &["INCRBY", "number2", "1"]);
    wait_applied(&mut m, &mut r);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("== CRITICAL =="))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with(
            "== CRITICAL == This replica is sending an error to its master: \
             'unknown command 'fake-command-1', with args beginning with: ' \
             after processing the command '<unknown>'"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(
            "== CRITICAL == This replica is sending an error to its master: \
             'value is not an integer or out of range' after processing the command 'incrby'"
        ),
        "{}",
        lines[1]
    );
    // And the stream before it, as Redis shows it (escaped).
    assert!(
        text.contains("Latest backlog is: '\"") && text.contains("fake-command-1\\r\\n"),
        "{text}"
    );
    let v: String = redis::cmd("GET").arg("number2").query(&mut r).unwrap();
    assert_eq!(v, "foo");
}
