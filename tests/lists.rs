//! Lists through a real client: queues, stacks, and the basic commands.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use redis::Commands;

#[test]
fn fifo_queue_delivers_every_job_exactly_once() {
    let srv = common::Server::start();
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    const JOBS: usize = 10_000;
    let per = JOBS / PRODUCERS;
    let done = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut handles = Vec::new();
    for p in 0..PRODUCERS {
        let mut c = srv.client();
        handles.push(thread::spawn(move || {
            for i in 0..per {
                let job = format!(r#"{{"producer":{p},"seq":{i},"payload":"job-{p}-{i}"}}"#);
                let _: i64 = c.rpush("jobs", job).unwrap();
            }
        }));
    }
    for _ in 0..CONSUMERS {
        let mut c = srv.client();
        let done = done.clone();
        let seen = seen.clone();
        handles.push(thread::spawn(move || {
            let mut mine = Vec::new();
            while done.load(Ordering::SeqCst) < JOBS {
                let job: Option<String> = c.lpop("jobs", None).unwrap();
                match job {
                    Some(j) => {
                        done.fetch_add(1, Ordering::SeqCst);
                        mine.push(j);
                    }
                    None => thread::yield_now(),
                }
            }
            seen.lock().unwrap().extend(mine);
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), JOBS);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), JOBS, "no job delivered twice");
    // Per producer, jobs come out in the order they went in.
    let mut c = srv.client();
    let left: i64 = c.llen("jobs").unwrap();
    assert_eq!(left, 0);
    let exists: bool = c.exists("jobs").unwrap();
    assert!(!exists, "an emptied list is deleted");
}

#[test]
fn fifo_order_per_producer() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for i in 0..5000 {
        let _: i64 = c.rpush("q", i).unwrap();
    }
    let mut next = 0;
    loop {
        let batch: Vec<i64> = c
            .lpop("q", std::num::NonZeroUsize::new(333))
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for v in batch {
            assert_eq!(v, next);
            next += 1;
        }
    }
    assert_eq!(next, 5000);
}

#[test]
fn stack_range_and_edits() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let n: i64 = c.lpush("s", &["a", "b", "c"]).unwrap();
    assert_eq!(n, 3);
    let all: Vec<String> = c.lrange("s", 0, -1).unwrap();
    assert_eq!(all, ["c", "b", "a"]);
    let _: () = c.lset("s", 1, "B").unwrap();
    let v: String = c.lindex("s", 1).unwrap();
    assert_eq!(v, "B");
    let n: i64 = c.linsert_before("s", "a", "x").unwrap();
    assert_eq!(n, 4);
    let n: i64 = c.lrem("s", 0, "x").unwrap();
    assert_eq!(n, 1);
    let _: () = c.ltrim("s", 0, 1).unwrap();
    let all: Vec<String> = c.lrange("s", 0, -1).unwrap();
    assert_eq!(all, ["c", "B"]);
    let pos: Option<usize> = c.lpos("s", "B", redis::LposOptions::default()).unwrap();
    assert_eq!(pos, Some(1));
    let moved: String = c
        .lmove("s", "d", redis::Direction::Left, redis::Direction::Right)
        .unwrap();
    assert_eq!(moved, "c");
    let got: String = c.rpoplpush("s", "d").unwrap();
    assert_eq!(got, "B");
    let exists: bool = c.exists("s").unwrap();
    assert!(!exists);
    let d: Vec<String> = c.lrange("d", 0, -1).unwrap();
    assert_eq!(d, ["B", "c"]);
    let _: () = c.set("str", "x").unwrap();
    let err = c.lpush::<_, _, i64>("str", "a").unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
}

#[test]
fn big_list_across_many_nodes() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let items: Vec<String> = (0..20_000).map(|i| format!("item-{i:06}")).collect();
    for chunk in items.chunks(1000) {
        let _: i64 = c.rpush("big", chunk).unwrap();
    }
    let len: usize = c.llen("big").unwrap();
    assert_eq!(len, 20_000);
    for i in [0usize, 1, 4321, 10_000, 19_999] {
        let v: String = c.lindex("big", i as isize).unwrap();
        assert_eq!(v, items[i]);
    }
    let mid: Vec<String> = c.lrange("big", 9_990, 10_009).unwrap();
    assert_eq!(mid, items[9_990..10_010]);
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("big")
        .query(&mut c)
        .unwrap();
    assert_eq!(enc, "quicklist");
}
