//! One connection's life: read everything available, parse every complete
//! command, execute them all, write all replies with one syscall.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

use super::client::{Client, ClientInfo};
use super::client_mem;
use super::obuf::{self, OutputLimit};
use super::stats::ThreadStats;
use super::{Server, now_ms};
use crate::cmd::{Next, dispatch};
use crate::persist::aof;
use crate::resp::{Frame, Limits, Parser, Reply};
use crate::scripting::thread as script_thread;
use crate::store::Locks;

const READ_CHUNK: usize = 16 * 1024;
/// An emptied read buffer bigger than this is given back at once.
const SHRINK_ABOVE: usize = 1024 * 1024;
/// One bigger than this is given back once a batch used less than half of
/// it (Redis's `PROTO_RESIZE_THRESHOLD`: its query buffer follows its
/// recent peak).
const RESIZE_ABOVE: usize = 32 * 1024;
/// A connection idle this long with nothing buffered frees its buffer.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(2);
/// Replies beyond this are written before parsing more of a long pipeline.
const FLUSH_AT: usize = 64 * 1024;

/// A client's byte stream: a plain TCP socket, or TLS over one. The
/// connection code is generic over it, so the plain path stays as it was.
pub trait Stream: AsyncRead + AsyncWrite + Unpin {
    /// Whether read bytes can wait inside the stream (decrypted TLS
    /// records), where the socket's readiness does not show them, and
    /// written ones until a flush.
    const LAYERED: bool;
    /// The socket under it (addresses, descriptor, readiness).
    fn socket(&self) -> Socket<'_>;
    /// Writes what the stream takes now, without waiting: `WouldBlock`
    /// when it takes nothing (for a caller that must not wait on a client
    /// that does not read).
    fn try_write_now(&mut self, buf: &[u8]) -> std::io::Result<usize>;

    /// Reads what the stream has now (at most 16 KiB, within `buf`'s
    /// room) without waiting: `WouldBlock` when nothing, which also clears
    /// the socket's readiness, so a later wait for it is a real one (a
    /// socket once seen readable stays so until a read finds it empty).
    fn try_read_now(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        use std::task::{Context, Poll, Waker};
        let mut chunk = [0u8; 16 * 1024];
        let room = buf.capacity() - buf.len();
        let want = if room == 0 {
            chunk.len()
        } else {
            room.min(chunk.len())
        };
        let mut rb = tokio::io::ReadBuf::new(&mut chunk[..want]);
        let mut cx = Context::from_waker(Waker::noop());
        match std::pin::Pin::new(self).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                buf.extend_from_slice(rb.filled());
                Ok(rb.filled().len())
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Stream for TcpStream {
    const LAYERED: bool = false;
    fn socket(&self) -> Socket<'_> {
        Socket::Tcp(self)
    }
    fn try_write_now(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.try_write(buf)
    }
}

impl Stream for tokio_rustls::server::TlsStream<TcpStream> {
    const LAYERED: bool = true;
    fn socket(&self) -> Socket<'_> {
        Socket::Tcp(self.get_ref().0)
    }
    /// rustls takes plaintext into its bounded send buffer, then sends what
    /// the socket takes; the rest goes with the next write or flush.
    fn try_write_now(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::task::{Context, Poll, Waker};
        let mut cx = Context::from_waker(Waker::noop());
        let mut me = std::pin::Pin::new(self);
        let r = match me.as_mut().poll_write(&mut cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        };
        if let Poll::Ready(Err(e)) = me.poll_flush(&mut cx)
            && e.kind() != std::io::ErrorKind::WouldBlock
        {
            return Err(e);
        }
        r
    }
}

impl Stream for UnixStream {
    const LAYERED: bool = false;
    fn socket(&self) -> Socket<'_> {
        Socket::Unix(self)
    }
    fn try_write_now(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.try_write(buf)
    }
}

