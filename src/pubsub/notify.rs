//! Keyspace notifications (`notify-keyspace-events`): every write names
//! its events, published on `__keyspace@<db>__:<key>` (message: the event)
//! and `__keyevent@<db>__:<event>` (message: the key).
//!
//! Design decision: events are derived in one place, from the command that
//! ran, its arguments and the keys' state after it, rather than from the
//! effect record. The effect is the command as it must be replayed and is
//! often rewritten (SET EX becomes SET PXAT, INCRBYFLOAT becomes SET
//! KEEPTTL, a pop that empties a list replays as the pop alone), so it does
//! not carry Redis's event names; the command name does, and the table
//! below maps it. Two facts need the state before the command: which keys
//! DEL/UNLINK actually removed and which key an LMPOP-like pop took (the
//! first non-empty one), so [`before`] records key existence for those.
//! Events the store produces on its own reach [`Notifier`] through the
//! keyspace's event hook: expired keys (lazy and active expiry both go
//! through it) and pops that serve a blocked client (`ServeCtx::emit`,
//! whose effect argv is already the pop's name: LPOP RPOP ZPOPMIN ZPOPMAX
//! LMOVE).

use crate::cmd::Ctx;
use crate::config::notify as class;
use crate::resp::Args;
use crate::server::Server;
use crate::store::KeyEventSink;

/// Whether any notification can be produced at all (one atomic load).
#[inline]
pub fn enabled(srv: &Server) -> bool {
    srv.config.notify_flags() & (class::KEYSPACE | class::KEYEVENT) != 0
}

/// Publishes one event on `key` in `db` if its class is enabled.
pub fn emit(srv: &Server, flags: u32, class_bit: u32, event: &str, key: &[u8], db: usize) {
    if flags & class_bit == 0 {
        return;
    }
    let limits = crate::cmd::pubsub::pubsub_limits(srv);
    let now = crate::server::now_ms();
    if flags & class::KEYSPACE != 0 {
        let mut ch = format!("__keyspace@{db}__:").into_bytes();
        ch.extend_from_slice(key);
        srv.pubsub.publish(&ch, event.as_bytes(), limits, now);
    }
    if flags & class::KEYEVENT != 0 {
        let ch = format!("__keyevent@{db}__:{event}");
        srv.pubsub.publish(ch.as_bytes(), key, limits, now);
    }
}

/// Delivers the events the store produces: `expired` (lazy and active
/// expiry) and the pops that serve blocked clients.
pub struct Notifier(pub &'static Server);

impl KeyEventSink for Notifier {
    fn event(&self, db: usize, class_bit: u32, event: &str, key: &[u8]) {
        let flags = self.0.config.notify_flags();
        emit(self.0, flags, class_bit, event, key, db);
    }
}

/// The keys a command names, for the commands whose events depend on which
/// of them existed before it ran.
fn keys_to_check<'a>(name: &str, args: &Args<'a>) -> Option<Vec<&'a [u8]>> {
    let all: Vec<&[u8]> = args.iter().collect();
    let numkeys_at = |i: usize| -> Option<Vec<&'a [u8]>> {
        let n = crate::util::num::parse_i64(all.get(i)?)? as usize;
        Some(all.get(i + 1..i + 1 + n)?.to_vec())
    };
    match name {
        "del" | "unlink" => Some(all[1..].to_vec()),
        "lmpop" | "zmpop" => numkeys_at(1),
        "blmpop" | "bzmpop" => numkeys_at(2),
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => Some(all[1..all.len() - 1].to_vec()),
        _ => None,
    }
}

