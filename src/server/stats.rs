//! Counters. Each worker thread owns one [`ThreadStats`] and is its only
//! writer (plain load + store, no contended read-modify-write); INFO adds
//! them up across threads.

use std::collections::HashMap;
use std::sync::OnceLock;
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
    /// Durations (`latency-tracking`), made at the command's first call on
    /// this thread.
    pub hist: OnceLock<Box<Histogram>>,
}

impl CmdStat {
    /// Counts one call of `usec` µs in the latency histogram.
    #[inline]
    pub fn record_latency(&self, usec: u64) {
        self.hist.get_or_init(Default::default).record(usec);
    }
}

/// Counters per bucket of [`Histogram`]'s chunks.
const CHUNK: usize = 128;

/// A latency histogram with HdrHistogram's bucket layout for Redis's
/// parameters (values in ns from 1 to 10^9, 2 significant digits: 128
/// sub-buckets per power of two, 256 exact values first), so percentiles
/// name the same bucket bounds Redis prints. Durations are measured in µs,
/// as Redis does, and recorded as µs * 1000. The 3,072 counters come in
/// chunks of 128 made on first use, so a command that always takes about
/// the same time costs a chunk or two (1 KiB each), not 24 KiB.
#[derive(Default)]
pub struct Histogram {
    chunks: [OnceLock<Box<[Counter; CHUNK]>>; HDR_COUNTS / CHUNK],
}

/// Counters HdrHistogram has for 1..=10^9 at 2 significant digits.
pub const HDR_COUNTS: usize = 3072;
/// Largest value recorded (1 s in ns; longer durations count as 1 s).
pub const HDR_MAX: u64 = 1_000_000_000;

/// The counter index of `ns` (HdrHistogram's `counts_index_for`).
#[inline]
pub fn hdr_index(ns: u64) -> usize {
    let bucket = (64 - (ns | 255).leading_zeros()) as usize - 8;
    let sub = (ns >> bucket) as usize;
    ((bucket + 1) << 7) + sub - 128
}

/// The lowest value counted at index `i`, and the width of its range.
pub fn hdr_range(i: usize) -> (u64, u64) {
    let (bucket, sub) = match (i >> 7).checked_sub(1) {
        None => (0, i & 127),
        Some(b) => (b, (i & 127) + 128),
    };
    ((sub as u64) << bucket, 1 << bucket)
}

impl Histogram {
    /// Owning thread only (see [`Counter::add`]).
    #[inline]
    pub fn record(&self, usec: u64) {
        let i = hdr_index(usec.saturating_mul(1000).clamp(1, HDR_MAX));
        let chunk = self.chunks[i / CHUNK]
            .get_or_init(|| Box::new(std::array::from_fn(|_| Counter::default())));
        chunk[i % CHUNK].add(1);
    }

    /// Adds this histogram's counts into `into` (`HDR_COUNTS` long).
    pub fn add_to(&self, into: &mut [u64]) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            if let Some(chunk) = chunk.get() {
                for (k, n) in chunk.iter().enumerate() {
                    into[c * CHUNK + k] += n.get();
                }
            }
        }
    }

    fn reset(&self) {
        for chunk in self.chunks.iter().filter_map(OnceLock::get) {
            chunk.iter().for_each(Counter::reset);
        }
    }
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
            if let Some(h) = c.hist.get() {
                h.reset();
            }
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
    pub slowlog: crate::cmd::slowlog::SlowLog,
    /// LATENCY's events (the latency monitor).
    pub latency: crate::cmd::latency::Monitor,
}

impl Default for GlobalStats {
    fn default() -> GlobalStats {
        GlobalStats {
            connections_received: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            startup_allocated: crate::alloc::used_memory(),
            slowlog: Default::default(),
            latency: Default::default(),
        }
    }
}
