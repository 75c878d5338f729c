//! String commands against the real binary: the `redis` crate for values,
//! raw bytes for exact replies, and short sleeps for expiry semantics.

mod common;

use std::thread::sleep;
use std::time::Duration;

use redis::{Connection, Value, cmd};

fn q<T: redis::FromRedisValue>(c: &mut Connection, args: &[&[u8]]) -> T {
    let mut command = cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query(c).unwrap()
}

/// Sends one command as raw RESP and checks the exact reply bytes.
fn exact(raw: &mut common::Raw, args: &[&[u8]], expected: &[u8]) {
    let got = raw.roundtrip(&common::resp(args), expected.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "{:?}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
}

#[test]
fn set_get_and_friends_through_the_redis_crate() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = q(&mut c, &[b"SET", b"k", b"v"]);
    assert_eq!(q::<String>(&mut c, &[b"GET", b"k"]), "v");
    assert_eq!(q::<Option<String>>(&mut c, &[b"GET", b"nope"]), None);
    assert_eq!(
        q::<Option<String>>(&mut c, &[b"SET", b"k", b"w", b"GET"]),
        Some("v".into())
    );
    assert_eq!(q::<i64>(&mut c, &[b"SETNX", b"k", b"x"]), 0);
    assert_eq!(q::<String>(&mut c, &[b"GETSET", b"k", b"y"]), "w");
    assert_eq!(q::<String>(&mut c, &[b"GETDEL", b"k"]), "y");
    assert_eq!(q::<Option<String>>(&mut c, &[b"GETDEL", b"k"]), None);
    let _: () = q(&mut c, &[b"MSET", b"a", b"1", b"b", b"2"]);
    let got: Vec<Option<String>> = q(&mut c, &[b"MGET", b"a", b"zz", b"b"]);
    assert_eq!(got, vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(q::<i64>(&mut c, &[b"MSETNX", b"c", b"3", b"a", b"9"]), 0);
    assert_eq!(q::<Option<String>>(&mut c, &[b"GET", b"c"]), None);
    assert_eq!(q::<i64>(&mut c, &[b"MSETNX", b"c", b"3", b"d", b"4"]), 1);
}

#[test]
fn counters_and_floats() {
    let srv = common::Server::start();
    let mut c = srv.client();
    assert_eq!(q::<i64>(&mut c, &[b"INCR", b"n"]), 1);
    assert_eq!(q::<i64>(&mut c, &[b"INCRBY", b"n", b"41"]), 42);
    assert_eq!(q::<i64>(&mut c, &[b"DECRBY", b"n", b"50"]), -8);
    assert_eq!(q::<i64>(&mut c, &[b"DECR", b"n"]), -9);
    let _: () = q(&mut c, &[b"SET", b"f", b"10.5"]);
    assert_eq!(q::<String>(&mut c, &[b"INCRBYFLOAT", b"f", b"0.1"]), "10.6");
    // Long double arithmetic shows through, exactly as in Redis.
    // Long double arithmetic shows through, exactly as in Redis.
    assert_eq!(
        q::<String>(&mut c, &[b"INCRBYFLOAT", b"f", b"5.0e3"]),
        "5010.60000000000000009"
    );
    let mut raw = srv.raw();
    exact(
        &mut raw,
        &[b"SET", b"m", b"9223372036854775807"],
        b"+OK\r\n",
    );
    exact(
        &mut raw,
        &[b"INCR", b"m"],
        b"-ERR increment or decrement would overflow\r\n",
    );
    exact(
        &mut raw,
        &[b"DECRBY", b"m", b"-9223372036854775808"],
        b"-ERR decrement would overflow\r\n",
    );
    exact(
        &mut raw,
        &[b"INCRBY", b"m", b"x"],
        b"-ERR value is not an integer or out of range\r\n",
    );
    exact(
        &mut raw,
        &[b"INCRBYFLOAT", b"m", b" 1"],
        b"-ERR value is not a valid float\r\n",
    );
    exact(
        &mut raw,
        &[b"INCRBYFLOAT", b"m", b"inf"],
        b"-ERR increment would produce NaN or Infinity\r\n",
    );
    exact(
        &mut raw,
        &[b"INCRBYFLOAT", b"m", b"0.5"],
        b"$21\r\n9223372036854775807.5\r\n",
    );
}

#[test]
fn binary_safe_keys_and_values() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    exact(&mut raw, &[b"SET", b"k\0\r\n", b"\r\n\0v"], b"+OK\r\n");
    exact(&mut raw, &[b"GET", b"k\0\r\n"], b"$4\r\n\r\n\0v\r\n");
    exact(&mut raw, &[b"APPEND", b"k\0\r\n", b"\0"], b":5\r\n");
    exact(
        &mut raw,
        &[b"GETRANGE", b"k\0\r\n", b"-2", b"-1"],
        b"$2\r\nv\0\r\n",
    );
    exact(
        &mut raw,
        &[b"SETRANGE", b"k\0\r\n", b"7", b"\r\n"],
        b":9\r\n",
    );
    exact(
        &mut raw,
        &[b"GET", b"k\0\r\n"],
        b"$9\r\n\r\n\0v\0\0\0\r\n\r\n",
    );
    exact(&mut raw, &[b"STRLEN", b"k\0\r\n"], b":9\r\n");
    exact(&mut raw, &[b"SET", b"", b""], b"+OK\r\n");
    exact(&mut raw, &[b"GET", b""], b"$0\r\n\r\n");
    exact(&mut raw, &[b"LCS", b"k\0\r\n", b""], b"$0\r\n\r\n");
}

