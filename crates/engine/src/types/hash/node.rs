//! One field of a [`HashTable`](super::HashTable) chain in a single
//! allocation:
//!
//! ```text
//! [next: 8 bytes][len: 8 bytes][field len: varint][field][value]
//! ```
//!
//! A lookup then reads the chain link, the field and the value from the
//! same place: one cache miss per node visited instead of two (a node
//! holding a pointer to a separate buffer), and one allocation per field
//! instead of two. The pointer to a node is thin (`Option<Node>` is one
//! word), so the bucket array stays one word per bucket.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

use crate::util::varint::{get as get_varint, len as varint_len};

/// The start of every node; the data bytes follow it.
#[repr(C)]
struct Header {
    next: Option<Node>,
    /// Bytes of data after the header.
    len: usize,
}

const HEADER: usize = std::mem::size_of::<Header>();

/// An owned chain node (and, through `next`, the rest of its chain).
pub(super) struct Node {
    ptr: NonNull<Header>,
}

// SAFETY: a `Node` owns its allocation exclusively, as a `Box` does.
unsafe impl Send for Node {}
// SAFETY: shared access only reads.
unsafe impl Sync for Node {}

fn layout(data_len: usize) -> Layout {
    Layout::from_size_align(HEADER + data_len, std::mem::align_of::<Header>())
        .expect("hash field too large")
}

/// `n` as the varint `util::varint::put` writes, on the stack.
fn varint(mut n: usize) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    let mut len = 0;
    while n >= 0x80 {
        out[len] = (n as u8 & 0x7f) | 0x80;
        n >>= 7;
        len += 1;
    }
    out[len] = n as u8;
    (out, len + 1)
}

impl Node {
    pub(super) fn new(field: &[u8], value: &[u8], next: Option<Node>) -> Node {
        let data_len = varint_len(field.len()) + field.len() + value.len();
        let layout = layout(data_len);
        // SAFETY: the layout is never zero-sized (it has the header).
        let raw = unsafe { alloc(layout) };
        // The allocation has the header's alignment (`layout`).
        #[allow(clippy::cast_ptr_alignment)]
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else {
            handle_alloc_error(layout)
        };
        let (head, head_len) = varint(field.len());
        debug_assert_eq!(head_len, varint_len(field.len()));
        // SAFETY: `raw` is a fresh allocation of HEADER + data_len bytes
        // with the header's alignment; each write below stays inside it.
        unsafe {
            ptr.as_ptr().write(Header {
                next,
                len: data_len,
            });
            let data = raw.add(HEADER);
            data.copy_from_nonoverlapping(head.as_ptr(), head_len);
            let data = data.add(head_len);
            data.copy_from_nonoverlapping(field.as_ptr(), field.len());
            data.add(field.len())
                .copy_from_nonoverlapping(value.as_ptr(), value.len());
        }
        Node { ptr }
    }

    fn data_len(&self) -> usize {
        // SAFETY: the header is written in `new` and lives as long as self.
        unsafe { (*self.ptr.as_ptr()).len }
    }

    fn data(&self) -> &[u8] {
        // SAFETY: `data_len` bytes follow the header (see `new`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(1).cast(), self.data_len()) }
    }

    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, through the unique owner.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(1).cast(), self.data_len()) }
    }

    /// The field and the value.
    pub(super) fn split(&self) -> (&[u8], &[u8]) {
        let data = self.data();
        let mut pos = 0;
        let n = get_varint(data, &mut pos);
        (&data[pos..pos + n], &data[pos + n..])
    }

    pub(super) fn field(&self) -> &[u8] {
        self.split().0
    }

    pub(super) fn next(&self) -> Option<&Node> {
        // SAFETY: the link slot is initialised in `new` and only changed
        // through `next_mut`.
        unsafe { (*self.ptr.as_ptr()).next.as_ref() }
    }

    pub(super) fn next_mut(&mut self) -> &mut Option<Node> {
        // SAFETY: as in `next`, through the unique owner.
        unsafe { &mut (*self.ptr.as_ptr()).next }
    }

    /// Bytes of the allocation (for MEMORY USAGE).
    pub(super) fn alloc_size(&self) -> usize {
        HEADER + self.data_len()
    }

    /// A new value for this node's field: written over the old one when the
    /// sizes match (no allocation), else the node is rebuilt in place of
    /// this one, keeping its link.
    pub(super) fn set_value(&mut self, value: &[u8]) {
        let (field, old) = self.split();
        if old.len() == value.len() {
            let data = self.data_mut();
            let start = data.len() - value.len();
            data[start..].copy_from_slice(value);
            return;
        }
        let field: Box<[u8]> = field.into();
        let next = self.next_mut().take();
        *self = Node::new(&field, value, next);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Unlink the rest of the chain iteratively: a long chain must not
        // recurse once per node.
        let mut rest = self.next_mut().take();
        while let Some(mut n) = rest {
            rest = n.next_mut().take();
        }
        let layout = layout(self.data_len());
        // SAFETY: allocated in `new` with this layout; the link slot is
        // now `None`, so nothing else is freed through it.
        unsafe { dealloc(self.ptr.as_ptr().cast(), layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_values_links_and_overwrites() {
        let mut chain: Option<Node> = None;
        for i in 0..1000usize {
            let f = vec![b'f'; i % 200];
            let v = format!("value-{i}").into_bytes();
            chain = Some(Node::new(&f, &v, chain));
        }
        let mut n = chain.as_ref();
        let mut i = 1000;
        while let Some(node) = n {
            i -= 1;
            assert_eq!(
                node.split(),
                (&vec![b'f'; i % 200][..], format!("value-{i}").as_bytes())
            );
            n = node.next();
        }
        assert_eq!(i, 0);
        let head = chain.as_mut().unwrap();
        head.set_value(b"value-XYZ"); // same size: in place
        assert_eq!(head.split().1, b"value-XYZ");
        head.set_value(b"a much longer value than before");
        assert_eq!(
            head.split(),
            (
                &vec![b'f'; 999 % 200][..],
                &b"a much longer value than before"[..]
            )
        );
        assert_eq!(head.next().unwrap().split().1, b"value-998");
        assert_eq!(head.alloc_size(), HEADER + 2 + 199 + 31);
        drop(chain);
    }

    #[test]
    fn a_long_chain_drops_without_recursion() {
        let mut chain: Option<Node> = None;
        for _ in 0..1_000_000 {
            chain = Some(Node::new(b"f", b"v", chain));
        }
        drop(chain);
    }
}
