//! Loading an RDB image into the keyspace (start-up, DEBUG RELOAD, an AOF
//! preamble) and the loading state clients see meanwhile.
//!
//! The file is parsed on one thread (its format is sequential). At
//! start-up, with more than one core and a file worth it, the parsed
//! entries go in batches to worker threads, each owning a fixed set of
//! shards (shard index modulo the worker count), which insert them: the
//! shard tables fill in parallel with the parsing. Elsewhere the parsing
//! thread inserts through the caller's locks. Either way every table is
//! sized from `RESIZEDB` first, and an insert probes once
//! ([`Shard::insert_absent`]).
//!
//! A failure (a corrupt record, a duplicate key found by a worker) is
//! reported at the first offset in file order where anything went wrong,
//! as a sequential load would, and the caller refuses to start: never half
//! a dataset.
//!
//! While a load at start-up runs, [`Progress`] is active: the listeners are
//! already bound, commands without the `loading` flag get `-LOADING`, and
//! INFO persistence reports `loading:1` with the progress fields.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use parking_lot::Mutex;

use super::rdb::Error;
use super::rdb::file::{self, Sink, Stats};
use super::rdb::read::{Limits, Reader};
use crate::server::{Server, now_ms};
use crate::store::keyspace::{SetAside, hash_key};
use crate::store::{Entry, Locks, Value};

/// Why a load stopped when a shutdown was asked for during it.
const SHUTDOWN_WHILE_LOADING: &str = "shutdown requested while loading";

/// The error clients get for a command not allowed while loading.
pub const LOADING_ERROR: &str = "LOADING Redis is loading the dataset in memory";

/// The loading state INFO persistence shows (`loading:1` and its fields).
#[derive(Default)]
pub struct Progress {
    active: AtomicBool,
    start_time: AtomicI64,
    total_bytes: AtomicU64,
    loaded_bytes: AtomicU64,
    rdb_used_mem: AtomicU64,
    /// Bytes of earlier files of the same load (an AOF's base and
    /// increments count as one load).
    done_bytes: AtomicU64,
}

impl Progress {
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// A load of `total` bytes starts.
    pub fn begin(&self, total: u64) {
        self.start_time.store(now_ms() / 1000, Ordering::Relaxed);
        self.total_bytes.store(total, Ordering::Relaxed);
        self.loaded_bytes.store(0, Ordering::Relaxed);
        self.done_bytes.store(0, Ordering::Relaxed);
        self.rdb_used_mem.store(0, Ordering::Relaxed);
        self.active.store(true, Ordering::Release);
    }

