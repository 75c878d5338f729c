//! Point-in-time snapshots of the whole keyspace without fork and without a
//! copy: what BGSAVE and the AOF rewrite walk.
//!
//! Redis forks and lets the kernel copy pages that change while the child
//! writes them out, which can double the resident memory. Here the copy is
//! per entry and only of entries that change before the walk reached them:
//!
//! - **Colours.** Every table slot carries a colour bit (the low bit of the
//!   aligned entry pointer, see `table.rs`), and every table a current
//!   colour that new entries get. With no snapshot running every entry has
//!   its table's colour. The bit lives in the slot word rather than in the
//!   entry so that it survives everything that rebuilds an entry (a new
//!   deadline, a new value, RENAME) and the walk can skip finished entries
//!   without touching them.
//! - **The start is the instant of the image.** [`Keyspace::snapshot`] holds
//!   every shard of every database at once (one `Locks` batch, ascending, so
//!   a MULTI is wholly before or wholly after it), records the sizes, flips
//!   the colour of each non-empty table, so that every entry present is now
//!   *old* (not yet written), and gives its shard a [`ShardSnap`]. That is
//!   O(shards), not O(keys).
//! - **Writers save before they change.** Every mutation of an entry goes
//!   through `Shard` (`get_mut`, `set_value`, `set_expire`, `remove`; the
//!   access-time update has its own `set_lru`). While the shard has a
//!   `ShardSnap`, an old entry is first encoded into the shard's side
//!   buffer and recoloured, so the image keeps its value as of the start;
//!   a replaced value is not even encoded there: the old entry is kept
//!   whole for the walk, which encodes it outside the lock. New entries
//!   get the new colour and are not in the image. With no snapshot running
//!   the cost is one test of `Shard::snap` (and an OR of the table's colour
//!   on insert).
//! - **FLUSHDB/FLUSHALL** (`Shard::take_all`) hand the old table to the
//!   `ShardSnap` instead of freeing it, O(1) under the lock; the walk writes
//!   its old entries and frees it. **SWAPDB** swaps the `ShardSnap`s along
//!   with the tables (a state describes its table's entries, which keep
//!   belonging to the database they were in at the start), and the registry
//!   records where each database's state went so the walk finds it.
//!   **MOVE/RENAME** are a remove (saved under the old name and database)
//!   and an insert (new, not in the image).
//! - **The walk** ([`Snapshot::next_chunk`], on the caller's thread) goes
//!   database by database, shard by shard. It takes a shard's lock for a
//!   bounded step: takes the side buffer and the kept entries, then visits
//!   home slots with the SCAN cursor (reverse binary, which visits every
//!   entry present for the whole walk even if the table grows or shrinks
//!   between steps; see `Table::scan`), encodes each old entry and
//!   recolours it, up to [`STEP_BYTES`] or [`HOMES_PER_STEP`] home slots,
//!   and lets go so writers interleave. A per-state count of old entries
//!   says when a table is done; its state is dropped under the same lock,
//!   after which nothing more is saved for it.
//! - **Output** is per database: a [`Chunk::Db`] with the sizes at the start
//!   (for SELECTDB/RESIZEDB), then [`Chunk::Bytes`] pieces, which are the
//!   encoder's records concatenated, in no particular key order. Memory
//!   beyond the dataset is the walk's one chunk plus whatever writers saved
//!   in shards the walk has not reached yet; it is handed out (and freed)
//!   as the walk reaches them.
//!
//! One snapshot runs at a time ([`StartError::InProgress`]). Dropping a
//! [`Snapshot`] before its end finishes the walk without encoding
//! (recolouring only) so that the next one starts from a clean state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::entry::{Entry, EntryRef, Value};
use super::keyspace::{Keyspace, Locks};
use super::shard::Shard;
use super::table::Table;

