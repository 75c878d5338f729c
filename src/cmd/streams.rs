//! Stream commands: XADD XRANGE XREVRANGE XLEN XDEL XTRIM XREAD XSETID
//! XINFO here and in `info`; consumer groups (XGROUP, XREADGROUP, XACK,
//! XPENDING, XCLAIM, XAUTOCLAIM) in `groups`, `readgroup` and `claim`.

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify::STREAM;
use crate::resp::{Args, Reply};
use crate::types::stream::id::{self, Parsed};
use crate::types::stream::{self, Entry, NodeLimits, Stream, StreamId, Trim};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("xadd", xadd),
    ("xrange", xrange),
    ("xrevrange", xrevrange),
    ("xlen", xlen),
    ("xdel", xdel),
    ("xtrim", xtrim),
    ("xread", xread),
    ("xsetid", xsetid),
    ("xinfo|stream", xinfo_stream),
    ("xgroup|create", groups::xgroup_create),
    ("xgroup|setid", groups::xgroup_setid),
    ("xgroup|destroy", groups::xgroup_destroy),
    ("xgroup|createconsumer", groups::xgroup_createconsumer),
    ("xgroup|delconsumer", groups::xgroup_delconsumer),
    ("xgroup|help", groups::xgroup_help),
    ("xack", groups::xack),
    ("xpending", groups::xpending),
    ("xreadgroup", readgroup::xreadgroup),
    ("xclaim", claim::xclaim),
    ("xautoclaim", claim::xautoclaim),
    ("xinfo|groups", info::xinfo_groups),
    ("xinfo|consumers", info::xinfo_consumers),
    ("xinfo|help", xinfo_help),
];

/// XINFO HELP: only the subcommands implemented here.
fn xinfo_help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "XINFO",
        &[
            "STREAM <key> [FULL [COUNT <count>]]",
            "    Report the stream's length, ids and edge entries; with FULL, its entries",
            "    and its groups' pending entries (the first <count> of each, default 10,",
            "    0 for all).",
            "GROUPS <key>",
            "    Report the stream's consumer groups.",
            "CONSUMERS <key> <groupname>",
            "    Report the consumers of a group.",
        ],
    );
    Ok(())
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn int_arg(a: &[u8]) -> Result<i64, Error> {
    crate::util::num::parse_i64(a).ok_or(Error::NotInteger)
}

/// Records a stream keyspace event (class `t`) on `key`.
fn notify(ctx: &mut Ctx<'_>, event: &'static str, key: &[u8]) {
    ctx.event(STREAM, event, key);
}

// ---- replies ------------------------------------------------------------------

fn reply_entry(out: &mut Reply, e: &Entry<'_>) {
    out.array(2);
    out.bulk(&e.id.to_bytes());
    out.bulk_array(e.pairs.iter().copied());
}

/// Entries of `s` in `start..=end` as an array (deferred length).
fn reply_range(
    out: &mut Reply,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: usize,
) {
    let mut entries = Vec::new();
    s.range(start, end, rev, count, |e| entries.push(e));
    out.array(entries.len());
    for e in &entries {
        reply_entry(out, e);
    }
}

// ---- XADD / XTRIM arguments ---------------------------------------------------

/// The options XADD and XTRIM share, and XADD's id.
struct AddArgs {
    trim: Option<Trim>,
    approx: bool,
    /// 0: no limit.
    limit: u64,
    /// Where the trim threshold (and the `~`/`=` before it, if any) sits.
    threshold_at: usize,
    marker_at: Option<usize>,
    limit_at: Option<usize>,
    nomkstream: bool,
    /// XADD's id: `None` for `*`.
    id: Option<Parsed>,
    id_at: usize,
}

