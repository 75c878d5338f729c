//! String commands.

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::store::{Object, Value, ValueRef};

pub const COMMANDS: &[(&str, Handler)] = &[("get", get), ("set", set)];

/// Writes a string value as a bulk reply, or fails with WRONGTYPE.
pub fn reply_string(out: &mut crate::resp::Reply, v: ValueRef<'_>) -> CmdResult {
    match v {
        ValueRef::Bytes(b) => out.bulk(b),
        ValueRef::Int(n) => out.bulk_int(n),
        ValueRef::Obj(Object::Str(s)) => out.bulk(s),
        #[allow(unreachable_patterns)]
        ValueRef::Obj(_) | ValueRef::Packed(..) => return Err(Error::WrongType),
    }
    Ok(())
}

fn get(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    match slot.get() {
        Some(e) => {
            ctx.stats.keyspace_hits.add(1);
            reply_string(ctx.out, e.value())
        }
        None => {
            ctx.stats.keyspace_misses.add(1);
            ctx.out.null();
            Ok(())
        }
    }
}

fn set(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(Error::Syntax);
    }
    let mut slot = ctx.db.key(&args[1]);
    slot.set(Value::from_string(&args[2]), None);
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}
