//! A master's diskless full synchronization from a snapshot
//! (`store::snapshot`, as BGSAVE takes it), for replicas that announced
//! `capa eof`.
//!
//! A replica asking for one waits (`wait_bgsave`, sent keep-alive
//! newlines every second) until a transfer starts: at once without
//! `repl-diskless-sync-delay`, else when the first waiting replica has
//! waited that many seconds or `repl-diskless-sync-max-replicas` are
//! waiting, and never while a transfer runs (the next one starts after
//! it), as Redis schedules its `rdb-to-slaves` child. A transfer holds
//! every shard only for the cut, attaches every waiting replica at that
//! instant with its stream held back, and a thread streams the one
//! payload to all of them as a diskless `$EOF:<mark>` bulk, so clients
//! keep being served while the dataset is written out. Once the payload
//! is sent, the stream held back follows it and each replica is online.
//!
//! The payload waits for the slowest replica (at most `WINDOW` bytes
//! queued in each outbox); a replica that disconnects (or is killed) drops
//! out, one that reads nothing for `repl-timeout` seconds is disconnected,
//! and the transfer stops when none is left. While it runs a stand-in
//! child process exists (`persist::child`, as Redis's fork child:
//! `rdb_bgsave_in_progress:1`); killing it aborts the transfer.
//!
//! With `repl-diskless-sync no` the payload is also written as the RDB
//! file (renamed over `dbfilename` at the end, as Redis's disk-based sync
//! saves it first), and with save points set the transfer goes on when
//! every replica left, as Redis keeps that BGSAVE child. The replicas
//! still receive it streamed (`$EOF:<mark>`), not after the file is done.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use crate::persist::child::Child;
use crate::persist::rdb::snap::{Pacer, encoder, write};
use crate::server::client::{Client, ClientInfo};
use crate::server::{Server, now_ms};
use crate::store::Locks;
use crate::store::snapshot::Snapshot;

/// Payload bytes queued in an outbox before the walk waits.
const WINDOW: usize = 1 << 20;

/// A transfer runs (INFO `rdb_bgsave_in_progress`).
static RUNNING: AtomicBool = AtomicBool::new(false);
/// Set by FLUSHALL: the running transfer stops (its replicas sync again).
static ABORT: AtomicBool = AtomicBool::new(false);
/// The client ids of the running transfer's replicas: the scheduler
/// stops a transfer none of them waits for any more.
static MEMBERS: parking_lot::Mutex<Vec<u64>> = parking_lot::Mutex::new(Vec::new());
/// The running transfer also writes the RDB file (`repl-diskless-sync
/// no`): it goes on with no replica left when save points are set.
static TO_DISK: AtomicBool = AtomicBool::new(false);
/// A running disk-based transfer that replicas asking now join (as
/// Redis attaches them to its BGSAVE in progress): its header, the
/// stream offset its replicas continue from, and the replicas that
/// joined and the transfer has not taken yet.
struct Join {
    head: String,
    from: i64,
    new: Vec<Arc<ClientInfo>>,
}
static JOIN: parking_lot::Mutex<Option<Join>> = parking_lot::Mutex::new(None);
/// Until when (ms) DEBUG SLEEP holds the server: no keep-alive and no
/// transfer starts meanwhile, as Redis's frozen event loop sends none.
static FROZEN_UNTIL_MS: AtomicI64 = AtomicI64::new(0);

/// Whether a diskless transfer to replicas runs now.
pub fn in_progress() -> bool {
    RUNNING.load(Ordering::Relaxed)
}

/// FLUSHALL: a running transfer stops, as Redis kills its RDB child
/// then; its replicas are disconnected and synchronize again.
pub fn abort_running() {
    if in_progress() {
        ABORT.store(true, Ordering::Relaxed);
        crate::notice!("Background transfer to replicas aborted: killing the transfer");
    }
}

/// DEBUG SLEEP: the replication timers stand still until `until_ms`.
pub fn freeze_until(until_ms: i64) {
    FROZEN_UNTIL_MS.fetch_max(until_ms, Ordering::Relaxed);
}

