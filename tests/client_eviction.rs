//! `maxmemory-clients` (Redis 7.0's client eviction) and the client memory
//! figures it works from: CLIENT LIST `qbuf`/`tot-mem`, INFO
//! `mem_clients_normal` and `evicted_clients`.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, Server, info_num, resp, wait_for};
use redis::cmd;

fn config_set(c: &mut redis::Connection, name: &str, value: &str) {
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(c)
        .unwrap();
}

fn config_get(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
    v[1].clone()
}

/// A control connection that client eviction leaves alone.
fn control(srv: &Server) -> redis::Connection {
    let mut c = srv.client();
    let _: () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("control")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CLIENT")
        .arg("NO-EVICT")
        .arg("on")
        .query(&mut c)
        .unwrap();
    c
}

/// A raw connection named `name`.
fn named(srv: &Server, name: &str) -> Raw {
    let mut r = srv.raw();
    r.roundtrip(&resp(&[b"CLIENT", b"SETNAME", name.as_bytes()]), 5);
    r
}

/// Sends a command whose one argument of `n` bytes arrives without its
/// end: the bytes sit in the client's query buffer.
fn fill_query_buffer(r: &mut Raw, n: usize) {
    let mut bytes = format!("*2\r\n${n}\r\n").into_bytes();
    bytes.resize(bytes.len() + n, b'v');
    // A client being evicted may see its writes fail part-way.
    let _ = std::io::Write::write_all(&mut r.0, &bytes);
}

#[test]
fn maxmemory_clients_takes_bytes_and_percentages_as_redis_prints_them() {
    let srv = Server::start();
    let mut c = srv.client();
    config_set(&mut c, "maxmemory-clients", "3mb");
    assert_eq!(config_get(&mut c, "maxmemory-clients"), "3145728");
    config_set(&mut c, "maxmemory-clients", "7%");
    assert_eq!(config_get(&mut c, "maxmemory-clients"), "7%");
    config_set(&mut c, "maxmemory-clients", "0%");
    assert_eq!(config_get(&mut c, "maxmemory-clients"), "0");
    let err = cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-clients")
        .arg("101%")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("percentage argument must be less or equal to 100"),
        "{err}"
    );
}

#[test]
fn client_list_counts_the_query_buffer_exactly() {
    let srv = Server::start();
    let mut c = control(&srv);
    let mut r = named(&srv, "q");
    fill_query_buffer(&mut r, 200_000);
    // Redis's `qbuf` is the argument's bytes (its header is parsed).
    wait_for("qbuf", || {
        common::client_field(&mut c, "q", "qbuf") == Some(200_000)
    });
    let tot = common::client_field(&mut c, "q", "tot-mem").unwrap();
    assert!((200_000..260_000).contains(&tot), "tot-mem={tot}");
    assert!(info_num(&mut c, "memory", "mem_clients_normal") as u64 >= tot);
}

#[test]
fn a_client_over_the_limit_is_evicted_and_counted() {
    let srv = Server::start();
    let mut c = control(&srv);
    config_set(&mut c, "maxmemory-clients", "1mb");
    let mut r = named(&srv, "big");
    fill_query_buffer(&mut r, 2 << 20);
    assert!(r.is_closed(), "the client over the limit is closed");
    wait_for("gone", || {
        common::client_field(&mut c, "big", "tot-mem").is_none()
    });
    assert_eq!(info_num(&mut c, "stats", "evicted_clients"), 1);
    let _: () = cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert_eq!(info_num(&mut c, "stats", "evicted_clients"), 0);
}

#[test]
fn no_evict_clients_stay_past_the_limit() {
    let srv = Server::start();
    let mut c = control(&srv);
    config_set(&mut c, "maxmemory-clients", "500kb");
    let mut r = named(&srv, "kept");
    r.roundtrip(&resp(&[b"CLIENT", b"NO-EVICT", b"on"]), 5);
    fill_query_buffer(&mut r, 1 << 20);
    wait_for("qbuf", || {
        common::client_field(&mut c, "kept", "qbuf") == Some(1 << 20)
    });
    assert!(common::client_field(&mut c, "kept", "tot-mem").unwrap() > 500 * 1024);
    // An eviction pass (a lower limit) leaves it too.
    config_set(&mut c, "maxmemory-clients", "400kb");
    assert!(common::client_field(&mut c, "kept", "qbuf").is_some());
    drop(r);
}

