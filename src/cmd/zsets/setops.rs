//! ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD. Inputs may
//! be sorted sets or plain sets (every member scoring 1). Only one key is
//! open at a time: each input is read (or probed) in turn into owned data.

use std::collections::{HashMap, HashSet};

use super::range::store;
use super::scored_list;
use crate::cmd::{CmdResult, Ctx, Error};
use crate::resp::Args;
use crate::store::ValueRef;
use crate::types::zset::{View, before};
use crate::util::num::parse_i64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
    /// ZINTERCARD: the size of the intersection only.
    Card,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

impl Agg {
    fn apply(self, acc: &mut f64, v: f64) {
        match self {
            Agg::Sum => {
                *acc += v;
                // inf + -inf: Redis settles on 0.
                if acc.is_nan() {
                    *acc = 0.0;
                }
            }
            Agg::Min => {
                if v < *acc {
                    *acc = v;
                }
            }
            Agg::Max => {
                if v > *acc {
                    *acc = v;
                }
            }
        }
    }
}

/// A weighted score; 0 * inf gives 0, as in Redis.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() { 0.0 } else { v }
}

/// One input of the operation.
struct Src {
    key: Vec<u8>,
    weight: f64,
    len: usize,
}

/// The members of a plain set used as a sorted-set input (score 1 each).
fn set_members(v: &ValueRef<'_>) -> Option<HashSet<Vec<u8>>> {
    crate::types::set::SetRef::of(*v).map(|s| s.iter().map(|m| m.to_vec()).collect())
}

/// Length and members-with-scores of one input (None when missing);
/// WRONGTYPE for anything but a sorted set or a set.
fn with_input<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(Input<'_>) -> R,
) -> Result<Option<R>, Error> {
    let mut slot = ctx.db.key(key);
    let Some(e) = slot.get() else {
        return Ok(None);
    };
    let v = e.value();
    if let Ok(z) = View::of(e.value()) {
        return Ok(Some(f(Input::Z(z))));
    }
    match set_members(&v) {
        Some(members) => Ok(Some(f(Input::Set(members)))),
        None => Err(Error::WrongType),
    }
}

enum Input<'a> {
    Z(View<'a>),
    Set(HashSet<Vec<u8>>),
}

impl Input<'_> {
    fn len(&self) -> usize {
        match self {
            Input::Z(z) => z.len(),
            Input::Set(s) => s.len(),
        }
    }

    fn all(&self, weight: f64) -> Vec<(Vec<u8>, f64)> {
        match self {
            Input::Z(z) => z
                .to_vec()
                .into_iter()
                .map(|(m, s)| (m, weighted(s, weight)))
                .collect(),
            Input::Set(s) => s
                .iter()
                .map(|m| (m.clone(), weighted(1.0, weight)))
                .collect(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Input::Z(z) => z.score(member),
            Input::Set(s) => s.contains(member).then_some(1.0),
        }
    }
}

