//! A small non-cryptographic generator (RANDOMKEY, run ids, sampling).

use std::cell::Cell;

/// A seed from the clock, the thread and a counter.
pub fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = t
        ^ N.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        ^ (std::process::id() as u64) << 32;
    next(&mut x)
}

/// splitmix64.
pub fn next(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// A random u64 from this thread's generator.
pub fn u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        let v = next(&mut x);
        s.set(x);
        v
    })
}
