//! Lua scripting: EVAL and friends run Lua 5.1 scripts atomically.
//!
//! Design: one Lua VM for EVAL scripts and one for FUNCTION libraries,
//! each behind a mutex (Redis has the same two). A script locks every shard
//! of its selected database for its whole run, so it is atomic for every
//! other client and may touch keys it did not declare; `redis.call` runs
//! handlers through the normal command table with those locks already held
//! (`crate::cmd::run`). Lock order is always the script gate
//! ([`Scripting::gate`]), then a VM, then shards; an EXEC whose queue runs
//! scripts takes the gate before its shards.
//!
//! While a script runs, [`Scripting`] records since when: once it has run
//! longer than `busy-reply-threshold`, the dispatcher answers BUSY to other
//! clients (before they wait on any shard), and SCRIPT KILL sets a flag the
//! VM's instruction-count hook turns into an error.
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
pub mod libs;
pub mod run;
pub mod struct_lib;
pub mod vm;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard, ReentrantMutex};

use crate::cmd::{Command, flags};
use crate::server::Server;
use vm::Vm;

pub const BUSY_MSG: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION_MSG: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

#[derive(Default)]
pub struct Scripting {
    vm: Mutex<Option<Vm>>,
    /// Unix ms at which the running script started; 0 when none runs.
    running_since: AtomicI64,
    /// Client id of the script's caller.
    runner: AtomicU64,
    kill: AtomicBool,
    /// The running script called a write command (it can't be killed).
    wrote: AtomicBool,
    /// The running script is a function (FCALL), not an EVAL script.
    is_function: AtomicBool,
    /// Other clients' commands waiting for the running script to end.
    waiters: AtomicUsize,
    wait_lock: Mutex<()>,
    done: Condvar,
    /// FUNCTION libraries, in their own VM.
    pub functions: functions::Functions,
    /// Held around every script run (EVAL, FCALL) and around a whole EXEC
    /// whose queue runs scripts, taken before any VM or shard lock: one
    /// script at a time, and an EXEC that holds shards never waits for a
    /// VM that a script waiting for those shards holds. Reentrant, for the
    /// scripts EXEC itself runs.
    pub gate: ReentrantMutex<()>,
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
    }

    pub fn kill_requested(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
    }

    pub(crate) fn start(&self, client_id: u64, is_function: bool) {
        self.kill.store(false, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.is_function.store(is_function, Ordering::Relaxed);
        self.runner.store(client_id, Ordering::Relaxed);
        self.running_since
            .store(crate::server::now_ms().max(1), Ordering::SeqCst);
    }

    pub(crate) fn finish(&self) {
        self.running_since.store(0, Ordering::SeqCst);
        self.kill.store(false, Ordering::Relaxed);
        // A waiter counts itself before it looks at `running_since` (both
        // SeqCst): either it sees 0, or it is counted here and woken.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.wait_lock.lock();
            self.done.notify_all();
        }
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

    /// Called by the dispatcher before a command takes any lock. While a
    /// script runs, another client's command waits here (not on a shard
    /// mutex, where it could wait forever on a runaway script and hold its
    /// worker thread, maybe the one SCRIPT KILL would arrive on) until the
    /// script ends, or gets BUSY once the script has run longer than
    /// `busy-reply-threshold`. ALLOW_BUSY commands (SCRIPT KILL, ...) pass.
    pub fn busy_error(&self, srv: &Server, cmd: &Command, client_id: u64) -> Option<&'static str> {
        if cmd.has(flags::ALLOW_BUSY) || self.idle_for(client_id) {
            return None;
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = self.wait_lock.lock();
        let busy = loop {
            // Read once: a script may end between two reads.
            let since = self.running_since.load(Ordering::SeqCst);
            if since == 0 || self.runner.load(Ordering::Relaxed) == client_id {
                break None;
            }
            let threshold = srv.config.busy_reply_threshold.get();
            let left = since + threshold - crate::server::now_ms();
            if left <= 0 {
                break Some(if self.is_function.load(Ordering::Relaxed) {
                    BUSY_FUNCTION_MSG
                } else {
                    BUSY_MSG
                });
            }
            self.done
                .wait_for(&mut g, Duration::from_millis(left as u64));
        };
        drop(g);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        busy
    }

    /// No script runs, or the one running is this client's own.
    fn idle_for(&self, client_id: u64) -> bool {
        self.running_since.load(Ordering::SeqCst) == 0
            || self.runner.load(Ordering::Relaxed) == client_id
    }
}

/// Lowercase hex SHA1, as SCRIPT LOAD answers.
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}
