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
