//! XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK]
//! STREAMS key [key ...] id [id ...]
//!
//! `>` delivers entries past the group's last delivered id, moving the
//! cursor and (without NOACK) recording each in the pending entries list
//! as owned by the consumer. An explicit id re-reads the consumer's own
//! pending entries after it, and is always answered at once (BLOCK is
//! ignored; an empty history answers the key with an empty list), as in
//! Redis 7.0.
//! A blocked reader is served when an entry arrives, answered NOGROUP if its group is destroyed and UNBLOCKED
//! if its key is deleted or overwritten.
//!
//! Effect, as Redis 7.0 propagates it (a replica or an AOF replay must not
//! depend on reading the same entries): each entry a `>` read delivered
//! becomes `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID
//! LASTID id`; a NOACK read that delivered entries becomes `XGROUP SETID key
//! group last-id ENTRIESREAD n`, after `XGROUP CREATECONSUMER` when it
//! created the consumer. Reading history publishes nothing.

use super::groups::no_key_or_group;
use super::notify;
use super::read::{count_lookup, keys_header, keys_reply, parse};
use crate::blocking::{ServeCtx, Served, Waiter};
use crate::cmd::blocking::block;
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify::STREAM;
use crate::resp::{Args, Reply};
use crate::types::stream::{self, Stream, StreamId, id};

/// What one key's read is for: `None` is `>`, else the history after it.
type After = Option<StreamId>;

/// The parts of the read that stay fixed.
#[derive(Clone)]
struct Reader {
    group: Vec<u8>,
    consumer: Vec<u8>,
    count: usize,
    noack: bool,
}

pub fn xreadgroup(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let in_script = ctx.srv.scripting.runs_for(ctx.client.id());
    let r = parse(args, in_script, true)?;
    let rd = Reader {
        group: args[r.group_at].to_vec(),
        consumer: args[r.group_at + 1].to_vec(),
        count: r.count,
        noack: r.noack,
    };
    let keys: Vec<&[u8]> = (0..r.n).map(|i| &args[r.streams_at + i]).collect();
    let mut afters = Vec::with_capacity(r.n);
    for (i, key) in keys.iter().enumerate() {
        let mut slot = ctx.db.key(key);
        let s = stream::get(&mut slot)?;
        count_lookup(ctx.stats, s.is_some());
        if !s.is_some_and(|s| s.groups.contains_key(&rd.group)) {
            return Err(no_key_or_group(
                key,
                &rd.group,
                " in XREADGROUP with GROUP option",
            ));
        }
        let arg = &args[r.streams_at + r.n + i];
        afters.push(match arg {
            b">" => None,
            b"$" => return Err(Error::msg(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            )),
            _ => Some(id::parse_id(arg, 0, true)?),
        });
    }
    let now = ctx.db.now_ms;
    let resp3 = ctx.out.resp3;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut records = Vec::new();
    for (key, &after) in keys.iter().zip(&afters) {
        // Redis looks each key up again to read it; it exists (checked
        // above under the same locks).
        ctx.stats.keyspace_hits.add(1);
        let mut slot = ctx.db.key(key);
        let served = stream::with_mut(&mut slot, false, |s| {
            read_key(s, &rd, after, now, resp3, key)
        })?
        .flatten();
        if let Some(read) = served {
            parts.push(read.part);
            records.extend(read.records);
            ctx.dirty += 1;
            if read.created {
                notify(ctx, "xgroup-createconsumer", key);
            }
        }
    }
    if !parts.is_empty() {
        ctx.effect = crate::cmd::Effect::Many(records);
        keys_reply(ctx.out, parts);
        return Ok(());
    }
    let Some(timeout) = r.block else {
        ctx.out.null_array();
        return Ok(());
    };
    let targets: Vec<(Vec<u8>, After)> = keys.iter().map(|k| k.to_vec()).zip(afters).collect();
    block(
        ctx,
        keys.iter().map(|k| k.to_vec()).collect(),
        timeout,
        Box::new(move |sctx: &mut ServeCtx<'_>, key: &[u8], w: &Waiter| {
            let after = targets.iter().find(|(k, _)| k == key)?.1;
            serve_blocked(sctx, key, after, w, &rd)
        }),
        Vec::new(),
    );
    Ok(())
}

/// What reading one key served.
struct Read {
    /// The encoded `[key, entries]` part of the reply.
    part: Vec<u8>,
    /// Whether the read created the consumer.
    created: bool,
    /// The records that replay the read (see the module's doc).
    records: Vec<Vec<Vec<u8>>>,
}

/// Reads one key for the reader, or `None` when the key has nothing to
/// serve (so the consumer is not created either).
fn read_key(
    s: &mut Stream,
    rd: &Reader,
    after: After,
    now: i64,
    resp3: bool,
    key: &[u8],
) -> Option<Read> {
    let mut g = s.groups.remove(&rd.group)?;
    let serve = match after {
        None => s.edge(true).is_some_and(|e| e.id > g.last_id),
        Some(_) => true,
    };
    let out = serve.then(|| {
        let created = g.consumer(&rd.consumer, now).1;
        let mut entries = Reply::new(resp3);
        let mut records = Vec::new();
        let n = match after {
            None => {
                let ids = deliver_new(s, &mut g, rd, now, &mut entries);
                records = replay_records(key, &g, rd, &ids, created, now);
                ids.len()
            }
            Some(after) => replay_history(s, &mut g, rd, after, now, &mut entries),
        };
        let mut part = Reply::new(resp3);
        if !resp3 {
            part.array(2);
        }
        part.bulk(key);
        part.array(n);
        part.buf.extend_from_slice(&entries.buf);
        Read {
            part: part.buf,
            created,
            records,
        }
    });
    s.groups.insert(rd.group.clone(), g);
    out
}

