//! A writable replica's own keys with a deadline. A replica leaves expiry
//! to its master (whose DELs come in the stream), so its sweep skips the
//! dataset; but keys its own clients wrote (`replica-read-only no`) have no
//! master to delete them. As Redis does, the replica remembers the keys
//! its clients' writes named and the cron reclaims those whose deadline
//! passed, forgetting the ones that have none (or are gone).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::server::Server;

/// Keys remembered (database, key). Bounded: past this many, new ones are
/// not remembered (a write meeting them once expired still deletes them).
const MAX_KEYS: usize = 1 << 20;

/// A remembered key: its database and name.
type Key = (usize, Box<[u8]>);

static KEYS: Mutex<Option<HashSet<Key>>> = Mutex::new(None);

/// A write by one of this replica's clients named `keys` in `db`.
pub fn remember<'a>(db: usize, keys: impl Iterator<Item = &'a [u8]>) {
    let mut g = KEYS.lock();
    let set = g.get_or_insert_with(HashSet::new);
    for k in keys {
        if set.len() >= MAX_KEYS {
            return;
        }
        set.insert((db, Box::from(k)));
    }
}

/// The cron's share: reclaims remembered keys whose deadline passed and
/// forgets the ones without one, for at most about a millisecond. A
/// master (again) forgets them all: its own sweep covers every key.
pub fn cron(srv: &Server, now_ms: i64) {
    let mut g = KEYS.lock();
    let Some(set) = g.as_mut() else { return };
    if !crate::server::replica::is_replica() {
        *g = None;
        return;
    }
    let started = Instant::now();
    let mut done = Vec::new();
    for (i, (db, key)) in set.iter().enumerate() {
        if i % 64 == 63 && started.elapsed() > Duration::from_millis(1) {
            break;
        }
        if srv.ks.expire_if_due(*db, key, now_ms) == Some(false) {
            done.push((*db, key.clone()));
        }
    }
    for k in done {
        set.remove(&k);
    }
}
