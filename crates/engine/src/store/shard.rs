//! One shard of a database: a table and the counters that must stay exact
//! under its lock (how many entries carry a deadline, the sweep position).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::entry::{Entry, EntryRef, Value};
use super::snapshot::ShardSnap;
use super::table::{HashFn, SlotMut, Table};
use crate::blocking::Waiter;

#[derive(Default)]
pub struct Shard {
    pub(super) table: Table,
    /// Set while a snapshot walk has not finished this table: every write
    /// first hands the entry's old value to it (see `store::snapshot`).
    /// The only cost of snapshots on the write path is this one test.
    pub(super) snap: Option<Box<ShardSnap>>,
    /// Entries that carry a deadline (INFO keyspace `expires=`).
    expires: usize,
    /// Where the active expiry sweep resumes.
    pub(crate) sweep_pos: usize,
    /// Clients blocked on keys of this shard, FIFO per key.
    waiters: HashMap<Box<[u8]>, VecDeque<Arc<Waiter>>>,
    /// Keys with waiters that came into existence during the running
    /// command, each with its [`ready_seq`]; served before the command
    /// releases this shard, in the order they became ready.
    ready: Vec<(u64, Box<[u8]>)>,
    /// WATCHed keys of this shard and the transactions watching them.
    watchers: HashMap<Box<[u8]>, Vec<Arc<Watch>>>,
}

/// A number that orders the moments keys became ready across shards: one
/// command (EXEC, a script) can ready keys in several shards, and their
/// waiters are served in the order the keys became ready, as in Redis.
/// Taken only when a key with waiters is readied.
fn ready_seq() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One client's WATCH state: set dirty when any watched key changes, so
/// its next EXEC aborts.
#[derive(Default)]
pub struct Watch {
    dirty: AtomicBool,
}

impl Watch {
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    pub fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

impl Shard {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn expires(&self) -> usize {
        self.expires
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The slot of `key`, expired or not.
    #[inline]
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        self.table.find(hash, key)
    }

    #[inline]
    pub fn get(&self, idx: usize) -> EntryRef<'_> {
        self.table.get(idx)
    }