/// PSYNC asking a full synchronization of `client` (the caller holds
/// every shard): it waits for the next transfer, which starts now if
/// nothing delays it. Always true (the caller's fallback is no longer
/// needed: a replica waits while another snapshot runs).
pub fn start(srv: &'static Server, client: &mut Client, locks: &mut Locks) -> bool {
    {
        let mut join = JOIN.lock();
        if let Some(j) = join.as_mut() {
            if super::repl::attach_joining(srv, client, &j.head, j.from) {
                crate::notice!("Waiting for end of BGSAVE for SYNC");
                MEMBERS.lock().push(client.info.id);
                j.new.push(client.info.clone());
            }
            return true;
        }
    }
    if !super::repl::attach_waiting(srv, client) {
        return true;
    }
    ensure_scheduler(srv);
    if srv.config.repl_diskless_sync_delay.get() > 0 || in_progress() {
        crate::notice!("Delay next BGSAVE for diskless SYNC");
        return true;
    }
    begin(srv, locks);
    true
}

/// Starts a transfer to every waiting replica (the caller holds every
/// shard); nothing if a snapshot cannot be taken now (the scheduler
/// tries again).
fn begin(srv: &'static Server, locks: &mut Locks) {
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    ABORT.store(false, Ordering::Relaxed);
    let Ok(snap) = srv.ks.snapshot(locks, encoder(srv)) else {
        RUNNING.store(false, Ordering::Release);
        return;
    };
    let mark = crate::server::random_hex(40);
    let (group, head, from) = super::repl::begin_transfer(&mark);
    if group.is_empty() {
        RUNNING.store(false, Ordering::Release);
        return;
    }
    crate::notice!(
        "Starting BGSAVE for SYNC with target: replicas sockets ({} waiting)",
        group.len()
    );
    let child = Child::spawn(
        "ferrokv-rdb-to-replicas",
        crate::server::oom::child_score(&srv.config),
    );
    if let Some(c) = &child {
        crate::notice!("Background RDB transfer started by pid {}", c.pid());
    }
    let delay = srv.config.rdb_key_save_delay.get();
    *MEMBERS.lock() = group.iter().map(|i| i.id).collect();
    // Disk-based: the payload is also the RDB file, as Redis's BGSAVE for
    // the replicas writes it.
    let file = if srv.config.repl_diskless_sync.get() {
        None
    } else {
        let tmp = std::path::PathBuf::from(format!("temp-{}-repl.rdb", std::process::id()));
        match std::fs::File::create(&tmp) {
            Ok(f) => Some((io::BufWriter::new(f), tmp)),
            Err(e) => {
                crate::warning!("Failed opening the temp RDB file for the replicas' sync: {e}");
                None
            }
        }
    };
    TO_DISK.store(file.is_some(), Ordering::Relaxed);
    if file.is_some() {
        *JOIN.lock() = Some(Join {
            head,
            from,
            new: Vec::new(),
        });
    }
    let members: Vec<Member> = group.into_iter().map(Member::new).collect();
    let spawned = std::thread::Builder::new()
        .name("ferrokv-repl-sync".into())
        .spawn(move || {
            crate::alloc::counted(|| send_payload(srv, snap, members, file, mark, delay, child));
        });
    if let Err(e) = spawned {
        crate::warning!("Can't start the replicas' synchronization: {e}");
        RUNNING.store(false, Ordering::Release);
    }
}

/// Whether the running transfer goes on without replicas: it writes the
/// RDB file, which save points make useful (as Redis keeps its child).
fn keeps_saving(srv: &Server) -> bool {
    TO_DISK.load(Ordering::Relaxed) && crate::persist::save::save_points_configured(srv)
}

/// No replica is left to receive the running transfer: it stops (within
/// a slice of `rdb-key-save-delay`), as Redis kills its child then.
fn last_replica_dropped() {
    if !ABORT.swap(true, Ordering::Relaxed) {
        crate::warning!("Diskless rdb transfer, last replica dropped, killing fork child.");
    }
}

/// The thread that starts delayed transfers and keeps waiting replicas'
/// links alive, started with the first replica that waits.
fn ensure_scheduler(srv: &'static Server) {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("ferrokv-repl-sched".into())
            .spawn(move || scheduler(srv));
        if let Err(e) = spawned {
            crate::warning!("Can't start the replication scheduler: {e}");
        }
    });
}

