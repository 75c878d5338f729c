//! Replies that wait for their records: the connection side of group
//! commit.
//!
//! A reply waits until its record is written (`everysec`, `no`) or synced
//! (`always`). The connection first yields once, so every other
//! connection its worker has ready runs its command too; then the first
//! of them to hold the file writes (and syncs) all their records at once,
//! and the rest find theirs done (as Redis writes and syncs once per
//! event-loop pass, before replying).
//!
//! With `always` a connection that finds a sync running waits for its
//! wake-up rather than for the lock; if its record came too late for that
//! sync it leads the next one, which covers everything that arrived
//! meanwhile, from every worker. (Handing every sync to the AOF thread
//! instead cost a thread switch on each side of each sync: about 0.75x
//! Redis's throughput, against which see ARCHITECTURE.md.)

use super::{Aof, must_wait};

/// Waits until record `seq` is durable (see [`must_wait`]).
pub(super) async fn wait_durable(aof: &'static Aof, seq: u64) {
    tokio::task::yield_now().await;
    if !must_wait(seq) || aof.write_through(seq) {
        return;
    }
    loop {
        let notified = aof.durable.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !must_wait(seq) {
            return;
        }
        if aof.always() && aof.write_through(seq) {
            return;
        }
        notified.await;
    }
}
