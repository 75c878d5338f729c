//! Restarts that keep the replication history (Redis 7.0's RDB aux fields
//! `repl-stream-db`, `repl-id`, `repl-offset`): a master restarted on its
//! RDB continues its replicas (`+CONTINUE`, no full sync), counting the
//! DELs of the keys that expired meanwhile into its stream; too many of
//! them for the backlog and the replica synchronizes in full; a replica
//! restarted on its RDB continues with its master.

mod common;

use std::time::Duration;

use common::{
    Server, TempDir, digest, follow, info_field, info_num, q, wait_acked, wait_applied, wait_for,
    wait_link_up,
};

const DBG: &[&str] = &["--enable-debug-command", "yes"];

/// The replica applied the whole stream and the master knows it (its ack
/// arrived: a SHUTDOWN then does not wait, nor send REPLCONF GETACK, which
/// would move the offset the RDB records).
fn in_sync(m: &mut redis::Connection, r: &mut redis::Connection) {
    wait_applied(m, r);
    wait_acked(m, 1);
}

/// SHUTDOWN SAVE, then waits for the process to end.
fn shutdown_save(mut srv: Server) {
    let mut c = srv.client();
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut c);
    wait_for("the server to exit", || !srv.alive());
}

/// Sets `n` keys (over the 16 databases) that expire in 10 ms, with
/// active expiry off, so they are still there (logically expired) when
/// the master saves.
fn expiring_keys(m: &mut redis::Connection, n: usize) {
    q(m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for j in 0..n {
        q(m, &["SELECT", &(j % 16).to_string()]);
        q(m, &["SET", &j.to_string(), "somevalue", "PX", "10"]);
    }
    q(m, &["SELECT", "0"]);
    std::thread::sleep(Duration::from_millis(30));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_restarted_master_continues_its_replicas_history() {
    let dir = TempDir::new("repl-restart-master");
    let master = Server::start_in(Some(dir.path()), None, DBG);
    let replica = Server::start_with(DBG);
    let mut m = master.client();
    let mut r = replica.client();
    follow(&mut r, master.port);
    q(&mut m, &["SELECT", "3"]);
    q(&mut m, &["SET", "a", "b"]);
    q(&mut m, &["RPUSH", "l", "1", "2"]);
    q(&mut m, &["SELECT", "0"]);
    expiring_keys(&mut m, 20);
    in_sync(&mut m, &mut r);
    let id = info_field(&mut m, "replication", "master_replid");
    let off = info_num(&mut m, "replication", "master_repl_offset");
    shutdown_save(master);

    // The fields as redis-server 7.0.15 writes them: after `used-mem`,
    // before `aof-base`, the integers int-encoded.
    let rdb = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    let mut want = b"\xfa\x07repl-id\x28".to_vec();
    want.extend_from_slice(id.as_bytes());
    want.extend_from_slice(b"\xfa\x0brepl-offset");
    assert!(contains(&rdb, &want), "no repl-id/repl-offset");
    assert!(
        contains(&rdb, b"\xfa\x0erepl-stream-db\xc0"),
        "no stream db"
    );
    let at = |n: &[u8]| rdb.windows(n.len()).position(|w| w == n).unwrap();
    assert!(at(b"used-mem") < at(b"repl-stream-db"));
    assert!(at(b"repl-offset") < at(b"aof-base"));

    let master = Server::start_in(Some(dir.path()), None, DBG);
    let mut m = master.client();
    // A new id; the saved one is the second, valid up to where it ended;
    // the 20 DELs are the stream since, all in the backlog.
    assert_ne!(info_field(&mut m, "replication", "master_replid"), id);
    assert_eq!(info_field(&mut m, "replication", "master_replid2"), id);
    assert_eq!(
        info_num(&mut m, "replication", "second_repl_offset"),
        off + 1
    );
    assert_eq!(
        info_num(&mut m, "persistence", "rdb_last_load_keys_expired"),
        20
    );
    let hist = info_num(&mut m, "replication", "repl_backlog_histlen");
    assert!(hist > 0);
    assert_eq!(
        info_field(&mut m, "replication", "repl_backlog_active"),
        "1"
    );
    assert_eq!(
        info_num(&mut m, "replication", "repl_backlog_first_byte_offset"),
        off + 1
    );
    assert_eq!(
        info_num(&mut m, "replication", "master_repl_offset"),
        off + hist
    );

    follow(&mut r, master.port);
    in_sync(&mut m, &mut r);
    assert_eq!(info_num(&mut m, "stats", "sync_partial_ok"), 1);
    assert_eq!(info_num(&mut m, "stats", "sync_full"), 0);
    // The replica got the DELs: both hold the same keys.
    assert_eq!(digest(&mut m), digest(&mut r));
    q(&mut r, &["SELECT", "3"]);
    let v: String = redis::cmd("GET").arg("a").query(&mut r).unwrap();
    assert_eq!(v, "b");
    // And the stream goes on.
    q(&mut m, &["SET", "after", "1"]);
    in_sync(&mut m, &mut r);
    q(&mut r, &["SELECT", "0"]);
    let v: String = redis::cmd("GET").arg("after").query(&mut r).unwrap();
    assert_eq!(v, "1");
}

#[test]
fn too_many_expired_keys_for_the_backlog_mean_a_full_sync() {
    let dir = TempDir::new("repl-restart-full");
    let extra = [DBG[0], DBG[1], "--repl-backlog-size", "16384"];
    let master = Server::start_in(Some(dir.path()), None, &extra);
    let replica = Server::start_with(DBG);
    let mut m = master.client();
    let mut r = replica.client();
    follow(&mut r, master.port);
    expiring_keys(&mut m, 1024);
    in_sync(&mut m, &mut r);
    shutdown_save(master);

    let master = Server::start_in(Some(dir.path()), None, &extra);
    let mut m = master.client();
    assert!(
        info_num(&mut m, "replication", "repl_backlog_first_byte_offset")
            > info_num(&mut m, "replication", "second_repl_offset")
    );
    follow(&mut r, master.port);
    assert_eq!(info_num(&mut m, "stats", "sync_partial_ok"), 0);
    assert_eq!(info_num(&mut m, "stats", "sync_full"), 1);
    in_sync(&mut m, &mut r);
    assert_eq!(digest(&mut m), digest(&mut r));
}

#[test]
fn a_restarted_replica_continues_with_its_master() {
    let dir = TempDir::new("repl-restart-replica");
    let master = Server::start_with(DBG);
    let mut m = master.client();
    let replica = Server::start_in(Some(dir.path()), None, DBG);
    let mut r = replica.client();
    follow(&mut r, master.port);
    q(&mut m, &["SELECT", "2"]);
    q(&mut m, &["SET", "k", "v"]);
    in_sync(&mut m, &mut r);
    q(&mut m, &["CONFIG", "RESETSTAT"]);
    assert_eq!(info_num(&mut m, "stats", "sync_full"), 0);
    shutdown_save(replica);
    // Written while it is down: the backlog has it.
    q(&mut m, &["SET", "k2", "v2"]);

    let port = master.port.to_string();
    let replica = Server::start_in(
        Some(dir.path()),
        None,
        &[DBG[0], DBG[1], "--replicaof", "127.0.0.1", &port],
    );
    let mut r = replica.client();
    wait_link_up(&mut r);
    in_sync(&mut m, &mut r);
    assert_eq!(info_num(&mut m, "stats", "sync_partial_ok"), 1);
    assert_eq!(info_num(&mut m, "stats", "sync_full"), 0);
    q(&mut r, &["SELECT", "2"]);
    let v: String = redis::cmd("GET").arg("k2").query(&mut r).unwrap();
    assert_eq!(v, "v2");
    // The stream after it, in the database it was in (no SELECT came).
    q(&mut m, &["SET", "k3", "v3"]);
    in_sync(&mut m, &mut r);
    let v: String = redis::cmd("GET").arg("k3").query(&mut r).unwrap();
    assert_eq!(v, "v3");
}

#[test]
fn bgsave_names_the_offset_of_its_image_and_a_lone_master_names_none() {
    let dir = TempDir::new("repl-restart-bgsave");
    let master = Server::start_in(Some(dir.path()), None, DBG);
    let mut m = master.client();
    q(&mut m, &["SET", "k", "v"]);
    q(&mut m, &["SAVE"]);
    // No replica ever: no history to continue.
    let rdb = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    assert!(!contains(&rdb, b"repl-id"));
    assert!(contains(&rdb, b"aof-base"));

    let replica = Server::start_with(DBG);
    let mut r = replica.client();
    // No PING moves the offset between reading it and the save.
    q(
        &mut m,
        &["CONFIG", "SET", "repl-ping-replica-period", "3600"],
    );
    follow(&mut r, master.port);
    q(&mut m, &["SET", "k2", "v2"]);
    in_sync(&mut m, &mut r);
    let off = info_num(&mut m, "replication", "master_repl_offset");
    q(&mut m, &["BGSAVE"]);
    wait_for("the BGSAVE", || {
        info_field(&mut m, "persistence", "rdb_bgsave_in_progress") == "0"
            && info_field(&mut m, "persistence", "rdb_last_bgsave_status") == "ok"
            && contains(
                &std::fs::read(dir.path().join("dump.rdb")).unwrap_or_default(),
                b"repl-id",
            )
    });
    let rdb = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    let id = info_field(&mut m, "replication", "master_replid");
    assert!(contains(&rdb, id.as_bytes()));
    // The offset, as Redis writes an integer string (one to four bytes).
    let mut want = b"\xfa\x0brepl-offset".to_vec();
    match off {
        0..=127 => want.extend_from_slice(&[0xc0, off as u8]),
        128..=32767 => {
            want.push(0xc1);
            want.extend_from_slice(&(off as i16).to_le_bytes());
        }
        _ => {
            want.push(0xc2);
            want.extend_from_slice(&(off as i32).to_le_bytes());
        }
    }
    assert!(contains(&rdb, &want), "offset {off}");
}
