//! Keyspace commands.

use super::{CmdResult, Ctx, Handler};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[("del", del)];

fn del(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = args.tail(1);
    ctx.db.lock_keys(keys.iter());
    let mut n = 0;
    for k in keys.iter() {
        if ctx.db.key(k).remove().is_some() {
            n += 1;
        }
    }
    ctx.dirty += n as u64;
    ctx.out.int(n);
    Ok(())
}
