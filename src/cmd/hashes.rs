//! Hash commands.

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::resp::{Args, Reply};
use crate::types::hash::{self, HashRef};
use crate::util::glob::glob_match;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("hset", hset),
    ("hmset", hmset),
    ("hsetnx", hsetnx),
    ("hget", hget),
    ("hmget", hmget),
    ("hgetall", hgetall),
    ("hkeys", hkeys),
    ("hvals", hvals),
    ("hdel", hdel),
    ("hlen", hlen),
    ("hexists", hexists),
    ("hstrlen", hstrlen),
    ("hincrby", hincrby),
    ("hincrbyfloat", hincrbyfloat),
    ("hrandfield", hrandfield),
    ("hscan", hscan),
];

/// The field/value pairs after the key; an odd count is an arity error.
type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

fn pairs<'a>(ctx: &Ctx<'_>, args: &Args<'a>) -> Result<Pairs<'a>, Error> {
    if !args.len().is_multiple_of(2) {
        return Err(Error::WrongArity(ctx.cmd.name.into()));
    }
    Ok((2..args.len())
        .step_by(2)
        .map(|i| (args.arg(i), args.arg(i + 1)))
        .collect())
}

fn set_generic(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Result<usize, Error> {
    let pairs = pairs(ctx, args)?;
    let lim = ctx.srv.config.hash_limits();
    let mut slot = ctx.db.key(&args[1]);
    let idx = hash::find_or_create(&mut slot)?;
    let added = hash::set(&mut slot, idx, &pairs, lim);
    ctx.dirty += pairs.len() as u64;
    ctx.event(class::HASH, "hset", &args[1]);
    Ok(added)
}

fn hset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let added = set_generic(ctx, args)?;
    ctx.out.int(added as i64);
    Ok(())
}

fn hmset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    set_generic(ctx, args)?;
    ctx.out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lim = ctx.srv.config.hash_limits();
    let mut slot = ctx.db.key(&args[1]);
    let idx = match hash::find(&mut slot)? {
        Some(idx) => {
            if HashRef::of(slot.entry(idx).value())?
                .get(&args[2])
                .is_some()
            {
                ctx.out.int(0);
                return Ok(());
            }
            idx
        }
        None => hash::find_or_create(&mut slot)?,
    };
    hash::set(&mut slot, idx, &[(&args[2], &args[3])], lim);
    ctx.dirty += 1;
    ctx.event(class::HASH, "hset", &args[1]);
    ctx.out.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    let found = hash::read(&mut slot, |h| match h.get(&args[2]) {
        Some(v) => out.bulk(v),
        None => out.null(),
    })?;
    if found.is_none() {
        ctx.out.null();
    }
    ctx.hit(found.is_some());
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let out = &mut *ctx.out;
    let fields = args.tail(2);
    let mut slot = ctx.db.key(&args[1]);
    let found = hash::read(&mut slot, |h| {
        out.array(fields.len());
        for f in fields.iter() {
            match h.get(f) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
    })?;
    if found.is_none() {
        ctx.out.array(fields.len());
        for _ in 0..fields.len() {
            ctx.out.null();
        }
    }
    ctx.hit(found.is_some());
    Ok(())
}

/// HGETALL / HKEYS / HVALS: a map of pairs, or one side of them.
fn get_all(ctx: &mut Ctx<'_>, args: &Args<'_>, keys: bool, vals: bool) -> CmdResult {
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    let found = hash::read(&mut slot, |h| {
        if keys && vals {
            out.map(h.len());
        } else {
            out.array(h.len());
        }
        for (f, v) in h.iter() {
            if keys {
                out.bulk(f);
            }
            if vals {
                out.bulk(v);
            }
        }
    })?;
    if found.is_none() {
        if keys && vals {
            ctx.out.map(0);
        } else {
            ctx.out.array(0);
        }
    }
    ctx.hit(found.is_some());
    Ok(())
}

fn hgetall(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    get_all(ctx, args, true, true)
}

fn hkeys(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    get_all(ctx, args, true, false)
}

fn hvals(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    get_all(ctx, args, false, true)
}

