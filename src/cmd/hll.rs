//! HyperLogLog commands: PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST.
//!
//! An HLL is an ordinary string value holding Redis's exact bytes
//! (`types::hll`), so GET, SETRANGE, DUMP and RDB see what Redis would.
//! Like Redis, every command that reaches an HLL through a write lookup
//! turns the value into a raw string it edits in place.

use super::strings::{Str, edit_in_place};
use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::resp::Args;
use crate::server::stats::ThreadStats;
use crate::store::{KeySlot, Object, Value};
use crate::types::hll::{self, Corrupt, REGISTERS};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("pfadd", pfadd),
    ("pfcount", pfcount),
    ("pfmerge", pfmerge),
    ("pfdebug", pfdebug),
    ("pfselftest", pfselftest),
];

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// Counts a keyspace hit or miss while the key's slot is borrowed.
fn hit(stats: &ThreadStats, found: bool) {
    if found {
        stats.keyspace_hits.add(1);
    } else {
        stats.keyspace_misses.add(1);
    }
}

/// The live key, marked as accessed.
fn find(slot: &mut KeySlot<'_, '_>) -> Option<usize> {
    let idx = slot.lookup()?;
    slot.touch(idx);
    Some(idx)
}

/// Checks that the value at `idx` is an HLL: WRONGTYPE for other types,
/// Redis's HLL WRONGTYPE for strings that are not (an integer-encoded
/// string never is). Returns whether it is dense.
fn check(slot: &KeySlot<'_, '_>, idx: usize) -> Result<bool, Error> {
    match Str::of(slot.entry(idx).value())? {
        Str::Bytes(b) if hll::is_hll(b) => Ok(!hll::is_sparse(b)),
        _ => Err(Error::msg(NOT_HLL)),
    }
}

fn sparse_max(ctx: &Ctx<'_>) -> usize {
    usize::try_from(ctx.srv.config.hll_sparse_max_bytes.get()).unwrap_or(usize::MAX)
}

pub fn pfadd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let max_bytes = sparse_max(ctx);
    let mut slot = ctx.db.key(&args[1]);
    let (idx, created) = match find(&mut slot) {
        Some(idx) => {
            check(&slot, idx)?;
            (idx, false)
        }
        None => {
            let v = Value::Obj(Box::new(Object::Str(hll::new_sparse())));
            (slot.insert(v, None), true)
        }
    };
    let changes = edit_in_place(&mut slot, idx, |v| {
        let mut changes = u64::from(created);
        for elem in args.tail(2).iter() {
            // Registers changed before a corruption was found stay
            // changed, unpropagated, as in Redis.
            changes += u64::from(hll::add(v, elem, max_bytes)?);
        }
        if changes > 0 {
            hll::invalidate(v);
        }
        Ok::<_, Corrupt>(changes)
    })?;
    if changes > 0 {
        ctx.dirty += changes;
        ctx.event(class::STRING, "pfadd", &args[1]);
    }
    ctx.out.int(i64::from(changes > 0));
    Ok(())
}

/// Folds the HLLs at `keys` into `max` (missing keys count as empty);
/// whether any of them was dense.
fn merge_keys(
    ctx: &mut Ctx<'_>,
    keys: &Args<'_>,
    max: &mut [u8; REGISTERS],
) -> Result<bool, Error> {
    let mut any_dense = false;
    for key in keys.iter() {
        let mut slot = ctx.db.key(key);
        let idx = find(&mut slot);
        hit(ctx.stats, idx.is_some());
        let Some(idx) = idx else { continue };
        any_dense |= check(&slot, idx)?;
        if let Str::Bytes(b) = Str::of(slot.entry(idx).value())? {
            hll::merge_into(max, b)?;
        }
    }
    Ok(any_dense)
}

