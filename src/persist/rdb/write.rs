//! Writing RDB: the header, databases, keys and the footer, each its own
//! function so a snapshot can call [`write_entry`] per key from any thread
//! (it reads only the entry it is given) and frame the output itself.

use super::listpack::{self, Builder};
use super::*;
use crate::store::{EntryRef, Object, Packed, ValueRef};
use crate::types::hash::HashRef;
use crate::types::list::ListRef;
use crate::types::set::{self, SetRef};
use crate::types::zset::View;
use crate::util::crc64::crc64;
use crate::util::lzf;
use crate::util::num::parse_canonical_i64;

/// How values are written (`rdbcompression`).
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    pub compress: bool,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts { compress: true }
    }
}

pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if u32::try_from(n).is_ok() {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// An integer as the special string encoding, when it fits 32 bits.
fn write_int_string(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        out.extend_from_slice(&[0xc0 | ENC_INT8, b as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc0 | ENC_INT16);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xc0 | ENC_INT32);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// A string as Redis writes it: short canonical integers in the integer
/// encoding, strings over 20 bytes LZF-compressed when that saves at least
/// 4 bytes (and compression is on), else length and bytes.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], opts: Opts) {
    if s.len() <= 11
        && let Some(v) = parse_canonical_i64(s)
        && write_int_string(out, v)
    {
        return;
    }
    if opts.compress
        && s.len() > 20
        && let Some(c) = lzf::compress(s, s.len() - 4)
    {
        out.push(0xc0 | ENC_LZF);
        write_len(out, c.len() as u64);
        write_len(out, s.len() as u64);
        out.extend_from_slice(&c);
        return;
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Unix milliseconds, u64 little endian.
pub fn write_millis(out: &mut Vec<u8>, ms: i64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

pub fn write_aux(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(OP_AUX);
    write_string(out, name, Opts::default());
    write_string(out, value, Opts::default());
}

/// `REDIS0010` and the auxiliary fields Redis 7.0 writes for SAVE:
/// redis-ver, redis-bits, ctime, used-mem, aof-base.
pub fn write_header(out: &mut Vec<u8>, ctime_s: i64, used_mem: u64, aof_base: bool) {
    write_header_with(out, ctime_s, used_mem, aof_base, |_| {});
}

/// [`write_header`], with `more` writing further aux fields before
/// `aof-base` (where Redis puts the replication ones).
pub fn write_header_with(
    out: &mut Vec<u8>,
    ctime_s: i64,
    used_mem: u64,
    aof_base: bool,
    more: impl FnOnce(&mut Vec<u8>),
) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format!("{VERSION:04}").as_bytes());
    write_aux(out, b"redis-ver", crate::REDIS_VERSION.as_bytes());
    write_aux(out, b"redis-bits", b"64");
    write_aux(out, b"ctime", ctime_s.to_string().as_bytes());
    write_aux(out, b"used-mem", used_mem.to_string().as_bytes());
    more(out);
    write_aux(out, b"aof-base", if aof_base { b"1" } else { b"0" });
}

/// One function library (its whole code, shebang included).
pub fn write_function(out: &mut Vec<u8>, code: &[u8], opts: Opts) {
    out.push(OP_FUNCTION2);
    write_string(out, code, opts);
}

/// Starts a database: its number and the sizes a loader may presize for.
pub fn write_db_start(out: &mut Vec<u8>, db: usize, keys: usize, expires: usize) {
    out.push(OP_SELECTDB);
    write_len(out, db as u64);
    out.push(OP_RESIZEDB);
    write_len(out, keys as u64);
    write_len(out, expires as u64);
}

/// The EOF opcode and the checksum of everything in `out` (a whole file
/// built in memory). See [`write_footer_crc`] for a streamed file.
pub fn write_footer(out: &mut Vec<u8>, checksum: bool) {
    out.push(OP_EOF);
    let crc = if checksum { crc64(0, out) } else { 0 };
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The EOF opcode and a checksum the caller computed over what it wrote
/// before (continued over the EOF byte here).
pub fn write_footer_crc(out: &mut Vec<u8>, crc_before: Option<u64>) {
    out.push(OP_EOF);
    let crc = crc_before.map_or(0, |c| crc64(c, &[OP_EOF]));
    out.extend_from_slice(&crc.to_le_bytes());
}

/// One key: its deadline if any, then type, name and value, compressed.
/// Pure: reads only `entry`, so it may run under any shard's lock.
pub fn write_entry(out: &mut Vec<u8>, key: &[u8], entry: EntryRef<'_>) {
    write_entry_with(out, key, entry, Opts::default());
}

/// [`write_entry`] with explicit options (`rdbcompression no`). No LRU or
/// LFU opcode: Redis writes those only under an LRU/LFU `maxmemory-policy`,
/// and the default is `noeviction`.
pub fn write_entry_with(out: &mut Vec<u8>, key: &[u8], entry: EntryRef<'_>, opts: Opts) {
    if let Some(at) = entry.expire() {
        out.push(OP_EXPIRETIME_MS);
        write_millis(out, at);
    }
    let ty = value_type(entry.value());
    out.push(ty);
    write_string(out, key, opts);
    write_value_body(out, entry.value(), opts);
}

/// The type byte Redis 7.0 writes for a value in its current encoding.
pub fn value_type(v: ValueRef<'_>) -> u8 {
    match v {
        ValueRef::Bytes(_) | ValueRef::Int(_) | ValueRef::Obj(Object::Str(_)) => T_STRING,
        ValueRef::Packed(Packed::List, _) | ValueRef::Obj(Object::List(_)) => T_LIST_QUICKLIST_2,
        ValueRef::Packed(Packed::IntSet, _) => T_SET_INTSET,
        ValueRef::Packed(Packed::Set, _) | ValueRef::Obj(Object::Set(_)) => T_SET,
        ValueRef::Packed(Packed::ZSet, _) => T_ZSET_LISTPACK,
        ValueRef::Obj(Object::ZSet(_)) => T_ZSET_2,
        ValueRef::Packed(Packed::Hash, _) => T_HASH_LISTPACK,
        ValueRef::Obj(Object::Hash(_)) => T_HASH,
        ValueRef::Obj(Object::Stream(_)) => T_STREAM_LISTPACKS_2,
    }
}

/// A value's type byte and body (what DUMP serializes).
pub fn write_value(out: &mut Vec<u8>, v: ValueRef<'_>, opts: Opts) {
    out.push(value_type(v));
    write_value_body(out, v, opts);
}

/// A score as Redis stores it in a listpack: integral values within
/// ±2^52 as integers, others in `%.17g` (`inf`, `-inf`).
pub fn score_bytes(score: f64, buf: &mut [u8; 64]) -> &[u8] {
    if score > -4503599627370495.0 && score < 4503599627370496.0 && score == score.trunc() {
        let mut b = itoa::Buffer::new();
        let s = b.format(score as i64).as_bytes();
        buf[..s.len()].copy_from_slice(s);
        return &buf[..s.len()];
    }
    crate::util::num::fmt_double(score, buf)
}

fn write_value_body(out: &mut Vec<u8>, v: ValueRef<'_>, opts: Opts) {
    match v {
        ValueRef::Bytes(b) => write_string(out, b, opts),
        ValueRef::Obj(Object::Str(b)) => write_string(out, b, opts),
        ValueRef::Int(n) => {
            if !write_int_string(out, n) {
                write_string(out, itoa::Buffer::new().format(n).as_bytes(), opts);
            }
        }
        ValueRef::Packed(Packed::List, _) | ValueRef::Obj(Object::List(_)) => {
            let Ok(list) = ListRef::of(v) else { return };
            let nodes: Vec<Vec<u8>> = list.nodes().map(listpack::encode).collect();
            write_len(out, nodes.len() as u64);
            for lp in nodes {
                write_len(out, QL_PACKED);
                write_string(out, &lp, opts);
            }
        }
        ValueRef::Packed(Packed::IntSet, b) => {
            let vals: Vec<i64> = set::intset::iter(b).collect();
            let is = super::ziplist::encode_intset(vals.iter().copied());
            write_string(out, &is, opts);
        }
        ValueRef::Packed(Packed::Set, _) | ValueRef::Obj(Object::Set(_)) => {
            let Some(s) = SetRef::of(v) else { return };
            write_len(out, s.len() as u64);
            for m in s.iter() {
                m.with_bytes(|b| write_string(out, b, opts));
            }
        }
        ValueRef::Packed(Packed::ZSet, _) => {
            let Ok(z) = View::of(v) else { return };
            let mut lp = Builder::new();
            let mut buf = [0u8; 64];
            z.visit(0, usize::MAX, false, |m, score| {
                lp.push(m);
                lp.push(score_bytes(score, &mut buf));
                true
            });
            write_string(out, &lp.finish(), opts);
        }
        ValueRef::Obj(Object::ZSet(_)) => {
            let Ok(z) = View::of(v) else { return };
            write_len(out, z.len() as u64);
            // Highest score first: a loader inserting at the head of its
            // skiplist then never walks it.
            z.visit(0, usize::MAX, true, |m, score| {
                write_string(out, m, opts);
                out.extend_from_slice(&score.to_le_bytes());
                true
            });
        }
        ValueRef::Packed(Packed::Hash, _) => {
            let Ok(h) = HashRef::of(v) else { return };
            let mut lp = Builder::new();
            for (f, val) in h.iter() {
                lp.push(f);
                lp.push(val);
            }
            write_string(out, &lp.finish(), opts);
        }
        ValueRef::Obj(Object::Hash(_)) => {
            let Ok(h) = HashRef::of(v) else { return };
            write_len(out, h.len() as u64);
            for (f, val) in h.iter() {
                write_string(out, f, opts);
                write_string(out, val, opts);
            }
        }
        ValueRef::Obj(Object::Stream(s)) => super::stream::write(out, s, opts),
    }
}

/// DUMP's payload: the value, the RDB version (u16 LE) and the CRC-64 of
/// both (u64 LE).
pub fn dump_payload(v: ValueRef<'_>, opts: Opts) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v, opts);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        for (n, want) in [
            (5u64, &b"\x05"[..]),
            (300, b"\x41\x2c"),
            (70000, b"\x80\x00\x01\x11\x70"),
            (1 << 40, b"\x81\x00\x00\x01\x00\x00\x00\x00\x00"),
        ] {
            let mut out = Vec::new();
            write_len(&mut out, n);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn strings() {
        let mut out = Vec::new();
        write_string(&mut out, b"12345", Opts::default());
        assert_eq!(out, b"\xc1\x39\x30");
        out.clear();
        write_string(&mut out, b"0123", Opts::default());
        assert_eq!(out, b"\x040123");
        out.clear();
        write_string(&mut out, &[b'a'; 100], Opts::default());
        assert_eq!(out[0], 0xc3);
        out.clear();
        write_string(&mut out, &[b'a'; 100], Opts { compress: false });
        assert_eq!(out[0], 0x40);
    }

    #[test]
    fn scores() {
        let mut b = [0u8; 64];
        assert_eq!(score_bytes(-0.0, &mut b), b"0");
        assert_eq!(score_bytes(1.5, &mut b), b"1.5");
        assert_eq!(score_bytes(1e20, &mut b), b"1e+20");
        assert_eq!(score_bytes(f64::INFINITY, &mut b), b"inf");
    }
}
