//! Small helpers shared by the protocol and the commands.

pub mod crc64;
pub mod glob;
pub mod lzf;
pub mod num;
pub mod rand;
pub mod repr;
pub mod stopwatch;
pub mod varint;
