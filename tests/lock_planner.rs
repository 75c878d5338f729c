//! A model test of the lock planner (`cmd::footprint`, `store::locks`):
//! many clients run random mixes of multi-key commands, transactions,
//! scripts that reach keys they did not declare, and whole-database
//! commands, against invariants that a torn multi-shard write would break.
//! A deadlock shows up as a read timeout (the watchdog) and fails the test.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use redis::Value;

const GROUPS: usize = 12;
const SET_MEMBERS: usize = 6;
const LIST_ITEMS: usize = 5;

/// A tiny deterministic generator (xorshift), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn pair(g: usize) -> (String, String) {
    // Different names spread a pair over different shards.
    (format!("pair:{g}:a"), format!("pair:{g}:b"))
}

fn is_expected_error(e: &redis::RedisError) -> bool {
    // RENAME of a token that is elsewhere; anything else is a failure
    // (an internal error would mean a footprint was not held).
    e.to_string().contains("no such key")
}

/// Sets up the set, list and token invariants again (after a FLUSHDB, or a
/// SWAPDB that brought an empty database in), as one transaction.
fn reinit(c: &mut redis::Connection) {
    let mut p = redis::pipe();
    p.atomic();
    p.cmd("DEL")
        .arg(&["set:1", "set:2", "list:1", "list:2", "tok:1", "tok:2"]);
    for m in 0..SET_MEMBERS {
        p.cmd("SADD").arg("set:1").arg(format!("m{m}"));
    }
    for i in 0..LIST_ITEMS {
        p.cmd("RPUSH").arg("list:1").arg(format!("i{i}"));
    }
    p.cmd("SET").arg("tok:1").arg("t");
    p.query::<Value>(c).unwrap();
}

/// The invariants, each read atomically: a pair's two keys are equal (or
/// both absent); the set pair holds SET_MEMBERS members or none; the list
/// pair LIST_ITEMS items or none; at most one token exists.
fn check(c: &mut redis::Connection, rng: &mut Rng) {
    let g = rng.below(GROUPS);
    let (a, b) = pair(g);
    match rng.below(6) {
        0 => {
            let (x, y): (Option<String>, Option<String>) =
                redis::cmd("MGET").arg(&a).arg(&b).query(c).unwrap();
            assert_eq!(x, y, "MGET saw a torn MSET on {a} {b}");
        }
        1 => {
            let (x, y): (Option<String>, Option<String>) = redis::pipe()
                .atomic()
                .cmd("GET")
                .arg(&a)
                .cmd("GET")
                .arg(&b)
                .query(c)
                .unwrap();
            assert_eq!(x, y, "EXEC saw a torn write on {a} {b}");
        }
        2 => {
            // Keys the script did not declare.
            let (x, y): (Option<String>, Option<String>) = redis::cmd("EVAL")
                .arg("return {redis.call('GET', ARGV[1]), redis.call('GET', ARGV[2])}")
                .arg(0)
                .arg(&a)
                .arg(&b)
                .query(c)
                .unwrap();
            assert_eq!(x, y, "a script saw a torn write on {a} {b}");
        }
        3 => {
            let (s1, s2, l1, l2): (usize, usize, usize, usize) = redis::pipe()
                .atomic()
                .cmd("SCARD")
                .arg("set:1")
                .cmd("SCARD")
                .arg("set:2")
                .cmd("LLEN")
                .arg("list:1")
                .cmd("LLEN")
                .arg("list:2")
                .query(c)
                .unwrap();
            assert!(
                s1 + s2 == 0 || s1 + s2 == SET_MEMBERS,
                "SMOVE torn: {s1}+{s2}"
            );
            assert!(
                l1 + l2 == 0 || l1 + l2 == LIST_ITEMS,
                "LMOVE torn: {l1}+{l2}"
            );
        }
        4 => {
            // SELECT inside the transaction: the plan follows it.
            let ((), (x, y), ()): ((), (Option<String>, Option<String>), ()) = redis::pipe()
                .atomic()
                .cmd("SELECT")
                .arg(1)
                .cmd("MGET")
                .arg(&a)
                .arg(&b)
                .cmd("SELECT")
                .arg(0)
                .query(c)
                .unwrap();
            assert_eq!(x, y, "EXEC in database 1 saw a torn write on {a} {b}");
        }
        _ => {
            let n: usize = redis::cmd("EXISTS")
                .arg("tok:1")
                .arg("tok:2")
                .query(c)
                .unwrap();
            assert!(n <= 1, "RENAME left two tokens");
        }
    }
}