/// The records that make a replica's group what delivering `ids` made
/// this one's: one XCLAIM each, or for NOACK the group's new cursor.
fn replay_records(
    key: &[u8],
    g: &stream::Group,
    rd: &Reader,
    ids: &[StreamId],
    created: bool,
    now: i64,
) -> Vec<Vec<Vec<u8>>> {
    let word = |w: &[u8]| w.to_vec();
    if rd.noack {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(2);
        if created {
            out.push(vec![
                word(b"XGROUP"),
                word(b"CREATECONSUMER"),
                key.to_vec(),
                rd.group.clone(),
                rd.consumer.clone(),
            ]);
        }
        out.push(vec![
            word(b"XGROUP"),
            word(b"SETID"),
            key.to_vec(),
            rd.group.clone(),
            g.last_id.to_bytes(),
            word(b"ENTRIESREAD"),
            g.entries_read.unwrap_or(-1).to_string().into_bytes(),
        ]);
        return out;
    }
    ids.iter()
        .map(|id| {
            let id = id.to_bytes();
            vec![
                word(b"XCLAIM"),
                key.to_vec(),
                rd.group.clone(),
                rd.consumer.clone(),
                word(b"0"),
                id.clone(),
                word(b"TIME"),
                now.to_string().into_bytes(),
                word(b"RETRYCOUNT"),
                word(b"1"),
                word(b"FORCE"),
                word(b"JUSTID"),
                word(b"LASTID"),
                id,
            ]
        })
        .collect()
}

/// `>`: the entries past the group's cursor, each moved into the PEL;
/// their ids.
fn deliver_new(
    s: &Stream,
    g: &mut stream::Group,
    rd: &Reader,
    now: i64,
    out: &mut Reply,
) -> Vec<StreamId> {
    let Some(start) = g.last_id.next() else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    s.range(start, StreamId::MAX, false, rd.count, |e| {
        super::reply_entry(out, &e);
        ids.push(e.id);
    });
    for &id in &ids {
        s.advance_group(g, id);
        if !rd.noack {
            g.deliver(id, &rd.consumer, now, 1);
        }
    }
    if let Some(c) = g.consumers.get_mut(&rd.consumer) {
        c.seen_time = now;
    }
    ids
}

/// An explicit id: the consumer's pending entries after it, each counted
/// as delivered again; an entry deleted since shows as `[id, nil]`.
fn replay_history(
    s: &Stream,
    g: &mut stream::Group,
    rd: &Reader,
    after: StreamId,
    now: i64,
    out: &mut Reply,
) -> usize {
    let Some(start) = after.next() else {
        return 0;
    };
    let c = g.consumers.get_mut(&rd.consumer).expect("created");
    c.seen_time = now;
    let mine: Vec<StreamId> = c
        .pel
        .range(start..)
        .take(if rd.count == 0 { usize::MAX } else { rd.count })
        .copied()
        .collect();
    for &id in &mine {
        let mut found = false;
        s.range(id, id, false, 1, |e| {
            super::reply_entry(out, &e);
            found = true;
        });
        if found {
            if let Some(p) = g.pel.get_mut(&id) {
                p.delivery_time = now;
                p.delivery_count += 1;
            }
        } else {
            out.array(2);
            out.bulk(&id.to_bytes());
            out.null_array();
        }
    }
    mine.len()
}

/// Serves a blocked reader from `key` once the stream grew past what it
/// waits for: new entries for `>`, else its history after its id (which
/// an empty stream could not serve when it blocked).
fn serve_blocked(
    sctx: &mut ServeCtx<'_>,
    key: &[u8],
    after: After,
    w: &Waiter,
    rd: &Reader,
) -> Option<Served> {
    let now = sctx.now_ms;
    let mut slot = sctx.key(key);
    let s = slot
        .lookup()
        .and_then(|idx| stream::of(slot.entry(idx).value()));
    let fail = |msg: &str| {
        let mut out = Reply::new(w.resp3);
        out.error(msg);
        Some(Served::reply(out.buf))
    };
    let Some(s) = s else {
        return fail("UNBLOCKED the stream key no longer exists");
    };
    let Some(g) = s.groups.get(&rd.group) else {
        return fail("NOGROUP the consumer group this client was blocked on no longer exists");
    };
    if s.last_id <= after.unwrap_or(g.last_id) {
        return None;
    }
    let read = stream::with_mut(&mut slot, false, |s| {
        read_key(s, rd, after, now, w.resp3, key)
    })
    .ok()
    .flatten()
    .flatten()?;
    for r in &read.records {
        let argv: Vec<&[u8]> = r.iter().map(|a| a.as_slice()).collect();
        sctx.effect(&argv);
    }
    if read.created {
        sctx.event(STREAM, "xgroup-createconsumer", key);
    }
    let mut out = Reply::new(w.resp3);
    keys_header(&mut out, 1);
    out.buf.extend_from_slice(&read.part);
    Some(Served::reply(out.buf))
}
