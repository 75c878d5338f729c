//! The full sorted-set encoding (OBJECT ENCODING `skiplist`): a member
//! table for O(1) score lookup plus an order-statistic tree for ranks.
//!
//! Each member is stored once, as an [`Entry`] of a private [`Table`] (the
//! keyspace's own hash table: key = member, value = the score's bits).
//! That table gives O(1) lookup and a SCAN cursor with Redis's guarantees.
//! The tree orders `(score, entry address)` items; comparing two items reads
//! the member through the address. Entries never move while they live in the
//! table (the table moves slots, not entries, and scores are rewritten in
//! place), so the addresses stay valid; every removal takes the item out of
//! the tree before the entry is dropped.

use std::ptr::NonNull;

use super::tree::{Ordered, Tree};
use crate::store::entry::{Entry, EntryRef, Value, ValueRef};
use crate::store::keyspace::hash_key;
use crate::store::table::Table;

#[derive(Clone, Copy)]
pub(super) struct Item {
    pub score: f64,
    entry: NonNull<u8>,
}

impl Item {
    pub fn member<'a>(&self) -> &'a [u8] {
        // SAFETY: items only name entries owned by the table of the Full that
        // holds the tree; callers never let a member outlive that borrow.
        unsafe { EntryRef::from_raw(self.entry.as_ptr()).key() }
    }
}

impl Ordered for Item {
    #[inline]
    fn lt(&self, o: &Item) -> bool {
        self.score < o.score || (self.score == o.score && self.member() < o.member())
    }
}

pub struct Full {
    map: Table,
    tree: Tree<Item>,
}

// SAFETY: the raw addresses in the tree point into entries this value owns
// exclusively (through `map`); nothing is shared with other values.
unsafe impl Send for Full {}
// SAFETY: shared access only reads.
unsafe impl Sync for Full {}

fn score_of(e: EntryRef<'_>) -> f64 {
    match e.value() {
        ValueRef::Int(bits) => f64::from_bits(bits as u64),
        _ => unreachable!("member entries hold score bits"),
    }
}

impl Default for Full {
    fn default() -> Self {
        Full::new()
    }
}

impl Full {
    pub fn new() -> Full {
        Full {
            map: Table::new(),
            tree: Tree::new(),
        }
    }

    /// Builds from members in ascending (score, member) order, no duplicates.
    pub fn from_sorted<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> Full {
        let mut map = Table::new();
        let items: Vec<Item> = items
            .into_iter()
            .map(|(m, s)| Self::add_entry(&mut map, m, s))
            .collect();
        Full {
            map,
            tree: Tree::from_sorted(items),
        }
    }

    fn add_entry(map: &mut Table, member: &[u8], score: f64) -> Item {
        let e = Entry::new(member, Value::Int(score.to_bits() as i64), None, 0);
        let idx = map.insert_new(hash_key(member), e, hash_key);
        let entry = NonNull::new(map.get(idx).as_ptr()).expect("live entry");
        Item { score, entry }
    }

    /// Heap bytes (MEMORY USAGE): the member table's slots and entries (the
    /// first `samples` measured, the rest assumed alike) and the tree, whose
    /// nodes are kept at least a quarter full (counted as 3/4 full here).
    pub fn mem_usage(&self, samples: usize) -> usize {
        let n = samples.max(1).min(self.len());
        let bytes: usize = self
            .map
            .iter()
            .take(n)
            .map(|e| e.alloc_size().div_ceil(8) * 8)
            .sum();
        let entries = (bytes * self.len()).checked_div(n).unwrap_or(0);
        let tree = self.len() * std::mem::size_of::<Item>() * 4 / 3;
        self.map.capacity() * 8 + entries + tree
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    fn find(&self, member: &[u8]) -> Option<usize> {
        self.map.find(hash_key(member), member)
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|i| score_of(self.map.get(i)))
    }

    fn item_at(&self, idx: usize) -> Item {
        let e = self.map.get(idx);
        Item {
            score: score_of(e),
            entry: NonNull::new(e.as_ptr()).expect("live entry"),
        }
    }

