//! HyperLogLog in Redis 7.0's byte representation, as pure functions on
//! the string value's bytes, so a value moves between ferrokv and Redis
//! (GET/SET, DUMP/RESTORE, RDB) unchanged.
//!
//! Layout: a 16-byte header (`HYLL`, the encoding byte, 3 unused bytes,
//! the cached cardinality as 8 bytes little-endian whose last byte's top
//! bit marks it invalid) followed by the registers, 16384 of them:
//! - dense: 6 bits each, packed from the least significant bit of the
//!   first byte (12288 bytes);
//! - sparse: a run-length code of opcodes, `00xxxxxx` ZERO (1..=64 zero
//!   registers), `01xxxxxx yyyyyyyy` XZERO (1..=16384 zero registers),
//!   `1vvvvvxx` VAL (1..=4 registers of value 1..=32).
//!
//! Corrupted values can arrive through SET/SETRANGE/RESTORE: every decode
//! step is bounded (an opcode cut short reads its missing byte as zero,
//! which is what Redis sees past the end of its string) and every
//! inconsistency is reported as [`Corrupt`], never a panic.

/// Registers are indexed by the low `P` bits of the hash.
pub const P: u32 = 14;
pub const REGISTERS: usize = 1 << P;
/// Bits of the hash left for the run of zeros.
const Q: u32 = 64 - P;
const REG_MAX: u8 = 63;
pub const HDR: usize = 16;
pub const DENSE_SIZE: usize = HDR + REGISTERS * 6 / 8;
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
const SEED: u64 = 0xadc8_3b19;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;

/// The value is not a consistent HLL (Redis's INVALIDOBJ).
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

impl From<Corrupt> for crate::error::Error {
    fn from(_: Corrupt) -> Self {
        Self::msg("INVALIDOBJ Corrupted HLL object detected")
    }
}

/// Whether `v` passes Redis's HLL check: the magic, a known encoding,
/// and for dense the exact length. Anything else is WRONGTYPE.
pub fn is_hll(v: &[u8]) -> bool {
    v.len() >= HDR
        && &v[..4] == b"HYLL"
        && v[4] <= SPARSE
        && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

/// A new, empty HLL: sparse, one XZERO over every register, cache 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    push_xzero(&mut v, REGISTERS);
    v
}

pub fn is_sparse(v: &[u8]) -> bool {
    v.get(4) == Some(&SPARSE)
}

