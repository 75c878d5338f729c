//! The per-shard hash table: open addressing with linear probing over 8-byte
//! slots, each holding an entry pointer plus a hash tag and the probe distance.
//!
//! ```text
//! slot = [tag: 8 bits][distance from home: 8 bits][entry pointer: 48 bits]
//! ```
//! The home slot of a key is `hash & mask` (low bits), so a table that doubles
//! splits every home slot `i` into `i` and `i + old_len`. That is what lets
//! [`Table::scan`] with a reverse-binary cursor honour Redis's SCAN contract
//! while the table grows or shrinks between calls. Deletion shifts the rest of
//! the run back (no tombstones); the stored distance gives every entry's home
//! without touching the entry, so only a resize reads the keys again.
//!
//! Entries are 8-byte aligned, so the pointer's low bit is free: it holds the
//! entry's snapshot *colour* (see `store::snapshot`). Every entry of a table
//! has the table's colour except while a snapshot walk has not reached it;
//! the bit travels with the slot word through probing, shifting and resizes.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use super::entry::{Entry, EntryRef};

/// The snapshot colour bit (the low bit of an aligned entry pointer).
const COLOUR: u64 = 1;
const PTR_MASK: u64 = ((1 << 48) - 1) & !COLOUR;
const DIST_SHIFT: u32 = 48;
const TAG_SHIFT: u32 = 56;
const MAX_DIST: usize = 255;
const MIN_SLOTS: usize = 8;

#[inline]
fn tag_of(hash: u64) -> u64 {
    hash >> TAG_SHIFT
}

#[inline]
fn slot_ptr(slot: u64) -> *mut u8 {
    (slot & PTR_MASK) as usize as *mut u8
}

#[inline]
fn slot_dist(slot: u64) -> usize {
    ((slot >> DIST_SHIFT) & 0xff) as usize
}

#[inline]
fn with_dist(slot: u64, dist: usize) -> u64 {
    (slot & !(0xff << DIST_SHIFT)) | ((dist as u64) << DIST_SHIFT)
}

/// The key hash, as used by the shard choice and the table.
pub type HashFn = fn(&[u8]) -> u64;

pub struct Table {
    slots: Slots,
    len: usize,
    /// The colour new entries get: 0 or [`COLOUR`].
    colour: u64,
}

/// The slot array. Large arrays are mapped straight from the kernel so that
/// a table that grew, shrank or was flushed gives its memory back at once
/// (an allocator keeps freed blocks of this size resident).
struct Slots {
    ptr: std::ptr::NonNull<u64>,
    len: usize,
}

// SAFETY: Slots owns its memory exclusively, like a Box<[u64]>.
unsafe impl Send for Slots {}
// SAFETY: shared access only reads.
unsafe impl Sync for Slots {}

const MMAP_BYTES: usize = 64 * 1024;

impl Slots {
    fn empty() -> Slots {
        Slots {
            ptr: std::ptr::NonNull::dangling(),
            len: 0,
        }
    }

    /// `len` zeroed slots.
    fn zeroed(len: usize) -> Slots {
        if len == 0 {
            return Slots::empty();
        }
        let bytes = len * 8;
        let raw = if bytes >= MMAP_BYTES {
            // SAFETY: an anonymous private mapping; the result is checked.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                std::alloc::handle_alloc_error(Self::layout(len));
            }
            p as *mut u64
        } else {
            // Aligned for u64: the layout is `Layout::array::<u64>`.
            #[allow(clippy::cast_ptr_alignment)]
            // SAFETY: the layout is non-zero sized.
            unsafe {
                std::alloc::alloc_zeroed(Self::layout(len)) as *mut u64
            }
        };
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(Self::layout(len))
        };
        Slots { ptr, len }
    }

    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<u64>(len).expect("slot array size")
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        let bytes = self.len * 8;
        // SAFETY: allocated in `zeroed` by the same rule on the same size.
        unsafe {
            if bytes >= MMAP_BYTES {
                libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, bytes);
            } else {
                std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(self.len));
            }
        }
    }
}

impl Deref for Slots {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        // SAFETY: ptr is valid for len initialized u64s (or dangling with len 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in deref, and we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Table {
    pub fn new() -> Table {
        Table {
            slots: Slots::empty(),
            len: 0,
            colour: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The entry in a non-empty slot.
    #[inline]
    pub fn get(&self, idx: usize) -> EntryRef<'_> {
        let slot = self.slots[idx];
        // A safe fn: an index that is not an occupied slot (a caller's bug)
        // must stop here, not become a null entry pointer. One compare,
        // predicted, on the lookup path.
        assert!(slot != 0, "table slot {idx} is empty");
        // SAFETY: the slot is occupied (just checked), and occupied slots hold
        // live entries owned by this table, which cannot change while `self`
        // is borrowed.
        unsafe { EntryRef::from_raw(slot_ptr(slot)) }
    }

    /// Finds the slot index of `key`.
    #[inline]
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let tag = tag_of(hash);
        let mut idx = hash as usize & mask;
        loop {
            let slot = self.slots[idx];
            if slot == 0 {
                return None;
            }
            if slot >> TAG_SHIFT == tag && self.get(idx).key() == key {
                return Some(idx);
            }
            idx = (idx + 1) & mask;
        }
    }

