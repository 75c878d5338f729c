//! CLIENT PAUSE: for a while, clients' commands wait before running —
//! every command (`ALL`), or those that may change data or be propagated
//! (`WRITE`: write and may-replicate commands, scripts that may write, an
//! EXEC whose queue holds one). A waiting client counts as blocked; when the
//! pause ends (its deadline, or CLIENT UNPAUSE) the waiting commands are
//! dispatched again, in the order each connection sent them. Keys do not
//! expire meanwhile (the sweep stops; lookups miss an expired key but leave
//! it, publishing no DEL), as in Redis.
//!
//! While nothing is paused the command path pays one relaxed load.

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use tokio::sync::Notify;

use crate::cmd::{Command, flags};
use crate::resp::Args;
use crate::server::Server;
use crate::store::Keyspace;

const NONE: u8 = 0;
const WRITE: u8 = 1;
const ALL: u8 = 2;

/// Pauses the server sets itself, apart from CLIENT PAUSE's (which CLIENT
/// UNPAUSE ends): each holds writes until its owner releases it, as
/// Redis's pause purposes do.
#[derive(Clone, Copy)]
pub enum Purpose {
    /// SHUTDOWN waiting for lagging replicas (`server::shutdown`).
    Shutdown = 1,
    /// FAILOVER waiting for its target (`server::failover`).
    Failover = 2,
}

#[derive(Default)]
pub struct Pause {
    mode: AtomicU8,
    until_ms: AtomicI64,
    /// [`Purpose`] bits: writes are held while any is set.
    internal: AtomicU8,
    ended: Notify,
}

impl Pause {
    /// Pauses until `until_ms`; a pause already running keeps the later end
    /// and the stronger mode, as Redis merges them.
    /// Keys do not expire meanwhile (`Keyspace::hold_expiry`).
    pub fn pause(&self, ks: &Keyspace, until_ms: i64, all: bool) {
        let mode = if all { ALL } else { WRITE };
        self.until_ms.fetch_max(until_ms, Ordering::SeqCst);
        self.mode.fetch_max(mode, Ordering::SeqCst);
        self.sync_expiry(ks);
    }

    /// Ends the pause; waiting clients go on.
    pub fn unpause(&self, ks: &Keyspace) {
        self.mode.store(NONE, Ordering::SeqCst);
        self.until_ms.store(0, Ordering::SeqCst);
        self.sync_expiry(ks);
        self.ended.notify_waiters();
    }

    /// Holds writes for `why` until [`Pause::release`] (no deadline).
    pub fn hold(&self, ks: &Keyspace, why: Purpose) {
        self.internal.fetch_or(why as u8, Ordering::SeqCst);
        self.sync_expiry(ks);
    }

    /// Ends the pause `why` held; the others stay.
    pub fn release(&self, ks: &Keyspace, why: Purpose) {
        self.internal.fetch_and(!(why as u8), Ordering::SeqCst);
        self.sync_expiry(ks);
        self.ended.notify_waiters();
    }

    /// Keys expire again when no pause is left (a server pause has no end).
    fn sync_expiry(&self, ks: &Keyspace) {
        let until = if self.internal.load(Ordering::SeqCst) != 0 {
            i64::MAX
        } else if self.mode.load(Ordering::SeqCst) != NONE {
            self.until_ms.load(Ordering::SeqCst)
        } else {
            0
        };
        ks.hold_expiry(until);
    }

    /// The mode in force at `now_ms` (`NONE` once the deadline passed).
    #[inline]
    fn mode_at(&self, now_ms: i64) -> u8 {
        let m = self.mode.load(Ordering::Relaxed);
        let client = if m == NONE || now_ms >= self.until_ms.load(Ordering::Relaxed) {
            NONE
        } else {
            m
        };
        if self.internal.load(Ordering::Relaxed) != 0 {
            client.max(WRITE)
        } else {
            client
        }
    }

    /// Whether CLIENT PAUSE's own pause is in force at `now_ms`.
    fn client_active(&self, now_ms: i64) -> bool {
        self.mode.load(Ordering::Relaxed) != NONE && now_ms < self.until_ms.load(Ordering::Relaxed)
    }

    /// Whether anything is paused now (the expiry sweep stops).
    pub fn active(&self, now_ms: i64) -> bool {
        self.mode_at(now_ms) != NONE
    }

    /// Whether `cmd` must wait for the pause to end before running.
    #[inline]
    pub fn holds(
        &self,
        srv: &Server,
        client: &crate::server::client::Client,
        cmd: &Command,
        args: &Args<'_>,
        now_ms: i64,
    ) -> bool {
        match self.mode_at(now_ms) {
            NONE => false,
            ALL => true,
            _ => may_replicate(srv, client, cmd, args),
        }
    }

    /// Waits until the pause changes: CLIENT UNPAUSE or a server pause's
    /// release, or CLIENT PAUSE's deadline (the caller asks [`Pause::holds`]
    /// again: a pause that outlasts another may still hold its command).
    pub async fn wait(&self) {
        let ended = self.ended.notified();
        let now = crate::server::now_ms();
        if !self.active(now) {
            return;
        }
        let deadline = async {
            if self.client_active(now) {
                let left = self.until_ms.load(Ordering::Relaxed).saturating_sub(now);
                let left = u64::try_from(left).unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_millis(left)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = ended => {}
            () = deadline => {}
        }
    }
}

/// Whether a command may change data or be propagated: what a WRITE pause
/// holds back. Scripts count by what they declare (`no-writes`, the `_RO`
/// forms); an EXEC by its queue.
fn may_replicate(
    srv: &Server,
    client: &crate::server::client::Client,
    cmd: &Command,
    args: &Args<'_>,
) -> bool {
    if cmd.name == "exec" {
        return client
            .multi
            .as_ref()
            .is_some_and(|q| q.any(|c, a| may_replicate(srv, client, c, a)));
    }
    if cmd.has(flags::RUNS_SCRIPTS) {
        return crate::scripting::may_write(srv, cmd, args);
    }
    cmd.has(flags::WRITE | flags::MAY_REPLICATE)
}
