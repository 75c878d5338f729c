//! MIGRATE between two ferrokv servers: move, COPY, REPLACE, KEYS, TTL,
//! AUTH, the target's errors, the cached connection and the timeout.

mod common;

use std::time::Duration;

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

fn port_of(srv: &common::Server) -> String {
    srv.url()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn migrate_moves_copies_and_reports_the_targets_errors() {
    let src = common::Server::start();
    let dst = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let port = port_of(&dst);
    let mut a = src.client();
    let mut b = dst.client();
    let _: () = q(&mut b, &["SELECT", "9"]).unwrap();

    // Move, with the TTL.
    let _: () = q(&mut a, &["SET", "key", "Some Value", "EX", "100"]).unwrap();
    let ok: String = q(&mut a, &["MIGRATE", "127.0.0.1", &port, "key", "9", "5000"]).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(q::<i64>(&mut a, &["EXISTS", "key"]).unwrap(), 0);
    assert_eq!(q::<String>(&mut b, &["GET", "key"]).unwrap(), "Some Value");
    let ttl: i64 = q(&mut b, &["TTL", "key"]).unwrap();
    assert!((95..=100).contains(&ttl), "{ttl}");
    let info: String = q(&mut a, &["INFO", "stats"]).unwrap();
    assert!(info.contains("migrate_cached_sockets:1\r\n"), "{info}");

    // COPY keeps the source; an existing key needs REPLACE.
    let _: () = q(&mut a, &["RPUSH", "list", "a", "b", "c"]).unwrap();
    let _: () = q(&mut b, &["SET", "list", "x"]).unwrap();
    let e = q::<String>(
        &mut a,
        &["MIGRATE", "127.0.0.1", &port, "list", "9", "5000", "COPY"],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Target instance replied with error: BUSYKEY"),
        "{e}"
    );
    let ok: String = q(
        &mut a,
        &[
            "MIGRATE",
            "127.0.0.1",
            &port,
            "list",
            "9",
            "5000",
            "COPY",
            "REPLACE",
        ],
    )
    .unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(q::<i64>(&mut a, &["EXISTS", "list"]).unwrap(), 1);
    let items: Vec<String> = q(&mut b, &["LRANGE", "list", "0", "-1"]).unwrap();
    assert_eq!(items, ["a", "b", "c"]);

    // KEYS: only existing keys go, and only acknowledged ones are deleted.
    let _: () = q(&mut a, &["MSET", "k1", "1", "k2", "2", "k3", "3"]).unwrap();
    let _: () = q(&mut b, &["SET", "k2", "busy"]).unwrap();
    let none: String = q(
        &mut a,
        &[
            "MIGRATE",
            "127.0.0.1",
            &port,
            "",
            "9",
            "5000",
            "KEYS",
            "no1",
            "no2",
        ],
    )
    .unwrap();
    assert_eq!(none, "NOKEY");
    let e = q::<String>(
        &mut a,
        &[
            "MIGRATE",
            "127.0.0.1",
            &port,
            "",
            "9",
            "5000",
            "KEYS",
            "k1",
            "no",
            "k2",
            "k3",
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("BUSYKEY"), "{e}");
    let left: Vec<String> = q(&mut a, &["KEYS", "k*"]).unwrap();
    assert_eq!(left, ["k2"]);
    assert_eq!(q::<String>(&mut b, &["GET", "k3"]).unwrap(), "3");

    // AUTH: the target's refusal is the reply and nothing is deleted (the
    // RESTORE sent behind it may still land: the cached connection was
    // authenticated before requirepass was set, as with Redis).
    let _: () = q(&mut b, &["CONFIG", "SET", "requirepass", "foobar"]).unwrap();
    let _: () = q(&mut a, &["SET", "z", "1"]).unwrap();
    let e = q::<String>(
        &mut a,
        &[
            "MIGRATE",
            "127.0.0.1",
            &port,
            "z",
            "9",
            "5000",
            "AUTH",
            "wrong",
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("WRONGPASS"), "{e}");
    assert_eq!(q::<i64>(&mut a, &["EXISTS", "z"]).unwrap(), 1);
    let ok: String = q(
        &mut a,
        &[
            "MIGRATE",
            "127.0.0.1",
            &port,
            "z",
            "9",
            "5000",
            "REPLACE",
            "AUTH2",
            "default",
            "foobar",
        ],
    )
    .unwrap();
    assert_eq!(ok, "OK");

    // A target that does not answer in time: IOERR, the key stays.
    let _: () = q(&mut a, &["SET", "slow", "1"]).unwrap();
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port().to_string();
    let started = std::time::Instant::now();
    let e = q::<String>(
        &mut a,
        &["MIGRATE", "127.0.0.1", &mute_port, "slow", "0", "300"],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("error or timeout reading"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(q::<i64>(&mut a, &["EXISTS", "slow"]).unwrap(), 1);
    drop(mute);

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let e = q::<String>(
        &mut a,
        &["MIGRATE", "127.0.0.1", &closed, "slow", "0", "500"],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("error or timeout connecting"), "{e}");
}