fn scheduler(srv: &'static Server) {
    let mut last_keepalive = 0i64;
    while !srv.shutting_down() {
        std::thread::sleep(Duration::from_millis(100));
        let now = now_ms();
        if now < FROZEN_UNTIL_MS.load(Ordering::Relaxed) {
            continue;
        }
        if in_progress() && !ABORT.load(Ordering::Relaxed) {
            let members = MEMBERS.lock().clone();
            if !members.is_empty()
                && !members.iter().any(|id| super::repl::attached(*id))
                && !keeps_saving(srv)
            {
                last_replica_dropped();
            }
        }
        let (n, oldest) = super::repl::waiting();
        if n == 0 {
            continue;
        }
        if now - last_keepalive >= 1000 {
            super::repl::keepalive_waiting();
            last_keepalive = now;
        }
        // One snapshot at a time: a BGSAVE running delays the transfer.
        if in_progress() || srv.persist.loading.active() || crate::persist::bgsave::in_progress(srv)
        {
            continue;
        }
        // Whole seconds, as Redis compares its replicas' idle time.
        let idle_s = (now - oldest).max(0) / 1000;
        let delay = srv.config.repl_diskless_sync_delay.get();
        let max = srv.config.repl_diskless_sync_max_replicas.get();
        if idle_s >= delay || (max > 0 && n as i64 >= max) {
            let mut locks = Locks::default();
            let mut batch = locks.batch(&srv.ks);
            batch.all_dbs();
            let _ = batch.take();
            begin(srv, &mut locks);
            locks.release();
        }
    }
}

/// A replica receiving the payload.
struct Member {
    info: Arc<ClientInfo>,
    /// Its outbox's backlog when last seen, and when it last shrank.
    last_pending: usize,
    last_progress: Instant,
    /// Joined late (disk-based): how much of the file it was sent; it
    /// gets the payload from the file until it has caught up.
    file_pos: Option<u64>,
}

impl Member {
    fn new(info: Arc<ClientInfo>) -> Member {
        Member {
            info,
            last_pending: 0,
            last_progress: Instant::now(),
            file_pos: None,
        }
    }

    fn gone(&self) -> bool {
        self.info.killed.load(Ordering::Relaxed)
            || self.info.outbox.dropped()
            || !super::repl::attached(self.info.id)
    }
}

/// The outboxes of the replicas receiving the payload.
struct Group<'a> {
    srv: &'static Server,
    members: Vec<Member>,
    child: Option<&'a Child>,
    /// `repl-diskless-sync no`: the RDB file written too, a handle to
    /// read it back (for replicas that joined late), and its length.
    file: Option<io::BufWriter<std::fs::File>>,
    reader: Option<std::fs::File>,
    written: u64,
}

impl Group<'_> {
    /// Drops the replicas gone or timed out; an error when none is left
    /// (or the transfer must stop).
    /// Replicas that joined take part from now on, from the file's start.
    fn take_joiners(&mut self, close: bool) {
        let mut join = JOIN.lock();
        let new = match join.as_mut() {
            Some(j) => std::mem::take(&mut j.new),
            None => Vec::new(),
        };
        if close {
            *join = None;
        }
        drop(join);
        for info in new {
            if self.reader.is_none() {
                // The file cannot be read back: it syncs again later.
                info.request_kill();
                continue;
            }
            let mut m = Member::new(info);
            m.file_pos = Some(0);
            self.members.push(m);
        }
    }

    /// Sends replicas that joined late the next part of the file (at most
    /// `WINDOW` bytes each); true while one is still behind.
    fn catch_up(&mut self) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        if !self.members.iter().any(|m| m.file_pos.is_some()) {
            return Ok(false);
        }
        if let Some(f) = &mut self.file {
            f.flush()?;
        }
        let (Some(reader), written) = (&self.reader, self.written) else {
            return Ok(false);
        };
        let now = now_ms();
        let mut behind = false;
        let mut chunk = vec![0u8; WINDOW];
        for m in &mut self.members {
            let Some(pos) = m.file_pos else { continue };
            if pos < written && m.info.outbox.pending() < WINDOW {
                let want = ((written - pos) as usize).min(WINDOW);
                let n = reader.read_at(&mut chunk[..want], pos)?;
                if n == 0 {
                    return Err(io::Error::other("the RDB file is shorter than written"));
                }
                m.info.outbox.append(&m.info, &chunk[..n], [0, 0, 0], now);
                m.file_pos = Some(pos + n as u64);
            }
            if m.file_pos == Some(written) {
                m.file_pos = None;
            } else {
                behind = true;
            }
        }
        Ok(behind)
    }

    /// Every late replica sent the whole file (before it is closed).
    fn catch_up_all(&mut self) -> io::Result<()> {
        self.take_joiners(true);
        while self.catch_up()? {
            self.prune()?;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn prune(&mut self) -> io::Result<()> {
        self.take_joiners(false);
        let timeout = Duration::from_secs(self.srv.config.repl_timeout.get().max(1) as u64);
        self.members.retain_mut(|m| {
            if m.gone() {
                return false;
            }
            let pending = m.info.outbox.pending();
            if pending < m.last_pending || pending < WINDOW {
                m.last_progress = Instant::now();
            } else if m.last_progress.elapsed() > timeout {
                crate::warning!(
                    "Disconnecting timedout replica (full sync): {}",
                    m.info.addr
                );
                m.info.request_kill();
                return false;
            }
            m.last_pending = pending;
            true
        });
        if self.members.is_empty() && !(self.file.is_some() && keeps_saving(self.srv)) {
            last_replica_dropped();
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "no replica left"));
        }
        if ABORT.load(Ordering::Relaxed) {
            return Err(io::Error::other("aborted"));
        }
        if self.srv.shutting_down() {
            return Err(io::Error::other("shutting down"));
        }
        if let Some(sig) = self.child.and_then(Child::killed) {
            return Err(io::Error::other(format!(
                "child terminated by signal {sig}"
            )));
        }
        Ok(())
    }
}

