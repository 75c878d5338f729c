//! A packed sequence of byte strings: the inline encoding of small
//! collections (Redis's listpack, in spirit). One byte string holds
//!
//! ```text
//! [count: varint] ([len: varint][bytes])*
//! ```
//! so the element count is O(1) and the whole thing lives inside the entry
//! allocation. Edits rebuild the bytes, which is cheap at the sizes the
//! encoding thresholds allow (128 elements of 64 bytes by default).

use crate::util::varint::len as varint_len;

use crate::util::varint::put as put_varint;

use crate::util::varint::get as get_varint;

/// Number of elements.
pub fn len(buf: &[u8]) -> usize {
    if buf.is_empty() {
        return 0;
    }
    let mut pos = 0;
    get_varint(buf, &mut pos)
}

/// The elements in order.
pub fn iter(buf: &[u8]) -> Iter<'_> {
    let mut pos = 0;
    let remaining = if buf.is_empty() {
        0
    } else {
        get_varint(buf, &mut pos)
    };
    Iter {
        buf,
        pos,
        remaining,
    }
}

pub struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let n = get_varint(self.buf, &mut self.pos);
        let item = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Builds a packed sequence from elements.
pub fn build<'a, I>(items: I) -> Vec<u8>
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let mut out = Vec::with_capacity(8 + items.len() * 8);
    put_varint(&mut out, items.len());
    for it in items {
        put_varint(&mut out, it.len());
        out.extend_from_slice(it);
    }
    out
}

/// Builds from elements whose count is not known up front.
pub fn build_from<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut count = 0;
    for it in items {
        put_varint(&mut body, it.len());
        body.extend_from_slice(it);
        count += 1;
    }
    let mut out = Vec::with_capacity(body.len() + varint_len(count));
    put_varint(&mut out, count);
    out.extend_from_slice(&body);
    out
}

/// Byte size an element adds (for the `*-max-listpack-value` style checks
/// callers make on element lengths, and for sizing lists by bytes).
pub fn element_size(item: &[u8]) -> usize {
    varint_len(item.len()) + item.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let items: Vec<Vec<u8>> = (0..300).map(|i| vec![b'x'; i]).collect();
        let buf = build(items.iter().map(|v| v.as_slice()));
        assert_eq!(len(&buf), 300);
        assert!(iter(&buf).zip(items.iter()).all(|(a, b)| a == b.as_slice()));
        let again = build_from(iter(&buf));
        assert_eq!(again, buf);
        assert_eq!(len(&[]), 0);
        assert_eq!(iter(&[]).count(), 0);
        assert_eq!(len(&build_from(std::iter::empty())), 0);
    }
}
