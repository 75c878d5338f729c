//! One keyspace entry: key, value and metadata in a single heap allocation.
//!
//! The shard table stores a thin pointer to each entry, so a small string key
//! costs one allocation sized to its bytes plus one 8-byte slot. Layout:
//!
//! ```text
//! [lru: u32][tag: u8][expire: i64 if F_EXPIRE][key len: varint][key][payload]
//! payload: KIND_STR  -> [len: varint][bytes]
//!          KIND_INT  -> [i64 LE]
//!          KIND_OBJ  -> [*mut Object]
//!          packed    -> [len: varint][bytes]  (a small collection, see Packed)
//! ```
//! All multi-byte fields are read and written unaligned.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::{self, NonNull};

use super::object::Object;

const KIND_MASK: u8 = 0x0f;
const KIND_STR: u8 = 0;
const KIND_INT: u8 = 1;
const KIND_OBJ: u8 = 2;
/// First of the packed kinds; `KIND_PACKED + Packed as u8`.
const KIND_PACKED: u8 = 3;
const F_EXPIRE: u8 = 0x10;
/// An inline string that OBJECT ENCODING reports as `raw` rather than `embstr`.
const F_RAW: u8 = 0x20;

const HEADER: usize = 5;
const ALIGN: usize = 8;

/// Longest string Redis stores as `embstr`.
pub const EMBSTR_MAX: usize = 44;

/// A small collection stored inline in the entry, as one byte string whose
/// format its type module defines (Redis's listpack and intset encodings).
/// A collection that outgrows its thresholds moves to an [`Object`] for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Packed {
    List = 0,
    Hash = 1,
    Set = 2,
    IntSet = 3,
    ZSet = 4,
}

impl Packed {
    const ALL: [Packed; 5] = [
        Packed::List,
        Packed::Hash,
        Packed::Set,
        Packed::IntSet,
        Packed::ZSet,
    ];

    fn from_kind(kind: u8) -> Option<Packed> {
        kind.checked_sub(KIND_PACKED)
            .and_then(|i| Packed::ALL.get(i as usize).copied())
    }

    fn kind(self) -> u8 {
        KIND_PACKED + self as u8
    }

    /// The name TYPE replies.
    pub fn type_name(self) -> &'static str {
        match self {
            Packed::List => "list",
            Packed::Hash => "hash",
            Packed::Set | Packed::IntSet => "set",
            Packed::ZSet => "zset",
        }
    }

    /// The name OBJECT ENCODING replies. Redis 7.0 names every list
    /// `quicklist`, however small, and has no listpack sets: an inline
    /// non-integer set is our compact `hashtable` (see types::set).
    pub fn encoding(self) -> &'static str {
        match self {
            Packed::IntSet => "intset",
            Packed::List => "quicklist",
            Packed::Set => "hashtable",
            _ => "listpack",
        }
    }
}

/// A value as handed to the entry constructor.
pub enum Value<'a> {
    /// Bytes stored inline; `raw` selects the `raw` encoding name.
    Bytes {
        bytes: &'a [u8],
        raw: bool,
    },
    Int(i64),
    Obj(Box<Object>),
    Packed(Packed, &'a [u8]),
}

impl<'a> Value<'a> {
    /// The encoding Redis would choose for a string set by SET: an integer when
    /// the bytes are a canonical i64, `embstr` up to 44 bytes, else `raw`.
    pub fn from_string(bytes: &'a [u8]) -> Value<'a> {
        if bytes.len() <= 20
            && let Some(n) = crate::util::num::parse_canonical_i64(bytes)
        {
            return Value::Int(n);
        }
        Value::Bytes {
            bytes,
            raw: bytes.len() > EMBSTR_MAX,
        }
    }
}

/// A borrowed view of an entry's value.
#[derive(Clone, Copy)]
pub enum ValueRef<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    Obj(&'a Object),
    Packed(Packed, &'a [u8]),
}

impl ValueRef<'_> {
    /// The name TYPE replies.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValueRef::Bytes(_) | ValueRef::Int(_) => "string",
            ValueRef::Obj(o) => o.type_name(),
            ValueRef::Packed(p, _) => p.type_name(),
        }
    }
}

