//! SYNC: the payload, then the replication stream a replica (or Redis's
//! test suite) reads, compared byte for byte with redis-server 7.0.15's for
//! the same commands; the link shows in CLIENT LIST and INFO and goes with
//! its connection.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{q, wait_for};

/// Sends SYNC and reads the payload; returns the link and the payload.
fn attach(port: u16) -> (BufReader<TcpStream>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"SYNC\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Redis may send newlines while it prepares the payload.
    while line.trim().is_empty() {
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    assert!(line.starts_with('$'), "{line:?}");
    let n: usize = line[1..].trim().parse().unwrap();
    let mut payload = vec![0; n];
    r.read_exact(&mut payload).unwrap();
    (r, payload)
}

/// What arrives on the link within a short while after the commands.
fn stream(r: &mut BufReader<TcpStream>, want: usize) -> Vec<u8> {
    r.get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < want {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

const SCRIPT: &[&[&str]] = &[
    &["SET", "foo", "bar"],
    // A transaction of one write is propagated bare, of several framed.
    &["MULTI"],
    &["SET", "one", "1"],
    &["EXEC"],
    &["SELECT", "3"],
    &["MULTI"],
    &["INCR", "x"],
    &["PEXPIREAT", "x", "4102444800000"],
    &["GET", "x"],
    &["EXEC"],
    &["SELECT", "0"],
    &["DEL", "foo", "nothing"],
    // Reads and writes that change nothing propagate nothing.
    &["GET", "one"],
    &["DEL", "nothing"],
    &[
        "EVAL",
        "redis.call('set','s','1'); redis.call('incr','s')",
        "0",
    ],
    &["EVAL", "redis.call('set','t','1')", "0"],
    &["RPUSH", "l", "a", "b"],
    &["LPOP", "l"],
];

fn replay(port: u16) -> (Vec<u8>, Vec<u8>) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_connection().unwrap();
    q(&mut c, &["FLUSHALL"]);
    q(&mut c, &["SET", "before", "1"]);
    let (mut link, payload) = attach(port);
    for args in SCRIPT {
        q(&mut c, args);
    }
    // The expected stream's length bounds the read (no idle wait).
    (payload, stream(&mut link, EXPECTED.len()))
}

const EXPECTED: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n\
*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n\
*3\r\n$3\r\nSET\r\n$3\r\none\r\n$1\r\n1\r\n\
*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n\
*1\r\n$5\r\nMULTI\r\n\
*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n\
*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nx\r\n$13\r\n4102444800000\r\n\
*1\r\n$4\r\nEXEC\r\n\
*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n\
*3\r\n$3\r\nDEL\r\n$3\r\nfoo\r\n$7\r\nnothing\r\n\
*1\r\n$5\r\nMULTI\r\n\
*3\r\n$3\r\nset\r\n$1\r\ns\r\n$1\r\n1\r\n\
*2\r\n$4\r\nincr\r\n$1\r\ns\r\n\
*1\r\n$4\r\nEXEC\r\n\
*3\r\n$3\r\nset\r\n$1\r\nt\r\n$1\r\n1\r\n\
*4\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\na\r\n$1\r\nb\r\n\
*2\r\n$4\r\nLPOP\r\n$1\r\nl\r\n";

#[test]
fn sync_sends_a_payload_then_the_stream_redis_sends() {
    let srv = common::Server::start();
    let (payload, got) = replay(srv.port);
    assert!(payload.starts_with(b"REDIS0010"), "{payload:?}");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(EXPECTED)
    );
    if let Some(reference) = common::reference() {
        let (_, theirs) = replay(reference.port);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&theirs)
        );
    }
}

#[test]
fn the_link_is_listed_as_a_replica_and_leaves_with_its_connection() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let info = |c: &mut redis::Connection| -> String {
        redis::cmd("INFO").arg("replication").query(c).unwrap()
    };
    let (link, _) = attach(srv.port);
    assert!(info(&mut c).contains("connected_slaves:1"));
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(list.lines().any(|l| l.contains("flags=S ")), "{list}");
    // A replica's REPLCONF ACKs are not answered (a reply would come back
    // into its stream); a command that would reply closes the link, as in
    // Redis 7.0.15.
    let mut s = link.into_inner();
    s.write_all(b"REPLCONF ACK 0\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(s.read(&mut buf).is_err(), "the link got a reply");
    s.write_all(b"PING\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(s.read(&mut buf), Ok(0)), "the link was not closed");
    drop(s);
    wait_for("the link gone", || {
        !info(&mut c).contains("connected_slaves:1")
    });
}

/// XREADGROUP, as Redis 7.0 propagates it: an XCLAIM per entry a `>` read
/// delivered (framed when there are several), the group's new cursor for a
/// NOACK read (after CREATECONSUMER when it made the consumer), nothing for
/// a history read or a read that found nothing.
const GROUP_SCRIPT: &[&[&str]] = &[
    &["XADD", "s", "1-1", "a", "1"],
    &["XADD", "s", "2-1", "b", "2"],
    &["XADD", "s", "3-1", "c", "3"],
    &["XGROUP", "CREATE", "s", "g", "0"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "COUNT",
        "2",
        "STREAMS",
        "s",
        ">",
    ],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c2",
        "NOACK",
        "STREAMS",
        "s",
        ">",
    ],
    &["XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", ">"],
    &["XADD", "s", "4-1", "d", "4"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "BLOCK",
        "10",
        "STREAMS",
        "s",
        ">",
    ],
];

