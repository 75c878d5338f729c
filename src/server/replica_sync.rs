//! A replica's full synchronization (`server::replica`). With
//! `repl-diskless-load disabled` (or `on-empty-db` with keys) the payload
//! is received into a temp file renamed over `dbfilename`, then loaded in
//! place of the dataset. Diskless, it is parsed from the link while it
//! arrives (`replica_load`, `rdb::feed`): the replica holds about one
//! record at a time, and `key-load-delay` slows its reading, so a slow
//! replica paces the master's transfer, as in Redis.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use super::replica::{Conn, STREAM_DB, State, current, with_link};
use super::replica_load::{
    Old, after_load, flush_all, forget_history, load_async, load_from_socket,
};
use crate::server::{Server, now_ms};
use crate::store::Locks;

/// True while a full synchronization loads asynchronously (INFO
/// `async_loading`): the old dataset is served meanwhile.
static ASYNC_LOADING: AtomicBool = AtomicBool::new(false);
/// Set by a failed transfer: the link is made again at once, not after
/// the usual second (as Redis reconnects after a failed transfer).
pub(super) static RETRY_NOW: AtomicBool = AtomicBool::new(false);

/// Whether a full synchronization is loading asynchronously (INFO
/// `async_loading:1`; commands flagged `no-async-loading` get -LOADING).
#[inline]
pub fn async_loading() -> bool {
    ASYNC_LOADING.load(Ordering::Relaxed)
}

/// How the payload is loaded, from `repl-diskless-load` as Redis 7.0
/// chooses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LoadMode {
    /// `disabled` (or `on-empty-db` with keys): to disk, then loaded.
    Disk,
    /// Diskless: `loading` from the first byte.
    Blocking,
    /// `swapdb` with the master's id our own (the same history): the old
    /// dataset served until the new one replaces it.
    Async,
}

impl LoadMode {
    fn choose(srv: &Server, master_id: &str) -> LoadMode {
        let mode = srv.config.repl_diskless_load.name();
        let empty = || (0..srv.ks.db_count()).all(|db| srv.ks.db(db).sizes().0 == 0);
        match mode {
            "swapdb" if crate::server::repl::ids().replid == master_id => LoadMode::Async,
            "swapdb" => LoadMode::Blocking,
            "on-empty-db" if empty() => LoadMode::Blocking,
            _ => LoadMode::Disk,
        }
    }

    /// Enters the state clients see during the transfer; left when the
    /// guard drops.
    fn begin(self, srv: &'static Server, size: i64) -> TransferState {
        match self {
            LoadMode::Disk => {}
            LoadMode::Blocking => srv.persist.loading.begin(size.max(0) as u64),
            LoadMode::Async => ASYNC_LOADING.store(true, Ordering::Relaxed),
        }
        TransferState { srv, mode: self }
    }
}

struct TransferState {
    srv: &'static Server,
    mode: LoadMode,
}

impl Drop for TransferState {
    fn drop(&mut self) {
        match self.mode {
            LoadMode::Disk => {}
            LoadMode::Blocking => self.srv.persist.loading.end(),
            LoadMode::Async => ASYNC_LOADING.store(false, Ordering::Relaxed),
        }
    }
}

