//! Server commands: DBSIZE, TIME, LASTSAVE, SHUTDOWN, BGREWRITEAOF (SAVE is
//! in [`super::dump`]).

use std::sync::atomic::Ordering;

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("dbsize", dbsize),
    ("time", time),
    ("lastsave", lastsave),
    ("shutdown", shutdown),
    ("bgrewriteaof", bgrewriteaof),
    ("role", role),
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

/// ROLE: a replica's link (`server::replica`), or a master at its
/// replication offset with its attached replicas (address, announced
/// port, acknowledged offset).
fn role(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if crate::server::replica::role(ctx.out) {
        return Ok(());
    }
    let replicas = crate::server::repl::addresses();
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(crate::server::repl::master_offset());
    ctx.out.array(replicas.len());
    for (ip, port, off) in replicas {
        ctx.out.array(3);
        ctx.out.bulk(ip.as_bytes());
        ctx.out.bulk(port.to_string().as_bytes());
        ctx.out.bulk(off.to_string().as_bytes());
    }
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out
        .int(ctx.srv.last_save_ms.load(Ordering::Relaxed) / 1000);
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. With save points (or
/// SAVE) the dataset is saved first, under every shard's lock; if that
/// fails the server keeps running and the client gets Redis's error,
/// unless FORCE. Then the process exits at once and the client gets no
/// reply, as in Redis.
fn shutdown(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (mut nosave, mut save, mut others, mut abort, mut force) =
        (false, false, false, false, false);
    for a in args.iter().skip(1) {
        match a.to_ascii_lowercase().as_slice() {
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"now" => others = true,
            b"force" => {
                others = true;
                force = true;
            }
            b"abort" => abort = true,
            _ => return Err(Error::Syntax),
        }
    }
    if (abort && (nosave || save || others)) || (nosave && save) {
        return Err(Error::Syntax);
    }
    if abort {
        if !crate::server::shutdown::abort() {
            return Err(Error::msg("ERR No shutdown in progress."));
        }
        ctx.out.ok();
        return Ok(());
    }
    // Past `busy-reply-threshold` a script only lets SHUTDOWN NOSAVE stop
    // the server, as in Redis.
    if !nosave && let Some(busy) = ctx.srv.scripting.busy_message(ctx.srv) {
        return Err(Error::msg(busy));
    }
    crate::warning!("User requested shutdown...");
    // A running BGSAVE is stopped first (it walks shards: nothing held).
    ctx.db.locks.release();
    crate::persist::bgsave::abort_and_wait(ctx.srv);
    // As Redis: never a save while loading (it would replace the file
    // with part of it).
    if ctx.srv.persist.loading.active() {
        (save, nosave) = (false, true);
    }
    if save || (crate::persist::save::save_points_configured(ctx.srv) && !nosave) {
        crate::notice!("Saving the final RDB snapshot before exiting.");
        // Every shard is taken here, after the BUSY check (a footprint
        // would wait behind a running script's shards). Whatever a
        // transaction held is let go first: the process is about to end.
        ctx.db.locks.release();
        if crate::persist::save::save_all(ctx.srv).is_err() && !force {
            crate::warning!("Error trying to save the DB, can't exit.");
            return Err(Error::msg("ERR Errors trying to SHUTDOWN. Check logs."));
        }
    }
    ctx.srv.exit_now()
}

/// BGREWRITEAOF: a new AOF base and incremental file, in the background.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    match crate::persist::aof::bgrewriteaof(ctx.srv, ctx.client.in_exec) {
        Ok(msg) => ctx.out.simple(msg),
        Err(e) => return Err(Error::owned(e)),
    }
    Ok(())
}
