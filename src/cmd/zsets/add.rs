//! ZADD and ZINCRBY (one code path, as in Redis), ZREM and the point reads.

use super::{parse_score, read};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::types::zset::{self, Edit};

#[derive(Default, Clone, Copy)]
pub(crate) struct Flags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// What one member's update did.
enum Outcome {
    Added(f64),
    Updated(f64),
    /// Unchanged by choice (NX/XX/GT/LT) or same score; carries the score
    /// the reply shows when it was still "processed".
    Same(Option<f64>),
}

const NAN_ERR: &str = "ERR resulting score is not a number (NaN)";

/// Redis's zsetAdd on one member.
fn add_one(z: &mut Edit<'_>, f: Flags, member: &[u8], score: f64) -> Result<Outcome, Error> {
    let Some(cur) = z.score(member) else {
        if f.xx {
            return Ok(Outcome::Same(None));
        }
        z.insert(member, score);
        return Ok(Outcome::Added(score));
    };
    if f.nx {
        return Ok(Outcome::Same(None));
    }
    let score = if f.incr { score + cur } else { score };
    if score.is_nan() {
        return Err(Error::msg(NAN_ERR));
    }
    if (f.lt && score >= cur) || (f.gt && score <= cur) {
        return Ok(Outcome::Same(None));
    }
    if score == cur {
        return Ok(Outcome::Same(Some(score)));
    }
    z.set_score(member, score);
    Ok(Outcome::Updated(score))
}

pub fn zadd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    add_generic(ctx, args, Flags::default())
}

pub fn zincrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    add_generic(
        ctx,
        args,
        Flags {
            incr: true,
            ..Flags::default()
        },
    )
}

fn add_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, mut f: Flags) -> CmdResult {
    let mut at = 2;
    while at < args.len() {
        let o = &args[at];
        let flag = if o.eq_ignore_ascii_case(b"nx") {
            &mut f.nx
        } else if o.eq_ignore_ascii_case(b"xx") {
            &mut f.xx
        } else if o.eq_ignore_ascii_case(b"ch") {
            &mut f.ch
        } else if o.eq_ignore_ascii_case(b"incr") {
            &mut f.incr
        } else if o.eq_ignore_ascii_case(b"gt") {
            &mut f.gt
        } else if o.eq_ignore_ascii_case(b"lt") {
            &mut f.lt
        } else {
            break;
        };
        *flag = true;
        at += 1;
    }
    let rest = args.len() - at;
    if rest == 0 || rest % 2 == 1 {
        return Err(Error::Syntax);
    }
    if f.nx && f.xx {
        return Err(Error::msg(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(Error::msg(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && rest > 2 {
        return Err(Error::msg(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let pairs: Vec<(f64, &[u8])> = (at..args.len())
        .step_by(2)
        .map(|i| parse_score(&args[i]).map(|s| (s, &args[i + 1])))
        .collect::<Option<_>>()
        .ok_or(Error::NotFloat)?;
    add_scored(ctx, &args[1], f, &pairs)
}

/// Adds or updates `pairs` in the sorted set at `key` (ZADD once its
/// arguments are read; GEOADD with the points' geohashes).
pub(crate) fn add_scored(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: Flags,
    pairs: &[(f64, &[u8])],
) -> CmdResult {
    let limits = ctx.srv.config.zset_limits();
    let mut slot = ctx.db.key(key);
    let (mut added, mut updated, mut last) = (0, 0, None);
    // XX never creates the key.
    let res = zset::edit(&mut slot, limits, !f.xx, |z| {
        for &(score, member) in pairs {
            match add_one(z, f, member, score)? {
                Outcome::Added(s) => (added, last) = (added + 1, Some(s)),
                Outcome::Updated(s) => (updated, last) = (updated + 1, Some(s)),
                Outcome::Same(s) => last = s.or(last),
            }
        }
        Ok::<(), Error>(())
    })?;
    if let Some(r) = res {
        r?;
    }
    ctx.dirty += (added + updated) as u64;
    if added + updated > 0 {
        ctx.event(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    if f.incr {
        match last {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.int(if f.ch { added + updated } else { added });
    }
    Ok(())
}

pub fn zrem(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let limits = ctx.srv.config.zset_limits();
    let mut slot = ctx.db.key(&args[1]);
    let removed = zset::edit(&mut slot, limits, false, |z| {
        args.iter().skip(2).filter(|m| z.remove(m)).count()
    })?
    .unwrap_or(0);
    ctx.dirty += removed as u64;
    if removed > 0 {
        ctx.event(class::ZSET, "zrem", &args[1]);
        ctx.event_if_emptied(&args[1]);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

pub fn zcard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let stats = ctx.stats;
    let mut slot = ctx.db.key(&args[1]);
    let n = read(&mut slot, stats)?.map_or(0, |z| z.len());
    ctx.out.int(n as i64);
    Ok(())
}

pub fn zscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let stats = ctx.stats;
    let mut slot = ctx.db.key(&args[1]);
    match read(&mut slot, stats)?.and_then(|z| z.score(&args[2])) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn zmscore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let stats = ctx.stats;
    let mut slot = ctx.db.key(&args[1]);
    let z = read(&mut slot, stats)?;
    ctx.out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.as_ref().and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

pub fn zrank(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rank_generic(ctx, args, false)
}

pub fn zrevrank(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rank_generic(ctx, args, true)
}

fn rank_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, rev: bool) -> CmdResult {
    let stats = ctx.stats;
    let mut slot = ctx.db.key(&args[1]);
    let rank = read(&mut slot, stats)?.and_then(|z| {
        let r = z.rank(&args[2])?;
        Some(if rev { z.len() - 1 - r } else { r })
    });
    match rank {
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}
