//! One connection's life: read everything available, parse every complete
//! command, execute them all, write all replies with one syscall.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::Client;
use super::obuf::{self, OutputLimit};
use super::stats::ThreadStats;
use super::{Server, now_ms};
use crate::resp::{Frame, Limits, Parser, Reply};
use crate::store::Locks;

const READ_CHUNK: usize = 16 * 1024;
/// Replies beyond this are written before parsing more of a long pipeline.
const FLUSH_AT: usize = 64 * 1024;

pub async fn accept_loop(
    srv: &'static Server,
    listener: StdListener,
    workers: &'static [(tokio::runtime::Handle, Arc<ThreadStats>)],
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::warning!("listener: {e}");
            return;
        }
    };
    let mut next = 0usize;
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                crate::warning!("Accepting client connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        srv.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let _ = sock.set_nodelay(true);
        if srv.clients.len() as i64 >= srv.config.maxclients.get() {
            srv.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            let mut sock = sock;
            let _ = sock
                .write_all(b"-ERR max number of clients reached\r\n")
                .await;
            continue;
        }
        let (rt, stats) = &workers[next % workers.len()];
        next = next.wrapping_add(1);
        let stats = stats.clone();
        match sock.into_std() {
            Ok(std_sock) => {
                rt.spawn(async move {
                    if let Ok(sock) = TcpStream::from_std(std_sock) {
                        serve(srv, sock, stats).await;
                    }
                });
            }
            Err(e) => crate::warning!("handing off a connection: {e}"),
        }
    }
}

/// Serves one client until it quits, errs, or is killed.
pub async fn serve(srv: &'static Server, mut sock: TcpStream, stats: Arc<ThreadStats>) {
    use std::os::fd::AsRawFd;
    let (Ok(peer), Ok(local)) = (sock.peer_addr(), sock.local_addr()) else {
        return;
    };
    let info = srv
        .clients
        .register(peer, local, sock.as_raw_fd(), now_ms());
    let needs_auth = srv.config.requirepass.with(|p| !p.is_empty());
    let mut client = Client::new(info.clone(), !needs_auth);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = Parser::default();
    let mut out = Reply::new(false);
    let mut locks = Locks::default();
    let mut need = 0usize;
    let mut obuf = OutputLimit::default();

    'conn: loop {
        // Replies not yet taken (only with an output limit, see obuf.rs):
        // keep writing them, and keep reading commands meanwhile.
        if !out.is_empty() {
            match obuf::wait_pending(&sock, &mut out, &stats, &mut obuf).await {
                Ok(obuf::Pending::Input) => {}
                Ok(obuf::Pending::Drained) => continue 'conn,
                Ok(obuf::Pending::OverLimit) => {
                    obuf::log_close(&info);
                    break 'conn;
                }
                Err(_) => break 'conn,
            }
        }
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK.max(need.saturating_sub(rbuf.len())));
        }
        // Subscribers are exempt from the idle timeout, as in Redis.
        let timeout = if client.pubsub.is_empty() {
            srv.config.timeout.get()
        } else {
            0
        };
        let read = async {
            if timeout > 0 {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(timeout as u64),
                    sock.read_buf(&mut rbuf),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Ok(0),
                }
            } else {
                sock.read_buf(&mut rbuf).await
            }
        };
        // Only a client that has subscribed also waits on its outbox: the
        // plain request/reply path stays a single read.
        let woke = if client.pubsub.ever {
            tokio::select! {
                r = read => Woke::Read(r),
                _ = info.outbox.notified() => Woke::Outbox,
            }
        } else {
            Woke::Read(read.await)
        };
        let n = match woke {
            Woke::Read(Ok(0) | Err(_)) => break 'conn,
            Woke::Read(Ok(n)) => n,
            Woke::Outbox => {
                info.outbox.drain_into(&mut out.buf);
                if flush(&mut sock, &mut out, &stats).await.is_err() {
                    break 'conn;
                }
                continue 'conn;
            }
        };
        if info.killed.load(Ordering::Relaxed) {
            break 'conn;
        }
        stats.net_input_bytes.add(n as u64);
        info.qbuf.store(rbuf.len() as u64, Ordering::Relaxed);
        if rbuf.len() as i64 > srv.config.client_query_buffer_limit.get() {
            crate::warning!("Closing client that reached max query buffer length");
            break 'conn;
        }
        if rbuf.len() < need {
            continue;
        }
        let mut now = now_ms();
        let mut pos = 0;
        obuf.refresh(srv, !client.pubsub.is_empty(), &mut out);
        loop {
            let limits = Limits {
                max_bulk: srv.config.proto_max_bulk_len.get(),
                authenticated: client.authenticated,
            };
            // A CLIENT KILL from another connection stops the rest of the pipeline.
            if info.killed.load(Ordering::Relaxed) {
                break 'conn;
            }
            match parser.parse(&rbuf[pos..], limits) {
                Frame::Command { consumed } => {
                    let args = parser.args(&rbuf[pos..]);
                    crate::cmd::execute(srv, &mut client, &mut out, &mut locks, &stats, &args, now);
                    pos += consumed;
                    if obuf.over(out.len(), now) {
                        obuf::log_close(&info);
                        break 'conn;
                    }
                    if let Some(blocked) = client.blocked.take() {
                        let alive = wait_blocked(
                            srv,
                            (&mut sock, &mut rbuf, &mut out),
                            &mut locks,
                            &stats,
                            &info,
                            blocked,
                        )
                        .await;
                        if !alive {
                            break 'conn;
                        }
                        now = now_ms();
                    }
                    if client.close_after_reply {
                        let _ = flush(&mut sock, &mut out, &stats).await;
                        break 'conn;
                    }
                    // With a hard output limit a batch's replies go out
                    // after it ran, as in Redis (the limit bounds them).
                    if out.len() >= FLUSH_AT && !obuf.has_hard() {
                        if flush_batch(&mut sock, &mut out, &stats, &obuf)
                            .await
                            .is_err()
                        {
                            break 'conn;
                        }
                        now = now_ms();
                    }
                }
                Frame::Empty { consumed } => pos += consumed,
                Frame::Incomplete { need: n } => {
                    need = n;
                    break;
                }
                Frame::Error(msg) => {
                    crate::verbose!(
                        "Protocol error ({msg}) from client: id={} addr={}",
                        info.id,
                        info.addr
                    );
                    out.error(&format!("ERR Protocol error: {msg}"));
                    let _ = flush(&mut sock, &mut out, &stats).await;
                    break 'conn;
                }
            }
        }
        rbuf.advance(pos);
        info.qbuf.store(rbuf.len() as u64, Ordering::Relaxed);
        info.last_interaction_ms.store(now, Ordering::Relaxed);
        if !out.is_empty()
            && flush_batch(&mut sock, &mut out, &stats, &obuf)
                .await
                .is_err()
        {
            break 'conn;
        }
    }
    // Watches live in the shards: drop them with the connection.
    crate::cmd::multi::reset(&srv.ks, &mut client, &mut locks);
    locks.release();
    crate::cmd::pubsub::unsubscribe_all(srv, &mut client);
    info.mark_closed();
    srv.clients.unregister(info.id);
}

