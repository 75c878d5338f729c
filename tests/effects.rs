//! The write-effect stream: every write publishes one record, reads publish
//! nothing, and lazily expired keys publish a DEL.

use std::sync::{Arc, Mutex};

use ferrokv::config::Config;
use ferrokv::resp::{Parser, Reply, parse::Limits};
use ferrokv::server::Server;
use ferrokv::server::client::Client;
use ferrokv::server::stats::ThreadStats;
use ferrokv::store::{EffectSink, Locks};

#[derive(Default)]
struct Recorder(Mutex<Vec<(usize, Vec<Vec<u8>>)>>);

impl EffectSink for Recorder {
    fn effect(&self, db: usize, argv: &[&[u8]]) {
        self.0
            .lock()
            .unwrap()
            .push((db, argv.iter().map(|a| a.to_vec()).collect()));
    }
}

struct Harness {
    srv: &'static Server,
    client: Client,
    out: Reply,
    locks: Locks,
    stats: ThreadStats,
}

impl Harness {
    fn new() -> Harness {
        let srv: &'static Server = Box::leak(Box::new(Server::new(Config::default(), None)));
        let addr = "127.0.0.1:1".parse().unwrap();
        let info = srv.clients.register(addr, addr, -1, 0);
        Harness {
            srv,
            client: Client::new(info, true),
            out: Reply::new(false),
            locks: Locks::default(),
            stats: ThreadStats::new(srv.commands.len()),
        }
    }

    /// Runs one inline command at time `now_ms` and returns its reply bytes.
    fn run(&mut self, line: &str, now_ms: i64) -> Vec<u8> {
        let mut p = Parser::default();
        let buf = format!("{line}\r\n").into_bytes();
        let limits = Limits {
            max_bulk: 1 << 20,
            authenticated: true,
        };
        assert!(matches!(
            p.parse(&buf, limits),
            ferrokv::resp::Frame::Command { .. }
        ));
        let args = p.args(&buf);
        self.out.buf.clear();
        ferrokv::cmd::execute(
            self.srv,
            &mut self.client,
            &mut self.out,
            &mut self.locks,
            &self.stats,
            &args,
            now_ms,
        );
        self.out.buf.clone()
    }
}

#[test]
fn writes_publish_effects_and_reads_do_not() {
    let mut h = Harness::new();
    let rec = Arc::new(Recorder::default());
    h.srv.ks.add_effect_sink(rec.clone());
    assert_eq!(h.run("SET k v", 1_000), b"+OK\r\n");
    assert_eq!(h.run("GET k", 1_000), b"$1\r\nv\r\n");
    assert_eq!(h.run("DEL nosuch", 1_000), b":0\r\n");
    assert_eq!(h.run("DEL k", 1_000), b":1\r\n");
    let got = rec.0.lock().unwrap().clone();
    let expect: Vec<(usize, Vec<Vec<u8>>)> = vec![
        (0, vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]),
        (0, vec![b"DEL".to_vec(), b"k".to_vec()]),
    ];
    assert_eq!(got, expect);
}

#[test]
fn a_lazily_expired_key_publishes_del() {
    let mut h = Harness::new();
    let rec = Arc::new(Recorder::default());
    h.srv.ks.add_effect_sink(rec.clone());
    // Insert a key with a deadline directly, then read it after the deadline.
    {
        let mut locks = Locks::default();
        let mut slot = locks.key(&h.srv.ks, 0, b"t", 1_000);
        slot.insert(ferrokv::store::Value::from_string(b"x"), Some(1_500));
    }
    assert_eq!(h.run("GET t", 1_400), b"$1\r\nx\r\n");
    assert_eq!(h.run("GET t", 1_600), b"$-1\r\n");
    let got = rec.0.lock().unwrap().clone();
    assert_eq!(got, vec![(0, vec![b"DEL".to_vec(), b"t".to_vec()])]);
}