/// An owned entry. Dropping it frees the allocation and any object it owns.
pub struct Entry {
    ptr: NonNull<u8>,
}

/// A borrowed entry, as handed out by the table for reading.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    ptr: NonNull<u8>,
    _life: std::marker::PhantomData<&'a Entry>,
}

impl<'a> EntryRef<'a> {
    /// # Safety
    /// `p` must be a live entry that outlives `'a` unchanged.
    pub(crate) unsafe fn from_raw(p: *mut u8) -> EntryRef<'a> {
        EntryRef {
            // SAFETY: live entries are never null.
            ptr: unsafe { NonNull::new_unchecked(p) },
            _life: std::marker::PhantomData,
        }
    }

    fn raw(&self) -> Raw {
        Raw(self.ptr.as_ptr())
    }

    /// The entry's address, stable for its lifetime (collections that index
    /// entries of their own table keep it; see `types::zset`).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn key(&self) -> &'a [u8] {
        // SAFETY: the entry lives for 'a.
        unsafe { self.raw().key() }
    }

    pub fn expire(&self) -> Option<i64> {
        self.raw().expire()
    }

    #[inline]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        matches!(self.expire(), Some(at) if at <= now_ms)
    }

    pub fn value(&self) -> ValueRef<'a> {
        // SAFETY: the entry lives for 'a.
        unsafe { self.raw().value() }
    }

    pub fn lru(&self) -> u32 {
        self.raw().lru()
    }

    pub fn is_raw_flagged(&self) -> bool {
        self.raw().tag() & F_RAW != 0
    }

    /// Bytes of the entry's own allocation (MEMORY USAGE).
    pub fn alloc_size(&self) -> usize {
        self.raw().alloc_size()
    }
}

/// Accessors over a live entry pointer, shared by `Entry` and `EntryRef`.
#[derive(Clone, Copy)]
struct Raw(*mut u8);

impl Raw {
    fn tag(self) -> u8 {
        // SAFETY: the header is always present.
        unsafe { *self.0.add(4) }
    }

    fn lru(self) -> u32 {
        // SAFETY: the header is always present.
        unsafe { ptr::read_unaligned(self.0 as *const u32) }
    }

    fn key_offset(self) -> usize {
        if self.tag() & F_EXPIRE != 0 {
            HEADER + 8
        } else {
            HEADER
        }
    }

    /// (offset of key bytes, key length)
    fn key_span(self) -> (usize, usize) {
        let off = self.key_offset();
        // SAFETY: a varint key length follows the header.
        let (len, n) = unsafe { read_varint(self.0.add(off)) };
        (off + n, len)
    }

    /// # Safety
    /// The returned slice must not outlive the entry.
    unsafe fn key<'a>(self) -> &'a [u8] {
        let (off, len) = self.key_span();
        // SAFETY: the key bytes were written at this span.
        unsafe { std::slice::from_raw_parts(self.0.add(off), len) }
    }

    fn payload_offset(self) -> usize {
        let (off, len) = self.key_span();
        off + len
    }

    fn expire(self) -> Option<i64> {
        if self.tag() & F_EXPIRE == 0 {
            return None;
        }
        // SAFETY: F_EXPIRE means 8 bytes of deadline follow the header.
        Some(unsafe { ptr::read_unaligned(self.0.add(HEADER) as *const i64) })
    }

