use super::*;
use crate::persist::rdb::write::*;
use crate::store::{Entry, Value};

#[derive(Default)]
struct Collect {
    keys: Vec<(usize, Entry)>,
    funcs: Vec<Vec<u8>>,
}

impl Sink for Collect {
    fn key(&mut self, db: usize, entry: Entry) -> std::result::Result<(), String> {
        self.keys.push((db, entry));
        Ok(())
    }
    fn function(&mut self, code: &[u8]) -> std::result::Result<(), String> {
        self.funcs.push(code.to_vec());
        Ok(())
    }
}

fn limits() -> Limits {
    Limits::of(&crate::config::Config::default())
}

fn file_with(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, 0, 0, false);
    write_function(
        &mut out,
        b"#!lua name=x\nredis.register_function('f', function() return 1 end)",
        Opts::default(),
    );
    write_db_start(&mut out, 3, entries.len(), 0);
    for e in entries {
        write_entry(&mut out, e.as_ref().key(), e.as_ref());
    }
    write_footer(&mut out, true);
    out
}

#[test]
fn strings_round_trip() {
    let long = vec![b'z'; 300];
    let entries = vec![
        Entry::new(b"a", Value::from_string(b"hello"), None, 0),
        Entry::new(b"b", Value::Int(-123456789012), Some(i64::MAX / 2), 0),
        Entry::new(b"c", Value::from_string(&long), None, 0),
        Entry::new(b"old", Value::from_string(b"x"), Some(1), 0),
    ];
    let f = file_with(&entries);
    let mut c = Collect::default();
    let st = parse(&f, 16, &limits(), 1000, &mut c).unwrap();
    assert_eq!(st.keys, 3);
    assert_eq!(st.expired, 1);
    assert_eq!(c.funcs.len(), 1);
    assert_eq!(c.keys[0].0, 3);
    let got: Vec<_> = c
        .keys
        .iter()
        .map(|(_, e)| (e.as_ref().key().to_vec(), e.as_ref().expire()))
        .collect();
    assert_eq!(got[1], (b"b".to_vec(), Some(i64::MAX / 2)));
    assert!(
        matches!(c.keys[2].1.as_ref().value(), crate::store::ValueRef::Bytes(b) if b == &long[..])
    );
}

#[test]
fn every_truncation_and_flip_is_an_error_or_ok() {
    let entries = vec![Entry::new(
        b"a",
        Value::from_string(b"hello world"),
        None,
        0,
    )];
    let f = file_with(&entries);
    for cut in 0..f.len() {
        let mut c = Collect::default();
        let e = parse(&f[..cut], 16, &limits(), 0, &mut c).unwrap_err();
        assert!(e.offset <= cut, "{e} for cut {cut}");
    }
    for i in 9..f.len() - 8 {
        let mut g = f.clone();
        g[i] ^= 0x5a;
        let mut c = Collect::default();
        assert!(parse(&g, 16, &limits(), 0, &mut c).is_err(), "flip at {i}");
    }
}

#[test]
fn payload_footer() {
    let p = dump_payload(crate::store::ValueRef::Bytes(b"abc"), Opts::default());
    let body = payload_body(&p).unwrap();
    assert!(read_payload_value(body, &limits()).is_ok());
    let mut bad = p.clone();
    bad[1] ^= 1;
    assert!(payload_body(&bad).is_none());
}

#[test]
fn empty_collections_are_recognised() {
    // type, count 0: list, set, zset (binary scores), hash.
    for body in [&[1u8, 0][..], &[2, 0], &[5, 0], &[4, 0]] {
        let v = read_payload_value(body, &limits()).unwrap();
        assert!(v.is_empty_collection(), "{body:?}");
    }
    let v = read_payload_value(&[2, 1, 1, b'7'], &limits()).unwrap();
    assert!(!v.is_empty_collection());
}
