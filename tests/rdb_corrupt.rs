//! Corrupt values Redis's deep sanitization refuses: RESTORE answers
//! `Bad data format` and logs which check failed, in Redis's words (its
//! suite, integration/corrupt-dump, looks for them); the same value in an
//! RDB file refuses the start with Redis's closing line. The payloads are
//! those of Redis 7.0.15's suite, with valid checksums.

mod common;

use common::{Server, TempDir, run_to_exit};

/// (what, DUMP payload, words the log must hold)
const CASES: &[(&str, &[u8], &str)] = &[
    (
        "hash ziplist with a duplicate field",
        b"\x0D\x1B\x1B\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02\x61\x00\x04\x02\x62\x00\x04\x02\x61\x00\x04\x02\x64\x00\xFF\x09\x00\xA1\x98\x36\x78\xCC\x8E\x93\x2E",
        "Hash ziplist integrity check failed",
    ),
    (
        "quicklist node whose ziplist prevlen is too big",
        b"\x0E\x01\x13\x13\x00\x00\x00\x0E\x00\x00\x00\x02\x00\x00\x02\x61\x00\x0E\x02\x62\x00\xFF\x09\x00\x49\x97\x30\xB2\x0D\xA1\xED\xAA",
        "Ziplist integrity check failed",
    ),
    (
        "quicklist node whose ziplist prevlen is too small",
        b"\x0E\x01\x13\x13\x00\x00\x00\x0E\x00\x00\x00\x02\x00\x00\x02\x61\x00\x02\x02\x62\x00\xFF\x09\x00\xC7\x71\x03\x97\x07\x75\xB0\x63",
        "Ziplist integrity check failed",
    ),
    (
        "quicklist plain node of length 0",
        b"\x12\x01\x01\x00\x0a\x00\x8f\xc6\xc0\x57\x1c\x0a\xb3\x3c",
        "Quicklist integrity check failed",
    ),
    (
        "stream group with the same consumer twice",
        b"\x0F\x00\x00\x00\x00\x01\x07\x6D\x79\x67\x72\x6F\x75\x70\x00\x00\x00\x02\x04\x6E\x61\x6D\x65\x2A\x4C\xAA\x9A\x7D\x01\x00\x00\x00\x04\x6E\x61\x6D\x65\x2B\x4C\xAA\x9A\x7D\x01\x00\x00\x00\x0A\x00\xCC\xED\x8C\xA7\x62\xEE\xC7\xC8",
        "Duplicate stream consumer detected",
    ),
];

fn log_text(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
}

#[test]
fn restore_refuses_what_deep_sanitization_refuses_and_logs_why() {
    let dir = TempDir::new("rdb-corrupt");
    let log = dir.path().join("log");
    let srv = Server::start_with(&["--logfile", log.to_str().unwrap(), "--loglevel", "verbose"]);
    let mut c = srv.client();
    for (what, payload, words) in CASES {
        let r: redis::RedisResult<redis::Value> = redis::cmd("RESTORE")
            .arg("key")
            .arg(0)
            .arg(*payload)
            .arg("REPLACE")
            .query(&mut c);
        let e = r.expect_err(what);
        assert_eq!(e.code(), Some("ERR"), "{what}: {e}");
        assert_eq!(e.detail(), Some("Bad data format"), "{what}");
        assert!(
            log_text(&dir).contains(words),
            "{what}: log lacks {words:?}"
        );
        let exists: i64 = redis::cmd("EXISTS").arg("key").query(&mut c).unwrap();
        assert_eq!(exists, 0, "{what}: nothing half-restored");
    }
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn a_corrupt_value_in_the_rdb_refuses_the_start_with_redis_words() {
    let dir = TempDir::new("rdb-corrupt-start");
    // RDB 10, database 0, key "k" holding the first case's value, EOF and
    // a zero checksum (not checked).
    let payload = CASES[0].1;
    let mut rdb = b"REDIS0010\xfe\x00".to_vec();
    rdb.push(payload[0]);
    rdb.extend_from_slice(b"\x01k");
    rdb.extend_from_slice(&payload[1..payload.len() - 10]);
    rdb.push(0xff);
    rdb.extend_from_slice(&[0; 8]);
    std::fs::write(dir.path().join("dump.rdb"), &rdb).unwrap();
    let (code, out) = run_to_exit(dir.path(), &["--port", "0", "--save", ""]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Hash ziplist integrity check failed"), "{out}");
    assert!(out.contains("dump.rdb"), "names the file: {out}");
    let last = out.lines().last().unwrap_or("");
    assert!(
        last.ends_with("Terminating server after rdb file reading failure."),
        "{out}"
    );
}
