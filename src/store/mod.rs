//! The keyspace: databases split into shards, each a hash table of entries.
//!
//! Design decision: no global lock on the command path. A key's hash picks
//! its shard (one mutex each) and, inside the shard's table, its home slot;
//! a command locks only the shards of its keys, in ascending order.

pub mod entry;
pub mod keyspace;
pub mod object;
pub mod shard;
pub mod table;

pub use entry::{Entry, EntryRef, Packed, Value, ValueRef};
pub use keyspace::{Db, KeySlot, Keyspace, Locks};
pub use object::Object;
pub use shard::Shard;

/// A consumer of write effects: every write produces one record, the command
/// as it must be replayed (AOF, replicas and keyspace notifications later).
pub trait EffectSink: Send + Sync {
    fn effect(&self, db: usize, argv: &[&[u8]]);
}

/// Told about every key reclaimed because its deadline passed (lazy and
/// active expiry), with the key's shard still locked.
pub trait ExpirySink: Send + Sync {
    fn expired(&self, db: usize, key: &[u8]);
}
