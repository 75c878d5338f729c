//! Server-assisted client-side caching (CLIENT TRACKING).
//!
//! Default mode: the keys a tracking client reads are remembered in a
//! table (key name → client ids, across databases, as in Redis); the first
//! change of such a key sends each of those clients one invalidation and
//! forgets the entry. BCAST mode: every changed key matching one of a
//! client's prefixes is sent to it, batched per prefix after the command.
//!
//! Delivery reuses the pub/sub outboxes: a frame for another connection is
//! appended to its outbox and wakes it. A frame for the connection running
//! the command goes after that command's reply (Redis queues those until
//! the command is done), so the dispatcher opens a per-thread [`Batch`] for
//! each top-level command and [`finish`] appends them after the reply.
//!
//! Cost while nobody tracks: [`Tracking::active`], one relaxed load, on
//! the dispatcher's paths; everything else is behind it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::cmd::Command;
use crate::cmd::table::flags;
use crate::resp::{Args, Reply};
use crate::server::Server;
use crate::server::client::{Client, ClientInfo, list_flags};

/// CLIENT TRACKING options.
pub mod opt {
    pub const BCAST: u8 = 1 << 0;
    pub const OPTIN: u8 = 1 << 1;
    pub const OPTOUT: u8 = 1 << 2;
    pub const NOLOOP: u8 = 1 << 3;
}

/// One tracking client's settings; replaced whole by CLIENT TRACKING ON.
pub struct Tracker {
    pub info: Arc<ClientInfo>,
    /// The client invalidations go to (0: this one).
    pub redirect: u64,
    pub opts: u8,
    /// BCAST prefixes, sorted.
    pub prefixes: Vec<Vec<u8>>,
    /// CLIENT CACHING YES/NO given for the next command.
    pub caching: AtomicBool,
}

impl Tracker {
    pub fn has(&self, o: u8) -> bool {
        self.opts & o != 0
    }

    /// Whether the keys read by the command now running are remembered.
    fn remembers(&self) -> bool {
        let caching = self.caching.load(Ordering::Relaxed);
        // OPTIN needs CLIENT CACHING YES, OPTOUT is turned off by NO.
        let opted = if self.has(opt::OPTIN) {
            caching
        } else {
            !(self.has(opt::OPTOUT) && caching)
        };
        !self.has(opt::BCAST) && opted
    }
}

/// Every tracking client, the tracking table and the BCAST prefixes.
/// Locks are never nested: each is taken, read or changed, and released.
#[derive(Default)]
pub struct Tracking {
    /// Clients with tracking on.
    count: AtomicUsize,
    clients: RwLock<HashMap<u64, Arc<Tracker>>>,
    /// Prefix → ids of the BCAST clients registered for it.
    prefixes: RwLock<BTreeMap<Vec<u8>, Vec<u64>>>,
    n_prefixes: AtomicUsize,
    /// Bumped after every change of `prefixes`: each thread keeps a copy of
    /// the prefix list ([`Tracking::matches_prefix`]) and refreshes it when
    /// this moves, so a write checks its key without taking a lock.
    prefix_gen: AtomicU64,
    /// The first bytes of the prefixes, as a 256-bit set (all of them when
    /// the empty prefix is registered): most keys are ruled out with one
    /// load, before the thread's prefix list is looked at.
    first_bytes: [AtomicU64; 4],
    table: Mutex<Table>,
    /// `table.keys.len()`, readable without the lock.
    n_keys: AtomicUsize,
}

#[derive(Default)]
struct Table {
    keys: HashMap<Vec<u8>, Vec<u64>>,
    items: usize,
}

/// What an invalidation message carries.
enum Payload<'a> {
    Keys(&'a [&'a [u8]]),
    /// FLUSHDB/FLUSHALL: a null, in the tracking client's protocol (Redis
    /// encodes it for the tracking client even when it redirects).
    Flush,
}

impl Tracking {
    /// Whether any client tracks: the one check every command pays.
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub fn get(&self, id: u64) -> Option<Arc<Tracker>> {
        self.clients.read().get(&id).cloned()
    }

