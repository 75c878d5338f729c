//! ZPOPMIN, ZPOPMAX, ZMPOP (on `types::zset::pop`), ZRANDMEMBER, ZSCAN.

use std::collections::HashSet;

use super::{hit, read, scored_header, scored_item};
use crate::cmd::keys::parse_cursor;
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::{Args, Reply};
use crate::types::zset::{self, View};
use crate::util::glob::glob_match;
use crate::util::num::{fmt_double, parse_i64};

pub fn zpopmin(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    pop_generic(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    pop_generic(ctx, args, true)
}

/// Pairs as a pop replies them: flat, or (RESP3 with a COUNT) nested.
pub(crate) fn reply_pairs(out: &mut Reply, items: &[(Vec<u8>, f64)], nested: bool) {
    if nested {
        out.array(items.len());
    } else {
        out.array(2 * items.len());
    }
    for (m, s) in items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}

/// The event of a pop of the lowest or (`max`) highest scores.
pub(crate) fn pop_event(max: bool) -> &'static str {
    if max { "zpopmax" } else { "zpopmin" }
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(Error::Syntax);
    }
    let count = match args.len() {
        3 => parse_i64(&args[2])
            .filter(|n| *n >= 0)
            .ok_or(Error::msg("ERR value is out of range, must be positive"))?,
        _ => 1,
    };
    let mut slot = ctx.db.key(&args[1]);
    // The type is checked even for a count of 0.
    if let Some(e) = slot.get() {
        View::of(e.value())?;
    }
    let popped = if count == 0 {
        None
    } else {
        zset::pop(&mut slot, max, count as usize)?
    };
    let items = popped.unwrap_or_default();
    ctx.dirty += items.len() as u64;
    if !items.is_empty() {
        ctx.event(class::ZSET, pop_event(max), &args[1]);
        ctx.event_if_emptied(&args[1]);
    }
    let nested = ctx.out.resp3 && args.len() == 3;
    reply_pairs(ctx.out, &items, nested);
    Ok(())
}

/// ZMPOP's arguments (BZMPOP's past its timeout): the keys, which end, and
/// the count.
pub(crate) fn parse_zmpop(args: &Args<'_>) -> Result<(Vec<Vec<u8>>, bool, usize), Error> {
    let numkeys = parse_i64(&args[1])
        .filter(|n| *n >= 1)
        .ok_or(Error::msg("ERR numkeys should be greater than 0"))? as u64;
    let where_at = numkeys.saturating_add(2);
    if where_at >= args.len() as u64 {
        return Err(Error::Syntax);
    }
    let where_at = where_at as usize;
    let max = match &args[where_at] {
        w if w.eq_ignore_ascii_case(b"min") => false,
        w if w.eq_ignore_ascii_case(b"max") => true,
        _ => return Err(Error::Syntax),
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            let n = parse_i64(&args[j + 1])
                .filter(|n| *n >= 1)
                .ok_or(Error::msg("ERR count should be greater than 0"))?;
            count = Some(n);
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let count = count.unwrap_or(1) as usize;
    let keys = args
        .iter()
        .skip(2)
        .take(where_at - 2)
        .map(<[u8]>::to_vec)
        .collect();
    Ok((keys, max, count))
}

pub fn zmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (keys, max, count) = parse_zmpop(args)?;
    for key in &keys {
        let mut slot = ctx.db.key(key);
        let Some(items) = zset::pop(&mut slot, max, count)? else {
            continue;
        };
        ctx.dirty += items.len() as u64;
        ctx.event(class::ZSET, pop_event(max), key);
        ctx.event_if_emptied(key);
        ctx.out.array(2);
        ctx.out.bulk(key);
        reply_pairs(ctx.out, &items, true);
        let cmd: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        // Replicated with the number popped, as Redis does.
        let n = itoa::Buffer::new().format(items.len()).as_bytes().to_vec();
        ctx.rewrite_effect(vec![cmd.to_vec(), key.clone(), n]);
        return Ok(());
    }
    ctx.out.null_array();
    Ok(())
}

