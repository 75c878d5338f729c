//! INFO, CONFIG, COMMAND, TIME, LASTSAVE, SHUTDOWN and DEBUG through a client.

mod common;

use redis::Value;

fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).unwrap()
}

fn field(text: &str, name: &str) -> Option<String> {
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
}

#[test]
fn info_sections_and_fields() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let all: String = redis::cmd("INFO").query(&mut c).unwrap();
    for h in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
    ] {
        assert!(all.contains(&format!("{h}\r\n")), "missing {h}");
    }
    assert!(!all.contains("# Commandstats"));
    assert_eq!(field(&all, "redis_version").as_deref(), Some("7.0.15"));
    assert_eq!(field(&all, "tcp_port"), Some(srv.port.to_string()));
    assert_eq!(field(&all, "role").as_deref(), Some("master"));
    assert_eq!(
        field(&all, "db0").as_deref(),
        Some("keys=1,expires=0,avg_ttl=0")
    );
    // The start-up probe's connection may still be closing: wait for it.
    let mut clients = field(&all, "connected_clients");
    for _ in 0..100 {
        if clients.as_deref() == Some("1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        let info: String = redis::cmd("INFO").arg("clients").query(&mut c).unwrap();
        clients = field(&info, "connected_clients");
    }
    assert_eq!(clients.as_deref(), Some("1"));
    assert!(field(&all, "used_memory").unwrap().parse::<u64>().unwrap() > 0);
    let two: String = redis::cmd("INFO")
        .arg("cluster")
        .arg("keyspace")
        .query(&mut c)
        .unwrap();
    assert!(two.starts_with("# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\n"));
    assert_eq!(info(&mut c, "nosuch"), "");
    let every = info(&mut c, "everything");
    assert!(every.contains("cmdstat_set:calls=1,"));
    assert!(every.contains("cmdstat_info:calls="));
}

#[test]
fn commandstats_errorstats_and_resetstat() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: redis::RedisResult<()> = redis::cmd("GET").query(&mut c);
    let _: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("x")
        .query(&mut c)
        .map(|_: Value| ());
    let _: redis::RedisResult<Value> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("port")
        .arg("x")
        .query(&mut c);
    let _: redis::RedisResult<Value> = redis::cmd("NOSUCH").query(&mut c);
    let stats = info(&mut c, "commandstats");
    assert!(
        stats.contains(
            "cmdstat_get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0"
        ),
        "{stats}"
    );
    assert!(stats.contains("cmdstat_config|set:calls=1,"), "{stats}");
    assert!(stats.contains("failed_calls=1"), "{stats}");
    // The client library may send commands of its own that fail (CLIENT
    // SETINFO); every error is counted under its code either way.
    let errors = info(&mut c, "errorstats");
    let s = info(&mut c, "stats");
    let total = field(&s, "total_error_replies").unwrap();
    assert!(total.parse::<u64>().unwrap() >= 3);
    assert!(
        errors.contains(&format!("errorstat_ERR:count={total}\r\n")),
        "{errors}"
    );
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let stats = info(&mut c, "commandstats");
    assert!(!stats.contains("cmdstat_get"), "{stats}");
    assert_eq!(info(&mut c, "errorstats"), "# Errorstats\r\n");
    let s = info(&mut c, "stats");
    assert_eq!(field(&s, "total_error_replies").as_deref(), Some("0"));
}

#[test]
fn config_get_set_round_trip_and_atomicity() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, ["maxmemory-policy", "noeviction"]);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("10mb")
        .arg("hash-max-ziplist-entries")
        .arg("64")
        .query(&mut c)
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .arg("hash-max-listpack-entries")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        v,
        ["maxmemory", "10485760", "hash-max-listpack-entries", "64"]
    );
    // One bad pair: nothing changes.
    let e: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1mb")
        .arg("port")
        .arg("x")
        .query(&mut c);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("argument couldn't be parsed into an integer")
    );
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "10485760");
    // Parameters ferrokv does not implement are not listed.
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("jemalloc-bg-thread")
        .query(&mut c)
        .unwrap();
    assert!(v.is_empty());
}

#[test]
fn command_count_info_getkeys_and_docs() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let n: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    let all: Vec<Value> = redis::cmd("COMMAND").query(&mut c).unwrap();
    assert_eq!(all.len() as i64, n);
    let list: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut c).unwrap();
    assert!(list.contains(&"config|get".to_string()) && list.contains(&"get".to_string()));
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("SET")
        .arg("a")
        .arg("b")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, ["a"]);
    let e: redis::RedisResult<Vec<String>> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("PING")
        .arg("x")
        .query(&mut c);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("The command has no key arguments")
    );
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("set")
        .query(&mut c)
        .unwrap();
    let text = format!("{docs:?}");
    assert!(
        text.contains("arguments") && text.contains("KEEPTTL"),
        "{text}"
    );
    let pat: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("PATTERN")
        .arg("config*")
        .query(&mut c)
        .unwrap();
    assert!(pat.iter().all(|n| n.starts_with("config")) && pat.len() > 1);
}

