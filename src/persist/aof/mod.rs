//! The append-only file, as Redis 7.0 lays it out (multi-part AOF): a
//! directory (`appenddirname`) holding a manifest, one base file (the
//! dataset as of the last rewrite) and incremental files (every write
//! since, as RESP commands).
//!
//! - `writer`: the effect sink, the shared buffer, the write (and sync)
//!   of what it holds, and the AOF thread's periodic pass.
//! - `wait`: replies waiting for their records (group commit: one write,
//!   and with `appendfsync always` one sync, per worker pass).
//! - `load`: reading the files back at start-up.
//! - `rewrite`: BGREWRITEAOF, the automatic rewrite, turning AOF on at run
//!   time; the base file's contents.
//! - `manifest`: the manifest file.
//!
//! The state is process-wide (one AOF per process), created the first
//! time AOF is turned on.

pub mod encode;
mod load;
pub mod manifest;
mod rewrite;
mod wait;
mod writer;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::server::Server;
use ferrokv_util::repr::strerror;
use manifest::Manifest;
use writer::{Incr, Log};

pub use load::LoadError;
pub use rewrite::{bgrewriteaof, cron};
pub use writer::thread_seq;

/// DEBUG AOF-FLUSH-SLEEP: microseconds the AOF thread sleeps before each
/// write (a test makes the window between a write and its reply wide).
pub static FLUSH_SLEEP_US: AtomicU64 = AtomicU64::new(0);

/// The last write (or sync) of the AOF failed: writes are refused
/// (MISCONF) until one succeeds. Mirrors `Stats::write_err` for the gate.
static WRITE_FAILED: AtomicBool = AtomicBool::new(false);

/// DEBUG AOF-WRITE-ERROR: while non-zero, every write to the AOF fails
/// with this errno (tests simulate a full disk without root).
pub static FAIL_WRITES_ERRNO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Records appended so far (all threads).
static APPENDED: AtomicU64 = AtomicU64::new(0);
/// Records on disk as `appendfsync` defines it: synced with `always`.
static DURABLE: AtomicU64 = AtomicU64::new(0);
static AOF: OnceLock<Aof> = OnceLock::new();

pub(crate) struct Aof {
    srv: &'static Server,
    /// `dir/appenddirname`, absolute.
    dir: PathBuf,
    /// `appendfilename`: the prefix of every file's name.
    prefix: String,
    manifest: Mutex<Manifest>,
    log: Mutex<Log>,
    /// The incremental file (`None` while AOF is off).
    file: Mutex<Option<Incr>>,
    /// Wakes connections waiting for their records to be synced.
    durable: tokio::sync::Notify,
    /// Records are kept (AOF on, or being turned on).
    on: AtomicBool,
    /// Commands run by the loader are not recorded.
    loading: AtomicBool,
    stats: Stats,
}

/// What INFO persistence reports.
#[derive(Default)]
struct Stats {
    write_err: Mutex<Option<String>>,
    last_write_log: Mutex<Option<Instant>>,
    rewrite_in_progress: AtomicBool,
    rewrite_started: Mutex<Option<Instant>>,
    last_rewrite_secs: AtomicI64,
    last_rewrite_ok: AtomicBool,
    rewrites: AtomicU64,
    /// Bytes writers copied during the last rewrite (`aof_last_cow_size`).
    last_cow: AtomicU64,
    consecutive_failures: AtomicU64,
    base_size: AtomicU64,
    /// Base and incremental files together.
    current_size: AtomicU64,
    /// `current_size` after the last rewrite (or at start-up), for
    /// `auto-aof-rewrite-percentage`.
    rewrite_base_size: AtomicU64,
}

impl Stats {
    fn written(&self, n: u64) {
        self.current_size.fetch_add(n, Ordering::Relaxed);
    }

