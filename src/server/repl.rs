//! The master side of replication, as far as a client can attach to it:
//! SYNC and PSYNC (always a full resynchronization) send the dataset as an
//! RDB payload, then the connection receives every write effect (section 1,
//! step 5 of ARCHITECTURE.md: the stream the AOF also records), framed as
//! Redis frames its replication stream: a `SELECT` before the first record
//! and whenever the database changes, transactions and scripts as
//! `MULTI` ... `EXEC`, a `PING` every `repl-ping-replica-period` seconds.
//! What attaches this way: `redis-cli --replica` / `--rdb`, the test
//! suite's replication-stream checks, a Redis replica doing a full sync.
//! There is no backlog (no partial resynchronization). The stream is
//! counted (`master_repl_offset`) from the first replica on, as Redis
//! counts it once its backlog exists; each replica's `REPLCONF ACK
//! <offset>` is kept (INFO, ROLE, WAIT, `min-replicas-to-write`).
//!
//! Delivery goes through each replica's outbox (as pub/sub messages and
//! MONITOR lines do), under the `replica` class of
//! `client-output-buffer-limit`: a replica that does not read is cut off,
//! never buffered without bound. One encoding serves every replica, as
//! Redis's single stream does.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::blocking::Waiter;
use crate::persist::aof::encode;
use crate::server::Server;
use crate::server::client::{Client, ClientInfo, ReplyMode, list_flags};
use crate::store::{Effect, EffectSink};

/// `master_repl_offset` while this server is a master: bytes of the
/// stream since it was first counted.
static OFFSET: AtomicI64 = AtomicI64::new(0);
/// INFO stats: full synchronizations served, PSYNCs continued, PSYNCs
/// that named an offset or id this server could not continue from.
static SYNC_FULL: AtomicI64 = AtomicI64::new(0);
static SYNC_PARTIAL_OK: AtomicI64 = AtomicI64::new(0);
static SYNC_PARTIAL_ERR: AtomicI64 = AtomicI64::new(0);

/// `sync_full`, `sync_partial_ok`, `sync_partial_err` (INFO stats).
pub fn sync_counts() -> (i64, i64, i64) {
    (
        SYNC_FULL.load(Ordering::Relaxed),
        SYNC_PARTIAL_OK.load(Ordering::Relaxed),
        SYNC_PARTIAL_ERR.load(Ordering::Relaxed),
    )
}

/// A full synchronization starts; `psync_refused`: a PSYNC that named a
/// history (not `?`) could not continue.
pub fn count_full_sync(psync_refused: bool) {
    SYNC_FULL.fetch_add(1, Ordering::Relaxed);
    if psync_refused {
        SYNC_PARTIAL_ERR.fetch_add(1, Ordering::Relaxed);
    }
}

/// Set by the first replica: from then on the stream is counted (Redis's
/// backlog, created then, is what its offset counts).
static COUNTING: AtomicBool = AtomicBool::new(false);
static IDS: Mutex<Option<Ids>> = Mutex::new(None);

/// The replication ids: this server's history, and the one it continues.
#[derive(Clone)]
pub struct Ids {
    pub replid: String,
    pub replid2: String,
    /// The offset up to which `replid2` is valid (-1: none).
    pub second_offset: i64,
}

/// The replication ids (INFO replication, PSYNC).
pub fn ids() -> Ids {
    IDS.lock()
        .get_or_insert_with(|| Ids {
            replid: crate::server::random_hex(40),
            replid2: "0".repeat(40),
            second_offset: -1,
        })
        .clone()
}

/// `master_repl_offset`: the stream's length here, or, on a replica, what
/// it applied of its master's.
pub fn master_offset() -> i64 {
    if crate::server::replica::is_replica() {
        crate::server::replica::offset()
    } else {
        OFFSET.load(Ordering::Relaxed)
    }
}

/// A replica synchronized with a master: its id and offset are ours now,
/// and the backlog (kept from then on, for its own replicas) starts after
/// `offset`.
pub fn adopt(srv: &'static Server, replid: &str, offset: i64) {
    drop(start(srv));
    take_history(replid, offset);
    let mut inner = FEED.inner.lock();
    inner.backlog.clear();
    inner.backlog_end = offset;
}

