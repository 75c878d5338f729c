//! Snapshots while writers keep writing, at the library level: threads
//! change the keyspace through the same `Locks` and `KeySlot` calls the
//! commands use while the walk runs, and the image must be the keyspace as
//! it was at the start, every key once, with no MULTI-style pair torn.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ferrokv::store::keyspace::hash_key;
use ferrokv::store::snapshot::testing::{collect, digest_encoder, image_now};
use ferrokv::store::{Keyspace, Locks, Value};

const DBS: usize = 4;
const PAIRS: usize = 5_000;
const NOW: i64 = 1_000_000;

fn keyspace() -> &'static Keyspace {
    Box::leak(Box::new(Keyspace::new(DBS, 16)))
}

/// The two keys of pair `i`, in different shards.
fn pair(ks: &Keyspace, i: usize) -> (Vec<u8>, Vec<u8>) {
    let a = format!("p{i}a").into_bytes();
    let sa = ks.shard_of(hash_key(&a));
    (0..1000)
        .map(|j| format!("p{i}b{j}").into_bytes())
        .find(|b| ks.shard_of(hash_key(b)) != sa)
        .map(|b| (a, b))
        .unwrap()
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn set(locks: &mut Locks, ks: &'static Keyspace, db: usize, key: &[u8], v: i64, ttl: bool) {
    let expire = ttl.then_some(NOW + v.rem_euclid(1000));
    locks.key(ks, db, key, NOW).set(Value::Int(v), expire);
    locks.release();
}

/// One writer: pairs in db 0 written together under one batch (as EXEC
/// does), and in the other databases overwrites, deletes, new keys,
/// deadlines, in-place edits, SWAPDB and FLUSHDB.
fn writer(ks: &'static Keyspace, seed: u64, stop: Arc<AtomicBool>, version: Arc<AtomicU64>) {
    let mut rng = Rng(seed);
    let mut locks = Locks::default();
    let pairs: Vec<_> = (0..PAIRS).map(|i| pair(ks, i)).collect();
    while !stop.load(Ordering::Relaxed) {
        let v = version.fetch_add(1, Ordering::Relaxed) as i64;
        match rng.below(100) {
            0..=49 => {
                let (a, b) = &pairs[rng.below(PAIRS)];
                let mut batch = locks.batch(ks);
                batch.key(0, a);
                batch.key(0, b);
                batch.take().unwrap();
                locks.key(ks, 0, a, NOW).set(Value::Int(v), None);
                locks.key(ks, 0, b, NOW).set(Value::Int(v), None);
                locks.release();
            }
            50..=69 => {
                let key = format!("k{}", rng.below(20_000));
                set(&mut locks, ks, 1, key.as_bytes(), v, v % 3 == 0);
            }
            70..=79 => {
                let key = format!("k{}", rng.below(20_000));
                locks.key(ks, 1, key.as_bytes(), NOW).remove();
                locks.release();
            }
            80..=89 => {
                let key = format!("k{}", rng.below(20_000));
                let mut slot = locks.key(ks, 1, key.as_bytes(), NOW);
                if let Some(idx) = slot.lookup() {
                    let _ = slot.entry_mut(idx).set_int_in_place(-v);
                }
                locks.release();
            }
            90..=97 => {
                let key = format!("n{v}");
                set(&mut locks, ks, 2 + rng.below(2), key.as_bytes(), v, false);
            }
            98 => {
                let mut batch = locks.batch(ks);
                batch.db(2);
                batch.db(3);
                batch.take().unwrap();
                ks.swap_dbs(&mut locks, 2, 3);
                locks.release();
            }
            _ => {
                if rng.below(20) == 0 {
                    let mut batch = locks.batch(ks);
                    batch.db(3);
                    batch.take().unwrap();
                    ks.flush_db(&mut locks, 3, false);
                    locks.release();
                }
            }
        }
    }
}

#[test]
fn snapshots_under_concurrent_writers_are_exact_images_of_their_start() {
    let ks = keyspace();
    let mut locks = Locks::default();
    for i in 0..PAIRS {
        let (a, b) = pair(ks, i);
        set(&mut locks, ks, 0, &a, 0, false);
        set(&mut locks, ks, 0, &b, 0, false);
    }
    for i in 0..20_000 {
        set(&mut locks, ks, 1, format!("k{i}").as_bytes(), i, i % 4 == 0);
    }
    for i in 0..5_000 {
        set(&mut locks, ks, 2, format!("c{i}").as_bytes(), i, false);
        set(&mut locks, ks, 3, format!("d{i}").as_bytes(), i, false);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let version = Arc::new(AtomicU64::new(1));
    let mut threads: Vec<_> = (0..4)
        .map(|t| {
            let (stop, version) = (stop.clone(), version.clone());
            std::thread::spawn(move || writer(ks, 0x9e37_79b9 + t, stop, version))
        })
        .collect();
    // Expiry and eviction run beside them, as the cron does.
    threads.push({
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut now = NOW;
            let mut rng = Rng(7);
            while !stop.load(Ordering::Relaxed) {
                now += 1;
                ks.active_expire(now, 200);
                let key = format!("k{}", rng.below(20_000));
                let _ = ks.evict_key(1, key.as_bytes(), false);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    });

    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        let mut locks = Locks::default();
        let snap = ks.snapshot(&mut locks, digest_encoder()).unwrap();
        let want = image_now(ks, &mut locks);
        locks.release();
        let before = version.load(Ordering::Relaxed);
        let (got, stats) = collect(snap, |n| {
            // A slow consumer, so writers interleave with the walk.
            if n % 4 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let writes = version.load(Ordering::Relaxed) - before;
        assert!(
            writes > 1000,
            "round {round}: writers barely ran ({writes})"
        );
        assert_eq!(got.len(), want.len(), "round {round}");
        for (k, v) in &want {
            assert_eq!(got.get(k), Some(v), "round {round}: {k:?}");
        }
        for i in 0..PAIRS {
            let (a, b) = pair(ks, i);
            assert_eq!(
                got[&(0, a)].0,
                got[&(0, b)].0,
                "round {round}: pair {i} torn"
            );
        }
        assert!(stats.saved > 0, "round {round}: {stats:?}");
        assert!(!ks.snapshot_in_progress());
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    // Quiet now: a last walk equals the keyspace, so every entry got its
    // table's colour back after the walks above.
    let mut locks = Locks::default();
    let snap = ks.snapshot(&mut locks, digest_encoder()).unwrap();
    let want = image_now(ks, &mut locks);
    locks.release();
    assert_eq!(collect(snap, |_| {}).unwrap().0, want);
}

/// BGSAVE's replies; the snapshot under it is the one tested above.
#[test]
fn bgsave_starts_refuses_and_schedules() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let bgsave = |c: &mut redis::Connection, args: &[&str]| -> String {
        match redis::cmd("BGSAVE").arg(args).query::<String>(c) {
            Ok(s) => s,
            Err(e) => format!("ERR {}", e.detail().unwrap_or_default()),
        }
    };
    // Until the last one ends, another is refused; then one starts again.
    let started = |c: &mut redis::Connection| {
        for _ in 0..500 {
            match bgsave(c, &[]).as_str() {
                "Background saving started" => return,
                "ERR Background save already in progress" => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => panic!("{other}"),
            }
        }
        panic!("BGSAVE never finished");
    };
    started(&mut c);
    started(&mut c);
    assert_eq!(bgsave(&mut c, &["now"]), "ERR syntax error");
    assert_eq!(bgsave(&mut c, &["schedule", "x"]), "ERR syntax error");
    // Inside EXEC it is scheduled, for the cron, as in Redis.
    // (Once the saves above are over: until then EXEC's BGSAVE is refused.)
    let mut scheduled = false;
    for _ in 0..500 {
        let r = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg("x")
            .arg(1)
            .ignore()
            .cmd("BGSAVE")
            .query::<(String,)>(&mut c);
        match r {
            Ok((s,)) => {
                assert_eq!(s, "Background saving scheduled");
                scheduled = true;
                break;
            }
            Err(e) => {
                assert!(e.to_string().contains("already in progress"), "{e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    assert!(scheduled);
    // The cron starts it, and it ends.
    started(&mut c);
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 20_001);
}
