//! [`SmallBytes`]: an owned byte string in 16 bytes, the size of a
//! `Box<[u8]>`. Up to 15 bytes live inline; longer strings are one heap
//! allocation as a `Box<[u8]>` would be.
//!
//! A set member such as `element:12345` is then read where the member
//! vector already is: a lookup costs the index slot and the vector entry,
//! not a third, dependent load of a separate allocation; and the member
//! costs 16 bytes instead of 16 plus a 16-byte allocation.
//!
//! ```text
//! inline: [bytes 0..15][0x80 | len]
//! heap:   [pointer: 8 bytes LE][len: 8 bytes LE]   (len < 2^56: top byte 0)
//! ```

use std::fmt;
use std::ops::Deref;

/// Longest string kept inline.
pub const INLINE_MAX: usize = 15;
const INLINE_FLAG: u8 = 0x80;

#[repr(C, align(8))]
pub struct SmallBytes {
    raw: [u8; 16],
}

// SAFETY: a `SmallBytes` owns its heap allocation exclusively, as a
// `Box<[u8]>` does, and has no interior mutability.
unsafe impl Send for SmallBytes {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for SmallBytes {}

impl SmallBytes {
    pub fn new(bytes: &[u8]) -> SmallBytes {
        if bytes.len() <= INLINE_MAX {
            let mut raw = [0u8; 16];
            raw[..bytes.len()].copy_from_slice(bytes);
            raw[15] = INLINE_FLAG | bytes.len() as u8;
            SmallBytes { raw }
        } else {
            SmallBytes::from_box(bytes.into())
        }
    }

    fn from_box(b: Box<[u8]>) -> SmallBytes {
        let len = b.len();
        assert!(len < 1 << 56, "string too long");
        let ptr = Box::into_raw(b) as *mut u8 as usize as u64;
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&ptr.to_le_bytes());
        raw[8..].copy_from_slice(&(len as u64).to_le_bytes());
        SmallBytes { raw }
    }

    #[inline]
    fn is_inline(&self) -> bool {
        self.raw[15] & INLINE_FLAG != 0
    }

    /// The heap allocation's (pointer, length); only for a heap string.
    #[inline]
    fn heap_parts(&self) -> (*mut u8, usize) {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.raw[..8]);
        let ptr = u64::from_le_bytes(w) as usize as *mut u8;
        w.copy_from_slice(&self.raw[8..]);
        (ptr, u64::from_le_bytes(w) as usize)
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        if self.is_inline() {
            &self.raw[..(self.raw[15] & !INLINE_FLAG) as usize]
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

impl Drop for SmallBytes {
    fn drop(&mut self) {
        if !self.is_inline() {
            let (ptr, len) = self.heap_parts();
            // SAFETY: as in `into_boxed`: the box `from_box` released,
            // reclaimed once here.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
        }
    }
}

impl Deref for SmallBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Clone for SmallBytes {
    fn clone(&self) -> SmallBytes {
        SmallBytes::new(self.as_slice())
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> SmallBytes {
        SmallBytes::new(b)
    }
}

impl From<Box<[u8]>> for SmallBytes {
    fn from(b: Box<[u8]>) -> SmallBytes {
        if b.len() <= INLINE_MAX {
            SmallBytes::new(&b)
        } else {
            SmallBytes::from_box(b)
        }
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_round_trips() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 16);
        for n in 0..100usize {
            let v: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8 | 0x80).collect();
            let s = SmallBytes::new(&v);
            assert_eq!(&s[..], &v[..]);
            assert_eq!(s.heap_len(), if n <= INLINE_MAX { 0 } else { n });
            let c = s.clone();
            assert_eq!(&c[..], &v[..]);
            assert_eq!(&s.into_boxed()[..], &v[..]);
            let b: SmallBytes = Box::<[u8]>::from(&v[..]).into();
            assert_eq!(&b[..], &v[..]);
            drop(c);
        }
    }
}
