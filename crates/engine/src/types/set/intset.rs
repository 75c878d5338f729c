//! The `intset` encoding: a set of integers as one sorted byte string.
//!
//! ```text
//! [width: u8 = 2 | 4 | 8] [value: width bytes, little-endian, ascending]*
//! ```
//! The width is the smallest that holds every member, so a set of small
//! integers costs two bytes per member. Membership is a binary search; an
//! edit rebuilds the bytes, which stays cheap under `set-max-intset-entries`.

/// The smallest width that holds every value of a sorted slice.
fn width_for(sorted: &[i64]) -> usize {
    let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
        return 2;
    };
    if lo >= i16::MIN as i64 && hi <= i16::MAX as i64 {
        2
    } else if lo >= i32::MIN as i64 && hi <= i32::MAX as i64 {
        4
    } else {
        8
    }
}

fn width(buf: &[u8]) -> usize {
    buf.first().map_or(2, |&w| w as usize)
}

/// Number of members.
pub fn len(buf: &[u8]) -> usize {
    buf.len().saturating_sub(1) / width(buf)
}

/// The member at `i` in ascending order.
pub fn get(buf: &[u8], i: usize) -> i64 {
    let w = width(buf);
    let at = &buf[1 + i * w..1 + (i + 1) * w];
    match w {
        2 => i16::from_le_bytes([at[0], at[1]]) as i64,
        4 => i32::from_le_bytes(at.try_into().expect("4 bytes")) as i64,
        _ => i64::from_le_bytes(at.try_into().expect("8 bytes")),
    }
}

/// Binary search: `Ok(index)` of `v`, or `Err(insertion point)`.
pub fn find(buf: &[u8], v: i64) -> Result<usize, usize> {
    let (mut lo, mut hi) = (0, len(buf));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match get(buf, mid).cmp(&v) {
            std::cmp::Ordering::Equal => return Ok(mid),
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    Err(lo)
}

pub fn contains(buf: &[u8], v: i64) -> bool {
    find(buf, v).is_ok()
}

/// The members in ascending order.
pub fn iter(buf: &[u8]) -> impl ExactSizeIterator<Item = i64> + '_ {
    (0..len(buf)).map(move |i| get(buf, i))
}

pub fn decode(buf: &[u8]) -> Vec<i64> {
    iter(buf).collect()
}

/// Encodes a sorted, duplicate-free slice.
pub fn build(sorted: &[i64]) -> Vec<u8> {
    debug_assert!(sorted.windows(2).all(|p| p[0] < p[1]));
    let w = width_for(sorted);
    let mut out = Vec::with_capacity(1 + sorted.len() * w);
    out.push(w as u8);
    for &v in sorted {
        match w {
            2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    out
}

/// Inserts into a sorted vector; false when already present.
pub fn insert_sorted(v: &mut Vec<i64>, x: i64) -> bool {
    match v.binary_search(&x) {
        Ok(_) => false,
        Err(at) => {
            v.insert(at, x);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_order() {
        for values in [
            vec![-3i64, 0, 7, 300],
            vec![-40_000, 1, 70_000],
            vec![i64::MIN, -1, 0, i64::MAX],
            vec![],
        ] {
            let b = build(&values);
            assert_eq!(len(&b), values.len());
            assert_eq!(decode(&b), values);
            for (i, &v) in values.iter().enumerate() {
                assert_eq!(find(&b, v), Ok(i));
            }
            assert!(!contains(&b, 12_345_678_901));
        }
        assert_eq!(build(&[1, 2, 3]).len(), 7, "two bytes per small member");
        assert_eq!(build(&[1, 100_000]).len(), 9);
        assert_eq!(build(&[1, i64::MAX]).len(), 17);
        assert_eq!(find(&build(&[1, 5, 9]), 6), Err(2));
    }
}
