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
    /// Who replays it ([`TO_AOF`], [`TO_REPLICAS`], both: [`TO_ALL`]).
    pub to: u8,
}

/// The AOF replays the record (Redis's `REPL_AOF`).
pub const TO_AOF: u8 = 1;
/// Replicas replay the record (Redis's `REPL_REPLICA`).
pub const TO_REPLICAS: u8 = 2;
/// Every consumer (`REPL_ALL`).
pub const TO_ALL: u8 = TO_AOF | TO_REPLICAS;

impl Effect<'_> {
    fn is_word(&self, word: &[u8]) -> bool {
        self.argv.len() == 1 && self.argv[0].eq_ignore_ascii_case(word)
    }
}

/// The records of one publication (see [`EffectSink::effects`]) meant for
/// consumer `to`: all of them (borrowed) when none is for others only;
/// else those left, a transaction's framing kept only around two or more
/// (one command is atomic by itself, as Redis wraps only two or more).
pub fn effects_for<'r, 'a>(
    records: &'r [Effect<'a>],
    to: u8,
) -> std::borrow::Cow<'r, [Effect<'a>]> {
    let kept: std::borrow::Cow<'r, [Effect<'a>]> = if records.iter().all(|r| r.to & to != 0) {
        std::borrow::Cow::Borrowed(records)
    } else {
        records.iter().filter(|r| r.to & to != 0).copied().collect()
    };
    let n = kept.len();
    if (2..=3).contains(&n) && kept[0].is_word(b"MULTI") && kept[n - 1].is_word(b"EXEC") {
        return kept[1..n - 1].to_vec().into();
    }
    kept
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
