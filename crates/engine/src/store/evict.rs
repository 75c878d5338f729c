//! The store's half of eviction: sampling keys of a database and removing
//! the chosen ones. The policy (what to sample, when to stop) lives in
//! `crate::server::evict`.
//!
//! Every function here only *tries* shard locks: eviction runs before a
//! command takes its own locks, and a shard held by someone else (a long
//! script, a transaction) is skipped rather than waited for.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::entry::{Entry, EntryRef};
use super::keyspace::{Keyspace, hash_key};
use super::shard::Shard;

/// Whether entries' access field holds LFU data (an LFU policy is set).
static LFU: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_MINUTES: AtomicU32 = AtomicU32::new(1);

/// The counter a new key starts with, so it is not evicted at once.
pub const LFU_INIT: u32 = 5;

/// Switches the access field's meaning, as `maxmemory-policy` says, and
/// sets `lfu-log-factor` / `lfu-decay-time`. Stores only what changed (it
/// is called from the cron, and shared lines should stay clean).
pub fn set_lfu(on: bool, log_factor: u32, decay_minutes: u32) {
    for (cell, v) in [
        (&LFU_LOG_FACTOR, log_factor),
        (&LFU_DECAY_MINUTES, decay_minutes),
    ] {
        if cell.load(Ordering::Relaxed) != v {
            cell.store(v, Ordering::Relaxed);
        }
    }
    if LFU.load(Ordering::Relaxed) != on {
        LFU.store(on, Ordering::Relaxed);
    }
}

/// True while entries track access frequency rather than time.
#[inline]
pub fn lfu_on() -> bool {
    LFU.load(Ordering::Relaxed)
}

/// Minutes on a 16-bit clock, as Redis keeps the LFU decay time.
fn lfu_minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

/// The access field of a new entry: the access time in seconds, or with
/// an LFU policy the minute clock and the initial counter.
#[inline]
pub fn fresh_access(now_ms: i64) -> u32 {
    if lfu_on() {
        lfu_minutes(now_ms) << 8 | LFU_INIT
    } else {
        (now_ms / 1000) as u32
    }
}

/// An LFU field's counter after the decay for the minutes since it was
/// last touched (`lfu-decay-time` minutes per step).
pub fn lfu_counter(field: u32, now_ms: i64) -> u32 {
    let last = (field >> 8) & 0xffff;
    let counter = field & 0xff;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= last {
        now - last
    } else {
        0xffff - last + now
    };
    let decay = LFU_DECAY_MINUTES.load(Ordering::Relaxed);
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// An LFU field after one access: decayed, then incremented with a
/// probability that falls as the counter grows (logarithmic counting).
pub fn lfu_touched(field: u32, now_ms: i64, rnd: u64) -> u32 {
    let mut counter = lfu_counter(field, now_ms);
    if counter < 255 {
        let base = counter.saturating_sub(LFU_INIT) as f64;
        let factor = LFU_LOG_FACTOR.load(Ordering::Relaxed) as f64;
        let p = 1.0 / (base * factor + 1.0);
        let r = (rnd >> 11) as f64 / (1u64 << 53) as f64;
        if r < p {
            counter += 1;
        }
    }
    lfu_minutes(now_ms) << 8 | counter
}

/// A sampled key and how good a victim it is (higher is evicted first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub db: usize,
    pub key: Box<[u8]>,
    pub score: u64,
}

/// A random occupied slot of `g`; with `volatile`, one whose key has a
/// deadline (random probes first, then a walk from a random place).
fn pick_slot(g: &Shard, volatile: bool, rnd: &mut impl FnMut() -> u64) -> Option<usize> {
    if g.is_empty() || (volatile && g.expires() == 0) {
        return None;
    }
    let first = g.table().random_slot(&mut *rnd)?;
    if !volatile || g.get(first).expire().is_some() {
        return Some(first);
    }
    for _ in 0..16 {
        let i = g.table().random_slot(&mut *rnd)?;
        if g.get(i).expire().is_some() {
            return Some(i);
        }
    }
    // Few keys carry a deadline: walk on from the random slot, wrapping.
    let cap = g.table().capacity();
    let mut pos = first;
    for _ in 0..2 {
        while let Some(i) = g.table().next_occupied(pos) {
            if g.get(i).expire().is_some() {
                return Some(i);
            }
            pos = i + 1;
            if pos >= cap {
                break;
            }
        }
        pos = 0;
    }
    None
}

impl Keyspace {
    /// Whether `db` may have a key eviction can take (one with a deadline
    /// if `volatile`). A shard someone holds right now counts as maybe.
    pub fn has_evictable(&self, db: usize, volatile: bool) -> bool {
        let d = self.db(db);
        (0..d.shard_count()).any(|s| {
            d.shard(s).try_lock().is_none_or(|g| {
                if volatile {
                    g.expires() > 0
                } else {
                    !g.is_empty()
                }
            })
        })
    }

    /// Runs `f` on the first shard of `db` from a random start that is free
    /// and has evictable keys.
    fn with_random_shard<R>(
        &self,
        db: usize,
        volatile: bool,
        rnd: &mut impl FnMut() -> u64,
        mut f: impl FnMut(&mut Shard, &mut dyn FnMut() -> u64) -> Option<R>,
    ) -> Option<R> {
        let d = self.db(db);
        let n = d.shard_count();
        let start = rnd() as usize % n;
        for k in 0..n {
            let Some(mut g) = d.shard((start + k) % n).try_lock() else {
                continue;
            };
            if g.is_empty() || (volatile && g.expires() == 0) {
                continue;
            }
            if let Some(r) = f(&mut g, rnd) {
                return Some(r);
            }
        }
        None
    }

