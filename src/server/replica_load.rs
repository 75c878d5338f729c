//! A replica's diskless load (`repl-diskless-load`, see `replica_sync`):
//! the payload parsed from the link while it arrives (`rdb::feed`). In
//! place of the dataset (`on-empty-db`, or `swapdb` with another history,
//! the old data then kept aside and put back if the load fails), or, for
//! `swapdb` with the same history, into a dataset built aside while the
//! old one is served (`async_loading`), swapped in at the end.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::replica::{Conn, OFFSET, READ_OFFSET, STREAM_DB, current, with_link};
use super::replica_sync::RETRY_NOW;
use crate::persist::load::Streamed;
use crate::persist::rdb::feed::{Fill, Input};
use crate::server::Server;
use crate::store::Locks;
use crate::store::keyspace::SetAside;

/// Empties every database and the function libraries (the caller holds
/// every shard).
pub(super) fn flush_all(srv: &'static Server, locks: &mut Locks) {
    let lazy = srv.config.replica_lazy_flush.get();
    for db in 0..srv.ks.db_count() {
        srv.ks.flush_db(locks, db, lazy);
    }
    let functions = &srv.scripting.functions;
    if let Some(mut reg) = functions.try_lock_for(Duration::from_secs(2)) {
        reg.flush();
        functions.update_counts(&reg);
    }
}

/// Empties the dataset, every shard taken for the time it takes.
fn empty_dataset(srv: &'static Server) {
    let mut locks = all_shards(srv);
    flush_all(srv, &mut locks);
    locks.release();
}

/// The payload as the parser reads it: the link's bytes, at most `left`
/// of them when the payload is sized (what follows is the stream).
struct Payload<'c> {
    conn: &'c mut Conn,
    left: Option<u64>,
    read: i64,
}

impl<'c> Payload<'c> {
    fn new(conn: &'c mut Conn, size: i64) -> Payload<'c> {
        Payload {
            conn,
            left: u64::try_from(size).ok(),
            read: 0,
        }
    }
}

impl Input for Payload<'_> {
    fn fill(&mut self, buf: &mut Vec<u8>) -> Result<Fill, String> {
        if self.left == Some(0) {
            return Ok(Fill::End);
        }
        if self.conn.pos == self.conn.buf.len() && !self.conn.fill()? {
            // 100 ms without a byte.
            return Ok(Fill::Idle);
        }
        let avail = &self.conn.buf[self.conn.pos..];
        let n = self.left.map_or(avail.len(), |l| {
            avail.len().min(usize::try_from(l).unwrap_or(usize::MAX))
        });
        buf.extend_from_slice(&avail[..n]);
        self.conn.pos += n;
        if let Some(l) = &mut self.left {
            *l -= n as u64;
        }
        self.read += n as i64;
        let read = self.read;
        let _ = with_link(self.conn.generation, |l| l.transfer_read = read);
        Ok(Fill::Data)
    }
}

/// What became of the dataset a diskless load replaces.
pub(super) enum Old {
    /// Flushed (`on-empty-db`): a failed load leaves an empty dataset.
    Flushed,
    /// `swapdb`: kept aside with the function libraries' code, put back if
    /// the load fails (as Redis's swapdb keeps its old databases).
    Aside(SetAside, Vec<Vec<u8>>),
}

impl Old {
    /// Empties the dataset for the load; `None` if `swapdb` cannot keep
    /// it aside now (a snapshot runs).
    pub(super) fn prepare(srv: &'static Server, swapdb: bool) -> Option<Old> {
        if !swapdb {
            crate::notice!("MASTER <-> REPLICA sync: Flushing old data");
            empty_dataset(srv);
            return Some(Old::Flushed);
        }
        let mut locks = all_shards(srv);
        let aside = srv.ks.set_aside(&mut locks);
        let codes = srv.scripting.functions.codes();
        if aside.is_some() {
            flush_all(srv, &mut locks);
        }
        locks.release();
        Some(Old::Aside(aside?, codes))
    }

