//! CLIENT TRACKING (server-assisted client-side caching) through raw RESP2
//! and RESP3 connections: the bytes are the ones Redis 7.0.15 sends.

mod common;

use common::{Raw, Server, resp};
use std::time::Duration;

fn send(r: &mut Raw, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    r.send(&resp(&a));
}

/// Sends a command and checks the exact bytes that come back.
fn expect(r: &mut Raw, args: &[&str], want: &[u8]) {
    send(r, args);
    got(r, want);
}

/// Checks the next bytes on the connection.
fn got(r: &mut Raw, want: &[u8]) {
    let g = r.read_n(want.len());
    assert_eq!(
        String::from_utf8_lossy(&g),
        String::from_utf8_lossy(want),
        "unexpected bytes"
    );
}

/// Nothing else is pending: the next reply is PONG's.
fn nothing_pending(r: &mut Raw) {
    expect(r, &["PING"], b"+PONG\r\n");
}

fn hello3(r: &mut Raw) {
    send(r, &["HELLO", "3"]);
    // The map ends with the empty `modules` array.
    let mut all = Vec::new();
    while !all.ends_with(b"$7\r\nmodules\r\n*0\r\n") {
        let b = r.read_n(1);
        assert!(!b.is_empty(), "HELLO 3 reply cut short");
        all.extend_from_slice(&b);
    }
}

fn client_id(r: &mut Raw) -> String {
    send(r, &["CLIENT", "ID"]);
    let mut all = Vec::new();
    while !all.ends_with(b"\r\n") {
        all.extend_from_slice(&r.read_n(1));
    }
    String::from_utf8_lossy(&all[1..all.len() - 2]).into_owned()
}

