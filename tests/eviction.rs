//! maxmemory and eviction over real sockets: memory stays bounded under
//! allkeys-lru and recently read keys survive, noeviction refuses writes
//! with Redis's exact error, volatile-ttl takes the nearest deadlines,
//! evictions fire `evicted` keyspace events and break WATCH.

mod common;

use std::time::Duration;

use common::{Server, info_num, resp};
use redis::Connection;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn used_memory(c: &mut Connection) -> u64 {
    info_num(c, "memory", "used_memory") as u64
}

fn set_config(c: &mut Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(c)
        .unwrap();
}

/// The error text of a command expected to fail.
fn error_of(c: &mut Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let err = cmd.query::<redis::Value>(c).expect_err("expected an error");
    // The crate splits "CODE detail"; put Redis's line back together.
    match (err.code(), err.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => err.to_string(),
    }
}

/// Writes new keys (`new:<n>`, `value` each) until INFO counts `evicted`
/// evicted keys.
fn write_until_evicted(c: &mut Connection, value: &str, evicted: u64) {
    let mut n = 0;
    while info_num(c, "stats", "evicted_keys") < evicted as i64 {
        let mut p = redis::pipe();
        for _ in 0..10 {
            p.cmd("SET").arg(format!("new:{n}")).arg(value).ignore();
            n += 1;
        }
        let _: () = p.query(c).unwrap();
        assert!(n < 100_000, "nothing was evicted");
    }
}

/// How many of `<prefix>:0` .. `<prefix>:199` are still there.
fn survivors(c: &mut Connection, prefix: &str) -> usize {
    (0..200)
        .filter(|i| exists(c, &format!("{prefix}:{i}")))
        .count()
}

fn exists(c: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(c).unwrap() == 1
}

