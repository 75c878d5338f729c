//! Unit tests of the set type over a bare keyspace.

use super::*;
use crate::store::{Keyspace, Locks};

fn keyspace() -> &'static Keyspace {
    Box::leak(Box::new(Keyspace::new(1, 4)))
}

/// Runs `f` on the slot of `key`.
fn with_slot<R>(ks: &'static Keyspace, key: &[u8], f: impl FnOnce(&mut KeySlot<'_, '_>) -> R) -> R {
    let mut locks = Locks::default();
    let mut slot = locks.key(ks, 0, key, 1_000);
    f(&mut slot)
}

fn encoding_of(ks: &'static Keyspace, key: &[u8]) -> Option<&'static str> {
    with_slot(ks, key, |s| {
        let e = s.get()?;
        Some(match e.value() {
            ValueRef::Packed(p, _) => p.encoding(),
            ValueRef::Obj(o) => o.encoding(),
            _ => "string",
        })
    })
}

/// The storage form: "ints", "packed" or "table".
fn storage_of(ks: &'static Keyspace, key: &[u8]) -> &'static str {
    with_slot(ks, key, |s| match get(s).unwrap().unwrap() {
        SetRef::Ints(_) => "ints",
        SetRef::Packed(_) => "packed",
        SetRef::Table(_) => "table",
    })
}

fn members(ks: &'static Keyspace, key: &[u8]) -> Vec<Vec<u8>> {
    with_slot(ks, key, |s| match get(s).unwrap() {
        Some(set) => set.iter().map(Member::to_vec).collect(),
        None => Vec::new(),
    })
}

fn sadd(ks: &'static Keyspace, key: &[u8], ms: &[&str], lim: &Limits) -> usize {
    let ms: Vec<&[u8]> = ms.iter().map(|m| m.as_bytes()).collect();
    with_slot(ks, key, |s| add(s, &ms, lim)).unwrap()
}

fn srem(ks: &'static Keyspace, key: &[u8], ms: &[&str]) -> usize {
    let ms: Vec<&[u8]> = ms.iter().map(|m| m.as_bytes()).collect();
    with_slot(ks, key, |s| remove(s, &ms)).unwrap()
}

fn strs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn intset_stays_sorted_and_converts_like_redis() {
    let ks = keyspace();
    let lim = Limits::default();
    assert_eq!(sadd(ks, b"s", &["5", "-2", "300000", "5"], &lim), 3);
    assert_eq!(encoding_of(ks, b"s"), Some("intset"));
    assert_eq!(members(ks, b"s"), strs(&["-2", "5", "300000"]));
    // Non-canonical integers are strings: the set becomes a hashtable.
    assert_eq!(sadd(ks, b"s", &["05"], &lim), 1);
    assert_eq!(encoding_of(ks, b"s"), Some("hashtable"));
    assert_eq!(storage_of(ks, b"s"), "packed");
    // Removing the string does not bring the intset back (one way, as Redis).
    assert_eq!(srem(ks, b"s", &["05", "nope"]), 1);
    assert_eq!(encoding_of(ks, b"s"), Some("hashtable"));
    assert_eq!(srem(ks, b"s", &["-2", "5", "300000"]), 3);
    assert_eq!(encoding_of(ks, b"s"), None, "an emptied set is deleted");
}

#[test]
fn thresholds_pick_each_storage() {
    let ks = keyspace();
    let lim = Limits {
        intset_entries: 4,
        packed_entries: 6,
        packed_value: 5,
    };
    sadd(ks, b"a", &["1", "2", "3", "4"], &lim);
    assert_eq!(storage_of(ks, b"a"), "ints");
    sadd(ks, b"a", &["5"], &lim);
    assert_eq!(
        encoding_of(ks, b"a"),
        Some("hashtable"),
        "past intset entries"
    );
    assert_eq!(storage_of(ks, b"a"), "packed");
    sadd(ks, b"a", &["6"], &lim);
    assert_eq!(storage_of(ks, b"a"), "packed");
    sadd(ks, b"a", &["7"], &lim);
    assert_eq!(storage_of(ks, b"a"), "table", "past packed entries");
    assert_eq!(members(ks, b"a").len(), 7);

    sadd(ks, b"b", &["x"], &lim);
    assert_eq!(storage_of(ks, b"b"), "packed");
    sadd(ks, b"b", &["longer"], &lim);
    assert_eq!(storage_of(ks, b"b"), "table", "past packed value");
    assert_eq!(encoding_of(ks, b"b"), Some("hashtable"));

    // A new set is created by content.
    sadd(ks, b"c", &["1", "2", "3", "4", "5"], &lim);
    assert_eq!(storage_of(ks, b"c"), "packed");
    sadd(ks, b"d", &["abcdef"], &lim);
    assert_eq!(storage_of(ks, b"d"), "table");
    // Insertion order is kept by the inline hashtable form.
    sadd(ks, b"e", &["b", "a", "c"], &lim);
    assert_eq!(members(ks, b"e"), strs(&["b", "a", "c"]));
    srem(ks, b"e", &["a"]);
    assert_eq!(members(ks, b"e"), strs(&["b", "c"]));
}

#[test]
fn wrong_type_is_reported() {
    let ks = keyspace();
    with_slot(ks, b"str", |s| {
        s.insert(Value::from_string(b"x"), None);
    });
    let lim = Limits::default();
    with_slot(ks, b"str", |s| {
        assert_eq!(add(s, &[b"a"], &lim), Err(Error::WrongType));
        assert_eq!(remove(s, &[b"a"]), Err(Error::WrongType));
        assert!(matches!(pop(s, 1, &lim), Err(Error::WrongType)));
        assert!(matches!(get(s), Err(Error::WrongType)));
    });
}

#[test]
fn pop_takes_distinct_members_and_keeps_the_encoding() {
    let lim = Limits::default();
    for members_in in [
        (0..20).map(|i| i.to_string()).collect::<Vec<_>>(),
        (0..20).map(|i| format!("m{i}")).collect(),
        (0..300).map(|i| format!("m{i}")).collect(),
    ] {
        let ks = keyspace();
        let ms: Vec<&str> = members_in.iter().map(|s| s.as_str()).collect();
        sadd(ks, b"p", &ms, &lim);
        let before = storage_of(ks, b"p");
        let popped = with_slot(ks, b"p", |s| pop(s, 7, &lim)).unwrap().unwrap();
        assert!(!popped.emptied);
        let got: std::collections::HashSet<_> = popped.members.iter().cloned().collect();
        assert_eq!(got.len(), 7, "distinct");
        let left = members(ks, b"p");
        assert_eq!(left.len(), ms.len() - 7);
        assert!(left.iter().all(|m| !got.contains(m)));
        assert_eq!(storage_of(ks, b"p"), before);
        let rest = with_slot(ks, b"p", |s| pop(s, 1000, &lim))
            .unwrap()
            .unwrap();
        assert!(rest.emptied);
        assert_eq!(rest.members.len(), ms.len() - 7);
        assert_eq!(encoding_of(ks, b"p"), None);
        assert!(with_slot(ks, b"p", |s| pop(s, 1, &lim)).unwrap().is_none());
    }
}

#[test]
fn pop_everything_replies_in_union_order() {
    let ks = keyspace();
    let lim = Limits::default();
    sadd(ks, b"h", &["a", "30", "1", "20"], &lim);
    srem(ks, b"h", &["a"]);
    let all = with_slot(ks, b"h", |s| pop(s, 10, &lim)).unwrap().unwrap();
    assert_eq!(
        all.members,
        strs(&["1", "20", "30"]),
        "integers come back sorted"
    );
}

#[test]
fn store_replaces_drops_ttl_and_deletes_when_empty() {
    let ks = keyspace();
    let lim = Limits::default();
    with_slot(ks, b"d", |s| {
        s.insert(Value::from_string(b"old"), Some(99_999));
    });
    let mut buf = SetBuf::new();
    buf.add(Member::Bytes(b"7"), &lim);
    buf.add(Member::Int(3), &lim);
    assert_eq!(buf.encoding(), "intset");
    assert_eq!(with_slot(ks, b"d", |s| store(s, buf, &lim)), (2, true));
    assert_eq!(members(ks, b"d"), strs(&["3", "7"]));
    assert_eq!(with_slot(ks, b"d", |s| s.get().unwrap().expire()), None);
    assert_eq!(
        with_slot(ks, b"d", |s| store(s, SetBuf::new(), &lim)),
        (0, true)
    );
    assert_eq!(encoding_of(ks, b"d"), None);
    assert_eq!(
        with_slot(ks, b"d", |s| store(s, SetBuf::new(), &lim)),
        (0, false)
    );
}

#[test]
fn setbuf_follows_redis_conversions() {
    let lim = Limits {
        intset_entries: 3,
        ..Limits::default()
    };
    let mut b = SetBuf::new();
    for m in ["3", "1", "2"] {
        assert!(b.add(Member::Bytes(m.as_bytes()), &lim));
    }
    assert!(!b.add(Member::Int(2), &lim));
    assert_eq!(b.encoding(), "intset");
    assert!(b.add(Member::Int(4), &lim));
    assert_eq!(b.encoding(), "hashtable");
    assert!(b.remove(b"4"));
    assert_eq!(b.encoding(), "hashtable", "never back");
    assert!(b.contains(b"1") && !b.contains(b"4"));
    let mut c = SetBuf::new();
    c.add(Member::Bytes(b"-0"), &lim);
    assert_eq!(c.encoding(), "hashtable", "-0 is not canonical");
}

#[test]
fn sample_positions_are_distinct_and_cover() {
    for (n, k) in [(10, 10), (10, 3), (1000, 5), (1000, 900), (1, 1), (5, 0)] {
        let p = sample_positions(n, k);
        assert_eq!(p.len(), k);
        let u: std::collections::HashSet<_> = p.iter().collect();
        assert_eq!(u.len(), k);
        assert!(p.iter().all(|&i| i < n));
    }
    let mut seen = [0usize; 8];
    for _ in 0..4000 {
        for i in sample_positions(8, 2) {
            seen[i] += 1;
        }
    }
    assert!(seen.iter().all(|&c| c > 700), "roughly uniform: {seen:?}");
}

#[test]
fn small_integer_sets_are_compact() {
    let ks = keyspace();
    let lim = Limits::default();
    let ms: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    let ms: Vec<&str> = ms.iter().map(|s| s.as_str()).collect();
    sadd(ks, b"k", &ms, &lim);
    let bytes = with_slot(ks, b"k", |s| match s.get().unwrap().value() {
        ValueRef::Packed(Packed::IntSet, b) => b.len(),
        _ => panic!("not an inline intset"),
    });
    assert_eq!(bytes, 1 + 500 * 2, "two bytes per member");
}

#[test]
fn scan_of_compact_sets_is_one_call() {
    let ks = keyspace();
    let lim = Limits::default();
    sadd(ks, b"k", &["3", "1", "2"], &lim);
    with_slot(ks, b"k", |s| {
        let set = get(s).unwrap().unwrap();
        let mut got = Vec::new();
        assert_eq!(set.scan(0, 1, |m| got.push(m.to_vec())), 0);
        assert_eq!(got, strs(&["1", "2", "3"]));
    });
}
