//! Small helpers shared by the protocol and the commands.

pub mod glob;
pub mod num;
pub mod rand;
pub mod varint;
pub mod crc64;
pub mod lzf;
