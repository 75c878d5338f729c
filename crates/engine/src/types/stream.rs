//! The stream type and its consumer groups.
//!
//! A stream is an append-only log of entries, each an id ([`StreamId`])
//! and field/value pairs. It is kept as a deque of [`Node`]s in id order,
//! each a packed run of entries (see [`node`] for the layout and why the
//! node boundaries follow Redis's). Entries are found by binary search on
//! the nodes' master ids, then a walk inside one node.
//!
//! Besides the entries a stream records the last id it generated (never
//! goes back, even when entries are deleted), the first live id, the
//! highest deleted id and how many entries were ever added: XINFO STREAM
//! reports them and XADD/XSETID check against them. An emptied stream stays
//! a key, as in Redis.

use std::collections::{BTreeMap, VecDeque};

use crate::error::Error;
use crate::store::{KeySlot, Object, Value, ValueRef};

pub mod group;
pub mod id;
pub mod node;

pub use group::{Consumer, Group, Pending};
pub use id::StreamId;
use node::EntryView;
pub use node::Node;

/// Where Redis closes a node and starts the next.
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    /// 0: no limit on entries.
    pub max_entries: u64,
}

/// Redis's hard cap on one node's listpack.
const MAX_NODE_BYTES: usize = 1 << 30;

impl NodeLimits {
    pub fn new(max_bytes: i64, max_entries: i64) -> NodeLimits {
        let max_bytes = match usize::try_from(max_bytes) {
            Ok(0) | Err(_) => MAX_NODE_BYTES,
            Ok(b) => b.min(MAX_NODE_BYTES),
        };
        NodeLimits {
            max_bytes,
            max_entries: max_entries.max(0) as u64,
        }
    }

    /// How many entries a `~` trim without LIMIT may remove at most.
    pub fn default_trim_limit(&self) -> u64 {
        match self.max_entries {
            0 => 10_000,
            n => n.saturating_mul(100),
        }
    }
}

/// What a trim keeps: at most N entries, or the entries from an id on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Clone, Debug, Default)]
pub struct Stream {
    nodes: VecDeque<Node>,
    len: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Vec<u8>, Group>,
}

/// One entry as commands see it.
pub struct Entry<'a> {
    pub id: StreamId,
    /// Field, value, field, value ...
    pub pairs: Vec<&'a [u8]>,
}

