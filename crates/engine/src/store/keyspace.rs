//! Databases, shard locking and the operations that span shards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

pub use super::locks::Locks;

use super::entry::{Entry, EntryRef, Value};
use super::shard::Shard;
use super::table::{SlotMut, Table};
use super::{Effect, EffectSink, KeyEventSink};

thread_local! {
    /// The effect group open on this thread ([`Keyspace::begin_group`]):
    /// the keyspace it belongs to and the records buffered so far.
    static GROUP: std::cell::RefCell<Option<OpenGroup>> = const { std::cell::RefCell::new(None) };
}

/// How lookups on this thread treat a key whose deadline passed, on a
/// replica (Redis's rules: the master's own commands see such keys as they
/// are, a writable replica's writes delete them, everything else only
/// misses them). Set per command with [`with_expiry_view`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpiryView {
    /// The keyspace's own rule (on a replica: miss, leave in place).
    Default,
    /// Reclaimed as on a master (a writable replica's write).
    Reclaim,
    /// Live until the master deletes it (the master's stream).
    Keep,
}

thread_local! {
    static EXPIRY_VIEW: std::cell::Cell<ExpiryView> = const { std::cell::Cell::new(ExpiryView::Default) };
}

/// Runs `f` with this thread's lookups under `view` (restored after,
/// also when nested).
pub fn with_expiry_view<R>(view: ExpiryView, f: impl FnOnce() -> R) -> R {
    struct Restore(ExpiryView);
    impl Drop for Restore {
        fn drop(&mut self) {
            EXPIRY_VIEW.set(self.0);
        }
    }
    let _restore = Restore(EXPIRY_VIEW.replace(view));
    f()
}

/// An open group: the keyspace it belongs to (its address) and the records
/// buffered so far, each a database and an argv.
/// The keyspace a group is open on, and its records: database, argv, who
/// replays it.
type OpenGroup = (usize, Vec<(usize, Vec<Box<[u8]>>, u8)>);

static SEED: AtomicU64 = AtomicU64::new(0x5eed_f00d_1234_5678);

/// The key hash used everywhere (shard choice and table slots).
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, SEED.load(Ordering::Relaxed))
}

/// Bits 48..56 of the hash pick the shard: independent of the table's home
/// slot (low bits) and tag (top 8 bits).
const SHARD_SHIFT: u32 = 48;
/// Table cursors stay below this; the shard index sits above it in a SCAN cursor.
const CURSOR_SHARD_SHIFT: u32 = 40;

#[repr(align(128))]
struct Padded<T>(T);

pub struct Db {
    shards: Box<[Padded<Mutex<Shard>>]>,
}

impl Db {
    fn new(n: usize) -> Db {
        Db {
            shards: (0..n)
                .map(|_| Padded(Mutex::new(Shard::default())))
                .collect(),
        }
    }

    pub fn shard(&self, i: usize) -> &Mutex<Shard> {
        &self.shards[i].0
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// (keys, keys with a deadline), summed shard by shard.
    pub fn sizes(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(k, e), s| {
            let g = s.0.lock();
            (k + g.len(), e + g.expires())
        })
    }
}

pub struct Keyspace {
    dbs: Box<[Db]>,
    shard_mask: usize,
    pub expired_keys: AtomicU64,
    /// Keys removed to stay under `maxmemory` (INFO `evicted_keys`).
    pub evicted_keys: AtomicU64,
    effects_on: AtomicBool,
    effects: RwLock<Vec<Arc<dyn EffectSink>>>,
    /// (key, client) WATCH registrations alive: writes look for watchers
    /// only while there are some.
    watches: AtomicUsize,
    event_sink: std::sync::OnceLock<Box<dyn KeyEventSink>>,
    /// Until when (Unix ms) lookups leave expired entries in place: a
    /// CLIENT PAUSE holds expiry, as Redis does; 0 when not held.
    expiry_held_until: AtomicI64,
    /// Set while a file is replayed: nothing expires (see `suspend_expiry`).
    expiry_suspended: AtomicBool,
    /// Set while this server is a replica (see `set_replica_expiry`).
    replica_expiry: AtomicBool,
    /// The running snapshot, if any (`store::snapshot`).
    pub(super) snapshots: super::snapshot::Registry,
}

