//! The replica side of replication: `REPLICAOF host port` (and the
//! `replicaof` directive) makes this server follow a master.
//!
//! One thread per link (`ferrokv-repl`) does everything with blocking
//! socket calls, so no worker ever waits on the master: it connects,
//! handshakes as a Redis 7.0 replica does (PING, AUTH with `masteruser` /
//! `masterauth`, REPLCONF listening-port and capa, PSYNC), receives the
//! RDB payload (sized `$<len>` or diskless `$EOF:<mark>`) and loads it in
//! place of the dataset (`replica_sync`: through a temp file, or parsed as
//! it arrives with `repl-diskless-load`; other clients answered
//! `-LOADING`; a payload that fails to load leaves an empty dataset, never
//! half of one).
//! Then it applies the master's stream: each command runs through the
//! normal dispatcher (`cmd::execute`) as the master client (flagged
//! `MASTER`: it may write on a read-only replica), its reply dropped,
//! except `REPLCONF GETACK`, answered with `REPLCONF ACK <offset>` (the
//! offset before the GETACK itself, as Redis counts). An ACK also goes out
//! every second. What the master client changes is published as effects,
//! so this server's AOF and its own replicas see it.
//!
//! Every `REPLICAOF` starts a new generation: a link thread whose
//! generation is no longer current stops at its next read (at most 100 ms)
//! and applies nothing more. A dropped link is retried every second.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cmd::internal::InternalClient;
use crate::persist::aof::encode;
use crate::resp::{Frame, Limits, Parser, Reply};
use crate::server::client::{Client, list_flags};
use crate::server::stats::ThreadStats;
use crate::server::{Server, now_ms};

/// True while this server follows a master.
static REPLICA: AtomicBool = AtomicBool::new(false);
/// True while the link is up (state `connected`).
static UP: AtomicBool = AtomicBool::new(false);
/// Bumped by every REPLICAOF: the current link's generation.
static GEN: AtomicU64 = AtomicU64::new(0);
/// Bytes of the master's stream received and applied (Redis's
/// `read_reploff` and `reploff`).
pub(super) static READ_OFFSET: AtomicI64 = AtomicI64::new(0);
pub(super) static OFFSET: AtomicI64 = AtomicI64::new(0);
static LINK: Mutex<Option<Link>> = Mutex::new(None);
/// The database the master's stream is in (the master client's): a full
/// synchronization's payload names it (`repl-stream-db`), for this
/// server's replicas, whose stream carries no SELECT before its next one.
pub(super) static STREAM_DB: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// The database the stream passed on is in (see [`STREAM_DB`]).
pub fn stream_db() -> usize {
    STREAM_DB.load(Ordering::Relaxed)
}

/// Where the link stands (ROLE's words).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Connect,
    Connecting,
    Handshake,
    Transfer,
    Connected,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Connect => "connect",
            State::Connecting => "connecting",
            State::Handshake => "handshake",
            State::Transfer => "sync",
            State::Connected => "connected",
        }
    }
}

pub(super) struct Link {
    host: String,
    port: u16,
    pub(super) state: State,
    /// When the link last received anything (ms).
    last_io_ms: i64,
    /// When the link went down (ms; 0: it was never up).
    down_since_ms: i64,
    /// Payload size (-1: EOF-marked) and bytes read so far.
    pub(super) transfer_size: i64,
    pub(super) transfer_read: i64,
    /// The socket, to shut it down from REPLICAOF.
    sock: Option<TcpStream>,
}

/// Whether this server is a replica.
#[inline]
pub fn is_replica() -> bool {
    REPLICA.load(Ordering::Relaxed)
}

/// Whether this replica's link is down and it must not serve stale data
/// (`replica-serve-stale-data no`): commands without the `stale` flag get
/// MASTERDOWN.
#[inline]
pub fn stale(srv: &Server) -> bool {
    is_replica() && !UP.load(Ordering::Relaxed) && !srv.config.replica_serve_stale_data.get()
}

/// Whether the link to the master is up (state `connected`).
#[inline]
pub fn link_up() -> bool {
    UP.load(Ordering::Relaxed)
}