    /// Mutable access to the entry in slot `idx`. The entry may be replaced
    /// (reallocated); the slot is rewritten when the handle drops.
    pub fn get_mut(&mut self, idx: usize) -> SlotMut<'_> {
        let slot = self.slots[idx];
        assert!(slot != 0, "table slot {idx} is empty");
        // SAFETY: the slot is occupied (just checked), so it holds a live
        // entry this table owns; SlotMut writes the (possibly new) pointer
        // back and never drops the entry itself.
        let entry = unsafe { Entry::from_raw(slot_ptr(slot)) };
        SlotMut {
            slot: &mut self.slots[idx],
            entry: ManuallyDrop::new(entry),
        }
    }

    /// Inserts an entry whose key is known to be absent; returns its slot.
    pub fn insert_new(&mut self, hash: u64, entry: Entry, rehash: HashFn) -> usize {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.slots.len() * 2).max(MIN_SLOTS), rehash);
        }
        let tagged = (tag_of(hash) << TAG_SHIFT) | (entry.into_raw() as usize as u64) | self.colour;
        debug_assert!(slot_ptr(tagged) as usize as u64 & !PTR_MASK == 0);
        loop {
            if let Some(idx) = self.place(hash, tagged) {
                self.len += 1;
                return idx;
            }
            // A run longer than the distance field holds: spread it out.
            self.resize(self.slots.len() * 2, rehash);
        }
    }

    /// Inserts `entry` unless its key is present, probing once (a lookup
    /// followed by [`Table::insert_new`] walks the run twice): `Err` gives
    /// the entry back when the key is there. The bulk loader's insert.
    pub fn insert_absent(
        &mut self,
        hash: u64,
        entry: Entry,
        rehash: HashFn,
    ) -> Result<usize, Entry> {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.slots.len() * 2).max(MIN_SLOTS), rehash);
        }
        let mask = self.mask();
        let tag = tag_of(hash);
        let home = hash as usize & mask;
        for dist in 0..=MAX_DIST {
            let idx = (home + dist) & mask;
            let slot = self.slots[idx];
            if slot == 0 {
                let tagged = (tag << TAG_SHIFT) | (entry.into_raw() as usize as u64) | self.colour;
                self.slots[idx] = with_dist(tagged, dist);
                self.len += 1;
                return Ok(idx);
            }
            if slot >> TAG_SHIFT == tag && self.get(idx).key() == entry.key() {
                return Err(entry);
            }
        }
        // A run longer than the distance field holds: the key is not in it.
        Ok(self.insert_new(hash, entry, rehash))
    }

    /// Reads the home slot of `hash` and lets the value go: a bulk loader
    /// touches a batch's slots first, so their cache misses overlap instead
    /// of coming one insert at a time.
    #[inline]
    pub fn touch_home(&self, hash: u64) {
        if !self.slots.is_empty() {
            std::hint::black_box(self.slots[hash as usize & self.mask()]);
        }
    }

    /// Grows the slot array so that `n` entries fit without a resize (a
    /// loader that knows the size up front rehashes nothing).
    pub fn reserve(&mut self, n: usize, rehash: HashFn) {
        let want = n
            .saturating_add(n / 3)
            .saturating_add(1)
            .next_power_of_two();
        if want > self.slots.len() && n.saturating_mul(4) > self.slots.len() * 3 {
            self.resize(want.max(MIN_SLOTS), rehash);
        }
    }

    fn place(&mut self, hash: u64, tagged: u64) -> Option<usize> {
        let mask = self.mask();
        let home = hash as usize & mask;
        for dist in 0..=MAX_DIST {
            let idx = (home + dist) & mask;
            if self.slots[idx] == 0 {
                self.slots[idx] = with_dist(tagged, dist);
                return Some(idx);
            }
        }
        None
    }

    /// Removes and returns the entry in slot `idx`.
    pub fn remove_at(&mut self, idx: usize, rehash: HashFn) -> Entry {
        let slot = self.slots[idx];
        assert!(slot != 0, "table slot {idx} is empty");
        // SAFETY: the slot is occupied (just checked) and owned this entry;
        // it is cleared below, so ownership moves to the returned Entry.
        let entry = unsafe { Entry::from_raw(slot_ptr(slot)) };
        let mask = self.mask();
        let mut hole = idx;
        let mut j = (idx + 1) & mask;
        self.slots[hole] = 0;
        loop {
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let d = slot_dist(s);
            let gap = j.wrapping_sub(hole) & mask;
            if d >= gap {
                self.slots[hole] = with_dist(s, d - gap);
                self.slots[j] = 0;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.len -= 1;
        if self.slots.len() > MIN_SLOTS && self.len * 8 < self.slots.len() {
            self.resize(self.slots.len() / 2, rehash);
        }
        entry
    }

    fn resize(&mut self, new_len: usize, rehash: HashFn) {
        let old = std::mem::replace(&mut self.slots, Slots::zeroed(new_len));
        for &slot in old.iter() {
            if slot == 0 {
                continue;
            }
            // SAFETY: the old slot holds a live entry that we are moving.
            let key = unsafe { EntryRef::from_raw(slot_ptr(slot)) }.key();
            let hash = rehash(key);
            let base = slot & !(0xff << DIST_SHIFT);
            if self.place(hash, base).is_none() {
                // Only possible while shrinking a pathological table: undo by growing.
                self.slots = old;
                return self.resize_grow_fallback(rehash);
            }
        }
    }

    fn resize_grow_fallback(&mut self, rehash: HashFn) {
        let bigger = self.slots.len() * 2;
        self.resize(bigger, rehash);
    }

    /// Drops every entry, keeping no memory.
    pub fn clear(&mut self) {
        for slot in self.slots.iter_mut() {
            if *slot != 0 {
                // SAFETY: the table owns every non-empty slot's entry.
                drop(unsafe { Entry::from_raw(slot_ptr(*slot)) });
                *slot = 0;
            }
        }
        self.slots = Slots::empty();
        self.len = 0;
    }

    /// Slot indices of every entry (for sweeps that may remove as they go,
    /// use [`Table::next_occupied`] instead).
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != 0)
            .map(|(i, _)| self.get(i))
    }

    /// The first occupied slot at or after `from`, if any.
    pub fn next_occupied(&self, from: usize) -> Option<usize> {
        (from..self.slots.len()).find(|&i| self.slots[i] != 0)
    }

    /// A uniformly chosen occupied slot, from a random number.
    pub fn random_slot(&self, mut rnd: impl FnMut() -> u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        loop {
            let i = rnd() as usize & self.mask();
            if self.slots[i] != 0 {
                return Some(i);
            }
        }
    }

    /// One SCAN step: calls `f` with every entry whose home slot is the one
    /// the cursor names, and returns the next cursor (0 when done). The
    /// cursor walks home slots in reverse-binary order, so every key present
    /// for the whole scan is visited even if the table is resized between
    /// steps (some may be visited twice).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(EntryRef<'_>)) -> u64 {
        self.scan_slots(cursor, |i| f(self.get(i)))
    }

    /// [`Table::scan`] by slot index.
    pub(super) fn scan_slots(&self, cursor: u64, mut f: impl FnMut(usize)) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let home = (cursor & mask) as usize;
        let mut idx = home;
        loop {
            let slot = self.slots[idx];
            if slot == 0 {
                break;
            }
            if idx.wrapping_sub(slot_dist(slot)) & self.mask() == home {
                f(idx);
            }
            idx = (idx + 1) & self.mask();
            if idx == home {
                break;
            }
        }
        // Increment the reversed cursor, keeping the bits above the mask set
        // so that the reversal carries into the right position.
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }
}

