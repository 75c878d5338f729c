//! Keyspace notifications (`notify-keyspace-events`): every write names
//! its events, published on `__keyspace@<db>__:<key>` (message: the event)
//! and `__keyevent@<db>__:<event>` (message: the key).
//!
//! Design decision: an event comes from the operation that caused it. A
//! handler that changes a key records what it did (`Ctx::event`: `lpush`,
//! `del` when a collection empties, ...) into the command's [`Events`],
//! which the dispatcher publishes after the handler, under the command's
//! locks. Nothing is re-derived from the command's name or arguments (the
//! handler knows which key it popped and whether a member was added; the
//! argv does not). Events the store produces on its own reach [`Notifier`]
//! through the keyspace's event hook: `expired` (lazy and active expiry),
//! `evicted` and `new`. Raised while a command runs, they are held and
//! join its [`Events`] in the order they happened (a key is `new` just
//! before the event of the change that created it, the order Redis's
//! `dbAdd` gives); raised outside one (the cron) they are published at
//! once. A blocked client's serve publishes its pops through
//! `ServeCtx::event` as it goes.

use crate::cmd::Ctx;
use crate::config::notify as class;
use crate::resp::Args;
use crate::server::Server;
use crate::store::KeyEventSink;

/// Whether any notification can be produced at all (one atomic load).
#[inline]
pub fn enabled(srv: &Server) -> bool {
    srv.config.notify_flags() & (class::KEYSPACE | class::KEYEVENT) != 0
}

/// Publishes one event on `key` in `db` if its class is enabled.
pub fn emit(srv: &Server, flags: u32, class_bit: u32, event: &str, key: &[u8], db: usize) {
    if flags & class_bit == 0 {
        return;
    }
    let limits = crate::cmd::pubsub::pubsub_limits(srv);
    let now = crate::server::now_ms();
    if flags & class::KEYSPACE != 0 {
        let mut ch = format!("__keyspace@{db}__:").into_bytes();
        ch.extend_from_slice(key);
        srv.pubsub.publish(&ch, event.as_bytes(), limits, now);
    }
    if flags & class::KEYEVENT != 0 {
        let ch = format!("__keyevent@{db}__:{event}");
        srv.pubsub.publish(ch.as_bytes(), key, limits, now);
    }
}

