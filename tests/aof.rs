//! The append-only file: Redis 7.0's multi-part layout (manifest, base and
//! incremental files), restarts that rebuild the same dataset (DEBUG
//! DIGEST), BGREWRITEAOF retiring the old files, turning AOF on at run
//! time, a torn last command with `aof-load-truncated yes|no`, a manifest
//! naming a missing file, and the upgrade of a pre-7.0 single file.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, TempDir, run_to_exit};

const AOF: &[&str] = &[
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--aof-use-rdb-preamble",
    "no",
    "--enable-debug-command",
    "yes",
    "--save",
    "",
];

fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut args = AOF.to_vec();
    args.extend_from_slice(extra);
    Server::start_in(Some(dir), None, &args)
}

fn cmd(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    r.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn text(c: &mut redis::Connection, args: &[&str]) -> String {
    common::show(&cmd(c, args))
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap()
}

fn aof_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every type in several databases: strings (with TTLs), lists, hashes,
/// sets and sorted sets small and past 64 items, a stream with a consumer
/// group and pending entries, a function, a transaction and a script.
fn write_every_type(c: &mut redis::Connection) {
    cmd(c, &["SET", "str", "hello"]);
    cmd(c, &["SET", "int", "12345"]);
    cmd(c, &["SET", "ttl", "v", "EX", "1000"]);
    cmd(c, &["APPEND", "str", " world"]);
    cmd(c, &["RPUSH", "list", "a", "b", "c"]);
    cmd(c, &["HSET", "hash", "f1", "v1", "f2", "v2"]);
    cmd(c, &["SADD", "intset", "1", "2", "3"]);
    cmd(c, &["SADD", "set", "x", "y"]);
    cmd(c, &["ZADD", "zset", "1.5", "a", "-2", "b", "inf", "c"]);
    for i in 0..150 {
        let n = i.to_string();
        cmd(c, &["RPUSH", "biglist", &n]);
        cmd(c, &["HSET", "bighash", &format!("f{n}"), &n]);
        cmd(c, &["SADD", "bigset", &format!("m{n}")]);
        cmd(c, &["ZADD", "bigzset", &n, &format!("m{n}")]);
    }
    cmd(c, &["XADD", "stream", "1-1", "f", "v"]);
    cmd(c, &["XADD", "stream", "2-1", "f", "w"]);
    cmd(c, &["XADD", "stream", "3-1", "g", "x"]);
    cmd(c, &["XDEL", "stream", "3-1"]);
    cmd(c, &["XGROUP", "CREATE", "stream", "grp", "0"]);
    cmd(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "grp",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    cmd(c, &["XGROUP", "CREATECONSUMER", "stream", "grp", "bob"]);
    cmd(c, &["XGROUP", "CREATE", "empty", "g2", "$", "MKSTREAM"]);
    cmd(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('one', function() return 1 end)",
        ],
    );
    redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("txn")
        .cmd("RPUSH")
        .arg("txnlist")
        .arg("t")
        .query::<()>(c)
        .unwrap();
    cmd(
        c,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'a'); return redis.call('incr', KEYS[2])",
            "2",
            "scripted",
            "counter",
        ],
    );
    cmd(c, &["SELECT", "3"]);
    cmd(c, &["SET", "in3", "three"]);
    cmd(c, &["LPUSH", "list3", "z"]);
    cmd(c, &["SELECT", "0"]);
}

/// What the digest leaves out (groups, consumers, functions), as text.
fn extras(c: &mut redis::Connection) -> String {
    let mut s = text(c, &["XINFO", "GROUPS", "stream"]);
    // Idle times move on; the rest must not.
    s += &text(c, &["XPENDING", "stream", "grp", "-", "+", "10"]).replace(char::is_numeric, "");
    s += &text(c, &["XINFO", "CONSUMERS", "stream", "grp"]).replace(char::is_numeric, "");
    s += &text(c, &["XINFO", "STREAM", "empty"]);
    s += &text(c, &["FUNCTION", "LIST"]);
    s
}

fn snapshot(c: &mut redis::Connection) -> (String, String) {
    (text(c, &["DEBUG", "DIGEST"]), extras(c))
}

