//! The `hashtable` encoding: members in a dense vector plus an
//! open-addressing index over it.
//!
//! ```text
//! members: [SmallBytes; len]          dense, so a random member is one index;
//!                                     short members inline (`types::small`);
//!       or [WideBytes; len]           once a member of 16..=23 bytes arrives
//! slots:   [u64; power of two]       0 = empty, else [hash tag: 32][index + 1: 32]
//! ```
//! A member's home slot is `tag & mask`, so neither a resize nor the
//! backward shift of a deletion ever rehashes a member. Removing a member
//! moves the last one into its place (`swap_remove`); that is what makes the
//! SSCAN cursor below sound.

use crate::store::keyspace::hash_key;
use crate::types::small::{INLINE_MAX, SmallBytes, WIDE_INLINE_MAX, WideBytes};

const MIN_SLOTS: usize = 8;

#[derive(Clone, Default)]
pub struct SetTable {
    members: Members,
    slots: Box<[u64]>,
}

/// The dense member vector. A set starts narrow (16 bytes a member) and
/// turns wide (24) for good when a member of 16 to 23 bytes arrives: such
/// a member then lives inline instead of in an allocation of its own, which
/// costs less memory and saves a dependent cache miss on every lookup,
/// while sets of short members keep the smaller form.
#[derive(Clone)]
enum Members {
    Narrow(Vec<SmallBytes>),
    Wide(Vec<WideBytes>),
}

impl Default for Members {
    fn default() -> Members {
        Members::Narrow(Vec::new())
    }
}

/// `$body` once for either vector, as `$v`.
macro_rules! each {
    ($m:expr, $v:ident => $body:expr) => {
        match $m {
            Members::Narrow($v) => $body,
            Members::Wide($v) => $body,
        }
    };
}

impl Members {
    #[inline]
    fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    #[inline]
    fn get(&self, i: usize) -> &[u8] {
        each!(self, v => &v[i])
    }

    /// Bytes of the vector itself.
    fn capacity_bytes(&self) -> usize {
        match self {
            Members::Narrow(v) => v.capacity() * std::mem::size_of::<SmallBytes>(),
            Members::Wide(v) => v.capacity() * std::mem::size_of::<WideBytes>(),
        }
    }

    fn push(&mut self, member: &[u8]) {
        if let Members::Narrow(v) = self
            && (INLINE_MAX + 1..=WIDE_INLINE_MAX).contains(&member.len())
        {
            let mut wide = Vec::with_capacity(v.capacity().max(v.len() + 1));
            wide.extend(v.drain(..).map(SmallBytes::widen));
            *self = Members::Wide(wide);
        }
        each!(self, v => v.push(member.into()));
    }

    fn swap_remove(&mut self, i: usize) -> Box<[u8]> {
        each!(self, v => v.swap_remove(i).into_boxed())
    }

    fn shrink_to(&mut self, n: usize) {
        each!(self, v => v.shrink_to(n));
    }

    /// Bytes member `i` holds outside the vector.
    fn heap_len(&self, i: usize) -> usize {
        each!(self, v => v[i].heap_len())
    }
}

impl std::fmt::Debug for SetTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetTable")
            .field("len", &self.members.len())
            .finish()
    }
}

#[inline]
fn tag_of(member: &[u8]) -> u64 {
    hash_key(member) >> 32
}

#[inline]
fn slot_index(slot: u64) -> usize {
    (slot & 0xffff_ffff) as usize - 1
}

impl SetTable {
    pub fn new() -> SetTable {
        SetTable::default()
    }

    pub fn with_capacity(n: usize) -> SetTable {
        let mut t = SetTable {
            members: Members::Narrow(Vec::with_capacity(n)),
            slots: Box::default(),
        };
        t.resize(Self::slots_for(n));
        t
    }

    /// Slots for `n` members at a load of at most 3/4.
    fn slots_for(n: usize) -> usize {
        (n * 4 / 3 + 1).next_power_of_two().max(MIN_SLOTS)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.len() == 0
    }

