//! XCLAIM and XAUTOCLAIM: moving pending entries to another consumer.
//!
//! Both drop from the PEL the ids whose entries were deleted from the
//! stream. Their effect is rewritten as an XCLAIM with min-idle 0 naming
//! exactly the ids claimed or dropped, so a replay does not depend on how
//! idle the entries were when the command ran.

use super::groups::no_key_or_group;
use super::{eq, notify};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::resp::{Args, Reply};
use crate::types::stream::{self, Group, Stream, StreamId, id};

fn int_or(a: &[u8], msg: &'static str) -> Result<i64, Error> {
    crate::util::num::parse_i64(a).ok_or(Error::msg(msg))
}

/// Checks the key and group exist (NOGROUP naming both otherwise).
fn check_group(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    match stream::get(&mut slot)? {
        Some(s) if s.groups.contains_key(&args[2][..]) => Ok(()),
        _ => Err(no_key_or_group(&args[1], &args[2], "")),
    }
}

/// Counts the keyspace hit or miss of the command's key, looked up before
/// its arguments are read (as Redis does for XCLAIM and XAUTOCLAIM).
fn count_lookup(ctx: &mut Ctx<'_>, key: &[u8]) {
    let found = ctx.db.key(key).lookup().is_some();
    ctx.hit(found);
}

/// What one claim run did.
struct Claimed {
    reply: Reply,
    /// Ids now owned by the claimer.
    ids: Vec<StreamId>,
    /// Pending ids dropped because their entry is gone.
    dropped: Vec<StreamId>,
    created: bool,
    /// XCLAIM LASTID moved the group's cursor.
    moved_cursor: bool,
}

/// Claims `id` (pending, its entry present) for `consumer`, replying with
/// the entry or just its id.
#[allow(clippy::too_many_arguments)]
fn claim_one(
    s: &Stream,
    g: &mut Group,
    id: StreamId,
    consumer: &[u8],
    time: i64,
    count: u64,
    justid: bool,
    c: &mut Claimed,
) {
    g.deliver(id, consumer, time, count);
    if justid {
        c.reply.bulk(&id.to_bytes());
    } else {
        s.range(id, id, false, 1, |e| super::reply_entry(&mut c.reply, &e));
    }
    c.ids.push(id);
}

impl Claimed {
    fn new(resp3: bool) -> Claimed {
        Claimed {
            reply: Reply::new(resp3),
            ids: Vec::new(),
            dropped: Vec::new(),
            created: false,
            moved_cursor: false,
        }
    }
}

fn entry_exists(s: &Stream, id: StreamId) -> bool {
    s.range(id, id, false, 1, |_| {}) == 1
}

/// Runs `f` on the checked group `args[2]` of the stream `args[1]`.
fn on_group(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    f: impl FnOnce(&Stream, &mut Group) -> Claimed,
) -> Result<Claimed, Error> {
    let mut slot = ctx.db.key(&args[1]);
    let c = stream::with_mut(&mut slot, false, |s| {
        let mut g = s.groups.remove(&args[2][..])?;
        let c = f(s, &mut g);
        s.groups.insert(args[2].to_vec(), g);
        Some(c)
    })?
    .flatten();
    c.ok_or_else(|| no_key_or_group(&args[1], &args[2], ""))
}

