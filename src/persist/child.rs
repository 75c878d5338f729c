//! A stand-in for Redis's fork child during a BGSAVE or an AOF rewrite.
//!
//! ferrokv saves on a thread (the snapshot walk), so there is no child
//! process. But operators and Redis's own test suite find the child of a
//! running save (`pgrep -P <pid>`), kill it to abort the save, and expect
//! the save to fail then ("terminated by signal 9", the error status).
//! While a save runs, this process exists: our own binary started with
//! [`ARG`], which does nothing but wait for its stdin to close. The save
//! polls it ([`Child::killed`]) between steps and fails if something
//! killed it; when the save ends the stand-in is killed and reaped. If the
//! server dies, the pipe closes and the stand-in exits by itself.
//!
//! Spawning costs one `posix_spawn` per save (no copy of the dataset).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Background saves and rewrites started (`total_forks`: each would be a
/// fork in Redis).
static STARTED: AtomicU64 = AtomicU64::new(0);

/// `total_forks` of INFO stats.
pub fn total_started() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

/// The first argument that makes `ferrokv` a stand-in (see [`run_if_asked`]).
pub const ARG: &str = "--background-save-stand-in";

/// Runs the stand-in if this process was started as one; returns otherwise.
pub fn run_if_asked(argv: &[String]) {
    if argv.first().map(String::as_str) != Some(ARG) {
        return;
    }
    // The OOM score the server chose for its background child
    // (`oom-score-adj`), as Redis's fork child sets its own.
    if let Some(score) = argv.get(1).and_then(|v| v.parse::<i64>().ok()) {
        crate::server::oom::set_own_score(score);
    }
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    // Until the server closes the pipe (or dies).
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    std::process::exit(0);
}

pub struct Child {
    proc: Mutex<std::process::Child>,
    pid: u32,
}

impl Child {
    /// Starts a stand-in named `title` in `ps` (`ferrokv-rdb-bgsave`,
    /// `ferrokv-aof-rewrite`), which sets its OOM score to `oom_score`
    /// when given (`server::oom::child_score`). `None` if it cannot be
    /// started: the save then runs without one.
    pub fn spawn(title: &str, oom_score: Option<i64>) -> Option<Child> {
        STARTED.fetch_add(1, Ordering::Relaxed);
        let exe = std::env::current_exe().ok()?;
        let mut cmd = Command::new(exe);
        cmd.arg0(title).arg(ARG);
        if let Some(score) = oom_score {
            cmd.arg(score.to_string());
        }
        let proc = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| crate::warning!("Can't start the {title} process: {e}"))
            .ok()?;
        let pid = proc.id();
        Some(Child {
            proc: Mutex::new(proc),
            pid,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The signal that ended the stand-in, if it ended (it never exits on
    /// its own while the server runs).
    ///
    /// Only a signal counts: a stand-in that exited by itself was never a
    /// ferrokv stand-in (the executable is another program, such as a test
    /// binary embedding the server, which exits at once on the unknown
    /// argument). The save then goes on without one, as when none could be
    /// started, instead of failing ("terminated by signal 0") and turning
    /// on the MISCONF refusals.
    pub fn killed(&self) -> Option<i32> {
        let status = self.proc.lock().try_wait().ok()??;
        status.signal()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let proc = self.proc.get_mut();
        let _ = proc.kill();
        let _ = proc.wait();
    }
}
