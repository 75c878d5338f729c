//! The one pre-execution gate: every check a command passes before it runs,
//! driven by the command's flags and by where it is called from.
//!
//! Three callers share it: the socket path ([`super::dispatch`], which also
//! queues inside MULTI), EXEC re-checking its queue, and a script's
//! `redis.call`/`redis.pcall`. Each check is decided here once; what differs
//! between callers is which checks apply (a script never sees the
//! subscribed-mode rule, a socket client never sees NOSCRIPT) and the error
//! text Redis gives for the same refusal on each path ([`Refusal`]'s
//! renderers below).
//!
//! Order on the socket path is Redis 7.0's: lookup and arity, PROTECTED,
//! authentication, NO_MULTI inside a transaction, ACL, subscribed mode,
//! loading; then the script turn (BUSY, [`crate::scripting::Scripting::check`], which
//! also has to coordinate with a running script job) and memory
//! ([`memory_and_disk`]: OOM, then MISCONF). In a script: lookup and
//! arity, NOSCRIPT, ACL, writes from a read-only script, MISCONF, memory.

use super::{Command, CommandTable, Error, flags, multi, pubsub};
use crate::acl::Denied;
use crate::resp::{Args, Reply};
use crate::server::Server;
use crate::server::client::{Client, list_flags};
use crate::server::stats::ThreadStats;
use crate::store::Locks;

