//! One node of a stream: a packed run of entries sharing a master id.
//!
//! Layout of `data`, one live entry after another:
//! `[ms - master.ms: varint][seq part: varint][nfields: varint] fields...`
//! where the seq part is `seq - master.seq` when the entry shares the
//! master's millisecond (else the plain seq), and `nfields` is 0 when the
//! entry has exactly the master's field names (only the values follow),
//! else the count of pairs followed by field, value, field, value ...
//! Each string is `[len: varint][bytes]`.
//!
//! Why nodes at all (rather than one map of entries): Redis closes a node
//! at `stream-node-max-entries` entries or `stream-node-max-bytes` bytes and
//! `~` trimming drops whole nodes only, so how many entries an approximate
//! trim leaves is a function of where the node boundaries fall. We keep the
//! same boundaries by tracking, beside our own bytes, the size Redis's
//! listpack for the node would have (`lp_*` fields; see [`lp`]). Deleted
//! entries leave our bytes at once but stay in that count, as they stay in
//! Redis's listpack.

use super::id::StreamId;
use crate::util::varint;

#[derive(Clone, Debug)]
pub struct Node {
    /// The id of the first entry ever appended (Redis's radix tree key).
    pub master: StreamId,
    /// The id of the last entry appended, deleted or not.
    pub last: StreamId,
    /// Live entries.
    pub live: u32,
    /// Entries deleted from this node (they still count toward its size).
    pub deleted: u32,
    /// The master field names: `[n: varint]` then `[len][bytes]` each.
    fields: Box<[u8]>,
    /// Redis's listpack bytes of the master entry's field part.
    lp_master: usize,
    /// Redis's listpack bytes of every entry appended (deleted included).
    lp_entries: usize,
    /// The packed live entries.
    data: Vec<u8>,
}

/// One decoded entry, borrowing the node.
pub struct EntryView<'a> {
    pub id: StreamId,
    /// Field, value, field, value ...
    pub pairs: Vec<&'a [u8]>,
    /// Where the entry starts and ends in the node's data.
    span: (usize, usize),
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    varint::put(out, s.len());
    out.extend_from_slice(s);
}

fn get_str<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = varint::get(buf, pos);
    let s = &buf[*pos..*pos + n];
    *pos += n;
    s
}

fn get_u64(buf: &[u8], pos: &mut usize) -> u64 {
    varint::get(buf, pos) as u64
}

impl Node {
    /// A node whose master entry is `id` with the field names of `pairs`.
    pub fn new(id: StreamId, pairs: &[&[u8]]) -> Node {
        let mut fields = Vec::new();
        varint::put(&mut fields, pairs.len() / 2);
        for f in pairs.iter().step_by(2) {
            put_str(&mut fields, f);
        }
        let lp_master = lp::int(pairs.len() as i64 / 2)
            + pairs
                .iter()
                .step_by(2)
                .map(|f| lp::string(f))
                .sum::<usize>()
            + lp::int(0);
        Node {
            master: id,
            last: id,
            live: 0,
            deleted: 0,
            fields: fields.into_boxed_slice(),
            lp_master,
            lp_entries: 0,
            data: Vec::new(),
        }
    }

    /// Bytes of this node's own buffers (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        self.fields.len() + self.data.capacity()
    }

    /// The size Redis's listpack for this node has now.
    pub fn lp_bytes(&self) -> usize {
        lp::HEADER_AND_END
            + lp::int(self.live as i64)
            + lp::int(self.deleted as i64)
            + self.lp_master
            + self.lp_entries
    }

    /// The master entry's field names.
    pub fn master_fields(&self) -> impl Iterator<Item = &[u8]> {
        let mut pos = 0;
        let n = varint::get(&self.fields, &mut pos);
        (0..n).map(move |_| get_str(&self.fields, &mut pos))
    }

    fn master_field_count(&self) -> usize {
        varint::get(&self.fields, &mut 0)
    }

    fn same_fields(&self, pairs: &[&[u8]]) -> bool {
        self.master_field_count() == pairs.len() / 2
            && self
                .master_fields()
                .zip(pairs.iter().step_by(2))
                .all(|(a, b)| a == *b)
    }

    /// Appends an entry; `id` must be above every id in the node.
    pub fn push(&mut self, id: StreamId, pairs: &[&[u8]]) {
        let same = self.same_fields(pairs);
        let ms_delta = id.ms - self.master.ms;
        varint::put(&mut self.data, ms_delta as usize);
        let seq_part = if ms_delta == 0 {
            id.seq - self.master.seq
        } else {
            id.seq
        };
        varint::put(&mut self.data, seq_part as usize);
        if same {
            varint::put(&mut self.data, 0);
            for v in pairs.iter().skip(1).step_by(2) {
                put_str(&mut self.data, v);
            }
        } else {
            varint::put(&mut self.data, pairs.len() / 2);
            for s in pairs {
                put_str(&mut self.data, s);
            }
        }
        self.lp_entries += lp_entry_size(self.master, id, pairs, same);
        self.last = id;
        self.live += 1;
    }

    /// Frees the spare capacity of a node that takes no more entries.
    pub fn shrink(&mut self) {
        self.data.shrink_to_fit();
    }

    /// Decodes the entry at `pos` (a start offset in data).
    fn decode(&self, pos: usize) -> EntryView<'_> {
        let d = &self.data;
        let start = pos;
        let mut pos = pos;
        let ms_delta = get_u64(d, &mut pos);
        let seq_part = get_u64(d, &mut pos);
        let id = if ms_delta == 0 {
            StreamId::new(self.master.ms, self.master.seq + seq_part)
        } else {
            StreamId::new(self.master.ms + ms_delta, seq_part)
        };
        let n = varint::get(d, &mut pos);
        let mut pairs = Vec::new();
        if n == 0 {
            for f in self.master_fields() {
                pairs.push(f);
                pairs.push(get_str(d, &mut pos));
            }
        } else {
            for _ in 0..2 * n {
                pairs.push(get_str(d, &mut pos));
            }
        }
        EntryView {
            id,
            pairs,
            span: (start, pos),
        }
    }

    /// The live entries in id order.
    pub fn iter(&self) -> impl Iterator<Item = EntryView<'_>> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.data.len() {
                return None;
            }
            let e = self.decode(pos);
            pos = e.span.1;
            Some(e)
        })
    }

    /// The live entries, last first.
    pub fn iter_rev(&self) -> impl Iterator<Item = EntryView<'_>> {
        let all: Vec<EntryView<'_>> = self.iter().collect();
        all.into_iter().rev()
    }

    /// Deletes the live entry `id`; false if the node has no such entry.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if id < self.master || id > self.last {
            return false;
        }
        let span = self
            .iter()
            .find(|e| e.id >= id)
            .filter(|e| e.id == id)
            .map(|e| e.span);
        let Some((a, b)) = span else {
            return false;
        };
        self.data.drain(a..b);
        self.live -= 1;
        self.deleted += 1;
        true
    }

    /// Deletes live entries from the front (exact trimming inside a
    /// node): at most `max`, and only ids below `below` when given.
    pub fn delete_front(&mut self, max: u64, below: Option<StreamId>) -> u64 {
        let mut n = 0;
        let mut end = 0;
        for e in self.iter() {
            if n >= max || below.is_some_and(|b| e.id >= b) {
                break;
            }
            end = e.span.1;
            n += 1;
        }
        self.data.drain(..end);
        self.live -= n as u32;
        self.deleted += n as u32;
        n
    }
}