/// The cached cardinality, if valid.
pub fn cached(v: &[u8]) -> Option<u64> {
    let card: [u8; 8] = v.get(8..16)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

pub fn set_cached(v: &mut [u8], card: u64) {
    if let Some(c) = v.get_mut(8..16) {
        c.copy_from_slice(&card.to_le_bytes());
    }
}

pub fn invalidate(v: &mut [u8]) {
    if let Some(b) = v.get_mut(15) {
        *b |= 0x80;
    }
}

/// MurmurHash64A (Austin Appleby), little-endian blocks.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for b in &mut blocks {
        let mut k = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the length of the run of zeros
/// (plus one) in the rest of its hash: 1..=Q+1.
pub fn pattern(elem: &[u8]) -> (usize, u8) {
    let h = murmur64a(elem, SEED);
    let index = (h as usize) & (REGISTERS - 1);
    // A sentinel bit at Q bounds the run.
    let rest = (h >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---- dense registers ----

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * 6;
    let (byte, shift) = (bit / 8, bit % 8);
    let lo = u16::from(regs[byte]);
    let hi = regs.get(byte + 1).map_or(0, |&b| u16::from(b));
    (((lo | hi << 8) >> shift) as u8) & REG_MAX
}

fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let bit = i * 6;
    let (byte, shift) = (bit / 8, bit % 8);
    let mask = u16::from(REG_MAX) << shift;
    let val = u16::from(val & REG_MAX) << shift;
    regs[byte] = (regs[byte] & !(mask as u8)) | val as u8;
    // The last register ends inside its byte: nothing spills.
    if let Some(next) = regs.get_mut(byte + 1) {
        *next = (*next & !((mask >> 8) as u8)) | (val >> 8) as u8;
    }
}

/// Raises register `i` of a dense HLL to `count`; whether it changed.
fn dense_set(v: &mut [u8], i: usize, count: u8) -> bool {
    let regs = &mut v[HDR..];
    if dense_get(regs, i) < count {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

/// Calls `f` with each of the 16384 registers of a dense HLL, in order,
/// four registers (three bytes) at a time.
fn dense_each(v: &[u8], mut f: impl FnMut(usize, u8)) {
    for (k, b) in v[HDR..DENSE_SIZE].chunks_exact(3).enumerate() {
        let i = k * 4;
        f(i, b[0] & REG_MAX);
        f(i + 1, (b[0] >> 6 | b[1] << 2) & REG_MAX);
        f(i + 2, (b[1] >> 4 | b[2] << 4) & REG_MAX);
        f(i + 3, b[2] >> 2);
    }
}

// ---- sparse opcodes ----

#[derive(Clone, Copy)]
enum Op {
    Zero(usize),
    Val(u8, usize),
}

/// The opcode at `p` (which must be inside `v`), and its size in bytes.
fn op_at(v: &[u8], p: usize) -> (Op, usize) {
    let b = v[p];
    if b & 0x80 != 0 {
        (Op::Val((b >> 2 & 0x1f) + 1, usize::from(b & 3) + 1), 1)
    } else if b & 0x40 != 0 {
        let low = v.get(p + 1).copied().unwrap_or(0);
        (
            Op::Zero((usize::from(b & 0x3f) << 8 | usize::from(low)) + 1),
            2,
        )
    } else {
        (Op::Zero(usize::from(b & 0x3f) + 1), 1)
    }
}

fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}

fn val_byte(value: u8, len: usize) -> u8 {
    0x80 | (value - 1) << 2 | (len - 1) as u8
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let n = len - 1;
    out.push(0x40 | (n >> 8) as u8);
    out.push(n as u8);
}

/// A run of `len` zero registers: ZERO when it fits, else XZERO.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

/// Walks the sparse opcodes with the index of each one's first register.
fn sparse_ops(v: &[u8]) -> impl Iterator<Item = (usize, Op)> + '_ {
    let mut p = HDR;
    let mut first = 0usize;
    std::iter::from_fn(move || {
        if p >= v.len() {
            return None;
        }
        let (op, size) = op_at(v, p);
        p += size;
        let at = first;
        first += match op {
            Op::Zero(n) | Op::Val(_, n) => n,
        };
        Some((at, op))
    })
}

/// The dense form of a sparse HLL (header copied, cache included), or
/// Corrupt when its opcodes do not cover exactly 16384 registers.
fn sparse_to_dense(v: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&v[..HDR]);
    d[4] = DENSE;
    sparse_runs(v, |regs, val| {
        for i in regs {
            dense_put(&mut d[HDR..], i, val);
        }
    })?;
    Ok(d)
}

