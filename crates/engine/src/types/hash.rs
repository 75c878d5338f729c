//! The hash type.
//!
//! Small hashes live inline in the keyspace entry (`Packed::Hash`, encoding
//! `listpack`) as a [`listpack`](super::listpack) sequence of alternating
//! field and value, in insertion order like Redis's listpack. A hash that
//! gets more than `hash-max-listpack-entries` fields, or a field or value
//! longer than `hash-max-listpack-value` bytes, moves for good to a
//! [`HashTable`] (encoding `hashtable`); Redis 7.0 never converts back.
//!
//! The table is chained with power-of-two bucket arrays, one allocation per
//! field holding its chain link, `[field len: varint][field][value]`
//! (`hash/node.rs`). Chaining (not open
//! addressing) is what makes HSCAN's reverse-binary cursor keep Redis's
//! guarantee across resizes: a bucket of a table of size 2^n splits into
//! exactly the buckets with the same low n bits in a bigger table.

use super::listpack;
use crate::error::Error;
use crate::store::keyspace::hash_key;
use crate::store::{KeySlot, Object, Packed, Value, ValueRef};

// ---- the table -------------------------------------------------------------------

mod node;
use crate::util::varint::put as put_varint;
use node::Node;

const MIN_BUCKETS: usize = 4;

/// An allocation's size as `alloc.rs` counts it: rounded up to a word.
fn words(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// A hash past the listpack thresholds.
#[derive(Default)]
pub struct HashTable {
    buckets: Box<[Option<Node>]>,
    len: usize,
    /// At least the longest chain's length (exact after a resize; removals
    /// leave it as it was): the bound [`HashTable::random`] samples under.
    max_chain: usize,
}

impl Clone for HashTable {
    fn clone(&self) -> HashTable {
        let mut t = HashTable {
            buckets: (0..self.buckets.len()).map(|_| None).collect(),
            len: self.len,
            max_chain: self.max_chain,
        };
        for (b, chain) in self.buckets.iter().enumerate() {
            // Rebuilt back to front, so each chain keeps its order.
            let nodes: Vec<&Node> = chain_of(chain.as_ref()).collect();
            for n in nodes.into_iter().rev() {
                let (f, v) = n.split();
                let next = t.buckets[b].take();
                t.buckets[b] = Some(Node::new(f, v, next));
            }
        }
        t
    }
}

impl std::fmt::Debug for HashTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashTable").field("len", &self.len).finish()
    }
}

/// The nodes of a chain, head first.
fn chain_of(head: Option<&Node>) -> impl Iterator<Item = &Node> {
    std::iter::successors(head, |n| n.next())
}

