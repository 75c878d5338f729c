//! Shutdown: SHUTDOWN and the signals (`shutdown-on-sigterm` /
//! `shutdown-on-sigint`), the wait for lagging replicas, the pending
//! states SHUTDOWN ABORT cancels, and the "you insist" exit.
//!
//! As in Redis, a signal only schedules the shutdown; the cron carries it
//! out at its next tick (so DEBUG PAUSE-CRON holds it, and SHUTDOWN ABORT
//! can cancel it until then). A second SIGINT while one is under way ends
//! the process at once, deleting the temp RDB file.
//!
//! Unless `NOW` (or `shutdown-timeout 0`), a master whose replicas have not
//! acknowledged the whole stream first pauses writes, sends `REPLCONF
//! GETACK *` and waits, up to `shutdown-timeout` seconds, for them to
//! catch up; the cron then finishes it (the SHUTDOWN clients block
//! meanwhile). If the final steps fail (the save, or the AOF being
//! written for the first time), the server keeps running and every
//! waiting SHUTDOWN is answered an error, as when the wait is aborted.

use std::sync::Arc;

use parking_lot::Mutex;

use super::pause::Purpose;
use super::{Server, now_ms};
use crate::blocking::Waiter;

/// What a signal's shutdown does, from its `shutdown-on-*` parameter.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Flags {
    /// Save even without save points.
    pub save: bool,
    /// Never save.
    pub nosave: bool,
    /// Do not wait for lagging replicas.
    pub now: bool,
    /// Exit even if the final save fails.
    pub force: bool,
}

const NAMES: &str = "default, save, nosave, now, force";

