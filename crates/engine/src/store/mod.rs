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
pub use keyspace::{Db, EffectGroup, KeySlot, Keyspace};
pub use locks::{Batch, JobGate, JobPass, Locks, Undeclared};
pub use object::Object;
pub use shard::{Shard, Watch};

/// One record of the effect stream: a command as it must be replayed.
#[derive(Clone, Copy, Debug)]
pub struct Effect<'a> {
    pub db: usize,
    pub argv: &'a [&'a [u8]],
}

/// A consumer of write effects: every write produces one record, the command
/// as it must be replayed (AOF, replicas).
pub trait EffectSink: Send + Sync {
    /// One command's record, or every record of a transaction or script
    /// (framed `MULTI` ... `EXEC`) in one call, so that no other client's
    /// record falls between them: a consumer that takes its own lock once
    /// per call keeps them together. Called while the command still holds
    /// the shards of the keys the records name.
    fn effects(&self, records: &[Effect<'_>]);
}

/// Keyspace events the store itself produces (expiry, pops that serve a
/// blocked client), for keyspace notifications. Called with the key's shard
/// still locked. `class` is a [`crate::notify`] bit.
pub trait KeyEventSink: Send + Sync {
    fn event(&self, db: usize, class: u32, event: &str, key: &[u8]);
}