    /// Adds a member that is not present.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        debug_assert!(self.find(member).is_none());
        let item = Self::add_entry(&mut self.map, member, score);
        self.tree.insert(item);
    }

    /// Changes the score of a present member.
    pub fn set_score(&mut self, member: &[u8], score: f64) {
        let idx = self.find(member).expect("member present");
        let old = self.item_at(idx);
        self.tree.remove(&old);
        self.map
            .get_mut(idx)
            .set_int_in_place(score.to_bits() as i64);
        self.tree.insert(Item { score, ..old });
    }

    /// Removes a member, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let idx = self.find(member)?;
        let item = self.item_at(idx);
        self.tree.remove(&item);
        drop(self.map.remove_at(idx, hash_key));
        Some(item.score)
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let item = self.item_at(self.find(member)?);
        Some(self.tree.count_while(|x| x.lt(&item)))
    }

    /// How many leading elements satisfy `pred` (true on a prefix).
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.tree.count_while(|x| pred(x.score, x.member()))
    }

    /// Elements with ranks `start..end`, ascending or (rev) descending,
    /// until `f` returns false.
    pub fn visit(
        &self,
        start: usize,
        end: usize,
        rev: bool,
        mut f: impl FnMut(&[u8], f64) -> bool,
    ) {
        self.tree.visit(start, end, rev, |x| f(x.member(), x.score));
    }

    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.tree.get(rank).map(|x| (x.member(), x.score))
    }

    /// A uniformly random element.
    pub fn random(&self, rnd: impl FnMut() -> u64) -> Option<(&[u8], f64)> {
        let idx = self.map.random_slot(rnd)?;
        let e = self.map.get(idx);
        Some((e.key(), score_of(e)))
    }

    /// One ZSCAN step over the member table (same cursor rules as SCAN).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        self.map.scan(cursor, |e| f(e.key(), score_of(e)))
    }

    /// Bytes of the longest member (to decide a conversion back).
    pub fn max_member_len(&self) -> usize {
        self.map.iter().map(|e| e.key().len()).max().unwrap_or(0)
    }
}

impl Clone for Full {
    fn clone(&self) -> Full {
        let mut items = Vec::with_capacity(self.len());
        self.visit(0, self.len(), false, |m, s| {
            items.push((m.to_vec(), s));
            true
        });
        Full::from_sorted(items.iter().map(|(m, s)| (m.as_slice(), *s)))
    }
}

impl std::fmt::Debug for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZSet").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn behaves_like_a_map_plus_sorted_view() {
        let mut z = Full::new();
        let mut model: HashMap<Vec<u8>, f64> = HashMap::new();
        let mut seed = 99u64;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..20_000 {
            let m = format!("m{}", rnd() % 500).into_bytes();
            let s = (rnd() % 40) as f64 / 2.0;
            match rnd() % 3 {
                0 | 1 => match model.insert(m.clone(), s) {
                    Some(_) => z.set_score(&m, s),
                    None => z.insert(&m, s),
                },
                _ => assert_eq!(z.remove(&m), model.remove(&m)),
            }
            assert_eq!(z.score(&m), model.get(&m).copied());
        }
        let sorted: BTreeMap<(u64, Vec<u8>), ()> = model
            .iter()
            .map(|(m, s)| ((s.to_bits(), m.clone()), ()))
            .collect();
        let want: Vec<(Vec<u8>, f64)> = sorted
            .keys()
            .map(|(b, m)| (m.clone(), f64::from_bits(*b)))
            .collect();
        let mut got = Vec::new();
        z.visit(0, z.len(), false, |m, s| {
            got.push((m.to_vec(), s));
            true
        });
        assert_eq!(got, want);
        for (r, (m, _)) in want.iter().enumerate() {
            assert_eq!(z.rank(m), Some(r));
        }
        let c = z.clone();
        drop(z);
        assert_eq!(c.len(), want.len());
        assert_eq!(c.get(3).map(|(m, s)| (m.to_vec(), s)), want.get(3).cloned());
    }
}
