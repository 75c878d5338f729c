//! Connection commands.

use super::{CmdResult, Ctx, Handler};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[("ping", ping), ("quit", quit)];

fn ping(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => return Err(super::Error::WrongArity("ping".into())),
    }
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}
