//! HyperLogLog: keyspace events, and a randomized run against a real
//! redis-server 7.0.15 (skipped when none is installed) in which every
//! reply and the stored bytes (GET) of every HLL must be identical:
//! PFADD of random elements, PFCOUNT of one and several keys, PFMERGE,
//! PFDEBUG, changes of hll-sparse-max-bytes, and random corruption with
//! SETRANGE.

mod common;

use common::{Server, keyevent_subscriber, read_pmessages};

#[test]
fn pfadd_and_pfmerge_announce_pfadd_only_on_change() {
    let srv = Server::start_with(&["--notify-keyspace-events", "KEA"]);
    let mut sub = keyevent_subscriber(&srv);
    let mut c = srv.client();
    let script: &[&[&str]] = &[
        &["PFADD", "h", "a"],
        // Nothing changes: no event.
        &["PFADD", "h", "a"],
        // Writes the cached cardinality, announces nothing.
        &["PFCOUNT", "h"],
        &["PFMERGE", "m", "h"],
        &["SET", "end", "x"],
    ];
    for args in script {
        let _: redis::Value = redis::cmd(args[0]).arg(&args[1..]).query(&mut c).unwrap();
    }
    let got = read_pmessages(&mut sub, 3);
    let want: Vec<(String, String)> = [("pfadd", "h"), ("pfadd", "m"), ("set", "end")]
        .iter()
        .map(|(e, k)| (format!("__keyevent@0__:{e}"), k.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// A reply with its bytes: errors as text, bulk strings escaped.
fn reply(con: &mut redis::Connection, args: &[Vec<u8>]) -> String {
    let mut c = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
    for a in &args[1..] {
        c.arg(a.as_slice());
    }
    match c.query::<redis::Value>(con) {
        Ok(redis::Value::BulkString(b)) => format!("{:?}", b.escape_ascii().to_string()),
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("ERR {e}"),
    }
}

/// xorshift64*: the run is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn args(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

#[test]
fn random_operations_agree_with_redis_byte_for_byte() {
    let Some(reference) = common::reference() else {
        eprintln!("no redis-server installed: skipped");
        return;
    };
    let srv = Server::start();
    let mut ours = srv.client();
    let mut theirs = redis::Client::open(format!("redis://127.0.0.1:{}/", reference.port))
        .unwrap()
        .get_connection()
        .unwrap();
    // FERROKV_HLL_SEED=<n> replays another run.
    let seed = std::env::var("FERROKV_HLL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let mut rng = Rng(seed);
    let keys: [&[u8]; 4] = [b"h0", b"h1", b"h2", b"h3"];
    let mut ops = Vec::new();
    for step in 0..1500 {
        let key = keys[rng.below(4) as usize];
        let cmd = match rng.below(20) {
            0..=9 => {
                // Small batches keep keys sparse for a while; elements
                // from a small alphabet repeat, so unchanged adds happen.
                let big = rng.below(4) == 0;
                let n = rng.below(if big { 200 } else { 8 });
                let mut a = args(&[b"PFADD", key]);
                for _ in 0..n {
                    let e = rng.below(50_000);
                    a.push(if e.is_multiple_of(7) {
                        e.to_le_bytes().to_vec()
                    } else {
                        format!("el{e}").into_bytes()
                    });
                }
                a
            }
            10..=12 => args(&[b"PFCOUNT", key]),
            13 => args(&[b"PFCOUNT", key, keys[rng.below(4) as usize], b"missing"]),
            14 => args(&[b"PFMERGE", key, keys[rng.below(4) as usize]]),
            15 => {
                let sub: [&[u8]; 4] = [b"ENCODING", b"DECODE", b"TODENSE", b"GETREG"];
                args(&[b"PFDEBUG", sub[rng.below(4) as usize], key])
            }
            16 => {
                let max = [0u64, 40, 300, 3000][rng.below(4) as usize].to_string();
                args(&[b"CONFIG", b"SET", b"hll-sparse-max-bytes", max.as_bytes()])
            }
            17 => {
                // Corrupt one byte of the registers (the header stays an
                // HLL's), or cut the value short, or start over.
                let len = reply(&mut ours, &args(&[b"STRLEN", key]));
                let len: u64 = len
                    .trim_start_matches("int(")
                    .trim_end_matches(')')
                    .parse()
                    .unwrap_or(0);
                match rng.below(3) {
                    _ if len <= 16 => args(&[b"DEL", key]),
                    0 => {
                        let at = (16 + rng.below(len - 16)).to_string();
                        let byte = [rng.next() as u8];
                        args(&[b"SETRANGE", key, at.as_bytes(), &byte])
                    }
                    1 => {
                        // Both sides hold the same bytes so far: store
                        // our prefix on both.
                        let end = 16 + rng.below(len - 16);
                        let v: Vec<u8> = redis::cmd("GETRANGE")
                            .arg(key)
                            .arg(0)
                            .arg(end - 1)
                            .query(&mut ours)
                            .unwrap();
                        args(&[b"SET", key, &v])
                    }
                    _ => args(&[b"DEL", key]),
                }
            }
            _ => args(&[b"GET", key]),
        };
        let a = reply(&mut ours, &cmd);
        let b = reply(&mut theirs, &cmd);
        let shown = String::from_utf8_lossy(&cmd.concat()).into_owned();
        assert_eq!(a, b, "step {step}: {:.200}", shown);
        // The stored bytes agree after every step.
        let get = args(&[b"GET", key]);
        assert_eq!(
            reply(&mut ours, &get),
            reply(&mut theirs, &get),
            "GET {} after step {step}: {:.200}",
            String::from_utf8_lossy(key),
            shown
        );
        ops.push(a);
    }
    // The run exercised both outcomes of the commands.
    assert!(ops.iter().any(|r| r.contains("INVALIDOBJ")));
    assert!(ops.iter().any(|r| r.contains("dense")));
    assert!(ops.iter().any(|r| r.contains("sparse")));
}

/// What replicas and the AOF get: PFADD and PFMERGE when they change
/// something, PFCOUNT when it wrote the cached cardinality, PFDEBUG when
/// it changed the encoding; nothing for a union count or a failure.
#[test]
fn effects_follow_redis_propagation() {
    let mut h = ferrokv::testkit::Harness::new();
    assert_eq!(h.run(&["PFADD", "h", "a"]), ":1\r\n");
    assert_eq!(h.run(&["PFADD", "h", "a"]), ":0\r\n");
    assert_eq!(h.run(&["PFCOUNT", "h"]), ":1\r\n");
    assert_eq!(h.run(&["PFCOUNT", "h"]), ":1\r\n");
    assert_eq!(h.run(&["PFCOUNT", "h", "other"]), ":1\r\n");
    assert_eq!(h.run(&["PFMERGE", "m", "h"]), "+OK\r\n");
    assert_eq!(h.run(&["PFDEBUG", "TODENSE", "m"]), ":1\r\n");
    assert_eq!(h.run(&["PFDEBUG", "TODENSE", "m"]), ":0\r\n");
    h.run(&["APPEND", "h", "junk"]);
    // The cache is valid until marked otherwise.
    assert_eq!(h.run(&["PFCOUNT", "h"]), ":1\r\n");
    // An add inside the valid opcodes works, and invalidates the cache.
    assert_eq!(h.run(&["PFADD", "h", "b"]), ":1\r\n");
    assert_eq!(
        h.run(&["PFCOUNT", "h"]),
        "-INVALIDOBJ Corrupted HLL object detected\r\n"
    );
    assert_eq!(
        h.take_effects(),
        [
            "0: PFADD h a",
            "0: PFCOUNT h",
            "0: PFMERGE m h",
            "0: PFDEBUG TODENSE m",
            "0: APPEND h junk",
            "0: PFADD h b"
        ]
    );
}
