//! The process: listeners, worker threads, the periodic tasks, shutdown.
//!
//! Design decision: one single-threaded tokio runtime per core. A
//! connection lives on one worker for its whole life and runs each command
//! to completion there, locking only the shards it touches; there is no
//! hand-off between threads on the command path, except that commands
//! running Lua go to the script thread (`crate::scripting::thread`).

pub mod client;
pub mod client_mem;
pub mod conn;
pub mod evict;
pub mod failover;
pub mod listen;
mod obuf;
pub mod oom;
pub mod pause;
pub mod repl;
pub mod repl_aux;
pub mod repl_sync;
pub mod replica;
mod replica_errors;
pub mod replica_expire;
mod replica_load;
pub mod replica_sync;
pub mod reply_buf;
pub mod settle;
pub mod shutdown;
pub mod stats;
pub mod title;
pub mod tls;
pub mod unix;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::cmd::CommandTable;
use crate::config::Config;
use crate::store::Keyspace;
use client::ClientRegistry;
use ferrokv_util::repr::strerror;
use stats::{GlobalStats, ThreadStats};

pub use ferrokv_engine::now_ms;

pub struct Server {
    pub ks: Keyspace,
    pub config: Config,
    pub commands: CommandTable,
    pub clients: ClientRegistry,
    pub stats: GlobalStats,
    pub thread_stats: Mutex<Vec<Arc<ThreadStats>>>,
    pub started: Instant,
    pub started_ms: i64,
    pub run_id: String,
    pub tcp_port: AtomicU16,
    pub workers: AtomicUsize,
    pub config_file: Option<String>,
    pub last_save_ms: AtomicI64,
    pub executable: String,
    /// Background expiry on/off (DEBUG SET-ACTIVE-EXPIRE).
    pub active_expire: AtomicBool,
    /// DEBUG PAUSE-CRON: the periodic work (expiry, client checks, the
    /// tracking-table limit, save points) stops while set.
    pub cron_paused: AtomicBool,
    /// The Lua VM, its script cache and the running script's state.
    pub scripting: crate::scripting::Scripting,
    /// Subscriptions of every client (PUBLISH delivers through it).
    pub pubsub: crate::pubsub::PubSub,
    /// CLIENT PAUSE.
    pub pause: pause::Pause,
    /// CLIENT TRACKING: tracking clients, the tracking table, prefixes.
    pub tracking: crate::pubsub::tracking::Tracking,
    /// The TLS listeners' settings (`tls-*`).
    pub tls: tls::Tls,
    /// The listening sockets, closed first at SHUTDOWN.
    listen_fds: Mutex<Vec<i32>>,
    /// The plain TCP listeners' accept loops (CONFIG SET port rebinds).
    listeners: listen::Listeners,
    /// ACL users and the ACL LOG.
    pub acl: crate::acl::Acl,
    /// RDB counters (INFO persistence) and the save lock.
    pub persist: crate::persist::save::State,
    shutdown: Shutdown,
}

#[derive(Default)]
struct Shutdown {
    requested: Mutex<bool>,
    cv: Condvar,
    flag: AtomicBool,
}

impl Server {
    pub fn new(config: Config, config_file: Option<String>) -> Server {
        let commands = CommandTable::build(&crate::cmd::handlers());
        Server::with_commands(config, config_file, commands)
    }

    /// A server with a command table already built (and renamed by the
    /// config file's `rename-command`s).
    pub fn with_commands(
        config: Config,
        config_file: Option<String>,
        commands: CommandTable,
    ) -> Server {
        let databases = config.databases.get() as usize;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let started_ms = now_ms();
        let acl = crate::acl::Acl::new(&commands, &config.requirepass.get());
        Server {
            ks: Keyspace::new(databases, (cores * 8).max(16)),
            config,
            commands,
            clients: ClientRegistry::default(),
            stats: GlobalStats::default(),
            thread_stats: Mutex::new(Vec::new()),
            started: Instant::now(),
            started_ms,
            run_id: random_hex(40),
            tcp_port: AtomicU16::new(0),
            workers: AtomicUsize::new(cores),
            config_file,
            last_save_ms: AtomicI64::new(started_ms),
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            active_expire: AtomicBool::new(true),
            cron_paused: AtomicBool::new(false),
            scripting: Default::default(),
            pubsub: Default::default(),
            pause: Default::default(),
            tracking: Default::default(),
            tls: Default::default(),
            listen_fds: Mutex::new(Vec::new()),
            listeners: Default::default(),
            acl,
            persist: Default::default(),
            shutdown: Shutdown::default(),
        }
    }

