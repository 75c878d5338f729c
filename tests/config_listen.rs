//! CONFIG SET port / bind: the listeners really move, and a port or
//! address that cannot be bound fails the whole CONFIG SET, restoring every
//! value it set (Redis's "rollback on apply error").

mod common;

use std::net::{TcpListener, TcpStream};

fn get(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
    v[1].clone()
}

fn ping_on(port: u16) -> String {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("PING").query(&mut c).unwrap()
}

#[test]
fn config_set_port_moves_the_listener_or_rolls_everything_back() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let old_port: u16 = get(&mut c, "port").parse().unwrap();
    let limit = get(&mut c, "client-query-buffer-limit");
    let bind = get(&mut c, "bind");

    // A port someone else listens on: nothing changes.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("10000001")
        .arg("port")
        .arg(busy_port)
        .arg("client-query-buffer-limit")
        .arg("10m")
        .query::<()>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"
        ),
        "{err}"
    );
    assert_eq!(get(&mut c, "maxmemory"), "0");
    assert_eq!(get(&mut c, "port"), old_port.to_string());
    assert_eq!(get(&mut c, "client-query-buffer-limit"), limit);
    assert_eq!(ping_on(old_port), "PONG");
    drop(busy);

    // A free port: the server listens there, and no longer on the old one;
    // the connection that asked stays open.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("port")
        .arg(free)
        .query(&mut c)
        .unwrap();
    assert_eq!(ping_on(free), "PONG");
    assert!(TcpStream::connect(("127.0.0.1", old_port)).is_err());
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(info.contains(&format!("tcp_port:{free}\r\n")), "{info}");

    // An address that cannot be bound: the old listeners come back.
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("bind")
        .arg("999.999.999.999")
        .query::<()>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Failed to bind to specified addresses"),
        "{err}"
    );
    assert_eq!(get(&mut c, "bind"), bind);
    assert_eq!(ping_on(free), "PONG");

    // An empty bind listens nowhere (Redis 7.0); the connection that set
    // it stays, and setting addresses again listens again.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("bind")
        .arg("")
        .query(&mut c)
        .unwrap();
    assert!(TcpStream::connect(("127.0.0.1", free)).is_err());
    assert_eq!(get(&mut c, "bind"), "");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("bind")
        .arg(&bind)
        .query(&mut c)
        .unwrap();
    assert_eq!(ping_on(free), "PONG");

    // Back where the harness expects it (it stops the server by pid).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("port")
        .arg(old_port)
        .query(&mut c)
        .unwrap();
    assert_eq!(ping_on(old_port), "PONG");
}
