//! The replay invariant: replaying a server's effect stream into an empty
//! server rebuilds the same dataset (DEBUG DIGEST), as AOF and replicas
//! will rely on.
//!
//! A full server runs in this process (real listener, worker threads, cron
//! with active expiry and eviction) with an [`EffectSink`] recording every
//! effect. Eight client threads run a random mix of every write family
//! against it: strings, lists (with blocking pops and BLMOVE served by other
//! clients' pushes), hashes, sets, sorted sets, streams with consumer groups,
//! key commands across databases, MULTI/EXEC, EVAL touching keys it did not
//! declare, short TTLs, and a `maxmemory` small enough that allkeys-lru
//! evicts. Then the recorded stream is replayed into a [`Harness`] and both
//! DEBUG DIGESTs must match (consumer groups, which Redis 7.0's digest
//! leaves out, are compared by XINFO GROUPS and XPENDING).
//!
//! Time. The replay runs with its clock frozen at the moment recording
//! started, so it never expires a key itself: like a replica, it removes
//! expired keys only when the stream's DELs say so. That is exact because
//! every command the recorder ran saw a clock at least that late: a key the
//! recorder found alive is alive on the replay too, and a key it found
//! expired was reclaimed with a DEL published before the command's own
//! effect. Before comparing, the recorder's clients stop, eviction is turned
//! off, and the cron's active expiry reclaims every key whose (short) TTL
//! passed (waiting until DBSIZE, which counts unreclaimed keys, equals the
//! live key count); those DELs are part of the stream. TTLs are otherwise
//! long, and the digest records only whether a key has a TTL, not when.
//!
//! Framing: other connections' effects can fall between a transaction's
//! MULTI and EXEC records (even another MULTI); the replay, one connection,
//! queues them into the open transaction (a nested MULTI and the extra EXEC
//! answer errors), which keeps the order and so the result. The count is
//! printed.
//!
//! Rounds: each round runs the workload, quiesces, replays what was
//! recorded since the last round and compares. `REPLAY_SOAK_SECS=n` keeps
//! running rounds for n seconds (scripts/soak_replay.sh, release build);
//! `REPLAY_OPS` sets the operations per client per round; `REPLAY_SEED`
//! fixes the random seed (printed on failure); `REPLAY_BLMOVE=0` leaves out
//! BLMOVE/BRPOPLPUSH (whose serve path is being reworked);
//! `REPLAY_WORKERS` (default 4) sets the recorder's worker threads;
//! `REPLAY_LIST_KEYS` (default 8) sets the list keys per database, fewer
//! for more contention on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrokv::cmd::CommandTable;
use ferrokv::config::{Config, file};
use ferrokv::server::{self, Server};
use ferrokv::store::{Effect, EffectSink};
use ferrokv::testkit::Harness;
use parking_lot::Mutex;

#[global_allocator]
static GLOBAL: ferrokv::alloc::Counting<std::alloc::System> =
    ferrokv::alloc::Counting(std::alloc::System);

/// Client threads.
const CLIENTS: usize = 8;
/// Operations per client per round (debug build default; REPLAY_OPS).
const DEFAULT_OPS: usize = 1000;
/// Rounds when not soaking.
const DEFAULT_ROUNDS: usize = 3;
/// Databases the workload uses.
const DBS: usize = 3;
/// Include BLMOVE and BRPOPLPUSH (REPLAY_BLMOVE=0 turns them off).
const BLMOVE_DEFAULT: bool = true;

type Record = (usize, Vec<Vec<u8>>);

#[path = "replay_digest/workload.rs"]
mod workload;
use workload::{Client, ERRORS, Rng};

