//! Clients that try to exhaust the server: slow or trickling senders, huge
//! headers, clients that never read, a blocked client flooding input. The
//! server must stay up, keep answering others and keep its memory bounded.
//! Also: SIGHUP, protected mode, AUTH.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::{Server, info_field, info_num, resp};

/// Resident memory of the server process, in KiB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// CPU time (user + system) the server process has used.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((f[0] + f[1]) * 1000 / hz)
}

fn ping(srv: &Server) {
    let mut c = srv.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

/// Writes `total` bytes of `fill` in chunks until done or the peer closes.
fn flood(s: &mut TcpStream, total: usize, fill: u8) -> usize {
    let chunk = vec![fill; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        match s.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

#[test]
fn a_blocked_client_flooding_input_is_closed_at_the_query_buffer_limit() {
    let mut srv = Server::start_with(&["--client-query-buffer-limit", "1mb"]);
    let mut admin = srv.client();
    let rss_before = rss_kb(srv.pid());
    let mut blocked = srv.raw();
    blocked.send(b"BLPOP nokey 0\r\n");
    common::wait_blocked(&mut admin, 1);
    blocked
        .0
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sent = flood(&mut blocked.0, 50 << 20, b'x');
    assert!(sent < 50 << 20, "the server kept reading {sent} bytes");
    assert!(blocked.read_to_close().is_empty());
    common::wait_blocked(&mut admin, 0);
    let grown_kb = rss_kb(srv.pid()).saturating_sub(rss_before);
    assert!(grown_kb < 40 * 1024, "grew by {grown_kb} KiB");
    assert!(srv.alive());
    ping(&srv);
}

#[test]
fn a_query_buffer_past_the_limit_closes_the_client() {
    let srv = Server::start_with(&["--client-query-buffer-limit", "1mb"]);
    // A bulk announced at the maximum size, then more than the limit of it.
    let mut big = srv.raw();
    big.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n");
    big.0
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sent = flood(&mut big.0, 8 << 20, b'v');
    assert!(sent < 8 << 20);
    assert!(big.read_to_close().is_empty());
    ping(&srv);
}

#[test]
fn huge_headers_are_refused_or_wait_without_allocating() {
    let mut srv = Server::start();
    let mut admin = srv.client();
    let used = |c: &mut redis::Connection| -> i64 { info_num(c, "memory", "used_memory") };
    let used_before = used(&mut admin);
    let rss_before = rss_kb(srv.pid());
    // Too long a bulk is a protocol error, as in Redis.
    let mut a = srv.raw();
    a.send(b"*1\r\n$2147483647\r\n");
    assert_eq!(
        a.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    let mut b = srv.raw();
    b.send(b"*2147483648\r\n");
    assert_eq!(
        b.read_to_close(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    // The largest counts and sizes are accepted and wait for their bytes;
    // many such clients must not make the server commit memory.
    let mut waiting = Vec::new();
    for i in 0..50 {
        let mut c = srv.raw();
        if i % 2 == 0 {
            c.send(b"*2147483647\r\n$3\r\nSET\r\n");
        } else {
            c.send(b"*2\r\n$3\r\nGET\r\n$536870912\r\nabc");
        }
        waiting.push(c);
    }
    ping(&srv);
    let grown_kb = rss_kb(srv.pid()).saturating_sub(rss_before);
    assert!(grown_kb < 32 * 1024, "grew by {grown_kb} KiB");
    let grown = used(&mut admin) - used_before;
    assert!(grown < 16 << 20, "50 waiting clients hold {grown} bytes");
    drop(waiting);
    assert!(srv.alive());
    ping(&srv);
}

#[test]
fn a_slow_sender_does_not_hold_up_others() {
    let srv = Server::start();
    let cmd = resp(&[b"SET", b"slow", b"value"]);
    let mut slow = srv.raw();
    let mut other = srv.client();
    for (i, b) in cmd.iter().enumerate() {
        slow.send(&[*b]);
        std::thread::sleep(Duration::from_millis(2));
        if i % 8 == 0 {
            let n: i64 = redis::cmd("INCR").arg("fast").query(&mut other).unwrap();
            assert_eq!(n as usize, i / 8 + 1);
        }
    }
    assert_eq!(slow.read_n(5), b"+OK\r\n");
}

/// What a connection keeps pending when no limit of any kind bounds client
/// memory (`obuf::UNBOUNDED_CAP`); past it the server waits for the client.
const CAP: u64 = 64 << 20;

#[test]
fn a_client_that_never_reads_gets_output_up_to_a_cap() {
    let mut srv = Server::start();
    let mut c = srv.client();
    let value = vec![b'v'; 1 << 20];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut c)
        .unwrap();
    let rss_before = rss_kb(srv.pid());
    let mut lazy = srv.raw();
    lazy.roundtrip(&resp(&[b"CLIENT", b"SETNAME", b"lazy"]), 5);
    lazy.0
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // As in Redis (the suite's "client total memory grows during
    // maxmemory-clients disabled"): the server goes on running the GETs of
    // a client that does not read, and its replies count as its memory.
    let get = resp(&[b"GET", b"big"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        lazy.0.write_all(&get).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        if common::client_field(&mut c, "lazy", "omem").unwrap() > 10 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "omem never grew past 10 MB");
    }
    // 600 MiB of replies asked for: past the cap the server stops reading,
    // so the rest waits in the socket (or the sender's writes stall).
    for _ in 0..600 {
        if lazy.0.write_all(&get).is_err() {
            break;
        }
    }
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let omem = common::client_field(&mut c, "lazy", "omem").unwrap();
        if omem == last && omem >= CAP / 2 {
            break;
        }
        assert!(Instant::now() < deadline, "omem still changing: {omem}");
        last = omem;
    }
    // At most the cap and the reply that crossed it.
    assert!(last <= CAP + (2 << 20), "omem {last}");
    // The buffer's allocation, which may be up to twice what it holds.
    let tot = common::client_field(&mut c, "lazy", "tot-mem").unwrap();
    assert!(tot >= last && tot <= 2 * CAP + (4 << 20), "tot-mem {tot}");
    let grown_kb = rss_kb(srv.pid()).saturating_sub(rss_before);
    assert!(grown_kb < 4 * CAP / 1024, "grew by {grown_kb} KiB");
    ping(&srv);
    // A client waiting at the cap is still closed by CLIENT KILL.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("SKIPME")
        .arg("yes")
        .arg("TYPE")
        .arg("normal")
        .query(&mut c)
        .unwrap();
    assert_eq!(killed, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::client_field(&mut c, "lazy", "omem").is_some() {
        assert!(Instant::now() < deadline, "the killed client stays");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(srv.alive());
}

/// Sends `bytes` in pieces of `piece` bytes, pausing now and then so the
/// server sees them in many reads; returns how long it took.
fn trickle(s: &mut TcpStream, bytes: &[u8], piece: usize, pause_every: usize) -> Duration {
    let started = Instant::now();
    for (i, p) in bytes.chunks(piece).enumerate() {
        s.write_all(p).unwrap();
        if i % pause_every == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    started.elapsed()
}

#[test]
fn a_million_argument_command_in_small_pieces_is_framed_in_linear_time() {
    let srv = Server::start();
    let mut admin = srv.client();
    let used = |c: &mut redis::Connection| -> i64 { info_num(c, "memory", "used_memory") };
    let used_before = used(&mut admin);
    let n = 1_000_000usize;
    // SADD of one member a million times: the reply is small and the set
    // holds one member, so what memory is left is the connection's.
    let mut cmd = format!("*{}\r\n$4\r\nSADD\r\n$1\r\ns\r\n", n + 2).into_bytes();
    for _ in 0..n {
        cmd.extend_from_slice(b"$1\r\nx\r\n");
    }
    let mut c = srv.raw();
    let cpu_before = cpu_time(srv.pid());
    // 7 MB in 700-byte pieces, a pause every 4: thousands of reads, each
    // of which used to frame the whole command again from its start.
    let took = trickle(&mut c.0, &cmd, 700, 4);
    c.0.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    assert_eq!(c.read_n(4), b":1\r\n");
    let cpu = cpu_time(srv.pid()).checked_sub(cpu_before).unwrap();
    // Re-framing kept the server busy for the whole trickle; framing on
    // from where it stopped needs a small fraction of it.
    assert!(
        cpu < took / 3,
        "server used {cpu:?} of CPU while the command trickled in for {took:?}"
    );
    // The buffer and argument list it needed are given back.
    let grown = used(&mut admin) - used_before;
    assert!(grown < 4 << 20, "the connection still holds {grown} bytes");
    ping(&srv);
}

/// Reads until what arrived ends with `suffix`.
fn read_until(r: &mut common::Raw, suffix: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !got.ends_with(suffix) {
        let k = r.0.read(&mut buf).expect("replies");
        assert!(k > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..k]);
    }
    got
}

/// The length of the confirmation of channel `ch:<i>` (with 100,000
/// subscriptions being made or dropped in order).
fn subscribe_frame_len(i: usize, verb: &str) -> usize {
    let name = format!("ch:{i}");
    let count = if verb == "subscribe" {
        i + 1
    } else {
        99_999 - i
    };
    format!(
        "*3\r\n${}\r\n{verb}\r\n${}\r\n{name}\r\n:{count}\r\n",
        verb.len(),
        name.len()
    )
    .len()
}

#[test]
fn subscribing_to_100k_channels_and_leaving_them_is_quick() {
    let srv = Server::start();
    let n = 100_000;
    let names: Vec<Vec<u8>> = (0..n).map(|i| format!("ch:{i}").into_bytes()).collect();
    let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
    args.extend(names.iter().map(|c| c.as_slice()));
    let subscribe = resp(&args);
    let mut admin = srv.client();
    let started = Instant::now();

    let mut sub = srv.raw();
    sub.0
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    sub.send(&subscribe);
    let last = format!("$8\r\nch:99999\r\n:{n}\r\n").into_bytes();
    let confirmations = read_until(&mut sub, &last);
    assert_eq!(
        confirmations.len(),
        (0..n)
            .map(|i| subscribe_frame_len(i, "subscribe"))
            .sum::<usize>()
    );
    // UNSUBSCRIBE without arguments confirms in subscription order.
    sub.send(b"UNSUBSCRIBE\r\n");
    let gone = read_until(&mut sub, b"$8\r\nch:99999\r\n:0\r\n");
    assert!(gone.starts_with(b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nch:0\r\n:99999\r\n"));
    assert_eq!(
        gone.len(),
        (0..n)
            .map(|i| subscribe_frame_len(i, "unsubscribe"))
            .sum::<usize>()
    );

    // Subscribed again, then gone by disconnecting.
    sub.send(&subscribe);
    read_until(&mut sub, &last);
    let subscribed = info_field(&mut admin, "stats", "pubsub_channels");
    assert_eq!(subscribed, n.to_string());
    drop(sub);
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(&mut admin, "stats", "pubsub_channels") != "0" {
        assert!(Instant::now() < deadline, "subscriptions never went away");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Searching a list per subscription took minutes for this.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn sighup_is_ignored() {
    let mut srv = Server::start();
    // SAFETY: sends a signal to the child process this test started.
    let rc = unsafe { libc::kill(srv.pid() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(srv.alive());
    ping(&srv);
}

/// Connects to the server from `from` (another loopback address).
fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // descriptor is handed to TcpStream, which closes it.
    unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let s = TcpStream::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes(from.octets());
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len),
            0
        );
        sa.sin_port = port.to_be();
        sa.sin_addr.s_addr = u32::from_ne_bytes(Ipv4Addr::LOCALHOST.octets());
        assert_eq!(
            libc::connect(fd, &sa as *const _ as *const libc::sockaddr, len),
            0
        );
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }
}

fn first_reply(from: Ipv4Addr, port: u16, send: &[u8]) -> Vec<u8> {
    let mut s = connect_from(from, port);
    let _ = s.write_all(send);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the peer closes or one whole line arrived and nothing more comes.
    while let Ok(k) = s.read(&mut buf) {
        if k == 0 {
            break;
        }
        out.extend_from_slice(&buf[..k]);
        if out.ends_with(b"\r\n") && !out.starts_with(b"-DENIED") {
            break;
        }
    }
    out
}

#[test]
fn protected_mode_refuses_peers_other_than_127_0_0_1() {
    let srv = Server::start_with(&["--bind", "127.0.0.1", "--protected-mode", "yes"]);
    let mut admin = srv.client();
    let remote = Ipv4Addr::new(127, 0, 0, 2);
    let denied = first_reply(remote, srv.port, b"PING\r\n");
    assert!(
        denied.starts_with(b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{}",
        String::from_utf8_lossy(&denied)
    );
    assert!(denied.ends_with(
        b"in order for the server to start accepting connections from the outside.\r\n"
    ));
    assert_eq!(info_field(&mut admin, "stats", "rejected_connections"), "1");
    // The refused peer is not counted as a connection (as in Redis).
    let received = info_field(&mut admin, "stats", "total_connections_received");

    // 127.0.0.1 itself is local.
    assert_eq!(
        first_reply(Ipv4Addr::LOCALHOST, srv.port, b"PING\r\n"),
        b"+PONG\r\n"
    );
    let after: u64 = info_field(&mut admin, "stats", "total_connections_received")
        .parse()
        .unwrap();
    assert_eq!(after, received.parse::<u64>().unwrap() + 1);

    // A password, or protected mode off, lets the remote peer in.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("protected-mode")
        .arg("no")
        .query(&mut admin)
        .unwrap();
    assert_eq!(first_reply(remote, srv.port, b"PING\r\n"), b"+PONG\r\n");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("protected-mode")
        .arg("yes")
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("secret")
        .query(&mut admin)
        .unwrap();
    assert_eq!(
        first_reply(remote, srv.port, b"PING\r\n"),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        first_reply(remote, srv.port, b"AUTH secret\r\nPING\r\n"),
        b"+OK\r\n+PONG\r\n"
    );
}

#[test]
fn auth_and_hello_auth_check_passwords() {
    let srv = Server::start_with(&["--requirepass", "s3cret"]);
    let mut r = srv.raw();
    let wrongpass = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    for bad in [&b"s3cre"[..], b"s3cret!", b"S3cret", b"", b"x"] {
        let reply = r.roundtrip(&resp(&[b"AUTH", bad]), wrongpass.len());
        assert_eq!(reply, wrongpass, "{}", String::from_utf8_lossy(bad));
    }
    let reply = r.roundtrip(&resp(&[b"AUTH", b"default", b"nope"]), wrongpass.len());
    assert_eq!(reply, wrongpass);
    let reply = r.roundtrip(
        &resp(&[b"HELLO", b"3", b"AUTH", b"default", b"s3cre"]),
        wrongpass.len(),
    );
    assert_eq!(reply, wrongpass);
    let noauth = b"-NOAUTH Authentication required.\r\n";
    assert_eq!(r.roundtrip(b"PING\r\n", noauth.len()), noauth);
    assert_eq!(r.roundtrip(&resp(&[b"AUTH", b"s3cret"]), 5), b"+OK\r\n");
    assert_eq!(r.roundtrip(b"PING\r\n", 7), b"+PONG\r\n");

    let mut h = srv.raw();
    let mut hello = resp(&[b"HELLO", b"3", b"AUTH", b"default", b"s3cret"]);
    hello.extend_from_slice(b"PING\r\n");
    h.send(&hello);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"+PONG\r\n") {
        let k = h.0.read(&mut buf).unwrap();
        assert!(k > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..k]);
    }
    assert!(
        got.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn running_out_of_descriptors_backs_off_and_logs_once_a_second() {
    let dir = std::env::temp_dir().join(format!("ferrokv-emfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("server.log");
    let _ = std::fs::remove_file(&log);
    let mut srv = Server::start_with(&["--logfile", log.to_str().unwrap()]);
    let mut admin = srv.client();
    let pid = srv.pid();
    // Room for one more connection only (the soft limit: raising it again
    // needs no privilege).
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    let mut was = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads a resource limit of the child process this test started.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut was,
        )
    };
    assert_eq!(rc, 0);
    let lim = libc::rlimit {
        rlim_cur: open + 1,
        rlim_max: was.rlim_max,
    };
    // SAFETY: sets a resource limit of the child process this test started.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0);
    let extra: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", srv.port)).unwrap())
        .collect();
    let cpu_before = cpu_time(pid);
    std::thread::sleep(Duration::from_millis(2500));
    let cpu = cpu_time(pid).checked_sub(cpu_before).unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut admin)
        .unwrap();
    assert!(srv.alive());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text
        .lines()
        .filter(|l| l.contains("Accepting client connection: accept: Too many open files"))
        .count();
    assert!((1..=4).contains(&lines), "{lines} accept warnings in 2.5 s");
    assert!(cpu < Duration::from_millis(500), "spun for {cpu:?}");
    // Once descriptors are free again the waiting connections are served.
    // SAFETY: as above.
    unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &was,
            std::ptr::null_mut(),
        )
    };
    for mut s in extra {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_connections_give_back_the_buffer_a_big_command_needed() {
    let srv = Server::start();
    let mut admin = srv.client();
    let used = |c: &mut redis::Connection| -> i64 { info_num(c, "memory", "used_memory") };
    let before = used(&mut admin);
    let value = vec![b'e'; 8 << 20];
    let mut idle = Vec::new();
    for _ in 0..16 {
        let mut c = srv.client();
        let echoed: Vec<u8> = redis::cmd("ECHO").arg(&value).query(&mut c).unwrap();
        assert_eq!(echoed.len(), value.len());
        idle.push(c);
    }
    let grown = used(&mut admin) - before;
    assert!(grown < 32 << 20, "16 idle clients hold {grown} bytes");
    // Idle for two seconds, a connection keeps no read buffer at all (as
    // Redis frees an idle client's query buffer).
    let mut c = srv.client();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("idler")
        .query(&mut c)
        .unwrap();
    let line = |admin: &mut redis::Connection| -> String {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
        list.lines()
            .find(|l| l.contains("name=idler"))
            .unwrap()
            .to_string()
    };
    assert!(line(&mut admin).contains(" qbuf=0 qbuf-free=16384 "));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(line(&mut admin).contains(" qbuf=0 qbuf-free=0 "));
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}
