//! LZF, the compression RDB strings use (DUMP payloads, FUNCTION DUMP).
//!
//! The compressor makes the same choices as liblzf 3.6 as Redis builds it
//! (16-bit hash table, the "very fast" variant that re-hashes two positions
//! after each match), so a payload we produce is byte-identical to Redis's
//! for the same input. The decompressor accepts any valid LZF stream.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

fn first(data: &[u8], i: usize) -> u32 {
    ((data[i] as u32) << 8) | data[i + 1] as u32
}

fn next(h: u32, data: &[u8], i: usize) -> u32 {
    (h << 8) | data[i + 2] as u32
}

fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Appends one literal byte to the current run; a full run (MAX_LIT
/// bytes) gets its length byte and a new run starts after it.
fn push_literal(out: &mut [u8], op: &mut usize, lit: &mut usize, byte: u8) {
    *lit += 1;
    out[*op] = byte;
    *op += 1;
    if *lit == MAX_LIT {
        out[*op - *lit - 1] = (*lit - 1) as u8;
        *lit = 0;
        *op += 1;
    }
}

/// The hash table, reused across calls: a slot counts only if it was
/// written during the current call (its generation), so no call pays for
/// clearing 64K slots (which made an RDB save of a million short strings
/// spend most of its time zeroing memory).
struct Table {
    generation: u32,
    slots: Vec<(u32, usize)>,
}

impl Table {
    fn begin(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![(0, 0); HSIZE];
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill((0, 0));
            self.generation = 1;
        }
    }

    #[inline]
    fn get(&self, slot: usize) -> usize {
        let (g, pos) = self.slots[slot];
        if g == self.generation { pos } else { 0 }
    }

    #[inline]
    fn set(&mut self, slot: usize, pos: usize) {
        self.slots[slot] = (self.generation, pos);
    }
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> = const {
        std::cell::RefCell::new(Table { generation: 0, slots: Vec::new() })
    };
}

/// Compresses `input` into at most `max_out` bytes; None when the result
/// would not fit (the caller then stores the data uncompressed).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    if input.len() < 3 || max_out == 0 {
        return None;
    }
    TABLE.with(|t| match t.try_borrow_mut() {
        Ok(mut t) => {
            t.begin();
            compress_with(input, max_out, &mut t)
        }
        // Re-entered on this thread (cannot happen today): a fresh table.
        Err(_) => {
            let mut own = Table {
                generation: 0,
                slots: Vec::new(),
            };
            own.begin();
            compress_with(input, max_out, &mut own)
        }
    })
}