/// Whether memory is left to the master (`replica-ignore-maxmemory`): no
/// eviction, no OOM refusal.
#[inline]
pub fn ignores_maxmemory(srv: &Server) -> bool {
    is_replica() && srv.config.replica_ignore_maxmemory.get()
}

/// Whether writes from normal clients are refused (`replica-read-only`).
#[inline]
pub fn read_only(srv: &Server) -> bool {
    is_replica() && srv.config.replica_read_only.get()
}

/// The replication offset of this replica (applied bytes).
pub fn offset() -> i64 {
    OFFSET.load(Ordering::Relaxed)
}

/// What REPLICAOF host port answers.
pub enum Set {
    Started,
    AlreadyConnected,
}

/// REPLICAOF host port: follow that master from now on (a new link; the
/// data stays until the master's payload replaces it).
pub fn set_master(srv: &'static Server, host: &str, port: u16) -> Set {
    let mut link = LINK.lock();
    if let Some(l) = link.as_ref()
        && l.host.eq_ignore_ascii_case(host)
        && l.port == port
    {
        return Set::AlreadyConnected;
    }
    if let Some(old) = link.take()
        && let Some(s) = old.sock
    {
        let _ = s.shutdown(Shutdown::Both);
    }
    UP.store(false, Ordering::Relaxed);
    let was_replica = is_replica();
    if !was_replica {
        // As Redis caches itself as master: offsets go on from ours (read
        // while still a master), in the database our stream was in.
        if let Some(db) = crate::server::repl::stream_db() {
            STREAM_DB.store(db, Ordering::Relaxed);
        }
        let off = crate::server::repl::master_offset();
        OFFSET.store(off, Ordering::Relaxed);
        READ_OFFSET.store(off, Ordering::Relaxed);
    }
    REPLICA.store(true, Ordering::Relaxed);
    srv.ks.set_replica_expiry(true);
    crate::server::oom::set_replica(&srv.config, true);
    *link = Some(Link {
        host: host.to_string(),
        port,
        state: State::Connect,
        last_io_ms: 0,
        down_since_ms: 0,
        transfer_size: -1,
        transfer_read: 0,
        sock: None,
    });
    let generation = GEN.fetch_add(1, Ordering::SeqCst) + 1;
    drop(link);
    if !was_replica {
        disconnect_blocked(srv);
    }
    crate::notice!("Connecting to MASTER {host}:{port}");
    let spawned = std::thread::Builder::new()
        .name("ferrokv-repl".into())
        .spawn(move || crate::alloc::counted(|| link_thread(srv, generation)));
    if let Err(e) = spawned {
        crate::warning!("Can't start the replication thread: {e}");
    }
    Set::Started
}

/// A master turned replica: its blocked clients are answered an error and
/// disconnected (what the master's stream brings must not serve them).
fn disconnect_blocked(srv: &Server) {
    for info in srv.clients.snapshot() {
        let waiter = info.waiter.lock().clone();
        if let Some(w) = waiter {
            w.complete(
                b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
                    .to_vec(),
            );
            info.request_kill();
        }
    }
}

/// REPLICAOF NO ONE: a master again, keeping the data. The master's id
/// becomes the second id (its replicas may go on from this offset).
pub fn set_no_one() {
    let mut link = LINK.lock();
    if !REPLICA.swap(false, Ordering::Relaxed) {
        return;
    }
    GEN.fetch_add(1, Ordering::SeqCst);
    UP.store(false, Ordering::Relaxed);
    if let Some(old) = link.take()
        && let Some(s) = old.sock
    {
        let _ = s.shutdown(Shutdown::Both);
    }
    drop(link);
    crate::server::repl::promote(offset());
    // They learn the new id by reconnecting (and continue from here).
    crate::server::repl::disconnect_all();
    crate::notice!("MASTER MODE enabled (user request from 'id=0')");
}

/// The `replicaof` directive, once the dataset is loaded at start-up.
pub fn start_from_config(srv: &'static Server) {
    let v = srv.config.replicaof.get();
    let mut words = v.split_whitespace();
    let (Some(host), Some(port)) = (words.next(), words.next()) else {
        return;
    };
    if host.eq_ignore_ascii_case("no") {
        return;
    }
    if let Ok(port) = port.parse::<u16>() {
        set_master(srv, host, port);
    }
}