pub fn zrandmember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() == 2 {
        let stats = ctx.stats;
        let mut slot = ctx.db.key(&args[1]);
        match read(&mut slot, stats)?.and_then(|z| z.random()) {
            Some((m, _)) => ctx.out.bulk(m),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let n = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    if n == i64::MIN {
        return Err(Error::msg(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if args.len() > 4 || (args.len() == 4 && !args[3].eq_ignore_ascii_case(b"withscores")) {
        return Err(Error::Syntax);
    }
    let withscores = args.len() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Err(Error::msg("ERR value is out of range"));
    }
    let stats = ctx.stats;
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    let Some(z) = read(&mut slot, stats)? else {
        out.array(0);
        return Ok(());
    };
    let len = z.len();
    if n < 0 {
        // Repetitions allowed: independent picks.
        let n = n.unsigned_abs() as usize;
        scored_header(out, n, withscores);
        for _ in 0..n {
            let (m, s) = z.random().expect("non-empty set");
            scored_item(out, m, s, withscores);
            // Over the output limit: the client is closed, stop building.
            if out.full() {
                break;
            }
        }
        return Ok(());
    }
    let n = n as usize;
    if n >= len {
        // The whole set, highest rank first (as Redis 7.0 replies it).
        scored_header(out, len, withscores);
        z.visit(0, len, true, |m, s| {
            scored_item(out, m, s, withscores);
            true
        });
        return Ok(());
    }
    scored_header(out, n, withscores);
    for r in distinct_ranks(n, len) {
        let (m, s) = z.get(r).expect("rank in range");
        scored_item(out, m, s, withscores);
    }
    Ok(())
}

/// `n` distinct ranks out of `len` (n < len), in random order.
fn distinct_ranks(n: usize, len: usize) -> Vec<usize> {
    let rnd = crate::util::rand::u64;
    if n * 3 > len {
        // A partial Fisher-Yates shuffle of all ranks.
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..n {
            let j = i + rnd() as usize % (len - i);
            all.swap(i, j);
        }
        all.truncate(n);
        return all;
    }
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = rnd() as usize % len;
        if seen.insert(r) {
            out.push(r);
        }
    }
    out
}

pub fn zscan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let cursor = parse_cursor(&args[2]).ok_or(Error::msg("ERR invalid cursor"))?;
    let stats = ctx.stats;
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    let e = slot.get();
    hit(stats, e.is_some());
    let Some(e) = e else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let z = View::of(e.value())?;
    let mut count = 10i64;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let has_value = args.len() - i >= 2;
        if args[i].eq_ignore_ascii_case(b"count") && has_value {
            count = parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
            if count < 1 {
                return Err(Error::Syntax);
            }
        } else if args[i].eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(&args[i + 1]).filter(|p| *p != b"*");
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    let mut found: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut keep = |m: &[u8], s: f64| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            found.push((m.to_vec(), s));
        }
    };
    let next = match z {
        // A packed set is returned whole in one call, as Redis does.
        View::Packed(_) => {
            z.visit(0, usize::MAX, false, |m, s| {
                keep(m, s);
                true
            });
            0
        }
        View::Full(full) => {
            let mut cursor = cursor;
            let mut budget = count as u64 * 10;
            let mut visited = 0;
            loop {
                cursor = full.scan(cursor, |m, s| {
                    visited += 1;
                    keep(m, s);
                });
                budget = budget.saturating_sub(1);
                // Redis counts a member and its score as two scanned items.
                if cursor == 0 || budget == 0 || 2 * visited >= count as u64 {
                    break cursor;
                }
            }
        }
    };
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len() * 2);
    let mut tmp = [0u8; 64];
    for (m, s) in &found {
        out.bulk(m);
        out.bulk(fmt_double(*s, &mut tmp));
    }
    Ok(())
}
