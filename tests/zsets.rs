//! Sorted sets against the real binary through the `redis` crate: the
//! usual application patterns (priority queue, leaderboard, sliding-window
//! rate limiter) plus a large set that uses the full encoding.

mod common;

use redis::{Commands, Connection, cmd};

fn encoding(c: &mut Connection, key: &str) -> String {
    cmd("OBJECT").arg("ENCODING").arg(key).query(c).unwrap()
}

#[test]
fn priority_queue_with_zadd_and_zpopmax() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let jobs = [
        ("email", 5),
        ("backup", 1),
        ("page", 9),
        ("report", 3),
        ("cache", 7),
    ];
    for (job, prio) in jobs {
        let added: i64 = c.zadd("jobs", job, prio).unwrap();
        assert_eq!(added, 1);
    }
    let mut order = Vec::new();
    loop {
        let top: Vec<(String, f64)> = cmd("ZPOPMAX").arg("jobs").query(&mut c).unwrap();
        match top.into_iter().next() {
            Some((job, prio)) => order.push((job, prio as i64)),
            None => break,
        }
    }
    assert_eq!(
        order,
        vec![
            ("page".to_string(), 9),
            ("cache".into(), 7),
            ("email".into(), 5),
            ("report".into(), 3),
            ("backup".into(), 1)
        ]
    );
    let exists: bool = c.exists("jobs").unwrap();
    assert!(!exists, "the emptied queue is gone");
    // Batch pops take the highest first.
    let _: i64 = c
        .zadd_multiple("jobs", &[(1, "a"), (2, "b"), (3, "c")])
        .unwrap();
    let two: Vec<(String, f64)> = cmd("ZPOPMAX").arg("jobs").arg(2).query(&mut c).unwrap();
    assert_eq!(two, vec![("c".to_string(), 3.0), ("b".to_string(), 2.0)]);
}

#[test]
fn leaderboard_with_zincrby_zrevrange_and_zrank() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for (player, points) in [("ann", 10), ("bob", 30), ("cid", 20), ("dee", 30)] {
        let _: i64 = c.zadd("board", player, points).unwrap();
    }
    let score: f64 = c.zincr("board", "ann", 25).unwrap();
    assert_eq!(score, 35.0);
    let score: f64 = c.zincr("board", "cid", -5.5).unwrap();
    assert_eq!(score, 14.5);
    let top: Vec<(String, f64)> = c.zrevrange_withscores("board", 0, 2).unwrap();
    assert_eq!(
        top,
        vec![
            ("ann".to_string(), 35.0),
            ("dee".into(), 30.0),
            ("bob".into(), 30.0)
        ]
    );
    let rank: Option<usize> = c.zrank("board", "cid").unwrap();
    assert_eq!(rank, Some(0));
    let rank: Option<usize> = c.zrevrank("board", "ann").unwrap();
    assert_eq!(rank, Some(0));
    let rank: Option<usize> = c.zrank("board", "nobody").unwrap();
    assert_eq!(rank, None);
    let card: usize = c.zcard("board").unwrap();
    assert_eq!(card, 4);
}

#[test]
fn sliding_window_rate_limiter_in_one_pipeline() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let window = 1000i64;
    let limit = 5usize;
    let mut allowed = 0;
    // Ten requests at t = 0, 100, ..., 900 ms, then three after the window moved.
    let times: Vec<i64> = (0..10).map(|i| i * 100).chain([1450, 1460, 2600]).collect();
    for (i, now) in times.iter().enumerate() {
        let (_trimmed, count): (i64, usize) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg("rl:user")
            .arg("-inf")
            .arg(format!("({}", now - window))
            .cmd("ZADD")
            .arg("rl:user")
            .arg(*now)
            .arg(format!("req{i}"))
            .ignore()
            .cmd("ZCARD")
            .arg("rl:user")
            .cmd("EXPIRE")
            .arg("rl:user")
            .arg(2)
            .ignore()
            .query(&mut c)
            .unwrap();
        if count <= limit {
            allowed += 1;
        }
    }
    // The first five fit; t=1450 sees 0.5s..1.45s (6 entries) and t=1460
    // seven; t=2600 sees only itself.
    assert_eq!(allowed, 6);
    let ttl: i64 = c.ttl("rl:user").unwrap();
    assert!((1..=2).contains(&ttl));
    let left: usize = c.zcard("rl:user").unwrap();
    assert_eq!(left, 1);
}

#[test]
fn a_large_set_converts_and_answers_ranges() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let items: Vec<(i64, String)> = (0..1000).map(|i| (i * 2, format!("m{i:04}"))).collect();
    let _: i64 = c.zadd_multiple("big", &items).unwrap();
    assert_eq!(encoding(&mut c, "big"), "skiplist");
    let r: Vec<String> = c.zrangebyscore_limit("big", "(100", "+inf", 3, 2).unwrap();
    assert_eq!(r, vec!["m0054", "m0055"]);
    let rank: Option<usize> = c.zrank("big", "m0777").unwrap();
    assert_eq!(rank, Some(777));
    let n: usize = c.zcount("big", 10, 20).unwrap();
    assert_eq!(n, 6);
    let removed: usize = c.zrembyscore("big", 0, 999).unwrap();
    assert_eq!(removed, 500);
    let first: Vec<(String, f64)> = c.zrange_withscores("big", 0, 0).unwrap();
    assert_eq!(first, vec![("m0500".to_string(), 1000.0)]);
    let stored: usize = cmd("ZRANGESTORE")
        .arg("small")
        .arg("big")
        .arg(0)
        .arg(9)
        .query(&mut c)
        .unwrap();
    assert_eq!(stored, 10);
    assert_eq!(encoding(&mut c, "small"), "listpack");
    let inter: Vec<String> = cmd("ZINTER")
        .arg(2)
        .arg("big")
        .arg("small")
        .query(&mut c)
        .unwrap();
    assert_eq!(inter.len(), 10);
}
