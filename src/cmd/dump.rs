//! DUMP / RESTORE (values as Redis 7.0 serializes them, so payloads move
//! between ferrokv and Redis both ways), SAVE, and DEBUG RELOAD's work.

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::persist::rdb::file::{access_field, payload_body, read_payload_value};
use crate::persist::rdb::read::{Limits, Owned};
use crate::persist::rdb::write::{Opts, dump_payload};
use crate::resp::Args;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[("dump", dump), ("restore", restore), ("save", save)];

const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_DATA: &str = "ERR Bad data format";

/// DUMP key: the serialized value (no deadline), or nil.
fn dump(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let opts = Opts {
        compress: ctx.srv.config.rdbcompression.get(),
    };
    let payload = ctx
        .db
        .key(&args[1])
        .get()
        .map(|e| dump_payload(e.value(), opts));
    ctx.hit(payload.is_some());
    match payload {
        Some(p) => ctx.out.bulk(&p),
        None => ctx.out.null(),
    }
    Ok(())
}

struct RestoreOpts {
    replace: bool,
    absttl: bool,
    idle: Option<u64>,
    freq: Option<u8>,
}

fn restore_opts(args: &Args<'_>) -> Result<RestoreOpts, Error> {
    let mut o = RestoreOpts {
        replace: false,
        absttl: false,
        idle: None,
        freq: None,
    };
    let mut i = 4;
    while i < args.len() {
        let a = &args[i];
        let more = i + 1 < args.len();
        if a.eq_ignore_ascii_case(b"replace") {
            o.replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            o.absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && more && o.freq.is_none() {
            let n = parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
            if n < 0 {
                return Err(Error::msg("ERR Invalid IDLETIME value, must be >= 0"));
            }
            o.idle = Some(n as u64);
            i += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && more && o.idle.is_none() {
            let n = parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
            if !(0..=255).contains(&n) {
                return Err(Error::msg(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            o.freq = Some(n as u8);
            i += 1;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ n]. The
/// checks come in Redis's order: options, an existing key, the TTL, the
/// payload's footer, then the value itself.
fn restore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let key = &args[1];
    let o = restore_opts(args)?;
    if !o.replace && ctx.db.key(key).lookup().is_some() {
        return Err(Error::msg("BUSYKEY Target key name already exists."));
    }
    let ttl = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    if ttl < 0 {
        return Err(Error::msg("ERR Invalid TTL value, must be >= 0"));
    }
    let body = payload_body(&args[3]).ok_or(Error::msg(BAD_PAYLOAD))?;
    let lim = Limits::of(&ctx.srv.config);
    let value = read_payload_value(body, &lim).map_err(|e| {
        // As Redis logs a corrupt payload (its suite looks for the words).
        crate::verbose!(
            "Internal error in RDB reading offset {} -> {}",
            e.offset,
            e.msg
        );
        Error::msg(BAD_DATA)
    })?;
    if value.is_empty_collection() {
        return Err(Error::msg(BAD_DATA));
    }
    let now = ctx.db.now_ms;
    let deleted = o.replace && ctx.db.key(key).remove().is_some();
    let at = match (ttl, o.absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(t.saturating_add(now)),
    };
    if let Some(at) = at
        && at <= now
        && !ctx.srv.ks.expiry_suspended()
        && !crate::server::replica::is_replica()
    {
        // Already expired: the key is not created; a replaced key is gone.
        if deleted {
            let del: &[u8] = if ctx.srv.config.lazyfree_lazy_server_del.get() {
                b"UNLINK"
            } else {
                b"DEL"
            };
            ctx.rewrite_effect(vec![del.to_vec(), key.to_vec()]);
            ctx.event(class::GENERIC, "del", key);
            ctx.dirty += 1;
        }
        ctx.out.ok();
        return Ok(());
    }
    insert(ctx, key, value, at, access_field(now, o.idle, o.freq));
    if let Some(at) = at
        && !o.absttl
    {
        // Replayed with the deadline as an absolute time.
        let mut argv: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        argv[2] = at.to_string().into_bytes();
        argv.push(b"ABSTTL".to_vec());
        ctx.rewrite_effect(argv);
    }
    ctx.event(class::GENERIC, "restore", key);
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn insert(ctx: &mut Ctx<'_>, key: &[u8], value: Owned, at: Option<i64>, lru: u32) {
    let entry = value.into_entry(key, at, lru);
    ctx.db.key(key).insert_entry(entry);
}

/// SAVE: a synchronous snapshot under every shard's lock.
fn save(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if crate::persist::bgsave::in_progress(ctx.srv) {
        return Err(Error::msg("ERR Background save already in progress"));
    }
    crate::persist::save::save(ctx.srv, ctx.db.locks).map_err(|_| Error::msg("ERR"))?;
    ctx.out.ok();
    Ok(())
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty the dataset (keys
/// and functions), load the file again. The footprint holds every shard.
pub fn debug_reload(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for a in args.iter().skip(2) {
        match a.to_ascii_lowercase().as_slice() {
            b"merge" => merge = true,
            b"noflush" => flush = false,
            b"nosave" => save = false,
            _ => {
                return Err(Error::msg(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                ));
            }
        }
    }
    let srv = ctx.srv;
    // Not over a load in progress (the save would write part of it).
    if srv.persist.loading.active() {
        return Err(Error::msg(crate::persist::load::LOADING_ERROR));
    }
    if save && crate::persist::save::save(srv, ctx.db.locks).is_err() {
        return Err(Error::msg("ERR"));
    }
    if flush {
        for db in 0..srv.ks.db_count() {
            srv.ks.flush_db(ctx.db.locks, db, false);
        }
        // Bounded: a running FCALL may hold the registry waiting for a
        // shard this command holds.
        let functions = &srv.scripting.functions;
        let Some(mut reg) = functions.try_lock_for(std::time::Duration::from_secs(2)) else {
            return Err(Error::msg(
                "ERR Error trying to load the RDB dump, check server logs.",
            ));
        };
        reg.flush();
        functions.update_counts(&reg);
    }
    let path = crate::persist::save::rdb_path(srv);
    match crate::persist::save::load_file(srv, ctx.db.locks, &path, merge) {
        Ok(_) => {
            crate::warning!("DB reloaded by DEBUG RELOAD");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            crate::warning!("{e}");
            Err(Error::msg(
                "ERR Error trying to load the RDB dump, check server logs.",
            ))
        }
    }
}

/// DEBUG POPULATE count [prefix] [size]: keys `prefix:N` (default `key`)
/// holding `value:N`, zero-padded or cut to `size` bytes when given;
/// existing keys are left alone. The footprint holds the database.
pub fn debug_populate(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    const RANGE: &str = "ERR value is out of range, must be positive";
    if !(3..=5).contains(&args.len()) {
        return Err(Error::owned(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    let count = parse_i64(&args[2])
        .filter(|n| *n >= 0)
        .ok_or(Error::msg(RANGE))?;
    let prefix: &[u8] = if args.len() > 3 { &args[3] } else { b"key" };
    let size = match args.get(4) {
        Some(a) => match parse_i64(a).filter(|n| *n >= 0).ok_or(Error::msg(RANGE))? {
            0 => None,
            n => Some(n as usize),
        },
        None => None,
    };
    let mut key = Vec::new();
    for j in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        let mut slot = ctx.db.key(&key);
        if slot.lookup().is_some() {
            continue;
        }
        let mut value = format!("value:{j}").into_bytes();
        if let Some(n) = size {
            value.resize(n, 0);
        }
        slot.insert(crate::store::Value::from_string(&value), None);
    }
    ctx.out.ok();
    Ok(())
}
