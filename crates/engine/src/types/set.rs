//! The set type: the encoding-agnostic API every set command goes through.
//!
//! Redis 7.0 has two set encodings and OBJECT ENCODING reports exactly those:
//! - `intset` while every member is a canonical i64 and there are at most
//!   `set-max-intset-entries` (512) of them: stored inline in the entry as
//!   [`Packed::IntSet`] (see [`intset`]), iterated in ascending order;
//! - `hashtable` otherwise, for good (no conversion back).
//!
//! A `hashtable` set is stored in one of two ways that only memory tells
//! apart: small ones (at most [`PACKED_ENTRIES`] members of at most
//! [`PACKED_VALUE`] bytes) inline as [`Packed::Set`], a [`listpack`]
//! sequence in insertion order, and larger ones as an [`Object::Set`]
//! ([`SetTable`]). Redis 7.0 has no listpack sets (nor their
//! `set-max-listpack-*` parameters), so both report `hashtable`; the inline
//! form keeps small sets of tags compact.
//!
//! [`SetBuf`] is an owned set in Redis's two encodings, for building results
//! (S*STORE, conversions) with exactly the encoding Redis would pick.

pub mod intset;
pub mod table;

pub use table::SetTable;

use crate::error::Error;
use crate::resp::Reply;
use crate::store::{KeySlot, Object, Packed, Value, ValueRef};
use crate::types::listpack;
use crate::util::num::parse_canonical_i64;

/// Most members an inline `hashtable` set holds.
pub const PACKED_ENTRIES: usize = 128;
/// Longest member an inline `hashtable` set holds.
pub const PACKED_VALUE: usize = 64;

/// The encoding thresholds, read once per command.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `set-max-intset-entries`.
    pub intset_entries: usize,
    pub packed_entries: usize,
    pub packed_value: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            intset_entries: 512,
            packed_entries: PACKED_ENTRIES,
            packed_value: PACKED_VALUE,
        }
    }
}

/// One member as stored: intset members are integers, others bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// Runs `f` on the member's bytes (an integer is formatted on the stack).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Member::Bytes(b) => f(b),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// The member as a canonical integer, if it is one.
    pub fn as_int(self) -> Option<i64> {
        match self {
            Member::Int(n) => Some(n),
            Member::Bytes(b) => parse_canonical_i64(b),
        }
    }

    /// Writes the member as a bulk string.
    pub fn reply(self, out: &mut Reply) {
        match self {
            Member::Int(n) => out.bulk_int(n),
            Member::Bytes(b) => out.bulk(b),
        }
    }
}

