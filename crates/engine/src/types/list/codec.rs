//! The packed element format of list nodes (and of an inline list after
//! its count):
//!
//! ```text
//! [len: varint][bytes][len again: reversed varint]
//! ```
//! The trailing length reads backwards from the element's end, so a node is
//! walked from either end in O(1) per step (listpack's back-length, in spirit).

pub(super) use crate::util::varint::len as varint_len;

pub(super) use crate::util::varint::put as put_varint;

pub(super) use crate::util::varint::get as get_varint;

/// Writes `v` so that it reads backwards from its last byte: low group last,
/// every group but the highest flagged.
pub(super) fn put_back_varint(out: &mut Vec<u8>, v: usize) {
    let n = varint_len(v);
    for i in (0..n).rev() {
        let group = ((v >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 < n { group | 0x80 } else { group });
    }
}

/// Reads a back-length that ends just before `end`; moves `end` to its start.
pub(super) fn get_back_varint(buf: &[u8], end: &mut usize) -> usize {
    let mut v = 0usize;
    let mut shift = 0;
    loop {
        *end -= 1;
        let b = buf[*end];
        v |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// Bytes one element takes in a node.
pub fn element_size(item: &[u8]) -> usize {
    2 * varint_len(item.len()) + item.len()
}

pub(super) fn put_element(out: &mut Vec<u8>, item: &[u8]) {
    put_varint(out, item.len());
    out.extend_from_slice(item);
    put_back_varint(out, item.len());
}

/// Forward walk over packed elements.
#[derive(Clone)]
pub struct Fwd<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Fwd<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Fwd<'a> {
        Fwd { buf, pos: 0 }
    }
}

impl<'a> Iterator for Fwd<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let n = get_varint(self.buf, &mut self.pos);
        let item = &self.buf[self.pos..self.pos + n];
        self.pos += n + varint_len(n);
        Some(item)
    }
}

/// Backward walk over packed elements.
#[derive(Clone)]
pub struct Rev<'a> {
    pub(super) buf: &'a [u8],
    pub(super) end: usize,
}

impl<'a> Rev<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Rev<'a> {
        Rev {
            buf,
            end: buf.len(),
        }
    }
}

impl<'a> Iterator for Rev<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.end == 0 {
            return None;
        }
        let n = get_back_varint(self.buf, &mut self.end);
        let start = self.end - n;
        self.end = start - varint_len(n);
        Some(&self.buf[start..start + n])
    }
}

/// Byte offset of element `k` of a node of `count` elements (`data.len()`
/// when `k == count`), walking from the nearer end.
pub(super) fn offset_of(data: &[u8], count: usize, k: usize) -> usize {
    if k <= count / 2 {
        let mut it = Fwd::new(data);
        for _ in 0..k {
            it.next();
        }
        it.pos
    } else {
        let mut it = Rev::new(data);
        for _ in 0..count - k {
            it.next();
        }
        it.end
    }
}
