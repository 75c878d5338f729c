//! Persistence: the append-only file (`aof`) and snapshots written to disk
//! (`bgsave`).

pub mod aof;
pub mod bgsave;
