//! The append path: the effect sink, the shared buffer, and writing (and
//! syncing) it.
//!
//! Group commit. A write command's effect is encoded into one shared
//! buffer (under a short mutex) and numbered. A connection whose batch
//! wrote something waits for "durable up to N" to reach its number before
//! it sends its replies (`super::wait_durable`), so a reply is never seen
//! before its record is written, and with `appendfsync always` synced.
//! The first waiting connection to take the file takes the whole buffer,
//! writes it with one `write` and with `always` `fdatasync`s it, then
//! publishes the number: one write and one sync cover every record that
//! arrived meanwhile, from every worker thread. `everysec` syncs once a
//! second, on a duplicate descriptor outside the lock. The AOF thread
//! writes (and syncs) records no connection waits for, and retries after
//! a failed write.
//!
//! Transactions. The keyspace hands a transaction's (or a script's)
//! records, framed `MULTI` ... `EXEC`, to the sink in one call
//! (`Keyspace::begin_group`); they are appended under one lock of the
//! buffer, so the file never interleaves another client's records with
//! them, and a crash leaves either the whole group or a torn tail.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{APPENDED, Aof, DURABLE, encode};
use crate::store::{Effect, EffectSink};

/// The buffer records are appended to, between writes.
#[derive(Default)]
pub(super) struct Log {
    pub buf: Vec<u8>,
    /// The database of the last record in the file (or buffer): a record
    /// for another one is preceded by `SELECT`. `None` after a new file
    /// was started.
    pub db: Option<usize>,
    /// Records appended so far.
    pub seq: u64,
    /// The second of the last `#TS:` annotation (`aof-timestamp-enabled`).
    pub ts: i64,
}

/// The incremental file being appended to.
pub(super) struct Incr {
    pub file: File,
    /// Bytes written to it.
    pub size: u64,
    /// Written but not yet synced.
    pub unsynced: bool,
    pub last_fsync: Instant,
}

impl Incr {
    pub fn new(file: File, size: u64) -> Incr {
        Incr {
            file,
            size,
            unsynced: false,
            last_fsync: Instant::now(),
        }
    }
}

thread_local! {
    /// The number of the last record this thread appended.
    static LAST: Cell<u64> = const { Cell::new(0) };
}

/// The number of the last record this thread appended.
pub fn thread_seq() -> u64 {
    LAST.with(Cell::get)
}

/// The sink registered with the keyspace (once); forwards to the AOF
/// while it is on.
pub(super) struct Sink;

