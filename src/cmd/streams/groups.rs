//! Consumer group administration and acknowledgement: XGROUP's
//! subcommands, XACK and XPENDING.

use super::{eq, int_arg, notify};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::resp::{Args, Reply};
use crate::types::stream::{self, Group, Stream, StreamId, id};

/// `-NOGROUP` for a missing group of an existing key (XGROUP, XCLAIM...).
pub fn no_group(key: &[u8], group: &[u8]) -> Error {
    Error::owned(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

/// `-NOGROUP` when either the key or the group is missing.
pub fn no_key_or_group(key: &[u8], group: &[u8], suffix: &str) -> Error {
    Error::owned(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{suffix}",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

fn xgroup_syntax(args: &Args<'_>) -> Error {
    Error::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

const KEY_MUST_EXIST: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

pub fn xgroup_help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a consumer group starting after <id> ($: the stream's last id).",
            "    Options: MKSTREAM (create an empty stream if the key is missing),",
            "    ENTRIESREAD <n> (the group's count of entries read so far).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Add a consumer to a group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove a consumer and its pending entries from a group.",
            "DESTROY <key> <groupname>",
            "    Remove a consumer group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD <n>]",
            "    Move the group's last delivered id.",
        ],
    );
    Ok(())
}

/// The options after the id of CREATE/SETID: (MKSTREAM, ENTRIESREAD).
fn group_options(args: &Args<'_>, create: bool) -> Result<(bool, Option<i64>), Error> {
    let (lo, hi) = if create { (5, 8) } else { (5, 7) };
    if args.len() < lo || args.len() > hi || (!create && args.len() == 6) {
        return Err(xgroup_syntax(args));
    }
    let mut mkstream = false;
    let mut entries_read = None;
    let mut i = 5;
    while i < args.len() {
        if create && eq(&args[i], "mkstream") {
            mkstream = true;
        } else if eq(&args[i], "entriesread") && i + 1 < args.len() {
            let n = int_arg(&args[i + 1])?;
            if n < -1 {
                return Err(Error::msg(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            entries_read = (n >= 0).then_some(n);
            i += 1;
        } else {
            return Err(xgroup_syntax(args));
        }
        i += 1;
    }
    Ok((mkstream, entries_read))
}

/// Looks the key up for XGROUP: the stream must exist (unless `may_create`),
/// and when `need_group`, the group too. Returns whether the key exists.
fn check_target(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    may_create: bool,
    need_group: bool,
) -> Result<Option<StreamId>, Error> {
    let mut slot = ctx.db.key(&args[2]);
    match stream::get(&mut slot)? {
        None if may_create => Ok(None),
        None => Err(Error::msg(KEY_MUST_EXIST)),
        Some(s) if need_group && !s.groups.contains_key(&args[3][..]) => {
            Err(no_group(&args[2], &args[3]))
        }
        Some(s) => Ok(Some(s.last_id)),
    }
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n]
pub fn xgroup_create(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (mkstream, entries_read) = group_options(args, true)?;
    let last = check_target(ctx, args, mkstream, false)?;
    let start = if &args[4] == b"$" {
        last.unwrap_or(StreamId::MIN)
    } else {
        id::parse_id(&args[4], 0, true)?
    };
    let name = args[3].to_vec();
    let mut slot = ctx.db.key(&args[2]);
    let created = stream::with_mut(&mut slot, true, |s| {
        if s.groups.contains_key(&name) {
            return false;
        }
        s.groups.insert(name, Group::new(start, entries_read));
        true
    })?
    .unwrap_or(false);
    if !created {
        // The key may just have been made by MKSTREAM: that stays.
        return Err(Error::msg("BUSYGROUP Consumer Group name already exists"));
    }
    ctx.dirty += 1;
    notify(ctx, "xgroup-create", &args[2]);
    ctx.out.ok();
    Ok(())
}

/// XGROUP SETID key group id|$ [ENTRIESREAD n]
pub fn xgroup_setid(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (_, entries_read) = group_options(args, false)?;
    let last = check_target(ctx, args, false, true)?.unwrap_or_default();
    let to = if &args[4] == b"$" {
        last
    } else {
        id::parse_id(&args[4], 0, false)?
    };
    with_group(ctx, args, |_, g| {
        g.last_id = to;
        g.entries_read = entries_read;
    })?;
    ctx.dirty += 1;
    notify(ctx, "xgroup-setid", &args[2]);
    ctx.out.ok();
    Ok(())
}

/// Runs `f` on the group `args[3]` of the stream `args[2]` (both checked).
fn with_group<R>(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    f: impl FnOnce(&Stream, &mut Group) -> R,
) -> Result<R, Error> {
    let mut slot = ctx.db.key(&args[2]);
    stream::with_mut(&mut slot, false, |s| {
        let mut g = s.groups.remove(&args[3][..])?;
        let r = f(s, &mut g);
        s.groups.insert(args[3].to_vec(), g);
        Some(r)
    })?
    .flatten()
    .ok_or_else(|| no_group(&args[2], &args[3]))
}

/// XGROUP DESTROY key group
pub fn xgroup_destroy(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    check_target(ctx, args, false, false)?;
    let mut slot = ctx.db.key(&args[2]);
    let gone = stream::with_mut(&mut slot, false, |s| {
        s.groups.remove(&args[3][..]).is_some()
    })?
    .unwrap_or(false);
    if gone {
        // Readers blocked on the group learn it is gone.
        slot.signal_ready();
        ctx.dirty += 1;
        notify(ctx, "xgroup-destroy", &args[2]);
    }
    ctx.out.int(i64::from(gone));
    Ok(())
}

/// XGROUP CREATECONSUMER key group consumer
pub fn xgroup_createconsumer(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    check_target(ctx, args, false, true)?;
    let now = ctx.db.now_ms;
    let created = with_group(ctx, args, |_, g| g.consumer(&args[4], now).1)?;
    if created {
        ctx.dirty += 1;
        notify(ctx, "xgroup-createconsumer", &args[2]);
    }
    ctx.out.int(i64::from(created));
    Ok(())
}

/// XGROUP DELCONSUMER key group consumer
pub fn xgroup_delconsumer(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    check_target(ctx, args, false, true)?;
    let pending = with_group(ctx, args, |_, g| g.remove_consumer(&args[4]))?;
    if pending.is_some() {
        ctx.dirty += 1;
        notify(ctx, "xgroup-delconsumer", &args[2]);
    }
    ctx.out.int(pending.unwrap_or(0) as i64);
    Ok(())
}

/// XACK key group id [id ...]
pub fn xack(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let s = stream::get(&mut slot)?;
    super::read::count_lookup(ctx.stats, s.is_some());
    let has_group = s.is_some_and(|s| s.groups.contains_key(&args[2][..]));
    // Every id is checked before anything is acknowledged.
    let ids = args
        .iter()
        .skip(3)
        .map(|a| id::parse_id(a, 0, true))
        .collect::<Result<Vec<_>, _>>()?;
    let mut acked = 0;
    if has_group {
        stream::with_mut(&mut slot, false, |s| {
            if let Some(g) = s.groups.get_mut(&args[2][..]) {
                acked = ids.iter().filter(|&&id| g.ack(id)).count();
            }
        })?;
    }
    ctx.dirty += acked as u64;
    ctx.out.int(acked as i64);
    Ok(())
}

/// The bounds and filters of XPENDING's extended form.
struct PendingRange {
    idle: i64,
    start: StreamId,
    end: StreamId,
    count: usize,
    consumer: Option<usize>,
}

fn pending_range(args: &Args<'_>) -> Result<Option<PendingRange>, Error> {
    if args.len() == 3 {
        return Ok(None);
    }
    if args.len() < 6 || args.len() > 9 {
        return Err(Error::Syntax);
    }
    let mut at = 3;
    let mut idle = 0;
    if eq(&args[3], "idle") {
        idle = int_arg(&args[4])?;
        if args.len() < 8 {
            return Err(Error::Syntax);
        }
        at += 2;
    }
    let count = int_arg(&args[at + 2])?.max(0) as usize;
    let (mut start, start_ex) = id::parse_interval(&args[at], 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or(Error::msg("ERR invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = id::parse_interval(&args[at + 1], u64::MAX)?;
    if end_ex {
        end = end
            .prev()
            .ok_or(Error::msg("ERR invalid end ID for the interval"))?;
    }
    let consumer = (at + 3 < args.len()).then_some(at + 3);
    Ok(Some(PendingRange {
        idle,
        start,
        end,
        count,
        consumer,
    }))
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let range = pending_range(args)?;
    let now = ctx.db.now_ms;
    let mut slot = ctx.db.key(&args[1]);
    let s = stream::get(&mut slot)?;
    super::read::count_lookup(ctx.stats, s.is_some());
    let Some(g) = s.and_then(|s| s.groups.get(&args[2][..])) else {
        return Err(no_key_or_group(&args[1], &args[2], ""));
    };
    match range {
        None => pending_summary(ctx.out, g),
        Some(r) => pending_list(ctx.out, g, &r, args, now),
    }
    Ok(())
}

fn pending_summary(out: &mut Reply, g: &Group) {
    out.array(4);
    out.int(g.pel.len() as i64);
    let (Some((first, _)), Some((last, _))) = (g.pel.first_key_value(), g.pel.last_key_value())
    else {
        out.null();
        out.null();
        out.null_array();
        return;
    };
    out.bulk(&first.to_bytes());
    out.bulk(&last.to_bytes());
    let owners: Vec<_> = g
        .consumers
        .iter()
        .filter(|(_, c)| !c.pel.is_empty())
        .collect();
    out.array(owners.len());
    for (name, c) in owners {
        out.array(2);
        out.bulk(name);
        out.bulk_int(c.pel.len() as i64);
    }
}

fn pending_list(out: &mut Reply, g: &Group, r: &PendingRange, args: &Args<'_>, now: i64) {
    let ids: Box<dyn Iterator<Item = &StreamId>> = match r.consumer {
        Some(at) => match g.consumers.get(&args[at][..]) {
            Some(c) => Box::new(c.pel.range(r.start..)),
            None => {
                out.array(0);
                return;
            }
        },
        None => Box::new(g.pel.range(r.start..).map(|(id, _)| id)),
    };
    let mut rows = Vec::new();
    if r.start <= r.end {
        for id in ids.take_while(|&&id| id <= r.end) {
            if rows.len() >= r.count {
                break;
            }
            let p = &g.pel[id];
            if r.idle > 0 && now - p.delivery_time < r.idle {
                continue;
            }
            rows.push((*id, p));
        }
    }
    out.array(rows.len());
    for (id, p) in rows {
        out.array(4);
        out.bulk(&id.to_bytes());
        out.bulk(&p.consumer);
        out.int((now - p.delivery_time).max(0));
        out.int(p.delivery_count as i64);
    }
}
