//! Keyspace events come from the operations that change keys (issue 9):
//! what a handler did, not what its arguments look like. And a served
//! BLMOVE moves under both keys' locks or not at all.

mod common;

use common::{Server, keyevent_subscriber, read_pmessages};
use ferrokv::blocking::{self, Outcome};
use ferrokv::store::Locks;
use ferrokv::testkit::Harness;

fn events(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(event, key)| (format!("__keyevent@0__:{event}"), key.to_string()))
        .collect()
}

/// Keys named like options (`left`, `min`, a member named `incr`) do not
/// change which event a pop or an add announces.
#[test]
fn events_name_what_the_command_did_not_its_argument_lookalikes() {
    let srv = Server::start_with(&["--notify-keyspace-events", "KEA"]);
    let mut sub = keyevent_subscriber(&srv);
    let mut c = srv.client();
    let script: &[&[&str]] = &[
        &["RPUSH", "left", "a", "b"],
        &["LMPOP", "1", "left", "RIGHT"],
        &["ZADD", "z", "1", "incr"],
        &["ZADD", "min", "1", "a", "2", "b"],
        &["ZMPOP", "1", "min", "MAX"],
        &["SADD", "s", "m"],
        &["SADD", "d", "m"],
        // The member is already in the destination: only the source hears.
        &["SMOVE", "s", "d", "m"],
    ];
    for args in script {
        let _: redis::Value = redis::cmd(args[0]).arg(&args[1..]).query(&mut c).unwrap();
    }
    let want = events(&[
        ("rpush", "left"),
        ("rpop", "left"),
        ("zadd", "z"),
        ("zadd", "min"),
        ("zpopmax", "min"),
        ("sadd", "s"),
        ("sadd", "d"),
        ("srem", "s"),
        ("del", "s"),
    ]);
    assert_eq!(read_pmessages(&mut sub, want.len()), want);
}

fn served_reply(outcome: Outcome) -> String {
    match outcome {
        Outcome::Served(s) => String::from_utf8_lossy(&s.reply).into_owned(),
        _ => panic!("the waiter was not served"),
    }
}

/// BRPOPLPUSH blist target 0 with target a string, then RPUSH blist foo:
/// the blocked client gets WRONGTYPE, foo stays in blist, and no move is
/// published.
#[test]
fn a_served_move_into_a_wrong_type_destination_answers_wrongtype_and_moves_nothing() {
    let mut h = Harness::new();
    h.run(&["SET", "target", "str"]);
    assert_eq!(h.run(&["BRPOPLPUSH", "blist", "target", "0"]), "");
    let blocked = h.client.blocked.take().expect("the client blocks");
    h.take_effects();
    assert_eq!(h.run(&["RPUSH", "blist", "foo"]), ":1\r\n");
    assert_eq!(
        served_reply(blocked.waiter.finish(Outcome::TimedOut)),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(h.take_effects(), ["0: RPUSH blist foo"]);
    assert_eq!(
        h.run(&["LRANGE", "blist", "0", "-1"]),
        "*1\r\n$3\r\nfoo\r\n"
    );
    assert_eq!(h.run(&["GET", "target"]), "$3\r\nstr\r\n");
}

/// A BLMOVE waiter whose destination's shard is busy when its source is
/// pushed to: nothing is popped or published then, and the BLPOP queued
/// behind it waits its turn; woken, the waiter does the whole move itself
/// holding both shards, then the BLPOP is served.
#[test]
fn a_move_whose_destination_is_busy_waits_for_the_waiter_to_serve_itself() {
    let mut h = Harness::new();
    let ks = &h.srv.ks;
    let mut other = Locks::default();
    other
        .lock_keys(ks, 0, [b"dst".as_slice()])
        .expect("an empty Locks waits");
    let src = (0..10_000)
        .map(|i| format!("src{i}"))
        .find(|k| !other.holds(ks, 0, k.as_bytes()))
        .unwrap();
    other.release();
    assert_eq!(h.run(&["BLMOVE", &src, "dst", "LEFT", "RIGHT", "0"]), "");
    let blocked = h.client.blocked.take().expect("the client blocks");
    assert_eq!(h.run(&["BLPOP", &src, "0"]), "");
    let behind = h.client.blocked.take().expect("the client blocks");
    h.take_effects();

    other
        .lock_keys(ks, 0, [b"dst".as_slice()])
        .expect("an empty Locks waits");
    assert_eq!(h.run(&["RPUSH", &src, "a", "b"]), ":2\r\n");
    assert_eq!(h.take_effects(), [format!("0: RPUSH {src} a b")]);
    assert!(blocked.waiter.is_waiting());
    assert!(behind.waiter.is_waiting(), "first come, first served");
    assert!(blocked.waiter.take_retry(), "the waiter is woken to retry");
    other.release();
    assert_eq!(h.run(&["LLEN", &src]), ":2\r\n");

    blocking::serve_self(ks, &mut h.locks, &blocked.waiter, ferrokv::server::now_ms());
    assert_eq!(
        h.take_effects(),
        [
            format!("0: LMOVE {src} dst LEFT RIGHT"),
            format!("0: LPOP {src}")
        ]
    );
    assert_eq!(
        served_reply(blocked.waiter.finish(Outcome::TimedOut)),
        "$1\r\na\r\n"
    );
    assert_eq!(
        served_reply(behind.waiter.finish(Outcome::TimedOut)),
        format!("*2\r\n${}\r\n{src}\r\n$1\r\nb\r\n", src.len())
    );
    assert_eq!(h.run(&["LRANGE", "dst", "0", "-1"]), "*1\r\n$1\r\na\r\n");
    assert_eq!(h.run(&["EXISTS", &src]), ":0\r\n");
}

/// The (event, key) pairs of the keyevent messages the subscribed client
/// got with a reply.
fn pushed_events(reply: &str) -> Vec<(String, String)> {
    reply
        .split("pmessage\r\n")
        .skip(1)
        .filter_map(|m| {
            let parts: Vec<&str> = m.split("\r\n").collect();
            let event = parts.get(3)?.strip_prefix("__keyevent@0__:")?;
            Some((event.to_string(), parts.get(5)?.to_string()))
        })
        .collect()
}

/// Keys a command finds expired are announced where the lookup happened,
/// among the command's own events (as Redis 7.0.15 orders them).
#[test]
fn lazy_expiry_events_fall_between_the_commands_own_events() {
    let mut h = Harness::new();
    h.resp3 = true;
    h.run(&["CONFIG", "SET", "notify-keyspace-events", "KEAnm"]);
    h.run(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    h.now_ms = Some(1_000);
    for key in ["b", "d", "g"] {
        h.run(&["SET", key, "v", "PX", "100"]);
    }
    h.now_ms = Some(2_000);
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(e, k)| (e.to_string(), k.to_string()))
            .collect()
    };
    assert_eq!(
        pushed_events(&h.run(&["MSET", "a", "1", "b", "2", "c", "3"])),
        pairs(&[
            ("new", "a"),
            ("set", "a"),
            ("expired", "b"),
            ("new", "b"),
            ("set", "b"),
            ("new", "c"),
            ("set", "c"),
        ])
    );
    assert_eq!(
        pushed_events(&h.run(&["DEL", "a", "d"])),
        pairs(&[("del", "a"), ("expired", "d")])
    );
    assert_eq!(
        pushed_events(&h.run(&["GET", "g"])),
        pairs(&[("expired", "g"), ("keymiss", "g")])
    );
}
