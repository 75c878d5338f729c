//! Set commands against the real binary through the `redis` crate: the
//! tagging pattern, the properties of the random commands, and SSCAN's
//! guarantee on a large set that changes during the scan.

mod common;

use std::collections::HashSet;

use redis::{Connection, cmd};

fn sadd(c: &mut Connection, key: &str, members: &[&str]) -> i64 {
    cmd("SADD").arg(key).arg(members).query(c).unwrap()
}

fn smembers(c: &mut Connection, key: &str) -> HashSet<String> {
    cmd("SMEMBERS").arg(key).query(c).unwrap()
}

fn set_of(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn encoding(c: &mut Connection, key: &str) -> String {
    cmd("OBJECT").arg("ENCODING").arg(key).query(c).unwrap()
}

#[test]
fn tags_per_user() {
    let srv = common::Server::start();
    let mut c = srv.client();
    assert_eq!(sadd(&mut c, "user:1:tags", &["rust", "redis", "db"]), 3);
    assert_eq!(
        sadd(&mut c, "user:2:tags", &["go", "redis", "k8s", "db"]),
        4
    );
    assert_eq!(sadd(&mut c, "user:3:tags", &["rust", "wasm", "redis"]), 3);
    assert_eq!(sadd(&mut c, "user:1:tags", &["rust"]), 0);

    assert_eq!(
        smembers(&mut c, "user:1:tags"),
        set_of(&["rust", "redis", "db"])
    );
    let common: HashSet<String> = cmd("SINTER")
        .arg(&["user:1:tags", "user:2:tags", "user:3:tags"])
        .query(&mut c)
        .unwrap();
    assert_eq!(common, set_of(&["redis"]));
    let all: HashSet<String> = cmd("SUNION")
        .arg(&["user:1:tags", "user:2:tags", "user:3:tags"])
        .query(&mut c)
        .unwrap();
    assert_eq!(all, set_of(&["rust", "redis", "db", "go", "k8s", "wasm"]));
    let only_1: HashSet<String> = cmd("SDIFF")
        .arg(&["user:1:tags", "user:2:tags"])
        .query(&mut c)
        .unwrap();
    assert_eq!(only_1, set_of(&["rust"]));

    let n: i64 = cmd("SINTERCARD")
        .arg(&["2", "user:1:tags", "user:2:tags"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let flags: Vec<bool> = cmd("SMISMEMBER")
        .arg(&["user:3:tags", "wasm", "go"])
        .query(&mut c)
        .unwrap();
    assert_eq!(flags, vec![true, false]);

    let n: i64 = cmd("SUNIONSTORE")
        .arg(&["tags:all", "user:1:tags", "user:2:tags", "user:3:tags"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 6);
    assert_eq!(encoding(&mut c, "tags:all"), "hashtable");
    let moved: i64 = cmd("SMOVE")
        .arg(&["user:2:tags", "user:3:tags", "k8s"])
        .query(&mut c)
        .unwrap();
    assert_eq!(moved, 1);
    assert!(smembers(&mut c, "user:3:tags").contains("k8s"));

    // Cross-type access is refused with WRONGTYPE.
    let _: () = cmd("SET").arg(&["plain", "x"]).query(&mut c).unwrap();
    let err = cmd("SADD")
        .arg(&["plain", "a"])
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    let err = cmd("SINTER")
        .arg(&["user:1:tags", "plain"])
        .query::<Vec<String>>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
}

#[test]
fn spop_and_srandmember_properties() {
    let srv = common::Server::start();
    let mut c = srv.client();
    for (key, members) in [
        ("ints", (0..50).map(|i| i.to_string()).collect::<Vec<_>>()),
        ("strs", (0..50).map(|i| format!("m{i}")).collect()),
        ("big", (0..1000).map(|i| format!("m{i}")).collect()),
    ] {
        let refs: Vec<&str> = members.iter().map(|s| s.as_str()).collect();
        sadd(&mut c, key, &refs);
        let all: HashSet<String> = members.iter().cloned().collect();
        let n = all.len();

        for count in [1usize, 5, n - 1, n, n + 10] {
            let got: Vec<String> = cmd("SRANDMEMBER")
                .arg(key)
                .arg(count)
                .query(&mut c)
                .unwrap();
            assert_eq!(got.len(), count.min(n), "{key} {count}");
            let distinct: HashSet<&String> = got.iter().collect();
            assert_eq!(
                distinct.len(),
                got.len(),
                "{key}: positive count is distinct"
            );
            assert!(got.iter().all(|m| all.contains(m)));
        }
        for count in [1i64, 7, 3 * n as i64] {
            let got: Vec<String> = cmd("SRANDMEMBER")
                .arg(key)
                .arg(-count)
                .query(&mut c)
                .unwrap();
            assert_eq!(got.len(), count as usize, "{key}: negative count is exact");
            assert!(got.iter().all(|m| all.contains(m)));
        }
        // With many draws, repeats show up and every member is reachable.
        let got: Vec<String> = cmd("SRANDMEMBER")
            .arg(key)
            .arg(-(20 * n as i64))
            .query(&mut c)
            .unwrap();
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(distinct.len(), n, "{key}: every member drawn");

        let one: String = cmd("SPOP").arg(key).query(&mut c).unwrap();
        assert!(all.contains(&one));
        let some: Vec<String> = cmd("SPOP").arg(key).arg(10).query(&mut c).unwrap();
        assert_eq!(some.len(), 10);
        let popped: HashSet<String> = some.iter().cloned().chain([one]).collect();
        assert_eq!(popped.len(), 11, "{key}: pops never repeat");
        let left = smembers(&mut c, key);
        assert_eq!(left.len(), n - 11);
        assert!(left.is_disjoint(&popped));
        let rest: Vec<String> = cmd("SPOP").arg(key).arg(n).query(&mut c).unwrap();
        assert_eq!(rest.len(), n - 11);
        let exists: i64 = cmd("EXISTS").arg(key).query(&mut c).unwrap();
        assert_eq!(exists, 0, "{key}: popping everything deletes the key");
    }
}

#[test]
fn sscan_returns_every_member_present_for_the_whole_scan() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let members: Vec<String> = (0..5000).map(|i| format!("member:{i}")).collect();
    for chunk in members.chunks(500) {
        let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        sadd(&mut c, "s", &refs);
    }
    assert_eq!(encoding(&mut c, "s"), "hashtable");
    let mut seen = HashSet::new();
    let mut cursor = 0u64;
    let mut round = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = cmd("SSCAN")
            .arg("s")
            .arg(cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut c)
            .unwrap();
        seen.extend(batch);
        // Churn between calls: members 0..1000 go (one per round), new ones come.
        round += 1;
        let _: i64 = cmd("SREM")
            .arg("s")
            .arg(format!("member:{}", round % 1000))
            .query(&mut c)
            .unwrap();
        let _: i64 = cmd("SADD")
            .arg("s")
            .arg(format!("new:{round}"))
            .query(&mut c)
            .unwrap();
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    for m in &members[1000..] {
        assert!(seen.contains(m), "{m} missed");
    }
    // Intsets come back whole, with cursor 0, and MATCH filters.
    let ints: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = ints.iter().map(|s| s.as_str()).collect();
    sadd(&mut c, "i", &refs);
    let (next, batch): (u64, Vec<String>) = cmd("SSCAN")
        .arg(&["i", "0", "MATCH", "9*", "COUNT", "1"])
        .query(&mut c)
        .unwrap();
    assert_eq!(next, 0);
    assert_eq!(
        batch,
        [
            "9", "90", "91", "92", "93", "94", "95", "96", "97", "98", "99"
        ]
    );
}

#[test]
fn encodings_follow_redis_thresholds() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let ints: Vec<String> = (0..512).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = ints.iter().map(|s| s.as_str()).collect();
    sadd(&mut c, "s", &refs);
    assert_eq!(encoding(&mut c, "s"), "intset");
    sadd(&mut c, "s", &["512"]);
    assert_eq!(encoding(&mut c, "s"), "hashtable");
    sadd(&mut c, "t", &["1"]);
    assert_eq!(encoding(&mut c, "t"), "intset");
    sadd(&mut c, "t", &["a"]);
    assert_eq!(encoding(&mut c, "t"), "hashtable");
    let _: () = cmd("CONFIG")
        .arg(&["SET", "set-max-intset-entries", "2"])
        .query(&mut c)
        .unwrap();
    sadd(&mut c, "u", &["1", "2"]);
    assert_eq!(encoding(&mut c, "u"), "intset");
    sadd(&mut c, "u", &["3"]);
    assert_eq!(encoding(&mut c, "u"), "hashtable");
}
