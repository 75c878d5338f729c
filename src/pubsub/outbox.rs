//! A subscriber's outbox: encoded frames waiting for its connection to
//! write them, shared between publishers (any thread) and the connection.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::server::client::ClientInfo;

#[derive(Default)]
pub struct Outbox {
    buf: Mutex<Vec<u8>>,
    /// Bytes in `buf`, readable without the lock.
    len: AtomicUsize,
    wake: Notify,
    /// When the outbox first went over the soft limit (0: it is under it).
    soft_since_ms: AtomicI64,
    /// Disconnected for overrunning the limit: nothing more is kept.
    dropped: AtomicBool,
    /// Bytes of `buf` counted in the clients' memory total
    /// (`server::client_mem`): published frames, not a replica's stream.
    counted: AtomicUsize,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.uncount();
    }
}

impl Outbox {
    /// Bytes waiting.
    #[inline]
    pub fn pending(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Bytes the outbox's buffer holds allocated beyond what waits in it
    /// (its growth is by doubling): memory as much as the waiting bytes.
    pub fn spare(&self) -> usize {
        let buf = self.buf.lock();
        buf.capacity() - buf.len()
    }

    /// Resolves once something was appended since the last wake-up.
    pub async fn notified(&self) {
        self.wake.notified().await;
    }

    /// Moves every waiting byte to the end of `dst`.
    pub fn drain_into(&self, dst: &mut Vec<u8>) {
        let buf = self.buf.lock();
        self.move_out(buf, dst);
    }

    /// [`Outbox::drain_into`] only if every waiting byte fits in `dst`'s
    /// spare capacity, so that the move allocates nothing (a connection
    /// that counted that room first never holds uncounted memory); false,
    /// moving nothing, otherwise.
    pub fn drain_within(&self, dst: &mut Vec<u8>) -> bool {
        let buf = self.buf.lock();
        if buf.len() > dst.capacity() - dst.len() {
            return false;
        }
        self.move_out(buf, dst);
        true
    }

    fn move_out(&self, mut buf: parking_lot::MutexGuard<'_, Vec<u8>>, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&buf);
        buf.clear();
        // Emptied: an outbox is usually empty, and what it grew to is
        // client memory (counted towards maxmemory) until freed.
        if buf.capacity() > 16 * 1024 {
            *buf = Vec::new();
        }
        self.uncount();
        self.len.store(0, Ordering::Release);
        self.soft_since_ms.store(0, Ordering::Relaxed);
    }

    /// Frees what waits, for a client going away: nothing more is kept.
    pub fn discard(&self) {
        let mut buf = self.buf.lock();
        self.dropped.store(true, Ordering::Relaxed);
        *buf = Vec::new();
        self.uncount();
        self.len.store(0, Ordering::Release);
    }

    /// Moves every waiting byte into `dst` at `at` (before a reply written
    /// from `at` on: a client publishing to itself gets the message first,
    /// as Redis writes it).
    pub fn drain_before(&self, dst: &mut Vec<u8>, at: usize) {
        let tail = dst.split_off(at);
        self.drain_into(dst);
        dst.extend_from_slice(&tail);
    }

    /// Appends a frame for the connection itself (confirmations); no limit.
    pub fn write(&self, frame: &[u8]) {
        let mut buf = self.buf.lock();
        buf.extend_from_slice(frame);
        self.len.store(buf.len(), Ordering::Release);
    }

    /// Appends a published frame and wakes the connection. `limits` is the
    /// pubsub class's `[hard, soft, soft_seconds]`: past the hard limit, or
    /// past the soft one for longer than its seconds, the client is killed
    /// and its outbox emptied, as Redis closes such a client asynchronously.
    pub fn append(&self, owner: &ClientInfo, frame: &[u8], limits: [i64; 3], now_ms: i64) {
        if self.dropped.load(Ordering::Relaxed) {
            return;
        }
        let mut buf = self.buf.lock();
        buf.extend_from_slice(frame);
        let len = buf.len();
        if !owner.has_flag(crate::server::client::list_flags::REPLICA) {
            self.counted.fetch_add(frame.len(), Ordering::Relaxed);
            crate::server::client_mem::appended(frame.len());
        }
        self.len.store(len, Ordering::Release);
        if self.over_limit(len as i64, limits, now_ms) {
            self.drop_client(owner, buf);
        } else {
            drop(buf);
        }
        self.wake.notify_one();
    }

    /// The periodic check (Redis's client cron): a subscriber that stays
    /// over the soft limit past its seconds is cut off even when nothing
    /// more is published to it.
    pub fn enforce(&self, owner: &ClientInfo, limits: [i64; 3], now_ms: i64) {
        if self.pending() == 0 || self.dropped.load(Ordering::Relaxed) {
            return;
        }
        let buf = self.buf.lock();
        if self.over_limit(buf.len() as i64, limits, now_ms) {
            self.drop_client(owner, buf);
        }
    }

    fn drop_client(&self, owner: &ClientInfo, mut buf: parking_lot::MutexGuard<'_, Vec<u8>>) {
        self.dropped.store(true, Ordering::Relaxed);
        *buf = Vec::new();
        self.uncount();
        self.len.store(0, Ordering::Release);
        drop(buf);
        crate::warning!(
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            owner.id,
            owner.addr
        );
        owner.request_kill();
    }

    fn over_limit(&self, len: i64, [hard, soft, soft_secs]: [i64; 3], now_ms: i64) -> bool {
        if hard > 0 && len >= hard {
            return true;
        }
        if soft > 0 && len >= soft {
            let since = self.soft_since_ms.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_since_ms.store(now_ms, Ordering::Relaxed);
                return false;
            }
            return now_ms - since > soft_secs * 1000;
        }
        self.soft_since_ms.store(0, Ordering::Relaxed);
        false
    }