    pub fn end(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Bytes read so far of the file being loaded.
    #[inline]
    pub fn set_loaded(&self, pos: u64) {
        let done = self.done_bytes.load(Ordering::Relaxed);
        self.loaded_bytes.store(done + pos, Ordering::Relaxed);
    }

    /// The file being loaded is done (`len` bytes): the next one's
    /// positions count after it.
    pub fn file_done(&self, len: u64) {
        let done = self.done_bytes.fetch_add(len, Ordering::Relaxed) + len;
        self.loaded_bytes.store(done, Ordering::Relaxed);
    }

    pub fn set_rdb_used_mem(&self, n: u64) {
        self.rdb_used_mem.store(n, Ordering::Relaxed);
    }

    /// INFO persistence's `loading_*` lines (only while loading).
    pub fn info_lines(&self, lines: &mut Vec<String>) {
        if !self.active() {
            return;
        }
        let start = self.start_time.load(Ordering::Relaxed);
        let total = self.total_bytes.load(Ordering::Relaxed);
        let used_mem = self.rdb_used_mem.load(Ordering::Relaxed);
        let loaded = self.loaded_bytes.load(Ordering::Relaxed);
        let (loaded, perc, remaining) = if total > 0 {
            let loaded = loaded.min(total);
            let perc = loaded as f64 / total as f64 * 100.0;
            (loaded, perc, total - loaded)
        } else if used_mem > 0 {
            // A payload of unknown length (`$EOF:<mark>`): as Redis, the
            // memory the file's writer used stands for its size.
            let perc = (loaded as f64 / used_mem as f64 * 100.0).min(99.99);
            (loaded, perc, used_mem.saturating_sub(loaded).max(1))
        } else {
            (loaded, 0.0, 1)
        };
        let elapsed = (now_ms() / 1000 - start).max(0) as u64;
        // As Redis: a made-up second until a second has passed.
        let eta = if elapsed == 0 {
            1
        } else {
            elapsed.saturating_mul(remaining) / (loaded + 1)
        };
        lines.push(format!("loading_start_time:{start}"));
        lines.push(format!("loading_total_bytes:{total}"));
        lines.push(format!("loading_rdb_used_mem:{used_mem}"));
        lines.push(format!("loading_loaded_bytes:{loaded}"));
        lines.push(format!("loading_loaded_perc:{perc:.2}"));
        lines.push(format!("loading_eta_seconds:{eta}"));
    }
}

/// `key-load-delay`: microseconds to sleep per key loaded; a negative
/// value -N sleeps one microsecond for one key in N on average (the test
/// suites use it to make a load last).
fn key_load_delay(srv: &Server) {
    let d = srv.config.key_load_delay.get();
    if d == 0 {
        return;
    }
    let us = if d > 0 {
        d as u64
    } else {
        u64::from(crate::util::rand::u64().is_multiple_of(d.unsigned_abs()))
    };
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

/// What every loader does beside placing keys: presizing, `used-mem`,
/// progress and the per-key delay.
struct Common {
    srv: &'static Server,
    /// Report progress and apply `key-load-delay` (a load at start-up).
    progress: bool,
    /// The `repl-stream-db` field, if the file names one.
    stream_db: Option<usize>,
}

impl Common {
    fn new(srv: &'static Server, progress: bool) -> Common {
        Common {
            srv,
            progress,
            stream_db: None,
        }
    }

    /// Per-shard capacity for a database announced to hold `keys` keys,
    /// bounded by what the rest of the file can hold (a key record takes
    /// at least three bytes), so a lying header allocates nothing big.
    fn per_shard(&self, keys: u64, bytes_left: usize) -> usize {
        let keys = usize::try_from(keys)
            .unwrap_or(usize::MAX)
            .min(bytes_left / 3);
        let n = self.srv.ks.shard_count();
        // Shards get the keys evenly, give or take a few hundred.
        keys / n + keys / n / 32 + 64
    }

    fn aux(&mut self, name: &[u8], value: &[u8]) {
        if name == b"repl-stream-db" {
            self.stream_db = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
        if self.progress && name == b"used-mem" {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.srv.persist.loading.set_rdb_used_mem(n);
        }
        crate::server::repl_aux::loaded_aux(name, value);
    }

    fn empty_key(&self, key: &[u8]) {
        crate::warning!(
            "rdbLoadObject skipping empty key: {}",
            String::from_utf8_lossy(key)
        );
    }

    #[inline]
    fn progress(&self, pos: usize) -> super::rdb::read::Result<()> {
        if self.progress {
            self.srv.persist.loading.set_loaded(pos as u64);
            key_load_delay(self.srv);
            // SIGTERM while loading: stop here, nothing is saved.
            if self.srv.shutting_down() {
                return Err(Error::new(pos, SHUTDOWN_WHILE_LOADING));
            }
        }
        Ok(())
    }
}

const REGISTRY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Loads a function library's code (`replace`: over existing ones).
fn load_function(srv: &'static Server, code: &[u8], replace: bool) -> Result<(), String> {
    // Shards may be held: a running FCALL may hold the registry while it
    // waits for one, so wait only a bounded time (then the load fails).
    let functions = &srv.scripting.functions;
    let mut reg = functions
        .try_lock_for(REGISTRY_WAIT)
        .ok_or("the function registry is busy (a function is running)")?;
    let r = reg.load(srv, code, replace).map(|_| ());
    functions.update_counts(&reg);
    r
}

fn duplicate(db: usize, key: &[u8]) -> String {
    format!(
        "duplicate key '{}' in DB {db}",
        String::from_utf8_lossy(key)
    )
}

/// Places keys on the parsing thread, through `locks` (which hold every
/// shard, or none: then each insert locks its shard briefly).
struct Inline<'a> {
    common: Common,
    locks: &'a mut Locks,
    /// Replace existing keys and libraries (DEBUG RELOAD MERGE).
    replace: bool,
}

impl Sink for Inline<'_> {
    fn key(&mut self, db: usize, entry: Entry) -> Result<(), String> {
        let ks = &self.common.srv.ks;
        let hash = hash_key(entry.key());
        let replace = self.replace;
        self.locks.with_shard(ks, db, ks.shard_of(hash), |g| {
            match g.insert_absent(hash, entry, hash_key) {
                Ok(_) => Ok(()),
                Err(entry) if replace => {
                    if let Some(i) = g.find(hash, entry.key()) {
                        drop(g.remove(i, hash_key));
                    }
                    g.insert(hash, entry, hash_key);
                    Ok(())
                }
                Err(entry) => Err(duplicate(db, entry.key())),
            }
        })
    }

    fn function(&mut self, code: &[u8]) -> Result<(), String> {
        load_function(self.common.srv, code, self.replace)
    }

    fn db_size(&mut self, db: usize, keys: u64, bytes_left: usize) {
        let ks = &self.common.srv.ks;
        let n = self.common.per_shard(keys, bytes_left);
        for s in 0..ks.shard_count() {
            self.locks
                .with_shard(ks, db, s, |g| g.reserve(g.len() + n, hash_key));
        }
    }

    fn aux(&mut self, name: &[u8], value: &[u8]) {
        self.common.aux(name, value);
    }

    fn expired_key(&mut self, db: usize, key: &[u8]) {
        crate::server::repl_aux::loaded_expired(db, key);
    }

    fn empty_key(&mut self, key: &[u8]) {
        self.common.empty_key(key);
    }

    fn progress(&mut self, pos: usize) -> super::rdb::read::Result<()> {
        self.common.progress(pos)
    }
}

/// A key on its way to a worker: built, or a string record still in the
/// file (its key and encoded value, as ranges of it), which the worker
/// decodes and allocates itself (the parser's share of the work is then
/// only framing).
enum Job {
    Built(Entry),
    /// Moved out by the worker.
    Taken,
    Str {
        key: Range<usize>,
        value: Range<usize>,
        expire: Option<i64>,
        lru: u32,
    },
}

/// One parsed key on its way to a worker: database, record offset, hash.
type Item = (usize, usize, u64, Job);

/// Entries per batch sent to a worker (one channel message).
const BATCH: usize = 512;
/// Batches queued per worker before the parser waits: bounds the memory
/// in flight.
const QUEUE: usize = 16;

/// Hands parsed keys to the shard workers (start-up, several cores).
struct Parallel<'e> {
    common: Common,
    senders: Vec<SyncSender<Vec<Item>>>,
    pending: Vec<Vec<Item>>,
    /// Set once a worker failed: parsing stops.
    failed: &'e AtomicBool,
}