/// The socket under a [`Stream`]: TCP, or a Unix domain socket
/// (`unixsocket`, `super::unix`).
#[derive(Clone, Copy)]
pub enum Socket<'a> {
    Tcp(&'a TcpStream),
    Unix(&'a UnixStream),
}

impl<'a> Socket<'a> {
    /// The peer's and the local address as CLIENT LIST prints them (a
    /// Unix socket's path with port 0 for both, as Redis shows it).
    fn addrs(&self) -> Option<(String, String)> {
        match self {
            Socket::Tcp(s) => Some((
                s.peer_addr().ok()?.to_string(),
                s.local_addr().ok()?.to_string(),
            )),
            Socket::Unix(s) => {
                let local = s.local_addr().ok()?;
                let path = local.as_pathname()?.display().to_string();
                Some((format!("{path}:0"), format!("{path}:0")))
            }
        }
    }
    fn raw_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }
    pub async fn readable(self) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s) => s.readable().await,
            Socket::Unix(s) => s.readable().await,
        }
    }
    pub async fn ready(self, interest: tokio::io::Interest) -> std::io::Result<tokio::io::Ready> {
        match self {
            Socket::Tcp(s) => s.ready(interest).await,
            Socket::Unix(s) => s.ready(interest).await,
        }
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
        }
    }
}

pub async fn accept_loop(
    srv: &'static Server,
    listener: StdListener,
    workers: &'static [(tokio::runtime::Handle, Arc<ThreadStats>)],
    tls: bool,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::warning!("listener: {e}");
            return;
        }
    };
    let mut next = 0usize;
    let mut backoff = AcceptBackoff::default();
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            // A listener shut down for the exit fails every accept.
            Err(_) if srv.shutting_down() => return,
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        backoff.reset();
        let _ = sock.set_nodelay(true);
        if tls {
            // The handshake and the checks below happen on the worker.
            let (rt, stats) = &workers[next % workers.len()];
            next = next.wrapping_add(1);
            super::tls::hand_off(srv, sock, rt, stats.clone());
            continue;
        }
        // Both refusals write once without waiting: a peer that does not
        // read must not hold up the accept loop.
        if over_maxclients(srv, |m| drop(sock.try_write(m))) {
            continue;
        }
        if protected_mode_denies(srv, peer.ip()) {
            srv.clients.arrived();
            srv.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            let _ = sock.try_write(DENIED);
            continue;
        }
        hand_off(
            srv,
            workers,
            &mut next,
            sock.into_std(),
            TcpStream::from_std,
        );
    }
}

/// Past `maxclients`: counts the refusal and writes Redis's error once
/// through `write` (which must not wait). True if refused; otherwise the
/// connection holds a place until `serve` registers it (or the caller
/// gives it back with `ClientRegistry::arrived`).
pub(super) fn over_maxclients(srv: &Server, write: impl FnOnce(&[u8])) -> bool {
    if srv.clients.admit(srv.config.maxclients.get()) {
        return false;
    }
    srv.stats
        .rejected_connections
        .fetch_add(1, Ordering::Relaxed);
    write(b"-ERR max number of clients reached\r\n");
    true
}

/// Counts an accepted connection and gives it to the next worker (round
/// robin), which rebuilds the socket on its own runtime and serves it.
pub(super) fn hand_off<T: Send + 'static, S: Stream + Send + 'static>(
    srv: &'static Server,
    workers: &'static [(tokio::runtime::Handle, Arc<ThreadStats>)],
    next: &mut usize,
    std_sock: std::io::Result<T>,
    rebuild: fn(T) -> std::io::Result<S>,
) {
    srv.stats
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    let (rt, stats) = &workers[*next % workers.len()];
    *next = next.wrapping_add(1);
    let stats = stats.clone();
    match std_sock {
        Ok(std_sock) => {
            rt.spawn(async move {
                match rebuild(std_sock) {
                    Ok(sock) => serve(srv, sock, stats).await,
                    Err(_) => srv.clients.arrived(),
                }
            });
        }
        Err(e) => {
            srv.clients.arrived();
            crate::warning!("handing off a connection: {e}");
        }
    }
}

/// Redis 7.0's refusal of a non-local peer in protected mode.
pub(super) const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode with no password for the default user accepts only
/// 127.0.0.1 and ::1, as Redis 7.0 does: it compares the peer's address
/// with those two, so another 127.x address counts as remote.
pub(super) fn protected_mode_denies(srv: &Server, peer: std::net::IpAddr) -> bool {
    srv.config.protected_mode.get()
        && srv.acl.default_user().nopass
        && !super::client::is_local_ip(peer)
}

/// Failed accepts (out of descriptors, most often: the connection stays in
/// the backlog and accept fails again at once) back off up to a fifth of a
/// second and log at most once a second; existing clients go on meanwhile.
#[derive(Default)]
struct AcceptBackoff {
    delay_ms: u64,
    last_log: Option<std::time::Instant>,
}

