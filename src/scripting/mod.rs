//! Lua scripting: EVAL and friends run Lua 5.1 scripts atomically.
//!
//! Design: one Lua VM per server behind a mutex (as Redis has one VM).
//! A script locks every shard of its selected database for its whole run,
//! so it is atomic for every other client and may touch keys it did not
//! declare; `redis.call` runs handlers through the normal command table
//! with those locks already held ([`crate::cmd::run_handler`]). Lock order
//! is always VM first, then shards; nothing holding a shard takes the VM.
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
pub mod libs;
pub mod run;
pub mod struct_lib;
pub mod vm;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

use crate::cmd::{Command, flags};
use crate::server::Server;
use vm::Vm;

pub const BUSY_MSG: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

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
            .store(crate::server::now_ms().max(1), Ordering::Release);
    }

    pub(crate) fn finish(&self) {
        self.running_since.store(0, Ordering::Release);
        self.kill.store(false, Ordering::Relaxed);
    }

    pub(crate) fn mark_write(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// SCRIPT KILL / FUNCTION KILL. `function` says which was asked.
    pub fn request_kill(&self, function: bool) -> Result<(), &'static str> {
        if self.running_since.load(Ordering::Acquire) == 0 {
            return Err("NOTBUSY No scripts in execution right now.");
        }
        if self.is_function.load(Ordering::Relaxed) != function {
            return Err(if function {
                "NOTBUSY No scripts in execution right now."
            } else {
                "BUSY Redis is busy running a function. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
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
        if cmd.has(flags::ALLOW_BUSY) {
            return None;
        }
        loop {
            let since = self.running_since.load(Ordering::Acquire);
            if since == 0 || self.runner.load(Ordering::Relaxed) == client_id {
                return None;
            }
            let threshold = srv.config.busy_reply_threshold.get();
            if crate::server::now_ms() - since >= threshold {
                return Some(if self.is_function.load(Ordering::Relaxed) {
                    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
                } else {
                    BUSY_MSG
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// Lowercase hex SHA1, as SCRIPT LOAD answers.
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}
