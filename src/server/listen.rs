//! The plain TCP listeners: bound at start-up, replaced when CONFIG SET
//! changes `port` or `bind` (the TLS ones are `super::tls`'s).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::Server;
use super::stats::ThreadStats;

type Workers = &'static [(tokio::runtime::Handle, Arc<ThreadStats>)];

#[derive(Default)]
pub struct Listeners {
    /// The worker runtimes, to start accept loops on after start-up.
    workers: OnceLock<Workers>,
    /// Each listener's descriptor and accept loop.
    loops: Mutex<Vec<(i32, tokio::task::AbortHandle)>>,
}

/// Redis's CONFIG SET answers when the new listeners cannot be bound.
pub const PORT_FAILED: &str = "Unable to listen on this port. Check server logs.";
pub const BIND_FAILED: &str = "Failed to bind to specified addresses.";

/// Starts the accept loops of the listeners bound at start-up.
pub fn start(srv: &'static Server, listeners: Vec<std::net::TcpListener>, workers: Workers) {
    let _ = srv.listeners.workers.set(workers);
    add(srv, listeners);
}

fn add(srv: &'static Server, listeners: Vec<std::net::TcpListener>) {
    let Some(&workers) = srv.listeners.workers.get() else {
        return;
    };
    for l in listeners {
        use std::os::fd::AsRawFd;
        let fd = l.as_raw_fd();
        srv.listen_fds.lock().push(fd);
        let (rt, _) = &workers[0];
        let task = rt.spawn(super::conn::accept_loop(srv, l, workers, false));
        srv.listeners.loops.lock().push((fd, task.abort_handle()));
    }
}

/// CONFIG SET port / bind: listens on the configured addresses and port
/// (none for port 0). A new port is bound before the old listeners close,
/// so a failure leaves the server listening as before. New addresses on
/// the same port cannot be bound beside the old ones: `close_first`
/// closes those first, and after a failure the caller restores the old
/// `bind` and calls this again. Connections already accepted stay open.
pub fn rebind(srv: &'static Server, close_first: bool) -> Result<(), String> {
    if close_first {
        close_all(srv);
    }
    let port = srv.config.port.get() as u16;
    let fresh = if port == 0 {
        Vec::new()
    } else {
        super::bind_all(&srv.config.bind.get(), port).map_err(|e| e.to_string())?
    };
    close_all(srv);
    add(srv, fresh);
    srv.tcp_port.store(port, Ordering::Relaxed);
    Ok(())
}

fn close_all(srv: &Server) {
    let old = std::mem::take(&mut *srv.listeners.loops.lock());
    srv.listen_fds
        .lock()
        .retain(|fd| !old.iter().any(|(o, _)| o == fd));
    for (fd, task) in old {
        // Stop listening now: the aborted loop drops (closes) its listener
        // only when its runtime next runs, and a listener left in LISTEN
        // state until then would keep new addresses on the same port from
        // binding. Shut down, it no longer conflicts (SO_REUSEADDR).
        // SAFETY: a listening socket this process owns, still open (its
        // loop closes it once aborted).
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        task.abort();
    }
}

/// Opens an outgoing TCP connection (MIGRATE, a replica's link to its
/// master) from the address `bind-source-addr` names, when it names one;
/// otherwise the system picks the local address. A source that cannot be
/// parsed or bound fails the connection, as in Redis.
/// `source` is the parameter's value (`srv.config.bind_source_addr.get()`).
pub fn connect(
    source: &str,
    addr: &std::net::SocketAddr,
    timeout: std::time::Duration,
) -> std::io::Result<std::net::TcpStream> {
    use socket2::{Domain, Socket, Type};
    if source.is_empty() {
        return std::net::TcpStream::connect_timeout(addr, timeout);
    }
    let ip: std::net::IpAddr = source.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bind-source-addr {source} is not an IP address"),
        )
    })?;
    let socket = Socket::new(Domain::for_address(*addr), Type::STREAM, None)?;
    socket.bind(&std::net::SocketAddr::new(ip, 0).into())?;
    socket.connect_timeout(&(*addr).into(), timeout)?;
    Ok(socket.into())
}
