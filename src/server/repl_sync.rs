//! A master's full synchronization from a snapshot (`store::snapshot`, as
//! BGSAVE takes it): PSYNC holds every shard only for the cut, the replica
//! is attached at that instant with its stream held back, and a thread
//! streams the payload to it as a diskless `$EOF:<mark>` bulk (for a
//! replica that announced `capa eof`), so clients keep being served while
//! the dataset is written out. Once the payload is sent, the stream held
//! back follows it and the replica is online.
//!
//! The payload waits for the replica to read (at most `WINDOW` bytes
//! queued in its outbox); the held-back stream counts against the
//! `replica` class's hard output limit. A replica that disconnects (or is
//! killed) stops the walk.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::persist::rdb::snap::{Pacer, encoder, write};
use crate::server::Server;
use crate::server::client::{Client, ClientInfo};
use crate::store::Locks;
use crate::store::snapshot::Snapshot;

/// Payload bytes queued in the outbox before the walk waits.
const WINDOW: usize = 1 << 20;

/// Starts a full synchronization of `client` from a snapshot; false when
/// none can be taken now (another snapshot runs): the caller serializes
/// the dataset itself.
pub fn start(srv: &'static Server, client: &mut Client, locks: &mut Locks) -> bool {
    let Ok(snap) = srv.ks.snapshot(locks, encoder(srv)) else {
        return false;
    };
    let mark = crate::server::random_hex(40);
    if !super::repl::attach_streaming(srv, client, &mark) {
        return true;
    }
    let info = client.info.clone();
    let delay = srv.config.rdb_key_save_delay.get();
    let spawned = std::thread::Builder::new()
        .name("ferrokv-repl-sync".into())
        .spawn(move || send_payload(srv, snap, info, mark, delay));
    if let Err(e) = spawned {
        crate::warning!("Can't start the replica's synchronization: {e}");
        client.info.request_kill();
    }
    true
}

/// The outbox of a replica receiving its payload.
struct Outbox {
    srv: &'static Server,
    info: Arc<ClientInfo>,
}

impl Write for Outbox {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "replica gone");
        loop {
            if self.info.killed.load(std::sync::atomic::Ordering::Relaxed)
                || self.info.outbox.dropped()
                || !super::repl::attached(self.info.id)
                || self.srv.shutting_down()
            {
                return Err(gone());
            }
            if self.info.outbox.pending() < WINDOW {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let now = crate::server::now_ms();
        self.info.outbox.append(&self.info, buf, [0, 0, 0], now);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn send_payload(
    srv: &'static Server,
    mut snap: Snapshot,
    info: Arc<ClientInfo>,
    mark: String,
    delay: i64,
) {
    let abort = AtomicBool::new(false);
    let mut pacer = Pacer::new(delay, &abort, None);
    let mut out = Outbox {
        srv,
        info: info.clone(),
    };
    let r = write(srv, &mut snap, &mut out, false, &mut pacer);
    drop(snap);
    let r = r.and_then(|()| out.write_all(mark.as_bytes()));
    match r {
        Ok(()) => {
            crate::notice!("Synchronization with replica {} succeeded", info.addr);
            super::repl::online(info.id);
        }
        Err(e) => {
            crate::warning!("Diskless rdb transfer to replica {} failed: {e}", info.addr);
            info.request_kill();
        }
    }
}