pub(super) fn current(generation: u64) -> bool {
    GEN.load(Ordering::SeqCst) == generation
}

/// Updates the link if it is still this generation's.
pub(super) fn with_link<R>(generation: u64, f: impl FnOnce(&mut Link) -> R) -> Option<R> {
    let mut link = LINK.lock();
    if !current(generation) {
        return None;
    }
    link.as_mut().map(f)
}

fn link_thread(srv: &'static Server, generation: u64) {
    while current(generation) && !srv.shutting_down() {
        let r = run_link(srv, generation);
        let was_up = with_link(generation, |l| {
            let up = l.state == State::Connected;
            UP.store(false, Ordering::Relaxed);
            if let Some(s) = l.sock.take() {
                let _ = s.shutdown(Shutdown::Both);
            }
            l.state = State::Connect;
            if up || l.down_since_ms == 0 {
                l.down_since_ms = now_ms();
            }
            up
        });
        let Some(was_up) = was_up else { return };
        if let Err(e) = r {
            crate::warning!("{e}");
        }
        if was_up {
            crate::notice!("Connection with master lost.");
        }
        // Redis's replication cron retries once a second (at once after
        // a failed transfer).
        if super::replica_sync::RETRY_NOW.swap(false, Ordering::Relaxed) {
            continue;
        }
        for _ in 0..10 {
            if !current(generation) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The socket and what was read from it but not consumed yet.
/// The link's buffer keeps up to this much capacity between commands.
const LINK_BUF_KEEP: usize = 1 << 20;

pub(super) struct Conn {
    sock: TcpStream,
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) generation: u64,
    timeout: Duration,
    last_io: Instant,
}

impl Conn {
    fn send(&mut self, argv: &[&[u8]]) -> Result<(), String> {
        let mut frame = Vec::new();
        encode::command(&mut frame, argv.iter().copied());
        self.sock
            .write_all(&frame)
            .map_err(|e| format!("Error writing to MASTER: {e}"))
    }

    /// Reads more bytes (waiting at most 100 ms); false if none came. The
    /// link's end (a new REPLICAOF, the master's silence) is an error.
    pub(super) fn fill(&mut self) -> Result<bool, String> {
        if !current(self.generation) {
            return Err("Replication link replaced".into());
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        // A signal (the watchdog's, during a blocking load) interrupts a
        // read with a timeout even under SA_RESTART: read again.
        let read = loop {
            match self.sock.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        match read {
            Ok(0) => Err("MASTER closed the connection".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.last_io = Instant::now();
                let _ = with_link(self.generation, |l| l.last_io_ms = now_ms());
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if self.last_io.elapsed() > self.timeout {
                    return Err("Timeout connecting to the MASTER...".into());
                }
                Ok(false)
            }
            Err(e) => Err(format!("Error reading from MASTER: {e}")),
        }
    }

    /// One line without its `\r\n` (at most 64 KiB).
    pub(super) fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let raw = &self.buf[self.pos..self.pos + nl];
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                let line = String::from_utf8_lossy(raw).into_owned();
                self.pos += nl + 1;
                return Ok(line);
            }
            if self.buf.len() - self.pos > 64 * 1024 {
                return Err("MASTER sent a line too long".into());
            }
            self.fill()?;
        }
    }

    /// Sends a command and reads its one-line reply.
    fn ask(&mut self, argv: &[&[u8]]) -> Result<String, String> {
        self.send(argv)?;
        self.line()
    }
}

fn run_link(srv: &'static Server, generation: u64) -> Result<(), String> {
    let Some((host, port)) = with_link(generation, |l| {
        l.state = State::Connecting;
        (l.host.clone(), l.port)
    }) else {
        return Ok(());
    };
    let timeout = Duration::from_secs(srv.config.repl_timeout.get().max(1) as u64);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("Unable to connect to MASTER: {e}"))?
        .next()
        .ok_or_else(|| "Unable to connect to MASTER: no address".to_string())?;
    // From `bind-source-addr` when set, as Redis binds its outgoing links.
    let source = srv.config.bind_source_addr.get();
    let sock = crate::server::listen::connect(&source, &addr, timeout)
        .map_err(|e| format!("Unable to connect to MASTER: {e}"))?;
    let _ = sock.set_nodelay(true);
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let clone = sock.try_clone().map_err(|e| e.to_string())?;
    if with_link(generation, |l| {
        l.sock = Some(clone);
        l.state = State::Handshake;
    })
    .is_none()
    {
        return Ok(());
    }
    crate::notice!("MASTER <-> REPLICA sync started");
    let mut conn = Conn {
        sock,
        buf: Vec::new(),
        pos: 0,
        generation,
        timeout,
        last_io: Instant::now(),
    };
    handshake(srv, &mut conn)?;
    // Our history (our own, or the master's we follow) and where we are
    // in it: the master continues from there if it can.
    let id = crate::server::repl::ids().replid;
    let next = (offset() + 1).to_string();
    // A master handing over (FAILOVER) asks the target to take over.
    let failover = super::failover::in_progress();
    let mut reply = if failover {
        conn.ask(&[b"PSYNC", id.as_bytes(), next.as_bytes(), b"FAILOVER"])?
    } else {
        conn.ask(&[b"PSYNC", id.as_bytes(), next.as_bytes()])?
    };
    // A master delaying the transfer (`repl-diskless-sync-delay`) sends
    // newlines until it replies.
    while reply.is_empty() {
        reply = conn.line()?;
    }
    if failover {
        let accepted = reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE");
        if !super::failover::psync_answered(srv, accepted) {
            return Err(format!("Failover target rejected psync request: {reply}"));
        }
    }
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut w = rest.split(' ');
        let (Some(id), Some(off)) = (w.next(), w.next().and_then(|o| o.parse::<i64>().ok())) else {
            return Err(format!("Bad PSYNC reply from MASTER: {reply}"));
        };
        crate::notice!("Full resync from master: {id}:{off}");
        super::replica_sync::full_sync(srv, &mut conn, id)?;
        OFFSET.store(off, Ordering::Relaxed);
        READ_OFFSET.store(off, Ordering::Relaxed);
        crate::server::repl::adopt(srv, id, off);
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        crate::notice!("Successful partial resynchronization with master.");
        crate::server::repl::ensure_backlog(srv);
        let id = rest.trim();
        if !id.is_empty() {
            crate::server::repl::adopt_id(id);
        }
    } else {
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    }
    stream(srv, &mut conn)
}