/// PSYNC continued under a new id (the master was promoted): the old one
/// stays valid up to here as the second id; this server's replicas
/// reconnect to learn the new one.
pub fn adopt_id(replid: &str) {
    let old = ids();
    if old.replid == replid {
        return;
    }
    *IDS.lock() = Some(Ids {
        replid: replid.to_string(),
        replid2: old.replid,
        second_offset: master_offset() + 1,
    });
    disconnect_all();
}

/// REPLICAOF NO ONE: a new history starting at `offset`; the master's id
/// stays valid up to it as the second id, as in Redis.
pub fn promote(offset: i64) {
    let old = ids();
    *IDS.lock() = Some(Ids {
        replid: crate::server::random_hex(40),
        replid2: old.replid,
        second_offset: offset + 1,
    });
    OFFSET.store(offset, Ordering::Relaxed);
    let mut inner = FEED.inner.lock();
    inner.backlog_end = offset;
    // The next record starts with a SELECT: replicas continuing from
    // here may be in any database.
    inner.db = None;
}

/// The database this master's stream is in (`None`: the next record
/// selects one).
pub fn stream_db() -> Option<usize> {
    FEED.inner.lock().db
}

/// Closes every replica's connection (this server's data was replaced:
/// they synchronize again).
pub fn disconnect_all() {
    let inner = FEED.inner.lock();
    for r in &inner.replicas {
        r.info.request_kill();
    }
}

static FEED: Feed = Feed {
    n: AtomicUsize::new(0),
    inner: Mutex::new(Inner {
        db: None,
        replicas: Vec::new(),
        backlog: std::collections::VecDeque::new(),
        backlog_end: 0,
    }),
};
/// The effect sink is registered with the first replica.
static SINK: OnceLock<()> = OnceLock::new();
/// The server, for the backlog's size (set with the sink).
static SRV: OnceLock<&'static Server> = OnceLock::new();

struct Feed {
    /// Replicas attached (the effect path's one load while there are none).
    n: AtomicUsize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The database of the last record sent; `None` forces a `SELECT`
    /// (a replica just attached).
    db: Option<usize>,
    replicas: Vec<Replica>,
    /// The last `repl-backlog-size` bytes of the stream (PSYNC continues
    /// from them), and the offset of its last byte.
    backlog: std::collections::VecDeque<u8>,
    backlog_end: i64,
}

impl Inner {
    fn push_backlog(&mut self, bytes: &[u8], cap: usize) {
        self.backlog_end += bytes.len() as i64;
        self.backlog.extend(bytes);
        self.trim(cap);
    }

    /// Drops the backlog's oldest bytes beyond `cap`, except those a held
    /// replica still needs (the backlog outgrows its size for them, as
    /// Redis 7's shared replication buffer does); its memory is given back
    /// once it is mostly unused.
    fn trim(&mut self, cap: usize) {
        let end = self.backlog_end;
        let held = self
            .replicas
            .iter()
            .filter_map(|r| r.pending)
            .map(|from| (end - from + 1).max(0) as usize)
            .max()
            .unwrap_or(0);
        let keep = cap.max(held);
        let excess = self.backlog.len().saturating_sub(keep);
        if excess > 0 {
            self.backlog.drain(..excess);
        }
        if self.backlog.capacity() > 2 * keep.max(1 << 16) {
            self.backlog.shrink_to(keep);
        }
    }

    /// Replica `id` has its payload and acknowledged it: the stream held
    /// back since its snapshot goes to its outbox, from the backlog that
    /// kept it (a replica whose start the backlog lost is closed).
    fn release(&mut self, id: u64, now: i64) {
        let first = self.backlog_first();
        let Inner {
            backlog, replicas, ..
        } = self;
        let Some(r) = replicas.iter_mut().find(|r| r.info.id == id) else {
            return;
        };
        let Some(from) = r.pending.take() else {
            return;
        };
        if from < first {
            r.info.request_kill();
        } else {
            let skip = (from - first) as usize;
            let (a, b) = backlog.as_slices();
            let limits = limits(r.srv);
            if skip < a.len() {
                r.info.outbox.append(&r.info, &a[skip..], limits, now);
                r.info.outbox.append(&r.info, b, limits, now);
            } else {
                r.info
                    .outbox
                    .append(&r.info, &b[(skip - a.len()).min(b.len())..], limits, now);
            }
        }
        if let Some(srv) = SRV.get() {
            self.trim(backlog_cap(srv));
        }
    }