/// What woke an idle connection.
enum Woke {
    Read(std::io::Result<usize>),
    Outbox,
}

/// Parks the connection until its blocking command is served, times out or
/// is unblocked; input that arrives meanwhile is buffered, not run. Returns
/// false if the client went away.
async fn wait_blocked(
    srv: &'static Server,
    (sock, rbuf, out): (&mut TcpStream, &mut BytesMut, &mut Reply),
    locks: &mut Locks,
    stats: &ThreadStats,
    info: &super::client::ClientInfo,
    blocked: super::client::Blocked,
) -> bool {
    use crate::blocking::Outcome;
    let w = blocked.waiter;
    *info.waiter.lock() = Some(w.clone());
    let mut alive = flush(sock, out, stats).await.is_ok();
    let outcome = loop {
        if !alive || w.is_settled() {
            break w.finish(Outcome::TimedOut);
        }
        let sleep = async {
            match blocked.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        rbuf.reserve(READ_CHUNK);
        tokio::select! {
            _ = w.notified() => {}
            // A RESP3 subscriber may block: its messages keep flowing.
            _ = info.outbox.notified() => {
                info.outbox.drain_into(&mut out.buf);
                alive = flush(sock, out, stats).await.is_ok();
            }
            _ = sleep => break w.finish(Outcome::TimedOut),
            r = sock.read_buf(rbuf) => match r {
                Ok(0) | Err(_) => alive = false,
                Ok(n) => stats.net_input_bytes.add(n as u64),
            },
        }
        if info.killed.load(Ordering::Relaxed) {
            alive = false;
        }
    };
    *info.waiter.lock() = None;
    crate::blocking::unregister(&srv.ks, locks, &w);
    match outcome {
        Outcome::Served(served) => {
            if let Some(d) = served.then {
                let now = now_ms();
                locks.shard_for(&srv.ks, w.db, &d.key).touch_watched(&d.key);
                let mut slot = locks.key(&srv.ks, w.db, &d.key, now);
                (d.push)(&mut slot, d.left, &d.value);
                if locks.any_ready() {
                    crate::blocking::serve_ready(&srv.ks, locks, now);
                }
                locks.release();
            }
            out.buf.extend_from_slice(&served.reply);
        }
        Outcome::TimedOut => out.buf.extend_from_slice(&w.timeout_reply),
        Outcome::Unblocked { .. } => {
            out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        }
    }
    alive
}

/// Writes a batch's replies: all of them, or with an output limit what the
/// socket takes now (the rest stays pending and counts against the limit).
async fn flush_batch(
    sock: &mut TcpStream,
    out: &mut Reply,
    stats: &ThreadStats,
    limit: &OutputLimit,
) -> std::io::Result<()> {
    if limit.active() {
        obuf::write_some(sock, out, stats)
    } else {
        flush(sock, out, stats).await
    }
}

async fn flush(sock: &mut TcpStream, out: &mut Reply, stats: &ThreadStats) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let r = sock.write_all(&out.buf).await;
    stats.net_output_bytes.add(out.buf.len() as u64);
    out.buf.clear();
    if out.buf.capacity() > 1024 * 1024 {
        out.buf.shrink_to(16 * 1024);
    }
    r
}
