//! Pub/Sub delivery: the registry of subscriptions and each client's outbox.
//!
//! Design decision: a publisher delivers by itself, on its own thread. It
//! encodes each message once per protocol (RESP2 array, RESP3 push frame),
//! appends the bytes to every receiver's [`Outbox`] and wakes the receiver's
//! connection, which writes them out. Nothing is queued per message, so
//! memory is the encoded bytes only, and the output buffer limit of the
//! `pubsub` class is enforced right where the bytes are appended: a
//! subscriber that does not read is cut off, the others keep receiving.
//!
//! Ordering: one publisher appends in the order it publishes, each append is
//! one locked step on the receiver's outbox, so a receiver sees one
//! publisher's messages in order. Subscribe confirmations go through the
//! outbox too, written before the subscription is registered, so no message
//! can overtake the confirmation of the subscription that let it in.

pub mod monitor;
pub mod notify;
mod outbox;
pub mod tracking;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

pub use outbox::Outbox;

use crate::resp::Reply;
use crate::server::client::ClientInfo;
use crate::util::glob::glob_match;

/// The three subscription spaces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    fn index(self) -> usize {
        self as usize
    }

    /// The first element of the confirmation frames.
    pub fn verbs(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Channel => (b"subscribe", b"unsubscribe"),
            Kind::Pattern => (b"psubscribe", b"punsubscribe"),
            Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
        }
    }
}

/// The clients subscribed to one name. Long lists get an index by client
/// id, so many subscribers leaving one channel is not quadratic (with the
/// registry's lock held, which every PUBLISH waits on).
#[derive(Default)]
struct Subscribers {
    list: Vec<Arc<ClientInfo>>,
    at: Option<HashMap<u64, usize>>,
}

/// Lists longer than this are indexed.
const INDEX_FROM: usize = 32;

impl Subscribers {
    fn push(&mut self, c: Arc<ClientInfo>) {
        if let Some(at) = &mut self.at {
            at.insert(c.id, self.list.len());
        }
        self.list.push(c);
        if self.at.is_none() && self.list.len() > INDEX_FROM {
            self.at = Some(
                self.list
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.id, i))
                    .collect(),
            );
        }
    }

    fn remove(&mut self, id: u64) {
        let found = match &mut self.at {
            Some(at) => at.remove(&id),
            None => self.list.iter().position(|c| c.id == id),
        };
        let Some(i) = found else { return };
        self.list.swap_remove(i);
        if let (Some(at), Some(moved)) = (&mut self.at, self.list.get(i)) {
            at.insert(moved.id, i);
        }
    }

    fn len(&self) -> usize {
        self.list.len()
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn iter(&self) -> std::slice::Iter<'_, Arc<ClientInfo>> {
        self.list.iter()
    }
}

/// Every subscription of every client.
#[derive(Default)]
pub struct PubSub {
    spaces: [RwLock<HashMap<Vec<u8>, Subscribers>>; 3],
    /// MONITOR clients.
    pub monitors: monitor::Monitors,
}

/// A message encoded for both protocols, built on first need.
struct Encoded<'a> {
    parts: [&'a [u8]; 4],
    n: usize,
    frames: [Option<Vec<u8>>; 2],
}

