//! XINFO STREAM/GROUPS/CONSUMERS and XSETID: a stream's bookkeeping,
//! read and set.

use super::{eq, int_arg, notify, reply_entry};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::resp::{Args, Reply};
use crate::types::stream::{self, Group, Stream, StreamId, id};

/// XINFO STREAM key [FULL [COUNT count]]
pub fn xinfo_stream(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[2]);
    let s = stream::get(&mut slot)?;
    // Counted here: the stream stays borrowed while the reply is written.
    if s.is_some() {
        ctx.stats.keyspace_hits.add(1);
    } else {
        ctx.stats.keyspace_misses.add(1);
    }
    let Some(s) = s else {
        return Err(Error::NoSuchKey);
    };
    let bad_form = || {
        Error::msg(
            "ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.",
        )
    };
    let full = if args.len() > 3 {
        if !eq(&args[3], "full") {
            return Err(bad_form());
        }
        let mut count = 10;
        if args.len() > 4 {
            if args.len() != 6 || !eq(&args[4], "count") {
                return Err(bad_form());
            }
            let n = int_arg(&args[5])?;
            count = if n < 0 { 10 } else { n as usize };
        }
        Some(count)
    } else {
        None
    };
    let out = &mut *ctx.out;
    out.map(if full.is_some() { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(s.radix_tree_nodes() as i64);
    out.bulk(b"last-generated-id");
    out.bulk(&s.last_id.to_bytes());
    out.bulk(b"max-deleted-entry-id");
    out.bulk(&s.max_deleted_id.to_bytes());
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    out.bulk(&s.first_id.to_bytes());
    match full {
        Some(count) => {
            out.bulk(b"entries");
            super::reply_range(out, s, StreamId::MIN, StreamId::MAX, false, count);
            out.bulk(b"groups");
            full_groups(out, s, count);
        }
        None => {
            out.bulk(b"groups");
            out.int(s.groups.len() as i64);
            out.bulk(b"first-entry");
            edge(out, s, false);
            out.bulk(b"last-entry");
            edge(out, s, true);
        }
    }
    Ok(())
}

/// A group's `entries-read` and `lag`, null when unknown.
fn read_and_lag(out: &mut Reply, s: &Stream, g: &Group) {
    out.bulk(b"entries-read");
    match g.entries_read {
        Some(n) => out.int(n),
        None => out.null(),
    }
    out.bulk(b"lag");
    match s.group_lag(g) {
        Some(n) => out.int(n),
        None => out.null(),
    }
}

/// XINFO STREAM FULL's `groups`: each group with its PEL and consumers,
/// every pending list cut at `count` entries (0: all).
fn full_groups(out: &mut Reply, s: &Stream, count: usize) {
    let cap = if count == 0 { usize::MAX } else { count };
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        out.bulk(&g.last_id.to_bytes());
        read_and_lag(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        out.array(g.pel.len().min(cap));
        for (id, p) in g.pel.iter().take(cap) {
            out.array(4);
            out.bulk(&id.to_bytes());
            out.bulk(&p.consumer);
            out.int(p.delivery_time);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"pel-count");
            out.int(c.pel.len() as i64);
            out.bulk(b"pending");
            out.array(c.pel.len().min(cap));
            for id in c.pel.iter().take(cap) {
                let p = &g.pel[id];
                out.array(3);
                out.bulk(&id.to_bytes());
                out.int(p.delivery_time);
                out.int(p.delivery_count as i64);
            }
        }
    }
}

/// The stream at `key` for XINFO GROUPS/CONSUMERS (`no such key` if absent).
fn info_stream<'s>(
    slot: &'s mut crate::store::KeySlot<'_, '_>,
    stats: &crate::server::stats::ThreadStats,
) -> Result<&'s Stream, Error> {
    let s = stream::get(slot)?;
    super::read::count_lookup(stats, s.is_some());
    s.ok_or(Error::NoSuchKey)
}

/// XINFO GROUPS key
pub fn xinfo_groups(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[2]);
    let s = info_stream(&mut slot, ctx.stats)?;
    let out = &mut *ctx.out;
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.int(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        out.bulk(&g.last_id.to_bytes());
        read_and_lag(out, s, g);
    }
    Ok(())
}

/// XINFO CONSUMERS key group
pub fn xinfo_consumers(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let now = ctx.db.now_ms;
    let mut slot = ctx.db.key(&args[2]);
    let s = info_stream(&mut slot, ctx.stats)?;
    let g = s
        .groups
        .get(&args[3][..])
        .ok_or_else(|| super::groups::no_group(&args[2], &args[3]))?;
    let out = &mut *ctx.out;
    out.array(g.consumers.len());
    for (name, c) in &g.consumers {
        out.map(3);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"pending");
        out.int(c.pel.len() as i64);
        out.bulk(b"idle");
        out.int((now - c.seen_time).max(0));
    }
    Ok(())
}

fn edge(out: &mut Reply, s: &Stream, last: bool) {
    match s.edge(last) {
        Some(e) => reply_entry(out, &e),
        None => out.null(),
    }
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let last = id::parse_id(&args[2], 0, true)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq(&args[i], "entriesadded") && more {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Error::msg("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if eq(&args[i], "maxdeletedid") && more {
            max_deleted = id::parse_id(&args[i + 1], 0, true)?;
            if last < max_deleted {
                return Err(Error::msg(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    let mut slot = ctx.db.key(&args[1]);
    let done = stream::with_mut(&mut slot, false, |s| {
        if let Some(top) = s.edge(true).map(|e| e.id) {
            if last < top {
                return Err(Error::msg(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added.is_some_and(|n| n < s.len()) {
                return Err(Error::msg(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        s.last_id = last;
        if let Some(n) = entries_added {
            s.entries_added = n;
        }
        if max_deleted != StreamId::MIN {
            s.max_deleted_id = max_deleted;
        }
        Ok(())
    })?;
    match done {
        None => Err(Error::NoSuchKey),
        Some(r) => {
            r?;
            ctx.dirty += 1;
            notify(ctx, "xsetid", &args[1]);
            ctx.out.ok();
            Ok(())
        }
    }
}