impl Parallel<'_> {
    fn push(&mut self, item: Item) -> super::rdb::read::Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            // Stop parsing: the worker's error (at an earlier offset) is
            // the one reported.
            return Err(Error::new(usize::MAX, "stopped"));
        }
        let w = self.common.srv.ks.shard_of(item.2) % self.senders.len();
        self.pending[w].push(item);
        if self.pending[w].len() >= BATCH {
            self.flush(w);
        }
        Ok(())
    }

    fn flush(&mut self, w: usize) {
        let batch = std::mem::replace(&mut self.pending[w], Vec::with_capacity(BATCH));
        // A worker only stops when its channel closes, after this.
        let _ = self.senders[w].send(batch);
    }
}

impl Sink for Parallel<'_> {
    fn key(&mut self, db: usize, entry: Entry) -> Result<(), String> {
        self.key_at(db, entry, 0).map_err(|e| e.msg)
    }

    fn key_at(&mut self, db: usize, entry: Entry, at: usize) -> super::rdb::read::Result<()> {
        let hash = hash_key(entry.key());
        self.push((db, at, hash, Job::Built(entry)))
    }

    fn string_at(
        &mut self,
        db: usize,
        at: usize,
        key: &[u8],
        key_range: Range<usize>,
        _value: &[u8],
        value_range: Range<usize>,
        expire: Option<i64>,
        lru: u32,
    ) -> super::rdb::read::Result<()> {
        let job = Job::Str {
            key: key_range,
            value: value_range,
            expire,
            lru,
        };
        self.push((db, at, hash_key(key), job))
    }

    fn function(&mut self, code: &[u8]) -> Result<(), String> {
        load_function(self.common.srv, code, false)
    }

    fn db_size(&mut self, db: usize, keys: u64, bytes_left: usize) {
        let ks = &self.common.srv.ks;
        let n = self.common.per_shard(keys, bytes_left);
        for s in 0..ks.shard_count() {
            let mut g = ks.db(db).shard(s).lock();
            let len = g.len();
            g.reserve(len + n, hash_key);
        }
    }

    fn aux(&mut self, name: &[u8], value: &[u8]) {
        self.common.aux(name, value);
    }

    fn expired_key(&mut self, db: usize, key: &[u8]) {
        crate::server::repl_aux::loaded_expired(db, key);
    }

    fn empty_key(&mut self, key: &[u8]) {
        self.common.empty_key(key);
    }

    fn progress(&mut self, pos: usize) -> super::rdb::read::Result<()> {
        self.common.progress(pos)
    }
}