/// A read view of a stored set.
#[derive(Clone, Copy)]
pub enum SetRef<'a> {
    Ints(&'a [u8]),
    Packed(&'a [u8]),
    Table(&'a SetTable),
}

impl<'a> SetRef<'a> {
    /// The set held by a value, or `None` when the value is another type.
    pub fn of(v: ValueRef<'a>) -> Option<SetRef<'a>> {
        match v {
            ValueRef::Packed(Packed::IntSet, b) => Some(SetRef::Ints(b)),
            ValueRef::Packed(Packed::Set, b) => Some(SetRef::Packed(b)),
            ValueRef::Obj(Object::Set(t)) => Some(SetRef::Table(t)),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetRef::Ints(b) => intset::len(b),
            SetRef::Packed(b) => listpack::len(b),
            SetRef::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING replies.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetRef::Ints(_) => "intset",
            _ => "hashtable",
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetRef::Ints(b) => parse_canonical_i64(member).is_some_and(|n| intset::contains(b, n)),
            SetRef::Packed(b) => listpack::iter(b).any(|m| m == member),
            SetRef::Table(t) => t.contains(member),
        }
    }

    /// The members: ascending for an intset, else in storage order.
    pub fn iter(&self) -> Iter<'a> {
        match *self {
            SetRef::Ints(b) => Iter::Ints(b, 0..intset::len(b)),
            SetRef::Packed(b) => Iter::Packed(listpack::iter(b)),
            SetRef::Table(t) => Iter::Table(t, 0..t.len()),
        }
    }

    /// Positional access, for random picks.
    pub fn indexed(&self) -> Indexed<'a> {
        match *self {
            SetRef::Ints(b) => Indexed::Ints(b),
            SetRef::Packed(b) => Indexed::Packed(listpack::iter(b).collect()),
            SetRef::Table(t) => Indexed::Table(t),
        }
    }

    /// An owned copy in the same Redis encoding.
    pub fn to_buf(&self) -> SetBuf {
        match *self {
            SetRef::Ints(b) => SetBuf::Ints(intset::decode(b)),
            SetRef::Packed(b) => {
                let mut t = SetTable::with_capacity(listpack::len(b));
                listpack::iter(b).for_each(|m| {
                    t.insert(m);
                });
                SetBuf::Table(t)
            }
            SetRef::Table(t) => SetBuf::Table(t.clone()),
        }
    }

    /// The set rebuilt member by member, as SUNION of this one set builds
    /// it: an intset (ascending) whenever the members allow.
    pub fn to_union(&self, lim: &Limits) -> SetBuf {
        if let SetRef::Ints(b) = self {
            return SetBuf::Ints(intset::decode(b));
        }
        SetBuf::from_members(self.iter(), lim)
    }

    /// One SSCAN step: a compact set is returned whole (cursor 0, as Redis
    /// does for an intset); a table is walked with a resumable cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Member<'a>)) -> u64 {
        match *self {
            SetRef::Table(t) => t.scan(cursor, count, |m| f(Member::Bytes(m))),
            _ => {
                self.iter().for_each(f);
                0
            }
        }
    }
}

