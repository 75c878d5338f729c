//! A replica's diskless load (`repl-diskless-load on-empty-db`/`swapdb`)
//! parses the payload while it arrives: a slow replica
//! (`key-load-delay`) reads slowly and paces the master's transfer, the
//! loading fields progress, sized (`$<len>`) and `$EOF:<mark>` payloads
//! load with the stream that follows them, and a payload cut short is
//! Redis's error.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{info_field, q, wait_within};

fn info_int(c: &mut redis::Connection, name: &str) -> i64 {
    info_field(c, "everything", name).parse().unwrap_or(-1)
}

fn dbsize(c: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(c).unwrap()
}

#[test]
fn a_slow_diskless_replica_paces_the_masters_transfer() {
    let master = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let replica = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let mut m = master.client();
    let mut r = replica.client();
    q(&mut m, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    q(&mut m, &["CONFIG", "SET", "rdbcompression", "no"]);
    // 40 MB: far more than the sockets' buffers hold.
    q(&mut m, &["DEBUG", "POPULATE", "20000", "key", "2000"]);
    q(
        &mut r,
        &["CONFIG", "SET", "repl-diskless-load", "on-empty-db"],
    );
    // A millisecond a key: the load would take 20 s.
    q(&mut r, &["CONFIG", "SET", "key-load-delay", "1000"]);
    let port = master.port.to_string();
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_within("the replica to load", Duration::from_secs(30), || {
        info_int(&mut r, "loading") == 1
    });
    let first = info_int(&mut r, "loading_loaded_bytes");
    std::thread::sleep(Duration::from_secs(2));
    // The replica is still reading, so the master is still sending: the
    // payload was not taken in whole at full speed.
    assert_eq!(info_int(&mut m, "rdb_bgsave_in_progress"), 1);
    assert_eq!(info_int(&mut r, "loading"), 1);
    let second = info_int(&mut r, "loading_loaded_bytes");
    assert!(second > first, "loaded bytes {first} then {second}");
    assert!(second < 40_000_000, "loaded {second} bytes of about 40 MB");
    // Full speed again: the sync completes with the whole dataset.
    q(&mut r, &["CONFIG", "SET", "key-load-delay", "0"]);
    wait_within("the link", Duration::from_secs(60), || {
        info_field(&mut r, "everything", "master_link_status") == "up"
    });
    assert_eq!(dbsize(&mut r), 20000);
    let digest = |c: &mut redis::Connection| -> String {
        redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
    };
    assert_eq!(digest(&mut r), digest(&mut m));
}

/// A master that handshakes with one replica, answers its PSYNC with a
/// full resynchronization and then sends `payload` (then keeps the link
/// open until the test ends).
fn fake_master(payload: Vec<u8>, close_after: bool) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // PING, REPLCONF listening-port, REPLCONF capa, PSYNC.
        let mut answered = 0;
        while answered < 4 {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the replica closed the link");
            seen.extend_from_slice(&buf[..n]);
            while let Some(cmd) = take_command(&mut seen) {
                answered += 1;
                let reply: &[u8] = match cmd.as_str() {
                    "PING" => b"+PONG\r\n",
                    "PSYNC" => b"+FULLRESYNC 0123456789012345678901234567890123456789 0\r\n",
                    _ => b"+OK\r\n",
                };
                s.write_all(reply).unwrap();
            }
        }
        s.write_all(&payload).unwrap();
        if close_after {
            return;
        }
        // Keep the link up while the test looks.
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.read(&mut buf);
    });
    (port, t)
}

/// The name of the first whole command in `buf` (removed from it).
fn take_command(buf: &mut Vec<u8>) -> Option<String> {
    let text = String::from_utf8_lossy(buf).into_owned();
    let mut lines = text.split("\r\n");
    let n: usize = lines.next()?.strip_prefix('*')?.parse().ok()?;
    let mut len = text.find("\r\n")? + 2;
    let mut name = None;
    for _ in 0..n {
        let hdr = lines.next()?;
        let arg = lines.next()?;
        len += hdr.len() + arg.len() + 4;
        if name.is_none() {
            name = Some(arg.to_ascii_uppercase());
        }
    }
    if len > buf.len() {
        return None;
    }
    buf.drain(..len);
    name
}