/// Why a command may not run.
#[derive(Clone, Copy)]
pub enum Refusal {
    /// No command by that name.
    UnknownCommand,
    /// A container whose subcommand is unknown (`parent` is counted).
    UnknownSubcommand(&'static Command),
    /// Wrong number of arguments.
    Arity(&'static Command),
    /// A PROTECTED command this client is not allowed (the message names
    /// the option: DEBUG or MODULE).
    Protected(&'static str),
    /// Not authenticated.
    NoAuth,
    /// NO_MULTI command inside MULTI.
    NoMulti,
    /// The ACL user may not run it.
    Acl(Denied),
    /// A RESP2 connection in subscribed mode.
    Subscribed,
    /// The dataset is loading and the command lacks the `loading` flag.
    Loading,
    /// A script has run past `busy-reply-threshold` (the BUSY message).
    Busy(&'static str),
    /// Over `maxmemory` with nothing to evict, and the command may grow
    /// memory.
    Oom,
    /// A write (or PING) while the disk cannot be written: the last
    /// BGSAVE failed or the AOF's last write did (MISCONF).
    DiskError,
    /// A write while `min-replicas-to-write` is not met.
    NoReplicas,
    /// A write from a normal client on a `replica-read-only` replica.
    ReadOnlyReplica,
    /// A replica's link is down and `replica-serve-stale-data` is `no`.
    MasterDown,
    /// A client attached as a replica sent a command that reads or writes
    /// keys.
    ReplicaKeyspace,
    /// A script (declaring `allow-stale`) called a command a stale replica
    /// does not run.
    StaleScriptCall,
    /// NOSCRIPT command from a script.
    NoScript,
    /// Write command from a read-only script (EVAL_RO, FCALL_RO,
    /// `no-writes`).
    ReadOnlyScript,
}

/// A script's situation when it calls a command.
#[derive(Clone, Copy)]
pub struct ScriptCall {
    /// EVAL_RO / FCALL_RO / a `no-writes` script.
    pub read_only: bool,
    /// An `allow-oom` script.
    pub allow_oom: bool,
    /// A write already ran: from then on the script is never stopped for
    /// memory (it would be left half done).
    pub wrote: bool,
}

/// Finds the command for `args` (descending into subcommands) and checks
/// its arity.
#[inline]
pub fn resolve(table: &'static CommandTable, args: &Args<'_>) -> Result<&'static Command, Refusal> {
    let Some(mut cmd) = lookup_repeated(table, &args[0]) else {
        return Err(Refusal::UnknownCommand);
    };
    // A container runs its own handler when called bare (COMMAND).
    if cmd.subcommands.is_some() && !(args.len() == 1 && cmd.handler.is_some()) {
        if args.len() < 2 {
            return Err(Refusal::Arity(cmd));
        }
        match table.lookup_sub(cmd, &args[1]) {
            Some(sub) => cmd = sub,
            None => return Err(Refusal::UnknownSubcommand(cmd)),
        }
    }
    let n = args.len() as i32;
    if (cmd.arity > 0 && n != cmd.arity) || n < -cmd.arity {
        return Err(Refusal::Arity(cmd));
    }
    Ok(cmd)
}

/// The last top-level name this thread looked up, as sent (any case).
#[derive(Clone, Copy)]
struct LastName {
    table: *const CommandTable,
    len: usize,
    name: [u8; 16],
    cmd: &'static Command,
}

thread_local! {
    static LAST_NAME: std::cell::Cell<Option<LastName>> = const { std::cell::Cell::new(None) };
}

/// `table.lookup(name)`, answered without lowercasing and hashing when the
/// name is the one this thread looked up last, as it is through a pipeline
/// of one command (3% of the server's time at P16 otherwise).
#[inline]
fn lookup_repeated(table: &'static CommandTable, name: &[u8]) -> Option<&'static Command> {
    if let Some(last) = LAST_NAME.with(std::cell::Cell::get)
        && std::ptr::eq(last.table, table)
        && last.name.get(..last.len) == Some(name)
    {
        return Some(last.cmd);
    }
    let cmd = table.lookup(name)?;
    if name.len() <= 16 {
        let mut last = LastName {
            table,
            len: name.len(),
            name: [0; 16],
            cmd,
        };
        last.name[..name.len()].copy_from_slice(name);
        LAST_NAME.with(|l| l.set(Some(last)));
    }
    Some(cmd)
}

/// The socket path's checks before the script turn: PROTECTED,
/// authentication, NO_MULTI, ACL, subscribed mode. The common case (an
/// authenticated client outside MULTI, an unprotected command) costs one
/// branch before the ACL check.
#[inline]
pub fn admit(
    srv: &Server,
    client: &mut Client,
    cmd: &'static Command,
    args: &Args<'_>,
    resp3: bool,
) -> Result<(), Refusal> {
    if cmd.has(flags::PROTECTED) | !client.authenticated | client.multi.is_some() {
        admit_rare(srv, client, cmd)?;
    }
    crate::acl::check(srv, client, cmd, args).map_err(Refusal::Acl)?;
    // A RESP2 connection with subscriptions only takes the subscribe family
    // (its replies and messages share one stream of arrays).
    if client.pubsub.ever
        && !resp3
        && client.info.has_flag(list_flags::PUBSUB)
        && !pubsub::allowed_in_subscribed_mode(cmd.name)
    {
        return Err(Refusal::Subscribed);
    }
    if client
        .info
        .has_flag(crate::server::client::list_flags::REPLICA)
        && cmd.has(flags::READONLY | flags::WRITE | flags::MAY_REPLICATE)
    {
        return Err(Refusal::ReplicaKeyspace);
    }
    if crate::server::replica::is_replica() && cmd.has(flags::RUNS_SCRIPTS) {
        script_on_replica(srv, client, cmd, args)?;
    }
    if crate::server::replica::stale(srv) && denied_when_stale(client, cmd) {
        return Err(Refusal::MasterDown);
    }
    // While the dataset loads, only `loading` commands run (the loader's
    // own client replays the AOF).
    if srv.persist.loading.active() && !cmd.has(flags::LOADING) && !client.loader {
        return Err(Refusal::Loading);
    }
    // While a full synchronization loads asynchronously the old dataset
    // is served; only what would conflict with the load is refused.
    if cmd.has(flags::NO_ASYNC_LOADING) && crate::server::replica_sync::async_loading() {
        return Err(Refusal::Loading);
    }
    Ok(())
}

/// A script or function on a replica is judged by what it declared: one
/// that may write is refused by a read-only replica, one without
/// `allow-stale` by a stale one (as Redis derives the command's flags
/// from the script's). A script without a shebang runs as EVAL's own
/// flags allow, its calls judged one by one, except on a stale replica,
/// which refuses it whole (as Redis does for its compatibility mode).
#[cold]
fn script_on_replica(
    srv: &Server,
    client: &Client,
    cmd: &Command,
    args: &Args<'_>,
) -> Result<(), Refusal> {
    use crate::scripting::Declared;
    let (no_writes, allow_stale) = match crate::scripting::declaration(srv, cmd, args) {
        Declared::Flags {
            no_writes,
            allow_stale,
        } => (no_writes, allow_stale),
        Declared::Compat if crate::server::replica::stale(srv) => {
            return Err(Refusal::MasterDown);
        }
        Declared::Compat | Declared::Unknown => return Ok(()),
    };
    if !no_writes
        && crate::server::replica::read_only(srv)
        && !client.info.has_flag(list_flags::MASTER)
    {
        return Err(Refusal::ReadOnlyReplica);
    }
    if !allow_stale && crate::server::replica::stale(srv) {
        return Err(Refusal::MasterDown);
    }
    Ok(())
}

/// Commands without the `stale` flag, and an EXEC queueing one.
#[cold]
fn denied_when_stale(client: &Client, cmd: &Command) -> bool {
    !cmd.has(flags::STALE)
        || (cmd.name == "exec" && client.multi.as_ref().is_some_and(|q| q.denied_when_stale()))
}

#[cold]
fn admit_rare(srv: &Server, client: &Client, cmd: &Command) -> Result<(), Refusal> {
    // Protected commands are refused before authentication, as in Redis.
    if cmd.has(flags::PROTECTED)
        && let Some(msg) = protected_denied(srv, client, cmd)
    {
        return Err(Refusal::Protected(msg));
    }
    if !client.authenticated && !cmd.has(flags::NO_AUTH) {
        return Err(Refusal::NoAuth);
    }
    if client.multi.is_some() && cmd.has(flags::NO_MULTI) {
        return Err(Refusal::NoMulti);
    }
    Ok(())
}

/// The socket path's memory and disk checks, after the script turn:
/// evicts what the policy allows, refuses what may grow memory, then
/// refuses writes the disk cannot take, in Redis's order.
#[inline]
pub fn memory_and_disk(srv: &Server, client: &Client, cmd: &Command) -> Result<(), Refusal> {
    if !crate::server::replica::ignores_maxmemory(srv)
        && crate::server::evict::rejects(srv, client, cmd)
    {
        return Err(Refusal::Oom);
    }
    if refused_for_disk(client, cmd) && crate::persist::writes_denied(srv) {
        return Err(Refusal::DiskError);
    }
    // Writes (an EXEC whose queue writes included) need enough good
    // replicas; a command queued in MULTI is judged as it queues.
    let write = writes(client, cmd);
    if write
        && srv.config.min_replicas_to_write.get() > 0
        && !crate::server::replica::is_replica()
        && !crate::server::repl::enough_good_replicas(srv)
    {
        return Err(Refusal::NoReplicas);
    }
    // The master's own commands always run on its replica.
    if write && crate::server::replica::read_only(srv) && !client.info.has_flag(list_flags::MASTER)
    {
        return Err(Refusal::ReadOnlyReplica);
    }
    Ok(())
}

/// What Redis refuses while the disk cannot be written: write commands,
/// an EXEC whose queue has one, and PING (so a health check notices).
#[inline]
fn refused_for_disk(client: &Client, cmd: &Command) -> bool {
    if cmd.has(flags::WRITE) {
        return true;
    }
    match cmd.name {
        "ping" => true,
        "exec" => client.multi.as_ref().is_some_and(|q| q.writes()),
        _ => false,
    }
}

/// A script's `redis.call`: NOSCRIPT, ACL, writes from a read-only script,
/// memory (judged at the start of the script's own command).
pub fn script_call(
    srv: &Server,
    client: &mut Client,
    cmd: &'static Command,
    args: &Args<'_>,
    sc: ScriptCall,
) -> Result<(), Refusal> {
    if cmd.has(flags::NOSCRIPT)
        && !srv
            .scripting
            .disable_deny_script
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(Refusal::NoScript);
    }
    crate::acl::check(srv, client, cmd, args).map_err(Refusal::Acl)?;
    // May-replicate commands (PUBLISH, PFCOUNT) count as writes here, so a
    // read-only script never needs to wait for CLIENT PAUSE WRITE.
    if cmd.has(flags::WRITE | flags::MAY_REPLICATE) && sc.read_only {
        return Err(Refusal::ReadOnlyScript);
    }
    if !cmd.has(flags::STALE) && crate::server::replica::stale(srv) {
        return Err(Refusal::StaleScriptCall);
    }
    // Once the script wrote, its writes go on whatever the disk, the
    // replicas or the role became meanwhile (stopping it would leave it
    // half done), as in Redis.
    if cmd.has(flags::WRITE) && !sc.wrote && crate::persist::writes_denied(srv) {
        return Err(Refusal::DiskError);
    }
    if cmd.has(flags::WRITE)
        && !sc.wrote
        && srv.config.min_replicas_to_write.get() > 0
        && !crate::server::replica::is_replica()
        && !crate::server::repl::enough_good_replicas(srv)
    {
        return Err(Refusal::NoReplicas);
    }
    if cmd.has(flags::WRITE)
        && !sc.wrote
        && crate::server::replica::read_only(srv)
        && !client.info.has_flag(list_flags::MASTER)
    {
        return Err(Refusal::ReadOnlyReplica);
    }
    if cmd.has(flags::DENYOOM)
        && !sc.allow_oom
        && !sc.wrote
        && crate::server::evict::oom_at_command_start()
    {
        return Err(Refusal::Oom);
    }
    Ok(())
}

/// EXEC re-checks each queued command: ACL rules may have changed since it
/// was queued (everything else was decided when it was queued).
#[inline]
pub fn exec_queued(
    srv: &Server,
    client: &mut Client,
    cmd: &'static Command,
    args: &Args<'_>,
) -> Result<(), Refusal> {
    crate::acl::check(srv, client, cmd, args).map_err(Refusal::Acl)
}

pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
pub const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
const STALE_SCRIPT_CALL: &str = "ERR Can not execute the command on a stale replica";
pub const READONLY: &str = "READONLY You can't write against a read only replica.";
const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
const MODULE_NOT_ALLOWED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// The refusal of a PROTECTED command (DEBUG, MODULE LOAD/LOADEX/UNLOAD)
/// that `enable-debug-command` / `enable-module-command` does not allow
/// this client (`local`: loopback clients only).
pub fn protected_denied(srv: &Server, client: &Client, cmd: &Command) -> Option<&'static str> {
    let (option, msg) = if cmd.name.starts_with("module|") {
        (&srv.config.enable_module_command, MODULE_NOT_ALLOWED)
    } else {
        (&srv.config.enable_debug_command, DEBUG_NOT_ALLOWED)
    };
    let allowed = crate::config::Config::enabled_for(option, client.info.is_local());
    (!allowed).then_some(msg)
}

fn unknown_command(args: &Args<'_>) -> String {
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]);
    let mut tail = String::new();
    for a in args.iter().skip(1) {
        if tail.len() >= 128 {
            break;
        }
        let room = 128 - tail.len();
        let a = String::from_utf8_lossy(&a[..a.len().min(room)]).into_owned();
        tail.push_str(&format!("'{a}' "));
    }
    format!("ERR unknown command '{name}', with args beginning with: {tail}")
}

