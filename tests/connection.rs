//! Connection commands against the real binary: PING ECHO SELECT HELLO AUTH
//! RESET and the CLIENT subcommands, through the `redis` crate (RESP2) and
//! raw bytes where the exact reply or RESP3 matters.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, resp};

fn query<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn query_err(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(c) {
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// Sends one command and reads exactly the expected reply.
fn expect(raw: &mut Raw, args: &[&[u8]], reply: &[u8]) {
    let got = raw.roundtrip(&resp(args), reply.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(reply),
        "{args:?}"
    );
}

/// Reads one bulk (or verbatim) string reply from a raw connection.
fn read_bulk(raw: &mut Raw) -> Vec<u8> {
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n") {
        let b = raw.read_n(1);
        assert!(!b.is_empty(), "connection closed in a reply header");
        header.extend_from_slice(&b);
    }
    assert!(
        header[0] == b'$' || header[0] == b'=',
        "not a bulk: {header:?}"
    );
    let n: usize = std::str::from_utf8(&header[1..header.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    let mut body = raw.read_n(n + 2);
    body.truncate(n);
    body
}

/// Reads until the bytes received end with `suffix`.
fn read_until(raw: &mut Raw, suffix: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    while !got.ends_with(suffix) {
        let b = raw.read_n(1);
        assert!(
            !b.is_empty(),
            "closed after {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&b);
    }
    got
}

fn client_id(raw: &mut Raw) -> i64 {
    raw.send(&resp(&[b"CLIENT", b"ID"]));
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.extend_from_slice(&raw.read_n(1));
    }
    std::str::from_utf8(&line[1..line.len() - 2])
        .unwrap()
        .parse()
        .unwrap()
}

/// The HELLO map Redis 7.0.15 sends, for protocol `proto` and client `id`.
fn hello_reply(proto: u8, id: i64) -> Vec<u8> {
    let head: &[u8] = if proto == 3 { b"%7\r\n" } else { b"*14\r\n" };
    let mut v = head.to_vec();
    v.extend_from_slice(
        b"$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n",
    );
    v.extend_from_slice(format!(":{proto}\r\n$2\r\nid\r\n:{id}\r\n").as_bytes());
    v.extend_from_slice(
        b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    );
    v
}

/// `key=value` fields of a CLIENT LIST line.
fn fields(line: &str) -> Vec<(String, String)> {
    line.split(' ')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("bad field {kv:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn field(line: &str, key: &str) -> String {
    fields(line)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[test]
fn ping_echo_and_select() {
    let srv = common::Server::start();
    let mut c = srv.client();
    assert_eq!(query::<String>(&mut c, &["PING"]), "PONG");
    assert_eq!(query::<Vec<u8>>(&mut c, &["PING", "a\0b"]), b"a\0b");
    assert_eq!(query::<String>(&mut c, &["ECHO", "hello"]), "hello");
    assert!(query_err(&mut c, &["ECHO"]).contains("wrong number of arguments for 'echo' command"));

    let _: () = query(&mut c, &["SET", "k", "db0"]);
    let _: () = query(&mut c, &["SELECT", "3"]);
    assert_eq!(query::<Option<String>>(&mut c, &["GET", "k"]), None);
    let _: () = query(&mut c, &["SET", "k", "db3"]);
    let _: () = query(&mut c, &["SELECT", "0"]);
    assert_eq!(query::<String>(&mut c, &["GET", "k"]), "db0");

    let mut raw = srv.raw();
    expect(
        &mut raw,
        &[b"SELECT", b"16"],
        b"-ERR DB index is out of range\r\n",
    );
    expect(
        &mut raw,
        &[b"SELECT", b"-1"],
        b"-ERR DB index is out of range\r\n",
    );
    expect(
        &mut raw,
        &[b"SELECT", b"x"],
        b"-ERR value is not an integer or out of range\r\n",
    );
    expect(
        &mut raw,
        &[b"SELECT", b"4294967296"],
        b"-ERR value is out of range, value must between -2147483648 and 2147483647\r\n",
    );
    // CLIENT LIST reports the selected database.
    expect(&mut raw, &[b"SELECT", b"5"], b"+OK\r\n");
    raw.send(&resp(&[b"CLIENT", b"INFO"]));
    let info = String::from_utf8(read_bulk(&mut raw)).unwrap();
    assert_eq!(field(info.trim_end(), "db"), "5");
}

#[test]
fn hello_switches_protocol_and_reports_the_connection() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    let id = client_id(&mut raw);
    let reply = hello_reply(3, id);
    expect(&mut raw, &[b"HELLO", b"3"], &reply);
    // RESP3 from now on: the null name is `_`, CLIENT INFO is verbatim text.
    expect(&mut raw, &[b"CLIENT", b"GETNAME"], b"_\r\n");
    raw.send(&resp(&[b"CLIENT", b"INFO"]));
    let info = String::from_utf8(read_bulk(&mut raw)).unwrap();
    assert!(info.starts_with("txt:id="), "{info}");
    assert_eq!(
        field(info.trim_start_matches("txt:").trim_end(), "resp"),
        "3"
    );
    // HELLO without a version keeps the protocol; SETNAME names the client.
    let reply = hello_reply(3, id);
    expect(&mut raw, &[b"HELLO", b"3", b"SETNAME", b"me"], &reply);
    expect(&mut raw, &[b"CLIENT", b"GETNAME"], b"$2\r\nme\r\n");
    let reply = hello_reply(2, id);
    expect(&mut raw, &[b"HELLO", b"2"], &reply);
    expect(
        &mut raw,
        &[b"HELLO", b"4"],
        b"-NOPROTO unsupported protocol version\r\n",
    );
    expect(
        &mut raw,
        &[b"HELLO", b"x"],
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    expect(
        &mut raw,
        &[b"HELLO", b"3", b"AUTH", b"u"],
        b"-ERR Syntax error in HELLO option 'AUTH'\r\n",
    );
    // A bad option after SETNAME leaves the name set, as in Redis 7.0.
    expect(
        &mut raw,
        &[b"HELLO", b"3", b"SETNAME", b"other", b"BAD"],
        b"-ERR Syntax error in HELLO option 'BAD'\r\n",
    );
    expect(&mut raw, &[b"CLIENT", b"GETNAME"], b"$5\r\nother\r\n");
}

#[test]
fn auth_flows_with_requirepass() {
    let srv = common::Server::start_with(&["--requirepass", "s3cret"]);
    let mut raw = srv.raw();
    expect(
        &mut raw,
        &[b"PING"],
        b"-NOAUTH Authentication required.\r\n",
    );
    expect(
        &mut raw,
        &[b"CLIENT", b"ID"],
        b"-NOAUTH Authentication required.\r\n",
    );
    expect(
        &mut raw,
        &[b"AUTH", b"wrong"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    expect(
        &mut raw,
        &[b"AUTH", b"someone", b"s3cret"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    let noauth_hello: &[u8] = b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n";
    expect(&mut raw, &[b"HELLO", b"3"], noauth_hello);
    expect(&mut raw, &[b"AUTH", b"s3cret"], b"+OK\r\n");
    expect(&mut raw, &[b"PING"], b"+PONG\r\n");
    // RESET drops the authentication again.
    expect(&mut raw, &[b"RESET"], b"+RESET\r\n");
    expect(
        &mut raw,
        &[b"PING"],
        b"-NOAUTH Authentication required.\r\n",
    );
    expect(&mut raw, &[b"AUTH", b"default", b"s3cret"], b"+OK\r\n");
    expect(&mut raw, &[b"PING"], b"+PONG\r\n");

    // What redis-py sends first when a password is set: HELLO 3 AUTH default <pw>.
    let mut raw = srv.raw();
    raw.send(&resp(&[b"HELLO", b"3", b"AUTH", b"default", b"s3cret"]));
    let got = read_until(&mut raw, b"$7\r\nmodules\r\n*0\r\n");
    let id_at = got.windows(9).position(|w| w == b"$2\r\nid\r\n:").unwrap() + 9;
    let id_end = id_at + got[id_at..].iter().position(|&b| b == b'\r').unwrap();
    let id: i64 = std::str::from_utf8(&got[id_at..id_end])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&hello_reply(3, id))
    );
    expect(
        &mut raw,
        &[b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py"],
        b"+OK\r\n",
    );
    expect(
        &mut raw,
        &[b"CLIENT", b"SETINFO", b"LIB-VER", b"8.0.0"],
        b"+OK\r\n",
    );
    expect(&mut raw, &[b"PING"], b"+PONG\r\n");
    expect(
        &mut raw,
        &[b"HELLO", b"3", b"AUTH", b"default", b"nope"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );

    // The redis crate authenticates from the URL.
    let url = format!("redis://:s3cret@127.0.0.1:{}/", srv.port);
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    assert_eq!(query::<String>(&mut c, &["PING"]), "PONG");
}

#[test]
fn auth_without_a_password_configured() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    expect(
        &mut raw,
        &[b"AUTH", b"x"],
        b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    );
    expect(&mut raw, &[b"AUTH", b"default", b"anything"], b"+OK\r\n");
    expect(
        &mut raw,
        &[b"AUTH", b"a", b"b", b"c"],
        b"-ERR syntax error\r\n",
    );
}

#[test]
fn setname_getname_setinfo() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = query(&mut c, &["CLIENT", "SETNAME", "worker-1"]);
    assert_eq!(query::<String>(&mut c, &["CLIENT", "GETNAME"]), "worker-1");
    assert!(
        query_err(&mut c, &["CLIENT", "SETNAME", "a b"])
            .contains("Client names cannot contain spaces, newlines or special characters.")
    );
    let _: () = query(&mut c, &["CLIENT", "SETNAME", ""]);
    assert_eq!(
        query::<Option<String>>(&mut c, &["CLIENT", "GETNAME"]),
        None
    );

    let _: () = query(&mut c, &["CLIENT", "SETINFO", "lib-name", "mylib"]);
    let _: () = query(&mut c, &["CLIENT", "SETINFO", "LIB-VER", "1.2.3"]);
    let info: String = query(&mut c, &["CLIENT", "INFO"]);
    assert_eq!(field(info.trim_end(), "lib-name"), "mylib");
    assert_eq!(field(info.trim_end(), "lib-ver"), "1.2.3");
    assert!(
        query_err(&mut c, &["CLIENT", "SETINFO", "x", "y"]).contains("Unrecognized option 'x'")
    );
    assert!(
        query_err(&mut c, &["CLIENT", "SETINFO", "lib-name", "a b"])
            .contains("lib-name cannot contain spaces, newlines or special characters.")
    );

    // Unknown subcommands (redis-py 8's CLIENT MAINT_NOTIFICATIONS) fail
    // without closing the connection.
    let mut raw = srv.raw();
    expect(
        &mut raw,
        &[b"CLIENT", b"MAINT_NOTIFICATIONS", b"on"],
        b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n",
    );
    expect(&mut raw, &[b"PING"], b"+PONG\r\n");
}

#[test]
fn client_list_fields_and_filters() {
    let srv = common::Server::start();
    let mut a = srv.client();
    let mut b = srv.client();
    let _: () = query(&mut a, &["CLIENT", "SETNAME", "alpha"]);
    let a_id: i64 = query(&mut a, &["CLIENT", "ID"]);
    let b_id: i64 = query(&mut b, &["CLIENT", "ID"]);
    assert_ne!(a_id, b_id);

    let list: String = query(&mut b, &["CLIENT", "LIST"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let keys: Vec<String> = fields(lines[0]).into_iter().map(|(k, _)| k).collect();
    let expected = [
        "id",
        "addr",
        "laddr",
        "fd",
        "name",
        "age",
        "idle",
        "flags",
        "db",
        "sub",
        "psub",
        "ssub",
        "multi",
        "qbuf",
        "qbuf-free",
        "argv-mem",
        "multi-mem",
        "rbs",
        "rbp",
        "obl",
        "oll",
        "omem",
        "tot-mem",
        "events",
        "cmd",
        "user",
        "redir",
        "resp",
        "lib-name",
        "lib-ver",
    ];
    assert_eq!(keys, expected);
    let a_line = lines
        .iter()
        .find(|l| field(l, "id") == a_id.to_string())
        .unwrap();
    assert_eq!(field(a_line, "name"), "alpha");
    assert_eq!(field(a_line, "cmd"), "client|id");
    assert_eq!(field(a_line, "flags"), "N");
    let b_line = lines
        .iter()
        .find(|l| field(l, "id") == b_id.to_string())
        .unwrap();
    assert_eq!(field(b_line, "cmd"), "client|list");

    let one: String = query(
        &mut b,
        &["CLIENT", "LIST", "ID", &a_id.to_string(), "999999"],
    );
    assert_eq!(one.lines().count(), 1);
    assert_eq!(field(one.trim_end(), "name"), "alpha");
    let normal: String = query(&mut b, &["CLIENT", "LIST", "TYPE", "normal"]);
    assert_eq!(normal.lines().count(), 2);
    let pubsub: String = query(&mut b, &["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert_eq!(pubsub, "");
    assert!(
        query_err(&mut b, &["CLIENT", "LIST", "TYPE", "x"]).contains("Unknown client type 'x'")
    );
    assert!(query_err(&mut b, &["CLIENT", "LIST", "ID", "x"]).contains("Invalid client ID"));

    // NO-EVICT and NO-TOUCH show as flags.
    let _: () = query(&mut a, &["CLIENT", "NO-EVICT", "on"]);
    let _: () = query(&mut a, &["CLIENT", "NO-TOUCH", "on"]);
    let info: String = query(&mut a, &["CLIENT", "INFO"]);
    assert_eq!(field(info.trim_end(), "flags"), "eT");
}

/// Polls CLIENT LIST until `pred` holds (kills are asynchronous for the victim).
fn wait_list(c: &mut redis::Connection, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = query(c, &["CLIENT", "LIST"]);
        if pred(&list) || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_kill_between_connections() {
    let srv = common::Server::start();
    let mut killer = srv.client();

    // New form by id: the count of killed clients; the victim sees EOF.
    let mut victim = srv.raw();
    let victim_id = client_id(&mut victim);
    let n: i64 = query(
        &mut killer,
        &["CLIENT", "KILL", "ID", &victim_id.to_string()],
    );
    assert_eq!(n, 1);
    assert!(victim.is_closed());
    let list = wait_list(&mut killer, |l| l.lines().count() == 1);
    assert_eq!(list.lines().count(), 1, "{list}");

    // Old form by address: +OK, then `No such client` once gone.
    let mut victim = srv.raw();
    let addr = victim.0.local_addr().unwrap().to_string();
    expect(&mut victim, &[b"PING"], b"+PONG\r\n");
    let _: () = query(&mut killer, &["CLIENT", "KILL", &addr]);
    assert!(victim.is_closed());
    assert!(query_err(&mut killer, &["CLIENT", "KILL", &addr]).contains("No such client"));

    // SKIPME yes (the default) spares the caller; SKIPME no closes it after the reply.
    let mut me = srv.raw();
    let my_addr = me.0.local_addr().unwrap().to_string();
    expect(
        &mut me,
        &[b"CLIENT", b"KILL", b"ADDR", my_addr.as_bytes()],
        b":0\r\n",
    );
    expect(
        &mut me,
        &[
            b"CLIENT",
            b"KILL",
            b"ADDR",
            my_addr.as_bytes(),
            b"SKIPME",
            b"no",
        ],
        b":1\r\n",
    );
    assert!(me.is_closed());

    // Filters combine; errors match Redis.
    let mut other = srv.raw();
    expect(&mut other, &[b"PING"], b"+PONG\r\n");
    let killed: i64 = query(
        &mut killer,
        &["CLIENT", "KILL", "TYPE", "normal", "USER", "default"],
    );
    assert!(killed >= 1);
    assert!(
        query_err(&mut killer, &["CLIENT", "KILL", "ID", "0"])
            .contains("client-id should be greater than 0")
    );
    assert!(
        query_err(&mut killer, &["CLIENT", "KILL", "USER", "bob"]).contains("No such user 'bob'")
    );
    assert!(
        query_err(&mut killer, &["CLIENT", "KILL", "TYPE", "x"])
            .contains("Unknown client type 'x'")
    );
    assert_eq!(query::<String>(&mut killer, &["PING"]), "PONG");
}

#[test]
fn client_reply_off_skip_on() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    // OFF: nothing at all until ON, whose +OK is sent.
    raw.send(&resp(&[b"CLIENT", b"REPLY", b"OFF"]));
    raw.send(&resp(&[b"PING"]));
    raw.send(&resp(&[b"SET", b"k", b"v"]));
    raw.send(&resp(&[b"CLIENT", b"REPLY", b"ON"]));
    assert_eq!(raw.read_n(5), b"+OK\r\n");
    expect(&mut raw, &[b"GET", b"k"], b"$1\r\nv\r\n");
    // SKIP: its own reply and the next command's are dropped.
    raw.send(&resp(&[b"CLIENT", b"REPLY", b"SKIP"]));
    raw.send(&resp(&[b"ECHO", b"skipped"]));
    raw.send(&resp(&[b"ECHO", b"seen"]));
    assert_eq!(raw.read_n(10), b"$4\r\nseen\r\n");
    // Errors are dropped too while OFF.
    raw.send(&resp(&[b"CLIENT", b"REPLY", b"OFF"]));
    raw.send(&resp(&[b"NOSUCHCOMMAND"]));
    raw.send(&resp(&[b"CLIENT", b"REPLY", b"ON"]));
    assert_eq!(raw.read_n(5), b"+OK\r\n");
    expect(
        &mut raw,
        &[b"CLIENT", b"REPLY", b"MAYBE"],
        b"-ERR syntax error\r\n",
    );
}

#[test]
fn reset_restores_a_fresh_connection() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    let id = client_id(&mut raw);
    expect(&mut raw, &[b"SELECT", b"4"], b"+OK\r\n");
    expect(&mut raw, &[b"CLIENT", b"SETNAME", b"n"], b"+OK\r\n");
    expect(&mut raw, &[b"CLIENT", b"NO-EVICT", b"ON"], b"+OK\r\n");
    let reply = hello_reply(3, id);
    expect(&mut raw, &[b"HELLO", b"3"], &reply);
    expect(&mut raw, &[b"RESET"], b"+RESET\r\n");
    expect(&mut raw, &[b"CLIENT", b"GETNAME"], b"$-1\r\n");
    raw.send(&resp(&[b"CLIENT", b"INFO"]));
    let info = String::from_utf8(read_bulk(&mut raw)).unwrap();
    let info = info.trim_end();
    assert_eq!(field(info, "db"), "0");
    assert_eq!(field(info, "resp"), "2");
    assert_eq!(field(info, "flags"), "N");
    assert_eq!(
        field(info, "id"),
        id.to_string(),
        "RESET keeps the connection id"
    );
}

#[test]
fn quit_replies_then_closes() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    raw.send(&resp(&[b"QUIT"]));
    raw.send(&resp(&[b"PING"]));
    assert_eq!(raw.read_to_close(), b"+OK\r\n");
}

#[test]
fn client_help_is_an_array_of_status_lines() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let help: Vec<String> = query(&mut c, &["CLIENT", "HELP"]);
    assert!(help[0].starts_with("CLIENT <subcommand>"));
    for sub in [
        "GETNAME", "ID", "INFO", "KILL", "LIST", "REPLY", "SETNAME", "SETINFO", "HELP",
    ] {
        assert!(
            help.iter().any(|l| l.starts_with(sub)),
            "{sub} missing from CLIENT HELP"
        );
    }
}

/// Connections accepted in one burst, before their worker registered any of
/// them, each hold a place under `maxclients`: the limit is the limit, not
/// "the clients registered so far" (redis-benchmark -I against maxclients 5
/// waited forever with all its connections admitted).
#[test]
fn a_burst_of_connections_cannot_pass_maxclients() {
    let srv = common::Server::start_pinned(&["--enable-debug-command", "yes"]);
    let mut admin = srv.raw();
    expect(
        &mut admin,
        &[b"CONFIG", b"SET", b"maxclients", b"5"],
        b"+OK\r\n",
    );
    // The start-up probe's connection is gone: the admin is the only client.
    common::wait_for("one client", || {
        admin.send(&resp(&[b"CLIENT", b"LIST"]));
        read_bulk(&mut admin)
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            == 1
    });
    // The only worker sleeps, so the connections below wait in the listen
    // backlog and its accept loop takes them in one burst when it wakes.
    admin.send(&resp(&[b"DEBUG", b"SLEEP", b"0.5"]));
    std::thread::sleep(Duration::from_millis(100));
    let mut conns: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap())
        .collect();
    assert_eq!(admin.read_line(), "+OK\r\n");
    let refusal = b"-ERR max number of clients reached\r\n";
    let mut admitted = 0;
    for c in &mut conns {
        use std::io::Read;
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut got = Vec::new();
        match c.read_to_end(&mut got) {
            Ok(_) => assert_eq!(got, refusal),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(got.is_empty(), "{got:?}");
                admitted += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(admitted, 4, "maxclients 5 with the admin connection");
    admin.send(&resp(&[b"CLIENT", b"LIST"]));
    let list = String::from_utf8(read_bulk(&mut admin)).unwrap();
    assert_eq!(list.lines().count(), 5, "{list}");
}