fn parse_add_or_trim(args: &Args<'_>, xadd: bool, lim: NodeLimits) -> Result<AddArgs, Error> {
    let mut a = AddArgs {
        trim: None,
        approx: false,
        limit: 0,
        threshold_at: 0,
        marker_at: None,
        limit_at: None,
        nomkstream: false,
        id: None,
        id_at: args.len(),
    };
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt == b"*" {
            a.id_at = i;
            break;
        } else if (eq(opt, "maxlen") || eq(opt, "minid")) && more > 0 {
            let mut at = i + 1;
            if more >= 2 && (&args[at] == b"~" || &args[at] == b"=") {
                a.approx = &args[at] == b"~";
                a.marker_at = Some(at);
                at += 1;
            }
            a.trim = Some(if eq(opt, "maxlen") {
                let n = int_arg(&args[at])?;
                if n < 0 {
                    return Err(Error::msg("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(id::parse_id(&args[at], 0, true)?)
            });
            a.threshold_at = at;
            i = at;
        } else if eq(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Error::msg("ERR The LIMIT argument must be >= 0."));
            }
            a.limit = n as u64;
            a.limit_at = Some(i);
            i += 1;
        } else if xadd && eq(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(id::parse(opt, 0, true, true)?);
            a.id_at = i;
            break;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if a.limit_at.is_some() && a.trim.is_none() {
        return Err(Error::msg(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.is_none() {
        return Err(Error::msg(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if a.limit_at.is_some() {
        if !a.approx {
            return Err(Error::msg(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if a.approx {
        a.limit = lim.default_trim_limit();
    }
    Ok(a)
}

/// The argv to replay a `~` trim exactly: `=` and the threshold the trim
/// reached (the length kept, or the first id kept). LIMIT goes too, since
/// it is only accepted with `~`.
fn exact_trim_argv(args: &Args<'_>, a: &AddArgs, s: &Stream, id: Option<StreamId>) -> Vec<Vec<u8>> {
    let mut argv = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        if a.limit_at.is_some_and(|l| i == l || i == l + 1) {
            continue;
        }
        let v = if a.approx && Some(i) == a.marker_at {
            b"=".to_vec()
        } else if a.approx && i == a.threshold_at {
            match a.trim {
                Some(Trim::MaxLen(_)) => s.len().to_string().into_bytes(),
                _ => s.first_id.to_bytes(),
            }
        } else if i == a.id_at
            && let Some(id) = id
        {
            id.to_bytes()
        } else {
            arg.to_vec()
        };
        argv.push(v);
    }
    argv
}

const TOP_ITEM: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";

/// The id XADD gives the new entry.
fn next_id(s: &Stream, wanted: Option<Parsed>, now_ms: i64) -> Result<StreamId, Error> {
    let last = s.last_id;
    match wanted {
        None => {
            let now = now_ms.max(0) as u64;
            if last.ms < now {
                Ok(StreamId::new(now, 0))
            } else {
                last.next().ok_or(Error::msg(TOP_ITEM))
            }
        }
        Some(Parsed::AutoSeq(ms)) if ms == last.ms => last
            .seq
            .checked_add(1)
            .map(|seq| StreamId::new(ms, seq))
            .ok_or(Error::msg("ERR Elements are too large to be stored")),
        Some(Parsed::AutoSeq(ms)) if ms > last.ms => Ok(StreamId::new(ms, 0)),
        Some(Parsed::Id(id)) if id > last => Ok(id),
        Some(_) => Err(Error::msg(TOP_ITEM)),
    }
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
fn xadd(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lim = ctx.srv.config.stream_limits();
    let a = parse_add_or_trim(args, true, lim)?;
    let fields_at = a.id_at + 1;
    let n = args.len() as isize - fields_at as isize;
    if n < 2 || n % 2 == 1 {
        return Err(Error::WrongArity("xadd".into()));
    }
    if a.id == Some(Parsed::Id(StreamId::MIN)) {
        return Err(Error::msg(
            "ERR The ID specified in XADD must be greater than 0-0",
        ));
    }
    let pairs: Vec<&[u8]> = args.iter().skip(fields_at).collect();
    let key = &args[1];
    let now = ctx.db.now_ms;
    let mut slot = ctx.db.key(key);
    let done = stream::with_mut(&mut slot, !a.nomkstream, |s| {
        if s.last_id == StreamId::MAX {
            return Err(Error::msg(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = next_id(s, a.id, now)?;
        s.append(id, &pairs, lim);
        let trimmed = a.trim.map_or(0, |t| s.trim(t, a.approx, a.limit));
        let auto = matches!(a.id, None | Some(Parsed::AutoSeq(_)));
        let effect = (auto || a.approx).then(|| exact_trim_argv(args, &a, s, auto.then_some(id)));
        Ok((id, trimmed, effect))
    });
    // A new stream cannot refuse its first id, so an error leaves no key.
    let (id, trimmed, effect) = match done? {
        None => {
            ctx.out.null();
            return Ok(());
        }
        Some(r) => r?,
    };
    slot.signal_ready();
    ctx.dirty += 1;
    if let Some(argv) = effect {
        ctx.rewrite_effect(argv);
    }
    notify(ctx, "xadd", key);
    if trimmed > 0 {
        notify(ctx, "xtrim", key);
    }
    ctx.out.bulk(&id.to_bytes());
    Ok(())
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
fn xtrim(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let lim = ctx.srv.config.stream_limits();
    let a = parse_add_or_trim(args, false, lim)?;
    let trim = a.trim.expect("checked");
    let mut slot = ctx.db.key(&args[1]);
    let done = stream::with_mut(&mut slot, false, |s| {
        let n = s.trim(trim, a.approx, a.limit);
        let effect = a.approx.then(|| exact_trim_argv(args, &a, s, None));
        (n, effect)
    })?;
    let Some((n, effect)) = done else {
        ctx.out.int(0);
        return Ok(());
    };
    if n > 0 {
        ctx.dirty += n;
        if let Some(argv) = effect {
            ctx.rewrite_effect(argv);
        }
        notify(ctx, "xtrim", &args[1]);
    }
    ctx.out.int(n as i64);
    Ok(())
}

// ---- reads --------------------------------------------------------------------

fn xrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_cmd(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    range_cmd(ctx, args, true)
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n]
fn range_cmd(ctx: &mut Ctx<'_>, args: &Args<'_>, rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (mut start, start_ex) = id::parse_interval(start_arg, 0)?;
    let (mut end, end_ex) = id::parse_interval(end_arg, u64::MAX)?;
    if start_ex {
        start = start
            .next()
            .ok_or(Error::msg("ERR invalid start ID for the interval"))?;
    }
    if end_ex {
        end = end
            .prev()
            .ok_or(Error::msg("ERR invalid end ID for the interval"))?;
    }
    let mut count: Option<usize> = None;
    let mut i = 4;
    while i < args.len() {
        if eq(&args[i], "count") && i + 1 < args.len() {
            count = Some(int_arg(&args[i + 1])?.max(0) as usize);
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let mut slot = ctx.db.key(&args[1]);
    let s = stream::get(&mut slot)?;
    let found = s.is_some();
    match (s, count) {
        (None, _) => ctx.out.array(0),
        (Some(_), Some(0)) => ctx.out.null_array(),
        (Some(s), count) => reply_range(ctx.out, s, start, end, rev, count.unwrap_or(0)),
    }
    ctx.hit(found);
    Ok(())
}

fn xlen(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    let s = stream::get(&mut slot)?;
    let (found, n) = (s.is_some(), s.map_or(0, Stream::len));
    ctx.hit(found);
    ctx.out.int(n as i64);
    Ok(())
}

/// XDEL key id [id ...]
fn xdel(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut slot = ctx.db.key(&args[1]);
    // The key is checked first (absent: 0), then every id before anything
    // is deleted.
    if stream::get(&mut slot)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let ids = args
        .iter()
        .skip(2)
        .map(|a| id::parse_id(a, 0, true))
        .collect::<Result<Vec<_>, _>>()?;
    let n = stream::with_mut(&mut slot, false, |s| {
        ids.iter().filter(|&&id| s.delete(id)).count()
    })?
    .unwrap_or(0);
    if n > 0 {
        ctx.dirty += n as u64;
        notify(ctx, "xdel", &args[1]);
    }
    ctx.out.int(n as i64);
    Ok(())
}

mod claim;
mod groups;
mod info;
mod read;
mod readgroup;

use info::{xinfo_stream, xsetid};
use read::xread;
