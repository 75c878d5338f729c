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
//! Waking a task from another thread costs an `eventfd` write per task, so
//! each worker thread has one relay task that the AOF thread wakes, and the
//! relay wakes the worker's own waiters locally: one cross-thread wake per
//! worker per sync instead of one per connection.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use super::{Aof, must_wait};

/// One worker thread's relay of "records became durable".
struct Relay {
    local: Notify,
    /// Cleared when the relay task is dropped (its runtime shut down); the
    /// next waiter on this thread starts a new one.
    alive: AtomicBool,
}

struct Alive(Arc<Relay>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
    }
}

thread_local! {
    static RELAY: RefCell<Option<Arc<Relay>>> = const { RefCell::new(None) };
}

/// This thread's relay, started on first use.
fn relay(aof: &'static Aof) -> Arc<Relay> {
    RELAY.with(|r| {
        let mut r = r.borrow_mut();
        if let Some(relay) = r.as_ref().filter(|x| x.alive.load(Ordering::Acquire)) {
            return relay.clone();
        }
        let relay = Arc::new(Relay {
            local: Notify::new(),
            alive: AtomicBool::new(true),
        });
        let guard = Alive(relay.clone());
        tokio::spawn(async move {
            let relay = &guard.0;
            loop {
                let durable = aof.durable.notified();
                tokio::pin!(durable);
                durable.as_mut().enable();
                // Everything that became durable before `enable` is
                // covered by this wake; anything later wakes `durable`.
                relay.local.notify_waiters();
                durable.await;
            }
        });
        *r = Some(relay.clone());
        relay
    })
}

/// Waits until record `seq` is durable (see [`must_wait`]).
pub(super) async fn wait_durable(aof: &'static Aof, seq: u64) {
    if !aof.always() {
        tokio::task::yield_now().await;
        if !must_wait(seq) || aof.write_through(seq) {
            return;
        }
    }
    let relay = relay(aof);
    loop {
        let notified = relay.local.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !must_wait(seq) {
            return;
        }
        notified.await;
    }
}
