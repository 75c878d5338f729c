//! XINFO STREAM and XSETID: a stream's bookkeeping, read and set.

use super::{eq, int_arg, notify, reply_entry};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::resp::{Args, Reply};
use crate::types::stream::{self, Stream, StreamId, id};

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
            out.array(0);
        }
        None => {
            out.bulk(b"groups");
            out.int(0);
            out.bulk(b"first-entry");
            edge(out, s, false);
            out.bulk(b"last-entry");
            edge(out, s, true);
        }
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
