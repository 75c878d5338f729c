//! A stand-in record format for testing snapshots without a file format:
//! each record is the key, its value's DEBUG DIGEST-VALUE and its deadline.
//! [`collect`] reads a whole walk back and checks what any format relies
//! on: every record inside a database, no key twice, and as many keys per
//! database as it held at the start.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Chunk, Encoder, Snapshot, Stats};
use crate::store::EntryRef;
use crate::store::digest::{Digest, value_digest};
use crate::store::keyspace::{Keyspace, Locks};

/// (database, key) -> (value digest, deadline).
pub type Image = BTreeMap<(usize, Vec<u8>), (Digest, Option<i64>)>;

fn record(e: EntryRef<'_>) -> (Digest, Option<i64>) {
    (value_digest(e.value(), e.expire().is_some()), e.expire())
}

/// Encodes `[key len: u32 LE][key][digest: 20][deadline: i64 LE, -1 none]`.
pub fn digest_encoder() -> Encoder {
    Arc::new(|e: EntryRef<'_>, out: &mut Vec<u8>| {
        let key = e.key();
        let (digest, expire) = record(e);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&digest);
        out.extend_from_slice(&expire.unwrap_or(-1).to_le_bytes());
    })
}

/// The keyspace as it is now, read through `locks`, which must hold every
/// shard (as [`Keyspace::snapshot`] leaves them).
pub fn image_now(ks: &'static Keyspace, locks: &mut Locks) -> Image {
    let mut image = Image::new();
    for db in 0..ks.db_count() {
        for s in 0..ks.shard_count() {
            locks.with_shard(ks, db, s, |g| {
                for e in g.table().iter() {
                    image.insert((db, e.key().to_vec()), record(e));
                }
            });
        }
    }
    image
}

/// Reads a walk to its end, calling `between` after every chunk (a test's
/// chance to change the keyspace mid-walk), and decodes it.
pub fn collect(
    mut snap: Snapshot,
    mut between: impl FnMut(usize),
) -> Result<(Image, Stats), String> {
    let mut image = Image::new();
    let mut db = None;
    let mut counts: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut pending = Vec::new();
    let mut chunks = 0;
    while let Some(c) = snap.next_chunk() {
        match c {
            Chunk::Db { db: d, keys, .. } => {
                if !pending.is_empty() {
                    return Err(format!("a record split across databases before db {d}"));
                }
                if db.is_some_and(|p| p >= d) {
                    return Err(format!("db {d} after db {db:?}"));
                }
                db = Some(d);
                counts.insert(d, (keys, 0));
            }
            Chunk::Bytes(b) => {
                let Some(d) = db else {
                    return Err("records before any database".into());
                };
                pending.extend_from_slice(b);
                let mut rest = &pending[..];
                while rest.len() >= 4 {
                    let klen = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
                    let total = 4 + klen + 20 + 8;
                    if rest.len() < total {
                        break;
                    }
                    let key = rest[4..4 + klen].to_vec();
                    let digest: Digest = rest[4 + klen..4 + klen + 20].try_into().unwrap();
                    let exp = i64::from_le_bytes(rest[total - 8..total].try_into().unwrap());
                    let expire = (exp != -1).then_some(exp);
                    if image.insert((d, key.clone()), (digest, expire)).is_some() {
                        return Err(format!(
                            "key {:?} of db {d} twice",
                            String::from_utf8_lossy(&key)
                        ));
                    }
                    counts.get_mut(&d).unwrap().1 += 1;
                    rest = &rest[total..];
                }
                pending = rest.to_vec();
            }
        }
        chunks += 1;
        between(chunks);
    }
    if !pending.is_empty() {
        return Err("a torn record at the end".into());
    }
    for (d, (want, got)) in counts {
        if want != got {
            return Err(format!(
                "db {d}: {got} records for {want} keys at the start"
            ));
        }
    }
    Ok((image, snap.stats()))
}
