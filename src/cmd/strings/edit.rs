//! APPEND and SETRANGE (which edit a string in place), GETRANGE / SUBSTR and STRLEN.

use super::{Str, find, hit};
use crate::cmd::{CmdResult, Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::store::{KeySlot, Object, Value};
use crate::util::num::parse_i64;

/// Fails when a string of `len + extra` bytes would pass proto-max-bulk-len.
fn check_length(max: i64, len: u64, extra: u64) -> CmdResult {
    match len.checked_add(extra) {
        Some(total) if total <= max.max(0) as u64 => Ok(()),
        _ => Err(Error::msg(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// Runs `f` on the string at `idx` as an in-place editable buffer, first
/// turning an inline or integer value into `Object::Str` (encoding `raw`).
/// The caller checked that the value is a string (HLL commands too: an HLL
/// is a string value).
pub(crate) fn edit_in_place<R>(
    slot: &mut KeySlot<'_, '_>,
    idx: usize,
    f: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    if slot.entry_mut(idx).object_mut().is_none() {
        let bytes = Str::of(slot.entry(idx).value())
            .map(Str::to_vec)
            .unwrap_or_default();
        slot.set_value(idx, Value::Obj(Box::new(Object::Str(bytes))), true);
    }
    let mut entry = slot.entry_mut(idx);
    match entry.object_mut() {
        Some(Object::Str(s)) => f(s),
        // The caller saw a string, and a string object was just stored.
        _ => f(&mut Vec::new()),
    }
}

pub fn append(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, tail) = (&args[1], &args[2]);
    let max = ctx.srv.config.proto_max_bulk_len.get();
    let mut slot = ctx.db.key(key);
    let len = match find(&mut slot) {
        None => {
            slot.insert(Value::from_string(tail), None);
            tail.len()
        }
        Some(idx) => {
            let len = Str::of(slot.entry(idx).value())?.len();
            check_length(max, len as u64, tail.len() as u64)?;
            edit_in_place(&mut slot, idx, |s| {
                s.extend_from_slice(tail);
                s.len()
            })
        }
    };
    ctx.dirty += 1;
    ctx.event(class::STRING, "append", key);
    ctx.out.int(len as i64);
    Ok(())
}

pub fn setrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (key, patch) = (&args[1], &args[3]);
    let offset = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    if offset < 0 {
        return Err(Error::msg("ERR offset is out of range"));
    }
    let offset = offset as u64;
    let current_len = {
        let mut slot = ctx.db.key(key);
        match find(&mut slot) {
            Some(idx) => Some(Str::of(slot.entry(idx).value())?.len()),
            None => None,
        }
    };
    if patch.is_empty() {
        // Nothing to write: the length as it is, and no key created.
        ctx.out.int(current_len.unwrap_or(0) as i64);
        return Ok(());
    }
    check_length(
        ctx.srv.config.proto_max_bulk_len.get(),
        offset,
        patch.len() as u64,
    )?;
    let offset = offset as usize;
    let end = offset + patch.len();
    let mut slot = ctx.db.key(key);
    let len = match slot.lookup() {
        None => {
            let mut s = vec![0u8; end];
            s[offset..].copy_from_slice(patch);
            slot.insert(Value::Obj(Box::new(Object::Str(s))), None);
            end
        }
        Some(idx) => edit_in_place(&mut slot, idx, |s| {
            if s.len() < end {
                s.resize(end, 0);
            }
            s[offset..end].copy_from_slice(patch);
            s.len()
        }),
    };
    ctx.dirty += 1;
    ctx.event(class::STRING, "setrange", key);
    ctx.out.int(len as i64);
    Ok(())
}

/// The byte range GETRANGE returns for `start..=end` over `len` bytes, with
/// Redis's handling of negative and out-of-range indexes.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        (len + end).max(0)
    } else {
        end.min(len - 1)
    };
    (start <= end).then_some((start as usize, end as usize + 1))
}

pub fn getrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let start = parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    let end = parse_i64(&args[3]).ok_or(Error::NotInteger)?;
    let mut slot = ctx.db.key(&args[1]);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    let Some(idx) = idx else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let out = &mut *ctx.out;
    Str::of(slot.entry(idx).value())?.with_bytes(|s| match clamp_range(start, end, s.len()) {
        Some((from, to)) => out.bulk(&s[from..to]),
        None => out.bulk(b""),
    });
    Ok(())
}

pub fn strlen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let idx = find(&mut slot);
    hit(ctx.stats, idx.is_some());
    let len = match idx {
        Some(i) => Str::of(slot.entry(i).value())?.len(),
        None => 0,
    };
    ctx.out.int(len as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn ranges_like_getrange() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 5)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 5)));
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(3, 1, 5), None);
        assert_eq!(clamp_range(0, 100, 5), Some((0, 5)));
        assert_eq!(clamp_range(-100, 1, 5), Some((0, 2)));
        assert_eq!(clamp_range(10, 20, 5), None);
        assert_eq!(clamp_range(0, -100, 5), Some((0, 1)));
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 5), Some((0, 5)));
        assert_eq!(clamp_range(0, 0, 0), None);
    }
}
