//! RDB persistence through a client: SAVE and a restart in the same
//! directory keep every type in each of its encodings (DEBUG DIGEST and
//! replies equal), deadlines are kept and expired keys stay gone; SHUTDOWN
//! saves with save points; DUMP / RESTORE round trips and their errors; a
//! damaged file refuses the start naming the file and the offset.

mod common;

use common::{Server, TempDir, run_to_exit};
use redis::Value;

const DEBUG: &[&str] = &["--enable-debug-command", "yes"];

fn cmd(c: &mut redis::Connection, args: &[&str]) -> Value {
    let mut q = redis::cmd(args[0]);
    for a in &args[1..] {
        q.arg(*a);
    }
    q.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn err(c: &mut redis::Connection, args: &[&[u8]]) -> String {
    let mut q = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        q.arg(*a);
    }
    match q.query::<Value>(c) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            let detail = e.detail().unwrap_or("").to_string();
            format!("{code} {detail}").trim().to_string()
        }
    }
}

fn digest(c: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
}

/// Every type, several encodings each, in two databases, a function
/// library, deadlines.
fn fill(c: &mut redis::Connection) {
    let long = "x".repeat(300);
    let big: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let s = |c: &mut redis::Connection, a: &[&str]| {
        cmd(c, a);
    };
    s(c, &["SET", "str:int", "12345"]);
    s(c, &["SET", "str:bigint", "-9223372036854775808"]);
    s(c, &["SET", "str:emb", "hello"]);
    s(c, &["SET", "str:raw", &long]);
    s(c, &["SET", "str:bin", "a\u{0}b\r\nc"]);
    s(c, &["APPEND", "str:appended", "abc"]);
    s(c, &["SET", "str:ttl", "v", "EX", "1000"]);
    s(
        c,
        &["RPUSH", "list:small", "a", "1", "-5000", "100000", "b"],
    );
    for chunk in big.chunks(50) {
        let mut a = vec!["RPUSH", "list:big"];
        a.extend(chunk.iter().map(|x| x.as_str()));
        s(c, &a);
        let mut a = vec!["SADD", "set:big"];
        a.extend(chunk.iter().map(|x| x.as_str()));
        s(c, &a);
        let mut a = vec!["HSET", "hash:big"];
        for m in chunk {
            a.push(m);
            a.push(m);
        }
        s(c, &a);
    }
    s(c, &["RPUSH", "list:long", &long, &long]);
    s(
        c,
        &["SADD", "set:ints", "1", "2", "300", "-70000", "5000000000"],
    );
    s(c, &["SADD", "set:strs", "a", "b", "c"]);
    s(
        c,
        &[
            "ZADD",
            "zset:small",
            "1.5",
            "a",
            "2",
            "b",
            "-0",
            "c",
            "inf",
            "d",
            "1e20",
            "e",
        ],
    );
    for (i, m) in big.iter().enumerate() {
        s(c, &["ZADD", "zset:big", &format!("{}.25", i), m]);
    }
    s(c, &["ZADD", "zset:long", "3", &long]);
    s(
        c,
        &["HSET", "hash:small", "f1", "v1", "n", "12", "neg", "-5000"],
    );
    s(c, &["HSET", "hash:long", "f", &long]);
    s(c, &["XADD", "stream", "1-1", "a", "1", "b", "2"]);
    s(c, &["XADD", "stream", "1-2", "a", "3", "b", "4"]);
    s(c, &["XADD", "stream", "2-0", "other", "x"]);
    s(c, &["XADD", "stream", "3-0", "a", "5", "b", "6"]);
    s(c, &["XDEL", "stream", "1-2"]);
    s(c, &["XGROUP", "CREATE", "stream", "g1", "0"]);
    s(c, &["XGROUP", "CREATE", "stream", "g2", "$"]);
    s(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    s(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    s(c, &["XACK", "stream", "g1", "1-1"]);
    s(c, &["XADD", "stream:empty", "5-5", "f", "v"]);
    s(c, &["XDEL", "stream:empty", "5-5"]);
    s(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 'hi' end)",
        ],
    );
    s(c, &["SELECT", "3"]);
    s(c, &["SET", "db3:key", "v3"]);
    s(c, &["HSET", "db3:hash", "a", "b"]);
    s(c, &["SELECT", "0"]);
}