/// PING, AUTH, REPLCONF listening-port and capa, as Redis 7.0 sends them.
fn handshake(srv: &Server, conn: &mut Conn) -> Result<(), String> {
    let pong = conn.ask(&[b"PING"])?;
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    let pass = srv.config.masterauth.get();
    if !pass.is_empty() {
        let user = srv.config.masteruser.get();
        let r = if user.is_empty() {
            conn.ask(&[b"AUTH", pass.as_bytes()])?
        } else {
            conn.ask(&[b"AUTH", user.as_bytes(), pass.as_bytes()])?
        };
        if r.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {r}"));
        }
    }
    let port = srv.tcp_port.load(Ordering::Relaxed).to_string();
    let r = conn.ask(&[b"REPLCONF", b"listening-port", port.as_bytes()])?;
    if r.starts_with('-') {
        crate::notice!("(Non critical) Master does not understand REPLCONF listening-port: {r}");
    }
    let r = conn.ask(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    if r.starts_with('-') {
        crate::notice!("(Non critical) Master does not understand REPLCONF capa: {r}");
    }
    Ok(())
}

/// The statistics of the master client's commands (INFO commandstats),
/// one set for every link, registered once so a script job also waits
/// for the command it is applying.
fn stats(srv: &Server) -> Arc<ThreadStats> {
    static STATS: OnceLock<Arc<ThreadStats>> = OnceLock::new();
    STATS
        .get_or_init(|| {
            let s = Arc::new(ThreadStats::new(srv.commands.len()));
            srv.thread_stats.lock().push(s.clone());
            srv.scripting.register_worker(s.clone());
            s
        })
        .clone()
}

