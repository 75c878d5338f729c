//! Each client's reply buffer size, adapted as Redis 7.0 adapts its own
//! (CLIENT LIST `rbs` and `rbp`): from 16 KiB it shrinks towards 1 KiB for
//! a client whose replies stay small, and grows back by doubling (up to
//! 16 KiB) for one that fills it. The cron applies the policy to every
//! client from the peak it saw since the last reset; the connection keeps
//! its buffer's capacity at the size after each write of its replies (a
//! buffer still bigger than the size of an idle client is cut at its next
//! reply). Thousands of idle connections then cost 1 KiB each, not 16.
//!
//! DEBUG REPLYBUFFER RESIZING <0|1> and PEAK-RESET-TIME <ms|never|reset>
//! are the test suite's knobs.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use super::Server;

/// The smallest size (Redis's PROTO_REPLY_MIN_BYTES).
pub const MIN: usize = 1024;
/// The largest size, and the starting one (PROTO_REPLY_CHUNK_BYTES).
pub const MAX: usize = 16 * 1024;
/// How often a client's peak starts over, by default (ms).
const PEAK_RESET_MS: i64 = 5000;

static RESIZING: AtomicBool = AtomicBool::new(true);
/// Milliseconds between peak resets; negative: never.
static PEAK_RESET: AtomicI64 = AtomicI64::new(PEAK_RESET_MS);

/// DEBUG REPLYBUFFER RESIZING.
pub fn set_resizing(on: bool) {
    RESIZING.store(on, Ordering::Relaxed);
}

/// DEBUG REPLYBUFFER PEAK-RESET-TIME: `Some(ms)`, `None` for never.
pub fn set_peak_reset(ms: Option<i64>) {
    PEAK_RESET.store(ms.unwrap_or(-1), Ordering::Relaxed);
}

/// DEBUG REPLYBUFFER PEAK-RESET-TIME RESET.
pub fn default_peak_reset() {
    PEAK_RESET.store(PEAK_RESET_MS, Ordering::Relaxed);
}

/// One client's figures.
#[derive(Debug)]
pub struct ReplyBuf {
    size: AtomicUsize,
    /// Most reply bytes one write carried since the last reset.
    peak: AtomicUsize,
    reset_at_ms: AtomicI64,
}

impl Default for ReplyBuf {
    fn default() -> ReplyBuf {
        ReplyBuf {
            size: AtomicUsize::new(MAX),
            peak: AtomicUsize::new(0),
            reset_at_ms: AtomicI64::new(0),
        }
    }
}

impl ReplyBuf {
    /// The connection is about to write `bytes` of replies.
    #[inline]
    pub fn note(&self, bytes: usize) {
        if bytes > self.peak.load(Ordering::Relaxed) {
            self.peak.store(bytes, Ordering::Relaxed);
        }
    }

    /// The capacity the connection keeps (`rbs`).
    #[inline]
    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// The peak as Redis shows it (`rbp`): at most the buffer's size,
    /// what did not fit having gone to its reply list.
    pub fn shown_peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed).min(self.size())
    }

    /// One cron visit: shrink when the peak used under half of the size,
    /// double when it filled it; then start the peak over if its time came.
    fn visit(&self, now_ms: i64) {
        let size = self.size();
        let peak = self.shown_peak();
        if RESIZING.load(Ordering::Relaxed) {
            let new = if peak < size / 2 && size > MIN {
                Some((peak + 1).max(MIN))
            } else if size < MAX && peak >= size {
                Some((size * 2).min(MAX))
            } else {
                None
            };
            if let Some(n) = new {
                self.size.store(n, Ordering::Relaxed);
            }
        }
        let every = PEAK_RESET.load(Ordering::Relaxed);
        let since = self.reset_at_ms.load(Ordering::Relaxed);
        if every >= 0 && now_ms - since >= every {
            self.peak.store(0, Ordering::Relaxed);
            self.reset_at_ms.store(now_ms, Ordering::Relaxed);
        }
    }
}

/// The cron's pass over every client.
pub fn cron(srv: &Server, now_ms: i64) {
    for info in srv.clients.snapshot() {
        info.reply_buf.visit(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_replies_shrink_and_full_buffers_double() {
        let b = ReplyBuf::default();
        b.note(5);
        b.visit(0);
        assert_eq!(b.size(), MIN);
        // A big reply fills whatever the size is: doubling up to 16 KiB.
        let mut sizes = Vec::new();
        for t in 1..8 {
            b.note(40_000);
            b.visit(t);
            sizes.push(b.size());
        }
        assert_eq!(&sizes[..5], &[2048, 4096, 8192, MAX, MAX]);
        assert_eq!(b.shown_peak(), MAX);
    }
}
