//! A cheap stopwatch for the duration of every command.
//!
//! Each command is timed (INFO commandstats, the slow log, latency
//! tracking): two clock reads per command. Through `clock_gettime` those
//! took 5.6% of the server's time at 16-deep pipelines (LPUSH, measured
//! with `perf`). On x86-64 with an invariant time-stamp counter
//! (`constant_tsc` and `nonstop_tsc`: one rate on every core, running in
//! every power state) a stopwatch reads the counter instead, and converts
//! ticks to time with a rate measured against the monotonic clock.
//!
//! Design decision: the rate is measured by [`calibrate`], called by the
//! server's periodic thread; it averages over everything since the first
//! call, so it sharpens with time. Until the first rate is known (the first
//! 50 ms), and on machines without such a counter, a stopwatch reads the
//! monotonic clock. A stopwatch started before the rate was known keeps
//! reading the clock, so no duration mixes the two.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Nanoseconds per tick, in 32.32 fixed point; 0 while unknown.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);
/// The clock and the counter read together at the first calibration, or
/// `None` where there is no usable counter.
static BASE: OnceLock<Option<(Instant, u64)>> = OnceLock::new();
/// The shortest span a rate is measured over.
const MIN_SPAN: Duration = Duration::from_millis(50);

/// A started stopwatch.
#[derive(Clone, Copy)]
pub struct Stopwatch {
    ticks: u64,
    /// Set when the rate was not known at the start.
    clock: Option<Instant>,
}

impl Stopwatch {
    #[inline]
    pub fn start() -> Stopwatch {
        let rate = NS_PER_TICK.load(Relaxed);
        if rate == 0 {
            return Stopwatch {
                ticks: 0,
                clock: Some(Instant::now()),
            };
        }
        Stopwatch {
            ticks: ticks(),
            clock: None,
        }
    }

    /// Whole microseconds since the start.
    #[inline]
    pub fn elapsed_us(&self) -> u64 {
        match self.clock {
            Some(at) => at.elapsed().as_micros() as u64,
            None => {
                let spent = ticks().saturating_sub(self.ticks) as u128;
                let ns = (spent * NS_PER_TICK.load(Relaxed) as u128) >> 32;
                (ns / 1000) as u64
            }
        }
    }
}

/// Measures the counter's rate against the monotonic clock (see the
/// module doc); call it now and then, from any one thread.
pub fn calibrate() {
    let Some((at, first)) =
        *BASE.get_or_init(|| invariant_counter().then(|| (Instant::now(), ticks())))
    else {
        return;
    };
    let span = at.elapsed();
    let spent = ticks().saturating_sub(first);
    if span < MIN_SPAN || spent == 0 {
        return;
    }
    let rate = ((span.as_nanos() << 32) / spent as u128).min(u64::MAX as u128) as u64;
    NS_PER_TICK.store(rate.max(1), Relaxed);
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn ticks() -> u64 {
    // SAFETY: RDTSC is part of x86-64; it reads a counter and has no
    // other effect.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn ticks() -> u64 {
    0
}

/// Whether the CPU's time-stamp counter ticks at one rate on every core and
/// in every power state (Linux lists both flags in /proc/cpuinfo).
fn invariant_counter() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    info.lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|flags| {
            let has = |w: &str| flags.split_whitespace().any(|f| f == w);
            has("constant_tsc") && has("nonstop_tsc")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_same_time_as_the_clock() {
        calibrate();
        std::thread::sleep(MIN_SPAN + Duration::from_millis(10));
        // A thread preempted between two of the reads below skews one try
        // on a loaded machine: a wrong rate fails every try.
        let mut tries = Vec::new();
        for _ in 0..5 {
            calibrate();
            let clock = Instant::now();
            let watch = Stopwatch::start();
            std::thread::sleep(Duration::from_millis(30));
            let (by_watch, by_clock) = (watch.elapsed_us(), clock.elapsed().as_micros() as u64);
            if invariant_counter() {
                assert!(watch.clock.is_none(), "the counter was used");
            }
            // Within 5%.
            if by_watch.abs_diff(by_clock) * 20 <= by_clock {
                return;
            }
            tries.push((by_watch, by_clock));
        }
        panic!("stopwatch and clock (us) disagree: {tries:?}");
    }

    #[test]
    fn a_stopwatch_started_on_the_clock_stays_on_it() {
        let watch = Stopwatch {
            ticks: 0,
            clock: Some(Instant::now()),
        };
        std::thread::sleep(Duration::from_millis(2));
        assert!(watch.elapsed_us() >= 2000);
    }
}
