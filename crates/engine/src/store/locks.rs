//! The shard locks one command holds, and the rule that keeps them free of
//! deadlock.
//!
//! A command's shards are taken from its declared footprint
//! (`cmd::footprint`) before its handler runs, as one batch
//! ([`Locks::batch`]). The rule, enforced here rather than by the callers:
//!
//! - **Only a `Locks` holding nothing waits.** A batch waits for its first
//!   missing shard holding nothing and only *tries* the others; if one is
//!   busy it lets go of everything, waits (holding nothing) for that one
//!   and starts over. A single shard taken on first access (a one-key
//!   command) is taken holding nothing too.
//! - **A `Locks` that holds shards never waits** for another: a shard it
//!   does not hold is taken with `try_lock`, and if that fails the caller
//!   gets [`Undeclared`] (a batch) or the command fails with an internal
//!   error (a key reached outside the footprint), never a wait. In debug
//!   builds such an access fails even when the shard is free, so a
//!   footprint that misses a key shows up in tests, not only under load.
//! - **The one exception is the script job** ([`Locks::for_job`]): a script
//!   reaches keys it did not declare, in any order, and waits for them. Only
//!   the holder of a `JobGuard` (one at a time: it holds the script gate)
//!   gets such a `Locks`, and everyone it may wait for obeys the two rules
//!   above, so nobody it waits for waits for it: no cycle can form.

use parking_lot::{Mutex, MutexGuard};

use super::keyspace::{KeySlot, Keyspace, hash_key};
use super::shard::Shard;

/// A shard the command did not declare was needed while it held others,
/// and taking it could have meant waiting while holding: refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undeclared;

/// Debug builds refuse every undeclared shard, free or not (see the module
/// notes); release builds take a free one.
const STRICT: bool = cfg!(debug_assertions);

/// The shard locks one command holds, in ascending (db, shard) order.
/// Owned per connection and reused, so taking a lock allocates nothing.
#[derive(Default)]
pub struct Locks {
    held: Vec<(usize, MutexGuard<'static, Shard>)>,
    /// Global shard ids of the batch being gathered (reused).
    want: Vec<usize>,
    /// The script job's locks: may wait for a shard while holding others.
    job: bool,
}

/// A set of shards to take at once: see [`Locks::batch`].
pub struct Batch<'l> {
    locks: &'l mut Locks,
    ks: &'static Keyspace,
}

impl Batch<'_> {
    /// The shard of `key` in database `db`.
    #[inline]
    pub fn key(&mut self, db: usize, key: &[u8]) {
        let gid = db * self.ks.shard_count() + self.ks.shard_of(hash_key(key));
        self.locks.want.push(gid);
    }

    /// Every shard of database `db` (ignored if there is no such database).
    pub fn db(&mut self, db: usize) {
        if db < self.ks.db_count() {
            let n = self.ks.shard_count();
            self.locks.want.extend(db * n..(db + 1) * n);
        }
    }

    /// Every shard of every database.
    pub fn all_dbs(&mut self) {
        let n = self.ks.shard_count() * self.ks.db_count();
        self.locks.want.clear();
        self.locks.want.extend(0..n);
    }

    /// Takes the gathered shards (see the module notes). Holding nothing
    /// (or as the script job) this always succeeds; holding other shards,
    /// it fails with [`Undeclared`] rather than wait.
    pub fn take(self) -> Result<(), Undeclared> {
        let (locks, ks) = (self.locks, self.ks);
        let mut want = std::mem::take(&mut locks.want);
        want.sort_unstable();
        want.dedup();
        let r = locks.take_sorted(ks, &mut want);
        want.clear();
        locks.want = want;
        r
    }
}

/// The gate of the one job whose locks may wait for a shard while holding
/// others (the script job): held for the whole job, so at most one such
/// [`Locks`] is in use at a time. Reentrant, for code that takes it again
/// inside the job.
#[derive(Default)]
pub struct JobGate(parking_lot::ReentrantMutex<()>);

/// Proof that the [`JobGate`] is held (see [`Locks::for_job`]).
pub struct JobPass<'a>(#[allow(dead_code)] parking_lot::ReentrantMutexGuard<'a, ()>);

impl JobGate {
    /// Waits for the gate.
    pub fn enter(&self) -> JobPass<'_> {
        JobPass(self.0.lock())
    }
}

impl Locks {
    /// The locks of the job holding the [`JobGate`]: the only ones that may
    /// wait for a shard while holding others, since no other job's can.
    pub fn for_job(_pass: &JobPass<'_>) -> Locks {
        Locks {
            job: true,
            ..Locks::default()
        }
    }