    /// Asks the process to exit (SHUTDOWN, SIGTERM).
    pub fn request_shutdown(&self) {
        self.shutdown.flag.store(true, Ordering::Relaxed);
        *self.shutdown.requested.lock() = true;
        self.shutdown.cv.notify_all();
    }

    /// Ends the process now (SHUTDOWN): the listeners and every connection
    /// close together, so once the client that asked sees its connection
    /// close, new connections are refused, as with Redis. A running script
    /// stops with the process.
    pub fn exit_now(&self) -> ! {
        // The kernel closes a process's sockets in no promised order: stop
        // listening first, as Redis does, and only then wake the main
        // thread (whose own exit would otherwise race this one). The accept
        // loops see the flag before their listener fails.
        self.shutdown.flag.store(true, Ordering::Relaxed);
        for &fd in self.listen_fds.lock().iter() {
            // SAFETY: a listening socket this process owns; it stays open
            // (shutdown, not close) until the process ends just below.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        unix::remove_file(self);
        crate::persist::aof::shutdown();
        self.request_shutdown();
        say_bye();
        std::process::exit(0)
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.flag.load(Ordering::Relaxed)
    }

    fn wait_shutdown(&self) {
        let mut g = self.shutdown.requested.lock();
        while !*g {
            self.shutdown.cv.wait(&mut g);
        }
    }

    /// Connects the parts that need the server to be `'static` (keyspace
    /// events the store produces, for notifications).
    pub fn install_hooks(&'static self) {
        self.ks
            .set_event_sink(Box::new(crate::pubsub::notify::Notifier(self)));
    }

    /// The stats block of every worker thread.
    pub fn all_thread_stats(&self) -> Vec<Arc<ThreadStats>> {
        self.thread_stats.lock().clone()
    }
}

/// Random lowercase hex (run_id).
pub fn random_hex(n: usize) -> String {
    let mut s = String::with_capacity(n);
    let mut x = crate::util::rand::seed();
    while s.len() < n {
        x = crate::util::rand::next(&mut x);
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(n);
    s
}

/// Binds every address in `bind` (a leading `-` marks an optional one;
/// none binds nothing, as Redis 7.0 reads an empty `bind`).
fn bind_all(bind: &str, port: u16) -> anyhow::Result<Vec<StdListener>> {
    let mut out = Vec::new();
    for spec in bind.split_whitespace() {
        let (optional, host) = match spec.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, spec),
        };
        let host = match host {
            "*" => "0.0.0.0",
            "::*" => "::",
            h => h,
        };
        let addr: SocketAddr = if host.contains(':') {
            format!("[{host}]:{port}").parse()?
        } else {
            format!("{host}:{port}").parse()?
        };
        match bind_one(addr) {
            Ok(l) => out.push(l),
            Err((_, e)) if optional => crate::verbose!("Could not bind {addr}: {e} (optional)"),
            // Redis's words, with the failing call's name and strerror.
            Err((call, e)) => anyhow::bail!(
                "Could not create server TCP listening socket {host}:{port}: {call}: {}",
                strerror(&e)
            ),
        }
    }
    Ok(out)
}

/// A listening socket on `addr`, or the failing call's name and error.
fn bind_one(addr: SocketAddr) -> Result<StdListener, (&'static str, std::io::Error)> {
    use std::os::fd::FromRawFd;
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket syscalls on a descriptor we own; errors are checked.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(("socket", std::io::Error::last_os_error()));
        }
        let one: libc::c_int = 1;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as _,
            len,
        );
        if addr.is_ipv6() {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &one as *const _ as _,
                len,
            );
        }
        let listener = StdListener::from_raw_fd(fd);
        let sa = socket2_addr(addr);
        if libc::bind(fd, &sa.0 as *const _ as *const libc::sockaddr, sa.1) < 0 {
            return Err(("bind", std::io::Error::last_os_error()));
        }
        if libc::listen(fd, 511) < 0 {
            return Err(("listen", std::io::Error::last_os_error()));
        }
        listener.set_nonblocking(true).map_err(|e| ("fcntl", e))?;
        Ok(listener)
    }
}