/// The master client: the stream's commands run as it.
struct Applier(InternalClient);

impl Applier {
    fn new(srv: &'static Server, sock: &TcpStream) -> Applier {
        let fallback = "127.0.0.1:0".parse().expect("address");
        let peer = sock.peer_addr().unwrap_or(fallback);
        let local = sock.local_addr().unwrap_or(fallback);
        let info = srv.clients.register(peer, local, -1, now_ms());
        info.set_flag(list_flags::MASTER, true);
        Applier(InternalClient::new(
            srv,
            Client::new(info, true),
            stats(srv),
        ))
    }

    fn run(&mut self, args: &crate::resp::Args<'_>) {
        let a = &mut self.0;
        a.run(args);
        super::replica_errors::check(a.srv, &a.client, &a.out.buf, args);
        a.out.buf.clear();
        // A master never sends a command that blocks (it propagates what
        // the command did); should one come, it does not wait here.
        if let Some(b) = a.client.blocked.take() {
            b.waiter.unblock(false);
            crate::blocking::unregister(&a.srv.ks, &mut a.locks, &b.waiter);
            a.locks.release();
            a.client.info.set_flag(list_flags::BLOCKED, false);
        }
    }
}

fn send_ack(conn: &mut Conn, off: i64) -> Result<(), String> {
    let off = off.to_string();
    conn.send(&[b"REPLCONF", b"ACK", off.as_bytes()])
}

/// Applies the master's stream until the link ends.
fn stream(srv: &'static Server, conn: &mut Conn) -> Result<(), String> {
    let generation = conn.generation;
    if with_link(generation, |l| {
        l.state = State::Connected;
        l.last_io_ms = now_ms();
        UP.store(true, Ordering::Relaxed);
    })
    .is_none()
    {
        return Ok(());
    }
    let mut applier = Applier::new(srv, &conn.sock);
    applier.0.client.db = STREAM_DB.load(Ordering::Relaxed);
    let mut parser = Parser::default();
    let limits = Limits {
        max_bulk: i64::MAX,
        authenticated: true,
    };
    // The first ACK at once: the master sees this replica online.
    send_ack(conn, offset())?;
    let mut last_ack = Instant::now();
    conn.buf.drain(..conn.pos);
    conn.pos = 0;
    READ_OFFSET.store(offset() + conn.buf.len() as i64, Ordering::Relaxed);
    loop {
        // Every whole command buffered.
        loop {
            if conn.pos == conn.buf.len() {
                break;
            }
            match parser.parse(&conn.buf[conn.pos..], limits) {
                Frame::Command { consumed } => {
                    if !current(generation) {
                        return Ok(());
                    }
                    let args = parser.args(&conn.buf[conn.pos..]);
                    let getack = args.arg(0).eq_ignore_ascii_case(b"REPLCONF")
                        && args.len() > 1
                        && args.arg(1).eq_ignore_ascii_case(b"GETACK");
                    if getack {
                        let off = offset();
                        let mut frame = Vec::new();
                        let s = off.to_string();
                        encode::command(
                            &mut frame,
                            [&b"REPLCONF"[..], b"ACK", s.as_bytes()].into_iter(),
                        );
                        conn.sock
                            .write_all(&frame)
                            .map_err(|e| format!("Error writing to MASTER: {e}"))?;
                    } else {
                        applier.run(&args);
                    }
                    STREAM_DB.store(applier.0.client.db, Ordering::Relaxed);
                    // Passed on as it came, once applied (with its offset).
                    crate::server::repl::proxy(srv, &conn.buf[conn.pos..conn.pos + consumed]);
                    conn.pos += consumed;
                    OFFSET.fetch_add(consumed as i64, Ordering::Relaxed);
                }
                Frame::Empty { consumed } => {
                    crate::server::repl::proxy(srv, &conn.buf[conn.pos..conn.pos + consumed]);
                    conn.pos += consumed;
                    OFFSET.fetch_add(consumed as i64, Ordering::Relaxed);
                }
                Frame::Incomplete { .. } => break,
                Frame::Error(e) => return Err(format!("Protocol error from MASTER: {e}")),
            }
        }
        // CLIENT KILL TYPE master: the link drops (and is made again).
        if applier.0.client.info.killed.load(Ordering::Relaxed) {
            return Err("Connection with master killed".into());
        }
        // Keep the unfinished command (the parser goes on from it).
        conn.buf.drain(..conn.pos);
        conn.pos = 0;
        // A big value grew the buffer: give the memory back once it is
        // applied (Redis trims an idle client's query buffer likewise).
        if conn.buf.capacity() > LINK_BUF_KEEP && conn.buf.len() < conn.buf.capacity() / 4 {
            conn.buf.shrink_to(conn.buf.len().max(LINK_BUF_KEEP / 16));
        }
        let before = conn.buf.len();
        if conn.fill()? {
            READ_OFFSET.fetch_add((conn.buf.len() - before) as i64, Ordering::Relaxed);
        }
        if last_ack.elapsed() >= Duration::from_secs(1) {
            send_ack(conn, offset())?;
            last_ack = Instant::now();
        }
    }
}

