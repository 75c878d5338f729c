//! CLIENT subcommands: ID SETNAME GETNAME SETINFO LIST INFO KILL REPLY
//! NO-EVICT NO-TOUCH HELP.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::server::client::{ClientInfo, ReplyMode, list_flags};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("client|id", id),
    ("client|setname", setname),
    ("client|getname", getname),
    ("client|setinfo", setinfo),
    ("client|list", list),
    ("client|info", info),
    ("client|kill", kill),
    ("client|reply", reply),
    ("client|no-evict", no_evict),
    ("client|no-touch", no_touch),
    ("client|unblock", unblock),
    ("client|help", help),
    ("client|pause", pause),
    ("client|unpause", unpause),
];

/// Names and library attributes are shown unquoted in CLIENT LIST, so they
/// are limited to printable ASCII without spaces.
pub fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|c| (b'!'..=b'~').contains(c))
}

/// Sets (or, with an empty name, clears) the connection's name.
pub fn set_name(ctx: &mut Ctx<'_>, name: &[u8]) {
    *ctx.client.info.name.lock() = (!name.is_empty()).then(|| name.to_vec());
}

fn id(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.int(ctx.client.id() as i64);
    Ok(())
}

fn setname(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if !valid_name(&args[2]) {
        return Err(Error::msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    set_name(ctx, &args[2]);
    ctx.out.ok();
    Ok(())
}

fn getname(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    match &*ctx.client.info.name.lock() {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    Ok(())
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2).
fn setinfo(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let attr = &args[2];
    let slot = if attr.eq_ignore_ascii_case(b"lib-name") {
        &ctx.client.info.lib_name
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        &ctx.client.info.lib_ver
    } else {
        return Err(Error::owned(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )));
    };
    let value = &args[3];
    if !valid_name(value) {
        return Err(Error::owned(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        )));
    }
    *slot.lock() = (!value.is_empty()).then(|| value.to_vec());
    ctx.out.ok();
    Ok(())
}

/// Client types, as CLIENT LIST TYPE and CLIENT KILL TYPE name them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    PubSub,
    Master,
}

fn parse_type(name: &[u8]) -> Result<ClientType, Error> {
    let t = match name.to_ascii_lowercase().as_slice() {
        b"normal" => ClientType::Normal,
        b"slave" | b"replica" => ClientType::Replica,
        b"pubsub" => ClientType::PubSub,
        b"master" => ClientType::Master,
        _ => {
            return Err(Error::owned(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(name)
            )));
        }
    };
    Ok(t)
}

