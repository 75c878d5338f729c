//! Persistence: the RDB format ([`rdb`]) and the files built on it
//! ([`save`]: SAVE, loading at start-up, DEBUG RELOAD, INFO persistence;
//! [`bgsave`]: BGSAVE and save points on the snapshot walk), and the
//! append-only file ([`aof`]).

pub mod aof;
pub mod bgsave;
pub mod load;
pub mod rdb;
pub mod save;