pub fn pfcount(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() > 2 {
        // A union in a scratch register array; no key is touched.
        let mut max = Box::new([0u8; REGISTERS]);
        merge_keys(ctx, &args.tail(1), &mut max)?;
        ctx.out.int(hll::count_registers(&max) as i64);
        return Ok(());
    }
    let mut slot = ctx.db.key(&args[1]);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    let Some(idx) = idx else {
        ctx.out.int(0);
        return Ok(());
    };
    check(&slot, idx)?;
    let (card, computed) = edit_in_place(&mut slot, idx, |v| match hll::cached(v) {
        Some(card) => Ok((card, false)),
        None => {
            let card = hll::count(v)?;
            hll::set_cached(v, card);
            Ok::<_, Corrupt>((card, true))
        }
    })?;
    // Writing the cache is a change: it is propagated and touches
    // watchers, as in Redis.
    if computed {
        ctx.dirty += 1;
    }
    ctx.out.int(card as i64);
    Ok(())
}

pub fn pfmerge(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let max_bytes = sparse_max(ctx);
    let mut max = Box::new([0u8; REGISTERS]);
    // The destination is read as a source too (and type-checked as one).
    let any_dense = merge_keys(ctx, &args.tail(1), &mut max)?;
    let mut slot = ctx.db.key(&args[1]);
    let idx = match find(&mut slot) {
        Some(idx) => idx,
        None => slot.insert(Value::Obj(Box::new(Object::Str(hll::new_sparse()))), None),
    };
    edit_in_place(&mut slot, idx, |v| {
        // Dense as soon as one input was; otherwise the sparse encoding
        // takes the registers one by one (promoting if it outgrows).
        if any_dense {
            hll::to_dense(v)?;
        }
        for (i, &r) in max.iter().enumerate() {
            if r != 0 {
                // As in Redis, a failure here (the destination's own
                // opcodes) leaves what was written so far.
                let _ = hll::set_register(v, i, r, max_bytes);
            }
        }
        hll::invalidate(v);
        Ok::<_, Corrupt>(())
    })?;
    ctx.dirty += 1;
    // A merge is a mass add: Redis announces it as `pfadd`.
    ctx.event(class::STRING, "pfadd", &args[1]);
    ctx.out.ok();
    Ok(())
}

pub fn pfdebug(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let sub = &args[1];
    let mut slot = ctx.db.key(&args[2]);
    let Some(idx) = find(&mut slot) else {
        return Err(Error::msg("ERR The specified key does not exist"));
    };
    check(&slot, idx)?;
    // Every subcommand leaves a raw string, as Redis unshares it first.
    edit_in_place(&mut slot, idx, |_| ());
    let out = &mut *ctx.out;
    let mut converted = false;
    if sub.eq_ignore_ascii_case(b"getreg") {
        let regs = edit_in_place(&mut slot, idx, |v| {
            converted = hll::to_dense(v)?;
            hll::registers(v)
        })?;
        out.array(regs.len());
        for r in regs {
            out.int(i64::from(r));
        }
    } else if sub.eq_ignore_ascii_case(b"decode") {
        let text = edit_in_place(&mut slot, idx, |v| {
            hll::is_sparse(v).then(|| hll::decode_sparse(v))
        });
        match text {
            Some(t) => out.bulk(t.as_bytes()),
            None => return Err(Error::msg("ERR HLL encoding is not sparse")),
        }
    } else if sub.eq_ignore_ascii_case(b"encoding") {
        let sparse = edit_in_place(&mut slot, idx, |v| hll::is_sparse(v));
        out.simple(if sparse { "sparse" } else { "dense" });
    } else if sub.eq_ignore_ascii_case(b"todense") {
        converted = edit_in_place(&mut slot, idx, hll::to_dense)?;
        out.int(i64::from(converted));
    } else {
        return Err(Error::owned(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        )));
    }
    // A change of encoding is propagated (the replica converts too).
    if converted {
        ctx.dirty += 1;
    }
    Ok(())
}

/// Checks the register packing and the estimator on a few hundred
/// thousand elements; Redis's own self test does the same kind of work.
pub fn pfselftest(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    match hll::self_test() {
        Ok(()) => ctx.out.ok(),
        Err(msg) => return Err(Error::owned(format!("TESTFAILED {msg}"))),
    }
    Ok(())
}
