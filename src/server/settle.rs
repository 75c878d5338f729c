//! Cross-connection ordering for commands that look at other connections
//! (`cmd::flags::SETTLES`: CLIENT LIST, CLIENT KILL, INFO).
//!
//! Redis serves its clients one at a time, in the order their input
//! arrived: when a client's bytes reached the server before another
//! client's CLIENT LIST, the first client's command has run (and, say,
//! closed it for its output buffer limit, or evicted it for
//! `maxmemory-clients`) by the time CLIENT LIST looks. Here each worker
//! serves its own connections, so the worker holding the first client may
//! not have read its bytes yet. [`settle`] closes that gap: it returns once
//! every worker has polled its sockets and run the connections that had
//! input, so whatever had arrived before the command was read has run.
//!
//! Design decision: a marker task per worker. A task spawned on a worker
//! that yields is woken only after the worker's next poll of its sockets
//! (tokio's `yield_now` defers the wake until the driver was polled), and
//! behind the tasks that poll woke; it yields twice, so a connection that
//! ran out of its cooperative budget in the first round runs again first.
//! The command's own connection just waits (without blocking its worker).
//! Only the commands above pay for it, once each; nothing else changes.

use std::sync::{Arc, OnceLock};

use super::stats::ThreadStats;

type Workers = &'static [(tokio::runtime::Handle, Arc<ThreadStats>)];

/// The worker runtimes, once started.
static WORKERS: OnceLock<Workers> = OnceLock::new();

/// Called once the workers run.
pub fn init(workers: Workers) {
    let _ = WORKERS.set(workers);
}

/// Returns once every worker has run the input its connections had when
/// this was called (see the module doc). Without workers (tests run
/// commands in-process) there is nothing to wait for.
pub async fn settle() {
    let Some(workers) = WORKERS.get() else {
        return;
    };
    let mut marks = Vec::with_capacity(workers.len());
    for (rt, _) in workers.iter() {
        let (done, mark) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            let _ = done.send(());
        });
        marks.push(mark);
    }
    // A worker shutting down drops its marker: nothing to wait for there.
    for mark in marks {
        let _ = mark.await;
    }
}
