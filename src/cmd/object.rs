//! OBJECT ENCODING / FREQ / IDLETIME / REFCOUNT / HELP: what Redis would
//! report about a key's value.

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::store::{EntryRef, ValueRef};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("object|encoding", encoding),
    ("object|freq", freq),
    ("object|idletime", idletime),
    ("object|refcount", refcount),
    ("object|help", help),
];

/// Redis shares one object for each integer below this (refcount reported as
/// i32::MAX) unless an LRU/LFU eviction policy with a memory limit is active.
const SHARED_INTEGERS: i64 = 10_000;
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// The eviction policy, when the configuration knows one (`noeviction` otherwise).
fn maxmemory_policy(ctx: &Ctx<'_>) -> String {
    ctx.srv
        .config
        .params()
        .iter()
        .find(|p| p.name == "maxmemory-policy")
        .map(crate::config::Config::get_value)
        .unwrap_or_else(|| "noeviction".to_string())
}

fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    maxmemory_policy(ctx).ends_with("-lfu")
}

/// Runs `f` on the key's entry without marking it accessed; a missing key
/// replies null.
fn with_entry(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&EntryRef<'_>) -> Reply,
) -> Option<Reply> {
    let mut slot = ctx.db.key(key);
    let out = slot.lookup().map(|i| f(&slot.entry(i)));
    ctx.hit(out.is_some());
    if out.is_none() {
        ctx.out.null();
    }
    out
}

/// What a subcommand answers about an entry (computed under the shard lock).
enum Reply {
    Bulk(&'static str),
    Int(i64),
}

fn write(ctx: &mut Ctx<'_>, r: Option<Reply>) -> CmdResult {
    match r {
        Some(Reply::Bulk(s)) => ctx.out.bulk(s.as_bytes()),
        Some(Reply::Int(n)) => ctx.out.int(n),
        None => {}
    }
    Ok(())
}

/// The encoding name Redis gives a value.
pub fn encoding_name(e: &EntryRef<'_>) -> &'static str {
    match e.value() {
        ValueRef::Int(_) => "int",
        ValueRef::Bytes(_) if e.is_raw_flagged() => "raw",
        ValueRef::Bytes(_) => "embstr",
        ValueRef::Obj(o) => o.encoding(),
        ValueRef::Packed(p, _) => p.encoding(),
    }
}

fn encoding(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let r = with_entry(ctx, &args[2], |e| Reply::Bulk(encoding_name(e)));
    write(ctx, r)
}

fn freq(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lfu = lfu_policy(ctx);
    let now_ms = ctx.db.now_ms;
    let mut slot = ctx.db.key(&args[2]);
    let field = slot.lookup().map(|idx| slot.entry(idx).lru());
    ctx.hit(field.is_some());
    let Some(field) = field else {
        ctx.out.null();
        return Ok(());
    };
    if !lfu {
        return Err(Error::msg(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
             Please note that when switching between policies at runtime LRU and LFU data \
             will take some time to adjust.",
        ));
    }
    ctx.out
        .int(crate::store::evict::lfu_counter(field, now_ms) as i64);
    Ok(())
}

fn idletime(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lfu = lfu_policy(ctx);
    let now_s = (ctx.db.now_ms / 1000) as u32;
    let r = with_entry(ctx, &args[2], |e| {
        Reply::Int(now_s.saturating_sub(e.lru()) as i64)
    });
    if r.is_some() && lfu {
        return Err(Error::msg(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. \
             Please note that when switching between policies at runtime LRU and LFU data \
             will take some time to adjust.",
        ));
    }
    write(ctx, r)
}

fn refcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let policy = maxmemory_policy(ctx);
    let shared_allowed = ctx.srv.config.maxmemory.get() == 0
        || !(policy.ends_with("-lru") || policy.ends_with("-lfu"));
    let r = with_entry(ctx, &args[2], |e| {
        Reply::Int(match e.value() {
            ValueRef::Int(n) if shared_allowed && (0..SHARED_INTEGERS).contains(&n) => {
                SHARED_REFCOUNT
            }
            _ => 1,
        })
    });
    write(ctx, r)
}

const HELP: &[&str] = &[
    "ENCODING <key>",
    "    Name the internal representation that holds the value stored at <key>.",
    "FREQ <key>",
    "    Report the logarithmic access frequency counter of <key> (LFU policies only).",
    "IDLETIME <key>",
    "    Report roughly how many seconds passed since <key> was last read or written.",
    "REFCOUNT <key>",
    "    Report how many references point at the value stored at <key>.",
];

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help("OBJECT", HELP);
    Ok(())
}
