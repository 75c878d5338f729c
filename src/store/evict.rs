//! The store's half of eviction: sampling keys of a database and removing
//! the chosen ones. The policy (what to sample, when to stop) lives in
//! `crate::server::evict`.
//!
//! Every function here only *tries* shard locks: eviction runs before a
//! command takes its own locks, and a shard held by someone else (a long
//! script, a transaction) is skipped rather than waited for.

use std::sync::atomic::Ordering;

use super::entry::{Entry, EntryRef};
use super::keyspace::{Keyspace, hash_key};
use super::shard::Shard;

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
    /// Whether `db` has a key eviction may take (one with a deadline if
    /// `volatile`), looking only at shards free right now.
    pub fn has_evictable(&self, db: usize, volatile: bool) -> bool {
        let d = self.db(db);
        (0..d.shard_count()).any(|s| {
            d.shard(s).try_lock().is_some_and(|g| {
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
        self.key_event(db, crate::config::notify::EVICTED, "evicted", e.key());
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
    fn volatile_sampling_only_sees_keys_with_a_deadline() {
        let ks = keyspace();
        for i in 0..200 {
            put(ks, &format!("k{i}"), None);
        }
        put(ks, "v1", Some(5_000));
        put(ks, "v2", Some(9_000));
        assert!(ks.has_evictable(0, true));
        assert!(!ks.has_evictable(1, false));
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
