//! Set commands. The handlers parse arguments and write replies; the set
//! itself is only touched through `types::set`.

mod algebra;
#[cfg(test)]
mod tests;

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::resp::Args;
use crate::server::stats::ThreadStats;
use crate::store::KeySlot;
use crate::types::set::{self, Member, SetRef};
use crate::util::glob::glob_match;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("sadd", sadd),
    ("srem", srem),
    ("scard", scard),
    ("sismember", sismember),
    ("smismember", smismember),
    ("smembers", smembers),
    ("spop", spop),
    ("srandmember", srandmember),
    ("smove", smove),
    ("sscan", sscan),
    ("sinter", algebra::sinter),
    ("sintercard", algebra::sintercard),
    ("sinterstore", algebra::sinterstore),
    ("sunion", algebra::sunion),
    ("sunionstore", algebra::sunionstore),
    ("sdiff", algebra::sdiff),
    ("sdiffstore", algebra::sdiffstore),
];

/// Counts a keyspace hit or miss for a read lookup (Redis counts a found key
/// of the wrong type as a hit).
fn hit(stats: &ThreadStats, found: bool) {
    if found {
        stats.keyspace_hits.add(1);
    } else {
        stats.keyspace_misses.add(1);
    }
}

/// A read lookup: the set at the key, counted as a hit or miss.
fn read<'s>(
    slot: &'s mut KeySlot<'_, '_>,
    stats: &ThreadStats,
) -> Result<Option<SetRef<'s>>, Error> {
    let r = set::get(slot);
    hit(stats, !matches!(r, Ok(None)));
    r
}

fn sadd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lim = ctx.srv.config.set_limits();
    let members: Vec<&[u8]> = args.iter().skip(2).collect();
    let mut slot = ctx.db.key(&args[1]);
    let added = set::add(&mut slot, &members, &lim)?;
    ctx.dirty += added as u64;
    if added > 0 {
        ctx.event(class::SET, "sadd", &args[1]);
    }
    ctx.out.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let members: Vec<&[u8]> = args.iter().skip(2).collect();
    let mut slot = ctx.db.key(&args[1]);
    let removed = set::remove(&mut slot, &members)?;
    ctx.dirty += removed as u64;
    if removed > 0 {
        ctx.event(class::SET, "srem", &args[1]);
        ctx.event_if_emptied(&args[1]);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let n = read(&mut slot, ctx.stats)?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let found = read(&mut slot, ctx.stats)?.is_some_and(|s| s.contains(&args[2]));
    ctx.out.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let set = read(&mut slot, ctx.stats)?;
    ctx.out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        ctx.out.int(set.is_some_and(|s| s.contains(m)) as i64);
    }
    Ok(())
}

fn smembers(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    match read(&mut slot, ctx.stats)? {
        Some(s) => {
            ctx.out.set(s.len());
            s.iter().for_each(|m| m.reply(ctx.out));
        }
        None => ctx.out.set(0),
    }
    Ok(())
}

fn spop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(Error::msg("ERR value is out of range, must be positive")),
        },
    };
    if args.len() > 3 {
        return Err(Error::Syntax);
    }
    let key = &args[1];
    let lim = ctx.srv.config.set_limits();
    let mut slot = ctx.db.key(key);
    let popped = match count {
        // Still a type check, but nothing to take.
        Some(0) => set::get(&mut slot)?.map(|_| set::Popped {
            members: Vec::new(),
            emptied: false,
        }),
        _ => set::pop(&mut slot, count.unwrap_or(1), &lim)?,
    };
    let Some(popped) = popped else {
        match count {
            None => ctx.out.null(),
            Some(_) => ctx.out.set(0),
        }
        return Ok(());
    };
    match count {
        None => ctx.out.bulk(&popped.members[0]),
        Some(_) => {
            ctx.out.set(popped.members.len());
            popped.members.iter().for_each(|m| ctx.out.bulk(m));
        }
    }
    if popped.members.is_empty() {
        return Ok(());
    }
    ctx.dirty += popped.members.len() as u64;
    ctx.event(class::SET, "spop", key);
    ctx.event_if_emptied(key);
    // Replicas must remove the same members: a random pop is replayed as SREM
    // (one SREM for all of them; Redis 7.0 sends one per member inside
    // MULTI/EXEC), or as DEL when SPOP with a count took the whole set.
    let argv = if popped.emptied && count.is_some() {
        vec![b"DEL".to_vec(), key.to_vec()]
    } else {
        let mut argv = Vec::with_capacity(2 + popped.members.len());
        argv.push(b"SREM".to_vec());
        argv.push(key.to_vec());
        argv.extend(popped.members);
        argv
    };
    ctx.rewrite_effect(argv);
    Ok(())
}

