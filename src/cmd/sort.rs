//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted as
//! numbers or strings, optionally by the values of other keys (BY), shown
//! as other keys' values (GET), limited and stored as a list (STORE).
//!
//! Behaviour follows Redis 7.0's documented rules and observed replies:
//! - `BY pattern` without `*` means "do not sort" (a set is still sorted,
//!   as strings, when the result is stored or a script asks, so replicas
//!   and the AOF see the same list);
//! - a pattern's first `*` is replaced by the element; `->field` after it
//!   reads a hash field; `#` is the element itself; a missing key, a key of
//!   another type or a missing field is nil (and sorts as 0, or first when
//!   sorting as strings);
//! - numeric sorting fails with "One or more scores can't be converted into
//!   double" on a value that is not a number; equal scores are ordered by
//!   the element's bytes, so the result is deterministic;
//! - unsorted lists and sorted sets keep their own order, reversed by DESC.
//!
//! BY and GET patterns read keys no argument names: the footprint
//! ([`footprint`]) then locks the whole selected database, and the user
//! must be allowed to read every key.

use std::cmp::Ordering;

use super::{Ctx, Error};
use crate::config::notify as class;
use crate::resp::Args;
use crate::store::{Batch, Keyspace, Packed, Value, ValueRef};
use crate::types::hash::HashRef;
use crate::types::list::{self, ListRef};
use crate::types::set::{self, Member};
use crate::types::zset::View;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, super::Handler)] = &[("sort", sort), ("sort_ro", sort_ro)];

/// The parsed options, in Redis's terms.
struct Opts<'a> {
    by: Option<&'a [u8]>,
    /// `BY` without `*`: keep the stored order.
    dont_sort: bool,
    /// LIMIT offset count.
    limit: Option<(i64, i64)>,
    gets: Vec<&'a [u8]>,
    desc: bool,
    alpha: bool,
    store: Option<&'a [u8]>,
}

