//! One shard of a database: a table and the counters that must stay exact
//! under its lock (how many entries carry a deadline, the sweep position).

use super::entry::{Entry, EntryRef, Value};
use super::table::{HashFn, SlotMut, Table};

#[derive(Default)]
pub struct Shard {
    table: Table,
    /// Entries that carry a deadline (INFO keyspace `expires=`).
    expires: usize,
    /// Where the active expiry sweep resumes.
    pub(crate) sweep_pos: usize,
}

impl Shard {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn expires(&self) -> usize {
        self.expires
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The slot of `key`, expired or not.
    #[inline]
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        self.table.find(hash, key)
    }

    #[inline]
    pub fn get(&self, idx: usize) -> EntryRef<'_> {
        self.table.get(idx)
    }

    /// Mutable access to an entry. Deadlines must change through
    /// [`Shard::set_expire`] so that the count stays exact.
    #[inline]
    pub fn get_mut(&mut self, idx: usize) -> SlotMut<'_> {
        self.table.get_mut(idx)
    }

    pub fn insert(&mut self, hash: u64, entry: Entry, rehash: HashFn) -> usize {
        if entry.expire().is_some() {
            self.expires += 1;
        }
        self.table.insert_new(hash, entry, rehash)
    }

    pub fn remove(&mut self, idx: usize, rehash: HashFn) -> Entry {
        let e = self.table.remove_at(idx, rehash);
        if e.expire().is_some() {
            self.expires -= 1;
        }
        e
    }

    pub fn set_expire(&mut self, idx: usize, at: Option<i64>) {
        let mut slot = self.table.get_mut(idx);
        match (slot.expire().is_some(), at.is_some()) {
            (false, true) => self.expires += 1,
            (true, false) => self.expires -= 1,
            _ => {}
        }
        slot.set_expire(at);
    }

    /// Replaces the value; `keep_ttl` keeps the deadline, otherwise it goes.
    pub fn set_value(&mut self, idx: usize, value: Value<'_>, keep_ttl: bool) {
        let mut slot = self.table.get_mut(idx);
        if !keep_ttl && slot.expire().is_some() {
            self.expires -= 1;
        }
        slot.set_value(value, keep_ttl);
    }

    /// Drops everything, returning the old table so a caller may free it elsewhere.
    pub fn take_all(&mut self) -> Table {
        self.expires = 0;
        self.sweep_pos = 0;
        std::mem::take(&mut self.table)
    }

    pub fn swap(&mut self, other: &mut Shard) {
        std::mem::swap(self, other);
    }
}
