//! LCS: the longest common subsequence of two string keys.

use super::{Str, find, hit};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::resp::Args;
use crate::util::num::parse_i64;

/// One run of consecutive matching bytes: inclusive ranges in `a` and `b`.
#[derive(Debug, PartialEq, Eq)]
pub struct Match {
    pub a: (usize, usize),
    pub b: (usize, usize),
}

impl Match {
    fn len(&self) -> usize {
        self.a.1 - self.a.0 + 1
    }
}

/// The LCS table: `at(i, j)` is the LCS length of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    cols: usize,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Result<Table, Error> {
        let cols = b.len() + 1;
        let size = (a.len() + 1) * cols;
        let mut cells = Vec::new();
        if cells.try_reserve_exact(size).is_err() {
            return Err(Error::msg(
                "ERR Insufficient memory, failed allocating transient memory for LCS",
            ));
        }
        cells.resize(size, 0u32);
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * cols + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * cols + j - 1] + 1
                } else {
                    cells[(i - 1) * cols + j].max(cells[i * cols + j - 1])
                };
            }
        }
        Ok(Table { cells, cols })
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.cols + j]
    }
}

/// Walks the table back from the end, collecting the common subsequence and
/// the runs of matches (last run first), in the order Redis reports them.
fn backtrack(t: &Table, a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<Match>) {
    let mut idx = t.at(a.len(), b.len()) as usize;
    let mut lcs = vec![0u8; idx];
    let mut runs = Vec::new();
    let mut current: Option<Match> = None;
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        let mut close = false;
        if a[i - 1] == b[j - 1] {
            lcs[idx - 1] = a[i - 1];
            match &mut current {
                None => {
                    current = Some(Match {
                        a: (i - 1, i - 1),
                        b: (j - 1, j - 1),
                    });
                }
                // Contiguous with the run being built: extend it backwards.
                Some(m) if m.a.0 == i && m.b.0 == j => {
                    m.a.0 -= 1;
                    m.b.0 -= 1;
                }
                Some(_) => close = true,
            }
            if current.as_ref().is_some_and(|m| m.a.0 == 0 || m.b.0 == 0) {
                close = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t.at(i - 1, j) > t.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            close = current.is_some();
        }
        if close && let Some(m) = current.take() {
            runs.push(m);
        }
    }
    (lcs, runs)
}

#[derive(Default)]
struct Opts {
    idx: bool,
    len: bool,
    with_match_len: bool,
    min_match_len: usize,
}

fn parse_opts(rest: &[&[u8]]) -> Result<Opts, Error> {
    let mut o = Opts::default();
    let mut j = 0;
    while j < rest.len() {
        match rest[j].to_ascii_uppercase().as_slice() {
            b"IDX" => o.idx = true,
            b"LEN" => o.len = true,
            b"WITHMATCHLEN" => o.with_match_len = true,
            b"MINMATCHLEN" if j + 1 < rest.len() => {
                let n = parse_i64(rest[j + 1]).ok_or(Error::NotInteger)?;
                o.min_match_len = n.max(0) as usize;
                j += 1;
            }
            _ => return Err(Error::Syntax),
        }
        j += 1;
    }
    if o.idx && o.len {
        return Err(Error::msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(o)
}

/// The string at `key` (empty when missing); `Ok(None)` for another type.
fn read_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<Vec<u8>> {
    let mut slot = ctx.db.key(key);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    match idx {
        Some(i) => Str::of(slot.entry(i).value()).ok().map(Str::to_vec),
        None => Some(Vec::new()),
    }
}

pub fn lcs(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (a, b) = (read_string(ctx, &args[1]), read_string(ctx, &args[2]));
    let (Some(a), Some(b)) = (a, b) else {
        return Err(Error::msg(
            "ERR The specified keys must contain string values",
        ));
    };
    let rest: Vec<&[u8]> = args.tail(3).iter().collect();
    let opts = parse_opts(&rest)?;
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return Err(Error::msg("ERR String too long for LCS"));
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    let max = ctx.srv.config.proto_max_bulk_len.get().max(0) as u64;
    if cells.saturating_mul(4) > max {
        return Err(Error::msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let table = Table::build(&a, &b)?;
    let total = table.at(a.len(), b.len());
    if opts.len {
        ctx.out.int(total as i64);
        return Ok(());
    }
    let (lcs, runs) = backtrack(&table, &a, &b);
    if !opts.idx {
        ctx.out.bulk(&lcs);
        return Ok(());
    }
    let out = &mut *ctx.out;
    let shown: Vec<&Match> = runs
        .iter()
        .filter(|m| m.len() >= opts.min_match_len)
        .collect();
    out.map(2);
    out.bulk(b"matches");
    out.array(shown.len());
    for m in shown {
        out.array(2 + opts.with_match_len as usize);
        for (from, to) in [m.a, m.b] {
            out.array(2);
            out.int(from as i64);
            out.int(to as i64);
        }
        if opts.with_match_len {
            out.int(m.len() as i64);
        }
    }
    out.bulk(b"len");
    out.int(total as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &str, b: &str) -> (String, Vec<Match>) {
        let t = Table::build(a.as_bytes(), b.as_bytes()).unwrap();
        let (s, m) = backtrack(&t, a.as_bytes(), b.as_bytes());
        (String::from_utf8(s).unwrap(), m)
    }

    #[test]
    fn matches_the_reference_example() {
        let (s, m) = run("ohmytext", "mynewtext");
        assert_eq!(s, "mytext");
        assert_eq!(
            m,
            vec![
                Match {
                    a: (4, 7),
                    b: (5, 8)
                },
                Match {
                    a: (2, 3),
                    b: (0, 1)
                }
            ]
        );
    }

    #[test]
    fn empty_and_disjoint() {
        assert_eq!(run("", "abc"), (String::new(), vec![]));
        assert_eq!(run("abc", "xyz"), (String::new(), vec![]));
        assert_eq!(
            run("abc", "abc").1,
            vec![Match {
                a: (0, 2),
                b: (0, 2)
            }]
        );
    }
}
