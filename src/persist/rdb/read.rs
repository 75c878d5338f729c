//! Reading RDB values: every type and encoding Redis 6.2 (RDB 9) and 7.0
//! (RDB 10) write. Values are rebuilt through the types' own constructors,
//! so their encodings follow ferrokv's thresholds (as Redis converts on
//! load), not the file's.
//!
//! Nothing is sized from the file: a count is checked against the bytes
//! left (each element takes at least one), collections grow as elements
//! arrive, and blobs are bounds-checked. Every error carries its offset.

use std::collections::HashSet;

use super::listpack::{self, Item};
use super::ziplist;
use super::*;
use crate::config::Config;
use crate::store::{Entry, Object, Packed, Value};
use crate::types::hash::{self, HashTable};
use crate::types::list::{self, Fill};
use crate::types::set::{self, Member, SetBuf};
use crate::types::stream::NodeLimits;
use crate::types::zset;
use crate::util::lzf;

pub type Result<T> = std::result::Result<T, Error>;

/// The encoding thresholds values are rebuilt under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub hash: hash::Limits,
    pub zset: zset::Limits,
    pub set: set::Limits,
    pub list_fill: i64,
    pub stream: NodeLimits,
}

impl Limits {
    pub fn of(cfg: &Config) -> Limits {
        Limits {
            hash: cfg.hash_limits(),
            zset: cfg.zset_limits(),
            set: cfg.set_limits(),
            list_fill: cfg.list_max_listpack_size.get(),
            stream: cfg.stream_limits(),
        }
    }
}

