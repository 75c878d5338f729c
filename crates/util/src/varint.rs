//! LEB128 lengths, as the packed encodings store them.

/// Bytes `v` takes.
pub fn len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends `v`.
pub fn put(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a value at `*pos` and moves `pos` past it.
pub fn get(buf: &[u8], pos: &mut usize) -> usize {
    let mut v = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for v in [0usize, 1, 127, 128, 300, 16_383, 16_384, usize::MAX >> 1] {
            let mut b = Vec::new();
            super::put(&mut b, v);
            assert_eq!(b.len(), super::len(v));
            let mut pos = 0;
            assert_eq!(super::get(&b, &mut pos), v);
            assert_eq!(pos, b.len());
        }
    }
}
