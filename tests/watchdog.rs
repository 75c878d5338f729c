//! The software watchdog (`watchdog-period`): a thread busy on one task for
//! longer than the period gets Redis's `WATCHDOG TIMER EXPIRED` report with
//! its stack in the log and goes on; nothing with the period 0; a replica
//! in a blocking diskless load, interrupted by the watchdog's signal, keeps
//! loading (Redis's "replica can handle EINTR if use diskless load").

mod common;

use std::time::{Duration, Instant};

use common::{Server, TempDir, info_field, q};

fn get(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
    v.get(1).cloned().unwrap_or_default()
}

/// A server logging to a file in its own directory.
fn logging_server(tag: &str, extra: &[&str]) -> (Server, TempDir, std::path::PathBuf) {
    let dir = TempDir::new(tag);
    let log = dir.path().join("log");
    let mut args = vec![
        "--logfile",
        log.to_str().unwrap(),
        "--enable-debug-command",
        "yes",
    ];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let srv = Server::start_in(Some(dir.path()), None, &args);
    (srv, dir, log)
}

fn read_log(log: &std::path::Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Waits (generously: CI is loaded) until the log holds `what` after its
/// first `skip` bytes; the log then.
fn wait_log(log: &std::path::Path, skip: usize, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = read_log(log);
        if text.get(skip..).is_some_and(|t| t.contains(what)) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {what:?} in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const HEADER: &str = "\n--- WATCHDOG TIMER EXPIRED ---\n\n------ STACK TRACE ------\n";

/// Whether the process has a thread called `name` (its first 15 bytes).
fn has_thread(pid: u32, name: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let short = &name[..name.len().min(15)];
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == short)
    })
}

fn wait_thread(pid: u32, name: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while has_thread(pid, name) != present {
        assert!(
            Instant::now() < deadline,
            "thread {name} present: {}",
            !present
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_busy_past_the_period_gets_one_report_with_its_stack() {
    let (srv, _dir, log) = logging_server("wdog-sleep", &[]);
    let mut c = srv.client();
    q(&mut c, &["CONFIG", "SET", "watchdog-period", "200"]);
    let start = Instant::now();
    q(&mut c, &["DEBUG", "SLEEP", "1"]);
    // The signal did not cut the sleep short.
    assert!(start.elapsed() >= Duration::from_millis(990));
    let text = wait_log(&log, 0, "--------\n\n");
    let at = text.find(HEADER).expect("the report's header");
    let pid = srv.pid();
    // Redis's layout: `pid:signal-handler (secs) ` before the header and
    // the closing line, the interrupted instruction, then the stack.
    let before = &text[..at];
    let open = before.rfind('\n').map_or(0, |i| i + 1);
    let first = &before[open..];
    assert!(
        first.starts_with(&format!("{pid}:signal-handler (")) && first.ends_with(") "),
        "{first:?}"
    );
    let report = &text[at + HEADER.len()..];
    let mut lines = report.lines();
    assert_eq!(lines.next(), Some("EIP:"));
    // The thread sleeps in the C library's nanosleep.
    let eip = lines.next().unwrap();
    assert!(eip.contains("nanosleep"), "{eip}");
    assert_eq!(lines.next(), Some(""));
    assert_eq!(lines.next(), Some("Backtrace:"));
    let frames: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.contains(":signal-handler ("))
        .collect();
    assert!(frames.len() > 3, "{report}");
    assert!(frames.iter().all(|f| f.ends_with(']')), "{report}");
    // The sleeping frame is on the stack printed.
    assert!(frames.iter().any(|f| f.contains("nanosleep")), "{report}");
    let close = report
        .lines()
        .find(|l| l.contains(":signal-handler ("))
        .unwrap();
    assert!(close.starts_with(&format!("{pid}:signal-handler (")));
    assert!(close.ends_with(") --------"), "{close}");
    // One report for the one stuck command, and the server goes on.
    assert_eq!(text.matches("WATCHDOG TIMER EXPIRED").count(), 1, "{text}");
    assert_eq!(
        q(&mut c, &["PING"]),
        redis::Value::SimpleString("PONG".into())
    );
    // Commands shorter than the period are not reported.
    for _ in 0..50 {
        q(&mut c, &["SET", "k", "v"]);
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(read_log(&log).matches("WATCHDOG TIMER EXPIRED").count(), 1);
}

#[test]
fn a_script_busy_past_the_period_is_reported_from_the_script_thread() {
    let (srv, _dir, log) = logging_server("wdog-script", &[]);
    let mut c = srv.client();
    q(&mut c, &["CONFIG", "SET", "watchdog-period", "200"]);
    let script = "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] \
                  while true do local n = redis.call('TIME') \
                  if n[1] * 1000000 + n[2] - s > 800000 then break end end return 1";
    let v: i64 = redis::cmd("EVAL").arg(script).arg(0).query(&mut c).unwrap();
    assert_eq!(v, 1);
    let text = wait_log(&log, 0, "--------\n\n");
    assert_eq!(text.matches("WATCHDOG TIMER EXPIRED").count(), 1, "{text}");
}

#[test]
fn nothing_with_the_period_zero_and_no_thread() {
    let (srv, _dir, log) = logging_server("wdog-off", &[]);
    let pid = srv.pid();
    let mut c = srv.client();
    assert_eq!(get(&mut c, "watchdog-period"), "0");
    assert!(!has_thread(pid, "ferrokv-watchdog"));
    q(&mut c, &["DEBUG", "SLEEP", "0.6"]);
    // On, then off again: the monitor thread ends, nothing is reported.
    q(&mut c, &["CONFIG", "SET", "watchdog-period", "200"]);
    wait_thread(pid, "ferrokv-watchdog", true);
    q(&mut c, &["CONFIG", "SET", "watchdog-period", "0"]);
    wait_thread(pid, "ferrokv-watchdog", false);
    q(&mut c, &["DEBUG", "SLEEP", "0.6"]);
    std::thread::sleep(Duration::from_millis(400));
    assert!(!read_log(&log).contains("WATCHDOG"), "{}", read_log(&log));
}

#[test]
fn config_get_set_start_up_minimum_and_rewrite() {
    let dir = TempDir::new("wdog-conf");
    let conf = dir.write("r.conf", "watchdog-period 10\nhz 100\n");
    let srv = Server::start_in(Some(dir.path()), Some(conf.to_str().unwrap()), &[]);
    let pid = srv.pid();
    let mut c = srv.client();
    // Raised with the final hz once the file is read: (1000 / 100) * 2.
    assert_eq!(get(&mut c, "watchdog-period"), "20");
    // Hidden from patterns, as in Redis.
    let all: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut c)
        .unwrap();
    assert!(!all.iter().any(|n| n == "watchdog-period"));
    // On from the start.
    wait_thread(pid, "ferrokv-watchdog", true);
    q(&mut c, &["CONFIG", "SET", "hz", "10"]);
    q(&mut c, &["CONFIG", "SET", "watchdog-period", "300"]);
    q(&mut c, &["CONFIG", "REWRITE"]);
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.lines().any(|l| l == "watchdog-period 300"), "{text}");
    q(&mut c, &["CONFIG", "SET", "watchdog-period", "0"]);
    q(&mut c, &["CONFIG", "REWRITE"]);
    // The line the file had stays, with the default (as Redis rewrites).
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("watchdog-period 0\nhz 10\n"), "{text}");
    wait_thread(pid, "ferrokv-watchdog", false);
}

