//! Connection state: the part only the connection's task touches ([`Client`])
//! and the part other clients may read or act on ([`ClientInfo`]: CLIENT
//! LIST, CLIENT KILL).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::blocking::Waiter;

/// CLIENT REPLY modes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// The command now running is the one to skip.
    Skip,
}

/// Client states shown as letters in CLIENT LIST `flags=`; set by the code
/// that owns the state (pub/sub, MULTI, blocking commands, CLIENT NO-EVICT).
pub mod list_flags {
    pub const PUBSUB: u32 = 1 << 0;
    pub const MULTI: u32 = 1 << 1;
    pub const BLOCKED: u32 = 1 << 2;
    pub const DIRTY_CAS: u32 = 1 << 3;
    pub const NO_EVICT: u32 = 1 << 4;
    pub const NO_TOUCH: u32 = 1 << 5;
    /// CLIENT TRACKING on (`t`), its redirect gone (`R`), BCAST (`B`).
    pub const TRACKING: u32 = 1 << 6;
    pub const TRACKING_BROKEN: u32 = 1 << 7;
    pub const TRACKING_BCAST: u32 = 1 << 8;
    /// MONITOR (`O`).
    pub const MONITOR: u32 = 1 << 9;
    /// Attached by SYNC/PSYNC (`S`, type `replica`).
    pub const REPLICA: u32 = 1 << 10;
    /// REPLCONF rdb-only / rdb-filter-only functions (not shown).
    pub const REPL_RDB_ONLY: u32 = 1 << 11;
    pub const REPL_FUNCTIONS_ONLY: u32 = 1 << 12;
    /// Announced a REPLCONF listening-port (not shown).
    pub const REPL_PORT: u32 = 1 << 13;
    /// Connected over the Unix domain socket (`U`).
    pub const UNIX_SOCKET: u32 = 1 << 24;
    /// The link to this replica's master (`M`, type `master`).
    pub const MASTER: u32 = 1 << 14;
    /// Announced REPLCONF capa eof: takes a diskless payload (not shown).
    pub const REPL_CAPA_EOF: u32 = 1 << 15;
}

/// What other connections can see of a client.
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub created_ms: i64,
    pub name: Mutex<Option<Vec<u8>>>,
    pub lib_name: Mutex<Option<Vec<u8>>>,
    pub lib_ver: Mutex<Option<Vec<u8>>>,
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    pub last_interaction_ms: AtomicI64,
    /// Command table id of the last command run (CLIENT LIST `cmd=`).
    pub last_cmd: AtomicUsize,
    pub user: Mutex<String>,
    pub killed: AtomicBool,
    /// The connection let go of everything it held (`ClientRegistry::depart`).
    departed: AtomicBool,
    /// Wakes those waiting for this client to be killed or to depart
    /// (`wait_departed`).
    changed: tokio::sync::Notify,
    /// The socket's descriptor while the connection is open, -1 after; the
    /// lock keeps a kill from reaching a descriptor number already reused.
    live_fd: Mutex<i32>,
    pub qbuf: AtomicU64,
    /// Room left in the read buffer (`qbuf-free`).
    pub qbuf_free: AtomicU64,
    /// Memory figures the connection publishes (`server::client_mem`):
    /// the framed arguments of a command still arriving (`argv-mem`), the
    /// MULTI queue (`multi-mem`), watched keys and subscriptions, replies
    /// not yet written.
    pub argv_mem: AtomicU64,
    pub multi_mem: AtomicU64,
    pub other_mem: AtomicU64,
    pub out_pending: AtomicU64,
    /// The reply buffer's allocation beyond Redis's fixed 16 KiB.
    pub out_mem: AtomicU64,
    /// The reply buffer's whole allocation: a replica's is replication
    /// memory, which key eviction leaves out (`client_mem::replica_buffers`).
    pub out_cap: AtomicU64,
    /// BCAST prefixes' memory, kept by `pubsub::tracking`.
    pub tracking_mem: AtomicU64,
    /// The reply buffer's adapted size and peak (`rbs`, `rbp`).
    pub reply_buf: super::reply_buf::ReplyBuf,
    /// The wait this client is parked in, for CLIENT UNBLOCK.
    pub waiter: Mutex<Option<Arc<Waiter>>>,
    /// [`list_flags`] bits.
    pub flags: AtomicU32,
    /// Commands queued in MULTI, -1 outside a transaction (`multi=`).
    pub multi: AtomicI64,
    /// Channel, pattern and shard-channel subscription counts (`sub=`, `psub=`, `ssub=`).
    pub subs: [AtomicUsize; 3],
    /// Published messages waiting for this connection to write them.
    pub outbox: crate::pubsub::Outbox,
}

