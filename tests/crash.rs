//! The crash report: a fatal signal writes a bug report with a stack trace
//! to the log, then ends the process by that signal.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TempDir};

fn crash_log(tag: &str, crash: impl FnOnce(&mut Server)) -> String {
    let dir = TempDir::new(tag);
    let log = dir.path().join("log");
    let log_arg = log.to_str().unwrap().to_string();
    let mut srv = Server::start_in(
        Some(dir.path()),
        None,
        &["--logfile", &log_arg, "--enable-debug-command", "yes"],
    );
    crash(&mut srv);
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.alive() {
        assert!(Instant::now() < deadline, "the server did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(&log).unwrap()
}

fn assert_report(log: &str, signal: i32) {
    assert!(
        log.contains(&format!("crashed by signal: {signal},")),
        "{log}"
    );
    let start = log.find("BUG REPORT START").expect("report start");
    let trace = log.find("------ STACK TRACE ------").expect("stack trace");
    let end = log.find("BUG REPORT END").expect("report end");
    assert!(start < trace && trace < end, "{log}");
    // At least one frame between the header and the end.
    assert!(log[trace..end].lines().count() > 3, "{log}");
}

#[test]
fn debug_segfault_writes_a_crash_report() {
    let log = crash_log("crash-segv", |srv| {
        let mut c = srv.raw();
        c.send(&common::resp(&[b"DEBUG", b"SEGFAULT"]));
        assert_eq!(c.read_to_close(), b"");
    });
    assert_report(&log, libc::SIGSEGV);
}

#[test]
fn sigabrt_writes_a_crash_report() {
    let log = crash_log("crash-abrt", |srv| {
        // SAFETY: signals our own child process.
        unsafe { libc::kill(srv.pid() as i32, libc::SIGABRT) };
    });
    assert_report(&log, libc::SIGABRT);
}
