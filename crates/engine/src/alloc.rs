//! Memory accounting: a global allocator wrapper that counts the bytes the
//! process holds, for INFO's `used_memory` and the `maxmemory` limit.
//!
//! Design decision: no shared cache line per allocation. Each thread adds
//! to its own counter and folds it into one global atomic only once its
//! drift passes [`FLUSH_BYTES`], so the global figure is exact to within
//! that much per thread. The counted size is the request rounded up to a
//! word (within a size class of what mimalloc really uses; Redis counts its
//! allocator's block size), worked out from the layout's size, which is the
//! same at allocation and at free, so the two always cancel.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// Drift a thread keeps to itself before folding it into the total.
pub const FLUSH_BYTES: i64 = 64 * 1024;

/// Bytes held, as folded in by every thread.
static USED: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// This thread's unfolded change. A plain `Cell` (no destructor), so
    /// touching it never allocates and never re-enters the allocator.
    static LOCAL: Cell<i64> = const { Cell::new(0) };
}

#[inline]
fn account(delta: i64) {
    // `try_with` fails only while the thread is being torn down; the change
    // then goes straight to the total.
    let folded = LOCAL.try_with(|c| {
        let v = c.get() + delta;
        if v.abs() >= FLUSH_BYTES {
            c.set(0);
            USED.fetch_add(v, Ordering::Relaxed);
        } else {
            c.set(v);
        }
    });
    if folded.is_err() {
        USED.fetch_add(delta, Ordering::Relaxed);
    }
}

/// Bytes currently allocated through the counting allocator: the folded
/// total plus this thread's own unfolded change (so a thread sees its own
/// frees at once, which eviction relies on).
#[inline]
pub fn used_memory() -> u64 {
    let local = LOCAL.try_with(Cell::get).unwrap_or(0);
    (USED.load(Ordering::Relaxed) + local).max(0) as u64
}

/// Folds this thread's change into the total now. Threads that end call
/// it, so their last drift is not lost.
pub fn flush_thread() {
    let _ = LOCAL.try_with(|c| {
        let v = c.replace(0);
        if v != 0 {
            USED.fetch_add(v, Ordering::Relaxed);
        }
    });
}

/// How many bytes an allocation really occupies.
pub trait BlockSize {
    /// # Safety
    /// `ptr` must be a live allocation of this allocator, of `requested`
    /// bytes.
    unsafe fn block_size(&self, ptr: *mut u8, requested: usize) -> usize;
}

impl BlockSize for std::alloc::System {
    #[inline]
    unsafe fn block_size(&self, _ptr: *mut u8, requested: usize) -> usize {
        requested
    }
}

impl BlockSize for mimalloc::MiMalloc {
    #[inline]
    unsafe fn block_size(&self, _ptr: *mut u8, requested: usize) -> usize {
        // mimalloc's small blocks come in 8-byte steps: the request rounded
        // up to a word is its block size within a size class, worked out
        // inline (asking mimalloc costs a call and, for the pointer, a walk
        // to its page's metadata, on every alloc and free).
        requested.next_multiple_of(8)
    }
}

/// Counts every allocation made through the allocator it wraps.
pub struct Counting<A>(pub A);

// SAFETY: every call is forwarded unchanged to the wrapped allocator; the
// counting only touches a thread-local cell and an atomic.
unsafe impl<A: GlobalAlloc + BlockSize> GlobalAlloc for Counting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed through; `p` is live.
        unsafe {
            let p = self.0.alloc(layout);
            if !p.is_null() {
                account(self.0.block_size(p, layout.size()) as i64);
            }
            p
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe {
            let p = self.0.alloc_zeroed(layout);
            if !p.is_null() {
                account(self.0.block_size(p, layout.size()) as i64);
            }
            p
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above; the size is read while `ptr` is still live.
        unsafe {
            let size = self.0.block_size(ptr, layout.size());
            self.0.dealloc(ptr, layout);
            account(-(size as i64));
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above; the old size is read before `ptr` may go.
        unsafe {
            let old = self.0.block_size(ptr, layout.size());
            let p = self.0.realloc(ptr, layout, new_size);
            if !p.is_null() {
                account(self.0.block_size(p, new_size) as i64 - old as i64);
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    static A: Counting<System> = Counting(System);

    /// Runs on a fresh thread so other tests' allocations (which do not go
    /// through `A`) and their flushes cannot disturb the local counter.
    fn on_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().unwrap();
    }

    fn local() -> i64 {
        LOCAL.with(Cell::get)
    }

    #[test]
    fn alloc_and_free_cancel_and_stay_thread_local_below_the_threshold() {
        on_thread(|| {
            let l = Layout::from_size_align(1000, 8).unwrap();
            let before = local();
            // SAFETY: a valid layout; freed with the same layout below.
            let p = unsafe { A.alloc(l) };
            assert_eq!(local() - before, 1000);
            // SAFETY: p came from A.alloc(l); grown then freed with its layout.
            let p = unsafe { A.realloc(p, l, 3000) };
            assert_eq!(local() - before, 3000);
            let l2 = Layout::from_size_align(3000, 8).unwrap();
            // SAFETY: as above.
            unsafe { A.dealloc(p, l2) };
            assert_eq!(local(), before);
        });
    }

    #[test]
    fn large_drift_folds_into_the_total() {
        on_thread(|| {
            flush_thread();
            let l = Layout::from_size_align(FLUSH_BYTES as usize * 2, 8).unwrap();
            // SAFETY: valid layout, freed below with it.
            let p = unsafe { A.alloc_zeroed(l) };
            assert_eq!(local(), 0, "a big allocation folds at once");
            assert!(used_memory() >= l.size() as u64);
            // SAFETY: p came from A with layout l.
            unsafe { A.dealloc(p, l) };
            assert_eq!(local(), 0);
        });
    }

    #[test]
    fn mimalloc_sizes_round_to_words_and_cancel() {
        static M: Counting<mimalloc::MiMalloc> = Counting(mimalloc::MiMalloc);
        on_thread(|| {
            let before = local();
            let l = Layout::from_size_align(100, 8).unwrap();
            // SAFETY: valid layouts; each block is freed with its layout.
            unsafe {
                let p = M.alloc(l);
                let counted = local() - before;
                assert!((100..=128).contains(&counted), "{counted}");
                let p = M.realloc(p, l, 5000);
                assert!(local() - before >= 5000);
                M.dealloc(p, Layout::from_size_align(5000, 8).unwrap());
                let big = Layout::from_size_align(4096, 4096).unwrap();
                let q = M.alloc_zeroed(big);
                M.dealloc(q, big);
            }
            assert_eq!(local(), before);
        });
    }

    #[test]
    fn flush_thread_moves_the_local_change() {
        on_thread(|| {
            let l = Layout::from_size_align(512, 8).unwrap();
            // SAFETY: valid layout; freed below.
            let p = unsafe { A.alloc(l) };
            assert_eq!(local(), 512);
            flush_thread();
            assert_eq!(local(), 0);
            // SAFETY: p came from A with layout l.
            unsafe { A.dealloc(p, l) };
            flush_thread();
        });
    }
}