    /// The offset of the backlog's first byte (`backlog_end + 1` when it
    /// is empty).
    fn backlog_first(&self) -> i64 {
        self.backlog_end - self.backlog.len() as i64 + 1
    }
}

/// The memory the backlog holds (its allocation: INFO memory's
/// `mem_total_replication_buffers`, with the replicas' outboxes).
pub fn backlog_memory() -> usize {
    if !COUNTING.load(Ordering::Relaxed) {
        return 0;
    }
    FEED.inner.lock().backlog.capacity()
}

/// INFO replication's backlog lines: active, first byte's offset, length.
pub fn backlog_info() -> (bool, i64, usize) {
    if !COUNTING.load(Ordering::Relaxed) {
        return (false, 0, 0);
    }
    let inner = FEED.inner.lock();
    (true, inner.backlog_first(), inner.backlog.len())
}

struct Replica {
    info: Arc<ClientInfo>,
    srv: &'static Server,
    /// When it last sent REPLCONF ACK (ms; 0: never).
    ack_ms: i64,
    /// When it attached (its lag until it acknowledges).
    since_ms: i64,
    /// The port it announced with REPLCONF listening-port (0: none).
    port: u16,
    /// The offset it last acknowledged.
    ack_off: i64,
    /// While its payload is being sent (`repl_sync`): the stream since
    /// the snapshot, held back until the payload is out and the replica
    /// acknowledged it (the end of a `$EOF` payload is its last 40 bytes,
    /// so nothing may follow them before the replica has read them).
    /// Held back: the stream from this offset on, kept in the backlog
    /// (which outgrows `repl-backlog-size` for it, as Redis 7's shared
    /// replication buffer does) instead of a copy per replica.
    pending: Option<i64>,
    /// The payload is out: the first ACK releases `pending`.
    payload_sent: bool,
    /// An ACK came before the transfer noticed its payload was out (the
    /// replica read the end mark first): `online` releases `pending`.
    acked_early: bool,
    /// Waiting for a diskless transfer to start (`repl_sync`): nothing
    /// but keep-alive newlines sent yet.
    waiting: bool,
}

impl Replica {
    /// Its IP address, as INFO and ROLE print it.
    fn ip(&self) -> &str {
        self.info.addr.rsplit_once(':').map_or("", |(ip, _)| ip)
    }

    /// Seconds since its last acknowledgement (or since it attached).
    fn lag_secs(&self, now: i64) -> i64 {
        let last = if self.ack_ms > 0 {
            self.ack_ms
        } else {
            self.since_ms
        };
        (now - last).max(0) / 1000
    }

    /// Queues stream bytes: held back while the payload is sent (within
    /// the hard output limit), else into the outbox.
    fn deliver(&mut self, bytes: &[u8], now: i64, backlog_end: i64) {
        // Killed (CLIENT KILL, even inside the same transaction): nothing
        // more is sent to it, as Redis writes nothing to a client it closes.
        if self.info.killed.load(Ordering::Relaxed) {
            return;
        }
        let limits = limits(self.srv);
        match self.pending {
            Some(from) => {
                let held = backlog_end - from + 1;
                if limits[0] > 0 && held > limits[0] {
                    crate::warning!(
                        "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                        self.info.addr
                    );
                    self.pending = Some(backlog_end + 1);
                    self.info.request_kill();
                }
            }
            None => self.info.outbox.append(&self.info, bytes, limits, now),
        }
    }
}

/// Ports announced by REPLCONF listening-port before SYNC, by client id
/// (clients flagged `REPL_PORT` have an entry).
static PORTS: Mutex<Vec<(u64, u16)>> = Mutex::new(Vec::new());

/// REPLCONF listening-port: remembered for INFO once the client syncs.
pub fn announce_port(info: &ClientInfo, port: u16) {
    let mut ports = PORTS.lock();
    ports.retain(|(id, _)| *id != info.id);
    ports.push((info.id, port));
    info.set_flag(list_flags::REPL_PORT, true);
}

fn take_port(info: &ClientInfo) -> u16 {
    if !info.has_flag(list_flags::REPL_PORT) {
        return 0;
    }
    let mut ports = PORTS.lock();
    let port = ports
        .iter()
        .find(|(id, _)| *id == info.id)
        .map_or(0, |p| p.1);
    ports.retain(|(id, _)| *id != info.id);
    port
}

