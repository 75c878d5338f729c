//! The software watchdog (`watchdog-period`, Redis's debugging aid): when a
//! thread that serves clients has been busy on one task for longer than the
//! period (a command on a worker, a job on the script thread, a replica's
//! blocking load), the log gets Redis's `WATCHDOG TIMER EXPIRED` report
//! with that thread's stack trace, and the thread goes on.
//!
//! Such a thread marks each task with [`busy`], a guard that bumps the
//! thread's sequence number when the task starts and when it ends (odd
//! while busy; a task inside another is not marked again). With the period
//! 0 that is one relaxed load, and no monitor thread exists. Otherwise a
//! monitor thread (`ferrokv-watchdog`) looks at every marked thread four
//! times a period; one it has seen busy on the same task for a whole period
//! gets SIGALRM (`pthread_kill`), and the handler writes the report from
//! that thread's own stack (`crash::watchdog_report`, async-signal-safe).
//! So a task is reported once, after between one and one and a quarter
//! periods (Redis re-arms its timer between event-loop passes), and one
//! shorter than the period never is.
//!
//! The handler is installed with SA_RESTART; what a signal interrupts
//! anyway (socket reads with a timeout, sleeps) is retried: std's `sleep`,
//! `write_all` and `read_exact` do, and so do the replica's reads
//! (`server::replica::Conn::fill`).

use std::os::raw::{c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Whether tasks are marked (`watchdog-period` > 0).
static ON: AtomicBool = AtomicBool::new(false);
/// The period in milliseconds (0: off).
static PERIOD_MS: AtomicU64 = AtomicU64::new(0);
/// The threads that marked a task since the watchdog was first on; each
/// leaves when it ends (`Registered`).
static THREADS: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());
/// Whether the monitor thread runs; `WAKE` tells it the period changed.
static MONITOR: Mutex<bool> = Mutex::new(false);
static WAKE: Condvar = Condvar::new();
/// Set by the monitor before it signals a thread, cleared by the handler
/// once the report is written: reports never interleave, and a SIGALRM
/// nobody asked for writes nothing.
static ASKED: AtomicBool = AtomicBool::new(false);
static INSTALL: std::sync::Once = std::sync::Once::new();

/// One marked thread.
struct Slot {
    thread: libc::pthread_t,
    /// Odd while the thread is busy; written only by that thread.
    seq: AtomicU64,
}

/// This thread's entry in [`THREADS`], made on its first task marked
/// while the watchdog is on, removed when the thread ends (so the monitor
/// only signals threads that exist: it signals under the same lock).
struct Registered(Arc<Slot>);

impl Drop for Registered {
    fn drop(&mut self) {
        THREADS.lock().retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

thread_local! {
    static MINE: Registered = {
        let slot = Arc::new(Slot {
            // SAFETY: pthread_self has no preconditions.
            thread: unsafe { libc::pthread_self() },
            seq: AtomicU64::new(0),
        });
        THREADS.lock().push(slot.clone());
        Registered(slot)
    };
}

/// A task in progress on this thread (see [`busy`]); it ends when the
/// guard drops. Not `Send`: it is dropped on the thread that made it.
pub struct Busy(*const Slot);

/// Marks this thread busy on one task until the guard drops. Costs one
/// relaxed load while the watchdog is off. Never hold it across an
/// `.await`: the thread runs other tasks meanwhile.
#[inline]
pub fn busy() -> Busy {
    if !ON.load(Ordering::Relaxed) {
        return Busy(std::ptr::null());
    }
    begin()
}

#[cold]
#[inline(never)]
fn begin() -> Busy {
    let slot = MINE.try_with(|r| {
        let seq = r.0.seq.load(Ordering::Relaxed);
        if seq & 1 == 1 {
            // Inside a task already marked: that one goes on.
            return std::ptr::null();
        }
        r.0.seq.store(seq + 1, Ordering::Relaxed);
        Arc::as_ptr(&r.0)
    });
    Busy(slot.unwrap_or(std::ptr::null()))
}

impl Drop for Busy {
    #[inline]
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the slot is this thread's (`MINE` keeps it until the
            // thread ends) and the guard did not leave the thread.
            let slot = unsafe { &*self.0 };
            slot.seq
                .store(slot.seq.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }
}

/// While the guard lives, the task this thread is busy on counts as idle
/// (a script debugger waiting for its user is not stuck); it is busy again,
/// its time counted afresh, once the guard drops.
pub struct Idle(*const Slot);

/// Marks the current task idle until the guard drops (nothing while the
/// watchdog is off or no task is marked).
pub fn idle() -> Idle {
    if !ON.load(Ordering::Relaxed) {
        return Idle(std::ptr::null());
    }
    let slot = MINE.try_with(|r| {
        let seq = r.0.seq.load(Ordering::Relaxed);
        if seq & 1 == 0 {
            return std::ptr::null();
        }
        r.0.seq.store(seq + 1, Ordering::Relaxed);
        Arc::as_ptr(&r.0)
    });
    Idle(slot.unwrap_or(std::ptr::null()))
}

impl Drop for Idle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: as `Busy`'s: this thread's slot, kept until it ends.
            let slot = unsafe { &*self.0 };
            slot.seq
                .store(slot.seq.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }
}

/// The period a nonzero `watchdog-period` is raised to, as Redis does
/// when it applies it: at least two cron intervals (`1000 / hz` ms each).
pub fn raised(period: i64, hz: i64) -> i64 {
    if period <= 0 {
        return period;
    }
    period.max(1000 / hz.max(1) * 2)
}

/// Applies `watchdog-period` (already [`raised`]): starts the monitor
/// thread, gives it the new period, or stops it with 0.
pub fn configure(period_ms: i64) {
    let period = period_ms.max(0) as u64;
    PERIOD_MS.store(period, Ordering::Relaxed);
    ON.store(period > 0, Ordering::Relaxed);
    if period > 0 {
        INSTALL.call_once(install);
    }
    let mut running = MONITOR.lock();
    if period > 0 && !*running {
        let spawned = std::thread::Builder::new()
            .name("ferrokv-watchdog".into())
            .spawn(monitor);
        match spawned {
            Ok(_) => *running = true,
            Err(e) => crate::warning!("Can't start the watchdog thread: {e}"),
        }
    }
    // Under the lock: the monitor is either waiting or has not looked at
    // the period yet.
    WAKE.notify_all();
}

fn install() {
    // SAFETY: a zeroed sigaction is a valid start; the handler has the
    // SA_SIGINFO signature.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
    }
}

