//! The packed sorted-set encoding (OBJECT ENCODING `listpack`), stored
//! inline in the keyspace entry. Members are kept in (score, member) order:
//!
//! ```text
//! [count: varint] entry*
//! entry = [head: u8] [len - 15: varint, only if head >> 4 == 15] [member] [score]
//! head  = (member length, or 15 if >= 15) << 4 | score byte count (0..=8)
//! score = the leading bytes of the f64's big-endian bits; the trailing
//!         zero bytes are dropped (0 takes none, 1.5 or 3 take two)
//! ```
//! Small integers and halves, the common scores, cost two bytes, and a short
//! member costs one byte of header. Edits rebuild the bytes; the encoding
//! thresholds keep that cheap.

use crate::util::varint::put as put_varint;

use crate::util::varint::get as get_varint;

/// Number of members.
pub fn len(buf: &[u8]) -> usize {
    if buf.is_empty() {
        return 0;
    }
    get_varint(buf, &mut 0)
}

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

/// The members with their scores, in order.
pub struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let head = self.buf[self.pos];
        self.pos += 1;
        let mut mlen = (head >> 4) as usize;
        if mlen == 15 {
            mlen += get_varint(self.buf, &mut self.pos);
        }
        let member = &self.buf[self.pos..self.pos + mlen];
        self.pos += mlen;
        let n = (head & 0x0f) as usize;
        let mut bytes = [0u8; 8];
        bytes[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Some((member, f64::from_bits(u64::from_be_bytes(bytes))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

fn put_entry(out: &mut Vec<u8>, member: &[u8], score: f64) {
    // Redis's listpack stores "-0" as the integer 0: the sign is lost.
    let score = if score == 0.0 { 0.0 } else { score };
    let bytes = score.to_bits().to_be_bytes();
    let n = 8 - score.to_bits().trailing_zeros() as usize / 8;
    let short = member.len().min(15);
    out.push((short as u8) << 4 | n as u8);
    if short == 15 {
        put_varint(out, member.len() - 15);
    }
    out.extend_from_slice(member);
    out.extend_from_slice(&bytes[..n]);
}

/// Encodes members already in (score, member) order.
pub fn encode<'a>(items: impl ExactSizeIterator<Item = (&'a [u8], f64)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + items.len() * 8);
    put_varint(&mut out, items.len());
    for (m, s) in items {
        put_entry(&mut out, m, s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_members_and_scores() {
        let long = vec![b'x'; 300];
        let items: Vec<(&[u8], f64)> = vec![
            (b"", f64::NEG_INFINITY),
            (b"neg", -2.5),
            (b"zero", 0.0),
            (b"fifteen-bytes!!", 0.1),
            (&long, 3.0),
            (b"big", 1e300),
            (b"inf", f64::INFINITY),
        ];
        let buf = encode(items.iter().copied());
        assert_eq!(len(&buf), items.len());
        let back: Vec<(&[u8], f64)> = iter(&buf).collect();
        assert_eq!(back.len(), items.len());
        for (a, b) in back.iter().zip(&items) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
        assert_eq!(len(&[]), 0);
        let z = encode([(&b"negzero"[..], -0.0)].into_iter());
        assert!(
            iter(&z).next().unwrap().1.is_sign_positive(),
            "-0 packs as 0"
        );
        // The compact cases the encoding is designed for.
        assert_eq!(encode([(&b"m1"[..], 1.5)].into_iter()).len(), 1 + 1 + 2 + 2);
        assert_eq!(encode([(&b"m0"[..], 0.0)].into_iter()).len(), 1 + 1 + 2);
    }
}
