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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

/// Drift a thread keeps to itself before folding it into the total.
pub const FLUSH_BYTES: i64 = 64 * 1024;

/// Bytes held, as folded in by every thread: the cheap figure
/// ([`used_memory`]), off by up to [`FLUSH_BYTES`] per other thread.
static USED: AtomicI64 = AtomicI64::new(0);

/// Threads that can have a slot at once; later ones count in [`RETIRED`].
const SLOTS: usize = 256;

/// One thread's net allocation since it took the slot, readable by every
/// thread for the exact figure ([`exact_used_memory`]). Only its owner
/// writes it (a plain load and store: no read-modify-write), on a cache
/// line of its own.
#[repr(align(128))]
struct Slot {
    net: AtomicI64,
    owned: AtomicBool,
}

static SLOT: [Slot; SLOTS] = [const {
    Slot {
        net: AtomicI64::new(0),
        owned: AtomicBool::new(false),
    }
}; SLOTS];
/// Slots ever taken: the exact figure sums these.
static TAKEN: AtomicUsize = AtomicUsize::new(0);
/// The net of slots given back, and of threads that found none.
static RETIRED: AtomicI64 = AtomicI64::new(0);

/// No slot taken yet.
const NO_SLOT: usize = usize::MAX;
/// None was free: this thread counts straight into the totals.
const NO_ROOM: usize = usize::MAX - 1;

/// A thread's accounting state. Plain `Cell`s (no destructor), so touching
/// it never allocates and never re-enters the allocator.
struct Local {
    slot: Cell<usize>,
    /// The slot's `net` when this thread last folded into [`USED`].
    folded: Cell<i64>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            slot: Cell::new(NO_SLOT),
            folded: Cell::new(0),
        }
    };
}

/// Takes a free slot (a released one comes back with `net` 0).
#[cold]
fn claim() -> usize {
    for (i, s) in SLOT.iter().enumerate() {
        if !s.owned.load(Ordering::Relaxed)
            && s.owned
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            TAKEN.fetch_max(i + 1, Ordering::Release);
            return i;
        }
    }
    NO_ROOM
}

#[inline]
fn account(delta: i64) {
    // `try_with` fails only while the thread is being torn down; the change
    // then goes straight to the totals.
    let counted = LOCAL.try_with(|l| {
        let mut i = l.slot.get();
        if i >= NO_ROOM {
            if i == NO_SLOT {
                i = claim();
                l.slot.set(i);
                l.folded.set(0);
            }
            if i == NO_ROOM {
                return false;
            }
        }
        let slot = &SLOT[i];
        let net = slot.net.load(Ordering::Relaxed) + delta;
        slot.net.store(net, Ordering::Relaxed);
        let drift = net - l.folded.get();
        if drift.abs() >= FLUSH_BYTES {
            l.folded.set(net);
            USED.fetch_add(drift, Ordering::Relaxed);
        }
        true
    });
    if counted != Ok(true) {
        USED.fetch_add(delta, Ordering::Relaxed);
        RETIRED.fetch_add(delta, Ordering::Relaxed);
    }
}

/// This thread's change not yet folded into [`USED`].
#[inline]
fn own_drift() -> i64 {
    LOCAL
        .try_with(|l| match l.slot.get() {
            i if i < SLOTS => SLOT[i].net.load(Ordering::Relaxed) - l.folded.get(),
            _ => 0,
        })
        .unwrap_or(0)
}

/// Bytes currently allocated through the counting allocator: the folded
/// total plus this thread's own unfolded change (so a thread sees its own
/// frees at once, which eviction relies on). Other threads' unfolded
/// change (up to [`FLUSH_BYTES`] each) is not in it: see
/// [`exact_used_memory`].
#[inline]
pub fn used_memory() -> u64 {
    (USED.load(Ordering::Relaxed) + own_drift()).max(0) as u64
}

/// Every thread's change, unfolded parts included: what INFO reports and
/// what key eviction confirms a limit against (a thread that frees what
/// another allocated holds up to [`FLUSH_BYTES`] of frees unfolded, which
/// the cheap figure misses). Reads one cache line per thread.
pub fn exact_used_memory() -> u64 {
    let n = TAKEN.load(Ordering::Acquire).min(SLOTS);
    let slots: i64 = SLOT[..n]
        .iter()
        .map(|s| s.net.load(Ordering::Relaxed))
        .sum();
    (RETIRED.load(Ordering::Relaxed) + slots).max(0) as u64
}

/// Used memory as exact as a comparison with `limit` needs: the cheap
/// figure while even its worst error (every thread's unfolded change)
/// keeps it under `limit`, the exact one near or over it (what key
/// eviction compares with `maxmemory`: within a few KiB, as Redis's is).
pub fn used_memory_near(limit: u64) -> u64 {
    let cheap = used_memory();
    let worst = TAKEN.load(Ordering::Relaxed) as u64 * FLUSH_BYTES as u64;
    if cheap.saturating_add(worst) <= limit {
        cheap
    } else {
        exact_used_memory()
    }
}

/// Runs `f`, the body of a thread that ends, then [`flush_thread`].
pub fn counted<T>(f: impl FnOnce() -> T) -> T {
    let r = f();
    flush_thread();
    r
}

/// Folds this thread's change into the total now and gives its slot back.
/// Threads that end call it, so their slot serves a later thread (one that
/// does not keeps its slot, still counted).
pub fn flush_thread() {
    let _ = LOCAL.try_with(|l| {
        let i = l.slot.replace(NO_SLOT);
        if i < SLOTS {
            let slot = &SLOT[i];
            let net = slot.net.swap(0, Ordering::Relaxed);
            USED.fetch_add(net - l.folded.replace(0), Ordering::Relaxed);
            RETIRED.fetch_add(net, Ordering::Relaxed);
            slot.owned.store(false, Ordering::Release);
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
        own_drift()
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
    fn the_exact_figure_sees_other_threads_unfolded_change() {
        // A thread frees what another allocated and keeps the frees
        // unfolded: the cheap figure of a third thread misses them, the
        // exact one does not (other tests allocate meanwhile: retried).
        let l = Layout::from_size_align(40 * 1024, 8).unwrap();
        for _ in 0..50 {
            // SAFETY: a valid layout; freed with it on the other thread.
            let p = unsafe { A.alloc(l) } as usize;
            flush_thread();
            let (before_cheap, before_exact) = (used_memory(), exact_used_memory());
            std::thread::spawn(move || {
                // SAFETY: p came from A with layout l.
                unsafe { A.dealloc(p as *mut u8, l) };
                assert_eq!(local(), -(l.size() as i64), "kept unfolded");
            })
            .join()
            .unwrap();
            let cheap = before_cheap as i64 - used_memory() as i64;
            let exact = before_exact as i64 - exact_used_memory() as i64;
            if cheap == 0 && exact == l.size() as i64 {
                return;
            }
        }
        panic!("the exact figure never saw the other thread's free");
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