/// Reports a claim: dirty counts, the rewritten effect, the event.
fn finish(ctx: &mut Ctx<'_>, args: &Args<'_>, c: &Claimed, extra: &[Vec<u8>]) {
    let changes = c.ids.len() + c.dropped.len() + usize::from(c.moved_cursor);
    if changes == 0 {
        return;
    }
    ctx.dirty += changes as u64;
    let mut argv: Vec<Vec<u8>> = vec![
        b"XCLAIM".to_vec(),
        args[1].to_vec(),
        args[2].to_vec(),
        args[3].to_vec(),
        b"0".to_vec(),
    ];
    argv.extend(c.ids.iter().chain(&c.dropped).map(|id| id.to_bytes()));
    if argv.len() == 5 {
        // Only the cursor moved: an id XCLAIM cannot claim keeps it valid.
        argv.push(b"0-0".to_vec());
    }
    argv.extend(extra.iter().cloned());
    ctx.rewrite_effect(argv);
    if c.created {
        notify(ctx, "xgroup-createconsumer", &args[1]);
    }
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
/// [TIME unix-ms] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_lookup(ctx, &args[1]);
    check_group(ctx, args)?;
    let min_idle = int_or(&args[4], "ERR Invalid min-idle-time argument for XCLAIM")?.max(0);
    let ids: Vec<StreamId> = args
        .iter()
        .skip(5)
        .map_while(|a| id::parse_id(a, 0, true).ok())
        .collect();
    let now = ctx.db.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut time: Option<i64> = None;
    let mut retry: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    // The options, replayed as given (IDLE and TIME become TIME).
    let mut extra: Vec<Vec<u8>> = Vec::new();
    let mut i = 5 + ids.len();
    while i < args.len() {
        let more = i + 1 < args.len();
        let opt = &args[i];
        if eq(opt, "force") {
            force = true;
            extra.push(b"FORCE".to_vec());
        } else if eq(opt, "justid") {
            justid = true;
            extra.push(b"JUSTID".to_vec());
        } else if eq(opt, "idle") && more {
            i += 1;
            time = Some(now - int_or(&args[i], "ERR Invalid IDLE option argument for XCLAIM")?);
        } else if eq(opt, "time") && more {
            i += 1;
            time = Some(int_or(
                &args[i],
                "ERR Invalid TIME option argument for XCLAIM",
            )?);
        } else if eq(opt, "retrycount") && more {
            i += 1;
            retry = Some(int_or(
                &args[i],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?);
            extra.extend([b"RETRYCOUNT".to_vec(), args[i].to_vec()]);
        } else if eq(opt, "lastid") && more {
            i += 1;
            last_id = id::parse_id(&args[i], 0, true)?;
            extra.extend([b"LASTID".to_vec(), args[i].to_vec()]);
        } else {
            return Err(Error::owned(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
        i += 1;
    }
    // A bogus time (negative, or in the future) means now.
    let time = time.filter(|&t| (0..=now).contains(&t)).unwrap_or(now);
    extra.extend([b"TIME".to_vec(), time.to_string().into_bytes()]);
    let consumer = &args[3];
    let resp3 = ctx.out.resp3;
    let c = on_group(ctx, args, |s, g| {
        let mut c = Claimed::new(resp3);
        if last_id > g.last_id {
            g.last_id = last_id;
            c.moved_cursor = true;
        }
        let mut n = 0;
        for &id in &ids {
            if !entry_exists(s, id) {
                if g.ack(id) {
                    c.dropped.push(id);
                }
                continue;
            }
            let prev = g.pel.get(&id).map(|p| (p.delivery_time, p.delivery_count));
            // FORCE makes a fresh pending entry (counted once), which no
            // idle time applies to.
            let (count, check_idle) = match prev {
                Some((t, n)) => (n, Some(t)),
                None if force => (1, None),
                None => continue,
            };
            if let Some(t) = check_idle
                && min_idle > 0
                && now - t < min_idle
            {
                continue;
            }
            let (cons, created) = g.consumer(consumer, now);
            cons.seen_time = now;
            c.created |= created;
            let count = match retry {
                Some(r) if r >= 0 => r as u64,
                _ if justid => count,
                _ => count + 1,
            };
            claim_one(s, g, id, consumer, time, count, justid, &mut c);
            n += 1;
        }
        let mut reply = Reply::new(c.reply.resp3);
        reply.array(n);
        reply.buf.extend_from_slice(&c.reply.buf);
        c.reply = reply;
        c
    })?;
    finish(ctx, args, &c, &extra);
    ctx.out.buf.extend_from_slice(&c.reply.buf);
    Ok(())
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_lookup(ctx, &args[1]);
    let min_idle = int_or(
        &args[4],
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    )?
    .max(0);
    let (mut start, start_ex) = id::parse_interval(&args[5], 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or(Error::msg("ERR invalid start ID for the interval"))?;
    }
    // Redis's bound keeps count * 10 attempts (and the ids) within a long.
    const MAX_COUNT: i64 = i64::MAX / 16;
    let mut count = 100usize;
    let mut justid = false;
    let mut i = 6;
    while i < args.len() {
        if eq(&args[i], "count") && i + 1 < args.len() {
            count = crate::util::num::parse_i64(&args[i + 1])
                .filter(|n| (1..=MAX_COUNT).contains(n))
                .ok_or(Error::msg("ERR COUNT must be > 0"))? as usize;
            i += 1;
        } else if eq(&args[i], "justid") {
            justid = true;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    check_group(ctx, args)?;
    let now = ctx.db.now_ms;
    let consumer = &args[3];
    let mut next = StreamId::MIN;
    let resp3 = ctx.out.resp3;
    let c = on_group(ctx, args, |s, g| {
        let mut c = Claimed::new(resp3);
        let mut attempts = count.saturating_mul(10);
        // The next pending id to look at; `None` past the last possible id.
        let mut pos = Some(start);
        let mut left = count;
        let mut n = 0;
        while attempts > 0 && left > 0 {
            attempts -= 1;
            let Some(id) = pos.and_then(|p| g.pel.range(p..).next().map(|(id, _)| *id)) else {
                pos = None;
                break;
            };
            pos = id.next();
            if !entry_exists(s, id) {
                g.ack(id);
                c.dropped.push(id);
                left -= 1;
                continue;
            }
            let p = &g.pel[&id];
            if min_idle > 0 && now - p.delivery_time < min_idle {
                continue;
            }
            let count = p.delivery_count + u64::from(!justid);
            let (cons, created) = g.consumer(consumer, now);
            cons.seen_time = now;
            c.created |= created;
            claim_one(s, g, id, consumer, now, count, justid, &mut c);
            n += 1;
            left -= 1;
        }
        next = pos
            .and_then(|p| g.pel.range(p..).next().map(|(id, _)| *id))
            .unwrap_or(StreamId::MIN);
        let mut reply = Reply::new(c.reply.resp3);
        reply.array(3);
        reply.bulk(&next.to_bytes());
        reply.array(n);
        reply.buf.extend_from_slice(&c.reply.buf);
        reply.array(c.dropped.len());
        for id in &c.dropped {
            reply.bulk(&id.to_bytes());
        }
        c.reply = reply;
        c
    })?;
    let mut extra = vec![b"TIME".to_vec(), now.to_string().into_bytes()];
    if justid {
        extra.push(b"JUSTID".to_vec());
    }
    finish(ctx, args, &c, &extra);
    ctx.out.buf.extend_from_slice(&c.reply.buf);
    Ok(())
}