fn socket2_addr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Starts the server and blocks until it shuts down.
pub fn run(srv: &'static Server) -> anyhow::Result<()> {
    srv.install_hooks();
    let port = srv.config.port.get() as u16;
    let listeners = if port == 0 {
        Vec::new()
    } else {
        bind_all(&srv.config.bind.get(), port).map_err(|e| listen_failed(e, port, "TCP"))?
    };
    let unix_listener = unix::bind(srv)?;
    tls::init(srv).map_err(anyhow::Error::msg)?;
    let tls_port = srv.config.tls_port.get() as u16;
    let tls_listeners = if tls_port == 0 {
        Vec::new()
    } else {
        bind_all(&srv.config.bind.get(), tls_port).map_err(|e| listen_failed(e, tls_port, "TLS"))?
    };
    show_banner(srv);
    // The dataset loads once clients are served: meanwhile they get
    // -LOADING for all but the `loading` commands (INFO, CONFIG ...).
    srv.persist.loading.begin(0);
    srv.tcp_port.store(port, Ordering::Relaxed);
    let workers = srv.workers.load(Ordering::Relaxed).max(1);
    const WORKER_STACK: usize = 16 << 20;

    let mut handles = Vec::new();
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..workers {
        let stats = Arc::new(ThreadStats::new(srv.commands.len()));
        srv.thread_stats.lock().push(stats.clone());
        srv.scripting.register_worker(stats.clone());
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("ferrokv-w{i}"))
            // Converting a script's deeply nested reply recurses about 8,000
            // levels (Lua's C stack limit) before Redis's "reached lua stack
            // limit"; the stack is reserved, not committed, until used.
            .stack_size(WORKER_STACK)
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("worker runtime");
                let _ = tx.send((rt.handle().clone(), stats));
                rt.block_on(std::future::pending::<()>());
            })?;
    }
    for _ in 0..workers {
        handles.push(rx.recv()?);
    }
    let handles: &'static [(tokio::runtime::Handle, Arc<ThreadStats>)] = handles.leak();
    settle::init(handles);

    listen::start(srv, listeners, handles);
    tls::start(srv, tls_listeners, handles);
    if let Some(l) = unix_listener {
        unix::start(srv, l, handles);
    }
    title::apply(srv);
    if oom::apply(&srv.config).is_err() {
        crate::warning!("Failed to set the OOM score: oom-score-adj-values not applied");
    }
    evict::sync_access_tracking(srv);
    client_mem::sync_limit(srv);
    if srv.config.watchdog_period.get() > 0 {
        crate::watchdog::configure(srv.config.watchdog_period.get());
    }
    std::thread::Builder::new()
        .name("ferrokv-cron".into())
        .spawn(move || cron(srv))?;
    install_signal_handlers(srv);
    // With the AOF on, it alone is the dataset; the RDB file otherwise,
    // as Redis chooses.
    let loaded = if srv.config.appendonly.get() {
        crate::persist::aof::start(srv)
    } else {
        crate::persist::save::load_at_startup(srv).inspect_err(|e| {
            if srv.shutting_down() {
                return;
            }
            crate::warning!("{e}");
            crate::warning!("Terminating server after rdb file reading failure.");
            std::process::exit(1);
        })
    };
    srv.persist.loading.end();
    // A SIGTERM during the load stops it; the process then exits as asked.
    if !srv.shutting_down() {
        loaded.map_err(anyhow::Error::msg)?;
        crate::notice!("Ready to accept connections tcp");
        srv.config.unixsocket.with(|path| {
            if !path.is_empty() {
                crate::notice!("The server is now ready to accept connections at {path}");
            }
        });
        replica::start_from_config(srv);
    }
    srv.wait_shutdown();
    unix::remove_file(srv);
    crate::persist::aof::shutdown();
    say_bye();
    Ok(())
}

/// A listener that could not be had at start-up: Redis's warning, then its
/// last words (the test suite reads "Failed listening on port" as a port
/// taken by another test, and tries another).
fn listen_failed(e: anyhow::Error, port: u16, kind: &str) -> anyhow::Error {
    crate::warning!("Warning: {e}");
    anyhow::anyhow!("Failed listening on port {port} ({kind}), aborting.")
}

