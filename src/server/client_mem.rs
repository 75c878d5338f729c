//! Client memory: what each connection holds (query buffer, the command
//! being framed, replies not yet written, published messages waiting, the
//! MULTI queue, watched keys, subscriptions, tracking prefixes), shown as
//! CLIENT LIST `tot-mem` and INFO `mem_clients_normal`, and
//! `maxmemory-clients`: past it the clients using the most memory are
//! closed until the total is under the limit (Redis 7.0's client eviction).
//!
//! Design decisions:
//! - Each connection works out its own figure from what it owns and
//!   publishes it in its `ClientInfo` (`Report::update`); only a change
//!   touches the shared running total (`TOTAL`), so a client whose buffers
//!   keep their size (a GET/SET pipeline) costs a compare per batch.
//!   Published messages count where they are appended (`pubsub::Outbox`).
//! - The running total is only a trigger. With a limit set, a connection
//!   compares it with the limit after each read and each command (one
//!   relaxed load of the limit otherwise), and the cron once a tick; past
//!   it, [`evict`] recomputes every client's figure and closes the biggest
//!   first, never a client with `CLIENT NO-EVICT on` nor a replica, and
//!   leaves out clients already being closed (their memory is on its way
//!   out), so a burst of checks cannot take more clients than needed.
//! - A closed client is shut down like CLIENT KILL: its task ends, its
//!   registration drops and takes its figure out of the total.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::Server;
use super::client::{Client, ClientInfo, list_flags};

/// The fixed part of a client: its state and a 16 KiB reply buffer, as
/// Redis counts its static reply buffer in every client.
pub const BASE: u64 = 16 * 1024 + 1024;
/// Per watched key (the key's entry in the client's list).
const PER_WATCH: u64 = 64;
/// Per subscription (the client's and the registry's entries).
const PER_SUB: u64 = 96;
/// Per BCAST prefix, beside the prefix's bytes.
pub const PER_PREFIX: u64 = 64;
/// An argument this big is read into a buffer of its exact size.
const BIG_ARG: usize = 32 * 1024;
/// Redis's reply buffer: replies up to this are `obl`, beyond it `omem`.
pub const REPLY_BUF: u64 = 16 * 1024;

/// Every client's figure, summed (a trigger only, see the module doc).
static TOTAL: AtomicI64 = AtomicI64::new(0);
/// Bytes ever appended to outboxes: key eviction discounts what it makes
/// itself (tracking invalidations, `evicted` events) while it runs.
static APPENDED: AtomicU64 = AtomicU64::new(0);

/// Adds `delta` to the running total.
#[inline]
pub fn add(delta: i64) {
    if delta != 0 {
        TOTAL.fetch_add(delta, Ordering::Relaxed);
    }
}

/// A published message (or invalidation) appended to an outbox.
#[inline]
pub fn appended(bytes: usize) {
    add(bytes as i64);
    APPENDED.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Bytes appended to outboxes so far (see [`APPENDED`]).
pub fn appended_so_far() -> u64 {
    APPENDED.load(Ordering::Relaxed)
}

/// The limit and what eviction did, per server.
#[derive(Default)]
pub struct Eviction {
    /// `maxmemory-clients` in bytes (0: off), resolved from a percentage.
    limit: AtomicU64,
    /// INFO stats `evicted_clients`.
    pub evicted: AtomicU64,
    /// One evictor at a time; others find the work done.
    running: Mutex<()>,
}

impl Eviction {
    #[inline]
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }
}

/// Resolves `maxmemory-clients` (bytes, or a percentage of `maxmemory`)
/// into the limit the checks read; called at start-up and by CONFIG SET of
/// either parameter.
pub fn sync_limit(srv: &Server) {
    let v = srv.config.maxmemory_clients.get();
    let limit = match v.strip_suffix('%') {
        Some(pct) => {
            let pct: u64 = pct.parse().unwrap_or(0);
            (srv.config.maxmemory.get().max(0) as u64).saturating_mul(pct) / 100
        }
        None => crate::config::parse_memory(&v).map_or(0, |b| b.max(0) as u64),
    };
    srv.clients.eviction.limit.store(limit, Ordering::Relaxed);
}

/// Memory of a client's own state: the MULTI queue, watched keys,
/// subscriptions (tracking prefixes are kept in `ClientInfo` by tracking).
fn state_mem(client: &Client) -> (u64, u64) {
    if client.multi.is_none() && client.watched.is_empty() && !client.pubsub.ever {
        return (0, client.info.tracking_mem.load(Ordering::Relaxed));
    }
    let multi = client.multi.as_ref().map_or(0, |q| q.mem() as u64);
    let other = client.watched.len() as u64 * PER_WATCH
        + client.pubsub.total() as u64 * PER_SUB
        + client.info.tracking_mem.load(Ordering::Relaxed);
    (multi, other)
}

