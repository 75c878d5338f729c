//! Keyspace commands: deleting, testing, listing, renaming and moving keys,
//! and the database-wide FLUSHDB / FLUSHALL / SWAPDB.
//!
//! The expiry commands live in [`super::expire`], OBJECT in [`super::object`].

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::resp::Args;
use crate::store::{Entry, EntryRef, Value, ValueRef};
use crate::util::glob::glob_match;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("del", del),
    ("unlink", del),
    ("exists", exists),
    ("touch", touch),
    ("type", type_cmd),
    ("keys", keys),
    ("scan", scan),
    ("randomkey", randomkey),
    ("rename", rename),
    ("renamenx", renamenx),
    ("copy", copy),
    ("move", move_cmd),
    ("swapdb", swapdb),
    ("flushdb", flushdb),
    ("flushall", flushall),
];

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";

/// The name TYPE replies for an entry.
pub fn type_name(e: &EntryRef<'_>) -> &'static str {
    e.value().type_name()
}

/// A database number as MOVE and COPY ... DB take it: an `int`, then a
/// range check against the configured number of databases.
pub fn parse_db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, Error> {
    let n = parse_i64(arg).ok_or(Error::NotInteger)?;
    if i32::try_from(n).is_err() {
        return Err(Error::msg(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    if n < 0 || n as usize >= ctx.srv.ks.db_count() {
        return Err(Error::msg(DB_OUT_OF_RANGE));
    }
    Ok(n as usize)
}

/// DEL and UNLINK (freeing is cheap enough to do inline for both).
/// DEL and UNLINK. UNLINK (and DEL under `lazyfree-lazy-user-del`) frees
/// big values in the background.
fn del(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = args.tail(1);
    let lazy = ctx.cmd.name == "unlink" || ctx.srv.config.lazyfree_lazy_user_del.get();
    let mut n = 0;
    for k in keys.iter() {
        if let Some(entry) = ctx.db.key(k).remove() {
            if lazy {
                crate::server::evict::free_unlinked(entry);
            }
            n += 1;
            ctx.event(class::GENERIC, "del", k);
        }
    }
    ctx.dirty += n as u64;
    ctx.out.int(n);
    Ok(())
}

/// EXISTS counts a key once per time it is named.
fn exists(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_live(ctx, args, false)
}

/// TOUCH: like EXISTS, but marks each key as accessed.
fn touch(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_live(ctx, args, true)
}

fn count_live(ctx: &mut Ctx<'_>, args: &Args<'_>, touch: bool) -> CmdResult {
    let keys = args.tail(1);
    let mut n = 0;
    for k in keys.iter() {
        let mut slot = ctx.db.key(k);
        let found = if touch {
            slot.get().is_some()
        } else {
            slot.lookup().is_some()
        };
        ctx.hit(found);
        n += found as i64;
    }
    ctx.out.int(n);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let name = match slot.lookup() {
        Some(i) => type_name(&slot.entry(i)),
        None => "none",
    };
    ctx.hit(name != "none");
    ctx.out.simple(name);
    Ok(())
}

fn keys(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let pattern = &args[1];
    let all = pattern == b"*";
    let now = ctx.db.now_ms;
    let ks = &ctx.srv.ks;
    let mut found: Vec<Vec<u8>> = Vec::new();
    // One shard at a time: other clients keep running between shards.
    for s in 0..ks.shard_count() {
        ctx.db.locks.with_shard(ks, ctx.db.index, s, |shard| {
            found.extend(
                shard
                    .table()
                    .iter()
                    .filter(|e| !e.is_expired(now) && (all || glob_match(pattern, e.key(), false)))
                    .map(|e| e.key().to_vec()),
            );
        });
    }
    ctx.out.bulk_array(found.iter().map(|k| k.as_slice()));
    Ok(())
}

/// A SCAN cursor as Redis reads it (`strtoul`): no leading space, an
/// optional sign (a negative value wraps), decimal digits, and nothing after
/// them; text after a NUL byte is never looked at. The empty string is 0.
pub(crate) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = arg.split(|&b| b == 0).next().unwrap_or_default();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        Some(_) => (false, s),
        None => return Some(0),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn scan(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let cursor = parse_cursor(&args[1]).ok_or(Error::msg("ERR invalid cursor"))?;
    let mut count = 10i64;
    let mut pattern: Option<&[u8]> = None;
    let mut type_filter: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        let has_value = args.len() - i >= 2;
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            count = parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
            if count < 1 {
                return Err(Error::Syntax);
            }
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(&args[i + 1]).filter(|p| *p != b"*");
        } else if opt.eq_ignore_ascii_case(b"type") && has_value {
            type_filter = Some(&args[i + 1]);
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = ctx.srv.ks.scan(
        ctx.db.locks,
        ctx.db.index,
        cursor,
        count as usize,
        ctx.db.now_ms,
        |e| {
            let wanted = pattern.is_none_or(|p| glob_match(p, e.key(), false))
                && type_filter.is_none_or(|t| t.eq_ignore_ascii_case(type_name(&e).as_bytes()));
            if wanted {
                found.push(e.key().to_vec());
            }
        },
    );
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.bulk_array(found.iter().map(|k| k.as_slice()));
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    match ctx
        .srv
        .ks
        .random_key(ctx.db.locks, ctx.db.index, ctx.db.now_ms)
    {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// RENAME / RENAMENX: the value moves with its deadline and access time.
fn rename_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, nx: bool) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    // A write lookup marks the key accessed; the access time moves with it.
    if ctx.db.key(src).get().is_none() {
        return Err(Error::NoSuchKey);
    }
    let done = |ctx: &mut Ctx<'_>, renamed: bool| {
        if nx {
            ctx.out.int(renamed as i64);
        } else {
            ctx.out.ok();
        }
        Ok(())
    };
    if src == dst {
        return done(ctx, false);
    }
    {
        let mut target = ctx.db.key(dst);
        if let Some(i) = target.lookup() {
            if nx {
                return done(ctx, false);
            }
            target.remove_at(i);
        }
    }
    let entry = ctx
        .db
        .key(src)
        .remove()
        .expect("source checked above, under lock");
    ctx.db.key(dst).insert_entry(entry.rekeyed(dst));
    ctx.dirty += 1;
    ctx.event(class::GENERIC, "rename_from", src);
    ctx.event(class::GENERIC, "rename_to", dst);
    done(ctx, true)
}

/// COPY source destination [DB n] [REPLACE]
fn copy(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let src_db = ctx.db.index;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            dst_db = parse_db_index(ctx, &args[i + 1])?;
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if src_db == dst_db && src == dst {
        return Err(Error::msg(SAME_OBJECT));
    }
    // The copy is built while the source is borrowed, then inserted.
    let copied = {
        let mut slot = ctx.db.key_in(src_db, src);
        let lru = crate::store::evict::fresh_access(slot.now_ms());
        slot.get().map(|e| copy_entry(&e, dst, lru))
    };
    ctx.hit(copied.is_some());
    let Some(copied) = copied else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut target = ctx.db.key_in(dst_db, dst);
    if let Some(i) = target.lookup() {
        if !replace {
            ctx.out.int(0);
            return Ok(());
        }
        target.remove_at(i);
    }
    target.insert_entry(copied);
    ctx.dirty += 1;
    ctx.event_in(dst_db, class::GENERIC, "copy_to", dst);
    ctx.out.int(1);
    Ok(())
}

/// A fresh entry named `key` holding a copy of `e`'s value and deadline.
fn copy_entry(e: &EntryRef<'_>, key: &[u8], lru: u32) -> Entry {
    let value = match e.value() {
        ValueRef::Bytes(bytes) => Value::Bytes {
            bytes,
            raw: e.is_raw_flagged(),
        },
        ValueRef::Int(n) => Value::Int(n),
        ValueRef::Obj(o) => Value::Obj(Box::new(o.clone())),
        ValueRef::Packed(p, bytes) => Value::Packed(p, bytes),
    };
    Entry::new(key, value, e.expire(), lru)
}

/// MOVE key db: only when the key exists here and not there.
fn move_cmd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = &args[1];
    let dst_db = parse_db_index(ctx, &args[2])?;
    let src_db = ctx.db.index;
    if src_db == dst_db {
        return Err(Error::msg(SAME_OBJECT));
    }
    let moved =
        ctx.db.key_in(src_db, key).get().is_some() && ctx.db.key_in(dst_db, key).lookup().is_none();
    if moved {
        let entry = ctx
            .db
            .key_in(src_db, key)
            .remove()
            .expect("checked under lock");
        ctx.db.key_in(dst_db, key).insert_entry(entry);
        ctx.dirty += 1;
        ctx.event_in(src_db, class::GENERIC, "move_from", key);
        ctx.event_in(dst_db, class::GENERIC, "move_to", key);
    }
    ctx.out.int(moved as i64);
    Ok(())
}

fn swapdb(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let index = |arg: &[u8], what: &'static str| {
        parse_i64(arg)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or(Error::msg(what))
    };
    let a = index(&args[1], "ERR invalid first DB index")?;
    let b = index(&args[2], "ERR invalid second DB index")?;
    let dbs = ctx.srv.ks.db_count() as i64;
    if !(0..dbs).contains(&a) || !(0..dbs).contains(&b) {
        return Err(Error::msg(DB_OUT_OF_RANGE));
    }
    ctx.srv.ks.swap_dbs(ctx.db.locks, a as usize, b as usize);
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

/// FLUSHDB / FLUSHALL take one optional ASYNC or SYNC.
fn flush_mode(args: &Args<'_>) -> Result<bool, Error> {
    match args.len() {
        1 => Ok(false),
        2 if args[1].eq_ignore_ascii_case(b"sync") => Ok(false),
        2 if args[1].eq_ignore_ascii_case(b"async") => Ok(true),
        _ => Err(Error::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lazy = flush_mode(args)?;
    let ks = &ctx.srv.ks;
    let removed = ks.dbsize(ctx.db.locks, ctx.db.index);
    ks.flush_db(ctx.db.locks, ctx.db.index, lazy);
    crate::pubsub::tracking::flushed(ctx.srv);
    // Always published, even on an empty database, as Redis does.
    ctx.dirty += removed as u64 + 1;
    ctx.out.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lazy = flush_mode(args)?;
    let ks = &ctx.srv.ks;
    let mut removed = 0;
    let all: Vec<usize> = (0..ks.db_count()).collect();
    // Every database at once: FLUSHALL is atomic for other clients.
    for db in all {
        removed += ks.dbsize(ctx.db.locks, db);
        ks.flush_db(ctx.db.locks, db, lazy);
    }
    crate::pubsub::tracking::flushed(ctx.srv);
    // As Redis: a running BGSAVE is stopped (it would write the old data)
    // and, with save points, the empty dataset is saved at once.
    crate::persist::bgsave::abort_running(ctx.srv);
    crate::server::repl_sync::abort_running();
    ctx.dirty += removed as u64 + 1;
    if crate::persist::save::save_points_configured(ctx.srv) {
        // The change counter ends at 0 then, as in Redis (the effect and
        // WATCH still see the change).
        ctx.saved = crate::persist::save::save(ctx.srv, ctx.db.locks).is_ok();
    }
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursor_follows_strtoul() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"5\0junk"), Some(5));
        for bad in [
            &b"18446744073709551616"[..],
            b" 0",
            b"0 ",
            b"-",
            b"+",
            b"1e3",
            b"0x10",
            b"x",
        ] {
            assert_eq!(
                parse_cursor(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
