//! Persistence: snapshots written to disk.

pub mod bgsave;
