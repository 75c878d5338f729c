//! Nothing acknowledged is lost: with `appendfsync always`, 16 client
//! threads write (INCR, RPUSH, HSET, XADD, MULTI/EXEC, EVAL, and a
//! transaction that EXECABORTs) and record what the server acknowledged;
//! the server is killed with SIGKILL at a random moment, restarted in the
//! same directory, and every acknowledged write must be there, nothing a
//! client saw fail may be, and each transaction or script is whole (its
//! counter equals its list's length). BGREWRITEAOF runs at random
//! moments meanwhile, so kills also land during rewrites. `AOF_KILLS` sets the rounds (default 20;
//! scripts/soak_aof_kill.sh runs more); `AOF_KILL_SEED` fixes the seed.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, TempDir};

const THREADS: usize = 16;

const SCRIPT: &str = "redis.call('incr', KEYS[1]); return redis.call('rpush', KEYS[2], ARGV[1])";

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What one thread attempted and what was acknowledged, across rounds.
#[derive(Default)]
struct State {
    id: usize,
    /// A counter per thread to make each element unique.
    n: u64,
    /// INCR cnt: (highest acknowledged value, value if every attempt landed).
    cnt: (i64, i64),
    list: Vec<String>,
    hash: Vec<String>,
    stream: Vec<String>,
    /// MULTI { INCR mcnt; RPUSH mlist } EXEC.
    multi: (i64, i64),
    /// EVAL { INCR ecnt; RPUSH elist }.
    eval: (i64, i64),
}

fn is_io(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}

impl State {
    /// Runs operations until the connection fails (the kill).
    fn run(&mut self, con: &mut redis::Connection, rng: &mut Rng, stop: &AtomicBool) {
        let id = self.id;
        while !stop.load(Ordering::Relaxed) {
            self.n += 1;
            let el = format!("{id}-{}", self.n);
            let r: Result<(), redis::RedisError> = match rng.below(7) {
                0 => {
                    self.cnt.1 += 1;
                    redis::cmd("INCR")
                        .arg(format!("cnt:{id}"))
                        .query::<i64>(con)
                        .map(|v| self.cnt.0 = self.cnt.0.max(v))
                }
                1 => redis::cmd("RPUSH")
                    .arg(format!("list:{id}"))
                    .arg(&el)
                    .query::<i64>(con)
                    .map(|_| self.list.push(el)),
                2 => redis::cmd("HSET")
                    .arg(format!("hash:{id}"))
                    .arg(&el)
                    .arg("v")
                    .query::<i64>(con)
                    .map(|_| self.hash.push(el)),
                3 => redis::cmd("XADD")
                    .arg(format!("stream:{id}"))
                    .arg("*")
                    .arg("el")
                    .arg(&el)
                    .query::<String>(con)
                    .map(|xid| self.stream.push(xid)),
                4 => {
                    self.multi.1 += 1;
                    redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg(format!("mcnt:{id}"))
                        .cmd("RPUSH")
                        .arg(format!("mlist:{id}"))
                        .arg(&el)
                        .query::<(i64, i64)>(con)
                        .map(|(v, _)| self.multi.0 = self.multi.0.max(v))
                }
                5 => {
                    self.eval.1 += 1;
                    redis::cmd("EVAL")
                        .arg(SCRIPT)
                        .arg(2)
                        .arg(format!("ecnt:{id}"))
                        .arg(format!("elist:{id}"))
                        .arg(&el)
                        .query::<i64>(con)
                        .map(|_| {
                            self.eval.0 = self.eval.0.max(self.eval.1);
                        })
                }
                _ => {
                    // A transaction the server refuses at EXEC: the client
                    // sees it fail, so nothing of it may ever be present.
                    let r = redis::pipe()
                        .cmd("MULTI")
                        .cmd("RPUSH")
                        .arg(format!("fail:{id}"))
                        .arg(&el)
                        .cmd("NOSUCHCOMMAND")
                        .cmd("EXEC")
                        .query::<()>(con);
                    match r {
                        Err(e) if !is_io(&e) => Ok(()),
                        Err(e) => Err(e),
                        Ok(()) => panic!("EXEC with a bad command succeeded"),
                    }
                }
            };
            if let Err(e) = r {
                assert!(is_io(&e), "thread {id}: unexpected error {e}");
                return;
            }
        }
    }
}

fn start(dir: &Path) -> Server {
    Server::start_in(
        Some(dir),
        None,
        &[
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--aof-use-rdb-preamble",
            "no",
            "--save",
            "",
        ],
    )
}

fn get_int(c: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("GET")
        .arg(key)
        .query::<Option<i64>>(c)
        .unwrap()
        .unwrap_or(0)
}