/// A cursor over RDB bytes; `base` is added to positions in errors (the
/// offset of `data` in the file).
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    /// `data` is what has arrived of a longer input (a payload read from
    /// a socket): running out of it is not corruption.
    partial: bool,
    /// Set when a partial input ran out: at least this many more bytes
    /// are needed to get further.
    short: Option<usize>,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader::with_base(data, 0)
    }

    /// A cursor over `data`, which starts at offset `base` of the file.
    pub fn with_base(data: &'a [u8], base: usize) -> Reader<'a> {
        Reader {
            data,
            pos: 0,
            base,
            partial: false,
            short: None,
        }
    }

    /// A cursor over the bytes of an input that arrived so far (from
    /// offset `base`): an error caused by their end sets
    /// [`Reader::short`]. Readers over values taken from it (a listpack,
    /// a decoded blob) are whole: their errors are corruption.
    pub fn partial(data: &'a [u8], base: usize) -> Reader<'a> {
        Reader {
            partial: true,
            ..Reader::with_base(data, base)
        }
    }

    /// After an error: the partial input ran out, and at least this many
    /// more bytes are needed (the error is then no verdict on the data).
    pub fn short(&self) -> Option<usize> {
        self.short
    }

    /// Notes that `need` more bytes than there are were wanted.
    #[cold]
    fn ran_out(&mut self, need: usize) {
        if self.partial {
            self.short = Some(need.max(1));
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The position as an offset in the whole input.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The bytes from position `start` to the current one.
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.data[start..self.pos]
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn err(&self, msg: impl Into<String>) -> Error {
        Error::new(self.base + self.pos, msg)
    }

    fn err_at(&self, at: usize, msg: impl Into<String>) -> Error {
        Error::new(self.base + at, msg)
    }

    pub fn byte(&mut self) -> Result<u8> {
        let Some(&b) = self.data.get(self.pos) else {
            self.ran_out(1);
            return Err(self.err("unexpected end of data"));
        };
        self.pos += 1;
        Ok(b)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let Some(end) = self.pos.checked_add(n).filter(|&e| e <= self.data.len()) else {
            self.ran_out(n - self.remaining());
            return Err(self.err(format!("unexpected end of data (needed {n} bytes)")));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    /// A length, or the special-encoding number (`Err(code)` inside `Ok`).
    fn len_or_enc(&mut self) -> Result<std::result::Result<u64, u8>> {
        let at = self.pos;
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Ok((b & 0x3f) as u64),
            1 => Ok((((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 if b == 0x80 => Ok(u32::from_be_bytes(self.array()?) as u64),
            2 if b == 0x81 => Ok(u64::from_be_bytes(self.array()?)),
            2 => return Err(self.err_at(at, format!("unknown length encoding {b:#04x}"))),
            _ => Err(b & 0x3f),
        })
    }

    pub fn length(&mut self) -> Result<u64> {
        let at = self.pos;
        self.len_or_enc()?
            .map_err(|_| self.err_at(at, "encoded string where a length was expected"))
    }

    /// A count of elements that take at least `min_each` bytes each: more
    /// than the bytes left can hold is an error (nothing is sized from it).
    pub fn count(&mut self, min_each: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.length()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_each) <= self.remaining() => Ok(n),
            _ => {
                // A partial input may hold them once more has arrived
                // (whoever reads more bounds it by the input's length).
                let need = usize::try_from(n).unwrap_or(usize::MAX);
                self.ran_out(need.saturating_mul(min_each) - self.remaining());
                Err(self.err_at(at, format!("count {n} larger than the data left")))
            }
        }
    }

    /// A string, borrowed from the input when stored plain (the common
    /// case: no copy); integers and LZF blobs are decoded into a buffer.
    pub fn string_ref(&mut self) -> Result<std::borrow::Cow<'a, [u8]>> {
        let at = self.pos;
        match self.len_or_enc()? {
            Ok(n) => {
                let n = usize::try_from(n).map_err(|_| self.err_at(at, "string too long"))?;
                Ok(std::borrow::Cow::Borrowed(self.bytes(n)?))
            }
            Err(_) => {
                // Decoded by `string`, from the encoding byte again.
                self.pos = at;
                self.string().map(std::borrow::Cow::Owned)
            }
        }
    }

    /// Steps over a string without decoding it: the same checks as
    /// [`Reader::string`] up to its bytes (an LZF blob is only bounded,
    /// not inflated: whoever decodes it later meets its errors).
    pub fn skip_string(&mut self) -> Result<()> {
        let at = self.pos;
        match self.len_or_enc()? {
            Ok(n) => {
                let n = usize::try_from(n).map_err(|_| self.err_at(at, "string too long"))?;
                self.bytes(n)?;
            }
            Err(ENC_INT8) => {
                self.byte()?;
            }
            Err(ENC_INT16) => {
                self.array::<2>()?;
            }
            Err(ENC_INT32) => {
                self.array::<4>()?;
            }
            Err(ENC_LZF) => {
                let clen = self.length()?;
                let len = self.length()?;
                let clen = usize::try_from(clen).map_err(|_| self.err_at(at, "bad LZF length"))?;
                usize::try_from(len).map_err(|_| self.err_at(at, "bad LZF length"))?;
                self.bytes(clen)?;
            }
            Err(e) => return Err(self.err_at(at, format!("unknown string encoding {e}"))),
        }
        Ok(())
    }

    pub fn string(&mut self) -> Result<Vec<u8>> {
        let at = self.pos;
        let int = |v: i64| itoa::Buffer::new().format(v).as_bytes().to_vec();
        match self.len_or_enc()? {
            Ok(n) => {
                let n = usize::try_from(n).map_err(|_| self.err_at(at, "string too long"))?;
                Ok(self.bytes(n)?.to_vec())
            }
            Err(ENC_INT8) => Ok(int(self.byte()? as i8 as i64)),
            Err(ENC_INT16) => Ok(int(i16::from_le_bytes(self.array()?) as i64)),
            Err(ENC_INT32) => Ok(int(i32::from_le_bytes(self.array()?) as i64)),
            Err(ENC_LZF) => {
                let clen = self.length()?;
                let len = self.length()?;
                let clen = usize::try_from(clen).map_err(|_| self.err_at(at, "bad LZF length"))?;
                let len = usize::try_from(len).map_err(|_| self.err_at(at, "bad LZF length"))?;
                let c = self.bytes(clen)?;
                if len == 0 {
                    return Err(self.err_at(at, "LZF string of length 0"));
                }
                lzf::decompress(c, len).ok_or_else(|| self.err_at(at, "invalid LZF data"))
            }
            Err(e) => Err(self.err_at(at, format!("unknown string encoding {e}"))),
        }
    }

    pub fn millis(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn seconds(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// The old text double: a length byte (253 nan, 254 inf, 255 -inf).
    fn text_double(&mut self) -> Result<f64> {
        let at = self.pos;
        let n = self.byte()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let s = self.bytes(n as usize)?;
                std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| self.err_at(at, "invalid double"))
            }
        }
    }

    /// 16 raw bytes: a stream id as two big-endian u64s.
    pub fn raw_id(&mut self) -> Result<crate::types::stream::StreamId> {
        let b: [u8; 16] = self.array()?;
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        Ok(crate::types::stream::StreamId {
            ms: u64::from_be_bytes(ms),
            seq: u64::from_be_bytes(seq),
        })
    }

    /// A blob (listpack, ziplist ...) decoded by `f`; its errors point at
    /// the blob's start and say, in Redis's words, which check failed
    /// (`what`: "Ziplist", "Hash listpack" ...; its suite looks for them).
    fn blob<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&[u8]) -> std::result::Result<T, &'static str>,
    ) -> Result<T> {
        let at = self.pos;
        let b = self.string()?;
        f(&b).map_err(|m| self.err_at(at, format!("{what} integrity check failed ({m})")))
    }
}

/// A value read from the file, owned until it becomes an entry.
pub enum Owned {
    Str(Vec<u8>),
    Packed(Packed, Vec<u8>),
    Obj(Box<Object>),
}

impl Owned {
    pub fn into_entry(self, key: &[u8], expire: Option<i64>, lru: u32) -> Entry {
        match self {
            Owned::Str(b) => Entry::new(key, Value::from_string(&b), expire, lru),
            Owned::Packed(p, b) => Entry::new(key, Value::Packed(p, &b), expire, lru),
            Owned::Obj(o) => Entry::new(key, Value::Obj(o), expire, lru),
        }
    }

    /// True for a collection with no elements (Redis skips those on load,
    /// RESTORE refuses them).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Owned::Str(_) => false,
            Owned::Packed(p, b) => {
                let v = crate::store::ValueRef::Packed(*p, b);
                b.is_empty()
                    || match p {
                        Packed::List => list::ListRef::of(v).map_or(true, |l| l.is_empty()),
                        Packed::Hash => hash::HashRef::of(v).map_or(true, |h| h.is_empty()),
                        Packed::Set | Packed::IntSet => {
                            set::SetRef::of(v).is_none_or(|s| s.is_empty())
                        }
                        Packed::ZSet => zset::View::of(v).map_or(true, |z| z.is_empty()),
                    }
            }
            Owned::Obj(_) => false,
        }
    }
}

