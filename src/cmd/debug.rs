//! DEBUG, gated by `enable-debug-command` (off by default, as in Redis;
//! the gate is in dispatch, see [`super::protected_denied`]).
//! Subcommands: SLEEP, SEGFAULT, SET-ACTIVE-EXPIRE, PAUSE-CRON, SET-DISABLE-DENY-SCRIPTS,
//! SET-SKIP-CHECKSUM-VALIDATION, OBJECT,
//! LOG, DIGEST, DIGEST-VALUE, RELOAD (in [`super::dump`]), POPULATE,
//! PROTOCOL, LISTPACK, QUICKLIST, QUICKLIST-PACKED-THRESHOLD,
//! CHANGE-REPL-ID, AOF-FLUSH-SLEEP, AOF-WRITE-ERROR (ferrokv's), LOADAOF,
//! CONFIG-REWRITE-FORCE-ALL, REPLYBUFFER (accepted), HELP.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::store::ValueRef;

pub const COMMANDS: &[(&str, Handler)] = &[("debug", debug)];

fn debug(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"help", 2) => help(ctx),
        (b"sleep", 3) => {
            // Blocks this worker, as DEBUG SLEEP blocks Redis.
            let secs = parse_float_prefix(&args[2]);
            if secs > 0.0 && secs.is_finite() {
                let until = crate::server::now_ms().saturating_add((secs * 1000.0) as i64);
                crate::server::repl_sync::freeze_until(until);
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
            ctx.out.ok();
        }
        (b"replicate", n) if n >= 3 => {
            // Into the replicas' stream as given, in no database.
            let argv: Vec<&[u8]> = args.iter().skip(2).collect();
            crate::server::repl::feed_raw(&argv);
            ctx.out.ok();
        }
        (b"set-active-expire", 3) => {
            let on = parse_int_prefix(&args[2]) != 0;
            ctx.srv.active_expire.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        (b"pause-cron", 3) => {
            let on = parse_int_prefix(&args[2]) != 0;
            ctx.srv.cron_paused.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        (b"set-disable-deny-scripts", 3) => {
            let on = parse_int_prefix(&args[2]) != 0;
            ctx.srv
                .scripting
                .disable_deny_script
                .store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        (b"object", 3) => object(ctx, &args[2])?,
        // Crashes the server on purpose: the crash report (`crate::crash`)
        // goes to the log and the process ends by the signal.
        (b"segfault", 2) => {
            // SAFETY: raise is always safe to call; the handler then ends
            // the process.
            unsafe { libc::raise(libc::SIGSEGV) };
        }
        (b"digest", 2) => {
            let d = crate::store::digest::dataset_digest(ctx.db.ks, ctx.db.locks);
            ctx.out.simple(&crate::store::digest::hex(&d));
        }
        (b"digest-value", _) => digest_values(ctx, args),
        (b"set-skip-checksum-validation", 3) => {
            let on = parse_int_prefix(&args[2]) != 0;
            crate::persist::rdb::file::SKIP_CHECKSUM.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        (b"reload", _) => super::dump::debug_reload(ctx, args)?,
        (b"config-rewrite-force-all", 2) => {
            super::config_cmd::rewrite_file(ctx.srv, true)?;
            ctx.out.ok();
        }
        (b"populate", 3..=5) => populate(ctx, args)?,
        (b"protocol", 3) => protocol(ctx, &args[2])?,
        (b"listpack", 3) => {
            let mut slot = ctx.db.key(&args[2]);
            let idx = slot.lookup().ok_or(Error::NoSuchKey)?;
            let e = slot.entry(idx);
            if super::object::encoding_name(&e) != "listpack" {
                return Err(Error::msg("ERR Not a listpack encoded object."));
            }
            // Redis dumps the structure on its stdout; ferrokv's differs
            // from a listpack, so nothing is printed.
            ctx.out.simple("Listpack structure printed on stdout");
        }
        (b"quicklist", 3..=4) => {
            let mut slot = ctx.db.key(&args[2]);
            let idx = slot.lookup().ok_or(Error::NoSuchKey)?;
            if super::object::encoding_name(&slot.entry(idx)) != "quicklist" {
                return Err(Error::msg("ERR Not a quicklist encoded object."));
            }
            ctx.out.simple("Quicklist structure printed on stdout");
        }
        (b"quicklist-packed-threshold", 3) => {
            // Accepted with Redis's bounds; ferrokv's list nodes have no
            // separate "plain" form for large elements, so it changes nothing.
            let ok = std::str::from_utf8(&args[2])
                .ok()
                .and_then(crate::config::parse_memory)
                .is_some_and(|v| (0..1 << 32).contains(&v));
            if !ok {
                return Err(Error::msg(
                    "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
                ));
            }
            ctx.out.ok();
        }
        // There is no replication: no id to change.
        (b"change-repl-id", 2) => ctx.out.ok(),
        (b"aof-flush-sleep", 3) => {
            let us = parse_int_prefix(&args[2]).max(0) as u64;
            crate::persist::aof::FLUSH_SLEEP_US.store(us, Ordering::Relaxed);
            ctx.out.ok();
        }
        // ferrokv's own: every AOF write fails with this errno (28: no
        // space) until set back to 0, so tests reach the MISCONF state
        // without a full disk.
        (b"aof-write-error", 3) => {
            let errno = parse_int_prefix(&args[2]).clamp(0, 4095) as i32;
            crate::persist::aof::FAIL_WRITES_ERRNO.store(errno, Ordering::Relaxed);
            ctx.out.ok();
        }
        (b"loadaof", 2) => {
            // Not over a load in progress (it would save part of it).
            if ctx.srv.persist.loading.active() {
                return Err(Error::msg(crate::persist::load::LOADING_ERROR));
            }
            crate::persist::aof::debug_loadaof(ctx.srv, &ctx.stats.in_flight);
            ctx.out.ok();
        }
        // Accepted for the suite: ferrokv counts a fixed 16 KiB reply
        // buffer per client (`server::client_mem`), with no peak to track
        // and no resize job to pause.
        (b"replybuffer", 4) if args[2].eq_ignore_ascii_case(b"resizing") => {
            crate::server::reply_buf::set_resizing(parse_int_prefix(&args[3]) != 0);
            ctx.out.ok();
        }
        (b"replybuffer", 4) if args[2].eq_ignore_ascii_case(b"peak-reset-time") => {
            let v = &args[3];
            if v.eq_ignore_ascii_case(b"never") {
                crate::server::reply_buf::set_peak_reset(None);
            } else if v.eq_ignore_ascii_case(b"reset") {
                crate::server::reply_buf::default_peak_reset();
            } else {
                let ms = crate::util::num::parse_i64(v).ok_or(Error::NotInteger)?;
                crate::server::reply_buf::set_peak_reset(Some(ms));
            }
            ctx.out.ok();
        }
        (b"log", 3) => {
            crate::warning!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            ctx.out.ok();
        }
        _ => {
            return Err(Error::owned(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
                String::from_utf8_lossy(&args[1])
            )));
        }
    }
    Ok(())
}

/// DEBUG DIGEST-VALUE key...: one status line per key (40 zeros for a
/// missing key). Like Redis it reads logically expired keys too, so it
/// looks entries up without reclaiming them.
fn digest_values(ctx: &mut Ctx<'_>, args: &Args<'_>) {
    let ks = ctx.db.ks;
    let db = ctx.db.index;
    ctx.out.array(args.len() - 2);
    for key in args.iter().skip(2) {
        let hash = crate::store::keyspace::hash_key(key);
        let d = ctx.db.locks.with_shard(ks, db, ks.shard_of(hash), |g| {
            g.find(hash, key).map(|i| {
                let e = g.get(i);
                crate::store::digest::value_digest(e.value(), e.expire().is_some())
            })
        });
        ctx.out
            .simple(&crate::store::digest::hex(&d.unwrap_or([0; 20])));
    }
}

/// DEBUG POPULATE count [prefix [size]]: keys `prefix:N` (default `key`)
/// holding `value:N`, padded with zero bytes or cut to `size` when given;
/// existing keys are left alone. The footprint holds the whole database.
fn populate(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let positive = |a: &[u8]| {
        crate::util::num::parse_i64(a)
            .filter(|n| *n >= 0)
            .ok_or(Error::msg("ERR value is out of range, must be positive"))
    };
    let count = positive(&args[2])?;
    let prefix: &[u8] = args.get(3).unwrap_or(b"key");
    let size = match args.get(4) {
        Some(a) => positive(a)? as usize,
        None => 0,
    };
    let mut key = Vec::new();
    let mut value = Vec::new();
    for i in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.extend_from_slice(format!(":{i}").as_bytes());
        value.clear();
        value.extend_from_slice(format!("value:{i}").as_bytes());
        if size > 0 {
            value.resize(size, 0);
        }
        let mut slot = ctx.db.key(&key);
        if slot.lookup().is_none() {
            slot.insert(crate::store::Value::from_string(&value), None);
        }
    }
    ctx.effect = super::Effect::Nothing;
    ctx.out.ok();
    Ok(())
}

/// DEBUG PROTOCOL type: one reply of each RESP type, as Redis sends them
/// (RESP3 types fall back to their RESP2 forms on a RESP2 connection).
fn protocol(ctx: &mut Ctx<'_>, name: &[u8]) -> CmdResult {
    let out = &mut *ctx.out;
    match name.to_ascii_lowercase().as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        // Redis's test value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        b"double" => out.double(3.141),
        b"bignum" => {
            const BIG: &[u8] = b"1234567999999999999999999999999999999";
            if out.resp3 {
                out.buf.extend_from_slice(b"(");
                out.buf.extend_from_slice(BIG);
                out.buf.extend_from_slice(b"\r\n");
            } else {
                out.bulk(BIG);
            }
        }
        b"null" => out.null(),
        b"array" | b"set" => {
            if name.eq_ignore_ascii_case(b"set") {
                out.set(3);
            } else {
                out.array(3);
            }
            (0..3).for_each(|j| out.int(j));
        }
        b"map" => {
            out.map(3);
            for j in 0..3 {
                out.int(j);
                out.boolean(j == 1);
            }
        }
        b"attrib" => {
            if out.resp3 {
                out.buf.extend_from_slice(b"|1\r\n");
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.resp3 {
                return Err(Error::msg("ERR RESP2 is not supported by this command"));
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        b"true" => out.boolean(true),
        b"false" => out.boolean(false),
        b"verbatim" => out.verbatim(b"This is a verbatim\nstring"),
        _ => {
            return Err(Error::msg(
                "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ));
        }
    }
    Ok(())
}

/// C's atof: the longest numeric prefix, 0 when there is none.
fn parse_float_prefix(s: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(s);
    let s = s.trim_start();
    (0..=s.len())
        .rev()
        .filter(|&i| s.is_char_boundary(i))
        .find_map(|i| s[..i].parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// C's atoi: an optional sign and the leading digits, 0 when there are none.
fn parse_int_prefix(s: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(s);
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().unwrap_or(0)
}

/// The bytes of an RDB string encoding of `v`, without LZF compression.
fn serialized_len(v: &ValueRef<'_>) -> usize {
    let len_prefix = |n: usize| {
        if n < 64 {
            1
        } else if n < 16384 {
            2
        } else {
            5
        }
    };
    let int_len = |i: i64| {
        if (-128..128).contains(&i) {
            Some(2)
        } else if (-32768..32768).contains(&i) {
            Some(3)
        } else if i32::try_from(i).is_ok() {
            Some(5)
        } else {
            None
        }
    };
    match v {
        ValueRef::Int(i) => int_len(*i).unwrap_or_else(|| {
            let n = i.to_string().len();
            len_prefix(n) + n
        }),
        ValueRef::Bytes(b) => match crate::util::num::parse_i64(b).and_then(int_len) {
            Some(n) if b.len() <= 11 => n,
            _ => len_prefix(b.len()) + b.len(),
        },
        ValueRef::Obj(crate::store::Object::Str(b)) => len_prefix(b.len()) + b.len(),
        ValueRef::Packed(_, b) => len_prefix(b.len()) + b.len(),
        #[allow(unreachable_patterns)]
        ValueRef::Obj(_) => 0,
    }
}

/// DEBUG OBJECT: the value's low-level facts. Redis shares small integers
/// (refcount shown as INT_MAX); `at:` is the entry's address here.
fn object(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    let now_s = ctx.db.now_ms / 1000;
    // An expired key is still shown (and not reclaimed), as in Redis.
    let slot = ctx.db.key(key);
    let Some(idx) = slot.find_raw() else {
        return Err(Error::NoSuchKey);
    };
    let e = slot.entry(idx);
    let v = e.value();
    let encoding = super::object::encoding_name(&e);
    let refcount = match &v {
        ValueRef::Int(i) if (0..10000).contains(i) => i32::MAX as i64,
        _ => 1,
    };
    let lru = i64::from(e.lru());
    let mut line = format!(
        "Value at:{:p} refcount:{refcount} encoding:{encoding} serializedlength:{} lru:{} lru_seconds_idle:{}",
        e.key().as_ptr(),
        serialized_len(&v),
        lru & ((1 << 24) - 1),
        (now_s - lru).max(0)
    );
    if let Ok(list) = crate::types::list::ListRef::of(v) {
        // Node sizes as Redis's listpacks (7 bytes of header and end).
        let nodes = list.chunks();
        let bytes: usize = (0..nodes).map(|i| list.chunk(i).0.len() + 7).sum();
        let _ = write!(
            line,
            " ql_nodes:{nodes} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{bytes}",
            list.len() as f64 / nodes.max(1) as f64,
            ctx.srv.config.list_max_listpack_size.get()
        );
    }
    ctx.out.simple(&line);
    Ok(())
}

fn help(ctx: &mut Ctx<'_>) {
    ctx.out.help(
        "DEBUG",
        &[
            "SEGFAULT",
            "    Crash the server with sigsegv.",
            "SLEEP <seconds>",
            "    Block the connection's worker for <seconds> (may be fractional).",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Turn the background expiry of keys off (0) or on (1).",
            "PAUSE-CRON <0|1>",
            "    Stop periodic cron job processing.",
            "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
            "    Accepted; ferrokv's reply buffers have no peak to reset.",
            "REPLYBUFFER RESIZING <0|1>",
            "    Accepted; ferrokv's reply buffers are counted at a fixed 16 KiB.",
            "SET-DISABLE-DENY-SCRIPTS <0|1>",
            "    Let scripts call commands they may not call (1), or not (0).",
            "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
            "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
            "OBJECT <key>",
            "    Low-level facts about the value stored at <key>.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas. Cluster slots are not respected so keys not belonging to the",
            "    current node can be created in cluster mode.",
            "PROTOCOL <type>",
            "    Reply with a test value of the specified type. <type> can be: string,",
            "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
            "    true, false.",
            "LISTPACK <key>",
            "    Show low level info about the ziplist encoding of <key>.",
            "QUICKLIST <key> [<0|1>]",
            "    Show low level info about the quicklist encoding of <key>.",
            "    The optional argument (0 by default) sets the level of detail",
            "QUICKLIST-PACKED-THRESHOLD <size>",
            "    Sets the threshold for elements to be inserted as plain vs packed nodes",
            "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
            "CHANGE-REPL-ID",
            "    Change the replication IDs of the instance.",
            "    Dangerous: should be used only for testing the replication subsystem.",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_style_prefix_parsing() {
        assert_eq!(parse_float_prefix(b"0.5s"), 0.5);
        assert_eq!(parse_float_prefix(b"abc"), 0.0);
        assert_eq!(parse_int_prefix(b"12x"), 12);
        assert_eq!(parse_int_prefix(b"x"), 0);
    }

    #[test]
    fn rdb_string_sizes() {
        assert_eq!(serialized_len(&ValueRef::Bytes(b"hello")), 6);
        assert_eq!(serialized_len(&ValueRef::Int(123)), 2);
        assert_eq!(serialized_len(&ValueRef::Bytes(b"123")), 2);
    }
}
