//! Persistence: the RDB format ([`rdb`]) and the files built on it
//! ([`save`]: SAVE, loading at start-up, DEBUG RELOAD, INFO persistence;
//! [`bgsave`]: BGSAVE and save points on the snapshot walk), and the
//! append-only file ([`aof`]).

pub mod aof;
pub mod bgsave;
pub mod child;
pub mod load;
pub mod rdb;
pub mod save;

use crate::server::Server;

/// Redis's MISCONF reply while the last background save failed (with
/// `stop-writes-on-bgsave-error yes` and save points configured).
pub const RDB_MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Whether writes are refused because the disk could not be written: the
/// last BGSAVE failed (and the configuration stops writes then), or the
/// AOF's last write failed. Two atomic loads in the common case.
#[inline]
pub fn writes_denied(srv: &Server) -> bool {
    (!bgsave::last_ok(srv) && rdb_stops_writes(srv)) || aof::write_failed()
}

#[cold]
fn rdb_stops_writes(srv: &Server) -> bool {
    srv.config.stop_writes_on_bgsave_error.get() && save::save_points_configured(srv)
}

/// The MISCONF error for [`writes_denied`] (the RDB one first, as Redis
/// checks it first). Interned, so a script's `redis.call` can raise it as a
/// static string: there are only as many as `strerror` texts.
pub fn write_denied_message(srv: &Server) -> &'static str {
    if !bgsave::last_ok(srv) && rdb_stops_writes(srv) {
        return RDB_MISCONF;
    }
    match aof::write_error() {
        Some(msg) => intern(msg),
        None => RDB_MISCONF,
    }
}

fn intern(msg: String) -> &'static str {
    static SEEN: parking_lot::Mutex<Vec<&'static str>> = parking_lot::Mutex::new(Vec::new());
    let mut seen = SEEN.lock();
    if let Some(s) = seen.iter().find(|s| **s == msg) {
        return s;
    }
    let s: &'static str = Box::leak(msg.into_boxed_str());
    seen.push(s);
    s
}