/// One random write that keeps the invariants.
fn write(c: &mut redis::Connection, rng: &mut Rng, id: usize, round: usize) {
    let v = format!("v{id}-{round}");
    let (a, b) = pair(rng.below(GROUPS));
    let (a2, b2) = pair(rng.below(GROUPS));
    let r: redis::RedisResult<Value> = match rng.below(19) {
        0 | 1 => redis::cmd("MSET")
            .arg(&[&a, &v, &b, &v, &a2, &v, &b2, &v])
            .query(c),
        2 => redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&a)
            .arg(&v)
            .cmd("SELECT")
            .arg(0)
            .cmd("SET")
            .arg(&b)
            .arg(&v)
            .query(c),
        3 => redis::cmd("EVAL")
            .arg(
                "redis.call('SET', ARGV[1], ARGV[3]) redis.call('SET', ARGV[2], ARGV[3]) \
                 return redis.call('DEL', 'scratch')",
            )
            .arg(0)
            .arg(&a)
            .arg(&b)
            .arg(&v)
            .query(c),
        4 => redis::cmd("DEL").arg(&a).arg(&b).query(c),
        5 => redis::cmd("SMOVE")
            .arg(&if rng.below(2) == 0 {
                ["set:1", "set:2"]
            } else {
                ["set:2", "set:1"]
            })
            .arg(format!("m{}", rng.below(SET_MEMBERS)))
            .query(c),
        6 => redis::cmd("LMOVE")
            .arg(&if rng.below(2) == 0 {
                ["list:1", "list:2"]
            } else {
                ["list:2", "list:1"]
            })
            .arg("LEFT")
            .arg("RIGHT")
            .query(c),
        7 => redis::cmd("RENAME")
            .arg(&if rng.below(2) == 0 {
                ["tok:1", "tok:2"]
            } else {
                ["tok:2", "tok:1"]
            })
            .query(c),
        8 => redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg("zs:1")
            .arg(1)
            .arg(&v)
            .cmd("ZUNIONSTORE")
            .arg("zs:dst")
            .arg(3)
            .arg("zs:1")
            .arg("zs:2")
            .arg("zs:3")
            .cmd("ZREMRANGEBYRANK")
            .arg("zs:1")
            .arg(0)
            .arg(-20)
            .query(c),
        9 => redis::cmd("ZUNIONSTORE")
            .arg("zs:2")
            .arg(2)
            .arg("zs:1")
            .arg("zs:dst")
            .query(c),
        10 => redis::cmd("COPY")
            .arg(&a)
            .arg("copied")
            .arg("DB")
            .arg(3)
            .arg("REPLACE")
            .query(c),
        11 => match rng.below(3) {
            0 => redis::cmd("KEYS").arg("pair:*").query(c),
            1 => redis::cmd("DBSIZE").query(c),
            _ => redis::cmd("RANDOMKEY").query(c),
        },
        12 => redis::cmd("SCAN").arg(0).arg("COUNT").arg(50).query(c),
        13 if rng.below(8) == 0 => {
            let r = redis::cmd("FLUSHDB").query(c);
            reinit(c);
            r
        }
        14 if rng.below(8) == 0 => {
            // Database 1 holds only what a swap left there: it keeps the
            // invariants too (or is empty, set up again here).
            let r = redis::cmd("SWAPDB").arg(0).arg(1).query(c);
            reinit(c);
            r
        }
        15 => redis::cmd("LPUSH").arg("bl:1").arg(&v).query(c),
        16 => {
            // Served by an LPUSH above, or times out; the destination is
            // trimmed so the lists stay small.
            let r = redis::cmd("BLMOVE")
                .arg(&["bl:1", "bl:2", "LEFT", "RIGHT", "0.01"])
                .query(c);
            let _: () = redis::cmd("LTRIM")
                .arg("bl:2")
                .arg(0)
                .arg(9)
                .query(c)
                .unwrap();
            r
        }
        17 if rng.below(8) == 0 => {
            let r = redis::pipe()
                .atomic()
                .cmd("INFO")
                .arg("keyspace")
                .cmd("FLUSHALL")
                .cmd("DBSIZE")
                .query(c);
            reinit(c);
            r
        }
        _ => redis::pipe()
            .atomic()
            .cmd("MSET")
            .arg(&[&a, &v, &b, &v])
            .cmd("EVAL")
            .arg("return redis.call('MGET', ARGV[1], ARGV[2])")
            .arg(0)
            .arg(&a2)
            .arg(&b2)
            .cmd("SMOVE")
            .arg("set:1")
            .arg("set:2")
            .arg("m0")
            .query(c),
    };
    match r {
        Err(e) => assert!(is_expected_error(&e), "unexpected error: {e}"),
        // Errors inside a transaction come back as values.
        Ok(v) => assert!(!format!("{v:?}").contains("internal"), "{v:?}"),
    }
}

#[test]
fn random_multi_key_mixes_never_deadlock_nor_tear() {
    let srv = common::Server::start();
    let mut c = srv.client();
    reinit(&mut c);
    let clients = 12;
    let rounds = 1500;
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|id| {
            let mut c = redis::Client::open(srv.url())
                .unwrap()
                .get_connection_with_timeout(Duration::from_secs(5))
                .unwrap();
            // The watchdog: a deadlocked server never answers.
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1234_5678));
                for round in 0..rounds {
                    if rng.below(2) == 0 {
                        write(&mut c, &mut rng, id, round);
                    } else {
                        check(&mut c, &mut rng);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client failed (see its panic above)");
    }
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    eprintln!(
        "{} clients x {rounds} rounds in {:?}",
        clients,
        started.elapsed()
    );
}
