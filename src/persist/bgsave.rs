//! BGSAVE without fork: a background thread writes a point-in-time
//! snapshot of the keyspace (`store::snapshot`) to `dir`/`dbfilename` in
//! the RDB format (`rdb::snap`), and the cron starts one at the `save`
//! points.
//!
//! The start of the snapshot is the instant of the image: BGSAVE declares
//! every database (`cmd::footprint`), so the dispatcher holds every shard
//! when the handler starts the snapshot, and the reply "Background saving
//! started" comes after that instant. Inside a transaction BGSAVE is only
//! scheduled, as in Redis (the image must not fall between two commands
//! of one EXEC); the cron starts it.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use super::child::Child;
use crate::cmd::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::server::{Server, now_ms};
use crate::store::Locks;
use crate::store::snapshot::{Snapshot, StartError};

/// Seconds to wait before the cron retries after a failed save (Redis's
/// CONFIG_BGSAVE_RETRY_DELAY).
const RETRY_DELAY_MS: i64 = 5_000;

/// One server's background-save state (in `Server::persist`): each
/// server in a process (a test's recorder beside its replay harness) has
/// its own, so one server's failed save never refuses another's writes.
pub struct State {
    /// A BGSAVE's thread runs.
    running: AtomicBool,
    /// FLUSHALL or SHUTDOWN asked the running save to stop (Redis kills
    /// its child): it ends without a file and without an error status.
    abort: AtomicBool,
    /// BGSAVE SCHEDULE (or BGSAVE in a transaction) waits for the cron.
    scheduled: AtomicBool,
    /// Changes since the last successful save (the save points' count).
    /// The change counter (`Persist::dirty`) when the running save
    /// started: what a success clears.
    changes_at_start: AtomicU64,
    last_ok: AtomicBool,
    /// When the last save was tried (ms), for the retry delay.
    last_try_ms: AtomicI64,
    /// When the running save started (ms).
    started_ms: AtomicI64,
    /// How long the last save took (s), -1 before the first.
    last_time_s: AtomicI64,
    /// Bytes writers copied during the last save (`rdb_last_cow_size`).
    pub(super) last_cow: AtomicU64,
}

impl Default for State {
    fn default() -> State {
        State {
            running: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            changes_at_start: AtomicU64::new(0),
            last_ok: AtomicBool::new(true),
            last_try_ms: AtomicI64::new(0),
            started_ms: AtomicI64::new(0),
            last_time_s: AtomicI64::new(-1),
            last_cow: AtomicU64::new(0),
        }
    }
}

/// Changes since the last successful save (`rdb_changes_since_last_save`,
/// counted by the dispatcher into `Persist::dirty`).
fn changes_since_last_save(srv: &Server) -> u64 {
    srv.persist.dirty.load(Ordering::Relaxed)
}

/// True while a BGSAVE runs (`rdb_bgsave_in_progress`).
pub fn in_progress(srv: &Server) -> bool {
    srv.persist.bg.running.load(Ordering::Acquire)
}

/// True unless the last save failed (`rdb_last_bgsave_status`).
pub fn last_ok(srv: &Server) -> bool {
    srv.persist.bg.last_ok.load(Ordering::Relaxed)
}

/// Seconds the last save took, -1 before the first (`rdb_last_bgsave_time_sec`).
pub fn last_time_sec(srv: &Server) -> i64 {
    srv.persist.bg.last_time_s.load(Ordering::Relaxed)
}

/// Seconds the running save has taken, -1 when none runs
/// (`rdb_current_bgsave_time_sec`).
pub fn current_time_sec(srv: &Server) -> i64 {
    if !in_progress(srv) {
        return -1;
    }
    (now_ms() - srv.persist.bg.started_ms.load(Ordering::Relaxed)) / 1000
}