    /// # Safety
    /// The returned view must not outlive the entry.
    unsafe fn value<'a>(self) -> ValueRef<'a> {
        let off = self.payload_offset();
        let base = self.0;
        // SAFETY: the payload matches the kind recorded in the tag.
        unsafe {
            match self.tag() & KIND_MASK {
                KIND_STR => {
                    let (len, n) = read_varint(base.add(off));
                    ValueRef::Bytes(std::slice::from_raw_parts(base.add(off + n), len))
                }
                KIND_INT => ValueRef::Int(ptr::read_unaligned(base.add(off) as *const i64)),
                KIND_OBJ => {
                    ValueRef::Obj(&*ptr::read_unaligned(base.add(off) as *const *const Object))
                }
                kind => {
                    let packed = Packed::from_kind(kind).expect("valid entry kind");
                    let (len, n) = read_varint(base.add(off));
                    ValueRef::Packed(packed, std::slice::from_raw_parts(base.add(off + n), len))
                }
            }
        }
    }

    fn alloc_size(self) -> usize {
        let off = self.payload_offset();
        let payload = match self.tag() & KIND_MASK {
            KIND_INT | KIND_OBJ => 8,
            _ => {
                // SAFETY: string and packed payloads start with a varint length.
                let (len, n) = unsafe { read_varint(self.0.add(off)) };
                len + n
            }
        };
        off + payload
    }
}

// SAFETY: an Entry uniquely owns its allocation and the Object it points to,
// and Object is Send.
unsafe impl Send for Entry {}
// SAFETY: shared access only reads.
unsafe impl Sync for Entry {}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Writes `v` at `p` and returns the number of bytes written.
///
/// # Safety
/// `p` must be valid for `varint_len(v)` bytes of writes.
unsafe fn write_varint(p: *mut u8, mut v: usize) -> usize {
    let mut i = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            // SAFETY: within the caller's bound.
            unsafe { *p.add(i) = byte };
            return i + 1;
        }
        // SAFETY: within the caller's bound.
        unsafe { *p.add(i) = byte | 0x80 };
        i += 1;
    }
}

/// Reads a varint at `p`, returning (value, bytes read).
///
/// # Safety
/// `p` must point at a varint written by `write_varint`.
unsafe fn read_varint(p: *const u8) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = 0;
    loop {
        // SAFETY: the varint is complete, per the caller.
        let b = unsafe { *p.add(i) };
        v |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            return (v, i);
        }
        shift += 7;
    }
}

impl Entry {
    pub fn new(key: &[u8], value: Value<'_>, expire: Option<i64>, lru: u32) -> Entry {
        let (kind, flags, payload_len) = match &value {
            Value::Bytes { bytes, raw } => (
                KIND_STR,
                if *raw { F_RAW } else { 0 },
                varint_len(bytes.len()) + bytes.len(),
            ),
            Value::Int(_) => (KIND_INT, 0, 8),
            Value::Obj(_) => (KIND_OBJ, 0, 8),
            Value::Packed(p, bytes) => (p.kind(), 0, varint_len(bytes.len()) + bytes.len()),
        };
        let exp_len = if expire.is_some() { 8 } else { 0 };
        let size = HEADER + exp_len + varint_len(key.len()) + key.len() + payload_len;
        let layout = Layout::from_size_align(size, ALIGN).expect("entry layout");
        // SAFETY: size is non-zero (HEADER > 0).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: every write below stays inside the `size` bytes computed above.
        unsafe {
            ptr::write_unaligned(raw as *mut u32, lru);
            let tag = kind | flags | if expire.is_some() { F_EXPIRE } else { 0 };
            *raw.add(4) = tag;
            let mut off = HEADER;
            if let Some(at) = expire {
                ptr::write_unaligned(raw.add(off) as *mut i64, at);
                off += 8;
            }
            off += write_varint(raw.add(off), key.len());
            ptr::copy_nonoverlapping(key.as_ptr(), raw.add(off), key.len());
            off += key.len();
            match value {
                Value::Bytes { bytes, .. } | Value::Packed(_, bytes) => {
                    off += write_varint(raw.add(off), bytes.len());
                    ptr::copy_nonoverlapping(bytes.as_ptr(), raw.add(off), bytes.len());
                }
                Value::Int(n) => ptr::write_unaligned(raw.add(off) as *mut i64, n),
                Value::Obj(obj) => {
                    ptr::write_unaligned(raw.add(off) as *mut *mut Object, Box::into_raw(obj));
                }
            }
        }
        Entry { ptr }
    }