/// XPENDING's extended form without the idle times (they move on).
trait Ids {
    fn to_owned_ids(self) -> Value;
}

impl Ids for Value {
    fn to_owned_ids(self) -> Value {
        match self {
            Value::Array(rows) => Value::Array(
                rows.into_iter()
                    .map(|r| match r {
                        Value::Array(mut f) => {
                            f.remove(2);
                            Value::Array(f)
                        }
                        o => o,
                    })
                    .collect(),
            ),
            o => o,
        }
    }
}

/// Replies that must be the same before and after.
fn observe(c: &mut redis::Connection) -> Vec<Value> {
    let mut out = Vec::new();
    for k in [
        "str:int",
        "str:bigint",
        "str:emb",
        "str:raw",
        "str:bin",
        "str:appended",
    ] {
        out.push(cmd(c, &["GET", k]));
        out.push(cmd(c, &["OBJECT", "ENCODING", k]));
    }
    for k in ["list:small", "list:big", "list:long"] {
        out.push(cmd(c, &["LRANGE", k, "0", "-1"]));
        out.push(cmd(c, &["OBJECT", "ENCODING", k]));
    }
    for k in ["set:ints", "set:strs", "set:big"] {
        out.push(cmd(c, &["SCARD", k]));
        out.push(cmd(c, &["OBJECT", "ENCODING", k]));
    }
    for k in ["zset:small", "zset:big", "zset:long"] {
        out.push(cmd(c, &["ZRANGE", k, "0", "-1", "WITHSCORES"]));
        out.push(cmd(c, &["OBJECT", "ENCODING", k]));
    }
    for k in ["hash:small", "hash:big", "hash:long"] {
        out.push(cmd(c, &["HLEN", k]));
        out.push(cmd(c, &["HGET", k, "f1"]));
        out.push(cmd(c, &["OBJECT", "ENCODING", k]));
    }
    out.push(cmd(c, &["XRANGE", "stream", "-", "+"]));
    out.push(cmd(c, &["XPENDING", "stream", "g1"]));
    out.push(cmd(c, &["XPENDING", "stream", "g1", "-", "+", "10", "bob"]).to_owned_ids());
    out.push(cmd(c, &["XINFO", "GROUPS", "stream"]));
    out.push(cmd(c, &["XLEN", "stream:empty"]));
    out.push(cmd(c, &["FUNCTION", "LIST", "WITHCODE"]));
    out.push(cmd(c, &["FCALL", "myfunc", "0"]));
    out.push(cmd(c, &["DBSIZE"]));
    out
}

#[test]
fn save_then_restart_keeps_every_type() {
    let dir = TempDir::new("rdb");
    let mut args = DEBUG.to_vec();
    args.extend(["--save", ""]);
    let (before, obs, ttl_deadline) = {
        let srv = Server::start_in(Some(dir.path()), None, &args);
        let mut c = srv.client();
        fill(&mut c);
        let obs = observe(&mut c);
        // A key whose deadline passes while active expiry is off: it is
        // still in the table when saved, and must not come back.
        cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        cmd(&mut c, &["SET", "gone", "x", "PX", "30"]);
        std::thread::sleep(std::time::Duration::from_millis(80));
        let d = digest(&mut c);
        assert_eq!(cmd(&mut c, &["SAVE"]), Value::Okay);
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg("str:ttl")
            .query(&mut c)
            .unwrap();
        (d, obs, at)
        // The server is killed here (SIGKILL): only the file remains.
    };
    assert!(dir.path().join("dump.rdb").exists());
    let srv = Server::start_in(Some(dir.path()), None, &args);
    let mut c = srv.client();
    let after = digest(&mut c);
    let at: i64 = redis::cmd("PEXPIRETIME")
        .arg("str:ttl")
        .query(&mut c)
        .unwrap();
    assert_eq!(at, ttl_deadline, "the deadline is kept as an absolute time");
    assert_eq!(cmd(&mut c, &["EXISTS", "gone"]), Value::Int(0));
    // The digest counted the expired key before; drop it from the picture.
    assert_ne!(before, after);
    assert_eq!(observe(&mut c), obs);
    cmd(&mut c, &["SELECT", "3"]);
    assert_eq!(
        cmd(&mut c, &["GET", "db3:key"]),
        Value::BulkString(b"v3".to_vec())
    );
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    assert!(info.contains("rdb_last_load_keys_loaded:"), "{info}");
    assert!(info.contains("rdb_last_load_keys_expired:1"), "{info}");
}