/// The RDB file of a server holding `n` keys `k0`...
fn rdb_of(n: usize) -> Vec<u8> {
    let dir = common::TempDir::new("feed-rdb");
    let dirs = dir.path().to_str().unwrap().to_string();
    let srv = common::Server::start_with(&["--dir", &dirs, "--enable-debug-command", "yes"]);
    let mut c = srv.client();
    q(&mut c, &["DEBUG", "POPULATE", &n.to_string(), "k", "100"]);
    q(&mut c, &["SAVE"]);
    drop(srv);
    std::fs::read(dir.path().join("dump.rdb")).unwrap()
}

/// A `$<len>` payload of the first `keep` bytes of `rdb`.
fn sized_payload(rdb: &[u8], keep: usize) -> Vec<u8> {
    let mut payload = format!("${}\r\n", rdb.len()).into_bytes();
    payload.extend_from_slice(&rdb[..keep]);
    payload
}

/// A server logging to a file in `dir`; `extra` further arguments.
fn logging_server(dir: &common::TempDir, extra: &[&str]) -> (std::path::PathBuf, common::Server) {
    let log = dir.path().join("log.txt");
    let mut args = vec!["--logfile", log.to_str().unwrap()];
    args.extend_from_slice(extra);
    let srv = common::Server::start_with(&args);
    (log, srv)
}

fn stream_set(key: &str, value: &str) -> Vec<u8> {
    common::resp(&[b"SET", key.as_bytes(), value.as_bytes()])
}

/// A replica of a fake master sending `payload` (300 keys, then a SET of
/// `after`) loads all 301 keys.
fn loads_with_the_stream_behind(payload: Vec<u8>) {
    let (port, t) = fake_master(payload, false);
    let replica = common::Server::start();
    let mut r = replica.client();
    q(
        &mut r,
        &["CONFIG", "SET", "repl-diskless-load", "on-empty-db"],
    );
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    wait_within("the stream's write", Duration::from_secs(20), || {
        redis::cmd("GET")
            .arg("after")
            .query::<Option<String>>(&mut r)
            .ok()
            .flatten()
            .is_some()
    });
    assert_eq!(dbsize(&mut r), 301);
    drop(replica);
    let _ = t.join();
}

#[test]
fn a_sized_payload_loads_with_the_stream_right_behind_it() {
    let rdb = rdb_of(300);
    let mut payload = sized_payload(&rdb, rdb.len());
    // The stream in the same write as the payload's end.
    payload.extend_from_slice(&stream_set("after", "1"));
    loads_with_the_stream_behind(payload);
}

#[test]
fn an_eof_mark_payload_loads_with_the_stream_right_behind_it() {
    let rdb = rdb_of(300);
    let mark = "a".repeat(40);
    let mut payload = format!("$EOF:{mark}\r\n").into_bytes();
    payload.extend_from_slice(&rdb);
    payload.extend_from_slice(mark.as_bytes());
    payload.extend_from_slice(&stream_set("after", "1"));
    loads_with_the_stream_behind(payload);
}

#[test]
fn a_payload_cut_short_is_redis_error_and_leaves_no_half_dataset() {
    let rdb = rdb_of(300);
    let (port, t) = fake_master(sized_payload(&rdb, rdb.len() / 2), true);
    let dir = common::TempDir::new("feed-short");
    let (log, replica) = logging_server(&dir, &[]);
    let mut r = replica.client();
    q(
        &mut r,
        &["CONFIG", "SET", "repl-diskless-load", "on-empty-db"],
    );
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    let _ = t.join();
    wait_within("the failure in the log", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|l| {
            l.contains("Failed trying to load the MASTER synchronization DB from socket")
        })
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("Internal error in RDB reading offset"))
        .expect("the read error");
    assert!(line.contains("Unexpected EOF reading RDB file"), "{line}");
    assert_eq!(info_int(&mut r, "loading"), 0);
    assert_eq!(dbsize(&mut r), 0);
}