fn push_keys(keys: &[&str]) -> Vec<u8> {
    let mut v = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        v.extend_from_slice(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    v
}

fn message_keys(keys: &[&str]) -> Vec<u8> {
    let mut v = format!(
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*{}\r\n",
        keys.len()
    )
    .into_bytes();
    for k in keys {
        v.extend_from_slice(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    v
}

/// A RESP2 client subscribed to `__redis__:invalidate`, and its id.
fn redirect_target(srv: &Server) -> (Raw, String) {
    let mut r = srv.raw();
    let id = client_id(&mut r);
    expect(
        &mut r,
        &["SUBSCRIBE", "__redis__:invalidate"],
        b"*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
    );
    (r, id)
}

#[test]
fn default_mode_pushes_once_per_read_key_and_after_own_replies() {
    let srv = Server::start();
    let (mut a, mut b) = (srv.raw(), srv.raw());
    hello3(&mut a);
    expect(&mut a, &["CLIENT", "TRACKING", "on"], b"+OK\r\n");
    expect(&mut b, &["SET", "k", "1"], b"+OK\r\n");
    expect(&mut b, &["SET", "other", "1"], b"+OK\r\n");
    expect(&mut a, &["GET", "k"], b"$1\r\n1\r\n");
    expect(&mut b, &["SET", "other", "2"], b"+OK\r\n");
    expect(&mut b, &["SET", "k", "2"], b"+OK\r\n");
    // Pushed without the client asking anything.
    got(&mut a, &push_keys(&["k"]));
    // Forgotten once sent: a second change is not sent.
    expect(&mut b, &["SET", "k", "3"], b"+OK\r\n");
    nothing_pending(&mut a);

    // The client's own write: the push follows the reply.
    expect(&mut a, &["HSET", "h", "f", "1"], b":1\r\n");
    expect(&mut a, &["HGET", "h", "f"], b"$1\r\n1\r\n");
    expect(&mut a, &["HDEL", "h", "f"], b":1\r\n");
    got(&mut a, &push_keys(&["h"]));

    // Not inside a transaction's reply either.
    expect(&mut a, &["MSET", "x", "1", "y", "2"], b"+OK\r\n");
    expect(&mut a, &["GET", "x"], b"$1\r\n1\r\n");
    expect(&mut a, &["MULTI"], b"+OK\r\n");
    expect(&mut a, &["INCR", "x"], b"+QUEUED\r\n");
    expect(&mut a, &["GET", "y"], b"+QUEUED\r\n");
    expect(&mut a, &["EXEC"], b"*2\r\n:2\r\n$1\r\n2\r\n");
    got(&mut a, &push_keys(&["x"]));
    nothing_pending(&mut a);

    // INFO and CLIENT LIST show it.
    let info: String = redis::cmd("INFO").query(&mut srv.client()).unwrap();
    assert!(info.contains("tracking_clients:1\r\n"), "{info}");
    assert!(info.contains("tracking_total_keys:1\r\n"), "{info}");
    assert!(info.contains("tracking_total_prefixes:0\r\n"), "{info}");
}

#[test]
fn redirect_to_a_resp2_subscriber_and_flush() {
    let srv = Server::start();
    let (mut r, rid) = redirect_target(&srv);
    let (mut c, mut w) = (srv.raw(), srv.raw());
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "REDIRECT", &rid],
        b"+OK\r\n",
    );
    expect(
        &mut c,
        &["CLIENT", "GETREDIR"],
        format!(":{rid}\r\n").as_bytes(),
    );
    expect(&mut c, &["MGET", "a", "b"], b"*2\r\n$-1\r\n$-1\r\n");
    expect(&mut w, &["SET", "b", "1"], b"+OK\r\n");
    got(&mut r, &message_keys(&["b"]));
    // FLUSHALL: one message with a null instead of keys, to every
    // tracking client, whether it read anything or not.
    expect(&mut w, &["FLUSHALL"], b"+OK\r\n");
    got(
        &mut r,
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n",
    );
    // The table was emptied: `a` is no longer tracked.
    expect(&mut w, &["SET", "a", "1"], b"+OK\r\n");
    expect(&mut r, &["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");

    // A RESP3 client flushing in a transaction gets `_` after EXEC's reply.
    let mut t = srv.raw();
    hello3(&mut t);
    expect(&mut t, &["CLIENT", "TRACKING", "on"], b"+OK\r\n");
    expect(&mut t, &["MULTI"], b"+OK\r\n");
    expect(&mut t, &["FLUSHDB"], b"+QUEUED\r\n");
    expect(&mut t, &["EXEC"], b"*1\r\n+OK\r\n");
    got(&mut t, b">2\r\n$10\r\ninvalidate\r\n_\r\n");
}

#[test]
fn redirect_target_gone_is_reported_to_resp3_clients() {
    let srv = Server::start();
    let (mut r, rid) = redirect_target(&srv);
    let (mut c, mut w) = (srv.raw(), srv.raw());
    hello3(&mut c);
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "REDIRECT", &rid],
        b"+OK\r\n",
    );
    expect(&mut c, &["GET", "k"], b"_\r\n");
    expect(&mut r, &["QUIT"], b"+OK\r\n");
    assert!(r.is_closed());
    // Closing is not instant on the server side; the id disappears soon.
    std::thread::sleep(Duration::from_millis(100));
    expect(&mut w, &["SET", "k", "1"], b"+OK\r\n");
    got(
        &mut c,
        format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{rid}\r\n").as_bytes(),
    );
    send(&mut c, &["CLIENT", "INFO"]);
    // A verbatim string: `=<len>\r\ntxt:` and the line.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n") {
        head.extend_from_slice(&c.read_n(1));
    }
    let len: usize = String::from_utf8_lossy(&head[1..head.len() - 2])
        .parse()
        .unwrap();
    let line = String::from_utf8_lossy(&c.read_n(len + 2)).into_owned();
    assert!(line.contains(" flags=tR "), "{line}");
    assert!(line.contains(&format!(" redir={rid} ")), "{line}");
}

