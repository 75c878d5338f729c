//! LZF: decompress(compress(x)) == x within the output bound given, and
//! arbitrary input with an arbitrary claimed length is refused or expands
//! to exactly that length, never allocating more than the input could
//! expand to (a forged length in a payload must not reserve gigabytes).
//!
//! Input: byte 0 picks the mode; mode 0: 8 bytes of claimed length (little
//! endian), then compressed data; mode 1: data to compress, with byte 1
//! shrinking the output bound.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrokv::util::lzf;
use libfuzzer_sys::fuzz_target;

/// Records the largest single allocation, to bound what a decoder reserves.
struct Peak;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Peak = Peak;

/// A back reference of 264 bytes costs 3 input bytes.
const MAX_EXPANSION: usize = 88;

fuzz_target!(|input: &[u8]| {
    let [mode, rest @ ..] = input else {
        return;
    };
    if mode & 1 == 0 {
        let Some((len, data)) = rest.split_first_chunk::<8>() else {
            return;
        };
        // Small claimed lengths matter most: mix in a mask from the mode.
        let mut claimed = u64::from_le_bytes(*len);
        if mode & 2 == 0 {
            claimed &= 0xffff;
        }
        let claimed = claimed as usize;
        LARGEST.store(0, Ordering::Relaxed);
        let out = lzf::decompress(data, claimed);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= data.len() * MAX_EXPANSION + 64,
            "claimed {claimed}: allocated {largest} for {} input bytes",
            data.len()
        );
        if let Some(out) = out {
            assert_eq!(out.len(), claimed);
        }
    } else {
        let Some((&shrink, data)) = rest.split_first() else {
            return;
        };
        let max_out = data.len().saturating_sub(shrink as usize % 8);
        if let Some(c) = lzf::compress(data, max_out) {
            assert!(c.len() <= max_out, "{} > {max_out}", c.len());
            assert_eq!(lzf::decompress(&c, data.len()).as_deref(), Some(data));
        }
        // Room for liblzf's worst case (LZF_MAX_COMPRESSED_SIZE) and some
        // slack for its conservative checks: it always fits.
        let roomy = ((data.len() * 33) >> 5) + 1 + 8;
        if data.len() >= 3 {
            let c = lzf::compress(data, roomy).expect("fits in the worst-case bound");
            assert_eq!(lzf::decompress(&c, data.len()).as_deref(), Some(data));
        }
    }
});
