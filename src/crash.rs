//! The crash report: on SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT the log
//! gets a bug report with the signal and a stack trace, as Redis writes
//! one, then the signal's default action ends the process (a core dump
//! where the system keeps them).
//!
//! The handler runs on a process in an unknown state, so it only formats
//! into a buffer on its stack and calls async-signal-safe functions
//! (`write`, `clock_gettime`), plus glibc's `backtrace` (as Redis does;
//! `crash_init` loads what it needs beforehand) and
//! `backtrace_symbols_fd`, which writes without allocating.
//!
//! The same machinery writes the software watchdog's report
//! ([`watchdog_report`], see `watchdog.rs`): there the process goes on, so
//! the handler also leaves `errno` as it found it.

use std::io::Write as _;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicI32, Ordering};

/// Where the report goes: the log file's descriptor, or stdout.
static FD: AtomicI32 = AtomicI32::new(1);

const SIGNALS: [c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
];

unsafe extern "C" {
    fn backtrace(buffer: *mut *mut c_void, size: c_int) -> c_int;
    fn backtrace_symbols_fd(buffer: *const *mut c_void, size: c_int, fd: c_int);
}

/// The descriptor the report is written to (the log file once opened).
pub fn set_fd(fd: c_int) {
    FD.store(fd, Ordering::Relaxed);
}

/// Installs the handler for the fatal signals.
pub fn install() {
    // The first `backtrace` call may load libgcc: done here, not in the
    // handler.
    let mut frames = [std::ptr::null_mut::<c_void>(); 4];
    // SAFETY: the buffer holds the 4 entries the call may write.
    unsafe { backtrace(frames.as_mut_ptr(), 4) };
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is a valid start; the handler has the
        // SA_SIGINFO signature; SA_RESETHAND restores the default action,
        // which the handler then raises.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// A fixed buffer on the stack, written with `write!` (no allocation).
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }

    fn push(&mut self, args: std::fmt::Arguments<'_>) {
        let mut rest = &mut self.buf[self.len..];
        let before = rest.len();
        let _ = rest.write_fmt(args);
        let after = rest.len();
        self.len += before - after;
    }

    fn flush(&mut self, fd: c_int) {
        let mut at = 0;
        while at < self.len {
            // SAFETY: writes initialized bytes of our own buffer.
            let n = unsafe { libc::write(fd, self.buf[at..].as_ptr().cast(), self.len - at) };
            if n <= 0 {
                break;
            }
            at += n as usize;
        }
        self.len = 0;
    }
}

/// `pid:M dd Mon yyyy hh:mm:ss.mmm # ` from the real-time clock.
fn prefix(line: &mut Line) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe and fills `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let secs = ts.tv_sec;
    let (y, m, d) = crate::log::civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    line.push(format_args!(
        "{}:M {:02} {} {} {:02}:{:02}:{:02}.{:03} # ",
        std::process::id(),
        d,
        crate::log::MONTHS[(m - 1) as usize],
        y,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        ts.tv_nsec / 1_000_000
    ));
}

/// `pid:signal-handler (unix-seconds) `: how Redis starts the lines a
/// signal handler logs.
fn handler_prefix(line: &mut Line) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe and fills `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    line.push(format_args!(
        "{}:signal-handler ({}) ",
        std::process::id(),
        ts.tv_sec
    ));
}

/// The instruction the signal interrupted, from the handler's context.
fn interrupted_pc(ctx: *mut c_void) -> Option<usize> {
    // SAFETY: the kernel hands an SA_SIGINFO handler its ucontext.
    let uc = unsafe { ctx.cast::<libc::ucontext_t>().as_ref()? };
    pc_of(uc)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn pc_of(uc: &libc::ucontext_t) -> Option<usize> {
    Some(uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize)
}

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn pc_of(uc: &libc::ucontext_t) -> Option<usize> {
    Some(uc.uc_mcontext.pc as usize)
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn pc_of(_: &libc::ucontext_t) -> Option<usize> {
    None
}

/// The software watchdog's report, from its signal handler on the thread
/// that has been busy too long, laid out as Redis's: the header, the
/// interrupted instruction (`EIP`), that thread's stack from the signal
/// frame down, and a closing line. Async-signal-safe, as [`handler`].
pub(crate) fn watchdog_report(ctx: *mut c_void) {
    let fd = FD.load(Ordering::Relaxed);
    let mut line = Line::new();
    handler_prefix(&mut line);
    line.push(format_args!(
        "\n--- WATCHDOG TIMER EXPIRED ---\n\n------ STACK TRACE ------\n"
    ));
    let pc = interrupted_pc(ctx);
    if let Some(pc) = pc {
        line.push(format_args!("EIP:\n"));
        line.flush(fd);
        let at = [pc as *mut c_void];
        // SAFETY: one valid entry; writes without allocating.
        unsafe { backtrace_symbols_fd(at.as_ptr(), 1, fd) };
        line.push(format_args!("\n"));
    }
    line.push(format_args!("Backtrace:\n"));
    line.flush(fd);
    let mut frames = [std::ptr::null_mut::<c_void>(); 100];
    // SAFETY: the buffer holds the 100 entries `backtrace` may fill.
    let n = unsafe { backtrace(frames.as_mut_ptr(), frames.len() as c_int) }.max(0) as usize;
    // The handler's own frames are left out: the trace starts at the
    // signal trampoline, the frame above the interrupted instruction.
    let from = pc
        .and_then(|pc| frames[..n].iter().position(|&f| f as usize == pc))
        .map_or(0, |i| i.saturating_sub(1));
    // SAFETY: `backtrace_symbols_fd` reads only the frames filled.
    unsafe { backtrace_symbols_fd(frames[from..].as_ptr(), (n - from) as c_int, fd) };
    handler_prefix(&mut line);
    line.push(format_args!("--------\n\n"));
    line.flush(fd);
}

extern "C" fn handler(sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    let fd = FD.load(Ordering::Relaxed);
    let mut line = Line::new();
    line.push(format_args!(
        "\n\n=== FERROKV BUG REPORT START: Cut & paste starting from here ===\n"
    ));
    prefix(&mut line);
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe {
        info.as_ref()
            .map_or((0, 0), |i| (i.si_code, i.si_addr() as usize))
    };
    line.push(format_args!(
        "ferrokv {} crashed by signal: {sig}, si_code: {code}\n",
        env!("CARGO_PKG_VERSION")
    ));
    if matches!(sig, libc::SIGSEGV | libc::SIGBUS) {
        prefix(&mut line);
        line.push(format_args!("Accessing address: {addr:#x}\n"));
    }
    line.push(format_args!("\n------ STACK TRACE ------\n"));
    line.flush(fd);
    let mut frames = [std::ptr::null_mut::<c_void>(); 100];
    // SAFETY: the buffer holds the 100 entries `backtrace` may fill, and
    // `backtrace_symbols_fd` reads only the `n` it filled.
    unsafe {
        let n = backtrace(frames.as_mut_ptr(), frames.len() as c_int);
        backtrace_symbols_fd(frames.as_ptr(), n, fd);
    }
    line.push(format_args!(
        "\n=== FERROKV BUG REPORT END. Make sure to include from START to END. ===\n\n"
    ));
    line.flush(fd);
    // SA_RESETHAND put the default action back: raise it again.
    // SAFETY: raise is async-signal-safe.
    unsafe { libc::raise(sig) };
}
