//! Rewriting the AOF: a new base file holding the dataset as of one
//! instant, and a new incremental file that receives every record from
//! that instant on, so nothing falls between the two. Then the manifest is
//! replaced atomically and the old files are deleted (named `history` in
//! between, as Redis does).
//!
//! The base in AOF form holds each key as the commands that recreate it,
//! as Redis 7.0 writes them: functions first (`FUNCTION LOAD`), then per
//! database `SELECT` and per key `SET` / `RPUSH` / `SADD` / `ZADD` /
//! `HMSET` (64 items a command), a stream as `XADD`s, `XSETID`,
//! `XGROUP CREATE` and an `XCLAIM ... JUSTID FORCE` per pending entry, and
//! `PEXPIREAT` for a key with a deadline. Keys already expired are left out.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::writer::Incr;
use super::{Aof, encode};
use crate::persist::child::Child;
use crate::server::Server;
use crate::store::entry::{EntryRef, Packed, ValueRef};
use crate::store::snapshot::{Chunk, Encoder, StartError};
use crate::store::{Locks, Object};
use crate::types::hash::HashRef;
use crate::types::list::ListRef;
use crate::types::set::SetRef;
use crate::types::stream::id::StreamId;
use crate::types::zset::View;
use ferrokv_util::repr::strerror;

/// Redis's `AOF_REWRITE_ITEMS_PER_CMD`.
const ITEMS_PER_CMD: usize = 64;

/// A rewrite asked for while a BGSAVE ran (or inside EXEC), started by
/// the cron once it can (`aof_rewrite_scheduled`): [`NONE`], [`REWRITE`],
/// or [`TURN_ON`] (CONFIG SET appendonly yes: records are kept only from
/// that rewrite's cut, as Redis opens no incremental file before it).
static SCHEDULED: AtomicU8 = AtomicU8::new(NONE);
const NONE: u8 = 0;
const REWRITE: u8 = 1;
const TURN_ON: u8 = 2;

/// Turning AOF off stops the running rewrite (Redis kills its child).
static ABORT: AtomicBool = AtomicBool::new(false);
/// The running rewrite's stand-in child, for the log (0: none).
static CHILD_PID: AtomicU32 = AtomicU32::new(0);
/// The running rewrite is the one turning AOF on (Redis's
/// `AOF_WAIT_REWRITE`): until it ends the AOF holds nothing.
static TURNING_ON: AtomicBool = AtomicBool::new(false);

/// Whether the rewrite turning AOF on runs (a shutdown must not exit).
pub fn turning_on() -> bool {
    TURNING_ON.load(Ordering::Acquire)
}

/// Shutdown: the running rewrite is stopped (as Redis kills its child),
/// the AOF already holds the whole dataset.
pub(super) fn stop_for_exit(aof: &Aof) {
    if aof.stats.rewrite_in_progress.load(Ordering::Acquire) {
        crate::warning!("There is a child rewriting the AOF. Killing it!");
        ABORT.store(true, Ordering::Relaxed);
    }
}

/// CONFIG SET appendonly no: a running rewrite stops without a file and
/// without counting as failed, as when Redis kills its child.
pub(super) fn kill_running(aof: &Aof) {
    if aof.stats.rewrite_in_progress.load(Ordering::Acquire) {
        crate::notice!(
            "Killing running AOF rewrite child: {}",
            CHILD_PID.load(Ordering::Relaxed)
        );
        ABORT.store(true, Ordering::Relaxed);
    }
}

/// CONFIG SET appendonly yes while a rewrite (of an AOF that is off)
/// runs: that one is stopped and the rewrite turning AOF on replaces it,
/// as Redis does. Waits a bounded time for it to stop (holding nothing);
/// if it has not, the turn-on is scheduled for the cron.
pub(super) fn replace_running(aof: &'static Aof) -> Result<(), String> {
    crate::notice!(
        "AOF was enabled but there is already an AOF rewriting in background. Stopping background AOF and starting a rewrite now."
    );
    kill_running(aof);
    let deadline = Instant::now() + Duration::from_secs(2);
    while aof.stats.rewrite_in_progress.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if aof.stats.rewrite_in_progress.load(Ordering::Acquire) {
        SCHEDULED.store(TURN_ON, Ordering::Relaxed);
        return Ok(());
    }
    start(aof, true)
}

