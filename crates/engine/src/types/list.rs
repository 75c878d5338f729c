//! The list type.
//!
//! Redis 7.0 reports every list as `quicklist`: a deque of packed nodes. We
//! keep that shape, and store a list that fits in one node inline in its
//! keyspace entry (`Packed::List`), which OBJECT ENCODING still names
//! `quicklist` as 7.0 does.
//!
//! Elements are packed as described in [`codec`] (length, bytes, length
//! again), so a node is walked from either end in O(1) per step. The inline
//! form is
//! `[count: varint]` followed by those elements; a [`QuickList`] is a deque of
//! [`Node`]s, each bounded by `list-max-listpack-size` (bytes when negative,
//! elements when positive).
//!
//! Why packed nodes rather than a `VecDeque<Box<[u8]>>`: a boxed element costs
//! a 16-byte pointer plus an allocation of at least 16 bytes, several times
//! the data for the short elements queues usually hold; a node costs 2 bytes
//! per short element. Ends stay O(1) (push/pop touch only the end node),
//! indexing is O(nodes) plus a walk inside one node, like Redis.
//!
//! A list whose edits leave it fitting in one node goes back inline (the
//! encoding name does not change, only the memory).

use std::collections::VecDeque;

use crate::error::Error;
use crate::store::{KeySlot, Object, Packed, Value, ValueRef};

mod codec;

pub use codec::element_size;
use codec::{Fwd, Rev, get_varint, offset_of, put_element, put_varint, varint_len};

// ---- node limits --------------------------------------------------------------

/// How big one node may grow, from `list-max-listpack-size`.
#[derive(Clone, Copy, Debug)]
pub struct Fill {
    bytes: usize,
    count: usize,
}

/// Redis's cap on a node's bytes when the fill counts elements.
const SIZE_SAFETY_LIMIT: usize = 8192;

impl Fill {
    pub fn new(fill: i64) -> Fill {
        if fill < 0 {
            let class = (-fill - 1).min(4) as u32;
            Fill {
                bytes: 4096 << class,
                count: usize::MAX,
            }
        } else {
            Fill {
                bytes: SIZE_SAFETY_LIMIT,
                count: (fill as usize).max(1),
            }
        }
    }

    fn allows(&self, data_len: usize, count: usize) -> bool {
        data_len <= self.bytes && count <= self.count
    }
}

// ---- the quicklist ------------------------------------------------------------

#[derive(Clone, Debug, Default)]
pub struct Node {
    count: u32,
    data: Vec<u8>,
}

impl Node {
    fn room_for(&self, item: &[u8], fill: Fill) -> bool {
        self.count == 0
            || fill.allows(
                self.data.len() + element_size(item),
                self.count as usize + 1,
            )
    }
}

/// A list too big to live inline: a deque of packed nodes.
#[derive(Clone, Debug, Default)]
pub struct QuickList {
    nodes: VecDeque<Node>,
    len: usize,
}

