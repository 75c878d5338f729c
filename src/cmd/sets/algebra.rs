//! SINTER, SINTERCARD, SUNION, SDIFF and the STORE forms.
//!
//! Every command locks all its keys first, then visits them one at a time
//! (one key slot alive at once), copying members out as owned bytes. Results
//! are built in a `SetBuf`, which picks the encoding Redis's destination set
//! ends up with (it starts as an intset and converts as members arrive), so
//! replies of integer results come back sorted exactly as Redis sends them.

use super::hit;
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::types::set::{self, Limits, Member, SetBuf};
use crate::util::num::parse_i64;

/// What to do with the result.
#[derive(Clone, Copy)]
enum Out<'a> {
    /// Reply with the members (a set reply).
    Members,
    /// Reply with the size, stopping at `limit` (0 = no limit).
    Card(usize),
    /// Replace this key with the result; reply with its size. The event
    /// names the command (`sinterstore`, ...).
    Store(&'a [u8], &'static str),
}

/// Locks every key and checks each source's type, in argument order (a
/// WRONGTYPE anywhere fails the command, even after a missing key). Returns
/// each source's size, `None` when missing. Read forms count keyspace hits;
/// the STORE forms look their sources up for writing, which does not.
fn prepare(ctx: &mut Ctx<'_>, keys: &[&[u8]], out: Out<'_>) -> Result<Vec<Option<usize>>, Error> {
    let dst = match out {
        Out::Store(d, _) => Some(d),
        _ => None,
    };
    let mut sizes = Vec::with_capacity(keys.len());
    for k in keys {
        let mut slot = ctx.db.key(k);
        let r = set::get(&mut slot);
        if dst.is_none() {
            hit(ctx.stats, !matches!(r, Ok(None)));
        }
        sizes.push(r?.map(|s| s.len()));
    }
    Ok(sizes)
}

/// The members of a (checked) source, copied out.
fn members_of(ctx: &mut Ctx<'_>, key: &[u8]) -> Vec<Vec<u8>> {
    let mut slot = ctx.db.key(key);
    match set::get(&mut slot) {
        Ok(Some(s)) => s.iter().map(Member::to_vec).collect(),
        _ => Vec::new(),
    }
}

/// Keeps the candidates that are (`keep_present`) or are not members of `key`.
fn filter_by(ctx: &mut Ctx<'_>, key: &[u8], cands: &mut Vec<Vec<u8>>, keep_present: bool) {
    let mut slot = ctx.db.key(key);
    match set::get(&mut slot) {
        Ok(Some(s)) => cands.retain(|m| s.contains(m) == keep_present),
        _ => {
            if keep_present {
                cands.clear();
            }
        }
    }
}

fn build(members: &[Vec<u8>], lim: &Limits) -> SetBuf {
    SetBuf::from_members(members.iter().map(|m| Member::Bytes(m)), lim)
}

/// Replies with, or stores, a finished result.
fn finish(ctx: &mut Ctx<'_>, out: Out<'_>, buf: SetBuf) {
    match out {
        Out::Members => {
            ctx.out.set(buf.len());
            buf.iter().for_each(|m| m.reply(ctx.out));
        }
        Out::Card(limit) => {
            let n = if limit > 0 {
                buf.len().min(limit)
            } else {
                buf.len()
            };
            ctx.out.int(n as i64);
        }
        Out::Store(dst, event) => {
            let lim = ctx.srv.config.set_limits();
            let (n, changed) = set::store(&mut ctx.db.key(dst), buf, &lim);
            ctx.dirty += changed as u64;
            match (n, changed) {
                (0, true) => ctx.event(class::GENERIC, "del", dst),
                (0, false) => {}
                _ => ctx.event(class::SET, event, dst),
            }
            ctx.out.int(n as i64);
        }
    }
}

