//! A whole RDB file or DUMP payload: the framing around values.

use super::read::{Limits, Owned, Reader, Result, read_value};
use super::*;
use crate::store::{Entry, Value};
use crate::util::crc64::crc64;

/// What a load found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub keys: usize,
    pub expired: usize,
    /// Collections with no elements, skipped (as Redis 7.0 skips them).
    pub empty: usize,
    pub functions: usize,
    pub version: u16,
    /// Bytes the file used, its checksum included (an AOF's RDB preamble
    /// is followed by commands).
    pub consumed: usize,
}

/// Per-key metadata read before a value.
#[derive(Default)]
struct Meta {
    expire: Option<i64>,
    idle: Option<u64>,
    freq: Option<u8>,
}

/// How a loader places what it reads.
pub trait Sink {
    /// A key for database `db`; `Err` stops the load (a duplicate key).
    fn key(&mut self, db: usize, entry: Entry) -> std::result::Result<(), String>;
    /// A function library's code.
    fn function(&mut self, code: &[u8]) -> std::result::Result<(), String>;
    /// A key whose record starts at offset `at`; errors name that offset.
    /// A sink that places keys elsewhere (on other threads) overrides this.
    fn key_at(&mut self, db: usize, entry: Entry, at: usize) -> Result<()> {
        self.key(db, entry).map_err(|e| Error::new(at, e))
    }
    /// A string key at `at` whose key is plain (`key`, at `key_range` of
    /// the input) and whose value is still encoded (`value`, at
    /// `value_range`): a sink may decode it elsewhere. Errors decoding the
    /// value name its offset in the input.
    #[allow(clippy::too_many_arguments)]
    fn string_at(
        &mut self,
        db: usize,
        at: usize,
        key: &[u8],
        key_range: std::ops::Range<usize>,
        value: &[u8],
        value_range: std::ops::Range<usize>,
        expire: Option<i64>,
        lru: u32,
    ) -> Result<()> {
        let _ = key_range;
        let v = Reader::with_base(value, value_range.start).string_ref()?;
        self.key_at(db, Entry::new(key, Value::from_string(&v), expire, lru), at)
    }
    /// `RESIZEDB`: database `db` holds about `keys` keys (a hint from the
    /// file, not trusted: `bytes_left` bounds what it can hold).
    fn db_size(&mut self, _db: usize, _keys: u64, _bytes_left: usize) {}
    /// A key holding an empty collection, skipped.
    fn empty_key(&mut self, _key: &[u8]) {}
    /// An auxiliary field (`used-mem`, `redis-ver` ...).
    fn aux(&mut self, _name: &[u8], _value: &[u8]) {}
    /// A key dropped because its deadline had passed.
    fn expired_key(&mut self, _db: usize, _key: &[u8]) {}
    /// The input up to offset `pos` has been read (after each record);
    /// `Err` stops the load (a shutdown was asked for meanwhile).
    fn progress(&mut self, _pos: usize) -> Result<()> {
        Ok(())
    }
}

/// The access field for a loaded key: now, or `idle` seconds ago, or the
/// LFU counter `freq` (whichever the policy in force uses).
pub fn access_field(now_ms: i64, idle: Option<u64>, freq: Option<u8>) -> u32 {
    let fresh = crate::store::evict::fresh_access(now_ms);
    if crate::store::evict::lfu_on() {
        match freq {
            Some(f) => (fresh & !0xff) | f as u32,
            None => fresh,
        }
    } else {
        match idle {
            Some(s) => fresh.wrapping_sub(s.min(u32::MAX as u64) as u32),
            None => fresh,
        }
    }
}

/// Parses a whole RDB file, handing keys and functions to `sink`. Keys
/// whose deadline passed (`now_ms`) are dropped, as a master does.
pub fn parse(
    data: &[u8],
    dbs: usize,
    lim: &Limits,
    now_ms: i64,
    sink: &mut dyn Sink,
) -> Result<Stats> {
    let mut r = Reader::new(data);
    let mut p = Records::new(header(&mut r)?, dbs, lim, now_ms);
    while !p.record(&mut r, sink)? {}
    let at = r.pos();
    p.footer(&mut r, || crc64(0, &data[..at]))
}