    /// Mutable access to an entry. Deadlines must change through
    /// [`Shard::set_expire`] so that the count stays exact.
    #[inline]
    pub fn get_mut(&mut self, idx: usize) -> SlotMut<'_> {
        self.before_write(idx);
        self.table.get_mut(idx)
    }

    /// Sets the access time (LRU/LFU field), which is no part of a snapshot.
    #[inline]
    pub fn set_lru(&mut self, idx: usize, lru: u32) {
        self.table.get_mut(idx).set_lru(lru);
    }

    /// A snapshot that has not saved the entry in `idx` yet saves it now,
    /// before it changes (see `store::snapshot`).
    #[inline]
    fn before_write(&mut self, idx: usize) {
        if let Some(snap) = &mut self.snap {
            snap.save_old(&mut self.table, idx);
        }
    }

    pub fn insert(&mut self, hash: u64, entry: Entry, rehash: HashFn) -> usize {
        if entry.expire().is_some() {
            self.expires += 1;
        }
        if !self.waiters.is_empty() && self.waiters.contains_key(entry.key()) {
            self.ready.push((ready_seq(), entry.key().into()));
        }
        self.table.insert_new(hash, entry, rehash)
    }

    /// Inserts `entry` unless its key is present (expired or not), in one
    /// probe; `Err` gives it back. For bulk loading.
    pub fn insert_absent(
        &mut self,
        hash: u64,
        entry: Entry,
        rehash: HashFn,
    ) -> Result<usize, Entry> {
        let expires = entry.expire().is_some();
        let waited = !self.waiters.is_empty() && self.waiters.contains_key(entry.key());
        let key: Option<Box<[u8]>> = waited.then(|| entry.key().into());
        let idx = self.table.insert_absent(hash, entry, rehash)?;
        if expires {
            self.expires += 1;
        }
        if let Some(k) = key {
            self.ready.push((ready_seq(), k));
        }
        Ok(idx)
    }

    /// See [`Table::touch_home`].
    #[inline]
    pub fn touch_home(&self, hash: u64) {
        self.table.touch_home(hash);
    }

    /// Makes room for `n` entries in all (see [`Table::reserve`]).
    pub fn reserve(&mut self, n: usize, rehash: HashFn) {
        self.table.reserve(n, rehash);
    }

    pub fn remove(&mut self, idx: usize, rehash: HashFn) -> Entry {
        self.before_write(idx);
        let e = self.table.remove_at(idx, rehash);
        // Deletion by any path (DEL, RENAME, lazy or active expiry) changes
        // the key for its watchers.
        self.touch_watched(e.key());
        // Blocked XREADGROUP readers learn that their stream is gone.
        self.signal_ready(e.key());
        if e.expire().is_some() {
            self.expires -= 1;
        }
        e
    }

    pub fn set_expire(&mut self, idx: usize, at: Option<i64>) {
        self.before_write(idx);
        let mut slot = self.table.get_mut(idx);
        match (slot.expire().is_some(), at.is_some()) {
            (false, true) => self.expires += 1,
            (true, false) => self.expires -= 1,
            _ => {}
        }
        slot.set_expire(at);
    }

    /// Replaces the value; `keep_ttl` keeps the deadline, otherwise it goes.
    pub fn set_value(&mut self, idx: usize, value: Value<'_>, keep_ttl: bool) {
        // An overwritten stream ends its XREADGROUP waits, as a deletion.
        if !self.waiters.is_empty() && self.waiters.contains_key(self.table.get(idx).key()) {
            let key: Box<[u8]> = self.table.get(idx).key().into();
            self.signal_ready(&key);
        }
        if !keep_ttl && self.table.get(idx).expire().is_some() {
            self.expires -= 1;
        }
        if let Some(snap) = &mut self.snap {
            // Keeps the old entry for the walk rather than freeing it.
            return snap.replace_value(&mut self.table, idx, value, keep_ttl);
        }
        self.table.get_mut(idx).set_value(value, keep_ttl);
    }

    /// Drops everything, returning the old table so a caller may free it elsewhere.
    pub fn take_all(&mut self) -> Table {
        self.touch_existing_watched();
        // A blocked XREADGROUP learns that its stream is gone.
        self.mark_existing_ready();
        self.expires = 0;
        self.sweep_pos = 0;
        let fresh = self.table.empty_like();
        let old = std::mem::replace(&mut self.table, fresh);
        match &mut self.snap {
            // A snapshot walk still needs the old entries: it takes the
            // table (and frees it) instead of the caller.
            Some(snap) => snap.detach(old),
            None => old,
        }
    }

    /// Swaps the data of two shards (SWAPDB). Blocked clients stay with
    /// their database; any whose key now exists becomes ready.
    pub fn swap(&mut self, other: &mut Shard) {
        // A watched key that exists before or after the swap changes; so
        // does the key a client waits on (a stream may be gone or replaced).
        // An expired key counts as absent: a missing or stale key replaced
        // by a stale one is no change (Redis 7.0).
        let now = crate::now_ms();
        self.touch_live_watched(now);
        other.touch_live_watched(now);
        self.mark_existing_ready();
        other.mark_existing_ready();
        std::mem::swap(&mut self.table, &mut other.table);
        std::mem::swap(&mut self.expires, &mut other.expires);
        // A snapshot's state describes its table's entries: it goes along.
        std::mem::swap(&mut self.snap, &mut other.snap);
        self.sweep_pos = 0;
        other.sweep_pos = 0;
        self.touch_live_watched(now);
        other.touch_live_watched(now);
        self.mark_existing_ready();
        other.mark_existing_ready();
    }

    fn mark_existing_ready(&mut self) {
        let keys: Vec<(u64, Box<[u8]>)> = self
            .waiters
            .keys()
            .filter(|k| {
                self.table
                    .find(crate::store::keyspace::hash_key(k), k)
                    .is_some()
            })
            .filter(|k| !self.ready.iter().any(|(_, r)| r == *k))
            .map(|k| (ready_seq(), k.clone()))
            .collect();
        self.ready.extend(keys);
    }

    /// Queues a blocked client on `key`.
    pub fn add_waiter(&mut self, key: &[u8], w: Arc<Waiter>) {
        self.waiters.entry(key.into()).or_default().push_back(w);
    }

    /// Marks `key` ready if clients wait on it: a write that does not
    /// create the key (XADD to an existing stream) still serves waiters.
    pub fn signal_ready(&mut self, key: &[u8]) {
        if !self.waiters.is_empty()
            && self.waiters.contains_key(key)
            && !self.ready.iter().any(|(_, k)| &**k == key)
        {
            self.ready.push((ready_seq(), key.into()));
        }
    }

    /// Removes a waiter from `key`'s queue (it timed out or went away).
    pub fn remove_waiter(&mut self, key: &[u8], w: &Arc<Waiter>) {
        if let Some(q) = self.waiters.get_mut(key) {
            q.retain(|x| !Arc::ptr_eq(x, w));
            if q.is_empty() {
                self.waiters.remove(key);
            }
        }
    }

    /// The `i`th waiter on `key`, waiting or not.
    pub fn waiter_at(&self, key: &[u8], i: usize) -> Option<Arc<Waiter>> {
        self.waiters.get(key)?.get(i).cloned()
    }

    /// Drops `w`, the `i`th waiter on `key`, after it was served or found
    /// stale (O(1) at the front, where a served pop's waiter is).
    pub fn take_waiter_at(&mut self, key: &[u8], i: usize, w: &Arc<Waiter>) {
        if let Some(q) = self.waiters.get_mut(key) {
            if q.get(i).is_some_and(|x| Arc::ptr_eq(x, w)) {
                q.remove(i);
            } else {
                q.retain(|x| !Arc::ptr_eq(x, w));
            }
            if q.is_empty() {
                self.waiters.remove(key);
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The ready keys with their [`ready_seq`], emptied.
    pub fn take_ready(&mut self) -> Vec<(u64, Box<[u8]>)> {
        std::mem::take(&mut self.ready)
    }

    /// Registers `w` as watching `key`.
    pub fn add_watcher(&mut self, key: &[u8], w: Arc<Watch>) {
        self.watchers.entry(key.into()).or_default().push(w);
    }

    /// Removes `w` from `key`'s watchers; true if it was there.
    pub fn remove_watcher(&mut self, key: &[u8], w: &Arc<Watch>) -> bool {
        let Some(list) = self.watchers.get_mut(key) else {
            return false;
        };
        let before = list.len();
        list.retain(|x| !Arc::ptr_eq(x, w));
        let removed = list.len() != before;
        if list.is_empty() {
            self.watchers.remove(key);
        }
        removed
    }

    pub fn has_watchers(&self) -> bool {
        !self.watchers.is_empty()
    }

    /// Marks every transaction watching `key` dirty.
    #[inline]
    pub fn touch_watched(&self, key: &[u8]) {
        if self.watchers.is_empty() {
            return;
        }
        if let Some(list) = self.watchers.get(key) {
            list.iter().for_each(|w| w.mark());
        }
    }

    /// Whole-table changes (FLUSHDB, SWAPDB): as in Redis, a watched key
    /// changes only if it exists (expired or not).
    fn touch_live_watched(&self, now_ms: i64) {
        for (key, list) in &self.watchers {
            let live = self
                .table
                .find(crate::store::keyspace::hash_key(key), key)
                .is_some_and(|i| !self.table.get(i).is_expired(now_ms));
            if live {
                list.iter().for_each(|w| w.mark());
            }
        }
    }

    fn touch_existing_watched(&self) {
        for (key, list) in &self.watchers {
            if self
                .table
                .find(crate::store::keyspace::hash_key(key), key)
                .is_some()
            {
                list.iter().for_each(|w| w.mark());
            }
        }
    }
}