impl<'a> From<EntryView<'a>> for Entry<'a> {
    fn from(e: EntryView<'a>) -> Entry<'a> {
        Entry {
            id: e.id,
            pairs: e.pairs,
        }
    }
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Heap bytes (MEMORY USAGE): the node deque and the first `samples`
    /// nodes' buffers (the rest assumed alike), plus the consumer groups'
    /// pending entries and consumers, counted by number (B-tree slack
    /// included as 3/2).
    pub fn mem_usage(&self, samples: usize) -> usize {
        let n = samples.max(1).min(self.nodes.len());
        let bytes: usize = self.nodes.iter().take(n).map(Node::heap_size).sum();
        let nodes = (bytes * self.nodes.len()).checked_div(n).unwrap_or(0);
        let deque = self.nodes.capacity() * std::mem::size_of::<Node>();
        // Groups: each pending entry and consumer costs a B-tree slot
        // (slack counted as 3/2) plus what it owns; the first `samples` of
        // each measured, the rest assumed alike.
        let sampled = |count: usize, sizes: &mut dyn Iterator<Item = usize>| {
            let (k, b) = sizes
                .take(samples.max(1))
                .fold((0, 0), |(k, b), x| (k + 1, b + x));
            (b * count).checked_div(k).unwrap_or(0) * 3 / 2
        };
        let groups: usize = self
            .groups
            .iter()
            .take(samples.max(1))
            .map(|(name, g)| {
                let pel = sampled(
                    g.pel.len(),
                    &mut g
                        .pel
                        .values()
                        .map(|p| 16 + std::mem::size_of::<Pending>() + p.consumer.capacity()),
                );
                let consumers = sampled(
                    g.consumers.len(),
                    &mut g.consumers.iter().map(|(name, c)| {
                        24 + name.capacity()
                            + std::mem::size_of::<Consumer>()
                            + c.pel.len() * 16 * 3 / 2
                    }),
                );
                name.capacity() + std::mem::size_of::<Group>() + pel + consumers
            })
            .sum::<usize>()
            * self.groups.len()
            / samples.max(1).min(self.groups.len()).max(1);
        deque + nodes + groups
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The nodes in id order (RDB writes one listpack per node).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// Nodes (XINFO STREAM `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Appends an entry. `id` must be above [`Stream::last_id`] (the
    /// caller checks); `pairs` is field, value, ... (at least one pair).
    pub fn append(&mut self, id: StreamId, pairs: &[&[u8]], lim: NodeLimits) {
        let raw: usize = pairs.iter().map(|s| s.len()).sum();
        let full = match self.nodes.back() {
            None => true,
            Some(n) => {
                n.lp_bytes() + raw >= lim.max_bytes
                    || (lim.max_entries > 0 && (n.live + n.deleted) as u64 >= lim.max_entries)
            }
        };
        if full {
            // The closed node takes no more entries: drop its spare room.
            if let Some(n) = self.nodes.back_mut() {
                n.shrink();
            }
            self.nodes.push_back(Node::new(id, pairs));
        }
        self.nodes.back_mut().expect("a node").push(id, pairs);
        if self.len == 0 {
            self.first_id = id;
        }
        self.len += 1;
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Index of the node that may hold `id`: the last whose master id is
    /// not above it (0 when none is).
    fn node_for(&self, id: StreamId) -> usize {
        self.nodes
            .partition_point(|n| n.master <= id)
            .saturating_sub(1)
    }

    /// Entries with ids in `start..=end`, in order (reversed when `rev`),
    /// at most `count` of them (0: all). `f` gets each.
    pub fn range<'s>(
        &'s self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
        mut f: impl FnMut(Entry<'s>),
    ) -> usize {
        if start > end || self.nodes.is_empty() {
            return 0;
        }
        let mut n = 0;
        let full = |n: usize| count > 0 && n >= count;
        if !rev {
            for node in self.nodes.range(self.node_for(start)..) {
                if node.master > end {
                    break;
                }
                if node.last < start {
                    continue;
                }
                for e in node.iter() {
                    if e.id > end {
                        return n;
                    }
                    if e.id >= start {
                        if full(n) {
                            return n;
                        }
                        f(e.into());
                        n += 1;
                    }
                }
            }
        } else {
            for node in self.nodes.range(..=self.node_for(end)).rev() {
                if node.last < start {
                    break;
                }
                for e in node.iter_rev() {
                    if e.id < start {
                        return n;
                    }
                    if e.id <= end {
                        if full(n) {
                            return n;
                        }
                        f(e.into());
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// The first or last live entry.
    pub fn edge(&self, last: bool) -> Option<Entry<'_>> {
        let mut out = None;
        let (a, b) = (StreamId::MIN, StreamId::MAX);
        self.range(a, b, last, 1, |e| out = Some(e));
        out
    }

    fn refresh_first_id(&mut self) {
        self.first_id = self.edge(false).map_or(StreamId::MIN, |e| e.id);
    }

    /// Deletes the entry `id`; false if there is none. A node left with no
    /// live entry goes.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if self.nodes.is_empty() {
            return false;
        }
        let i = self.node_for(id);
        if !self.nodes[i].delete(id) {
            return false;
        }
        if self.nodes[i].live == 0 {
            self.nodes.remove(i);
        }
        self.len -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if id == self.first_id {
            self.refresh_first_id();
        }
        true
    }

    /// Trims from the oldest entry on. `approx` removes whole nodes only;
    /// `limit` (0: none) caps the entries removed. Returns how many went.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some(node) = self.nodes.front() {
            if let Trim::MaxLen(max) = how
                && self.len <= max
            {
                break;
            }
            let entries = node.live as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => self.len - entries >= max,
                Trim::MinId(min) => node.last < min,
            };
            if whole {
                self.nodes.pop_front();
                self.len -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            // Exact: the rest of the work lies inside this node.
            let (max, below) = match how {
                Trim::MaxLen(max) => (self.len - max, None),
                Trim::MinId(min) => (u64::MAX, Some(min)),
            };
            let n = self.nodes[0].delete_front(max, below);
            self.len -= n;
            deleted += n;
            break;
        }
        if deleted > 0 {
            self.refresh_first_id();
        }
        deleted
    }

    /// XINFO STREAM `radix-tree-nodes`: the nodes of the radix tree Redis
    /// keys its nodes by (16-byte big-endian master ids), in its
    /// compressed form.
    pub fn radix_tree_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .nodes
            .iter()
            .map(|n| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&n.master.ms.to_be_bytes());
                k[8..].copy_from_slice(&n.master.seq.to_be_bytes());
                k
            })
            .collect();
        if keys.is_empty() {
            return 1;
        }
        rax_nodes(&keys, 0)
    }
}