impl<'a> Encoded<'a> {
    fn new(parts: &[&'a [u8]]) -> Encoded<'a> {
        let mut p: [&[u8]; 4] = [b""; 4];
        p[..parts.len()].copy_from_slice(parts);
        Encoded {
            parts: p,
            n: parts.len(),
            frames: [None, None],
        }
    }

    fn frame(&mut self, resp3: bool) -> &[u8] {
        let (parts, n) = (self.parts, self.n);
        self.frames[resp3 as usize].get_or_insert_with(|| {
            let mut r = Reply {
                buf: Vec::new(),
                resp3,
                limit: 0,
                sent: 0,
            };
            r.push(n);
            for p in &parts[..n] {
                r.bulk(p);
            }
            r.buf
        })
    }
}

fn deliver(to: &ClientInfo, msg: &mut Encoded<'_>, limits: [i64; 3], now_ms: i64) {
    let resp3 = to.resp.load(std::sync::atomic::Ordering::Relaxed) == 3;
    to.outbox.append(to, msg.frame(resp3), limits, now_ms);
}

impl PubSub {
    fn space(&self, kind: Kind) -> &RwLock<HashMap<Vec<u8>, Subscribers>> {
        &self.spaces[kind.index()]
    }

    /// Adds a subscription the client did not have yet.
    pub fn add(&self, kind: Kind, name: &[u8], who: &Arc<ClientInfo>) {
        self.space(kind)
            .write()
            .entry(name.to_vec())
            .or_default()
            .push(who.clone());
    }

    /// Removes a subscription the client had.
    pub fn remove(&self, kind: Kind, name: &[u8], id: u64) {
        let mut space = self.space(kind).write();
        if let Some(subs) = space.get_mut(name) {
            subs.remove(id);
            if subs.is_empty() {
                space.remove(name);
            }
        }
    }

    /// PUBLISH: delivers to the channel's subscribers, then to every client
    /// whose pattern matches; returns how many received it.
    pub fn publish(&self, channel: &[u8], message: &[u8], limits: [i64; 3], now_ms: i64) -> usize {
        let mut n = 0;
        if let Some(subs) = self.space(Kind::Channel).read().get(channel) {
            let mut msg = Encoded::new(&[b"message", channel, message]);
            for c in subs.iter() {
                deliver(c, &mut msg, limits, now_ms);
            }
            n += subs.len();
        }
        let patterns = self.space(Kind::Pattern).read();
        for (pattern, subs) in patterns.iter() {
            if glob_match(pattern, channel, false) {
                let mut msg = Encoded::new(&[b"pmessage", pattern, channel, message]);
                for c in subs.iter() {
                    deliver(c, &mut msg, limits, now_ms);
                }
                n += subs.len();
            }
        }
        n
    }

    /// SPUBLISH: delivers to the shard channel's subscribers.
    pub fn spublish(&self, channel: &[u8], message: &[u8], limits: [i64; 3], now_ms: i64) -> usize {
        let space = self.space(Kind::Shard).read();
        let Some(subs) = space.get(channel) else {
            return 0;
        };
        let mut msg = Encoded::new(&[b"smessage", channel, message]);
        for c in subs.iter() {
            deliver(c, &mut msg, limits, now_ms);
        }
        subs.len()
    }

    /// Active channels (with at least one subscriber) matching `pattern`.
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.space(kind)
            .read()
            .keys()
            .filter(|k| pattern.is_none_or(|p| glob_match(p, k, false)))
            .cloned()
            .collect()
    }

    /// Clients with a subscription `keep` refuses (ACL changes close them).
    pub fn subscribers_refused(
        &self,
        keep: impl Fn(Kind, &[u8], &ClientInfo) -> bool,
    ) -> Vec<Arc<ClientInfo>> {
        let mut out: Vec<Arc<ClientInfo>> = Vec::new();
        for kind in Kind::ALL {
            for (name, subs) in self.space(kind).read().iter() {
                for c in subs.iter() {
                    if !keep(kind, name, c) && !out.iter().any(|o| o.id == c.id) {
                        out.push(c.clone());
                    }
                }
            }
        }
        out
    }

    /// Subscribers of one channel.
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.space(kind).read().get(name).map_or(0, |s| s.len())
    }

    /// Channels (patterns, shard channels) with at least one subscriber:
    /// PUBSUB NUMPAT and INFO's pubsub_* counts.
    pub fn active(&self, kind: Kind) -> usize {
        self.space(kind).read().len()
    }
}

/// One client's subscriptions, in the order they were made. A set per
/// space, so subscribing to (and dropping) many names stays linear.
#[derive(Default)]
pub struct ClientSubs {
    names: [Names; 3],
    /// Set on the first subscription and never cleared: the connection then
    /// also waits on its outbox.
    pub ever: bool,
}