impl Write for Group<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.prune()?;
            if self
                .members
                .iter()
                .all(|m| m.info.outbox.pending() < WINDOW)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.catch_up()?;
        let now = now_ms();
        for m in self.members.iter().filter(|m| m.file_pos.is_none()) {
            m.info.outbox.append(&m.info, buf, [0, 0, 0], now);
        }
        if let Some(f) = &mut self.file {
            f.write_all(buf)?;
            self.written += buf.len() as u64;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn send_payload(
    srv: &'static Server,
    mut snap: Snapshot,
    members: Vec<Member>,
    file: Option<(io::BufWriter<std::fs::File>, std::path::PathBuf)>,
    mark: String,
    delay: i64,
    child: Option<Child>,
) {
    let mut pacer = Pacer::new(delay, &ABORT, child.as_ref());
    let (file, tmp) = match file {
        Some((f, p)) => (Some(f), Some(p)),
        None => (None, None),
    };
    let reader = tmp.as_ref().and_then(|t| std::fs::File::open(t).ok());
    let mut out = Group {
        srv,
        members,
        child: child.as_ref(),
        file,
        reader,
        written: 0,
    };
    let r = write(srv, &mut snap, &mut out, false, &mut pacer);
    drop(snap);
    let r = r.and_then(|()| out.catch_up_all());
    // Nobody joins any more (also after a failure).
    out.take_joiners(true);
    // The file is whole: the end mark is the replicas' only.
    let file = out.file.take();
    let r = r.and_then(|()| finish_file(file, tmp.as_deref(), srv));
    let r = r.and_then(|()| {
        if out.members.is_empty() {
            return Ok(());
        }
        out.write_all(mark.as_bytes())?;
        out.prune()
    });
    if r.is_err()
        && let Some(t) = &tmp
    {
        let _ = std::fs::remove_file(t);
    }
    let ok = r.is_ok();
    match r {
        Ok(()) => {
            crate::notice!(
                "Diskless rdb transfer, done reading from pipe, {} replicas still up.",
                out.members.len()
            );
            for m in &out.members {
                crate::notice!("Synchronization with replica {} succeeded", m.info.addr);
                super::repl::online(m.info.id);
            }
        }
        Err(e) => {
            crate::warning!("Diskless rdb transfer to replicas failed: {e}");
            for m in &out.members {
                m.info.request_kill();
            }
        }
    }
    drop(out);
    drop(child);
    MEMBERS.lock().clear();
    if ok {
        crate::notice!("Background RDB transfer terminated with success");
    } else {
        crate::warning!("Background transfer error");
    }
    RUNNING.store(false, Ordering::Release);
}

/// Syncs the RDB file written along (`repl-diskless-sync no`) and renames
/// it over `dbfilename`.
fn finish_file(
    file: Option<io::BufWriter<std::fs::File>>,
    tmp: Option<&std::path::Path>,
    srv: &Server,
) -> io::Result<()> {
    let (Some(file), Some(tmp)) = (file, tmp) else {
        return Ok(());
    };
    let f = file.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(tmp, crate::persist::save::rdb_path(srv))?;
    crate::notice!("DB saved on disk");
    Ok(())
}