/// Whether a peer counts as local for `protected-mode` and the `local`
/// value of the `enable-*` options (see [`is_local_ip`]).
pub fn is_local_peer(peer: &std::net::SocketAddr) -> bool {
    is_local_ip(peer.ip())
}

/// Exactly 127.0.0.1 or ::1: Redis compares the peer's printed address with
/// those two, so another 127.x address (or an IPv4-mapped one) is remote.
pub fn is_local_ip(ip: std::net::IpAddr) -> bool {
    ip == std::net::Ipv4Addr::LOCALHOST || ip == std::net::Ipv6Addr::LOCALHOST
}

impl ClientInfo {
    /// See [`is_local_peer`].
    pub fn is_local(&self) -> bool {
        // A Unix socket's client is local, as in Redis.
        self.addr.starts_with('/')
            || self
                .addr
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| is_local_peer(&a))
    }

    /// Asks the connection to close (CLIENT KILL). Shutting the socket down
    /// wakes the connection's pending read with end-of-file, so the read
    /// path needs no second thing to wait on.
    pub fn request_kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.changed.notify_waiters();
        let fd = self.live_fd.lock();
        if *fd >= 0 {
            // SAFETY: the descriptor is open: the connection clears it under
            // this lock before closing the socket.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
    }

    /// Called by the connection before its socket closes.
    pub fn mark_closed(&self) {
        *self.live_fd.lock() = -1;
    }

    pub fn name(&self) -> Vec<u8> {
        self.name.lock().clone().unwrap_or_default()
    }

    /// CLIENT LIST `tot-mem`: the figures the connection published
    /// (`client_mem::Report`) and the published messages waiting in its
    /// outbox.
    pub fn tot_mem(&self) -> u64 {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        super::client_mem::BASE
            + r(&self.qbuf)
            + r(&self.qbuf_free)
            + r(&self.argv_mem)
            + r(&self.multi_mem)
            + r(&self.other_mem)
            + r(&self.out_mem)
            + self.outbox.pending() as u64
    }

    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
    }

    pub fn set_flag(&self, flag: u32, on: bool) {
        if on {
            self.flags.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!flag, Ordering::Relaxed);
        }
    }
}

/// Per-connection state owned by the connection's task.
pub struct Client {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub authenticated: bool,
    pub reply_mode: ReplyMode,
    /// Close once pending replies are written (QUIT, protocol errors).
    pub close_after_reply: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    /// Set by a blocking command that found nothing: the connection waits
    /// on it before running anything else.
    pub blocked: Option<Blocked>,
    /// The transaction being queued (between MULTI and EXEC/DISCARD).
    pub multi: Option<crate::cmd::multi::Queue>,
    /// WATCHed keys, as (db, key), and the flag their changes set.
    pub watched: Vec<(usize, Vec<u8>)>,
    /// For each of `watched`: the key existed (live) at WATCH. Only such a
    /// key reaching its deadline aborts EXEC (a stale key SWAPDB brings in
    /// does not, as in Redis 7.0).
    pub watched_live: Vec<bool>,
    pub watch: Option<Arc<crate::store::Watch>>,
    /// Set while EXEC runs the queue: blocking commands don't block.
    pub in_exec: bool,
    /// `SCRIPT DEBUG`: EVAL runs as a debugging session.
    pub ldb: crate::scripting::ldb::Mode,
    /// Channels, patterns and shard channels subscribed to.
    pub pubsub: crate::pubsub::ClientSubs,
    /// The ACL user authenticated as (`None`: looked up by the name in
    /// `info.user` on the next check).
    pub user: Option<Arc<crate::acl::User>>,
    /// The AOF loader's own client: runs while the dataset is loading.
    pub loader: bool,
    /// The command being dispatched already waited for the other
    /// connections' input to run (`server::settle`).
    pub settled: bool,
    /// Clients this client's command killed: the connection waits for them
    /// to depart before going on ([`wait_departed`]).
    pub departing: Vec<Arc<ClientInfo>>,
}

/// A wait a blocking command started.
pub struct Blocked {
    pub waiter: Arc<Waiter>,
    /// None waits forever (timeout 0).
    pub deadline: Option<tokio::time::Instant>,
    /// The blocking command's id: an error it is answered with later counts
    /// as a failed call of it.
    pub cmd_id: usize,
    /// The command as the slow log keeps it, when it logs every command:
    /// logged once served, as Redis logs a blocked command (`cmd::slowlog`).
    pub slowlog_argv: Option<Vec<Vec<u8>>>,
}