fn items_to_vecs(items: Vec<Item<'_>>) -> Vec<Vec<u8>> {
    items.into_iter().map(Item::to_vec).collect()
}

/// A value of type `ty` (the type byte already read).
pub fn read_value(r: &mut Reader<'_>, ty: u8, lim: &Limits) -> Result<Owned> {
    let start = r.offset();
    match ty {
        T_STRING => Ok(Owned::Str(r.string()?)),
        T_LIST => {
            let n = r.count(1)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(r.string()?);
            }
            Ok(build_list(items, lim))
        }
        T_LIST_ZIPLIST => {
            let items = r.blob("Ziplist", |b| ziplist::ziplist(b).map(items_to_vecs))?;
            Ok(build_list(items, lim))
        }
        T_LIST_QUICKLIST | T_LIST_QUICKLIST_2 => {
            let n = r.count(1)?;
            let mut items = Vec::new();
            for _ in 0..n {
                let container = if ty == T_LIST_QUICKLIST_2 {
                    r.length()?
                } else {
                    QL_PACKED
                };
                match container {
                    QL_PLAIN => {
                        // A plain node holds one element too big to pack:
                        // never an empty one.
                        let at = r.offset();
                        let e = r.string()?;
                        if e.is_empty() {
                            return Err(Error::new(
                                at,
                                "Quicklist integrity check failed (empty plain node)",
                            ));
                        }
                        items.push(e);
                    }
                    QL_PACKED => {
                        let node = if ty == T_LIST_QUICKLIST_2 {
                            r.blob("Listpack", |b| listpack::decode(b).map(items_to_vecs))?
                        } else {
                            r.blob("Ziplist", |b| ziplist::ziplist(b).map(items_to_vecs))?
                        };
                        // An empty node is skipped, as Redis 7.0 does (a
                        // list left empty is an empty key, skipped too).
                        items.extend(node);
                    }
                    c => return Err(r.err(format!("unknown quicklist container {c}"))),
                }
            }
            Ok(build_list(items, lim))
        }
        T_SET | T_SET_INTSET | T_SET_LISTPACK => {
            let members: Vec<Vec<u8>> = match ty {
                T_SET => {
                    let n = r.count(1)?;
                    let mut m = Vec::new();
                    for _ in 0..n {
                        m.push(r.string()?);
                    }
                    m
                }
                T_SET_INTSET => r.blob("Intset", |b| {
                    ziplist::intset(b).map(|v| {
                        v.iter()
                            .map(|n| itoa::Buffer::new().format(*n).as_bytes().to_vec())
                            .collect()
                    })
                })?,
                _ => r.blob("Set listpack", |b| listpack::decode(b).map(items_to_vecs))?,
            };
            let what = match ty {
                T_SET => "duplicate set members",
                T_SET_INTSET => "Intset integrity check failed (intset with dup elements)",
                _ => "Set listpack integrity check failed (listpack with dup elements)",
            };
            build_set(members, lim).ok_or_else(|| Error::new(start, what))
        }
        T_ZSET | T_ZSET_2 => {
            let n = r.count(2)?;
            let mut items = Vec::new();
            for _ in 0..n {
                let m = r.string()?;
                let s = if ty == T_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                items.push((m, s));
            }
            build_zset(items, lim).map_err(|m| Error::new(start, m))
        }
        T_ZSET_ZIPLIST | T_ZSET_LISTPACK => {
            let flat = if ty == T_ZSET_LISTPACK {
                r.blob("Zset listpack", |b| listpack::decode(b).map(items_to_vecs))
            } else {
                r.blob("Zset ziplist", |b| ziplist::ziplist(b).map(items_to_vecs))
            };
            let flat = flat?;
            let what = if ty == T_ZSET_LISTPACK {
                "Zset listpack"
            } else {
                "Zset ziplist"
            };
            if flat.len() % 2 != 0 {
                return Err(Error::new(start, "odd sorted set listpack"));
            }
            let mut items = Vec::new();
            for pair in flat.chunks_exact(2) {
                let score = parse_score(&pair[1]).ok_or_else(|| Error::new(start, "bad score"))?;
                items.push((pair[0].clone(), score));
            }
            build_zset(items, lim)
                .map_err(|m| Error::new(start, format!("{what} integrity check failed ({m})")))
        }
        T_HASH => {
            let n = r.count(2)?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let f = r.string()?;
                let v = r.string()?;
                pairs.push((f, v));
            }
            build_hash(pairs, lim).ok_or_else(|| Error::new(start, "duplicate hash fields"))
        }
        T_HASH_ZIPMAP => {
            let pairs = r.blob("Zipmap", |b| {
                ziplist::zipmap(b).map(|p| {
                    p.into_iter()
                        .map(|(f, v)| (f.to_vec(), v.to_vec()))
                        .collect::<Vec<_>>()
                })
            })?;
            build_hash(pairs, lim).ok_or_else(|| {
                Error::new(
                    start,
                    "Zipmap integrity check failed (zipmap with dup elements)",
                )
            })
        }
        T_HASH_ZIPLIST | T_HASH_LISTPACK => {
            let flat = if ty == T_HASH_LISTPACK {
                r.blob("Hash listpack", |b| listpack::decode(b).map(items_to_vecs))
            } else {
                r.blob("Hash ziplist", |b| ziplist::ziplist(b).map(items_to_vecs))
            };
            let flat = flat?;
            if flat.len() % 2 != 0 {
                return Err(Error::new(start, "odd hash listpack"));
            }
            let pairs = flat
                .chunks_exact(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect();
            let what = if ty == T_HASH_LISTPACK {
                "Hash listpack integrity check failed (listpack with dup elements)"
            } else {
                "Hash ziplist integrity check failed (ziplist with dup elements)"
            };
            build_hash(pairs, lim).ok_or_else(|| Error::new(start, what))
        }
        T_STREAM_LISTPACKS | T_STREAM_LISTPACKS_2 | T_STREAM_LISTPACKS_3 => {
            let s = super::stream::read(r, ty, lim.stream)?;
            Ok(Owned::Obj(Box::new(Object::Stream(Box::new(s)))))
        }
        T_MODULE | T_MODULE_2 => Err(Error::new(
            start,
            "module values are not supported (no modules are loaded)",
        )),
        _ => Err(Error::new(
            start.saturating_sub(1),
            format!("unknown value type {ty}"),
        )),
    }
}