/// Keeps the failure at the lowest offset.
fn record(error: &Mutex<Option<Error>>, failed: &AtomicBool, e: Error) {
    let mut slot = error.lock();
    if slot.as_ref().is_none_or(|old| e.offset < old.offset) {
        *slot = Some(e);
    }
    failed.store(true, Ordering::Relaxed);
}

/// A worker: builds the entries of string records and inserts the batches
/// it receives into its shards, until the channel closes. A batch is taken
/// shard by shard (file order kept within a shard), each shard locked once
/// for its part: its home slots are touched first, the entries built, then
/// inserted, so the table's cache misses overlap. INFO can count keys
/// between parts. A failure (a duplicate key, a bad value) ends its part;
/// the other parts of the batch still run (one may fail at an earlier
/// offset), later batches (all later in the file) are dropped.
fn insert_worker(
    srv: &'static Server,
    data: &[u8],
    rx: Receiver<Vec<Item>>,
    error: &Mutex<Option<Error>>,
    failed: &AtomicBool,
) {
    let ks = &srv.ks;
    let mut broken = false;
    let mut built: Vec<(Entry, usize, usize, u64)> = Vec::with_capacity(BATCH);
    while let Ok(mut batch) = rx.recv() {
        if broken {
            continue;
        }
        // Stable: equal keys stay in file order.
        batch.sort_by_key(|&(db, _, hash, _)| (db, ks.shard_of(hash)));
        let mut rest = &mut batch[..];
        while let Some(&(db, _, hash, _)) = rest.first() {
            let shard = ks.shard_of(hash);
            let n = rest
                .iter()
                .position(|&(d, _, h, _)| d != db || ks.shard_of(h) != shard)
                .unwrap_or(rest.len());
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            let mut g = ks.db(db).shard(shard).lock();
            for &(_, _, hash, _) in part.iter() {
                g.touch_home(hash);
            }
            built.clear();
            for (db, at, hash, job) in part.iter_mut() {
                let entry = match std::mem::replace(job, Job::Taken) {
                    Job::Built(e) => e,
                    Job::Taken => continue,
                    Job::Str {
                        key,
                        value,
                        expire,
                        lru,
                    } => match Reader::with_base(&data[value.clone()], value.start).string_ref() {
                        Ok(v) => Entry::new(&data[key], Value::from_string(&v), expire, lru),
                        Err(e) => {
                            // The entries before it are still inserted: a
                            // duplicate among them comes earlier.
                            record(error, failed, e);
                            broken = true;
                            break;
                        }
                    },
                };
                built.push((entry, *db, *at, *hash));
            }
            for (entry, db, at, hash) in built.drain(..) {
                if let Err(entry) = g.insert_absent(hash, entry, hash_key) {
                    record(error, failed, Error::new(at, duplicate(db, entry.key())));
                    broken = true;
                    break;
                }
            }
        }
    }
    crate::alloc::flush_thread();
}

/// Files below this size load on one thread (threads cost more than they
/// save).
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// How many insert workers a load of `len` bytes gets: none on one core
/// or for a small file; else one per core, at most 8.
fn workers_for(len: usize) -> usize {
    if len < PARALLEL_MIN_BYTES {
        return 0;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return 0;
    }
    // The workers do most of the work (values, allocation, inserts): one
    // per core, the parser sharing them.
    cores.min(8)
}