#[test]
fn digest_equal_across_restart() {
    let dir = TempDir::new("rdb-digest");
    let mut args = DEBUG.to_vec();
    args.extend(["--save", ""]);
    let before = {
        let srv = Server::start_in(Some(dir.path()), None, &args);
        let mut c = srv.client();
        fill(&mut c);
        cmd(&mut c, &["SAVE"]);
        digest(&mut c)
    };
    let srv = Server::start_in(Some(dir.path()), None, &args);
    let mut c = srv.client();
    assert_eq!(digest(&mut c), before);
    // DEBUG RELOAD: save, empty, load: the same again.
    assert_eq!(cmd(&mut c, &["DEBUG", "RELOAD"]), Value::Okay);
    assert_eq!(digest(&mut c), before);
    assert_eq!(
        cmd(&mut c, &["FCALL", "myfunc", "0"]),
        Value::BulkString(b"hi".to_vec())
    );
}

#[test]
fn shutdown_saves_with_save_points_and_nosave_does_not() {
    let dir = TempDir::new("rdb-shutdown");
    let args = ["--save", "3600 1"];
    {
        let srv = Server::start_in(Some(dir.path()), None, &args);
        let mut c = srv.client();
        cmd(&mut c, &["SET", "k", "v"]);
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        assert!(info.contains("rdb_changes_since_last_save:1\r\n"), "{info}");
        let mut raw = srv.raw();
        raw.send(&common::resp(&[b"SHUTDOWN"]));
        assert!(raw.read_to_close().is_empty());
    }
    {
        let srv = Server::start_in(Some(dir.path()), None, &args);
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["GET", "k"]), Value::BulkString(b"v".to_vec()));
        cmd(&mut c, &["SET", "k", "changed"]);
        let mut raw = srv.raw();
        raw.send(&common::resp(&[b"SHUTDOWN", b"NOSAVE"]));
        assert!(raw.read_to_close().is_empty());
    }
    let srv = Server::start_in(Some(dir.path()), None, &args);
    let mut c = srv.client();
    assert_eq!(cmd(&mut c, &["GET", "k"]), Value::BulkString(b"v".to_vec()));
}

#[test]
fn shutdown_refuses_when_the_save_fails() {
    let dir = TempDir::new("rdb-shutdown-fail");
    let srv = Server::start_in(Some(dir.path()), None, &["--save", "3600 1"]);
    let mut c = srv.client();
    // A directory where the file should go: the rename fails.
    std::fs::create_dir(dir.path().join("dump.rdb")).unwrap();
    std::fs::write(dir.path().join("dump.rdb").join("x"), "x").unwrap();
    assert_eq!(
        err(&mut c, &[b"SHUTDOWN"]),
        "ERR Errors trying to SHUTDOWN. Check logs."
    );
    assert_eq!(err(&mut c, &[b"SAVE"]), "ERR");
    assert_eq!(cmd(&mut c, &["PING"]), Value::SimpleString("PONG".into()));
}

