//! List commands (the non-blocking ones; the blocking forms are built on
//! [`crate::types::list::pop`] and [`crate::types::list::push`]).

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::types::list::{self, Fill, ListRef};
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("lpush", lpush),
    ("rpush", rpush),
    ("lpushx", lpushx),
    ("rpushx", rpushx),
    ("lpop", lpop),
    ("rpop", rpop),
    ("llen", llen),
    ("lrange", lrange),
    ("lindex", lindex),
    ("lset", lset),
    ("linsert", linsert),
    ("lrem", lrem),
    ("ltrim", ltrim),
    ("lpos", lpos),
    ("lmove", lmove),
    ("rpoplpush", rpoplpush),
    ("lmpop", lmpop),
];

fn fill(ctx: &Ctx<'_>) -> i64 {
    ctx.srv.config.list_max_listpack_size.get()
}

fn int(arg: &[u8]) -> Result<i64, Error> {
    parse_i64(arg).ok_or(Error::NotInteger)
}

/// `LEFT` / `RIGHT`: true for the head.
pub(crate) fn parse_end(arg: &[u8]) -> Result<bool, Error> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(false)
    } else {
        Err(Error::Syntax)
    }
}

fn push_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, left: bool, only_if_exists: bool) -> CmdResult {
    let fill = fill(ctx);
    let values = args.tail(2);
    let mut slot = ctx.db.key(&args[1]);
    let len = list::push(&mut slot, left, values.iter(), only_if_exists, fill)?;
    if len > 0 {
        ctx.dirty += values.len() as u64;
    }
    ctx.out.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    push_generic(ctx, args, false, true)
}

/// A count that must be a non-negative integer (LPOP/RPOP).
fn positive_count(arg: &[u8]) -> Result<usize, Error> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(Error::msg("ERR value is out of range, must be positive")),
    }
}

fn pop_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, left: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(Error::WrongArity(ctx.cmd.name.into()));
    }
    let count = match args.get(2) {
        Some(c) => Some(positive_count(c)?),
        None => None,
    };
    let mut slot = ctx.db.key(&args[1]);
    let popped = list::pop(&mut slot, left, count.unwrap_or(1))?;
    ctx.hit(popped.is_some());
    match (popped, count) {
        (None, Some(_)) => ctx.out.null_array(),
        (None, None) => ctx.out.null(),
        (Some(items), None) => {
            ctx.dirty += 1;
            ctx.out.bulk(&items[0]);
        }
        (Some(items), Some(_)) => {
            ctx.dirty += items.len() as u64;
            ctx.out.bulk_array(items.iter().map(Vec::as_slice));
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    pop_generic(ctx, args, true)
}

fn rpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    pop_generic(ctx, args, false)
}

fn llen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let len = list::read(&mut slot, |l| l.len())?;
    ctx.out.int(len.unwrap_or(0) as i64);
    Ok(())
}

/// Redis's range clamp: `Some((start, count))`, or `None` for an empty range.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, (stop - start + 1) as usize))
}

fn lrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (start, stop) = (int(&args[2])?, int(&args[3])?);
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    let found = list::read(&mut slot, |l| match clamp_range(start, stop, l.len()) {
        None => out.array(0),
        Some((from, n)) => {
            out.array(n);
            for v in l.iter_from(from).take(n) {
                out.bulk(v);
            }
        }
    })?;
    if found.is_none() {
        ctx.out.array(0);
    }
    ctx.hit(found.is_some());
    Ok(())
}

