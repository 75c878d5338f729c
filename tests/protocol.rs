//! Framing and connection robustness against the real binary, in raw bytes:
//! pipelining, fragmented input, protocol errors (Redis 7.0.15's exact
//! bytes), inline commands, abandoned clients and many idle connections.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Raw, resp};

#[test]
fn ten_thousand_pipelined_commands_reply_in_order() {
    let srv = common::Server::start();
    let raw = srv.raw();
    let n = 10_000;
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let arg = i.to_string();
        request.extend_from_slice(&resp(&[b"ECHO", arg.as_bytes()]));
        expected.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    // Write from another thread: the server answers while we are still
    // sending, and neither side may stall on a full socket buffer.
    let mut writer = raw.0.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&request).unwrap());
    let mut raw = raw;
    let got = raw.read_n(expected.len());
    sender.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "replies out of order or corrupted");
}

#[test]
fn a_command_written_one_byte_at_a_time() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    raw.0.set_nodelay(true).unwrap();
    let cmd = resp(&[b"SET", b"key", b"a value"]);
    for b in &cmd {
        raw.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(raw.read_n(5), b"+OK\r\n");
    for b in b"GET key\r\n" {
        raw.send(std::slice::from_ref(b));
    }
    assert_eq!(raw.read_n(13), b"$7\r\na value\r\n");
}

/// Sends `input` and expects exactly `reply`, then the connection closed.
fn protocol_error(raw: &mut Raw, input: &[u8], reply: &[u8]) {
    raw.send(input);
    let got = raw.read_to_close();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(reply),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
}

#[test]
fn protocol_errors_reply_like_redis_and_close() {
    let srv = common::Server::start();
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*2147483648\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n+x\r\n",
            b"-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"*1\r\n$-1\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$abc\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        // proto-max-bulk-len defaults to 512mb.
        (
            b"*1\r\n$536870913\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"set a \"b\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"set a \"b\"c\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"set a 'b\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        // Replies to earlier commands in the same read come first.
        (
            b"PING\r\n*abc\r\n",
            b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ];
    for (input, reply) in cases {
        protocol_error(&mut srv.raw(), input, reply);
    }
    let mut long = vec![b'a'; 70 * 1024];
    protocol_error(
        &mut srv.raw(),
        &long,
        b"-ERR Protocol error: too big inline request\r\n",
    );
    long[0] = b'*';
    long[1..].fill(b'1');
    protocol_error(
        &mut srv.raw(),
        &long,
        b"-ERR Protocol error: too big mbulk count string\r\n",
    );
    // The server is still there for everyone else.
    let mut raw = srv.raw();
    assert_eq!(raw.roundtrip(b"PING\r\n", 7), b"+PONG\r\n");
}

#[test]
fn unauthenticated_clients_may_only_send_small_requests() {
    let srv = common::Server::start_with(&["--requirepass", "pw"]);
    protocol_error(
        &mut srv.raw(),
        b"*11\r\n",
        b"-ERR Protocol error: unauthenticated multibulk length\r\n",
    );
    protocol_error(
        &mut srv.raw(),
        b"*1\r\n$16385\r\n",
        b"-ERR Protocol error: unauthenticated bulk length\r\n",
    );
    // Within the limits the request is parsed and refused by NOAUTH.
    let mut raw = srv.raw();
    let ten: Vec<&[u8]> = std::iter::once(&b"PING"[..])
        .chain(vec![&b"x"[..]; 9])
        .collect();
    assert_eq!(
        raw.roundtrip(&resp(&ten), 34),
        b"-NOAUTH Authentication required.\r\n"
    );
    // After AUTH, big requests are fine.
    assert_eq!(raw.roundtrip(&resp(&[b"AUTH", b"pw"]), 5), b"+OK\r\n");
    let big = vec![b'v'; 100_000];
    assert_eq!(raw.roundtrip(&resp(&[b"SET", b"k", &big]), 5), b"+OK\r\n");
    let many: Vec<&[u8]> = std::iter::once(&b"ECHO"[..])
        .chain(vec![&b"x"[..]; 20])
        .collect();
    let reply = b"-ERR wrong number of arguments for 'echo' command\r\n";
    assert_eq!(raw.roundtrip(&resp(&many), reply.len()), reply);
}

#[test]
fn inline_commands() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    assert_eq!(raw.roundtrip(b"PING\r\n", 7), b"+PONG\r\n");
    assert_eq!(raw.roundtrip(b"set a \"b c\"\r\n", 5), b"+OK\r\n");
    assert_eq!(raw.roundtrip(b"get a\r\n", 9), b"$3\r\nb c\r\n");
    // Bare newlines, escapes, single quotes, empty lines.
    assert_eq!(raw.roundtrip(b"\r\n\nset b 'it\\'s'\n", 5), b"+OK\r\n");
    assert_eq!(raw.roundtrip(b"get b\n", 10), b"$4\r\nit's\r\n");
    assert_eq!(raw.roundtrip(b"echo \"\\x41\\n\"\r\n", 8), b"$2\r\nA\n\r\n");
    // A negative multibulk count is skipped, as in Redis.
    assert_eq!(raw.roundtrip(b"*-1\r\nPING\r\n", 7), b"+PONG\r\n");
}

#[test]
fn an_abandoned_half_command_harms_no_one() {
    let mut srv = common::Server::start();
    let mut other = srv.raw();
    assert_eq!(other.roundtrip(&resp(&[b"SET", b"k", b"v"]), 5), b"+OK\r\n");
    for partial in [
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel"[..],
        b"*2\r\n$3\r\nGET",
        b"*1000000\r\n",
        b"*1\r\n$100000\r\nabc",
        b"GET k",
    ] {
        let mut raw = srv.raw();
        raw.send(partial);
        // Give the server time to buffer it before the peer vanishes.
        std::thread::sleep(Duration::from_millis(20));
        drop(raw);
    }
    assert_eq!(other.roundtrip(&resp(&[b"GET", b"k"]), 7), b"$1\r\nv\r\n");
    assert!(srv.alive());
    let mut fresh = srv.client();
    let v: String = redis::cmd("GET").arg("k").query(&mut fresh).unwrap();
    assert_eq!(v, "v");
}

/// Raises this process's open-files limit to its hard limit.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

fn client_count(c: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
    list.lines().count()
}

#[test]
fn ten_thousand_idle_connections() {
    const N: usize = 10_000;
    let limit = raise_fd_limit();
    if limit < (N as u64) + 200 {
        eprintln!(
            "skipping: RLIMIT_NOFILE is {limit}, need {} (raise `ulimit -n`)",
            N + 200
        );
        return;
    }
    // Room for the idle clients plus the ones checking on them.
    let srv = common::Server::start_with(&["--maxclients", "10100"]);
    let mut idle = Vec::with_capacity(N);
    for i in 0..N {
        let s = TcpStream::connect(("127.0.0.1", srv.port))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        idle.push(s);
    }
    // A new client is served while all of them sit there.
    let mut probe = srv.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client_count(&mut probe) < N + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(client_count(&mut probe), N + 1);

    // Every idle connection still answers: all PINGs first, then all replies.
    for s in &mut idle {
        s.write_all(b"PING\r\n").unwrap();
    }
    for (i, s) in idle.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(&buf, b"+PONG\r\n", "connection {i}");
    }
    let mut late = srv.client();
    let pong: String = redis::cmd("PING").query(&mut late).unwrap();
    assert_eq!(pong, "PONG");

    // Once they close, the server forgets them all.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client_count(&mut probe) > 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        client_count(&mut probe),
        2,
        "closed connections left in CLIENT LIST"
    );
}
