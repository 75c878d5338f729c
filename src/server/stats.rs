//! Counters. Each worker thread owns one [`ThreadStats`] and is its only
//! writer (plain load + store, no contended read-modify-write); INFO adds
//! them up across threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Distinct error codes tracked per thread (INFO errorstats); Redis caps
/// its table the same way.
const MAX_ERROR_CODES: usize = 128;

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
    /// Error replies by code (`ERR`, `WRONGTYPE`...). Locked only when an
    /// error is sent or INFO reads it, so never contended in practice.
    pub errors: Mutex<HashMap<Box<str>, u64>>,
    /// Commands of this thread past the script check (they may hold
    /// shards): a script job waits for it to be 0 (`Scripting::check`).
    pub in_flight: AtomicUsize,
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
            errors: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Counts one error reply under its code: the first word of the
    /// message when it is short, else `ERR` (as Redis does).
    pub fn count_error(&self, msg: &str) {
        self.error_replies.add(1);
        let head = &msg.as_bytes()[..msg.len().min(32)];
        let code = match head.iter().position(|&b| b == b' ') {
            Some(i) => &msg[..i],
            None => "ERR",
        };
        let mut errors = self.errors.lock();
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if errors.len() < MAX_ERROR_CODES {
            errors.insert(code.into(), 1);
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
        self.errors.lock().clear();
    }
}

/// Counters updated from any thread (rare events only).
pub struct GlobalStats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Memory in use when the server was built (MEMORY STATS
    /// `startup.allocated`): the server makes its stats after its keyspace.
    pub startup_allocated: u64,
}

impl Default for GlobalStats {
    fn default() -> GlobalStats {
        GlobalStats {
            connections_received: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            startup_allocated: crate::alloc::used_memory(),
        }
    }
}