/// The bytes an entry takes in Redis's node listpack: flags, the two id
/// deltas, (field count and names unless they match the master's), the
/// values, and the count of those pieces.
fn lp_entry_size(master: StreamId, id: StreamId, pairs: &[&[u8]], same: bool) -> usize {
    let n = pairs.len() / 2;
    let mut size = lp::int(0) // flags: 0..=3, one byte either way
        + lp::int(id.ms.wrapping_sub(master.ms) as i64)
        + lp::int(id.seq.wrapping_sub(master.seq) as i64);
    let pieces = if same {
        size += pairs
            .iter()
            .skip(1)
            .step_by(2)
            .map(|v| lp::string(v))
            .sum::<usize>();
        n + 3
    } else {
        size += lp::int(n as i64) + pairs.iter().map(|s| lp::string(s)).sum::<usize>();
        2 * n + 4
    };
    size + lp::int(pieces as i64)
}

/// Sizes of listpack elements (Redis's packed encoding of a node).
pub mod lp {
    /// Total-bytes and count header plus the end byte.
    pub const HEADER_AND_END: usize = 7;

    /// Bytes of the back-length that follows an element of `n` bytes.
    fn backlen(n: usize) -> usize {
        match n {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        }
    }

    /// An integer element.
    pub fn int(v: i64) -> usize {
        let enc = match v {
            0..=127 => 1,
            -4096..=4095 => 2,
            -32768..=32767 => 3,
            -8388608..=8388607 => 4,
            -2147483648..=2147483647 => 5,
            _ => 9,
        };
        enc + backlen(enc)
    }

    /// A string element (stored as an integer when it reads as one).
    pub fn string(s: &[u8]) -> usize {
        if let Some(v) = crate::util::num::parse_i64(s) {
            return int(v);
        }
        let enc = match s.len() {
            0..=63 => 1 + s.len(),
            64..=4095 => 2 + s.len(),
            _ => 5 + s.len(),
        };
        enc + backlen(enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_and_without_master_fields() {
        let mut n = Node::new(StreamId::new(10, 5), &[b"a", b"1", b"b", b"2"]);
        n.push(StreamId::new(10, 5), &[b"a", b"1", b"b", b"2"]);
        n.push(StreamId::new(10, 9), &[b"a", b"x", b"b", b"y"]);
        n.push(StreamId::new(12, 0), &[b"c", b"3"]);
        let got: Vec<(StreamId, Vec<&[u8]>)> = n.iter().map(|e| (e.id, e.pairs)).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].0, StreamId::new(10, 9));
        assert_eq!(got[1].1, vec![&b"a"[..], b"x", b"b", b"y"]);
        assert_eq!(got[2].0, StreamId::new(12, 0));
        assert_eq!(got[2].1, vec![&b"c"[..], b"3"]);
        assert!(n.delete(StreamId::new(10, 9)));
        assert!(!n.delete(StreamId::new(10, 9)));
        assert_eq!((n.live, n.deleted), (2, 1));
        let ids: Vec<StreamId> = n.iter_rev().map(|e| e.id).collect();
        assert_eq!(ids, vec![StreamId::new(12, 0), StreamId::new(10, 5)]);
    }

    #[test]
    fn listpack_sizes() {
        assert_eq!(lp::int(5), 2);
        assert_eq!(lp::int(200), 3);
        assert_eq!(lp::int(-1), 3);
        assert_eq!(lp::int(1 << 40), 10);
        assert_eq!(lp::string(b"abc"), 5);
        assert_eq!(lp::string(b"123"), 2);
        assert_eq!(lp::string(&[b'x'; 100]), 103);
    }
}