    /// Takes the counted bytes out of the clients' total (the buffer was
    /// emptied; called under its lock, or with the outbox going away).
    fn uncount(&self) {
        let n = self.counted.swap(0, Ordering::Relaxed);
        crate::server::client_mem::add(-(n as i64));
    }

    /// Whether the client was cut off for overrunning its limit.
    pub fn dropped(&self) -> bool {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use crate::server::client::ClientRegistry;

    fn client() -> std::sync::Arc<crate::server::client::ClientInfo> {
        let addr = "127.0.0.1:1".parse().unwrap();
        ClientRegistry::default().register(addr, addr, -1, 0)
    }

    #[test]
    fn hard_limit_drops_the_client_and_its_bytes() {
        let c = client();
        c.outbox.append(&c, &[0; 60], [100, 0, 0], 0);
        assert_eq!(c.outbox.pending(), 60);
        c.outbox.append(&c, &[0; 60], [100, 0, 0], 0);
        assert!(c.outbox.dropped());
        assert_eq!(c.outbox.pending(), 0);
        assert!(c.killed.load(std::sync::atomic::Ordering::Relaxed));
        c.outbox.append(&c, &[0; 10], [100, 0, 0], 0);
        assert_eq!(c.outbox.pending(), 0);
    }

    #[test]
    fn soft_limit_needs_its_seconds_and_resets_when_drained() {
        let c = client();
        let limits = [0, 50, 2];
        c.outbox.append(&c, &[0; 60], limits, 1_000);
        c.outbox.append(&c, &[0; 1], limits, 3_000);
        assert!(
            !c.outbox.dropped(),
            "exactly the soft seconds is still allowed"
        );
        c.outbox.drain_into(&mut Vec::new());
        c.outbox.append(&c, &[0; 60], limits, 3_500);
        c.outbox.append(&c, &[0; 1], limits, 5_000);
        assert!(!c.outbox.dropped(), "the clock restarted after the drain");
        c.outbox.append(&c, &[0; 1], limits, 5_501);
        assert!(c.outbox.dropped());
    }
}
