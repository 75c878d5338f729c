//! ACL LOG: recent denials, newest first. A denial like a recent one (same
//! reason, context, object and user, within a minute) counts on that entry.

use std::collections::VecDeque;

use parking_lot::Mutex;

/// How long a repeated denial keeps counting on the same entry.
const GROUPING_MS: i64 = 60_000;
/// How many recent entries a new denial is compared with.
const SCAN: usize = 10;

#[derive(Clone, Debug)]
pub struct Entry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    /// When it last happened (age-seconds counts from here).
    pub at_ms: i64,
    pub client_info: String,
}

#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl AclLog {
    pub fn add(&self, e: Entry, max_len: usize) {
        let mut entries = self.entries.lock();
        let found = entries.iter().take(SCAN).position(|old| {
            old.reason == e.reason
                && old.context == e.context
                && old.object == e.object
                && old.username == e.username
                && e.at_ms - old.at_ms <= GROUPING_MS
        });
        if let Some(i) = found {
            let mut old = entries.remove(i).expect("found");
            old.count += 1;
            old.at_ms = e.at_ms;
            old.client_info = e.client_info;
            entries.push_front(old);
        } else {
            entries.push_front(e);
        }
        entries.truncate(max_len);
    }

    /// The newest `n` entries.
    pub fn newest(&self, n: usize) -> Vec<Entry> {
        self.entries.lock().iter().take(n).cloned().collect()
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// Applies a lowered `acllog-max-len` at once.
    pub fn trim(&self, max_len: usize) {
        self.entries.lock().truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str, at_ms: i64) -> Entry {
        Entry {
            count: 1,
            reason: "key",
            context: "toplevel",
            object: object.as_bytes().to_vec(),
            username: b"u".to_vec(),
            at_ms,
            client_info: String::new(),
        }
    }

    #[test]
    fn repeats_group_and_move_to_the_front() {
        let log = AclLog::default();
        log.add(entry("a", 0), 128);
        log.add(entry("b", 1), 128);
        log.add(entry("a", 2), 128);
        let e = log.newest(10);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].object.as_slice(), e[0].count), (&b"a"[..], 2));
        // Too late to group.
        log.add(entry("a", 2 + GROUPING_MS + 1), 128);
        assert_eq!(log.newest(10).len(), 3);
        log.add(entry("c", 0), 2);
        assert_eq!(log.newest(10).len(), 2);
    }
}
