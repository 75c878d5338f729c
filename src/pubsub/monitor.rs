//! MONITOR: clients that receive a line for every command the server runs,
//! `+<unix time>.<µs> [<db> <client address | lua>] "arg" "arg" ...`.
//!
//! As in Redis 7.0, a command is shown once it ran (with the database it
//! left selected), failed commands included, but not one refused before
//! running (unknown, arity, NOAUTH) nor one queued by MULTI (it shows when
//! EXEC runs it, before EXEC itself); scripts (`SKIP_MONITOR` commands)
//! show before the commands they call, which show as `lua`. `ADMIN`
//! commands never show, and passwords show as `(redacted)`.
//!
//! Delivery goes through the receivers' outboxes, as pub/sub messages do,
//! under the output buffer limits of the `replica` class Redis applies to
//! monitors; while nobody monitors, a command pays one relaxed load.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::resp::{Args, Reply};
use crate::server::Server;
use crate::server::client::ClientInfo;

#[derive(Default)]
pub struct Monitors {
    n: AtomicUsize,
    list: RwLock<Vec<Arc<ClientInfo>>>,
}

impl Monitors {
    /// Whether anyone monitors (the command path's one load).
    #[inline]
    pub fn active(&self) -> bool {
        self.n.load(Ordering::Relaxed) != 0
    }

    /// Registers a monitor; false if it already was one.
    pub fn add(&self, c: &Arc<ClientInfo>) -> bool {
        let mut list = self.list.write();
        if list.iter().any(|m| m.id == c.id) {
            return false;
        }
        list.push(c.clone());
        self.n.store(list.len(), Ordering::Relaxed);
        true
    }

    /// Unregisters client `id` if it monitors (RESET, disconnect).
    pub fn remove(&self, id: u64) {
        if !self.active() {
            return;
        }
        let mut list = self.list.write();
        list.retain(|m| m.id != id);
        self.n.store(list.len(), Ordering::Relaxed);
    }

    /// Sends the line for one command to every monitor. `from` is the
    /// calling client (`None` inside a script); a monitor that ran the
    /// command itself gets the line in `own_out`, after its reply.
    pub fn feed(
        &self,
        srv: &Server,
        from: Option<&ClientInfo>,
        db: usize,
        args: &Args<'_>,
        own_out: &mut Reply,
    ) {
        let line = line(from, db, args);
        let limits = limits(srv);
        let now = crate::server::now_ms();
        for m in self.list.read().iter() {
            if from.is_some_and(|f| f.id == m.id) {
                own_out.buf.extend_from_slice(&line);
            } else {
                m.outbox.append(m, &line, limits, now);
            }
        }
    }
}

/// The `replica` class's output limits, which Redis applies to monitors.
fn limits(srv: &Server) -> [i64; 3] {
    srv.config.client_output_buffer_limit.replica()
}

/// One monitor line, as a status reply.
fn line(from: Option<&ClientInfo>, db: usize, args: &Args<'_>) -> Vec<u8> {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let who = from.map_or("lua", |c| c.addr.as_str());
    let mut out = format!("+{}.{:06} [{db} {who}]", t.as_secs(), t.subsec_micros()).into_bytes();
    for (i, a) in args.iter().enumerate() {
        out.push(b' ');
        if redacted(args, i) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(a, &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Whether argument `i` is a secret: AUTH's arguments, the user and
/// password after HELLO's AUTH, MIGRATE's AUTH/AUTH2 credentials.
fn redacted(args: &Args<'_>, i: usize) -> bool {
    let name = &args[0];
    if name.eq_ignore_ascii_case(b"auth") {
        return i >= 1;
    }
    if name.eq_ignore_ascii_case(b"hello") || name.eq_ignore_ascii_case(b"migrate") {
        // The credentials follow an AUTH (two words: user, password) or,
        // for MIGRATE, AUTH (password) / AUTH2 (user, password).
        let mut j = 1;
        while j < i {
            let a = &args[j];
            let words = if a.eq_ignore_ascii_case(b"auth") {
                if name.eq_ignore_ascii_case(b"hello") {
                    2
                } else {
                    1
                }
            } else if a.eq_ignore_ascii_case(b"auth2") {
                2
            } else {
                0
            };
            if words > 0 && i > j && i <= j + words {
                return true;
            }
            j += 1;
        }
    }
    false
}

/// `"..."` with Redis's escapes (as `redis-cli` prints strings).
fn quote(a: &[u8], out: &mut Vec<u8>) {
    crate::util::repr::quote_into(out, a);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_redis() {
        let mut out = Vec::new();
        quote(b"a\x00b\n\"q\\\x7f\xff", &mut out);
        assert_eq!(out, b"\"a\\x00b\\n\\\"q\\\\\\x7f\\xff\"");
    }
}
