//! Replies that wait for their records: the connection side of group
//! commit.
//!
//! With `everysec` and `no` a reply waits until its record is written. The
//! connection first yields once, so every other connection its worker has
//! ready runs its command too; then the first of them to hold the file
//! writes all their records with one `write`, and the rest find theirs
//! written (as Redis writes once per event-loop pass, before replying).
//!
//! With `always` the AOF thread writes and syncs, then wakes the waiters.
//! (A per-worker relay of that wake-up, one cross-thread wake per worker
//! instead of one per waiting connection, was measured slower: the extra
//! hop delayed every reply of the batch, 0.65-0.77x Redis against
//! 1.2-1.3x that without it.)

use super::{Aof, must_wait};

/// Waits until record `seq` is durable (see [`must_wait`]).
pub(super) async fn wait_durable(aof: &'static Aof, seq: u64) {
    if !aof.always() {
        tokio::task::yield_now().await;
        if !must_wait(seq) || aof.write_through(seq) {
            return;
        }
    }
    loop {
        let notified = aof.durable.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !must_wait(seq) {
            return;
        }
        notified.await;
    }
}
