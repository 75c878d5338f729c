//! The write-effect stream: every write publishes one record, reads publish
//! nothing, and lazily expired keys publish a DEL.

use ferrokv::testkit::Harness;

#[test]
fn writes_publish_effects_and_reads_do_not() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(h.run(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(h.run(&["DEL", "nosuch"]), ":0\r\n");
    assert_eq!(h.run(&["DEL", "k"]), ":1\r\n");
    assert_eq!(h.take_effects(), ["0: SET k v", "0: DEL k"]);
}

#[test]
fn a_lazily_expired_key_publishes_del() {
    let mut h = Harness::new();
    h.now_ms = Some(1_000);
    h.run(&["SET", "t", "x"]);
    assert_eq!(h.run(&["PEXPIREAT", "t", "1500"]), ":1\r\n");
    h.take_effects();
    h.now_ms = Some(1_400);
    assert_eq!(h.run(&["GET", "t"]), "$1\r\nx\r\n");
    h.now_ms = Some(1_600);
    assert_eq!(h.run(&["GET", "t"]), "$-1\r\n");
    assert_eq!(h.take_effects(), ["0: DEL t"]);
}

/// AOF and replicas replay the stream: a transaction's or a script's
/// records reach the sink in one call, so another client's record (or
/// another transaction's MULTI) can never fall between them.
#[test]
fn a_transaction_or_script_reaches_the_sink_in_one_call() {
    let mut h = Harness::new();
    h.run(&["SET", "x", "0"]);
    h.run(&["MULTI"]);
    h.run(&["SET", "a", "1"]);
    h.run(&["RPUSH", "l", "a", "b"]);
    h.run(&["INCR", "a"]);
    h.run(&["EXEC"]);
    h.run(&[
        "EVAL",
        "redis.call('SET', KEYS[1], 'v'); redis.call('DEL', KEYS[2]); return 1",
        "2",
        "s",
        "x",
    ]);
    h.run(&["MULTI"]);
    h.run(&["GET", "a"]);
    h.run(&["EXEC"]);
    assert_eq!(h.take_effect_calls(), [1, 5, 4]);
    assert_eq!(
        h.take_effects(),
        [
            "0: SET x 0",
            "0: MULTI",
            "0: SET a 1",
            "0: RPUSH l a b",
            "0: INCR a",
            "0: EXEC",
            "0: MULTI",
            "0: SET s v",
            "0: DEL x",
            "0: EXEC",
        ]
    );
}

#[test]
fn a_transaction_publishes_multi_its_writes_and_exec() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    h.run(&["SET", "a", "1"]);
    h.run(&["GET", "a"]);
    h.run(&["INCR", "a"]);
    assert_eq!(h.run(&["EXEC"]), "*3\r\n+OK\r\n$1\r\n1\r\n:2\r\n");
    assert_eq!(
        h.take_effects(),
        ["0: MULTI", "0: SET a 1", "0: INCR a", "0: EXEC"]
    );
    // A read-only transaction publishes nothing.
    h.run(&["MULTI"]);
    h.run(&["GET", "a"]);
    h.run(&["EXEC"]);
    assert!(h.take_effects().is_empty());
}
