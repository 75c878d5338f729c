//! Server commands: DBSIZE, TIME, LASTSAVE, SHUTDOWN, BGREWRITEAOF.

use std::sync::atomic::Ordering;

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("dbsize", dbsize),
    ("time", time),
    ("lastsave", lastsave),
    ("shutdown", shutdown),
    ("bgrewriteaof", bgrewriteaof),
];

fn dbsize(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let n = ctx.srv.ks.dbsize(ctx.db.locks, ctx.db.index);
    ctx.out.int(n as i64);
    Ok(())
}

/// TIME: seconds and microseconds, both as bulk strings.
fn time(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_int(now.as_secs() as i64);
    ctx.out.bulk_int(i64::from(now.subsec_micros()));
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out
        .int(ctx.srv.last_save_ms.load(Ordering::Relaxed) / 1000);
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. Nothing is persisted yet,
/// so there is no snapshot to write and no shutdown to wait for: the
/// process exits at once and the client gets no reply, as in Redis.
fn shutdown(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (mut nosave, mut save, mut others, mut abort) = (false, false, false, false);
    for a in args.iter().skip(1) {
        match a.to_ascii_lowercase().as_slice() {
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"now" | b"force" => others = true,
            b"abort" => abort = true,
            _ => return Err(Error::Syntax),
        }
    }
    if (abort && (nosave || save || others)) || (nosave && save) {
        return Err(Error::Syntax);
    }
    if abort {
        return Err(Error::msg("ERR No shutdown in progress."));
    }
    // Past `busy-reply-threshold` a script only lets SHUTDOWN NOSAVE stop
    // the server, as in Redis.
    if !nosave && let Some(busy) = ctx.srv.scripting.busy_message(ctx.srv) {
        return Err(Error::msg(busy));
    }
    crate::warning!("User requested shutdown...");
    let snapshot_configured = ctx.srv.config.save.with(|s| !s.is_empty());
    if save || (snapshot_configured && !nosave) {
        crate::warning!("Not saving a final RDB snapshot: ferrokv has no persistence yet.");
    }
    ctx.srv.exit_now()
}

/// BGREWRITEAOF: a new AOF base and incremental file, in the background.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    match crate::persist::aof::bgrewriteaof(ctx.srv) {
        Ok(msg) => ctx.out.simple(msg),
        Err(e) => return Err(Error::owned(e)),
    }
    Ok(())
}
