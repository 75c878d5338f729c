//! Consumer groups: a cursor into the stream (the last delivered id and a
//! logical count of entries read), the pending entries list (PEL) of ids
//! delivered but not acknowledged, and the consumers that own them.
//!
//! The group-wide PEL holds each pending id's owner, delivery time and
//! count; each consumer holds the set of ids it owns, so both "all pending"
//! and "pending of one consumer" are ordered walks. Groups and consumers
//! are kept by name in byte order, the order Redis's radix trees list them.

use std::collections::{BTreeMap, BTreeSet};

use super::{Stream, StreamId};

/// One delivered, not yet acknowledged entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub consumer: Vec<u8>,
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    /// Unix ms of the consumer's last read or claim attempt.
    pub seen_time: i64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read, counted from the stream's first ever
    /// entry; `None` when unknown (Redis's -1).
    pub entries_read: Option<i64>,
    pub pel: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: Option<i64>) -> Group {
        Group {
            last_id,
            entries_read,
            ..Group::default()
        }
    }

    /// The consumer named `name`, created when missing; the flag says
    /// whether it was created.
    pub fn consumer(&mut self, name: &[u8], now_ms: i64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self.consumers.entry(name.to_vec()).or_insert(Consumer {
            seen_time: now_ms,
            pel: BTreeSet::new(),
        });
        (c, created)
    }

    /// Removes a consumer and its pending entries; how many it had.
    pub fn remove_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledges `id`: true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Records `id` as pending for `consumer` (which must exist) with the
    /// given delivery time and count, taking it from its former owner.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], time: i64, count: u64) {
        let p = Pending {
            consumer: consumer.to_vec(),
            delivery_time: time,
            delivery_count: count,
        };
        if let Some(prev) = self.pel.insert(id, p)
            && prev.consumer != consumer
            && let Some(c) = self.consumers.get_mut(&prev.consumer)
        {
            c.pel.remove(&id);
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

// ---- the logical read counter (Redis 7.0's lag bookkeeping) ---------------------

impl Stream {
    /// True if an entry was deleted inside `start..` while entries remain,
    /// which makes counting by subtraction wrong.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.len == 0 || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// The logical position of `id` (how many entries were added up to it),
    /// when it can be known without walking the stream.
    pub fn estimate_entries_read(&self, id: StreamId) -> Option<i64> {
        let (added, len) = (self.entries_added as i64, self.len as i64);
        if added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(added);
        }
        if id == self.last_id {
            return Some(added);
        }
        if id > self.last_id {
            return None;
        }
        let no_gaps = self.max_deleted_id == StreamId::MIN || self.max_deleted_id < self.first_id;
        if no_gaps {
            if id < self.first_id {
                return Some(added - len);
            }
            if id == self.first_id {
                return Some(added - len + 1);
            }
        }
        None
    }

    /// XINFO's `lag` of a group: entries added but not yet read by it.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        let added = self.entries_added as i64;
        if added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read
            && !self.has_tombstones_from(g.last_id)
        {
            return Some(added - read);
        }
        self.estimate_entries_read(g.last_id)
            .map(|read| added - read)
    }

    /// Moves `g`'s cursor to `id` after delivering it with `>`.
    pub fn advance_group(&self, g: &mut Group, id: StreamId) {
        if id <= g.last_id {
            return;
        }
        if let Some(read) = g.entries_read
            && !self.has_tombstones_from(id)
        {
            g.entries_read = Some(read + 1);
        } else if self.entries_added > 0 {
            g.entries_read = self.estimate_entries_read(id);
        }
        g.last_id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The group PEL and the consumers' id sets describe the same thing.
    fn check(g: &Group) {
        let owned: usize = g.consumers.values().map(|c| c.pel.len()).sum();
        assert_eq!(owned, g.pel.len());
        for (id, p) in &g.pel {
            assert!(
                g.consumers[&p.consumer].pel.contains(id),
                "{id} of {:?}",
                p.consumer
            );
        }
    }

    #[test]
    fn pel_and_consumers_stay_in_step_under_random_operations() {
        let mut g = Group::new(StreamId::MIN, None);
        let names: [&[u8]; 3] = [b"a", b"b", b"c"];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..5_000i64 {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = StreamId::new(x % 40, 0);
            let name = names[(x >> 8) as usize % 3];
            match (x >> 16) % 4 {
                0 | 1 => {
                    g.consumer(name, step);
                    let n = g.pel.get(&id).map_or(1, |p| p.delivery_count + 1);
                    g.deliver(id, name, step, n);
                    assert_eq!(g.pel[&id].consumer, name);
                }
                2 => {
                    let was = g.pel.contains_key(&id);
                    assert_eq!(g.ack(id), was);
                    assert!(!g.pel.contains_key(&id));
                }
                _ => {
                    let had = g.consumers.get(name).map(|c| c.pel.len());
                    assert_eq!(g.remove_consumer(name), had);
                }
            }
            check(&g);
        }
    }

    #[test]
    fn lag_is_unknown_across_a_deletion_until_the_last_entry() {
        let lim = super::super::NodeLimits::new(4096, 100);
        let mut s = Stream::new();
        for i in 1..=5 {
            s.append(StreamId::new(i, 0), &[b"f", b"v"], lim);
        }
        let mut g = Group::new(StreamId::MIN, None);
        // Before the first entry: everything is lag.
        assert_eq!(s.group_lag(&g), Some(5));
        s.advance_group(&mut g, StreamId::new(1, 0));
        assert_eq!((g.entries_read, s.group_lag(&g)), (Some(1), Some(4)));
        s.delete(StreamId::new(3, 0));
        // A tombstone ahead of the cursor: the count is unknown...
        assert_eq!(s.group_lag(&g), None);
        // ...and stays so while reading past it (entry by entry, as
        // XREADGROUP does)...
        s.advance_group(&mut g, StreamId::new(2, 0));
        s.advance_group(&mut g, StreamId::new(4, 0));
        assert_eq!((g.entries_read, s.group_lag(&g)), (None, None));
        // ...until the cursor reaches the last entry, whose count is known.
        s.advance_group(&mut g, StreamId::new(5, 0));
        assert_eq!((g.entries_read, s.group_lag(&g)), (Some(5), Some(0)));
    }
}
