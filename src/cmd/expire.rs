//! Key deadlines: EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT (with NX XX GT
//! LT), TTL / PTTL, EXPIRETIME / PEXPIRETIME and PERSIST.
//!
//! Deadlines are absolute unix milliseconds. A successful EXPIRE-family
//! command is published as `PEXPIREAT key <ms>` so that replaying it later
//! gives the same deadline; one whose deadline already passed deletes the
//! key and is published as `DEL key`.

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::resp::Args;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("expire", expire),
    ("pexpire", pexpire),
    ("expireat", expireat),
    ("pexpireat", pexpireat),
    ("ttl", ttl),
    ("pttl", pttl),
    ("expiretime", expiretime),
    ("pexpiretime", pexpiretime),
    ("persist", persist),
];

/// The NX / XX / GT / LT conditions of the EXPIRE family.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Condition {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Condition {
    fn parse(opts: Args<'_>) -> Result<Condition, Error> {
        let mut c = Condition::default();
        for opt in opts.iter() {
            let flag = match opt.to_ascii_lowercase().as_slice() {
                b"nx" => &mut c.nx,
                b"xx" => &mut c.xx,
                b"gt" => &mut c.gt,
                b"lt" => &mut c.lt,
                _ => {
                    // Redis prints the option as a C string: it ends at a NUL.
                    let shown = opt.split(|&b| b == 0).next().unwrap_or_default();
                    return Err(Error::owned(format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(shown)
                    )));
                }
            };
            *flag = true;
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(Error::msg(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(Error::msg(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a key whose deadline is `current` may get deadline `when`.
    /// No deadline counts as an infinite one.
    fn allows(self, current: Option<i64>, when: i64) -> bool {
        match current {
            None => !self.xx && !self.gt,
            Some(cur) => !(self.nx || (self.gt && when <= cur) || (self.lt && when >= cur)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

fn expire(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let now = ctx.db.now_ms;
    expire_generic(ctx, args, now, Unit::Seconds)
}

fn pexpire(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let now = ctx.db.now_ms;
    expire_generic(ctx, args, now, Unit::Millis)
}

fn expireat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    expire_generic(ctx, args, 0, Unit::Seconds)
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    expire_generic(ctx, args, 0, Unit::Millis)
}

/// The absolute deadline in ms, or None when the conversion to ms or the
/// addition of `base` would overflow.
fn deadline_ms(n: i64, base: i64, unit: Unit) -> Option<i64> {
    let ms = match unit {
        Unit::Seconds => n.checked_mul(1000)?,
        Unit::Millis => n,
    };
    // Only overflow upwards is an error: a very negative time just means "past".
    if ms > i64::MAX - base {
        return None;
    }
    Some(ms + base)
}

fn expire_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, base: i64, unit: Unit) -> CmdResult {
    let cond = Condition::parse(args.tail(3))?;
    let n = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    let when = deadline_ms(n, base, unit).ok_or(Error::InvalidExpire(ctx.cmd.name))?;
    let key = &args[1];
    let now = ctx.db.now_ms;
    let mut slot = ctx.db.key(key);
    let Some(idx) = slot.lookup() else {
        ctx.out.int(0);
        return Ok(());
    };
    // Like every write lookup in Redis, this counts as an access (IDLETIME).
    slot.touch(idx);
    if !cond.allows(slot.entry(idx).expire(), when) {
        ctx.out.int(0);
        return Ok(());
    }
    // (While a file is replayed a past deadline is set, as in Redis: the
    // commands after it still find the key. On a replica too: the master,
    // or for a writable replica's own keys its sweep, deletes it.)
    let gone = !ctx.srv.ks.expiry_suspended() && !crate::server::replica::is_replica();
    let effect = if when <= now && gone {
        slot.remove_at(idx);
        ctx.event(class::GENERIC, "del", key);
        vec![b"DEL".to_vec(), key.to_vec()]
    } else {
        slot.set_expire(idx, Some(when));
        ctx.event(class::GENERIC, "expire", key);
        vec![
            b"PEXPIREAT".to_vec(),
            key.to_vec(),
            when.to_string().into_bytes(),
        ]
    };
    ctx.dirty += 1;
    ctx.rewrite_effect(effect);
    ctx.out.int(1);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, Unit::Seconds, false)
}

fn pttl(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, Unit::Millis, false)
}

fn expiretime(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, Unit::Seconds, true)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, Unit::Millis, true)
}

/// -2 for a missing key, -1 for one without deadline, else the time left
/// (or the deadline itself when `absolute`), seconds rounded to nearest.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &Args<'_>, unit: Unit, absolute: bool) -> CmdResult {
    let now = ctx.db.now_ms;
    let mut slot = ctx.db.key(&args[1]);
    let (found, deadline) = match slot.lookup() {
        Some(i) => (true, slot.entry(i).expire()),
        None => (false, None),
    };
    ctx.hit(found);
    let reply = match deadline {
        _ if !found => -2,
        None => -1,
        Some(at) => {
            let ms = if absolute { at } else { at - now }.max(0);
            match unit {
                Unit::Millis => ms,
                // Rounded in wider arithmetic so that i64::MAX does not overflow.
                Unit::Seconds => ((ms as i128 + 500) / 1000) as i64,
            }
        }
    };
    ctx.out.int(reply);
    Ok(())
}

fn persist(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let found = slot.lookup();
    if let Some(i) = found {
        slot.touch(i);
    }
    let removed = match found {
        Some(i) if slot.entry(i).expire().is_some() => {
            slot.set_expire(i, None);
            true
        }
        _ => false,
    };
    ctx.dirty += removed as u64;
    if removed {
        ctx.event(class::GENERIC, "persist", &args[1]);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Harness;

    #[test]
    fn effects_replay_to_the_same_state() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "v"]);
        h.take_effects();
        assert_eq!(h.run(&["EXPIREAT", "k", "99999999999"]), ":1\r\n");
        assert_eq!(h.take_effects(), ["0: PEXPIREAT k 99999999999000"]);
        assert_eq!(h.run(&["PEXPIREAT", "k", "99999999999001", "GT"]), ":1\r\n");
        assert_eq!(h.take_effects(), ["0: PEXPIREAT k 99999999999001"]);
        // A refused condition or a missing key changes nothing: no effect.
        assert_eq!(h.run(&["EXPIRE", "k", "10", "NX"]), ":0\r\n");
        assert_eq!(h.run(&["EXPIRE", "nokey", "10"]), ":0\r\n");
        assert_eq!(h.run(&["PERSIST", "nokey"]), ":0\r\n");
        assert!(h.take_effects().is_empty());
        assert_eq!(h.run(&["EXPIRE", "k", "100"]), ":1\r\n");
        let e = h.take_effects();
        assert_eq!(e.len(), 1);
        let at: i64 = e[0]
            .strip_prefix("0: PEXPIREAT k ")
            .unwrap()
            .parse()
            .unwrap();
        assert!((at - crate::server::now_ms() - 100_000).abs() < 5_000);
        assert_eq!(h.run(&["PERSIST", "k"]), ":1\r\n");
        assert_eq!(h.take_effects(), ["0: PERSIST k"]);
        assert_eq!(h.run(&["EXPIRE", "k", "-1"]), ":1\r\n");
        assert_eq!(h.take_effects(), ["0: DEL k"]);
        assert_eq!(h.run(&["DEL", "k"]), ":0\r\n");
        assert!(h.take_effects().is_empty());
        // FLUSHALL is published even when there was nothing to flush.
        assert_eq!(h.run(&["FLUSHALL"]), "+OK\r\n");
        assert_eq!(h.take_effects(), ["0: FLUSHALL"]);
    }

    fn cond(nx: bool, xx: bool, gt: bool, lt: bool) -> Condition {
        Condition { nx, xx, gt, lt }
    }

    #[test]
    fn conditions_treat_no_deadline_as_infinite() {
        let none = Condition::default();
        assert!(none.allows(None, 5) && none.allows(Some(10), 5));
        let nx = cond(true, false, false, false);
        assert!(nx.allows(None, 5) && !nx.allows(Some(10), 5));
        let xx = cond(false, true, false, false);
        assert!(!xx.allows(None, 5) && xx.allows(Some(10), 5));
        let gt = cond(false, false, true, false);
        assert!(!gt.allows(None, 5) && !gt.allows(Some(10), 10) && gt.allows(Some(10), 11));
        let lt = cond(false, false, false, true);
        assert!(lt.allows(None, 5) && !lt.allows(Some(10), 10) && lt.allows(Some(10), 9));
        let xx_lt = cond(false, true, false, true);
        assert!(!xx_lt.allows(None, 5) && xx_lt.allows(Some(10), 9));
    }

    #[test]
    fn deadlines_reject_only_upward_overflow() {
        assert_eq!(deadline_ms(10, 1_000, Unit::Seconds), Some(11_000));
        assert_eq!(
            deadline_ms(i64::MAX / 1000, 0, Unit::Seconds),
            Some(i64::MAX / 1000 * 1000)
        );
        assert_eq!(deadline_ms(i64::MAX / 1000 + 1, 0, Unit::Seconds), None);
        assert_eq!(deadline_ms(i64::MIN / 1000 - 1, 0, Unit::Seconds), None);
        assert_eq!(deadline_ms(i64::MAX, 0, Unit::Millis), Some(i64::MAX));
        assert_eq!(deadline_ms(i64::MAX, 1, Unit::Millis), None);
        assert_eq!(deadline_ms(i64::MIN, 5, Unit::Millis), Some(i64::MIN + 5));
    }
}
