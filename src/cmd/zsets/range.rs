//! The range family: ZRANGE with all its forms (and the legacy
//! ZREVRANGE / Z[REV]RANGEBYSCORE / Z[REV]RANGEBYLEX, which Redis runs
//! through the same code), ZRANGESTORE, ZCOUNT, ZLEXCOUNT, ZREMRANGEBY*.

use super::{LexRange, ScoreRange, rank_span, read, scored_header, scored_item};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::types::zset::{self, View};
use crate::util::num::parse_i64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
struct Request<'a> {
    bounds: Bounds<'a>,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// -1: no LIMIT (as in Redis, `LIMIT x -1` reads as no limit).
    count: i64,
}

enum Bounds<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

fn long(arg: &[u8]) -> Result<i64, Error> {
    parse_i64(arg).ok_or(Error::NotInteger)
}

/// Parses `<src> <min> <max> [options]` starting at `src` (the index of
/// the source key), as Redis's zrangeGenericCommand: options first, then
/// conflicts, then the bounds.
fn parse<'a>(
    args: &'a Args<'_>,
    src: usize,
    store: bool,
    mut by: By,
    rev_fixed: Option<bool>,
) -> Result<Request<'a>, Error> {
    let (mut withscores, mut offset, mut count) = (false, 0, -1);
    let mut rev = rev_fixed;
    let mut j = src + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && a.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            offset = long(&args[j + 1])?;
            count = long(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && a.eq_ignore_ascii_case(b"rev") {
            rev = Some(true);
        } else if by == By::Auto && a.eq_ignore_ascii_case(b"bylex") {
            by = By::Lex;
        } else if by == By::Auto && a.eq_ignore_ascii_case(b"byscore") {
            by = By::Score;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if count != -1 && by == By::Rank {
        return Err(Error::msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == By::Lex {
        return Err(Error::msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // Reversed score and lex ranges are given as max, min.
    let (lo, hi) = if rev && by != By::Rank {
        (&args[src + 2], &args[src + 1])
    } else {
        (&args[src + 1], &args[src + 2])
    };
    let bounds = match by {
        By::Score => Bounds::Score(ScoreRange::parse(lo, hi)?),
        By::Lex => Bounds::Lex(LexRange::parse(lo, hi)?),
        _ => Bounds::Rank(long(lo)?, long(hi)?),
    };
    Ok(Request {
        bounds,
        rev,
        withscores,
        offset,
        count,
    })
}

impl Request<'_> {
    /// Ranks `lo..hi` the request selects in `z`.
    fn span(&self, z: &View<'_>) -> (usize, usize) {
        let count_while = |p: &dyn Fn(f64, &[u8]) -> bool| z.count_while(p);
        let (lo, hi) = match &self.bounds {
            Bounds::Rank(s, e) => return rank_span(*s, *e, z.len(), self.rev),
            Bounds::Score(r) => r.ranks(count_while),
            Bounds::Lex(r) => r.ranks(count_while),
        };
        // LIMIT counts from the end the range is read from.
        if self.offset < 0 {
            return (lo, lo);
        }
        let n = hi - lo;
        let skip = (self.offset as u64).min(n as u64) as usize;
        let take = if self.count < 0 {
            n - skip
        } else {
            (self.count as u64).min((n - skip) as u64) as usize
        };
        if self.rev {
            (hi - skip - take, hi - skip)
        } else {
            (lo + skip, lo + skip + take)
        }
    }
}

fn range_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, by: By, rev: Option<bool>) -> CmdResult {
    let req = parse(args, 1, false, by, rev)?;
    let stats = ctx.stats;
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    let Some(z) = read(&mut slot, stats)? else {
        out.array(0);
        return Ok(());
    };
    let (lo, hi) = req.span(&z);
    scored_header(out, hi - lo, req.withscores);
    z.visit(lo, hi, req.rev, |m, s| {
        scored_item(out, m, s, req.withscores);
        true
    });
    Ok(())
}

pub fn zrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, By::Auto, None)
}

pub fn zrevrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, By::Rank, Some(true))
}

pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, By::Score, Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, By::Score, Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, By::Lex, Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_generic(ctx, args, By::Lex, Some(true))
}

/// Stores `items` (in order) at `dst` in the encoding its size calls for,
/// replacing any value; an empty result deletes `dst`. Returns the size.
/// `event` is what storing a result announces (`zunionstore`, ...).
pub(crate) fn store(
    ctx: &mut Ctx<'_>,
    dst: &[u8],
    items: &[(Vec<u8>, f64)],
    event: &'static str,
) -> usize {
    let limits = ctx.srv.config.zset_limits();
    let mut slot = ctx.db.key(dst);
    match zset::build(items, limits) {
        None => {
            if slot.remove().is_some() {
                ctx.dirty += 1;
                ctx.event(class::GENERIC, "del", dst);
            }
        }
        Some(mut built) => {
            slot.set(built.value(), None);
            ctx.dirty += 1;
            ctx.event(class::ZSET, event, dst);
        }
    }
    items.len()
}

pub fn zrangestore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let req = parse(args, 2, true, By::Auto, None)?;
    let mut items = Vec::new();
    {
        let mut slot = ctx.db.key(&args[2]);
        if let Some(e) = slot.get() {
            let z = View::of(e.value())?;
            let (lo, hi) = req.span(&z);
            items.reserve(hi - lo);
            z.visit(lo, hi, req.rev, |m, s| {
                items.push((m.to_vec(), s));
                true
            });
        }
    }
    // A reversed range is stored in the set's own order.
    if req.rev {
        items.reverse();
    }
    let n = store(ctx, &args[1], &items, "zrangestore");
    ctx.out.int(n as i64);
    Ok(())
}

pub fn zcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let r = ScoreRange::parse(&args[2], &args[3])?;
    count_generic(ctx, args, |z| {
        r.ranks(|p: &dyn Fn(f64, &[u8]) -> bool| z.count_while(p))
    })
}

pub fn zlexcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let r = LexRange::parse(&args[2], &args[3])?;
    count_generic(ctx, args, |z| {
        r.ranks(|p: &dyn Fn(f64, &[u8]) -> bool| z.count_while(p))
    })
}

fn count_generic(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    span: impl Fn(&View<'_>) -> (usize, usize),
) -> CmdResult {
    let stats = ctx.stats;
    let mut slot = ctx.db.key(&args[1]);
    let n = read(&mut slot, stats)?.map_or(0, |z| {
        let (lo, hi) = span(&z);
        hi - lo
    });
    ctx.out.int(n as i64);
    Ok(())
}

/// ZREMRANGEBY*: the bounds are parsed before the key is looked at.
fn remrange(ctx: &mut Ctx<'_>, args: &Args<'_>, bounds: Bounds<'_>) -> CmdResult {
    let limits = ctx.srv.config.zset_limits();
    let event = match &bounds {
        Bounds::Rank(..) => "zremrangebyrank",
        Bounds::Score(_) => "zremrangebyscore",
        Bounds::Lex(_) => "zremrangebylex",
    };
    let mut slot = ctx.db.key(&args[1]);
    let removed = zset::edit(&mut slot, limits, false, |z| {
        let count_while = |p: &dyn Fn(f64, &[u8]) -> bool| z.count_while(p);
        let (lo, hi) = match &bounds {
            Bounds::Rank(s, e) => rank_span(*s, *e, z.len(), false),
            Bounds::Score(r) => r.ranks(count_while),
            Bounds::Lex(r) => r.ranks(count_while),
        };
        z.remove_ranks(lo, hi)
    })?
    .unwrap_or(0);
    ctx.dirty += removed as u64;
    if removed > 0 {
        ctx.event(class::ZSET, event, &args[1]);
        ctx.event_if_emptied(&args[1]);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let b = Bounds::Rank(long(&args[2])?, long(&args[3])?);
    remrange(ctx, args, b)
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let b = Bounds::Score(ScoreRange::parse(&args[2], &args[3])?);
    remrange(ctx, args, b)
}

pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let b = Bounds::Lex(LexRange::parse(&args[2], &args[3])?);
    remrange(ctx, args, b)
}