/// `called` is the container's name as the client typed it (a renamed
/// container is named by its new name, as in Redis).
fn unknown_subcommand(called: &[u8], sub: &[u8]) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)]),
        String::from_utf8_lossy(called).to_ascii_uppercase()
    )
}

impl Refusal {
    /// The command the refusal is counted against (`rejected_calls`).
    pub fn command(&self, cmd: Option<&'static Command>) -> Option<&'static Command> {
        match *self {
            // An unknown subcommand is no command: Redis counts it only
            // in errorstats, not against its container.
            Refusal::UnknownCommand | Refusal::UnknownSubcommand(_) => None,
            Refusal::Arity(c) => Some(c),
            _ => cmd,
        }
    }

    /// The error a socket client gets (before any EXECABORT wrapping).
    /// An ACL refusal is logged (ACL LOG) here.
    pub fn socket_message(
        self,
        srv: &Server,
        client: &Client,
        obl: usize,
        cmd: Option<&Command>,
        args: &Args<'_>,
    ) -> String {
        match self {
            Refusal::UnknownCommand => unknown_command(args),
            Refusal::UnknownSubcommand(_) => unknown_subcommand(&args[0], &args[1]),
            Refusal::Arity(c) => Error::WrongArity(c.name.into()).message().into_owned(),
            Refusal::Protected(msg) | Refusal::Busy(msg) => msg.to_string(),
            Refusal::NoAuth => Error::NoAuth.message().into_owned(),
            Refusal::NoMulti => "ERR Command not allowed inside a transaction".into(),
            Refusal::Acl(d) => match cmd {
                Some(cmd) => crate::acl::refuse(srv, client, obl, d, cmd, args),
                None => d.script_message().into(),
            },
            Refusal::Subscribed => format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                cmd.map_or("", |c| c.name)
            ),
            Refusal::Oom => crate::server::evict::OOM_ERROR.into(),
            Refusal::Loading => crate::persist::load::LOADING_ERROR.into(),
            Refusal::DiskError => crate::persist::write_denied_message(srv).into(),
            Refusal::NoReplicas => NOREPLICAS.into(),
            Refusal::ReadOnlyReplica => READONLY.into(),
            Refusal::MasterDown => MASTERDOWN.into(),
            Refusal::ReplicaKeyspace => "ERR Replica can't interact with the keyspace".into(),
            Refusal::StaleScriptCall => STALE_SCRIPT_CALL.into(),
            Refusal::NoScript => "ERR This Redis command is not allowed from script".into(),
            Refusal::ReadOnlyScript => {
                "ERR Write commands are not allowed from read-only scripts.".into()
            }
        }
    }

