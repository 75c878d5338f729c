//! Redis's listpack format, as it appears inside RDB values (hashes, sorted
//! sets and list nodes in Redis 7.0, stream nodes since 5.0).
//!
//! ```text
//! [total bytes: u32 LE][element count: u16 LE, 65535 = unknown] element* [0xFF]
//! element = [encoding + data][back-length]
//! ```
//! Encodings (first byte): `0xxxxxxx` 7-bit unsigned int; `10xxxxxx` string
//! up to 63 bytes; `110xxxxx` + 1 byte 13-bit signed int; `1110xxxx` + 1
//! byte string up to 4095 bytes; `0xF0` + u32 LE string length; `0xF1`,
//! `0xF2`, `0xF3`, `0xF4` signed 16, 24, 32, 64-bit ints (LE). The
//! back-length is the size of encoding + data in 7-bit groups, most
//! significant first, every group but the first flagged with 0x80 (so it
//! reads right to left).
//!
//! Strings that are canonical integers are stored as integers (as Redis's
//! appends do), so a value written here is byte-for-byte Redis's.

use crate::util::num::parse_canonical_i64;

pub const HEADER: usize = 6;
pub const END: u8 = 0xff;

/// One decoded element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Item<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Item<'_> {
    /// The element as bytes (integers in decimal).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Item::Str(s) => s.to_vec(),
            Item::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
        }
    }

    pub fn as_int(self) -> Option<i64> {
        match self {
            Item::Int(n) => Some(n),
            Item::Str(s) => parse_canonical_i64(s),
        }
    }
}

/// Builds a listpack element by element.
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            buf: vec![0; HEADER],
            count: 0,
        }
    }

    /// Appends bytes, as an integer when they are a canonical one.
    pub fn push(&mut self, s: &[u8]) {
        if s.len() <= 20
            && let Some(n) = parse_canonical_i64(s)
        {
            return self.push_int(n);
        }
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.back_len(start);
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1fff;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if i16::try_from(v).is_ok() {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.back_len(start);
    }

    fn back_len(&mut self, start: usize) {
        let l = self.buf.len() - start;
        let groups = match l {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        };
        for i in (0..groups).rev() {
            let g = ((l >> (7 * i)) & 0x7f) as u8;
            self.buf.push(if i + 1 == groups { g } else { g | 0x80 });
        }
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(END);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(u16::MAX);
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// A listpack of these strings.
pub fn encode<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut b = Builder::new();
    for it in items {
        b.push(it);
    }
    b.finish()
}

/// How many bytes a back-length for an element of `l` bytes takes.
fn back_len_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Decodes a whole listpack, checking every bound; `Err` names what is
/// wrong. The header's total must match the blob's length.
pub fn decode(lp: &[u8]) -> Result<Vec<Item<'_>>, &'static str> {
    if lp.len() < HEADER + 1 {
        return Err("listpack too short");
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err("listpack length mismatch");
    }
    if lp[lp.len() - 1] != END {
        return Err("listpack without terminator");
    }
    let declared = u16::from_le_bytes([lp[4], lp[5]]);
    let mut items = Vec::new();
    let mut pos = HEADER;
    let get = |a: usize, n: usize| {
        a.checked_add(n)
            .and_then(|e| lp.get(a..e))
            .ok_or("listpack element overflows")
    };
    loop {
        let b = *lp.get(pos).ok_or("listpack truncated")?;
        if b == END {
            if pos + 1 != lp.len() {
                return Err("listpack terminator inside");
            }
            break;
        }
        let start = pos;
        let item = if b & 0x80 == 0 {
            pos += 1;
            Item::Int((b & 0x7f) as i64)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            let s = get(pos + 1, n)?;
            pos += 1 + n;
            Item::Str(s)
        } else if b & 0xe0 == 0xc0 {
            let lo = get(pos + 1, 1)?[0];
            let u = (((b & 0x1f) as u16) << 8) | lo as u16;
            // Sign-extend 13 bits.
            let v = ((u << 3) as i16 >> 3) as i64;
            pos += 2;
            Item::Int(v)
        } else if b & 0xf0 == 0xe0 {
            let lo = get(pos + 1, 1)?[0];
            let n = (((b & 0x0f) as usize) << 8) | lo as usize;
            let s = get(pos + 2, n)?;
            pos += 2 + n;
            Item::Str(s)
        } else {
            match b {
                0xf0 => {
                    let l = get(pos + 1, 4)?;
                    let n = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
                    let s = get(pos + 5, n)?;
                    pos += 5 + n;
                    Item::Str(s)
                }
                0xf1 => {
                    let d = get(pos + 1, 2)?;
                    pos += 3;
                    Item::Int(i16::from_le_bytes([d[0], d[1]]) as i64)
                }
                0xf2 => {
                    let d = get(pos + 1, 3)?;
                    pos += 4;
                    Item::Int((i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8) as i64)
                }
                0xf3 => {
                    let d = get(pos + 1, 4)?;
                    pos += 5;
                    Item::Int(i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64)
                }
                0xf4 => {
                    let d = get(pos + 1, 8)?;
                    pos += 9;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(d);
                    Item::Int(i64::from_le_bytes(a))
                }
                _ => return Err("listpack bad encoding"),
            }
        };
        let size = pos - start;
        let back = back_len_size(size);
        // The back-length must say the element's size (it is how Redis
        // walks a listpack backwards).
        let stored = get(pos, back)?;
        let expect = (0..back).rev().map(|i| {
            let g = ((size >> (7 * i)) & 0x7f) as u8;
            if i + 1 == back { g } else { g | 0x80 }
        });
        if !stored.iter().copied().eq(expect) {
            return Err("listpack element back-length does not match");
        }
        pos += back;
        items.push(item);
    }
    if declared != u16::MAX && declared as usize != items.len() {
        return Err("listpack count mismatch");
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_bytes() {
        // DUMP of HSET h f1 v1 n 12 neg -5000 big 100000 on Redis 7.0.15.
        let lp = encode([
            &b"f1"[..],
            b"v1",
            b"n",
            b"12",
            b"neg",
            b"-5000",
            b"big",
            b"100000",
        ]);
        let want = b"'\x00\x00\x00\x08\x00\x82f1\x03\x82v1\x03\x81n\x02\x0c\x01\x83neg\x04\xf1x\xec\x03\x83big\x04\xf2\xa0\x86\x01\x04\xff";
        assert_eq!(lp, want);
        let items = decode(&lp).unwrap();
        assert_eq!(items[5], Item::Int(-5000));
        assert_eq!(items[7], Item::Int(100000));
    }

    #[test]
    fn round_trips_every_width() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let vals: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32769",
            "8388607",
            "-8388608",
            "2147483647",
            "2147483648",
            "-9223372036854775808",
            "007",
            "",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([long.clone(), mid.clone()])
        .collect();
        let lp = encode(vals.iter().map(|v| v.as_slice()));
        let got: Vec<Vec<u8>> = decode(&lp)
            .unwrap()
            .into_iter()
            .map(|i| i.to_vec())
            .collect();
        assert_eq!(got, vals);
    }

    #[test]
    fn corrupt_is_an_error() {
        let lp = encode([&b"hello"[..], b"world"]);
        for cut in 0..lp.len() {
            assert!(decode(&lp[..cut]).is_err());
        }
        let mut bad = lp.clone();
        bad[6] = 0x80 | 60;
        assert!(decode(&bad).is_err());
        // A back-length that does not say the element's size.
        let mut bad = lp.clone();
        bad[12] = 7;
        assert_eq!(
            decode(&bad),
            Err("listpack element back-length does not match")
        );
    }
}
