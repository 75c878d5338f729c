//! A model test of the lock rules: threads take random footprints (keys
//! across databases, whole databases, everything) as batches, a script job
//! reaches keys one at a time in any order, and commands holding shards
//! reach for undeclared ones. Nobody may deadlock (a watchdog fails the
//! test) and no reader may see a group of keys half written.

use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::store::{Value, ValueRef};

const DBS: usize = 3;
const GROUPS: usize = 6;
const PER_GROUP: usize = 4;

fn keyspace() -> &'static Keyspace {
    Box::leak(Box::new(Keyspace::new(DBS, 8)))
}

/// Group `g`'s keys as (db, key): spread over databases and shards.
fn group(g: usize) -> Vec<(usize, Vec<u8>)> {
    (0..PER_GROUP)
        .map(|i| ((g + i) % DBS, format!("g{g}:k{i}").into_bytes()))
        .collect()
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        (crate::util::rand::next(&mut self.0) % n as u64) as usize
    }
}

fn read(locks: &mut Locks, ks: &'static Keyspace, db: usize, key: &[u8]) -> i64 {
    match locks.key(ks, db, key, 0).get().map(|e| e.value()) {
        Some(ValueRef::Int(n)) => n,
        _ => 0,
    }
}

/// Writes `v` to every key of group `g`, or checks they are all equal;
/// the caller holds the group's shards.
fn visit(locks: &mut Locks, ks: &'static Keyspace, g: usize, v: Option<i64>) {
    let keys = group(g);
    match v {
        Some(v) => {
            for (db, k) in &keys {
                locks.key(ks, *db, k, 0).set(Value::Int(v), None);
            }
        }
        None => {
            let seen: Vec<i64> = keys.iter().map(|(d, k)| read(locks, ks, *d, k)).collect();
            assert!(
                seen.windows(2).all(|w| w[0] == w[1]),
                "torn group {g}: {seen:?}"
            );
        }
    }
}

/// A command: a batch (groups, whole databases or everything), then its
/// work; sometimes it also reaches an undeclared key, which must be
/// refused or already held, never waited for.
fn command(ks: &'static Keyspace, rng: &mut Rng, round: i64) {
    let mut locks = Locks::default();
    let mut groups = Vec::new();
    let mut b = locks.batch(ks);
    match rng.below(10) {
        0 => {
            b.all_dbs();
            groups.extend(0..GROUPS);
        }
        1 => {
            let db = rng.below(DBS);
            b.db(db);
            // Groups wholly inside database `db`: none; it only reads
            // shard by shard, through the held locks.
            groups.clear();
        }
        _ => {
            for _ in 0..1 + rng.below(3) {
                let g = rng.below(GROUPS);
                for (db, k) in group(g) {
                    b.key(db, &k);
                }
                groups.push(g);
            }
        }
    }
    b.take().expect("a batch holding nothing always succeeds");
    let write = rng.below(2) == 0;
    for &g in &groups {
        visit(&mut locks, ks, g, write.then_some(round));
    }
    for s in 0..ks.shard_count() {
        if locks.position(s).is_some() {
            locks.with_shard(ks, 0, s, |sh| sh.len());
        }
    }
    if rng.below(3) == 0 {
        let extra = format!("g{}:k{}", rng.below(GROUPS), rng.below(PER_GROUP));
        let db = rng.below(DBS);
        let held = locks.holds(ks, db, extra.as_bytes());
        let r = locks.lock_keys(ks, db, [extra.as_bytes()]);
        assert!(
            held || r.is_err() || !STRICT,
            "an undeclared shard was taken"
        );
        assert!(r.is_ok() || !held);
    }
}

#[test]
fn random_footprints_never_deadlock_nor_tear() {
    let ks = keyspace();
    let (done, finished) = mpsc::channel();
    let threads = 6;
    for t in 0..threads {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(t as u64 + 1);
            for round in 0..3000 {
                command(ks, &mut rng, round * 16 + t as i64);
            }
            done.send(()).unwrap();
        });
    }
    // The script job: keys one at a time, any order, waiting while holding.
    let job_done = done.clone();
    std::thread::spawn(move || {
        let scripting = crate::scripting::Scripting::default();
        let job = scripting.begin_job(1);
        let mut locks = Locks::for_job(&job);
        let mut rng = Rng(99);
        for round in 0..3000i64 {
            let g = rng.below(GROUPS);
            let mut keys = group(g);
            keys.reverse();
            if rng.below(2) == 0 {
                for (db, k) in &keys {
                    locks.key(ks, *db, k, 0).set(Value::Int(-round), None);
                }
            } else {
                let seen: Vec<i64> = keys
                    .iter()
                    .map(|(d, k)| read(&mut locks, ks, *d, k))
                    .collect();
                assert!(
                    seen.windows(2).all(|w| w[0] == w[1]),
                    "torn in job: {seen:?}"
                );
            }
            if rng.below(4) == 0 {
                locks.release();
            }
        }
        locks.release();
        drop(job);
        job_done.send(()).unwrap();
    });
    for _ in 0..threads + 1 {
        finished
            .recv_timeout(Duration::from_secs(120))
            .expect("a thread deadlocked (or failed: see its panic)");
    }
}
