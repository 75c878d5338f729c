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
        let gate = super::JobGate::default();
        let pass = gate.enter();
        let mut locks = Locks::for_job(&pass);
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
        drop(pass);
        job_done.send(()).unwrap();
    });
    for _ in 0..threads + 1 {
        finished
            .recv_timeout(Duration::from_secs(120))
            .expect("a thread deadlocked (or failed: see its panic)");
    }
}

/// Two keys of database 0 in different shards.
fn two_shards(ks: &'static Keyspace) -> (Vec<u8>, Vec<u8>) {
    let a = b"k0".to_vec();
    let sa = ks.shard_of(hash_key(&a));
    let b = (1..10_000)
        .map(|i| format!("k{i}").into_bytes())
        .find(|k| ks.shard_of(hash_key(k)) != sa)
        .unwrap();
    (a, b)
}

#[test]
fn holding_shards_a_busy_undeclared_one_is_refused_not_waited_for() {
    let ks = keyspace();
    let (a, b) = two_shards(ks);
    let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
    let (b2, held_tx, release_rx) = (b.clone(), held.0, release.1);
    let holder = std::thread::spawn(move || {
        let mut other = Locks::default();
        other.lock_keys(ks, 0, [b2.as_slice()]).unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held.1.recv().unwrap();
    let mut mine = Locks::default();
    mine.lock_keys(ks, 0, [a.as_slice()]).unwrap();
    // A batch is refused, and so is a handler's access (a panic the
    // dispatcher turns into an error reply): neither waits.
    assert_eq!(mine.lock_keys(ks, 0, [b.as_slice()]), Err(Undeclared));
    let reached = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mine.key(ks, 0, &b, 0).lookup();
    }));
    assert!(reached.is_err());
    // Holding nothing, the same key is simply waited for.
    mine.release();
    release.0.send(()).unwrap();
    mine.lock_keys(ks, 0, [b.as_slice()]).unwrap();
    holder.join().unwrap();
}

#[test]
fn the_script_job_waits_while_holding() {
    let ks = keyspace();
    let (a, b) = two_shards(ks);
    let (held_tx, held_rx) = mpsc::channel();
    let b2 = b.clone();
    let holder = std::thread::spawn(move || {
        let mut other = Locks::default();
        other.lock_keys(ks, 0, [b2.as_slice()]).unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    });
    held_rx.recv().unwrap();
    let gate = super::JobGate::default();
    let pass = gate.enter();
    let mut locks = Locks::for_job(&pass);
    locks.key(ks, 0, &a, 0).set(Value::Int(1), None);
    // Waits for the holder to finish, holding `a`'s shard.
    locks.key(ks, 0, &b, 0).set(Value::Int(1), None);
    assert!(locks.holds(ks, 0, &a) && locks.holds(ks, 0, &b));
    locks.release();
    drop(pass);
    holder.join().unwrap();
}
