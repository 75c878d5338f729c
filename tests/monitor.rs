//! MONITOR: every command that ran, once it ran, as Redis 7.0 prints it.

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::Server;

/// Reads monitor lines, dropping the timestamp and the client's port.
fn lines(r: &mut BufReader<std::net::TcpStream>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            let l = l.trim_end().to_string();
            let (stamp, rest) = l.split_once(' ').unwrap();
            assert!(stamp.starts_with('+') && stamp.len() == 18, "{l}");
            match rest.split_once(':') {
                Some((db, tail))
                    if db.starts_with("[0 127.0.0.1") || db.starts_with("[2 127.0.0.1") =>
                {
                    let tail = tail.split_once(']').unwrap().1;
                    format!("{db}]{tail}")
                }
                _ => rest.to_string(),
            }
        })
        .collect()
}

#[test]
fn monitor_shows_commands_after_they_ran() {
    let srv = Server::start();
    // Connected (and its library announced) before the monitor starts.
    let mut c = srv.client();
    let mut m = srv.raw();
    assert_eq!(m.roundtrip(b"MONITOR\r\n", 5), b"+OK\r\n");
    m.0.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(m.0.try_clone().unwrap());
    let _: () = redis::cmd("SET")
        .arg("foo")
        .arg("b\"a\nr")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(2).query(&mut c).unwrap();
    let _: redis::RedisResult<()> = redis::cmd("AUTH").arg("nope").query(&mut c);
    let _: redis::RedisResult<()> = redis::cmd("CONFIG").arg("GET").arg("x").query(&mut c);
    let _: redis::RedisResult<()> = redis::cmd("NOSUCH").query(&mut c);
    let _: i64 = redis::cmd("EVAL")
        .arg("redis.call('set', 'k', 'v') return 1")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let _: () = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("n")
        .ignore()
        .query(&mut c)
        .unwrap();
    assert_eq!(
        lines(&mut r, 8),
        [
            "[0 127.0.0.1] \"SET\" \"foo\" \"b\\\"a\\nr\"",
            "[2 127.0.0.1] \"SELECT\" \"2\"",
            "[2 127.0.0.1] \"AUTH\" \"(redacted)\"",
            "[2 127.0.0.1] \"EVAL\" \"redis.call('set', 'k', 'v') return 1\" \"0\"",
            "[2 lua] \"set\" \"k\" \"v\"",
            "[2 127.0.0.1] \"MULTI\"",
            "[2 127.0.0.1] \"INCR\" \"n\"",
            "[2 127.0.0.1] \"EXEC\"",
        ]
    );
    // Its own commands come after their replies; RESET ends it.
    let m = r.into_inner();
    m.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut raw = common::Raw(m);
    let got = raw.roundtrip(b"PING\r\n", 7);
    assert_eq!(got, b"+PONG\r\n");
    let mut r = BufReader::new(raw.0.try_clone().unwrap());
    assert_eq!(lines(&mut r, 1), ["[0 127.0.0.1] \"PING\""]);
    let mut raw = common::Raw(r.into_inner());
    assert_eq!(raw.roundtrip(b"RESET\r\n", 8), b"+RESET\r\n");
    let _: () = redis::cmd("SET").arg("x").arg("1").query(&mut c).unwrap();
    assert!(raw.read_n(1).is_empty(), "no line after RESET");
}