fn inter(ctx: &mut Ctx<'_>, keys: &[&[u8]], out: Out<'_>) -> CmdResult {
    let sizes = prepare(ctx, keys, out)?;
    if sizes.iter().any(Option::is_none) {
        finish(ctx, out, SetBuf::new());
        return Ok(());
    }
    // Walk the smallest set, probing the others smallest first (a stable
    // sort, so equal sizes keep argument order as Redis's sort does).
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut cands = members_of(ctx, keys[order[0]]);
    for &i in &order[1..] {
        if cands.is_empty() {
            break;
        }
        filter_by(ctx, keys[i], &mut cands, true);
    }
    match out {
        // Redis streams the walk of the smallest set: its order, not the
        // order of a rebuilt set.
        Out::Members => {
            ctx.out.set(cands.len());
            cands.iter().for_each(|m| ctx.out.bulk(m));
        }
        Out::Card(limit) => {
            let n = if limit > 0 {
                cands.len().min(limit)
            } else {
                cands.len()
            };
            ctx.out.int(n as i64);
        }
        Out::Store(..) => {
            let lim = ctx.srv.config.set_limits();
            finish(ctx, out, build(&cands, &lim));
        }
    }
    Ok(())
}

fn union(ctx: &mut Ctx<'_>, keys: &[&[u8]], out: Out<'_>) -> CmdResult {
    let sizes = prepare(ctx, keys, out)?;
    let lim = ctx.srv.config.set_limits();
    let mut buf = SetBuf::new();
    for (k, size) in keys.iter().zip(&sizes) {
        if size.is_none() {
            continue;
        }
        let mut slot = ctx.db.key(k);
        if let Ok(Some(s)) = set::get(&mut slot) {
            s.iter().for_each(|m| {
                buf.add(m, &lim);
            });
        }
    }
    finish(ctx, out, buf);
    Ok(())
}

fn diff(ctx: &mut Ctx<'_>, keys: &[&[u8]], out: Out<'_>) -> CmdResult {
    let sizes = prepare(ctx, keys, out)?;
    let lim = ctx.srv.config.set_limits();
    let first = sizes[0].unwrap_or(0);
    if first == 0 {
        finish(ctx, out, SetBuf::new());
        return Ok(());
    }
    // Redis picks one of two algorithms by estimated work, and the choice
    // shows in the result's encoding: filtering the first set's members
    // builds the result from survivors only, while copying the first set and
    // removing the others' members keeps the encoding the copy had.
    let present: Vec<usize> = sizes.iter().flatten().copied().collect();
    let filter_work = first * present.len() / 2;
    let remove_work: usize = present.iter().sum();
    let buf = if filter_work <= remove_work {
        let mut cands = members_of(ctx, keys[0]);
        for (k, size) in keys.iter().zip(&sizes).skip(1) {
            if cands.is_empty() {
                break;
            }
            if size.is_some() {
                filter_by(ctx, k, &mut cands, false);
            }
        }
        build(&cands, &lim)
    } else {
        let mut buf = build(&members_of(ctx, keys[0]), &lim);
        for (k, size) in keys.iter().zip(&sizes).skip(1) {
            if buf.is_empty() {
                break;
            }
            if size.is_none() {
                continue;
            }
            let mut slot = ctx.db.key(k);
            if let Ok(Some(s)) = set::get(&mut slot) {
                s.iter().for_each(|m| {
                    m.with_bytes(|b| buf.remove(b));
                });
            }
        }
        buf
    };
    finish(ctx, out, buf);
    Ok(())
}

fn keys_from<'a>(args: &Args<'a>, from: usize) -> Vec<&'a [u8]> {
    args.iter().skip(from).collect()
}

pub fn sinter(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    inter(ctx, &keys_from(args, 1), Out::Members)
}

pub fn sinterstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    inter(
        ctx,
        &keys_from(args, 2),
        Out::Store(&args[1], "sinterstore"),
    )
}

pub fn sunion(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    union(ctx, &keys_from(args, 1), Out::Members)
}

pub fn sunionstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    union(
        ctx,
        &keys_from(args, 2),
        Out::Store(&args[1], "sunionstore"),
    )
}

pub fn sdiff(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    diff(ctx, &keys_from(args, 1), Out::Members)
}

pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    diff(ctx, &keys_from(args, 2), Out::Store(&args[1], "sdiffstore"))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let numkeys = parse_i64(&args[1])
        .filter(|&n| n > 0)
        .ok_or(Error::msg("ERR numkeys should be greater than 0"))?;
    if numkeys > (args.len() - 2) as i64 {
        return Err(Error::msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let numkeys = numkeys as usize;
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"limit") && i + 1 < args.len() {
            limit = parse_i64(&args[i + 1])
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(Error::msg("ERR LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let keys: Vec<&[u8]> = args.iter().skip(2).take(numkeys).collect();
    inter(ctx, &keys, Out::Card(limit))
}