impl Client {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Client {
        Client {
            info,
            db: 0,
            authenticated,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            no_evict: false,
            no_touch: false,
            blocked: None,
            multi: None,
            watched: Vec::new(),
            watched_live: Vec::new(),
            watch: None,
            in_exec: false,
            ldb: crate::scripting::ldb::Mode::Off,
            pubsub: Default::default(),
            user: None,
            loader: false,
            settled: false,
            departing: Vec::new(),
        }
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    /// `maxmemory-clients` and its statistics.
    pub eviction: super::client_mem::Eviction,
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Connections admitted under `maxclients` that their worker has not
    /// registered yet: counted so that a burst of connections accepted
    /// before any of them is served cannot all pass the limit.
    arriving: AtomicUsize,
}

impl ClientRegistry {
    /// Reserves a place for a new connection under `maxclients`: false (and
    /// nothing reserved) when the clients and the places already reserved
    /// reach it. A reservation ends with [`ClientRegistry::arrived`].
    pub fn admit(&self, maxclients: i64) -> bool {
        let before = self.arriving.fetch_add(1, Ordering::SeqCst);
        if ((self.len() + before) as i64) < maxclients {
            return true;
        }
        self.arrived();
        false
    }

    /// An admitted connection was registered, or went away before that.
    pub fn arrived(&self) {
        // Saturating: a miscount must never wrap into "always full".
        let _ = self
            .arriving
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        fd: i32,
        now_ms: i64,
    ) -> Arc<ClientInfo> {
        self.register_named(addr.to_string(), laddr.to_string(), fd, now_ms)
    }

    /// [`ClientRegistry::register`] with the addresses as CLIENT LIST
    /// prints them (a Unix socket's is its path and port 0).
    pub fn register_named(
        &self,
        addr: String,
        laddr: String,
        fd: i32,
        now_ms: i64,
    ) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            fd,
            created_ms: now_ms,
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_interaction_ms: AtomicI64::new(now_ms),
            last_cmd: AtomicUsize::new(usize::MAX),
            user: Mutex::new("default".to_string()),
            killed: AtomicBool::new(false),
            departed: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            live_fd: Mutex::new(fd),
            qbuf: AtomicU64::new(0),
            qbuf_free: AtomicU64::new(0),
            argv_mem: AtomicU64::new(0),
            multi_mem: AtomicU64::new(0),
            other_mem: AtomicU64::new(0),
            out_pending: AtomicU64::new(0),
            out_mem: AtomicU64::new(0),
            out_cap: AtomicU64::new(0),
            tracking_mem: AtomicU64::new(0),
            reply_buf: Default::default(),
            waiter: Mutex::new(None),
            flags: AtomicU32::new(0),
            multi: AtomicI64::new(-1),
            subs: Default::default(),
            outbox: Default::default(),
        });
        self.clients.lock().insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// The client has let go of everything it held (its buffers, watches,
    /// subscriptions): it leaves the registry, and a CLIENT KILL waiting
    /// for it ([`wait_departed`]) replies.
    pub fn depart(&self, info: &ClientInfo) {
        self.unregister(info.id);
        info.departed.store(true, Ordering::Release);
        info.changed.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every connected client, by id.
    pub fn snapshot(&self) -> Vec<Arc<ClientInfo>> {
        self.clients.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.lock().get(&id).cloned()
    }
}

/// How long a CLIENT KILL waits for a killed connection to let go of what
/// it holds. Connections notice a kill at once (it shuts their socket
/// down), so this bounds only a victim that cannot end yet: one whose
/// command runs a script, or held by CLIENT PAUSE.
const DEPART_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits until each of `victims` (killed by `me`'s command) has departed,
/// as Redis frees a killed client before CLIENT KILL replies: whoever reads
/// the reply then sees their memory gone (INFO `mem_clients_slaves`,
/// `used_memory`). Ends early if `me` is killed meanwhile (two clients
/// killing each other), and after [`DEPART_WAIT`] at most.
pub async fn wait_departed(victims: Vec<Arc<ClientInfo>>, me: &ClientInfo) {
    let deadline = tokio::time::Instant::now() + DEPART_WAIT;
    for v in victims {
        loop {
            let theirs = v.changed.notified();
            let mine = me.changed.notified();
            tokio::pin!(theirs, mine);
            // Registered before the checks: a change right after them
            // still wakes this wait.
            theirs.as_mut().enable();
            mine.as_mut().enable();
            if v.departed.load(Ordering::Acquire) {
                break;
            }
            if me.killed.load(Ordering::Relaxed) {
                return;
            }
            tokio::select! {
                () = theirs => {}
                () = mine => {}
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }
}