/// A connection's last published figure.
#[derive(Default)]
pub struct Report {
    last: u64,
}

impl Report {
    /// Publishes the connection's figure: `qcap` is its read buffer's size,
    /// `framed` the bytes of the command being framed that are already
    /// arguments (`argv-mem`), `out` the replies not written yet.
    /// Touches the shared total only when the figure changed.
    pub fn update(
        &mut self,
        client: &Client,
        (qlen, qcap, framed): (usize, usize, usize),
        out: &crate::resp::Reply,
    ) {
        let info = &client.info;
        let (multi, other) = state_mem(client);
        // The reply buffer's allocation is what the client holds.
        let pending = out.pending();
        let total = BASE
            + qcap as u64
            + multi
            + other
            + (out.buf.capacity() as u64).saturating_sub(REPLY_BUF);
        let cap = out.buf.capacity() as u64;
        if info.out_cap.load(Ordering::Relaxed) != cap {
            info.out_cap.store(cap, Ordering::Relaxed);
        }
        let framed = framed.min(qlen);
        info.qbuf.store((qlen - framed) as u64, Ordering::Relaxed);
        info.argv_mem.store(framed as u64, Ordering::Relaxed);
        info.qbuf_free
            .store(qcap.saturating_sub(qlen) as u64, Ordering::Relaxed);
        if total == self.last {
            return;
        }
        info.multi_mem.store(multi, Ordering::Relaxed);
        info.other_mem.store(other, Ordering::Relaxed);
        info.out_pending.store(pending as u64, Ordering::Relaxed);
        info.out_mem.store(
            (out.buf.capacity() as u64).saturating_sub(REPLY_BUF),
            Ordering::Relaxed,
        );
        add(total as i64 - self.last as i64);
        self.last = total;
    }

    /// The connection is leaving: its figure leaves the total.
    pub fn release(&mut self) {
        add(-(self.last as i64));
        self.last = 0;
    }
}

/// Whether client eviction applies to this client (a no-evict client, a
/// replica is never evicted).
fn evictable(c: &ClientInfo) -> bool {
    !c.has_flag(list_flags::NO_EVICT | list_flags::REPLICA)
}

/// Whether client memory counts towards `maxmemory-clients` (replicas'
/// buffers do not, as in Redis).
fn counted(c: &ClientInfo) -> bool {
    !c.has_flag(list_flags::REPLICA)
}

/// With a limit set and the running total past it: evicts. Cheap enough for
/// every command (one relaxed load without a limit).
#[inline]
pub fn check(srv: &Server) {
    let limit = srv.clients.eviction.limit();
    if limit > 0 && TOTAL.load(Ordering::Relaxed) > limit as i64 {
        evict(srv, limit);
    }
}