/// Replicas attached by SYNC/PSYNC, a replica's link to its master,
/// subscribers, the rest.
fn type_of(c: &ClientInfo) -> ClientType {
    if c.has_flag(list_flags::REPLICA) {
        ClientType::Replica
    } else if c.has_flag(list_flags::MASTER) {
        ClientType::Master
    } else if c.has_flag(list_flags::PUBSUB) {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

fn flag_letters(c: &ClientInfo, closing: bool) -> String {
    let flags = c.flags.load(Ordering::Relaxed);
    let mut s = String::new();
    if flags & list_flags::MONITOR != 0 {
        s.push('O');
    } else if flags & list_flags::REPLICA != 0 {
        s.push('S');
    } else if flags & list_flags::MASTER != 0 {
        s.push('M');
    }
    for (bit, letter) in [
        (list_flags::PUBSUB, 'P'),
        (list_flags::MULTI, 'x'),
        (list_flags::BLOCKED, 'b'),
        (list_flags::TRACKING, 't'),
        (list_flags::TRACKING_BROKEN, 'R'),
        (list_flags::TRACKING_BCAST, 'B'),
        (list_flags::DIRTY_CAS, 'd'),
    ] {
        if flags & bit != 0 {
            s.push(letter);
        }
    }
    if closing {
        s.push('c');
    }
    for (bit, letter) in [
        (list_flags::UNIX_SOCKET, 'U'),
        (list_flags::NO_EVICT, 'e'),
        (list_flags::NO_TOUCH, 'T'),
    ] {
        if flags & bit != 0 {
            s.push(letter);
        }
    }
    if s.is_empty() {
        s.push('N');
    }
    s
}

/// One CLIENT LIST line (without its newline), fields in Redis 7.0's order
/// plus 7.2's `lib-name` and `lib-ver`. For the calling connection, the
/// values that only it knows (running command, pending output) are current.
fn info_line(ctx: &Ctx<'_>, c: &ClientInfo, now_ms: i64) -> String {
    let me = (c.id == ctx.client.id()).then(|| Me {
        cmd: ctx.cmd.name,
        obl: ctx.out.pending() as u64,
        closing: ctx.client.close_after_reply,
    });
    client_line(ctx.srv, c, me, now_ms)
}

/// What the connection asking knows about itself better than its
/// [`ClientInfo`] does.
pub struct Me {
    /// The command running.
    pub cmd: &'static str,
    /// Reply bytes pending.
    pub obl: u64,
    pub closing: bool,
}

/// One CLIENT LIST line (also ACL LOG's client-info).
pub fn client_line(
    srv: &crate::server::Server,
    c: &ClientInfo,
    me: Option<Me>,
    now_ms: i64,
) -> String {
    let name = c.name();
    let lib_name = c.lib_name.lock().clone().unwrap_or_default();
    let lib_ver = c.lib_ver.lock().clone().unwrap_or_default();
    let cmd = match &me {
        Some(m) => m.cmd,
        None => match c.last_cmd.load(Ordering::Relaxed) {
            usize::MAX => "NULL",
            id => srv.commands.get(id).name,
        },
    };
    // Replies not written yet: the first 16 KiB are Redis's reply buffer
    // (`obl`), the rest its reply list (`omem`, `oll` blocks), where the
    // published messages waiting in the outbox count too.
    let pending = match &me {
        Some(m) => m.obl,
        None => c.out_pending.load(Ordering::Relaxed),
    };
    let reply_buf = crate::server::client_mem::REPLY_BUF;
    let obl = pending.min(reply_buf);
    let outbox = c.outbox.pending() as u64;
    let omem = pending - obl + outbox;
    let oll = (pending - obl).div_ceil(reply_buf) + outbox.div_ceil(reply_buf);
    let tot_mem = c.tot_mem();
    let argv_mem = c.argv_mem.load(Ordering::Relaxed);
    let multi_mem = c.multi_mem.load(Ordering::Relaxed);
    let closing = me.as_ref().is_some_and(|m| m.closing);
    let me = me.is_some();
    let qbuf = c.qbuf.load(Ordering::Relaxed);
    let qbuf_free = c.qbuf_free.load(Ordering::Relaxed);
    let idle_ms = if me {
        0
    } else {
        now_ms - c.last_interaction_ms.load(Ordering::Relaxed)
    };
    let mut s = String::with_capacity(320);
    let _ = write!(
        s,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} \
         qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} \
         events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&name),
        (now_ms - c.created_ms).max(0) / 1000,
        idle_ms.max(0) / 1000,
        flag_letters(c, closing),
        c.db.load(Ordering::Relaxed),
        c.subs[0].load(Ordering::Relaxed),
        c.subs[1].load(Ordering::Relaxed),
        c.subs[2].load(Ordering::Relaxed),
        c.multi.load(Ordering::Relaxed),
        qbuf,
        qbuf_free,
        argv_mem,
        multi_mem,
        c.reply_buf.size(),
        c.reply_buf.shown_peak(),
        obl,
        oll,
        omem,
        tot_mem,
        cmd,
        c.user.lock(),
        if c.has_flag(list_flags::TRACKING) {
            srv.tracking.redirect_of(c.id)
        } else {
            -1
        },
        c.resp.load(Ordering::Relaxed),
        String::from_utf8_lossy(&lib_name),
        String::from_utf8_lossy(&lib_ver),
    );
    s
}

