//! DEBUG DIGEST and DEBUG DIGEST-VALUE: a SHA-1 based fingerprint of the
//! dataset, bit-for-bit the one Redis 7.0 computes, so a test can compare
//! two servers (or ferrokv and Redis) by one 40-hex-digit line.
//!
//! The format, as Redis 7.0.15 answers it (checked by differential tests):
//! - `xor(d, data)`: `d ^= sha1(data)`; `mix(d, data)`: `xor(d, data)`, then
//!   `d = sha1(d)`. `xor` is order-independent, `mix` is not.
//! - A value's digest starts at 20 zero bytes: `mix` of the type code as a
//!   big-endian u32 (string 0, list 1, set 2, zset 3, hash 4, stream 6),
//!   then per type: a string `mix`es its bytes (an integer its decimal form);
//!   a list `mix`es each element head to tail; a set `xor`s each member; a
//!   sorted set and a hash `xor` one sub-digest per element (`mix` of member
//!   then score as `%.17g`; `mix` of field then value); a stream `mix`es
//!   each entry's id as `ms.seq` then each field and value. Consumer groups
//!   are not part of it (7.0 leaves them out). A key with a deadline then
//!   gets `xor(d, "!!expire!!")`: whether it has one, not when.
//! - The dataset digest starts at zero; for each non-empty database in
//!   order it `mix`es the db index (big-endian u32), then `xor`s in each
//!   key's digest: `mix(zero, key)` continued by the value digest steps.
//!
//! Entries whose deadline passed but that were not reclaimed yet count, as
//! in Redis (the walk reclaims nothing).

use super::entry::{EntryRef, Packed, ValueRef};
use super::keyspace::{Keyspace, Locks};
use super::object::Object;
use crate::types::hash::HashRef;
use crate::types::list::ListRef;
use crate::types::set::SetRef;
use crate::types::stream::id::StreamId;
use crate::types::zset::View;

pub type Digest = [u8; 20];

fn sha1(parts: &[&[u8]]) -> Digest {
    let mut h = sha1_smol::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.digest().bytes()
}

/// `d ^= sha1(data)`.
pub fn xor(d: &mut Digest, data: &[u8]) {
    for (a, b) in d.iter_mut().zip(sha1(&[data])) {
        *a ^= b;
    }
}

/// `xor(d, data)`, then `d = sha1(d)`.
pub fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    *d = sha1(&[d.as_slice()]);
}

/// The digest of one value and its expire flag (DEBUG DIGEST-VALUE).
pub fn value_digest(v: ValueRef<'_>, has_expire: bool) -> Digest {
    let mut d = [0u8; 20];
    value_into(&mut d, v, has_expire);
    d
}

/// Mixes a value and its expire flag into `d` (zero for DIGEST-VALUE, the
/// key's digest for DIGEST).
fn value_into(d: &mut Digest, v: ValueRef<'_>, has_expire: bool) {
    let code: u32 = match v.type_name() {
        "string" => 0,
        "list" => 1,
        "set" => 2,
        "zset" => 3,
        "hash" => 4,
        _ => 6,
    };
    mix(d, &code.to_be_bytes());
    match v {
        ValueRef::Bytes(b) => mix(d, b),
        ValueRef::Obj(Object::Str(b)) => mix(d, b),
        ValueRef::Int(n) => mix(d, itoa::Buffer::new().format(n).as_bytes()),
        ValueRef::Packed(Packed::List, _) | ValueRef::Obj(Object::List(_)) => {
            if let Ok(list) = ListRef::of(v) {
                for item in list.iter() {
                    mix(d, item);
                }
            }
        }
        ValueRef::Packed(Packed::Set | Packed::IntSet, _) | ValueRef::Obj(Object::Set(_)) => {
            if let Some(set) = SetRef::of(v) {
                for m in set.iter() {
                    m.with_bytes(|b| xor(d, b));
                }
            }
        }
        ValueRef::Packed(Packed::ZSet, _) | ValueRef::Obj(Object::ZSet(_)) => {
            if let Ok(z) = View::of(v) {
                let mut buf = [0u8; 64];
                z.visit(0, usize::MAX, false, |m, score| {
                    let mut e = [0u8; 20];
                    mix(&mut e, m);
                    mix(&mut e, crate::util::num::fmt_double(score, &mut buf));
                    xor(d, &e);
                    true
                });
            }
        }
        ValueRef::Packed(Packed::Hash, _) | ValueRef::Obj(Object::Hash(_)) => {
            if let Ok(h) = HashRef::of(v) {
                for (f, val) in h.iter() {
                    let mut e = [0u8; 20];
                    mix(&mut e, f);
                    mix(&mut e, val);
                    xor(d, &e);
                }
            }
        }
        ValueRef::Obj(Object::Stream(s)) => {
            s.range(StreamId::MIN, StreamId::MAX, false, 0, |e| {
                mix(d, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                for p in &e.pairs {
                    mix(d, p);
                }
            });
        }
    }
    if has_expire {
        xor(d, b"!!expire!!");
    }
}

/// One key's digest: the key's name, then its value.
fn entry_digest(e: &EntryRef<'_>) -> Digest {
    let mut d = [0u8; 20];
    mix(&mut d, e.key());
    value_into(&mut d, e.value(), e.expire().is_some());
    d
}

/// DEBUG DIGEST: the whole keyspace. Walks one shard at a time (through the
/// command's own locks where it holds them), so it never holds more than
/// one shard the command did not already hold, and other clients run in
/// between: under concurrent writes the result is not a point-in-time
/// snapshot. Each shard is digested whole under its lock (a partial walk
/// that resumed after a resize could see a key twice, and a key seen twice
/// cancels out of the xor).
pub fn dataset_digest(ks: &'static Keyspace, locks: &mut Locks) -> Digest {
    let mut total = [0u8; 20];
    for db in 0..ks.db_count() {
        let mut keys = [0u8; 20];
        let mut any = false;
        for s in 0..ks.shard_count() {
            locks.with_shard(ks, db, s, |g| {
                for e in g.table().iter() {
                    any = true;
                    xor(&mut keys, &entry_digest(&e));
                }
            });
        }
        if any {
            mix(&mut total, &(db as u32).to_be_bytes());
            // The keys' digests are xored in after the db mix; xor commutes.
            for (a, b) in total.iter_mut().zip(keys) {
                *a ^= b;
            }
        }
    }
    total
}

pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
