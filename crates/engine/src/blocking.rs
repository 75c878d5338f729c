//! Clients parked on keys (BLPOP, BLMOVE, BZPOPMIN, ...).
//!
//! A blocking command that finds nothing registers one [`Waiter`] on each of
//! its keys (in the keys' shards, FIFO per key) and tells its connection to
//! wait. A command that makes such a key exist marks it ready in its shard;
//! before that command releases its shard locks, [`serve_ready`] hands
//! elements to the waiters in FIFO order (XREAD readers, which take
//! nothing, are all served; a write to an existing stream marks the key
//! ready through `KeySlot::signal_ready`). So no other client can see an
//! element first, and a waiter that has gone (timed out, disconnected) is
//! skipped under its own lock, so nothing is popped for nobody.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::store::{KeySlot, Keyspace, Locks};

/// Clients currently blocked (INFO `blocked_clients`).
pub static BLOCKED_CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// What a serve function may use: the locks the serving command holds.
pub struct ServeCtx<'a> {
    pub ks: &'static Keyspace,
    pub locks: &'a mut Locks,
    pub db: usize,
    pub now_ms: i64,
}

impl ServeCtx<'_> {
    /// A key whose shard the serving command already holds.
    /// Serving changes every key it opens, so their WATCHers are marked.
    pub fn key<'s, 'k>(&'s mut self, key: &'k [u8]) -> KeySlot<'s, 'k> {
        self.locks
            .shard_for(self.ks, self.db, key)
            .touch_watched(key);
        self.locks.key(self.ks, self.db, key, self.now_ms)
    }

    /// Another key (a BLMOVE destination): taken only if its shard is held or
    /// free right now, since waiting for it here could deadlock.
    pub fn try_key<'s, 'k>(&'s mut self, key: &'k [u8]) -> Option<KeySlot<'s, 'k>> {
        self.locks.try_key(self.ks, self.db, key, self.now_ms)?;
        // Held now: mark its watchers, then hand it out.
        self.locks
            .shard_for(self.ks, self.db, key)
            .touch_watched(key);
        self.locks.try_key(self.ks, self.db, key, self.now_ms)
    }

    /// Publishes the effect of the serving (the pop as a command), under
    /// the locks the serve holds.
    pub fn effect(&mut self, argv: &[&[u8]]) {
        self.ks.emit(self.db, argv);
    }

    /// Publishes a keyspace event of the serving, as it happens (the
    /// serving command's own events were published before).
    pub fn event(&mut self, class: u32, name: &str, key: &[u8]) {
        self.ks.key_event(self.db, class, name, key);
    }

    /// `del` if the serve emptied `key`.
    pub fn event_if_emptied(&mut self, key: &[u8]) {
        if self.key(key).lookup().is_none() {
            self.event(crate::notify::GENERIC, "del", key);
        }
    }
}

