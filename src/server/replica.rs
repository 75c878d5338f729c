//! The master side of SYNC: a connection that asks for it gets a snapshot
//! of the dataset as an RDB payload (`$<len>\r\n<bytes>`, no trailing CRLF,
//! as Redis sends it), then every write from that point on as the commands
//! the effect stream records (the same stream the AOF is written from:
//! `SELECT` when the database changes, transactions and scripts framed in
//! `MULTI` ... `EXEC`), then a `PING` every `repl-ping-replica-period`
//! seconds. This is what a replica's full synchronisation reads, and what
//! Redis's test suite reads to check propagation (`attach_to_replication_
//! stream`). There is no replication backlog or PSYNC: a replica that
//! reconnects synchronises in full again.
//!
//! The snapshot is the no-fork walk BGSAVE uses (`store::snapshot`): taken
//! with every shard held, at which moment the replica is registered, so
//! its stream starts exactly after the image. The stream is held back
//! until the payload is queued, then both go out through the client's
//! outbox (under the `replica` class's output buffer limits once live).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::persist::aof::encode;
use crate::server::Server;
use crate::server::client::ClientInfo;
use crate::store::{Effect, EffectSink, Locks};

/// The replicas attached to this server.
#[derive(Default)]
pub struct Replicas {
    n: AtomicUsize,
    list: Mutex<Vec<Arc<Replica>>>,
    /// The effect sink is registered on the first SYNC.
    sink_added: AtomicBool,
    last_ping_ms: AtomicI64,
}

struct Replica {
    info: Arc<ClientInfo>,
    state: Mutex<Stream>,
}

struct Stream {
    /// Until the payload is queued, the stream waits here.
    held: Option<Vec<u8>>,
    /// The database the replica's stream last selected.
    db: Option<usize>,
}

impl Replicas {
    /// How many replicas are attached (INFO `connected_slaves`).
    pub fn count(&self) -> usize {
        self.n.load(Ordering::Relaxed)
    }

    /// Detaches client `id` if it is a replica (disconnect).
    pub fn remove(&self, id: u64) {
        if self.count() == 0 {
            return;
        }
        let mut list = self.list.lock();
        list.retain(|r| r.info.id != id);
        self.n.store(list.len(), Ordering::Relaxed);
    }

    /// Appends `frame` (a command, or a group of them for database `db`)
    /// to every live replica's stream.
    fn feed(&self, srv: &Server, db: Option<usize>, frames: &dyn Fn(&mut Vec<u8>)) {
        let limits = limits(srv);
        let now = crate::server::now_ms();
        for r in self.list.lock().iter() {
            let mut st = r.state.lock();
            let mut buf = Vec::new();
            if let Some(db) = db
                && st.db != Some(db)
            {
                encode::select(&mut buf, db);
                st.db = Some(db);
            }
            frames(&mut buf);
            match st.held.as_mut() {
                Some(held) => held.extend_from_slice(&buf),
                None => r.info.outbox.append(&r.info, &buf, limits, now),
            }
        }
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

/// The sink the keyspace hands each write's effects to.
struct Sink(&'static Server);

impl EffectSink for Sink {
    fn effects(&self, records: &[Effect<'_>]) {
        let replicas = &self.0.replicas;
        if replicas.count() == 0 {
            return;
        }
        // Each record carries its database: a group may change it midway
        // (SELECT inside MULTI), so records are framed one by one.
        for r in records {
            replicas.feed(self.0, Some(r.db), &|out: &mut Vec<u8>| {
                encode::command(out, r.argv.iter().copied());
            });
        }
    }
}

/// Why SYNC could not start now.
pub enum SyncError {
    /// Another snapshot (a BGSAVE, a rewrite) is being walked: retry.
    Busy,
    Failed(String),
}

/// SYNC: registers `info` as a replica at the snapshot point (`locks` holds
/// nothing, or every shard) and writes the payload on a thread; the
/// stream follows it through the client's outbox.
pub fn start_sync(
    srv: &'static Server,
    info: &Arc<ClientInfo>,
    locks: &mut Locks,
) -> Result<(), SyncError> {
    if !srv.replicas.sink_added.swap(true, Ordering::AcqRel) {
        srv.ks.add_effect_sink(Arc::new(Sink(srv)));
    }
    let encoder = crate::persist::rdb::snap::encoder(srv);
    let mut snap = match srv.ks.snapshot(locks, encoder) {
        Ok(s) => s,
        Err(crate::store::snapshot::StartError::InProgress) => return Err(SyncError::Busy),
        Err(e) => return Err(SyncError::Failed(format!("{e:?}"))),
    };
    // Every shard is held: no write is half done, so the stream starts
    // exactly after the image.
    let replica = Arc::new(Replica {
        info: info.clone(),
        state: Mutex::new(Stream {
            held: Some(Vec::new()),
            db: None,
        }),
    });
    {
        let mut list = srv.replicas.list.lock();
        // The first PING comes a period after the link starts.
        srv.replicas
            .last_ping_ms
            .store(crate::server::now_ms(), Ordering::Relaxed);
        list.push(replica.clone());
        srv.replicas.n.store(list.len(), Ordering::Relaxed);
    }
    locks.release();
    crate::notice!("Replica {} asks for synchronization", info.addr);
    crate::notice!("Starting BGSAVE for SYNC with target: replica's socket");
    let spawned = std::thread::Builder::new()
        .name("ferrokv-sync".into())
        .spawn(move || {
            let never = AtomicBool::new(false);
            let mut pacer = crate::persist::rdb::snap::Pacer::new(0, &never, None);
            let mut rdb = Vec::new();
            let written =
                crate::persist::rdb::snap::write(srv, &mut snap, &mut rdb, false, &mut pacer);
            drop(snap);
            if let Err(e) = written {
                crate::warning!("SYNC failed: {e}");
                replica.info.request_kill();
                return;
            }
            let mut payload = Vec::with_capacity(rdb.len() + 24);
            encode::header(&mut payload, b'$', rdb.len());
            payload.extend_from_slice(&rdb);
            let mut st = replica.state.lock();
            let held = st.held.take().unwrap_or_default();
            // The payload is what the replica asked for: no limit applies.
            replica.info.outbox.write(&payload);
            if held.is_empty() {
                // Wake the connection for the payload.
                replica.info.outbox.append(&replica.info, &[], [0, 0, 0], 0);
            } else {
                replica
                    .info
                    .outbox
                    .append(&replica.info, &held, [0, 0, 0], 0);
            }
            drop(st);
            crate::notice!(
                "Synchronization with replica {} succeeded",
                replica.info.addr
            );
        });
    if let Err(e) = spawned {
        srv.replicas.remove(info.id);
        return Err(SyncError::Failed(e.to_string()));
    }
    Ok(())
}

/// The cron's part: a PING down every replica's stream each
/// `repl-ping-replica-period` seconds, so that a replica's timeout does not
/// end an idle link.
pub fn cron(srv: &Server) {
    let r = &srv.replicas;
    if r.count() == 0 {
        return;
    }
    let now = crate::server::now_ms();
    let period = srv.config.repl_ping_replica_period.get().max(1) * 1000;
    if now - r.last_ping_ms.load(Ordering::Relaxed) < period {
        return;
    }
    r.last_ping_ms.store(now, Ordering::Relaxed);
    r.feed(srv, None, &|out: &mut Vec<u8>| {
        encode::command(out, [&b"PING"[..]].into_iter());
    });
}
