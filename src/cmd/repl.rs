//! SYNC, PSYNC and REPLCONF: a client attaches as a replica
//! (`server::repl` holds the stream); REPLICAOF / SLAVEOF (the link to a
//! master is `server::replica`); WAIT. PSYNC always answers with a full
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
    ("wait", wait),
];

/// REPLICAOF host port: answers at once, the link is made in the
/// background (`server::replica`). REPLICAOF NO ONE: a master again,
/// keeping the data.
fn replicaof(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ctx.effect = super::Effect::Nothing;
    if ctx.client.info.has_flag(list_flags::REPLICA) {
        return Err(Error::msg(
            "ERR Command is not valid when client is a replica.",
        ));
    }
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        crate::server::replica::set_no_one();
        ctx.srv.ks.set_replica_expiry(false);
        crate::server::oom::set_replica(&ctx.srv.config, false);
        // CONFIG GET / REWRITE show the master followed, as in Redis.
        ctx.srv.config.replicaof.set("");
        ctx.out.ok();
        return Ok(());
    }
    let port = crate::util::num::parse_i64(&args[2])
        .ok_or(Error::msg("ERR value is not an integer or out of range"))?;
    let Ok(port) = u16::try_from(port) else {
        return Err(Error::msg("ERR Invalid master port"));
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    ctx.srv.config.replicaof.set(&format!("{host} {port}"));
    match crate::server::replica::set_master(ctx.srv, &host, port) {
        crate::server::replica::Set::AlreadyConnected => {
            ctx.out.simple("OK Already connected to specified master");
        }
        crate::server::replica::Set::Started => ctx.out.ok(),
    }
    Ok(())
}