    /// CLIENT TRACKING ON (options already checked): the new settings; a
    /// client already tracking keeps its prefixes and CLIENT CACHING state.
    pub fn enable(&self, info: &Arc<ClientInfo>, redirect: u64, opts: u8, prefixes: Vec<Vec<u8>>) {
        let old = self.get(info.id);
        let mut all = old.as_ref().map(|t| t.prefixes.clone()).unwrap_or_default();
        let mut added = Vec::new();
        if opts & opt::BCAST != 0 {
            let wanted = if prefixes.is_empty() {
                vec![Vec::new()]
            } else {
                prefixes
            };
            for p in wanted {
                if !all.contains(&p) {
                    all.push(p.clone());
                    added.push(p);
                }
            }
            all.sort();
        }
        let caching = old
            .as_ref()
            .is_some_and(|t| t.caching.load(Ordering::Relaxed));
        let prefix_mem = all
            .iter()
            .map(|p| p.len() as u64 + crate::server::client_mem::PER_PREFIX)
            .sum();
        info.tracking_mem.store(prefix_mem, Ordering::Relaxed);
        let tracker = Arc::new(Tracker {
            info: info.clone(),
            redirect,
            opts,
            prefixes: all,
            caching: AtomicBool::new(caching),
        });
        if self.clients.write().insert(info.id, tracker).is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        if !added.is_empty() {
            let mut map = self.prefixes.write();
            for p in added {
                map.entry(p).or_default().push(info.id);
            }
            self.prefixes_changed(&map);
        }
        info.set_flag(list_flags::TRACKING, true);
        info.set_flag(list_flags::TRACKING_BROKEN, false);
        info.set_flag(list_flags::TRACKING_BCAST, opts & opt::BCAST != 0);
    }

    /// CLIENT TRACKING OFF, RESET, and the connection closing. Keys it
    /// read stay in the table until they change (ids are never reused).
    pub fn disable(&self, info: &ClientInfo) {
        let Some(old) = self.clients.write().remove(&info.id) else {
            return;
        };
        self.count.fetch_sub(1, Ordering::Relaxed);
        info.tracking_mem.store(0, Ordering::Relaxed);
        if !old.prefixes.is_empty() {
            let mut map = self.prefixes.write();
            for p in &old.prefixes {
                if let Some(ids) = map.get_mut(p) {
                    ids.retain(|&id| id != info.id);
                    if ids.is_empty() {
                        map.remove(p);
                    }
                }
            }
            self.prefixes_changed(&map);
        }
        info.set_flag(
            list_flags::TRACKING | list_flags::TRACKING_BROKEN | list_flags::TRACKING_BCAST,
            false,
        );
    }

    /// CLIENT LIST `redir=`: -1 unless tracking.
    pub fn redirect_of(&self, id: u64) -> i64 {
        self.get(id).map_or(-1, |t| t.redirect as i64)
    }

    /// INFO: (tracking_clients, total_keys, total_items, total_prefixes).
    pub fn info(&self) -> (usize, usize, usize, usize) {
        let items = self.table.lock().items;
        (
            self.count.load(Ordering::Relaxed),
            self.n_keys.load(Ordering::Relaxed),
            items,
            self.n_prefixes.load(Ordering::Relaxed),
        )
    }

    fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k [u8]>) {
        let mut t = self.table.lock();
        for k in keys {
            let added = match t.keys.get_mut(k) {
                Some(ids) if ids.contains(&id) => false,
                Some(ids) => {
                    ids.push(id);
                    true
                }
                None => {
                    t.keys.insert(k.to_vec(), vec![id]);
                    true
                }
            };
            t.items += added as usize;
        }
        self.n_keys.store(t.keys.len(), Ordering::Relaxed);
    }

    /// After a change of `prefixes` (`map`, still locked): the count, the
    /// first bytes and the generation that tells threads to refresh.
    fn prefixes_changed(&self, map: &BTreeMap<Vec<u8>, Vec<u64>>) {
        let mut set = [0u64; 4];
        for p in map.keys() {
            match p.first() {
                Some(&b) => set[usize::from(b >> 6)] |= 1 << (b & 63),
                None => set = [u64::MAX; 4],
            }
        }
        for (word, bits) in self.first_bytes.iter().zip(set) {
            word.store(bits, Ordering::Relaxed);
        }
        self.n_prefixes.store(map.len(), Ordering::Relaxed);
        self.prefix_gen.fetch_add(1, Ordering::Release);
    }

    /// Whether some BCAST prefix is a prefix of `key`, from this thread's
    /// copy of the list (refreshed when a registration changed it).
    fn matches_prefix(&self, key: &[u8]) -> bool {
        if self.n_prefixes.load(Ordering::Relaxed) == 0 {
            return false;
        }
        if let Some(&b) = key.first()
            && self.first_bytes[usize::from(b >> 6)].load(Ordering::Relaxed) & (1 << (b & 63)) == 0
        {
            return false;
        }
        let owner = self as *const Tracking as usize;
        let generation = self.prefix_gen.load(Ordering::Acquire);
        PREFIXES.with_borrow_mut(|cache| {
            if cache.0 != owner || cache.1 != generation {
                *cache = (
                    owner,
                    generation,
                    self.prefixes.read().keys().cloned().collect(),
                );
            }
            cache.2.iter().any(|p| key.starts_with(p))
        })
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u64>> {
        if self.n_keys.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut t = self.table.lock();
        let ids = t.keys.remove(key)?;
        t.items -= ids.len();
        self.n_keys.store(t.keys.len(), Ordering::Relaxed);
        Some(ids)
    }

    /// Up to `n` entries taken out of the table (the limit's evictions).
    fn take_some(&self, n: usize) -> Vec<(Vec<u8>, Vec<u64>)> {
        let mut t = self.table.lock();
        let victims: Vec<Vec<u8>> = t.keys.keys().take(n).cloned().collect();
        let mut out = Vec::with_capacity(victims.len());
        for k in victims {
            if let Some(ids) = t.keys.remove(&k) {
                t.items -= ids.len();
                out.push((k, ids));
            }
        }
        self.n_keys.store(t.keys.len(), Ordering::Relaxed);
        out
    }

    fn clear(&self) {
        let mut t = self.table.lock();
        let old = std::mem::take(&mut *t);
        self.n_keys.store(0, Ordering::Relaxed);
        drop(t);
        drop(old);
    }

    fn snapshot(&self) -> Vec<Arc<Tracker>> {
        self.clients.read().values().cloned().collect()
    }
}

/// What the top-level command running on this thread left to send. Kept
/// per thread and reused: a command that queues nothing (nearly all of
/// them) costs two stores of `CURRENT` and nothing here.
#[derive(Default)]
struct Batch {
    /// Invalidations of the running client's own keys (None: a flush),
    /// sent after its reply.
    own: Vec<Option<Vec<u8>>>,
    /// Changed keys for BCAST clients, with the client that changed them
    /// (None: expiry, eviction, or several clients).
    bcast: Vec<(Vec<u8>, Option<u64>)>,
}

thread_local! {
    /// The client whose top-level command runs on this thread (between
    /// [`begin`] and [`finish`]).
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
    /// What that command queued; `QUEUED` says whether anything is there.
    static BATCH: RefCell<Batch> = const { RefCell::new(Batch { own: Vec::new(), bcast: Vec::new() }) };
    static QUEUED: Cell<bool> = const { Cell::new(false) };
    /// This thread's copy of the BCAST prefixes: (the `Tracking` it is of,
    /// its `prefix_gen` then, the prefixes).
    static PREFIXES: RefCell<(usize, u64, Vec<Vec<u8>>)> = const { RefCell::new((0, 0, Vec::new())) };
    /// A script called a read-only command: its caller's declared keys
    /// are remembered when the script command ends.
    static SCRIPT_READ: Cell<bool> = const { Cell::new(false) };
}

fn current() -> Option<u64> {
    CURRENT.get()
}

/// Queues something for the running command's [`finish`]; false if no
/// top-level command runs on this thread.
fn queue(f: impl FnOnce(&mut Batch)) -> bool {
    if CURRENT.get().is_none() {
        return false;
    }
    BATCH.with_borrow_mut(f);
    QUEUED.set(true);
    true
}

