//! Counters. Each worker thread owns one [`ThreadStats`] and is its only
//! writer (plain load + store, no contended read-modify-write); INFO adds
//! them up across threads.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds from the owning thread only.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Per-command counters (INFO commandstats).
#[derive(Default)]
pub struct CmdStat {
    pub calls: Counter,
    pub usec: Counter,
    pub rejected: Counter,
    pub failed: Counter,
}

pub struct ThreadStats {
    pub cmds: Box<[CmdStat]>,
    pub commands_processed: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub error_replies: Counter,
}

impl ThreadStats {
    pub fn new(commands: usize) -> ThreadStats {
        ThreadStats {
            cmds: (0..commands).map(|_| CmdStat::default()).collect(),
            commands_processed: Counter::default(),
            net_input_bytes: Counter::default(),
            net_output_bytes: Counter::default(),
            keyspace_hits: Counter::default(),
            keyspace_misses: Counter::default(),
            error_replies: Counter::default(),
        }
    }

    /// CONFIG RESETSTAT. Racy with the owning thread by design: a count in
    /// flight may survive the reset, as in Redis with io-threads.
    pub fn reset(&self) {
        for c in self.cmds.iter() {
            c.calls.reset();
            c.usec.reset();
            c.rejected.reset();
            c.failed.reset();
        }
        self.commands_processed.reset();
        self.net_input_bytes.reset();
        self.net_output_bytes.reset();
        self.keyspace_hits.reset();
        self.keyspace_misses.reset();
        self.error_replies.reset();
    }
}

/// Counters updated from any thread (rare events only).
#[derive(Default)]
pub struct GlobalStats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
}