fn lindex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    // Redis looks the key up before it parses the index.
    let found = list::read(&mut slot, |l| {
        let i = int(&args[2])?;
        match l.index(i).and_then(|i| l.get(i)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
        Ok::<(), Error>(())
    })?;
    ctx.hit(found.is_some());
    match found {
        Some(r) => r?,
        None => ctx.out.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let fill = Fill::new(fill(ctx));
    let mut slot = ctx.db.key(&args[1]);
    let idx = list::find(&mut slot)?.ok_or(Error::NoSuchKey)?;
    let index = int(&args[2])?;
    let i = ListRef::of(slot.entry(idx).value())?
        .index(index)
        .ok_or(Error::msg("ERR index out of range"))?;
    list::edit(&mut slot, idx, fill, |q| q.set(i, &args[3], fill));
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return Err(Error::Syntax);
    };
    let fill = Fill::new(fill(ctx));
    let mut slot = ctx.db.key(&args[1]);
    let Some(idx) = list::find(&mut slot)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let pivot = ListRef::of(slot.entry(idx).value())?
        .iter()
        .position(|v| v == &args[3]);
    let Some(at) = pivot else {
        ctx.out.int(-1);
        return Ok(());
    };
    let at = if after { at + 1 } else { at };
    let len = list::edit(&mut slot, idx, fill, |q| {
        q.insert(at, &args[4], fill);
        q.len()
    });
    ctx.dirty += 1;
    ctx.out.int(len as i64);
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let count = int(&args[2])?;
    let fill = Fill::new(fill(ctx));
    let elem = &args[3];
    let mut slot = ctx.db.key(&args[1]);
    let Some(idx) = list::find(&mut slot)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let list = ListRef::of(slot.entry(idx).value())?;
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    // The indexes to drop, ascending.
    let mut doomed: Vec<usize> = if count >= 0 {
        list.iter()
            .enumerate()
            .filter(|(_, v)| *v == elem)
            .map(|(i, _)| i)
            .take(limit)
            .collect()
    } else {
        let len = list.len();
        list.iter_rev()
            .enumerate()
            .filter(|(_, v)| *v == elem)
            .map(|(i, _)| len - 1 - i)
            .take(limit)
            .collect()
    };
    doomed.sort_unstable();
    let removed = if doomed.is_empty() {
        0
    } else {
        list::retain(&mut slot, idx, fill, |i, _| {
            doomed.binary_search(&i).is_err()
        })
    };
    ctx.dirty += removed as u64;
    ctx.out.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (start, stop) = (int(&args[2])?, int(&args[3])?);
    let fill = Fill::new(fill(ctx));
    let mut slot = ctx.db.key(&args[1]);
    if let Some(idx) = list::find(&mut slot)? {
        let len = ListRef::of(slot.entry(idx).value())?.len();
        let (from, keep) = clamp_range(start, stop, len).unwrap_or((0, 0));
        let removed = len - keep;
        if removed > 0 {
            list::edit(&mut slot, idx, fill, |q| q.trim(from, keep));
        }
        ctx.dirty += removed as u64;
    }
    ctx.out.ok();
    Ok(())
}

struct LposOpts {
    rank: i64,
    count: Option<usize>,
    maxlen: usize,
}