impl HashTable {
    pub fn with_capacity(n: usize) -> HashTable {
        let size = n.max(MIN_BUCKETS).next_power_of_two();
        HashTable {
            buckets: (0..size).map(|_| None).collect(),
            len: 0,
            max_chain: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bucket_of(&self, field: &[u8]) -> usize {
        hash_key(field) as usize & (self.buckets.len() - 1)
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        if self.buckets.is_empty() {
            return None;
        }
        chain_of(self.buckets[self.bucket_of(field)].as_ref())
            .map(Node::split)
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v)
    }

    /// Sets a field; true when it is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if self.buckets.is_empty() {
            *self = HashTable::with_capacity(MIN_BUCKETS);
        }
        let b = self.bucket_of(field);
        let mut cur = self.buckets[b].as_mut();
        let mut chain = 0;
        while let Some(n) = cur {
            if n.field() == field {
                n.set_value(value);
                return false;
            }
            chain += 1;
            cur = n.next_mut().as_mut();
        }
        let head = self.buckets[b].take();
        self.buckets[b] = Some(Node::new(field, value, head));
        self.max_chain = self.max_chain.max(chain + 1);
        self.len += 1;
        if self.len > self.buckets.len() {
            self.resize(self.buckets.len() * 2);
        }
        true
    }

    /// Removes a field; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let b = self.bucket_of(field);
        let mut link = &mut self.buckets[b];
        loop {
            match link {
                None => return false,
                Some(n) if n.field() == field => {
                    let next = n.next_mut().take();
                    *link = next;
                    break;
                }
                Some(n) => link = n.next_mut(),
            }
        }
        self.len -= 1;
        // Shrink below 10% fill, as Redis does.
        if self.buckets.len() > MIN_BUCKETS && self.len * 10 < self.buckets.len() {
            self.resize((self.len.max(MIN_BUCKETS)).next_power_of_two());
        }
        true
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(
            &mut self.buckets,
            (0..size).map(|_| None).collect::<Box<[_]>>(),
        );
        let mask = size - 1;
        for mut chain in old.into_vec() {
            while let Some(mut n) = chain {
                chain = n.next_mut().take();
                let b = hash_key(n.field()) as usize & mask;
                *n.next_mut() = self.buckets[b].take();
                self.buckets[b] = Some(n);
            }
        }
        self.max_chain = self
            .buckets
            .iter()
            .map(|b| chain_of(b.as_ref()).count())
            .max()
            .unwrap_or(0);
    }

    /// Heap bytes (MEMORY USAGE): the bucket array plus the nodes, the
    /// first `samples` of them measured and the rest assumed alike.
    pub fn mem_usage(&self, samples: usize) -> usize {
        let nodes = self.buckets.iter().flat_map(|b| chain_of(b.as_ref()));
        let (n, bytes) = nodes
            .take(samples.max(1))
            .fold((0, 0), |(n, b), node| (n + 1, b + words(node.alloc_size())));
        self.buckets.len() * 8 + (bytes * self.len).checked_div(n).unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| chain_of(b.as_ref()).map(Node::split))
    }

    /// One HSCAN step: the fields of the bucket the cursor names, then the
    /// next cursor (0 when done). Reverse-binary order, as Redis's dictScan.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        for n in chain_of(self.buckets[(cursor & mask) as usize].as_ref()) {
            let (k, v) = n.split();
            f(k, v);
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits().wrapping_add(1);
        v.reverse_bits()
    }

    /// A random field and value, every field equally likely: a random
    /// bucket and a random place in `0..max_chain`, drawn again until the
    /// place holds a field (picking a random link of a random non-empty
    /// chain would favour fields alone in their bucket).
    pub fn random(&self, mut rnd: impl FnMut() -> u64) -> Option<(&[u8], &[u8])> {
        if self.len == 0 {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let bound = self.max_chain.max(1) as u64;
        loop {
            let head = self.buckets[rnd() as usize & mask].as_ref();
            let pick = (rnd() % bound) as usize;
            if let Some(n) = chain_of(head).nth(pick) {
                return Some(n.split());
            }
        }
    }
}

// ---- reading, whatever the encoding -------------------------------------------

/// Field/value pairs of an inline hash.
pub fn inline_pairs(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    let mut it = listpack::iter(bytes);
    std::iter::from_fn(move || Some((it.next()?, it.next()?)))
}