#[test]
fn a_swapdb_load_of_another_history_that_fails_keeps_the_old_dataset() {
    let rdb = rdb_of(300);
    let (port, t) = fake_master(sized_payload(&rdb, rdb.len() - 100), true);
    let dir = common::TempDir::new("feed-swapdb");
    let (log, replica) = logging_server(&dir, &["--enable-debug-command", "yes"]);
    let mut r = replica.client();
    q(&mut r, &["DEBUG", "POPULATE", "50", "old", "10"]);
    q(&mut r, &["SET", "mykey", "myvalue"]);
    q(
        &mut r,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=mylib\nredis.register_function{function_name='f', \
             callback=function() return 'old' end, flags={'no-writes'}}",
        ],
    );
    q(&mut r, &["CONFIG", "SET", "repl-diskless-load", "swapdb"]);
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    let _ = t.join();
    wait_within("the failure in the log", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|l| {
            l.contains("Failed trying to load the MASTER synchronization DB from socket")
        })
    });
    wait_within("the load to end", Duration::from_secs(20), || {
        info_int(&mut r, "loading") == 0
    });
    // The old dataset and functions are back, none of the new keys.
    assert_eq!(dbsize(&mut r), 51);
    let v: String = redis::cmd("GET").arg("mykey").query(&mut r).unwrap();
    assert_eq!(v, "myvalue");
    let f: String = redis::cmd("FCALL_RO")
        .arg("f")
        .arg(0)
        .query(&mut r)
        .unwrap();
    assert_eq!(f, "old");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("MASTER <-> REPLICA sync: Discarding temporary DB in background"));
}

#[test]
fn a_swapdb_load_of_another_history_replaces_the_dataset() {
    let rdb = rdb_of(300);
    let (port, t) = fake_master(sized_payload(&rdb, rdb.len()), false);
    let dir = common::TempDir::new("feed-swapdb-ok");
    let (log, replica) = logging_server(&dir, &["--enable-debug-command", "yes"]);
    let mut r = replica.client();
    q(&mut r, &["DEBUG", "POPULATE", "50", "old", "10"]);
    q(&mut r, &["CONFIG", "SET", "repl-diskless-load", "swapdb"]);
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    wait_within("the load", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Finished with success"))
    });
    assert_eq!(dbsize(&mut r), 300);
    let old: Option<String> = redis::cmd("GET").arg("old:0").query(&mut r).unwrap();
    assert_eq!(old, None);
    drop(replica);
    let _ = t.join();
}

#[test]
fn an_async_load_serves_the_old_data_until_the_swap_never_loading() {
    let master = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let replica = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let mut m = master.client();
    let mut r = replica.client();
    q(&mut m, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    q(&mut m, &["CONFIG", "SET", "rdbcompression", "no"]);
    q(&mut r, &["CONFIG", "SET", "repl-diskless-load", "swapdb"]);
    q(&mut r, &["CONFIG", "SET", "replica-read-only", "no"]);
    let port = master.port.to_string();
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_within("the first sync", Duration::from_secs(30), || {
        info_field(&mut r, "everything", "master_link_status") == "up"
    });
    // 20 MB, loaded at half a millisecond a key: seconds.
    q(&mut m, &["DEBUG", "POPULATE", "10000", "master", "2000"]);
    q(&mut r, &["SET", "mykey", "myvalue"]);
    q(&mut r, &["CONFIG", "SET", "key-load-delay", "500"]);
    // The same history, out of the backlog's reach: an async load.
    common::outrun_backlog(&mut m);
    wait_within("async_loading:1", Duration::from_secs(30), || {
        info_field(&mut r, "everything", "async_loading") == "1"
    });
    // Until the new dataset is in place, the old one answers, never
    // -LOADING (the parse runs while the payload arrives, aside).
    let started = Instant::now();
    let mut checks = 0;
    let mut saw_transfer = false;
    loop {
        let v: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("mykey").query(&mut r);
        match v {
            Ok(Some(v)) => assert_eq!(v, "myvalue"),
            Ok(None) => break,
            Err(e) => panic!("GET during the async load: {e}"),
        }
        checks += 1;
        if info_int(&mut m, "rdb_bgsave_in_progress") == 1 && checks > 10 {
            saw_transfer = true;
        }
        if started.elapsed() > Duration::from_secs(4) {
            // Long enough: let it finish.
            q(&mut r, &["CONFIG", "SET", "key-load-delay", "0"]);
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(checks > 10, "the old data was served {checks} times");
    // The master's transfer was paced by the slow load.
    assert!(saw_transfer);
    wait_within("the link", Duration::from_secs(30), || {
        info_field(&mut r, "everything", "master_link_status") == "up"
    });
    assert_eq!(info_field(&mut r, "everything", "async_loading"), "0");
    assert_eq!(dbsize(&mut r), 10010);
}
