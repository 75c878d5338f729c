//! The RDB file on disk: SAVE, loading at start-up, DEBUG RELOAD, and the
//! counters INFO persistence reports.
//!
//! A save serializes every database while the caller holds all shards
//! (the command's footprint is "all databases", as FLUSHALL's), so the
//! file is one point in time. It is written to `temp-<pid>.rdb` in `dir`
//! (the working directory), fsynced, renamed over `dbfilename`, and the
//! directory fsynced, so a crash leaves the old file or the new one.

use super::rdb::write::{self, Opts};
use crate::server::{Server, now_ms};
use crate::store::Locks;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Persistence counters (INFO persistence).
pub struct State {
    /// Changes since the last successful save.
    pub dirty: AtomicU64,
    pub saves: AtomicU64,
    /// The last BGSAVE's outcome (SAVE leaves it, as in Redis).
    pub last_ok: AtomicBool,
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
    /// Serializes saves (SAVE from several clients, SHUTDOWN, signals,
    /// the rename that ends a BGSAVE).
    pub(super) lock: parking_lot::Mutex<()>,
    /// Seconds the last load took, for the log.
    pub last_load_ms: AtomicI64,
    /// The load in progress at start-up, if any (INFO `loading:1`).
    pub loading: super::load::Progress,
    /// BGSAVE's state (`bgsave`).
    pub(super) bg: super::bgsave::State,
}

impl Default for State {
    fn default() -> State {
        State {
            dirty: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            last_ok: AtomicBool::new(true),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            lock: parking_lot::Mutex::new(()),
            last_load_ms: AtomicI64::new(0),
            loading: Default::default(),
            bg: Default::default(),
        }
    }
}

/// The file SAVE writes and start-up loads (relative to `dir`, the
/// working directory).
pub fn rdb_path(srv: &Server) -> String {
    srv.config.dbfilename.get()
}

fn opts(srv: &Server) -> Opts {
    Opts {
        compress: srv.config.rdbcompression.get(),
    }
}

/// Bytes gathered before they go to the writer (and into the checksum).
const CHUNK: usize = 1 << 20;

/// Streams output to a writer in chunks, keeping the running CRC-64.
struct Chunked<'w, W: Write> {
    w: &'w mut W,
    buf: Vec<u8>,
    crc: u64,
}

