//! The RDB file format of Redis 7.0 (version 10), both ways.
//!
//! A file is `REDIS0010`, auxiliary fields (`0xFA` name value), the function
//! libraries (`0xF5` code), then per non-empty database `0xFE` db
//! `0xFB` sizes and its keys, then `0xFF` and a CRC-64 (Jones) of
//! everything before it, little endian (zero when `rdbchecksum no`). A key
//! is an optional deadline (`0xFC` + ms, u64 LE), an optional LRU idle
//! (`0xF8`) or LFU counter (`0xF9`), then the value's type byte, the key as
//! a string and the value.
//!
//! Lengths take 1, 2, 5 or 9 bytes: `00xxxxxx` (6 bits), `01xxxxxx` +
//! 1 byte (14 bits, big endian), `0x80` + u32 BE, `0x81` + u64 BE; `11xxxxxx`
//! announces a special string: an 8, 16 or 32-bit integer (LE) or an LZF
//! blob (compressed length, plain length, bytes).
//!
//! [`write`] produces what Redis 7.0.15 writes for the same data (the same
//! encodings, so `redis-check-rdb` and DUMP consumers accept it);
//! [`read`] accepts every type and encoding Redis 7.0 and 6.2 write.

pub mod feed;
pub mod file;
pub mod listpack;
pub mod read;
pub mod snap;
pub mod stream;
pub mod write;
pub mod ziplist;

pub const VERSION: u16 = 10;
pub const MAGIC: &[u8] = b"REDIS";

// Value types.
pub const T_STRING: u8 = 0;
pub const T_LIST: u8 = 1;
pub const T_SET: u8 = 2;
pub const T_ZSET: u8 = 3;
pub const T_HASH: u8 = 4;
pub const T_ZSET_2: u8 = 5;
pub const T_MODULE: u8 = 6;
pub const T_MODULE_2: u8 = 7;
pub const T_HASH_ZIPMAP: u8 = 9;
pub const T_LIST_ZIPLIST: u8 = 10;
pub const T_SET_INTSET: u8 = 11;
pub const T_ZSET_ZIPLIST: u8 = 12;
pub const T_HASH_ZIPLIST: u8 = 13;
pub const T_LIST_QUICKLIST: u8 = 14;
pub const T_STREAM_LISTPACKS: u8 = 15;
pub const T_HASH_LISTPACK: u8 = 16;
pub const T_ZSET_LISTPACK: u8 = 17;
pub const T_LIST_QUICKLIST_2: u8 = 18;
pub const T_STREAM_LISTPACKS_2: u8 = 19;
/// Redis 7.2 (RDB 11): listpack sets and streams with consumer active
/// times. Read so a 7.2 DUMP of those types is understood.
pub const T_SET_LISTPACK: u8 = 20;
pub const T_STREAM_LISTPACKS_3: u8 = 21;

// Opcodes.
pub const OP_FUNCTION2: u8 = 245;
pub const OP_FUNCTION_PRE_GA: u8 = 246;
pub const OP_MODULE_AUX: u8 = 247;
pub const OP_IDLE: u8 = 248;
pub const OP_FREQ: u8 = 249;
pub const OP_AUX: u8 = 250;
pub const OP_RESIZEDB: u8 = 251;
pub const OP_EXPIRETIME_MS: u8 = 252;
pub const OP_EXPIRETIME: u8 = 253;
pub const OP_SELECTDB: u8 = 254;
pub const OP_EOF: u8 = 255;

// Special string encodings (after `11` in a length byte).
pub const ENC_INT8: u8 = 0;
pub const ENC_INT16: u8 = 1;
pub const ENC_INT32: u8 = 2;
pub const ENC_LZF: u8 = 3;

/// Quicklist 2 node containers.
pub const QL_PLAIN: u64 = 1;
pub const QL_PACKED: u64 = 2;

/// A decoding failure: what was wrong and where (byte offset in the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub offset: usize,
    pub msg: String,
}

impl Error {
    pub fn new(offset: usize, msg: impl Into<String>) -> Error {
        Error {
            offset,
            msg: msg.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.msg, self.offset)
    }
}

impl std::error::Error for Error {}