/// Iterator over a stored set's members.
pub enum Iter<'a> {
    Ints(&'a [u8], std::ops::Range<usize>),
    Packed(listpack::Iter<'a>),
    Table(&'a SetTable, std::ops::Range<usize>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            Iter::Ints(b, r) => r.next().map(|i| Member::Int(intset::get(b, i))),
            Iter::Packed(it) => it.next().map(Member::Bytes),
            Iter::Table(t, r) => r.next().map(|i| Member::Bytes(t.get(i))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Ints(_, r) | Iter::Table(_, r) => r.len(),
            Iter::Packed(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// A stored set with O(1) access by position.
pub enum Indexed<'a> {
    Ints(&'a [u8]),
    Packed(Vec<&'a [u8]>),
    Table(&'a SetTable),
}

impl<'a> Indexed<'a> {
    pub fn len(&self) -> usize {
        match self {
            Indexed::Ints(b) => intset::len(b),
            Indexed::Packed(v) => v.len(),
            Indexed::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn at(&self, i: usize) -> Member<'a> {
        match self {
            Indexed::Ints(b) => Member::Int(intset::get(b, i)),
            Indexed::Packed(v) => Member::Bytes(v[i]),
            Indexed::Table(t) => Member::Bytes(t.get(i)),
        }
    }

    /// A uniformly chosen member (the set must not be empty).
    pub fn random(&self) -> Member<'a> {
        self.at(random_below(self.len()))
    }
}

fn random_below(n: usize) -> usize {
    (crate::util::rand::u64() % n as u64) as usize
}

/// `k` distinct positions below `n` (`k <= n`), uniformly, in random order.
pub fn sample_positions(n: usize, k: usize) -> Vec<usize> {
    debug_assert!(k <= n);
    if k * 2 >= n {
        // Dense: a partial Fisher-Yates shuffle of every position.
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + random_below(n - i);
            all.swap(i, j);
        }
        all.truncate(k);
        all
    } else {
        // Sparse: draw and reject repeats; expected draws stay under 2k.
        let mut seen = std::collections::HashSet::with_capacity(k);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let i = random_below(n);
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    }
}

/// An owned set in one of Redis's two encodings. Adding follows Redis's
/// rules: an intset turns into a hashtable when a non-integer arrives or it
/// grows past `set-max-intset-entries`, never back.
#[derive(Clone, Debug)]
pub enum SetBuf {
    /// Sorted, distinct.
    Ints(Vec<i64>),
    Table(SetTable),
}

impl Default for SetBuf {
    fn default() -> SetBuf {
        SetBuf::Ints(Vec::new())
    }
}

impl SetBuf {
    pub fn new() -> SetBuf {
        SetBuf::default()
    }

    /// A set built member by member, as Redis builds a destination set:
    /// its encoding is the one those members call for.
    pub fn from_members<'m>(members: impl IntoIterator<Item = Member<'m>>, lim: &Limits) -> SetBuf {
        let mut buf = SetBuf::new();
        for m in members {
            buf.add(m, lim);
        }
        buf
    }

    pub fn len(&self) -> usize {
        match self {
            SetBuf::Ints(v) => v.len(),
            SetBuf::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            SetBuf::Ints(_) => "intset",
            SetBuf::Table(_) => "hashtable",
        }
    }

    /// Adds a member; false when it was already present.
    pub fn add(&mut self, m: Member<'_>, lim: &Limits) -> bool {
        match self {
            SetBuf::Ints(v) => match m.as_int() {
                Some(n) => {
                    if !intset::insert_sorted(v, n) {
                        return false;
                    }
                    if v.len() > lim.intset_entries {
                        self.make_table();
                    }
                    true
                }
                None => {
                    self.make_table();
                    self.add(m, lim)
                }
            },
            SetBuf::Table(t) => m.with_bytes(|b| t.insert(b)),
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            SetBuf::Ints(v) => match parse_canonical_i64(member).map(|n| v.binary_search(&n)) {
                Some(Ok(i)) => {
                    v.remove(i);
                    true
                }
                _ => false,
            },
            SetBuf::Table(t) => t.remove(member),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetBuf::Ints(v) => {
                parse_canonical_i64(member).is_some_and(|n| v.binary_search(&n).is_ok())
            }
            SetBuf::Table(t) => t.contains(member),
        }
    }

    /// Members: ascending for an intset, else insertion order (as stored).
    pub fn iter(&self) -> Box<dyn ExactSizeIterator<Item = Member<'_>> + '_> {
        match self {
            SetBuf::Ints(v) => Box::new(v.iter().map(|&n| Member::Int(n))),
            SetBuf::Table(t) => Box::new(t.iter().map(Member::Bytes)),
        }
    }

    fn make_table(&mut self) {
        if let SetBuf::Ints(v) = self {
            let mut t = SetTable::with_capacity(v.len() + 1);
            for &n in v.iter() {
                t.insert(itoa::Buffer::new().format(n).as_bytes());
            }
            *self = SetBuf::Table(t);
        }
    }

    /// Writes the set as the key's value; `idx` is the key's slot when it
    /// exists (its deadline is kept only if `keep_ttl`).
    fn write(self, slot: &mut KeySlot<'_, '_>, idx: Option<usize>, lim: &Limits, keep_ttl: bool) {
        let packed;
        let value = match self {
            SetBuf::Ints(v) => {
                packed = intset::build(&v);
                Value::Packed(Packed::IntSet, &packed)
            }
            SetBuf::Table(t)
                if t.len() <= lim.packed_entries
                    && t.iter().all(|m| m.len() <= lim.packed_value) =>
            {
                packed = listpack::build(t.iter());
                Value::Packed(Packed::Set, &packed)
            }
            SetBuf::Table(t) => Value::Obj(Box::new(Object::Set(Box::new(t)))),
        };
        match idx {
            Some(i) => slot.set_value(i, value, keep_ttl),
            None => {
                slot.insert(value, None);
            }
        }
    }
}

/// The set at the key, marking it accessed; `WrongType` for another type.
pub fn get<'s>(slot: &'s mut KeySlot<'_, '_>) -> Result<Option<SetRef<'s>>, Error> {
    match slot.get() {
        None => Ok(None),
        Some(e) => SetRef::of(e.value()).map(Some).ok_or(Error::WrongType),
    }
}

/// The key's slot after checking it holds a set (marked accessed).
fn existing(slot: &mut KeySlot<'_, '_>) -> Result<Option<usize>, Error> {
    let Some(idx) = slot.lookup() else {
        return Ok(None);
    };
    slot.touch(idx);
    if SetRef::of(slot.entry(idx).value()).is_none() {
        return Err(Error::WrongType);
    }
    Ok(Some(idx))
}

/// SADD: adds members (creating the set); returns how many were new.
pub fn add(slot: &mut KeySlot<'_, '_>, members: &[&[u8]], lim: &Limits) -> Result<usize, Error> {
    let Some(idx) = existing(slot)? else {
        let mut buf = SetBuf::new();
        let added = members
            .iter()
            .filter(|m| buf.add(Member::Bytes(m), lim))
            .count();
        buf.write(slot, None, lim, false);
        return Ok(added);
    };
    let value = slot.entry(idx).value();
    let rebuilt = match value {
        ValueRef::Packed(Packed::IntSet, b) => add_to_intset(b, members, lim),
        ValueRef::Packed(Packed::Set, b) => add_to_packed(b, members, lim),
        _ => None,
    };
    if let Some((added, bytes, kind)) = rebuilt {
        if added > 0 {
            slot.set_value(idx, Value::Packed(kind, &bytes), true);
        }
        return Ok(added);
    }
    if let Some(Object::Set(t)) = slot.entry_mut(idx).object_mut() {
        return Ok(members.iter().filter(|m| t.insert(m)).count());
    }
    // The compact form cannot hold the result: convert through a SetBuf.
    let mut buf = SetRef::of(slot.entry(idx).value())
        .expect("checked set")
        .to_buf();
    let added = members
        .iter()
        .filter(|m| buf.add(Member::Bytes(m), lim))
        .count();
    if added > 0 {
        buf.write(slot, Some(idx), lim, true);
    }
    Ok(added)
}

/// Integers added to an intset that stays an intset: (added, new bytes).
fn add_to_intset(b: &[u8], members: &[&[u8]], lim: &Limits) -> Option<(usize, Vec<u8>, Packed)> {
    let mut v = intset::decode(b);
    let mut added = 0;
    for m in members {
        if intset::insert_sorted(&mut v, parse_canonical_i64(m)?) {
            added += 1;
        }
    }
    (v.len() <= lim.intset_entries).then(|| (added, intset::build(&v), Packed::IntSet))
}

/// Members appended to an inline hashtable set that still fits inline.
fn add_to_packed(b: &[u8], members: &[&[u8]], lim: &Limits) -> Option<(usize, Vec<u8>, Packed)> {
    let len = listpack::len(b);
    let mut fresh: Vec<&[u8]> = Vec::new();
    for &m in members {
        if listpack::iter(b).any(|x| x == m) || fresh.contains(&m) {
            continue;
        }
        if m.len() > lim.packed_value || len + fresh.len() >= lim.packed_entries {
            return None;
        }
        fresh.push(m);
    }
    let bytes = if fresh.is_empty() {
        Vec::new()
    } else {
        listpack::build_from(listpack::iter(b).chain(fresh.iter().copied()))
    };
    Some((fresh.len(), bytes, Packed::Set))
}

/// SREM: removes members (deleting an emptied key); returns how many went.
pub fn remove(slot: &mut KeySlot<'_, '_>, members: &[&[u8]]) -> Result<usize, Error> {
    let Some(idx) = existing(slot)? else {
        return Ok(0);
    };
    let (removed, left) = match slot.entry(idx).value() {
        ValueRef::Packed(Packed::IntSet, b) => {
            let mut v = intset::decode(b);
            let before = v.len();
            for n in members.iter().filter_map(|m| parse_canonical_i64(m)) {
                if let Ok(i) = v.binary_search(&n) {
                    v.remove(i);
                }
            }
            let removed = before - v.len();
            if removed > 0 && !v.is_empty() {
                let bytes = intset::build(&v);
                slot.set_value(idx, Value::Packed(Packed::IntSet, &bytes), true);
            }
            (removed, v.len())
        }
        ValueRef::Packed(Packed::Set, b) => {
            let kept: Vec<&[u8]> = listpack::iter(b).filter(|x| !members.contains(x)).collect();
            let removed = listpack::len(b) - kept.len();
            let left = kept.len();
            if removed > 0 && left > 0 {
                let bytes = listpack::build(kept);
                slot.set_value(idx, Value::Packed(Packed::Set, &bytes), true);
            }
            (removed, left)
        }
        _ => {
            let mut e = slot.entry_mut(idx);
            let Some(Object::Set(t)) = e.object_mut() else {
                unreachable!("checked set")
            };
            let removed = members.iter().filter(|m| t.remove(m)).count();
            (removed, t.len())
        }
    };
    if left == 0 {
        slot.remove_at(idx);
    }
    Ok(removed)
}

/// What SPOP took out of a set.
pub struct Popped {
    pub members: Vec<Vec<u8>>,
    /// The whole set went (the key is deleted).
    pub emptied: bool,
}

/// SPOP: removes up to `count` random members; `None` when the key is absent.
/// When `count` covers the set, the key is deleted and every member is
/// returned in the order of its union with nothing (what Redis replies:
/// ascending when the members would make an intset).
pub fn pop(
    slot: &mut KeySlot<'_, '_>,
    count: usize,
    lim: &Limits,
) -> Result<Option<Popped>, Error> {
    let Some(idx) = existing(slot)? else {
        return Ok(None);
    };
    let set = SetRef::of(slot.entry(idx).value()).expect("checked set");
    let len = set.len();
    if count >= len {
        let members = set.to_union(lim).iter().map(Member::to_vec).collect();
        slot.remove_at(idx);
        return Ok(Some(Popped {
            members,
            emptied: true,
        }));
    }
    let indexed = set.indexed();
    let picks = sample_positions(len, count);
    let members: Vec<Vec<u8>> = picks.iter().map(|&i| indexed.at(i).to_vec()).collect();
    let rebuilt = match indexed {
        Indexed::Table(_) => None,
        _ => {
            let mut gone = vec![false; len];
            picks.iter().for_each(|&i| gone[i] = true);
            let kept = (0..len).filter(|&i| !gone[i]).map(|i| indexed.at(i));
            Some(match indexed {
                Indexed::Ints(_) => {
                    let v: Vec<i64> = kept.map(|m| m.as_int().expect("intset member")).collect();
                    (Packed::IntSet, intset::build(&v))
                }
                _ => {
                    let v: Vec<&[u8]> = kept
                        .map(|m| match m {
                            Member::Bytes(b) => b,
                            Member::Int(_) => unreachable!("packed members are bytes"),
                        })
                        .collect();
                    (Packed::Set, listpack::build(v))
                }
            })
        }
    };
    drop(indexed);
    match rebuilt {
        Some((kind, bytes)) => slot.set_value(idx, Value::Packed(kind, &bytes), true),
        None => {
            let mut e = slot.entry_mut(idx);
            if let Some(Object::Set(t)) = e.object_mut() {
                members.iter().for_each(|m| {
                    t.remove(m);
                });
            }
        }
    }
    Ok(Some(Popped {
        members,
        emptied: false,
    }))
}

/// Replaces the key with `buf` (S*STORE): the old value and its deadline go;
/// an empty result deletes the key. Returns (members stored, key changed).
pub fn store(slot: &mut KeySlot<'_, '_>, buf: SetBuf, lim: &Limits) -> (usize, bool) {
    let n = buf.len();
    let idx = slot.lookup();
    if n == 0 {
        if let Some(i) = idx {
            slot.remove_at(i);
            return (0, true);
        }
        return (0, false);
    }
    if let Some(i) = idx {
        slot.touch(i);
    }
    buf.write(slot, idx, lim, false);
    (n, true)
}

#[cfg(test)]
mod tests;
