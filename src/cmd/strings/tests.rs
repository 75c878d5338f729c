//! In-process checks of what the string commands publish as their write
//! effect and how they count keyspace hits: neither is visible on the wire.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Config;
use crate::resp::{Parser, Reply};
use crate::server::Server;
use crate::server::client::Client;
use crate::server::stats::ThreadStats;
use crate::store::{EffectSink, Locks, Object, ValueRef};

#[derive(Default)]
struct Recorder(Mutex<Vec<Vec<String>>>);

impl EffectSink for Recorder {
    fn effect(&self, _db: usize, argv: &[&[u8]]) {
        let argv = argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        self.0.lock().push(argv);
    }
}

struct Harness {
    srv: &'static Server,
    client: Client,
    out: Reply,
    locks: Locks,
    stats: ThreadStats,
    effects: Arc<Recorder>,
}

impl Harness {
    fn new() -> Harness {
        let srv: &'static Server = Box::leak(Box::new(Server::new(Config::default(), None)));
        let effects = Arc::new(Recorder::default());
        srv.ks.add_effect_sink(effects.clone());
        let addr = "127.0.0.1:1".parse().unwrap();
        let info = srv.clients.register(addr, addr, -1, 0);
        Harness {
            srv,
            client: Client::new(info, true),
            out: Reply::new(false),
            locks: Locks::default(),
            stats: ThreadStats::new(srv.commands.len()),
            effects,
        }
    }

    /// Runs one command (words split on spaces) and returns its reply.
    fn run(&mut self, line: &str) -> String {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for w in line.split(' ') {
            spans.push((buf.len(), buf.len() + w.len()));
            buf.extend_from_slice(w.as_bytes());
        }
        let args = Parser::args_over(&buf, &spans);
        self.out.buf.clear();
        crate::cmd::execute(
            self.srv,
            &mut self.client,
            &mut self.out,
            &mut self.locks,
            &self.stats,
            &args,
        );
        String::from_utf8_lossy(&self.out.buf).into_owned()
    }

    /// The effects published since the last call, each joined with spaces.
    fn effects(&self) -> Vec<String> {
        self.effects
            .0
            .lock()
            .drain(..)
            .map(|v| v.join(" "))
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
