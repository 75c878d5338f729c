//! The stream against a model: a BTreeMap of id -> pairs, driven by a
//! seeded random mix of appends, deletes, exact trims and range reads.

use std::collections::BTreeMap;

use super::*;

type Model = BTreeMap<StreamId, Vec<Vec<u8>>>;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn random_pairs(rng: &mut Rng) -> Vec<Vec<u8>> {
    let names: [&[u8]; 4] = [b"a", b"b", b"field", b"12"];
    let n = 1 + rng.below(3) as usize;
    let same = rng.below(2) == 0;
    let mut out = Vec::new();
    for i in 0..n {
        let f = if same {
            names[i].to_vec()
        } else {
            names[rng.below(4) as usize].to_vec()
        };
        out.push(f);
        let v = match rng.below(3) {
            0 => rng.below(1000).to_string().into_bytes(),
            1 => vec![b'v'; rng.below(80) as usize],
            _ => Vec::new(),
        };
        out.push(v);
    }
    out
}

fn collect(
    s: &Stream,
    a: StreamId,
    b: StreamId,
    rev: bool,
    count: usize,
) -> Vec<(StreamId, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    s.range(a, b, rev, count, |e| {
        out.push((e.id, e.pairs.iter().map(|p| p.to_vec()).collect()));
    });
    out
}

fn model_range(
    m: &Model,
    a: StreamId,
    b: StreamId,
    rev: bool,
    count: usize,
) -> Vec<(StreamId, Vec<Vec<u8>>)> {
    if a > b {
        return Vec::new();
    }
    let it = m.range(a..=b).map(|(k, v)| (*k, v.clone()));
    let all: Vec<_> = if rev {
        it.rev().collect()
    } else {
        it.collect()
    };
    let n = if count == 0 { all.len() } else { count };
    all.into_iter().take(n).collect()
}

fn random_id(rng: &mut Rng, m: &Model, last: StreamId) -> StreamId {
    // Mostly ids that exist, sometimes in between or past the end.
    match rng.below(3) {
        0 if !m.is_empty() => *m.keys().nth(rng.below(m.len() as u64) as usize).unwrap(),
        _ => StreamId::new(rng.below(last.ms + 3), rng.below(4)),
    }
}

#[test]
fn matches_a_btreemap_model() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let lim = NodeLimits::new(300 + rng.below(600) as i64, 1 + rng.below(12) as i64);
        let mut s = Stream::new();
        let mut m = Model::new();
        let mut last = StreamId::MIN;
        for _ in 0..2000 {
            match rng.below(10) {
                0..=4 => {
                    let id = StreamId::new(last.ms + rng.below(3), rng.below(5));
                    let id = if id > last { id } else { last.next().unwrap() };
                    let pairs = random_pairs(&mut rng);
                    let refs: Vec<&[u8]> = pairs.iter().map(Vec::as_slice).collect();
                    s.append(id, &refs, lim);
                    m.insert(id, pairs);
                    last = id;
                }
                5 => {
                    let id = random_id(&mut rng, &m, last);
                    assert_eq!(s.delete(id), m.remove(&id).is_some());
                }
                6 => {
                    let max = rng.below(40);
                    let removed = s.trim(Trim::MaxLen(max), false, 0);
                    let mut n = 0;
                    while m.len() as u64 > max {
                        m.pop_first();
                        n += 1;
                    }
                    assert_eq!(removed, n);
                }
                7 => {
                    let min = random_id(&mut rng, &m, last);
                    let removed = s.trim(Trim::MinId(min), false, 0);
                    let before = m.len();
                    m.retain(|k, _| *k >= min);
                    assert_eq!(removed as usize, before - m.len());
                }
                _ => {
                    let a = random_id(&mut rng, &m, last);
                    let b = random_id(&mut rng, &m, last);
                    let rev = rng.below(2) == 0;
                    let count = rng.below(5) as usize;
                    assert_eq!(
                        collect(&s, a, b, rev, count),
                        model_range(&m, a, b, rev, count)
                    );
                }
            }
            assert_eq!(s.len(), m.len() as u64);
            assert_eq!(
                s.first_id,
                m.keys().next().copied().unwrap_or(StreamId::MIN)
            );
            assert_eq!(s.last_id, last);
        }
        assert_eq!(
            collect(&s, StreamId::MIN, StreamId::MAX, false, 0),
            model_range(&m, StreamId::MIN, StreamId::MAX, false, 0)
        );
    }
}

#[test]
fn approximate_trim_removes_whole_nodes_only() {
    let lim = NodeLimits::new(4096, 10);
    let mut s = Stream::new();
    for i in 1..=35 {
        s.append(StreamId::new(i, 0), &[b"f", b"v"], lim);
    }
    assert_eq!(s.node_count(), 4);
    assert_eq!(s.trim(Trim::MaxLen(12), true, 0), 20);
    assert_eq!(s.len(), 15);
    assert_eq!(s.trim(Trim::MinId(StreamId::new(35, 0)), true, 0), 10);
    assert_eq!(s.len(), 5);
    // LIMIT stops before a node that would pass it.
    let mut s = Stream::new();
    for i in 1..=35 {
        s.append(StreamId::new(i, 0), &[b"f", b"v"], lim);
    }
    assert_eq!(s.trim(Trim::MaxLen(0), true, 15), 10);
}

#[test]
fn radix_tree_node_counts() {
    let lim = NodeLimits::new(4096, 1);
    let mut s = Stream::new();
    assert_eq!(s.radix_tree_nodes(), 1);
    s.append(StreamId::new(1, 0), &[b"f", b"v"], lim);
    assert_eq!(s.radix_tree_nodes(), 2);
    s.append(StreamId::new(2, 0), &[b"f", b"v"], lim);
    // The shared 7-byte prefix, a branch, then per key its 8-byte rest
    // and its end.
    assert_eq!(s.radix_tree_nodes(), 6);
}