impl AcceptBackoff {
    async fn failed(&mut self, e: &std::io::Error) {
        let now = std::time::Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1))
        {
            self.last_log = Some(now);
            // Redis logs "accept: " and strerror's text, without Rust's "(os error N)".
            let text = ferrokv_util::repr::strerror(e);
            crate::warning!("Accepting client connection: accept: {text}");
        }
        self.delay_ms = (self.delay_ms * 2).clamp(10, 200);
        tokio::time::sleep(std::time::Duration::from_millis(self.delay_ms)).await;
    }

    fn reset(&mut self) {
        self.delay_ms = 0;
    }
}

/// What a connection holds in the server: dropped however the connection's
/// task ends (a panic outside a command handler included), it drops the
/// client's watches, subscriptions and blocking wait and removes it from
/// CLIENT LIST.
struct Registered {
    srv: &'static Server,
    client: Client,
    locks: Locks,
    /// The client's memory figure in the clients' total.
    mem: client_mem::Report,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let (srv, client, locks) = (self.srv, &mut self.client, &mut self.locks);
        let info = client.info.clone();
        // Before the socket closes, so a CLIENT KILL cannot reach a reused descriptor.
        info.mark_closed();
        // A panic can leave shard locks held.
        locks.release();
        let waiter = client.blocked.take().map(|b| b.waiter);
        let waiter = waiter.or_else(|| info.waiter.lock().take());
        if let Some(w) = waiter {
            w.finish(crate::blocking::Outcome::TimedOut);
            crate::blocking::unregister(&srv.ks, locks, &w);
        }
        // Watches live in the shards: drop them with the connection.
        crate::cmd::multi::reset(&srv.ks, client, locks);
        locks.release();
        crate::cmd::pubsub::unsubscribe_all(srv, client);
        crate::cmd::pubsub::stop_monitoring(srv, client);
        // Freed while still a replica's, so used memory less the replicas'
        // buffers does not jump for a moment (Redis frees them at once).
        info.outbox.discard();
        super::repl::detach(&info);
        srv.tracking.disable(&info);
        self.mem.release();
        srv.clients.depart(&info);
    }
}