    /// The error a script's `redis.call` raises (`running`: the script's
    /// own command, for the ACL LOG). An ACL refusal is logged here.
    pub fn script_message(
        self,
        srv: &Server,
        client: &Client,
        cmd: Option<&Command>,
        args: &Args<'_>,
        running: &'static str,
    ) -> &'static str {
        match self {
            Refusal::UnknownCommand | Refusal::UnknownSubcommand(_) => {
                "ERR Unknown Redis command called from script"
            }
            Refusal::Arity(_) => "ERR Wrong number of args calling Redis command from script",
            Refusal::NoScript => "ERR This Redis command is not allowed from script",
            Refusal::ReadOnlyScript => "ERR Write commands are not allowed from read-only scripts.",
            Refusal::Acl(d) => match cmd {
                Some(cmd) => crate::acl::refuse_in_script(srv, client, d, cmd, args, running),
                None => d.script_message(),
            },
            Refusal::Oom => crate::server::evict::OOM_ERROR,
            Refusal::Loading => crate::persist::load::LOADING_ERROR,
            Refusal::DiskError => crate::persist::write_denied_message(srv),
            Refusal::NoReplicas => NOREPLICAS,
            Refusal::ReadOnlyReplica => READONLY,
            Refusal::MasterDown => MASTERDOWN,
            Refusal::ReplicaKeyspace => "ERR Replica can't interact with the keyspace",
            Refusal::StaleScriptCall => STALE_SCRIPT_CALL,
            Refusal::Protected(msg) | Refusal::Busy(msg) => msg,
            Refusal::NoAuth => "NOAUTH Authentication required.",
            Refusal::NoMulti => "ERR Command not allowed inside a transaction",
            Refusal::Subscribed => "ERR This Redis command is not allowed from script",
        }
    }
}

