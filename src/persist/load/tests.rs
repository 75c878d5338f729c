//! The loader's paths (one thread, several workers) agree: the same
//! dataset, and the same first error at the same offset.

use super::*;
use crate::store::digest::{dataset_digest, hex};
use crate::testkit::Harness;

/// Every type in several encodings, deadlines, three databases.
fn fill(h: &mut Harness) {
    for db in ["0", "1", "7"] {
        h.run(&["SELECT", db]);
        for i in 0..300 {
            let k = format!("k{db}:{i}");
            h.run(&["SET", &format!("{k}:int"), &i.to_string()]);
            h.run(&["SET", &format!("{k}:str"), &"v".repeat(i % 70)]);
            h.run(&["SET", &format!("{k}:ttl"), "x", "EX", "10000"]);
            h.run(&["RPUSH", &format!("{k}:list"), "a", "1", &k]);
            h.run(&["SADD", &format!("{k}:iset"), "1", "2", &i.to_string()]);
            h.run(&["SADD", &format!("{k}:set"), "a", &k]);
            h.run(&["ZADD", &format!("{k}:zset"), "1.5", "a", "2", &k]);
            h.run(&["HSET", &format!("{k}:hash"), "f", "v", "g", &k]);
            h.run(&["XADD", &format!("{k}:stream"), "*", "f", &k]);
        }
        for j in 0..200 {
            let m = format!("member-{j}");
            h.run(&["SADD", &format!("big{db}:set"), &m]);
            h.run(&["SADD", &format!("big{db}:iset"), &(j * 1000).to_string()]);
            h.run(&["ZADD", &format!("big{db}:zset"), &j.to_string(), &m]);
            h.run(&["HSET", &format!("big{db}:hash"), &m, &"x".repeat(j)]);
            h.run(&["RPUSH", &format!("big{db}:list"), &m]);
        }
    }
    h.run(&["SELECT", "0"]);
}

fn digest(h: &Harness) -> String {
    hex(&dataset_digest(&h.srv.ks, &mut Locks::default()))
}

fn file_of(h: &Harness) -> Vec<u8> {
    crate::persist::save::serialize(h.srv, &mut Locks::default())
}

#[test]
fn parallel_load_rebuilds_every_type_with_several_workers() {
    let mut h = Harness::new();
    fill(&mut h);
    let want = digest(&h);
    let data = file_of(&h);
    for workers in [1, 3, 8] {
        let h2 = Harness::new();
        let lim = Limits::of(&h2.srv.config);
        let st = parse_parallel(h2.srv, &data, &lim, now_ms(), workers, false).unwrap();
        assert_eq!(st.keys, 3 * (300 * 9 + 5));
        assert_eq!(digest(&h2), want, "{workers} workers");
        // Every shard's table was sized up front: inserting again finds
        // every key (no lost or doubled entries).
        assert_eq!(h2.srv.ks.db(7).sizes().0, 300 * 9 + 5);
    }
    // The one-thread path gives the same.
    let h3 = Harness::new();
    load_preamble(h3.srv, &data).unwrap();
    assert_eq!(digest(&h3), want);
}

/// A file whose key `b` was renamed `a`: both loaders fail at the
/// second record of the pair, with the same error.
#[test]
fn a_duplicate_key_fails_at_the_same_offset_on_every_path() {
    let mut h = Harness::new();
    for i in 0..2000 {
        h.run(&["SET", &format!("key:{i:05}"), "v"]);
    }
    let mut data = file_of(&h);
    let find = |d: &[u8], k: &[u8]| d.windows(k.len()).position(|w| w == k).unwrap();
    let (a, b) = (find(&data, b"key:00017"), find(&data, b"key:00042"));
    data[b..b + 9].copy_from_slice(b"key:00017");
    // A zero checksum is not checked.
    let n = data.len();
    data[n - 8..].fill(0);
    // The record starts at its type byte, before the key's length.
    let second = a.max(b) - 2;
    let h1 = Harness::new();
    let seq = load_preamble(h1.srv, &data).unwrap_err();
    assert_eq!(
        seq,
        format!("duplicate key 'key:00017' in DB 0 at offset {second}")
    );
    for workers in [1, 4] {
        let h2 = Harness::new();
        let lim = Limits::of(&h2.srv.config);
        let e = parse_parallel(h2.srv, &data, &lim, now_ms(), workers, false).unwrap_err();
        assert_eq!(e.to_string(), seq, "{workers} workers");
    }
    // A corrupt end after the duplicate: still the duplicate first.
    let mut worse = data.clone();
    worse[n - 9] = 0xf0;
    let h3 = Harness::new();
    let lim = Limits::of(&h3.srv.config);
    let e = parse_parallel(h3.srv, &worse, &lim, now_ms(), 2, false).unwrap_err();
    assert_eq!(e.to_string(), seq);
}

