//! An in-process command runner for tests: a server with no listener, one
//! client, a clock the test chooses, and a recorder of the effect stream.
//! Commands go through the same `cmd::execute` as on a socket.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Config;
use crate::resp::{Parser, Reply};
use crate::server::Server;
use crate::server::client::Client;
use crate::server::stats::ThreadStats;
use crate::store::{Effect, EffectSink, Locks};

/// Effects as `"<db>: <argv joined by spaces>"`, in publication order, and
/// how many records each call to the sink brought (a group is one call).
#[derive(Default)]
pub struct Recorder(Mutex<Vec<String>>, Mutex<Vec<usize>>);

impl EffectSink for Recorder {
    fn effects(&self, records: &[Effect<'_>]) {
        let mut out = self.0.lock();
        self.1.lock().push(records.len());
        for r in records {
            let words: Vec<String> = r
                .argv
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            out.push(format!("{}: {}", r.db, words.join(" ")));
        }
    }
}

pub struct Harness {
    pub srv: &'static Server,
    pub client: Client,
    pub locks: Locks,
    pub stats: ThreadStats,
    pub effects: Arc<Recorder>,
    /// The time commands see; `None` uses the real clock.
    pub now_ms: Option<i64>,
    /// Replies in RESP3 (as after HELLO 3).
    pub resp3: bool,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Harness {
        let srv: &'static Server = Box::leak(Box::new(Server::new(config, None)));
        srv.install_hooks();
        let effects = Arc::new(Recorder::default());
        srv.ks.add_effect_sink(effects.clone());
        let addr = "127.0.0.1:1".parse().expect("address");
        let info = srv.clients.register(addr, addr, -1, 0);
        Harness {
            srv,
            client: Client::new(info, true),
            locks: Locks::default(),
            stats: ThreadStats::new(srv.commands.len()),
            effects,
            now_ms: None,
            resp3: false,
        }
    }

    /// Runs one command given as separate arguments; returns the reply bytes as text.
    pub fn run(&mut self, args: &[&str]) -> String {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for a in args {
            let start = buf.len();
            buf.extend_from_slice(a.as_bytes());
            spans.push((start, buf.len()));
        }
        let args = Parser::args_over(&buf, &spans);
        let mut out = Reply::new(self.resp3);
        let now = self.now_ms.unwrap_or_else(crate::server::now_ms);
        crate::cmd::execute(
            self.srv,
            &mut self.client,
            &mut out,
            &mut self.locks,
            &self.stats,
            &args,
            now,
        );
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    /// Runs one command with a RESP3 reply.
    pub fn run3(&mut self, args: &[&str]) -> String {
        let was = std::mem::replace(&mut self.resp3, true);
        let reply = self.run(args);
        self.resp3 = was;
        reply
    }

    /// The effects published since the last call.
    pub fn take_effects(&self) -> Vec<String> {
        std::mem::take(&mut *self.effects.0.lock())
    }

    /// The sizes of the sink calls since the last take: one per command,
    /// one per transaction or script (its records arrive together).
    pub fn take_effect_calls(&self) -> Vec<usize> {
        std::mem::take(&mut *self.effects.1.lock())
    }
}