/// Tries to serve `waiter` from `key`: `None` when the key cannot serve it
/// (empty, wrong type), which leaves the waiter waiting.
pub type ServeFn = Box<dyn Fn(&mut ServeCtx<'_>, &[u8], &Waiter) -> Option<Served> + Send + Sync>;

/// What a served waiter gets.
pub struct Served {
    /// The reply, already encoded in the waiter's protocol.
    pub reply: Vec<u8>,
    /// Nothing was done: the serve needs a key whose shard the serving
    /// command neither holds nor could take without waiting (a BLMOVE
    /// destination). The waiter keeps its place, those behind it wait for
    /// it, and it is woken to serve itself with all its shards taken in
    /// order ([`serve_self`]).
    pub retry: bool,
}

impl Served {
    pub fn reply(reply: Vec<u8>) -> Served {
        Served {
            reply,
            retry: false,
        }
    }

    pub fn retry() -> Served {
        Served {
            reply: Vec::new(),
            retry: true,
        }
    }
}

enum State {
    Waiting,
    /// Woken to serve itself ([`Served::retry`]); still registered.
    Retry,
    Served(Served),
    TimedOut,
    Unblocked {
        error: bool,
    },
    Gone,
}

/// How a wait ended.
pub enum Outcome {
    Served(Served),
    TimedOut,
    Unblocked { error: bool },
}

pub struct Waiter {
    pub client_id: u64,
    pub db: usize,
    pub keys: Vec<Vec<u8>>,
    /// Keys the serve also writes (a BLMOVE destination): locked with
    /// `keys` when the waiter serves itself.
    pub also: Vec<Vec<u8>>,
    pub resp3: bool,
    /// The reply on timeout (and on CLIENT UNBLOCK ... TIMEOUT).
    pub timeout_reply: Vec<u8>,
    serve: ServeFn,
    state: Mutex<State>,
    notify: Notify,
    /// Set once the waiter was woken to serve itself: when its wait ends,
    /// the waiters behind it, which waited for it, are served.
    retried: std::sync::atomic::AtomicBool,
    /// Counted in [`BLOCKED_CLIENTS`]: from registration until it is
    /// served or unblocked (at once, as Redis's count drops when it serves
    /// a client, not when the client's connection gets to run again).
    counted: std::sync::atomic::AtomicBool,
}

/// The outcome of one serve attempt.
pub enum Attempt {
    Served,
    /// The waiter is no longer waiting: drop it and try the next.
    Stale,
    /// The key cannot serve this waiter now.
    NotServed,
    /// The waiter serves itself (see [`Served::retry`]); those behind it
    /// wait until it did.
    Retry,
}

impl Waiter {
    pub fn new(
        client_id: u64,
        db: usize,
        keys: Vec<Vec<u8>>,
        resp3: bool,
        timeout_reply: Vec<u8>,
        serve: ServeFn,
        also: Vec<Vec<u8>>,
    ) -> Arc<Waiter> {
        Arc::new(Waiter {
            client_id,
            db,
            keys,
            also,
            resp3,
            timeout_reply,
            serve,
            state: Mutex::new(State::Waiting),
            notify: Notify::new(),
            retried: std::sync::atomic::AtomicBool::new(false),
            counted: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Leaves [`BLOCKED_CLIENTS`] (once).
    fn uncount(&self) {
        if self.counted.swap(false, Ordering::Relaxed) {
            BLOCKED_CLIENTS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(*self.state.lock(), State::Waiting | State::Retry)
    }

    /// Serves the waiter from `key` if it is still waiting. The state lock is
    /// held across the serve, so a concurrent timeout cannot slip between.
    pub fn try_serve(&self, sctx: &mut ServeCtx<'_>, key: &[u8]) -> Attempt {
        let mut st = self.state.lock();
        match *st {
            State::Waiting => {}
            // Woken to serve itself: it keeps its place.
            State::Retry => return Attempt::Retry,
            _ => return Attempt::Stale,
        }
        match (self.serve)(sctx, key, self) {
            Some(served) if served.retry => {
                *st = State::Retry;
                self.retried.store(true, Ordering::Relaxed);
                drop(st);
                self.notify.notify_one();
                Attempt::Retry
            }
            Some(served) => {
                *st = State::Served(served);
                drop(st);
                self.uncount();
                self.notify.notify_one();
                Attempt::Served
            }
            None => Attempt::NotServed,
        }
    }

    /// Ends the wait from the client's side (timeout, disconnect). If it
    /// was served in the meantime, the served result wins.
    pub fn finish(&self, why: Outcome) -> Outcome {
        let mut st = self.state.lock();
        match std::mem::replace(&mut *st, State::Gone) {
            State::Waiting | State::Retry => why,
            State::Served(s) => Outcome::Served(s),
            State::TimedOut => Outcome::TimedOut,
            State::Unblocked { error } => Outcome::Unblocked { error },
            State::Gone => why,
        }
    }

    /// Ends a wait on no key (WAIT) with `reply`: true if it was waiting.
    pub fn complete(&self, reply: Vec<u8>) -> bool {
        let mut st = self.state.lock();
        if !matches!(*st, State::Waiting | State::Retry) {
            return false;
        }
        *st = State::Served(Served::reply(reply));
        drop(st);
        self.uncount();
        self.notify.notify_one();
        true
    }

    /// CLIENT UNBLOCK: true if the client was waiting.
    pub fn unblock(&self, error: bool) -> bool {
        let mut st = self.state.lock();
        if !matches!(*st, State::Waiting | State::Retry) {
            return false;
        }
        *st = if error {
            State::Unblocked { error }
        } else {
            State::TimedOut
        };
        drop(st);
        self.uncount();
        self.notify.notify_one();
        true
    }

    /// True (once) if the waiter was woken to serve itself: it is waiting
    /// again, and the caller runs [`serve_self`].
    pub fn take_retry(&self) -> bool {
        let mut st = self.state.lock();
        if matches!(*st, State::Retry) {
            *st = State::Waiting;
            return true;
        }
        false
    }

    /// True once something other than waiting happened.
    pub fn is_settled(&self) -> bool {
        !self.is_waiting()
    }

    /// Waits for a notification (serve or unblock).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// Serves the waiters of every key the current command made ready, while
/// the command still holds its shard locks. Serving may make more keys
/// ready (BLMOVE into a watched list), so it repeats until none is left.
pub fn serve_ready(ks: &'static Keyspace, locks: &mut Locks, now_ms: i64) {
    loop {
        let ready = locks.take_ready(ks);
        if ready.is_empty() {
            return;
        }
        for (db, key) in ready {
            // Waiters the key cannot serve keep their place; those behind
            // may still be served (each XREAD reader needs entries past its
            // own id, a BLPOP behind a stream reader needs a list).
            let mut i = 0;
            while let Some(w) = locks.shard_for(ks, db, &key).waiter_at(&key, i) {
                let mut sctx = ServeCtx {
                    ks,
                    locks,
                    db,
                    now_ms,
                };
                match w.try_serve(&mut sctx, &key) {
                    Attempt::Served | Attempt::Stale => {
                        locks.shard_for(ks, db, &key).take_waiter_at(&key, i, &w);
                    }
                    // A key that is gone serves nobody (a drained list).
                    Attempt::NotServed if locks.key(ks, db, &key, now_ms).lookup().is_none() => {
                        break;
                    }
                    Attempt::NotServed => i += 1,
                    // First come, first served: the rest of the queue waits
                    // for this waiter to serve itself (`serve_self`).
                    Attempt::Retry => break,
                }
            }
        }
    }
}

/// A waiter woken with [`Served::retry`] serves itself from its own
/// connection: it takes all its shards (keys and `also`, in the
/// deadlock-free order) and tries its keys in order, so the whole move,
/// its effect and its events happen under both locks. If nothing can serve
/// it any more it goes on waiting, in the place it had.
pub fn serve_self(ks: &'static Keyspace, locks: &mut Locks, w: &Waiter, now_ms: i64) {
    let keys = w.keys.iter().chain(&w.also).map(Vec::as_slice);
    // Holding nothing, the batch waits for its shards and is never refused.
    locks.release();
    if locks.lock_keys(ks, w.db, keys).is_err() {
        return;
    }
    for key in &w.keys {
        let mut sctx = ServeCtx {
            ks,
            locks,
            db: w.db,
            now_ms,
        };
        if matches!(
            w.try_serve(&mut sctx, key),
            Attempt::Served | Attempt::Stale
        ) {
            break;
        }
    }
    serve_behind(ks, locks, w, now_ms);
    locks.release();
}

/// Serves the waiters queued behind `w` on its keys, which waited for it
/// to serve itself. The caller holds `w`'s shards.
fn serve_behind(ks: &'static Keyspace, locks: &mut Locks, w: &Waiter, now_ms: i64) {
    for key in &w.keys {
        locks.key(ks, w.db, key, now_ms).signal_ready();
    }
    if locks.any_ready() {
        serve_ready(ks, locks, now_ms);
    }
}

/// Registers `w` on all its keys. The caller holds the keys' shards.
pub fn register(ks: &'static Keyspace, locks: &mut Locks, w: &Arc<Waiter>) {
    for key in &w.keys {
        locks.shard_for(ks, w.db, key).add_waiter(key, w.clone());
    }
    if !w.counted.swap(true, Ordering::Relaxed) {
        BLOCKED_CLIENTS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Removes `w` from all its keys' queues once its wait is over.
pub fn unregister(ks: &'static Keyspace, locks: &mut Locks, w: &Arc<Waiter>) {
    // Not a command: its callers hold nothing here (released first all the
    // same), so this batch waits holding nothing and cannot fail.
    locks.release();
    let _ = locks.lock_keys(ks, w.db, w.keys.iter().map(|k| k.as_slice()));
    for key in &w.keys {
        locks.shard_for(ks, w.db, key).remove_waiter(key, w);
    }
    // It left while those behind waited for it to serve itself.
    if w.retried.load(Ordering::Relaxed) {
        serve_behind(ks, locks, w, crate::now_ms());
    }
    locks.release();
    w.uncount();
}
