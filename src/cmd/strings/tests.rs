//! In-process checks of what the string commands publish as their write
//! effect and how they count keyspace hits: neither is visible on the wire.

use crate::store::{Locks, Object, ValueRef};

/// The shared in-process harness, driven with space-separated lines.
struct Harness {
    inner: crate::testkit::Harness,
    srv: &'static crate::server::Server,
}

impl std::ops::Deref for Harness {
    type Target = crate::testkit::Harness;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Harness {
    fn new() -> Harness {
        let inner = crate::testkit::Harness::new();
        let srv = inner.srv;
        Harness { inner, srv }
    }

    /// Runs one command (words split on spaces) and returns its reply.
    fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split(' ').collect();
        self.inner.run(&words)
    }

    /// The effects published since the last call, without the db prefix.
    fn effects(&self) -> Vec<String> {
        let all = self.inner.take_effects();
        all.into_iter()
            .map(|e| e.split_once(": ").map(|(_, r)| r.to_string()).unwrap_or(e))
            .collect()
    }
}

#[test]
fn set_with_a_relative_expiry_is_replayed_with_an_absolute_deadline() {
    let mut h = Harness::new();
    let before = crate::server::now_ms();
    assert_eq!(h.run("SET k v EX 100"), "+OK\r\n");
    let after = crate::server::now_ms();
    let e = h.effects();
    assert_eq!(e.len(), 1);
    let parts: Vec<&str> = e[0].split(' ').collect();
    assert_eq!(&parts[..4], ["SET", "k", "v", "PXAT"]);
    let at: i64 = parts[4].parse().unwrap();
    assert!((before + 100_000..=after + 100_000).contains(&at), "{at}");
    h.run("PSETEX k 5000 v");
    assert!(h.effects()[0].starts_with("SET k v PXAT "));
    h.run("SET k v EXAT 99999999999");
    assert_eq!(h.effects(), ["SET k v PXAT 99999999999000"]);
}

#[test]
fn set_get_is_replayed_without_get() {
    let mut h = Harness::new();
    h.run("SET k v get NX GET");
    assert_eq!(h.effects(), ["SET k v NX"]);
    // Nothing changed: nothing is published.
    assert_eq!(h.run("SET k w NX GET"), "$1\r\nv\r\n");
    assert_eq!(h.run("SET k w XX nx"), "-ERR syntax error\r\n");
    assert_eq!(h.run("SETNX k w"), ":0\r\n");
    assert!(h.effects().is_empty());
    h.run("SET k w KEEPTTL");
    assert_eq!(h.effects(), ["SET k w KEEPTTL"]);
}

#[test]
fn rewritten_effects() {
    let mut h = Harness::new();
    h.run("GETSET k v");
    h.run("GETDEL k");
    h.run("GETDEL k");
    assert_eq!(h.effects(), ["SET k v", "DEL k"]);
    h.run("SET k 1");
    h.effects();
    h.run("GETEX k");
    h.run("GETEX k PERSIST");
    assert!(h.effects().is_empty());
    h.run("GETEX k PXAT 99999999999999");
    h.run("GETEX k PERSIST");
    h.run("GETEX k EXAT 1");
    assert_eq!(
        h.effects(),
        ["PEXPIREAT k 99999999999999", "PERSIST k", "DEL k"]
    );
    h.run("INCRBYFLOAT f 1.5");
    h.run("INCRBYFLOAT f 1e400x");
    assert_eq!(h.effects(), ["SET f 1.5 KEEPTTL"]);
    h.run("APPEND a x");
    h.run("SETRANGE a 0 ");
    h.run("SETRANGE b 3 ");
    h.run("SETRANGE a 0 y");
    h.run("INCRBY n 3");
    h.run("MSETNX n 1 m 2");
    h.run("MSETNX m 1 o 2");
    h.run("MSET m 1 o 2");
    assert_eq!(
        h.effects(),
        [
            "APPEND a x",
            "SETRANGE a 0 y",
            "INCRBY n 3",
            "MSETNX m 1 o 2",
            "MSET m 1 o 2"
        ]
    );
}

#[test]
fn reads_count_hits_and_misses() {
    let mut h = Harness::new();
    h.run("MSET a 1 b 2");
    let counts = |h: &Harness| (h.stats.keyspace_hits.get(), h.stats.keyspace_misses.get());
    assert_eq!(counts(&h), (0, 0));
    h.run("GET a");
    h.run("GET zz");
    assert_eq!(counts(&h), (1, 1));
    h.run("MGET a b zz");
    assert_eq!(counts(&h), (3, 2));
    h.run("STRLEN a");
    h.run("GETRANGE zz 0 1");
    h.run("LCS a zz");
    assert_eq!(counts(&h), (5, 4));
    // Writes do not count, except SET ... GET which reads first.
    h.run("INCR a");
    h.run("APPEND a 1");
    h.run("SET a 1");
    assert_eq!(counts(&h), (5, 4));
    h.run("SET a 1 GET");
    assert_eq!(counts(&h), (6, 4));
}

#[test]
fn append_and_setrange_edit_a_raw_string_object() {
    let mut h = Harness::new();
    h.run("SET k 1");
    for i in 2..=200 {
        assert_eq!(h.run("APPEND k x"), format!(":{i}\r\n"));
    }
    assert_eq!(h.run("STRLEN k"), ":200\r\n");
    assert_eq!(h.run("SETRANGE k 300 y"), ":301\r\n");
    let got = h.run("GETRANGE k 198 -1");
    assert_eq!(got, format!("$103\r\nxx{}y\r\n", "\0".repeat(100)));
    let mut locks = Locks::default();
    let mut slot = locks.key(&h.srv.ks, 0, b"k", 0);
    let idx = slot.lookup().unwrap();
    assert!(matches!(slot.entry(idx).value(), ValueRef::Obj(Object::Str(s)) if s.len() == 301));
}

#[test]
fn bit_writes_are_published_only_when_they_change_something() {
    let mut h = Harness::new();
    assert_eq!(h.run("SETBIT b 3 0"), ":0\r\n");
    assert_eq!(h.effects(), ["SETBIT b 3 0"], "creating the key counts");
    h.run("SETBIT b 3 0");
    assert!(h.effects().is_empty());
    h.run("SETBIT b 3 1");
    assert_eq!(h.effects(), ["SETBIT b 3 1"]);
    h.run("BITFIELD b SET u8 0 16 GET u8 0");
    assert!(h.effects().is_empty(), "the byte already was 16");
    h.run("BITFIELD b OVERFLOW FAIL INCRBY u4 0 100");
    assert!(h.effects().is_empty(), "a failed increment changes nothing");
    h.run("BITFIELD b INCRBY u4 0 1");
    assert_eq!(h.effects(), ["BITFIELD b INCRBY u4 0 1"]);
    h.run("BITFIELD b SET u8 40 0");
    assert_eq!(
        h.effects(),
        ["BITFIELD b SET u8 40 0"],
        "growing the string is a change"
    );
    h.run("BITOP AND d missing");
    assert!(h.effects().is_empty(), "an empty result over no key");
}
