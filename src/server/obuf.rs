//! `client-output-buffer-limit` for a connection's own replies (the pubsub
//! class's limit on published messages is enforced where they are appended,
//! `pubsub/outbox.rs`).
//!
//! A client's class is `pubsub` while it has subscriptions, `normal`
//! otherwise. When its class has a limit, the connection never waits for the
//! client to read: it writes what the socket takes, keeps the rest pending
//! and goes on reading and running commands, as Redis does; the pending
//! bytes are checked after every command, so a client that does not read its
//! replies is closed at the hard limit (or after the soft limit's seconds)
//! instead of holding server memory. Nothing pending is sent then, as in
//! Redis, which drops the output of a client scheduled to close.
//!
//! The same holds, without a class limit, while client memory is bounded
//! otherwise: by `maxmemory-clients` (the biggest clients are closed,
//! `client_mem`), or by `maxmemory` while memory is under it (replies
//! count as used memory, so keys are evicted for them, as in Redis).
//! Otherwise (the `normal` default, `0 0 0`, and no memory limit, or
//! memory over `maxmemory`) the connection also keeps reading and running
//! commands while its pending output is under [`UNBOUNDED_CAP`] (64 MiB),
//! and only past it waits for the client to read until it is under again:
//! Redis's buffers then grow without bound, ferrokv's stop at the cap, so
//! a client that never reads stalls its own pipeline there instead of
//! growing the server's memory (the buffer's allocation, `tot-mem`, may
//! reach twice the cap as it grows by doubling). Pending output counts in
//! CLIENT LIST `omem`/`tot-mem` either way.
//!
//! Published messages and a replica's stream wait in the client's outbox,
//! where their class's limit is checked (`cron` below for the soft one's
//! seconds); the connection takes them only while its own pending output
//! is empty, so at most one take waits here (for a replica counted as
//! replica memory, `client_mem::replica_buffers`).

use std::io;

use bytes::BytesMut;

use super::conn::Stream;
use tokio::io::Interest;

use super::Server;
use super::client::{ClientInfo, list_flags};
use super::stats::ThreadStats;
use crate::resp::Reply;

/// Index of the class in `client-output-buffer-limit` (`config::CLIENT_CLASSES`).
const NORMAL: usize = 0;
const PUBSUB: usize = 2;

/// Pending output a connection keeps while no limit of any kind bounds
/// client memory; past it the connection waits for its client to read.
pub const UNBOUNDED_CAP: usize = 64 << 20;

/// One connection's output limit state.
#[derive(Default)]
pub struct OutputLimit {
    /// `[hard, soft, soft_seconds]` of the client's class, read per batch.
    limits: [i64; 3],
    /// When the pending output first went over the soft limit (0: under it).
    soft_since_ms: i64,
    /// Client memory is bounded by a limit (module doc): no cap.
    bounded: bool,
}

impl OutputLimit {
    /// Reads the limits of the client's class and hands the hard one to the
    /// reply buffer (whose loops stop once past it). Called per batch.
    pub fn refresh(&mut self, srv: &Server, subscribed: bool, out: &mut Reply) {
        let class = if subscribed { PUBSUB } else { NORMAL };
        self.limits = srv.config.client_output_buffer_limit.get(class);
        out.limit = usize::try_from(self.limits[0]).unwrap_or(0);
        let maxmemory = srv.config.maxmemory.get();
        self.bounded = self.limits[0] > 0
            || self.limits[1] > 0
            || srv.clients.eviction.limit() > 0
            || (maxmemory > 0 && crate::alloc::used_memory() <= maxmemory as u64);
    }

    /// Most output kept pending before the connection waits for its
    /// client to read: [`UNBOUNDED_CAP`] unless a limit bounds client
    /// memory (module doc).
    pub fn cap(&self) -> usize {
        if self.bounded {
            usize::MAX
        } else {
            UNBOUNDED_CAP
        }
    }

    /// Whether a hard limit applies (then long pipelines are not flushed
    /// part-way: Redis writes a batch's replies only after running it).
    pub fn has_hard(&self) -> bool {
        self.limits[0] > 0
    }

    /// Whether `pending` bytes put the client over its limits at `now_ms`:
    /// at or past the hard limit, or at or past the soft one for longer than
    /// its seconds (Redis's rules).
    pub fn over(&mut self, pending: usize, now_ms: i64) -> bool {
        let [hard, soft, soft_secs] = self.limits;
        let pending = pending as i64;
        if hard > 0 && pending >= hard {
            return true;
        }
        if soft > 0 && pending >= soft {
            if self.soft_since_ms == 0 {
                self.soft_since_ms = now_ms;
                return false;
            }
            return now_ms - self.soft_since_ms > soft_secs * 1000;
        }
        self.soft_since_ms = 0;
        false
    }
}