fn compress_with(input: &[u8], max_out: usize, htab: &mut Table) -> Option<Vec<u8>> {
    let len = input.len();
    if len < 3 || max_out == 0 {
        return None;
    }
    // Table slots hold positions; 0 doubles as "empty" since a match at
    // position 0 is never taken (as in liblzf).
    // Slack so the bounded checks below (those of liblzf) never index past
    // the buffer; the result is cut at `op`.
    let mut out = vec![0u8; max_out + 4];
    let out_end = max_out;
    let mut ip = 0usize;
    let mut op = 1usize; // out[0] holds the first literal run's length
    let mut lit = 0usize;
    let mut hval = first(input, ip);
    while ip + 2 < len {
        hval = next(hval, input, ip);
        let slot = idx(hval);
        let r = htab.get(slot);
        htab.set(slot, ip);
        let matched = r < ip
            && ip - r - 1 < MAX_OFF
            && r > 0
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1];
        if matched {
            let off = ip - r - 1;
            let mut mlen = 2usize;
            let maxlen = (len - ip - mlen).min(MAX_REF);
            let lit_pending = usize::from(lit == 0);
            if op + 4 >= out_end && op - lit_pending + 4 >= out_end {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // close the literal run
            op -= lit_pending; // drop an empty run
            let mut mismatch = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    mlen += 1;
                    if input[r + mlen] != input[ip + mlen] {
                        mismatch = true;
                        break;
                    }
                }
            }
            if !mismatch {
                loop {
                    mlen += 1;
                    if !(mlen < maxlen && input[r + mlen] == input[ip + mlen]) {
                        break;
                    }
                }
            }
            mlen -= 2; // stored as length - 2
            ip += 1;
            if mlen < 7 {
                out[op] = ((off >> 8) + (mlen << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (mlen - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 2; // the offset byte, then a new run's length byte
            lit = 0;
            ip += mlen + 1;
            if ip + 2 >= len {
                break;
            }
            // Hash the last two positions of the match.
            ip -= 2;
            hval = first(input, ip);
            hval = next(hval, input, ip);
            htab.set(idx(hval), ip);
            ip += 1;
            hval = next(hval, input, ip);
            htab.set(idx(hval), ip);
            ip += 1;
        } else {
            if op >= out_end {
                return None;
            }
            push_literal(&mut out, &mut op, &mut lit, input[ip]);
            ip += 1;
        }
    }
    if op + 3 > out_end {
        return None;
    }
    while ip < len {
        push_literal(&mut out, &mut op, &mut lit, input[ip]);
        ip += 1;
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// The most one input byte can expand to: a long back reference is 3 bytes
/// for up to 264 bytes of output.
const MAX_EXPANSION: usize = 88;

/// Decompresses `input`, which must expand to exactly `out_len` bytes.
///
/// `out_len` comes from the payload: a length no input of this size can
/// produce is refused before anything is allocated, so a forged header
/// (2^62 bytes) cannot make the allocation abort the process.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if out_len > input.len().saturating_mul(MAX_EXPANSION) {
        return None;
    }
    let mut out = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lits = input.get(ip..ip + run)?;
            if out.len() + run > out_len {
                return None;
            }
            out.extend_from_slice(lits);
            ip += run;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            n += 2;
            if back > out.len() || out.len() + n > out_len {
                return None;
            }
            // Byte by byte: the source may overlap what is being written.
            let start = out.len() - back;
            for i in 0..n {
                out.push(out[start + i]);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) {
        if let Some(c) = compress(data, data.len().saturating_sub(4)) {
            assert!(c.len() < data.len());
            assert_eq!(decompress(&c, data.len()).as_deref(), Some(data));
        }
    }

    #[test]
    fn round_trips() {
        round_trip(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        round_trip(b"abcabcabcabcabcabcabcabcabcabcabcabc hello hello hello");
        let long: Vec<u8> = (0..5000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        round_trip(&long);
        let text = "redis.register_function('f', function(keys, args) return 1 end)\n".repeat(40);
        round_trip(text.as_bytes());
        assert!(compress(b"abcdefghijklmnopqrstuvwxyz", 22).is_none());
    }

    #[test]
    fn matches_redis_output() {
        // FUNCTION DUMP of this library on redis-server 7.0.15.
        let code = b"#!lua name=mylib\nredis.register_function('f1', function(keys, args) return keys[1] end)\nredis.register_function{function_name='f2', callback=function(k,a) return 1 end, flags={'no-writes'}, description='desc two'}";
        let c = compress(code, code.len() - 4).unwrap();
        let redis = "1f23216c7561206e616d653d6d796c69620a72656469732e72656769737465725f0e66756e6374696f6e28276631272c20e0000e126b6579732c2061726773292072657475726e204012075b315d20656e6429e00f46007bc040005f60720227663220540863616c6c6261636b3dc01c03286b2c61e000560031405020791a6c6167733d7b276e6f2d777269746573277d2c206465736372697040a0013d27400c052074776f277d";
        let hex: String = c.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, redis);
        assert_eq!(decompress(&c, code.len()).as_deref(), Some(&code[..]));
    }

    #[test]
    fn random_inputs_round_trip() {
        // Small alphabets make matches of every length and offset.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..400 {
            let len = (rnd() % 3000) as usize + round % 7;
            let alphabet = 1 + rnd() % 6;
            let data: Vec<u8> = (0..len).map(|_| b'a' + (rnd() % alphabet) as u8).collect();
            round_trip(&data);
            // Tight output limits exercise every "does not fit" exit.
            for slack in [0, 1, 2, 3, 5] {
                if let Some(c) = compress(&data, data.len() / 3 + slack) {
                    assert_eq!(decompress(&c, data.len()).as_deref(), Some(&data[..]));
                }
            }
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(decompress(b"\x05ab", 6).is_none());
        assert!(decompress(b"\x20\x05", 3).is_none());
        assert!(decompress(b"\x00a", 2).is_none());
    }

    #[test]
    fn forged_lengths_allocate_nothing() {
        assert!(decompress(b"\x00", 1 << 62).is_none());
        assert!(decompress(b"", usize::MAX).is_none());
        // The largest expansion there is: one literal, then a long back
        // reference of 264 bytes per 3 input bytes.
        let mut c = vec![0x00, b'a'];
        for _ in 0..10 {
            c.extend_from_slice(&[0xe0, 0xff, 0x00]);
        }
        let out = decompress(&c, 1 + 2640).unwrap();
        assert!(out.iter().all(|&b| b == b'a'));
        assert!(2641 <= c.len() * MAX_EXPANSION);
    }
}