impl QuickList {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Packed nodes (the work freeing the list takes).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes (MEMORY USAGE): the node deque plus the nodes' buffers,
    /// the first `samples` nodes measured and the rest assumed alike.
    pub fn mem_usage(&self, samples: usize) -> usize {
        let n = samples.max(1).min(self.nodes.len());
        let bytes: usize = self.nodes.iter().take(n).map(|x| x.data.capacity()).sum();
        let deque = self.nodes.capacity() * std::mem::size_of::<Node>();
        deque + (bytes * self.nodes.len()).checked_div(n).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn from_inline(bytes: &[u8]) -> QuickList {
        let (count, data) = split_inline(bytes);
        let mut nodes = VecDeque::new();
        if count > 0 {
            nodes.push_back(Node {
                count: count as u32,
                data: data.to_vec(),
            });
        }
        QuickList { nodes, len: count }
    }

    /// The inline form, when the whole list fits one node.
    fn to_inline(&self, fill: Fill) -> Option<Vec<u8>> {
        let bytes: usize = self.nodes.iter().map(|n| n.data.len()).sum();
        if !fill.allows(bytes, self.len) {
            return None;
        }
        let mut out = Vec::with_capacity(bytes + varint_len(self.len));
        put_varint(&mut out, self.len);
        for n in &self.nodes {
            out.extend_from_slice(&n.data);
        }
        Some(out)
    }

    pub fn push(&mut self, left: bool, item: &[u8], fill: Fill) {
        let end = if left {
            self.nodes.front_mut()
        } else {
            self.nodes.back_mut()
        };
        let node = match end {
            Some(n) if n.room_for(item, fill) => n,
            _ => {
                if left {
                    self.nodes.push_front(Node::default());
                    self.nodes.front_mut().expect("just pushed")
                } else {
                    self.nodes.push_back(Node::default());
                    self.nodes.back_mut().expect("just pushed")
                }
            }
        };
        if left {
            let mut enc = Vec::with_capacity(element_size(item));
            put_element(&mut enc, item);
            node.data.splice(0..0, enc);
        } else {
            put_element(&mut node.data, item);
        }
        node.count += 1;
        self.len += 1;
    }

    pub fn pop(&mut self, left: bool) -> Option<Vec<u8>> {
        let node = if left {
            self.nodes.front_mut()?
        } else {
            self.nodes.back_mut()?
        };
        let item = if left {
            let mut it = Fwd::new(&node.data);
            let item = it.next()?.to_vec();
            node.data.drain(..it.pos);
            item
        } else {
            let mut it = Rev::new(&node.data);
            let item = it.next()?.to_vec();
            node.data.truncate(it.end);
            item
        };
        node.count -= 1;
        if node.count == 0 {
            if left {
                self.nodes.pop_front();
            } else {
                self.nodes.pop_back();
            }
        }
        self.len -= 1;
        Some(item)
    }

    /// (node, element within the node) of list index `i < len`.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut rest = i;
            for (n, node) in self.nodes.iter().enumerate() {
                if rest < node.count as usize {
                    return (n, rest);
                }
                rest -= node.count as usize;
            }
        } else {
            let mut rest = self.len - i;
            for (n, node) in self.nodes.iter().enumerate().rev() {
                if rest <= node.count as usize {
                    return (n, node.count as usize - rest);
                }
                rest -= node.count as usize;
            }
        }
        unreachable!("index {i} inside a list of {}", self.len)
    }

    /// Replaces element `i < len`.
    pub fn set(&mut self, i: usize, item: &[u8], fill: Fill) {
        let (n, k) = self.locate(i);
        let node = &mut self.nodes[n];
        let start = offset_of(&node.data, node.count as usize, k);
        let mut it = Fwd {
            buf: &node.data,
            pos: start,
        };
        it.next();
        let end = it.pos;
        let mut enc = Vec::with_capacity(element_size(item));
        put_element(&mut enc, item);
        node.data.splice(start..end, enc);
        self.split_if_needed(n, fill);
    }

    /// Inserts before index `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, item: &[u8], fill: Fill) {
        if i == 0 || i == self.len {
            return self.push(i == 0, item, fill);
        }
        let (n, k) = self.locate(i);
        let node = &mut self.nodes[n];
        let at = offset_of(&node.data, node.count as usize, k);
        let mut enc = Vec::with_capacity(element_size(item));
        put_element(&mut enc, item);
        node.data.splice(at..at, enc);
        node.count += 1;
        self.len += 1;
        self.split_if_needed(n, fill);
    }

    /// Halves node `n` when an edit in the middle pushed it over the limits.
    fn split_if_needed(&mut self, n: usize, fill: Fill) {
        let node = &mut self.nodes[n];
        if node.count < 2 || fill.allows(node.data.len(), node.count as usize) {
            return;
        }
        let keep = node.count as usize / 2;
        let at = offset_of(&node.data, node.count as usize, keep);
        let tail = Node {
            count: node.count - keep as u32,
            data: node.data.split_off(at),
        };
        node.count = keep as u32;
        node.data.shrink_to_fit();
        self.nodes.insert(n + 1, tail);
    }

    /// Keeps only elements `start..start + keep`.
    pub fn trim(&mut self, start: usize, keep: usize) {
        let mut front = start;
        while let Some(node) = self.nodes.front() {
            if front == 0 || (node.count as usize) > front {
                break;
            }
            front -= node.count as usize;
            self.len -= node.count as usize;
            self.nodes.pop_front();
        }
        for _ in 0..front {
            self.pop(true);
        }
        let mut back = self.len - keep;
        while let Some(node) = self.nodes.back() {
            if back == 0 || (node.count as usize) > back {
                break;
            }
            back -= node.count as usize;
            self.len -= node.count as usize;
            self.nodes.pop_back();
        }
        for _ in 0..back {
            self.pop(false);
        }
    }

    /// Rebuilds the list from `items` (LREM), packing nodes full again.
    fn rebuild<'a>(items: impl IntoIterator<Item = &'a [u8]>, fill: Fill) -> QuickList {
        let mut q = QuickList::default();
        for it in items {
            q.push(false, it, fill);
        }
        q
    }
}

