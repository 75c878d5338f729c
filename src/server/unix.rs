//! The Unix domain socket listener (`unixsocket`, `unixsocketperm`).
//!
//! Bound at start-up beside the TCP listeners; its clients are served by
//! the same connection code (`conn::Stream` for `UnixStream`), count as
//! local (protected mode, the `local` value of `enable-*`), and show
//! `addr=<path>:0` and flag `U` in CLIENT LIST, as in Redis. As Redis
//! does, a file left at the path is removed before binding, and the
//! socket file is removed when the server exits.

use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};

use super::Server;
use super::stats::ThreadStats;

type Workers = &'static [(tokio::runtime::Handle, Arc<ThreadStats>)];

/// Parses `unixsocketperm` (octal, at most 0777; 0: leave the mode the
/// umask gives).
pub fn parse_perm(s: &str) -> Result<String, String> {
    let v = u32::from_str_radix(s, 8)
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if v > 0o777 {
        return Err("argument must be between 0 and 777 inclusive".into());
    }
    Ok(format!("{v:o}"))
}

/// Binds the configured socket, if any.
pub fn bind(srv: &Server) -> anyhow::Result<Option<StdUnixListener>> {
    let path = srv.config.unixsocket.get();
    if path.is_empty() {
        return Ok(None);
    }
    let _ = std::fs::remove_file(&path);
    let listener = StdUnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("Failed opening Unix socket: {e}"))?;
    let perm = u32::from_str_radix(&srv.config.unixsocketperm.get(), 8).unwrap_or(0);
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm))?;
    }
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Starts the accept loop on the first worker.
pub fn start(srv: &'static Server, listener: StdUnixListener, workers: Workers) {
    use std::os::fd::AsRawFd;
    srv.listen_fds.lock().push(listener.as_raw_fd());
    let (rt, _) = &workers[0];
    rt.spawn(accept_loop(srv, listener, workers));
}

/// Removes the socket file (at exit).
pub fn remove_file(srv: &Server) {
    let path = srv.config.unixsocket.get();
    if !path.is_empty() {
        let _ = std::fs::remove_file(path);
    }
}

async fn accept_loop(srv: &'static Server, listener: StdUnixListener, workers: Workers) {
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::warning!("unix socket listener: {e}");
            return;
        }
    };
    let mut next = 0usize;
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            // A listener shut down for the exit fails every accept.
            Err(_) if srv.shutting_down() => return,
            Err(e) => {
                // Out of descriptors, most often: try again shortly.
                crate::warning!("Accepting client connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if super::conn::over_maxclients(srv, |m| drop(sock.try_write(m))) {
            continue;
        }
        super::conn::hand_off(
            srv,
            workers,
            &mut next,
            sock.into_std(),
            UnixStream::from_std,
        );
    }
}
