//! XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...]
//!
//! Readers are not consumers: an entry added to a key serves every client
//! blocked on it, each with the entries past its own id, and takes nothing
//! away. So the serve function only reads, and `crate::blocking` goes on
//! to the next waiter of the key after serving one.

use std::time::Duration;

use super::{eq, int_arg};
use crate::blocking::{ServeCtx, Served, Waiter};
use crate::cmd::blocking::block;
use crate::cmd::{CmdResult, Ctx, Error};
use crate::resp::{Args, Reply};
use crate::server::stats::ThreadStats;
use crate::types::stream::{self, Stream, StreamId, id};

pub(super) struct ReadArgs {
    pub count: usize,
    /// `None`: no BLOCK; `Some(None)`: BLOCK 0 (forever).
    pub block: Option<Option<Duration>>,
    pub streams_at: usize,
    pub n: usize,
    /// XREADGROUP: where the group name sits (the consumer follows).
    pub group_at: usize,
    pub noack: bool,
}

/// XREAD's arguments, or XREADGROUP's when `group`.
pub(super) fn parse(args: &Args<'_>, in_script: bool, group: bool) -> Result<ReadArgs, Error> {
    let mut r = ReadArgs {
        count: 0,
        block: None,
        streams_at: 0,
        n: 0,
        group_at: 0,
        noack: false,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = &args[i];
        if eq(o, "block") && more > 0 {
            if in_script {
                return Err(Error::owned(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args[0])
                )));
            }
            i += 1;
            let ms = crate::util::num::parse_i64(&args[i])
                .ok_or(Error::msg("ERR timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(Error::msg("ERR timeout is negative"));
            }
            r.block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
        } else if eq(o, "count") && more > 0 {
            i += 1;
            r.count = int_arg(&args[i])?.max(0) as usize;
        } else if eq(o, "streams") && more > 0 {
            r.streams_at = i + 1;
            let n = args.len() - r.streams_at;
            if !n.is_multiple_of(2) {
                return Err(Error::msg(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            r.n = n / 2;
            break;
        } else if group && eq(o, "group") && more >= 2 {
            r.group_at = i + 1;
            i += 2;
        } else if group && eq(o, "noack") {
            r.noack = true;
        } else if eq(o, "group") && more >= 2 {
            return Err(Error::msg(
                "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
            ));
        } else if eq(o, "noack") {
            return Err(Error::msg(
                "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
            ));
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if r.streams_at == 0 {
        return Err(Error::Syntax);
    }
    if group && r.group_at == 0 {
        return Err(Error::msg("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

/// The ids the reply starts after: `$` is the stream's last id now.
fn resolve_ids(ctx: &mut Ctx<'_>, args: &Args<'_>, r: &ReadArgs) -> Result<Vec<StreamId>, Error> {
    let mut ids = Vec::with_capacity(r.n);
    for i in 0..r.n {
        let key = &args[r.streams_at + i];
        let arg = &args[r.streams_at + r.n + i];
        let mut slot = ctx.db.key(key);
        let s = stream::get(&mut slot)?;
        // Redis looks each key up here and again when reading it: both count.
        count_lookup(ctx.stats, s.is_some());
        if arg == b"$" {
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
        } else if arg == b">" {
            return Err(Error::msg(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ));
        } else {
            ids.push(id::parse_id(arg, 0, true)?);
        }
    }
    Ok(ids)
}

/// A keyspace hit or miss (while the key's slot still borrows the context).
pub(super) fn count_lookup(stats: &ThreadStats, found: bool) {
    if found {
        stats.keyspace_hits.add(1);
    } else {
        stats.keyspace_misses.add(1);
    }
}

/// The entries of `s` past `after`, or `None` when there are none.
fn entries_after<'s>(
    s: &'s Stream,
    after: StreamId,
    count: usize,
) -> Option<Vec<stream::Entry<'s>>> {
    let start = after.next()?;
    let mut v = Vec::new();
    s.range(start, StreamId::MAX, false, count, |e| v.push(e));
    (!v.is_empty()).then_some(v)
}

/// The reply header for `n` keys: an array of [key, entries] pairs, a map
/// in RESP3.
pub(super) fn keys_header(out: &mut Reply, n: usize) {
    if out.resp3 {
        out.map(n);
    } else {
        out.array(n);
    }
}

/// The reply of a read that found entries: the header, then each key's
/// part (as [`key_entries`] writes it).
pub(super) fn keys_reply(out: &mut Reply, parts: Vec<Vec<u8>>) {
    keys_header(out, parts.len());
    for p in parts {
        out.buf.extend_from_slice(&p);
    }
}

fn key_entries(out: &mut Reply, key: &[u8], entries: &[stream::Entry<'_>]) {
    if !out.resp3 {
        out.array(2);
    }
    out.bulk(key);
    out.array(entries.len());
    for e in entries {
        super::reply_entry(out, e);
    }
}

pub fn xread(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let in_script = ctx.srv.scripting.runs_for(ctx.client.id());
    let r = parse(args, in_script, false)?;
    let keys: Vec<&[u8]> = (0..r.n).map(|i| &args[r.streams_at + i]).collect();
    let ids = resolve_ids(ctx, args, &r)?;
    // Collect the keys with news, then reply: one slot is alive at a time,
    // so each key's part is encoded while its slot is held.
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for (key, &after) in keys.iter().zip(&ids) {
        let mut slot = ctx.db.key(key);
        let s = stream::get(&mut slot)?;
        count_lookup(ctx.stats, s.is_some());
        let Some(s) = s else {
            continue;
        };
        if s.edge(true).is_none_or(|e| e.id <= after) {
            continue;
        }
        if let Some(entries) = entries_after(s, after, r.count) {
            let mut part = Reply::new(ctx.out.resp3);
            key_entries(&mut part, key, &entries);
            parts.push(part.buf);
        }
    }
    if !parts.is_empty() {
        keys_reply(ctx.out, parts);
        return Ok(());
    }
    let Some(timeout) = r.block else {
        ctx.out.null_array();
        return Ok(());
    };
    let targets: Vec<(Vec<u8>, StreamId)> = keys.iter().map(|k| k.to_vec()).zip(ids).collect();
    let count = r.count;
    block(
        ctx,
        targets.iter().map(|(k, _)| k.clone()).collect(),
        timeout,
        Box::new(move |sctx: &mut ServeCtx<'_>, key: &[u8], w: &Waiter| {
            let after = targets.iter().find(|(k, _)| k == key)?.1;
            // A read: open the key without marking it changed for WATCH.
            let mut slot = sctx.locks.key(sctx.ks, sctx.db, key, sctx.now_ms);
            let idx = slot.lookup()?;
            let s = stream::of(slot.entry(idx).value())?;
            if s.last_id <= after {
                return None;
            }
            let entries = entries_after(s, after, count)?;
            let mut out = Reply::new(w.resp3);
            keys_header(&mut out, 1);
            key_entries(&mut out, key, &entries);
            Some(Served::reply(out.buf))
        }),
        Vec::new(),
    );
    Ok(())
}