/// Existence of the keys [`keys_to_check`] names, before the command runs.
pub fn before(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Option<Vec<bool>> {
    let keys = keys_to_check(ctx.cmd.name, args)?;
    ctx.db.lock_keys(keys.iter().copied());
    Some(
        keys.iter()
            .map(|k| ctx.db.key(k).lookup().is_some())
            .collect(),
    )
}

/// One event to publish: class, event name, key, database.
type Event = (u32, &'static str, Vec<u8>, usize);

/// Publishes the events of the command that just changed data.
pub fn after(ctx: &mut Ctx<'_>, args: &Args<'_>, existed: Option<Vec<bool>>) {
    let events = events_of(ctx, args, existed.as_deref().unwrap_or(&[]));
    let flags = ctx.srv.config.notify_flags();
    for (c, event, key, db) in events {
        emit(ctx.srv, flags, c, event, &key, db);
    }
}

fn has_opt(args: &Args<'_>, from: usize, opts: &[&str]) -> bool {
    args.iter()
        .skip(from)
        .any(|a| opts.iter().any(|o| a.eq_ignore_ascii_case(o.as_bytes())))
}

fn events_of(ctx: &mut Ctx<'_>, args: &Args<'_>, existed: &[bool]) -> Vec<Event> {
    use class::{GENERIC as G, HASH as H, LIST as L, STRING as S, ZSET as Z};
    let db = ctx.db.index;
    let name = ctx.cmd.name;
    let key = |i: usize| args[i].to_vec();
    let mut ev: Vec<Event> = Vec::new();
    // The key a command's first container event is about, then `del` if the
    // command emptied it.
    let mut emptied: Option<Vec<u8>> = None;
    let expire_opts = ["ex", "px", "exat", "pxat"];
    match name {
        "set" => {
            ev.push((S, "set", key(1), db));
            if has_opt(args, 3, &expire_opts) {
                ev.push((G, "expire", key(1), db));
            }
        }
        "setnx" | "getset" => ev.push((S, "set", key(1), db)),
        "setex" | "psetex" => {
            ev.push((S, "set", key(1), db));
            ev.push((G, "expire", key(1), db));
        }
        "mset" | "msetnx" => {
            for i in (1..args.len()).step_by(2) {
                ev.push((S, "set", key(i), db));
            }
        }
        "getdel" => ev.push((G, "del", key(1), db)),
        "getex" => {
            if has_opt(args, 2, &["persist"]) {
                ev.push((G, "persist", key(1), db));
            } else if ctx.db.key(&args[1]).lookup().is_some() {
                ev.push((G, "expire", key(1), db));
            } else {
                ev.push((G, "del", key(1), db));
            }
        }
        "append" | "setrange" | "incrbyfloat" => ev.push((S, name, key(1), db)),
        "incr" | "decr" | "incrby" | "decrby" => ev.push((S, "incrby", key(1), db)),
        "del" | "unlink" => {
            for (i, &e) in existed.iter().enumerate() {
                if e {
                    ev.push((G, "del", key(i + 1), db));
                }
            }
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            let alive = ctx.db.key(&args[1]).lookup().is_some();
            ev.push((G, if alive { "expire" } else { "del" }, key(1), db));
        }
        "persist" => ev.push((G, "persist", key(1), db)),
        "rename" | "renamenx" => {
            ev.push((G, "rename_from", key(1), db));
            ev.push((G, "rename_to", key(2), db));
        }
        "copy" => {
            let to = db_option(args).unwrap_or(db);
            ev.push((G, "copy_to", key(2), to));
        }
        "move" => {
            let to = crate::util::num::parse_i64(&args[2]).unwrap_or(0) as usize;
            ev.push((G, "move_from", key(1), db));
            ev.push((G, "move_to", key(1), to));
        }
        "lpush" | "lpushx" => ev.push((L, "lpush", key(1), db)),
        "rpush" | "rpushx" => ev.push((L, "rpush", key(1), db)),
        "linsert" | "lset" => ev.push((L, name, key(1), db)),
        "lpop" | "rpop" | "lrem" | "ltrim" => {
            ev.push((L, name, key(1), db));
            emptied = Some(key(1));
        }
        "lmove" | "rpoplpush" | "blmove" | "brpoplpush" => {
            let (from, to) = match name {
                "lmove" | "blmove" => (&args[3], &args[4]),
                _ => (&b"RIGHT"[..], &b"LEFT"[..]),
            };
            let push = if to.eq_ignore_ascii_case(b"left") {
                "lpush"
            } else {
                "rpush"
            };
            let pop = if from.eq_ignore_ascii_case(b"left") {
                "lpop"
            } else {
                "rpop"
            };
            ev.push((L, push, key(2), db));
            ev.push((L, pop, key(1), db));
            emptied = Some(key(1));
        }
        "blpop" | "brpop" | "lmpop" | "blmpop" => {
            let Some(i) = existed.iter().position(|&e| e) else {
                return ev;
            };
            let first = if name.starts_with("bl") && name != "blmpop" {
                1
            } else if name == "lmpop" {
                2
            } else {
                3
            };
            let k = key(first + i);
            let left = match name {
                "blpop" => true,
                "brpop" => false,
                _ => args.iter().any(|a| a.eq_ignore_ascii_case(b"left")),
            };
            ev.push((L, if left { "lpop" } else { "rpop" }, k.clone(), db));
            emptied = Some(k);
        }
        "hset" | "hmset" | "hsetnx" => ev.push((H, "hset", key(1), db)),
        "hincrby" | "hincrbyfloat" => ev.push((H, name, key(1), db)),
        "hdel" => {
            ev.push((H, "hdel", key(1), db));
            emptied = Some(key(1));
        }
        "zadd" => {
            let incr = has_opt(args, 2, &["incr"]);
            ev.push((Z, if incr { "zincr" } else { "zadd" }, key(1), db));
        }
        "zincrby" => ev.push((Z, "zincr", key(1), db)),
        "zrem" | "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" | "zpopmin"
        | "zpopmax" => {
            ev.push((Z, name, key(1), db));
            emptied = Some(key(1));
        }
        "bzpopmin" | "bzpopmax" | "zmpop" | "bzmpop" => {
            let Some(i) = existed.iter().position(|&e| e) else {
                return ev;
            };
            let first = match name {
                "zmpop" => 2,
                "bzmpop" => 3,
                _ => 1,
            };
            let k = key(first + i);
            let min = match name {
                "bzpopmin" => true,
                "bzpopmax" => false,
                _ => args.iter().any(|a| a.eq_ignore_ascii_case(b"min")),
            };
            ev.push((Z, if min { "zpopmin" } else { "zpopmax" }, k.clone(), db));
            emptied = Some(k);
        }
        "zunionstore" | "zinterstore" | "zdiffstore" | "zrangestore" => {
            if ctx.db.key(&args[1]).lookup().is_some() {
                ev.push((Z, name, key(1), db));
            } else {
                ev.push((G, "del", key(1), db));
            }
        }
        _ => {}
    }
    if let Some(k) = emptied
        && ctx.db.key(&k).lookup().is_none()
    {
        ev.push((G, "del", k, db));
    }
    ev
}

/// `COPY src dst DB n`: the destination database.
fn db_option(args: &Args<'_>) -> Option<usize> {
    let i = (3..args.len()).find(|&i| args[i].eq_ignore_ascii_case(b"db"))?;
    crate::util::num::parse_i64(args.iter().nth(i + 1)?).map(|n| n as usize)
}