/// Writes one entry's record (key, value, deadline as the caller's format
/// wants them) to the end of the buffer. Called from the walk and from
/// writers, under a shard lock: it must not take locks of its own.
pub type Encoder = Arc<dyn Fn(EntryRef<'_>, &mut Vec<u8>) + Send + Sync>;

/// Bytes the walk encodes before it hands a chunk out.
pub const CHUNK: usize = 64 * 1024;
/// Bytes one locked step of the walk encodes at most (past one record).
pub const STEP_BYTES: usize = 16 * 1024;
/// Home slots one locked step of the walk visits at most.
pub const HOMES_PER_STEP: usize = 128;

/// `Registry::loc` of a database shard that has no state (empty at the
/// start, or already walked).
const NONE: usize = usize::MAX;

/// Why a snapshot did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// Another snapshot is still running (BGSAVE answers "Background save
    /// already in progress").
    InProgress,
    /// The caller held some shards but not all: it must hold all or none.
    LocksHeld,
}

/// The keyspace's side of snapshots: whether one runs, and where each
/// database's shard states are (SWAPDB moves them).
pub struct Registry {
    busy: AtomicBool,
    progress: Progress,
    /// Indexed by `db * shards + shard` as of the start: the database whose
    /// shard now holds that state, or [`NONE`].
    loc: Box<[AtomicUsize]>,
}

impl Registry {
    pub(super) fn new(shards_total: usize) -> Registry {
        Registry {
            busy: AtomicBool::new(false),
            progress: Progress::default(),
            loc: (0..shards_total).map(|_| AtomicUsize::new(NONE)).collect(),
        }
    }

    /// `shard` (of database `db`) was just swapped with another: its state,
    /// if any, now lives here. Called with the shard locked.
    pub(super) fn relocated(&self, shard: &Shard, db: usize) {
        if let Some(s) = &shard.snap {
            self.loc[s.origin].store(db, Ordering::Release);
        }
    }

    /// True while a snapshot runs.
    pub fn in_progress(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }
}

/// How far the running (or last) snapshot got, for INFO's
/// `current_save_keys_*`, `current_fork_perc` and `current_cow_size`.
#[derive(Default, Debug)]
pub struct Progress {
    /// Keys in the image.
    total: AtomicUsize,
    /// Keys of the image written out so far (by the walk, or saved by a
    /// writer and handed to the walk).
    done: AtomicUsize,
    /// Bytes writers copied before changing an entry of the image: what a
    /// fork's copy-on-write would have cost, which never goes down during
    /// a snapshot.
    copied: AtomicUsize,
}

impl Progress {
    /// (keys in the image, keys written out, bytes writers copied).
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.total.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed),
            self.copied.load(Ordering::Relaxed),
        )
    }
}

/// A running snapshot's state in one shard: what writers saved, and how
/// far the walk has come through the table.
pub struct ShardSnap {
    /// `db * shards + shard` as of the start: whose image these entries are.
    origin: usize,
    encode: Encoder,
    /// Records of old entries writers changed or removed.
    side: Vec<u8>,
    /// Old entries whose value was replaced, kept whole for the walk.
    kept: Vec<Entry>,
    /// Tables flushed while old entries were in them.
    detached: Vec<Table>,
    /// The walk's SCAN cursor over the table.
    cursor: u64,
    /// Old entries still in the table.
    old_left: usize,
    /// Entries writers saved (statistics).
    saved: usize,
    progress: &'static Progress,
}

impl ShardSnap {
    /// Saves the old entry in `idx` (if it is old) before it changes.
    #[inline(never)]
    pub(super) fn save_old(&mut self, table: &mut Table, idx: usize) {
        if table.is_old(idx) {
            let before = self.side.len();
            (self.encode)(table.get(idx), &mut self.side);
            self.progress
                .copied
                .fetch_add(self.side.len() - before, Ordering::Relaxed);
            table.recolour(idx);
            self.old_left -= 1;
            self.saved += 1;
        }
    }