/// Replies a refusal on the socket path, as Redis does for every refused
/// command: counted as rejected, an open transaction flagged (its EXEC
/// aborts), and a refused EXEC itself discards the transaction and its
/// watches, answering `EXECABORT Transaction discarded because of: ...`.
#[cold]
#[allow(clippy::too_many_arguments)]
pub fn refuse(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    locks: &mut Locks,
    stats: &ThreadStats,
    cmd: Option<&'static Command>,
    args: &Args<'_>,
    refusal: Refusal,
) {
    let counted = refusal.command(cmd);
    if let Some(c) = counted {
        stats.cmds[c.id].rejected.add(1);
    }
    let mut msg = refusal.socket_message(srv, client, out.len(), counted, args);
    if counted.is_some_and(|c| c.name == "exec") {
        // A BUSY refusal reaches here with watches only once the script
        // job ended (see `Scripting::turn_of`): unwatching takes shards.
        multi::reset(&srv.ks, client, locks);
        let reason = msg.strip_prefix("ERR ").unwrap_or(&msg);
        msg = format!("EXECABORT Transaction discarded because of: {reason}");
    } else {
        multi::flag_failed(client);
    }
    stats.count_error(&msg);
    out.error(&msg);
}

/// Whether `cmd` writes: a write command, or an EXEC whose queue holds one.
pub(crate) fn writes(client: &Client, cmd: &Command) -> bool {
    cmd.has(flags::WRITE)
        || (cmd.name == "exec" && client.multi.as_ref().is_some_and(|q| q.writes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_finds_the_same_command_in_any_case_and_table() {
        let leak = || &*Box::leak(Box::new(CommandTable::build(&super::super::handlers())));
        let (a, b) = (leak(), leak());
        let name = |t: &'static CommandTable, n: &[u8]| lookup_repeated(t, n).map(|c| c.name);
        assert_eq!(name(a, b"GET"), Some("get"));
        assert_eq!(name(a, b"GET"), Some("get"));
        assert_eq!(name(a, b"get"), Some("get"));
        assert_eq!(name(a, b"SET"), Some("set"));
        assert_eq!(name(a, b"GETX"), None);
        assert_eq!(name(a, b"SET"), Some("set"));
        // Another table's command is its own.
        let from_b = lookup_repeated(b, b"SET").unwrap();
        assert!(std::ptr::eq(from_b, b.lookup(b"set").unwrap()));
        assert!(!std::ptr::eq(from_b, a.lookup(b"set").unwrap()));
        assert_eq!(name(a, b"a-name-longer-than-sixteen"), None);
    }
}
