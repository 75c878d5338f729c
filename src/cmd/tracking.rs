//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: the commands of
//! client-side caching (the state and delivery are `pubsub::tracking`).
//! Errors and the order they are checked in are Redis 7.0's.

use std::sync::atomic::Ordering;

use super::{CmdResult, Ctx, Error, Handler};
use crate::pubsub::tracking::opt;
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("client|tracking", tracking),
    ("client|caching", caching),
    ("client|getredir", getredir),
    ("client|trackinginfo", trackinginfo),
];

/// Whether one prefix starts the other (or they are equal).
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Redis prints prefixes with `%s`: up to a NUL byte.
fn shown(p: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end])
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]
fn tracking(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut redirect = 0u64;
    let mut opts = 0u8;
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        let more = j + 1 < args.len();
        if a.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(Error::msg(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = crate::util::num::parse_i64(&args[j]).ok_or(Error::NotInteger)?;
            let exists = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.srv.clients.get(id))
                .is_some();
            if !exists {
                return Err(Error::msg(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
            redirect = id as u64;
        } else if a.eq_ignore_ascii_case(b"bcast") {
            opts |= opt::BCAST;
        } else if a.eq_ignore_ascii_case(b"optin") {
            opts |= opt::OPTIN;
        } else if a.eq_ignore_ascii_case(b"optout") {
            opts |= opt::OPTOUT;
        } else if a.eq_ignore_ascii_case(b"noloop") {
            opts |= opt::NOLOOP;
        } else if a.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            prefixes.push(args[j].to_vec());
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let tr = &ctx.srv.tracking;
    if args[2].eq_ignore_ascii_case(b"off") {
        tr.disable(&ctx.client.info);
        ctx.out.ok();
        return Ok(());
    }
    if !args[2].eq_ignore_ascii_case(b"on") {
        return Err(Error::Syntax);
    }
    if opts & opt::BCAST == 0 && !prefixes.is_empty() {
        return Err(Error::msg(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let old = tr.get(ctx.client.id());
    if let Some(old) = &old
        && old.has(opt::BCAST) != (opts & opt::BCAST != 0)
    {
        return Err(Error::msg(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if opts & opt::BCAST != 0 && opts & (opt::OPTIN | opt::OPTOUT) != 0 {
        return Err(Error::msg(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if opts & opt::OPTIN != 0 && opts & opt::OPTOUT != 0 {
        return Err(Error::msg(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if let Some(old) = &old
        && ((opts & opt::OPTIN != 0 && old.has(opt::OPTOUT))
            || (opts & opt::OPTOUT != 0 && old.has(opt::OPTIN)))
    {
        return Err(Error::msg(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if opts & opt::BCAST != 0 {
        let existing: &[Vec<u8>] = old.as_ref().map_or(&[], |t| &t.prefixes);
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(e) = existing.iter().find(|e| overlaps(e, p)) {
                return Err(Error::owned(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    shown(p),
                    shown(e)
                )));
            }
            if let Some(q) = prefixes[i + 1..].iter().find(|q| overlaps(p, q)) {
                return Err(Error::owned(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    shown(p),
                    shown(q)
                )));
            }
        }
    }
    tr.enable(&ctx.client.info, redirect, opts, prefixes);
    ctx.out.ok();
    Ok(())
}

/// CLIENT CACHING YES|NO: for the next command, in OPTIN/OPTOUT mode.
fn caching(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let Some(tr) = ctx.srv.tracking.get(ctx.client.id()) else {
        return Err(Error::msg(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    let a = &args[2];
    if a.eq_ignore_ascii_case(b"yes") {
        if !tr.has(opt::OPTIN) {
            return Err(Error::msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if a.eq_ignore_ascii_case(b"no") {
        if !tr.has(opt::OPTOUT) {
            return Err(Error::msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(Error::Syntax);
    }
    tr.caching.store(true, Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

/// CLIENT GETREDIR: the redirect id, 0 without one, -1 when not tracking.
fn getredir(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let id = ctx.srv.tracking.redirect_of(ctx.client.id());
    ctx.out.int(id);
    Ok(())
}

fn trackinginfo(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let tr = ctx.srv.tracking.get(ctx.client.id());
    let mut fl: Vec<&[u8]> = Vec::new();
    match &tr {
        None => fl.push(b"off"),
        Some(t) => {
            fl.push(b"on");
            let caching = t.caching.load(Ordering::Relaxed);
            if t.has(opt::BCAST) {
                fl.push(b"bcast");
            }
            if t.has(opt::OPTIN) {
                fl.push(b"optin");
                if caching {
                    fl.push(b"caching-yes");
                }
            }
            if t.has(opt::OPTOUT) {
                fl.push(b"optout");
                if caching {
                    fl.push(b"caching-no");
                }
            }
            if t.has(opt::NOLOOP) {
                fl.push(b"noloop");
            }
            if t.info
                .has_flag(crate::server::client::list_flags::TRACKING_BROKEN)
            {
                fl.push(b"broken_redirect");
            }
        }
    }
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(fl.len());
    for f in fl {
        out.bulk(f);
    }
    out.bulk(b"redirect");
    out.int(tr.as_ref().map_or(-1, |t| t.redirect as i64));
    out.bulk(b"prefixes");
    let prefixes: &[Vec<u8>] = tr.as_ref().map_or(&[], |t| &t.prefixes);
    out.array(prefixes.len());
    for p in prefixes {
        out.bulk(p);
    }
    Ok(())
}