/// `f` of each attached replica, in attach order, with its index and the
/// time now (none attached: the feed's lock is not taken).
fn map_replicas<T>(mut f: impl FnMut(usize, &Replica, i64) -> T) -> Vec<T> {
    if count() == 0 {
        return Vec::new();
    }
    let now = crate::server::now_ms();
    let inner = FEED.inner.lock();
    inner
        .replicas
        .iter()
        .enumerate()
        .map(|(i, r)| f(i, r, now))
        .collect()
}

/// INFO replication's `slaveN:` lines, as Redis prints them.
pub fn info_lines() -> Vec<String> {
    map_replicas(|i, r, now| {
        format!(
            "slave{i}:ip={},port={},state={},offset={},lag={}",
            r.ip(),
            r.port,
            if r.pending.is_some() {
                "wait_bgsave"
            } else {
                "online"
            },
            r.ack_off,
            r.lag_secs(now)
        )
    })
}

/// Each attached replica's address, announced port and acknowledged
/// offset (ROLE).
pub fn addresses() -> Vec<(String, u16, i64)> {
    map_replicas(|_, r, _| (r.ip().to_string(), r.port, r.ack_off))
}

/// One attached replica as SHUTDOWN and FAILOVER look at it.
pub struct ReplicaView {
    /// Its IP address (as INFO prints it).
    pub ip: String,
    /// The port it announced (REPLCONF listening-port; 0: none).
    pub port: u16,
    /// The offset it last acknowledged.
    pub ack_off: i64,
    /// Its payload is out (Redis's `online` state).
    pub online: bool,
    /// Seconds since its last acknowledgement (0 until it is online).
    pub lag_secs: i64,
}