fn parse_score(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    let v = match t {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => t.parse::<f64>().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

fn build_list(items: Vec<Vec<u8>>, lim: &Limits) -> Owned {
    match list::build(items.iter().map(|v| v.as_slice()), Fill::new(lim.list_fill)) {
        None => Owned::Packed(Packed::List, Vec::new()),
        Some(list::Built::Inline(b)) => Owned::Packed(Packed::List, b),
        Some(list::Built::Quick(o)) => Owned::Obj(o),
    }
}

/// `None` on a duplicate member.
fn build_set(members: Vec<Vec<u8>>, lim: &Limits) -> Option<Owned> {
    let mut buf = SetBuf::new();
    for m in &members {
        if !buf.add(Member::Bytes(m), &lim.set) {
            return None;
        }
    }
    Some(match buf {
        SetBuf::Ints(v) => Owned::Packed(Packed::IntSet, set::intset::build(&v)),
        SetBuf::Table(t)
            if t.len() <= lim.set.packed_entries
                && t.iter().all(|m| m.len() <= lim.set.packed_value) =>
        {
            Owned::Packed(Packed::Set, crate::types::listpack::build(t.iter()))
        }
        SetBuf::Table(t) => Owned::Obj(Box::new(Object::Set(Box::new(t)))),
    })
}

fn build_zset(
    mut items: Vec<(Vec<u8>, f64)>,
    lim: &Limits,
) -> std::result::Result<Owned, &'static str> {
    if items.iter().any(|(_, s)| s.is_nan()) {
        return Err("NaN score");
    }
    let mut seen = HashSet::new();
    if !items.iter().all(|(m, _)| seen.insert(m.as_slice())) {
        return Err("duplicate sorted set members");
    }
    drop(seen);
    items.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    Ok(match zset::build(&items, lim.zset) {
        None => Owned::Packed(Packed::ZSet, Vec::new()),
        Some(zset::Built::Packed(b)) => Owned::Packed(Packed::ZSet, b),
        Some(zset::Built::Full(o)) => Owned::Obj(o),
    })
}

/// `None` on a duplicate field.
fn build_hash(pairs: Vec<(Vec<u8>, Vec<u8>)>, lim: &Limits) -> Option<Owned> {
    let small = pairs.len() <= lim.hash.entries
        && pairs
            .iter()
            .all(|(f, v)| f.len() <= lim.hash.value && v.len() <= lim.hash.value);
    if small {
        let mut seen = HashSet::new();
        if !pairs.iter().all(|(f, _)| seen.insert(f.as_slice())) {
            return None;
        }
        let flat = pairs.iter().flat_map(|(f, v)| [f.as_slice(), v.as_slice()]);
        return Some(Owned::Packed(
            Packed::Hash,
            crate::types::listpack::build_from(flat),
        ));
    }
    let mut t = HashTable::with_capacity(0);
    for (f, v) in &pairs {
        if !t.insert(f, v) {
            return None;
        }
    }
    Some(Owned::Obj(Box::new(Object::Hash(Box::new(t)))))
}