#[test]
fn option_errors_are_exact() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    let invalid = b"-ERR invalid expire time in 'set' command\r\n";
    exact(&mut raw, &[b"SET", b"k", b"v", b"EX", b"0"], invalid);
    exact(
        &mut raw,
        &[b"SET", b"k", b"v", b"PX", b"9223372036854775807"],
        invalid,
    );
    exact(
        &mut raw,
        &[b"SET", b"k", b"v", b"NX", b"XX"],
        b"-ERR syntax error\r\n",
    );
    exact(
        &mut raw,
        &[b"SET", b"k", b"v", b"EX", b"1", b"KEEPTTL"],
        b"-ERR syntax error\r\n",
    );
    exact(
        &mut raw,
        &[b"SETEX", b"k", b"-1", b"v"],
        b"-ERR invalid expire time in 'setex' command\r\n",
    );
    exact(
        &mut raw,
        &[b"PSETEX", b"k", b"0", b"v"],
        b"-ERR invalid expire time in 'psetex' command\r\n",
    );
    exact(
        &mut raw,
        &[b"GETEX", b"k", b"KEEPTTL"],
        b"-ERR syntax error\r\n",
    );
    exact(
        &mut raw,
        &[b"MSET", b"a", b"1", b"b"],
        b"-ERR wrong number of arguments for 'mset' command\r\n",
    );
    exact(
        &mut raw,
        &[b"SETRANGE", b"k", b"-1", b"x"],
        b"-ERR offset is out of range\r\n",
    );
    exact(
        &mut raw,
        &[b"SETRANGE", b"k", b"536870912", b"x"],
        b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n",
    );
    exact(
        &mut raw,
        &[b"LCS", b"a", b"b", b"IDX", b"LEN"],
        b"-ERR If you want both the length and indexes, please just use IDX.\r\n",
    );
}