    /// The pointer as stored in a table slot.
    pub(crate) fn into_raw(self) -> *mut u8 {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// # Safety
    /// `p` must come from `into_raw` and be owned by the caller.
    pub(crate) unsafe fn from_raw(p: *mut u8) -> Entry {
        Entry {
            // SAFETY: into_raw never yields null.
            ptr: unsafe { NonNull::new_unchecked(p) },
        }
    }

    fn raw(&self) -> Raw {
        Raw(self.ptr.as_ptr())
    }

    fn tag(&self) -> u8 {
        self.raw().tag()
    }

    fn payload_offset(&self) -> usize {
        self.raw().payload_offset()
    }

    /// A borrowed view with the read accessors.
    pub fn as_ref(&self) -> EntryRef<'_> {
        // SAFETY: the view borrows self.
        unsafe { EntryRef::from_raw(self.ptr.as_ptr()) }
    }

    pub fn key(&self) -> &[u8] {
        // SAFETY: bounded by the borrow of self.
        unsafe { self.raw().key() }
    }

    pub fn lru(&self) -> u32 {
        self.raw().lru()
    }

    pub fn set_lru(&mut self, lru: u32) {
        // SAFETY: the header is always present and we own the entry mutably.
        unsafe { ptr::write_unaligned(self.ptr.as_ptr() as *mut u32, lru) }
    }

    pub fn expire(&self) -> Option<i64> {
        self.raw().expire()
    }

