//! Lua scripting: EVAL and friends run Lua 5.1 scripts atomically.
//!
//! Design: one Lua VM for EVAL scripts and one for FUNCTION libraries,
//! each behind a mutex (Redis has the same two). A script runs as the one
//! job of the script thread, with the job's locks (`Locks::for_job`): each
//! `redis.call` takes its command's footprint (`crate::cmd::footprint`) as
//! it runs, waiting if need be, and everything stays locked to the end of
//! the job, so a script is atomic and may touch keys it did not declare.
//! `redis.call` runs handlers through the normal command table
//! (`crate::cmd::run`). Lock order is always the script gate
//! ([`Scripting::gate`], held for the whole job), then a VM, then shards.
//!
//! Every command that runs Lua is a job of the script thread
//! ([`thread`]), so a runaway script never holds a worker thread. A job
//! starts only once no worker has a command past the script check
//! ([`Scripting::check`], [`Scripting::begin_job`]): no command ever waits
//! on a shard a script holds. While a job runs, other clients' commands
//! wait asynchronously ([`Scripting::wait_turn`]) and get BUSY once the
//! script has run longer than `busy-reply-threshold`; SCRIPT KILL sets a
//! flag the VM's instruction-count hook turns into an error.
//!
//! Effects: the write commands a script runs are published one by one, as
//! they run (locks held), wrapped in MULTI ... EXEC as Redis 7 propagates
//! them.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod convert;
pub mod function_dump;
pub mod functions;
pub mod ldb;
pub mod ldb_cmds;
pub mod ldb_fmt;
pub mod ldb_link;
pub mod ldb_undo;
pub mod libs;
pub mod run;
pub mod struct_lib;
pub mod thread;
pub mod vm;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use crate::cmd::{Command, flags};
use crate::server::Server;
use crate::server::stats::ThreadStats;
use crate::store::{JobGate, JobPass};
use vm::Vm;

pub const BUSY_MSG: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION_MSG: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

#[derive(Default)]
pub struct Scripting {
    vm: Mutex<Option<Vm>>,
    /// Client id whose job (a command that runs scripts) holds the script
    /// thread; 0 when none. Set before the job takes any lock, cleared
    /// after it released them all (see [`Scripting::begin_job`]).
    active: AtomicU64,
    /// Unix ms at which the running script started; 0 when none runs.
    running_since: AtomicI64,
    /// Client id of the script's caller.
    runner: AtomicU64,
    kill: AtomicBool,
    /// The running script called a write command (it can't be killed).
    wrote: AtomicBool,
    /// The running script is a function (FCALL), not an EVAL script.
    is_function: AtomicBool,
    /// The running script's name (its SHA1, or the function's name), for
    /// the slow-script log line; and whether that line was logged.
    name: Mutex<String>,
    slow_logged: AtomicBool,
    /// Woken when a job ends and when a script starts running, for the
    /// commands waiting their turn ([`Scripting::wait_turn`]).
    turn: tokio::sync::Notify,
    /// The in-flight marks of every worker thread ([`InFlight`]), read by
    /// a job before it starts.
    flights: Mutex<Vec<Arc<ThreadStats>>>,
    /// What INFO memory says of the EVAL VM, refreshed by the commands that
    /// change it ([`Scripting::note_eval_vm`]): INFO cannot take the VM,
    /// which a running script holds (and INFO may run inside that script).
    eval_scripts: AtomicUsize,
    eval_script_bytes: AtomicUsize,
    eval_vm_bytes: AtomicUsize,
    /// FUNCTION libraries, in their own VM.
    pub functions: functions::Functions,
    /// Where script jobs run.
    pub thread: thread::ScriptThread,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call `noscript`
    /// commands (Redis's tests use it).
    pub disable_deny_script: AtomicBool,
    /// Held for the whole of every job ([`Scripting::begin_job`]: EVAL,
    /// FCALL, an EXEC whose queue runs scripts...), taken before any VM or
    /// shard lock. Jobs run one at a time on the script thread, so it is
    /// never contended there; it keeps the in-process harness (which runs
    /// jobs inline) under the same rule. Reentrant, for the handlers that
    /// take it again.
    pub gate: JobGate,
}

/// What the dispatcher does with a command while a job may hold the
/// script thread ([`Scripting::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Run it now.
    Go,
    /// Another client's script has run past `busy-reply-threshold`.
    Busy(&'static str),
    /// Wait ([`Scripting::wait_turn`]) and check again: until the job ends
    /// or the threshold passes, or (`until_idle`) until the job ends.
    Wait { until_idle: bool },
}

