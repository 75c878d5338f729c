//! [`SmallBytes`]: an owned byte string in 16 bytes, the size of a
//! `Box<[u8]>`, and [`WideBytes`], the same in 24 bytes. Up to 15 (or 23)
//! bytes live inline; longer strings are one heap allocation as a
//! `Box<[u8]>` would be.
//!
//! A set member such as `element:12345` is then read where the member
//! vector already is: a lookup costs the index slot and the vector entry,
//! not a third, dependent load of a separate allocation; and the member
//! costs 16 bytes instead of 16 plus a 16-byte allocation. The wide form
//! is for sets whose members run a little longer (redis-benchmark's
//! `element:000000012345` is 20 bytes): 24 bytes inline instead of 16 plus
//! a 24-byte allocation and a cache miss on every lookup.
//!
//! ```text
//! inline: [bytes 0..W-1][0x80 | len]
//! heap:   [pointer: 8 bytes LE][len: 8 bytes LE][0 ...]   (len < 2^56: top byte 0)
//! ```

use std::fmt;
use std::ops::Deref;

/// Longest string a [`SmallBytes`] keeps inline.
pub const INLINE_MAX: usize = 15;
/// Longest string a [`WideBytes`] keeps inline.
pub const WIDE_INLINE_MAX: usize = 23;
const INLINE_FLAG: u8 = 0x80;

/// An owned byte string in `W` bytes (16 or 24), inline up to `W - 1`.
#[repr(C, align(8))]
pub struct InlineBytes<const W: usize> {
    raw: [u8; W],
}

/// 16 bytes, inline up to 15.
pub type SmallBytes = InlineBytes<16>;
/// 24 bytes, inline up to 23.
pub type WideBytes = InlineBytes<24>;

// SAFETY: an `InlineBytes` owns its heap allocation exclusively, as a
// `Box<[u8]>` does, and has no interior mutability.
unsafe impl<const W: usize> Send for InlineBytes<W> {}
// SAFETY: as above: shared access only reads.
unsafe impl<const W: usize> Sync for InlineBytes<W> {}

impl<const W: usize> InlineBytes<W> {
    /// Longest string kept inline.
    pub const INLINE_MAX: usize = W - 1;

    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= Self::INLINE_MAX {
            let mut raw = [0u8; W];
            raw[..bytes.len()].copy_from_slice(bytes);
            raw[W - 1] = INLINE_FLAG | bytes.len() as u8;
            InlineBytes { raw }
        } else {
            Self::from_box(bytes.into())
        }
    }

    fn from_box(b: Box<[u8]>) -> Self {
        let len = b.len();
        assert!(len < 1 << 56, "string too long");
        let ptr = Box::into_raw(b) as *mut u8 as usize as u64;
        let mut raw = [0u8; W];
        raw[..8].copy_from_slice(&ptr.to_le_bytes());
        raw[8..16].copy_from_slice(&(len as u64).to_le_bytes());
        InlineBytes { raw }
    }

    #[inline]
    fn is_inline(&self) -> bool {
        self.raw[W - 1] & INLINE_FLAG != 0
    }

    /// The heap allocation's (pointer, length); only for a heap string.
    #[inline]
    fn heap_parts(&self) -> (*mut u8, usize) {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.raw[..8]);
        let ptr = u64::from_le_bytes(w) as usize as *mut u8;
        w.copy_from_slice(&self.raw[8..16]);
        (ptr, u64::from_le_bytes(w) as usize)
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        if self.is_inline() {
            &self.raw[..(self.raw[W - 1] & !INLINE_FLAG) as usize]
        } else {
            let (ptr, len) = self.heap_parts();
            // SAFETY: a heap string's pointer and length are those of the
            // live `Box<[u8]>` it was built from (`from_box`), owned by
            // `self` and freed only in `drop`/`into_boxed`.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        }
    }

    /// Bytes held in a separate allocation (0 for an inline string).
    pub fn heap_len(&self) -> usize {
        if self.is_inline() {
            0
        } else {
            self.heap_parts().1
        }
    }

    pub fn into_boxed(self) -> Box<[u8]> {
        let this = std::mem::ManuallyDrop::new(self);
        if this.is_inline() {
            return this.as_slice().into();
        }
        let (ptr, len) = this.heap_parts();
        // SAFETY: the allocation came from `Box::into_raw` of a boxed slice
        // of this length; `this` is not dropped, so it is freed only once,
        // by the returned box.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) }
    }
}

impl<const W: usize> Drop for InlineBytes<W> {
    fn drop(&mut self) {
        if !self.is_inline() {
            let (ptr, len) = self.heap_parts();
            // SAFETY: as in `into_boxed`: the box `from_box` released,
            // reclaimed once here.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
        }
    }
}

impl<const W: usize> Deref for InlineBytes<W> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<const W: usize> Clone for InlineBytes<W> {
    fn clone(&self) -> Self {
        Self::new(self.as_slice())
    }
}

impl<const W: usize> From<&[u8]> for InlineBytes<W> {
    fn from(b: &[u8]) -> Self {
        Self::new(b)
    }
}

impl<const W: usize> From<Box<[u8]>> for InlineBytes<W> {
    fn from(b: Box<[u8]>) -> Self {
        if b.len() <= Self::INLINE_MAX {
            Self::new(&b)
        } else {
            Self::from_box(b)
        }
    }
}

impl SmallBytes {
    /// The same string in the wide form: inline if it fits there (its
    /// heap copy, if any, is freed), else the same allocation.
    pub fn widen(self) -> WideBytes {
        if self.len() <= WIDE_INLINE_MAX {
            WideBytes::new(&self)
        } else {
            WideBytes::from_box(self.into_boxed())
        }
    }
}

impl<const W: usize> fmt::Debug for InlineBytes<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<const W: usize>(inline_max: usize) {
        assert_eq!(std::mem::size_of::<InlineBytes<W>>(), W);
        for n in 0..100usize {
            let v: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8 | 0x80).collect();
            let s = InlineBytes::<W>::new(&v);
            assert_eq!(&s[..], &v[..]);
            assert_eq!(s.heap_len(), if n <= inline_max { 0 } else { n });
            let c = s.clone();
            assert_eq!(&c[..], &v[..]);
            assert_eq!(&s.into_boxed()[..], &v[..]);
            let b: InlineBytes<W> = Box::<[u8]>::from(&v[..]).into();
            assert_eq!(&b[..], &v[..]);
            drop(c);
        }
    }

    #[test]
    fn every_length_round_trips() {
        round_trips::<16>(INLINE_MAX);
        round_trips::<24>(WIDE_INLINE_MAX);
    }

    #[test]
    fn widening_keeps_the_bytes_and_inlines_what_fits() {
        for n in 0..60usize {
            let v: Vec<u8> = (0..n).map(|i| i as u8 ^ 0x5a).collect();
            let w = SmallBytes::new(&v).widen();
            assert_eq!(&w[..], &v[..]);
            assert_eq!(w.heap_len(), if n <= WIDE_INLINE_MAX { 0 } else { n });
        }
    }
}