/// Opens the batch of a top-level command (the caller checked
/// [`Tracking::active`]). Top-level commands do not nest: one left open
/// (only by a panic) is dropped.
pub fn begin(client: u64) {
    CURRENT.set(Some(client));
    if QUEUED.replace(false) {
        // Left by a command that never finished (only a panic does that).
        BATCH.with_borrow_mut(|b| {
            b.own.clear();
            b.bcast.clear();
        });
    }
}

/// Closes the batch [`begin`] opened: the running client's invalidations
/// go after its reply in `out`, BCAST messages to everyone. CLIENT CACHING
/// applies to one command (a transaction counts as one, CLIENT subcommands
/// do not count).
pub fn finish(srv: &Server, client: &Client, cmd: &Command, out: &mut Reply) {
    if CURRENT.take().is_none() {
        return;
    }
    let queued = QUEUED.replace(false);
    let tracks = client.info.has_flag(list_flags::TRACKING);
    if !queued && !tracks {
        return;
    }
    let (own, bcast) = if queued {
        BATCH.with_borrow_mut(|b| (std::mem::take(&mut b.own), std::mem::take(&mut b.bcast)))
    } else {
        (Vec::new(), Vec::new())
    };
    let me = client.id();
    // Most clients do not track: no look-up (and no lock) for them.
    let tracker = if tracks { srv.tracking.get(me) } else { None };
    if let Some(tr) = &tracker {
        for item in &own {
            match item {
                Some(k) => send(srv, tr, Payload::Keys(&[k]), Some((me, &mut out.buf))),
                None => send(srv, tr, Payload::Flush, Some((me, &mut out.buf))),
            }
        }
        if client.multi.is_none() && !cmd.name.starts_with("client|") {
            tr.caching.store(false, Ordering::Relaxed);
        }
    }
    if !bcast.is_empty() {
        broadcast(srv, bcast, Some((me, &mut out.buf)));
    }
}

/// Before a command (queued ones included): evicts keys past
/// `tracking-table-max-keys`; the running client's own invalidations go
/// into `out` before the command's reply.
pub fn before_command(srv: &Server, me: u64, out: &mut Reply) {
    enforce_limit(srv, Some((me, &mut out.buf)));
}

/// The cron's share: the table limit while no command arrives.
pub fn cron(srv: &Server) {
    if srv.tracking.active() {
        enforce_limit(srv, None);
    }
}

/// Most keys one call evicts from the table, so the lock is held briefly;
/// the next command or cron tick continues.
const EVICT_PER_CALL: usize = 10_000;

fn enforce_limit(srv: &Server, mut own: Option<(u64, &mut Vec<u8>)>) {
    let n = srv.tracking.n_keys.load(Ordering::Relaxed);
    if n == 0 {
        return;
    }
    let max = srv.config.tracking_table_max_keys.get();
    if max <= 0 || n as i64 <= max {
        return;
    }
    let excess = (n - max as usize).min(EVICT_PER_CALL);
    for (key, ids) in srv.tracking.take_some(excess) {
        notify_ids(srv, &key, ids, own.as_mut().map(|(id, b)| (*id, &mut **b)));
    }
}

/// After a command ran (the caller checked [`Tracking::active`]):
/// remembers the keys a tracking client read. A read-only command inside
/// a script counts for the script's caller, whose declared keys are then
/// remembered when the script command ends (as Redis does).
pub fn after_command(srv: &Server, client: &Client, cmd: &Command, args: &Args<'_>) {
    let read = cmd.has(flags::READONLY) && !cmd.has(flags::PUBSUB);
    if !read && !is_script_command(cmd) {
        // Nothing to remember, inside a script or not.
        return;
    }
    if crate::scripting::run::in_script() {
        if read {
            SCRIPT_READ.set(true);
        }
        return;
    }
    let track = if is_script_command(cmd) {
        SCRIPT_READ.replace(false)
    } else {
        read
    };
    if !track || !client.info.has_flag(list_flags::TRACKING) {
        return;
    }
    let Some(tr) = srv.tracking.get(client.id()) else {
        return;
    };
    if !tr.remembers() {
        return;
    }
    if let Ok(idx) = crate::cmd::keyspec::keys_of(cmd, args) {
        srv.tracking
            .remember(client.id(), idx.into_iter().map(|i| args.arg(i)));
    }
}