/// A worker thread's mark that a command of its own is past the script
/// check and may hold shards: a job does not start until every worker's
/// mark is clear. Restores the mark when dropped.
pub struct InFlight<'a> {
    mark: &'a AtomicUsize,
    was: usize,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.mark.store(self.was, Ordering::Release);
    }
}

/// Ends a job when dropped, also when it panicked: the script state and
/// the job's mark are cleared and waiting commands are woken.
pub struct JobGuard<'a> {
    scripting: &'a Scripting,
    /// The script gate, held for the whole job: one job at a time, also
    /// in the in-process harness, which is what lets the job's `Locks`
    /// (`Locks::for_job`) wait for a shard while holding others.
    pass: JobPass<'a>,
}

impl<'a> JobGuard<'a> {
    /// The held job gate, for the job's [`crate::store::Locks::for_job`].
    pub fn pass(&self) -> &JobPass<'a> {
        &self.pass
    }
}

impl Drop for JobGuard<'_> {
    fn drop(&mut self) {
        let s = self.scripting;
        s.running_since.store(0, Ordering::SeqCst);
        s.kill.store(false, Ordering::Relaxed);
        s.active.store(0, Ordering::SeqCst);
        s.turn.notify_waiters();
    }
}

impl Scripting {
    /// The VM, created on first use.
    pub fn vm(&self, srv: &'static Server) -> Result<MutexGuard<'_, Option<Vm>>, String> {
        let mut g = self.vm.lock();
        if g.is_none() {
            *g = Some(Vm::new(srv).map_err(|e| format!("ERR creating the Lua VM: {e}"))?);
        }
        Ok(g)
    }

    /// Drops every cached script (SCRIPT FLUSH): the VM is rebuilt on next use.
    pub fn flush(&self) {
        let old = self.vm.lock().take();
        drop(old);
        self.note_eval_vm(None);
    }

    /// Refreshes the EVAL VM's INFO memory figures (`None`: no VM).
    pub fn note_eval_vm(&self, vm: Option<&Vm>) {
        let (n, bytes, vm_bytes) = vm.map_or((0, 0, 0), |vm| {
            (vm.scripts.len(), vm.scripts.bytes(), vm.lua.used_memory())
        });
        self.eval_scripts.store(n, Ordering::Relaxed);
        self.eval_script_bytes.store(bytes, Ordering::Relaxed);
        self.eval_vm_bytes.store(vm_bytes, Ordering::Relaxed);
    }

    /// (cached EVAL scripts, their bytes, the EVAL VM's memory) as of the
    /// last [`Scripting::note_eval_vm`].
    pub fn eval_vm_figures(&self) -> (usize, usize, usize) {
        (
            self.eval_scripts.load(Ordering::Relaxed),
            self.eval_script_bytes.load(Ordering::Relaxed),
            self.eval_vm_bytes.load(Ordering::Relaxed),
        )
    }

    pub fn kill_requested(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
    }

    /// From the VM's instruction hook: once a script has run past
    /// `busy-reply-threshold`, Redis's warning, once per run.
    pub fn note_if_slow(&self, srv: &Server) {
        if self.slow_logged.load(Ordering::Relaxed) {
            return;
        }
        let since = self.running_since.load(Ordering::Relaxed);
        let elapsed = crate::server::now_ms() - since;
        if since == 0 || elapsed < srv.config.busy_reply_threshold.get() {
            return;
        }
        self.slow_logged.store(true, Ordering::Relaxed);
        let kill = if self.is_function.load(Ordering::Relaxed) {
            "FUNCTION KILL"
        } else {
            "SCRIPT KILL"
        };
        crate::warning!(
            "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the {kill} command. Script name is: {}.",
            self.name.lock()
        );
    }

    /// Registers a worker thread's in-flight mark (`ThreadStats::in_flight`,
    /// at start-up).
    pub fn register_worker(&self, stats: Arc<ThreadStats>) {
        self.flights.lock().push(stats);
    }

    /// Marks a command of this worker as in flight, then says whether it
    /// may run. The mark is stored before `active` is read and a job
    /// stores `active` before it reads the marks (both SeqCst): either the
    /// command sees the job and does not touch shards, or the job sees the
    /// command and waits for it to leave them. No job: one atomic load.
    #[inline]
    pub fn check<'m>(
        &self,
        srv: &Server,
        mark: &'m AtomicUsize,
        cmd: &Command,
        client: &crate::server::client::Client,
    ) -> (Turn, Option<InFlight<'m>>) {
        let was = mark.load(Ordering::Relaxed);
        mark.store(was + 1, Ordering::SeqCst);
        let flight = InFlight { mark, was };
        let active = self.active.load(Ordering::SeqCst);
        if active == 0 || active == client.info.id {
            return (Turn::Go, Some(flight));
        }
        let turn = self.turn_of(srv, cmd, client);
        (turn, (turn == Turn::Go).then_some(flight))
    }