extern "C" fn on_alarm(_sig: c_int, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // The interrupted code may be about to read errno: keep it.
    // SAFETY: errno is this thread's own.
    let errno = unsafe { *libc::__errno_location() };
    if ASKED.load(Ordering::Acquire) {
        if ON.load(Ordering::Relaxed) {
            crate::crash::watchdog_report(ctx);
        }
        ASKED.store(false, Ordering::Release);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// What the monitor last saw of one thread.
struct Seen {
    slot: Arc<Slot>,
    seq: u64,
    since: Instant,
    reported: bool,
}

fn monitor() {
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        let period = {
            let mut running = MONITOR.lock();
            let period = PERIOD_MS.load(Ordering::Relaxed);
            if period == 0 {
                *running = false;
                return;
            }
            WAKE.wait_for(&mut running, Duration::from_millis((period / 4).max(1)));
            let period = PERIOD_MS.load(Ordering::Relaxed);
            if period == 0 {
                *running = false;
                return;
            }
            period
        };
        scan(&mut seen, Duration::from_millis(period));
    }
}

/// Looks at every marked thread; signals those busy on one task for
/// `period` and not reported yet.
fn scan(seen: &mut Vec<Seen>, period: Duration) {
    let now = Instant::now();
    let threads = THREADS.lock().clone();
    seen.retain(|s| threads.iter().any(|t| Arc::ptr_eq(t, &s.slot)));
    for t in &threads {
        let seq = t.seq.load(Ordering::Relaxed);
        match seen.iter_mut().find(|s| Arc::ptr_eq(&s.slot, t)) {
            Some(s) if s.seq == seq => {
                if seq & 1 == 1 && !s.reported && now.duration_since(s.since) >= period {
                    s.reported = true;
                    report(t);
                }
            }
            Some(s) => {
                s.seq = seq;
                s.since = now;
                s.reported = false;
            }
            None => seen.push(Seen {
                slot: t.clone(),
                seq,
                since: now,
                reported: false,
            }),
        }
    }
}

/// Has the thread write its report, and waits (2 s at most) until it has.
fn report(slot: &Arc<Slot>) {
    {
        let threads = THREADS.lock();
        if !threads.iter().any(|t| Arc::ptr_eq(t, slot)) {
            return; // it ended meanwhile
        }
        ASKED.store(true, Ordering::Release);
        // SAFETY: the thread is registered, so it has not ended: its entry
        // leaves (under this lock) before it does.
        if unsafe { libc::pthread_kill(slot.thread, libc::SIGALRM) } != 0 {
            ASKED.store(false, Ordering::Release);
            return;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while ASKED.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    ASKED.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_to_two_cron_intervals() {
        assert_eq!(raised(0, 10), 0);
        assert_eq!(raised(10, 10), 200);
        assert_eq!(raised(10, 100), 20);
        assert_eq!(raised(1, 500), 4);
        assert_eq!(raised(1, 3), 666);
        assert_eq!(raised(700, 3), 700);
    }

    #[test]
    fn a_task_is_marked_once_and_nested_ones_are_not() {
        // Off: nothing marked.
        assert!(busy().0.is_null());
        ON.store(true, Ordering::Relaxed);
        let outer = busy();
        assert!(!outer.0.is_null());
        let seq = MINE.with(|r| r.0.seq.load(Ordering::Relaxed));
        assert_eq!(seq & 1, 1);
        assert!(busy().0.is_null(), "a nested task is not marked");
        drop(outer);
        let after = MINE.with(|r| r.0.seq.load(Ordering::Relaxed));
        assert_eq!(after, seq + 1);
        ON.store(false, Ordering::Relaxed);
    }
}