const GROUP_EXPECTED: &str = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n\
*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$3\r\n1-1\r\n$1\r\na\r\n$1\r\n1\r\n\
*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$3\r\n2-1\r\n$1\r\nb\r\n$1\r\n2\r\n\
*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$3\r\n3-1\r\n$1\r\nc\r\n$1\r\n3\r\n\
*5\r\n$6\r\nXGROUP\r\n$6\r\nCREATE\r\n$1\r\ns\r\n$1\r\ng\r\n$1\r\n0\r\n\
*1\r\n$5\r\nMULTI\r\n\
*14\r\n$6\r\nXCLAIM\r\n$1\r\ns\r\n$1\r\ng\r\n$2\r\nc1\r\n$1\r\n0\r\n$3\r\n1-1\r\n$4\r\nTIME\r\n$13\r\nT\r\n\
$10\r\nRETRYCOUNT\r\n$1\r\n1\r\n$5\r\nFORCE\r\n$6\r\nJUSTID\r\n$6\r\nLASTID\r\n$3\r\n1-1\r\n\
*14\r\n$6\r\nXCLAIM\r\n$1\r\ns\r\n$1\r\ng\r\n$2\r\nc1\r\n$1\r\n0\r\n$3\r\n2-1\r\n$4\r\nTIME\r\n$13\r\nT\r\n\
$10\r\nRETRYCOUNT\r\n$1\r\n1\r\n$5\r\nFORCE\r\n$6\r\nJUSTID\r\n$6\r\nLASTID\r\n$3\r\n2-1\r\n\
*1\r\n$4\r\nEXEC\r\n\
*1\r\n$5\r\nMULTI\r\n\
*5\r\n$6\r\nXGROUP\r\n$14\r\nCREATECONSUMER\r\n$1\r\ns\r\n$1\r\ng\r\n$2\r\nc2\r\n\
*7\r\n$6\r\nXGROUP\r\n$5\r\nSETID\r\n$1\r\ns\r\n$1\r\ng\r\n$3\r\n3-1\r\n$11\r\nENTRIESREAD\r\n$1\r\n3\r\n\
*1\r\n$4\r\nEXEC\r\n\
*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$3\r\n4-1\r\n$1\r\nd\r\n$1\r\n4\r\n\
*14\r\n$6\r\nXCLAIM\r\n$1\r\ns\r\n$1\r\ng\r\n$2\r\nc1\r\n$1\r\n0\r\n$3\r\n4-1\r\n$4\r\nTIME\r\n$13\r\nT\r\n\
$10\r\nRETRYCOUNT\r\n$1\r\n1\r\n$5\r\nFORCE\r\n$6\r\nJUSTID\r\n$6\r\nLASTID\r\n$3\r\n4-1\r\n";

/// The stream after `script`, with each 13-digit time shown as `T`.
fn masked_stream(port: u16, script: &[&[&str]], want: usize) -> String {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_connection().unwrap();
    q(&mut c, &["FLUSHALL"]);
    let (mut link, _) = attach(port);
    for args in script {
        q(&mut c, args);
    }
    let got = String::from_utf8_lossy(&stream(&mut link, want)).into_owned();
    let mut out = String::new();
    let mut rest = got.as_str();
    while let Some(at) = rest.find("$13\r\n") {
        out.push_str(&rest[..at + 5]);
        rest = &rest[at + 5..];
        if rest.len() >= 13 && rest[..13].bytes().all(|b| b.is_ascii_digit()) {
            out.push('T');
            rest = &rest[13..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn xreadgroup_propagates_claims_and_cursors_as_redis_does() {
    // Each `T` stands for 13 digits of the stream.
    let want = GROUP_EXPECTED.len() + 12 * GROUP_EXPECTED.matches("\r\nT\r\n").count();
    let srv = common::Server::start();
    let got = masked_stream(srv.port, GROUP_SCRIPT, want);
    assert_eq!(got, GROUP_EXPECTED);
    if let Some(reference) = common::reference() {
        assert_eq!(masked_stream(reference.port, GROUP_SCRIPT, want), got);
    }
}