// ---- reading, whatever the encoding -------------------------------------------

fn split_inline(bytes: &[u8]) -> (usize, &[u8]) {
    if bytes.is_empty() {
        return (0, bytes);
    }
    let mut pos = 0;
    let count = get_varint(bytes, &mut pos);
    (count, &bytes[pos..])
}

/// A list as stored, either encoding.
#[derive(Clone, Copy)]
pub enum ListRef<'a> {
    Inline { len: usize, data: &'a [u8] },
    Quick(&'a QuickList),
}

impl<'a> ListRef<'a> {
    /// The list behind a stored value; other types are WRONGTYPE.
    pub fn of(v: ValueRef<'a>) -> Result<ListRef<'a>, Error> {
        match v {
            ValueRef::Packed(Packed::List, b) => {
                let (len, data) = split_inline(b);
                Ok(ListRef::Inline { len, data })
            }
            ValueRef::Obj(Object::List(q)) => Ok(ListRef::Quick(q)),
            _ => Err(Error::WrongType),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ListRef::Inline { len, .. } => *len,
            ListRef::Quick(q) => q.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nodes (chunks of packed elements): 1 for an inline list.
    pub fn chunks(&self) -> usize {
        match self {
            ListRef::Inline { .. } => 1,
            ListRef::Quick(q) => q.nodes.len(),
        }
    }

    /// (packed elements, element count) of chunk `i`.
    pub fn chunk(&self, i: usize) -> (&'a [u8], usize) {
        match *self {
            ListRef::Inline { len, data } => (data, len),
            ListRef::Quick(q) => (&q.nodes[i].data, q.nodes[i].count as usize),
        }
    }

    /// Resolves a Redis index (negative counts from the tail).
    pub fn index(&self, i: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if i < 0 { len + i } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        if i >= self.len() {
            return None;
        }
        match *self {
            ListRef::Inline { len, data } => {
                let at = offset_of(data, len, i);
                Fwd { buf: data, pos: at }.next()
            }
            ListRef::Quick(q) => {
                let (n, k) = q.locate(i);
                let node = &q.nodes[n];
                let at = offset_of(&node.data, node.count as usize, k);
                Fwd {
                    buf: &node.data,
                    pos: at,
                }
                .next()
            }
        }
    }

    /// Elements from index `i` on (an empty walk when `i >= len`).
    pub fn iter_from(&self, i: usize) -> Iter<'a> {
        let mut chunk = 0;
        let mut rest = i;
        while chunk < self.chunks() {
            let (data, count) = self.chunk(chunk);
            if rest < count {
                let pos = offset_of(data, count, rest);
                return Iter {
                    list: *self,
                    chunk,
                    cur: Fwd { buf: data, pos },
                };
            }
            rest -= count;
            chunk += 1;
        }
        Iter {
            list: *self,
            chunk,
            cur: Fwd::new(&[]),
        }
    }

    pub fn iter(&self) -> Iter<'a> {
        self.iter_from(0)
    }

    /// The elements node by node (RDB writes one listpack per node).
    pub fn nodes(&self) -> impl Iterator<Item = impl Iterator<Item = &'a [u8]>> + '_ {
        (0..self.chunks()).map(|i| Fwd::new(self.chunk(i).0))
    }

    /// Elements from the tail.
    pub fn iter_rev(&self) -> RevIter<'a> {
        RevIter {
            list: *self,
            chunk: self.chunks(),
            cur: Rev::new(&[]),
        }
    }
}

pub struct Iter<'a> {
    list: ListRef<'a>,
    chunk: usize,
    cur: Fwd<'a>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(x) = self.cur.next() {
                return Some(x);
            }
            if self.chunk + 1 >= self.list.chunks() {
                return None;
            }
            self.chunk += 1;
            self.cur = Fwd::new(self.list.chunk(self.chunk).0);
        }
    }
}

