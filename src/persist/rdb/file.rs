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
    let magic = r.bytes(5).map_err(|_| Error::new(0, "file too short"))?;
    if magic != MAGIC {
        return Err(Error::new(0, "wrong signature trying to load DB from file"));
    }
    let ver = r.bytes(4)?;
    let version = std::str::from_utf8(ver)
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
        })?;
    let mut stats = Stats {
        version,
        ..Stats::default()
    };
    let mut db = 0usize;
    let mut meta = Meta::default();
    loop {
        let at = r.pos();
        let op = r.byte()?;
        match op {
            OP_EOF => break,
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
                db = usize::try_from(n)
                    .ok()
                    .filter(|&d| d < dbs)
                    .ok_or_else(|| {
                        Error::new(at, format!("DB index {n} out of range (databases {dbs})"))
                    })?;
            }
            OP_EXPIRETIME => meta.expire = Some(r.seconds()? as i64 * 1000),
            OP_EXPIRETIME_MS => meta.expire = Some(r.millis()?),
            OP_IDLE => meta.idle = Some(r.length()?),
            OP_FREQ => meta.freq = Some(r.byte()?),
            ty => {
                // Plain strings (most keys and string values) are borrowed
                // from the input and copied once, into the entry.
                let key = r.string_ref()?;
                if ty == T_STRING
                    && let std::borrow::Cow::Borrowed(k) = key
                {
                    // The common record: the sink gets both strings where
                    // they lie, the value not yet decoded.
                    let key_range = r.pos() - k.len()..r.pos();
                    let start = r.pos();
                    r.skip_string()?;
                    let value_range = start..r.pos();
                    let value = &data[value_range.clone()];
                    let m = std::mem::take(&mut meta);
                    if m.expire.is_some_and(|t| t < now_ms) {
                        // Decoded all the same: a bad value fails the load
                        // whether or not its key has expired.
                        Reader::with_base(value, start).string_ref()?;
                        stats.expired += 1;
                        sink.expired_key(db, k);
                        continue;
                    }
                    let lru = access_field(now_ms, m.idle, m.freq);
                    sink.string_at(db, at, k, key_range, value, value_range, m.expire, lru)?;
                    stats.keys += 1;
                    sink.progress(r.pos())?;
                    continue;
                }
                let entry = if ty == T_STRING {
                    let value = r.string_ref()?;
                    let m = std::mem::take(&mut meta);
                    if m.expire.is_some_and(|t| t < now_ms) {
                        stats.expired += 1;
                        sink.expired_key(db, &key);
                        continue;
                    }
                    let lru = access_field(now_ms, m.idle, m.freq);
                    Entry::new(&key, Value::from_string(&value), m.expire, lru)
                } else {
                    let value = read_value(&mut r, ty, lim)?;
                    let m = std::mem::take(&mut meta);
                    if value.is_empty_collection() {
                        sink.empty_key(&key);
                        stats.empty += 1;
                        continue;
                    }
                    if m.expire.is_some_and(|t| t < now_ms) {
                        stats.expired += 1;
                        sink.expired_key(db, &key);
                        continue;
                    }
                    value.into_entry(&key, m.expire, access_field(now_ms, m.idle, m.freq))
                };
                sink.key_at(db, entry, at)?;
                stats.keys += 1;
                sink.progress(r.pos())?;
            }
        }
    }
    if version >= 5 {
        let at = r.pos();
        let crc = u64::from_le_bytes(
            r.bytes(8)
                .map_err(|_| Error::new(at, "unexpected end of file reading the checksum"))?
                .try_into()
                .expect("8 bytes"),
        );
        if crc != 0 && !skip_checksum() && crc != crc64(0, &data[..at]) {
            let want = crc64(0, &data[..at]);
            // Redis's words, which tools and its test suite look for.
            return Err(Error::new(
                at,
                format!("RDB CRC error (wrong checksum: expected {want:x}, got {crc:x})"),
            ));
        }
    }
    stats.consumed = r.pos();
    Ok(stats)
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