/// Serves one client until it quits, errs, or is killed. The connection
/// holds a place under `maxclients` (`over_maxclients`), which its
/// registration here takes over.
pub async fn serve<S: Stream>(srv: &'static Server, mut sock: S, stats: Arc<ThreadStats>) {
    let Some((peer, local)) = sock.socket().addrs() else {
        srv.clients.arrived();
        return;
    };
    let info = srv
        .clients
        .register_named(peer, local, sock.socket().raw_fd(), now_ms());
    srv.clients.arrived();
    if matches!(sock.socket(), Socket::Unix(_)) {
        info.set_flag(super::client::list_flags::UNIX_SOCKET, true);
    }
    let needs_auth = srv.acl.default_needs_auth();
    let mut reg = Registered {
        srv,
        client: Client::new(info.clone(), !needs_auth),
        locks: Locks::default(),
        mem: client_mem::Report::default(),
    };
    let (client, locks, mem) = (&mut reg.client, &mut reg.locks, &mut reg.mem);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = Parser::default();
    let mut out = Reply::new(false);
    let mut need = 0usize;
    let mut obuf = OutputLimit::default();
    // The last AOF record this connection's commands appended: no reply
    // goes out before it is on disk (`aof::must_wait`).
    let mut aof_seq = 0u64;
    let mut idle = IdleRelease::new(now_ms());

    'conn: loop {
        client_mem::make_room(srv, &mut rbuf, (need, parser.framed()), READ_CHUNK);
        // Replies not yet taken (under the output limit or cap, see
        // obuf.rs): keep writing them, and keep reading commands meanwhile
        // (what arrived is read there).
        let mut arrived = None;
        if !out.is_empty() {
            let waited =
                obuf::wait_pending(&mut sock, &mut out, &stats, &mut obuf, &mut rbuf).await;
            mem.update(client, (rbuf.len(), rbuf.capacity(), 0), &out);
            match waited {
                Ok(obuf::Pending::Input(n)) => arrived = Some(n),
                Ok(obuf::Pending::Drained) => continue 'conn,
                Ok(obuf::Pending::OverLimit) => {
                    obuf::log_close(&info);
                    break 'conn;
                }
                Err(_) => break 'conn,
            }
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
                    read_some(&mut sock, &mut rbuf, &info, &mut idle),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Ok(0),
                }
            } else {
                read_some(&mut sock, &mut rbuf, &info, &mut idle).await
            }
        };
        // Only a client that has subscribed, or speaks RESP3 (invalidation
        // pushes may come any time), also waits on its outbox: the plain
        // request/reply path stays a single read.
        let woke = if let Some(n) = arrived {
            drop(read);
            Woke::Read(Ok(n))
        } else if client.pubsub.ever || out.resp3 {
            tokio::select! {
                r = read => Woke::Read(r),
                () = info.outbox.notified() => Woke::Outbox,
            }
        } else {
            Woke::Read(read.await)
        };
        let n = match woke {
            Woke::Read(Ok(0) | Err(_)) => break 'conn,
            Woke::Read(Ok(n)) => n,
            Woke::Outbox => {
                // Room first, published, then the bytes: what the outbox
                // holds is never out of the figures for a moment (a
                // replica's stream is memory key eviction leaves out:
                // counted nowhere, it would look like keys' memory).
                // (A few tries while publishers keep appending, then the
                // bytes go anyway.)
                for tries in 1.. {
                    out.buf.reserve_exact(info.outbox.pending());
                    mem.update(client, (rbuf.len(), rbuf.capacity(), 0), &out);
                    if info.outbox.drain_within(&mut out.buf) {
                        break;
                    }
                    if tries == 4 {
                        info.outbox.drain_into(&mut out.buf);
                        break;
                    }
                }
                obuf.refresh(srv, !client.pubsub.is_empty(), &mut out);
                let q = (rbuf.len(), rbuf.capacity(), 0);
                let publish = |o: &Reply| mem.update(client, q, o);
                if flush_batch(&mut sock, &mut out, &stats, (&obuf, &info), publish)
                    .await
                    .is_err()
                {
                    break 'conn;
                }
                mem.update(client, (rbuf.len(), rbuf.capacity(), 0), &out);
                continue 'conn;
            }
        };
        if info.killed.load(Ordering::Relaxed) {
            break 'conn;
        }
        stats.net_input_bytes.add(n as u64);
        if over_query_limit(srv, &info, &rbuf) {
            break 'conn;
        }
        if rbuf.len() < need {
            // A command still arriving: its bytes count now (a batch that
            // runs publishes its figure at its end).
            mem.update(
                client,
                client_mem::arriving(&rbuf, need, parser.framed()),
                &out,
            );
            if client_mem::evicted(srv, &info) {
                break 'conn;
            }
            continue;
        }
        // What this batch holds and has room for, to size the buffer after it.
        let (peak, room) = (rbuf.len(), rbuf.capacity());
        // While the batch runs, CLIENT LIST shows it as the query buffer (as
        // Redis's holds its commands until they all ran).
        info.qbuf.store(peak as u64, Ordering::Relaxed);
        info.qbuf_free
            .store(room.saturating_sub(peak) as u64, Ordering::Relaxed);
        let mut now = now_ms();
        idle.since_ms = now;
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
                    let mark = aof::thread_seq();
                    let ran = execute(
                        srv,
                        (&mut sock, &mut out),
                        client,
                        locks,
                        &stats,
                        (&args, &rbuf[(pos + consumed).min(rbuf.len())..]),
                        (&mut now, &mut aof_seq),
                    )
                    .await;
                    if aof::thread_seq() != mark {
                        aof_seq = aof_seq.max(aof::thread_seq());
                    }
                    if !ran {
                        break 'conn;
                    }
                    pos += consumed;
                    if obuf.over(out.pending(), now) {
                        obuf::log_close(&info);
                        break 'conn;
                    }
                    // The output limit came first (it closed the client
                    // without counting it as evicted, as in Redis).
                    if srv.clients.eviction.limit() > 0 {
                        mem.update(client, (rbuf.len() - pos, rbuf.capacity(), 0), &out);
                        if client_mem::evicted(srv, &info) {
                            break 'conn;
                        }
                    }
                    if let Some(blocked) = client.blocked.take() {
                        let alive = wait_blocked(
                            srv,
                            (&mut sock, &mut rbuf, &mut out),
                            (locks, &mut *mem),
                            &stats,
                            client,
                            (blocked, &mut aof_seq),
                        )
                        .await;
                        if !alive {
                            break 'conn;
                        }
                        now = now_ms();
                    }
                    if client.close_after_reply {
                        durable(&mut aof_seq).await;
                        let _ = flush(&mut sock, &mut out, &stats).await;
                        break 'conn;
                    }
                    // With a hard output limit a batch's replies go out
                    // after it ran, as in Redis (the limit bounds them).
                    if out.pending() >= FLUSH_AT && !obuf.has_hard() {
                        durable(&mut aof_seq).await;
                        let q = (rbuf.len() - pos, rbuf.capacity(), 0);
                        let publish = |o: &Reply| mem.update(client, q, o);
                        if flush_batch(&mut sock, &mut out, &stats, (&obuf, &info), publish)
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
                    durable(&mut aof_seq).await;
                    let _ = flush(&mut sock, &mut out, &stats).await;
                    break 'conn;
                }
            }
        }
        rbuf.advance(pos);
        if rbuf.is_empty() {
            resize_idle_buffer(&mut rbuf, peak, room);
            parser.trim();
        }
        info.last_interaction_ms.store(now, Ordering::Relaxed);
        // Published before the replies go out: a client that saw its reply
        // sees its state (MULTI queue, watches) counted.
        let q = client_mem::arriving(&rbuf, need, parser.framed());
        mem.update(client, q, &out);
        if client_mem::evicted(srv, &info) {
            break 'conn;
        }
        durable(&mut aof_seq).await;
        let out_cap = out.buf.capacity();
        let publish = |o: &Reply| mem.update(client, q, o);
        if !out.is_empty()
            && flush_batch(&mut sock, &mut out, &stats, (&obuf, &info), publish)
                .await
                .is_err()
        {
            break 'conn;
        }
        if !out.is_empty() || out.buf.capacity() != out_cap {
            mem.update(client, q, &out);
        }
    }
    // What was never written is freed before the client leaves the figures
    // (a replica's buffers count as replica memory until it does).
    drop(out);
    // Watches live in the shards, which a script job may hold: wait for it
    // to end (without blocking the worker) before `reg` drops them and the
    // client leaves the server.
    let flight = match client.watch {
        Some(_) => Some(srv.scripting.enter(&stats.in_flight).await),
        None => None,
    };
    drop(reg);
    drop(flight);
}

