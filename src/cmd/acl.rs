//! ACL and its subcommands: users (SETUSER GETUSER DELUSER LIST USERS),
//! introspection (CAT WHOAMI DRYRUN LOG), GENPASS, and the ACL file (LOAD
//! SAVE). The model and the per-command check live in `crate::acl`.

use super::{CmdResult, Ctx, Error, Handler};
use crate::acl::{self, Denied};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("acl|setuser", setuser),
    ("acl|getuser", getuser),
    ("acl|deluser", deluser),
    ("acl|list", list),
    ("acl|users", users),
    ("acl|cat", cat),
    ("acl|whoami", whoami),
    ("acl|log", log),
    ("acl|dryrun", dryrun),
    ("acl|genpass", genpass),
    ("acl|load", load),
    ("acl|save", save),
    ("acl|help", help),
];

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn wrong_use(args: &Args<'_>) -> Error {
    Error::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

/// Whether new users and selectors get every channel.
pub fn pubsub_default_all(srv: &crate::server::Server) -> bool {
    srv.config.acl_pubsub_default.name() == "allchannels"
}

fn setuser(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args[2].iter().any(|&b| b == b' ' || b == 0) {
        return Err(Error::msg(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let words: Vec<&[u8]> = args.iter().skip(3).collect();
    let rules = acl::user::merge_selector_args(&words).map_err(Error::owned)?;
    let all = pubsub_default_all(ctx.srv);
    ctx.srv
        .acl
        .set_user(&name, &rules, all)
        .map_err(Error::owned)?;
    kill_revoked_subscribers(ctx.srv, &name, ctx.client.info.id);
    if ctx.client.pubsub.ever && *ctx.client.info.user.lock() == name {
        ctx.client.close_after_reply = revoked_own(ctx, &name);
    }
    ctx.out.ok();
    Ok(())
}

fn getuser(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let Some(u) = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|n| ctx.srv.acl.get(n))
    else {
        ctx.out.null();
        return Ok(());
    };
    let idx = &ctx.srv.acl.idx;
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let flags = u.flags();
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk(acl::user::hex(p).as_bytes());
    }
    selector_fields(out, &u.root, idx);
    out.bulk(b"selectors");
    out.array(u.selectors.len());
    for s in &u.selectors {
        out.map(3);
        selector_fields(out, s, idx);
    }
    Ok(())
}

fn selector_fields(out: &mut crate::resp::Reply, s: &acl::selector::Selector, idx: &acl::CmdIndex) {
    out.bulk(b"commands");
    out.bulk(s.describe_commands(idx).as_bytes());
    out.bulk(b"keys");
    out.bulk(s.describe_keys().as_bytes());
    out.bulk(b"channels");
    out.bulk(s.describe_channels().as_bytes());
}

/// After ACL SETUSER: connections of `name` subscribed to a channel or
/// pattern the user may no longer use are closed, as in Redis.
fn kill_revoked_subscribers(srv: &crate::server::Server, name: &str, except: u64) {
    let Some(u) = srv.acl.get(name) else { return };
    if u.root.allchannels {
        return;
    }
    let refused = srv.pubsub.subscribers_refused(|kind, channel, c| {
        c.id == except
            || *c.user.lock() != name
            || u.channel_allowed(channel, kind == crate::pubsub::Kind::Pattern)
    });
    for c in refused {
        c.request_kill();
    }
}

/// The same for the connection running ACL SETUSER: closed after the reply.
fn revoked_own(ctx: &Ctx<'_>, name: &str) -> bool {
    use crate::pubsub::Kind;
    let Some(u) = ctx.srv.acl.get(name) else {
        return false;
    };
    Kind::ALL.iter().any(|&k| {
        ctx.client
            .pubsub
            .names(k)
            .iter()
            .any(|ch| !u.channel_allowed(ch, k == Kind::Pattern))
    })
}

/// Closes the connections (but `except`) authenticated as any of `names`.
pub fn disconnect_users(srv: &crate::server::Server, names: &[&str], except: u64) {
    for c in srv.clients.snapshot() {
        if c.id != except && names.iter().any(|n| *c.user.lock() == *n) {
            c.request_kill();
        }
    }
}

fn deluser(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let names: Vec<String> = args
        .iter()
        .skip(2)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    if names.iter().any(|n| n == "default") {
        return Err(Error::msg("ERR The 'default' user cannot be removed"));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let n = ctx.srv.acl.delete(&refs);
    // The reply goes out before this connection closes, if it is one.
    let me = ctx.client.info.id;
    disconnect_users(ctx.srv, &refs, me);
    if refs.iter().any(|n| *ctx.client.info.user.lock() == *n) {
        ctx.client.close_after_reply = true;
    }
    ctx.out.int(n as i64);
    Ok(())
}

fn list(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let users = ctx.srv.acl.all();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(u.describe(&ctx.srv.acl.idx).as_bytes());
    }
    Ok(())
}

fn users(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let users = ctx.srv.acl.all();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(u.name.as_bytes());
    }
    Ok(())
}

fn cat(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    use super::command_info::ACL_CATEGORIES;
    match args.len() {
        2 => {
            ctx.out.array(ACL_CATEGORIES.len());
            for c in ACL_CATEGORIES {
                ctx.out.bulk(c.as_bytes());
            }
        }
        3 => {
            let name = String::from_utf8_lossy(&args[2]);
            let Some(i) = acl::index::category_index(&name) else {
                return Err(Error::owned(format!("ERR Unknown category '{name}'")));
            };
            let idx = &ctx.srv.acl.idx;
            let names: Vec<&str> = (0..idx.len)
                .filter(|&id| idx.cats[id] & (1 << i) != 0)
                .map(|id| idx.names[id])
                .collect();
            ctx.out.array(names.len());
            for n in names {
                ctx.out.bulk(n.as_bytes());
            }
        }
        _ => return Err(wrong_use(args)),
    }
    Ok(())
}

fn whoami(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() != 2 {
        return Err(wrong_use(args));
    }
    let name = ctx.client.info.user.lock().clone();
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn log(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let count = match args.len() {
        2 => 10,
        3 if args[2].eq_ignore_ascii_case(b"reset") => {
            ctx.srv.acl.log.reset();
            ctx.out.ok();
            return Ok(());
        }
        3 => crate::util::num::parse_i64(&args[2]).ok_or(Error::NotInteger)?,
        _ => return Err(wrong_use(args)),
    };
    let entries = ctx.srv.acl.log.newest(count.max(0) as usize);
    let now = crate::server::now_ms();
    let out = &mut *ctx.out;
    out.array(entries.len());
    for e in entries {
        out.map(7);
        out.bulk(b"count");
        out.int(e.count as i64);
        out.bulk(b"reason");
        out.bulk(e.reason.as_bytes());
        out.bulk(b"context");
        out.bulk(e.context.as_bytes());
        out.bulk(b"object");
        out.bulk(&e.object);
        out.bulk(b"username");
        out.bulk(&e.username);
        out.bulk(b"age-seconds");
        out.double((now - e.at_ms).max(0) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}

/// The command (or subcommand) `args` names, by its original name.
fn dryrun_command(ctx: &Ctx<'_>, args: &Args<'_>) -> Result<usize, Error> {
    let idx = &ctx.srv.acl.idx;
    let name = String::from_utf8_lossy(&args[3]).to_ascii_lowercase();
    let not_found = || Error::owned(format!("ERR Command '{name}' not found"));
    let mut id = idx
        .lookup(&name)
        .filter(|&id| idx.parent[id].is_none())
        .ok_or_else(not_found)?;
    if idx.is_container(id) && args.len() > 4 {
        let sub = String::from_utf8_lossy(&args[4]).to_ascii_lowercase();
        id = idx.lookup(&format!("{name}|{sub}")).ok_or_else(not_found)?;
    }
    let cmd = ctx.srv.commands.get(id);
    let n = (args.len() - 3) as i32;
    if (cmd.arity > 0 && n != cmd.arity) || n < -cmd.arity {
        return Err(Error::WrongArity(cmd.name.into()));
    }
    Ok(id)
}

fn dryrun(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let uname = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(u) = ctx.srv.acl.get(&uname) else {
        return Err(Error::owned(format!("ERR User '{uname}' not found")));
    };
    let id = dryrun_command(ctx, args)?;
    let cmd = ctx.srv.commands.get(id);
    let mut buf = Vec::new();
    let mut spans = Vec::with_capacity(args.len() - 3);
    for a in args.iter().skip(3) {
        spans.push((buf.len(), buf.len() + a.len()));
        buf.extend_from_slice(a);
    }
    let sub = crate::resp::parse::Parser::args_over(&buf, &spans);
    match u.check(&ctx.srv.acl.idx, cmd, &sub) {
        Ok(()) => ctx.out.ok(),
        Err(d) => {
            let msg = match d {
                Denied::Command => format!(
                    "This user has no permissions to run the '{}' command",
                    cmd.name
                ),
                Denied::Key(i) => format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(&sub[i])
                ),
                Denied::Channel(i) => format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(&sub[i])
                ),
            };
            ctx.out.bulk(msg.as_bytes());
        }
    }
    Ok(())
}

/// Random bytes from the kernel.
fn secure_random(buf: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled part of `buf`.
        let n = unsafe {
            libc::getrandom(
                buf[filled..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - filled,
                0,
            )
        };
        if n <= 0 {
            return false;
        }
        filled += n as usize;
    }
    true
}

fn genpass(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let bits = match args.len() {
        2 => 256,
        3 => {
            let b = crate::util::num::parse_i64(&args[2]).ok_or(Error::NotInteger)?;
            if !(1..=4096).contains(&b) {
                return Err(Error::msg(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                ));
            }
            b as usize
        }
        _ => return Err(wrong_use(args)),
    };
    let chars = bits.div_ceil(4);
    let mut raw = vec![0u8; chars.div_ceil(2)];
    if !secure_random(&mut raw) {
        return Err(Error::msg("ERR failed to read random bytes"));
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    ctx.out.bulk(&hex.as_bytes()[..chars]);
    Ok(())
}

fn load(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let path = ctx.srv.config.aclfile.get();
    if path.is_empty() {
        return Err(Error::msg(NO_ACLFILE));
    }
    let all = pubsub_default_all(ctx.srv);
    acl::file::load(&ctx.srv.acl, &path, all).map_err(|e| Error::owned(format!("ERR {e}")))?;
    // Every user but `default` was replaced: their connections close (this
    // one after its reply), as in Redis.
    let me = ctx.client.info.id;
    for c in ctx.srv.clients.snapshot() {
        if c.id != me && *c.user.lock() != "default" {
            c.request_kill();
        }
    }
    if *ctx.client.info.user.lock() != "default" {
        ctx.client.close_after_reply = true;
    }
    ctx.out.ok();
    Ok(())
}

fn save(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let path = ctx.srv.config.aclfile.get();
    if path.is_empty() {
        return Err(Error::msg(NO_ACLFILE));
    }
    if let Err(e) = acl::file::save(&ctx.srv.acl, &path) {
        crate::warning!("{e}");
        return Err(Error::msg(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
        ));
    }
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
    Ok(())
}