/// The signature and version at the start of a file (9 bytes).
pub fn header(r: &mut Reader<'_>) -> Result<u16> {
    let magic = r.bytes(5).map_err(|_| Error::new(0, "file too short"))?;
    if magic != MAGIC {
        return Err(Error::new(0, "wrong signature trying to load DB from file"));
    }
    let ver = r.bytes(4)?;
    std::str::from_utf8(ver)
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|v| (1..=VERSION).contains(v))
        .ok_or_else(|| {
            Error::new(
                5,
                format!(
                    "can't handle RDB format version {}",
                    String::from_utf8_lossy(ver)
                ),
            )
        })
}

/// The records of a file after its header, one at a time: what carries
/// from one to the next (the database, a key's metadata, the counts).
/// A record either completes, its effects on the sink done, or fails
/// having handed the sink nothing, so a caller reading a payload as it
/// arrives can parse a record again once more of it came.
pub struct Records<'l> {
    dbs: usize,
    lim: &'l Limits,
    now_ms: i64,
    db: usize,
    meta: Meta,
    stats: Stats,
}

impl<'l> Records<'l> {
    pub fn new(version: u16, dbs: usize, lim: &'l Limits, now_ms: i64) -> Records<'l> {
        Records {
            dbs,
            lim,
            now_ms,
            db: 0,
            meta: Meta::default(),
            stats: Stats {
                version,
                ..Stats::default()
            },
        }
    }

    /// Reads the record at `r`'s position; true when it was the end of
    /// the file (`0xFF`, the checksum follows).
    #[inline]
    pub fn record<'a>(&mut self, r: &mut Reader<'a>, sink: &mut dyn Sink) -> Result<bool> {
        let (now_ms, db) = (self.now_ms, self.db);
        let stats = &mut self.stats;
        let at = r.offset();
        let op = r.byte()?;
        match op {
            OP_EOF => return Ok(true),
            OP_AUX => {
                let name = r.string_ref()?;
                let value = r.string_ref()?;
                sink.aux(&name, &value);
            }
            OP_MODULE_AUX => {
                return Err(Error::new(
                    at,
                    "module auxiliary data is not supported (no modules are loaded)",
                ));
            }
            OP_FUNCTION2 => {
                let code = r.string()?;
                sink.function(&code).map_err(|m| Error::new(at, m))?;
                stats.functions += 1;
            }
            OP_FUNCTION_PRE_GA => {
                return Err(Error::new(
                    at,
                    "pre-release function format (Redis 7.0 RC) is not supported",
                ));
            }
            OP_RESIZEDB => {
                let keys = r.length()?;
                r.length()?;
                sink.db_size(db, keys, r.remaining());
            }
            OP_SELECTDB => {
                let n = r.length()?;
                let dbs = self.dbs;
                self.db = usize::try_from(n)
                    .ok()
                    .filter(|&d| d < dbs)
                    .ok_or_else(|| {
                        Error::new(at, format!("DB index {n} out of range (databases {dbs})"))
                    })?;
            }
            OP_EXPIRETIME => self.meta.expire = Some(r.seconds()? as i64 * 1000),
            OP_EXPIRETIME_MS => self.meta.expire = Some(r.millis()?),
            OP_IDLE => self.meta.idle = Some(r.length()?),
            OP_FREQ => self.meta.freq = Some(r.byte()?),
            ty => {
                // Plain strings (most keys and string values) are borrowed
                // from the input and copied once, into the entry.
                let key = r.string_ref()?;
                if ty == T_STRING
                    && let std::borrow::Cow::Borrowed(k) = key
                {
                    // The common record: the sink gets both strings where
                    // they lie, the value not yet decoded.
                    let key_range = r.offset() - k.len()..r.offset();
                    let (start, base) = (r.pos(), r.offset());
                    r.skip_string()?;
                    let value = r.since(start);
                    let value_range = base..r.offset();
                    let m = std::mem::take(&mut self.meta);
                    if m.expire.is_some_and(|t| t < now_ms) {
                        // Decoded all the same: a bad value fails the load
                        // whether or not its key has expired.
                        Reader::with_base(value, base).string_ref()?;
                        stats.expired += 1;
                        sink.expired_key(db, k);
                        return Ok(false);
                    }
                    let lru = access_field(now_ms, m.idle, m.freq);
                    sink.string_at(db, at, k, key_range, value, value_range, m.expire, lru)?;
                    stats.keys += 1;
                    sink.progress(r.offset())?;
                    return Ok(false);
                }
                let entry = if ty == T_STRING {
                    let value = r.string_ref()?;
                    let m = std::mem::take(&mut self.meta);
                    if m.expire.is_some_and(|t| t < now_ms) {
                        stats.expired += 1;
                        sink.expired_key(db, &key);
                        return Ok(false);
                    }
                    let lru = access_field(now_ms, m.idle, m.freq);
                    Entry::new(&key, Value::from_string(&value), m.expire, lru)
                } else {
                    let value = read_value(r, ty, self.lim)?;
                    let m = std::mem::take(&mut self.meta);
                    if value.is_empty_collection() {
                        sink.empty_key(&key);
                        stats.empty += 1;
                        return Ok(false);
                    }
                    if m.expire.is_some_and(|t| t < now_ms) {
                        stats.expired += 1;
                        sink.expired_key(db, &key);
                        return Ok(false);
                    }
                    value.into_entry(&key, m.expire, access_field(now_ms, m.idle, m.freq))
                };
                sink.key_at(db, entry, at)?;
                stats.keys += 1;
                sink.progress(r.offset())?;
            }
        }
        Ok(false)
    }