/// CLIENT LIST [TYPE type] | [ID id ...]
fn list(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    // A connection told to close (CLIENT KILL, ACL changes) is gone for
    // Redis, which frees it at once; here its task is still finishing.
    let all: Vec<_> = ctx
        .srv
        .clients
        .snapshot()
        .into_iter()
        .filter(|c| !c.killed.load(Ordering::Relaxed))
        .collect();
    let chosen: Vec<_> = if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
        let t = parse_type(&args[3])?;
        all.into_iter().filter(|c| type_of(c) == t).collect()
    } else if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
        let mut v = Vec::new();
        // Listed in argument order, as asked; unknown ids are skipped.
        for a in args.iter().skip(3) {
            let id = crate::util::num::parse_i64(a).ok_or(Error::msg("ERR Invalid client ID"))?;
            if let Some(c) = all.iter().find(|c| c.id as i64 == id) {
                v.push(c.clone());
            }
        }
        v
    } else if args.len() == 2 {
        all
    } else {
        return Err(Error::Syntax);
    };
    let now = crate::server::now_ms();
    let mut text = String::new();
    for c in &chosen {
        text.push_str(&info_line(ctx, c, now));
        text.push('\n');
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn info(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let mut line = info_line(ctx, &ctx.client.info, crate::server::now_ms());
    line.push('\n');
    ctx.out.verbatim(line.as_bytes());
    Ok(())
}

/// The filters of CLIENT KILL's option form.
#[derive(Default)]
struct KillFilter<'a> {
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    kind: Option<ClientType>,
    id: Option<u64>,
    user: Option<&'a [u8]>,
    skip_me: bool,
}

impl KillFilter<'_> {
    fn matches(&self, c: &ClientInfo, me: u64) -> bool {
        self.addr.is_none_or(|a| a == c.addr.as_bytes())
            && self.laddr.is_none_or(|a| a == c.laddr.as_bytes())
            && self.kind.is_none_or(|t| t == type_of(c))
            && self.id.is_none_or(|id| id == c.id)
            && self.user.is_none_or(|u| u == c.user.lock().as_bytes())
            && !(self.skip_me && c.id == me)
    }
}

fn parse_kill_filter<'a>(args: &Args<'a>) -> Result<KillFilter<'a>, Error> {
    let mut f = KillFilter {
        skip_me: true,
        ..Default::default()
    };
    let mut i = 2;
    while i < args.len() {
        let opt = args.arg(i);
        let Some(val) = args.get(i + 1) else {
            return Err(Error::Syntax);
        };
        match opt.to_ascii_lowercase().as_slice() {
            b"id" => {
                let id = crate::util::num::parse_i64(val)
                    .filter(|n| *n >= 1)
                    .ok_or(Error::msg("ERR client-id should be greater than 0"))?;
                f.id = Some(id as u64);
            }
            b"type" => f.kind = Some(parse_type(val)?),
            b"addr" => f.addr = Some(val),
            b"laddr" => f.laddr = Some(val),
            b"user" => {
                // `default` is the only user there is.
                if val != b"default" {
                    return Err(Error::owned(format!(
                        "ERR No such user '{}'",
                        String::from_utf8_lossy(val)
                    )));
                }
                f.user = Some(val);
            }
            b"skipme" => {
                f.skip_me = if val.eq_ignore_ascii_case(b"yes") {
                    true
                } else if val.eq_ignore_ascii_case(b"no") {
                    false
                } else {
                    return Err(Error::Syntax);
                };
            }
            _ => return Err(Error::Syntax),
        }
        i += 2;
    }
    Ok(f)
}

/// CLIENT KILL addr:port (replies +OK or an error) or CLIENT KILL <filter
/// value>... (replies the number killed). Killing oneself closes the
/// connection after this reply.
fn kill(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let old_form = args.len() == 3;
    let filter = if old_form {
        KillFilter {
            addr: Some(&args[2]),
            skip_me: false,
            ..Default::default()
        }
    } else {
        parse_kill_filter(args)?
    };
    let me = ctx.client.id();
    let mut killed = 0;
    for c in ctx.srv.clients.snapshot() {
        if !filter.matches(&c, me) {
            continue;
        }
        if c.id == me {
            ctx.client.close_after_reply = true;
        } else {
            c.request_kill();
            // Gone from CLIENT LIST at once, as in Redis, even if its task
            // notices a moment later; the connection replies once it let go
            // of its memory (`client::wait_departed`).
            ctx.srv.clients.unregister(c.id);
            ctx.client.departing.push(c);
        }
        killed += 1;
    }
    match (old_form, killed) {
        (true, 0) => return Err(Error::msg("ERR No such client")),
        (true, _) => ctx.out.ok(),
        (false, n) => ctx.out.int(n),
    }
    Ok(())
}

fn parse_on_off(arg: &[u8]) -> Result<bool, Error> {
    if arg.eq_ignore_ascii_case(b"on") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"off") {
        Ok(false)
    } else {
        Err(Error::Syntax)
    }
}