#[test]
fn dump_restore_round_trip_and_errors() {
    let srv = Server::start_with(DEBUG);
    let mut c = srv.client();
    fill(&mut c);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    for k in &keys {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut c).unwrap();
        let dv: Vec<String> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(k)
            .query(&mut c)
            .unwrap();
        let copy = format!("{k}:copy");
        let _: () = redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(&payload)
            .query(&mut c)
            .unwrap();
        let dv2: Vec<String> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(&copy)
            .query(&mut c)
            .unwrap();
        // str:ttl has a deadline (part of the value digest); RESTORE 0 has none.
        if k != "str:ttl" {
            assert_eq!(dv, dv2, "{k}");
        }
        let again: Vec<u8> = redis::cmd("DUMP").arg(&copy).query(&mut c).unwrap();
        assert_eq!(again, payload, "{k}: the copy dumps the same bytes");
    }
    // Byte-for-byte Redis 7.0.15's DUMP of SET k 12345 and RPUSH l a b 1.
    cmd(&mut c, &["SET", "k", "12345"]);
    let p: Vec<u8> = redis::cmd("DUMP").arg("k").query(&mut c).unwrap();
    assert_eq!(p, b"\x00\xc190\n\x00\x9d\x94\xea'\x93\xfc\x08\xb9");
    cmd(&mut c, &["RPUSH", "l", "a", "b", "1"]);
    let p: Vec<u8> = redis::cmd("DUMP").arg("l").query(&mut c).unwrap();
    assert_eq!(
        p,
        b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x01\x01\xff\n\x00\xe0\x1b\xabJG\xceY\""
    );
    assert_eq!(cmd(&mut c, &["DUMP", "nokey"]), Value::Nil);

    let good: Vec<u8> = redis::cmd("DUMP").arg("k").query(&mut c).unwrap();
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"k", b"0", &good]),
        "BUSYKEY Target key name already exists."
    );
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"n", b"-1", &good]),
        "ERR Invalid TTL value, must be >= 0"
    );
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"n", b"x", &good]),
        "ERR value is not an integer or out of range"
    );
    let mut bad = good.clone();
    bad[1] ^= 1;
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"n", b"0", &bad]),
        "ERR DUMP payload version or checksum are wrong"
    );
    let mut newer = good.clone();
    let n = newer.len();
    newer[n - 10] = 11;
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"n", b"0", &newer]),
        "ERR DUMP payload version or checksum are wrong"
    );
    // A valid footer around a bad value.
    let mut body = vec![0u8, 0x05, b'a'];
    body.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"n", b"0", &body]),
        "ERR Bad data format"
    );
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"n", b"0", &good, b"IDLETIME", b"-1"]),
        "ERR Invalid IDLETIME value, must be >= 0"
    );
    assert_eq!(
        err(&mut c, &[b"RESTORE", b"n", b"0", &good, b"FREQ", b"256"]),
        "ERR Invalid FREQ value, must be >= 0 and <= 255"
    );
    assert_eq!(
        err(
            &mut c,
            &[
                b"RESTORE",
                b"n",
                b"0",
                &good,
                b"IDLETIME",
                b"1",
                b"FREQ",
                b"1"
            ]
        ),
        "ERR syntax error"
    );
    // REPLACE, ABSTTL, IDLETIME.
    let _: () = redis::cmd("RESTORE")
        .arg("k")
        .arg(0)
        .arg(&good)
        .arg("REPLACE")
        .arg("IDLETIME")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    let idle: i64 = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert!(idle >= 1000, "{idle}");
    let far = 4_000_000_000_000i64;
    let _: () = redis::cmd("RESTORE")
        .arg("k2")
        .arg(far)
        .arg(&good)
        .arg("ABSTTL")
        .query(&mut c)
        .unwrap();
    let at: i64 = redis::cmd("PEXPIRETIME").arg("k2").query(&mut c).unwrap();
    assert_eq!(at, far);
    // An absolute deadline in the past: OK, and the key is not created.
    let _: () = redis::cmd("RESTORE")
        .arg("k3")
        .arg(1)
        .arg(&good)
        .arg("ABSTTL")
        .query(&mut c)
        .unwrap();
    assert_eq!(cmd(&mut c, &["EXISTS", "k3"]), Value::Int(0));
}

/// CRC-64 Jones, as the payload footer uses (a test-local copy).
fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x95ac9329ac4bc9b5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[test]
fn damaged_file_refuses_to_start_naming_file_and_offset() {
    let dir = TempDir::new("rdb-corrupt");
    {
        let srv = Server::start_in(Some(dir.path()), None, &["--save", ""]);
        let mut c = srv.client();
        fill(&mut c);
        cmd(&mut c, &["SAVE"]);
    }
    let path = dir.path().join("dump.rdb");
    let good = std::fs::read(&path).unwrap();
    // Truncated.
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let (code, out) = run_to_exit(dir.path(), &["--save", ""]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("dump.rdb") && out.contains("offset"), "{out}");
    // A flipped byte in the checksum.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();
    let (code, out) = run_to_exit(dir.path(), &["--save", ""]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("checksum") && out.contains(&format!("offset {}", n - 8)),
        "{out}"
    );
    // With the checksum zeroed (rdbchecksum no), the same bytes load.
    let mut unchecked = good.clone();
    unchecked[n - 8..].fill(0);
    std::fs::write(&path, &unchecked).unwrap();
    let srv = Server::start_in(Some(dir.path()), None, &["--save", ""]);
    let mut c = srv.client();
    assert_eq!(
        cmd(&mut c, &["GET", "str:emb"]),
        Value::BulkString(b"hello".to_vec())
    );
}