    /// The turn of another client's command while a job runs.
    #[cold]
    fn turn_of(&self, srv: &Server, cmd: &Command, client: &crate::server::client::Client) -> Turn {
        // Commands that must be served during a busy script; those that
        // reach shards (the job may hold them) wait for the job instead.
        if cmd.has(flags::ALLOW_BUSY) {
            let needs_shards = match cmd.name {
                "watch" => true,
                "unwatch" | "discard" | "reset" => client.watch.is_some(),
                _ => false,
            };
            return if needs_shards {
                Turn::Wait { until_idle: true }
            } else {
                Turn::Go
            };
        }
        match self.busy_message(srv) {
            // A refused EXEC also discards the transaction and unwatches
            // its keys (with or without MULTI, as in Redis): with watches
            // that needs shards, so it waits.
            Some(_) if cmd.name == "exec" && client.watch.is_some() => {
                Turn::Wait { until_idle: true }
            }
            Some(msg) => Turn::Busy(msg),
            None => Turn::Wait { until_idle: false },
        }
    }

    /// The BUSY error once the running script has run longer than
    /// `busy-reply-threshold`.
    pub fn busy_message(&self, srv: &Server) -> Option<&'static str> {
        let since = self.running_since.load(Ordering::SeqCst);
        if since == 0 || crate::server::now_ms() - since < srv.config.busy_reply_threshold.get() {
            return None;
        }
        Some(if self.is_function.load(Ordering::Relaxed) {
            BUSY_FUNCTION_MSG
        } else {
            BUSY_MSG
        })
    }

    /// Waits, without blocking the thread, for the job to end or (unless
    /// `until_idle`) for its script to pass `busy-reply-threshold`.
    pub async fn wait_turn(&self, srv: &Server, until_idle: bool) {
        loop {
            let notified = self.turn.notified();
            tokio::pin!(notified);
            // Registered before the state is read: a wake-up in between
            // is not lost.
            notified.as_mut().enable();
            if self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            let since = self.running_since.load(Ordering::SeqCst);
            if until_idle || since == 0 {
                notified.await;
                continue;
            }
            let left = since + srv.config.busy_reply_threshold.get() - crate::server::now_ms();
            if left <= 0 {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(left as u64), notified).await;
        }
    }

    /// Waits (without blocking the thread) until no job runs, then marks
    /// this worker in flight: for work outside the dispatcher that takes
    /// shards (a connection closing, a blocked client leaving).
    pub async fn enter<'m>(&self, mark: &'m AtomicUsize) -> InFlight<'m> {
        loop {
            let was = mark.load(Ordering::Relaxed);
            mark.store(was + 1, Ordering::SeqCst);
            if self.active.load(Ordering::SeqCst) == 0 {
                return InFlight { mark, was };
            }
            mark.store(was, Ordering::Release);
            let notified = self.turn.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active.load(Ordering::SeqCst) != 0 {
                notified.await;
            }
        }
    }

    /// Starts a job for `client_id`: marks it active, then waits until no
    /// worker has a command in flight (those that passed the check before
    /// leave their shards; those after it wait for the job). Called on the
    /// thread that runs the job, holding no lock.
    pub fn begin_job(&self, client_id: u64) -> JobGuard<'_> {
        let pass = self.gate.enter();
        self.active.store(client_id.max(1), Ordering::SeqCst);
        let guard = JobGuard {
            scripting: self,
            pass,
        };
        // Only start-up takes this lock otherwise.
        for stats in self.flights.lock().iter() {
            let mut spins = 0u32;
            while stats.in_flight.load(Ordering::SeqCst) != 0 {
                spins += 1;
                if spins < 64 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
        guard
    }

    pub(crate) fn start(&self, client_id: u64, is_function: bool, name: &str) {
        self.kill.store(false, Ordering::Relaxed);
        self.slow_logged.store(false, Ordering::Relaxed);
        {
            let mut n = self.name.lock();
            n.clear();
            n.push_str(name);
        }
        self.wrote.store(false, Ordering::Relaxed);
        self.is_function.store(is_function, Ordering::Relaxed);
        self.runner.store(client_id, Ordering::Relaxed);
        self.running_since
            .store(crate::server::now_ms().max(1), Ordering::SeqCst);
        // Waiting commands now know when their BUSY is due.
        self.turn.notify_waiters();
    }

    pub(crate) fn finish(&self) {
        self.running_since.store(0, Ordering::SeqCst);
        self.kill.store(false, Ordering::Relaxed);
    }

    /// What runs now: None, or (is a function, milliseconds it has run).
    pub fn running(&self) -> Option<(bool, i64)> {
        let since = self.running_since.load(Ordering::Acquire);
        (since != 0).then(|| {
            (
                self.is_function.load(Ordering::Relaxed),
                crate::server::now_ms() - since,
            )
        })
    }

    /// True while a script called by `client_id` runs (its commands must
    /// not block).
    pub fn runs_for(&self, client_id: u64) -> bool {
        self.running_since.load(Ordering::Acquire) != 0
            && self.runner.load(Ordering::Relaxed) == client_id
    }

    pub(crate) fn mark_write(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// SCRIPT KILL / FUNCTION KILL. `function` says which was asked.
    pub fn request_kill(&self, function: bool) -> Result<(), &'static str> {
        if self.running_since.load(Ordering::Acquire) == 0 {
            return Err("NOTBUSY No scripts in execution right now.");
        }
        let running_function = self.is_function.load(Ordering::Relaxed);
        if running_function != function {
            // The kill of the other kind: the BUSY error of what runs.
            return Err(if running_function {
                BUSY_FUNCTION_MSG
            } else {
                BUSY_MSG
            });
        }
        if self.wrote.load(Ordering::Relaxed) {
            return Err(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        self.kill.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Lowercase hex SHA1, as SCRIPT LOAD answers.
/// Whether a command that runs Lua may write (what CLIENT PAUSE WRITE holds
/// back): the `_RO` forms and scripts or functions declaring `no-writes`
/// may not. A script or function that cannot be looked up without waiting
/// (one runs) or is unknown counts as writing: it then waits for the pause,
/// and its own checks answer once it runs.
pub fn may_write(srv: &Server, cmd: &Command, args: &crate::resp::Args<'_>) -> bool {
    match cmd.name {
        "eval_ro" | "evalsha_ro" | "fcall_ro" => false,
        "eval" => !vm::declares_no_writes(args.get(1).unwrap_or_default()),
        "evalsha" => {
            let sha = String::from_utf8_lossy(args.get(1).unwrap_or_default()).to_ascii_lowercase();
            let Some(g) = srv.scripting.vm.try_lock() else {
                return true;
            };
            g.as_ref()
                .and_then(|vm| vm.scripts.get(&sha))
                .is_none_or(|(_, f)| !f.no_writes)
        }
        "fcall" => {
            let Some(reg) = srv.scripting.functions.try_lock() else {
                return true;
            };
            reg.libs
                .find(args.get(1).unwrap_or_default())
                .is_none_or(|f| f.flags & functions::NO_WRITES == 0)
        }
        _ => cmd.has(flags::WRITE | flags::MAY_REPLICATE),
    }
}

/// What a script command's script declared.
pub enum Declared {
    /// Flags from a `#!lua` shebang (or a function's flags); `no_writes`
    /// also for the `_RO` variants.
    Flags { no_writes: bool, allow_stale: bool },
    /// A script known to have no shebang (Redis's compatibility mode).
    Compat,
    /// Not a script command, a script not loaded, a malformed shebang or a
    /// busy registry.
    Unknown,
}

/// The flags a script command's script declared, or whether it is a
/// script without a shebang (see [`Declared`]).
pub fn declaration(srv: &Server, cmd: &Command, args: &crate::resp::Args<'_>) -> Declared {
    let ro = cmd.name.ends_with("_ro");
    let body_or_name = args.get(1).unwrap_or_default();
    match cmd.name {
        "eval" | "eval_ro" => match vm::shebang_flags(body_or_name) {
            Some(f) => Declared::Flags {
                no_writes: f.no_writes || ro,
                allow_stale: f.allow_stale,
            },
            None if !body_or_name.starts_with(b"#!") => Declared::Compat,
            None => Declared::Unknown,
        },
        "evalsha" | "evalsha_ro" => {
            let sha = String::from_utf8_lossy(body_or_name).to_ascii_lowercase();
            let Some(g) = srv.scripting.vm.try_lock() else {
                return Declared::Unknown;
            };
            match g.as_ref().and_then(|vm| vm.scripts.get(&sha)) {
                Some((_, f)) if f.shebang => Declared::Flags {
                    no_writes: f.no_writes || ro,
                    allow_stale: f.allow_stale,
                },
                Some(_) => Declared::Compat,
                None => Declared::Unknown,
            }
        }
        "fcall" | "fcall_ro" => {
            let Some(reg) = srv.scripting.functions.try_lock() else {
                return Declared::Unknown;
            };
            match reg.libs.find(body_or_name) {
                Some(f) => Declared::Flags {
                    no_writes: f.flags & functions::NO_WRITES != 0 || ro,
                    allow_stale: f.flags & functions::ALLOW_STALE != 0,
                },
                None => Declared::Unknown,
            }
        }
        _ => Declared::Unknown,
    }
}

pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}