/// Parses numkeys, the keys and the options; checks every input's type
/// (before the options, as Redis does). `at` is the numkeys index.
fn parse(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    at: usize,
    op: Op,
    dst: Option<&[u8]>,
) -> Result<(Vec<Src>, Agg, bool, usize), Error> {
    let n = parse_i64(&args[at]).ok_or(Error::NotInteger)?;
    if n < 1 {
        return Err(Error::owned(format!(
            "ERR at least 1 input key is needed for '{}' command",
            ctx.cmd.name
        )));
    }
    if n as u64 > (args.len() - at - 1) as u64 {
        return Err(Error::Syntax);
    }
    let n = n as usize;
    let keys: Vec<&[u8]> = (at + 1..at + 1 + n).map(|i| &args[i]).collect();
    let mut srcs = Vec::with_capacity(n);
    for k in keys {
        let len = with_input(ctx, k, |i| i.len())?.unwrap_or(0);
        srcs.push(Src {
            key: k.to_vec(),
            weight: 1.0,
            len,
        });
    }
    let (mut agg, mut withscores, mut limit) = (Agg::Sum, false, 0usize);
    let mut j = at + 1 + n;
    while j < args.len() {
        let left = args.len() - j;
        let a = &args[j];
        if matches!(op, Op::Union | Op::Inter) && left > n && a.eq_ignore_ascii_case(b"weights") {
            for (i, s) in srcs.iter_mut().enumerate() {
                s.weight = super::parse_score(&args[j + 1 + i])
                    .ok_or(Error::msg("ERR weight value is not a float"))?;
            }
            j += 1 + n;
        } else if matches!(op, Op::Union | Op::Inter)
            && left >= 2
            && a.eq_ignore_ascii_case(b"aggregate")
        {
            let v = &args[j + 1];
            agg = if v.eq_ignore_ascii_case(b"sum") {
                Agg::Sum
            } else if v.eq_ignore_ascii_case(b"min") {
                Agg::Min
            } else if v.eq_ignore_ascii_case(b"max") {
                Agg::Max
            } else {
                return Err(Error::Syntax);
            };
            j += 2;
        } else if op == Op::Card && left >= 2 && a.eq_ignore_ascii_case(b"limit") {
            limit = parse_i64(&args[j + 1])
                .filter(|l| *l >= 0)
                .ok_or(Error::msg("ERR LIMIT can't be negative"))? as usize;
            j += 2;
        } else if op != Op::Card && dst.is_none() && a.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
            j += 1;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok((srcs, agg, withscores, limit))
}

/// The result, members in (score, member) order.
fn compute(
    ctx: &mut Ctx<'_>,
    op: Op,
    mut srcs: Vec<Src>,
    agg: Agg,
    limit: usize,
) -> Result<Vec<(Vec<u8>, f64)>, Error> {
    // Smallest inputs first (the first input stays first for a diff).
    match op {
        Op::Diff => srcs[1..].sort_by_key(|s| s.len),
        _ => srcs.sort_by_key(|s| s.len),
    }
    let mut result: Vec<(Vec<u8>, f64)> = match op {
        Op::Union => {
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for s in &srcs {
                let items = with_input(ctx, &s.key, |i| i.all(s.weight))?.unwrap_or_default();
                for (m, v) in items {
                    match acc.get_mut(&m) {
                        Some(cur) => agg.apply(cur, v),
                        None => {
                            acc.insert(m, v);
                        }
                    }
                }
            }
            acc.into_iter().collect()
        }
        Op::Inter | Op::Card | Op::Diff => {
            let first = &srcs[0];
            let mut cand =
                with_input(ctx, &first.key, |i| i.all(first.weight))?.unwrap_or_default();
            for s in &srcs[1..] {
                if cand.is_empty() {
                    break;
                }
                cand = with_input(ctx, &s.key, |input| {
                    cand.drain(..)
                        .filter_map(|(m, mut v)| match (input.score(&m), op) {
                            (Some(_), Op::Diff) => None,
                            (None, Op::Diff) => Some((m, v)),
                            (Some(x), _) => {
                                agg.apply(&mut v, weighted(x, s.weight));
                                Some((m, v))
                            }
                            (None, _) => None,
                        })
                        .collect()
                })?
                .unwrap_or_else(|| {
                    if op == Op::Diff {
                        std::mem::take(&mut cand)
                    } else {
                        Vec::new()
                    }
                });
            }
            if op == Op::Card && limit > 0 {
                cand.truncate(limit);
            }
            cand
        }
    };
    if op != Op::Card {
        result.sort_by(|a, b| {
            if before((a.1, &a.0), (b.1, &b.0)) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
    }
    Ok(result)
}

fn generic(ctx: &mut Ctx<'_>, args: &Args<'_>, op: Op, store_to: bool) -> CmdResult {
    let (at, dst) = if store_to {
        (2, Some(&args[1]))
    } else {
        (1, None)
    };
    let (srcs, agg, withscores, limit) = parse(ctx, args, at, op, dst)?;
    let result = compute(ctx, op, srcs, agg, limit)?;
    match (op, dst) {
        (Op::Card, _) => ctx.out.int(result.len() as i64),
        (_, Some(d)) => {
            let event = match op {
                Op::Union => "zunionstore",
                Op::Inter => "zinterstore",
                _ => "zdiffstore",
            };
            let n = store(ctx, d, &result, event);
            ctx.out.int(n as i64);
        }
        (_, None) => scored_list(ctx.out, &result, withscores),
    }
    Ok(())
}

pub fn zunion(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    generic(ctx, args, Op::Union, false)
}

pub fn zinter(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    generic(ctx, args, Op::Inter, false)
}

pub fn zdiff(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    generic(ctx, args, Op::Diff, false)
}

pub fn zunionstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    generic(ctx, args, Op::Union, true)
}

pub fn zinterstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    generic(ctx, args, Op::Inter, true)
}

pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    generic(ctx, args, Op::Diff, true)
}

pub fn zintercard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    generic(ctx, args, Op::Card, false)
}