/// The rewrite turning AOF on waits for a BGSAVE or for the end of EXEC.
pub(super) fn schedule_turn_on() {
    crate::warning!(
        "AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible."
    );
    SCHEDULED.store(TURN_ON, Ordering::Relaxed);
}

/// `aof_rewrite_scheduled` of INFO persistence.
pub fn scheduled() -> bool {
    SCHEDULED.load(Ordering::Relaxed) != NONE
}

/// Forgets a scheduled rewrite (AOF turned off before it ran).
pub(super) fn unschedule() {
    SCHEDULED.store(NONE, Ordering::Relaxed);
}

/// BGREWRITEAOF: the reply, or the error. `in_exec`: called inside a
/// transaction, where Redis only schedules it.
pub fn bgrewriteaof(srv: &'static Server, in_exec: bool) -> Result<&'static str, String> {
    let aof = super::create(srv);
    if aof.stats.rewrite_in_progress.load(Ordering::Acquire) {
        return Err("ERR Background append only file rewriting already in progress".into());
    }
    std::fs::create_dir_all(&aof.dir).map_err(|e| format!("ERR {}", strerror(&e)))?;
    if !aof.on.load(Ordering::Acquire) && aof.manifest.lock().base.is_none() {
        // Never on in this process: the files on disk are the starting point.
        *aof.manifest.lock() = super::load::read_manifest(aof).map_err(|e| format!("ERR {e}"))?;
    }
    super::start_thread(aof);
    if in_exec || crate::persist::bgsave::in_progress(srv) {
        let _ = SCHEDULED.compare_exchange(NONE, REWRITE, Ordering::Relaxed, Ordering::Relaxed);
        aof.stats.consecutive_failures.store(0, Ordering::Relaxed);
        return Ok("Background append only file rewriting scheduled");
    }
    start(aof, false).map_err(|e| format!("ERR {e}"))?;
    Ok("Background append only file rewriting started")
}

/// The automatic rewrite (`auto-aof-rewrite-percentage` and
/// `auto-aof-rewrite-min-size`), checked by the cron.
pub fn cron(srv: &'static Server) {
    let Some(aof) = super::get() else { return };
    if aof.stats.rewrite_in_progress.load(Ordering::Relaxed) {
        return;
    }
    if scheduled() && !crate::persist::bgsave::in_progress(srv) && !limited(aof) {
        let turning_on = SCHEDULED.swap(NONE, Ordering::Relaxed) == TURN_ON;
        if turning_on && aof.on.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = start(aof, turning_on) {
            crate::warning!("Can't start the scheduled AOF rewrite: {e}");
        }
        return;
    }
    if !aof.on.load(Ordering::Acquire) {
        return;
    }
    let perc = srv.config.auto_aof_rewrite_percentage.get();
    let min = srv.config.auto_aof_rewrite_min_size.get().max(0) as u64;
    let size = aof.stats.current_size.load(Ordering::Relaxed);
    // Not while a BGSAVE runs (Redis waits for its child too).
    if perc <= 0 || size <= min || crate::persist::bgsave::in_progress(srv) {
        return;
    }
    let base = aof.stats.rewrite_base_size.load(Ordering::Relaxed).max(1);
    let growth = (size * 100 / base) as i64 - 100;
    if growth >= perc && !limited(aof) {
        crate::notice!("Starting automatic rewriting of AOF on {growth}% growth");
        let _ = start(aof, false);
    }
}

/// Consecutive failures from which the automatic rewrite backs off.
const LIMIT_THRESHOLD: u64 = 3;
/// The longest back-off, in minutes.
const LIMIT_MAX_MINUTES: i64 = 60;

/// After repeated failures the automatic (and scheduled) rewrite waits 1,
/// 2, 4, ... up to 60 minutes between tries, as Redis 7.0 does, so a
/// rewrite that keeps failing does not keep opening incremental files.
/// BGREWRITEAOF itself is never limited.
fn limited(aof: &Aof) -> bool {
    // (minutes of the current delay, when the next try may start in ms).
    static STATE: parking_lot::Mutex<(i64, i64)> = parking_lot::Mutex::new((0, 0));
    let mut st = STATE.lock();
    if aof.stats.consecutive_failures.load(Ordering::Relaxed) < LIMIT_THRESHOLD {
        *st = (0, 0);
        return false;
    }
    let now = crate::server::now_ms();
    if st.1 != 0 {
        if now < st.1 {
            return true;
        }
        st.1 = 0;
        return false;
    }
    st.0 = if st.0 == 0 {
        1
    } else {
        (st.0 * 2).min(LIMIT_MAX_MINUTES)
    };
    st.1 = now + st.0 * 60_000;
    crate::warning!(
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
        st.0
    );
    true
}

/// Starts a rewrite on its own thread; `turning_on` when it is how AOF is
/// turned on at run time (records are kept from the cut on).
pub(super) fn start(aof: &'static Aof, turning_on: bool) -> Result<(), String> {
    if turning_on && crate::persist::bgsave::in_progress(aof.srv) {
        // As Redis: the rewrite that turns AOF on waits for the BGSAVE.
        schedule_turn_on();
        return Ok(());
    }
    if aof.stats.rewrite_in_progress.swap(true, Ordering::AcqRel) {
        return Err("Background append only file rewriting already in progress".into());
    }
    *aof.stats.rewrite_started.lock() = Some(Instant::now());
    ABORT.store(false, Ordering::Relaxed);
    TURNING_ON.store(turning_on, Ordering::Release);
    // Before the reply, so whoever looks for the rewrite's child finds it.
    let child = Child::spawn(
        "ferrokv-aof-rewrite",
        crate::server::oom::child_score(&aof.srv.config),
    );
    CHILD_PID.store(child.as_ref().map_or(0, Child::pid), Ordering::Relaxed);
    let delay = aof.srv.config.rdb_key_save_delay.get();
    // Counted when started, as Redis counts its forks (`aof_rewrites`).
    aof.stats.rewrites.fetch_add(1, Ordering::Relaxed);
    crate::notice!(
        "Background append only file rewriting started by pid {}",
        child.as_ref().map_or(std::process::id(), Child::pid)
    );
    let spawned = std::thread::Builder::new()
        .name("ferrokv-aofrw".into())
        .spawn(move || {
            let started = Instant::now();
            let result = rewrite(aof, turning_on, child.as_ref(), delay);
            let killed = child.as_ref().and_then(Child::killed);
            drop(child);
            let s = &aof.stats;
            let (_, _, copied) = aof.srv.ks.snapshot_progress().get();
            s.last_cow.store(copied as u64, Ordering::Relaxed);
            s.last_rewrite_secs
                .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            match result {
                Err(_) if ABORT.load(Ordering::Relaxed) => {
                    crate::notice!("Background AOF rewrite stopped: AOF was turned off");
                }
                Ok(()) => {
                    s.last_rewrite_ok.store(true, Ordering::Relaxed);
                    s.consecutive_failures.store(0, Ordering::Relaxed);
                    crate::notice!("Background AOF rewrite finished successfully");
                }
                Err(e) => {
                    s.last_rewrite_ok.store(false, Ordering::Relaxed);
                    s.consecutive_failures.fetch_add(1, Ordering::Relaxed);
                    match killed {
                        Some(sig) => {
                            crate::warning!("Background AOF rewrite terminated by signal {sig}");
                        }
                        None => crate::warning!("Background AOF rewrite failed: {e}"),
                    }
                }
            }
            *s.rewrite_started.lock() = None;
            TURNING_ON.store(false, Ordering::Release);
            s.rewrite_in_progress.store(false, Ordering::Release);
            // The thread ends: its accounting slot serves the next one.
            crate::alloc::flush_thread();
        });
    if let Err(e) = spawned {
        TURNING_ON.store(false, Ordering::Release);
        aof.stats
            .rewrite_in_progress
            .store(false, Ordering::Release);
        *aof.stats.rewrite_started.lock() = None;
        return Err(e.to_string());
    }
    Ok(())
}

fn rewrite(
    aof: &'static Aof,
    turning_on: bool,
    child: Option<&Child>,
    delay: i64,
) -> Result<(), String> {
    let result = rewrite_files(aof, turning_on, child, delay);
    if turning_on && result.is_err() {
        abandon_turn_on(aof);
    }
    result
}

/// The incremental file that collects records while the rewrite that
/// turns AOF on runs: it is named in the manifest only once that rewrite
/// succeeds (Redis's `temp-<appendfilename>.incr`).
fn temp_incr_name(aof: &Aof) -> String {
    format!("temp-{}.incr", aof.prefix)
}

/// The rewrite that was to turn AOF on failed: what it collected is
/// dropped (the next one images the dataset again) and it is tried again
/// by the cron, as Redis stays waiting for a rewrite.
fn abandon_turn_on(aof: &Aof) {
    aof.on.store(false, Ordering::Release);
    *aof.file.lock() = None;
    aof.log.lock().buf.clear();
    super::DURABLE.fetch_max(super::APPENDED.load(Ordering::Acquire), Ordering::AcqRel);
    aof.durable.notify_waiters();
    let name = temp_incr_name(aof);
    crate::notice!("Removing the temp incr aof file {name} in the background");
    let _ = std::fs::remove_file(aof.path(&name));
    // Tried again unless AOF was turned off meanwhile.
    if !ABORT.load(Ordering::Relaxed) {
        SCHEDULED.store(TURN_ON, Ordering::Relaxed);
    }
}

fn rewrite_files(
    aof: &'static Aof,
    turning_on: bool,
    child: Option<&Child>,
    delay: i64,
) -> Result<(), String> {
    let srv = aof.srv;
    let rdb = srv.config.aof_use_rdb_preamble.get();
    let was_on = aof.on.load(Ordering::Acquire);
    let off = !was_on && !turning_on;
    let image = write_base(srv, rdb, child, delay, || {
        if off {
            // AOF off: only a base is written, no records are kept.
            return Ok(());
        }
        // At the cut: a new incremental file takes every record from now on.
        let mut m = aof.manifest.lock();
        let name = if turning_on {
            temp_incr_name(aof)
        } else {
            m.next_incr(&aof.prefix)
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(aof.path(&name))
            .map_err(|e| format!("Can't open the append-only file {name}: {}", strerror(&e)))?;
        aof.switch_incr(Incr::new(file, 0))
            .map_err(|e| strerror(&e))?;
        if turning_on {
            aof.on.store(true, Ordering::Release);
        } else if was_on {
            aof.persist_manifest(&m)
                .map_err(|e| format!("Can't persist the AOF manifest: {}", strerror(&e)))?;
        }
        crate::notice!("Creating AOF incr file {name} on background rewrite");
        Ok(())
    });
    let image = image?;
    let tmp = format!(
        "temp-rewriteaof-bg-{}.aof",
        child.map_or(std::process::id(), Child::pid)
    );
    write_file(&aof.path(&tmp), &image).map_err(|e| {
        format!(
            "Can't write the temporary AOF base file {tmp}: {}",
            strerror(&e)
        )
    })?;
    crate::notice!("Successfully created the temporary AOF base file {tmp}");
    if let Some(sig) = child.and_then(Child::killed) {
        let _ = std::fs::remove_file(aof.path(&tmp));
        return Err(format!("terminated by signal {sig}"));
    }
    if ABORT.load(Ordering::Relaxed) {
        let _ = std::fs::remove_file(aof.path(&tmp));
        return Err("stopped: AOF was turned off".into());
    }
    let mut m = aof.manifest.lock();
    let name = m.next_base(&aof.prefix, rdb);
    std::fs::rename(aof.path(&tmp), aof.path(&name)).map_err(|e| {
        format!(
            "Error trying to rename the temporary AOF base file {tmp} into {name}: {}",
            strerror(&e)
        )
    })?;
    crate::notice!("Successfully renamed the temporary AOF base file {tmp} into {name}");
    if turning_on {
        // The records collected since the cut become the new incremental
        // file (the descriptor being appended to follows the rename).
        let temp = temp_incr_name(aof);
        let incr = m.next_incr(&aof.prefix);
        std::fs::rename(aof.path(&temp), aof.path(&incr)).map_err(|e| {
            format!(
                "Error trying to rename the temporary AOF incr file {temp} into {incr}: {}",
                strerror(&e)
            )
        })?;
        crate::notice!("Successfully renamed the temporary AOF incr file {temp} into {incr}");
    }
    if off {
        m.retire_all_incrs();
    } else {
        m.retire_incrs_but_last();
    }
    aof.commit_manifest(&mut m)?;
    drop(m);
    Ok(())
}

/// Writes `bytes` to `path` and syncs it (a temp file the caller renames,
/// or a new base).
pub(super) fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The base image of the dataset as it is now, outside any rewrite (the
/// start-up base of an empty server).
pub(super) fn base_image(srv: &'static Server) -> Result<Vec<u8>, String> {
    let rdb = srv.config.aof_use_rdb_preamble.get();
    write_base(srv, rdb, None, 0, || Ok(()))
}

/// The point-in-time image of the dataset, with `at_cut` called at the
/// instant it is taken (the rewrite switches incremental files there).
///
/// The image is a snapshot walk (`store::snapshot`, the mechanism BGSAVE
/// uses): every shard is held only for the cut, then the walk encodes the
/// keys a shard step at a time while clients keep writing (a writer saves
/// an old entry before changing it). One snapshot runs at a time, so a
/// rewrite that starts during a BGSAVE waits for it here, on its own
/// thread, holding nothing.
fn write_base(
    srv: &'static Server,
    rdb: bool,
    child: Option<&Child>,
    delay: i64,
    at_cut: impl FnOnce() -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let now = crate::server::now_ms();
    let encoder: Encoder = if rdb {
        crate::persist::rdb::snap::encoder(srv)
    } else {
        Arc::new(move |e: EntryRef<'_>, out: &mut Vec<u8>| {
            if !e.is_expired(now) {
                key_commands(out, &e);
            }
        })
    };
    let mut locks = Locks::default();
    let mut snap = loop {
        match srv.ks.snapshot(&mut locks, encoder.clone()) {
            Ok(s) => break s,
            Err(StartError::InProgress) => std::thread::sleep(Duration::from_millis(10)),
            Err(StartError::LocksHeld) => return Err("could not take the keyspace".into()),
        }
    };
    let cut = at_cut();
    locks.release();
    // On an error the snapshot walks itself out when dropped.
    cut?;
    let mut out = Vec::new();
    // Turning AOF off or killing the stand-in child stops the walk.
    let mut pacer = crate::persist::rdb::snap::Pacer::new(delay, &ABORT, child);
    if rdb {
        crate::persist::rdb::snap::write(srv, &mut snap, &mut out, true, &mut pacer)
            .map_err(|e| strerror(&e))?;
        return Ok(out);
    }
    if srv.config.aof_timestamp_enabled.get() {
        out.extend_from_slice(format!("#TS:{}\r\n", now / 1000).as_bytes());
    }
    // Functions first, as Redis writes them (the code as of the last
    // change: a running FCALL may hold the registry).
    for code in srv.scripting.functions.codes() {
        encode::command(&mut out, [&b"FUNCTION"[..], b"LOAD", &code].into_iter());
    }
    while let Some(chunk) = snap.next_chunk() {
        match chunk {
            Chunk::Db { db, .. } => encode::select(&mut out, db),
            Chunk::Bytes(b) => out.extend_from_slice(b),
        }
        pacer.pace(&snap).map_err(|e| strerror(&e))?;
    }
    Ok(out)
}

/// Writes `cmd key items...` in commands of at most 64 items (pairs count
/// as one item each).
fn batched(out: &mut Vec<u8>, cmd: &[u8], key: &[u8], items: &[Vec<u8>], per_item: usize) {
    for chunk in items.chunks(ITEMS_PER_CMD * per_item) {
        encode::header(out, b'*', 2 + chunk.len());
        encode::bulk(out, cmd);
        encode::bulk(out, key);
        for i in chunk {
            encode::bulk(out, i);
        }
    }
}

/// The commands that recreate one key.
fn key_commands(out: &mut Vec<u8>, e: &EntryRef<'_>) {
    let key = e.key();
    let v = e.value();
    match v {
        ValueRef::Bytes(b) => encode::command(out, [&b"SET"[..], key, b].into_iter()),
        ValueRef::Obj(Object::Str(b)) => {
            encode::command(out, [&b"SET"[..], key, b.as_slice()].into_iter());
        }
        ValueRef::Int(n) => {
            let s = itoa::Buffer::new().format(n).to_owned();
            encode::command(out, [&b"SET"[..], key, s.as_bytes()].into_iter());
        }
        ValueRef::Packed(Packed::List, _) | ValueRef::Obj(Object::List(_)) => {
            if let Ok(list) = ListRef::of(v) {
                let items: Vec<Vec<u8>> = list.iter().map(|i| i.to_vec()).collect();
                batched(out, b"RPUSH", key, &items, 1);
            }
        }
        ValueRef::Packed(Packed::Set | Packed::IntSet, _) | ValueRef::Obj(Object::Set(_)) => {
            if let Some(set) = SetRef::of(v) {
                let items: Vec<Vec<u8>> =
                    set.iter().map(|m| m.with_bytes(|b| b.to_vec())).collect();
                batched(out, b"SADD", key, &items, 1);
            }
        }
        ValueRef::Packed(Packed::ZSet, _) | ValueRef::Obj(Object::ZSet(_)) => {
            if let Ok(z) = View::of(v) {
                let mut items = Vec::new();
                let mut buf = [0u8; 64];
                z.visit(0, usize::MAX, false, |m, score| {
                    items.push(crate::util::num::fmt_double(score, &mut buf).to_vec());
                    items.push(m.to_vec());
                    true
                });
                batched(out, b"ZADD", key, &items, 2);
            }
        }
        ValueRef::Packed(Packed::Hash, _) | ValueRef::Obj(Object::Hash(_)) => {
            if let Ok(h) = HashRef::of(v) {
                let mut items = Vec::new();
                for (f, val) in h.iter() {
                    items.push(f.to_vec());
                    items.push(val.to_vec());
                }
                batched(out, b"HMSET", key, &items, 2);
            }
        }
        ValueRef::Obj(Object::Stream(s)) => stream_commands(out, key, s),
        #[allow(unreachable_patterns)]
        _ => {}
    }
    if let Some(at) = e.expire() {
        let ms = itoa::Buffer::new().format(at).to_owned();
        encode::command(out, [&b"PEXPIREAT"[..], key, ms.as_bytes()].into_iter());
    }
}

fn id(i: StreamId) -> Vec<u8> {
    i.to_string().into_bytes()
}

fn stream_commands(out: &mut Vec<u8>, key: &[u8], s: &crate::types::stream::Stream) {
    if s.is_empty() {
        // An empty stream: XADD with MAXLEN 0 creates it, XSETID below sets
        // its real last id.
        encode::command(
            out,
            [&b"XADD"[..], key, b"MAXLEN", b"0", b"0-1", b"x", b"y"].into_iter(),
        );
    } else {
        s.range(StreamId::MIN, StreamId::MAX, false, 0, |e| {
            let entry_id = id(e.id);
            let mut argv: Vec<&[u8]> = vec![b"XADD", key, &entry_id];
            argv.extend(e.pairs.iter().copied());
            encode::command(out, argv.into_iter());
        });
    }
    let last = id(s.last_id);
    let added = s.entries_added.to_string();
    let maxdel = id(s.max_deleted_id);
    encode::command(
        out,
        [
            &b"XSETID"[..],
            key,
            &last,
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            &maxdel,
        ]
        .into_iter(),
    );
    for (name, g) in &s.groups {
        let gid = id(g.last_id);
        let read = g.entries_read.unwrap_or(-1).to_string();
        encode::command(
            out,
            [
                &b"XGROUP"[..],
                b"CREATE",
                key,
                name,
                &gid,
                b"ENTRIESREAD",
                read.as_bytes(),
            ]
            .into_iter(),
        );
        for (pid, p) in &g.pel {
            let pid = id(*pid);
            let time = p.delivery_time.to_string();
            let count = p.delivery_count.to_string();
            encode::command(
                out,
                [
                    &b"XCLAIM"[..],
                    key,
                    name,
                    &p.consumer,
                    b"0",
                    &pid,
                    b"TIME",
                    time.as_bytes(),
                    b"RETRYCOUNT",
                    count.as_bytes(),
                    b"JUSTID",
                    b"FORCE",
                ]
                .into_iter(),
            );
        }
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                encode::command(
                    out,
                    [&b"XGROUP"[..], b"CREATECONSUMER", key, name, cname].into_iter(),
                );
            }
        }
    }
}