pub struct RevIter<'a> {
    list: ListRef<'a>,
    /// The chunk `cur` walks is `chunk`; the next one is `chunk - 1`.
    chunk: usize,
    cur: Rev<'a>,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(x) = self.cur.next() {
                return Some(x);
            }
            if self.chunk == 0 {
                return None;
            }
            self.chunk -= 1;
            self.cur = Rev::new(self.list.chunk(self.chunk).0);
        }
    }
}

/// A list built whole (RDB loading, RESTORE), in the encoding its size
/// calls for. `None` when `items` is empty.
pub fn build<'a>(items: impl IntoIterator<Item = &'a [u8]>, fill: Fill) -> Option<Built> {
    let q = QuickList::rebuild(items, fill);
    if q.is_empty() {
        return None;
    }
    Some(match q.to_inline(fill) {
        Some(b) if q.nodes.len() <= 1 => Built::Inline(b),
        _ => Built::Quick(Box::new(Object::List(Box::new(q)))),
    })
}

/// A built list, ready to become a keyspace value.
pub enum Built {
    Inline(Vec<u8>),
    Quick(Box<Object>),
}

impl Built {
    pub fn value(&mut self) -> Value<'_> {
        match self {
            Built::Inline(b) => Value::Packed(Packed::List, b),
            Built::Quick(o) => Value::Obj(std::mem::replace(o, Box::new(Object::placeholder()))),
        }
    }
}

// ---- editing a key --------------------------------------------------------------

fn inline_bytes<'a>(items: impl Iterator<Item = &'a [u8]>, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, count);
    for it in items {
        put_element(&mut out, it);
    }
    out
}

/// Stores `q` back into the key at `idx`: deleted when empty, inline when it
/// fits one node, else as a quicklist object.
fn store(slot: &mut KeySlot<'_, '_>, idx: usize, q: QuickList, fill: Fill) {
    if q.is_empty() {
        drop(slot.remove_at(idx));
    } else if let Some(bytes) = q.to_inline(fill) {
        slot.set_value(idx, Value::Packed(Packed::List, &bytes), true);
    } else {
        slot.set_value(idx, Value::Obj(Box::new(Object::List(Box::new(q)))), true);
    }
}

/// Runs `f` on the list at `idx` as a quicklist and stores the result back
/// (see [`store`]). An object is edited in place; an inline list is unpacked
/// into a one-node quicklist first. The key must hold a list.
pub fn edit<R>(
    slot: &mut KeySlot<'_, '_>,
    idx: usize,
    fill: Fill,
    f: impl FnOnce(&mut QuickList) -> R,
) -> R {
    let inline = match slot.entry(idx).value() {
        ValueRef::Packed(Packed::List, b) => Some(QuickList::from_inline(b)),
        _ => None,
    };
    match inline {
        Some(mut q) => {
            let r = f(&mut q);
            store(slot, idx, q, fill);
            r
        }
        None => {
            let mut e = slot.entry_mut(idx);
            let Some(Object::List(q)) = e.object_mut() else {
                unreachable!("edit() on a key that is not a list");
            };
            let r = f(q);
            let (empty, single) = (q.is_empty(), q.nodes.len() <= 1);
            drop(e);
            if empty {
                drop(slot.remove_at(idx));
            } else if single {
                // Back inline when it fits (hysteresis: only a lone node).
                let bytes = match slot.entry(idx).value() {
                    ValueRef::Obj(Object::List(q)) => q.to_inline(fill),
                    _ => None,
                };
                if let Some(b) = bytes {
                    slot.set_value(idx, Value::Packed(Packed::List, &b), true);
                }
            }
            r
        }
    }
}

/// Checks the type of the key: `Ok(Some(idx))` for a list, `Ok(None)` when
/// missing, WRONGTYPE otherwise. Marks the key accessed.
pub fn find(slot: &mut KeySlot<'_, '_>) -> Result<Option<usize>, Error> {
    let Some(idx) = slot.lookup() else {
        return Ok(None);
    };
    slot.touch(idx);
    ListRef::of(slot.entry(idx).value())?;
    Ok(Some(idx))
}

