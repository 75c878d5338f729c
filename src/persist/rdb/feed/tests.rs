use super::*;
use crate::persist::rdb::file;
use crate::persist::rdb::write::*;
use crate::persist::rdb::{OP_EOF, T_LIST};
use crate::store::{Entry, Value};

/// Collects key names, with how much of the input had been delivered
/// when each arrived.
#[derive(Default)]
struct Collect {
    keys: Vec<(usize, Vec<u8>)>,
    funcs: usize,
    delivered: Option<std::rc::Rc<std::cell::Cell<usize>>>,
    seen_at: Vec<usize>,
}

impl file::Sink for Collect {
    fn key(&mut self, db: usize, entry: Entry) -> std::result::Result<(), String> {
        self.keys.push((db, entry.as_ref().key().to_vec()));
        if let Some(d) = &self.delivered {
            self.seen_at.push(d.get());
        }
        Ok(())
    }
    fn function(&mut self, _code: &[u8]) -> std::result::Result<(), String> {
        self.funcs += 1;
        Ok(())
    }
}

/// Delivers `data` in chunks of pseudo-random sizes up to `max`, then
/// the end (or an error, `broken`).
struct Chunks<'a> {
    data: &'a [u8],
    pos: usize,
    max: usize,
    seed: u64,
    broken: bool,
    /// After the data the input idles (never ends), as a link does.
    endless: bool,
    fills: usize,
    delivered: std::rc::Rc<std::cell::Cell<usize>>,
}

impl<'a> Chunks<'a> {
    fn new(data: &'a [u8], max: usize, seed: u64) -> Chunks<'a> {
        Chunks {
            data,
            pos: 0,
            max,
            seed,
            broken: false,
            endless: false,
            fills: 0,
            delivered: Default::default(),
        }
    }
}

impl Input for Chunks<'_> {
    fn fill(&mut self, buf: &mut Vec<u8>) -> std::result::Result<Fill, String> {
        self.fills += 1;
        if self.pos == self.data.len() {
            return if self.broken {
                Err("MASTER closed the connection".into())
            } else if self.endless {
                // A link that stays up after the payload: idle.
                Ok(Fill::Idle)
            } else {
                Ok(Fill::End)
            };
        }
        let n = 1 + (crate::util::rand::next(&mut self.seed) as usize % self.max);
        let end = (self.pos + n).min(self.data.len());
        buf.extend_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        self.delivered.set(end);
        Ok(Fill::Data)
    }
}

fn limits() -> Limits {
    Limits::of(&crate::config::Config::default())
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/rdb/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).unwrap()
}

/// Bytes used and the keys (database, name) found.
type Parsed = Result<(usize, Vec<(usize, Vec<u8>)>)>;

fn whole(data: &[u8]) -> Parsed {
    let mut c = Collect::default();
    file::parse(data, 16, &limits(), 0, &mut c).map(|st| (st.consumed, c.keys))
}

fn fed(data: &[u8], max: usize, seed: u64) -> Parsed {
    let mut c = Collect::default();
    let mut input = Chunks::new(data, max, seed);
    let r = parse(&mut input, 16, &limits(), 0, &mut c);
    r.map(|(st, rest)| {
        // Nothing read past the end is lost.
        assert_eq!(st.consumed + rest.len(), input.pos);
        (st.consumed, c.keys)
    })
}

#[test]
fn fed_in_pieces_equals_whole() {
    for name in [
        "encodings.rdb",
        "hash-ziplist.rdb",
        "hash-zipmap.rdb",
        "list-quicklist.rdb",
        "scriptbackup.rdb",
        "zset-ziplist.rdb",
        "corrupt_empty_keys.rdb",
    ] {
        let data = fixture(name);
        let want = whole(&data);
        for (max, seed) in [(1, 1), (3, 2), (17, 3), (4096, 4)] {
            assert_eq!(fed(&data, max, seed), want, "{name} max {max}");
        }
    }
}

#[test]
fn bytes_after_the_payload_are_handed_back() {
    let mut data = fixture("encodings.rdb");
    let len = data.len();
    data.extend_from_slice(b"0123456789012345678901234567890123456789*1\r\n");
    let mut c = Collect::default();
    let mut input = Chunks::new(&data, 7, 5);
    let (st, rest) = parse(&mut input, 16, &limits(), 0, &mut c).unwrap();
    assert_eq!(st.consumed, len);
    // What was read past the end is returned, nothing was lost.
    let mut tail = rest;
    tail.extend_from_slice(&data[input.pos..]);
    assert_eq!(tail, &data[len..]);
}