impl Keyspace {
    /// `shards` is rounded up to a power of two (at most 256).
    pub fn new(databases: usize, shards: usize) -> Keyspace {
        let n = shards.clamp(1, 256).next_power_of_two();
        Keyspace {
            dbs: (0..databases).map(|_| Db::new(n)).collect(),
            shard_mask: n - 1,
            expired_keys: AtomicU64::new(0),
            evicted_keys: AtomicU64::new(0),
            expiry_held_until: AtomicI64::new(0),
            expiry_suspended: AtomicBool::new(false),
            replica_expiry: AtomicBool::new(false),
            effects_on: AtomicBool::new(false),
            effects: RwLock::new(Vec::new()),
            watches: AtomicUsize::new(0),
            event_sink: std::sync::OnceLock::new(),
            snapshots: super::snapshot::Registry::new(databases * n),
        }
    }

    /// Reseeds the hash; only before any key exists.
    pub fn seed_hash(seed: u64) {
        SEED.store(seed, Ordering::Relaxed);
    }

    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }

    pub fn db(&self, i: usize) -> &Db {
        &self.dbs[i]
    }

    pub fn shard_count(&self) -> usize {
        self.shard_mask + 1
    }

    #[inline]
    pub fn shard_of(&self, hash: u64) -> usize {
        (hash >> SHARD_SHIFT) as usize & self.shard_mask
    }

    /// Holds expiry until `until_ms` (0: release): expired keys read as
    /// missing but are not reclaimed, nor is a DEL published (CLIENT PAUSE).
    pub fn hold_expiry(&self, until_ms: i64) {
        self.expiry_held_until.store(until_ms, Ordering::Relaxed);
    }

    /// While an append-only file is replayed nothing expires, as in Redis:
    /// a key whose deadline passed since it was written is still there for
    /// the commands after it (an INCR keeps its TTL and the key goes once
    /// loading ends, instead of coming back as a new key without one).
    /// Lookups find such keys and the active sweep skips them.
    pub fn suspend_expiry(&self, on: bool) {
        self.expiry_suspended.store(on, Ordering::Release);
    }

    /// Whether expiry is suspended (a file is being replayed): a deadline
    /// already past is then set like any other, not acted on at once.
    #[inline]
    pub fn expiry_suspended(&self) -> bool {
        self.expiry_suspended.load(Ordering::Acquire) || EXPIRY_VIEW.get() == ExpiryView::Keep
    }

    #[inline]
    fn expiry_held(&self, now_ms: i64) -> bool {
        let until = self.expiry_held_until.load(Ordering::Relaxed);
        (until != 0 && now_ms < until)
            || (self.replica_expiry.load(Ordering::Relaxed)
                && EXPIRY_VIEW.get() == ExpiryView::Default)
    }

    /// While this server is a replica its master deletes expired keys (its
    /// DELs come in the stream): lookups miss an expired key but leave it
    /// in place (as a CLIENT PAUSE holds expiry), unless this thread's
    /// [`ExpiryView`] says otherwise.
    pub fn set_replica_expiry(&self, on: bool) {
        self.replica_expiry.store(on, Ordering::Relaxed);
    }

    /// Registers a consumer of the write effect stream.
    pub fn add_effect_sink(&self, sink: Arc<dyn EffectSink>) {
        self.effects.write().push(sink);
        self.effects_on.store(true, Ordering::Release);
    }

    #[inline]
    pub fn effects_enabled(&self) -> bool {
        self.effects_on.load(Ordering::Relaxed)
    }

    /// Publishes one effect. Callers hold the locks of the keys it names, so
    /// effects on one key reach consumers in the order they were applied.
    /// Inside a group opened on this thread, the record joins the group.
    pub fn emit(&self, db: usize, argv: &[&[u8]]) {
        self.emit_to(db, argv, super::TO_ALL);
    }

    /// [`Keyspace::emit`] for some consumers only (`to`: [`super::TO_AOF`],
    /// [`super::TO_REPLICAS`]), as a script's `redis.set_repl` asks.
    pub fn emit_to(&self, db: usize, argv: &[&[u8]], to: u8) {
        if !self.effects_enabled() {
            return;
        }
        let me = self as *const Keyspace as usize;
        let grouped = GROUP.with(|g| match &mut *g.borrow_mut() {
            Some((owner, records)) if *owner == me => {
                records.push((db, argv.iter().map(|a| Box::from(*a)).collect(), to));
                true
            }
            _ => false,
        });
        if !grouped {
            self.publish(&[Effect { db, argv, to }]);
        }
    }

    fn publish(&self, records: &[Effect<'_>]) {
        for sink in self.effects.read().iter() {
            sink.effects(records);
        }
    }

    /// Opens an effect group on this thread, for a transaction or a script:
    /// every record emitted on this thread until the guard drops (the
    /// command's own, expiry it causes, blocked clients it serves) is
    /// published then, in one call, so consumers see the group whole. The
    /// caller must still hold the shards of every key the records name when
    /// the guard drops. A group opened inside another joins it (EXEC of a
    /// queue holding EVAL).
    pub fn begin_group(&self) -> EffectGroup<'_> {
        let me = self as *const Keyspace as usize;
        let outer = GROUP.with(|g| {
            let mut g = g.borrow_mut();
            if g.is_some() {
                return false;
            }
            *g = Some((me, Vec::new()));
            true
        });
        EffectGroup { ks: self, outer }
    }

    /// True while some client WATCHes a key.
    #[inline]
    pub fn has_watches(&self) -> bool {
        self.watches.load(Ordering::Relaxed) != 0
    }

    /// Counts WATCH registrations added (positive) or removed (negative).
    pub fn count_watches(&self, delta: isize) {
        if delta >= 0 {
            self.watches.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            self.watches
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Installs the consumer of keyspace events (notifications); once.
    pub fn set_event_sink(&self, sink: Box<dyn KeyEventSink>) {
        let _ = self.event_sink.set(sink);
    }

    /// Reports a keyspace event the store produced.
    #[inline]
    pub fn key_event(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        if let Some(sink) = self.event_sink.get() {
            sink.event(db, class, event, key);
        }
    }

    pub(super) fn expired(&self, db: usize, entry: Entry) {
        self.expired_keys.fetch_add(1, Ordering::Relaxed);
        if self.effects_enabled() {
            self.emit(db, &[b"DEL", entry.key()]);
        }
        self.key_event(db, crate::notify::EXPIRED, "expired", entry.key());
        drop(entry);
    }

    /// Keys in `db` (including ones whose deadline passed but were not yet
    /// reclaimed). Shards the command holds are read through its locks.
    pub fn dbsize(&'static self, locks: &mut Locks, db: usize) -> usize {
        self.db_sizes(locks, db).0
    }

    /// (keys, keys with a deadline) of `db`, through the command's locks.
    pub fn db_sizes(&'static self, locks: &mut Locks, db: usize) -> (usize, usize) {
        (0..self.shard_count()).fold((0, 0), |(k, e), s| {
            locks.with_shard(self, db, s, |g| (k + g.len(), e + g.expires()))
        })
    }

    /// Empties one database; big tables are freed on a background thread.
    /// The command holds every shard of `db` (its footprint declares the
    /// database), so the flush is atomic for other clients.
    pub fn flush_db(&'static self, locks: &mut Locks, db: usize, lazy: bool) {
        let tables: Vec<Table> = (0..self.shard_count())
            .map(|s| locks.with_shard(self, db, s, |g| g.take_all()))
            .collect();
        free_tables(tables, lazy);
    }

    /// Moves every database's data aside, leaving the keyspace empty (a
    /// replica's `swapdb` load keeps its old dataset so, to put it back if
    /// the load fails). The caller holds every shard. `None` while a
    /// snapshot runs (its walk follows the tables it started with).
    pub fn set_aside(&'static self, locks: &mut Locks) -> Option<SetAside> {
        if self.snapshots.in_progress() {
            return None;
        }
        let n = self.shard_count();
        let mut shards = Vec::with_capacity(self.dbs.len() * n);
        for db in 0..self.dbs.len() {
            for s in 0..n {
                let mut aside = Shard::default();
                locks.with_shard(self, db, s, |g| g.swap(&mut aside));
                shards.push(aside);
            }
        }
        Some(SetAside { shards })
    }

    /// Puts data set aside back in place of the current data, which is
    /// freed (in the background when `lazy` or large). The caller holds
    /// every shard.
    /// No snapshot may run (its state would leave with the old tables):
    /// `Err` gives `aside` back then.
    pub fn put_back(
        &'static self,
        locks: &mut Locks,
        aside: SetAside,
        lazy: bool,
    ) -> Result<(), SetAside> {
        if self.snapshots.in_progress() {
            return Err(aside);
        }
        let n = self.shard_count();
        let mut tables = Vec::with_capacity(aside.shards.len());
        for (i, mut shard) in aside.shards.into_iter().enumerate() {
            locks.with_shard(self, i / n, i % n, |g| g.swap(&mut shard));
            tables.push(shard.take_all());
        }
        free_tables(tables, lazy);
        Ok(())
    }

    /// Swaps the contents of two databases, atomically for every other
    /// client: the command holds every shard of both (its footprint).
    pub fn swap_dbs(&'static self, locks: &mut Locks, a: usize, b: usize) {
        if a == b {
            return;
        }
        let n = self.shard_count();
        for s in 0..n {
            let (x, y) = locks.pair_mut(a * n + s, b * n + s);
            x.swap(y);
            // A running snapshot's state moved with the tables.
            self.snapshots.relocated(x, a);
            self.snapshots.relocated(y, b);
        }
    }

    /// One SCAN call over a database: visits entries until at least `count`
    /// were offered to `f` (or the scan ends) and returns the next cursor.
    pub fn scan(
        &'static self,
        locks: &mut Locks,
        db: usize,
        cursor: u64,
        count: usize,
        now_ms: i64,
        mut f: impl FnMut(EntryRef<'_>),
    ) -> u64 {
        let mut shard = (cursor >> CURSOR_SHARD_SHIFT) as usize;
        let mut tcursor = cursor & ((1u64 << CURSOR_SHARD_SHIFT) - 1);
        let mut seen = 0usize;
        let mut steps = 0usize;
        let max_steps = count.saturating_mul(10).max(100);
        while shard <= self.shard_mask {
            let stopped = locks.with_shard(self, db, shard, |g| {
                let mut dead: Vec<Vec<u8>> = Vec::new();
                loop {
                    tcursor = g.table().scan(tcursor, |e| {
                        if !e.is_expired(now_ms) {
                            seen += 1;
                            f(e);
                        } else if !self.expiry_held(now_ms) {
                            dead.push(e.key().to_vec());
                        }
                    });
                    // Expired keys met are reclaimed (and replicated as
                    // DEL), as Redis's SCAN does. An entry's bucket does
                    // not move when another is removed, so the cursor
                    // still covers every key.
                    for key in dead.drain(..) {
                        if let Some(i) = g.find(hash_key(&key), &key) {
                            let e = g.remove(i, hash_key);
                            self.expired(db, e);
                        }
                    }
                    steps += 1;
                    if tcursor == 0 {
                        return None;
                    }
                    if seen >= count || steps >= max_steps {
                        return Some(((shard as u64) << CURSOR_SHARD_SHIFT) | tcursor);
                    }
                }
            });
            if let Some(next) = stopped {
                return next;
            }
            shard += 1;
            if seen >= count || steps >= max_steps {
                return if shard > self.shard_mask {
                    0
                } else {
                    (shard as u64) << CURSOR_SHARD_SHIFT
                };
            }
        }
        0
    }

    /// A uniformly chosen live key of `db` (RANDOMKEY). Expired entries met
    /// on the way are reclaimed, so the loop ends: every round either answers
    /// or removes one entry. While expiry is held (a replica, a pause) they
    /// stay: after [`HELD_TRIES`] expired picks the last one is answered,
    /// as Redis answers on a replica whose keys all expired.
    pub fn random_key(&'static self, locks: &mut Locks, db: usize, now_ms: i64) -> Option<Vec<u8>> {
        const HELD_TRIES: usize = 100;
        let n = self.shard_count();
        let mut tries = 0;
        loop {
            // Pick the shard by its share of the keys, then a slot inside it.
            let sizes: Vec<usize> = (0..n)
                .map(|s| locks.with_shard(self, db, s, |g| g.len()))
                .collect();
            let total: usize = sizes.iter().sum();
            if total == 0 {
                return None;
            }
            let mut r = (crate::util::rand::u64() % total as u64) as usize;
            let shard = sizes
                .iter()
                .position(|&n| {
                    if r < n {
                        true
                    } else {
                        r -= n;
                        false
                    }
                })
                .unwrap_or(0);
            let found = locks.with_shard(self, db, shard, |g| {
                let i = g.table().random_slot(crate::util::rand::u64)?;
                let e = g.get(i);
                if !e.is_expired(now_ms) || self.expiry_suspended() {
                    return Some(Some(e.key().to_vec()));
                }
                if self.expiry_held(now_ms) {
                    tries += 1;
                    return (tries >= HELD_TRIES).then(|| Some(e.key().to_vec()));
                }
                let e = g.remove(i, hash_key);
                self.expired(db, e);
                Some(None)
            });
            if let Some(Some(k)) = found {
                return Some(k);
            }
        }
    }

    /// One key's deadline, checked by a writable replica's sweep of the
    /// keys its own clients wrote: `Some(true)` while it has a deadline
    /// still to come, `Some(false)` once it has none (gone, reclaimed now,
    /// or without one), `None` when its shard is busy (ask again later).
    pub fn expire_if_due(&self, db: usize, key: &[u8], now_ms: i64) -> Option<bool> {
        let hash = hash_key(key);
        let Some(d) = self.dbs.get(db) else {
            return Some(false);
        };
        let mut g = d.shards[self.shard_of(hash)].0.try_lock()?;
        let Some(idx) = g.find(hash, key) else {
            return Some(false);
        };
        let e = g.get(idx);
        if e.expire().is_none() {
            return Some(false);
        }
        if !e.is_expired(now_ms) {
            return Some(true);
        }
        let e = g.remove(idx, hash_key);
        self.expired(db, e);
        Some(false)
    }

    /// One pass of the active expiry sweep over every shard that has
    /// deadlines, visiting at most `slots_per_shard` slots of each. Returns
    /// how many keys it reclaimed.
    pub fn active_expire(&self, now_ms: i64, slots_per_shard: usize) -> usize {
        let mut reclaimed = 0;
        if self.expiry_suspended() {
            return 0;
        }
        for (db, d) in self.dbs.iter().enumerate() {
            for s in d.shards.iter() {
                let Some(mut g) = s.0.try_lock() else {
                    continue;
                };
                if g.expires() == 0 {
                    continue;
                }
                reclaimed += sweep(self, db, &mut g, now_ms, slots_per_shard);
            }
        }
        reclaimed
    }
}

/// Reclaims expired entries in `g`, starting where the last sweep stopped.
fn sweep(ks: &Keyspace, db: usize, g: &mut Shard, now_ms: i64, budget: usize) -> usize {
    let cap = g.table().capacity();
    let mut pos = if g.sweep_pos >= cap { 0 } else { g.sweep_pos };
    let mut reclaimed = 0;
    let mut visited = 0;
    while visited < budget.min(cap) {
        match g.table().next_occupied(pos) {
            Some(i) if i < pos + budget => {
                visited += i - pos + 1;
                if g.get(i).is_expired(now_ms) {
                    let e = g.remove(i, hash_key);
                    ks.expired(db, e);
                    reclaimed += 1;
                    // Backward shift may have moved a later entry into `i`.
                    pos = i;
                } else {
                    pos = i + 1;
                }
            }
            _ => {
                pos = 0;
                break;
            }
        }
        if pos >= g.table().capacity() {
            pos = 0;
            break;
        }
    }
    g.sweep_pos = pos;
    reclaimed
}

/// A dataset moved out of the keyspace ([`Keyspace::set_aside`]).
pub struct SetAside {
    shards: Vec<Shard>,
}

impl SetAside {
    /// An empty dataset shaped like `ks`, to build one aside (a replica's
    /// asynchronous load) and put it in place with [`Keyspace::put_back`].
    pub fn empty(ks: &Keyspace) -> SetAside {
        let n = ks.dbs.len() * ks.shard_count();
        SetAside {
            shards: (0..n).map(|_| Shard::default()).collect(),
        }
    }

    /// Shard `s` of database `db` (owned here: no lock).
    pub fn shard_mut(&mut self, ks: &Keyspace, db: usize, s: usize) -> &mut Shard {
        &mut self.shards[db * ks.shard_count() + s]
    }

    /// Frees the data (in the background when `lazy` or large).
    pub fn discard(self, lazy: bool) {
        let tables = self.shards.into_iter().map(|mut s| s.take_all()).collect();
        free_tables(tables, lazy);
    }
}

fn free_tables(tables: Vec<Table>, lazy: bool) {
    let total: usize = tables.iter().map(|t| t.len()).sum();
    if lazy || total > 64 * 1024 {
        std::thread::spawn(move || {
            drop(tables);
            crate::alloc::flush_thread();
        });
    } else {
        drop(tables);
    }
}

/// One key inside a locked shard.
pub struct KeySlot<'s, 'k> {
    pub(super) shard: &'s mut Shard,
    pub(super) hash: u64,
    pub(super) key: &'k [u8],
    pub(super) now_ms: i64,
    pub(super) ks: &'static Keyspace,
    pub(super) db: usize,
    /// Reads leave the access time alone (CLIENT NO-TOUCH).
    pub(super) no_touch: bool,
}

impl<'s, 'k> KeySlot<'s, 'k> {
    pub fn key(&self) -> &'k [u8] {
        self.key
    }

    /// Makes `get` keep the entry's access time as it is.
    #[inline]
    pub fn with_no_touch(mut self, no_touch: bool) -> Self {
        self.no_touch = no_touch;
        self
    }

    /// The key's slot even if it has expired, reclaiming nothing (DEBUG
    /// OBJECT reads the table as Redis does, without the expiry check).
    pub fn find_raw(&self) -> Option<usize> {
        self.shard.find(self.hash, self.key)
    }

    /// The live slot of the key; an expired entry is reclaimed on the way.
    #[inline]
    pub fn lookup(&mut self) -> Option<usize> {
        let idx = self.shard.find(self.hash, self.key)?;
        if self.shard.get(idx).is_expired(self.now_ms) {
            if self.ks.expiry_suspended() {
                return Some(idx);
            }
            if self.ks.expiry_held(self.now_ms) {
                return None;
            }
            let e = self.shard.remove(idx, hash_key);
            self.ks.expired(self.db, e);
            return None;
        }
        Some(idx)
    }

    /// The live entry, marking it as accessed.
    #[inline]
    pub fn get(&mut self) -> Option<EntryRef<'_>> {
        let idx = self.lookup()?;
        if !self.no_touch {
            self.touch(idx);
        }
        Some(self.shard.get(idx))
    }

    pub fn touch(&mut self, idx: usize) {
        // Under an LFU policy the field counts accesses instead.
        // Not `get_mut`: an access time is no change for a snapshot.
        let lru = self.shard.get(idx).lru();
        if super::evict::lfu_on() {
            let field = super::evict::lfu_touched(lru, self.now_ms, crate::util::rand::u64());
            self.shard.set_lru(idx, field);
            return;
        }
        let now_s = (self.now_ms / 1000) as u32;
        if lru != now_s {
            self.shard.set_lru(idx, now_s);
        }
    }

    pub fn entry(&self, idx: usize) -> EntryRef<'_> {
        self.shard.get(idx)
    }

    pub fn entry_mut(&mut self, idx: usize) -> SlotMut<'_> {
        self.shard.get_mut(idx)
    }

    /// While expiry is held an expired entry stays in the table though
    /// lookups miss it: a write that still reaches the key (one that began
    /// before the pause) replaces it.
    #[inline]
    fn drop_held_expired(&mut self) {
        if self.ks.expiry_held(self.now_ms)
            && let Some(i) = self.shard.find(self.hash, self.key)
        {
            drop(self.shard.remove(i, hash_key));
        }
    }

    /// Inserts the key, which the caller found absent with `lookup`.
    pub fn insert(&mut self, value: Value<'_>, expire: Option<i64>) -> usize {
        self.drop_held_expired();
        let access = super::evict::fresh_access(self.now_ms);
        let e = Entry::new(self.key, value, expire, access);
        self.ks
            .key_event(self.db, crate::notify::NEW, "new", self.key);
        self.shard.insert(self.hash, e, hash_key)
    }

    /// Inserts an entry built elsewhere (RENAME, MOVE); its key must be ours.
    pub fn insert_entry(&mut self, entry: Entry) -> usize {
        debug_assert_eq!(entry.key(), self.key);
        self.drop_held_expired();
        self.ks
            .key_event(self.db, crate::notify::NEW, "new", self.key);
        self.shard.insert(self.hash, entry, hash_key)
    }

    /// SET semantics: replaces any value (and deadline) the key had.
    pub fn set(&mut self, value: Value<'_>, expire: Option<i64>) -> usize {
        match self.lookup() {
            Some(idx) => {
                self.shard.set_value(idx, value, false);
                if expire.is_some() {
                    self.shard.set_expire(idx, expire);
                }
                self.touch(idx);
                idx
            }
            None => self.insert(value, expire),
        }
    }

    pub fn set_value(&mut self, idx: usize, value: Value<'_>, keep_ttl: bool) {
        self.shard.set_value(idx, value, keep_ttl);
    }

    pub fn set_expire(&mut self, idx: usize, at: Option<i64>) {
        self.shard.set_expire(idx, at);
    }

    /// Removes the live key, if any.
    pub fn remove(&mut self) -> Option<Entry> {
        let idx = self.lookup()?;
        Some(self.shard.remove(idx, hash_key))
    }

    pub fn remove_at(&mut self, idx: usize) -> Entry {
        self.shard.remove(idx, hash_key)
    }

    /// Replaces the entry at `idx` by a fresh one (a new value with a new
    /// deadline): the key was there all along, so it is not `new`.
    pub fn replace_at(&mut self, idx: usize, value: Value<'_>, expire: Option<i64>) -> usize {
        drop(self.shard.remove(idx, hash_key));
        let access = super::evict::fresh_access(self.now_ms);
        let e = Entry::new(self.key, value, expire, access);
        self.shard.insert(self.hash, e, hash_key)
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Serves this key's blocked clients before the command's locks go,
    /// though the key already existed (see [`Shard::signal_ready`]).
    pub fn signal_ready(&mut self) {
        self.shard.signal_ready(self.key);
    }
}