/// Closes the clients using the most memory until the others' total is
/// under `limit`. Returns how many were closed.
pub fn evict(srv: &Server, limit: u64) -> usize {
    // One at a time; a caller that finds another evicting waits for it and
    // looks again, rather than going on (to key eviction) over the limit.
    let _one = srv.clients.eviction.running.lock();
    let clients = srv.clients.snapshot();
    let mut total = 0u64;
    let mut candidates = Vec::new();
    for c in &clients {
        if c.killed.load(Ordering::Relaxed) || !counted(c) {
            continue;
        }
        let m = c.tot_mem();
        total += m;
        if evictable(c) {
            candidates.push((m, c));
        }
    }
    if total <= limit {
        return 0;
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    let mut n = 0;
    for (m, c) in candidates {
        if total <= limit {
            break;
        }
        // Counted before the client sees its connection close.
        srv.clients.eviction.evicted.fetch_add(1, Ordering::Relaxed);
        c.request_kill();
        crate::verbose!(
            "Evicting client: id={} addr={} name={} tot-mem={}",
            c.id,
            c.addr,
            String::from_utf8_lossy(&c.name()),
            m
        );
        total -= m;
        n += 1;
    }
    n
}

/// Room to read into the query buffer (`chunk` at a time). `need` is the
/// size the frame being read needs, `framed` where the argument being read
/// starts. A big argument (Redis's 32 KiB `PROTO_MBULK_BIG_ARG`) gets room
/// for exactly its end, so the buffer's size, which counts as the client's
/// memory, does not depend on how the bytes arrived; never more than twice
/// what arrived plus a chunk (a header alone must not commit memory) nor
/// past the query buffer limit, which closes the client first.
pub fn make_room(
    srv: &Server,
    rbuf: &mut bytes::BytesMut,
    (need, framed): (usize, usize),
    chunk: usize,
) {
    let (len, cap) = (rbuf.len(), rbuf.capacity());
    let qlimit = srv.config.client_query_buffer_limit.get().max(0) as usize;
    let bounded = |want: usize| {
        want.min(qlimit.saturating_add(1))
            .min(len.saturating_mul(2).saturating_add(chunk))
    };
    if need > len && need.saturating_sub(framed + 2) >= BIG_ARG {
        let target = bounded(need);
        if target > cap {
            let mut grown = bytes::BytesMut::with_capacity(target);
            grown.extend_from_slice(rbuf);
            *rbuf = grown;
        }
        if rbuf.capacity() > len {
            return;
        }
    }
    if cap - len < chunk / 4 {
        rbuf.reserve(chunk.max(bounded(need).saturating_sub(len)));
    }
}

/// The query buffer's figures for [`Report::update`] (its length, the
/// size it counts as, the framed bytes): while a big argument (see
/// [`make_room`]) is still arriving, it counts at its announced size from
/// its header on, as Redis allocates it whole then, so a client is evicted
/// for it (`maxmemory-clients`) before all of it arrived, whatever the
/// network's pace. Only the bytes that came are allocated here (a header
/// alone commits no memory). `need` is the size the frame being read needs.
pub fn arriving(rbuf: &bytes::BytesMut, need: usize, framed: usize) -> (usize, usize, usize) {
    let (len, cap) = (rbuf.len(), rbuf.capacity());
    let big = len > 0 && need > len && need.saturating_sub(framed + 2) >= BIG_ARG;
    (len, if big { cap.max(need) } else { cap }, framed)
}

/// With `maxmemory-clients` set: evicts clients while the total is over it
/// (see `client_mem`); true when this connection was one of them.
pub fn evicted(srv: &Server, info: &ClientInfo) -> bool {
    check(srv);
    info.killed.load(Ordering::Relaxed)
}

/// Replicas' output memory beside the bytes waiting in their outboxes
/// (`repl::output_bytes`): the outboxes' spare allocation and their
/// connections' whole reply buffers, where the stream taken from the
/// outbox waits for the socket (obuf.rs). Allocations, as Redis counts a
/// replica's buffers (INFO `mem_clients_slaves`, left out of key eviction,
/// so used memory less it moves only with the dataset: a reply buffer
/// growing from its adaptive 1 KiB towards 16 KiB is no key memory either,
/// where Redis's 16 KiB buffer exists from the client's start).
pub fn replica_buffers(srv: &Server) -> u64 {
    if super::repl::count() == 0 {
        return 0;
    }
    let clients = srv.clients.snapshot();
    let replicas = clients.iter().filter(|c| !counted(c));
    replicas
        .map(|c| c.out_cap.load(Ordering::Relaxed) + c.outbox.spare() as u64)
        .sum()
}

/// Memory of clients being closed (evicted or killed) whose connections
/// have not let go of it yet: key eviction leaves it out, as Redis frees
/// such a client at once (else evicting clients for their output buffers
/// evicted keys as well while the closed connections were winding down).
/// Only looked for with client eviction on, where such bursts come from
/// (key eviction runs per command past `maxmemory`: no client walk else).
pub fn closing(srv: &Server) -> u64 {
    if srv.clients.eviction.limit() == 0 {
        return 0;
    }
    let clients = srv.clients.snapshot();
    let closing = clients.iter().filter(|c| c.killed.load(Ordering::Relaxed));
    closing.map(|c| c.tot_mem()).sum()
}

/// INFO memory `mem_clients_normal`, and the clients section's recent
/// maxima of input and output buffers.
pub fn figures(srv: &Server) -> (u64, u64, u64) {
    let (mut normal, mut max_in, mut max_out) = (0, 0, 0);
    for c in srv.clients.snapshot() {
        // A client being closed (evicted, killed) no longer counts: Redis
        // frees it at once.
        if !counted(&c) || c.killed.load(Ordering::Relaxed) {
            continue;
        }
        normal += c.tot_mem();
        max_in = max_in.max(c.qbuf.load(Ordering::Relaxed) + c.qbuf_free.load(Ordering::Relaxed));
        max_out = max_out.max(c.out_pending.load(Ordering::Relaxed) + c.outbox.pending() as u64);
    }
    (normal, max_in, max_out)
}
