//! FAILOVER: a master hands its role to one of its replicas without
//! losing writes, as Redis 7.0 coordinates it.
//!
//! 1. FAILOVER pauses writes (`pause::Purpose::Failover`) and the state is
//!    `waiting-for-sync`: the cron watches for the target (or, without
//!    `TO`, any replica) to acknowledge the whole stream.
//! 2. Then the state is `failover-in-progress` and this server becomes a
//!    replica of the target, data kept. Its link sends `PSYNC <replid>
//!    <offset> FAILOVER`; the target, whose id is ours, turns master on
//!    receiving it (as REPLICAOF NO ONE) and continues us from its
//!    backlog under its new id.
//! 3. Once the target answered the PSYNC (`+CONTINUE` or `+FULLRESYNC`)
//!    writes resume (they now meet a replica: READONLY). A refusal, a
//!    `TIMEOUT` without `FORCE`, or FAILOVER ABORT rolls back: a master
//!    again (with a new id, as REPLICAOF NO ONE), writes resumed. With
//!    `FORCE`, the timeout starts step 2 anyway.
//!
//! Other replicas of this server are left attached; they follow it as a
//! chained replica once it continues under the new id.

use parking_lot::Mutex;

use super::pause::Purpose;
use super::{Server, now_ms};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    None,
    WaitForSync,
    InProgress,
}

struct State {
    phase: Phase,
    /// The replica it fails over to (`None`: the first one in sync).
    target: Option<(String, i64)>,
    /// When waiting for the sync gives up (ms; `None`: never).
    deadline_ms: Option<i64>,
    /// At the deadline, fail over anyway.
    force: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    phase: Phase::None,
    target: None,
    deadline_ms: None,
    force: false,
});

/// INFO replication's `master_failover_state`.
pub fn state_name() -> &'static str {
    match STATE.lock().phase {
        Phase::None => "no-failover",
        Phase::WaitForSync => "waiting-for-sync",
        Phase::InProgress => "failover-in-progress",
    }
}

/// What FAILOVER asked for (already parsed).
pub struct Request {
    pub target: Option<(String, i64)>,
    pub timeout_ms: Option<i64>,
    pub force: bool,
}

/// Starts a failover, or says why not (Redis's errors, in its order).
pub fn start(srv: &Server, req: Request) -> Result<(), &'static str> {
    let mut st = STATE.lock();
    if st.phase != Phase::None {
        return Err("ERR FAILOVER already in progress.");
    }
    if super::replica::is_replica() {
        return Err("ERR FAILOVER is not valid when server is a replica.");
    }
    if super::repl::count() == 0 {
        return Err("ERR FAILOVER requires connected replicas.");
    }
    if req.force && (req.timeout_ms.is_none() || req.target.is_none()) {
        return Err(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        );
    }
    if let Some((host, port)) = &req.target {
        let views = super::repl::views();
        let Some(r) = views.iter().find(|r| is_target(r, host, *port)) else {
            return Err("ERR FAILOVER target HOST and PORT is not a replica.");
        };
        if !r.online {
            return Err("ERR FAILOVER target replica is not online.");
        }
        crate::notice!("FAILOVER requested to {host}:{port}.");
    } else {
        crate::notice!("FAILOVER requested to any replica.");
    }
    *st = State {
        phase: Phase::WaitForSync,
        target: req.target,
        deadline_ms: req.timeout_ms.map(|t| now_ms().saturating_add(t)),
        force: req.force,
    };
    srv.pause.hold(&srv.ks, Purpose::Failover);
    Ok(())
}

fn is_target(r: &super::repl::ReplicaView, host: &str, port: i64) -> bool {
    r.ip.eq_ignore_ascii_case(host) && i64::from(r.port) == port
}

/// FAILOVER ABORT: false when no failover is under way.
pub fn abort(srv: &'static Server) -> bool {
    let mut st = STATE.lock();
    if st.phase == Phase::None {
        return false;
    }
    roll_back(srv, &mut st, "Failover manually aborted");
    true
}

/// Ends the failover without handing over: a master again if this server
/// had turned replica already.
fn roll_back(srv: &'static Server, st: &mut State, why: &str) {
    match &st.target {
        Some((host, port)) => crate::notice!("FAILOVER to {host}:{port} aborted: {why}"),
        None => crate::notice!("FAILOVER to any replica aborted: {why}"),
    }
    if st.phase == Phase::InProgress {
        super::replica::set_no_one();
        super::oom::set_replica(&srv.config, false);
        srv.ks.set_replica_expiry(false);
        srv.config.replicaof.set("");
    }
    clear(srv, st);
}

