//! Decoders for the older packed formats an RDB may hold: ziplist (lists,
//! hashes and sorted sets before Redis 7.0, quicklist nodes in RDB 7-9),
//! zipmap (hashes before 2.6) and intset (integer sets, still current).
//! Only reading: Redis 7.0 writes none of the first two.
//!
//! ziplist: `[total: u32 LE][tail offset: u32 LE][count: u16 LE] entry* [0xFF]`,
//! entry = `[prevlen: 1 byte, or 0xFE + u32 LE][encoding][data]`; encodings:
//! `00pppppp` string up to 63 bytes, `01pppppp qqqqqqqq` up to 16383 (big
//! endian), `10000000` + u32 BE length; `0xC0` i16, `0xD0` i32, `0xE0` i64,
//! `0xF0` i24, `0xFE` i8 (all LE), `0xF1..=0xFD` the immediates 0..=12.
//!
//! zipmap: `[count: u8] ([len][key][len][free: u8][value][free bytes])* [0xFF]`,
//! len = one byte below 254, else 254 + u32 LE.
//!
//! intset: `[width: u32 LE = 2|4|8][count: u32 LE][values, LE, ascending]`.

use super::listpack::Item;

pub fn ziplist(zl: &[u8]) -> Result<Vec<Item<'_>>, &'static str> {
    if zl.len() < 11 {
        return Err("ziplist too short");
    }
    let total = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    if total != zl.len() || zl[zl.len() - 1] != 0xff {
        return Err("ziplist length mismatch");
    }
    let tail = u32::from_le_bytes([zl[4], zl[5], zl[6], zl[7]]) as usize;
    let declared = u16::from_le_bytes([zl[8], zl[9]]);
    let get = |a: usize, n: usize| {
        a.checked_add(n)
            .and_then(|e| zl.get(a..e))
            .ok_or("ziplist entry overflows")
    };
    let mut items = Vec::new();
    let mut pos = 10;
    // Where the previous entry starts, and its size (what the next
    // entry's prevlen must say).
    let (mut last, mut prev_size) = (10, 0);
    loop {
        let b = *zl.get(pos).ok_or("ziplist truncated")?;
        if b == 0xff {
            if pos + 1 != zl.len() {
                return Err("ziplist terminator inside");
            }
            break;
        }
        let start = pos;
        let prevlen = if b == 0xfe {
            let d = get(pos + 1, 4)?;
            u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize
        } else {
            b as usize
        };
        if prevlen != prev_size {
            return Err("ziplist prevlen does not match the previous entry");
        }
        pos += if b == 0xfe { 5 } else { 1 };
        let e = *zl.get(pos).ok_or("ziplist truncated")?;
        let item = match e >> 6 {
            0 => {
                let n = (e & 0x3f) as usize;
                let s = get(pos + 1, n)?;
                pos += 1 + n;
                Item::Str(s)
            }
            1 => {
                let lo = get(pos + 1, 1)?[0];
                let n = (((e & 0x3f) as usize) << 8) | lo as usize;
                let s = get(pos + 2, n)?;
                pos += 2 + n;
                Item::Str(s)
            }
            2 => {
                let l = get(pos + 1, 4)?;
                let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                let s = get(pos + 5, n)?;
                pos += 5 + n;
                Item::Str(s)
            }
            _ => {
                let (width, v) = match e {
                    0xc0 => {
                        let d = get(pos + 1, 2)?;
                        (2, i16::from_le_bytes([d[0], d[1]]) as i64)
                    }
                    0xd0 => {
                        let d = get(pos + 1, 4)?;
                        (4, i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64)
                    }
                    0xe0 => {
                        let d = get(pos + 1, 8)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(d);
                        (8, i64::from_le_bytes(a))
                    }
                    0xf0 => {
                        let d = get(pos + 1, 3)?;
                        (3, (i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8) as i64)
                    }
                    0xfe => (1, get(pos + 1, 1)?[0] as i8 as i64),
                    0xf1..=0xfd => (0, (e & 0x0f) as i64 - 1),
                    _ => return Err("ziplist bad encoding"),
                };
                pos += 1 + width;
                Item::Int(v)
            }
        };
        items.push(item);
        (last, prev_size) = (start, pos - start);
    }
    if tail != last {
        return Err("ziplist tail offset does not point at the last entry");
    }
    if declared != u16::MAX && declared as usize != items.len() {
        return Err("ziplist count mismatch");
    }
    Ok(items)
}

/// Field/value pairs of a zipmap.
/// A field and its value, borrowed from the blob.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