    /// Samples `n` keys of `db` (each from a random shard), scored by
    /// `score`, into `out`.
    pub fn evict_sample(
        &self,
        db: usize,
        n: usize,
        volatile: bool,
        rnd: &mut impl FnMut() -> u64,
        score: impl Fn(EntryRef<'_>) -> u64,
        out: &mut Vec<Candidate>,
    ) {
        for _ in 0..n {
            let got = self.with_random_shard(db, volatile, rnd, |g, rnd| {
                let i = pick_slot(g, volatile, &mut || rnd())?;
                let e = g.get(i);
                Some(Candidate {
                    db,
                    key: e.key().into(),
                    score: score(e),
                })
            });
            match got {
                Some(c) => out.push(c),
                None => return,
            }
        }
    }

    /// Evicts a random key of `db` (random policies).
    pub fn evict_random(
        &self,
        db: usize,
        volatile: bool,
        rnd: &mut impl FnMut() -> u64,
    ) -> Option<Entry> {
        self.with_random_shard(db, volatile, rnd, |g, rnd| {
            let i = pick_slot(g, volatile, &mut || rnd())?;
            Some(self.evict_at(db, g, i))
        })
    }

    /// Evicts `key` of `db` if it is still there (and, if `volatile`, still
    /// has a deadline) and its shard is free. The entry is handed back for
    /// the caller to free (maybe elsewhere).
    pub fn evict_key(&self, db: usize, key: &[u8], volatile: bool) -> Option<Entry> {
        let hash = hash_key(key);
        let mut g = self.db(db).shard(self.shard_of(hash)).try_lock()?;
        let i = g.find(hash, key)?;
        if volatile && g.get(i).expire().is_none() {
            return None;
        }
        Some(self.evict_at(db, &mut g, i))
    }

    /// Removes slot `i` of the locked shard `g` as an eviction: its
    /// watchers are marked (by `Shard::remove`), a DEL is published and the
    /// `evicted` keyspace event fired, all before the shard is released.
    fn evict_at(&self, db: usize, g: &mut Shard, i: usize) -> Entry {
        let e = g.remove(i, hash_key);
        self.evicted_keys.fetch_add(1, Ordering::Relaxed);
        if self.effects_enabled() {
            self.emit(db, &[b"DEL", e.key()]);
        }
        self.key_event(db, crate::notify::EVICTED, "evicted", e.key());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Locks, Value};

    fn keyspace() -> &'static Keyspace {
        Box::leak(Box::new(Keyspace::new(2, 4)))
    }

    fn put(ks: &'static Keyspace, key: &str, expire: Option<i64>) {
        let mut locks = Locks::default();
        locks
            .key(ks, 0, key.as_bytes(), 1_000)
            .insert(Value::Int(1), expire);
    }

    fn rnd() -> impl FnMut() -> u64 {
        let mut x = 42u64;
        move || crate::util::rand::next(&mut x)
    }

    #[test]
    fn lfu_counts_logarithmically_and_decays_by_minutes() {
        set_lfu(false, 10, 1);
        let now = 1_000 * 60_000;
        let mut f = lfu_minutes(now) << 8 | LFU_INIT;
        // Below the initial value (and at it) every access counts.
        assert_eq!(lfu_counter(lfu_touched(f, now, u64::MAX), now), 6);
        let mut r = rnd();
        for _ in 0..1000 {
            f = lfu_touched(f, now, r());
        }
        let c = lfu_counter(f, now);
        assert!((10..40).contains(&c), "1000 hits with factor 10: {c}");
        assert_eq!(lfu_counter(f, now + 3 * 60_000), c - 3);
        assert_eq!(lfu_counter(f, now + 1000 * 60_000), 0);
        // The minute clock wraps at 16 bits.
        let late = 0xfffe << 8 | 9;
        assert_eq!(lfu_counter(late, (0x10000 + 1) * 60_000), 7);
    }

    #[test]
    fn volatile_sampling_only_sees_keys_with_a_deadline() {
        let ks = keyspace();
        for i in 0..200 {
            put(ks, &format!("k{i}"), None);
        }
        put(ks, "v1", Some(5_000));
        put(ks, "v2", Some(9_000));
        assert!(ks.has_evictable(0, true));
        assert!(!ks.has_evictable(1, false));
        // A shard held elsewhere (a script, a transaction) may have keys.
        let held = ks.db(1).shard(0).lock();
        assert!(ks.has_evictable(1, false));
        drop(held);
        let mut out = Vec::new();
        let mut r = rnd();
        ks.evict_sample(
            0,
            20,
            true,
            &mut r,
            |e| e.expire().unwrap() as u64,
            &mut out,
        );
        assert_eq!(out.len(), 20);
        assert!(out.iter().all(|c| &*c.key == b"v1" || &*c.key == b"v2"));
    }

    #[test]
    fn evicting_counts_and_removes_and_volatile_spares_persistent_keys() {
        let ks = keyspace();
        put(ks, "a", None);
        put(ks, "b", Some(5_000));
        assert!(ks.evict_key(0, b"a", true).is_none());
        assert_eq!(ks.evict_key(0, b"a", false).unwrap().key(), b"a");
        assert!(ks.evict_key(0, b"a", false).is_none());
        let mut r = rnd();
        assert_eq!(ks.evict_random(0, true, &mut r).unwrap().key(), b"b");
        assert!(ks.evict_random(0, false, &mut r).is_none());
        assert_eq!(ks.evicted_keys.load(Ordering::Relaxed), 2);
        assert_eq!(ks.dbsize(&mut Locks::default(), 0), 0);
    }
}