/// The start-up banner: with `always-show-logo yes` or a terminal on stdout,
/// a few lines naming the version, mode, port and pid (tools such as Redis's
/// test suite find the server's pid there as " PID: <pid>"); otherwise
/// Redis's one-line "Running mode" notice. It comes once the listeners
/// are bound, as Redis's does: the suite connects as soon as it sees the
/// pid, without a retry.
fn show_banner(srv: &Server) {
    use std::io::IsTerminal;
    let port = srv.config.port.get();
    if srv.config.always_show_logo.get() || std::io::stdout().is_terminal() {
        crate::notice!(
            "ferrokv {} (Redis {} compatible), 64 bit",
            crate::VERSION,
            crate::REDIS_VERSION
        );
        crate::notice!(
            "Running in standalone mode, Port: {port}, PID: {}",
            std::process::id()
        );
    } else {
        crate::notice!("Running mode=standalone, port={port}.");
    }
}

/// The last log line, once: SHUTDOWN's thread and the woken main thread
/// may both reach it.
fn say_bye() {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        crate::warning!("ferrokv is now ready to exit, bye bye...");
    }
}

/// Periodic work at `hz`: eviction while over `maxmemory`, active expiry.
fn cron(srv: &'static Server) {
    let mut last_clients_check = Instant::now();
    loop {
        let hz = srv.config.hz.get().clamp(1, 500) as u64;
        std::thread::sleep(Duration::from_millis(1000 / hz));
        if srv.shutting_down() {
            return;
        }
        ferrokv_util::stopwatch::calibrate();
        // Nothing periodic while the dataset loads (no save of part of
        // it, no eviction or expiry of what is being placed), nor while
        // DEBUG PAUSE-CRON holds it.
        if srv.persist.loading.active() || srv.cron_paused.load(Ordering::Relaxed) {
            continue;
        }
        if shutdown::cron(srv) {
            srv.request_shutdown();
            return;
        }
        let evicting = Instant::now();
        // Clients over `maxmemory-clients` go before any key, as in Redis.
        client_mem::check(srv);
        if !replica::ignores_maxmemory(srv) {
            evict::cron(srv);
        }
        crate::cmd::latency::sample(srv, "eviction-cycle", evicting.elapsed());
        crate::persist::bgsave::cron(srv);
        crate::persist::aof::cron(srv);
        crate::pubsub::tracking::cron(srv);
        if last_clients_check.elapsed() >= Duration::from_secs(1) {
            last_clients_check = Instant::now();
            obuf::cron(srv, now_ms());
        }
        repl::cron(srv, now_ms());
        // Set where the role changes; kept in step here too, for any path
        // that changes the role without it.
        srv.ks.set_replica_expiry(replica::is_replica());
        if srv.active_expire.load(Ordering::Relaxed) && !srv.pause.active(now_ms()) {
            replica_expire::cron(srv, now_ms());
        }
        failover::cron(srv);
        reply_buf::cron(srv, now_ms());
        // Keep sweeping while a pass reclaims a lot, as Redis's cycle repeats
        // while more than a quarter of the sampled keys were expired.
        // CLIENT PAUSE stops the sweep too, and a replica leaves expiry to
        // its master's DELs (a writable one's own keys with a deadline go
        // when a write meets them; Redis also sweeps those).
        if !srv.active_expire.load(Ordering::Relaxed)
            || srv.pause.active(now_ms())
            || replica::is_replica()
        {
            continue;
        }
        let started = Instant::now();
        while srv.ks.active_expire(now_ms(), 64) > 16
            && started.elapsed() < Duration::from_millis(25)
        {}
        crate::cmd::latency::sample(srv, "expire-cycle", started.elapsed());
    }
}

fn install_signal_handlers(srv: &'static Server) {
    // Redis ignores SIGHUP (a closed terminal must not stop the server);
    // Rust already ignores SIGPIPE.
    // SAFETY: installs the standard "ignore" disposition; no handler code runs.
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    std::thread::Builder::new()
        .name("ferrokv-signals".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(rt) = rt else { return };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                loop {
                    let which = tokio::select! {
                        _ = term.recv() => "SIGTERM",
                        _ = int.recv() => "SIGINT",
                    };
                    if !shutdown::signalled(which) {
                        crate::warning!("You insist... exiting now.");
                        crate::persist::save::remove_temp_file();
                        std::process::exit(1);
                    }
                    // While the dataset loads the cron does nothing: the
                    // load stops and the process exits without a save.
                    if srv.persist.loading.active() {
                        crate::warning!(
                            "Received shutdown signal during loading, scheduling shutdown."
                        );
                        break;
                    }
                    // The cron carries it out (`shutdown::cron`).
                    crate::warning!("Received {which} scheduling shutdown...");
                }
                srv.request_shutdown();
            });
        })
        .expect("signal thread");
}