    fn write_failed(&self, e: &std::io::Error) {
        let why = strerror(e);
        let mut last = self.last_write_log.lock();
        // Redis logs the error at most every 30 seconds.
        if last.is_none_or(|t| t.elapsed().as_secs() >= 30) {
            *last = Some(Instant::now());
            crate::warning!("Error writing to the AOF file: {why}");
        }
        *self.write_err.lock() = Some(why);
        WRITE_FAILED.store(true, Ordering::Release);
    }

    fn write_ok(&self) {
        if !WRITE_FAILED.load(Ordering::Acquire) {
            return;
        }
        let mut err = self.write_err.lock();
        WRITE_FAILED.store(false, Ordering::Release);
        if err.take().is_some() {
            crate::warning!("AOF write error looks solved, Redis can write again.");
        }
    }
}

fn get() -> Option<&'static Aof> {
    AOF.get()
}

impl Aof {
    fn accepting(&self) -> bool {
        self.on.load(Ordering::Acquire) && !self.loading.load(Ordering::Relaxed)
    }

    fn manifest_name(&self) -> String {
        format!("{}.manifest", self.prefix)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn persist_manifest(&self, m: &Manifest) -> std::io::Result<()> {
        m.persist(&self.dir, &self.manifest_name())
    }

    /// Deletes the history files and drops them from the manifest (unless
    /// `aof-disable-auto-gc`: they stay listed as history).
    fn delete_history(&self, m: &mut Manifest) {
        if m.history.is_empty() || self.srv.config.aof_disable_auto_gc.get() {
            return;
        }
        for h in m.history.drain(..) {
            match std::fs::remove_file(self.path(&h.name)) {
                Ok(()) => crate::notice!("Removing the history file {} in the background", h.name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => crate::warning!("Failed to remove {}: {}", h.name, strerror(&e)),
            }
        }
        if let Err(e) = self.persist_manifest(m) {
            crate::warning!("Failed to persist the AOF manifest: {}", strerror(&e));
        }
    }

    /// Writes the manifest `m` now naming a new file, deletes the history
    /// it leaves, and takes the sizes INFO shows (the last rewrite's size
    /// is all of it).
    fn commit_manifest(&self, m: &mut Manifest) -> Result<(), String> {
        self.persist_manifest(m)
            .map_err(|e| format!("Can't persist the AOF manifest: {}", strerror(&e)))?;
        self.delete_history(m);
        let (base, total) = self.measure(m);
        self.stats.base_size.store(base, Ordering::Relaxed);
        self.stats.current_size.store(total, Ordering::Relaxed);
        self.stats.rewrite_base_size.store(total, Ordering::Relaxed);
        Ok(())
    }

    /// Sizes of the files the manifest names (base, and all of them).
    fn measure(&self, m: &Manifest) -> (u64, u64) {
        let size = |name: &str| std::fs::metadata(self.path(name)).map_or(0, |md| md.len());
        let base = m.base.as_ref().map_or(0, |b| size(&b.name));
        let incrs: u64 = m.incrs.iter().map(|i| size(&i.name)).sum();
        (base, base + incrs)
    }
}

/// The AOF directory for the current configuration, absolute.
fn dir_of(srv: &Server) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.join(srv.config.appenddirname.get())
}

fn create(srv: &'static Server) -> &'static Aof {
    AOF.get_or_init(|| {
        let aof = Aof {
            srv,
            dir: dir_of(srv),
            prefix: srv.config.appendfilename.get(),
            manifest: Mutex::new(Manifest::default()),
            log: Mutex::new(Log::default()),
            file: Mutex::new(None),
            durable: tokio::sync::Notify::new(),
            on: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            stats: Stats {
                last_rewrite_secs: AtomicI64::new(-1),
                last_rewrite_ok: AtomicBool::new(true),
                ..Stats::default()
            },
        };
        srv.ks.add_effect_sink(std::sync::Arc::new(writer::Sink));
        aof
    })
}

fn start_thread(aof: &'static Aof) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::Builder::new()
            .name("ferrokv-aof".into())
            .spawn(move || writer::run(aof))
            .expect("AOF thread");
    });
}

