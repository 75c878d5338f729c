//! A background save's state belongs to its server.
//!
//! Found by the replay-digest soak (tests/replay_digest.rs): its recorder
//! and its replay harness are two servers in one process. The recorder's
//! first save point (60 s, 10000 changes) started a BGSAVE whose stand-in
//! child, this test binary, exits at once; the save failed as "terminated
//! by signal 0", and since the save status was process-wide the replay
//! harness then refused every write with MISCONF, so whole databases
//! differed. Both causes are pinned here, in process, with two harnesses.

use std::time::{Duration, Instant};

use ferrokv::cmd::CommandTable;
use ferrokv::config::{Config, file};
use ferrokv::testkit::Harness;

/// A harness whose saves go to `dbfilename` in the working directory
/// (a protected setting: CONFIG SET refuses it by default).
fn harness(dbfilename: &str) -> Harness {
    let argv = vec!["--dbfilename".to_string(), dbfilename.to_string()];
    let (cf, lines) = file::collect(&argv).unwrap_or_else(|e| panic!("{}", e.render()));
    let config = Config::default();
    let mut commands = CommandTable::build(&ferrokv::cmd::handlers());
    file::apply(&config, &mut commands, &lines, cf.as_deref())
        .unwrap_or_else(|e| panic!("{}", e.render()));
    Harness::with_config(config)
}

/// A file name in the working directory, unique to this process and test;
/// whatever has that name is removed when the guard drops (a failing
/// assertion included).
struct Unique(String);

impl Unique {
    fn new(tag: &str) -> Unique {
        Unique(format!("bgsave-state-{tag}-{}.rdb", std::process::id()))
    }
}

impl Drop for Unique {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn field(h: &mut Harness, name: &str) -> String {
    let info = h.run(&["INFO", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .to_string()
}

/// Starts a BGSAVE and waits for it to end; its status (ok or err).
fn bgsave(h: &mut Harness) -> String {
    assert_eq!(h.run(&["BGSAVE"]), "+Background saving started\r\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while field(h, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    field(h, "rdb_last_bgsave_status")
}

/// The stand-in child is started from the current executable; here that
/// is a test binary, which exits at once. Nobody killed it, so the save
/// goes on and succeeds (it used to fail, "terminated by signal 0").
#[test]
fn a_stand_in_that_exits_by_itself_does_not_fail_the_save() {
    let file = Unique::new("exit");
    let mut h = harness(&file.0);
    assert_eq!(h.run(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(bgsave(&mut h), "ok");
    assert!(std::fs::metadata(&file.0).is_ok(), "the save wrote no file");
    assert_eq!(h.run(&["SET", "k", "w"]), "+OK\r\n");
}

/// A failed BGSAVE refuses writes (MISCONF) on its own server only: the
/// failure status is per server, not per process.
#[test]
fn a_failed_save_refuses_writes_only_on_its_own_server() {
    // The final rename fails: the file name is taken by a directory.
    let dir = Unique::new("dir");
    let other_file = Unique::new("other");
    std::fs::create_dir_all(format!("{}/x", dir.0)).unwrap();
    let mut failing = harness(&dir.0);
    let mut other = harness(&other_file.0);
    assert_eq!(failing.run(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(bgsave(&mut failing), "err");
    let refused = failing.run(&["SET", "k", "w"]);
    assert!(refused.starts_with("-MISCONF "), "{refused}");
    assert_eq!(other.run(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(field(&mut other, "rdb_last_bgsave_status"), "ok");
}