fn clear(srv: &Server, st: &mut State) {
    *st = State {
        phase: Phase::None,
        target: None,
        deadline_ms: None,
        force: false,
    };
    srv.pause.release(&srv.ks, Purpose::Failover);
}

/// The cron's part while waiting for the sync: the timeout (abort, or with
/// FORCE go ahead), else hands over once the target (or any replica)
/// acknowledged this server's whole stream.
pub fn cron(srv: &'static Server) {
    let mut st = STATE.lock();
    if st.phase != Phase::WaitForSync {
        return;
    }
    if st.deadline_ms.is_some_and(|d| now_ms() >= d) {
        if st.force
            && let Some((host, port)) = st.target.clone()
        {
            crate::notice!("FAILOVER to {host}:{port} time out exceeded, failing over.");
            st.phase = Phase::InProgress;
            become_replica(srv, &host, port);
        } else {
            roll_back(srv, &mut st, "Replica never caught up before timeout");
        }
        return;
    }
    let offset = super::repl::master_offset();
    let views = super::repl::views();
    let synced = match &st.target {
        Some((host, port)) => views
            .iter()
            .find(|r| is_target(r, host, *port))
            .filter(|r| r.ack_off == offset)
            .map(|_| (host.clone(), *port)),
        None => views
            .iter()
            .find(|r| r.ack_off == offset)
            .map(|r| (r.ip.clone(), i64::from(r.port))),
    };
    let Some((host, port)) = synced else { return };
    crate::notice!("Failover target {host}:{port} is synced, failing over.");
    st.target = Some((host.clone(), port));
    st.phase = Phase::InProgress;
    become_replica(srv, &host, port);
}

/// Follows the target (a replica's port always fits: it announced it).
/// Called with the state locked, so an ABORT cannot come between the
/// phase and the role.
fn become_replica(srv: &'static Server, host: &str, port: i64) {
    let port = u16::try_from(port).unwrap_or(0);
    srv.config.replicaof.set(&format!("{host} {port}"));
    super::replica::set_master(srv, host, port);
}

/// Whether this server's link must ask its new master to take over
/// (`PSYNC ... FAILOVER`).
pub fn in_progress() -> bool {
    STATE.lock().phase == Phase::InProgress
}

/// The target answered the link's `PSYNC ... FAILOVER`: accepted, the
/// failover is over (writes resume, meeting a replica); refused, it rolls
/// back. False when the link must stop.
pub fn psync_answered(srv: &'static Server, accepted: bool) -> bool {
    let mut st = STATE.lock();
    if st.phase != Phase::InProgress {
        return true;
    }
    if accepted {
        clear(srv, &mut st);
        return true;
    }
    roll_back(srv, &mut st, "Failover target rejected psync request");
    false
}

/// The old master's last writes may still be on their way through this
/// replica's link when its `PSYNC ... FAILOVER` arrives (a forced
/// failover): Redis, on one thread, applies what the link already holds
/// before the handshake's round trips end. The link thread is given a
/// moment to reach `offset` (polled every millisecond): up to a second to
/// receive the bytes, then up to five to apply what it received (bounded
/// work, which a loaded machine may only schedule late), so the sender can
/// continue instead of loading everything again.
fn catch_up(offset: i64) {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    while super::replica::is_replica() && super::replica::offset() < offset {
        let received =
            super::replica::READ_OFFSET.load(std::sync::atomic::Ordering::Relaxed) >= offset;
        let limit = Duration::from_secs(if received { 5 } else { 1 });
        if start.elapsed() >= limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// PSYNC's part on the target: `PSYNC <replid> <offset> FAILOVER` naming
/// this server's history makes it a master first (as REPLICAOF NO ONE:
/// the old id stays valid, so the sender continues); and no replica may
/// sync while this server fails over.
pub fn before_sync(srv: &Server, args: &crate::resp::Args<'_>) -> Result<(), String> {
    if args.len() > 3
        && args[0].eq_ignore_ascii_case(b"psync")
        && args[3].eq_ignore_ascii_case(b"failover")
    {
        let ids = super::repl::ids();
        if &args[1][..] != ids.replid.as_bytes() {
            return Err("ERR PSYNC FAILOVER replid must match my replid.".into());
        }
        catch_up(crate::util::num::parse_i64(&args[2]).unwrap_or(0) - 1);
        super::replica::set_no_one();
        super::oom::set_replica(&srv.config, false);
        srv.ks.set_replica_expiry(false);
        srv.config.replicaof.set("");
        crate::notice!("Failover request received for replid {}.", ids.replid);
    }
    if STATE.lock().phase != Phase::None {
        return Err("NOMASTERLINK Can't SYNC while failing over".into());
    }
    Ok(())
}