/// An insertion-ordered set of names: UNSUBSCRIBE without arguments
/// confirms in the order the subscriptions were made (Redis 7.0 lists
/// patterns in that order; its channel order is its hash table's, which no
/// client can rely on).
#[derive(Default)]
struct Names {
    next: u64,
    seq: HashMap<Arc<[u8]>, u64>,
    order: BTreeMap<u64, Arc<[u8]>>,
}

impl ClientSubs {
    pub fn has(&self, kind: Kind, name: &[u8]) -> bool {
        self.names[kind.index()].seq.contains_key(name)
    }

    /// Adds `name`; false if it was there already.
    pub fn insert(&mut self, kind: Kind, name: &[u8]) -> bool {
        self.ever = true;
        let set = &mut self.names[kind.index()];
        if set.seq.contains_key(name) {
            return false;
        }
        let name: Arc<[u8]> = Arc::from(name);
        set.next += 1;
        set.seq.insert(name.clone(), set.next);
        set.order.insert(set.next, name);
        true
    }

    pub fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        let set = &mut self.names[kind.index()];
        match set.seq.remove(name) {
            Some(n) => {
                set.order.remove(&n);
                true
            }
            None => false,
        }
    }

    /// The names of one space, oldest subscription first.
    pub fn names(&self, kind: Kind) -> Vec<Vec<u8>> {
        self.names[kind.index()]
            .order
            .values()
            .map(|n| n.to_vec())
            .collect()
    }

    /// Removes and returns every name of one space, oldest first.
    pub fn take_all(&mut self, kind: Kind) -> Vec<Arc<[u8]>> {
        let set = std::mem::take(&mut self.names[kind.index()]);
        set.order.into_values().collect()
    }

    pub fn len(&self, kind: Kind) -> usize {
        self.names[kind.index()].seq.len()
    }

    pub fn total(&self) -> usize {
        self.names.iter().map(|s| s.seq.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_encoded_once_per_protocol() {
        let mut m = Encoded::new(&[b"message", b"ch", b"hi"]);
        assert_eq!(
            m.frame(false),
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            m.frame(true),
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
    }

    #[test]
    fn client_subs_keep_order_and_counts() {
        let mut s = ClientSubs::default();
        s.insert(Kind::Channel, b"a");
        s.insert(Kind::Pattern, b"p*");
        s.insert(Kind::Channel, b"b");
        assert!(s.has(Kind::Channel, b"b"));
        assert!(!s.insert(Kind::Channel, b"a"));
        assert_eq!(s.names(Kind::Channel), [b"a".to_vec(), b"b".to_vec()]);
        assert!(s.remove(Kind::Channel, b"a"));
        assert!(!s.remove(Kind::Channel, b"a"));
        assert_eq!(s.total(), 2);
        assert!(s.ever);
        s.insert(Kind::Channel, b"c");
        s.insert(Kind::Channel, b"a");
        assert_eq!(
            s.names(Kind::Channel),
            [b"b".to_vec(), b"c".to_vec(), b"a".to_vec()]
        );
        let all: Vec<Vec<u8>> = s
            .take_all(Kind::Channel)
            .iter()
            .map(|n| n.to_vec())
            .collect();
        assert_eq!(all, [b"b".to_vec(), b"c".to_vec(), b"a".to_vec()]);
        assert_eq!(s.len(Kind::Channel), 0);
    }

    #[test]
    fn subscriber_lists_stay_consistent_once_indexed() {
        let reg = crate::server::client::ClientRegistry::default();
        let addr = "127.0.0.1:1".parse().unwrap();
        let clients: Vec<_> = (0..100).map(|_| reg.register(addr, addr, -1, 0)).collect();
        let mut subs = Subscribers::default();
        for c in &clients {
            subs.push(c.clone());
        }
        assert!(subs.at.is_some());
        for c in clients.iter().step_by(3) {
            subs.remove(c.id);
        }
        subs.remove(9999);
        let mut left: Vec<u64> = subs.iter().map(|c| c.id).collect();
        left.sort_unstable();
        let want: Vec<u64> = clients
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, c)| c.id)
            .collect();
        assert_eq!(left, want);
        for (i, c) in subs.iter().enumerate() {
            assert_eq!(subs.at.as_ref().unwrap()[&c.id], i);
        }
    }
}