#[test]
fn allkeys_lru_stays_bounded_and_keeps_recently_read_keys() {
    let srv = Server::start_with(&[
        "--maxmemory-policy",
        "allkeys-lru",
        // Redis's approximation needs 10 samples to tell keys one second
        // apart from the rest with some confidence (5 barely does, there too).
        "--maxmemory-samples",
        "10",
    ]);
    let mut c = srv.client();
    // About 1.6 MB of room above what the empty server uses: enough for
    // the 400 keys below and some 1,000 more, so evicting 150 keys samples
    // a population where the cold keys are findable.
    let limit = used_memory(&mut c) + 1_600_000;
    set_config(&mut c, "maxmemory", &limit.to_string());
    let value = "v".repeat(1000);
    let set_all = |c: &mut Connection, prefix: &str| {
        let mut p = redis::pipe();
        for i in 0..200 {
            p.cmd("SET")
                .arg(format!("{prefix}:{i}"))
                .arg(&value)
                .ignore();
        }
        let _: () = p.query(c).unwrap();
    };
    set_all(&mut c, "cold");
    set_all(&mut c, "hot");
    assert_eq!(info_num(&mut c, "stats", "evicted_keys"), 0);
    // Access times have a one-second resolution: read the hot keys a
    // second after writing, and write new keys a second after that.
    std::thread::sleep(Duration::from_millis(1100));
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("GET").arg(format!("hot:{i}")).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    write_until_evicted(&mut c, &value, 150);
    let (hot, cold) = (survivors(&mut c, "hot"), survivors(&mut c, "cold"));
    assert!(
        hot > cold + 30,
        "recently read keys should survive: hot {hot}, cold {cold}"
    );

    // 50 MB more, 100 KB per pipeline: memory stays at the limit.
    let mut peak_seen = 0;
    for batch in 0..500 {
        let mut p = redis::pipe();
        for j in 0..100 {
            p.cmd("SET")
                .arg(format!("fill:{batch}:{j}"))
                .arg(&value)
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
        if batch % 10 == 0 {
            peak_seen = peak_seen.max(used_memory(&mut c));
        }
    }
    let slack = 512 * 1024;
    assert!(
        peak_seen <= limit + slack,
        "used_memory {peak_seen} went past {limit} + {slack}"
    );
    assert!(used_memory(&mut c) <= limit + slack);
    assert!(info_num(&mut c, "stats", "evicted_keys") > 40_000);
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(dbsize > 0 && dbsize < 4096, "dbsize {dbsize}");
}

/// Sends SET until it is refused for memory (eviction that ran out of its
/// time budget lets commands through while it goes on).
fn set_until_oom(c: &mut Connection) -> String {
    for _ in 0..1000 {
        if let Err(err) = redis::cmd("SET").arg("x").arg("y").query::<redis::Value>(c) {
            return match (err.code(), err.detail()) {
                (Some(code), Some(detail)) => format!("{code} {detail}"),
                _ => err.to_string(),
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("SET was never refused");
}

#[test]
fn noeviction_refuses_writes_but_reads_and_deletes_work() {
    let srv = Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("n").arg("1").query(&mut c).unwrap();
    set_config(&mut c, "maxmemory", "1");
    assert_eq!(error_of(&mut c, &["SET", "x", "y"]), OOM);
    assert_eq!(error_of(&mut c, &["INCR", "n"]), OOM);
    assert_eq!(error_of(&mut c, &["LPUSH", "l", "a"]), OOM);
    let got: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(got, "v");
    let deleted: i64 = redis::cmd("DEL").arg("k").query(&mut c).unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(info_num(&mut c, "stats", "evicted_keys"), 0);
    assert!(exists(&mut c, "n"), "noeviction evicts nothing");

    // In a transaction, queuing is refused and EXEC then aborts.
    let mut raw = srv.raw();
    let multi = resp(&[b"MULTI"]);
    let set = resp(&[b"SET", b"a", b"b"]);
    let exec = resp(&[b"EXEC"]);
    let want = format!(
        "+OK\r\n-{OOM}\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    let got = raw.roundtrip(&[multi, set, exec].concat(), want.len());
    assert_eq!(String::from_utf8_lossy(&got), want);

    // A transaction queued before the limit was hit: EXEC is refused and
    // the transaction discarded.
    set_config(&mut c, "maxmemory", "0");
    let queued = "+OK\r\n+QUEUED\r\n";
    let got = raw.roundtrip(
        &[resp(&[b"MULTI"]), resp(&[b"SET", b"a", b"b"])].concat(),
        queued.len(),
    );
    assert_eq!(String::from_utf8_lossy(&got), queued);
    set_config(&mut c, "maxmemory", "1");
    let want = format!(
        "-EXECABORT Transaction discarded because of: {OOM}\r\n-ERR EXEC without MULTI\r\n"
    );
    let got = raw.roundtrip(&[resp(&[b"EXEC"]), resp(&[b"EXEC"])].concat(), want.len());
    assert_eq!(String::from_utf8_lossy(&got), want);

    // A script's first denyoom call is refused; allow-oom scripts may write.
    let err = error_of(&mut c, &["EVAL", "return redis.call('set','s','1')", "0"]);
    assert!(err.starts_with(&format!("{OOM} script: ")), "{err}");
    let err = error_of(&mut c, &["EVAL", "#!lua\nreturn 1", "0"]);
    assert_eq!(err, OOM);
    let ok: String = redis::cmd("EVAL")
        .arg("#!lua flags=allow-oom\nreturn redis.call('set','s','1')")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");

    set_config(&mut c, "maxmemory", "0");
    let _: () = redis::cmd("SET").arg("x").arg("y").query(&mut c).unwrap();
}

#[test]
fn volatile_ttl_evicts_the_nearest_deadlines_and_spares_persistent_keys() {
    let srv = Server::start_with(&["--maxmemory-policy", "volatile-ttl"]);
    let mut c = srv.client();
    // Large values: memory is counted per thread to within 64 KiB, which must
    // stay small beside the margin below.
    let value = "v".repeat(8000);
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("keep:{i}"))
            .arg(&value)
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("ttl:{i}"))
            .arg(&value)
            .arg("PX")
            .arg(1_000_000 + i * 1000)
            .query(&mut c)
            .unwrap();
    }
    // The commands used below allocate their latency histograms on first
    // use (as Redis's do): run each once before measuring.
    exists(&mut c, "keep:0");
    set_config(&mut c, "maxmemory", "0");
    info_num(&mut c, "stats", "evicted_keys");
    // Room for about half of the keys with a deadline to go.
    let target = used_memory(&mut c) - 800 * 1024;
    set_config(&mut c, "maxmemory", &target.to_string());
    let _: () = redis::cmd("SET")
        .arg("trigger")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let evicted = info_num(&mut c, "stats", "evicted_keys");
    assert!(evicted > 0);
    for i in 0..200 {
        assert!(
            exists(&mut c, &format!("keep:{i}")),
            "keep:{i} has no deadline"
        );
    }
    let gone: Vec<u64> = (0..200u64)
        .filter(|i| !exists(&mut c, &format!("ttl:{i}")))
        .collect();
    // The cron may have gone on evicting since.
    assert!(gone.len() as i64 >= evicted);
    assert!(gone.len() as i64 <= info_num(&mut c, "stats", "evicted_keys"));
    let mean_gone = gone.iter().sum::<u64>() as f64 / gone.len() as f64;
    assert!(
        mean_gone < 60.0,
        "nearest deadlines should go first, evicted {gone:?}"
    );
    // Once only keys without a deadline are left, writes are refused.
    set_config(&mut c, "maxmemory", "1");
    assert_eq!(set_until_oom(&mut c), OOM);
    assert!(exists(&mut c, "keep:0"));
    assert_eq!(
        (0..200)
            .filter(|i| exists(&mut c, &format!("ttl:{i}")))
            .count(),
        0
    );
}

#[test]
fn evictions_fire_events_and_break_watch() {
    let srv = Server::start_with(&["--maxmemory-policy", "allkeys-random"]);
    let mut c = srv.client();
    set_config(&mut c, "notify-keyspace-events", "KEe");
    for i in 0..3 {
        let _: () = redis::cmd("SET")
            .arg(format!("key{i}"))
            .arg("v")
            .query(&mut c)
            .unwrap();
    }
    let mut sub = srv.raw();
    sub.0
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    sub.send(&resp(&[b"SUBSCRIBE", b"__keyevent@0__:evicted"]));
    sub.send(&resp(&[b"PSUBSCRIBE", b"__keyspace@0__:*"]));
    std::thread::sleep(Duration::from_millis(100));

    let mut watcher = srv.client();
    let _: () = redis::cmd("WATCH").arg("key1").query(&mut watcher).unwrap();

    // Nothing fits in one byte: every key goes, then the write is refused.
    set_config(&mut c, "maxmemory", "1");
    assert_eq!(set_until_oom(&mut c), OOM);
    set_config(&mut c, "maxmemory", "0");
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 0);
    // (A first SET may have got through while eviction was running.)
    assert!(info_num(&mut c, "stats", "evicted_keys") >= 3);

    let got = String::from_utf8_lossy(&sub.read_to_close()).into_owned();
    for i in 0..3 {
        let key = format!("key{i}");
        let event = format!(
            "$22\r\n__keyevent@0__:evicted\r\n${}\r\n{key}\r\n",
            key.len()
        );
        assert!(got.contains(&event), "no evicted event for {key}: {got:?}");
        let space = format!("__keyspace@0__:{key}\r\n$7\r\nevicted\r\n");
        assert!(got.contains(&space), "no keyspace event for {key}: {got:?}");
    }

    let _: () = redis::cmd("MULTI").query(&mut watcher).unwrap();
    let _: () = redis::cmd("SET")
        .arg("key1")
        .arg("new")
        .query(&mut watcher)
        .unwrap();
    let res: redis::Value = redis::cmd("EXEC").query(&mut watcher).unwrap();
    assert_eq!(res, redis::Value::Nil, "eviction must abort the watcher");
    assert!(!exists(&mut c, "key1"));
}

#[test]
fn lazy_eviction_of_big_values_stays_bounded() {
    let limit: u64 = 4 * 1024 * 1024;
    let srv = Server::start_with(&[
        "--maxmemory",
        "4mb",
        "--maxmemory-policy",
        "allkeys-lru",
        "--lazyfree-lazy-eviction",
        "yes",
    ]);
    let mut c = srv.client();
    for k in 0..200 {
        let mut p = redis::pipe();
        for j in 0..500 {
            p.cmd("SADD")
                .arg(format!("set:{k}"))
                .arg(format!("member-{j}-{}", "m".repeat(40)))
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    // The freeing thread catches up on its own.
    std::thread::sleep(Duration::from_millis(300));
    let used = used_memory(&mut c);
    assert!(used <= limit + 1024 * 1024, "used {used}");
    assert!(info_num(&mut c, "stats", "evicted_keys") > 0);
    assert!(info_num(&mut c, "memory", "lazyfreed_objects") > 0);
}

#[test]
fn allkeys_lfu_keeps_frequently_read_keys() {
    let srv = Server::start_with(&[
        "--maxmemory-policy",
        "allkeys-lfu",
        "--maxmemory-samples",
        "10",
    ]);
    let mut c = srv.client();
    // The same room as in the LRU test above.
    let limit = used_memory(&mut c) + 1_600_000;
    set_config(&mut c, "maxmemory", &limit.to_string());
    let value = "v".repeat(1000);
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("SET").arg(format!("rare:{i}")).arg(&value).ignore();
        p.cmd("SET").arg(format!("often:{i}")).arg(&value).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    for _ in 0..20 {
        let mut p = redis::pipe();
        for i in 0..200 {
            p.cmd("GET").arg(format!("often:{i}")).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let freq: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("often:0")
        .query(&mut c)
        .unwrap();
    assert!(freq > 5, "20 reads count: {freq}");
    // New keys start with the counter rare keys have, so both go.
    write_until_evicted(&mut c, &value, 600);
    let (often, rare) = (survivors(&mut c, "often"), survivors(&mut c, "rare"));
    assert!(
        often > rare + 30,
        "frequently read keys should survive: often {often}, rare {rare}"
    );
}

#[test]
fn frees_one_worker_makes_of_another_workers_memory_evict_nothing() {
    // Connections are handed to the workers in turn: `a` and `b` run on
    // different threads (with more than one core). What `a` allocates and
    // `b` frees leaves `b`'s thread with frees it has not folded into the
    // shared total yet (up to 64 KiB); key eviction on `a`'s thread must
    // not count that memory as still held (Redis's suite, unit/maxmemory
    // "replica buffer don't induce eviction", has a 32 KiB margin).
    let srv = Server::start_with(&["--maxmemory-policy", "allkeys-random"]);
    let mut a = srv.client();
    let mut b = srv.client();
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg("v")
            .query(&mut a)
            .unwrap();
    }
    let value = vec![b'x'; 8 * 1024];
    let keys = ["tmp:0", "tmp:1", "tmp:2"];
    let round = |a: &mut Connection, b: &mut Connection| {
        for k in keys {
            let _: () = redis::cmd("SET").arg(k).arg(&value).query(a).unwrap();
        }
        let _: i64 = redis::cmd("DEL").arg(&keys[..]).query(b).unwrap();
    };
    round(&mut a, &mut b);
    let limit = used_memory(&mut a) + 32 * 1024;
    set_config(&mut a, "maxmemory", &limit.to_string());
    for _ in 0..40 {
        round(&mut a, &mut b);
    }
    assert_eq!(info_num(&mut a, "stats", "evicted_keys"), 0);
    let n: i64 = redis::cmd("DBSIZE").query(&mut a).unwrap();
    assert_eq!(n, 100);
}
