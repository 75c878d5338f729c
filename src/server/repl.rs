//! The master side of replication, as far as a client can attach to it:
//! SYNC and PSYNC (always a full resynchronization) send the dataset as an
//! RDB payload, then the connection receives every write effect (section 1,
//! step 5 of ARCHITECTURE.md: the stream the AOF also records), framed as
//! Redis frames its replication stream: a `SELECT` before the first record
//! and whenever the database changes, transactions and scripts as
//! `MULTI` ... `EXEC`, a `PING` every `repl-ping-replica-period` seconds.
//! What attaches this way: `redis-cli --replica` / `--rdb`, the test
//! suite's replication-stream checks, a Redis replica doing a full sync.
//! There is no backlog (no partial resynchronization) and no replica
//! offsets: a replica's acknowledgements are read and ignored.
//!
//! Delivery goes through each replica's outbox (as pub/sub messages and
//! MONITOR lines do), under the `replica` class of
//! `client-output-buffer-limit`: a replica that does not read is cut off,
//! never buffered without bound. One encoding serves every replica, as
//! Redis's single stream does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::persist::aof::encode;
use crate::server::Server;
use crate::server::client::{Client, ClientInfo, ReplyMode, list_flags};
use crate::store::{Effect, EffectSink};

static FEED: Feed = Feed {
    n: AtomicUsize::new(0),
    inner: Mutex::new(Inner {
        db: None,
        replicas: Vec::new(),
    }),
};
/// The effect sink is registered with the first replica.
static SINK: OnceLock<()> = OnceLock::new();

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

/// INFO replication's `slaveN:` lines, as Redis prints them (offsets are
/// always 0: there is no backlog).
pub fn info_lines() -> Vec<String> {
    if count() == 0 {
        return Vec::new();
    }
    let now = crate::server::now_ms();
    let inner = FEED.inner.lock();
    inner
        .replicas
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let ip = r.info.addr.rsplit_once(':').map_or("", |(ip, _)| ip);
            let last = if r.ack_ms > 0 { r.ack_ms } else { r.since_ms };
            format!(
                "slave{i}:ip={ip},port={},state=online,offset=0,lag={}",
                r.port,
                (now - last).max(0) / 1000
            )
        })
        .collect()
}

/// Each attached replica's address and announced port (ROLE).
pub fn addresses() -> Vec<(String, u16)> {
    if count() == 0 {
        return Vec::new();
    }
    let inner = FEED.inner.lock();
    inner
        .replicas
        .iter()
        .map(|r| {
            let ip = r.info.addr.rsplit_once(':').map_or("", |(ip, _)| ip);
            (ip.to_string(), r.port)
        })
        .collect()
}

/// Replicas attached now (INFO replication).
pub fn count() -> usize {
    FEED.n.load(Ordering::Relaxed)
}

struct Sink;

impl EffectSink for Sink {
    fn effects(&self, records: &[Effect<'_>]) {
        if FEED.n.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut inner = FEED.inner.lock();
        let mut frame = Vec::new();
        for r in records {
            if inner.db != Some(r.db) {
                encode::select(&mut frame, r.db);
                inner.db = Some(r.db);
            }
            encode::command(&mut frame, r.argv.iter().copied());
        }
        send(&inner, &frame);
    }
}

fn send(inner: &Inner, frame: &[u8]) {
    let now = crate::server::now_ms();
    for r in &inner.replicas {
        r.info.outbox.append(&r.info, frame, limits(r.srv), now);
    }
}

/// The `replica` class of `client-output-buffer-limit`.
fn limits(srv: &Server) -> [i64; 3] {
    let class = crate::config::CLIENT_CLASSES
        .iter()
        .position(|c| *c == "slave")
        .unwrap_or(1);
    srv.config.client_output_buffer_limit.get(class)
}

/// Makes `client` a replica: `preamble` (PSYNC's `+FULLRESYNC` line, or
/// nothing), the RDB payload as a bulk without its final CRLF (as Redis
/// sends it), then the stream. The caller holds every shard (the command's
/// footprint), so no write falls between the snapshot and the stream.
/// Returns false if the client already is a replica (Redis ignores the
/// command then).
pub fn attach(srv: &'static Server, client: &mut Client, preamble: &[u8], rdb: &[u8]) -> bool {
    if client.info.has_flag(list_flags::REPLICA) {
        return false;
    }
    SINK.get_or_init(|| srv.ks.add_effect_sink(Arc::new(Sink)));
    let mut inner = FEED.inner.lock();
    let out = &client.info.outbox;
    out.write(preamble);
    let mut head = Vec::new();
    encode::header(&mut head, b'$', rdb.len());
    out.write(&head);
    out.write(rdb);
    inner.db = None;
    inner.replicas.push(Replica {
        info: client.info.clone(),
        srv,
        ack_ms: 0,
        since_ms: crate::server::now_ms(),
        port: take_port(&client.info),
    });
    FEED.n.store(inner.replicas.len(), Ordering::Relaxed);
    drop(inner);
    // The connection now waits on its outbox, and a replica gets no
    // replies to what it sends (acknowledgements, PINGs).
    client.pubsub.ever = true;
    client.reply_mode = ReplyMode::Off;
    client.info.set_flag(list_flags::REPLICA, true);
    true
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
}

/// REPLCONF ACK from replica `id`: it is in touch.
pub fn ack(id: u64) {
    let mut inner = FEED.inner.lock();
    let now = crate::server::now_ms();
    if let Some(r) = inner.replicas.iter_mut().find(|r| r.info.id == id) {
        r.ack_ms = now;
    }
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
    let inner = FEED.inner.lock();
    let mut frame = Vec::new();
    encode::command(&mut frame, [&b"PING"[..]].into_iter());
    send(&inner, &frame);
}