/// Redis's "replica can handle EINTR if use diskless load": the watchdog
/// interrupts the replica's reads of a slow diskless payload; the replica
/// keeps loading, does not start over, and finishes the one transfer.
#[test]
fn a_replica_in_a_slow_diskless_load_survives_the_watchdog() {
    let master = Server::start_with(&["--enable-debug-command", "yes", "--save", ""]);
    let (replica, _dir, log) = logging_server("wdog-replica", &["--save", ""]);
    let mut m = master.client();
    let mut r = replica.client();
    q(&mut m, &["DEBUG", "POPULATE", "100", "master", "100000"]);
    q(&mut m, &["CONFIG", "SET", "rdbcompression", "no"]);
    q(&mut m, &["CONFIG", "SET", "repl-diskless-sync", "yes"]);
    q(&mut m, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    q(
        &mut r,
        &["CONFIG", "SET", "repl-diskless-load", "on-empty-db"],
    );
    q(&mut r, &["CONFIG", "SET", "watchdog-period", "200"]);
    // 20 ms a key: the payload takes about 2 s to arrive.
    q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "20000"]);
    let port = master.port.to_string();
    q(&mut r, &["REPLICAOF", "127.0.0.1", &port]);

    let text = wait_log(&log, 0, "Loading DB in memory");
    let loading_at = text.find("Loading DB in memory").unwrap();
    let text = wait_log(&log, loading_at, "WATCHDOG TIMER EXPIRED");
    assert_eq!(info_field(&mut r, "everything", "loading"), "1", "{text}");
    assert_eq!(info_field(&mut m, "everything", "sync_full"), "1");

    // The one transfer completes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(&mut r, "everything", "master_link_status") != "up" {
        assert!(Instant::now() < deadline, "{}", read_log(&log));
        std::thread::sleep(Duration::from_millis(50));
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert_eq!(n, 100);
    assert_eq!(info_field(&mut m, "everything", "sync_full"), "1");
    let text = read_log(&log);
    assert_eq!(
        text.matches("MASTER <-> REPLICA sync started").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("Internal error in RDB reading"), "{text}");
    assert!(text.contains("MASTER <-> REPLICA sync: Finished with success"));
}