#[test]
fn lowering_the_limit_evicts_the_biggest_clients_first() {
    let srv = Server::start();
    let mut c = control(&srv);
    let sizes = [100_000usize, 300_000, 900_000];
    let mut raws = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let name = format!("c{i}");
        let mut r = named(&srv, &name);
        fill_query_buffer(&mut r, *n);
        wait_for("qbuf", || {
            common::client_field(&mut c, &name, "qbuf") == Some(*n as u64)
        });
        raws.push(r);
    }
    let mem: Vec<u64> = (0..3)
        .map(|i| common::client_field(&mut c, &format!("c{i}"), "tot-mem").unwrap())
        .collect();
    let control_mem = common::client_field(&mut c, "control", "tot-mem").unwrap();
    // Room for all but the biggest.
    let limit = mem[0] + mem[1] + control_mem + 8 * 1024;
    config_set(&mut c, "maxmemory-clients", &limit.to_string());
    // Evicted before CONFIG SET answered, as in Redis.
    assert_eq!(common::client_field(&mut c, "c2", "tot-mem"), None);
    assert!(common::client_field(&mut c, "c1", "tot-mem").is_some());
    assert!(common::client_field(&mut c, "c0", "tot-mem").is_some());
    assert_eq!(info_num(&mut c, "stats", "evicted_clients"), 1);
}

#[test]
fn replies_a_client_does_not_read_count_and_get_it_evicted() {
    let srv = Server::start();
    let mut c = control(&srv);
    let _: () = cmd("SETRANGE")
        .arg("k")
        .arg(200_000)
        .arg("v")
        .query(&mut c)
        .unwrap();
    config_set(&mut c, "maxmemory-clients", "3mb");
    let mut r = named(&srv, "reader");
    let get = resp(&[b"GET", b"k"]);
    let mut evicted = false;
    // 200 KB a reply: the kernel's socket buffers take some, then the
    // server's reply buffer grows until the client is closed.
    for _ in 0..2_000 {
        if std::io::Write::write_all(&mut r.0, &get).is_err() {
            evicted = true;
            break;
        }
        match common::client_field(&mut c, "reader", "tot-mem") {
            None => {
                evicted = true;
                break;
            }
            Some(m) => assert!(m < 4 << 20, "tot-mem={m}"),
        }
    }
    assert!(evicted);
    assert_eq!(info_num(&mut c, "stats", "evicted_clients"), 1);
}

/// Redis's suite (unit/maxmemory, "eviction due to output buffers of many
/// MGET clients, client eviction: true"): with both limits, clients that
/// do not read are evicted for their replies and no key is, though the
/// closed connections still hold their buffers for a moment.
#[test]

fn evicting_clients_for_their_replies_evicts_no_keys() {
    let srv = Server::start();
    let mut c = control(&srv);
    config_set(&mut c, "maxmemory", "11mb");
    config_set(&mut c, "maxmemory-policy", "allkeys-lru");
    config_set(&mut c, "maxmemory-clients", "3mb");
    for j in 0..50 {
        let _: () = cmd("SETRANGE")
            .arg(j)
            .arg(100_000)
            .arg("x")
            .query(&mut c)
            .unwrap();
    }
    let mut clients: Vec<Raw> = (0..20).map(|_| srv.raw()).collect();
    for r in &clients {
        r.0.set_nonblocking(true).unwrap();
    }
    let mget = resp(&[b"MGET", b"1"]);
    // An evicted client's writes fail: it is left out (a full socket only
    // skips a round).
    let round = |clients: &mut Vec<Raw>| {
        clients.retain_mut(|r| match std::io::Write::write(&mut r.0, &mget) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        });
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_num(&mut c, "stats", "evicted_clients") == 0 {
        assert!(Instant::now() < deadline, "no client was evicted");
        for _ in 0..50 {
            round(&mut clients);
        }
    }
    // More of the same while the closed connections wind down.
    let more = Instant::now() + Duration::from_millis(500);
    while Instant::now() < more && !clients.is_empty() {
        round(&mut clients);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(info_num(&mut c, "stats", "evicted_keys"), 0);
    let n: u64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 50);
}