/// A hash as stored, either encoding.
#[derive(Clone, Copy)]
pub enum HashRef<'a> {
    Inline(&'a [u8]),
    Table(&'a HashTable),
}

impl<'a> HashRef<'a> {
    /// The hash behind a value, or WRONGTYPE.
    pub fn of(v: ValueRef<'a>) -> Result<HashRef<'a>, Error> {
        match v {
            ValueRef::Packed(Packed::Hash, b) => Ok(HashRef::Inline(b)),
            ValueRef::Obj(Object::Hash(t)) => Ok(HashRef::Table(t)),
            _ => Err(Error::WrongType),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HashRef::Inline(b) => listpack::len(b) / 2,
            HashRef::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&'a [u8]> {
        match *self {
            HashRef::Inline(b) => inline_pairs(b).find(|(f, _)| *f == field).map(|(_, v)| v),
            HashRef::Table(t) => t.get(field),
        }
    }

    /// Every pair: insertion order inline, bucket order in a table.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a> {
        match *self {
            HashRef::Inline(b) => Box::new(inline_pairs(b)),
            HashRef::Table(t) => Box::new(t.iter()),
        }
    }
}

/// The conversion thresholds (`hash-max-listpack-*`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

// ---- editing a key --------------------------------------------------------------

/// Checks the type: `Ok(Some(idx))` for a hash, `Ok(None)` when missing,
/// WRONGTYPE otherwise. Marks the key accessed.
pub fn find(slot: &mut KeySlot<'_, '_>) -> Result<Option<usize>, Error> {
    let Some(idx) = slot.lookup() else {
        return Ok(None);
    };
    slot.touch(idx);
    HashRef::of(slot.entry(idx).value())?;
    Ok(Some(idx))
}

/// Runs `f` over the hash at the key: `Ok(None)` when missing.
pub fn read<R>(
    slot: &mut KeySlot<'_, '_>,
    f: impl FnOnce(HashRef<'_>) -> R,
) -> Result<Option<R>, Error> {
    let Some(idx) = find(slot)? else {
        return Ok(None);
    };
    Ok(Some(f(HashRef::of(slot.entry(idx).value())?)))
}

/// The hash at the key, created empty (inline) when missing.
pub fn find_or_create(slot: &mut KeySlot<'_, '_>) -> Result<usize, Error> {
    match find(slot)? {
        Some(idx) => Ok(idx),
        None => Ok(slot.insert(Value::Packed(Packed::Hash, &[]), None)),
    }
}

/// Sets `pairs` in order in the hash at `idx`; returns how many fields were
/// new. Converts to a table when a field or value is longer than the limit
/// or the count goes over it.
pub fn set(slot: &mut KeySlot<'_, '_>, idx: usize, pairs: &[(&[u8], &[u8])], lim: Limits) -> usize {
    if let ValueRef::Packed(_, bytes) = slot.entry(idx).value() {
        let long = pairs
            .iter()
            .any(|(f, v)| f.len() > lim.value || v.len() > lim.value);
        let mut added = 0;
        let mut rebuilt = None;
        if !long {
            let mut items: Vec<(&[u8], &[u8])> = inline_pairs(bytes).collect();
            for &(f, v) in pairs {
                match items.iter_mut().find(|(x, _)| *x == f) {
                    Some(e) => e.1 = v,
                    None => {
                        items.push((f, v));
                        added += 1;
                    }
                }
            }
            if items.len() <= lim.entries {
                rebuilt = Some(build_inline(&items));
            }
        }
        if let Some(b) = rebuilt {
            slot.set_value(idx, Value::Packed(Packed::Hash, &b), true);
            return added;
        }
        let table = to_table(bytes);
        slot.set_value(
            idx,
            Value::Obj(Box::new(Object::Hash(Box::new(table)))),
            true,
        );
    }
    let mut e = slot.entry_mut(idx);
    let Some(Object::Hash(t)) = e.object_mut() else {
        unreachable!("set() on a key that is not a hash");
    };
    pairs.iter().filter(|(f, v)| t.insert(f, v)).count()
}

/// The inline form of `pairs` (the [`listpack`] layout, field then value).
fn build_inline(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let body: usize = pairs
        .iter()
        .map(|(f, v)| listpack::element_size(f) + listpack::element_size(v))
        .sum();
    let mut out = Vec::with_capacity(body + 4);
    put_varint(&mut out, pairs.len() * 2);
    for (f, v) in pairs {
        for x in [f, v] {
            put_varint(&mut out, x.len());
            out.extend_from_slice(x);
        }
    }
    out
}

fn to_table(bytes: &[u8]) -> HashTable {
    let mut t = HashTable::with_capacity(listpack::len(bytes) / 2 + 1);
    for (f, v) in inline_pairs(bytes) {
        t.insert(f, v);
    }
    t
}

/// Removes `fields` from the hash at `idx`, deleting the key when it
/// empties. Returns how many were there.
pub fn remove<'f>(
    slot: &mut KeySlot<'_, '_>,
    idx: usize,
    fields: impl IntoIterator<Item = &'f [u8]>,
) -> usize {
    let (removed, left) = match slot.entry(idx).value() {
        ValueRef::Packed(_, bytes) => {
            let fields: Vec<&[u8]> = fields.into_iter().collect();
            let before = listpack::len(bytes) / 2;
            let kept: Vec<(&[u8], &[u8])> = inline_pairs(bytes)
                .filter(|(f, _)| !fields.contains(f))
                .collect();
            let removed = before - kept.len();
            if removed > 0 && !kept.is_empty() {
                let b = build_inline(&kept);
                slot.set_value(idx, Value::Packed(Packed::Hash, &b), true);
            }
            (removed, before - removed)
        }
        _ => {
            let mut e = slot.entry_mut(idx);
            let Some(Object::Hash(t)) = e.object_mut() else {
                unreachable!("remove() on a key that is not a hash");
            };
            let removed = fields.into_iter().filter(|f| t.remove(f)).count();
            (removed, t.len())
        }
    };
    if left == 0 {
        drop(slot.remove_at(idx));
    }
    removed
}

#[cfg(test)]
mod tests;