/// Records effects to a file, so the recording costs no counted memory
/// (the recorder evicts by the memory this whole process uses).
struct Sink {
    /// Reads the file back; its name is removed at once (the servers
    /// holding a sink never drop it, and a soak writes gigabytes).
    file: Mutex<std::fs::File>,
    out: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl Sink {
    fn new() -> Sink {
        // One file per sink: the tests of this file run in one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ferrokv-replay-{}-{n}.bin", std::process::id()));
        let file = std::fs::File::create(&path).expect("effect file");
        let reader = std::fs::File::open(&path).expect("effect file");
        std::fs::remove_file(&path).expect("unlink effect file");
        Sink {
            file: Mutex::new(reader),
            out: Mutex::new(std::io::BufWriter::with_capacity(1 << 16, file)),
        }
    }

    /// Everything recorded since the last call (the recorder is quiet).
    fn take(&self, from: &mut u64) -> Vec<Record> {
        use std::io::{Read, Seek, Write};
        self.out.lock().flush().expect("flush effects");
        let mut f = self.file.lock();
        f.seek(std::io::SeekFrom::Start(*from)).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        // A record being written right now (expiry on the cron thread) may
        // be cut short: only whole records are taken, the rest waits.
        let word = |pos: &mut usize| -> Option<usize> {
            let b = bytes.get(*pos..*pos + 4)?;
            *pos += 4;
            Some(u32::from_le_bytes(b.try_into().unwrap()) as usize)
        };
        let mut out = Vec::new();
        let mut pos = 0;
        let mut whole = 0;
        'records: while pos < bytes.len() {
            let (Some(db), Some(argc)) = (word(&mut pos), word(&mut pos)) else {
                break;
            };
            let mut lens = Vec::with_capacity(argc.min(1024));
            for _ in 0..argc {
                let Some(n) = word(&mut pos) else {
                    break 'records;
                };
                lens.push(n);
            }
            let mut argv = Vec::with_capacity(lens.len());
            for n in lens {
                let Some(a) = bytes.get(pos..pos + n) else {
                    break 'records;
                };
                argv.push(a.to_vec());
                pos += n;
            }
            out.push((db, argv));
            whole = pos;
        }
        *from += whole as u64;
        out
    }
}

impl EffectSink for Sink {
    fn effects(&self, records: &[Effect<'_>]) {
        use std::io::Write;
        // One lock for the whole group: a transaction's records stay together.
        let mut out = self.out.lock();
        for r in records {
            let mut head = Vec::with_capacity(8 + 4 * r.argv.len());
            head.extend_from_slice(&(r.db as u32).to_le_bytes());
            head.extend_from_slice(&(r.argv.len() as u32).to_le_bytes());
            for a in r.argv {
                head.extend_from_slice(&(a.len() as u32).to_le_bytes());
            }
            out.write_all(&head).expect("record effect");
            for a in r.argv {
                out.write_all(a).expect("record effect");
            }
        }
    }
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn config_from(args: &[&str]) -> (Config, CommandTable) {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (cf, lines) = file::collect(&argv).unwrap_or_else(|e| panic!("{}", e.render()));
    let config = Config::default();
    let mut commands = CommandTable::build(&ferrokv::cmd::handlers());
    file::apply(&config, &mut commands, &lines, cf.as_deref())
        .unwrap_or_else(|e| panic!("{}", e.render()));
    (config, commands)
}

/// The recorder's RDB file: its save points stay on (BGSAVE's snapshot
/// walks run under the workload, SWAPDB included), but in a file of its
/// own, removed when this guard drops (also when the test fails), so a
/// later run never loads it at start-up and begins with data the replay
/// lacks. The server outlives the test (it is leaked), so its save points
/// are turned off and a running save waited for first.
struct RdbFile {
    name: String,
    port: u16,
}

impl Drop for RdbFile {
    fn drop(&mut self) {
        if let Ok(mut c) = connect(self.port) {
            let _ = redis::cmd("CONFIG")
                .arg("SET")
                .arg("save")
                .arg("")
                .query::<redis::Value>(&mut c);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let info: String = redis::cmd("INFO")
                    .arg("persistence")
                    .query(&mut c)
                    .unwrap_or_default();
                if !info.contains("rdb_bgsave_in_progress:1") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_file(&self.name);
    }
}

/// Starts a full server in this process, its effects recorded by `sink`;
/// keep the returned guard for as long as the server runs.
fn start_recorder(sink: Arc<Sink>) -> (u16, RdbFile) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("replay-digest-{}-{n}.rdb", std::process::id());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = port.to_string();
    let (config, commands) = config_from(&[
        "--port",
        &p,
        "--bind",
        "127.0.0.1",
        "--enable-debug-command",
        "yes",
        "--hz",
        "100",
        "--maxmemory-policy",
        "allkeys-lru",
        "--loglevel",
        "warning",
        "--dbfilename",
        &name,
    ]);
    let srv: &'static Server = Box::leak(Box::new(Server::with_commands(config, None, commands)));
    srv.ks.add_effect_sink(sink);
    // More workers than cores: commands are preempted while holding shard
    // locks, which brings out interleavings two workers rarely show.
    let workers = env_num("REPLAY_WORKERS").unwrap_or(4) as usize;
    srv.workers
        .store(workers.max(1), std::sync::atomic::Ordering::Relaxed);
    std::thread::spawn(move || server::run(srv));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut c) = connect(port)
            && redis::cmd("PING").query::<String>(&mut c).is_ok()
        {
            return (port, RdbFile { name, port });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("recorder did not start");
}

fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()
}

fn query(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Nil => "nil".into(),
        redis::Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(text).collect();
            format!("[{}]", inner.join(" "))
        }
        other => format!("{other:?}"),
    }
}