    /// After the end opcode: the checksum (version 5 on), compared with
    /// `crc` of everything before it unless zero or skipped.
    pub fn footer(mut self, r: &mut Reader<'_>, crc: impl FnOnce() -> u64) -> Result<Stats> {
        if self.stats.version >= 5 {
            let at = r.offset();
            let sum = u64::from_le_bytes(
                r.bytes(8)
                    .map_err(|_| Error::new(at, "unexpected end of file reading the checksum"))?
                    .try_into()
                    .expect("8 bytes"),
            );
            if sum != 0 && !skip_checksum() {
                let want = crc();
                if sum != want {
                    // Redis's words, which tools and its test suite look for.
                    return Err(Error::new(
                        at,
                        format!("RDB CRC error (wrong checksum: expected {want:x}, got {sum:x})"),
                    ));
                }
            }
        }
        self.stats.consumed = r.offset();
        Ok(self.stats)
    }
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: DUMP payloads and RDB files load
/// without their CRC-64 checked (Redis's suite feeds corrupt payloads
/// without bothering to fix their checksums).
pub static SKIP_CHECKSUM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn skip_checksum() -> bool {
    SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed)
}

/// Checks a DUMP payload's footer: at least version + checksum, a version
/// this reader knows, and the CRC-64 (never zero-skipped here, as Redis;
/// skipped under [`SKIP_CHECKSUM`]). Returns the value bytes.
pub fn payload_body(p: &[u8]) -> Option<&[u8]> {
    if p.len() < 10 {
        return None;
    }
    let (body, footer) = p.split_at(p.len() - 8);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    if version > VERSION || (!skip_checksum() && crc64(0, body).to_le_bytes() != footer) {
        return None;
    }
    Some(&body[..body.len() - 2])
}

/// The value of a checked DUMP payload body; the type byte must be a value
/// type and the value must use the whole body.
pub fn read_payload_value(body: &[u8], lim: &Limits) -> Result<Owned> {
    let mut r = Reader::new(body);
    let ty = r.byte()?;
    let v = read_value(&mut r, ty, lim)?;
    if r.remaining() != 0 {
        return Err(r.err("trailing bytes after the value"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