/// Parses `data` on this thread while workers insert (the keyspace must be
/// empty and no shard held by anyone for long).
fn parse_parallel(
    srv: &'static Server,
    data: &[u8],
    lim: &Limits,
    now: i64,
    workers: usize,
    progress: bool,
) -> Result<Stats, Error> {
    let error = Mutex::new(None);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(workers);
        for i in 0..workers {
            let (tx, rx) = sync_channel(QUEUE);
            senders.push(tx);
            let (error, failed) = (&error, &failed);
            std::thread::Builder::new()
                .name(format!("ferrokv-load{i}"))
                .spawn_scoped(scope, move || {
                    crate::alloc::counted(|| insert_worker(srv, data, rx, error, failed));
                })
                .map_err(|e| Error::new(0, format!("can't start a loader thread: {e}")))?;
        }
        let mut sink = Parallel {
            common: Common::new(srv, progress),
            pending: (0..workers).map(|_| Vec::with_capacity(BATCH)).collect(),
            senders,
            failed: &failed,
        };
        let parsed = file::parse(data, srv.ks.db_count(), lim, now, &mut sink);
        for w in 0..workers {
            if !sink.pending[w].is_empty() {
                sink.flush(w);
            }
        }
        drop(sink);
        Ok(parsed)
    })
    .and_then(|parsed| {
        // The workers are joined: the earliest failure in file order wins.
        match (parsed, error.into_inner()) {
            (Ok(_), Some(e)) => Err(e),
            (Err(p), Some(e)) => Err(if e.offset <= p.offset { e } else { p }),
            (r, None) => r,
        }
    })
}

/// Parses `data` into the dataset: in parallel at start-up (`progress`)
/// when worth it, else through `locks`.
fn parse_into(
    srv: &'static Server,
    locks: &mut Locks,
    data: &[u8],
    replace: bool,
    progress: bool,
) -> Result<Stats, Error> {
    let lim = Limits::of(&srv.config);
    let now = now_ms();
    let workers = if progress && locks.is_empty() && !replace {
        workers_for(data.len())
    } else {
        0
    };
    if workers > 0 {
        return parse_parallel(srv, data, &lim, now, workers, progress);
    }
    let mut sink = Inline {
        common: Common::new(srv, progress),
        locks,
        replace,
    };
    file::parse(data, srv.ks.db_count(), &lim, now, &mut sink)
}

/// DEBUG RELOAD: loads `path` into the (emptied) dataset under `locks`
/// (every shard), other clients getting `-LOADING` meanwhile, as Redis
/// answers them. `Ok(None)` when there is no file.
pub fn load_file(
    srv: &'static Server,
    locks: &mut Locks,
    path: &str,
    replace: bool,
) -> Result<Option<Stats>, String> {
    let r = load_path(srv, locks, path, replace, true);
    srv.persist.loading.end();
    r
}

fn load_path(
    srv: &'static Server,
    locks: &mut Locks,
    path: &str,
    replace: bool,
    progress: bool,
) -> Result<Option<Stats>, String> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("Fatal error loading the DB ({path}): {e}")),
    };
    if progress {
        srv.persist.loading.begin(data.len() as u64);
    }
    let stats = parse_into(srv, locks, &data, replace, progress).map_err(|e| {
        // Redis's words for a corrupt file (its suite counts them).
        crate::warning!(
            "Internal error in RDB reading offset {} -> {}",
            e.offset,
            e.msg
        );
        format!("Fatal error loading the DB ({path}): {e}")
    })?;
    note_loaded(srv, &stats);
    // The file's buffer is large: free it off this thread's clock.
    drop(data);
    Ok(Some(stats))
}

/// What a replica's diskless load found: the counts, the `repl-stream-db`
/// the payload names, and the bytes read past its end.
pub struct Streamed {
    pub stats: Stats,
    pub stream_db: Option<usize>,
    pub rest: Vec<u8>,
}

/// A replica's diskless load: parses the payload `input` delivers while
/// it arrives, inserting each key through `locks` (holding none: each
/// insert locks its shard briefly), with progress and `key-load-delay`
/// per key, so a slow load reads the link slowly and paces the master.
pub fn load_stream(
    srv: &'static Server,
    locks: &mut Locks,
    input: &mut dyn super::rdb::feed::Input,
) -> Result<Streamed, Error> {
    let mut sink = Inline {
        common: Common::new(srv, true),
        locks,
        replace: false,
    };
    let (stats, rest) = stream_into(srv, input, &mut sink)?;
    Ok(Streamed {
        stats,
        stream_db: sink.common.stream_db,
        rest,
    })
}

