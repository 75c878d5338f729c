//! ferrokv: a Redis-compatible in-memory data store.
//!
//! Reading order: [`resp`] (framing and replies), [`cmd`] (the command table,
//! the central pre-execution check, the command families), [`store`] (the
//! sharded keyspace), [`server`] (threads, connections), [`config`].

pub mod acl;
pub use ferrokv_engine::{alloc, blocking, store, types};
pub mod cmd;
pub mod config;
pub mod crash;
pub mod log;
pub mod persist;
pub mod pubsub;
pub use ferrokv_resp as resp;
pub mod scripting;
pub mod server;
pub mod testkit;
pub mod watchdog;
pub use ferrokv_util as util;

/// The Redis version ferrokv reports (clients pick features from it).
pub const REDIS_VERSION: &str = "7.0.15";
/// ferrokv's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