/// The replaying side: a Harness with its clock frozen at `t0`.
struct Replay {
    h: Harness,
    db: usize,
}

impl Replay {
    fn new(t0: i64) -> Replay {
        let (config, _) = config_from(&["--enable-debug-command", "yes"]);
        let mut h = Harness::with_config(config);
        h.now_ms = Some(t0);
        Replay { h, db: 0 }
    }

    fn run(&mut self, args: &[&str]) -> redis::Value {
        let reply = self.h.run(args);
        if args[0].eq_ignore_ascii_case("select") && reply.starts_with('+') {
            self.db = args[1].parse().unwrap();
        }
        redis::parse_redis_value(reply.as_bytes()).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn apply(&mut self, (db, argv): &Record) {
        if *db != self.db {
            self.h.run(&["SELECT", &db.to_string()]);
            self.db = *db;
        }
        let argv: Vec<&str> = argv
            .iter()
            .map(|a| std::str::from_utf8(a).expect("the workload is ASCII"))
            .collect();
        self.run(&argv);
    }
}

/// What a database holds, by key: type and DIGEST-VALUE; consumer groups
/// of streams by XINFO GROUPS and XPENDING (Redis's digest leaves them out).
fn describe(run: &mut dyn FnMut(&[&str]) -> redis::Value, db: usize) -> Vec<String> {
    run(&["SELECT", &db.to_string()]);
    let keys = match run(&["KEYS", "*"]) {
        redis::Value::Array(ks) => ks.iter().map(text).collect::<Vec<_>>(),
        other => panic!("KEYS: {other:?}"),
    };
    let mut out = Vec::new();
    for k in keys {
        let ty = text(&run(&["TYPE", &k]));
        let d = text(&run(&["DEBUG", "DIGEST-VALUE", &k]));
        out.push(format!("{k} {ty} {d}"));
        if ty == "stream" {
            let groups = without_read_counters(run(&["XINFO", "GROUPS", &k]));
            out.push(format!("{k} groups {}", text(&groups)));
            if let redis::Value::Array(gs) = groups {
                for g in gs {
                    if let redis::Value::Array(fields) = g {
                        let name = text(&fields[1]);
                        let p = text(&run(&["XPENDING", &k, &name]));
                        out.push(format!("{k} pending {name} {p}"));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// XINFO GROUPS less each group's `entries-read` and `lag`: Redis 7.0
/// propagates a `>` read of XREADGROUP as XCLAIM ... LASTID, which leaves
/// the replayed group's count of entries read unknown (as it does on a
/// Redis replica), so those two fields legitimately differ.
fn without_read_counters(groups: redis::Value) -> redis::Value {
    let redis::Value::Array(gs) = groups else {
        return groups;
    };
    let gs = gs
        .into_iter()
        .map(|g| match g {
            redis::Value::Array(fields) => {
                let mut kept = Vec::with_capacity(fields.len());
                let mut it = fields.into_iter();
                while let (Some(name), Some(value)) = (it.next(), it.next()) {
                    let n = text(&name);
                    if n != "entries-read" && n != "lag" {
                        kept.extend([name, value]);
                    }
                }
                redis::Value::Array(kept)
            }
            other => other,
        })
        .collect();
    redis::Value::Array(gs)
}

/// A key's value in a readable form (for failure reports).
fn show_value(run: &mut dyn FnMut(&[&str]) -> redis::Value, db: usize, key: &str) -> String {
    run(&["SELECT", &db.to_string()]);
    let ty = text(&run(&["TYPE", key]));
    let v = match ty.as_str() {
        "string" => run(&["GET", key]),
        "list" => run(&["LRANGE", key, "0", "-1"]),
        "set" => run(&["SMEMBERS", key]),
        "zset" => run(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        "hash" => run(&["HGETALL", key]),
        "stream" => run(&["XRANGE", key, "-", "+"]),
        _ => redis::Value::Nil,
    };
    let ttl = text(&run(&["PTTL", key]));
    format!("{ty} ttl {ttl} {}", text(&v))
}

fn live_equals_dbsize(con: &mut redis::Connection) -> bool {
    (0..DBS).all(|db| {
        query(con, &["SELECT", &db.to_string()]);
        let size = text(&query(con, &["DBSIZE"]));
        let live = match query(con, &["KEYS", "*"]) {
            redis::Value::Array(ks) => ks.len(),
            _ => usize::MAX,
        };
        size == live.to_string()
    })
}

#[test]
fn replaying_the_effect_stream_rebuilds_the_dataset() {
    let seed = env_num("REPLAY_SEED").unwrap_or_else(|| ferrokv::util::rand::seed() | 1);
    let ops = env_num("REPLAY_OPS").map_or(DEFAULT_OPS, |n| n as usize);
    let soak = env_num("REPLAY_SOAK_SECS").map(Duration::from_secs);
    let blmove = env_num("REPLAY_BLMOVE").map_or(BLMOVE_DEFAULT, |n| n != 0);
    let lists = env_num("REPLAY_LIST_KEYS").unwrap_or(8).max(1);
    eprintln!("replay_digest: seed {seed} ops/client/round {ops} blmove {blmove}");

    let sink = Arc::new(Sink::new());
    let mut read_to = 0u64;
    let t0 = ferrokv::server::now_ms();
    let (port, _rdb) = start_recorder(sink.clone());
    let mut admin = connect(port).unwrap();
    let mut replay = Replay::new(t0);
    let started = Instant::now();
    let total_ops = Arc::new(AtomicU64::new(0));
    let mut records = 0usize;
    let mut history: Vec<Record> = Vec::new();
    let mut families = std::collections::BTreeMap::new();
    let (mut depth, mut interleaved) = (0usize, 0usize);
    let mut round = 0usize;
    loop {
        // Eviction on for the round: a little above what is in use now (the
        // replay side lives in this process too, so its memory counts).
        let used = ferrokv::alloc::used_memory();
        query(
            &mut admin,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                &(used + (1 << 20)).to_string(),
            ],
        );
        query(&mut admin, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let total = total_ops.clone();
                let stop = stop.clone();
                let seed =
                    seed ^ ((round * CLIENTS + i) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                std::thread::spawn(move || {
                    let mut con = connect(port).unwrap();
                    let mut c = Client {
                        rng: Rng(seed | 1),
                        db: 0,
                        ids: Vec::new(),
                        blmove,
                        lists,
                    };
                    for _ in 0..ops {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        c.run_one(&mut con);
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut failed = false;
        for t in threads {
            failed |= t.join().is_err();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(!failed, "a client thread failed (seed {seed})");

        // Quiesce: no eviction; let the cron reclaim every expired key.
        query(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]);
        std::thread::sleep(Duration::from_millis(300));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !live_equals_dbsize(&mut admin) {
            assert!(Instant::now() < deadline, "expired keys were not reclaimed");
            std::thread::sleep(Duration::from_millis(50));
        }
        query(&mut admin, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        let batch = sink.take(&mut read_to);
        records += batch.len();
        for (_, argv) in &batch {
            let name = String::from_utf8_lossy(&argv[0]).to_ascii_uppercase();
            // Other connections' effects may fall between a transaction's
            // MULTI and EXEC (they touch other shards, so they commute);
            // counted to report how often the replay sees that.
            match name.as_str() {
                "MULTI" if depth > 0 => interleaved += 1,
                "MULTI" => depth += 1,
                "EXEC" => depth = depth.saturating_sub(1),
                _ => {}
            }
            *families.entry(name).or_insert(0usize) += 1;
        }
        for r in &batch {
            replay.apply(r);
        }
        replay.h.take_effects();

        let ours = text(&query(&mut admin, &["DEBUG", "DIGEST"]));
        let theirs = text(&replay.run(&["DEBUG", "DIGEST"]));
        let mut diffs = Vec::new();
        for db in 0..DBS {
            let a = describe(&mut |args| query(&mut admin, args), db);
            let b = describe(&mut |args| replay.run(args), db);
            for line in a.iter().filter(|l| !b.contains(l)) {
                diffs.push(format!("db{db} recorded: {line}"));
            }
            for line in b.iter().filter(|l| !a.contains(l)) {
                diffs.push(format!("db{db} replayed: {line}"));
            }
        }
        query(&mut admin, &["SELECT", "0"]);
        if ours != theirs || !diffs.is_empty() {
            let mut report =
                format!("round {round} (seed {seed}): digest {ours} recorded, {theirs} replayed\n");
            for d in diffs.iter().take(10) {
                report.push_str(&format!("  {d}\n"));
                let mut w = d.split_whitespace();
                let db: usize = w.next().unwrap_or_default()[2..].parse().unwrap_or(0);
                let key = w.nth(1).unwrap_or_default();
                for (side, v) in [
                    (
                        "recorded",
                        show_value(&mut |a| query(&mut admin, a), db, key),
                    ),
                    ("replayed", show_value(&mut |a| replay.run(a), db, key)),
                ] {
                    report.push_str(&format!("    {side}: {}\n", &v[..v.len().min(400)]));
                }
                let touching: Vec<String> = history
                    .iter()
                    .chain(&batch)
                    .filter(|(rdb, argv)| {
                        // The key in this database, or moved across
                        // databases (MOVE, COPY ... DB), or whole
                        // databases swapped or flushed.
                        let names = argv.iter().any(|a| a == key.as_bytes());
                        let across = [&b"MOVE"[..], b"COPY"]
                            .iter()
                            .any(|c| argv[0].eq_ignore_ascii_case(c));
                        (names && (*rdb == db || across))
                            || [&b"SWAPDB"[..], b"FLUSHDB", b"FLUSHALL"]
                                .iter()
                                .any(|c| argv[0].eq_ignore_ascii_case(c))
                    })
                    .map(|(db, argv)| {
                        let words: Vec<_> =
                            argv.iter().map(|a| String::from_utf8_lossy(a)).collect();
                        format!("    {db}: {}", words.join(" "))
                    })
                    .collect();
                let from = touching.len().saturating_sub(40);
                for t in &touching[from..] {
                    report.push_str(&format!("{}\n", &t[..t.len().min(160)]));
                }
            }
            panic!("{report}");
        }
        // The last round's records, for the report of a later failure.
        history = batch;
        round += 1;
        let more = match soak {
            Some(d) => started.elapsed() < d,
            None => round < DEFAULT_ROUNDS,
        };
        if !more {
            break;
        }
    }
    let stats = text(&query(&mut admin, &["INFO", "stats"]));
    let stat = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    eprintln!(
        "replay_digest: expired_keys {} evicted_keys {}; errors {:?}; effects by command {families:?}",
        stat("expired_keys"),
        stat("evicted_keys"),
        ERRORS.lock()
    );
    eprintln!("replay_digest: {interleaved} MULTI records inside another MULTI ... EXEC");
    eprintln!(
        "replay_digest: {round} rounds, {} ops, {records} effect records, {:.1} s",
        total_ops.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

/// Found by the replay test: BLMOVE served at once rotated a one-element
/// list onto itself by pop then push, so the key went away and came back
/// without its TTL (LMOVE, its effect, keeps it, as Redis does).
#[test]
fn blmove_rotating_one_element_keeps_the_ttl() {
    for cmd in [
        &["BLMOVE", "l", "l", "RIGHT", "LEFT", "0"][..],
        &["BRPOPLPUSH", "l", "l", "0"],
    ] {
        let mut h = Harness::new();
        h.run(&["RPUSH", "l", "a"]);
        h.run(&["PEXPIRE", "l", "100000"]);
        assert_eq!(h.run(cmd), "$1\r\na\r\n");
        assert_eq!(h.run(&["EXISTS", "l"]), ":1\r\n");
        assert_ne!(h.run(&["PTTL", "l"]), ":-1\r\n", "{cmd:?}");
    }
}

/// The known BLMOVE serve-path gap, made likely: a waiter on `a` moving to
/// `b` is served while a long LREM holds `b`'s shard, so the push to `b` is
/// deferred to the waiter's connection while the LMOVE effect is published
/// at once, before the LREM's. The replay then removes the moved element
/// too. Fixed: a waiter whose destination is busy is not popped for; it
/// serves itself, taking both shards (`blocking::serve_self`).
#[test]
fn blmove_served_while_destination_is_busy() {
    let sink = Arc::new(Sink::new());
    let t0 = ferrokv::server::now_ms();
    let (port, _rdb) = start_recorder(sink.clone());
    let mut admin = connect(port).unwrap();
    let mut read_to = 0;
    let mut replay = Replay::new(t0);
    for attempt in 0..10 {
        query(&mut admin, &["FLUSHALL"]);
        query(&mut admin, &["RPUSH", "b", "v"]);
        let xs: Vec<&str> = vec!["x"; 10_000];
        for _ in 0..30 {
            let mut args = vec!["RPUSH", "b"];
            args.extend(&xs);
            query(&mut admin, &args);
        }
        let waiter = std::thread::spawn(move || {
            let mut c = connect(port).unwrap();
            query(&mut c, &["BLMOVE", "a", "b", "RIGHT", "LEFT", "5"])
        });
        let mut probe = connect(port).unwrap();
        while text(&query(&mut probe, &["INFO", "clients"])).contains("blocked_clients:0") {
            std::thread::sleep(Duration::from_millis(2));
        }
        let lrem = std::thread::spawn(move || {
            let mut c = connect(port).unwrap();
            query(&mut c, &["LREM", "b", "0", "v"])
        });
        std::thread::sleep(Duration::from_millis(1 + attempt));
        query(&mut probe, &["RPUSH", "a", "v"]);
        waiter.join().unwrap();
        lrem.join().unwrap();
        let mut order = Vec::new();
        for r in sink.take(&mut read_to) {
            if r.1.len() < 8 {
                let words: Vec<_> = r.1.iter().map(|a| String::from_utf8_lossy(a)).collect();
                order.push(words.join(" "));
            }
            replay.apply(&r);
        }
        let ours = text(&query(&mut admin, &["DEBUG", "DIGEST"]));
        let theirs = text(&replay.run(&["DEBUG", "DIGEST"]));
        assert_eq!(
            ours, theirs,
            "attempt {attempt}: the replay differs; records {order:?}"
        );
        replay.h.take_effects();
    }
}

/// The serve path's form of the TTL bug fixed above: a BLMOVE waiter
/// rotating `l` onto itself, served by a transaction that creates `l` and
/// gives it a TTL, pops the key away and pushes it back without the TTL
/// (Redis keeps it), while its effect (LMOVE l l) replays keeping it.
/// Fixed: the serve path rotates within one key in one edit, as LMOVE.
#[test]
fn blmove_served_onto_itself_keeps_the_ttl() {
    let (port, _rdb) = start_recorder(Arc::new(Sink::new()));
    let waiter = std::thread::spawn(move || {
        let mut c = connect(port).unwrap();
        query(&mut c, &["BLMOVE", "l", "l", "RIGHT", "LEFT", "5"])
    });
    let mut c = connect(port).unwrap();
    while text(&query(&mut c, &["INFO", "clients"])).contains("blocked_clients:0") {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut p = redis::pipe();
    p.atomic()
        .cmd("RPUSH")
        .arg("l")
        .arg("a")
        .cmd("PEXPIRE")
        .arg("l")
        .arg(100_000);
    let _: redis::Value = p.query(&mut c).unwrap();
    assert_eq!(text(&waiter.join().unwrap()), "a");
    assert_ne!(text(&query(&mut c, &["PTTL", "l"])), "-1");
}