fn lpos_opts(args: &Args<'_>) -> Result<LposOpts, Error> {
    let mut o = LposOpts {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        let Some(val) = args.get(i + 1) else {
            return Err(Error::Syntax);
        };
        if opt.eq_ignore_ascii_case(b"rank") {
            o.rank = int(val)?;
            if o.rank == 0 {
                return Err(Error::msg(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if opt.eq_ignore_ascii_case(b"count") {
            let n = int(val)?;
            if n < 0 {
                return Err(Error::msg("ERR COUNT can't be negative"));
            }
            o.count = Some(n as usize);
        } else if opt.eq_ignore_ascii_case(b"maxlen") {
            let n = int(val)?;
            if n < 0 {
                return Err(Error::msg("ERR MAXLEN can't be negative"));
            }
            o.maxlen = n as usize;
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

fn lpos(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let o = lpos_opts(args)?;
    let elem = &args[2];
    let mut slot = ctx.db.key(&args[1]);
    let found = list::read(&mut slot, |l| {
        let len = l.len();
        let scan = if o.maxlen == 0 {
            len
        } else {
            o.maxlen.min(len)
        };
        // Matches to skip before reporting (RANK), then how many to report.
        // Redis negates RANK in a C long, so LONG_MIN stays negative and
        // then matches from the first hit: it acts as -1.
        let skip = if o.rank == i64::MIN {
            0
        } else {
            (o.rank.unsigned_abs() - 1) as usize
        };
        let want = match o.count {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => 1,
        };
        let hits: Vec<usize> = if o.rank > 0 {
            l.iter()
                .take(scan)
                .enumerate()
                .filter(|(_, v)| *v == elem)
                .map(|(i, _)| i)
                .skip(skip)
                .take(want)
                .collect()
        } else {
            l.iter_rev()
                .take(scan)
                .enumerate()
                .filter(|(_, v)| *v == elem)
                .map(|(i, _)| len - 1 - i)
                .skip(skip)
                .take(want)
                .collect()
        };
        hits
    })?;
    let hits = found.unwrap_or_default();
    match o.count {
        Some(_) => {
            ctx.out.array(hits.len());
            for i in hits {
                ctx.out.int(i as i64);
            }
        }
        None => match hits.first() {
            Some(&i) => ctx.out.int(i as i64),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

/// Pops one element from `src` and pushes it onto `dst`; replies it (or
/// null when `src` is missing). Both types are checked before anything moves.
pub(crate) fn move_generic(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> CmdResult {
    let fill_n = fill(ctx);
    let fill = Fill::new(fill_n);
    ctx.db.lock_keys([src, dst]);
    let mut slot = ctx.db.key(src);
    let Some(src_idx) = list::find(&mut slot)? else {
        ctx.out.null();
        return Ok(());
    };
    if src == dst {
        // Rotation: one edit, so the key (and its TTL) never goes away.
        let v = list::edit(&mut slot, src_idx, fill, |q| {
            let v = q.pop(from_left).expect("a stored list is never empty");
            q.push(to_left, &v, fill);
            v
        });
        ctx.dirty += 1;
        ctx.out.bulk(&v);
        return Ok(());
    }
    list::find(&mut ctx.db.key(dst))?;
    let mut slot = ctx.db.key(src);
    let v = list::pop(&mut slot, from_left, 1)?
        .and_then(|mut v| v.pop())
        .expect("the source list was checked");
    list::push(&mut ctx.db.key(dst), to_left, [v.as_slice()], false, fill_n)?;
    ctx.dirty += 1;
    ctx.out.bulk(&v);
    Ok(())
}

fn lmove(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let from = parse_end(&args[3])?;
    let to = parse_end(&args[4])?;
    move_generic(ctx, &args[1], &args[2], from, to)
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    move_generic(ctx, &args[1], &args[2], false, true)
}

/// LMPOP's arguments (BLMPOP's past its timeout): the keys, the end to pop
/// from, and the count.
pub(crate) fn parse_lmpop(args: &Args<'_>) -> Result<(Vec<Vec<u8>>, bool, usize), Error> {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(Error::msg("ERR numkeys should be greater than 0")),
    };
    // numkeys keys, the end, then nothing or COUNT n.
    if numkeys > args.len() - 3 {
        return Err(Error::Syntax);
    }
    let keys = args
        .iter()
        .skip(2)
        .take(numkeys)
        .map(<[u8]>::to_vec)
        .collect();
    let left = parse_end(&args[2 + numkeys])?;
    let rest = args.tail(3 + numkeys);
    let count = match rest.len() {
        0 => 1,
        2 if rest[0].eq_ignore_ascii_case(b"count") => match parse_i64(&rest[1]) {
            Some(n) if n > 0 => n as usize,
            _ => return Err(Error::msg("ERR count should be greater than 0")),
        },
        _ => return Err(Error::Syntax),
    };
    Ok((keys, left, count))
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn lmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (keys, left, count) = parse_lmpop(args)?;
    ctx.db.lock_keys(keys.iter().map(Vec::as_slice));
    for key in &keys {
        let mut slot = ctx.db.key(key);
        let Some(items) = list::pop(&mut slot, left, count)? else {
            continue;
        };
        ctx.dirty += items.len() as u64;
        ctx.out.array(2);
        ctx.out.bulk(key);
        ctx.out.bulk_array(items.iter().map(Vec::as_slice));
        let cmd: &[u8] = if left { b"LPOP" } else { b"RPOP" };
        ctx.rewrite_effect(vec![
            cmd.to_vec(),
            key.clone(),
            itoa::Buffer::new().format(items.len()).as_bytes().to_vec(),
        ]);
        return Ok(());
    }
    ctx.out.null_array();
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