/// An open effect group ([`Keyspace::begin_group`]); publishes it when
/// dropped, also during a panic's unwinding (what was applied is published).
pub struct EffectGroup<'k> {
    ks: &'k Keyspace,
    /// False for a group opened inside another (it publishes nothing).
    outer: bool,
}

impl EffectGroup<'_> {
    /// True for the outermost group (false inside a transaction's or a
    /// script's, which frames the records itself).
    pub fn is_outer(&self) -> bool {
        self.outer
    }
}

impl Drop for EffectGroup<'_> {
    fn drop(&mut self) {
        if !self.outer {
            return;
        }
        let Some((_, records)) = GROUP.with(|g| g.borrow_mut().take()) else {
            return;
        };
        if records.is_empty() {
            return;
        }
        let argvs: Vec<Vec<&[u8]>> = records
            .iter()
            .map(|(_, argv, _)| argv.iter().map(|a| &a[..]).collect())
            .collect();
        let effects: Vec<Effect<'_>> = records
            .iter()
            .zip(&argvs)
            .map(|((db, _, to), argv)| Effect {
                db: *db,
                argv,
                to: *to,
            })
            .collect();
        // A transaction that wrote once needs no framing, and a script whose
        // write call changed nothing leaves the framing only: both collapse
        // here as they do per consumer.
        let effects = super::effects_for(&effects, super::TO_ALL);
        if !effects.is_empty() {
            self.ks.publish(&effects);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn keyspace() -> &'static Keyspace {
        Box::leak(Box::new(Keyspace::new(2, 4)))
    }

    fn put(ks: &'static Keyspace, key: &[u8], expire: Option<i64>) {
        let mut locks = Locks::default();
        let mut slot = locks.key(ks, 0, key, 1_000);
        slot.insert(Value::Int(1), expire);
    }

    #[test]
    fn random_key_never_answers_an_expired_key_and_reclaims_them() {
        let ks = keyspace();
        assert_eq!(ks.random_key(&mut Locks::default(), 0, 1_000), None);
        for i in 0..50 {
            put(ks, format!("dead{i}").as_bytes(), Some(500));
        }
        assert_eq!(ks.random_key(&mut Locks::default(), 0, 1_000), None);
        assert_eq!(ks.dbsize(&mut Locks::default(), 0), 0);
        assert_eq!(ks.expired_keys.load(Ordering::Relaxed), 50);

        for i in 0..20 {
            put(ks, format!("live{i}").as_bytes(), None);
            put(ks, format!("dead{i}").as_bytes(), Some(500));
        }
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let k = ks.random_key(&mut Locks::default(), 0, 1_000).unwrap();
            assert!(k.starts_with(b"live"));
            seen.insert(k);
        }
        assert_eq!(seen.len(), 20, "every live key shows up eventually");
        assert_eq!(ks.random_key(&mut Locks::default(), 1, 1_000), None);
    }
}
