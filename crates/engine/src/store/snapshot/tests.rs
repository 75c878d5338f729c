//! The walk driven by hand: changes made between chunks, from the test's
//! own thread, so every interleaving below is deterministic.

use super::testing::{Image, collect, digest_encoder, image_now};
use super::*;
use crate::store::keyspace::hash_key;
use crate::store::{Object, Value};

const NOW: i64 = 1_000_000;

fn keyspace(dbs: usize) -> &'static Keyspace {
    Box::leak(Box::new(Keyspace::new(dbs, 4)))
}

fn set(ks: &'static Keyspace, db: usize, key: &[u8], v: i64) {
    Locks::default()
        .key(ks, db, key, NOW)
        .set(Value::Int(v), None);
}

fn fill(ks: &'static Keyspace, db: usize, prefix: &str, n: usize) {
    for i in 0..n {
        set(ks, db, format!("{prefix}{i}").as_bytes(), i as i64);
    }
}

/// Starts a snapshot and returns it with the image it must produce.
fn start(ks: &'static Keyspace) -> (Snapshot, Image) {
    let mut locks = Locks::default();
    let snap = ks.snapshot(&mut locks, digest_encoder()).unwrap();
    let want = image_now(ks, &mut locks);
    (snap, want)
}

fn no_state_left(ks: &'static Keyspace) {
    assert!(!ks.snapshot_in_progress());
    for db in 0..ks.db_count() {
        for s in 0..ks.shard_count() {
            let g = ks.db(db).shard(s).lock();
            assert!(g.snap.is_none(), "db {db} shard {s} still saving");
            let t = g.table();
            let cap = t.capacity();
            assert!(
                (0..cap).all(|i| t.next_occupied(i) != Some(i) || !t.is_old(i)),
                "db {db} shard {s} has entries of the old colour"
            );
        }
    }
}

#[test]
fn a_quiet_walk_writes_every_key_once_and_back_to_back_walks_agree() {
    let ks = keyspace(3);
    fill(ks, 0, "a", 5000);
    fill(ks, 2, "c", 300);
    for round in 0..3 {
        let (snap, want) = start(ks);
        let (got, stats) = collect(snap, |_| {}).unwrap();
        assert_eq!(got, want, "round {round}");
        assert_eq!(stats.walked, 5300 + round);
        assert_eq!(stats.saved, 0);
        no_state_left(ks);
        // Keys added between walks get the table's colour: in the next image.
        set(ks, 1, format!("b{round}").as_bytes(), 1);
    }
}

#[test]
fn one_at_a_time_and_an_abandoned_walk_leaves_a_clean_keyspace() {
    let ks = keyspace(2);
    fill(ks, 0, "k", 4000);
    let (mut snap, _) = start(ks);
    assert_eq!(
        ks.snapshot(&mut Locks::default(), digest_encoder()).err(),
        Some(StartError::InProgress)
    );
    // A few chunks, then the consumer gives up (a failed write).
    for _ in 0..3 {
        snap.next_chunk().unwrap();
    }
    set(ks, 0, b"k1", -1);
    drop(snap);
    no_state_left(ks);
    let (snap, want) = start(ks);
    assert_eq!(collect(snap, |_| {}).unwrap().0, want);
}

#[test]
fn holding_some_shards_is_refused() {
    let ks = keyspace(2);
    let mut locks = Locks::default();
    let _ = locks.key(ks, 0, b"x", NOW);
    assert_eq!(
        ks.snapshot(&mut locks, digest_encoder()).err(),
        Some(StartError::LocksHeld)
    );
    locks.release();
    assert!(!ks.snapshot_in_progress());
}