    /// `Shard::set_value` while this state exists: an old entry is kept as
    /// it is (no encoding under the lock) and a fresh one takes its slot.
    #[inline(never)]
    pub(super) fn replace_value(
        &mut self,
        table: &mut Table,
        idx: usize,
        value: Value<'_>,
        keep_ttl: bool,
    ) {
        if !table.is_old(idx) {
            table.get_mut(idx).set_value(value, keep_ttl);
            return;
        }
        let mut slot = table.get_mut(idx);
        let expire = if keep_ttl { slot.expire() } else { None };
        let fresh = Entry::new(slot.key(), value, expire, slot.lru());
        let old = std::mem::replace(&mut *slot, fresh);
        drop(slot);
        table.recolour(idx);
        self.progress
            .copied
            .fetch_add(old.alloc_size(), Ordering::Relaxed);
        self.kept.push(old);
        self.old_left -= 1;
        self.saved += 1;
    }

    /// `Shard::take_all` while this state exists: keeps the flushed table
    /// if it still has old entries, and returns what the caller may free.
    pub(super) fn detach(&mut self, table: Table) -> Table {
        if self.old_left == 0 {
            return table;
        }
        self.old_left = 0;
        let empty = table.empty_like();
        self.detached.push(table);
        empty
    }
}

/// One piece of a snapshot's output.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The records that follow belong to database `db`, which held `keys`
    /// keys (`expires` of them with a deadline) at the start. Only
    /// databases with keys at the start appear, in ascending order.
    Db {
        db: usize,
        keys: usize,
        expires: usize,
    },
    /// Records of the current database, as the encoder wrote them.
    Bytes(&'a [u8]),
}

/// What a walk did, for tests and the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Entries the walk itself encoded in the tables.
    pub walked: usize,
    /// Entries writers saved before changing them.
    pub saved: usize,
    /// Bytes of records writers encoded.
    pub side_bytes: usize,
    /// The largest side buffer handed out at once.
    pub side_peak: usize,
    /// Entries of flushed tables the walk encoded.
    pub flushed: usize,
    /// Locked steps taken.
    pub steps: usize,
}

/// Which buffer the last chunk lent out (cleared on the next call).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lent {
    Nothing,
    Side,
    Out,
}

/// A running snapshot: see the module notes. Pull its output with
/// [`Snapshot::next_chunk`] (or [`Snapshot::for_each`]).
pub struct Snapshot {
    ks: &'static Keyspace,
    encode: Encoder,
    /// (keys, keys with a deadline) per database at the start.
    sizes: Vec<(usize, usize)>,
    db: usize,
    shard: usize,
    /// The current database's [`Chunk::Db`] was handed out.
    announced: bool,
    /// The current shard's state is gone (walked, or never made).
    shard_done: bool,
    /// Finishing without output (dropped early).
    discard: bool,
    finished: bool,
    lent: Lent,
    out: Vec<u8>,
    side: Vec<u8>,
    kept: Vec<Entry>,
    detached: Vec<Table>,
    /// Where the walk of `detached.last()` resumes.
    detached_pos: usize,
    idxs: Vec<usize>,
    stats: Stats,
}