/// Once a second from the cron thread: outboxes over their class's soft
/// limit for longer than its seconds are cut off even when nothing more is
/// appended (the hard limit is checked as frames are appended). Each
/// outbox is held to the class its appends are checked against: the
/// replica class for replicas' streams and monitors' lines (`repl.rs`,
/// `pubsub/monitor.rs`), the pubsub class for the others (a replica held to
/// the pubsub class's 32 MiB was cut off mid-stream).
pub fn cron(srv: &Server, now_ms: i64) {
    let limits = &srv.config.client_output_buffer_limit;
    let (pubsub, replica) = (limits.get(PUBSUB), limits.replica());
    if pubsub[1] <= 0 && replica[1] <= 0 {
        return;
    }
    for c in srv.clients.snapshot() {
        let class = if c.has_flag(list_flags::REPLICA | list_flags::MONITOR) {
            replica
        } else {
            pubsub
        };
        if class[1] > 0 {
            c.outbox.enforce(&c, class, now_ms);
        }
    }
}

/// Redis's log line for a client closed for its output.
pub fn log_close(info: &ClientInfo) {
    crate::warning!(
        "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
        info.id,
        info.addr
    );
}

/// Writes as much of `out` as the socket takes without waiting and keeps
/// the rest in `out`.
pub fn write_some<S: Stream>(sock: &mut S, out: &mut Reply, stats: &ThreadStats) -> io::Result<()> {
    let mut done = out.sent;
    let mut result = Ok(());
    while done < out.buf.len() {
        match sock.try_write_now(&out.buf[done..]) {
            Ok(0) => {
                result = Err(io::ErrorKind::WriteZero.into());
                break;
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    stats.net_output_bytes.add((done - out.sent) as u64);
    if done == out.buf.len() {
        out.buf.clear();
        out.sent = 0;
    } else if done >= out.buf.len() / 2 {
        // Copies at most what was written since the last compaction.
        out.buf.drain(..done);
        out.sent = 0;
    } else {
        out.sent = done;
    }
    if out.buf.is_empty() && out.buf.capacity() > super::client_mem::REPLY_BUF as usize {
        out.buf.shrink_to(16 * 1024);
    }
    result
}

/// Writes what the socket takes now; with more than `cap` still pending,
/// waits for the client to read until it is under `cap` again (the
/// connection reads no commands meanwhile), after `publish` showed what it
/// holds (CLIENT LIST, client eviction). A connection closed by CLIENT
/// KILL or client eviction is shut down, which ends the wait with an error.
pub async fn write_capped<S: Stream>(
    sock: &mut S,
    out: &mut Reply,
    stats: &ThreadStats,
    cap: usize,
    publish: impl FnOnce(&Reply),
) -> io::Result<()> {
    write_some(sock, out, stats)?;
    if out.pending() > cap {
        publish(out);
        while out.pending() > cap {
            sock.socket().ready(Interest::WRITABLE).await?;
            write_some(sock, out, stats)?;
        }
    }
    flush_layered(sock, out).await
}

/// Once all of `out` went into a TLS stream, sends what the stream still
/// holds (bounded by its own buffer): nothing else would make it go.
async fn flush_layered<S: Stream>(sock: &mut S, out: &Reply) -> io::Result<()> {
    if S::LAYERED && out.buf.is_empty() {
        use tokio::io::AsyncWriteExt;
        sock.flush().await?;
    }
    Ok(())
}

/// What ended [`wait_pending`].
pub enum Pending {
    /// The client sent this many bytes, read into the query buffer (0: it
    /// closed).
    Input(usize),
    /// Everything pending was written.
    Drained,
    /// Still over the soft limit after its seconds, with no traffic.
    OverLimit,
}

/// With output pending: waits until the socket takes more of it (written at
/// once) or the client sent something (read into `rbuf` here: a readiness
/// a read finds empty is cleared and waited for again, so the connection
/// never waits on a read while the client waits on its replies). Checks the
/// limits once a second meanwhile, as Redis's client cron does, so a client
/// over its soft limit is closed even when nothing more is added. Err when
/// the socket failed.
pub async fn wait_pending<S: Stream>(
    sock: &mut S,
    out: &mut Reply,
    stats: &ThreadStats,
    limit: &mut OutputLimit,
    rbuf: &mut BytesMut,
) -> io::Result<Pending> {
    loop {
        let tick = tokio::time::sleep(std::time::Duration::from_secs(1));
        let ready = tokio::select! {
            r = sock.socket().ready(Interest::READABLE | Interest::WRITABLE) => r?,
            () = tick => {
                if limit.over(out.pending(), super::now_ms()) {
                    return Ok(Pending::OverLimit);
                }
                continue;
            }
        };
        if ready.is_writable() {
            write_some(sock, out, stats)?;
        }
        if ready.is_readable() || ready.is_read_closed() {
            match sock.try_read_now(rbuf) {
                Ok(n) => return Ok(Pending::Input(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if out.buf.is_empty() {
            flush_layered(sock, out).await?;
            return Ok(Pending::Drained);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OutputLimit;

    #[test]
    fn hard_and_soft_limits_as_redis() {
        let mut l = OutputLimit {
            limits: [100, 0, 0],
            ..Default::default()
        };
        assert!(!l.over(99, 0));
        assert!(l.over(100, 0));
        let mut l = OutputLimit {
            limits: [0, 50, 2],
            ..Default::default()
        };
        assert!(!l.over(60, 1_000));
        assert!(!l.over(60, 3_000), "exactly the soft seconds is allowed");
        assert!(
            !l.over(10, 3_100),
            "under the soft limit restarts the clock"
        );
        assert!(!l.over(60, 3_200));
        assert!(!l.over(60, 5_200));
        assert!(l.over(60, 5_201));
    }
}