    /// The load failed: the old dataset back, or none.
    fn restore(self, srv: &'static Server) {
        match self {
            Old::Flushed => {
                empty_dataset(srv);
                forget_history(srv);
            }
            Old::Aside(aside, codes) => {
                crate::notice!("MASTER <-> REPLICA sync: Discarding temporary DB in background");
                swap_in(srv, aside, &codes);
            }
        }
    }

    /// The load succeeded: the old dataset is freed.
    fn discard(self) {
        if let Old::Aside(aside, _) = self {
            crate::notice!("MASTER <-> REPLICA sync: Swapping active DB with loaded DB");
            aside.discard(true);
            crate::notice!("MASTER <-> REPLICA sync: Discarding old DB in background");
        }
    }
}

/// A lock set holding every shard.
fn all_shards(srv: &'static Server) -> Locks {
    let mut locks = Locks::default();
    let mut batch = locks.batch(&srv.ks);
    batch.all_dbs();
    let _ = batch.take();
    locks
}

/// Puts `aside` in place of the dataset (freed in the background) and
/// `codes` in place of the function libraries, atomically for clients. A
/// snapshot running (its walk follows the tables it started with) is
/// waited for, the old data served meanwhile.
fn swap_in(srv: &'static Server, mut aside: SetAside, codes: &[Vec<u8>]) {
    loop {
        let mut locks = all_shards(srv);
        match srv.ks.put_back(&mut locks, aside, true) {
            Ok(()) => {
                let functions = &srv.scripting.functions;
                if let Some(mut reg) = functions.try_lock_for(Duration::from_secs(2)) {
                    reg.flush();
                    for code in codes {
                        if let Err(e) = reg.load(srv, code, true) {
                            crate::warning!("Failed loading a function library: {e}");
                        }
                    }
                    functions.update_counts(&reg);
                }
                locks.release();
                return;
            }
            Err(back) => {
                locks.release();
                aside = back;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A diskless load in place of the dataset (`on-empty-db` with no keys,
/// `swapdb` with another history): filled while the payload arrives,
/// clients answered `-LOADING` meanwhile. A failed load leaves an empty
/// dataset, or with `swapdb` the old one.
pub(super) fn load_from_socket(
    srv: &'static Server,
    conn: &mut Conn,
    size: i64,
    mark: Option<&[u8]>,
    old: Old,
) -> Result<(), String> {
    let generation = conn.generation;
    srv.persist.loading.begin(size.max(0) as u64);
    crate::notice!("MASTER <-> REPLICA sync: Loading DB in memory");
    let mut input = Payload::new(conn, size);
    // No shard is held: each key takes its shard briefly, so INFO and the
    // like never wait for the link.
    let mut locks = Locks::default();
    let loaded = crate::persist::load::load_stream(srv, &mut locks, &mut input);
    let r = finish(input, loaded.map(|s| (s, ())), mark, generation);
    let r = match r {
        Ok((db, ())) => {
            old.discard();
            STREAM_DB.store(db.unwrap_or(0), Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            old.restore(srv);
            Err(e)
        }
    };
    srv.persist.loading.end();
    srv.persist.dirty.store(0, Ordering::Relaxed);
    r.map(|()| after_load(srv))
}

/// `swapdb` loading the same history again: the payload goes into a
/// dataset built aside while clients are served the old one
/// (`async_loading`), swapped in whole at the end; a failed load
/// discards it and keeps the old.
pub(super) fn load_async(
    srv: &'static Server,
    conn: &mut Conn,
    size: i64,
    mark: Option<&[u8]>,
) -> Result<(), String> {
    let generation = conn.generation;
    crate::notice!("MASTER <-> REPLICA sync: Loading DB in memory");
    let mut aside = SetAside::empty(&srv.ks);
    let mut input = Payload::new(conn, size);
    let loaded = crate::persist::load::load_stream_aside(srv, &mut aside, &mut input);
    match finish(input, loaded, mark, generation) {
        Ok((db, codes)) => {
            crate::notice!("MASTER <-> REPLICA sync: Swapping active DB with loaded DB");
            swap_in(srv, aside, &codes);
            crate::notice!("MASTER <-> REPLICA sync: Discarding old DB in background");
            STREAM_DB.store(db.unwrap_or(0), Ordering::Relaxed);
            srv.persist.dirty.store(0, Ordering::Relaxed);
            after_load(srv);
            Ok(())
        }
        Err(e) => {
            crate::notice!("MASTER <-> REPLICA sync: Discarding temporary DB in background");
            aside.discard(true);
            Err(e)
        }
    }
}

/// After the parser: a sized payload's bytes past the file skipped, an
/// end mark checked, a failure logged in Redis's words (and the next
/// attempt made at once); the `repl-stream-db` the payload named.
fn finish<T>(
    mut input: Payload<'_>,
    loaded: Result<(Streamed, T), crate::persist::rdb::Error>,
    mark: Option<&[u8]>,
    generation: u64,
) -> Result<(Option<usize>, T), String> {
    let r = match loaded {
        Ok((done, extra)) => {
            let mut skip = Vec::new();
            let mut r = Ok(Fill::Data);
            while input.left.is_some_and(|l| l > 0) && r.is_ok() {
                skip.clear();
                r = input.fill(&mut skip);
            }
            r.and_then(|_| check_mark(input.conn, done.rest, mark))
                .map(|()| (done.stream_db, extra))
        }
        Err(e) => {
            crate::warning!(
                "Internal error in RDB reading offset {} -> {}",
                e.offset,
                e.msg
            );
            crate::warning!(
                "Failed trying to load the MASTER synchronization DB from socket, check server logs."
            );
            Err(format!(
                "Failed trying to load the MASTER synchronization DB from socket: {e}"
            ))
        }
    };
    let r = r.and_then(|v| {
        if current(generation) {
            Ok(v)
        } else {
            Err("Replication link replaced".to_string())
        }
    });
    if r.is_err() {
        // As Redis after a failed transfer: the next attempt at once.
        RETRY_NOW.store(true, Ordering::Relaxed);
    }
    r
}

/// After a `$EOF:<mark>` payload: the mark, read past the file (the
/// parser's extra bytes first); what follows it stays for the stream.
fn check_mark(conn: &mut Conn, rest: Vec<u8>, mark: Option<&[u8]>) -> Result<(), String> {
    let Some(mark) = mark else {
        return Ok(());
    };
    let mut buf = rest;
    buf.extend_from_slice(&conn.buf[conn.pos..]);
    conn.buf = buf;
    conn.pos = 0;
    while conn.buf.len() < mark.len() {
        conn.fill()?;
    }
    if &conn.buf[..mark.len()] != mark {
        crate::warning!("Replication stream EOF marker is broken");
        return Err("Replication stream EOF marker is broken".into());
    }
    conn.pos = mark.len();
    Ok(())
}

/// The dataset is empty after a failed load: no offset of any history
/// describes it.
pub(super) fn forget_history(srv: &'static Server) {
    OFFSET.store(0, Ordering::Relaxed);
    READ_OFFSET.store(0, Ordering::Relaxed);
    crate::server::repl::adopt(srv, &crate::server::random_hex(40), 0);
}

/// A payload loaded: this server's own replicas sync again, the AOF is
/// rewritten from the new data.
pub(super) fn after_load(srv: &'static Server) {
    crate::server::repl::disconnect_all();
    if srv.config.appendonly.get() {
        let _ = crate::persist::aof::bgrewriteaof(srv, false);
    }
    crate::notice!("MASTER <-> REPLICA sync: Finished with success");
}
