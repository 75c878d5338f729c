//! Sorted-set operation cost as the set grows: ZADD (insert + remove of a
//! fresh member), ZRANK and ZRANGE (10 members from a random rank) on the
//! full encoding, at 10^4, 10^5 and 10^6 members. Logarithmic operations
//! show a per-op time that grows by a small constant per decade.
//!
//! `cargo bench --bench zset_scaling`

use std::hint::black_box;
use std::time::Instant;

use ferrokv::types::zset::Full;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

fn member(i: u64) -> Vec<u8> {
    format!("member:{i:010}").into_bytes()
}

fn per_op(ops: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / ops as f64
}

fn main() {
    const OPS: usize = 200_000;
    println!(
        "{:>10} {:>12} {:>12} {:>14}",
        "members", "ZADD ns/op", "ZRANK ns/op", "ZRANGE10 ns/op"
    );
    for n in [10_000u64, 100_000, 1_000_000] {
        let mut rng = Lcg(n);
        let mut z = Full::new();
        for i in 0..n {
            z.insert(&member(i), (rng.next() % 1_000_000) as f64);
        }
        let fresh: Vec<(Vec<u8>, f64)> = (0..OPS as u64)
            .map(|i| (member(n + i), (rng.next() % 1_000_000) as f64))
            .collect();
        let probes: Vec<Vec<u8>> = (0..OPS).map(|_| member(rng.next() % n)).collect();
        let starts: Vec<usize> = (0..OPS).map(|_| (rng.next() % (n - 10)) as usize).collect();

        // ZADD of a new member; the removal keeps the size at n.
        let add = per_op(OPS, || {
            for (m, s) in &fresh {
                z.insert(m, *s);
                z.remove(m);
            }
        }) / 2.0;
        let rank = per_op(OPS, || {
            for m in &probes {
                black_box(z.rank(m));
            }
        });
        let range = per_op(OPS, || {
            for &s in &starts {
                let mut bytes = 0;
                z.visit(s, s + 10, false, |m, _| {
                    bytes += m.len();
                    true
                });
                black_box(bytes);
            }
        });
        println!("{n:>10} {add:>12.0} {rank:>12.0} {range:>14.0}");
    }
}