fn hdel(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let removed = match hash::find(&mut slot)? {
        Some(idx) => hash::remove(&mut slot, idx, args.tail(2).iter()),
        None => 0,
    };
    ctx.dirty += removed as u64;
    if removed > 0 {
        ctx.event(class::HASH, "hdel", &args[1]);
        ctx.event_if_emptied(&args[1]);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// Replies an integer computed from the hash (0 when the key is missing).
fn count_reply(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(HashRef<'_>) -> usize) -> CmdResult {
    let mut slot = ctx.db.key(key);
    let n = hash::read(&mut slot, f)?;
    ctx.hit(n.is_some());
    ctx.out.int(n.unwrap_or(0) as i64);
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_reply(ctx, &args[1], |h| h.len())
}

fn hexists(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_reply(ctx, &args[1], |h| h.get(&args[2]).is_some() as usize)
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_reply(ctx, &args[1], |h| h.get(&args[2]).map_or(0, <[u8]>::len))
}

/// Reads the field's current value (if any), computes the new one with
/// `f`, stores it, and returns it.
fn update_field(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    f: impl FnOnce(Option<&[u8]>) -> Result<Vec<u8>, Error>,
) -> Result<Vec<u8>, Error> {
    let lim = ctx.srv.config.hash_limits();
    let mut slot = ctx.db.key(&args[1]);
    let idx = hash::find(&mut slot)?;
    let current = match idx {
        Some(i) => HashRef::of(slot.entry(i).value())?.get(&args[2]),
        None => None,
    };
    let new = f(current)?;
    let idx = match idx {
        Some(i) => i,
        None => hash::find_or_create(&mut slot)?,
    };
    hash::set(&mut slot, idx, &[(&args[2], &new)], lim);
    ctx.dirty += 1;
    Ok(new)
}

fn hincrby(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let by = parse_i64(&args[3]).ok_or(Error::NotInteger)?;
    let mut n = 0;
    update_field(ctx, args, |cur| {
        let cur = match cur {
            Some(v) => parse_i64(v).ok_or(Error::msg("ERR hash value is not an integer"))?,
            None => 0,
        };
        n = cur.checked_add(by).ok_or(Error::Overflow)?;
        Ok(itoa::Buffer::new().format(n).as_bytes().to_vec())
    })?;
    ctx.event(class::HASH, "hincrby", &args[1]);
    ctx.out.int(n);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    use crate::cmd::strings::numeric::add_long_double;
    // The increment alone must be a finite long double.
    match add_long_double(None, &args[3]) {
        Ok(_) => {}
        Err(Error::NotFloat) => return Err(Error::NotFloat),
        Err(_) => return Err(Error::msg("ERR value is NaN or Infinity")),
    }
    let sum = update_field(ctx, args, |cur| match cur {
        None => add_long_double(None, &args[3]),
        Some(v) => add_long_double(Some(v), &args[3]).map_err(|e| match e {
            Error::NotFloat => Error::msg("ERR hash value is not a float"),
            e => e,
        }),
    })?;
    ctx.event(class::HASH, "hincrbyfloat", &args[1]);
    ctx.out.bulk(&sum);
    // Replicas get the result, not the arithmetic.
    ctx.rewrite_effect(vec![
        b"HSET".to_vec(),
        args[1].to_vec(),
        args[2].to_vec(),
        sum,
    ]);
    Ok(())
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() == 2 {
        let out = &mut *ctx.out;
        let mut slot = ctx.db.key(&args[1]);
        let found = hash::read(&mut slot, |h| match random_pair(h) {
            Some((f, _)) => out.bulk(f),
            None => out.null(),
        })?;
        if found.is_none() {
            ctx.out.null();
        }
        return Ok(());
    }
    let count = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    if count == i64::MIN {
        return Err(Error::msg(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let with_values = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && a.eq_ignore_ascii_case(b"withvalues") => true,
        Some(_) => return Err(Error::Syntax),
    };
    // Twice |count| replies must fit a long (either sign, as Redis checks).
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Error::msg("ERR value is out of range"));
    }
    let out = &mut *ctx.out;
    let mut slot = ctx.db.key(&args[1]);
    let found = hash::read(&mut slot, |h| random_fields(h, count, with_values, out))?;
    if found.is_none() {
        ctx.out.array(0);
    }
    Ok(())
}

fn random_pair<'a>(h: HashRef<'a>) -> Option<(&'a [u8], &'a [u8])> {
    match h {
        HashRef::Inline(_) => {
            let n = h.len();
            if n == 0 {
                return None;
            }
            h.iter().nth(crate::util::rand::u64() as usize % n)
        }
        HashRef::Table(t) => t.random(crate::util::rand::u64),
    }
}

fn reply_pair(out: &mut Reply, (f, v): (&[u8], &[u8]), with_values: bool) {
    if with_values && out.resp3 {
        out.array(2);
    }
    out.bulk(f);
    if with_values {
        out.bulk(v);
    }
}

fn random_fields(h: HashRef<'_>, count: i64, with_values: bool, out: &mut Reply) {
    let size = h.len();
    let shape = |out: &mut Reply, n: usize| {
        out.array(if with_values && !out.resp3 { n * 2 } else { n });
    };
    if count < 0 {
        // Repeats allowed: independent draws.
        let n = count.unsigned_abs() as usize;
        shape(out, n);
        // A table's random pick (random bucket, then a link of its chain)
        // favours short chains; where listing the pairs costs no more than
        // the reply, draw uniformly from the list instead.
        if matches!(h, HashRef::Table(_)) && (size <= 4096 || n >= size / 4) {
            let pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
            for _ in 0..n {
                let p = pairs[crate::util::rand::u64() as usize % pairs.len()];
                reply_pair(out, p, with_values);
                if out.full() {
                    break;
                }
            }
            return;
        }
        for _ in 0..n {
            let p = random_pair(h).expect("stored hashes are not empty");
            reply_pair(out, p, with_values);
            // Over the output limit: the client is closed, stop building.
            if out.full() {
                break;
            }
        }
        return;
    }
    let n = count as usize;
    if n >= size {
        shape(out, size);
        for p in h.iter() {
            reply_pair(out, p, with_values);
        }
        return;
    }
    // Distinct picks: choose n of the positions (partial Fisher-Yates),
    // then reply them in hash order.
    let mut pos: Vec<usize> = (0..size).collect();
    for i in 0..n {
        let j = i + crate::util::rand::u64() as usize % (size - i);
        pos.swap(i, j);
    }
    let mut chosen = pos[..n].to_vec();
    chosen.sort_unstable();
    shape(out, n);
    let mut next = chosen.iter().peekable();
    for (i, p) in h.iter().enumerate() {
        if next.peek() == Some(&&i) {
            next.next();
            reply_pair(out, p, with_values);
        }
    }
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
fn hscan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let cursor =
        crate::cmd::keys::parse_cursor(&args[2]).ok_or(Error::msg("ERR invalid cursor"))?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        let Some(val) = args.get(i + 1) else {
            return Err(Error::Syntax);
        };
        if opt.eq_ignore_ascii_case(b"count") {
            let n = parse_i64(val).ok_or(Error::NotInteger)?;
            if n < 1 {
                return Err(Error::Syntax);
            }
            count = n as usize;
        } else if opt.eq_ignore_ascii_case(b"match") {
            pattern = Some(val).filter(|p| *p != b"*");
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    let mut slot = ctx.db.key(&args[1]);
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = hash::read(&mut slot, |h| {
        let mut keep = |f: &[u8], v: &[u8]| {
            if pattern.is_none_or(|p| glob_match(p, f, false)) {
                found.push((f.to_vec(), v.to_vec()));
            }
        };
        match h {
            // A packed hash is small: all of it, in one call.
            HashRef::Inline(_) => {
                h.iter().for_each(|(f, v)| keep(f, v));
                0
            }
            HashRef::Table(t) => {
                let mut cursor = cursor;
                let mut budget = count * 10;
                let mut seen = 0;
                loop {
                    cursor = t.scan(cursor, |f, v| {
                        seen += 1;
                        keep(f, v);
                    });
                    budget -= 1;
                    if cursor == 0 || budget == 0 || seen >= count {
                        break cursor;
                    }
                }
            }
        }
    })?
    .unwrap_or(0);
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(found.len() * 2);
    for (f, v) in &found {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