impl Keyspace {
    /// Starts a snapshot: the image is the keyspace as of this call. Takes
    /// every shard of every database into `locks` (the caller holds none,
    /// or already all, as a command declaring every database does) and
    /// leaves them held: the caller releases them, and may look at the
    /// start state before it does. `encode` writes one entry's record.
    ///
    /// Only one snapshot runs at a time: [`StartError::InProgress`] until
    /// the previous [`Snapshot`] has finished or been dropped.
    pub fn snapshot(
        &'static self,
        locks: &mut Locks,
        encode: Encoder,
    ) -> Result<Snapshot, StartError> {
        let reg = &self.snapshots;
        if reg
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(StartError::InProgress);
        }
        let mut batch = locks.batch(self);
        batch.all_dbs();
        if batch.take().is_err() {
            reg.busy.store(false, Ordering::Release);
            return Err(StartError::LocksHeld);
        }
        let n = self.shard_count();
        let progress = &reg.progress;
        progress.done.store(0, Ordering::Relaxed);
        progress.copied.store(0, Ordering::Relaxed);
        let mut sizes = vec![(0, 0); self.db_count()];
        for (db, size) in sizes.iter_mut().enumerate() {
            for s in 0..n {
                let origin = db * n + s;
                locks.with_shard(self, db, s, |g| {
                    size.0 += g.len();
                    size.1 += g.expires();
                    debug_assert!(g.snap.is_none(), "a snapshot state outlived its walk");
                    if g.is_empty() {
                        reg.loc[origin].store(NONE, Ordering::Relaxed);
                        return;
                    }
                    g.table.flip_colour();
                    g.snap = Some(Box::new(ShardSnap {
                        origin,
                        encode: encode.clone(),
                        side: Vec::new(),
                        kept: Vec::new(),
                        detached: Vec::new(),
                        cursor: 0,
                        old_left: g.len(),
                        saved: 0,
                        progress,
                    }));
                    reg.loc[origin].store(db, Ordering::Release);
                });
            }
        }
        progress
            .total
            .store(sizes.iter().map(|s| s.0).sum(), Ordering::Relaxed);
        Ok(Snapshot {
            ks: self,
            encode,
            sizes,
            db: 0,
            shard: 0,
            announced: false,
            shard_done: false,
            discard: false,
            finished: false,
            lent: Lent::Nothing,
            out: Vec::with_capacity(CHUNK + CHUNK / 4),
            side: Vec::new(),
            kept: Vec::new(),
            detached: Vec::new(),
            detached_pos: 0,
            idxs: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// True while a snapshot runs (`rdb_bgsave_in_progress` and friends).
    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshots.in_progress()
    }

    /// How far the running (or last) snapshot got.
    pub fn snapshot_progress(&self) -> &Progress {
        &self.snapshots.progress
    }
}

impl Snapshot {
    /// (keys, keys with a deadline) of every database at the start.
    pub fn db_sizes(&self) -> &[(usize, usize)] {
        &self.sizes
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The next piece of output, `None` at the end (the snapshot is then
    /// over and another may start). A lending iterator: the bytes are valid
    /// until the next call.
    pub fn next_chunk(&mut self) -> Option<Chunk<'_>> {
        match self.lent {
            Lent::Side => self.side = Vec::new(),
            Lent::Out => self.out.clear(),
            Lent::Nothing => {}
        }
        self.lent = Lent::Nothing;
        loop {
            if self.db >= self.sizes.len() {
                self.finish();
                return None;
            }
            if !self.announced {
                self.announced = true;
                let (keys, expires) = self.sizes[self.db];
                if keys == 0 {
                    // No state was made for an empty database.
                    self.next_db();
                    continue;
                }
                if !self.discard {
                    return Some(Chunk::Db {
                        db: self.db,
                        keys,
                        expires,
                    });
                }
            }
            if self.fill() {
                if !self.side.is_empty() {
                    self.lent = Lent::Side;
                    return Some(Chunk::Bytes(&self.side));
                }
                self.lent = Lent::Out;
                return Some(Chunk::Bytes(&self.out));
            }
            self.shard += 1;
            self.shard_done = false;
            if self.shard == self.ks.shard_count() {
                self.next_db();
            }
        }
    }

    /// Hands every chunk to `f` in order; stops at its first error (the
    /// rest of the walk then finishes without output, on drop).
    pub fn for_each<E>(
        mut self,
        mut f: impl FnMut(Chunk<'_>) -> Result<(), E>,
    ) -> Result<Stats, E> {
        while let Some(c) = self.next_chunk() {
            f(c)?;
        }
        Ok(self.stats)
    }

    fn next_db(&mut self) {
        self.db += 1;
        self.shard = 0;
        self.shard_done = false;
        self.announced = false;
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.ks.snapshots.busy.store(false, Ordering::Release);
        }
    }

    /// Works on the current shard until there are bytes to hand out (true)
    /// or it is done (false). Discarding, it never has bytes.
    fn fill(&mut self) -> bool {
        loop {
            if self.discard {
                self.side = Vec::new();
                self.out.clear();
            }
            if !self.side.is_empty() || !self.out.is_empty() {
                return true;
            }
            // Work that needs no lock first: entries writers replaced, and
            // tables they flushed, now owned by the walk.
            if !self.kept.is_empty() {
                while self.out.len() < CHUNK
                    && let Some(e) = self.kept.pop()
                {
                    if !self.discard {
                        (self.encode)(e.as_ref(), &mut self.out);
                    }
                }
                continue;
            }
            if let Some(t) = self.detached.last() {
                while !self.discard && self.out.len() < CHUNK {
                    match t.next_old(self.detached_pos) {
                        Some(i) => {
                            (self.encode)(t.get(i), &mut self.out);
                            self.stats.flushed += 1;
                            self.ks
                                .snapshots
                                .progress
                                .done
                                .fetch_add(1, Ordering::Relaxed);
                            self.detached_pos = i + 1;
                        }
                        None => break,
                    }
                }
                if self.discard || t.next_old(self.detached_pos).is_none() {
                    // Freed here, on the walk's thread.
                    self.detached.pop();
                    self.detached_pos = 0;
                }
                continue;
            }
            if self.shard_done {
                return false;
            }
            self.locked_step();
        }
    }

    /// One step under the current shard's lock (see the module notes).
    fn locked_step(&mut self) {
        let n = self.ks.shard_count();
        let origin = self.db * n + self.shard;
        let reg = &self.ks.snapshots;
        let mut guard = loop {
            let at = reg.loc[origin].load(Ordering::Acquire);
            if at == NONE {
                // Empty at the start: nothing of it is in the image.
                self.shard_done = true;
                return;
            }
            let g = self.ks.db(at).shard(self.shard).lock();
            if g.snap.as_ref().is_some_and(|s| s.origin == origin) {
                break g;
            }
            // A SWAPDB moved it between the look and the lock: look again.
        };
        self.stats.steps += 1;
        let shard = &mut *guard;
        let st = shard.snap.as_mut().expect("checked above");
        std::mem::swap(&mut self.side, &mut st.side);
        self.stats.side_bytes += self.side.len();
        self.stats.side_peak = self.stats.side_peak.max(self.side.len());
        let saved = std::mem::take(&mut st.saved);
        self.stats.saved += saved;
        st.progress.done.fetch_add(saved, Ordering::Relaxed);
        self.kept.append(&mut st.kept);
        self.detached.append(&mut st.detached);
        let table = &mut shard.table;
        let mut homes = 0;
        let stop_at = self.out.len() + STEP_BYTES;
        while st.old_left > 0 && homes < HOMES_PER_STEP && self.out.len() < stop_at {
            self.idxs.clear();
            let next = table.scan_slots(st.cursor, |i| self.idxs.push(i));
            for &i in &self.idxs {
                if table.is_old(i) {
                    if !self.discard {
                        (self.encode)(table.get(i), &mut self.out);
                    }
                    table.recolour(i);
                    st.old_left -= 1;
                    self.stats.walked += 1;
                    st.progress.done.fetch_add(1, Ordering::Relaxed);
                }
            }
            st.cursor = next;
            homes += 1;
            if next == 0 && st.old_left > 0 {
                // The SCAN contract makes this impossible; never loop on it.
                debug_assert!(
                    self.discard,
                    "{} old entries the walk cannot find",
                    st.old_left
                );
                st.old_left = 0;
            }
        }
        if st.old_left == 0 {
            // Done: from here on writers save nothing for this table (what
            // they saved so far was taken above, under this same lock).
            shard.snap = None;
            reg.loc[origin].store(NONE, Ordering::Release);
            self.shard_done = true;
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Walk the rest without output, so that every entry gets its
        // table's colour back and no shard keeps saving.
        self.discard = true;
        while self.next_chunk().is_some() {}
    }
}

impl Table {
    /// The first old entry's slot at or after `from` (a flushed table).
    fn next_old(&self, from: usize) -> Option<usize> {
        let mut i = from;
        while let Some(j) = self.next_occupied(i) {
            if self.is_old(j) {
                return Some(j);
            }
            i = j + 1;
        }
        None
    }
}

pub mod testing;

#[cfg(test)]
mod tests;
