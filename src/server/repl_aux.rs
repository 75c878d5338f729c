//! The replication history an RDB file carries, as Redis 7.0 keeps it:
//! the aux fields `repl-stream-db`, `repl-id` and `repl-offset`, written
//! by every save (SAVE, BGSAVE, SHUTDOWN, payloads for replicas; not an
//! AOF's RDB base) while this server has a history to continue: a master
//! with a backlog, or a replica.
//!
//! At start-up a file that names one is taken up again. A master keeps
//! the saved history as its second id (valid up to the saved offset), so
//! its replicas continue with `+CONTINUE` instead of a full
//! synchronization; the keys found expired while loading are deleted and
//! their DELs counted into the stream and its backlog (the replicas still
//! hold them), so a replica whose offset the backlog no longer reaches
//! synchronizes in full. A replica takes the saved id and offset as its
//! own, to continue from them with its master.

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::persist::aof::encode;
use crate::persist::rdb::write;
use crate::server::Server;

/// What a save names: the database the stream is in, the history's id,
/// and the offset the dataset stands at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveInfo {
    pub stream_db: usize,
    pub replid: String,
    pub offset: i64,
}

/// The history an RDB written now carries (`None`: a master that never
/// had a replica, which has none to continue).
pub fn save_info() -> Option<SaveInfo> {
    use crate::server::{repl, replica};
    if replica::is_replica() {
        return Some(SaveInfo {
            stream_db: replica::stream_db(),
            replid: repl::ids().replid,
            offset: replica::offset(),
        });
    }
    if !repl::backlog_info().0 {
        return None;
    }
    Some(SaveInfo {
        // No record sent since the last sync: the next one selects its
        // database, so any will do (Redis writes 0).
        stream_db: repl::stream_db().unwrap_or(0),
        replid: repl::ids().replid,
        offset: repl::master_offset(),
    })
}

/// The three aux fields, in Redis's order (after `used-mem`, before
/// `aof-base`).
pub fn write_fields(out: &mut Vec<u8>, info: &SaveInfo) {
    let db = itoa::Buffer::new().format(info.stream_db).to_owned();
    let off = itoa::Buffer::new().format(info.offset).to_owned();
    write::write_aux(out, b"repl-stream-db", db.as_bytes());
    write::write_aux(out, b"repl-id", info.replid.as_bytes());
    write::write_aux(out, b"repl-offset", off.as_bytes());
}

/// What the start-up load collects: the fields as read, and the stream
/// of DELs for the keys found expired (only its last `cap` bytes kept:
/// the backlog's share; `len` counts all of it).
struct Collected {
    stream_db: Option<i64>,
    replid: Option<Vec<u8>>,
    offset: Option<i64>,
    dels: VecDeque<u8>,
    len: i64,
    cap: usize,
    db: Option<usize>,
    unlink: bool,
    /// A master feeds the DELs; a replica's master sends its own.
    feed: bool,
}

static LOAD: Mutex<Option<Collected>> = Mutex::new(None);

/// Whether the `replicaof` directive makes this server a replica.
fn configured_replica(srv: &Server) -> bool {
    let v = srv.config.replicaof.get();
    let mut w = v.split_whitespace();
    matches!((w.next(), w.next()), (Some(h), Some(_)) if !h.eq_ignore_ascii_case("no"))
}

/// The start-up load begins: collect the fields and expired keys.
pub fn begin_load(srv: &Server) {
    *LOAD.lock() = Some(Collected {
        stream_db: None,
        replid: None,
        offset: None,
        dels: VecDeque::new(),
        len: 0,
        cap: srv.config.repl_backlog_size.get().max(1) as usize,
        db: None,
        unlink: srv.config.lazyfree_lazy_expire.get(),
        feed: !configured_replica(srv),
    });
}

fn int(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// An aux field read by a load (kept only during the start-up load).
pub fn loaded_aux(name: &[u8], value: &[u8]) {
    let mut load = LOAD.lock();
    let Some(c) = load.as_mut() else { return };
    match name {
        b"repl-stream-db" => c.stream_db = int(value),
        b"repl-id" => c.replid = Some(value.to_vec()),
        b"repl-offset" => c.offset = int(value),
        _ => {}
    }
}

/// A key the load dropped as expired: a master counts its DEL into the
/// stream (as Redis feeds its backlog while loading).
pub fn loaded_expired(db: usize, key: &[u8]) {
    let mut load = LOAD.lock();
    let Some(c) = load.as_mut().filter(|c| c.feed) else {
        return;
    };
    let mut frame = Vec::new();
    if c.db != Some(db) {
        encode::select(&mut frame, db);
        c.db = Some(db);
    }
    let cmd: &[u8] = if c.unlink { b"UNLINK" } else { b"DEL" };
    encode::command(&mut frame, [cmd, key].into_iter());
    c.len += frame.len() as i64;
    if frame.len() >= c.cap {
        c.dels.clear();
        c.dels.extend(&frame[frame.len() - c.cap..]);
    } else {
        c.dels.extend(&frame);
        let excess = c.dels.len().saturating_sub(c.cap);
        c.dels.drain(..excess);
    }
}

/// The start-up load ended (`ok`: it succeeded): a valid history found in
/// the file is taken up again; otherwise nothing changes (the DELs go
/// with it: no replica can continue anyway).
pub fn end_load(srv: &'static Server, ok: bool) {
    let Some(c) = LOAD.lock().take() else { return };
    if !ok {
        return;
    }
    let (Some(db), Some(id), Some(offset)) = (c.stream_db, c.replid, c.offset) else {
        return;
    };
    let Ok(id) = String::from_utf8(id) else {
        return;
    };
    // A history id is 40 hex digits; an offset of -1 or a database of -1
    // (older servers wrote those) names no history.
    if id.len() != 40
        || !id.bytes().all(|b| b.is_ascii_hexdigit())
        || offset < 0
        || db < 0
        || db as usize >= srv.ks.db_count()
    {
        return;
    }
    if c.feed {
        let dels: Vec<u8> = c.dels.into_iter().collect();
        crate::server::repl::resume_master(srv, &id, offset, &dels, c.len, c.db);
    } else {
        crate::server::repl::resume_replica(&id, offset, db as usize);
    }
}