/// Starts a BGSAVE: the snapshot now (`locks` holds every shard or none),
/// the file on a thread.
pub fn start(srv: &'static Server, locks: &mut Locks) -> Result<(), StartError> {
    if srv
        .persist
        .bg
        .running
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(StartError::InProgress);
    }
    let snap = match srv.ks.snapshot(locks, super::rdb::snap::encoder(srv)) {
        Ok(s) => s,
        Err(e) => {
            srv.persist.bg.running.store(false, Ordering::Release);
            return Err(e);
        }
    };
    // The replication offset of the image: read at the cut (exact when
    // `locks` hold every shard, as BGSAVE's do).
    let repl = crate::server::repl_aux::save_info();
    srv.persist.bg.abort.store(false, Ordering::Relaxed);
    let now = now_ms();
    srv.persist.bg.last_try_ms.store(now, Ordering::Relaxed);
    srv.persist.bg.started_ms.store(now, Ordering::Relaxed);
    srv.persist
        .bg
        .changes_at_start
        .store(changes_since_last_save(srv), Ordering::Relaxed);
    srv.persist.bg.scheduled.store(false, Ordering::Relaxed);
    // Before the reply, so whoever looks for the save's child finds it.
    let child = Child::spawn(
        "ferrokv-rdb-bgsave",
        crate::server::oom::child_score(&srv.config),
    );
    let delay = srv.config.rdb_key_save_delay.get();
    match &child {
        Some(c) => crate::notice!("Background saving started by pid {}", c.pid()),
        None => crate::notice!("Background saving started"),
    }
    let spawned = std::thread::Builder::new()
        .name("ferrokv-bgsave".into())
        .spawn(move || crate::alloc::counted(|| finish(srv, snap, child, delay, repl)));
    if let Err(e) = spawned {
        // The snapshot went with the closure and was dropped: walked out.
        crate::warning!("Can't save in background: {e}");
        srv.persist.bg.last_ok.store(false, Ordering::Relaxed);
        srv.persist.bg.running.store(false, Ordering::Release);
    }
    Ok(())
}

/// The BGSAVE thread: writes the file and records the outcome.
fn finish(
    srv: &'static Server,
    mut snap: Snapshot,
    child: Option<Child>,
    delay: i64,
    repl: Option<crate::server::repl_aux::SaveInfo>,
) {
    // The walk yields the CPU to the workers serving clients (on Linux
    // the nice value is per thread). Failure to lower it changes nothing.
    // SAFETY: setpriority only reads its integer arguments.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
    let started = std::time::Instant::now();
    let result = write_file(srv, &mut snap, child.as_ref(), delay, repl);
    drop(snap);
    let (_, _, copied) = srv.ks.snapshot_progress().get();
    srv.persist
        .bg
        .last_cow
        .store(copied as u64, Ordering::Relaxed);
    let killed = child.as_ref().and_then(Child::killed);
    drop(child);
    srv.persist
        .bg
        .last_time_s
        .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    match result {
        Ok(()) => {
            let done = srv.persist.bg.changes_at_start.load(Ordering::Relaxed);
            let _ = srv
                .persist
                .dirty
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                    Some(c.saturating_sub(done))
                });
            srv.persist.saves.fetch_add(1, Ordering::Relaxed);
            srv.last_save_ms.store(now_ms(), Ordering::Relaxed);
            srv.persist.bg.last_ok.store(true, Ordering::Relaxed);
            crate::notice!("Background saving terminated with success");
        }
        Err(_) if srv.persist.bg.abort.load(Ordering::Relaxed) => {
            // Stopped on purpose: as when Redis kills its child with
            // SIGUSR1, the status stays what it was.
            crate::warning!("Background saving terminated by signal 10");
        }
        Err(_) if killed.is_some() => {
            srv.persist.bg.last_ok.store(false, Ordering::Relaxed);
            crate::warning!(
                "Background saving terminated by signal {}",
                killed.unwrap_or(0)
            );
        }
        Err(e) => {
            srv.persist.bg.last_ok.store(false, Ordering::Relaxed);
            crate::warning!("Background saving error: {e}");
        }
    }
    srv.persist.bg.running.store(false, Ordering::Release);
}

/// FLUSHALL and SHUTDOWN: a running BGSAVE stops without writing its file
/// (its walk ends within a slice of `rdb-key-save-delay`; the rename is
/// checked under the save lock, so a save that follows wins).
pub fn abort_running(srv: &Server) {
    if in_progress(srv) {
        srv.persist.bg.abort.store(true, Ordering::Relaxed);
        crate::notice!("Background saving aborted: killing the saving thread");
    }
}