/// Takes the payload after `+FULLRESYNC` and loads it in place of the
/// dataset: parsed from the link (diskless), or received into a temp file
/// renamed over `dbfilename`, then loaded.
pub(super) fn full_sync(
    srv: &'static Server,
    conn: &mut Conn,
    master_id: &str,
) -> Result<(), String> {
    let generation = conn.generation;
    let _ = with_link(generation, |l| {
        l.state = State::Transfer;
        l.transfer_size = -1;
        l.transfer_read = 0;
    });
    // The master sends newlines to keep the link alive while it prepares.
    let head = loop {
        let l = conn.line()?;
        if !l.is_empty() {
            break l;
        }
    };
    if head.starts_with('-') {
        return Err(format!("MASTER aborted replication with an error: {head}"));
    }
    let Some(spec) = head.strip_prefix('$') else {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{head}'), are you sure the host and port are right?"
        ));
    };
    let mark = spec.strip_prefix("EOF:").map(|m| m.as_bytes().to_vec());
    let size = match &mark {
        Some(m) if m.len() == 40 => -1,
        Some(_) => return Err(format!("Bad EOF mark from MASTER: {head}")),
        None => spec
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("Bad payload size from MASTER: {head}"))?,
    };
    let _ = with_link(generation, |l| l.transfer_size = size);
    let mode = LoadMode::choose(srv, master_id);
    let target = if mode == LoadMode::Disk {
        "to disk"
    } else {
        "to parser"
    };
    if size < 0 {
        crate::notice!(
            "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF {target}"
        );
    } else {
        crate::notice!("MASTER <-> REPLICA sync: receiving {size} bytes from master {target}");
    }
    if mode == LoadMode::Async {
        let _async_loading = mode.begin(srv, size);
        return load_async(srv, conn, size, mark.as_deref());
    }
    if mode == LoadMode::Blocking {
        let swapdb = srv.config.repl_diskless_load.name() == "swapdb";
        // With a snapshot running the old data cannot be moved aside: a
        // `swapdb` load then goes through a temp file, as before.
        if let Some(old) = Old::prepare(srv, swapdb) {
            // A blocking load is one task for the watchdog.
            let _busy = crate::watchdog::busy();
            return load_from_socket(srv, conn, size, mark.as_deref(), old);
        }
    }
    let path = crate::persist::save::rdb_path(srv);
    let dir = std::path::Path::new(&path)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        "temp-{}.{}.rdb",
        now_ms() / 1000,
        std::process::id()
    ));
    // Diskless here only for `swapdb` while a snapshot runs: `loading`
    // from the first byte, the old data kept if the transfer fails.
    let _loading = mode.begin(srv, size);
    // A blocking load is one task for the watchdog, the load included.
    let _busy = (mode == LoadMode::Blocking).then(crate::watchdog::busy);
    if mode != LoadMode::Disk {
        crate::notice!("MASTER <-> REPLICA sync: Loading DB in memory");
    }
    let r = receive(conn, &tmp, size, mark.as_deref());
    if let Err(e) = &r
        && mode != LoadMode::Disk
    {
        let read = with_link(generation, |l| l.transfer_read).unwrap_or(0);
        crate::warning!(
            "Internal error in RDB reading offset {read} -> Unexpected EOF reading RDB file ({e})"
        );
        crate::warning!(
            "Failed trying to load the MASTER synchronization DB from socket, check server logs."
        );
        // As Redis after a failed transfer: the next attempt at once.
        RETRY_NOW.store(true, Ordering::Relaxed);
    }
    let r = r.and_then(|()| {
        std::fs::rename(&tmp, &path).map_err(|e| {
            format!("Failed trying to rename the temp DB into {path} in MASTER <-> REPLICA synchronization: {e}")
        })
    });
    let r = r.and_then(|()| {
        if current(generation) {
            Ok(())
        } else {
            Err("Replication link replaced".to_string())
        }
    });
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    drop(_loading);
    STREAM_DB.store(stream_db_of(&path).unwrap_or(0), Ordering::Relaxed);
    crate::notice!("MASTER <-> REPLICA sync: Flushing old data");
    if mode == LoadMode::Disk {
        crate::notice!("MASTER <-> REPLICA sync: Loading DB in memory");
    }
    if let Err(e) = load(srv, &path) {
        forget_history(srv);
        return Err(e);
    }
    after_load(srv);
    Ok(())
}

/// The `repl-stream-db` aux field among those at the start of the RDB
/// file at `path`, if any.
fn stream_db_of(path: &str) -> Option<usize> {
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let data = head.get(..n)?;
    let mut pos = 9; // "REDIS" and four version digits
    if !data.starts_with(b"REDIS") {
        return None;
    }
    while data.get(pos) == Some(&0xFA) {
        let (name, next) = rdb_string(data, pos + 1)?;
        let (value, next) = rdb_string(data, next)?;
        if name == b"repl-stream-db" {
            return std::str::from_utf8(&value).ok()?.parse().ok();
        }
        pos = next;
    }
    None
}