/// LPUSH/RPUSH (and the X forms with `only_if_exists`): pushes `values` one by
/// one at the head (`left`) or tail. Returns the new length (0 when the key
/// is missing and `only_if_exists`). `fill` is `list-max-listpack-size`.
pub fn push<'v>(
    slot: &mut KeySlot<'_, '_>,
    left: bool,
    values: impl IntoIterator<Item = &'v [u8]>,
    only_if_exists: bool,
    fill: i64,
) -> Result<usize, Error> {
    let fill = Fill::new(fill);
    let values: Vec<&[u8]> = values.into_iter().collect();
    if values.is_empty() {
        return Ok(read(slot, |l| l.len())?.unwrap_or(0));
    }
    let idx = match find(slot)? {
        Some(idx) => idx,
        None if only_if_exists => return Ok(0),
        None => slot.insert(Value::Packed(Packed::List, &[]), None),
    };
    // Fast path: an inline list that stays inline is rebuilt in one go.
    if let ValueRef::Packed(_, b) = slot.entry(idx).value() {
        let (len, data) = split_inline(b);
        let added: usize = values.iter().map(|v| element_size(v)).sum();
        let total = len + values.len();
        if fill.allows(data.len() + added, total) {
            let mut out = Vec::with_capacity(data.len() + added + 4);
            put_varint(&mut out, total);
            if left {
                for v in values.iter().rev() {
                    put_element(&mut out, v);
                }
                out.extend_from_slice(data);
            } else {
                out.extend_from_slice(data);
                for v in &values {
                    put_element(&mut out, v);
                }
            }
            slot.set_value(idx, Value::Packed(Packed::List, &out), true);
            return Ok(total);
        }
    }
    Ok(edit(slot, idx, fill, |q| {
        for v in &values {
            q.push(left, v, fill);
        }
        q.len()
    }))
}

/// LPOP/RPOP: removes up to `count` elements from the head (`left`) or tail,
/// in pop order. `Ok(None)` when the key is missing; the key is deleted when
/// it empties. WRONGTYPE for other types.
pub fn pop(
    slot: &mut KeySlot<'_, '_>,
    left: bool,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, Error> {
    let Some(idx) = find(slot)? else {
        return Ok(None);
    };
    if count == 0 {
        return Ok(Some(Vec::new()));
    }
    let popped = match slot.entry(idx).value() {
        ValueRef::Packed(_, b) => {
            let list = ListRef::of(ValueRef::Packed(Packed::List, b))?;
            let n = count.min(list.len());
            let popped: Vec<Vec<u8>> = if left {
                list.iter().take(n).map(<[u8]>::to_vec).collect()
            } else {
                list.iter_rev().take(n).map(<[u8]>::to_vec).collect()
            };
            let rest = list.len() - n;
            if rest == 0 {
                drop(slot.remove_at(idx));
            } else {
                let bytes = if left {
                    inline_bytes(list.iter_from(n), rest)
                } else {
                    inline_bytes(list.iter().take(rest), rest)
                };
                slot.set_value(idx, Value::Packed(Packed::List, &bytes), true);
            }
            popped
        }
        _ => {
            // Going back inline only needs a size bound; any fill works here
            // since a later push re-checks against the configured one.
            let fill = Fill::new(-2);
            edit(slot, idx, fill, |q| {
                let n = count.min(q.len());
                (0..n).filter_map(|_| q.pop(left)).collect()
            })
        }
    };
    Ok(Some(popped))
}

/// Runs `f` over the list at `key` for reading: `Ok(None)` when missing.
pub fn read<R>(
    slot: &mut KeySlot<'_, '_>,
    f: impl FnOnce(ListRef<'_>) -> R,
) -> Result<Option<R>, Error> {
    let Some(idx) = find(slot)? else {
        return Ok(None);
    };
    let list = ListRef::of(slot.entry(idx).value())?;
    Ok(Some(f(list)))
}

/// Rebuilds the list at `idx` keeping the elements `keep` accepts, in order
/// (LREM). Returns how many were dropped.
pub fn retain(
    slot: &mut KeySlot<'_, '_>,
    idx: usize,
    fill: Fill,
    mut keep: impl FnMut(usize, &[u8]) -> bool,
) -> usize {
    let (q, dropped) = {
        let Ok(list) = ListRef::of(slot.entry(idx).value()) else {
            return 0;
        };
        let before = list.len();
        let q = QuickList::rebuild(
            list.iter()
                .enumerate()
                .filter(|(i, v)| keep(*i, v))
                .map(|(_, v)| v),
            fill,
        );
        let dropped = before - q.len();
        (q, dropped)
    };
    if dropped > 0 {
        store(slot, idx, q, fill);
    }
    dropped
}

#[cfg(test)]
mod tests;