    /// The member at dense position `i` (`i < len`).
    pub fn get(&self, i: usize) -> &[u8] {
        self.members.get(i)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.members.len()).map(|i| self.members.get(i))
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `member`, if present.
    fn find_slot(&self, member: &[u8], tag: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = tag as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s >> 32 == tag && self.members.get(slot_index(s)) == member {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.find_slot(member, tag_of(member)).is_some()
    }

    /// Adds a member; false if it was already there.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        let tag = tag_of(member);
        if self.find_slot(member, tag).is_some() {
            return false;
        }
        if (self.members.len() + 1) * 4 > self.slots.len() * 3 {
            self.resize(Self::slots_for(self.members.len() + 1));
        }
        let idx = self.members.len();
        assert!(idx < u32::MAX as usize, "set too large");
        self.members.push(member);
        self.place(tag, idx);
        true
    }

    fn place(&mut self, tag: u64, idx: usize) {
        let mask = self.mask();
        let mut i = tag as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (tag << 32) | (idx as u64 + 1);
    }

    fn resize(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0u64; n].into_boxed_slice());
        for s in old.iter().copied().filter(|&s| s != 0) {
            self.place(s >> 32, slot_index(s));
        }
    }

    /// Removes a member; false if it was absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.find_slot(member, tag_of(member)) {
            Some(slot) => {
                self.remove_slot(slot);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the member at dense position `i`.
    pub fn remove_at(&mut self, i: usize) -> Box<[u8]> {
        let m = self.members.get(i);
        let slot = self.find_slot(m, tag_of(m)).expect("member is indexed");
        self.remove_slot(slot)
    }

    fn remove_slot(&mut self, slot: usize) -> Box<[u8]> {
        let idx = slot_index(self.slots[slot]);
        self.clear_slot(slot);
        let last = self.members.len() - 1;
        if idx != last {
            // The last member moves into the hole: repoint its slot.
            let m = self.members.get(last);
            let moved = self.find_slot(m, tag_of(m)).expect("member is indexed");
            self.slots[moved] = (self.slots[moved] & !0xffff_ffff) | (idx as u64 + 1);
        }
        let member = self.members.swap_remove(idx);
        if self.slots.len() > MIN_SLOTS && self.members.len() * 8 < self.slots.len() {
            self.resize(Self::slots_for(self.members.len()));
            self.members.shrink_to(self.members.len() * 2);
        }
        member
    }

    /// Empties a slot, shifting back the rest of its probe run.
    fn clear_slot(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut i = (hole + 1) & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                break;
            }
            let home = (s >> 32) as usize & mask;
            // Move `s` into the hole unless its home lies cyclically in (hole, i].
            let dist_home = i.wrapping_sub(home) & mask;
            let dist_hole = i.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.slots[hole] = s;
                hole = i;
            }
            i = (i + 1) & mask;
        }
        self.slots[hole] = 0;
    }

    /// One SSCAN step. Members are visited from the end of the dense vector
    /// down; the cursor is the number of positions still to visit (0 starts
    /// a scan, and 0 is returned when it is over). Removal only moves the
    /// last member into a hole, and additions go to the end, so a member at a
    /// position below the cursor stays below it: every member present for
    /// the whole scan is returned at least once.
    pub fn scan<'t>(&'t self, cursor: u64, count: usize, mut f: impl FnMut(&'t [u8])) -> u64 {
        let len = self.members.len();
        let mut pos = if cursor == 0 {
            len
        } else {
            (cursor as usize).min(len)
        };
        let stop = pos.saturating_sub(count.max(1));
        while pos > stop {
            pos -= 1;
            f(self.members.get(pos));
        }
        pos as u64
    }

    /// Heap bytes (MEMORY USAGE): the index and member vector, plus the
    /// first `samples` members measured and the rest assumed alike.
    pub fn mem_usage(&self, samples: usize) -> usize {
        let n = samples.max(1).min(self.members.len());
        let bytes: usize = (0..n)
            .map(|i| self.members.heap_len(i).div_ceil(8) * 8)
            .sum();
        let fixed = self.slots.len() * 8 + self.members.capacity_bytes();
        fixed + (bytes * self.members.len()).checked_div(n).unwrap_or(0)
    }

    /// Heap bytes this table holds (for memory reports and tests).
    pub fn heap_size(&self) -> usize {
        self.slots.len() * 8
            + self.members.capacity_bytes()
            + (0..self.members.len())
                .map(|i| self.members.heap_len(i))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn insert_remove_against_a_model() {
        let mut t = SetTable::new();
        let mut model = HashSet::new();
        let mut x = 7u64;
        for step in 0..20_000 {
            let v = crate::util::rand::next(&mut x) % 600;
            let m = format!("m{v}").into_bytes();
            if crate::util::rand::next(&mut x).is_multiple_of(3) && step > 100 {
                assert_eq!(t.remove(&m), model.remove(&m));
            } else {
                assert_eq!(t.insert(&m), model.insert(m.clone()));
            }
            assert_eq!(t.len(), model.len());
        }
        for m in &model {
            assert!(t.contains(m));
        }
        let seen: HashSet<Vec<u8>> = t.iter().map(|m| m.to_vec()).collect();
        assert_eq!(seen, model);
        while !t.is_empty() {
            let m = t.remove_at(0);
            assert!(model.remove(&m[..]));
        }
        assert!(model.is_empty());
    }

    #[test]
    fn a_set_turns_wide_mid_way_and_keeps_every_member() {
        let mut t = SetTable::new();
        let mut model = HashSet::new();
        let mut x = 11u64;
        for step in 0..20_000u64 {
            let v = crate::util::rand::next(&mut x) % 900;
            // Short members first, then lengths up to 40 (narrow heap,
            // wide inline, wide heap) once the set has grown.
            let len = if step < 3000 {
                1 + v as usize % 15
            } else {
                1 + v as usize % 40
            };
            let m: Vec<u8> = format!("{v:0len$}").into_bytes();
            if step == 2999 {
                assert!(matches!(t.members, Members::Narrow(_)));
            }
            if crate::util::rand::next(&mut x).is_multiple_of(3) && step > 100 {
                assert_eq!(t.remove(&m), model.remove(&m));
            } else {
                assert_eq!(t.insert(&m), model.insert(m.clone()));
            }
        }
        assert!(matches!(t.members, Members::Wide(_)));
        assert_eq!(t.len(), model.len());
        for m in &model {
            assert!(t.contains(m));
        }
        let seen: HashSet<Vec<u8>> = t.iter().map(|m| m.to_vec()).collect();
        assert_eq!(seen, model);
        let heap: usize = model
            .iter()
            .map(|m| if m.len() > 23 { m.len() } else { 0 })
            .sum();
        assert_eq!(
            t.heap_size() - t.slots.len() * 8 - t.members.capacity_bytes(),
            heap
        );
    }

    #[test]
    fn short_members_keep_the_narrow_form() {
        let mut t = SetTable::new();
        for i in 0..1000 {
            t.insert(format!("member:{i}").as_bytes());
            t.insert(format!("a-long-member-of-many-bytes:{i}").as_bytes());
        }
        assert!(matches!(t.members, Members::Narrow(_)));
        t.insert(b"sixteen-bytes-xx");
        assert!(matches!(t.members, Members::Wide(_)));
        assert_eq!(t.len(), 2001);
        assert!(t.contains(b"member:999") && t.contains(b"a-long-member-of-many-bytes:0"));
    }

    #[test]
    fn scan_returns_every_member_present_throughout() {
        let mut t = SetTable::new();
        for i in 0..1000 {
            t.insert(format!("{i}").as_bytes());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = t.scan(cursor, 7, |m| {
                seen.insert(m.to_vec());
            });
            // Churn: remove odd members below 500, add new ones.
            round += 1;
            let victim = format!("{}", (round * 2 + 1) % 500);
            t.remove(victim.as_bytes());
            t.insert(format!("new{round}").as_bytes());
            if cursor == 0 {
                break;
            }
        }
        for i in 500..1000 {
            assert!(seen.contains(format!("{i}").as_bytes()), "{i} missed");
        }
        for i in (0..500).step_by(2) {
            assert!(seen.contains(format!("{i}").as_bytes()), "{i} missed");
        }
    }
}
