//! Server commands.

use super::{CmdResult, Ctx, Handler};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[("dbsize", dbsize)];

fn dbsize(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let n = ctx.srv.ks.dbsize(ctx.db.index);
    ctx.out.int(n as i64);
    Ok(())
}