/// WAIT numreplicas timeout: how many replicas acknowledged the stream up
/// to now (`master_repl_offset`), at once when that is enough (or inside
/// MULTI or a script, where nothing may block), else when enough did or
/// the timeout (milliseconds; 0: none) ends. Blocking sends `REPLCONF
/// GETACK *` to every replica, as Redis does.
fn wait(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if crate::server::replica::is_replica() {
        return Err(Error::msg(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        ));
    }
    let wanted = crate::util::num::parse_i64(&args[1]).ok_or(Error::NotInteger)?;
    let ms = crate::util::num::parse_i64(&args[2])
        .ok_or(Error::msg("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(Error::msg("ERR timeout is negative"));
    }
    let offset = crate::server::repl::master_offset();
    let acked = crate::server::repl::acked(offset);
    if acked >= wanted || ctx.client.in_exec || crate::scripting::run::in_script() {
        ctx.out.int(acked);
        return Ok(());
    }
    let w = crate::blocking::Waiter::new(
        ctx.client.id(),
        ctx.db.index,
        Vec::new(),
        ctx.out.resp3,
        b":0\r\n".to_vec(),
        Box::new(|_, _, _| None),
        Vec::new(),
    );
    // The cron answers it at its deadline, with the count then.
    let deadline = (ms > 0).then(|| ctx.db.now_ms.saturating_add(ms));
    crate::server::repl::add_wait(w.clone(), offset, wanted, deadline);
    super::blocking::park(ctx, w, None);
    crate::server::repl::request_acks();
    Ok(())
}

/// A replica whose own link is not up has no dataset to offer (Redis
/// refuses the same way).
fn refuse_without_master_link(ctx: &Ctx<'_>) -> CmdResult {
    if !ctx.client.info.has_flag(list_flags::REPLICA)
        && crate::server::replica::is_replica()
        && !crate::server::replica::link_up()
    {
        return Err(Error::msg(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    Ok(())
}

fn sync(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if !ctx.client.info.has_flag(list_flags::REPLICA) {
        crate::server::failover::before_sync(ctx.srv, args).map_err(Error::owned)?;
        refuse_without_master_link(ctx)?;
        crate::server::repl::count_full_sync(false);
    }
    full_sync(ctx, false)
}

/// PSYNC <replid> <offset>: continues from the backlog when it can,
/// else a full synchronization.
fn psync(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if !ctx.client.info.has_flag(list_flags::REPLICA) {
        crate::server::failover::before_sync(ctx.srv, args).map_err(Error::owned)?;
    }
    refuse_without_master_link(ctx)?;
    let info = &ctx.client.info;
    if !info.has_flag(list_flags::REPLICA) && crate::util::num::parse_i64(&args[2]).is_none() {
        crate::warning!(
            "Replica {} asks for synchronization but with a wrong offset",
            info.addr
        );
        return Err(Error::NotInteger);
    }
    if !info.has_flag(list_flags::REPL_RDB_ONLY)
        && !info.has_flag(list_flags::REPL_FUNCTIONS_ONLY)
        && let Some(offset) = crate::util::num::parse_i64(&args[2])
        && crate::server::repl::try_continue(ctx.srv, ctx.client, &args[1], offset)
    {
        ctx.effect = super::Effect::Nothing;
        return Ok(());
    }
    if !ctx.client.info.has_flag(list_flags::REPLICA) {
        crate::server::repl::count_full_sync(&args[1][..] != b"?");
    }
    full_sync(ctx, true)
}

/// The footprint holds every shard, so the snapshot and the start of the
/// stream are one instant.
fn full_sync(ctx: &mut Ctx<'_>, psync: bool) -> CmdResult {
    let info = &ctx.client.info;
    if info.has_flag(list_flags::REPLICA) {
        return Ok(());
    }
    ctx.effect = super::Effect::Nothing;
    // A Redis 7 replica (capa eof): the payload is streamed from a
    // snapshot while clients go on (`server::repl_sync`).
    if psync
        && info.has_flag(list_flags::REPL_CAPA_EOF)
        && !info.has_flag(list_flags::REPL_RDB_ONLY)
        && !info.has_flag(list_flags::REPL_FUNCTIONS_ONLY)
        && !crate::server::replica::is_replica()
    {
        crate::notice!(
            "Replica {} asks for synchronization (diskless, from a snapshot)",
            info.addr
        );
        if crate::server::repl_sync::start(ctx.srv, ctx.client, ctx.db.locks) {
            return Ok(());
        }
    }
    let info = &ctx.client.info;
    let rdb = if info.has_flag(list_flags::REPL_FUNCTIONS_ONLY) {
        functions_only(ctx)
    } else {
        crate::persist::save::serialize(ctx.srv, ctx.db.locks)
    };
    crate::notice!("Replica {} asks for synchronization", info.addr);
    // A replica's stream passed on carries no SELECT before its next one:
    // the payload names the database it is in, as Redis's does.
    let rdb = if crate::server::replica::is_replica() {
        with_stream_db(rdb, crate::server::replica::stream_db())
    } else {
        rdb
    };
    if info.has_flag(list_flags::REPL_RDB_ONLY) {
        // The dataset only, then the connection closes (redis-cli --rdb).
        if psync {
            let line = format!(
                "+FULLRESYNC {} {}\r\n",
                crate::server::repl::ids().replid,
                crate::server::repl::master_offset()
            );
            ctx.out.buf.extend_from_slice(line.as_bytes());
        }
        crate::persist::aof::encode::header(&mut ctx.out.buf, b'$', rdb.len());
        ctx.out.buf.extend_from_slice(&rdb);
        ctx.client.close_after_reply = true;
        return Ok(());
    }
    crate::server::repl::attach(ctx.srv, ctx.client, psync, &rdb);
    Ok(())
}

/// `rdb` with the `repl-stream-db` aux field after its header (and its
/// checksum computed again, unless it had none).
fn with_stream_db(rdb: Vec<u8>, db: usize) -> Vec<u8> {
    if rdb.len() < 17 || !rdb.starts_with(b"REDIS") {
        return rdb;
    }
    let body = &rdb[..rdb.len() - 8];
    let had_crc = rdb[rdb.len() - 8..] != [0u8; 8];
    let mut out = Vec::with_capacity(rdb.len() + 32);
    out.extend_from_slice(&body[..9]);
    write::write_aux(&mut out, b"repl-stream-db", db.to_string().as_bytes());
    out.extend_from_slice(&body[9..]);
    let crc = if had_crc {
        crate::util::crc64::crc64(0, &out)
    } else {
        0
    };
    out.extend_from_slice(&crc.to_le_bytes());
    out
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
/// GETACK get no reply (a replica answers GETACK from its master in
/// `server::replica`).
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
            b"capa" => {
                if val.eq_ignore_ascii_case(b"eof") {
                    info.set_flag(list_flags::REPL_CAPA_EOF, true);
                }
            }
            b"ip-address" => {}
            b"ack" => {
                if info.has_flag(list_flags::REPLICA) {
                    crate::server::repl::ack(info.id, crate::util::num::parse_i64(val));
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
