//! CLIENT PAUSE / UNPAUSE: held-back commands wait, counted as blocked, and
//! run once the pause ends.

mod common;

use std::time::Duration;

use common::{Server, blocked_clients, wait_blocked};

#[test]
fn write_pause_holds_writes_until_unpause() {
    let srv = Server::start();
    let mut admin = srv.client();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(60_000)
        .arg("WRITE")
        .query(&mut admin)
        .unwrap();
    // Reads and admin commands go on.
    let got: Option<String> = redis::cmd("GET").arg("k").query(&mut admin).unwrap();
    assert_eq!(got, None);
    let mut w = srv.raw();
    w.send(b"SET k v\r\n");
    wait_blocked(&mut admin, 1);
    w.0.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(w.read_n(5).is_empty(), "the write must wait");
    assert_eq!(blocked_clients(&mut admin), 1);
    let err = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(10)
        .arg("MAYBE")
        .query::<()>(&mut admin)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("CLIENT PAUSE mode must be WRITE or ALL"),
        "{err}"
    );
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut admin)
        .unwrap();
    w.0.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(w.read_n(5), b"+OK\r\n");
    assert_eq!(blocked_clients(&mut admin), 0);
    let got: String = redis::cmd("GET").arg("k").query(&mut admin).unwrap();
    assert_eq!(got, "v");
}

#[test]
fn all_pause_ends_by_itself() {
    let srv = Server::start();
    let mut admin = srv.client();
    let mut other = srv.raw();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(300)
        .query(&mut admin)
        .unwrap();
    other.send(b"PING\r\n");
    other
        .0
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(other.read_n(7), b"+PONG\r\n");
}

fn expired_keys(c: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("stats").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("expired_keys:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn keys_do_not_expire_during_a_pause() {
    let srv = Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(60_000)
        .arg("WRITE")
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Logically gone, but not reclaimed (no DEL, no count) while paused.
    let got: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(got, None);
    assert_eq!(expired_keys(&mut c), 0);
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut c).unwrap();
    let got: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(got, None);
    assert_eq!(expired_keys(&mut c), 1);
}