/// Every kind of change, made between chunks: the image is the keyspace
/// as of the start, whatever the walk had reached.
#[test]
fn changes_during_the_walk_do_not_reach_the_image() {
    let ks = keyspace(4);
    fill(ks, 0, "a", 6000);
    fill(ks, 1, "b", 3000);
    fill(ks, 2, "c", 3000);
    fill(ks, 3, "d", 500);
    // A collection that grows in place and keys with deadlines.
    {
        let mut locks = Locks::default();
        let mut slot = locks.key(ks, 0, b"list", NOW);
        slot.insert(Value::Obj(Box::new(Object::Str(b"abc".to_vec()))), None);
        locks.release();
        for i in 0..200 {
            let key = format!("ttl{i}");
            locks
                .key(ks, 1, key.as_bytes(), NOW)
                .set(Value::Int(i), Some(NOW + 10));
            locks.release();
        }
    }
    let (snap, want) = start(ks);
    let mut step = 0;
    let (got, stats) = collect(snap, |_| {
        step += 1;
        let mut locks = Locks::default();
        match step {
            // Overwrites, in place and replaced, deletes, deadlines.
            1 => {
                for i in (0..6000).step_by(7) {
                    set(ks, 0, format!("a{i}").as_bytes(), -1);
                }
                for i in (1..6000).step_by(11) {
                    let key = format!("a{i}");
                    locks.key(ks, 0, key.as_bytes(), NOW).remove();
                    locks.release();
                }
                for i in (2..3000).step_by(5) {
                    let key = format!("b{i}");
                    let mut slot = locks.key(ks, 1, key.as_bytes(), NOW);
                    if let Some(idx) = slot.lookup() {
                        slot.set_expire(idx, Some(NOW + 5));
                    }
                    locks.release();
                }
                let mut slot = locks.key(ks, 0, b"list", NOW);
                let idx = slot.lookup().unwrap();
                if let Some(Object::Str(s)) = slot.entry_mut(idx).object_mut() {
                    s.extend_from_slice(b"def");
                }
            }
            // In-place integer edits; new keys (tables grow), mass deletes
            // (tables shrink) in databases the walk has not reached.
            2 => {
                for i in (3..3000).step_by(3) {
                    let key = format!("c{i}");
                    let mut slot = locks.key(ks, 2, key.as_bytes(), NOW);
                    let idx = slot.lookup().unwrap();
                    assert!(slot.entry_mut(idx).set_int_in_place(7));
                    locks.release();
                }
                fill(ks, 2, "new", 20_000);
                for i in 0..2900 {
                    let key = format!("b{i}");
                    locks.key(ks, 1, key.as_bytes(), NOW).remove();
                    locks.release();
                }
            }
            // Expiry (lazy and active) and eviction.
            3 => {
                ks.active_expire(NOW + 100, 100_000);
                let _ = ks.evict_key(2, b"c10", false);
                let _ = locks.key(ks, 1, b"ttl0", NOW + 100).get();
            }
            // RENAME and MOVE of keys not walked yet.
            4 => {
                for i in 0..50 {
                    let (from, to) = (format!("c{}", 2000 + i), format!("moved{i}"));
                    let mut b = locks.batch(ks);
                    b.key(2, from.as_bytes());
                    b.key(2, to.as_bytes());
                    b.key(3, from.as_bytes());
                    b.take().unwrap();
                    let e = locks.key(ks, 2, from.as_bytes(), NOW).remove().unwrap();
                    locks
                        .key(ks, 2, to.as_bytes(), NOW)
                        .insert_entry(e.rekeyed(to.as_bytes()));
                    let e = locks.key(ks, 2, to.as_bytes(), NOW).remove().unwrap();
                    locks
                        .key(ks, 3, from.as_bytes(), NOW)
                        .insert_entry(e.rekeyed(from.as_bytes()));
                    locks.release();
                }
            }
            // SWAPDB of a database half walked with ones not reached.
            5 => {
                let mut b = locks.batch(ks);
                b.db(0);
                b.db(2);
                b.take().unwrap();
                ks.swap_dbs(&mut locks, 0, 2);
                locks.release();
                let mut b = locks.batch(ks);
                b.db(1);
                b.db(3);
                b.take().unwrap();
                ks.swap_dbs(&mut locks, 3, 1);
            }
            // FLUSHDB of a database not reached (its tables go to the walk).
            6 => {
                let mut b = locks.batch(ks);
                b.db(3);
                b.take().unwrap();
                ks.flush_db(&mut locks, 3, false);
            }
            // SWAPDB of a walked database with one not reached.
            16 => {
                let mut b = locks.batch(ks);
                b.db(0);
                b.db(2);
                b.take().unwrap();
                ks.swap_dbs(&mut locks, 2, 0);
                locks.release();
                for i in 0..3000 {
                    set(ks, 0, format!("c{i}").as_bytes(), -2);
                    set(ks, 2, format!("a{i}").as_bytes(), -2);
                }
            }
            // FLUSHALL halfway (tables handed to the walk), then new keys.
            24 => {
                let mut b = locks.batch(ks);
                b.all_dbs();
                b.take().unwrap();
                for db in 0..4 {
                    ks.flush_db(&mut locks, db, false);
                }
                locks.release();
                fill(ks, 0, "after", 100);
            }
            _ => {}
        }
    })
    .unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the image differs from the start");
    assert!(stats.saved > 0 && stats.flushed > 0, "{stats:?}");
    assert!(stats.walked > 1000, "{stats:?}");
    no_state_left(ks);
    // And the keyspace as it is now walks correctly too.
    let (snap, want) = start(ks);
    assert_eq!(collect(snap, |_| {}).unwrap().0, want);
}

/// Side buffers are handed out as the walk reaches their shard, and a
/// shard the walk has finished saves nothing more.
#[test]
fn what_writers_save_is_bounded_by_what_they_touched() {
    let ks = keyspace(1);
    fill(ks, 0, "k", 20_000);
    let (snap, want) = start(ks);
    let mut rounds = 0;
    let (got, stats) = collect(snap, |_| {
        rounds += 1;
        // Rewrite the same 100 keys after every chunk.
        for i in 0..100 {
            set(ks, 0, format!("k{i}").as_bytes(), -(rounds as i64));
        }
    })
    .unwrap();
    assert_eq!(got, want);
    assert!(stats.saved <= 100, "{stats:?}");
    assert!(
        stats.side_bytes == 0,
        "replaced values are kept, not encoded"
    );
    let _ = hash_key;
    no_state_left(ks);
}