fn wait_rewrite(c: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = text(c, &["INFO", "persistence"]);
        if info.contains("aof_rewrite_in_progress:0") {
            assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
            return;
        }
        assert!(Instant::now() < deadline, "rewrite did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_type_survives_restarts_and_a_rewrite() {
    let d = TempDir::new("aof-types");
    let srv = start(d.path(), &[]);
    let mut c = srv.client();
    assert_eq!(
        manifest(d.path()),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    write_every_type(&mut c);
    let before = snapshot(&mut c);
    let info = text(&mut c, &["INFO", "persistence"]);
    assert!(info.contains("aof_enabled:1"), "{info}");
    assert!(info.contains("aof_last_write_status:ok"), "{info}");
    // Killed, not shut down: with `always` every acknowledged write is on disk.
    drop(srv);
    let srv = start(d.path(), &[]);
    let mut c = srv.client();
    assert_eq!(snapshot(&mut c), before);
    assert!(text(&mut c, &["PTTL", "ttl"]).parse::<i64>().unwrap() > 900_000);

    assert_eq!(
        text(&mut c, &["BGREWRITEAOF"]),
        "Background append only file rewriting started"
    );
    wait_rewrite(&mut c);
    assert_eq!(
        manifest(d.path()),
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    assert_eq!(
        aof_files(d.path()),
        [
            "appendonly.aof.2.base.aof",
            "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
    let base = std::fs::read(d.path().join("appendonlydir/appendonly.aof.2.base.aof")).unwrap();
    assert!(base.starts_with(b"*3\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n"));
    let info = text(&mut c, &["INFO", "persistence"]);
    assert!(info.contains("aof_rewrites:1"), "{info}");
    // Written after the cut: in the new incremental file.
    cmd(&mut c, &["SET", "after", "rewrite"]);
    let before = snapshot(&mut c);
    drop(srv);
    let srv = start(d.path(), &[]);
    let mut c = srv.client();
    assert_eq!(snapshot(&mut c), before);
    assert_eq!(text(&mut c, &["GET", "after"]), "rewrite");
}

#[test]
fn appendonly_turned_on_at_run_time_starts_with_a_rewrite() {
    let d = TempDir::new("aof-runtime");
    let args = [
        "--enable-debug-command",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
    ];
    let srv = Server::start_in(Some(d.path()), None, &args);
    let mut c = srv.client();
    cmd(&mut c, &["SET", "before", "1"]);
    cmd(&mut c, &["RPUSH", "l", "a", "b"]);
    cmd(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite(&mut c);
    cmd(&mut c, &["SET", "after", "2"]);
    let digest = text(&mut c, &["DEBUG", "DIGEST"]);
    assert!(text(&mut c, &["INFO", "persistence"]).contains("aof_enabled:1"));
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    drop(srv);
    let srv = start(d.path(), &[]);
    let mut c = srv.client();
    assert_eq!(text(&mut c, &["DEBUG", "DIGEST"]), digest);
}

/// Writes `n` keys, then kills the server (every write acknowledged, so on
/// disk); returns the incremental file's path.
fn write_and_kill(dir: &Path, n: usize) -> std::path::PathBuf {
    let srv = start(dir, &[]);
    let mut c = srv.client();
    for i in 0..n {
        cmd(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    drop(srv);
    dir.join("appendonlydir/appendonly.aof.1.incr.aof")
}

#[test]
fn a_torn_last_command_is_cut_off_with_aof_load_truncated_yes() {
    let d = TempDir::new("aof-torn");
    let incr = write_and_kill(d.path(), 10);
    let whole = std::fs::metadata(&incr).unwrap().len();
    let mut bytes = std::fs::read(&incr).unwrap();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$2\r\nk9");
    std::fs::write(&incr, &bytes).unwrap();

    // Refused with `no`, naming the file.
    let (code, out) = run_to_exit(d.path(), &[AOF, &["--aof-load-truncated", "no"]].concat());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"
        ),
        "{out}"
    );
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), bytes.len() as u64);

    // Loaded with `yes`, the file cut back to the last whole command.
    let srv = start(d.path(), &["--logfile", "log.txt"]);
    let mut c = srv.client();
    assert_eq!(text(&mut c, &["DBSIZE"]), "10");
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), whole);
    let log = std::fs::read_to_string(d.path().join("log.txt")).unwrap();
    for line in [
        "!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!",
        &format!("!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {whole} !!!"),
        "AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
    // And the server appends after the cut.
    cmd(&mut c, &["SET", "more", "1"]);
    drop(srv);
    let srv = start(d.path(), &[]);
    assert_eq!(text(&mut srv.client(), &["DBSIZE"]), "11");
}

#[test]
fn an_unfinished_transaction_at_the_end_is_dropped() {
    let d = TempDir::new("aof-multi");
    let incr = write_and_kill(d.path(), 3);
    let mut bytes = std::fs::read(&incr).unwrap();
    bytes.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n");
    std::fs::write(&incr, &bytes).unwrap();
    let srv = start(d.path(), &[]);
    let mut c = srv.client();
    assert_eq!(text(&mut c, &["DBSIZE"]), "3");
    assert_eq!(text(&mut c, &["EXISTS", "x"]), "0");
}

#[test]
fn a_manifest_naming_a_missing_file_refuses_to_start() {
    let d = TempDir::new("aof-missing");
    write_and_kill(d.path(), 2);
    let m = d.path().join("appendonlydir/appendonly.aof.manifest");
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.push_str("file appendonly.aof.2.incr.aof seq 2 type i\n");
    std::fs::write(&m, text).unwrap();
    let (code, out) = run_to_exit(d.path(), AOF);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "The append log file appendonly.aof.2.incr.aof doesn't exist: No such file or directory"
        ),
        "{out}"
    );
    // A malformed manifest too.
    std::fs::write(&m, "file appendonly.aof.1.base.aof seq 1 type b\n\n").unwrap();
    let (code, out) = run_to_exit(d.path(), AOF);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Invalid AOF manifest file format"), "{out}");
}

#[test]
fn a_pre_7_0_appendonly_aof_is_upgraded() {
    let d = TempDir::new("aof-upgrade");
    let mut old = Vec::new();
    for (k, v) in [("k1", "v1"), ("k2", "v2")] {
        old.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$2\r\n{k}\r\n$2\r\n{v}\r\n").as_bytes());
    }
    std::fs::write(d.path().join("appendonly.aof"), &old).unwrap();
    let srv = start(d.path(), &[]);
    let mut c = srv.client();
    assert_eq!(text(&mut c, &["GET", "k2"]), "v2");
    assert!(!d.path().join("appendonly.aof").exists());
    assert_eq!(
        manifest(d.path()),
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    cmd(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    assert_eq!(
        manifest(d.path()),
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
}

/// While the file is replayed nothing expires, as in Redis: the commands
/// after a deadline that has passed since they were written still find
/// their key (EXPIRE, GETEX and RESTORE with a past time set it rather than
/// delete), and the key goes once loading ends instead of coming back as a
/// new key without a deadline.
#[test]
fn keys_whose_deadline_passed_do_not_come_back_after_a_replay() {
    let d = TempDir::new("aof-expired");
    let incr = write_and_kill(d.path(), 1);
    let past = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 5_000)
        .to_string();
    let mut bytes = std::fs::read(&incr).unwrap();
    for args in [
        &["SET", "k", "5", "PXAT", &past][..],
        &["INCR", "k"],
        &["RPUSH", "l", "a"],
        &["PEXPIREAT", "l", &past],
        &["RPUSH", "l", "b"],
        &["SET", "g", "1"],
        &["GETEX", "g", "PXAT", &past],
        &["APPEND", "g", "x"],
        &["SET", "plain", "v"],
    ] {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        bytes.extend_from_slice(&common::resp(&args));
    }
    std::fs::write(&incr, &bytes).unwrap();
    let srv = start(d.path(), &[]);
    let mut c = srv.client();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    keys.sort();
    assert_eq!(keys, ["k0", "plain"]);
}
