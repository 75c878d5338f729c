//! Values that live outside the entry allocation: strings that are edited in
//! place (APPEND, SETRANGE) and the large forms of the collection types.

use crate::types::hash::HashTable;
use crate::types::list::QuickList;
use crate::types::set::SetTable;
use crate::types::stream::Stream;

/// A heap value owned by an entry.
#[derive(Debug, Clone)]
pub enum Object {
    /// A string grown or edited in place; reported as encoding `raw`.
    Str(Vec<u8>),
    /// A list past one node (encoding `quicklist`).
    List(Box<QuickList>),
    /// A hash past the listpack thresholds (encoding `hashtable`).
    Hash(Box<HashTable>),
    /// A sorted set past the packed thresholds (encoding `skiplist`).
    ZSet(Box<crate::types::zset::Full>),
    /// A set past the inline thresholds (encoding `hashtable`).
    Set(Box<SetTable>),
    /// A stream (always this form; encoding `stream`).
    Stream(Box<Stream>),
}

impl Object {
    pub(crate) fn placeholder() -> Object {
        Object::Str(Vec::new())
    }

    /// The name TYPE replies.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
            Object::List(_) => "list",
            Object::Hash(_) => "hash",
            Object::ZSet(_) => "zset",
            Object::Set(_) => "set",
            Object::Stream(_) => "stream",
        }
    }

    /// How much work freeing it takes, in allocations, as Redis estimates
    /// it to decide what UNLINK frees in the background: a list's nodes,
    /// a hash, set or sorted set's elements, a stream's nodes plus each
    /// consumer group and its pending entries.
    pub fn free_effort(&self) -> usize {
        match self {
            Object::Str(_) => 1,
            Object::List(q) => q.node_count(),
            Object::Hash(h) => h.len(),
            Object::ZSet(z) => z.len(),
            Object::Set(s) => s.len(),
            Object::Stream(s) => {
                let groups: usize = s.groups.values().map(|g| 1 + g.pel.len()).sum();
                s.node_count() + groups
            }
        }
    }

    /// The name OBJECT ENCODING replies.
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
            Object::List(_) => "quicklist",
            Object::Hash(_) => "hashtable",
            Object::ZSet(_) => "skiplist",
            Object::Set(_) => "hashtable",
            Object::Stream(_) => "stream",
        }
    }
}