/// Calls `f` with each run of registers a sparse HLL's opcodes set, and
/// the value they set; Corrupt when the opcodes run past, or stop short
/// of, 16384 registers.
fn sparse_runs(v: &[u8], mut f: impl FnMut(std::ops::Range<usize>, u8)) -> Result<(), Corrupt> {
    let mut end = 0;
    for (first, op) in sparse_ops(v) {
        match op {
            Op::Zero(n) => end = first + n,
            Op::Val(val, n) => {
                if first + n > REGISTERS {
                    return Err(Corrupt);
                }
                f(first..first + n, val);
                end = first + n;
            }
        }
    }
    if end != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// Converts a sparse HLL to dense in place; whether it was sparse.
pub fn to_dense(v: &mut Vec<u8>) -> Result<bool, Corrupt> {
    if !is_hll(v) {
        return Err(Corrupt);
    }
    if !is_sparse(v) {
        return Ok(false);
    }
    *v = sparse_to_dense(v)?;
    Ok(true)
}

/// Raises register `index` to `count` in a sparse HLL, rewriting the
/// opcode that covers it; promotes to dense when the value does not fit
/// a VAL opcode or the string would pass `max_bytes`.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Find the opcode covering `index` and the one before it.
    let (mut p, mut first, mut prev) = (HDR, 0usize, None);
    let mut found = None;
    while p < v.len() {
        let (op, size) = op_at(v, p);
        let span = match op {
            Op::Zero(n) | Op::Val(_, n) => n,
        };
        if index < first + span {
            found = Some((op, size, span));
            break;
        }
        prev = Some(p);
        p += size;
        first += span;
    }
    let Some((op, old_len, span)) = found else {
        return Err(Corrupt);
    };
    let last = first + span - 1;
    let mut seq: Vec<u8> = Vec::with_capacity(5);
    match op {
        Op::Val(cur, _) if cur >= count => return Ok(false),
        Op::Val(cur, _) => {
            if index != first {
                seq.push(val_byte(cur, index - first));
            }
            seq.push(val_byte(count, 1));
            if index != last {
                seq.push(val_byte(cur, last - index));
            }
        }
        Op::Zero(_) => {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_byte(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
    }
    if seq.len() > old_len && v.len() + seq.len() - old_len > max_bytes {
        return promote(v, index, count);
    }
    // An XZERO cut short by the end of the string counts its missing
    // byte in Redis's length arithmetic: the result is one byte shorter.
    let new_len = v.len() + seq.len() - old_len;
    v.splice(p..(p + old_len).min(v.len()), seq);
    v.truncate(new_len);
    merge_adjacent(v, prev.unwrap_or(HDR));
    invalidate(v);
    Ok(true)
}

/// After an edit, merges neighbouring VAL opcodes of one value whose runs
/// fit a single VAL, looking at up to five opcodes from `p` (the one
/// before the edit), as Redis does, so the bytes come out the same.
fn merge_adjacent(v: &mut Vec<u8>, mut p: usize) {
    let mut steps = 5;
    while p < v.len() && steps > 0 {
        steps -= 1;
        let b = v[p];
        if !is_val(b) {
            p += if b & 0x40 != 0 { 2 } else { 1 };
            continue;
        }
        if let Some(&next) = v.get(p + 1).filter(|&&n| is_val(n)) {
            // Same value bits, and the two run lengths fit one opcode.
            let (l1, l2) = (usize::from(b & 3) + 1, usize::from(next & 3) + 1);
            if b >> 2 == next >> 2 && l1 + l2 <= VAL_MAX_LEN {
                v[p] = b & !3 | (l1 + l2 - 1) as u8;
                v.remove(p + 1);
                // Try the merged opcode with the next one too.
                continue;
            }
        }
        p += 1;
    }
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(v)?;
    dense_set(v, index, count);
    invalidate(v);
    Ok(true)
}

/// Sets register `index` to at least `count` (PFMERGE's writes); whether
/// it changed. The caller checked [`is_hll`]. Leaves the cache alone on a
/// dense HLL (the caller invalidates once).
pub fn set_register(
    v: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Corrupt> {
    // The functions below index by the layout `is_hll` guarantees.
    if !is_hll(v) {
        return Err(Corrupt);
    }
    if is_sparse(v) {
        sparse_set(v, index, count, max_bytes)
    } else {
        Ok(dense_set(v, index, count))
    }
}

/// PFADD of one element; whether a register changed (the cache is then
/// invalid). The caller checked [`is_hll`].
pub fn add(v: &mut Vec<u8>, elem: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pattern(elem);
    let changed = set_register(v, index, count, max_bytes)?;
    if changed {
        invalidate(v);
    }
    Ok(changed)
}

/// Folds an HLL's registers into `max` (register-wise maximum).
pub fn merge_into(max: &mut [u8; REGISTERS], v: &[u8]) -> Result<(), Corrupt> {
    if !is_hll(v) {
        return Err(Corrupt);
    }
    if !is_sparse(v) {
        dense_each(v, |i, r| max[i] = max[i].max(r));
        return Ok(());
    }
    sparse_runs(v, |regs, val| {
        for m in &mut max[regs] {
            *m = (*m).max(val);
        }
    })
}

/// How many registers hold each value (dense registers can hold up to 63
/// when corrupted; values past Q+1 do not enter the estimate).
type Histogram = [u32; 64];

fn histogram(v: &[u8]) -> Result<Histogram, Corrupt> {
    if !is_hll(v) {
        return Err(Corrupt);
    }
    let mut h = [0u32; 64];
    if !is_sparse(v) {
        dense_each(v, |_, r| h[usize::from(r)] += 1);
        return Ok(h);
    }
    let mut total = 0usize;
    for (_, op) in sparse_ops(v) {
        let (val, n) = match op {
            Op::Zero(n) => (0, n),
            Op::Val(val, n) => (val, n),
        };
        h[usize::from(val)] = h[usize::from(val)].saturating_add(n as u32);
        total += n;
    }
    if total != REGISTERS {
        return Err(Corrupt);
    }
    Ok(h)
}

/// The cardinality of an HLL from its registers (ignoring the cache).
pub fn count(v: &[u8]) -> Result<u64, Corrupt> {
    Ok(estimate(&histogram(v)?))
}

/// The cardinality of raw registers (one byte each).
pub fn count_registers(regs: &[u8; REGISTERS]) -> u64 {
    let mut h = [0u32; 64];
    for &r in regs {
        h[usize::from(r & REG_MAX)] += 1;
    }
    estimate(&h)
}

/// Otmar Ertl's improved estimator ("New cardinality estimation
/// algorithms for HyperLogLog sketches", arXiv:1702.01284), the one Redis
/// uses since 5.0: alpha_inf * m^2 / (m*sigma(C0/m) + sum_k C_k 2^-k +
/// m*tau(1 - C_{q+1}/m) 2^-q), the sum in Horner form from k = q down.
/// The order of operations is Redis's, so estimates agree to the unit.
fn estimate(h: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(h[q + 1])) / m);
    for k in (1..=q).rev() {
        z += f64::from(h[k]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(h[0]) / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7; // 1 / (2 ln 2)
    (ALPHA_INF * m * m / z).round() as u64
}

/// sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1), summed until it stops moving.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// Every register of an HLL (PFDEBUG GETREG), dense or sparse.
pub fn registers(v: &[u8]) -> Result<Vec<u8>, Corrupt> {
    if !is_hll(v) {
        return Err(Corrupt);
    }
    let converted;
    let dense = if is_sparse(v) {
        converted = sparse_to_dense(v)?;
        &converted
    } else {
        v
    };
    let mut out = vec![0u8; REGISTERS];
    dense_each(dense, |i, r| out[i] = r);
    Ok(out)
}

/// PFDEBUG DECODE's text: `z:N` ZERO, `Z:N` XZERO, `v:VAL,N` VAL.
pub fn decode_sparse(v: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut p = HDR;
    while p < v.len() {
        let (op, size) = op_at(v, p);
        let _ = match op {
            Op::Val(val, n) => write!(s, "v:{val},{n} "),
            Op::Zero(n) if size == 2 => write!(s, "Z:{n} "),
            Op::Zero(n) => write!(s, "z:{n} "),
        };
        p += size;
    }
    s.truncate(s.trim_end_matches(' ').len());
    s
}

/// PFSELFTEST: every register written and read back through the dense
/// packing, then sparse and dense copies fed the same elements, counted
/// at checkpoints: they must agree, within six standard errors.
pub fn self_test() -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_SIZE - HDR];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut want = vec![0u8; REGISTERS];
    for (i, w) in want.iter_mut().enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *w = (x % 64) as u8;
        dense_put(&mut regs, i, *w);
    }
    for (i, &w) in want.iter().enumerate() {
        if dense_get(&regs, i) != w {
            return Err(format!("Register error at {i}"));
        }
    }
    let mut sparse = new_sparse();
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "dense conversion".to_string())?;
    let rel_err = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint = 1u64;
    for n in 1..=200_000u64 {
        let elem = n.to_le_bytes();
        let bad = |_| "corrupted while adding".to_string();
        add(&mut sparse, &elem, 3000).map_err(bad)?;
        add(&mut dense, &elem, usize::MAX).map_err(bad)?;
        if n != checkpoint {
            continue;
        }
        checkpoint = checkpoint * 3 / 2 + 1;
        let card = count(&sparse).map_err(|_| "sparse count".to_string())?;
        if count(&dense) != Ok(card) {
            return Err(format!("Sparse and dense disagree at {n}"));
        }
        let err = (card as f64 - n as f64).abs();
        if err > (6.0 * rel_err * n as f64).max(1.0) {
            return Err(format!("Too big error. card:{card} abserr:{err}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