#[test]
fn bcast_prefixes_batch_per_prefix_after_the_command() {
    let srv = Server::start();
    let (mut r, rid) = redirect_target(&srv);
    let mut c = srv.raw();
    expect(
        &mut c,
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", &rid, "PREFIX", "a:", "PREFIX", "b:",
        ],
        b"+OK\r\n",
    );
    expect(&mut c, &["MULTI"], b"+OK\r\n");
    for k in ["a:2", "a:1", "b:1", "c:1", "a:1"] {
        expect(&mut c, &["INCR", k], b"+QUEUED\r\n");
    }
    expect(&mut c, &["EXEC"], b"*5\r\n:1\r\n:1\r\n:1\r\n:1\r\n:2\r\n");
    got(&mut r, &message_keys(&["a:1", "a:2"]));
    got(&mut r, &message_keys(&["b:1"]));
    // More prefixes can be added; overlapping ones are refused.
    expect(
        &mut c,
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", &rid, "PREFIX", "c:",
        ],
        b"+OK\r\n",
    );
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a"],
        b"-ERR Prefix 'a' overlaps with an existing prefix 'a:'. Prefixes for a single client must not overlap.\r\n",
    );
    expect(&mut c, &["SET", "c:9", "x"], b"+OK\r\n");
    got(&mut r, &message_keys(&["c:9"]));
    send(&mut c, &["CLIENT", "TRACKINGINFO"]);
    got(
        &mut c,
        format!(
            "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:{rid}\r\n\
             $8\r\nprefixes\r\n*3\r\n$2\r\na:\r\n$2\r\nb:\r\n$2\r\nc:\r\n"
        )
        .as_bytes(),
    );
}

#[test]
fn noloop_skips_own_changes_but_not_expiry() {
    let srv = Server::start();
    let (mut r, rid) = redirect_target(&srv);
    let (mut c, mut w) = (srv.raw(), srv.raw());
    // Default mode.
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "REDIRECT", &rid, "NOLOOP"],
        b"+OK\r\n",
    );
    expect(&mut c, &["MGET", "mine", "theirs"], b"*2\r\n$-1\r\n$-1\r\n");
    expect(&mut c, &["SET", "mine", "1"], b"+OK\r\n");
    expect(&mut w, &["SET", "theirs", "1"], b"+OK\r\n");
    got(&mut r, &message_keys(&["theirs"]));
    // BCAST: a key this client set that then expires is sent (nobody
    // changed it but the clock).
    expect(&mut c, &["CLIENT", "TRACKING", "off"], b"+OK\r\n");
    expect(
        &mut c,
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", &rid, "NOLOOP",
        ],
        b"+OK\r\n",
    );
    expect(&mut c, &["SET", "soon", "v", "PX", "1"], b"+OK\r\n");
    expect(&mut c, &["SET", "kept", "v"], b"+OK\r\n");
    got(&mut r, &message_keys(&["soon"]));
    expect(&mut r, &["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

#[test]
fn optin_and_optout_follow_client_caching() {
    let srv = Server::start();
    let (mut r, rid) = redirect_target(&srv);
    let (mut c, mut w) = (srv.raw(), srv.raw());
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "OPTIN", "REDIRECT", &rid],
        b"+OK\r\n",
    );
    expect(&mut c, &["GET", "skipped"], b"$-1\r\n");
    expect(&mut c, &["CLIENT", "CACHING", "yes"], b"+OK\r\n");
    expect(&mut c, &["GET", "cached"], b"$-1\r\n");
    // Only for one command.
    expect(&mut c, &["GET", "skipped2"], b"$-1\r\n");
    for k in ["skipped", "skipped2", "cached"] {
        expect(&mut w, &["SET", k, "1"], b"+OK\r\n");
    }
    got(&mut r, &message_keys(&["cached"]));

    expect(&mut c, &["CLIENT", "TRACKING", "off"], b"+OK\r\n");
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "OPTOUT", "REDIRECT", &rid],
        b"+OK\r\n",
    );
    expect(&mut c, &["CLIENT", "CACHING", "no"], b"+OK\r\n");
    expect(&mut c, &["GET", "skipped"], b"$1\r\n1\r\n");
    expect(&mut c, &["GET", "cached"], b"$1\r\n1\r\n");
    expect(&mut w, &["DEL", "skipped", "cached"], b":2\r\n");
    got(&mut r, &message_keys(&["cached"]));
    expect(
        &mut c,
        &["CLIENT", "CACHING", "yes"],
        b"-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n",
    );
}

#[test]
fn scripts_track_their_declared_keys_once_they_read() {
    let srv = Server::start();
    let (mut c, mut w) = (srv.raw(), srv.raw());
    hello3(&mut c);
    expect(&mut c, &["CLIENT", "TRACKING", "on"], b"+OK\r\n");
    expect(
        &mut c,
        &["EVAL", "redis.call('set', 'k3', 'x')", "2", "k1", "k2"],
        b"_\r\n",
    );
    expect(&mut w, &["MSET", "k2", "1", "k1", "1"], b"+OK\r\n");
    nothing_pending(&mut c);
    expect(
        &mut c,
        &["EVAL", "redis.call('get', 'k3')", "2", "k1", "k2"],
        b"_\r\n",
    );
    expect(&mut w, &["MSET", "k2", "2", "k1", "2"], b"+OK\r\n");
    got(&mut c, &push_keys(&["k2"]));
    got(&mut c, &push_keys(&["k1"]));
}