/// INFO replication's replica lines, between `role:slave` and
/// `connected_slaves`.
pub fn info_lines(srv: &Server, lines: &mut Vec<String>) {
    let link = LINK.lock();
    let Some(l) = link.as_ref() else { return };
    let now = now_ms();
    let up = l.state == State::Connected && !l.sock.as_ref().is_some_and(peer_closed);
    lines.push(format!("master_host:{}", l.host));
    lines.push(format!("master_port:{}", l.port));
    lines.push(format!(
        "master_link_status:{}",
        if up { "up" } else { "down" }
    ));
    let last_io = if up {
        (now - l.last_io_ms).max(0) / 1000
    } else {
        -1
    };
    lines.push(format!("master_last_io_seconds_ago:{last_io}"));
    let syncing = l.state == State::Transfer;
    lines.push(format!("master_sync_in_progress:{}", i32::from(syncing)));
    lines.push(format!(
        "slave_read_repl_offset:{}",
        READ_OFFSET.load(Ordering::Relaxed)
    ));
    lines.push(format!("slave_repl_offset:{}", offset()));
    if syncing {
        let (size, read) = (l.transfer_size, l.transfer_read);
        let perc = if size > 0 {
            read as f64 * 100.0 / size as f64
        } else {
            0.0
        };
        lines.push(format!("master_sync_total_bytes:{size}"));
        lines.push(format!("master_sync_read_bytes:{read}"));
        lines.push(format!("master_sync_left_bytes:{}", size - read));
        lines.push(format!("master_sync_perc:{perc:.2}"));
        lines.push(format!(
            "master_sync_last_io_seconds_ago:{}",
            (now - l.last_io_ms).max(0) / 1000
        ));
    }
    if !up {
        let since = if l.down_since_ms > 0 {
            (now - l.down_since_ms).max(0) / 1000
        } else {
            -1
        };
        lines.push(format!("master_link_down_since_seconds:{since}"));
    }
    lines.push(format!(
        "slave_priority:{}",
        srv.config.replica_priority.get()
    ));
    lines.push(format!(
        "slave_read_only:{}",
        i32::from(srv.config.replica_read_only.get())
    ));
    lines.push(format!(
        "replica_announced:{}",
        i32::from(srv.config.replica_announced.get())
    ));
}

/// Whether the master closed the link and the link thread has not seen
/// it yet (it reads every 100 ms at most, while Redis would have handled
/// the close before a later query): INFO reports the link down at once.
fn peer_closed(sock: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = 0u8;
    // SAFETY: a one-byte peek into a valid buffer on an open socket;
    // nothing is consumed.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            (&raw mut b).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 0
}

/// ROLE's replica form: `slave`, host, port, state, offset (-1 while the
/// link is down).
pub fn role(out: &mut Reply) -> bool {
    let link = LINK.lock();
    let Some(l) = link.as_ref() else { return false };
    out.array(5);
    out.bulk(b"slave");
    out.bulk(l.host.as_bytes());
    out.int(i64::from(l.port));
    out.bulk(l.state.name().as_bytes());
    out.int(if l.state == State::Connected {
        offset()
    } else {
        -1
    });
    true
}