/// Parses a `shutdown-on-sig*` value (words from `default save nosave now
/// force`, any case, combinable) into the form CONFIG GET prints: the
/// flags in that order, or `default` when none is set.
pub fn parse_flags(s: &str) -> Result<String, String> {
    let bad = || format!("argument(s) must be one of the following: {NAMES}");
    let mut f = Flags::default();
    let mut any = false;
    for w in s.split_whitespace() {
        any = true;
        match w.to_ascii_lowercase().as_str() {
            "default" => {}
            "save" => f.save = true,
            "nosave" => f.nosave = true,
            "now" => f.now = true,
            "force" => f.force = true,
            _ => return Err(bad()),
        }
    }
    if !any {
        return Err(bad());
    }
    if f.save && f.nosave {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    Ok(render(f))
}

fn render(f: Flags) -> String {
    let words: Vec<&str> = [
        (f.save, "save"),
        (f.nosave, "nosave"),
        (f.now, "now"),
        (f.force, "force"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, w)| *w)
    .collect();
    if words.is_empty() {
        "default".into()
    } else {
        words.join(" ")
    }
}

/// The flags a stored (canonical) value stands for.
fn flags_of(s: &str) -> Flags {
    let mut f = Flags::default();
    for w in s.split_whitespace() {
        match w {
            "save" => f.save = true,
            "nosave" => f.nosave = true,
            "now" => f.now = true,
            "force" => f.force = true,
            _ => {}
        }
    }
    f
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    /// A signal asked; the cron has not started on it (SHUTDOWN ABORT can
    /// cancel it).
    Scheduled(&'static str),
    /// The final steps (save, exit) are under way.
    Running,
    /// Writes are paused until every replica acknowledged the stream or
    /// the deadline (ms) passes (`shutdown-timeout`); SHUTDOWN ABORT
    /// cancels it.
    Waiting {
        flags: Flags,
        deadline_ms: i64,
        signal: bool,
    },
}

static STATE: Mutex<State> = Mutex::new(State::Idle);
/// The clients whose SHUTDOWN waits for the replicas: they are answered an
/// error if the shutdown fails or is aborted (the process ends otherwise).
static WAITERS: Mutex<Vec<Arc<Waiter>>> = Mutex::new(Vec::new());

/// The reply of a SHUTDOWN that failed or was aborted.
pub const FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// A signal arrived (the signal thread). Returns false when it is a
/// second SIGINT while a signal's shutdown is under way: the caller exits
/// at once.
pub fn signalled(which: &'static str) -> bool {
    let mut st = STATE.lock();
    match *st {
        State::Idle => *st = State::Scheduled(which),
        State::Waiting { signal: false, .. } => {}
        _ if which == "SIGINT" => return false,
        _ => {}
    }
    true
}

/// SHUTDOWN ABORT: cancels a scheduled shutdown or one waiting for the
/// replicas; false when there is none.
pub fn abort(srv: &Server) -> bool {
    let mut st = STATE.lock();
    match *st {
        State::Scheduled(_) => *st = State::Idle,
        State::Waiting { .. } => cancel(srv, &mut st),
        _ => return false,
    }
    crate::notice!("Shutdown manually aborted.");
    true
}

/// Back to running: the waiting SHUTDOWNs get an error, writes go on.
fn cancel(srv: &Server, st: &mut State) {
    *st = State::Idle;
    for w in WAITERS.lock().drain(..) {
        w.complete(format!("-{FAILED}\r\n").into_bytes());
    }
    srv.pause.release(&srv.ks, Purpose::Shutdown);
}

/// Milliseconds left before a shutdown waiting for replicas goes ahead
/// anyway (INFO's `shutdown_in_milliseconds`).
pub fn remaining_ms() -> Option<i64> {
    match *STATE.lock() {
        State::Waiting { deadline_ms, .. } => Some((deadline_ms - now_ms()).max(0)),
        _ => None,
    }
}

/// What [`begin`] did.
pub enum Begun {
    /// The process may exit now.
    Exit,
    /// The shutdown failed; the server keeps running.
    Failed,
    /// The waiter given is kept until the replicas caught up (or the
    /// shutdown fails or is aborted).
    Waiting,
}

/// SHUTDOWN (without ABORT): waits for lagging replicas unless `NOW` or
/// `shutdown-timeout 0`, else saves as `flags` say. While a shutdown
/// already waits, `waiter` joins it, whatever the flags, as in Redis.
pub fn begin(srv: &'static Server, flags: Flags, waiter: Arc<Waiter>) -> Begun {
    let mut st = STATE.lock();
    if let State::Waiting { .. } = *st {
        add_waiter(srv, waiter);
        return Begun::Waiting;
    }
    crate::warning!("User requested shutdown...");
    if wait_for_replicas(srv, &mut st, flags, false) {
        add_waiter(srv, waiter);
        return Begun::Waiting;
    }
    *st = State::Running;
    drop(st);
    finish_or_cancel(srv, flags)
}

/// Keeps `w`, counted as blocked at once (INFO's `blocked_clients`), under
/// the state's lock: a client that sees a later SHUTDOWN waiting also sees
/// this one counted.
fn add_waiter(srv: &'static Server, w: Arc<Waiter>) {
    crate::blocking::register(&srv.ks, &mut crate::store::Locks::default(), &w);
    let mut waiters = WAITERS.lock();
    waiters.retain(|w| w.is_waiting());
    waiters.push(w);
}

/// Starts waiting for the replicas if some lag (and `flags` allow it):
/// writes pause and every replica is asked for its offset.
fn wait_for_replicas(srv: &Server, st: &mut State, flags: Flags, signal: bool) -> bool {
    let timeout = srv.config.shutdown_timeout.get();
    if flags.now || timeout == 0 || replicas_in_sync() {
        return false;
    }
    *st = State::Waiting {
        flags,
        deadline_ms: now_ms().saturating_add(timeout.saturating_mul(1000)),
        signal,
    };
    if !srv.pause.active(now_ms()) {
        crate::server::repl::request_acks();
    }
    srv.pause.hold(&srv.ks, Purpose::Shutdown);
    crate::notice!("Waiting for replicas before shutting down.");
    true
}

/// Whether every replica acknowledged the whole stream.
fn replicas_in_sync() -> bool {
    let offset = crate::server::repl::master_offset();
    crate::server::repl::views()
        .iter()
        .all(|r| r.ack_off == offset)
}

/// The final steps; on failure the shutdown is cancelled (waiting clients
/// answered), and `Failed` returned.
fn finish_or_cancel(srv: &'static Server, flags: Flags) -> Begun {
    if finish(srv, flags) {
        return Begun::Exit;
    }
    crate::warning!("Errors trying to shut down the server. Check the logs for more information.");
    cancel(srv, &mut STATE.lock());
    Begun::Failed
}

/// Logs the replicas' state, stops a background save, refuses while the
/// AOF is being written for the first time, saves as `flags` and the save
/// points say. True when the process may exit.
fn finish(srv: &'static Server, flags: Flags) -> bool {
    let offset = crate::server::repl::master_offset();
    let replicas = crate::server::repl::views();
    let mut lagging = 0;
    for r in replicas.iter().filter(|r| r.ack_off != offset) {
        lagging += 1;
        crate::warning!(
            "Lagging replica {} reported offset {} behind master, lag={}, state={}.",
            r.name(),
            offset - r.ack_off,
            r.lag_secs,
            if r.online { "online" } else { "wait_bgsave" }
        );
    }
    if !replicas.is_empty() {
        crate::notice!(
            "{} of {} replicas are in sync when shutting down.",
            replicas.len() - lagging,
            replicas.len()
        );
    }
    crate::persist::bgsave::abort_and_wait(srv);
    if !crate::persist::aof::ready_to_exit(flags.force) {
        return false;
    }
    // Never over the file being loaded with part of it.
    let wanted = flags.save || crate::persist::save::save_points_configured(srv);
    if !wanted || flags.nosave || srv.persist.loading.active() {
        return true;
    }
    crate::notice!("Saving the final RDB snapshot before exiting.");
    match crate::persist::save::save_all(srv) {
        Ok(()) => true,
        Err(_) if flags.force => {
            crate::warning!("Error trying to save the DB. Exit anyway.");
            true
        }
        Err(_) => {
            crate::warning!("Error trying to save the DB, can't exit.");
            false
        }
    }
}

/// The cron's part: starts a scheduled (signalled) shutdown, and ends one
/// waiting for replicas once they caught up or its time is up. True when
/// the process may exit now; false while it waits, or when it failed (the
/// server then keeps running, as Redis does).
pub fn cron(srv: &'static Server) -> bool {
    let mut st = STATE.lock();
    let flags = match *st {
        State::Scheduled(which) => {
            let param = if which == "SIGINT" {
                &srv.config.shutdown_on_sigint
            } else {
                &srv.config.shutdown_on_sigterm
            };
            let flags = param.with(flags_of);
            crate::warning!("User requested shutdown...");
            if wait_for_replicas(srv, &mut st, flags, true) {
                return false;
            }
            flags
        }
        State::Waiting {
            flags, deadline_ms, ..
        } => {
            if now_ms() < deadline_ms && !replicas_in_sync() {
                return false;
            }
            flags
        }
        _ => return false,
    };
    *st = State::Running;
    drop(st);
    matches!(finish_or_cancel(srv, flags), Begun::Exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_combine_and_print_in_order() {
        assert_eq!(parse_flags("now save force").unwrap(), "save now force");
        assert_eq!(parse_flags("default now").unwrap(), "now");
        assert_eq!(parse_flags("NOSAVE default").unwrap(), "nosave");
        assert_eq!(parse_flags("default").unwrap(), "default");
        assert!(
            parse_flags("")
                .unwrap_err()
                .starts_with("argument(s) must be")
        );
        assert!(parse_flags("force bad").is_err());
        assert_eq!(
            parse_flags("save nosave").unwrap_err(),
            "shutdown options SAVE and NOSAVE can't be used simultaneously"
        );
        assert_eq!(
            flags_of("save now force"),
            Flags {
                save: true,
                nosave: false,
                now: true,
                force: true
            }
        );
    }
}