#[test]
fn table_limit_evicts_with_invalidations() {
    let srv = Server::start();
    let (mut r, rid) = redirect_target(&srv);
    let (mut c, mut w) = (srv.raw(), srv.raw());
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "REDIRECT", &rid],
        b"+OK\r\n",
    );
    expect(
        &mut c,
        &["MGET", "k1", "k2", "k3"],
        b"*3\r\n$-1\r\n$-1\r\n$-1\r\n",
    );
    expect(
        &mut w,
        &["CONFIG", "SET", "tracking-table-max-keys", "1"],
        b"+OK\r\n",
    );
    // Two of the three go (on the next command or the cron), one message each.
    let one = message_keys(&["k1"]).len();
    let got2 = r.read_n(2 * one);
    assert_eq!(got2.len(), 2 * one, "{}", String::from_utf8_lossy(&got2));
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut srv.client())
        .unwrap();
    assert!(info.contains("tracking_total_keys:1\r\n"), "{info}");
    assert!(info.contains("tracking_total_items:1\r\n"), "{info}");
}

#[test]
fn errors_match_redis() {
    let srv = Server::start();
    let mut c = srv.raw();
    for (args, err) in [
        (
            &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"][..],
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ),
        (
            &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ),
        (
            &["CLIENT", "TRACKING", "on", "PREFIX", "a"],
            "ERR PREFIX option requires BCAST mode to be enabled",
        ),
        (
            &["CLIENT", "TRACKING", "on", "REDIRECT", "9999"],
            "ERR The client ID you want redirect to does not exist",
        ),
        (
            &["CLIENT", "TRACKING", "on", "REDIRECT", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["CLIENT", "TRACKING", "maybe"], "ERR syntax error"),
        (&["CLIENT", "TRACKING", "on", "foo"], "ERR syntax error"),
        (
            &["CLIENT", "CACHING", "yes"],
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ),
        (
            &[
                "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "FOO", "PREFIX", "FOOBAR",
            ],
            "ERR Prefix 'FOO' overlaps with another provided prefix 'FOOBAR'. Prefixes for a single client must not overlap.",
        ),
    ] {
        expect(&mut c, args, format!("-{err}\r\n").as_bytes());
    }
    expect(&mut c, &["CLIENT", "GETREDIR"], b":-1\r\n");
    expect(&mut c, &["CLIENT", "TRACKING", "on"], b"+OK\r\n");
    expect(&mut c, &["CLIENT", "GETREDIR"], b":0\r\n");
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "BCAST"],
        b"-ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.\r\n",
    );
    expect(&mut c, &["CLIENT", "TRACKING", "on", "OPTIN"], b"+OK\r\n");
    expect(
        &mut c,
        &["CLIENT", "TRACKING", "on", "OPTOUT"],
        b"-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n",
    );
    expect(&mut c, &["RESET"], b"+RESET\r\n");
    expect(&mut c, &["CLIENT", "GETREDIR"], b":-1\r\n");
}

#[test]
fn served_blmove_gets_its_invalidation_after_the_element() {
    let srv = Server::start();
    let (mut c, mut w) = (srv.raw(), srv.raw());
    hello3(&mut c);
    expect(&mut c, &["CLIENT", "TRACKING", "on"], b"+OK\r\n");
    expect(&mut w, &["RPUSH", "dst", "a"], b":1\r\n");
    expect(&mut c, &["LRANGE", "dst", "0", "-1"], b"*1\r\n$1\r\na\r\n");
    send(&mut c, &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]);
    let mut probe = srv.client();
    common::wait_blocked(&mut probe, 1);
    expect(&mut w, &["RPUSH", "src", "foo"], b":1\r\n");
    got(&mut c, b"$3\r\nfoo\r\n");
    got(&mut c, &push_keys(&["dst"]));
    nothing_pending(&mut c);
}