/// Past `client-query-buffer-limit`: logs Redis's line; the caller closes
/// the connection. Checked after every read, a blocked client's included.
fn over_query_limit(srv: &Server, info: &super::client::ClientInfo, rbuf: &[u8]) -> bool {
    if (rbuf.len() as i64) <= srv.config.client_query_buffer_limit.get() {
        return false;
    }
    crate::warning!(
        "Closing client that reached max query buffer length: id={} addr={} laddr={} fd={} name={} qbuf={} (qbuf initial bytes: {})",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        String::from_utf8_lossy(&info.name()),
        rbuf.len(),
        crate::util::repr::quoted(&rbuf[..rbuf.len().min(64)])
    );
    true
}

/// Sizes an emptied read buffer after a batch that buffered `peak` bytes in
/// `room`: a big command's buffer is given back, a small one's front (the
/// bytes consumed) is reclaimed so the room shown in CLIENT LIST stays put.
fn resize_idle_buffer(rbuf: &mut BytesMut, peak: usize, room: usize) {
    if room > SHRINK_ABOVE || (room > RESIZE_ABOVE && peak < room / 2) {
        *rbuf = BytesMut::with_capacity(READ_CHUNK);
    } else {
        // An empty buffer reuses its consumed front without copying.
        rbuf.reserve(room);
    }
}

/// When a connection's empty read buffer is given back: once it waited
/// [`IDLE_RELEASE`] for input. One timer per connection, armed once and
/// moved only when it fires while the connection is busy (about once per
/// `IDLE_RELEASE`): a timer registered per read cost about 750
/// instructions per request, an eighth of a whole INCR at P1.
struct IdleRelease {
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// When the connection's last batch began (`now_ms`): idle since then.
    since_ms: i64,
}

impl IdleRelease {
    fn new(now: i64) -> IdleRelease {
        IdleRelease {
            timer: Box::pin(tokio::time::sleep(IDLE_RELEASE)),
            since_ms: now,
        }
    }

