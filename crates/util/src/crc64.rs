//! CRC-64 as Redis computes it for DUMP payloads: the "Jones" polynomial
//! 0xad93d23594c935a9, reflected input and output, initial value 0, no
//! final xor. Check value for `123456789`: 0xe9c6d914c4b8d9ca.

/// The polynomial bit-reversed, for the reflected (LSB-first) algorithm.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

/// `TABLES[0]` is the classic byte table; `TABLES[k][i]` is the CRC of
/// byte `i` followed by `k` zero bytes, so eight bytes fold in with eight
/// lookups at once ("slicing by 8") instead of eight dependent steps.
static TABLES: [[u64; 256]; 8] = make_tables();

const fn make_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ POLY_REFLECTED
            } else {
                c >> 1
            };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// One byte at a time.
#[inline]
fn bytewise(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = TABLES[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// Continues the CRC `crc` over `data` (start with 0).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = crc ^ u64::from_le_bytes(w);
        let b = |n: u32| ((x >> (8 * n)) & 0xff) as usize;
        crc = TABLES[7][b(0)]
            ^ TABLES[6][b(1)]
            ^ TABLES[5][b(2)]
            ^ TABLES[4][b(3)]
            ^ TABLES[3][b(4)]
            ^ TABLES[2][b(5)]
            ^ TABLES[1][b(6)]
            ^ TABLES[0][b(7)];
    }
    bytewise(crc, chunks.remainder())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn eight_at_a_time_equals_one_at_a_time() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..4099)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 100, 4000] {
                let d = &data[start..start + len];
                assert_eq!(crc64(5, d), bytewise(5, d), "{start} {len}");
            }
        }
    }

    #[test]
    fn continues_across_chunks() {
        assert_eq!(crc64(crc64(0, b"1234"), b"56789"), crc64(0, b"123456789"));
        assert_eq!(crc64(0, b""), 0);
    }
}