/// What the option loop found wrong, in the order Redis checks.
enum Bad {
    Syntax,
    NotInteger,
    /// BY or GET with a pattern, for a user who may not read every key.
    Denied(&'static str),
}

/// Walks the options as Redis does: keywords in any order, each consuming
/// its arguments when enough remain; anything else is a syntax error.
/// `may_read_all` answers whether pattern lookups are allowed (asked only
/// when a BY/GET pattern appears).
fn parse<'a>(
    args: &'a Args<'_>,
    read_only: bool,
    mut may_read_all: impl FnMut() -> bool,
) -> Result<Opts<'a>, Bad> {
    let mut o = Opts {
        by: None,
        dont_sort: false,
        limit: None,
        gets: Vec::new(),
        desc: false,
        alpha: false,
        store: None,
    };
    let mut j = 2;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if a.eq_ignore_ascii_case(b"asc") {
            o.desc = false;
        } else if a.eq_ignore_ascii_case(b"desc") {
            o.desc = true;
        } else if a.eq_ignore_ascii_case(b"alpha") {
            o.alpha = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            let start = parse_i64(&args[j + 1]).ok_or(Bad::NotInteger)?;
            let count = parse_i64(&args[j + 2]).ok_or(Bad::NotInteger)?;
            o.limit = Some((start, count));
            j += 2;
        } else if a.eq_ignore_ascii_case(b"store") && left >= 1 && !read_only {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"by") && left >= 1 {
            let pat = &args[j + 1];
            o.by = Some(pat);
            if memchr::memchr(b'*', pat).is_none() {
                o.dont_sort = true;
            } else if !may_read_all() {
                return Err(Bad::Denied(
                    "ERR BY option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            j += 1;
        } else if a.eq_ignore_ascii_case(b"get") && left >= 1 {
            if !may_read_all() {
                return Err(Bad::Denied(
                    "ERR GET option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            o.gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(Bad::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// Whether a pattern makes SORT read keys other than its arguments.
fn reads_other_keys(o: &Opts<'_>) -> bool {
    (o.by.is_some() && !o.dont_sort) || o.gets.iter().any(|g| *g != b"#")
}

/// SORT's footprint: its key and STORE destination, or the whole selected
/// database when a BY/GET pattern reads keys named by the data.
pub fn footprint(_ks: &Keyspace, args: &Args<'_>, db: usize, b: &mut Batch<'_>) {
    let read_only = args[0].eq_ignore_ascii_case(b"sort_ro");
    match parse(args, read_only, || true) {
        Ok(o) if reads_other_keys(&o) => b.db(db),
        Ok(o) => {
            b.key(db, &args[1]);
            if let Some(d) = o.store {
                b.key(db, d);
            }
        }
        // The handler answers the error after touching nothing else.
        Err(_) => b.key(db, &args[1]),
    }
}

fn sort(ctx: &mut Ctx<'_>, args: &Args<'_>) -> super::CmdResult {
    run(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, args: &Args<'_>) -> super::CmdResult {
    run(ctx, args, true)
}

/// One element to sort and what it sorts by.
struct Item {
    elem: Vec<u8>,
    score: f64,
    /// The BY value when sorting as strings (`None`: missing, sorts first).
    by: Option<Vec<u8>>,
}

fn run(ctx: &mut Ctx<'_>, args: &Args<'_>, read_only: bool) -> super::CmdResult {
    let (srv, cmd) = (ctx.srv, ctx.cmd);
    let client = &mut *ctx.client;
    let mut o = match parse(args, read_only, || {
        crate::acl::reads_all_keys(srv, client, cmd)
    }) {
        Ok(o) => o,
        Err(Bad::Syntax) => return Err(Error::Syntax),
        Err(Bad::NotInteger) => return Err(Error::NotInteger),
        Err(Bad::Denied(m)) => return Err(Error::msg(m)),
    };
    let key = &args[1];
    // Load the elements, keeping the stored order.
    let (mut items, kind) = load(ctx, key)?;
    if o.dont_sort && kind == Kind::Set && (o.store.is_some() || crate::scripting::run::in_script())
    {
        // An unsorted set's order is the hash table's: sort it as strings
        // so a stored result (replicated, written to the AOF) and a
        // script's view do not depend on it.
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = items.len() as i64;
    let (mut start, mut end) = match o.limit {
        Some((s, c)) => {
            let s = s.max(0);
            (
                s,
                if c < 0 {
                    len - 1
                } else {
                    s.saturating_add(c) - 1
                },
            )
        }
        None => (0, len - 1),
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    if o.dont_sort {
        // Lists and sorted sets keep their order, walked from the end for
        // DESC; a set's order is its table's.
        if o.desc && kind != Kind::Set {
            items.reverse();
        }
    } else {
        score(ctx, &o, &mut items)?;
        let by_pattern = o.by.is_some();
        let cmp = |a: &Item, b: &Item| -> Ordering {
            let c = if !o.alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.elem.cmp(&b.elem))
            } else if by_pattern {
                a.by.cmp(&b.by)
            } else {
                a.elem.cmp(&b.elem)
            };
            if o.desc { c.reverse() } else { c }
        };
        items.sort_by(cmp);
    }
    let chosen: &[Item] = if start <= end && start >= 0 {
        &items[start as usize..=end as usize]
    } else {
        &[]
    };
    // The values to output: the elements, or each GET pattern's value.
    let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(chosen.len() * o.gets.len().max(1));
    for it in chosen {
        if o.gets.is_empty() {
            values.push(Some(it.elem.clone()));
        }
        for g in &o.gets {
            values.push(lookup(ctx, g, &it.elem));
        }
    }
    match o.store {
        None => {
            ctx.out.array(values.len());
            for v in &values {
                match v {
                    Some(v) => ctx.out.bulk(v),
                    None => ctx.out.null(),
                }
            }
        }
        Some(dst) => store(ctx, dst, &values),
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The key's elements in stored order; a missing key is an empty list.
fn load(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<(Vec<Item>, Kind), Error> {
    let item = |elem: Vec<u8>| Item {
        elem,
        score: 0.0,
        by: None,
    };
    let mut slot = ctx.db.key(key);
    let Some(e) = slot.get() else {
        ctx.hit(false);
        return Ok((Vec::new(), Kind::List));
    };
    let v = e.value();
    if let Ok(l) = ListRef::of(v) {
        let items = l.iter().map(|x| item(x.to_vec())).collect();
        ctx.hit(true);
        return Ok((items, Kind::List));
    }
    if let Some(s) = set::SetRef::of(v) {
        let items = s.iter().map(|m: Member<'_>| item(m.to_vec())).collect();
        ctx.hit(true);
        return Ok((items, Kind::Set));
    }
    if let Ok(z) = View::of(v) {
        let mut items = Vec::with_capacity(z.len());
        for r in 0..z.len() {
            if let Some((m, _)) = z.get(r) {
                items.push(item(m.to_vec()));
            }
        }
        ctx.hit(true);
        return Ok((items, Kind::ZSet));
    }
    Err(Error::WrongType)
}

/// Fills each item's sort key: its BY value (or itself) as a number, or as
/// a string when sorting ALPHA by a pattern.
fn score(ctx: &mut Ctx<'_>, o: &Opts<'_>, items: &mut [Item]) -> Result<(), Error> {
    let bad = || Error::msg("ERR One or more scores can't be converted into double");
    for it in items.iter_mut() {
        let by = match o.by {
            Some(p) => match lookup(ctx, p, &it.elem) {
                Some(v) => Some(v),
                None => continue,
            },
            None => None,
        };
        if o.alpha {
            if o.by.is_some() {
                it.by = by;
            }
            continue;
        }
        let text = by.as_deref().unwrap_or(&it.elem);
        it.score = parse_score(text).ok_or_else(bad)?;
    }
    Ok(())
}

/// A sort score as Redis reads it: C `strtod` over the whole value (leading
/// spaces allowed), no NaN, no overflow.
fn parse_score(s: &[u8]) -> Option<f64> {
    if let Some(i) = parse_i64(s) {
        return Some(i as f64);
    }
    let (v, range_err) = super::zsets::strtod(s)?;
    (!v.is_nan() && !range_err).then_some(v)
}

/// The value a BY/GET pattern names for `elem`: `#` is the element; the
/// first `*` is replaced by it; `->field` after it reads a hash field.
fn lookup(ctx: &mut Ctx<'_>, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = memchr::memchr(b'*', pattern)?;
    let rest = &pattern[star + 1..];
    let (suffix, field) = match memchr::memmem::find(rest, b"->") {
        Some(f) if f + 2 < rest.len() => (&rest[..f], Some(&rest[f + 2..])),
        _ => (rest, None),
    };
    let mut name = Vec::with_capacity(star + elem.len() + suffix.len());
    name.extend_from_slice(&pattern[..star]);
    name.extend_from_slice(elem);
    name.extend_from_slice(suffix);
    let mut slot = ctx.db.key(&name);
    let e = slot.get()?;
    match (e.value(), field) {
        (ValueRef::Bytes(b), None) => Some(b.to_vec()),
        (ValueRef::Int(i), None) => Some(i.to_string().into_bytes()),
        (v, Some(f)) => HashRef::of(v).ok()?.get(f).map(<[u8]>::to_vec),
        _ => None,
    }
}

/// STORE: the values as a list (nil as an empty string) replace `dst`; an
/// empty result deletes it.
fn store(ctx: &mut Ctx<'_>, dst: &[u8], values: &[Option<Vec<u8>>]) {
    let fill = ctx.srv.config.list_max_listpack_size.get();
    let mut slot = ctx.db.key(dst);
    if values.is_empty() {
        if let Some(i) = slot.lookup() {
            drop(slot.remove_at(i));
            ctx.dirty += 1;
            ctx.event(class::GENERIC, "del", dst);
        }
    } else {
        // Replaces any value and deadline (`new` only if it was absent).
        slot.set(Value::Packed(Packed::List, &[]), None);
        let items = values.iter().map(|v| v.as_deref().unwrap_or(b""));
        // The key holds a list now: pushing cannot meet another type.
        let _ = list::push(&mut slot, false, items, false, fill);
        ctx.dirty += values.len() as u64;
        ctx.event(class::LIST, "sortstore", dst);
    }
    ctx.out.int(values.len() as i64);
}