fn is_script_command(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// A write command changed data: its written keys (key specs not marked
/// read-only) are invalidated. Scripts' and transactions' own commands
/// report their keys themselves.
pub fn written(srv: &Server, cmd: &Command, args: &Args<'_>, me: u64) {
    if cmd.has(flags::RUNS_SCRIPTS) {
        return;
    }
    // Nothing tracked and no BCAST prefix: no key can concern anyone.
    if srv.tracking.n_keys.load(Ordering::Relaxed) == 0
        && srv.tracking.n_prefixes.load(Ordering::Relaxed) == 0
    {
        return;
    }
    if let Some((i, f)) = crate::cmd::keyspec::single_key(cmd, args) {
        if f & crate::cmd::keyspec::kflags::RO == 0 {
            invalidate(srv, args.arg(i), Some(me));
        }
        return;
    }
    let Ok(keys) = crate::cmd::keyspec::keys_and_flags(cmd, args) else {
        return;
    };
    for (i, f) in keys {
        if f & crate::cmd::keyspec::kflags::RO == 0 {
            invalidate(srv, args.arg(i), Some(me));
        }
    }
}

/// The store expired or evicted `key` (no client changed it).
pub fn key_gone(srv: &Server, key: &[u8]) {
    if srv.tracking.active() {
        invalidate(srv, key, None);
    }
}

/// FLUSHDB/FLUSHALL: every tracking client gets one null invalidation and
/// the table is emptied.
pub fn flushed(srv: &Server) {
    // Keys read by clients that since stopped tracking go too.
    if srv.tracking.n_keys.load(Ordering::Relaxed) > 0 {
        srv.tracking.clear();
    }
    if !srv.tracking.active() {
        return;
    }
    let me = current();
    for tr in srv.tracking.snapshot() {
        if Some(tr.info.id) == me {
            queue(|b| b.own.push(None));
        } else {
            send(srv, &tr, Payload::Flush, None);
        }
    }
}

/// A served blocked BLMOVE/BRPOPLPUSH pushed to `key` for client
/// `receiver`: its own invalidation follows its reply (`reply`), as Redis
/// writes it after the served element.
pub fn served_write(srv: &Server, key: &[u8], receiver: u64, reply: &mut Vec<u8>) {
    if srv.tracking.active() {
        invalidate_to(srv, key, Some(receiver), Some((receiver, reply)));
    }
}

/// `key` changed (by client `origin`, None for the store itself).
fn invalidate(srv: &Server, key: &[u8], origin: Option<u64>) {
    invalidate_to(srv, key, origin, None);
}

fn invalidate_to(srv: &Server, key: &[u8], origin: Option<u64>, own: Option<(u64, &mut Vec<u8>)>) {
    if srv.tracking.matches_prefix(key) {
        let queued = queue(|b| b.bcast.push((key.to_vec(), origin)));
        if !queued {
            broadcast(srv, vec![(key.to_vec(), origin)], None);
        }
    }
    if let Some(ids) = srv.tracking.take(key) {
        notify_ids(srv, key, ids, own);
    }
}

/// Sends `key`'s invalidation to the default-mode clients in `ids`.
fn notify_ids(srv: &Server, key: &[u8], ids: Vec<u64>, mut own: Option<(u64, &mut Vec<u8>)>) {
    let me = current();
    for id in ids {
        let Some(tr) = srv.tracking.get(id) else {
            continue;
        };
        // Keys read before switching to BCAST are not sent.
        if tr.has(opt::BCAST) {
            continue;
        }
        if Some(id) == me {
            if !tr.has(opt::NOLOOP) {
                queue(|b| b.own.push(Some(key.to_vec())));
            }
            continue;
        }
        send(
            srv,
            &tr,
            Payload::Keys(&[key]),
            own.as_mut().map(|(i, b)| (*i, &mut **b)),
        );
    }
}

/// One message per BCAST client and matching prefix, its keys sorted and
/// unique; a NOLOOP client does not get keys only it changed.
fn broadcast(
    srv: &Server,
    mut keys: Vec<(Vec<u8>, Option<u64>)>,
    mut own: Option<(u64, &mut Vec<u8>)>,
) {
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys.dedup_by(|later, kept| {
        if later.0 != kept.0 {
            return false;
        }
        if later.1 != kept.1 {
            kept.1 = None;
        }
        true
    });
    let targets: Vec<(Vec<u8>, Vec<u64>)> = {
        let map = srv.tracking.prefixes.read();
        map.iter()
            .filter(|(p, _)| keys.iter().any(|(k, _)| k.starts_with(p)))
            .map(|(p, ids)| (p.clone(), ids.clone()))
            .collect()
    };
    for (prefix, ids) in targets {
        for id in ids {
            let Some(tr) = srv.tracking.get(id) else {
                continue;
            };
            let noloop = tr.has(opt::NOLOOP);
            let list: Vec<&[u8]> = keys
                .iter()
                .filter(|(k, o)| k.starts_with(&prefix) && !(noloop && *o == Some(id)))
                .map(|(k, _)| k.as_slice())
                .collect();
            if !list.is_empty() {
                send(
                    srv,
                    &tr,
                    Payload::Keys(&list),
                    own.as_mut().map(|(i, b)| (*i, &mut **b)),
                );
            }
        }
    }
}

/// Encodes and delivers one invalidation of tracking client `tr`: as a
/// push to a RESP3 receiver, as a `__redis__:invalidate` message to a
/// RESP2 redirect target that is subscribed, else not at all. A missing
/// redirect target marks the redirect broken (and tells a RESP3 client).
fn send(srv: &Server, tr: &Tracker, payload: Payload<'_>, own: Option<(u64, &mut Vec<u8>)>) {
    let dest = if tr.redirect != 0 {
        match srv.clients.get(tr.redirect) {
            Some(d) => d,
            None => {
                tr.info.set_flag(list_flags::TRACKING_BROKEN, true);
                if tr.info.resp.load(Ordering::Relaxed) == 3 {
                    let mut r = Reply {
                        buf: Vec::new(),
                        resp3: true,
                        limit: 0,
                        sent: 0,
                    };
                    r.push(2);
                    r.bulk(b"tracking-redir-broken");
                    r.int(tr.redirect as i64);
                    deliver(srv, &tr.info, &r.buf, own);
                }
                return;
            }
        }
    } else {
        tr.info.clone()
    };
    let mut r = Reply {
        buf: Vec::new(),
        resp3: true,
        limit: 0,
        sent: 0,
    };
    if dest.resp.load(Ordering::Relaxed) == 3 {
        r.push(2);
        r.bulk(b"invalidate");
    } else if tr.redirect != 0 && dest.has_flag(list_flags::PUBSUB) {
        r.resp3 = false;
        r.array(3);
        r.bulk(b"message");
        r.bulk(b"__redis__:invalidate");
    } else {
        return;
    }
    match payload {
        Payload::Keys(keys) => {
            r.array(keys.len());
            for k in keys {
                r.bulk(k);
            }
        }
        Payload::Flush => {
            r.resp3 = tr.info.resp.load(Ordering::Relaxed) == 3;
            r.null();
        }
    }
    deliver(srv, &dest, &r.buf, own);
}

fn deliver(srv: &Server, dest: &ClientInfo, frame: &[u8], own: Option<(u64, &mut Vec<u8>)>) {
    if let Some((id, buf)) = own
        && id == dest.id
    {
        buf.extend_from_slice(frame);
        return;
    }
    let limits = if dest.has_flag(list_flags::PUBSUB) {
        crate::cmd::pubsub::pubsub_limits(srv)
    } else {
        [0, 0, 0]
    };
    dest.outbox
        .append(dest, frame, limits, crate::server::now_ms());
}
