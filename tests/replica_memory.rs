//! A replica gives back the memory a big command from its master took
//! in its link's buffer once the command is applied (unit/pendingquerybuf).

mod common;

use std::time::{Duration, Instant};

use common::Server;

fn used_memory(c: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_big_value_from_the_master_leaves_no_big_buffer_on_the_replica() {
    let master = Server::start_with(&["--repl-diskless-sync-delay", "0"]);
    let replica = Server::start();
    let mut m = master.client();
    let mut r = replica.client();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port)
        .query(&mut r)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut r).unwrap();
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(Instant::now() < deadline, "no link: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let value = vec![b'x'; 32 << 20];
    let _: () = redis::cmd("SET")
        .arg("key")
        .arg(&value)
        .query(&mut m)
        .unwrap();
    while redis::cmd("STRLEN")
        .arg("key")
        .query::<i64>(&mut r)
        .unwrap()
        != value.len() as i64
    {
        assert!(Instant::now() < deadline, "the value never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Within a few seconds (an idle master connection's buffer is trimmed
    // by a timer too), the replica uses about what the master does.
    let settle = Instant::now() + Duration::from_secs(10);
    loop {
        let (rm, mm) = (used_memory(&mut r), used_memory(&mut m));
        if rm <= mm + (10 << 20) {
            break;
        }
        assert!(
            Instant::now() < settle,
            "replica used_memory {rm} against the master's {mm}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
