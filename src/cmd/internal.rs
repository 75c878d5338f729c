//! A client of the server's own whose commands run to completion on the
//! calling thread through [`super::execute`]: the AOF loader's, and a
//! replica's master client applying the stream.

use std::sync::Arc;

use crate::resp::{Args, Reply};
use crate::server::client::Client;
use crate::server::stats::ThreadStats;
use crate::server::{Server, now_ms};
use crate::store::Locks;

pub struct InternalClient {
    pub srv: &'static Server,
    pub client: Client,
    pub locks: Locks,
    pub stats: Arc<ThreadStats>,
    /// The last command's reply, until the next command runs.
    pub out: Reply,
}

impl InternalClient {
    /// `client` registered by the caller (it drops out of the registry
    /// with this); `stats` counts its commands (INFO commandstats).
    pub fn new(srv: &'static Server, client: Client, stats: Arc<ThreadStats>) -> InternalClient {
        InternalClient {
            srv,
            client,
            locks: Locks::default(),
            stats,
            out: Reply::new(false),
        }
    }

    /// Runs one command on the clock now; its reply is in `out`.
    #[inline]
    pub fn run(&mut self, args: &Args<'_>) {
        self.out.buf.clear();
        super::execute(
            self.srv,
            &mut self.client,
            &mut self.out,
            &mut self.locks,
            &self.stats,
            args,
            now_ms(),
        );
    }
}

impl Drop for InternalClient {
    /// A transaction left open is discarded (its WATCHes and locks with
    /// it) and the client leaves the registry.
    fn drop(&mut self) {
        self.locks.release();
        super::multi::reset(&self.srv.ks, &mut self.client, &mut self.locks);
        self.locks.release();
        self.srv.clients.depart(&self.client.info);
    }
}