/// Delivers the events the store produces: `expired` (lazy and active
/// expiry) and the pops that serve blocked clients.
pub struct Notifier(pub &'static Server);

impl KeyEventSink for Notifier {
    fn event(&self, db: usize, class_bit: u32, event: &str, key: &[u8]) {
        // Expiry and eviction invalidate client-side caches.
        if class_bit & (class::EXPIRED | class::EVICTED) != 0 {
            super::tracking::key_gone(self.0, key);
        }
        let flags = self.0.config.notify_flags();
        if flags & class_bit == 0 {
            return;
        }
        // Inside a command, the store's events join the command's own in
        // the order they happened (a key expired by the lookup of MSET's
        // second pair comes after the first pair's `set`).
        if let Some(name) = STORE_EVENTS.iter().find(|n| **n == event) {
            let held = PENDING.with_borrow_mut(|p| match p {
                Some(list) => {
                    list.push((class_bit, name, key.to_vec(), db));
                    true
                }
                None => false,
            });
            if held {
                return;
            }
        }
        emit(self.0, flags, class_bit, event, key, db);
    }
}

/// The events the store raises itself.
const STORE_EVENTS: [&str; 3] = ["new", "expired", "evicted"];

/// Store events held back for the running command's [`Events`].
pub type Held = Vec<Event>;

thread_local! {
    /// Events the store raised while a command runs that are not yet in
    /// its [`Events`]; None outside a command.
    static PENDING: std::cell::RefCell<Option<Held>> =
        const { std::cell::RefCell::new(None) };
}

/// Starts holding back the store's events for the command about to run;
/// returns what an enclosing command (EVAL, EXEC) held, for
/// [`end_command`].
pub fn begin_command() -> Option<Held> {
    PENDING.with_borrow_mut(|p| p.replace(Vec::new()))
}

/// Gives the enclosing command its held-back events back (this command's
/// were published by [`Events::publish`]).
pub fn end_command(outer: Option<Held>) {
    PENDING.with_borrow_mut(|p| *p = outer);
}

/// `keymiss` for each key a command looked up for reading and did not
/// find, as Redis reports its read lookups: every key of a read command
/// (but OBJECT's), the source keys (read-only key specs) of a write
/// command, and GETEX/GETDEL's key when they changed nothing. The command
/// has run with its keys' shards still held; sources are as it saw them.
/// Keys whose shard it does not hold are not looked at.
pub fn key_misses(ctx: &mut Ctx<'_>, args: &Args<'_>) {
    use crate::cmd::keyspec::{self, KeyMiss};
    if ctx.srv.config.notify_flags() & class::KEY_MISS == 0 {
        return;
    }
    let (read_cmd, read_write) = match ctx.cmd.keymiss {
        KeyMiss::Never => return,
        KeyMiss::Read => (true, false),
        KeyMiss::Sources => (false, false),
        KeyMiss::ReadUnlessWritten if ctx.dirty == 0 => (false, true),
        KeyMiss::ReadUnlessWritten => (false, false),
    };
    let Ok(keys) = keyspec::keys_and_flags(ctx.cmd, args) else {
        return;
    };
    let (srv, db) = (ctx.srv, ctx.db.index);
    let ro = |kf: u32| read_cmd || read_write || kf & keyspec::kflags::RO != 0;
    // A source that is also the destination (SDIFFSTORE d d x) was read
    // before it was written: what it is now says nothing of that read.
    let written: Vec<&[u8]> = keys
        .iter()
        .filter(|(_, kf)| !ro(*kf))
        .map(|&(i, _)| &args[i])
        .collect();
    for (i, kf) in keys {
        let key = &args[i];
        if !ro(kf) || written.contains(&key) {
            continue;
        }
        if ctx.db.locks.holds(&srv.ks, db, key) && ctx.db.key(key).lookup().is_none() {
            ctx.events.record_miss(key, db);
        }
    }
}

/// One recorded event: class, event name, key, database.
type Event = (u32, &'static str, Vec<u8>, usize);

/// The keyspace events one command records as it changes keys
/// (`Ctx::event`), published by the dispatcher after the handler, with the
/// command's locks still held. Empty and never allocating while
/// notifications are off.
pub struct Events {
    /// `notify-keyspace-events` when the command started; 0 if nothing can
    /// be published.
    flags: u32,
    list: Vec<Event>,
}

thread_local! {
    /// Set while the commands of a `SCRIPT DEBUG YES` session run: their
    /// changes are undone, so they are not announced.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with keyspace events off on this thread.
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let was = QUIET.replace(true);
    let r = f();
    QUIET.set(was);
    r
}

impl Events {
    pub fn new(srv: &Server) -> Events {
        // The thread-local is read only while notifications are on.
        let flags = if enabled(srv) && !QUIET.get() {
            srv.config.notify_flags()
        } else {
            0
        };
        Events {
            flags,
            list: Vec::new(),
        }
    }

    /// Records nothing (internal calls that must not be announced: the
    /// rollback of a `SCRIPT DEBUG YES` session).
    pub fn quiet() -> Events {
        Events {
            flags: 0,
            list: Vec::new(),
        }
    }

    /// Whether events are being recorded at all.
    #[inline]
    pub fn on(&self) -> bool {
        self.flags != 0
    }

    /// Whether events of `class` are recorded.
    #[inline]
    pub fn wants(&self, class: u32) -> bool {
        self.flags & class != 0
    }

    /// Records one event (if its class is enabled), after the events the
    /// store raised so far: Redis announces a key when it adds it (`new`)
    /// or finds it expired, so before the event of the change that
    /// followed.
    #[inline]
    pub fn record(&mut self, class: u32, name: &'static str, key: &[u8], db: usize) {
        if self.flags & class == 0 {
            return;
        }
        self.take_held();
        self.list.push((class, name, key.to_vec(), db));
    }

    /// Records `keymiss` for a key the command looked up and did not
    /// find. Worked out after the handler, it goes where the lookups were:
    /// after the expiries they caused, before what the command did.
    pub fn record_miss(&mut self, key: &[u8], db: usize) {
        if self.flags & class::KEY_MISS == 0 {
            return;
        }
        self.take_held();
        let lookups = class::EXPIRED | class::EVICTED | class::KEY_MISS;
        let at = self
            .list
            .iter()
            .position(|e| e.0 & lookups == 0)
            .unwrap_or(self.list.len());
        self.list
            .insert(at, (class::KEY_MISS, "keymiss", key.to_vec(), db));
    }

    fn take_held(&mut self) {
        PENDING.with_borrow_mut(|p| {
            if let Some(held) = p {
                self.list.append(held);
            }
        });
    }

    /// Publishes what was recorded, in order (and the store's events
    /// raised after the last recorded event).
    pub fn publish(&mut self, srv: &Server) {
        self.take_held();
        for (c, event, key, db) in self.list.drain(..) {
            emit(srv, self.flags, c, event, &key, db);
        }
    }
}
