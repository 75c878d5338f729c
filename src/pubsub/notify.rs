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
        if class_bit == class::NEW && flags & class::NEW != 0 {
            let held = PENDING_NEW.with_borrow_mut(|p| match p {
                Some(keys) => {
                    keys.push((db, key.to_vec()));
                    true
                }
                None => false,
            });
            if held {
                return;
            }
        }
        emit(self.0, flags, class_bit, event, key, db);
    }
}

/// Keys (with their database) whose `new` event is held back.
pub type NewKeys = Vec<(usize, Vec<u8>)>;

thread_local! {
    /// Keys a running command created, whose `new` event waits for the
    /// command's own events (see [`after`]); None outside a command.
    static PENDING_NEW: std::cell::RefCell<Option<NewKeys>> =
        const { std::cell::RefCell::new(None) };
}

/// Starts holding back `new` events for the command about to run; returns
/// what an enclosing command (EVAL, EXEC) held, for [`end_command`].
pub fn begin_command() -> Option<NewKeys> {
    PENDING_NEW.with_borrow_mut(|p| p.replace(Vec::new()))
}

/// Publishes the `new` events [`after`] did not place, and gives the
/// enclosing command its own back.
pub fn end_command(srv: &Server, outer: Option<NewKeys>) {
    let left = PENDING_NEW.with_borrow_mut(|p| std::mem::replace(p, outer));
    let flags = srv.config.notify_flags();
    for (db, key) in left.unwrap_or_default() {
        emit(srv, flags, class::NEW, "new", &key, db);
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
    Some(
        keys.iter()
            .map(|k| ctx.db.key(k).lookup().is_some())
            .collect(),
    )
}

/// `keymiss` for each key a command looked up for reading and did not
/// find, as Redis reports its read lookups: every key of a read command
/// (but OBJECT's), the source keys (read-only key specs) of a write
/// command, and GETEX/GETDEL's key when they changed nothing. The command
/// has run with its keys' shards still held; sources are as it saw them.
/// Keys whose shard it does not hold are not looked at.
pub fn key_misses(ctx: &mut Ctx<'_>, args: &Args<'_>) {
    use crate::cmd::{flags, keyspec};
    let flags = ctx.srv.config.notify_flags();
    let name = ctx.cmd.name;
    if flags & class::KEY_MISS == 0 || name.starts_with("object") {
        return;
    }
    let read_cmd = ctx.cmd.has(flags::READONLY);
    let read_write = matches!(name, "getex" | "getdel") && ctx.dirty == 0;
    if !read_cmd && !read_write && !ctx.cmd.has(flags::WRITE) {
        return;
    }
    let Ok(keys) = keyspec::keys_and_flags(ctx.cmd, args) else {
        return;
    };
    let (srv, db) = (ctx.srv, ctx.db.index);
    let ro = |kf: u32| read_cmd || read_write || kf & keyspec::kflags::RO != 0;
    // A source that is also the destination (SDIFFSTORE d d x) was read
    // before it was written: what it is now says nothing of that read.
    let written: Vec<&[u8]> = keys
        .iter()
        .filter(|(_, kf)| !ro(*kf))
        .map(|&(i, _)| &args[i])
        .collect();
    for (i, kf) in keys {
        let key = &args[i];
        if !ro(kf) || written.contains(&key) {
            continue;
        }
        if ctx.db.locks.holds(&srv.ks, db, key) && ctx.db.key(key).lookup().is_none() {
            emit(srv, flags, class::KEY_MISS, "keymiss", key, db);
        }
    }
}

/// One event to publish: class, event name, key, database.
type Event = (u32, &'static str, Vec<u8>, usize);

/// Publishes the events of the command that just changed data.
pub fn after(ctx: &mut Ctx<'_>, args: &Args<'_>, existed: Option<Vec<bool>>) {
    let events = events_of(ctx, args, existed.as_deref().unwrap_or(&[]));
    let flags = ctx.srv.config.notify_flags();
    // Redis announces a key as `new` when it adds it: before the command's
    // events, except where the command adds keys as it goes (MSET, SMOVE's
    // destination), where each comes right before its key's first event.
    let mut pending = PENDING_NEW.with_borrow_mut(|p| p.as_mut().map(std::mem::take));
    let interleave = matches!(ctx.cmd.name, "mset" | "msetnx" | "smove");
    if let Some(news) = pending.as_mut().filter(|_| !interleave) {
        for (db, key) in news.drain(..) {
            emit(ctx.srv, flags, class::NEW, "new", &key, db);
        }
    }
    for (c, event, key, db) in events {
        if let Some(news) = pending.as_mut()
            && let Some(i) = news.iter().position(|(d, k)| *d == db && *k == key)
        {
            let (d, k) = news.remove(i);
            emit(ctx.srv, flags, class::NEW, "new", &k, d);
        }
        emit(ctx.srv, flags, c, event, &key, db);
    }
    if let Some(news) = pending {
        PENDING_NEW.with_borrow_mut(|p| {
            if let Some(p) = p {
                p.extend(news);
            }
        });
    }
}

fn has_opt(args: &Args<'_>, from: usize, opts: &[&str]) -> bool {
    args.iter()
        .skip(from)
        .any(|a| opts.iter().any(|o| a.eq_ignore_ascii_case(o.as_bytes())))
}

fn events_of(ctx: &mut Ctx<'_>, args: &Args<'_>, existed: &[bool]) -> Vec<Event> {
    use class::{GENERIC as G, HASH as H, LIST as L, SET as T, STRING as S, ZSET as Z};
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
        "setbit" | "bitfield" => ev.push((S, "setbit", key(1), db)),
        "bitop" => {
            if ctx.db.key(&args[2]).lookup().is_some() {
                ev.push((S, "set", key(2), db));
            } else {
                ev.push((G, "del", key(2), db));
            }
        }
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
        "sadd" => ev.push((T, "sadd", key(1), db)),
        "srem" | "spop" => {
            ev.push((T, name, key(1), db));
            emptied = Some(key(1));
        }
        "smove" => {
            ev.push((T, "srem", key(1), db));
            if ctx.db.key(&args[1]).lookup().is_none() {
                ev.push((G, "del", key(1), db));
            }
            if args[1] != args[2] {
                ev.push((T, "sadd", key(2), db));
            }
        }
        "sinterstore" | "sunionstore" | "sdiffstore" => {
            if ctx.db.key(&args[1]).lookup().is_some() {
                ev.push((T, name, key(1), db));
            } else {
                ev.push((G, "del", key(1), db));
            }
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