/// Nodes of a compressed radix tree over sorted, distinct, equal-length
/// `keys` below depth `d`: a run shared by all keys is one compressed node,
/// a branching point one node, and each key ends in a node of its own.
fn rax_nodes(keys: &[[u8; 16]], d: usize) -> usize {
    if d == 16 {
        return 1;
    }
    let first = &keys[0];
    let last = &keys[keys.len() - 1];
    // Sorted keys: the common prefix of all is that of the first and last.
    let common = (d..16).take_while(|&i| first[i] == last[i]).count();
    if keys.len() == 1 {
        return 2;
    }
    if common > 0 {
        return 1 + rax_nodes(keys, d + common);
    }
    let mut total = 1;
    let mut rest = keys;
    while !rest.is_empty() {
        let c = rest[0][d];
        let n = rest.partition_point(|k| k[d] == c);
        total += rax_nodes(&rest[..n], d + 1);
        rest = &rest[n..];
    }
    total
}

// ---- keyspace access ----------------------------------------------------------

/// The stream in a value, if it is one.
pub fn of(v: ValueRef<'_>) -> Option<&Stream> {
    match v {
        ValueRef::Obj(Object::Stream(s)) => Some(s),
        _ => None,
    }
}

/// The stream at the key (marked accessed); `WrongType` for another type.
pub fn get<'s>(slot: &'s mut KeySlot<'_, '_>) -> Result<Option<&'s Stream>, Error> {
    match slot.get() {
        None => Ok(None),
        Some(e) => of(e.value()).map(Some).ok_or(Error::WrongType),
    }
}

/// Runs `f` on the stream at the key, created empty first when `create`.
/// `None` when the key is absent and not created; `WrongType` for another
/// type.
pub fn with_mut<R>(
    slot: &mut KeySlot<'_, '_>,
    create: bool,
    f: impl FnOnce(&mut Stream) -> R,
) -> Result<Option<R>, Error> {
    let idx = match slot.lookup() {
        Some(idx) => {
            slot.touch(idx);
            if of(slot.entry(idx).value()).is_none() {
                return Err(Error::WrongType);
            }
            idx
        }
        None if create => slot.insert(
            Value::Obj(Box::new(Object::Stream(Box::new(Stream::new())))),
            None,
        ),
        None => return Ok(None),
    };
    match slot.entry_mut(idx).object_mut() {
        Some(Object::Stream(s)) => Ok(Some(f(s))),
        _ => Err(Error::WrongType),
    }
}

#[cfg(test)]
mod tests;
