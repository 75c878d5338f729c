//! DEBUG DIGEST and DEBUG DIGEST-VALUE against a real redis-server 7.0.15:
//! the same dataset (every type, small and large encodings, integers,
//! TTLs, streams with consumer groups and pending entries, several
//! databases) must give the same 40-hex-digit digests on both. Skipped
//! when no `redis-server` binary is installed.

mod common;

use common::show;

fn run(con: &mut redis::Connection, args: &[String]) -> String {
    let mut c = redis::cmd(&args[0]);
    for a in &args[1..] {
        c.arg(a.as_bytes());
    }
    match c.query::<redis::Value>(con) {
        Ok(v) => show(&v),
        Err(e) => format!("ERR {e}"),
    }
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// The dataset: each line one command, run on both servers.
fn dataset() -> Vec<Vec<String>> {
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let mut add = |s: &str| cmds.push(words(s));
    for db in ["0", "1", "9"] {
        add(&format!("SELECT {db}"));
        // Strings: embstr, raw, integers (shared, long, boundary), not
        // canonical integers, edited in place, float results.
        add("SET s:small v");
        add(&format!("SET s:raw {}", "x".repeat(100)));
        add("SET s:int 12345");
        add("SET s:neg -9223372036854775808");
        add("SET s:lead 007");
        add("SET s:plus +5");
        add("SET s:app hello");
        add("APPEND s:app world");
        add("SETRANGE s:range 5 abc");
        add("SET s:ctr 10");
        add("INCRBY s:ctr 1000000");
        add("INCRBYFLOAT s:flt 3.25");
        add("INCRBYFLOAT s:flt 0.1");
        add("SET s:ttl v EX 1000");
        // Lists: inline and quicklist, integer elements.
        add("RPUSH l:small a b 3 -4 c");
        add("LPUSH l:ints 1 2 3 100000000000");
        let big: Vec<String> = (0..300).map(|i| format!("e{i}")).collect();
        add(&format!("RPUSH l:big {}", big.join(" ")));
        add("LSET l:big 10 changed");
        add("RPUSH l:ttl x y");
        add("PEXPIRE l:ttl 500000");
        // Sets: intset, small strings, both large.
        add("SADD set:ints 5 -3 100 7");
        add("SADD set:strs a b c 12");
        let many: Vec<String> = (0..600).map(|i| i.to_string()).collect();
        add(&format!("SADD set:bigints {}", many.join(" ")));
        let manys: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        add(&format!("SADD set:bigstrs {}", manys.join(" ")));
        add("SREM set:bigstrs m5 m6");
        add("SADD set:ttl q");
        add("EXPIRE set:ttl 9999");
        // Sorted sets: scores that %.17g shows long, infinities, -0,
        // integer members; packed and skiplist.
        add("ZADD z:small 0.1 m 1e300 n -inf o inf p 3 q 2.5 42");
        add("ZADD z:negzero -0 a");
        let zs: Vec<String> = (0..200)
            .flat_map(|i| [format!("{}.{}", i, i % 7), format!("zm{i}")])
            .collect();
        add(&format!("ZADD z:big {}", zs.join(" ")));
        add("ZINCRBY z:big 0.3 zm3");
        add(&format!("ZADD z:longmember 1 {}", "L".repeat(80)));
        add("ZADD z:ttl 1 a");
        add("EXPIRE z:ttl 5000");
        // Hashes: listpack, hashtable by count and by value size.
        add("HSET h:small f1 v1 f2 2 3 three");
        let hs: Vec<String> = (0..600).map(|i| format!("f{i} v{i}")).collect();
        add(&format!("HSET h:big {}", hs.join(" ")));
        add(&format!("HSET h:longval f {}", "V".repeat(100)));
        add("HINCRBY h:small n 5");
        add("HINCRBYFLOAT h:small fl 1.5");
        add("HSET h:ttl a b");
        add("EXPIRE h:ttl 777");
        // Streams: several entries and nodes, differing fields, deletions,
        // consumer groups with pending entries.
        add("XADD st:a 1-1 a 1 b 2");
        add("XADD st:a 1-2 a 3 b 4");
        add("XADD st:a 2-0 other x");
        add("XADD st:a 5-7 a 9");
        add("XDEL st:a 1-2");
        add("XGROUP CREATE st:a g1 0");
        add("XREADGROUP GROUP g1 alice COUNT 2 STREAMS st:a >");
        add("XGROUP CREATE st:a g2 $");
        add("XADD st:a 6-0 a 10");
        add("XREADGROUP GROUP g2 bob STREAMS st:a >");
        add("XACK st:a g1 1-1");
        for i in 0..250 {
            add(&format!(
                "XADD st:big {}-{} field{} value{i} common c",
                10 + i / 3,
                i % 3,
                i % 4
            ));
        }
        add("XTRIM st:big MAXLEN 200");
        add("XDEL st:big 20-1 30-2");
        add("XADD st:empty MAXLEN 0 1-1 a b");
        add("XADD st:ttl 1-1 a b");
        add("EXPIRE st:ttl 4242");
    }
    cmds
}

fn digests(con: &mut redis::Connection, keys: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for db in ["0", "1", "9", "2"] {
        run(con, &words(&format!("SELECT {db}")));
        let mut args = words("DEBUG DIGEST-VALUE");
        args.extend(keys.iter().cloned());
        out.push(format!("db{db} {}", run(con, &args)));
    }
    out.push(format!("all {}", run(con, &words("DEBUG DIGEST"))));
    out
}

#[test]
fn digests_match_redis() {
    let Some(reference) = common::reference() else {
        eprintln!("no redis-server installed: skipped");
        return;
    };
    let ours = common::Server::start_with(&["--enable-debug-command", "yes"]);
    let mut a = ours.client();
    let mut b = redis::Client::open(format!("redis://127.0.0.1:{}/", reference.port))
        .unwrap()
        .get_connection()
        .unwrap();

    let zero = "0".repeat(40);
    for con in [&mut a, &mut b] {
        assert_eq!(run(con, &words("DEBUG DIGEST")), zero);
        assert_eq!(run(con, &words("DEBUG DIGEST-VALUE")), "[]");
        assert_eq!(
            run(con, &words("DEBUG DIGEST-VALUE nokey")),
            format!("[{zero}]")
        );
    }
    let cmds = dataset();
    let mut keys: Vec<String> = cmds
        .iter()
        .filter_map(|c| c.get(1).filter(|k| k.contains(':')).cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys.push("missing".into());
    for cmd in &cmds {
        let (x, y) = (run(&mut a, cmd), run(&mut b, cmd));
        assert_eq!(x, y, "reply to {:?}", cmd.join(" "));
    }
    let (x, y) = (digests(&mut a, &keys), digests(&mut b, &keys));
    for (x, y) in x.iter().zip(&y) {
        assert_eq!(x, y, "digests differ (keys {keys:?})");
    }
    assert_ne!(x.last().unwrap(), &format!("all {zero}"));

    // The same data moved to another database changes the digest; a key
    // whose deadline passed but was not reclaimed still counts.
    for con in [&mut a, &mut b] {
        run(con, &words("DEBUG SET-ACTIVE-EXPIRE 0"));
        run(con, &words("SELECT 0"));
        run(con, &words("SWAPDB 0 5"));
        run(con, &words("SET gone v PX 1"));
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(digests(&mut a, &keys), digests(&mut b, &keys));
    let extra = words("DEBUG DIGEST-VALUE gone");
    run(&mut a, &words("SELECT 0"));
    run(&mut b, &words("SELECT 0"));
    assert_eq!(run(&mut a, &extra), run(&mut b, &extra));
    assert_ne!(run(&mut a, &extra), format!("[{zero}]"));

    // Wrong arity is Redis's error.
    let bad = words("DEBUG DIGEST x");
    assert_eq!(run(&mut a, &bad), run(&mut b, &bad));

    for con in [&mut a, &mut b] {
        run(con, &words("FLUSHALL"));
        assert_eq!(run(con, &words("DEBUG DIGEST")), zero);
    }
}

/// Digests Redis 7.0.15 gave for small datasets, for machines without a
/// redis-server (and through the in-process harness, every encoding).
#[test]
fn known_redis_digests() {
    use ferrokv::testkit::Harness;
    let (config, _) = {
        let argv = vec!["--enable-debug-command".to_string(), "yes".to_string()];
        let (cf, lines) = ferrokv::config::file::collect(&argv).unwrap();
        let config = ferrokv::config::Config::default();
        let mut commands = ferrokv::cmd::CommandTable::build(&ferrokv::cmd::handlers());
        ferrokv::config::file::apply(&config, &mut commands, &lines, cf.as_deref()).unwrap();
        (config, commands)
    };
    let mut h = Harness::with_config(config);
    let zero = format!("+{}\r\n", "0".repeat(40));
    assert_eq!(h.run(&["DEBUG", "DIGEST"]), zero);
    h.run(&["SET", "k", "v"]);
    assert_eq!(
        h.run(&["DEBUG", "DIGEST"]),
        "+264ccf65edec66bccfa7cc659414ccca432057d2\r\n"
    );
    let value = |h: &mut Harness, k: &str| h.run(&["DEBUG", "DIGEST-VALUE", k]);
    assert_eq!(
        value(&mut h, "k"),
        "*1\r\n+d79ee9fe5d5ad902d7f6620efc3b07b75ddd742f\r\n"
    );
    h.run(&["EXPIRE", "k", "100"]);
    assert_eq!(
        value(&mut h, "k"),
        "*1\r\n+311b17018163335616e089f6b951c82c477335ac\r\n"
    );
    // A score %.17g writes long; packed and skiplist encodings alike.
    h.run(&["ZADD", "z", "0.1", "m"]);
    h.run(&["CONFIG", "SET", "zset-max-listpack-entries", "0"]);
    h.run(&["ZADD", "z2", "0.1", "m"]);
    for k in ["z", "z2"] {
        assert_eq!(
            value(&mut h, k),
            "*1\r\n+285a6e508750d13f749019c7cddbd43bf282cb72\r\n"
        );
    }
    // Consumer groups are not part of a stream's digest in 7.0.
    h.run(&["XADD", "s", "1-1", "a", "b"]);
    let before = value(&mut h, "s");
    assert_eq!(
        before,
        "*1\r\n+db20534e81d36b705394fcfc8a61996efb6e5a7c\r\n"
    );
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]);
    assert_eq!(value(&mut h, "s"), before);
    assert_eq!(
        h.run(&["DEBUG", "DIGEST-VALUE", "nokey"]),
        format!("*1\r\n{zero}")
    );
}
