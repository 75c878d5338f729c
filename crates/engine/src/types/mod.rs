//! The collection types. Each module holds the encoding-agnostic API of one
//! type (the commands call only that), its small packed encoding, and its
//! full encoding, converting one way at Redis's thresholds.

pub mod geohash;
pub mod hash;
pub mod hll;
pub mod list;
pub mod listpack;
pub mod set;
pub mod small;
pub mod stream;
pub mod zset;
