//! SET and its relatives (SETNX, SETEX, PSETEX, MSET, MSETNX) and GETEX,
//! which share the expiration option parser.

use super::{Str, find, get_generic, hit};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::store::Value;
use crate::util::num::parse_i64;

/// How an expiration argument is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireKind {
    /// Seconds from now.
    Ex,
    /// Milliseconds from now.
    Px,
    /// Unix time in seconds.
    Exat,
    /// Unix time in milliseconds.
    Pxat,
}

/// Which command's option set is being parsed: SET's or GETEX's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptsFor {
    Set,
    GetEx,
}

/// The options of SET / GETEX after parsing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SetOpts<'a> {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub keep_ttl: bool,
    pub persist: bool,
    pub expire: Option<(ExpireKind, &'a [u8])>,
}

/// Parses the options after the fixed arguments, with Redis's rules: a
/// conflicting option (NX with XX, two different expirations, KEEPTTL with
/// an expiration) or one missing its value is a syntax error; repeating the
/// same option is allowed and the last value wins.
pub fn parse_opts<'a>(opts: &[&'a [u8]], kind: OptsFor) -> Result<SetOpts<'a>, Error> {
    let mut o = SetOpts::default();
    let is_set = kind == OptsFor::Set;
    let mut j = 0;
    while j < opts.len() {
        let opt = opts[j];
        let next = opts.get(j + 1).copied();
        let expire_kind = match opt.to_ascii_uppercase().as_slice() {
            b"NX" if is_set && !o.xx => {
                o.nx = true;
                None
            }
            b"XX" if is_set && !o.nx => {
                o.xx = true;
                None
            }
            b"GET" if is_set => {
                o.get = true;
                None
            }
            b"KEEPTTL" if is_set && !o.persist && o.expire.is_none() => {
                o.keep_ttl = true;
                None
            }
            b"PERSIST" if !is_set && o.expire.is_none() && !o.keep_ttl => {
                o.persist = true;
                None
            }
            b"EX" => Some(ExpireKind::Ex),
            b"PX" => Some(ExpireKind::Px),
            b"EXAT" => Some(ExpireKind::Exat),
            b"PXAT" => Some(ExpireKind::Pxat),
            _ => return Err(Error::Syntax),
        };
        if let Some(k) = expire_kind {
            let compatible =
                !o.keep_ttl && !o.persist && o.expire.is_none_or(|(prev, _)| prev == k);
            match next {
                Some(v) if compatible => o.expire = Some((k, v)),
                _ => return Err(Error::Syntax),
            }
            j += 1;
        }
        j += 1;
    }
    Ok(o)
}

/// Turns an expiration argument into a unix time in milliseconds, failing
/// as Redis does on non-integers, non-positive values and overflow.
pub fn expire_at_ms(
    kind: ExpireKind,
    arg: &[u8],
    now_ms: i64,
    cmd: &'static str,
) -> Result<i64, Error> {
    let v = parse_i64(arg).ok_or(Error::NotInteger)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::Exat);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(Error::InvalidExpire(cmd));
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if matches!(kind, ExpireKind::Ex | ExpireKind::Px) {
        // Redis adds in signed 64-bit arithmetic and rejects what wrapped.
        ms = ms.wrapping_add(now_ms);
    }
    if ms <= 0 {
        return Err(Error::InvalidExpire(cmd));
    }
    Ok(ms)
}

/// What SET-like commands reply when they store / when NX or XX stop them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replies {
    /// `+OK` / null (SET, SETEX, PSETEX).
    OkOrNull,
    /// `:1` / `:0` (SETNX).
    OneOrZero,
}

fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    value: &[u8],
    opts: &SetOpts<'_>,
    replies: Replies,
) -> CmdResult {
    let expire = match opts.expire {
        Some((kind, arg)) => Some(expire_at_ms(kind, arg, ctx.db.now_ms, ctx.cmd.name)?),
        None => None,
    };
    let mut slot = ctx.db.key(key);
    let idx = if opts.get {
        get_generic(&mut slot, ctx.out, ctx.stats)?
    } else {
        find(&mut slot)
    };
    let found = idx.is_some();
    if (opts.nx && found) || (opts.xx && !found) {
        if !opts.get {
            match replies {
                Replies::OkOrNull => ctx.out.null(),
                Replies::OneOrZero => ctx.out.int(0),
            }
        }
        return Ok(());
    }
    let v = Value::from_string(value);
    match (idx, expire) {
        (Some(i), None) => slot.set_value(i, v, opts.keep_ttl),
        // A new value with a new deadline: one fresh entry instead of
        // rebuilding the old one twice.
        (Some(i), Some(_)) => {
            slot.replace_at(i, v, expire);
        }
        (None, _) => {
            slot.insert(v, expire);
        }
    }
    ctx.dirty += 1;
    ctx.event(class::STRING, "set", key);
    if expire.is_some() {
        ctx.event(class::GENERIC, "expire", key);
    }
    if let Some(at) = expire {
        // Replayed with an absolute deadline so that replicas and the AOF agree.
        let argv = vec![
            b"SET".to_vec(),
            key.to_vec(),
            value.to_vec(),
            b"PXAT".to_vec(),
            decimal(at),
        ];
        ctx.rewrite_effect(argv);
    }
    if !opts.get {
        match replies {
            Replies::OkOrNull => ctx.out.ok(),
            Replies::OneOrZero => ctx.out.int(1),
        }
    }
    Ok(())
}

pub fn set(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let rest: Vec<&[u8]> = args.tail(3).iter().collect();
    let opts = parse_opts(&rest, OptsFor::Set)?;
    set_generic(ctx, &args[1], &args[2], &opts, Replies::OkOrNull)?;
    if ctx.dirty > 0 && opts.get && opts.expire.is_none() {
        // GET only shapes the reply: replay the command without it.
        let is_get = |a: &[u8]| a.eq_ignore_ascii_case(b"GET");
        let argv = args
            .iter()
            .enumerate()
            .filter(|&(i, a)| i < 3 || !is_get(a));
        ctx.rewrite_effect(argv.map(|(_, a)| a.to_vec()).collect());
    }
    Ok(())
}

pub fn setnx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let opts = SetOpts {
        nx: true,
        ..Default::default()
    };
    set_generic(ctx, &args[1], &args[2], &opts, Replies::OneOrZero)
}

pub fn setex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let opts = SetOpts {
        expire: Some((ExpireKind::Ex, &args[2])),
        ..Default::default()
    };
    set_generic(ctx, &args[1], &args[3], &opts, Replies::OkOrNull)
}

pub fn psetex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let opts = SetOpts {
        expire: Some((ExpireKind::Px, &args[2])),
        ..Default::default()
    };
    set_generic(ctx, &args[1], &args[3], &opts, Replies::OkOrNull)
}

pub fn getex(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let rest: Vec<&[u8]> = args.tail(2).iter().collect();
    let opts = parse_opts(&rest, OptsFor::GetEx)?;
    let key = &args[1];
    let now = ctx.db.now_ms;
    let name = ctx.cmd.name;
    let mut slot = ctx.db.key(key);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    let Some(idx) = idx else {
        ctx.out.null();
        return Ok(());
    };
    let value = Str::of(slot.entry(idx).value())?;
    let expire = match opts.expire {
        Some((kind, arg)) => Some((kind, expire_at_ms(kind, arg, now, name)?)),
        None => None,
    };
    value.reply(ctx.out);
    let effect = match expire {
        // An absolute deadline already past deletes the key.
        Some((ExpireKind::Exat | ExpireKind::Pxat, at))
            if at <= now
                && !ctx.srv.ks.expiry_suspended()
                && !crate::server::replica::is_replica() =>
        {
            drop(slot.remove_at(idx));
            ctx.event(class::GENERIC, "del", key);
            vec![b"DEL".to_vec(), key.to_vec()]
        }
        Some((_, at)) => {
            slot.set_expire(idx, Some(at));
            ctx.event(class::GENERIC, "expire", key);
            vec![b"PEXPIREAT".to_vec(), key.to_vec(), decimal(at)]
        }
        None if opts.persist && slot.entry(idx).expire().is_some() => {
            slot.set_expire(idx, None);
            ctx.event(class::GENERIC, "persist", key);
            vec![b"PERSIST".to_vec(), key.to_vec()]
        }
        None => return Ok(()),
    };
    ctx.dirty += 1;
    ctx.rewrite_effect(effect);
    Ok(())
}