/// CLIENT REPLY ON|OFF|SKIP. OFF and SKIP send nothing; the dispatcher
/// drops replies according to the mode.
fn reply(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if mode.eq_ignore_ascii_case(b"off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        // Already off stays off; otherwise skip the next command's reply.
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(Error::Syntax);
    }
    Ok(())
}

fn no_evict(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let on = parse_on_off(&args[2])?;
    ctx.client.no_evict = on;
    ctx.client.info.set_flag(list_flags::NO_EVICT, on);
    if !on {
        // The client may be the one over the limit now.
        crate::server::client_mem::check(ctx.srv);
    }
    ctx.out.ok();
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE|ALL] (`server::pause`).
fn pause(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() > 4 {
        return Err(Error::msg(
            "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.",
        ));
    }
    let ms = crate::util::num::parse_i64(&args[2])
        .ok_or(Error::msg("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(Error::msg("ERR timeout is negative"));
    }
    let all = match args.get(3) {
        None => true,
        Some(m) if m.eq_ignore_ascii_case(b"all") => true,
        Some(m) if m.eq_ignore_ascii_case(b"write") => false,
        Some(_) => return Err(Error::msg("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let until = crate::server::now_ms().saturating_add(ms);
    ctx.srv.pause.pause(&ctx.srv.ks, until, all);
    ctx.out.ok();
    Ok(())
}

fn unpause(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.srv.pause.unpause(&ctx.srv.ks);
    ctx.out.ok();
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking wait,
/// as a timeout (its null reply) or with an UNBLOCKED error.
fn unblock(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() > 4 {
        return Err(Error::owned(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    let id = crate::util::num::parse_i64(&args[2]).ok_or(Error::NotInteger)?;
    let error = match args.get(3) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"timeout") => false,
        Some(a) if a.eq_ignore_ascii_case(b"error") => true,
        Some(_) => {
            return Err(Error::msg(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    };
    let unblocked = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.srv.clients.get(id))
        .and_then(|c| c.waiter.lock().clone())
        .is_some_and(|w| w.unblock(error));
    ctx.out.int(unblocked as i64);
    Ok(())
}

/// CLIENT NO-TOUCH ON|OFF (Redis 7.2): reads by this client leave keys'
/// access times alone.
fn no_touch(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let on = parse_on_off(&args[2])?;
    ctx.client.no_touch = on;
    ctx.client.info.set_flag(list_flags::NO_TOUCH, on);
    ctx.out.ok();
    Ok(())
}

const HELP: &[&str] = &[
    "GETNAME",
    "    Return the name of this connection.",
    "ID",
    "    Return the id of this connection.",
    "INFO",
    "    Return information about this connection.",
    "KILL <ip:port>",
    "    Kill the connection from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill the connections matching all the filters. Filters are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Connections from this address.",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Connections to this local address.",
    "    * ID <client-id>",
    "      The connection with this id.",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Connections of this type.",
    "    * USER <username>",
    "      Connections authenticated as <username>.",
    "    * SKIPME (YES|NO)",
    "      Spare this connection (default: yes).",
    "LIST [options ...]",
    "    Describe client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Only connections of this type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Only the connections with these ids.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Hold back every command, or those that may write, for <timeout> milliseconds.",
    "UNPAUSE",
    "    End a CLIENT PAUSE now.",
    "REPLY (ON|OFF|SKIP)",
    "    Turn replies to this connection on or off, or skip the next one.",
    "SETNAME <name>",
    "    Name this connection <name>.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Record the client library's name or version for CLIENT LIST.",
    "NO-EVICT (ON|OFF)",
    "    Exempt this connection from client eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Keep commands of this connection from updating keys' access times.",
];

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help("CLIENT", HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_printable_ascii_without_spaces() {
        assert!(valid_name(b"abc~!@"));
        assert!(valid_name(b""));
        for bad in [&b"a b"[..], b"a\nb", b"\x7f", b"\x80", b"\t"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn client_types_parse_like_redis() {
        assert!(parse_type(b"REPLICA") == Ok(ClientType::Replica));
        assert!(parse_type(b"slave") == Ok(ClientType::Replica));
        assert_eq!(
            parse_type(b"foo").err().unwrap().message(),
            "ERR Unknown client type 'foo'"
        );
    }
}