#[test]
fn corruption_is_reported_as_the_whole_parse_reports_it() {
    let data = fixture("encodings.rdb");
    let mut seed = 7u64;
    for i in 0..400 {
        let mut bad = data.clone();
        let at = 9 + crate::util::rand::next(&mut seed) as usize % (bad.len() - 9);
        bad[at] ^= 1 << (i % 8);
        // Counts checked against the bytes left fail the same way once
        // the input ended: never read as corruption early.
        assert_eq!(fed(&bad, 13, i), whole(&bad), "flip at {at}");
    }
}

#[test]
fn truncated_or_broken_input_is_an_error() {
    let data = fixture("encodings.rdb");
    for cut in (0..data.len()).step_by(7) {
        assert!(fed(&data[..cut], 50, cut as u64).is_err(), "cut {cut}");
        let mut c = Collect::default();
        let mut input = Chunks::new(&data[..cut], 50, 1);
        input.broken = true;
        let e = parse(&mut input, 16, &limits(), 0, &mut c).unwrap_err();
        assert!(e.msg.starts_with("Unexpected EOF reading RDB file"), "{e}");
        assert_eq!(e.offset, cut);
    }
}

/// A file of `n` string keys of `size` bytes.
fn strings(n: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, 0, 0, false);
    write_db_start(&mut out, 0, n, 0);
    let value = vec![b'v'; size];
    for i in 0..n {
        let e = Entry::new(
            format!("k{i}").as_bytes(),
            Value::from_string(&value),
            None,
            0,
        );
        write_entry(&mut out, e.as_ref().key(), e.as_ref());
    }
    write_footer(&mut out, true);
    out
}

#[test]
fn keys_arrive_while_the_input_does() {
    let data = strings(1000, 1000);
    let mut input = Chunks::new(&data, 1500, 9);
    let mut c = Collect {
        delivered: Some(input.delivered.clone()),
        ..Collect::default()
    };
    let (st, _) = parse(&mut input, 16, &limits(), 0, &mut c).unwrap();
    assert_eq!(st.keys, 1000);
    // Each key was handed over with at most a few records read ahead.
    for (i, at) in c.seen_at.iter().enumerate() {
        assert!(*at < 20 + (i + 1) * 1010 + 4 * 1500, "key {i} at {at}");
    }
}

#[test]
fn a_huge_record_is_parsed_a_few_times_only() {
    // One list of 200k small elements, fed 64 bytes at a time: parsing
    // it again after every read would take minutes.
    let n = 200_000;
    let mut out = Vec::new();
    write_header(&mut out, 0, 0, false);
    write_db_start(&mut out, 0, 1, 0);
    out.push(T_LIST);
    write_string(&mut out, b"big", Opts::default());
    write_len(&mut out, n as u64);
    for i in 0..n {
        write_string(&mut out, format!("e{i}").as_bytes(), Opts::default());
    }
    write_footer(&mut out, true);
    let started = std::time::Instant::now();
    assert_eq!(fed(&out, 64, 3), whole(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let _ = OP_EOF;
}

#[test]
fn a_lying_count_waits_for_the_input_then_fails() {
    // A list announcing 2^40 elements: no allocation from the count, and
    // the error once the input ended is the whole parse's.
    let mut out = Vec::new();
    write_header(&mut out, 0, 0, false);
    write_db_start(&mut out, 0, 1, 0);
    out.push(T_LIST);
    write_string(&mut out, b"big", Opts::default());
    write_len(&mut out, 1 << 40);
    write_string(&mut out, b"x", Opts::default());
    write_footer(&mut out, true);
    let e = fed(&out, 5, 1).unwrap_err();
    assert_eq!(Err(e), whole(&out));
}

#[test]
fn a_big_last_record_does_not_wait_for_bytes_that_never_come() {
    // The payload's end is nearer than twice the record cut off: an input
    // that stays open (a link) must not be waited on past it.
    let n = 20_000;
    let mut out = Vec::new();
    write_header(&mut out, 0, 0, false);
    write_db_start(&mut out, 0, 1, 0);
    out.push(T_LIST);
    write_string(&mut out, b"big", Opts::default());
    write_len(&mut out, n as u64);
    for i in 0..n {
        write_string(&mut out, format!("element{i}").as_bytes(), Opts::default());
    }
    write_footer(&mut out, true);
    let mut c = Collect::default();
    let mut input = Chunks::new(&out, 100_000, 1);
    input.endless = true;
    let (st, rest) = parse(&mut input, 16, &limits(), 0, &mut c).unwrap();
    assert_eq!((st.keys, st.consumed, rest.len()), (1, out.len(), 0));
    // It did not spin on the idle input either.
    assert!(input.fills < 100, "{} reads", input.fills);
}
