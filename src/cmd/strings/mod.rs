//! String commands.
//!
//! Values are stored in the representation Redis would choose, so that
//! OBJECT ENCODING matches: `Value::from_string` (int / embstr / raw) for
//! whole values, `Value::Int` after INCR and friends, and `Object::Str`
//! (raw, edited in place) once APPEND or SETRANGE touched a value.

mod bits;
mod edit;
pub(crate) use edit::edit_in_place;
mod lcs;
pub(crate) mod numeric;
mod set;

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::resp::{Args, Reply};
use crate::server::stats::ThreadStats;
use crate::store::{KeySlot, Object, ValueRef};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("get", get),
    ("getdel", getdel),
    ("getset", getset),
    ("mget", mget),
    ("set", set::set),
    ("setnx", set::setnx),
    ("setex", set::setex),
    ("psetex", set::psetex),
    ("getex", set::getex),
    ("mset", set::mset),
    ("msetnx", set::msetnx),
    ("incr", numeric::incr),
    ("decr", numeric::decr),
    ("incrby", numeric::incrby),
    ("decrby", numeric::decrby),
    ("incrbyfloat", numeric::incrbyfloat),
    ("append", edit::append),
    ("setrange", edit::setrange),
    ("getrange", edit::getrange),
    ("substr", edit::getrange),
    ("strlen", edit::strlen),
    ("lcs", lcs::lcs),
    ("setbit", bits::setbit),
    ("getbit", bits::getbit),
    ("bitcount", bits::bitcount),
    ("bitpos", bits::bitpos),
    ("bitop", bits::bitop),
    ("bitfield", bits::bitfield),
    ("bitfield_ro", bits::bitfield_ro),
];

/// A string value as the commands see it: bytes, or an integer-encoded value.
#[derive(Clone, Copy)]
pub enum Str<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl<'a> Str<'a> {
    /// The string behind a stored value, or WRONGTYPE.
    pub fn of(v: ValueRef<'a>) -> Result<Str<'a>, Error> {
        match v {
            ValueRef::Bytes(b) => Ok(Str::Bytes(b)),
            ValueRef::Int(n) => Ok(Str::Int(n)),
            ValueRef::Obj(Object::Str(s)) => Ok(Str::Bytes(s)),
            #[allow(unreachable_patterns)]
            ValueRef::Obj(_) | ValueRef::Packed(..) => Err(Error::WrongType),
        }
    }

    /// Length in bytes (the decimal digits of an integer).
    pub fn len(&self) -> usize {
        match *self {
            Str::Bytes(b) => b.len(),
            Str::Int(n) => itoa::Buffer::new().format(n).len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Str::Bytes(b) if b.is_empty())
    }

    /// Runs `f` over the bytes, formatting an integer on the stack.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Str::Bytes(b) => f(b),
            Str::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    fn reply(&self, out: &mut Reply) {
        match *self {
            Str::Bytes(b) => out.bulk(b),
            Str::Int(n) => out.bulk_int(n),
        }
    }
}

/// Writes a string value as a bulk reply, or fails with WRONGTYPE.
pub fn reply_string(out: &mut Reply, v: ValueRef<'_>) -> CmdResult {
    Str::of(v)?.reply(out);
    Ok(())
}

/// The live slot of the key, marked as accessed (Redis's lookupKey).
fn find(slot: &mut KeySlot<'_, '_>) -> Option<usize> {
    let idx = slot.lookup()?;
    slot.touch(idx);
    Some(idx)
}

/// Counts a keyspace hit or miss while the key's slot is still borrowed
/// (the same counters as `Ctx::hit`).
fn hit(stats: &ThreadStats, found: bool) {
    if found {
        stats.keyspace_hits.add(1);
    } else {
        stats.keyspace_misses.add(1);
    }
}

/// GET's lookup: replies the value (or null) and returns the slot of the
/// key if it holds a string. Shared by GET, GETDEL, GETSET and SET ... GET.
fn get_generic(
    slot: &mut KeySlot<'_, '_>,
    out: &mut Reply,
    stats: &ThreadStats,
) -> Result<Option<usize>, Error> {
    let idx = find(slot);
    hit(stats, idx.is_some());
    match idx {
        Some(i) => reply_string(out, slot.entry(i).value())?,
        None => out.null(),
    }
    Ok(idx)
}

fn get(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    get_generic(&mut slot, ctx.out, ctx.stats)?;
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    if let Some(idx) = get_generic(&mut slot, ctx.out, ctx.stats)? {
        drop(slot.remove_at(idx));
        ctx.dirty += 1;
        ctx.event(class::GENERIC, "del", &args[1]);
        ctx.rewrite_effect(vec![b"DEL".to_vec(), args[1].to_vec()]);
    }
    Ok(())
}

fn getset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    get_generic(&mut slot, ctx.out, ctx.stats)?;
    slot.set(crate::store::Value::from_string(&args[2]), None);
    ctx.dirty += 1;
    ctx.event(class::STRING, "set", &args[1]);
    ctx.rewrite_effect(vec![b"SET".to_vec(), args[1].to_vec(), args[2].to_vec()]);
    Ok(())
}

fn mget(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = args.tail(1);
    ctx.out.array(keys.len());
    for key in keys.iter() {
        let mut slot = ctx.db.key(key);
        let idx = find(&mut slot);
        hit(ctx.stats, idx.is_some());
        // A key of another type reads as missing here, not as an error.
        match idx.map(|i| Str::of(slot.entry(i).value())) {
            Some(Ok(s)) => s.reply(ctx.out),
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