fn decimal(n: i64) -> Vec<u8> {
    itoa::Buffer::new().format(n).as_bytes().to_vec()
}

/// MSET / MSETNX need an even number of arguments after the name.
fn check_pairs(ctx: &Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(Error::WrongArity(ctx.cmd.name.into()));
    }
    Ok(())
}

fn set_pairs(ctx: &mut Ctx<'_>, args: &Args<'_>) {
    for pair in 0..(args.len() - 1) / 2 {
        let (k, v) = (&args[1 + 2 * pair], &args[2 + 2 * pair]);
        ctx.db.key(k).set(Value::from_string(v), None);
        ctx.dirty += 1;
        ctx.event(class::STRING, "set", k);
    }
}

pub fn mset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    check_pairs(ctx, args)?;
    set_pairs(ctx, args);
    ctx.out.ok();
    Ok(())
}

pub fn msetnx(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    check_pairs(ctx, args)?;
    // All or nothing: the locks are held, so no key can appear in between.
    let any = args
        .tail(1)
        .iter()
        .step_by(2)
        .any(|k| ctx.db.key(k).lookup().is_some());
    if any {
        ctx.out.int(0);
        return Ok(());
    }
    set_pairs(ctx, args);
    ctx.out.int(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, kind: OptsFor) -> Result<SetOpts<'_>, Error> {
        let v: Vec<&[u8]> = s.split_whitespace().map(str::as_bytes).collect();
        parse_opts(&v, kind)
    }

    #[test]
    fn set_options_follow_redis_conflict_rules() {
        let o = parse("nx GET ex 10", OptsFor::Set).unwrap();
        assert!(o.nx && o.get && !o.xx);
        assert_eq!(o.expire, Some((ExpireKind::Ex, &b"10"[..])));
        // Same option twice: allowed, the last value wins.
        assert_eq!(
            parse("EX 1 EX 2", OptsFor::Set).unwrap().expire,
            Some((ExpireKind::Ex, &b"2"[..]))
        );
        assert!(parse("NX NX", OptsFor::Set).unwrap().nx);
        for bad in [
            "NX XX",
            "XX NX",
            "EX 1 PX 2",
            "KEEPTTL EX 1",
            "EX 1 KEEPTTL",
            "EX",
            "PXAT",
            "PERSIST",
            "FOO",
            "EXAT 1 EX 1",
        ] {
            assert_eq!(parse(bad, OptsFor::Set), Err(Error::Syntax), "{bad}");
        }
    }

    #[test]
    fn getex_options() {
        assert!(parse("persist", OptsFor::GetEx).unwrap().persist);
        assert_eq!(
            parse("PXAT 5", OptsFor::GetEx).unwrap().expire,
            Some((ExpireKind::Pxat, &b"5"[..]))
        );
        for bad in [
            "NX",
            "GET",
            "KEEPTTL",
            "PERSIST EX 1",
            "EX 1 PERSIST",
            "EX 1 PX 1",
        ] {
            assert_eq!(parse(bad, OptsFor::GetEx), Err(Error::Syntax), "{bad}");
        }
    }

    #[test]
    fn expire_times_like_redis() {
        let now = 1_700_000_000_000;
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"10", now, "set"),
            Ok(now + 10_000)
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Px, b"10", now, "set"),
            Ok(now + 10)
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Exat, b"10", now, "set"),
            Ok(10_000)
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Pxat, b"9223372036854775807", now, "set"),
            Ok(i64::MAX)
        );
        let invalid = Err(Error::InvalidExpire("set"));
        for (k, a) in [
            (ExpireKind::Ex, "0"),
            (ExpireKind::Ex, "-1"),
            (ExpireKind::Ex, "9223372036854775807"),
            (ExpireKind::Ex, "9223372036854774"),
            (ExpireKind::Px, "9223372036854775807"),
            (ExpireKind::Exat, "9223372036854775807"),
            (ExpireKind::Pxat, "0"),
        ] {
            assert_eq!(
                expire_at_ms(k, a.as_bytes(), now, "set"),
                invalid,
                "{k:?} {a}"
            );
        }
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"1.5", now, "set"),
            Err(Error::NotInteger)
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"0", now, "setex"),
            Err(Error::InvalidExpire("setex"))
        );
    }
}
