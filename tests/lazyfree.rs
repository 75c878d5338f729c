//! UNLINK frees big values on the lazy-free thread (INFO memory
//! `lazyfreed_objects`), small ones inline, as Redis decides by free effort;
//! CONFIG RESETSTAT zeroes the count.

mod common;

use std::time::{Duration, Instant};

use common::info_num;

/// `lazyfreed_objects` once nothing is pending.
fn lazyfreed(c: &mut redis::Connection) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_num(c, "memory", "lazyfree_pending_objects") != 0 {
        assert!(Instant::now() < deadline, "lazy free never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    info_num(c, "memory", "lazyfreed_objects")
}

#[test]
fn unlink_frees_big_values_in_the_background() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let _: () = redis::cmd("SADD")
        .arg("big")
        .arg(&members)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("small")
        .arg("a")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET").arg("str").arg("x").query(&mut c).unwrap();
    let n: i64 = redis::cmd("UNLINK")
        .arg("big")
        .arg("small")
        .arg("str")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(lazyfreed(&mut c), 1);

    // A stream: its nodes, groups and pending entries count.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("stream-node-max-entries")
        .arg(5)
        .query(&mut c)
        .unwrap();
    for i in 0..500 {
        let _: String = redis::cmd("XADD")
            .arg("s")
            .arg("*")
            .arg("f")
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    let _: () = redis::cmd("UNLINK").arg("s").query(&mut c).unwrap();
    assert_eq!(lazyfreed(&mut c), 2);

    // DEL frees inline unless lazyfree-lazy-user-del says otherwise.
    let _: () = redis::cmd("SADD")
        .arg("big")
        .arg(&members)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("DEL").arg("big").query(&mut c).unwrap();
    assert_eq!(lazyfreed(&mut c), 2);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("lazyfree-lazy-user-del")
        .arg("yes")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("big")
        .arg(&members)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("DEL").arg("big").query(&mut c).unwrap();
    assert_eq!(lazyfreed(&mut c), 3);

    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert_eq!(lazyfreed(&mut c), 0);
}