    /// Releases every lock.
    #[inline]
    pub fn release(&mut self) {
        self.held.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Index in `held` (kept sorted by shard id).
    #[inline]
    fn position(&self, gid: usize) -> Option<usize> {
        match self.held.len() {
            0 => None,
            1 => (self.held[0].0 == gid).then_some(0),
            _ => self.held.binary_search_by_key(&gid, |(g, _)| *g).ok(),
        }
    }

    fn mutex(ks: &'static Keyspace, gid: usize) -> &'static Mutex<Shard> {
        let n = ks.shard_count();
        ks.db(gid / n).shard(gid % n)
    }

    fn insert_sorted(&mut self, gid: usize, guard: MutexGuard<'static, Shard>) -> usize {
        let i = self.held.partition_point(|(g, _)| *g < gid);
        self.held.insert(i, (gid, guard));
        i
    }

    /// Starts a batch of shards to take at once ([`Batch::take`]).
    pub fn batch(&mut self, ks: &'static Keyspace) -> Batch<'_> {
        self.want.clear();
        Batch { locks: self, ks }
    }

    /// Takes `gids` (sorted, distinct) that are not held yet.
    fn take_sorted(
        &mut self,
        ks: &'static Keyspace,
        gids: &mut Vec<usize>,
    ) -> Result<(), Undeclared> {
        if !self.held.is_empty() {
            gids.retain(|g| self.position(*g).is_none());
        }
        if gids.is_empty() {
            return Ok(());
        }
        if self.job {
            for &gid in gids.iter() {
                if self.position(gid).is_none() {
                    let guard = Self::mutex(ks, gid).lock();
                    self.insert_sorted(gid, guard);
                }
            }
            return Ok(());
        }
        if !self.held.is_empty() {
            // Holding shards: never wait for another.
            if STRICT {
                return Err(Undeclared);
            }
            for &gid in gids.iter() {
                let guard = Self::mutex(ks, gid).try_lock().ok_or(Undeclared)?;
                self.insert_sorted(gid, guard);
            }
            return Ok(());
        }
        // Holding nothing: wait for the first shard, try the others; on a
        // busy one let go of all, wait for that one to be free, start over.
        let mut busy = None;
        'retry: loop {
            if let Some(gid) = busy.take() {
                drop(Self::mutex(ks, gid).lock());
            }
            self.held.push((gids[0], Self::mutex(ks, gids[0]).lock()));
            for &gid in &gids[1..] {
                match Self::mutex(ks, gid).try_lock() {
                    Some(guard) => self.held.push((gid, guard)),
                    None => {
                        self.held.clear();
                        busy = Some(gid);
                        continue 'retry;
                    }
                }
            }
            return Ok(());
        }
    }

    /// Locks the shards of all `keys` in `db` at once (see [`Batch::take`]).
    pub fn lock_keys<'k>(
        &mut self,
        ks: &'static Keyspace,
        db: usize,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<(), Undeclared> {
        let mut b = self.batch(ks);
        for k in keys {
            b.key(db, k);
        }
        b.take()
    }

    /// The shard `gid`, taken if not held yet: holding nothing (or as the
    /// job) by waiting, else only if free, never waiting.
    #[inline]
    fn take_one(&mut self, ks: &'static Keyspace, gid: usize) -> Result<usize, Undeclared> {
        if let Some(i) = self.position(gid) {
            return Ok(i);
        }
        if self.held.is_empty() || self.job {
            let guard = Self::mutex(ks, gid).lock();
            return Ok(self.insert_sorted(gid, guard));
        }
        if STRICT {
            return Err(Undeclared);
        }
        let guard = Self::mutex(ks, gid).try_lock().ok_or(Undeclared)?;
        Ok(self.insert_sorted(gid, guard))
    }

    /// [`Locks::take_one`] for a handler: a shard outside the command's
    /// footprint that cannot be had without waiting fails the command (the
    /// dispatcher turns the panic into an error reply) instead of risking
    /// a deadlock.
    #[inline]
    fn acquire(&mut self, ks: &'static Keyspace, gid: usize) -> usize {
        match self.take_one(ks, gid) {
            Ok(i) => i,
            Err(Undeclared) => undeclared(gid),
        }
    }

    /// Runs `f` on shard `s` of `db`: through the guard this command holds,
    /// or, holding nothing, under a lock taken just for `f` (keyspace-wide
    /// reads visit one shard at a time, so other clients run in between). A
    /// transaction holds what its footprint declares; the script job keeps
    /// what it reads locked to its end, for atomicity.
    pub fn with_shard<R>(
        &mut self,
        ks: &'static Keyspace,
        db: usize,
        s: usize,
        f: impl FnOnce(&mut Shard) -> R,
    ) -> R {
        let gid = db * ks.shard_count() + s;
        if self.position(gid).is_none() && self.held.is_empty() && !self.job {
            return f(&mut Self::mutex(ks, gid).lock());
        }
        let i = self.acquire(ks, gid);
        f(&mut self.held[i].1)
    }

    /// Two distinct held shards, both mutable (SWAPDB).
    pub(super) fn pair_mut(&mut self, a: usize, b: usize) -> (&mut Shard, &mut Shard) {
        let (i, j) = (
            self.position(a).unwrap_or_else(|| undeclared(a)),
            self.position(b).unwrap_or_else(|| undeclared(b)),
        );
        assert_ne!(i, j);
        if i < j {
            let (lo, hi) = self.held.split_at_mut(j);
            (&mut lo[i].1, &mut hi[0].1)
        } else {
            let (lo, hi) = self.held.split_at_mut(i);
            (&mut hi[0].1, &mut lo[j].1)
        }
    }

    /// True if the command holds the shard of `key` in `db`.
    pub fn holds(&self, ks: &Keyspace, db: usize, key: &[u8]) -> bool {
        let gid = db * ks.shard_count() + ks.shard_of(hash_key(key));
        self.position(gid).is_some()
    }

    /// The shard holding `key` in `db`, locking it if not held yet (under
    /// the rules of [`Locks::take_one`]).
    pub fn shard_for(&mut self, ks: &'static Keyspace, db: usize, key: &[u8]) -> &mut Shard {
        let gid = db * ks.shard_count() + ks.shard_of(hash_key(key));
        let i = self.acquire(ks, gid);
        &mut self.held[i].1
    }

    /// Like [`Locks::key`], but never waits: a shard not held yet is taken
    /// only if it is free, whatever the order (so it cannot deadlock). For
    /// the one key a footprint cannot name: a BLMOVE destination served
    /// under another command's locks.
    pub fn try_key<'s, 'k>(
        &'s mut self,
        ks: &'static Keyspace,
        db: usize,
        key: &'k [u8],
        now_ms: i64,
    ) -> Option<KeySlot<'s, 'k>> {
        let hash = hash_key(key);
        let gid = db * ks.shard_count() + ks.shard_of(hash);
        let i = match self.position(gid) {
            Some(i) => i,
            None => {
                let guard = Self::mutex(ks, gid).try_lock()?;
                self.insert_sorted(gid, guard)
            }
        };
        Some(self.slot_at(i, ks, db, hash, key, now_ms))
    }

    /// The slot handle of `key` in the held shard at index `i`.
    #[inline]
    fn slot_at<'s, 'k>(
        &'s mut self,
        i: usize,
        ks: &'static Keyspace,
        db: usize,
        hash: u64,
        key: &'k [u8],
        now_ms: i64,
    ) -> KeySlot<'s, 'k> {
        KeySlot {
            shard: &mut self.held[i].1,
            hash,
            key,
            now_ms,
            ks,
            db,
            no_touch: false,
        }
    }

    /// Keys that became ready in the held shards, as (db, key).
    /// In the order they became ready (across shards, as in Redis).
    pub fn take_ready(&mut self, ks: &Keyspace) -> Vec<(usize, Box<[u8]>)> {
        let n = ks.shard_count();
        let mut out = Vec::new();
        for (gid, g) in self.held.iter_mut() {
            if g.has_ready() {
                out.extend(
                    g.take_ready()
                        .into_iter()
                        .map(|(seq, k)| (seq, *gid / n, k)),
                );
            }
        }
        out.sort_unstable_by_key(|&(seq, ..)| seq);
        out.into_iter().map(|(_, db, k)| (db, k)).collect()
    }

    /// True if any held shard has keys ready for blocked clients.
    #[inline]
    pub fn any_ready(&self) -> bool {
        self.held.iter().any(|(_, g)| g.has_ready())
    }

    /// The key's slot handle, locking its shard if this command does not
    /// hold it yet: a one-key command's only lock is taken here, holding
    /// nothing (see [`Locks::take_one`] for the other cases).
    #[inline]
    pub fn key<'s, 'k>(
        &'s mut self,
        ks: &'static Keyspace,
        db: usize,
        key: &'k [u8],
        now_ms: i64,
    ) -> KeySlot<'s, 'k> {
        let hash = hash_key(key);
        let gid = db * ks.shard_count() + ks.shard_of(hash);
        let i = self.acquire(ks, gid);
        self.slot_at(i, ks, db, hash, key, now_ms)
    }
}

/// A handler reached a shard outside its command's footprint while holding
/// others, and it was busy (or, in debug builds, at all).
#[cold]
#[inline(never)]
fn undeclared(gid: usize) -> ! {
    panic!(
        "shard {gid} is outside the command's declared footprint; refused rather than waited for while holding others"
    )
}

#[cfg(test)]
mod tests;