/// A replica's asynchronous load: like [`load_stream`], into `aside`
/// (the dataset built beside the one served); returns the function
/// libraries' code too, loaded when the new dataset is put in place.
pub fn load_stream_aside(
    srv: &'static Server,
    aside: &mut SetAside,
    input: &mut dyn super::rdb::feed::Input,
) -> Result<(Streamed, Vec<Vec<u8>>), Error> {
    let mut sink = Beside {
        common: Common::new(srv, true),
        aside,
        functions: Vec::new(),
    };
    let (stats, rest) = stream_into(srv, input, &mut sink)?;
    let streamed = Streamed {
        stats,
        stream_db: sink.common.stream_db,
        rest,
    };
    Ok((streamed, sink.functions))
}

fn stream_into(
    srv: &'static Server,
    input: &mut dyn super::rdb::feed::Input,
    sink: &mut dyn Sink,
) -> Result<(Stats, Vec<u8>), Error> {
    let lim = Limits::of(&srv.config);
    let dbs = srv.ks.db_count();
    let (stats, rest) = super::rdb::feed::parse(input, dbs, &lim, now_ms(), sink)?;
    note_loaded(srv, &stats);
    Ok((stats, rest))
}

/// INFO's `rdb_last_load_keys_loaded` / `_expired` after a load.
fn note_loaded(srv: &Server, stats: &Stats) {
    srv.persist
        .loaded_keys
        .store(stats.keys as u64, Ordering::Relaxed);
    srv.persist
        .loaded_expired
        .store(stats.expired as u64, Ordering::Relaxed);
}

/// Places keys into a dataset built aside (owned: no locks), and keeps
/// the function libraries' code for later.
struct Beside<'a> {
    common: Common,
    aside: &'a mut SetAside,
    functions: Vec<Vec<u8>>,
}

impl Sink for Beside<'_> {
    fn key(&mut self, db: usize, entry: Entry) -> Result<(), String> {
        let ks = &self.common.srv.ks;
        let hash = hash_key(entry.key());
        let shard = self.aside.shard_mut(ks, db, ks.shard_of(hash));
        shard
            .insert_absent(hash, entry, hash_key)
            .map(|_| ())
            .map_err(|entry| duplicate(db, entry.key()))
    }

    fn function(&mut self, code: &[u8]) -> Result<(), String> {
        self.functions.push(code.to_vec());
        Ok(())
    }

    fn db_size(&mut self, db: usize, keys: u64, bytes_left: usize) {
        let ks = &self.common.srv.ks;
        let n = self.common.per_shard(keys, bytes_left);
        for s in 0..ks.shard_count() {
            let g = self.aside.shard_mut(ks, db, s);
            g.reserve(g.len() + n, hash_key);
        }
    }

    fn aux(&mut self, name: &[u8], value: &[u8]) {
        self.common.aux(name, value);
    }

    fn empty_key(&mut self, key: &[u8]) {
        self.common.empty_key(key);
    }

    fn progress(&mut self, pos: usize) -> super::rdb::read::Result<()> {
        self.common.progress(pos)
    }
}

/// Loads the RDB image at the start of `data` (an AOF base or preamble)
/// into the dataset; returns how many bytes it used. At start-up
/// (`srv.persist.loading` active) it reports progress and may load in
/// parallel.
pub fn load_preamble(srv: &'static Server, data: &[u8]) -> Result<usize, String> {
    let mut locks = Locks::default();
    let progress = srv.persist.loading.active();
    let stats = parse_into(srv, &mut locks, data, false, progress).map_err(|e| e.to_string())?;
    Ok(stats.consumed)
}

/// Start-up: loads `dir/dbfilename` while clients get `-LOADING` (the
/// caller set the loading state). A file that cannot be read whole
/// refuses the start (the message names the file and the offset).
pub fn load_at_startup(srv: &'static Server) -> Result<(), String> {
    let started = Instant::now();
    let path = super::save::rdb_path(srv);
    let mut locks = Locks::default();
    // The replication history the file names is taken up again.
    crate::server::repl_aux::begin_load(srv);
    let loaded = load_path(srv, &mut locks, &path, false, true);
    crate::server::repl_aux::end_load(srv, matches!(loaded, Ok(Some(_))));
    let loaded = loaded?;
    if let Some(st) = loaded {
        if st.empty > 0 {
            crate::warning!(
                "Done loading RDB, keys loaded: {}, keys expired: {}, empty keys skipped: {}.",
                st.keys,
                st.expired,
                st.empty
            );
        } else {
            crate::notice!(
                "Done loading RDB, keys loaded: {}, keys expired: {}.",
                st.keys,
                st.expired
            );
        }
        crate::notice!(
            "DB loaded from disk: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    srv.persist.dirty.store(0, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests;