#[test]
fn append_respects_proto_max_bulk_len() {
    let srv = common::Server::start_with(&["--proto-max-bulk-len", "1mb"]);
    let mut raw = srv.raw();
    let big = vec![b'x'; 1024 * 1024 - 1];
    exact(&mut raw, &[b"SET", b"k", &big], b"+OK\r\n");
    exact(&mut raw, &[b"APPEND", b"k", b"y"], b":1048576\r\n");
    let too_big = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    exact(&mut raw, &[b"APPEND", b"k", b"z"], too_big);
    exact(&mut raw, &[b"SETRANGE", b"k", b"1048576", b"z"], too_big);
    exact(
        &mut raw,
        &[b"SETRANGE", b"k", b"1048575", b"z"],
        b":1048576\r\n",
    );
    let lcs_err =
        b"-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n";
    exact(&mut raw, &[b"LCS", b"k", b"k", b"LEN"], lcs_err);
}

#[test]
fn lcs_replies() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = q(
        &mut c,
        &[b"MSET", b"key1", b"ohmytext", b"key2", b"mynewtext"],
    );
    assert_eq!(q::<String>(&mut c, &[b"LCS", b"key1", b"key2"]), "mytext");
    assert_eq!(q::<i64>(&mut c, &[b"LCS", b"key1", b"key2", b"LEN"]), 6);
    let v: Value = q(
        &mut c,
        &[
            b"LCS",
            b"key1",
            b"key2",
            b"IDX",
            b"MINMATCHLEN",
            b"4",
            b"WITHMATCHLEN",
        ],
    );
    let int = |n| Value::Int(n);
    let pair = |a, b| Value::Array(vec![int(a), int(b)]);
    let expected = Value::Array(vec![
        Value::BulkString(b"matches".to_vec()),
        Value::Array(vec![Value::Array(vec![pair(4, 7), pair(5, 8), int(4)])]),
        Value::BulkString(b"len".to_vec()),
        int(6),
    ]);
    assert_eq!(v, expected);
}

#[test]
fn ttl_semantics_per_command() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let get = |c: &mut Connection, k: &[u8]| q::<Option<String>>(c, &[b"GET", k]);
    // KEEPTTL, INCR, APPEND, SETRANGE and INCRBYFLOAT keep the deadline...
    for (k, write) in [
        (&b"a"[..], &[&b"SET"[..], b"a", b"2", b"KEEPTTL"][..]),
        (b"b", &[b"INCR", b"b"]),
        (b"c", &[b"APPEND", b"c", b"x"]),
        (b"d", &[b"SETRANGE", b"d", b"0", b"x"]),
        (b"e", &[b"INCRBYFLOAT", b"e", b"1.5"]),
    ] {
        let _: () = q(&mut c, &[b"SET", k, b"1", b"PX", b"150"]);
        let _: Value = q(&mut c, write);
    }
    // ... while SET, GETSET and GETEX PERSIST drop it.
    for k in [&b"f"[..], b"g", b"h"] {
        let _: () = q(&mut c, &[b"PSETEX", k, b"150", b"1"]);
    }
    let _: () = q(&mut c, &[b"SET", b"f", b"2"]);
    let _: String = q(&mut c, &[b"GETSET", b"g", b"2"]);
    let _: String = q(&mut c, &[b"GETEX", b"h", b"PERSIST"]);
    let _: String = q(&mut c, &[b"SET", b"i", b"1", b"EXAT", b"1"]);
    sleep(Duration::from_millis(300));
    for k in [&b"a"[..], b"b", b"c", b"d", b"e", b"i"] {
        assert_eq!(get(&mut c, k), None, "{}", String::from_utf8_lossy(k));
    }
    for k in [&b"f"[..], b"g", b"h"] {
        assert!(get(&mut c, k).is_some(), "{}", String::from_utf8_lossy(k));
    }
    // GETEX with an expiry sets one; with a past absolute time it deletes.
    assert_eq!(q::<String>(&mut c, &[b"GETEX", b"f", b"PX", b"100"]), "2");
    assert_eq!(q::<String>(&mut c, &[b"GETEX", b"g", b"PXAT", b"1"]), "2");
    assert_eq!(get(&mut c, b"g"), None);
    sleep(Duration::from_millis(200));
    assert_eq!(get(&mut c, b"f"), None);
}