/// Many duplicates in many shards: the one earliest in the file is
/// reported, whichever shard a worker takes first.
#[test]
fn of_many_duplicates_the_first_in_the_file_is_reported() {
    let mut h = Harness::new();
    for i in 0..3000 {
        h.run(&["SET", &format!("key:{i:05}"), "v"]);
    }
    let mut data = file_of(&h);
    let find = |d: &[u8], k: &[u8]| d.windows(k.len()).position(|w| w == k).unwrap();
    for i in 0..40 {
        let b = find(&data, format!("key:{:05}", 2000 + i).as_bytes());
        data[b..b + 9].copy_from_slice(format!("key:{i:05}").as_bytes());
    }
    let n = data.len();
    data[n - 8..].fill(0);
    let seq = load_preamble(Harness::new().srv, &data).unwrap_err();
    for workers in [1, 2, 5] {
        let h2 = Harness::new();
        let lim = Limits::of(&h2.srv.config);
        let e = parse_parallel(h2.srv, &data, &lim, now_ms(), workers, false).unwrap_err();
        assert_eq!(e.to_string(), seq, "{workers} workers");
    }
}

/// A corrupt LZF value is decoded by a worker: the same error, at the
/// same offset, as on one thread, even when its key has expired.
#[test]
fn a_bad_compressed_value_fails_alike_on_every_path() {
    use crate::persist::rdb::write;
    for expire in [None, Some(1)] {
        let mut data = Vec::new();
        write::write_header(&mut data, 0, 0, false);
        write::write_db_start(&mut data, 0, 501, 1);
        let opts = write::Opts { compress: true };
        for i in 0..500 {
            let k = format!("key:{i:03}");
            let v = "v".repeat(10 + i % 7);
            let e = Entry::new(k.as_bytes(), Value::from_string(v.as_bytes()), None, 0);
            write::write_entry_with(&mut data, k.as_bytes(), e.as_ref(), opts);
        }
        let e = Entry::new(b"zzz", Value::from_string(&[b'a'; 100]), expire, 0);
        write::write_entry_with(&mut data, b"zzz", e.as_ref(), opts);
        write::write_footer(&mut data, false);
        let k = data.windows(4).position(|w| w == b"\x03zzz").unwrap();
        // Type, key, then 0xc3 (LZF), two lengths, the blob: its first
        // control byte becomes a back reference before the start.
        assert_eq!(data[k + 4], 0xc3);
        data[k + 7] = 0xe0;
        let seq = load_preamble(Harness::new().srv, &data).unwrap_err();
        assert_eq!(seq, format!("invalid LZF data at offset {}", k + 4));
        for workers in [1, 3] {
            let h2 = Harness::new();
            let lim = Limits::of(&h2.srv.config);
            let e = parse_parallel(h2.srv, &data, &lim, now_ms(), workers, false).unwrap_err();
            assert_eq!(e.to_string(), seq, "{workers} workers");
        }
    }
}

#[test]
fn a_lying_resizedb_allocates_nothing_big() {
    let h = Harness::new();
    let mut data = Vec::new();
    crate::persist::rdb::write::write_header(&mut data, 0, 0, false);
    crate::persist::rdb::write::write_db_start(&mut data, 0, usize::MAX >> 2, 0);
    crate::persist::rdb::write::write_footer(&mut data, true);
    load_preamble(h.srv, &data).unwrap();
    let cap: usize = (0..h.srv.ks.shard_count())
        .map(|s| h.srv.ks.db(0).shard(s).lock().table().capacity())
        .sum();
    assert!(cap < 1 << 16, "{cap} slots");
}
