//! The keyspace: databases split into shards, each a hash table of entries.
//!
//! Design decision: no global lock on the command path. A key's hash picks
//! its shard (one mutex each) and, inside the shard's table, its home slot;
//! a command locks only the shards of its keys, in ascending order.

pub mod digest;
pub mod entry;
pub mod evict;
pub mod keyspace;
pub mod locks;
pub mod object;
pub mod shard;
pub mod snapshot;
pub mod table;

pub use entry::{Entry, EntryRef, Packed, Value, ValueRef};
pub use keyspace::{Db, KeySlot, Keyspace};
pub use locks::{Batch, Locks, Undeclared};
pub use object::Object;
pub use shard::{Shard, Watch};

/// A consumer of write effects: every write produces one record, the command
/// as it must be replayed (AOF, replicas and keyspace notifications later).
pub trait EffectSink: Send + Sync {
    fn effect(&self, db: usize, argv: &[&[u8]]);
}

/// Keyspace events the store itself produces (expiry, pops that serve a
/// blocked client), for keyspace notifications. Called with the key's shard
/// still locked. `class` is a [`crate::config::notify`] bit.
pub trait KeyEventSink: Send + Sync {
    fn event(&self, db: usize, class: u32, event: &str, key: &[u8]);
}