#[test]
fn time_and_lastsave() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let t: Vec<String> = redis::cmd("TIME").query(&mut c).unwrap();
    let secs: i64 = t[0].parse().unwrap();
    let usec: i64 = t[1].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((secs - now).abs() <= 2 && (0..1_000_000).contains(&usec));
    let last: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    assert!((last - now).abs() <= 60);
}

#[test]
fn debug_is_gated_and_works_when_enabled() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let e: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg("0").query(&mut c);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("DEBUG command not allowed")
    );
    let srv = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut c = srv.client();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    let o: String = redis::cmd("DEBUG")
        .arg("OBJECT")
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert!(
        o.starts_with("Value at:0x")
            && o.contains(" refcount:1 encoding:embstr serializedlength:6 "),
        "{o}"
    );
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.01")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("LOG")
        .arg("hi")
        .query(&mut c)
        .unwrap();
    let e: redis::RedisResult<()> = redis::cmd("DEBUG").arg("OBJECT").arg("nokey").query(&mut c);
    assert!(e.unwrap_err().to_string().contains("no such key"));
}

/// DEBUG PAUSE-CRON 1 stops the periodic work (here the background expiry:
/// DBSIZE does not expire keys itself), and 0 resumes it. INFO memory has
/// Redis's `mem_not_counted_for_evict`, which the suite subtracts.
#[test]
fn debug_pause_cron_stops_background_expiry() {
    let srv = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut c = srv.client();
    let dbsize = |c: &mut redis::Connection| -> i64 { redis::cmd("DBSIZE").query(c).unwrap() };
    let pause = |c: &mut redis::Connection, on: &str| {
        let _: () = redis::cmd("DEBUG")
            .arg("PAUSE-CRON")
            .arg(on)
            .query(c)
            .unwrap();
    };
    pause(&mut c, "1");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("PX")
        .arg("10")
        .query(&mut c)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(dbsize(&mut c), 1, "the cron expired a key while paused");
    pause(&mut c, "0");
    let mut n = 1;
    for _ in 0..500 {
        n = dbsize(&mut c);
        if n == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(n, 0, "the cron did not resume");
    let mem = info(&mut c, "memory");
    assert_eq!(
        field(&mem, "mem_not_counted_for_evict").as_deref(),
        Some("0")
    );
}

#[test]
fn shutdown_closes_without_reply_and_exits() {
    let mut srv = common::Server::start();
    let mut raw = srv.raw();
    raw.send(&common::resp(&[b"SHUTDOWN", b"NOSAVE"]));
    assert_eq!(raw.read_to_close(), b"");
    for _ in 0..100 {
        if !srv.alive() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("server still running after SHUTDOWN");
}

/// DEBUG OBJECT shows an expired key without reclaiming it (Redis reads
/// the table directly); UNLINK of a big value frees it on the lazy-free
/// thread (`lazyfreed_objects`, which CONFIG RESETSTAT clears).
#[test]
fn debug_object_sees_expired_keys_and_unlink_frees_lazily() {
    let srv = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut c = srv.client();
    let run = |c: &mut redis::Connection, args: &[&str]| -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(c).unwrap()
    };
    run(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    run(&mut c, &["SET", "key", "value", "PX", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    run(&mut c, &["DEBUG", "OBJECT", "key"]);
    assert_eq!(run(&mut c, &["EXISTS", "key"]), redis::Value::Int(0));

    let mut sadd = redis::cmd("SADD");
    sadd.arg("big");
    for i in 0..1000 {
        sadd.arg(i);
    }
    let _: i64 = sadd.query(&mut c).unwrap();
    run(&mut c, &["CONFIG", "RESETSTAT"]);
    run(&mut c, &["UNLINK", "big"]);
    run(&mut c, &["SADD", "small", "a"]);
    run(&mut c, &["UNLINK", "small"]);
    let mut freed = None;
    for _ in 0..200 {
        let mem = info(&mut c, "memory");
        if field(&mem, "lazyfree_pending_objects").as_deref() == Some("0") {
            freed = field(&mem, "lazyfreed_objects");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(freed.as_deref(), Some("1"));
}