fn strings(c: &mut redis::Connection, cmd: &mut redis::Cmd) -> std::collections::HashSet<String> {
    cmd.query::<Vec<String>>(c).unwrap().into_iter().collect()
}

/// Checks one thread's acknowledged writes against the restarted server,
/// then takes the server's values as the new baseline.
fn verify(c: &mut redis::Connection, s: &mut State, round: usize) {
    let id = s.id;
    let ctx = format!("round {round} thread {id}");
    let cnt = get_int(c, &format!("cnt:{id}"));
    assert!(
        s.cnt.0 <= cnt && cnt <= s.cnt.1,
        "{ctx}: cnt {cnt} not in {:?}",
        s.cnt
    );
    s.cnt = (cnt, cnt);
    let list = strings(
        c,
        redis::cmd("LRANGE")
            .arg(format!("list:{id}"))
            .arg(0)
            .arg(-1),
    );
    for el in &s.list {
        assert!(list.contains(el), "{ctx}: acknowledged RPUSH {el} lost");
    }
    let hash = strings(c, redis::cmd("HKEYS").arg(format!("hash:{id}")));
    for el in &s.hash {
        assert!(hash.contains(el), "{ctx}: acknowledged HSET {el} lost");
    }
    let ids: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("stream:{id}"))
        .arg("-")
        .arg("+")
        .query(c)
        .unwrap();
    let ids: std::collections::HashSet<String> = ids.into_iter().map(|(i, _)| i).collect();
    for xid in &s.stream {
        assert!(ids.contains(xid), "{ctx}: acknowledged XADD {xid} lost");
    }
    for (counter, list, state, what) in [
        ("mcnt", "mlist", &mut s.multi, "MULTI/EXEC"),
        ("ecnt", "elist", &mut s.eval, "EVAL"),
    ] {
        let n = get_int(c, &format!("{counter}:{id}"));
        let len: i64 = redis::cmd("LLEN")
            .arg(format!("{list}:{id}"))
            .query(c)
            .unwrap();
        assert_eq!(n, len, "{ctx}: {what} torn: counter {n}, list {len}");
        assert!(
            state.0 <= n && n <= state.1,
            "{ctx}: {what} count {n} not in {state:?}"
        );
        *state = (n, n);
    }
    let failed: i64 = redis::cmd("EXISTS")
        .arg(format!("fail:{id}"))
        .query(c)
        .unwrap();
    assert_eq!(failed, 0, "{ctx}: a transaction that failed is present");
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let rounds: usize = std::env::var("AOF_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("AOF_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("aof_kill: seed {seed}, {rounds} kills");
    let mut rng = Rng(seed);
    let d = TempDir::new("aof-kill");
    let mut states: Vec<State> = (0..THREADS)
        .map(|id| State {
            id,
            ..State::default()
        })
        .collect();
    let started = Instant::now();
    let mut acked_total = 0usize;
    for round in 0..rounds {
        let srv = start(d.path());
        let stop = Arc::new(AtomicBool::new(false));
        let port = srv.port;
        let threads: Vec<_> = states
            .drain(..)
            .map(|mut s| {
                let stop = stop.clone();
                let seed = rng.below(u64::MAX) | 1;
                std::thread::spawn(move || {
                    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                    // The kill can come before the connection (a loaded box).
                    if let Ok(mut con) = client.get_connection() {
                        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        s.run(&mut con, &mut Rng(seed), &stop);
                    }
                    s
                })
            })
            .collect();
        // Rewrites at random moments, so kills also land mid-rewrite.
        let rewriter = {
            let stop = stop.clone();
            let pause = 20 + rng.below(100);
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let Ok(mut con) = client.get_connection() else {
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(pause));
                    let r = redis::cmd("BGREWRITEAOF").query::<String>(&mut con);
                    if r.as_ref().is_err_and(is_io) {
                        return;
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        drop(srv); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        states = threads.into_iter().map(|t| t.join().unwrap()).collect();
        rewriter.join().unwrap();
        let srv = start(d.path());
        let mut c = srv.client();
        for s in &mut states {
            verify(&mut c, s, round);
        }
        drop(srv);
    }
    for s in &states {
        acked_total += s.list.len() + s.hash.len() + s.stream.len();
        acked_total += (s.cnt.0 + s.multi.0 + s.eval.0) as usize;
    }
    let manifest =
        std::fs::read_to_string(d.path().join("appendonlydir/appendonly.aof.manifest")).unwrap();
    eprintln!(
        "aof_kill: {rounds} kills, {acked_total} acknowledged writes checked, {:.1} s; final manifest:\n{manifest}",
        started.elapsed().as_secs_f64()
    );
    assert!(acked_total > 0);
}
