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

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. A master with lagging
/// replicas first waits for them (the client blocks meanwhile; see
/// `server::shutdown`). With save points (or SAVE) the dataset is saved
/// first; if that fails the server keeps running and the client gets
/// Redis's error, unless FORCE. Then the process exits at once and the
/// client gets no reply, as in Redis.
fn shutdown(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    use crate::server::shutdown::{Begun, FAILED, Flags};
    let mut flags = Flags::default();
    let (mut abort, mut others) = (false, false);
    for a in args.iter().skip(1) {
        match a.to_ascii_lowercase().as_slice() {
            b"nosave" => flags.nosave = true,
            b"save" => flags.save = true,
            b"now" => {
                others = true;
                flags.now = true;
            }
            b"force" => {
                others = true;
                flags.force = true;
            }
            b"abort" => abort = true,
            _ => return Err(Error::Syntax),
        }
    }
    if (abort && (flags.nosave || flags.save || others)) || (flags.nosave && flags.save) {
        return Err(Error::Syntax);
    }
    if abort {
        if !crate::server::shutdown::abort(ctx.srv) {
            return Err(Error::msg("ERR No shutdown in progress."));
        }
        ctx.out.ok();
        return Ok(());
    }
    // Past `busy-reply-threshold` a script only lets SHUTDOWN NOSAVE stop
    // the server, as in Redis.
    if !flags.nosave
        && let Some(busy) = ctx.srv.scripting.busy_message(ctx.srv)
    {
        return Err(Error::msg(busy));
    }
    // The save takes every shard itself, after the BUSY check (a
    // footprint would wait behind a running script's shards): whatever a
    // transaction held is let go first.
    ctx.db.locks.release();
    let failed = format!("-{FAILED}\r\n").into_bytes();
    let w = crate::blocking::Waiter::new(
        ctx.client.id(),
        ctx.db.index,
        Vec::new(),
        ctx.out.resp3,
        failed,
        Box::new(|_, _, _| None),
        Vec::new(),
    );
    match crate::server::shutdown::begin(ctx.srv, flags, w.clone()) {
        Begun::Exit => ctx.srv.exit_now(),
        Begun::Failed => Err(Error::msg(FAILED)),
        Begun::Waiting => {
            super::blocking::park(ctx, w, None);
            Ok(())
        }
    }
}

/// BGREWRITEAOF: a new AOF base and incremental file, in the background.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    match crate::persist::aof::bgrewriteaof(ctx.srv, ctx.client.in_exec) {
        Ok(msg) => ctx.out.simple(msg),
        Err(e) => return Err(Error::owned(e)),
    }
    Ok(())
}
