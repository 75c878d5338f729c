//! Persistence: the RDB format ([`rdb`]) and the files built on it
//! ([`save`]: SAVE, loading at start-up, DEBUG RELOAD, INFO persistence).

pub mod rdb;
pub mod save;
