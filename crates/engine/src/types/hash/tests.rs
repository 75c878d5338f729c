use super::*;
use std::collections::{HashMap, HashSet};

#[test]
fn table_matches_a_hashmap_through_growth_and_shrink() {
    let mut t = HashTable::default();
    let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut x = 7u64;
    for step in 0..20_000 {
        let k = (crate::util::rand::next(&mut x) % 3000)
            .to_string()
            .into_bytes();
        if step < 12_000 || step % 3 == 0 {
            let v = step.to_string().into_bytes();
            assert_eq!(t.insert(&k, &v), m.insert(k.clone(), v).is_none());
        } else {
            assert_eq!(t.remove(&k), m.remove(&k).is_some());
        }
        assert_eq!(t.len(), m.len());
    }
    for (k, v) in &m {
        assert_eq!(t.get(k), Some(&v[..]));
    }
    let all: HashMap<Vec<u8>, Vec<u8>> = t.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    assert_eq!(all, m);
    assert!(t.random(crate::util::rand::u64).is_some());
    let clone = t.clone();
    assert_eq!(clone.len(), t.len());
    // Same fields in the same order (chains keep theirs), so an HSCAN of
    // the copy (COPY, a snapshot) walks as the original does.
    assert!(clone.iter().eq(t.iter()));
    drop(t);
    assert_eq!(clone.iter().count(), m.len());
}

#[test]
fn scan_returns_every_stable_field_across_resizes() {
    let mut t = HashTable::default();
    for i in 0..500 {
        t.insert(format!("keep{i}").as_bytes(), b"v");
    }
    let mut seen = HashSet::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        cursor = t.scan(cursor, |f, _| {
            seen.insert(f.to_vec());
        });
        // Grow and shrink the table between steps.
        round += 1;
        if round == 20 {
            for i in 0..3000 {
                t.insert(format!("tmp{i}").as_bytes(), b"v");
            }
        }
        if round == 200 {
            for i in 0..3000 {
                t.remove(format!("tmp{i}").as_bytes());
            }
        }
        if cursor == 0 {
            break;
        }
    }
    for i in 0..500 {
        assert!(
            seen.contains(format!("keep{i}").as_bytes()),
            "keep{i} missed"
        );
    }
}

#[test]
fn inline_pairs_and_build_agree() {
    let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"", b""), (b"long", &[7u8; 300])];
    let b = build_inline(&pairs);
    assert_eq!(inline_pairs(&b).collect::<Vec<_>>(), pairs);
    assert_eq!(HashRef::Inline(&b).len(), 3);
    assert_eq!(HashRef::Inline(&b).get(b""), Some(&b""[..]));
    assert_eq!(HashRef::Inline(&b).get(b"x"), None);
}

/// Every field equally likely, whatever the chains look like (the suite's
/// HRANDFIELD chi-square check: 10 fields, 10,000 draws).
#[test]
fn random_is_uniform_over_fields() {
    let mut t = HashTable::default();
    let fields = ["a", "b", "c", "d", "e", "6", "7", "8", "9", "a-long-field"];
    for f in fields {
        t.insert(f.as_bytes(), b"v");
    }
    let mut x = 11u64;
    let draws = 10_000;
    let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
    for _ in 0..draws {
        let (f, _) = t.random(|| crate::util::rand::next(&mut x)).unwrap();
        *counts.entry(f.to_vec()).or_default() += 1;
    }
    assert_eq!(counts.len(), fields.len());
    let p = draws as f64 / fields.len() as f64;
    let chi2: f64 = counts.values().map(|&c| (c as f64 - p).powi(2) / p).sum();
    // df = 9: 40 is a one-in-100,000 outcome for a uniform draw.
    assert!(chi2 < 40.0, "chi-square {chi2}: {counts:?}");
}