impl<W: Write> Chunked<'_, W> {
    fn flush_if_full(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.crc = crate::util::crc64::crc64(self.crc, &self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

/// Writes the whole dataset as an RDB file to `w`, a chunk at a time (the
/// file is never held in memory whole). `locks` must hold every shard (or
/// be empty: then each shard is taken in turn, which is only a point in
/// time when nothing else runs).
pub fn serialize_to<W: Write>(
    srv: &'static Server,
    locks: &mut Locks,
    w: &mut W,
) -> std::io::Result<()> {
    let ks = &srv.ks;
    let mut out = Chunked {
        w,
        buf: Vec::with_capacity(CHUNK + 4096),
        crc: 0,
    };
    let now = now_ms();
    // The replication history (the shards are held: no write falls
    // between it and the data).
    let repl = crate::server::repl_aux::save_info();
    write::write_header_with(
        &mut out.buf,
        now / 1000,
        crate::alloc::used_memory(),
        false,
        |b| {
            if let Some(i) = &repl {
                crate::server::repl_aux::write_fields(b, i);
            }
        },
    );
    // Not the registry itself: an FCALL may hold it while waiting for a
    // shard this save holds.
    for code in srv.scripting.functions.codes() {
        write::write_function(&mut out.buf, &code, opts(srv));
    }
    let o = opts(srv);
    // `rdb-key-save-delay` slows SAVE too, as in Redis (a test hook: the
    // server is blocked meanwhile, as Redis is).
    let delay = match srv.config.rdb_key_save_delay.get() {
        0 => None,
        d if d > 0 => Some(std::time::Duration::from_micros(d as u64)),
        d => Some(std::time::Duration::from_nanos(d.unsigned_abs())),
    };
    for db in 0..ks.db_count() {
        let (mut keys, mut expires) = (0, 0);
        for s in 0..ks.shard_count() {
            locks.with_shard(ks, db, s, |g| {
                keys += g.len();
                expires += g.expires();
            });
        }
        if keys == 0 {
            continue;
        }
        write::write_db_start(&mut out.buf, db, keys, expires);
        for s in 0..ks.shard_count() {
            let mut result = Ok(());
            locks.with_shard(ks, db, s, |g| {
                for e in g.table().iter() {
                    write::write_entry_with(&mut out.buf, e.key(), e, o);
                    if let Some(d) = delay {
                        std::thread::sleep(d);
                    }
                    if let Err(err) = out.flush_if_full() {
                        result = Err(err);
                        return;
                    }
                }
            });
            result?;
        }
    }
    out.flush()?;
    let crc = srv.config.rdbchecksum.get().then_some(out.crc);
    write::write_footer_crc(&mut out.buf, crc);
    out.w.write_all(&out.buf)
}

/// The whole dataset as an RDB file in memory (tests, small datasets).
pub fn serialize(srv: &'static Server, locks: &mut Locks) -> Vec<u8> {
    let mut v = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = serialize_to(srv, locks, &mut v);
    v
}

/// Writes the dataset to `path` through a temporary file: fsync, rename,
/// fsync of the directory.
fn write_file(srv: &'static Server, locks: &mut Locks, path: &str) -> std::io::Result<()> {
    let tmp = format!("temp-{}.rdb", std::process::id());
    let result = (|| {
        let f = File::create(&tmp)?;
        let mut bw = std::io::BufWriter::with_capacity(CHUNK, f);
        serialize_to(srv, locks, &mut bw)?;
        let f = bw.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the directory is.
        File::open(".")?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A second SIGINT during the final save: the temp file goes, the
/// process exits.
pub fn remove_temp_file() {
    let _ = std::fs::remove_file(format!("temp-{}.rdb", std::process::id()));
}

/// SAVE: serializes under `locks` (all shards) and writes the file.
/// Updates LASTSAVE, the dirty counter and the status on success.
pub fn save(srv: &'static Server, locks: &mut Locks) -> std::io::Result<()> {
    let _one = srv.persist.lock.lock();
    let dirty_before = srv.persist.dirty.load(Ordering::Relaxed);
    let path = rdb_path(srv);
    match write_file(srv, locks, &path) {
        Ok(()) => {
            crate::notice!("DB saved on disk");
            srv.persist.dirty.fetch_sub(
                dirty_before.min(srv.persist.dirty.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            srv.last_save_ms.store(now_ms(), Ordering::Relaxed);
            srv.persist.saves.fetch_add(1, Ordering::Relaxed);
            super::bgsave::save_succeeded(srv);
            Ok(())
        }
        Err(e) => {
            let cwd = std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            crate::warning!(
                "Failed opening the temp RDB file temp-{}.rdb (in server root dir {cwd}) for saving: {e}",
                std::process::id()
            );
            Err(e)
        }
    }
}

/// Takes every shard of every database and saves (shutdown paths that
/// hold no locks).
pub fn save_all(srv: &'static Server) -> std::io::Result<()> {
    let mut locks = Locks::default();
    let mut b = locks.batch(&srv.ks);
    b.all_dbs();
    // A fresh Locks holds nothing, so taking everything cannot be refused.
    let _ = b.take();
    save(srv, &mut locks)
}

/// Whether `save` points are configured (a final save at shutdown).
pub fn save_points_configured(srv: &Server) -> bool {
    srv.config.save.with(|s| !s.trim().is_empty())
}

pub use super::load::{load_at_startup, load_file, load_preamble};

/// INFO persistence, with every field Redis 7.0.15 prints (the fork and
/// AOF ones at their idle values).
pub fn info_lines(srv: &Server, lines: &mut Vec<String>) {
    let p = &srv.persist;
    let mut f = |s: String| lines.push(s);
    f(format!("loading:{}", u8::from(p.loading.active())));
    f(format!(
        "async_loading:{}",
        u8::from(crate::server::replica_sync::async_loading())
    ));
    // A running snapshot (BGSAVE, a transfer, an AOF rewrite) in Redis's
    // fork fields: what writers copied stands for copy-on-write (it only
    // grows, so its peak is itself), read live.
    let (total, done, copied) = if srv.ks.snapshot_in_progress() {
        srv.ks.snapshot_progress().get()
    } else {
        (0, 0, 0)
    };
    f(format!("current_cow_peak:{copied}"));
    f(format!("current_cow_size:{copied}"));
    f("current_cow_size_age:0".into());
    let perc = if total > 0 {
        done as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    f(format!("current_fork_perc:{perc:.2}"));
    f(format!("current_save_keys_processed:{done}"));
    f(format!("current_save_keys_total:{total}"));
    f(format!(
        "rdb_changes_since_last_save:{}",
        p.dirty.load(Ordering::Relaxed)
    ));
    let bg = super::bgsave::in_progress(srv) || crate::server::repl_sync::in_progress();
    f(format!("rdb_bgsave_in_progress:{}", u8::from(bg)));
    f(format!(
        "rdb_last_save_time:{}",
        srv.last_save_ms.load(Ordering::Relaxed) / 1000
    ));
    // SAVE does not change the status (as in Redis); a BGSAVE does.
    let ok = p.last_ok.load(Ordering::Relaxed) && super::bgsave::last_ok(srv);
    f(format!(
        "rdb_last_bgsave_status:{}",
        if ok { "ok" } else { "err" }
    ));
    f(format!(
        "rdb_last_bgsave_time_sec:{}",
        super::bgsave::last_time_sec(srv)
    ));
    f(format!(
        "rdb_current_bgsave_time_sec:{}",
        super::bgsave::current_time_sec(srv)
    ));
    f(format!("rdb_saves:{}", p.saves.load(Ordering::Relaxed)));
    f(format!(
        "rdb_last_cow_size:{}",
        p.bg.last_cow.load(std::sync::atomic::Ordering::Relaxed)
    ));
    f(format!(
        "rdb_last_load_keys_expired:{}",
        p.loaded_expired.load(Ordering::Relaxed)
    ));
    f(format!(
        "rdb_last_load_keys_loaded:{}",
        p.loaded_keys.load(Ordering::Relaxed)
    ));
    // aof_* and module_fork_* follow, as Redis prints them.
    super::aof::info_fields(lines);
    p.loading.info_lines(lines);
}