    #[inline]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        matches!(self.expire(), Some(at) if at <= now_ms)
    }

    pub fn value(&self) -> ValueRef<'_> {
        // SAFETY: bounded by the borrow of self.
        unsafe { self.raw().value() }
    }

    pub fn object_mut(&mut self) -> Option<&mut Object> {
        if self.tag() & KIND_MASK != KIND_OBJ {
            return None;
        }
        let off = self.payload_offset();
        // SAFETY: KIND_OBJ payload is a pointer to an Object we own.
        unsafe {
            Some(&mut *ptr::read_unaligned(
                self.ptr.as_ptr().add(off) as *const *mut Object
            ))
        }
    }

    /// True for an inline string flagged `raw`.
    pub fn is_raw_flagged(&self) -> bool {
        self.tag() & F_RAW != 0
    }

    /// An inline string's bytes, to edit in place without changing their
    /// length (SETBIT, BITFIELD within the string). The string is flagged
    /// `raw` from then on, as Redis turns a string it edits into a raw
    /// one. None for any other kind of value.
    pub fn str_bytes_mut(&mut self) -> Option<&mut [u8]> {
        if self.tag() & KIND_MASK != KIND_STR {
            return None;
        }
        let base = self.ptr.as_ptr();
        let off = self.payload_offset();
        // SAFETY: the tag is byte 4 of the header; a KIND_STR payload is a
        // varint length and that many bytes, all inside our allocation, and
        // the slice borrows self mutably.
        unsafe {
            *base.add(4) |= F_RAW;
            let (len, n) = read_varint(base.add(off));
            Some(std::slice::from_raw_parts_mut(base.add(off + n), len))
        }
    }

    /// Overwrites an integer value in place.
    pub fn set_int_in_place(&mut self, n: i64) -> bool {
        if self.tag() & KIND_MASK != KIND_INT {
            return false;
        }
        let off = self.payload_offset();
        // SAFETY: KIND_INT payload is 8 bytes.
        unsafe { ptr::write_unaligned(self.ptr.as_ptr().add(off) as *mut i64, n) };
        true
    }

    /// Replaces the deadline; reallocates only when the slot appears or goes.
    pub(super) fn set_expire(&mut self, expire: Option<i64>) {
        match (self.expire(), expire) {
            (Some(_), Some(at)) => {
                // SAFETY: F_EXPIRE is set, so the 8 bytes exist.
                unsafe { ptr::write_unaligned(self.ptr.as_ptr().add(HEADER) as *mut i64, at) }
            }
            (None, None) => {}
            _ => {
                let lru = self.lru();
                let rebuilt = self.rebuild(expire, lru);
                *self = rebuilt;
            }
        }
    }

    /// Replaces the value, keeping key, deadline (if `keep_expire`) and lru.
    pub(super) fn set_value(&mut self, value: Value<'_>, keep_expire: bool) {
        let exp = if keep_expire { self.expire() } else { None };
        let fresh = Entry::new(self.key(), value, exp, self.lru());
        *self = fresh;
    }

    /// Moves the value out into a new entry with a different deadline.
    fn rebuild(&mut self, expire: Option<i64>, lru: u32) -> Entry {
        self.moved_into(None, expire, lru)
    }

    /// The same value, deadline and lru under another key (RENAME, MOVE);
    /// an object value is moved, not copied.
    pub fn rekeyed(mut self, key: &[u8]) -> Entry {
        let (expire, lru) = (self.expire(), self.lru());
        self.moved_into(Some(key), expire, lru)
    }

    /// A new entry holding this entry's value (an object is moved out).
    fn moved_into(&mut self, key: Option<&[u8]>, expire: Option<i64>, lru: u32) -> Entry {
        if self.tag() & KIND_MASK == KIND_OBJ {
            // SAFETY: the kind was just checked.
            let obj = unsafe { self.take_object() };
            return Entry::new(key.unwrap_or(self.key()), Value::Obj(obj), expire, lru);
        }
        let value = match self.value() {
            ValueRef::Bytes(b) => Value::Bytes {
                bytes: b,
                raw: self.is_raw_flagged(),
            },
            ValueRef::Int(n) => Value::Int(n),
            ValueRef::Packed(p, b) => Value::Packed(p, b),
            ValueRef::Obj(_) => unreachable!("objects handled above"),
        };
        Entry::new(key.unwrap_or(self.key()), value, expire, lru)
    }

    /// Takes the object out, leaving an empty string object behind so that drop stays sound.
    ///
    /// # Safety
    /// The entry's kind must be `KIND_OBJ`. (This was a safe `pub fn` that
    /// trusted its callers to check: on a string entry it would have read
    /// 8 bytes past a short payload and freed them as a `Box`.)
    unsafe fn take_object(&mut self) -> Box<Object> {
        debug_assert_eq!(self.tag() & KIND_MASK, KIND_OBJ);
        let off = self.payload_offset();
        let slot = {
            // The slot is not aligned for a pointer: it is only read and
            // written with `read_unaligned` / `write_unaligned` below.
            #[allow(clippy::cast_ptr_alignment)]
            // SAFETY: a KIND_OBJ payload (the caller's contract) is the 8
            // bytes at `off`, inside the allocation.
            unsafe {
                self.ptr.as_ptr().add(off) as *mut *mut Object
            }
        };
        let placeholder = Box::into_raw(Box::new(Object::placeholder()));
        // SAFETY: the slot holds the `Box<Object>` pointer `new` wrote (the
        // kind is KIND_OBJ); ownership moves to the returned Box and the
        // slot gets a fresh one, so `Drop` frees exactly one object.
        unsafe {
            let old = ptr::read_unaligned(slot);
            ptr::write_unaligned(slot, placeholder);
            Box::from_raw(old)
        }
    }

    /// Bytes of this allocation, for memory accounting.
    pub fn alloc_size(&self) -> usize {
        self.raw().alloc_size()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let size = self.alloc_size();
        if self.tag() & KIND_MASK == KIND_OBJ {
            let off = self.payload_offset();
            // SAFETY: KIND_OBJ owns a Box<Object> at the payload.
            unsafe {
                let obj = ptr::read_unaligned(self.ptr.as_ptr().add(off) as *const *mut Object);
                drop(Box::from_raw(obj));
            }
        }
        // SAFETY: allocated in `new` with this size and alignment.
        unsafe {
            dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(size, ALIGN),
            );
        };
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("expire", &self.expire())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let big = vec![7u8; 300];
        let e = Entry::new(
            b"key",
            Value::Bytes {
                bytes: &big,
                raw: true,
            },
            Some(42),
            9,
        );
        assert_eq!(e.key(), b"key");
        assert_eq!(e.expire(), Some(42));
        assert_eq!(e.lru(), 9);
        assert!(matches!(e.value(), ValueRef::Bytes(b) if b == &big[..]));
        assert!(e.is_raw_flagged());

        let mut e = Entry::new(b"", Value::Int(-5), None, 0);
        assert_eq!(e.key(), b"");
        assert!(matches!(e.value(), ValueRef::Int(-5)));
        e.set_expire(Some(100));
        assert_eq!(e.expire(), Some(100));
        assert!(matches!(e.value(), ValueRef::Int(-5)));
        e.set_expire(None);
        assert_eq!(e.expire(), None);
        assert!(e.set_int_in_place(77));
        assert!(matches!(e.value(), ValueRef::Int(77)));

        let mut e = Entry::new(
            b"o",
            Value::Obj(Box::new(Object::Str(b"abc".to_vec()))),
            None,
            0,
        );
        e.set_expire(Some(5));
        match e.value() {
            ValueRef::Obj(Object::Str(v)) => assert_eq!(v, b"abc"),
            _ => panic!("object lost"),
        }
    }

    #[test]
    fn rekeyed_keeps_value_deadline_and_lru() {
        let e = Entry::new(
            b"a",
            Value::Bytes {
                bytes: b"xyz",
                raw: true,
            },
            Some(7),
            3,
        );
        let e = e.rekeyed(b"bb");
        assert_eq!(e.key(), b"bb");
        assert_eq!((e.expire(), e.lru()), (Some(7), 3));
        assert!(e.is_raw_flagged());
        assert!(matches!(e.value(), ValueRef::Bytes(b) if b == b"xyz"));

        let e = Entry::new(
            b"o",
            Value::Obj(Box::new(Object::Str(b"s".to_vec()))),
            None,
            1,
        );
        let e = e.rekeyed(b"p");
        assert!(matches!(e.value(), ValueRef::Obj(Object::Str(v)) if v == b"s"));
        let e = Entry::new(b"i", Value::Int(-4), None, 0).rekeyed(b"j");
        assert!(matches!(e.value(), ValueRef::Int(-4)));
    }

    #[test]
    fn packed_collections_round_trip_through_deadline_changes() {
        let body = vec![3u8; 200];
        let mut e = Entry::new(b"h", Value::Packed(Packed::Hash, &body), None, 1);
        assert!(matches!(e.value(), ValueRef::Packed(Packed::Hash, b) if b == &body[..]));
        e.set_expire(Some(9));
        assert!(matches!(e.value(), ValueRef::Packed(Packed::Hash, b) if b == &body[..]));
        let e = e.rekeyed(b"other");
        assert_eq!(e.key(), b"other");
        assert_eq!(e.expire(), Some(9));
        assert_eq!(e.value().type_name(), "hash");
        let z = Entry::new(b"z", Value::Packed(Packed::IntSet, b""), None, 0);
        assert!(matches!(z.value(), ValueRef::Packed(Packed::IntSet, b) if b.is_empty()));
        assert_eq!(Packed::IntSet.encoding(), "intset");
    }

    #[test]
    fn long_keys_use_multibyte_lengths() {
        let key = vec![b'k'; 70_000];
        let e = Entry::new(&key, Value::from_string(b"12345"), None, 0);
        assert_eq!(e.key(), &key[..]);
        assert!(matches!(e.value(), ValueRef::Int(12345)));
    }
}