fn srandmember(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    // Redis checks the argument count before the count's value.
    if args.len() > 3 {
        return Err(Error::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(i64::MIN) => {
                return Err(Error::msg(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            Some(n) => Some(n),
            None => return Err(Error::NotInteger),
        },
    };
    let mut slot = ctx.db.key(&args[1]);
    let set = read(&mut slot, ctx.stats)?;
    let Some(count) = count else {
        match set {
            Some(s) => s.indexed().random().reply(ctx.out),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let Some(s) = set.filter(|_| count != 0) else {
        ctx.out.array(0);
        return Ok(());
    };
    let len = s.len();
    if count >= len as i64 {
        // The whole set, in iteration order.
        ctx.out.array(len);
        s.iter().for_each(|m| m.reply(ctx.out));
        return Ok(());
    }
    let indexed = s.indexed();
    if count > 0 {
        let picks = set::sample_positions(len, count as usize);
        ctx.out.array(picks.len());
        picks.iter().for_each(|&i| indexed.at(i).reply(ctx.out));
    } else {
        // Negative: exactly |count| independent picks, repeats allowed.
        let n = count.unsigned_abs() as usize;
        ctx.out.array(n);
        for _ in 0..n {
            indexed.random().reply(ctx.out);
            // Over the output limit: the client is closed, stop building.
            if ctx.out.full() {
                break;
            }
        }
    }
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let lim = ctx.srv.config.set_limits();
    // Redis's order: a missing source answers 0 before any type check.
    let mut slot = ctx.db.key(src);
    let Some(s) = set::get(&mut slot)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let in_src = s.contains(member);
    set::get(&mut ctx.db.key(dst))?;
    if src == dst || !in_src {
        ctx.out.int(in_src as i64);
        return Ok(());
    }
    set::remove(&mut ctx.db.key(src), &[member])?;
    ctx.event(class::SET, "srem", src);
    ctx.event_if_emptied(src);
    // The destination is told only if the member was not there yet.
    if set::add(&mut ctx.db.key(dst), &[member], &lim)? > 0 {
        ctx.event(class::SET, "sadd", dst);
    } else {
        ctx.unchanged_arg = Some(2);
    }
    ctx.dirty += 1;
    ctx.out.int(1);
    Ok(())
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
fn sscan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let cursor = super::keys::parse_cursor(&args[2]).ok_or(Error::msg("ERR invalid cursor"))?;
    let mut slot = ctx.db.key(&args[1]);
    let Some(s) = read(&mut slot, ctx.stats)? else {
        // Options are not even parsed for a missing key, as in Redis.
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let has_value = args.len() - i >= 2;
        if args[i].eq_ignore_ascii_case(b"count") && has_value {
            let n = parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
            if n < 1 {
                return Err(Error::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if args[i].eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(&args[i + 1]).filter(|p| *p != b"*");
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    let mut found: Vec<Member<'_>> = Vec::new();
    let next = s.scan(cursor, count, |m| {
        if pattern.is_none_or(|p| m.with_bytes(|b| glob_match(p, b, false))) {
            found.push(m);
        }
    });
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(found.len());
    found.into_iter().for_each(|m| m.reply(ctx.out));
    Ok(())
}
