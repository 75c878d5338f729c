//! ferrokv-engine: the keyspace and the data types.
//!
//! Databases split into shards of hash tables ([`store`]), the entries and
//! their encodings ([`types`]), expiry, eviction, the lock planner
//! ([`store::Locks`]), the waiters of blocking commands ([`blocking`]) and
//! memory accounting ([`alloc`]). It knows nothing of commands, clients or
//! the network: the `ferrokv` crate builds those on top and hands the
//! engine what it needs (limits from the configuration, a clock, sinks for
//! effects and keyspace events).

pub mod alloc;
pub mod blocking;
pub mod error;
pub mod notify;
pub mod store;
pub mod types;

use ferrokv_resp as resp;
use ferrokv_util as util;

/// Milliseconds since the Unix epoch.
#[inline]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
