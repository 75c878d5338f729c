//! DEBUG, gated by `enable-debug-command` (off by default, as in Redis;
//! the gate is in dispatch, see [`super::protected_denied`]).
//! Subcommands: SLEEP, SET-ACTIVE-EXPIRE, SET-DISABLE-DENY-SCRIPTS, OBJECT,
//! LOG, DIGEST, DIGEST-VALUE, RELOAD and POPULATE (in [`super::dump`]), HELP.

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
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
            ctx.out.ok();
        }
        (b"set-active-expire", 3) => {
            let on = parse_int_prefix(&args[2]) != 0;
            ctx.srv.active_expire.store(on, Ordering::Relaxed);
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
        (b"digest", 2) => {
            let d = crate::store::digest::dataset_digest(ctx.db.ks, ctx.db.locks);
            ctx.out.simple(&crate::store::digest::hex(&d));
        }
        (b"digest-value", _) => digest_values(ctx, args),
        (b"reload", _) => super::dump::debug_reload(ctx, args)?,
        (b"populate", _) => super::dump::debug_populate(ctx, args)?,
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
    let mut slot = ctx.db.key(key);
    let Some(idx) = slot.lookup() else {
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
    let line = format!(
        "Value at:{:p} refcount:{refcount} encoding:{encoding} serializedlength:{} lru:{} lru_seconds_idle:{}",
        e.key().as_ptr(),
        serialized_len(&v),
        lru & ((1 << 24) - 1),
        (now_s - lru).max(0)
    );
    ctx.out.simple(&line);
    Ok(())
}

fn help(ctx: &mut Ctx<'_>) {
    ctx.out.help(
        "DEBUG",
        &[
            "SLEEP <seconds>",
            "    Block the connection's worker for <seconds> (may be fractional).",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Turn the background expiry of keys off (0) or on (1).",
            "SET-DISABLE-DENY-SCRIPTS <0|1>",
            "    Let scripts call commands they may not call (1), or not (0).",
            "OBJECT <key>",
            "    Low-level facts about the value stored at <key>.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
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
