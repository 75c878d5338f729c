//! Connection commands: PING ECHO HELLO AUTH SELECT QUIT RESET.
//! (CLIENT and its subcommands live in `client.rs`.)

use std::sync::atomic::Ordering;

use super::client::{set_name, valid_name};
use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::server::client::{ReplyMode, list_flags};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("ping", ping),
    ("echo", echo),
    ("hello", hello),
    ("auth", auth),
    ("select", select),
    ("quit", quit),
    ("reset", reset),
];

const NAME_ERROR: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn ping(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    // RESP2 subscribers get PING's answer as an array, like their messages.
    if args.len() > 2 {
        return Err(Error::WrongArity("ping".into()));
    }
    if !ctx.out.resp3 && ctx.client.info.has_flag(list_flags::PUBSUB) {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.iter().nth(1).unwrap_or(b""));
        return Ok(());
    }
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => return Err(Error::WrongArity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

fn wrongpass() -> Error {
    Error::msg("WRONGPASS invalid username-password pair or user is disabled.")
}

/// AUTH / HELLO AUTH: the connection is `user`'s from now on; a failure is
/// recorded in the ACL LOG.
fn authenticate(ctx: &mut Ctx<'_>, user: &[u8], pass: &[u8]) -> CmdResult {
    let Some(u) = ctx.srv.acl.authenticate(user, pass) else {
        let info = crate::acl::client_info(ctx.srv, ctx.client, ctx.cmd.name, ctx.out.len());
        crate::acl::log_auth_failure(ctx.srv, user, info);
        return Err(wrongpass());
    };
    ctx.client.authenticated = true;
    *ctx.client.info.user.lock() = u.name.clone();
    ctx.client.user = Some(u);
    Ok(())
}

fn auth(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => {
            if ctx.srv.acl.default_user().nopass {
                return Err(Error::msg(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            (b"default", &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => return Err(Error::Syntax),
    };
    authenticate(ctx, user, pass)?;
    ctx.out.ok();
    Ok(())
}

/// Switches the protocol of replies from now on.
fn set_protocol(ctx: &mut Ctx<'_>, version: usize) {
    ctx.out.resp3 = version == 3;
    ctx.client.info.resp.store(version, Ordering::Relaxed);
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`. As in Redis 7.0,
/// options take effect one by one as they are read: a later bad option
/// leaves an earlier AUTH or SETNAME done.
fn hello(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut version = None;
    let mut next = 1;
    if args.len() >= 2 {
        let v = crate::util::num::parse_i64(&args[1]).ok_or(Error::msg(
            "ERR Protocol version is not an integer or out of range",
        ))?;
        if !(2..=3).contains(&v) {
            return Err(Error::msg("NOPROTO unsupported protocol version"));
        }
        version = Some(v as usize);
        next = 2;
    }
    while next < args.len() {
        let opt = &args[next];
        let more = args.len() - 1 - next;
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            authenticate(ctx, &args[next + 1], &args[next + 2])?;
            next += 3;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            let n = &args[next + 1];
            if !valid_name(n) {
                return Err(Error::msg(NAME_ERROR));
            }
            set_name(ctx, n);
            next += 2;
        } else {
            return Err(Error::owned(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(Error::msg(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(v) = version {
        set_protocol(ctx, v);
    }
    let proto = ctx.client.info.resp.load(Ordering::Relaxed);
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(proto as i64);
    out.bulk(b"id");
    out.int(ctx.client.id() as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let db = crate::util::num::parse_i64(&args[1]).ok_or(Error::NotInteger)?;
    if i32::try_from(db).is_err() {
        return Err(Error::msg(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    if db < 0 || db as usize >= ctx.srv.ks.db_count() {
        return Err(Error::msg("ERR DB index is out of range"));
    }
    select_db(ctx, db as usize);
    ctx.out.ok();
    Ok(())
}

/// Makes `db` the connection's database (the three places that record it).
pub fn select_db(ctx: &mut Ctx<'_>, db: usize) {
    ctx.client.db = db;
    ctx.db.index = db;
    ctx.client.info.db.store(db, Ordering::Relaxed);
}

fn quit(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// RESET: the connection as if it had just connected. State owned by other
/// families (MULTI, WATCH, subscriptions, tracking) is cleared by them.
fn reset(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    super::multi::reset(&ctx.srv.ks, ctx.client, ctx.db.locks);
    super::pubsub::unsubscribe_all(ctx.srv, ctx.client);
    super::pubsub::stop_monitoring(ctx.srv, ctx.client);
    ctx.srv.tracking.disable(&ctx.client.info);
    select_db(ctx, 0);
    set_protocol(ctx, 2);
    ctx.client.authenticated = !ctx.srv.acl.default_needs_auth();
    *ctx.client.info.user.lock() = "default".to_string();
    ctx.client.user = None;
    *ctx.client.info.name.lock() = None;
    ctx.client.reply_mode = ReplyMode::On;
    ctx.client.no_evict = false;
    ctx.client.no_touch = false;
    ctx.client
        .info
        .set_flag(list_flags::NO_EVICT | list_flags::NO_TOUCH, false);
    ctx.out.simple("RESET");
    Ok(())
}