/// SHUTDOWN and the exit signals (holding no shard): stops a running
/// BGSAVE and waits, bounded, for its thread to remove its temp file, as
/// Redis kills its child before the final save.
pub fn abort_and_wait(srv: &Server) {
    if !in_progress(srv) {
        return;
    }
    crate::warning!("There is a child saving an .rdb. Killing it!");
    srv.persist.bg.abort.store(true, Ordering::Relaxed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while in_progress(srv) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A successful SAVE clears a failed BGSAVE's status (and with it the
/// MISCONF refusals), as in Redis.
pub fn save_succeeded(srv: &Server) {
    srv.persist.bg.last_ok.store(true, Ordering::Relaxed);
}

/// Writes to a temporary file, fsyncs it, renames it over `dbfilename` and
/// fsyncs the directory (the process runs in `dir`).
fn write_file(
    srv: &'static Server,
    snap: &mut Snapshot,
    child: Option<&Child>,
    delay: i64,
    repl: Option<crate::server::repl_aux::SaveInfo>,
) -> io::Result<()> {
    // Named after the child as Redis names it (temp-<child pid>.rdb).
    let tmp = match child {
        Some(c) => format!("temp-{}.rdb", c.pid()),
        None => format!("temp-{}-bg.rdb", std::process::id()),
    };
    let dest = srv.config.dbfilename.get();
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        let mut pacer = super::rdb::snap::Pacer::new(delay, &srv.persist.bg.abort, child);
        super::rdb::snap::write_with(srv, snap, &mut w, false, repl, &mut pacer)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        // Under the save lock: an aborting FLUSHALL or SHUTDOWN sets the
        // flag before its own save takes the lock, so this stale image
        // never replaces the newer file.
        let _one = srv.persist.lock.lock();
        pacer.check()?;
        std::fs::rename(&tmp, &dest)?;
        std::fs::File::open(".")?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The `save` points: (seconds, changes) pairs.
fn save_points(srv: &Server) -> Vec<(i64, u64)> {
    srv.config.save.with(|s| {
        let nums: Vec<&str> = s.split_whitespace().collect();
        nums.chunks_exact(2)
            .filter_map(|p| Some((p[0].parse().ok()?, p[1].parse().ok()?)))
            .collect()
    })
}

/// From the server cron: starts a scheduled BGSAVE, or one a save point
/// calls for (after a failure, not before the retry delay).
pub fn cron(srv: &'static Server) {
    if in_progress(srv) || srv.ks.snapshot_in_progress() {
        return;
    }
    let now = now_ms();
    let may_retry =
        last_ok(srv) || now - srv.persist.bg.last_try_ms.load(Ordering::Relaxed) > RETRY_DELAY_MS;
    if !may_retry {
        return;
    }
    let scheduled = srv.persist.bg.scheduled.load(Ordering::Relaxed);
    let changes = changes_since_last_save(srv);
    let since_s = (now - srv.last_save_ms.load(Ordering::Relaxed)) / 1000;
    let points = save_points(srv);
    let due = points
        .into_iter()
        .find(|&(secs, min)| changes >= min && since_s > secs);
    if !scheduled && due.is_none() {
        return;
    }
    if let Some((secs, _)) = due {
        crate::notice!("{changes} changes in {secs} seconds. Saving...");
    }
    let mut locks = Locks::default();
    let _ = start(srv, &mut locks);
}

pub const COMMANDS: &[(&str, Handler)] = &[("bgsave", bgsave)];

/// BGSAVE [SCHEDULE].
fn bgsave(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if args[1].eq_ignore_ascii_case(b"schedule") => true,
        _ => return Err(Error::Syntax),
    };
    if in_progress(ctx.srv) {
        return Err(Error::msg("ERR Background save already in progress"));
    }
    // Another snapshot (an AOF rewrite), or inside EXEC: later, by the cron.
    if ctx.client.in_exec || ctx.srv.ks.snapshot_in_progress() {
        if schedule || ctx.client.in_exec {
            ctx.srv.persist.bg.scheduled.store(true, Ordering::Relaxed);
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(Error::msg(
            "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ));
    }
    match start(ctx.srv, ctx.db.locks) {
        Ok(()) => {
            ctx.out.simple("Background saving started");
            Ok(())
        }
        Err(StartError::InProgress) => Err(Error::msg("ERR Background save already in progress")),
        Err(StartError::LocksHeld) => {
            Err(Error::msg("ERR internal error: BGSAVE without its locks"))
        }
    }
}