#[test]
fn info_persistence_has_redis_fields() {
    let srv = Server::start();
    let mut c = srv.client();
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    let names: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    // Redis 7.0.15's fields, in its order.
    let want = [
        "loading",
        "async_loading",
        "current_cow_peak",
        "current_cow_size",
        "current_cow_size_age",
        "current_fork_perc",
        "current_save_keys_processed",
        "current_save_keys_total",
        "rdb_changes_since_last_save",
        "rdb_bgsave_in_progress",
        "rdb_last_save_time",
        "rdb_last_bgsave_status",
        "rdb_last_bgsave_time_sec",
        "rdb_current_bgsave_time_sec",
        "rdb_saves",
        "rdb_last_cow_size",
        "rdb_last_load_keys_expired",
        "rdb_last_load_keys_loaded",
        "aof_enabled",
        "aof_rewrite_in_progress",
        "aof_rewrite_scheduled",
        "aof_last_rewrite_time_sec",
        "aof_current_rewrite_time_sec",
        "aof_last_bgrewrite_status",
        "aof_rewrites",
        "aof_rewrites_consecutive_failures",
        "aof_last_write_status",
        "aof_last_cow_size",
        "module_fork_in_progress",
        "module_fork_last_cow_size",
    ];
    assert_eq!(names, want);
    cmd(&mut c, &["SET", "a", "1"]);
    cmd(&mut c, &["MSET", "b", "1", "c", "2"]);
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    assert!(info.contains("rdb_changes_since_last_save:3\r\n"), "{info}");
    cmd(&mut c, &["SAVE"]);
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    assert!(info.contains("rdb_changes_since_last_save:0\r\n"), "{info}");
    assert!(info.contains("rdb_saves:1\r\n"), "{info}");
}

#[test]
fn debug_populate_as_redis() {
    let srv = Server::start_with(DEBUG);
    let mut c = srv.client();
    assert_eq!(cmd(&mut c, &["DEBUG", "POPULATE", "3"]), Value::Okay);
    assert_eq!(
        cmd(&mut c, &["GET", "key:2"]),
        Value::BulkString(b"value:2".to_vec())
    );
    cmd(&mut c, &["DEBUG", "POPULATE", "2", "p", "3"]);
    assert_eq!(
        cmd(&mut c, &["GET", "p:1"]),
        Value::BulkString(b"val".to_vec())
    );
    cmd(&mut c, &["DEBUG", "POPULATE", "1", "z", "10"]);
    assert_eq!(
        cmd(&mut c, &["GET", "z:0"]),
        Value::BulkString(b"value:0\0\0\0".to_vec())
    );
    assert_eq!(cmd(&mut c, &["DBSIZE"]), Value::Int(6));
    assert_eq!(
        err(&mut c, &[b"DEBUG", b"POPULATE", b"abc"]),
        "ERR value is out of range, must be positive"
    );
    // Accepted (ferrokv always checks payloads fully).
    assert_eq!(
        cmd(&mut c, &["CONFIG", "SET", "sanitize-dump-payload", "yes"]),
        Value::Okay
    );
}

