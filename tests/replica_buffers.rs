//! A master's buffers for a replica that stops reading (Redis's suite,
//! unit/maxmemory "slave buffer are counted correctly"): the stream waits
//! within the `replica` class's output limit, and counts as replica memory
//! (INFO `mem_clients_slaves`), which key eviction leaves out.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Server, follow, info_field, info_num, q, resp, wait_for};

/// Stops a process until dropped.
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        // SAFETY: signals a child process this test started.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

/// Used memory less what eviction leaves out.
fn counted_for_eviction(m: &mut redis::Connection) -> i64 {
    info_num(m, "memory", "used_memory") - info_num(m, "memory", "mem_not_counted_for_evict")
}

/// A master (started with `master_args`) and its online replica, the
/// `replica` output limit at 100 MB; `before_sync` runs on the master
/// before the replica follows it.
fn master_with_replica(
    master_args: &[&str],
    before_sync: impl FnOnce(&mut redis::Connection),
) -> (Server, Server, redis::Connection, redis::Connection) {
    let master = Server::start_with(master_args);
    let replica_srv = Server::start();
    let mut m = master.client();
    let mut r = replica_srv.client();
    q(
        &mut m,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 100000000 100000000 300",
        ],
    );
    before_sync(&mut m);
    follow(&mut r, master.port);
    wait_for("the replica online", || {
        info_field(&mut m, "replication", "slave0").contains("state=online")
    });
    (master, replica_srv, m, r)
}

#[test]
fn a_stopped_replica_keeps_its_stream_within_the_replica_limit_counted_as_replica_memory() {
    let (master, mut replica_srv, mut m, mut r) = master_with_replica(&[], |m| {
        q(m, &["SET", "k", "v"]);
    });
    let before = counted_for_eviction(&mut m);
    let stopped = Stopped::new(replica_srv.pid());
    // About 47 MB of stream: past the pubsub class's 32 MiB hard limit,
    // under the replica class's 100 MB. The replies are read as they come.
    let mut w = master.raw();
    let mut rd = w.0.try_clone().unwrap();
    let n = 45_000;
    let reader = std::thread::spawn(move || {
        let want = n * ":1000\r\n".len();
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 16];
        while got < want {
            match rd.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        got
    });
    let value = vec![b'A'; 1000];
    let cmd = resp(&[b"SETRANGE", b"k", b"0", &value]);
    for _ in 0..n {
        w.0.write_all(&cmd).unwrap();
    }
    assert_eq!(reader.join().unwrap(), n * ":1000\r\n".len());
    // The outboxes are checked against their limits once a second.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(info_num(&mut m, "replication", "connected_slaves"), 1);
    let replicas = info_num(&mut m, "memory", "mem_clients_slaves");
    assert!(replicas > 32 << 20, "mem_clients_slaves {replicas}");
    // What the replica has not read is no memory eviction counts.
    let grown = counted_for_eviction(&mut m) - before;
    assert!(grown < 8 << 20, "grew by {grown} besides replica buffers");
    drop(stopped);
    wait_for("the replica to catch up", || {
        let v: Option<String> = redis::cmd("GET").arg("k").query(&mut r).unwrap();
        v.is_some_and(|v| v.len() == 1000)
    });
    assert!(replica_srv.alive());
}

#[test]
fn killing_a_stopped_replica_frees_its_buffers_before_client_kill_replies() {
    let (_master, replica_srv, mut m, _r) = master_with_replica(&[], |m| {
        q(m, &["SET", "k", "v"]);
    });
    let _stopped = Stopped::new(replica_srv.pid());
    // About 10 MB of stream the replica does not read.
    let value = vec![b'A'; 1000];
    let mut p = redis::pipe();
    for _ in 0..10_000 {
        p.cmd("SETRANGE").arg("k").arg(0).arg(&value).ignore();
    }
    let _: () = p.query(&mut m).unwrap();
    wait_for("the stream to wait in the master", || {
        info_num(&mut m, "memory", "mem_clients_slaves") > 4 << 20
    });
    let before = counted_for_eviction(&mut m);
    // Redis frees a killed client before CLIENT KILL replies: an INFO
    // right behind it (in the same read) finds its memory gone.
    let (killed, memory): (i64, String) = redis::pipe()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .cmd("INFO")
        .arg("memory")
        .query(&mut m)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(memory.contains("\r\nmem_clients_slaves:0\r\n"), "{memory}");
    let after = counted_for_eviction(&mut m);
    assert!(
        (after - before).abs() < 1 << 20,
        "used memory less replica buffers moved by {}",
        after - before
    );
}

#[test]
fn a_stopped_replicas_stream_evicts_no_keys() {
    // Redis's suite, unit/maxmemory "replica buffer don't induce
    // eviction": with a limit 32 KiB over what keys and clients use, a
    // stream the stopped replica does not read must never count as keys'
    // memory, also while the replica's connection moves it from its outbox
    // into its own buffer (on another worker).
    let (_master, replica_srv, mut m, _r) =
        master_with_replica(&["--maxmemory-policy", "allkeys-random"], |m| {
            q(m, &["CONFIG", "SET", "repl-backlog-size", "10240"]);
            for j in 0..100 {
                q(m, &["SETRANGE", &format!("key:{j}"), "10000", "asdf"]);
            }
        });
    let limit = counted_for_eviction(&mut m) + 32 * 1024;
    q(&mut m, &["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    let _stopped = Stopped::new(replica_srv.pid());
    let value = "A".repeat(100);
    for _ in 0..30_000 {
        q(&mut m, &["SETRANGE", "key:0", "0", &value]);
    }
    assert_eq!(info_num(&mut m, "stats", "evicted_keys"), 0);
    assert_eq!(q(&mut m, &["DBSIZE"]), redis::Value::Int(100));
}