/// At start-up, before clients are accepted: with `appendonly yes`, loads
/// the AOF (upgrading a pre-7.0 single file), creates what is missing
/// (base, incremental file, manifest) and starts appending.
/// The bytes of every file the manifest names (INFO `loading_total_bytes`).
fn files_size(aof: &Aof, m: &Manifest) -> u64 {
    m.base
        .iter()
        .chain(m.incrs.iter())
        .map(|i| std::fs::metadata(aof.path(&i.name)).map_or(0, |md| md.len()))
        .sum()
}

pub fn start(srv: &'static Server) -> Result<(), String> {
    if !srv.config.appendonly.get() {
        return Ok(());
    }
    let aof = create(srv);
    std::fs::create_dir_all(&aof.dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {}",
            srv.config.appenddirname.get(),
            strerror(&e)
        )
    })?;
    remove_stale_temp_files(aof);
    let mut m = load::read_manifest(aof)?;
    if m.base.is_none() && m.incrs.is_empty() {
        load::upgrade_old_aof(aof, &mut m)?;
    }
    let started = Instant::now();
    srv.persist.loading.begin(files_size(aof, &m));
    let loaded = load::load_all(aof, &m).map_err(|e| e.0)?;
    if loaded {
        crate::notice!(
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    // An empty start gets a base file, as Redis does.
    if m.base.is_none() && m.incrs.is_empty() {
        let rdb = srv.config.aof_use_rdb_preamble.get();
        let name = m.next_base(&aof.prefix, rdb);
        let bytes = rewrite::base_image(srv).map_err(|e| format!("AOF base: {e}"))?;
        rewrite::write_file(&aof.path(&name), &bytes)
            .map_err(|e| format!("Can't write {name}: {}", strerror(&e)))?;
        crate::notice!("Creating AOF base file {name} on server start");
    }
    let new_incr = m.incrs.is_empty();
    if new_incr {
        m.next_incr(&aof.prefix);
    }
    let Some(last) = m.incrs.last() else {
        unreachable!("an incremental file was just named")
    };
    let path = aof.path(&last.name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| {
            format!(
                "Can't open the append-only file {}: {}",
                last.name,
                strerror(&e)
            )
        })?;
    let size = file.metadata().map_or(0, |md| md.len());
    if new_incr {
        crate::notice!("Creating AOF incr file {} on server start", last.name);
    }
    aof.commit_manifest(&mut m)?;
    *aof.manifest.lock() = m;
    *aof.file.lock() = Some(Incr::new(file, size));
    aof.log.lock().db = None;
    aof.on.store(true, Ordering::Release);
    start_thread(aof);
    Ok(())
}

/// Temp base files of rewrites a crash interrupted: never named by the
/// manifest, so never needed.
fn remove_stale_temp_files(aof: &Aof) {
    let Ok(dir) = std::fs::read_dir(&aof.dir) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("temp-rewriteaof-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// CONFIG SET aof-disable-auto-gc no: the history files kept meanwhile
/// are deleted now.
pub fn auto_gc_enabled() {
    if let Some(aof) = get() {
        let mut m = aof.manifest.lock();
        aof.delete_history(&mut m);
    }
}

/// CONFIG SET appendonly yes|no at run time (`in_exec`: inside a
/// transaction, where the rewrite turning AOF on is only scheduled).
pub fn set_enabled(srv: &'static Server, on: bool, in_exec: bool) -> Result<(), String> {
    let enabled = get().is_some_and(|a| a.on.load(Ordering::Acquire));
    if on == enabled {
        if !on {
            // Turned off before the rewrite turning it on ran or ended.
            rewrite::unschedule();
            if let Some(aof) = get() {
                rewrite::kill_running(aof);
            }
        }
        return Ok(());
    }
    if on {
        let aof = create(srv);
        std::fs::create_dir_all(&aof.dir).map_err(|e| strerror(&e))?;
        if aof.manifest.lock().base.is_none() && aof.dir.join(aof.manifest_name()).exists() {
            *aof.manifest.lock() = load::read_manifest(aof)?;
        }
        start_thread(aof);
        if aof.stats.rewrite_in_progress.load(Ordering::Acquire) {
            return rewrite::replace_running(aof);
        }
        if in_exec {
            rewrite::schedule_turn_on();
            return Ok(());
        }
        rewrite::start(aof, true)
    } else {
        stop(srv);
        Ok(())
    }
}

/// Turns AOF off: what is buffered is written and synced, the file closed.
fn stop(srv: &Server) {
    let _ = srv;
    let Some(aof) = get() else { return };
    rewrite::kill_running(aof);
    crate::notice!("Calling fsync() on the AOF file.");
    rewrite::unschedule();
    aof.on.store(false, Ordering::Release);
    let mut spare = Vec::new();
    aof.flush(&mut spare, true);
    *aof.file.lock() = None;
    DURABLE.fetch_max(APPENDED.load(Ordering::Acquire), Ordering::AcqRel);
    aof.durable.notify_waiters();
}

/// DEBUG LOADAOF: writes and syncs what is buffered, empties the dataset
/// and loads the AOF again. `in_flight` is the calling worker's in-flight
/// mark, set by the DEBUG command itself: it is lowered while loading so a
/// `FUNCTION LOAD` in the file (a script job, which waits for commands in
/// flight) does not wait for this one. A failure ends the process, as in
/// Redis.
pub fn debug_loadaof(srv: &'static Server, in_flight: &std::sync::atomic::AtomicUsize) {
    let aof = create(srv);
    if aof.on.load(Ordering::Acquire) {
        let mut spare = Vec::new();
        aof.flush(&mut spare, true);
    }
    in_flight.fetch_sub(1, Ordering::SeqCst);
    let result: Result<(), String> = (|| {
        let m = load::read_manifest(aof)?;
        load::empty_dataset(aof);
        // Other clients get -LOADING meanwhile, as from Redis.
        srv.persist.loading.begin(files_size(aof, &m));
        load::load_all(aof, &m).map_err(|e| e.0)?;
        // The manifest on disk becomes the one in use, as Redis re-reads
        // it (an incremental file numbered after it comes next: seq 1 when
        // it names none).
        if !aof.stats.rewrite_in_progress.load(Ordering::Acquire) {
            let mut current = aof.manifest.lock();
            *current = m;
            aof.delete_history(&mut current);
        }
        Ok(())
    })();
    srv.persist.loading.end();
    in_flight.fetch_add(1, Ordering::SeqCst);
    match result {
        Ok(()) => {
            // What was loaded is no change to save, as in Redis.
            srv.persist.dirty.store(0, Ordering::Relaxed);
            crate::warning!("Append Only File loaded by DEBUG LOADAOF");
        }
        Err(e) => {
            crate::warning!("{e}");
            std::process::exit(1);
        }
    }
}

/// Before a shutdown exits: false while the rewrite turning AOF on runs
/// (the AOF would hold nothing yet), unless `force`, as Redis refuses;
/// else a running rewrite is stopped.
pub fn ready_to_exit(force: bool) -> bool {
    let Some(aof) = get() else { return true };
    if rewrite::turning_on() {
        if !force {
            crate::warning!("Writing initial AOF, can't exit.");
            return false;
        }
        crate::warning!("Writing initial AOF. Exit anyway.");
    }
    rewrite::stop_for_exit(aof);
    true
}

/// SHUTDOWN and SIGTERM: everything buffered is written and synced.
pub fn shutdown() {
    if let Some(aof) = get()
        && aof.on.load(Ordering::Acquire)
    {
        crate::notice!("Calling fsync() on the AOF file.");
        let mut spare = Vec::new();
        aof.flush(&mut spare, true);
    }
}

/// Whether replies must wait for record `seq` before they are sent: until
/// it is synced with `appendfsync always`, written otherwise (as Redis
/// writes the AOF before it replies, so a killed process loses nothing
/// acknowledged under any policy; only the OS can lose what is unsynced).
#[inline]
pub fn must_wait(seq: u64) -> bool {
    seq > DURABLE.load(Ordering::Acquire) && get().is_some_and(|a| a.on.load(Ordering::Relaxed))
}

/// Records appended so far, by every thread.
#[inline]
pub fn appended() -> u64 {
    APPENDED.load(Ordering::Acquire)
}

/// Waits until record `seq` is durable (see [`must_wait`]).
pub async fn wait_durable(seq: u64) {
    if let Some(aof) = get() {
        wait::wait_durable(aof, seq).await;
    }
}

/// The `aof_*` lines of INFO persistence, in Redis's order.
pub fn info_fields(out: &mut Vec<String>) {
    let aof = get();
    let on = aof.is_some_and(|a| a.on.load(Ordering::Acquire));
    let s = aof.map(|a| &a.stats);
    let flag = |b: Option<&AtomicBool>| b.is_some_and(|b| b.load(Ordering::Relaxed)) as u8;
    let current_rewrite = s
        .and_then(|s| *s.rewrite_started.lock())
        .map_or(-1, |t| t.elapsed().as_secs() as i64);
    out.push(format!("aof_enabled:{}", on as u8));
    out.push(format!(
        "aof_rewrite_in_progress:{}",
        flag(s.map(|s| &s.rewrite_in_progress))
    ));
    out.push(format!(
        "aof_rewrite_scheduled:{}",
        u8::from(rewrite::scheduled())
    ));
    out.push(format!(
        "aof_last_rewrite_time_sec:{}",
        s.map_or(-1, |s| s.last_rewrite_secs.load(Ordering::Relaxed))
    ));
    out.push(format!("aof_current_rewrite_time_sec:{current_rewrite}"));
    let ok = s.is_none_or(|s| s.last_rewrite_ok.load(Ordering::Relaxed));
    out.push(format!(
        "aof_last_bgrewrite_status:{}",
        if ok { "ok" } else { "err" }
    ));
    out.push(format!(
        "aof_rewrites:{}",
        s.map_or(0, |s| s.rewrites.load(Ordering::Relaxed))
    ));
    out.push(format!(
        "aof_rewrites_consecutive_failures:{}",
        s.map_or(0, |s| s.consecutive_failures.load(Ordering::Relaxed))
    ));
    let write_ok = s.is_none_or(|s| s.write_err.lock().is_none());
    out.push(format!(
        "aof_last_write_status:{}",
        if write_ok { "ok" } else { "err" }
    ));
    // No fork, so no copy-on-write.
    out.push(format!(
        "aof_last_cow_size:{}",
        s.map_or(0, |s| s.last_cow.load(Ordering::Relaxed))
    ));
    out.push("module_fork_in_progress:0".into());
    out.push("module_fork_last_cow_size:0".into());
    if let (true, Some(a)) = (on, aof) {
        out.push(format!(
            "aof_current_size:{}",
            a.stats.current_size.load(Ordering::Relaxed)
        ));
        out.push(format!(
            "aof_base_size:{}",
            a.stats.base_size.load(Ordering::Relaxed)
        ));
        out.push("aof_pending_rewrite:0".into());
        out.push(format!("aof_buffer_length:{}", a.log.lock().buf.len()));
        out.push("aof_pending_bio_fsync:0".into());
        out.push("aof_delayed_fsync:0".into());
    }
}

/// True while AOF is on and its last write failed (writes are refused).
#[inline]
pub fn write_failed() -> bool {
    WRITE_FAILED.load(Ordering::Acquire) && get().is_some_and(|a| a.on.load(Ordering::Acquire))
}

/// The error writes are refused with while the AOF cannot be written
/// (Redis's MISCONF), if any.
pub fn write_error() -> Option<String> {
    let aof = get().filter(|a| a.on.load(Ordering::Acquire))?;
    let err = aof.stats.write_err.lock().clone()?;
    Some(format!("MISCONF Errors writing to the AOF file: {err}"))
}

/// A path relative to the AOF directory, for logs and tests.
pub fn dir_path(srv: &Server) -> PathBuf {
    get().map_or_else(|| dir_of(srv), |a| a.dir.clone())
}