/// Snapshot colours (`store::snapshot`).
impl Table {
    /// An empty table whose entries will get this table's colour.
    pub(super) fn empty_like(&self) -> Table {
        let mut t = Table::new();
        t.colour = self.colour;
        t
    }

    /// Gives new entries the other colour: every entry present is now "old".
    pub(super) fn flip_colour(&mut self) {
        self.colour ^= COLOUR;
    }

    /// True if the entry in occupied slot `idx` is not of the table's colour.
    #[inline]
    pub(super) fn is_old(&self, idx: usize) -> bool {
        self.slots[idx] & COLOUR != self.colour
    }

    /// Gives the entry in slot `idx` the table's colour.
    pub(super) fn recolour(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        *s = (*s & !COLOUR) | self.colour;
    }
}

/// A mutable handle on one slot's entry.
pub struct SlotMut<'a> {
    slot: &'a mut u64,
    entry: ManuallyDrop<Entry>,
}

impl Deref for SlotMut<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        &self.entry
    }
}

impl DerefMut for SlotMut<'_> {
    fn deref_mut(&mut self) -> &mut Entry {
        &mut self.entry
    }
}

impl Drop for SlotMut<'_> {
    fn drop(&mut self) {
        // SAFETY: we took the entry out of the slot in get_mut and own it here;
        // putting its (possibly new) pointer back keeps tag and distance.
        let entry = unsafe { ManuallyDrop::take(&mut self.entry) };
        let p = entry.into_raw() as usize as u64;
        *self.slot = (*self.slot & !PTR_MASK) | p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entry::Value;
    use std::collections::{HashMap, HashSet};

    fn h(k: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(k)
    }

    fn entry(k: &[u8], v: i64) -> Entry {
        Entry::new(k, Value::Int(v), None, 0)
    }

    /// An index that is not an occupied slot (a caller's bug) used to turn
    /// into an entry made from a null pointer (UB; an abort under the
    /// debug-build precondition checks); the safe accessors now panic.
    #[test]
    #[should_panic(expected = "is empty")]
    fn an_empty_slot_panics_rather_than_forging_an_entry() {
        let mut t = Table::new();
        t.insert_new(h(b"k"), entry(b"k", 1), h);
        let empty = (0..t.slots.len()).find(|&i| t.slots[i] == 0).unwrap();
        let _ = t.remove_at(empty, h);
    }

    #[test]
    fn insert_absent_refuses_present_keys_and_reserve_presizes() {
        let mut t = Table::new();
        t.reserve(10_000, h);
        let cap = t.capacity();
        assert!(cap * 3 >= 10_000 * 4);
        // Colliding home slots too: a small table first.
        let mut small = Table::new();
        for t in [&mut t, &mut small] {
            for i in 0..10_000 {
                let k = format!("k{i}").into_bytes();
                assert!(t.insert_absent(h(&k), entry(&k, i), h).is_ok());
            }
            for i in (0..10_000).step_by(7) {
                let k = format!("k{i}").into_bytes();
                let back = t.insert_absent(h(&k), entry(&k, -1), h).unwrap_err();
                assert_eq!(back.key(), &k[..]);
                let at = t.find(h(&k), &k).unwrap();
                assert!(
                    matches!(t.get(at).value(), crate::store::ValueRef::Int(v) if v == i as i64)
                );
            }
            assert_eq!(t.len(), 10_000);
        }
        assert_eq!(t.capacity(), cap, "no resize after reserve");
        // A reserve below what is there changes nothing.
        small.reserve(5, h);
        assert_eq!(small.len(), 10_000);
    }

    #[test]
    fn behaves_like_a_hashmap_under_random_operations() {
        let mut t = Table::new();
        let mut model = HashMap::new();
        let mut x = 0x9e3779b97f4a7c15u64;
        for step in 0..200_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = format!("k{}", x % 5000).into_bytes();
            let hash = h(&k);
            match (x >> 32) % 3 {
                0 | 1 => match t.find(hash, &k) {
                    Some(i) => {
                        let mut s = t.get_mut(i);
                        s.set_expire(if step % 2 == 0 { Some(step) } else { None });
                        assert!(s.set_int_in_place(step));
                        model.insert(k, step);
                    }
                    None => {
                        t.insert_new(hash, entry(&k, step), h);
                        model.insert(k, step);
                    }
                },
                _ => {
                    if let Some(i) = t.find(hash, &k) {
                        let e = t.remove_at(i, h);
                        assert_eq!(e.key(), &k[..]);
                        assert!(model.remove(&k).is_some());
                    } else {
                        assert!(!model.contains_key(&k));
                    }
                }
            }
            assert_eq!(t.len(), model.len());
        }
        for (k, v) in &model {
            let i = t.find(h(k), k).expect("present");
            assert!(matches!(t.get(i).value(), crate::store::entry::ValueRef::Int(n) if n == *v));
        }
    }

    #[test]
    fn scan_returns_every_stable_key_while_the_table_grows_and_shrinks() {
        let mut t = Table::new();
        for i in 0..1000 {
            let k = format!("stable{i}").into_bytes();
            t.insert_new(h(&k), entry(&k, i), h);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = t.scan(cursor, |e| {
                seen.insert(e.key().to_vec());
            });
            round += 1;
            // Grow, then shrink, the table between steps.
            if round % 50 == 0 && round < 400 {
                for j in 0..3000 {
                    let k = format!("tmp{round}-{j}").into_bytes();
                    t.insert_new(h(&k), entry(&k, 0), h);
                }
            }
            if round % 75 == 0 {
                let tmp: Vec<Vec<u8>> = t
                    .iter()
                    .filter(|e| e.key().starts_with(b"tmp"))
                    .map(|e| e.key().to_vec())
                    .collect();
                for k in tmp {
                    let i = t.find(h(&k), &k).unwrap();
                    t.remove_at(i, h);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(
                seen.contains(format!("stable{i}").as_bytes()),
                "missed stable{i}"
            );
        }
    }
}