pub fn zipmap(zm: &[u8]) -> Result<Vec<Pair<'_>>, &'static str> {
    let get = |a: usize, n: usize| {
        a.checked_add(n)
            .and_then(|e| zm.get(a..e))
            .ok_or("zipmap entry overflows")
    };
    let len_at = |pos: &mut usize| -> Result<usize, &'static str> {
        let b = *zm.get(*pos).ok_or("zipmap truncated")?;
        if b < 254 {
            *pos += 1;
            Ok(b as usize)
        } else if b == 254 {
            let d = get(*pos + 1, 4)?;
            *pos += 5;
            Ok(u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize)
        } else {
            Err("zipmap bad length")
        }
    };
    let mut pairs = Vec::new();
    let mut pos = 1;
    loop {
        if *zm.get(pos).ok_or("zipmap truncated")? == 0xff {
            if pos + 1 != zm.len() {
                return Err("zipmap terminator inside");
            }
            // Redis never writes an empty zipmap (an empty hash is no key).
            if pairs.is_empty() {
                return Err("empty zipmap");
            }
            return Ok(pairs);
        }
        let kl = len_at(&mut pos)?;
        let k = get(pos, kl)?;
        pos += kl;
        let vl = len_at(&mut pos)?;
        let free = get(pos, 1)?[0] as usize;
        pos += 1;
        let v = get(pos, vl)?;
        pos += vl + free;
        pairs.push((k, v));
    }
}

/// The members of an intset, checked ascending.
pub fn intset(is: &[u8]) -> Result<Vec<i64>, &'static str> {
    if is.len() < 8 {
        return Err("intset too short");
    }
    let width = u32::from_le_bytes([is[0], is[1], is[2], is[3]]) as usize;
    let count = u32::from_le_bytes([is[4], is[5], is[6], is[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err("intset bad encoding");
    }
    let body = &is[8..];
    if count.checked_mul(width) != Some(body.len()) {
        return Err("intset length mismatch");
    }
    let mut out = Vec::with_capacity(count);
    for c in body.chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            }
        };
        if out.last().is_some_and(|&p| p >= v) {
            return Err("intset not sorted");
        }
        out.push(v);
    }
    Ok(out)
}

/// An intset of sorted, distinct values (the smallest width that holds them).
pub fn encode_intset(sorted: impl ExactSizeIterator<Item = i64> + Clone) -> Vec<u8> {
    let (lo, hi) = sorted
        .clone()
        .fold((0i64, 0i64), |(l, h), v| (l.min(v), h.max(v)));
    let width: usize = if lo >= i16::MIN as i64 && hi <= i16::MAX as i64 {
        2
    } else if lo >= i32::MIN as i64 && hi <= i32::MAX as i64 {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + sorted.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for v in sorted {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_matches_redis() {
        // DUMP of SADD si 1 2 300 on Redis 7.0.15 (after the type byte and
        // the string length).
        let want = b"\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00,\x01";
        let got = encode_intset([1i64, 2, 300].into_iter());
        assert_eq!(got, want);
        assert_eq!(intset(&got).unwrap(), vec![1, 2, 300]);
        assert!(intset(&got[..got.len() - 1]).is_err());
    }

    #[test]
    fn ziplist_entries() {
        // zlbytes, zltail, zllen; "ab", 7 (immediate), -2 (i8), 1000 (i16).
        let mut zl = vec![0u8; 10];
        zl.extend_from_slice(&[0, 0x02, b'a', b'b']);
        zl.extend_from_slice(&[4, 0xf8]);
        zl.extend_from_slice(&[2, 0xfe, 0xfe]);
        zl.extend_from_slice(&[3, 0xc0, 0xe8, 0x03]);
        zl.push(0xff);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        zl[4] = 19; // the last entry starts at 10 + 4 + 2 + 3
        zl[8] = 4;
        let items = ziplist(&zl).unwrap();
        assert_eq!(
            items,
            vec![
                Item::Str(b"ab"),
                Item::Int(7),
                Item::Int(-2),
                Item::Int(1000)
            ]
        );
        for cut in 0..zl.len() {
            assert!(ziplist(&zl[..cut]).is_err());
        }
        // A prevlen that is not the previous entry's size, or a tail
        // offset that is not the last entry's start (Redis's deep checks).
        let mut bad = zl.clone();
        bad[14] = 5;
        assert!(ziplist(&bad).unwrap_err().contains("prevlen"));
        let mut bad = zl.clone();
        bad[4] = 16;
        assert!(ziplist(&bad).unwrap_err().contains("tail"));
        // A prevlen in its 5-byte form for a small size is legal.
        let mut wide = zl[..14].to_vec();
        wide.extend_from_slice(&[0xfe, 4, 0, 0, 0, 0xf8]);
        wide.extend_from_slice(&zl[16..]);
        let n = wide.len() as u32;
        wide[..4].copy_from_slice(&n.to_le_bytes());
        wide[4] = 23;
        wide[20] = 6; // the next prevlen: the widened entry's size
        assert_eq!(ziplist(&wide).unwrap(), items);
    }

    #[test]
    fn zipmap_pairs() {
        let zm = b"\x02\x01a\x02\x00xy\x01b\x01\x02z\x00\x00\xff";
        let p = zipmap(zm).unwrap();
        assert_eq!(p, vec![(&b"a"[..], &b"xy"[..]), (&b"b"[..], &b"z"[..])]);
        assert!(zipmap(&zm[..zm.len() - 1]).is_err());
        assert_eq!(zipmap(b"\x00\xff"), Err("empty zipmap"));
    }
}
