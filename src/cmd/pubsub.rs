//! Pub/Sub commands: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE
//! SSUBSCRIBE SUNSUBSCRIBE PUBLISH SPUBLISH and PUBSUB's subcommands.
//! Delivery itself lives in [`crate::pubsub`].

use std::sync::atomic::Ordering;

use super::{CmdResult, Ctx, Error, Handler};
use crate::pubsub::Kind;
use crate::resp::{Args, Reply};
use crate::server::Server;
use crate::server::client::{Client, list_flags};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("subscribe", subscribe),
    ("psubscribe", psubscribe),
    ("ssubscribe", ssubscribe),
    ("unsubscribe", unsubscribe),
    ("punsubscribe", punsubscribe),
    ("sunsubscribe", sunsubscribe),
    ("publish", publish),
    ("spublish", spublish),
    ("pubsub|channels", channels),
    ("pubsub|shardchannels", shardchannels),
    ("pubsub|numsub", numsub),
    ("pubsub|shardnumsub", shardnumsub),
    ("pubsub|numpat", numpat),
    ("pubsub|help", help),
    ("monitor", monitor),
];

/// Commands a RESP2 client may run while it has subscriptions.
pub fn allowed_in_subscribed_mode(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The count a confirmation carries: shard subscriptions are counted on
/// their own, channels and patterns together.
fn count_for(client: &Client, kind: Kind) -> usize {
    match kind {
        Kind::Shard => client.pubsub.len(Kind::Shard),
        _ => client.pubsub.len(Kind::Channel) + client.pubsub.len(Kind::Pattern),
    }
}

/// Queues a confirmation frame on the client's outbox, in the protocol the
/// client speaks now.
fn confirm(client: &mut Client, resp3: bool, verb: &[u8], name: Option<&[u8]>, count: usize) {
    let mut r = Reply {
        buf: Vec::with_capacity(32 + name.map_or(0, |n| n.len())),
        resp3,
        limit: 0,
        sent: 0,
    };
    r.push(3);
    r.bulk(verb);
    match name {
        Some(n) => r.bulk(n),
        None => r.null(),
    }
    r.int(count as i64);
    client.info.outbox.write(&r.buf);
    client.pubsub.ever = true;
}

/// Mirrors the subscription counts into what CLIENT LIST shows.
fn sync_info(client: &Client) {
    for kind in Kind::ALL {
        client.info.subs[kind as usize].store(client.pubsub.len(kind), Ordering::Relaxed);
    }
    client
        .info
        .set_flag(list_flags::PUBSUB, !client.pubsub.is_empty());
}

fn subscribe_to(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    let resp3 = ctx.out.resp3;
    let verb = kind.verbs().0;
    for name in args.iter().skip(1) {
        let client = &mut *ctx.client;
        if client.pubsub.has(kind, name) {
            let n = count_for(client, kind);
            confirm(client, resp3, verb, Some(name), n);
            continue;
        }
        client.pubsub.insert(kind, name);
        // The confirmation is queued before the subscription is visible, so
        // no message on it can come first.
        let n = count_for(client, kind);
        confirm(client, resp3, verb, Some(name), n);
        ctx.srv.pubsub.add(kind, name, &client.info);
    }
    sync_info(ctx.client);
    Ok(())
}

fn unsubscribe_from(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    let resp3 = ctx.out.resp3;
    let verb = kind.verbs().1;
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args.iter().skip(1).map(|a| a.to_vec()).collect()
    } else {
        ctx.client.pubsub.names(kind)
    };
    let client = &mut *ctx.client;
    if names.is_empty() {
        let n = count_for(client, kind);
        confirm(client, resp3, verb, None, n);
    }
    for name in &names {
        // Removed first: every message on it is queued before the confirmation.
        if client.pubsub.remove(kind, name) {
            ctx.srv.pubsub.remove(kind, name, client.id());
        }
        let n = count_for(client, kind);
        confirm(client, resp3, verb, Some(name), n);
    }
    sync_info(ctx.client);
    Ok(())
}

/// Drops every subscription without confirmations (RESET, disconnect).
pub fn unsubscribe_all(srv: &Server, client: &mut Client) {
    for kind in Kind::ALL {
        for name in client.pubsub.take_all(kind) {
            srv.pubsub.remove(kind, &name, client.id());
        }
    }
    sync_info(client);
}

fn subscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Shard)
}

/// The `pubsub` class of `client-output-buffer-limit`: `[hard, soft, seconds]`.
/// MONITOR: from now on the client receives a line for every command run
/// (`pubsub::monitor`). A client already monitoring gets no reply, as in
/// Redis.
fn monitor(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if ctx.srv.pubsub.monitors.add(&ctx.client.info) {
        // The connection now also waits on its outbox.
        ctx.client.pubsub.ever = true;
        ctx.client.info.set_flag(list_flags::MONITOR, true);
        ctx.out.ok();
    }
    Ok(())
}

/// Leaves MONITOR mode (RESET, disconnect).
pub fn stop_monitoring(srv: &Server, client: &mut Client) {
    if client.info.has_flag(list_flags::MONITOR) {
        srv.pubsub.monitors.remove(client.info.id);
        client.info.set_flag(list_flags::MONITOR, false);
    }
}

pub fn pubsub_limits(srv: &Server) -> [i64; 3] {
    let class = crate::config::CLIENT_CLASSES
        .iter()
        .position(|c| *c == "pubsub")
        .unwrap_or(2);
    srv.config.client_output_buffer_limit.get(class)
}

fn publish(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let limits = pubsub_limits(ctx.srv);
    let n = ctx
        .srv
        .pubsub
        .publish(&args[1], &args[2], limits, ctx.db.now_ms);
    ctx.out.int(n as i64);
    Ok(())
}

fn spublish(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let limits = pubsub_limits(ctx.srv);
    let n = ctx
        .srv
        .pubsub
        .spublish(&args[1], &args[2], limits, ctx.db.now_ms);
    ctx.out.int(n as i64);
    Ok(())
}

fn bad_subcommand(args: &Args<'_>) -> Error {
    Error::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

fn list_names(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    if args.len() > 3 {
        return Err(bad_subcommand(args));
    }
    let pattern = (args.len() == 3).then(|| &args[2]);
    let names = ctx.srv.pubsub.names(kind, pattern);
    ctx.out.bulk_array(names.iter().map(|n| n.as_slice()));
    Ok(())
}

fn channels(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    list_names(ctx, args, Kind::Channel)
}

fn shardchannels(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    list_names(ctx, args, Kind::Shard)
}

fn count_each(ctx: &mut Ctx<'_>, args: &Args<'_>, kind: Kind) -> CmdResult {
    ctx.out.array((args.len() - 2) * 2);
    for name in args.iter().skip(2) {
        ctx.out.bulk(name);
        ctx.out.int(ctx.srv.pubsub.count(kind, name) as i64);
    }
    Ok(())
}

fn numsub(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_each(ctx, args, Kind::Channel)
}

fn shardnumsub(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    count_each(ctx, args, Kind::Shard)
}

fn numpat(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.int(ctx.srv.pubsub.active(Kind::Pattern) as i64);
    Ok(())
}

const HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Channels with at least one subscriber, matching <pattern> (default: all).",
    "NUMPAT",
    "    How many pattern subscriptions exist.",
    "NUMSUB [<channel> ...]",
    "    Subscriber count of each channel given (pattern subscriptions not counted).",
    "SHARDCHANNELS [<pattern>]",
    "    Shard channels with at least one subscriber, matching <pattern> (default: all).",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Subscriber count of each shard channel given.",
];

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help("PUBSUB", HELP);
    Ok(())
}