/// One RDB string at `pos` (plain or integer-encoded; others: `None`)
/// and the position after it.
fn rdb_string(data: &[u8], pos: usize) -> Option<(Vec<u8>, usize)> {
    let b = *data.get(pos)?;
    let (len, at) = match b >> 6 {
        0 => (usize::from(b & 0x3F), pos + 1),
        1 => (
            (usize::from(b & 0x3F) << 8) | usize::from(*data.get(pos + 1)?),
            pos + 2,
        ),
        2 if b == 0x80 => {
            let v = data.get(pos + 1..pos + 5)?;
            (u32::from_be_bytes(v.try_into().ok()?) as usize, pos + 5)
        }
        3 => {
            let (v, at) = match b & 0x3F {
                0 => (i64::from(*data.get(pos + 1)? as i8), pos + 2),
                1 => {
                    let v = data.get(pos + 1..pos + 3)?;
                    (i64::from(i16::from_le_bytes(v.try_into().ok()?)), pos + 3)
                }
                2 => {
                    let v = data.get(pos + 1..pos + 5)?;
                    (i64::from(i32::from_le_bytes(v.try_into().ok()?)), pos + 5)
                }
                _ => return None,
            };
            return Some((v.to_string().into_bytes(), at));
        }
        _ => return None,
    };
    Some((data.get(at..at + len)?.to_vec(), at + len))
}

/// Copies the payload (the buffered bytes first) into `tmp`.
fn receive(
    conn: &mut Conn,
    tmp: &std::path::Path,
    size: i64,
    mark: Option<&[u8]>,
) -> Result<(), String> {
    let mut file = std::fs::File::create(tmp).map_err(|e| {
        format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}")
    })?;
    let write_err = |e: std::io::Error| {
        format!(
            "Write error or short write writing to the DB dump file needed for MASTER <-> REPLICA synchronization: {e}"
        )
    };
    let mut left = size;
    let mut read: i64 = 0;
    loop {
        let avail = conn.buf.len() - conn.pos;
        if avail > 0 {
            match mark {
                None => {
                    let n = avail.min(left as usize);
                    file.write_all(&conn.buf[conn.pos..conn.pos + n])
                        .map_err(write_err)?;
                    conn.pos += n;
                    left -= n as i64;
                    read += n as i64;
                }
                Some(m) => {
                    // The last 40 bytes may be the mark: keep them back.
                    let pending = &conn.buf[conn.pos..];
                    if pending.len() >= m.len() && pending.ends_with(m) {
                        let body = pending.len() - m.len();
                        file.write_all(&pending[..body]).map_err(write_err)?;
                        conn.pos = conn.buf.len();
                        break;
                    }
                    let body = pending.len().saturating_sub(m.len());
                    file.write_all(&pending[..body]).map_err(write_err)?;
                    conn.pos += body;
                    read += body as i64;
                    // The kept tail moves to the front.
                    conn.buf.drain(..conn.pos);
                    conn.pos = 0;
                }
            }
            let _ = with_link(conn.generation, |l| l.transfer_read = read);
        }
        if mark.is_none() && left == 0 {
            break;
        }
        conn.fill()?;
    }
    file.sync_all().map_err(write_err)?;
    Ok(())
}

/// Replaces the dataset with the file at `path`; an empty dataset if it
/// cannot be loaded whole.
fn load(srv: &'static Server, path: &str) -> Result<(), String> {
    let _busy = crate::watchdog::busy();
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    srv.persist.loading.begin(len);
    let mut locks = Locks::default();
    let mut batch = locks.batch(&srv.ks);
    batch.all_dbs();
    let _ = batch.take();
    let flush = |locks: &mut Locks| flush_all(srv, locks);
    flush(&mut locks);
    let r = crate::persist::save::load_file(srv, &mut locks, path, false);
    let r = match r {
        Ok(_) => Ok(()),
        Err(e) => {
            flush(&mut locks);
            Err(format!(
                "Failed trying to load the MASTER synchronization DB from disk: {e}"
            ))
        }
    };
    locks.release();
    srv.persist.loading.end();
    srv.persist.dirty.store(0, Ordering::Relaxed);
    r
}