#[test]
fn watched_keys_and_subscriptions_count_as_client_memory() {
    let srv = Server::start();
    let mut c = control(&srv);
    config_set(&mut c, "maxmemory-clients", "200000");
    let mut w = srv.client();
    let mut closed = false;
    for j in 0..200_000 {
        if cmd("WATCH").arg(j).query::<()>(&mut w).is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "watching keys ends in eviction");
    let mut s = srv.raw();
    let mut closed = false;
    for j in 0..200_000 {
        s.send(&resp(&[b"SUBSCRIBE", j.to_string().as_bytes()]));
        let reply = s.read_n(1);
        if reply.is_empty() {
            closed = true;
            break;
        }
        // The rest of the confirmation.
        s.read_n(
            format!(
                "*3\r\n$9\r\nsubscribe\r\n${}\r\n{j}\r\n:{}\r\n",
                j.to_string().len(),
                j + 1
            )
            .len()
                - 1,
        );
    }
    assert!(closed, "subscribing ends in eviction");
    assert_eq!(info_num(&mut c, "stats", "evicted_clients"), 2);
}

#[test]
fn multi_queue_shows_as_multi_mem() {
    let srv = Server::start();
    let mut c = control(&srv);
    let mut r = named(&srv, "tx");
    r.roundtrip(&resp(&[b"MULTI"]), 5);
    let value = vec![b'x'; 50_000];
    r.roundtrip(&resp(&[b"SET", b"k", &value]), 9);
    let multi_mem = common::client_field(&mut c, "tx", "multi-mem").unwrap();
    assert!(multi_mem >= 50_000, "multi-mem={multi_mem}");
    assert!(common::client_field(&mut c, "tx", "tot-mem").unwrap() >= multi_mem);
}

/// The reply buffer follows what a client's replies need, as Redis 7.0's:
/// an idle client's shrinks to about 1 KiB, a client reading big values
/// grows it back by doubling to 16 KiB (CLIENT LIST `rbs`, `rbp`).
#[test]
fn reply_buffers_shrink_when_idle_and_grow_when_filled() {
    let srv = Server::start_with(&["--enable-debug-command", "yes"]);
    let mut admin = srv.client();
    let mut c = srv.client();
    let _: () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("rb")
        .query(&mut c)
        .unwrap();
    assert_eq!(common::client_field(&mut admin, "rb", "rbs"), Some(16384));
    let _: () = cmd("DEBUG")
        .arg("REPLYBUFFER")
        .arg("PEAK-RESET-TIME")
        .arg("100")
        .query(&mut admin)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rbs = common::client_field(&mut admin, "rb", "rbs").unwrap();
        if (1024..2048).contains(&rbs) {
            break;
        }
        assert!(Instant::now() < deadline, "idle client's rbs stays {rbs}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _: () = cmd("SET")
        .arg("big")
        .arg("x".repeat(32768))
        .query(&mut admin)
        .unwrap();
    let _: () = cmd("DEBUG")
        .arg("REPLYBUFFER")
        .arg("PEAK-RESET-TIME")
        .arg("never")
        .query(&mut admin)
        .unwrap();
    loop {
        let _: Vec<u8> = cmd("GET").arg("big").query(&mut c).unwrap();
        let rbs = common::client_field(&mut admin, "rb", "rbs").unwrap();
        if rbs >= 16384 {
            assert_eq!(rbs, 16384);
            assert_eq!(common::client_field(&mut admin, "rb", "rbp"), Some(16384));
            break;
        }
        assert!(Instant::now() < deadline, "busy client's rbs stays {rbs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
