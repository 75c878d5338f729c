//! SYNC, PSYNC and REPLCONF: a client attaches as a replica
//! (`server::repl` holds the stream); REPLICAOF NO ONE, the only form
//! ferrokv supports. PSYNC always answers with a full
//! resynchronization: there is no backlog to continue from.

use super::{CmdResult, Ctx, Error, Handler};
use crate::persist::rdb::write;
use crate::resp::Args;
use crate::server::client::list_flags;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("sync", sync),
    ("psync", psync),
    ("replconf", replconf),
    ("replicaof", replicaof),
    ("slaveof", replicaof),
];

/// REPLICAOF NO ONE: ferrokv is always a master, so there is nothing to
/// stop. Following a master is not implemented: an explicit error rather
/// than a server that claims to replicate and does not.
fn replicaof(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        ctx.effect = super::Effect::Nothing;
        ctx.out.ok();
        return Ok(());
    }
    Err(Error::msg(
        "ERR REPLICAOF <host> <port> is not supported: ferrokv cannot replicate from a master",
    ))
}

fn sync(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    full_sync(ctx, b"")
}

fn psync(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    // The requested id and offset never match a backlog: full sync.
    let line = format!("+FULLRESYNC {} 0\r\n", super::info::replid());
    full_sync(ctx, line.as_bytes())
}

/// The footprint holds every shard, so the snapshot and the start of the
/// stream are one instant.
fn full_sync(ctx: &mut Ctx<'_>, preamble: &[u8]) -> CmdResult {
    let info = &ctx.client.info;
    if info.has_flag(list_flags::REPLICA) {
        return Ok(());
    }
    ctx.effect = super::Effect::Nothing;
    let rdb = if info.has_flag(list_flags::REPL_FUNCTIONS_ONLY) {
        functions_only(ctx)
    } else {
        crate::persist::save::serialize(ctx.srv, ctx.db.locks)
    };
    crate::notice!("Replica {} asks for synchronization", info.addr);
    if info.has_flag(list_flags::REPL_RDB_ONLY) {
        // The dataset only, then the connection closes (redis-cli --rdb).
        ctx.out.buf.extend_from_slice(preamble);
        crate::persist::aof::encode::header(&mut ctx.out.buf, b'$', rdb.len());
        ctx.out.buf.extend_from_slice(&rdb);
        ctx.client.close_after_reply = true;
        return Ok(());
    }
    crate::server::repl::attach(ctx.srv, ctx.client, preamble, &rdb);
    Ok(())
}

/// An RDB file holding the function libraries and no keys.
fn functions_only(ctx: &Ctx<'_>) -> Vec<u8> {
    let srv = ctx.srv;
    let mut out = Vec::new();
    let now = crate::server::now_ms();
    write::write_header(&mut out, now / 1000, crate::alloc::used_memory(), false);
    let opts = write::Opts {
        compress: srv.config.rdbcompression.get(),
    };
    for code in srv.scripting.functions.codes() {
        write::write_function(&mut out, &code, opts);
    }
    write::write_footer(&mut out, srv.config.rdbchecksum.get());
    out
}

/// REPLCONF <option> <value> ...: what a replica tells its master. ACK and
/// GETACK get no reply (there are no offsets to track).
fn replconf(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(Error::msg("ERR syntax error"));
    }
    let info = &ctx.client.info;
    let mut j = 1;
    while j < args.len() {
        let (opt, val) = (&args[j], &args[j + 1]);
        match opt.to_ascii_lowercase().as_slice() {
            b"listening-port" => {
                let port = crate::util::num::parse_i64(val)
                    .ok_or(Error::msg("ERR value is not an integer or out of range"))?;
                crate::server::repl::announce_port(info, port.clamp(0, 65535) as u16);
            }
            b"ip-address" | b"capa" => {}
            b"ack" => {
                if info.has_flag(list_flags::REPLICA) {
                    crate::server::repl::ack(info.id);
                }
                return Ok(());
            }
            b"getack" => return Ok(()),
            b"rdb-only" => {
                let v = crate::util::num::parse_i64(val)
                    .ok_or(Error::msg("ERR value is not an integer or out of range"))?;
                if !(0..=1).contains(&v) {
                    return Err(Error::msg(
                        "ERR value is out of range, value must between 0 and 1",
                    ));
                }
                info.set_flag(list_flags::REPL_RDB_ONLY, v == 1);
            }
            b"rdb-filter-only" => {
                // A space-separated list of filters; only `functions` exists.
                let mut functions = false;
                for f in val.split(|b| *b == b' ').filter(|f| !f.is_empty()) {
                    if f.eq_ignore_ascii_case(b"functions") {
                        functions = true;
                    } else {
                        return Err(Error::owned(format!(
                            "ERR Unsupported rdb-filter-only option: {}",
                            String::from_utf8_lossy(f)
                        )));
                    }
                }
                info.set_flag(list_flags::REPL_FUNCTIONS_ONLY, functions);
            }
            _ => {
                return Err(Error::owned(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(opt)
                )));
            }
        }
        j += 2;
    }
    ctx.out.ok();
    Ok(())
}