impl ReplicaView {
    /// How Redis's logs name a replica: the address it listens on.
    pub fn name(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// Every attached replica, in attach order.
pub fn views() -> Vec<ReplicaView> {
    map_replicas(|_, r, now| {
        let online = r.pending.is_none();
        ReplicaView {
            ip: r.ip().to_string(),
            port: r.port,
            ack_off: r.ack_off,
            online,
            lag_secs: if online { r.lag_secs(now) } else { 0 },
        }
    })
}

/// Bytes waiting in the replicas' outboxes (INFO memory's
/// `mem_clients_slaves`, memory eviction leaves out).
pub fn output_bytes() -> usize {
    if count() == 0 {
        return 0;
    }
    let inner = FEED.inner.lock();
    inner.replicas.iter().map(|r| r.info.outbox.pending()).sum()
}

/// Replicas attached now (INFO replication).
pub fn count() -> usize {
    FEED.n.load(Ordering::Relaxed)
}

struct Sink;

impl EffectSink for Sink {
    fn effects(&self, records: &[Effect<'_>]) {
        if !COUNTING.load(Ordering::Relaxed) {
            return;
        }
        // A replica passes on its master's stream verbatim ([`proxy`]):
        // its own clients' writes (a writable replica) stay local, as in
        // Redis.
        if crate::server::replica::is_replica() {
            return;
        }
        // A script's `redis.set_repl` may keep records from replicas.
        let records = crate::store::effects_for(records, crate::store::TO_REPLICAS);
        if records.is_empty() {
            return;
        }
        let mut inner = FEED.inner.lock();
        let mut frame = Vec::new();
        for r in records.iter() {
            if inner.db != Some(r.db) {
                encode::select(&mut frame, r.db);
                inner.db = Some(r.db);
            }
            encode::command(&mut frame, r.argv.iter().copied());
        }
        send(&mut inner, &frame);
    }
}

/// A replica's share: the bytes of its master's stream it applied, passed
/// on as they came (its offset counts them).
pub fn proxy(srv: &Server, bytes: &[u8]) {
    if !COUNTING.load(Ordering::Relaxed) || bytes.is_empty() {
        return;
    }
    let mut inner = FEED.inner.lock();
    inner.push_backlog(bytes, backlog_cap(srv));
    let now = crate::server::now_ms();
    let end = inner.backlog_end;
    for r in &mut inner.replicas {
        r.deliver(bytes, now, end);
    }
}

fn backlog_cap(srv: &Server) -> usize {
    srv.config.repl_backlog_size.get().max(1) as usize
}

/// Counts `frame` into the stream (a replica counts its master's stream
/// instead) and appends it to every replica's outbox.
fn send(inner: &mut Inner, frame: &[u8]) {
    if crate::server::replica::is_replica() {
        return;
    }
    OFFSET.fetch_add(frame.len() as i64, Ordering::Relaxed);
    if let Some(srv) = SRV.get() {
        inner.push_backlog(frame, backlog_cap(srv));
    }
    let now = crate::server::now_ms();
    let end = inner.backlog_end;
    for r in &mut inner.replicas {
        r.deliver(frame, now, end);
    }
}

/// The `replica` class of `client-output-buffer-limit`.
/// A hard limit below `repl-backlog-size` counts as that size, as in
/// Redis 7 (a replica continuing from the backlog would be cut off at
/// once otherwise; its share of the stream is the backlog's memory).
fn limits(srv: &Server) -> [i64; 3] {
    let mut l = srv.config.client_output_buffer_limit.replica();
    let backlog = srv.config.repl_backlog_size.get();
    if l[0] > 0 && l[0] < backlog {
        l[0] = backlog;
    }
    l
}

/// Makes `client` a replica: PSYNC's `+FULLRESYNC <id> <offset>` line
/// (`psync`; SYNC sends none), the RDB payload as a bulk without its final CRLF (as Redis
/// sends it), then the stream. The caller holds every shard (the command's
/// footprint), so no write falls between the snapshot and the stream.
/// Returns false if the client already is a replica (Redis ignores the
/// command then).
pub fn attach(srv: &'static Server, client: &mut Client, psync: bool, rdb: &[u8]) -> bool {
    if client.info.has_flag(list_flags::REPLICA) {
        return false;
    }
    let mut inner = start(srv);
    let out = &client.info.outbox;
    if psync {
        // Under the feed's lock: no PING is counted between the offset
        // named here and the replica's first byte of stream.
        let line = format!("+FULLRESYNC {} {}\r\n", ids().replid, master_offset());
        out.write(line.as_bytes());
    }
    let mut head = Vec::new();
    encode::header(&mut head, b'$', rdb.len());
    out.write(&head);
    out.write(rdb);
    inner.db = None;
    register(&mut inner, srv, client, 0);
    true
}

/// PSYNC <replid> <offset>: if this server's history holds that offset
/// (its id, or the previous one up to where it ended) and the backlog
/// still has it, the replica continues from there: `+CONTINUE <replid>`,
/// the backlog's bytes from `offset`, then the stream. False: a full
/// synchronization is needed.
pub fn try_continue(srv: &'static Server, client: &mut Client, replid: &[u8], offset: i64) -> bool {
    if client.info.has_flag(list_flags::REPLICA) || !COUNTING.load(Ordering::Relaxed) {
        return false;
    }
    let ids = ids();
    let known = replid == ids.replid.as_bytes()
        || (replid == ids.replid2.as_bytes() && offset <= ids.second_offset);
    if !known {
        return false;
    }
    let mut inner = start(srv);
    let first = inner.backlog_first();
    if offset < first || offset > inner.backlog_end + 1 {
        return false;
    }
    let out = &client.info.outbox;
    out.write(format!("+CONTINUE {}\r\n", ids.replid).as_bytes());
    let skip = (offset - first) as usize;
    let (a, b) = inner.backlog.as_slices();
    if skip < a.len() {
        out.write(&a[skip..]);
        out.write(b);
    } else {
        out.write(&b[skip - a.len()..]);
    }
    crate::notice!(
        "Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.",
        client.info.addr,
        inner.backlog_end + 1 - offset,
        offset
    );
    register(&mut inner, srv, client, offset - 1);
    SYNC_PARTIAL_OK.fetch_add(1, Ordering::Relaxed);
    true
}

/// Attaches `client` for a full synchronization streamed from a snapshot
/// taken now (`repl_sync`): `+FULLRESYNC`, the `$EOF:<mark>` header, and
/// the stream held back until [`online`]. False if it already is a
/// replica.
pub fn attach_streaming(srv: &'static Server, client: &mut Client, mark: &str) -> bool {
    if client.info.has_flag(list_flags::REPLICA) {
        return false;
    }
    let mut inner = start(srv);
    let line = format!(
        "+FULLRESYNC {} {}\r\n$EOF:{mark}\r\n",
        ids().replid,
        master_offset()
    );
    client.info.outbox.write(line.as_bytes());
    inner.db = None;
    register(&mut inner, srv, client, 0);
    let from = inner.backlog_end + 1;
    if let Some(r) = inner.replicas.last_mut() {
        r.pending = Some(from);
    }
    true
}

/// Attaches `client` to wait for the next diskless transfer
/// (`repl_sync`): counted as a replica (`wait_bgsave`), sent nothing but
/// keep-alive newlines until [`begin_transfer`]. False if it already is a
/// replica.
pub fn attach_waiting(srv: &'static Server, client: &mut Client) -> bool {
    if client.info.has_flag(list_flags::REPLICA) {
        return false;
    }
    let mut inner = start(srv);
    register(&mut inner, srv, client, 0);
    if let Some(r) = inner.replicas.last_mut() {
        // Nothing held yet: the transfer's start decides from where.
        r.pending = Some(i64::MAX);
        r.waiting = true;
    }
    true
}

/// Replicas waiting for a transfer, and when the first of them asked
/// (ms).
pub fn waiting() -> (usize, i64) {
    if count() == 0 {
        return (0, 0);
    }
    let inner = FEED.inner.lock();
    let w = inner.replicas.iter().filter(|r| r.waiting);
    w.fold((0, i64::MAX), |(n, t), r| (n + 1, t.min(r.since_ms)))
}

/// A newline to every waiting replica, which keeps its link alive while
/// the transfer is delayed (as Redis sends them).
pub fn keepalive_waiting() {
    let inner = FEED.inner.lock();
    for r in inner.replicas.iter().filter(|r| r.waiting) {
        r.info.outbox.write(b"\n");
    }
}

/// The transfer of every waiting replica starts now (the caller holds
/// every shard: the snapshot's instant): `+FULLRESYNC`, the `$EOF:<mark>`
/// header, and the stream from here held back until [`online`].
pub fn begin_transfer(mark: &str) -> (Vec<Arc<ClientInfo>>, String, i64) {
    let mut inner = FEED.inner.lock();
    let line = format!(
        "+FULLRESYNC {} {}\r\n$EOF:{mark}\r\n",
        ids().replid,
        master_offset()
    );
    let mut group = Vec::new();
    let from = inner.backlog_end + 1;
    for r in inner.replicas.iter_mut().filter(|r| r.waiting) {
        r.waiting = false;
        r.pending = Some(from);
        r.since_ms = crate::server::now_ms();
        r.info.outbox.write(line.as_bytes());
        group.push(r.info.clone());
    }
    if !group.is_empty() {
        inner.db = None;
    }
    (group, line, from)
}

/// Attaches `client` to a running disk-based transfer (`repl_sync`): the
/// same header and held-back stream as the replicas that started it.
pub fn attach_joining(srv: &'static Server, client: &mut Client, head: &str, from: i64) -> bool {
    if client.info.has_flag(list_flags::REPLICA) {
        return false;
    }
    let mut inner = start(srv);
    register(&mut inner, srv, client, 0);
    if let Some(r) = inner.replicas.last_mut() {
        r.pending = Some(from);
        r.info.outbox.write(head.as_bytes());
    }
    true
}

/// Whether client `id` is an attached replica.
pub fn attached(id: u64) -> bool {
    FEED.inner.lock().replicas.iter().any(|r| r.info.id == id)
}

/// The payload of replica `id` is sent: the stream held back follows its
/// first acknowledgement (as Redis starts the stream of a diskless sync).
pub fn online(id: u64) {
    let mut inner = FEED.inner.lock();
    let mut release = false;
    if let Some(r) = inner.replicas.iter_mut().find(|r| r.info.id == id) {
        r.payload_sent = true;
        release = r.acked_early;
    }
    if release {
        inner.release(id, crate::server::now_ms());
    }
}

/// The feed's lock, the sink registered and the backlog started.
fn start(srv: &'static Server) -> parking_lot::MutexGuard<'static, Inner> {
    SINK.get_or_init(|| srv.ks.add_effect_sink(Arc::new(Sink)));
    SRV.get_or_init(|| srv);
    let mut inner = FEED.inner.lock();
    if !COUNTING.swap(true, Ordering::Relaxed) {
        // The backlog starts here (its first byte is the next one).
        inner.backlog_end = master_offset();
    }
    inner
}

fn register(inner: &mut Inner, srv: &'static Server, client: &mut Client, ack_off: i64) {
    inner.replicas.push(Replica {
        info: client.info.clone(),
        srv,
        ack_ms: 0,
        since_ms: crate::server::now_ms(),
        port: take_port(&client.info),
        ack_off,
        pending: None,
        payload_sent: false,
        acked_early: false,
        waiting: false,
    });
    FEED.n.store(inner.replicas.len(), Ordering::Relaxed);
    // The connection now waits on its outbox, and a replica gets no
    // replies to what it sends (acknowledgements, PINGs).
    client.pubsub.ever = true;
    client.reply_mode = ReplyMode::Off;
    client.info.set_flag(list_flags::REPLICA, true);
}

/// Detaches client `id` (disconnect).
pub fn detach(info: &ClientInfo) {
    take_port(info);
    if !info.has_flag(list_flags::REPLICA) {
        return;
    }
    let mut inner = FEED.inner.lock();
    inner.replicas.retain(|r| r.info.id != info.id);
    FEED.n.store(inner.replicas.len(), Ordering::Relaxed);
    if let Some(srv) = SRV.get() {
        inner.trim(backlog_cap(srv));
    }
}

/// REPLCONF ACK <offset> from replica `id`: it is in touch, and holds
/// the stream up to `offset`.
pub fn ack(id: u64, offset: Option<i64>) {
    let mut inner = FEED.inner.lock();
    let now = crate::server::now_ms();
    let mut release = false;
    if let Some(r) = inner.replicas.iter_mut().find(|r| r.info.id == id) {
        if r.pending.is_some() {
            if r.payload_sent {
                release = true;
            } else {
                r.acked_early = true;
            }
        }
        r.ack_ms = now;
        if let Some(off) = offset
            && off > r.ack_off
        {
            r.ack_off = off;
        }
    }
    if release {
        inner.release(id, now);
    }
    drop(inner);
    if offset.is_some() {
        check_waits(crate::server::now_ms());
    }
}

/// Replicas that acknowledged `offset` or more (WAIT).
pub fn acked(offset: i64) -> i64 {
    if count() == 0 {
        return 0;
    }
    let inner = FEED.inner.lock();
    inner
        .replicas
        .iter()
        .filter(|r| r.ack_off >= offset)
        .count() as i64
}

/// A blocked WAIT: its client's waiter, the offset to be acknowledged,
/// how many replicas it wants and its deadline (ms; `None`: none).
struct Wait {
    waiter: Arc<Waiter>,
    offset: i64,
    want: i64,
    deadline_ms: Option<i64>,
}

static WAITS: Mutex<Vec<Wait>> = Mutex::new(Vec::new());

/// Registers a blocked WAIT, answered by [`check_waits`] with the number
/// of replicas that acknowledged `offset` once there are `want` of them
/// or the deadline passes.
pub fn add_wait(waiter: Arc<Waiter>, offset: i64, want: i64, deadline_ms: Option<i64>) {
    WAITS.lock().push(Wait {
        waiter,
        offset,
        want,
        deadline_ms,
    });
}

/// Answers the WAITs that have enough acknowledgements or timed out (on
/// every ACK and from the cron); forgets those whose client left.
fn check_waits(now_ms: i64) {
    let mut waits = WAITS.lock();
    if waits.is_empty() {
        return;
    }
    waits.retain(|w| {
        if !w.waiter.is_waiting() {
            return false;
        }
        let n = acked(w.offset);
        if n >= w.want || w.deadline_ms.is_some_and(|d| now_ms >= d) {
            w.waiter.complete(format!(":{n}\r\n").into_bytes());
            return false;
        }
        true
    });
}

/// Asks every replica for an acknowledgement (`REPLCONF GETACK *`, part
/// of the stream, as Redis sends it before a WAIT blocks).
pub fn request_acks() {
    if count() == 0 {
        return;
    }
    let mut inner = FEED.inner.lock();
    let mut frame = Vec::new();
    encode::command(&mut frame, [&b"REPLCONF"[..], b"GETACK", b"*"].into_iter());
    send(&mut inner, &frame);
}

/// Whether writes may go ahead under `min-replicas-to-write`: enough
/// replicas acknowledged within `min-replicas-max-lag` seconds (a client
/// attached by SYNC that never acknowledges does not count, as in Redis).
pub fn enough_good_replicas(srv: &Server) -> bool {
    let want = srv.config.min_replicas_to_write.get();
    let max_lag = srv.config.min_replicas_max_lag.get();
    if want <= 0 || max_lag <= 0 {
        return true;
    }
    let now = crate::server::now_ms();
    let inner = FEED.inner.lock();
    let good = inner
        .replicas
        .iter()
        .filter(|r| r.ack_ms > 0 && now - r.ack_ms <= max_lag * 1000)
        .count();
    good as i64 >= want
}

/// The cron's share: a `PING` every `repl-ping-replica-period` seconds
/// while replicas are attached (no `SELECT`: PING names no database).
pub fn cron(srv: &Server, now_ms: i64) {
    static LAST_PING_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    check_waits(now_ms);
    if count() == 0 {
        return;
    }
    let period_ms = srv.config.repl_ping_replica_period.get().max(1) * 1000;
    let last = LAST_PING_MS.load(Ordering::Relaxed);
    if now_ms - last < period_ms {
        return;
    }
    LAST_PING_MS.store(now_ms, Ordering::Relaxed);
    if last == 0 {
        // The first tick only starts the clock, as a replica just synced.
        return;
    }
    let mut inner = FEED.inner.lock();
    let mut frame = Vec::new();
    encode::command(&mut frame, [&b"PING"[..]].into_iter());
    send(&mut inner, &frame);
}

/// CONFIG RESETSTAT: the sync counters start again.
pub fn reset_sync_counts() {
    SYNC_FULL.store(0, Ordering::Relaxed);
    SYNC_PARTIAL_OK.store(0, Ordering::Relaxed);
    SYNC_PARTIAL_ERR.store(0, Ordering::Relaxed);
}

/// A master restarted on an RDB that names its history (`repl_aux`): a new
/// id, the saved one second (valid up to `offset`), and the stream goes on
/// from `offset` with the DELs the load counted (`fed_len` bytes, the last
/// of them `tail`) in a backlog, as Redis rebases its own.
pub fn resume_master(
    srv: &'static Server,
    replid: &str,
    offset: i64,
    tail: &[u8],
    fed_len: i64,
    db: Option<usize>,
) {
    *IDS.lock() = Some(Ids {
        replid: crate::server::random_hex(40),
        replid2: replid.to_string(),
        second_offset: offset + 1,
    });
    OFFSET.store(offset, Ordering::Relaxed);
    let mut inner = start(srv);
    inner.backlog.clear();
    inner.backlog_end = offset + fed_len - tail.len() as i64;
    inner.push_backlog(tail, backlog_cap(srv));
    OFFSET.store(offset + fed_len, Ordering::Relaxed);
    inner.db = db;
}

/// `replid` and `offset` become this server's own.
fn take_history(replid: &str, offset: i64) {
    let mut ids = IDS.lock();
    let cur = ids.get_or_insert_with(|| Ids {
        replid: String::new(),
        replid2: "0".repeat(40),
        second_offset: -1,
    });
    cur.replid = replid.to_string();
    drop(ids);
    OFFSET.store(offset, Ordering::Relaxed);
}

/// A replica restarted on an RDB that names its master's history: that id
/// and offset are ours (read when the `replicaof` directive makes this
/// server a replica), to continue from with the master.
pub fn resume_replica(replid: &str, offset: i64, db: usize) {
    take_history(replid, offset);
    FEED.inner.lock().db = Some(db);
}

/// A replica continued with its master (`+CONTINUE`): from here on it
/// keeps a backlog for its own replicas, if it had none yet (it restarted
/// on an RDB's history).
pub fn ensure_backlog(srv: &'static Server) {
    if !COUNTING.load(Ordering::Relaxed) {
        drop(start(srv));
    }
}

/// DEBUG REPLICATE: `argv` into the stream as it is, with no `SELECT`
/// (nor a change of the stream's database), as Redis feeds it; nothing
/// while no replica ever attached.
pub fn feed_raw(argv: &[&[u8]]) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    let mut frame = Vec::new();
    encode::command(&mut frame, argv.iter().copied());
    let mut inner = FEED.inner.lock();
    send(&mut inner, &frame);
}

/// The backlog's last `n` bytes at most (`None`: no backlog, or empty).
pub fn backlog_tail(n: usize) -> Option<Vec<u8>> {
    if !COUNTING.load(Ordering::Relaxed) {
        return None;
    }
    let inner = FEED.inner.lock();
    let len = inner.backlog.len();
    (len > 0).then(|| inner.backlog.range(len - n.min(len)..).copied().collect())
}