impl EffectSink for Sink {
    fn effects(&self, records: &[Effect<'_>]) {
        let Some(aof) = super::get() else { return };
        if !aof.accepting() {
            return;
        }
        // PUBLISH (replicas only) and a script's `redis.set_repl` choices.
        let records = crate::store::effects_for(records, crate::store::TO_AOF);
        if !records.is_empty() {
            aof.append(&records);
        }
    }
}

impl Aof {
    /// Appends one command's record, or a transaction's records as one
    /// group, under one lock of the buffer.
    fn append(&self, records: &[Effect<'_>]) {
        let mut log = self.log.lock();
        self.annotate(&mut log);
        for r in records {
            if log.db != Some(r.db) {
                encode::select(&mut log.buf, r.db);
                log.db = Some(r.db);
            }
            encode::command(&mut log.buf, r.argv.iter().copied());
        }
        self.appended_locked(&mut log);
    }

    /// With `aof-timestamp-enabled`, a `#TS:<unix seconds>` line before
    /// the first record of each second, as Redis writes it.
    fn annotate(&self, log: &mut Log) {
        if self.srv.config.aof_timestamp_enabled.get() {
            let now = crate::server::now_ms() / 1000;
            if now > log.ts {
                log.ts = now;
                log.buf
                    .extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
    }

    fn appended_locked(&self, log: &mut Log) {
        log.seq += 1;
        let seq = log.seq;
        APPENDED.store(seq, Ordering::Release);
        LAST.with(|l| l.set(seq));
        // The connection that waits for the record writes (and with
        // `always` syncs) it, `write_through`; the thread's periodic pass
        // picks up records no connection waits for (expiry, eviction).
        // Waking the thread for every command cost a futex wake, and with
        // `always` a thread switch on each side of every sync.
    }

    pub(super) fn always(&self) -> bool {
        self.srv.config.appendfsync.name() == "always"
    }

    /// Writes what the buffer holds to the current incremental file and
    /// syncs it as the policy (or `sync`) asks. Returns false on an error
    /// (already reported); the unwritten bytes stay buffered.
    pub(super) fn flush(&self, spare: &mut Vec<u8>, sync: bool) -> bool {
        let file = self.file.lock();
        self.flush_locked(file, spare, sync, true)
    }

    /// A connection about to wait for record `seq`: writes the buffer
    /// itself unless another writer already did (as Redis writes in its
    /// own loop before it replies), and with `always` syncs it. Several
    /// connections that wait for the same lock are covered by one write:
    /// each finds its record already written once it holds the lock. True
    /// if the record is durable.
    ///
    /// With `always` the lock is only tried: while another connection's
    /// sync runs, this one waits for that sync's wake-up (and leads the
    /// next sync if its record was not in it) instead of blocking its
    /// worker thread on the lock.
    pub(super) fn write_through(&self, seq: u64) -> bool {
        thread_local! {
            static SPARE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        let file = if self.always() {
            match self.file.try_lock() {
                Some(f) => f,
                None => return false,
            }
        } else {
            self.file.lock()
        };
        if seq <= DURABLE.load(Ordering::Acquire) {
            return true;
        }
        SPARE.with(|s| self.flush_locked(file, &mut s.borrow_mut(), false, false))
            && seq <= DURABLE.load(Ordering::Acquire)
    }

    fn flush_locked(
        &self,
        mut file: parking_lot::MutexGuard<'_, Option<Incr>>,
        spare: &mut Vec<u8>,
        sync: bool,
        may_sync: bool,
    ) -> bool {
        let upto = {
            let mut log = self.log.lock();
            std::mem::swap(&mut log.buf, spare);
            log.seq
        };
        let Some(incr) = file.as_mut() else {
            // Off: nothing is kept.
            spare.clear();
            return true;
        };
        let pause = super::FLUSH_SLEEP_US.load(Ordering::Relaxed);
        if pause > 0 && !spare.is_empty() {
            std::thread::sleep(Duration::from_micros(pause));
        }
        let always = self.always();
        if !spare.is_empty() {
            let mut done = 0;
            let result = loop {
                if done == spare.len() {
                    break Ok(());
                }
                let injected = super::FAIL_WRITES_ERRNO.load(Ordering::Relaxed);
                let wrote = if injected != 0 {
                    Err(std::io::Error::from_raw_os_error(injected))
                } else {
                    incr.file.write(&spare[done..])
                };
                match wrote {
                    Ok(0) => break Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            incr.size += done as u64;
            self.stats.written(done as u64);
            if let Err(e) = result {
                if always {
                    crate::warning!(
                        "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..."
                    );
                    std::process::exit(1);
                }
                self.stats.write_failed(&e);
                // Keep what was not written, in front of what came since.
                let mut log = self.log.lock();
                let rest = spare.split_off(done);
                let newer = std::mem::replace(&mut log.buf, rest);
                log.buf.extend_from_slice(&newer);
                drop(log);
                spare.clear();
                self.release_after_error(upto);
                return false;
            }
            self.stats.write_ok();
            incr.unsynced = true;
            spare.clear();
        }
        let due = match self.srv.config.appendfsync.name() {
            "always" => true,
            "everysec" => may_sync && incr.last_fsync.elapsed() >= Duration::from_secs(1),
            _ => false,
        };
        if incr.unsynced && due && !always && !sync {
            // `everysec`: the second's sync runs on a duplicate descriptor
            // outside the lock, so writes go on meanwhile.
            incr.unsynced = false;
            incr.last_fsync = Instant::now();
            let dup = incr.file.try_clone();
            DURABLE.fetch_max(upto, Ordering::AcqRel);
            self.durable.notify_waiters();
            drop(file);
            if let Err(e) = dup.and_then(|f| f.sync_data()) {
                self.stats.write_failed(&e);
                return false;
            }
            return true;
        }
        if incr.unsynced && (sync || due) {
            if let Err(e) = incr.file.sync_data() {
                if always {
                    crate::warning!(
                        "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...",
                        ferrokv_util::repr::strerror(&e)
                    );
                    std::process::exit(1);
                }
                self.stats.write_failed(&e);
                // Retried by the AOF thread (`retry_sync`).
                self.release_after_error(upto);
                return false;
            }
            incr.unsynced = false;
            incr.last_fsync = Instant::now();
        }
        // With `always` only synced records are durable; otherwise written
        // ones are as durable as the policy makes them.
        if !always || !incr.unsynced {
            DURABLE.fetch_max(upto, Ordering::AcqRel);
            self.durable.notify_waiters();
        }
        true
    }

    /// After a failed write or sync with `everysec`/`no`: the records stay
    /// buffered (written once the disk takes them) and their replies go
    /// out, as Redis answers them; meanwhile the gate refuses new writes
    /// (MISCONF), so nobody waits on a disk that may stay full.
    fn release_after_error(&self, upto: u64) {
        DURABLE.fetch_max(upto, Ordering::AcqRel);
        self.durable.notify_waiters();
    }

    /// A failed sync with nothing left to write: sync again, and clear the
    /// error once it works.
    fn retry_sync(&self) {
        let mut file = self.file.lock();
        if let Some(incr) = file.as_mut()
            && self.log.lock().buf.is_empty()
            && incr.file.sync_data().is_ok()
        {
            incr.unsynced = false;
            incr.last_fsync = Instant::now();
            self.stats.write_ok();
        }
    }

    /// Swaps in a new incremental file: what the buffer holds goes to the
    /// old one first (synced), and the new file starts with a `SELECT`.
    /// The caller holds every shard, so no record lands in between.
    pub(super) fn switch_incr(&self, new: Incr) -> std::io::Result<()> {
        let mut spare = Vec::new();
        if !self.flush(&mut spare, true) {
            return Err(std::io::Error::other("the AOF buffer could not be written"));
        }
        let mut file = self.file.lock();
        {
            let mut log = self.log.lock();
            log.db = None;
            log.ts = 0;
        }
        if let Some(old) = file.as_mut() {
            old.file.sync_data()?;
        }
        *file = Some(new);
        Ok(())
    }
}

/// The AOF thread: writes the buffer as it fills; with `everysec` syncs
/// once a second, also when idle.
pub(super) fn run(aof: &'static Aof) {
    let mut spare = Vec::new();
    loop {
        if aof.log.lock().buf.is_empty() {
            // Records no connection waits for are written (and with
            // `always` synced) within this long.
            let wait = if aof.always() { 50 } else { 250 };
            std::thread::sleep(Duration::from_millis(wait));
        }
        let ok = aof.flush(&mut spare, false);
        if !ok || super::WRITE_FAILED.load(Ordering::Acquire) {
            // The disk refused: retry ten times a second, not in a spin.
            std::thread::sleep(Duration::from_millis(100));
            aof.retry_sync();
        }
    }
}