    /// Waits until `socket` is readable (false) or has been idle for
    /// `IDLE_RELEASE` (true).
    async fn wait(&mut self, socket: Socket<'_>) -> std::io::Result<bool> {
        let full = IDLE_RELEASE.as_millis() as i64;
        loop {
            tokio::select! {
                biased;
                r = socket.readable() => return r.map(|()| false),
                () = self.timer.as_mut() => {
                    let left = full - (now_ms() - self.since_ms);
                    let next = if left <= 0 { full } else { left };
                    self.timer.as_mut().reset(
                        tokio::time::Instant::now() + std::time::Duration::from_millis(next as u64),
                    );
                    if left <= 0 {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

/// Reads what the socket has. A connection with nothing buffered that stays
/// idle frees its buffer meanwhile (as Redis frees idle clients' query
/// buffers), taking a new one when bytes arrive.
async fn read_some<S: Stream>(
    sock: &mut S,
    rbuf: &mut BytesMut,
    info: &super::client::ClientInfo,
    idle: &mut IdleRelease,
) -> std::io::Result<usize> {
    if S::LAYERED && rbuf.is_empty() && rbuf.capacity() > 0 {
        // Decrypted bytes may wait inside the stream: wait by reading
        // (cancel-safe). Once that found nothing, only new bytes on the
        // socket can bring more.
        if let Ok(r) = tokio::time::timeout(IDLE_RELEASE, sock.read_buf(rbuf)).await {
            return r;
        }
        *rbuf = BytesMut::new();
        info.qbuf_free.store(0, Ordering::Relaxed);
        sock.socket().readable().await?;
    }
    if rbuf.is_empty() && rbuf.capacity() > 0 {
        // Bytes already there need no timer.
        match sock.socket().try_read_buf(rbuf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            r => return r,
        }
        if idle.wait(sock.socket()).await? {
            *rbuf = BytesMut::new();
            info.qbuf_free.store(0, Ordering::Relaxed);
            sock.socket().readable().await?;
        }
    }
    if rbuf.capacity() == 0 {
        rbuf.reserve(READ_CHUNK);
    }
    sock.read_buf(rbuf).await
}

/// Runs one command; false if the client went away. A command that runs
/// scripts goes to the script thread, and one that must wait for another
/// client's script waits here: either way this task waits and the worker
/// serves its other connections meanwhile. `after`: the bytes read after
/// the command (an EVAL debugging session reads its commands from them).
async fn execute<S: Stream>(
    srv: &'static Server,
    (sock, out): (&mut S, &mut Reply),
    client: &mut Client,
    locks: &mut Locks,
    stats: &ThreadStats,
    (args, after): (&crate::resp::Args<'_>, &[u8]),
    (now, aof_seq): (&mut i64, &mut u64),
) -> bool {
    let mut next = dispatch(srv, client, out, locks, stats, args, *now);
    loop {
        match next {
            Next::Done => break,
            Next::Script(cmd)
                if client.ldb != crate::scripting::ldb::Mode::Off
                    && matches!(cmd.name, "eval" | "eval_ro") =>
            {
                // SCRIPT DEBUG: the session talks on the socket, after
                // the replies before it.
                durable(aof_seq).await;
                if flush(sock, out, stats).await.is_err() {
                    return false;
                }
                let ctx = (*now, after);
                crate::scripting::ldb_link::run(srv, sock, client, out, stats, cmd, args, ctx)
                    .await;
                *aof_seq = (*aof_seq).max(aof::appended());
                *now = now_ms();
                break;
            }
            Next::Script(cmd) => {
                script_thread::run(srv, client, out, cmd, args, *now).await;
                // Its records were appended on the script thread: wait for
                // everything appended so far.
                *aof_seq = (*aof_seq).max(aof::appended());
                *now = now_ms();
                break;
            }
            Next::Settle => {
                super::settle::settle().await;
                client.settled = true;
                *now = now_ms();
                next = dispatch(srv, client, out, locks, stats, args, *now);
                client.settled = false;
            }
            Next::Wait { until_idle } => {
                // Earlier replies of the pipeline go out before the wait.
                durable(aof_seq).await;
                if flush(sock, out, stats).await.is_err() {
                    return false;
                }
                srv.scripting.wait_turn(srv, until_idle).await;
                *now = now_ms();
                next = dispatch(srv, client, out, locks, stats, args, *now);
            }
            Next::Paused => {
                if flush(sock, out, stats).await.is_err() {
                    return false;
                }
                wait_paused(srv, &client.info).await;
                *now = now_ms();
                next = dispatch(srv, client, out, locks, stats, args, *now);
            }
        }
    }
    // Clients it killed (CLIENT KILL) have let go of their memory before
    // its reply goes out, as in Redis.
    if !client.departing.is_empty() {
        let victims = std::mem::take(&mut client.departing);
        super::client::wait_departed(victims, &client.info).await;
    }
    true
}

/// Waits out a CLIENT PAUSE, counted as a blocked client meanwhile (the
/// count and flag drop however the wait ends, the connection closing
/// included).
async fn wait_paused(srv: &'static Server, info: &super::client::ClientInfo) {
    use super::client::list_flags;
    struct Counted<'a>(&'a super::client::ClientInfo);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            crate::blocking::BLOCKED_CLIENTS.fetch_sub(1, Ordering::Relaxed);
            self.0.set_flag(list_flags::BLOCKED, false);
        }
    }
    crate::blocking::BLOCKED_CLIENTS.fetch_add(1, Ordering::Relaxed);
    info.set_flag(list_flags::BLOCKED, true);
    let _counted = Counted(info);
    srv.pause.wait().await;
}

/// What woke an idle connection.
enum Woke {
    Read(std::io::Result<usize>),
    Outbox,
}

/// Parks the connection until its blocking command is served, times out or
/// is unblocked; input that arrives meanwhile is buffered, not run. Returns
/// false if the client went away.
async fn wait_blocked<S: Stream>(
    srv: &'static Server,
    (sock, rbuf, out): (&mut S, &mut BytesMut, &mut Reply),
    (locks, mem): (&mut Locks, &mut client_mem::Report),
    stats: &ThreadStats,
    client: &Client,
    (blocked, aof_seq): (super::client::Blocked, &mut u64),
) -> bool {
    use crate::blocking::Outcome;
    let info = &*client.info;
    let w = blocked.waiter;
    let failed = &stats.cmds[blocked.cmd_id].failed;
    *info.waiter.lock() = Some(w.clone());
    durable(aof_seq).await;
    let mut alive = flush(sock, out, stats).await.is_ok();
    let outcome = loop {
        if !alive || w.is_settled() {
            break w.finish(Outcome::TimedOut);
        }
        // Woken to serve itself (a BLMOVE whose destination's shard the
        // pushing command could not take): take the shards in order here.
        if w.take_retry() {
            let _flight = srv.scripting.enter(&stats.in_flight).await;
            crate::blocking::serve_self(&srv.ks, locks, &w, now_ms());
            continue;
        }
        let sleep = async {
            match blocked.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        rbuf.reserve(READ_CHUNK);
        tokio::select! {
            () = w.notified() => {}
            // A RESP3 subscriber may block: its messages keep flowing.
            () = info.outbox.notified() => {
                info.outbox.drain_into(&mut out.buf);
                alive = flush(sock, out, stats).await.is_ok();
                mem.update(client, (rbuf.len(), rbuf.capacity(), 0), out);
            }
            () = sleep => break w.finish(Outcome::TimedOut),
            r = sock.read_buf(rbuf) => match r {
                Ok(0) | Err(_) => alive = false,
                Ok(n) => {
                    stats.net_input_bytes.add(n as u64);
                    mem.update(client, (rbuf.len(), rbuf.capacity(), 0), out);
                    if over_query_limit(srv, info, rbuf) || client_mem::evicted(srv, info) {
                        alive = false;
                    }
                }
            },
        }
        if info.killed.load(Ordering::Relaxed) {
            alive = false;
        }
    };
    *info.waiter.lock() = None;
    info.set_flag(super::client::list_flags::BLOCKED, false);
    // The waiter's shards may be held by a script job: wait for it to end
    // without blocking the worker.
    let _flight = srv.scripting.enter(&stats.in_flight).await;
    crate::blocking::unregister(&srv.ks, locks, &w);
    info.set_flag(super::client::list_flags::BLOCKED, false);
    match outcome {
        Outcome::Served(served) => {
            if let Some(argv) = blocked.slowlog_argv {
                crate::cmd::slowlog::push(srv, info, argv, 0);
            }
            // Served by another client's command, whose records (the pop)
            // were appended before it handed the reply over.
            *aof_seq = (*aof_seq).max(aof::appended());
            // An error a blocked client is answered with (WRONGTYPE,
            // NOGROUP, UNBLOCKED) counts in errorstats, as in Redis.
            if let Some(text) = served.reply.strip_prefix(b"-") {
                let end = memchr::memchr(b'\r', text).unwrap_or(text.len());
                stats.count_error(&String::from_utf8_lossy(&text[..end]));
                failed.add(1);
            }
            out.buf.extend_from_slice(&served.reply);
        }
        Outcome::TimedOut => out.buf.extend_from_slice(&w.timeout_reply),
        Outcome::Unblocked { .. } => {
            let msg = "UNBLOCKED client unblocked via CLIENT UNBLOCK";
            stats.count_error(msg);
            failed.add(1);
            out.error(msg);
        }
    }
    alive
}

/// Waits until the AOF records this connection's commands appended (up to
/// `seq`) are on disk: synced with `appendfsync always`, written otherwise.
async fn durable(seq: &mut u64) {
    if *seq != 0 {
        if aof::must_wait(*seq) {
            aof::wait_durable(*seq).await;
        }
        *seq = 0;
    }
}

/// Writes what the socket takes of a batch's replies now; the rest stays
/// pending and counts against the output limit, or with no limit of any
/// kind against the cap past which the connection waits (obuf.rs), after
/// `publish` showed the client's memory.
async fn flush_batch<S: Stream>(
    sock: &mut S,
    out: &mut Reply,
    stats: &ThreadStats,
    (limit, info): (&OutputLimit, &ClientInfo),
    publish: impl FnOnce(&Reply),
) -> std::io::Result<()> {
    info.reply_buf.note(out.pending());
    let r = obuf::write_capped(sock, out, stats, limit.cap(), publish).await;
    // The buffer keeps the size the cron adapted (`reply_buf`).
    let size = info.reply_buf.size();
    if out.is_empty() && out.buf.capacity() > size {
        out.buf.shrink_to(size);
    }
    r
}

async fn flush<S: Stream>(
    sock: &mut S,
    out: &mut Reply,
    stats: &ThreadStats,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let mut r = sock.write_all(&out.buf[out.sent..]).await;
    // TLS keeps what the socket did not take until flushed.
    if S::LAYERED && r.is_ok() {
        r = sock.flush().await;
    }
    stats.net_output_bytes.add(out.pending() as u64);
    out.buf.clear();
    out.sent = 0;
    // Back to Redis's fixed 16 KiB once written: what grew for a big
    // reply is client memory (it counts towards maxmemory) until freed.
    if out.buf.capacity() > crate::server::client_mem::REPLY_BUF as usize {
        out.buf.shrink_to(16 * 1024);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::Kind;

    #[test]
    fn a_connection_task_that_panics_still_leaves_the_server() {
        let mut h = crate::testkit::Harness::new();
        let srv = h.srv;
        assert_eq!(h.run(&["WATCH", "k"]), "+OK\r\n");
        h.run(&["BLPOP", "nokey", "0"]);
        assert!(h.client.blocked.is_some());
        h.run(&["SUBSCRIBE", "ch"]);
        h.run(&["PSUBSCRIBE", "p*"]);
        assert_eq!(srv.pubsub.count(Kind::Channel, b"ch"), 1);
        assert!(srv.ks.has_watches());
        assert_eq!(srv.clients.len(), 1);
        let info = h.client.info.clone();
        let client = std::mem::replace(&mut h.client, Client::new(info, true));
        let locks = std::mem::take(&mut h.locks);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let task = rt.spawn(async move {
            let reg = Registered {
                srv,
                client,
                locks,
                mem: client_mem::Report::default(),
            };
            tokio::task::yield_now().await;
            // Say, serving another client's blocked pop went wrong.
            if reg.client.info.id > 0 {
                panic!("outside a command handler");
            }
        });
        assert!(rt.block_on(task).unwrap_err().is_panic());
        assert_eq!(srv.clients.len(), 0);
        assert!(!srv.ks.has_watches());
        assert_eq!(srv.pubsub.count(Kind::Channel, b"ch"), 0);
        assert_eq!(srv.pubsub.active(Kind::Pattern), 0);
        // The key no longer has a waiter: a push stays in the list.
        assert_eq!(h.run(&["RPUSH", "nokey", "x"]), ":1\r\n");
        assert_eq!(h.run(&["LLEN", "nokey"]), ":1\r\n");
    }
}