#[test]
fn sigterm_saves_with_save_points() {
    let dir = TempDir::new("rdb-sigterm");
    let args = ["--save", "3600 1"];
    {
        let mut srv = Server::start_in(Some(dir.path()), None, &args);
        let mut c = srv.client();
        cmd(&mut c, &["RPUSH", "queue", "job1", "job2"]);
        let st = std::process::Command::new("kill")
            .args(["-TERM", &srv.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while srv.alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "still running after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let srv = Server::start_in(Some(dir.path()), None, &args);
    let mut c = srv.client();
    assert_eq!(
        cmd(&mut c, &["LRANGE", "queue", "0", "-1"]),
        Value::Array(vec![
            Value::BulkString(b"job1".to_vec()),
            Value::BulkString(b"job2".to_vec())
        ])
    );
}

/// SAVE sent while a function runs completes, and so does the function
/// (SAVE reads the libraries' codes from a copy, never waiting for the
/// registry a running function holds while it holds every shard).
#[test]
fn save_during_a_running_function_does_not_deadlock() {
    let dir = TempDir::new("rdb-fcall");
    let srv = Server::start_in(Some(dir.path()), None, &["--save", ""]);
    let mut c = srv.client();
    cmd(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=slow\nredis.register_function('slow', function(keys, args)\n\
         local t = redis.call('TIME')\n\
         local start = t[1] * 1000000 + t[2]\n\
         while true do\n\
           local n = redis.call('TIME')\n\
           if n[1] * 1000000 + n[2] - start > 300000 then break end\n\
         end\n\
         return redis.call('SET', 'x', '1') end)",
        ],
    );
    let url = srv.url();
    let runner = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        redis::cmd("FCALL")
            .arg("slow")
            .arg(0)
            .query::<Value>(&mut c)
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    assert_eq!(cmd(&mut c, &["SAVE"]), Value::Okay);
    assert_eq!(runner.join().unwrap().unwrap(), Value::Okay);
}

/// RESTORE with a relative TTL is replayed with the absolute deadline and
/// ABSTTL; an already expired ABSTTL over an existing key with REPLACE is
/// replayed as DEL (the key goes).
#[test]
fn restore_effects_carry_the_absolute_deadline() {
    use ferrokv::persist::rdb::write::{Opts, dump_payload};
    use ferrokv::store::ValueRef;
    use ferrokv::testkit::Harness;
    // A string value whose payload (CRC included) is plain text, so it can
    // go through the harness's &str arguments.
    let (value, payload) = (0..100_000)
        .map(|i| format!("v{i}"))
        .find_map(|v| {
            let p = dump_payload(ValueRef::Bytes(v.as_bytes()), Opts::default());
            let ok = p
                .iter()
                .all(|&b| (0x20..0x7f).contains(&b) || b < 0x20 && b != b'\r');
            ok.then(|| (v.clone(), String::from_utf8(p).unwrap()))
        })
        .expect("some value has a text payload");
    let mut h = Harness::new();
    h.now_ms = Some(1_000_000);
    assert_eq!(h.run(&["RESTORE", "k", "5000", &payload]), "+OK\r\n");
    assert_eq!(
        h.run(&["GET", "k"]),
        format!("${}\r\n{value}\r\n", value.len())
    );
    assert_eq!(
        h.take_effects(),
        [format!("0: RESTORE k 1005000 {payload} ABSTTL")]
    );
    assert_eq!(
        h.run(&["RESTORE", "k", "1", &payload, "REPLACE", "ABSTTL"]),
        "+OK\r\n"
    );
    assert_eq!(h.run(&["EXISTS", "k"]), ":0\r\n");
    assert_eq!(h.take_effects(), ["0: DEL k"]);
}

fn bgsave_running(c: &mut redis::Connection) -> bool {
    let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
    info.contains("rdb_bgsave_in_progress:1")
}

/// BGSAVE writes the file from the snapshot walk while clients keep
/// writing; the file holds the dataset as of BGSAVE and loads with the
/// same digest (and into redis-server: see test_rdb_compat.py).
#[test]
fn bgsave_writes_a_point_in_time_file_that_loads() {
    let dir = TempDir::new("rdb-bgsave");
    let mut args = DEBUG.to_vec();
    args.extend(["--save", ""]);
    let before = {
        let srv = Server::start_in(Some(dir.path()), None, &args);
        let mut c = srv.client();
        fill(&mut c);
        let before = digest(&mut c);
        assert_eq!(
            cmd(&mut c, &["BGSAVE"]),
            Value::SimpleString("Background saving started".into())
        );
        // Changed after the instant of the image: not in the file.
        cmd(&mut c, &["SET", "after-bgsave", "x"]);
        while bgsave_running(&mut c) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
        before
    };
    let srv = Server::start_in(Some(dir.path()), None, &args);
    let mut c = srv.client();
    assert_eq!(digest(&mut c), before);
}
