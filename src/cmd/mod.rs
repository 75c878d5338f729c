//! Commands: the table, the per-command context, and dispatch through the
//! one pre-execution gate ([`gate`]).
//!
//! A handler is `fn(&mut Ctx, &Args) -> CmdResult`: it parses its arguments,
//! runs against the keyspace through `ctx.db`, and writes its reply into
//! `ctx.out`. Errors it returns are turned into Redis's exact strings in
//! [`error`]. Adding a command is one handler plus one line in its family's
//! `COMMANDS` list.

pub mod acl;
pub mod blocking;
pub mod client;
pub mod cluster;
pub mod command_info;
pub mod config_cmd;
pub mod connection;
pub mod debug;
pub mod dump;
pub use ferrokv_engine::error;
pub mod expire;
pub mod failover;
pub mod footprint;
pub mod functions;
pub mod gate;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod info;
pub mod internal;
pub mod keys;
pub mod keyspec;
pub mod latency;
pub mod lists;
pub mod lolwut;
pub mod memory;
pub mod migrate;
pub mod module;
pub mod multi;
pub mod object;
pub mod pubsub;
pub mod repl;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod slowlog;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod table;
pub mod tracking;
pub mod zsets;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use error::{CmdResult, Error};
pub use table::{Command, CommandTable, flags};

use crate::resp::{Args, Reply};
use crate::scripting::Turn;
use crate::server::Server;
use crate::server::client::{Client, ReplyMode};
use crate::server::stats::ThreadStats;
use crate::store::{KeySlot, Keyspace, Locks};

pub type Handler = fn(&mut Ctx<'_>, &Args<'_>) -> CmdResult;

/// Every registered handler, family by family.
pub fn handlers() -> Vec<(&'static str, Handler)> {
    let mut all = Vec::new();
    for family in [
        strings::COMMANDS,
        acl::COMMANDS,
        lists::COMMANDS,
        hashes::COMMANDS,
        keys::COMMANDS,
        expire::COMMANDS,
        object::COMMANDS,
        connection::COMMANDS,
        client::COMMANDS,
        cluster::COMMANDS,
        blocking::COMMANDS,
        server::COMMANDS,
        zsets::COMMANDS,
        info::COMMANDS,
        command_info::COMMANDS,
        config_cmd::COMMANDS,
        debug::COMMANDS,
        dump::COMMANDS,
        module::COMMANDS,
        sets::COMMANDS,
        multi::COMMANDS,
        scripting::COMMANDS,
        functions::COMMANDS,
        pubsub::COMMANDS,
        streams::COMMANDS,
        sort::COMMANDS,
        geo::COMMANDS,
        crate::persist::bgsave::COMMANDS,
        memory::COMMANDS,
        migrate::COMMANDS,
        slowlog::COMMANDS,
        latency::COMMANDS,
        hll::COMMANDS,
        tracking::COMMANDS,
        repl::COMMANDS,
        failover::COMMANDS,
        lolwut::COMMANDS,
    ] {
        all.extend_from_slice(family);
    }
    all
}

/// Keyspace access for one command: the selected database and the shard
/// locks the command holds (released after its effect is published).
pub struct DbCtx<'a> {
    pub ks: &'static Keyspace,
    pub locks: &'a mut Locks,
    pub index: usize,
    pub now_ms: i64,
    /// CLIENT NO-TOUCH: reads do not update access times.
    pub no_touch: bool,
}

impl DbCtx<'_> {
    /// The key in the selected database, its shard locked.
    #[inline]
    pub fn key<'s, 'k>(&'s mut self, key: &'k [u8]) -> KeySlot<'s, 'k> {
        self.locks
            .key(self.ks, self.index, key, self.now_ms)
            .with_no_touch(self.no_touch)
    }

    /// The key in database `db`, its shard locked.
    pub fn key_in<'s, 'k>(&'s mut self, db: usize, key: &'k [u8]) -> KeySlot<'s, 'k> {
        self.locks
            .key(self.ks, db, key, self.now_ms)
            .with_no_touch(self.no_touch)
    }
}

/// What to publish as the write effect of the command that ran.
pub enum Effect {
    /// The command's own arguments (the default).
    Argv,
    /// A rewritten command (SET EX -> SET PXAT, and so on).
    Rewrite(Vec<Vec<u8>>),
    /// Several records (XREADGROUP's XCLAIMs): framed by MULTI ... EXEC
    /// when there are two or more and no transaction or script frames them.
    Many(Vec<Vec<Vec<u8>>>),
    /// Nothing, even though the command changed data.
    Nothing,
}

/// Everything one command execution needs.
pub struct Ctx<'a> {
    pub srv: &'static Server,
    pub client: &'a mut Client,
    pub out: &'a mut Reply,
    pub db: DbCtx<'a>,
    pub stats: &'a ThreadStats,
    /// The command running (its spec, flags and name).
    pub cmd: &'static Command,
    /// Changes made; a command with `dirty > 0` publishes an effect.
    pub dirty: u64,
    pub effect: Effect,
    /// A key argument the command names as written but left as it was
    /// (SMOVE's destination already holding the member): its WATCHers are
    /// not marked.
    pub unchanged_arg: Option<usize>,
    /// The command saved the dataset itself (FLUSHALL with save points):
    /// its changes are in that file, so the change counter skips them.
    pub saved: bool,
    /// Keyspace events the handler recorded, published after it (§5).
    pub events: crate::pubsub::notify::Events,
}

impl Ctx<'_> {
    /// Counts a keyspace hit or miss (INFO stats).
    #[inline]
    pub fn hit(&self, found: bool) {
        if found {
            self.stats.keyspace_hits.add(1);
        } else {
            self.stats.keyspace_misses.add(1);
        }
    }

    /// Records keyspace event `name` (class `class`) on `key` in the
    /// selected database; a no-op unless that class is enabled.
    #[inline]
    pub fn event(&mut self, class: u32, name: &'static str, key: &[u8]) {
        self.events.record(class, name, key, self.db.index);
    }

    /// [`Ctx::event`] for a key in database `db` (COPY, MOVE).
    pub fn event_in(&mut self, db: usize, class: u32, name: &'static str, key: &[u8]) {
        self.events.record(class, name, key, db);
    }

    /// Records `del` if `key` is gone: the command emptied the collection.
    pub fn event_if_emptied(&mut self, key: &[u8]) {
        if self.events.wants(crate::config::notify::GENERIC) && self.db.key(key).lookup().is_none()
        {
            self.event(crate::config::notify::GENERIC, "del", key);
        }
    }

    /// Replaces what is published as this command's effect.
    pub fn rewrite_effect(&mut self, argv: Vec<Vec<u8>>) {
        self.effect = Effect::Rewrite(argv);
    }
}

pub use gate::{protected_denied, resolve};

/// What the connection does after [`dispatch`].
pub enum Next {
    /// The command ran (or was refused or queued): its reply is in `out`.
    Done,
    /// Another client's script job holds the script thread: wait for it
    /// (`Scripting::wait_turn`, without blocking the thread) and dispatch
    /// the command again.
    Wait { until_idle: bool },
    /// The command runs scripts: run it with [`run_job`] on the script
    /// thread (`scripting::thread`). Nothing was written yet.
    Script(&'static Command),
    /// CLIENT PAUSE holds it back: wait for the pause to end
    /// (`Pause::wait`, counted as blocked) and dispatch it again.
    Paused,
    /// The command looks at other connections (`flags::SETTLES`): wait
    /// until every worker ran the input that had arrived
    /// (`server::settle`), then dispatch it again with `client.settled`.
    Settle,
}

/// Whether `cmd` runs Lua, so that it must run as a job of the script
/// thread: EVAL and FCALL and their variants, FUNCTION LOAD and RESTORE
/// (a library body runs), an EXEC whose queue holds one of those (their
/// footprint says so: [`footprint::runs_as_job`]).
pub fn runs_scripts(cmd: &Command, client: &Client) -> bool {
    footprint::runs_as_job(cmd, client)
}

/// The time blocked clients are served at, once a command ran: the clock
/// now, as Redis reads it then (an EXEC that slept past a key's deadline
/// leaves the key expired for them), unless the command ran on a clock of
/// its own (the in-process harness's fixed time), which is kept.
fn serve_clock(cmd_now: i64) -> i64 {
    let real = crate::server::now_ms();
    if (real - cmd_now).abs() < 60_000 {
        real.max(cmd_now)
    } else {
        cmd_now
    }
}

/// Runs one command to completion on this thread, scripts included (the
/// in-process test harness). The connection uses [`dispatch`].
pub fn execute(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    locks: &mut Locks,
    stats: &ThreadStats,
    args: &Args<'_>,
    now_ms: i64,
) {
    loop {
        match dispatch(srv, client, out, locks, stats, args, now_ms) {
            Next::Done => break,
            Next::Script(cmd) => {
                run_job(srv, client, out, stats, cmd, args, now_ms);
                break;
            }
            // The harness has no other connections to wait for.
            Next::Settle => client.settled = true,
            // Only while another thread runs a job, or a pause lasts.
            Next::Wait { .. } | Next::Paused => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
    client.settled = false;
    // Nothing to wait for here: killed clients of the harness are gone.
    client.departing.clear();
}

/// Resolves and checks one command, then runs it, unless it must wait for
/// another client's script or runs scripts itself (see [`Next`]).
/// `now_ms` is the clock of the batch the command arrived in, as Redis
/// fixes the time a command sees when it starts.
pub fn dispatch(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    locks: &mut Locks,
    stats: &ThreadStats,
    args: &Args<'_>,
    now_ms: i64,
) -> Next {
    // One relaxed load while `watchdog-period` is 0.
    let _busy = crate::watchdog::busy();
    if client.reply_mode == ReplyMode::SkipNext {
        client.reply_mode = ReplyMode::Skip;
    }
    if srv.tracking.active() {
        // Past `tracking-table-max-keys`: evictions are sent before this
        // command's reply, even one that is only queued.
        crate::pubsub::tracking::before_command(srv, client.info.id, out);
    }
    let reply_start = out.len();
    let cmd = match resolve(&srv.commands, args) {
        Ok(cmd) => cmd,
        Err(refusal) => {
            gate::refuse(srv, client, out, locks, stats, None, args, refusal);
            finish_reply(client, out, reply_start, None);
            return Next::Done;
        }
    };
    if let Err(refusal) = gate::admit(srv, client, cmd, args, out.resp3) {
        gate::refuse(srv, client, out, locks, stats, Some(cmd), args, refusal);
        finish_reply(client, out, reply_start, Some(cmd));
        return Next::Done;
    }
    if srv.pause.holds(srv, client, cmd, args, now_ms) {
        return Next::Paused;
    }
    // Queued in MULTI it runs later, with EXEC.
    if cmd.has(table::flags::SETTLES) && !client.settled && client.multi.is_none() {
        return Next::Settle;
    }
    // From here on this command may hold shards: it is in flight until
    // `_flight` drops, and a script job does not start meanwhile.
    let (turn, _flight) = srv.scripting.check(srv, &stats.in_flight, cmd, client);
    let checked = match turn {
        Turn::Go => gate::memory_and_disk(srv, client, cmd),
        Turn::Wait { until_idle } => return Next::Wait { until_idle },
        // No watches here: see `Scripting::check`.
        Turn::Busy(msg) => Err(gate::Refusal::Busy(msg)),
    };
    if let Err(refusal) = checked {
        gate::refuse(srv, client, out, locks, stats, Some(cmd), args, refusal);
        finish_reply(client, out, reply_start, Some(cmd));
        return Next::Done;
    }
    if client.multi.is_some() && !multi::runs_in_multi(cmd) {
        multi::queue(srv, client, out, cmd, args);
        finish_reply(client, out, reply_start, Some(cmd));
        return Next::Done;
    }
    if runs_scripts(cmd, client) {
        return Next::Script(cmd);
    }
    run_checked(
        srv,
        client,
        out,
        locks,
        stats,
        cmd,
        args,
        now_ms,
        reply_start,
    );
    Next::Done
}

/// Runs a command that runs scripts ([`runs_scripts`]; [`dispatch`]
/// checked it) as a job: on the script thread, or inline in tests. The job
/// waits until no other command holds shards, and other clients' commands
/// wait for it (or get BUSY) until it ends, also if it panics.
/// `crate::server::evict::rejects` ran for it on the dispatching thread.
pub fn run_job(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    stats: &ThreadStats,
    cmd: &'static Command,
    args: &Args<'_>,
    now_ms: i64,
) {
    let reply_start = out.len();
    let job = srv.scripting.begin_job(client.info.id);
    // The script thread's task, for the watchdog (from when it may run).
    let _busy = crate::watchdog::busy();
    // Released before the job ends (declared after it). The only locks
    // that may wait for a shard while holding others (see `store::locks`).
    let mut locks = Locks::for_job(job.pass());
    run_checked(
        srv,
        client,
        out,
        &mut locks,
        stats,
        cmd,
        args,
        now_ms,
        reply_start,
    );
    locks.release();
}

/// On a replica, how the command's lookups treat expired keys, as Redis's
/// do: the master's commands see them (its DEL deletes them), a writable
/// replica's writes delete them; `None`: the keyspace's rule (reads miss
/// them and leave them in place).
fn replica_expiry_view(
    srv: &Server,
    client: &Client,
    cmd: &Command,
) -> Option<crate::store::keyspace::ExpiryView> {
    use crate::store::keyspace::ExpiryView;
    if !crate::server::replica::is_replica() {
        return None;
    }
    if client
        .info
        .has_flag(crate::server::client::list_flags::MASTER)
    {
        return Some(ExpiryView::Keep);
    }
    (gate::writes(client, cmd) && !crate::server::replica::read_only(srv))
        .then_some(ExpiryView::Reclaim)
}

/// Runs a checked command and finishes it: blocked clients served, locks
/// released, watchers its locks did not reach marked, the reply mode
/// applied.
#[allow(clippy::too_many_arguments)]
fn run_checked(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    locks: &mut Locks,
    stats: &ThreadStats,
    cmd: &'static Command,
    args: &Args<'_>,
    now_ms: i64,
    reply_start: usize,
) {
    client
        .info
        .last_cmd
        .store(cmd.id, std::sync::atomic::Ordering::Relaxed);
    // Invalidations for this client wait until its reply is written. A
    // read-only command of a client that does not track queues none (an
    // expiry it causes is sent at once), so it opens no batch.
    let tracking = srv.tracking.active()
        && (!cmd.has(flags::READONLY)
            || client
                .info
                .has_flag(crate::server::client::list_flags::TRACKING));
    if tracking {
        crate::pubsub::tracking::begin(client.info.id);
    }
    let ran = match replica_expiry_view(srv, client, cmd) {
        Some(view) => {
            let db = client.db;
            let ran = crate::store::keyspace::with_expiry_view(view, || {
                run(srv, client, out, locks, stats, cmd, args, now_ms, None)
            });
            if view == crate::store::keyspace::ExpiryView::Reclaim
                && let Ok(keys) = keyspec::keys_of(cmd, args)
            {
                // A writable replica's own write: its keys may have a
                // deadline only this replica enforces.
                crate::server::replica_expire::remember(db, keys.iter().map(|&i| &args[i]));
            }
            ran
        }
        None => run(srv, client, out, locks, stats, cmd, args, now_ms, None),
    };
    if locks.any_ready() {
        crate::blocking::serve_ready(&srv.ks, locks, serve_clock(now_ms));
    }
    locks.release();
    if !ran.later.is_empty() {
        multi::touch_later(&srv.ks, locks, ran.later);
    }
    finish_reply(client, out, reply_start, Some(cmd));
    // Confirmations and messages queued while the command ran go out before
    // its reply (a client publishing to itself sees the message first).
    if (client.pubsub.ever || out.resp3) && client.info.outbox.pending() > 0 {
        client.info.outbox.drain_before(&mut out.buf, reply_start);
    }
    if tracking {
        crate::pubsub::tracking::finish(srv, client, cmd, out);
    }
}

/// What running one command left to do.
pub(crate) struct Ran {
    /// Changed keys whose watchers must be marked once the locks are
    /// released (see [`multi::touch_written`]).
    pub later: Vec<(usize, Vec<u8>)>,
    /// The command replied an error.
    pub failed: bool,
}

/// Runs a resolved and checked command with the locks the caller holds
/// (and leaves them held): its handler, its effect, the watchers of the
/// keys it changed, its statistics. EXEC runs its queue through this, and a
/// script its `redis.call`s; `txn` is then whether the transaction's MULTI
/// effect was published.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    srv: &'static Server,
    client: &mut Client,
    out: &mut Reply,
    locks: &mut Locks,
    stats: &ThreadStats,
    cmd: &'static Command,
    args: &Args<'_>,
    now_ms: i64,
    txn: Option<&mut bool>,
) -> Ran {
    let started = ferrokv_util::stopwatch::Stopwatch::start();
    let db_index = client.db;
    let handler = cmd.handler.expect("resolved commands have handlers");
    let reply_start = out.len();
    // The shards the command declares, before its handler runs.
    if footprint::acquire(&srv.ks, client, locks, cmd, args, db_index).is_err() {
        return refuse_undeclared(client, out, stats, cmd);
    }
    // TOUCH itself still updates access times, as in Redis.
    let no_touch = client.no_touch && cmd.name != "touch";
    let mut ctx = Ctx {
        srv,
        client,
        out,
        db: DbCtx {
            ks: &srv.ks,
            locks,
            index: db_index,
            now_ms,
            no_touch,
        },
        stats,
        cmd,
        dirty: 0,
        effect: Effect::Argv,
        unchanged_arg: None,
        saved: false,
        events: crate::pubsub::notify::Events::new(srv),
    };
    let notify = ctx.events.on();
    let outer_news = notify.then(crate::pubsub::notify::begin_command);
    // MONITOR shows a command once it ran; a script before what it calls.
    let monitor = srv.pubsub.monitors.active() && !cmd.has(flags::ADMIN);
    if monitor && cmd.has(flags::SKIP_MONITOR) {
        feed_monitors(&mut ctx, args);
    }
    let result = catch_unwind(AssertUnwindSafe(|| handler(&mut ctx, args)));
    let failed_msg = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            let msg = e.message().into_owned();
            ctx.out.error(&msg);
            Some(msg)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            crate::warning!("command '{}' panicked: {}", cmd.name, what);
            ctx.out.truncate(reply_start);
            let msg = format!("ERR internal error in '{}' command", cmd.name);
            ctx.out.error(&msg);
            Some(msg)
        }
    };
    if monitor && !cmd.has(flags::SKIP_MONITOR) {
        feed_monitors(&mut ctx, args);
    }
    if srv.tracking.active() {
        // Writes invalidate what clients cached; reads are remembered.
        if ctx.dirty > 0 {
            crate::pubsub::tracking::written(srv, cmd, args, ctx.client.info.id);
        }
        crate::pubsub::tracking::after_command(srv, ctx.client, cmd, args);
    }
    let mut later = Vec::new();
    if ctx.dirty > 0 {
        if !ctx.saved {
            srv.persist
                .dirty
                .fetch_add(ctx.dirty, std::sync::atomic::Ordering::Relaxed);
        }
        if srv.ks.has_watches() {
            let skip = ctx.unchanged_arg;
            multi::touch_written(&srv.ks, ctx.db.locks, cmd, args, db_index, skip, &mut later);
        }
    }
    // PUBLISH changes nothing but is replicated (never written to the AOF,
    // whose sink leaves it out), as Redis forces its propagation.
    let propagate = ctx.dirty > 0 || is_replicated_publish(cmd);
    if propagate && srv.ks.effects_enabled() {
        // A transaction's effects are framed by MULTI ... EXEC.
        if let Some(published) = txn
            && !*published
        {
            *published = true;
            srv.ks.emit(db_index, &[b"MULTI"]);
        }
        publish_effect(&ctx, args);
    }
    if notify && failed_msg.is_none() {
        crate::pubsub::notify::key_misses(&mut ctx, args);
    }
    if let Some(outer) = outer_news {
        ctx.events.publish(srv);
        crate::pubsub::notify::end_command(outer);
    }
    let st = &stats.cmds[cmd.id];
    let usec = started.elapsed_us();
    st.calls.add(1);
    st.usec.add(usec);
    if srv.config.latency_tracking.get() {
        st.record_latency(usec);
    }
    // One relaxed load unless the command was slow (see `slowlog`).
    if usec
        >= srv
            .stats
            .slowlog
            .floor
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        slowlog::slow_command(srv, ctx.client, cmd, args, usec);
    }
    let failed = failed_msg.is_some();
    if let Some(msg) = failed_msg {
        st.failed.add(1);
        stats.count_error(&msg);
    }
    stats.commands_processed.add(1);
    Ran { later, failed }
}

/// A command whose footprint was not held by the transaction or script it
/// runs in, and could not be had without waiting while holding: refused
/// (a footprint bug; `store::locks`).
#[cold]
fn refuse_undeclared(
    client: &mut Client,
    out: &mut Reply,
    stats: &ThreadStats,
    cmd: &Command,
) -> Ran {
    crate::warning!(
        "command '{}' (client {}) needed shards its transaction did not hold",
        cmd.name,
        client.id()
    );
    let msg = format!("ERR internal error in '{}' command", cmd.name);
    out.error(&msg);
    let st = &stats.cmds[cmd.id];
    st.calls.add(1);
    st.failed.add(1);
    stats.count_error(&msg);
    stats.commands_processed.add(1);
    Ran {
        later: Vec::new(),
        failed: true,
    }
}

/// Sends the command's MONITOR line (`[db lua]` inside a script).
#[cold]
fn feed_monitors(ctx: &mut Ctx<'_>, args: &Args<'_>) {
    let from = (!crate::scripting::run::in_script()).then_some(&*ctx.client.info);
    ctx.srv
        .pubsub
        .monitors
        .feed(ctx.srv, from, ctx.client.db, args, ctx.out);
}

/// PUBLISH and SPUBLISH reach replicas although they write nothing.
fn is_replicated_publish(cmd: &Command) -> bool {
    matches!(cmd.name, "publish" | "spublish")
}

fn publish_effect(ctx: &Ctx<'_>, args: &Args<'_>) {
    // A script's `redis.set_repl` choice; PUBLISH reaches replicas only (as
    // in Redis, the AOF never holds it).
    let mut to = crate::scripting::run::effect_targets();
    if is_replicated_publish(ctx.cmd) {
        to &= crate::store::TO_REPLICAS;
    }
    if to == 0 {
        return;
    }
    let db = ctx.db.index;
    match &ctx.effect {
        Effect::Argv => {
            let argv: Vec<&[u8]> = args.iter().collect();
            ctx.srv.ks.emit_to(db, &argv, to);
        }
        Effect::Rewrite(v) => {
            let argv: Vec<&[u8]> = v.iter().map(|a| a.as_slice()).collect();
            ctx.srv.ks.emit_to(db, &argv, to);
        }
        Effect::Many(records) => {
            let ks = &ctx.srv.ks;
            let group = ks.begin_group();
            let frame = group.is_outer() && records.len() > 1;
            if frame {
                ks.emit(db, &[b"MULTI"]);
            }
            for r in records {
                let argv: Vec<&[u8]> = r.iter().map(|a| a.as_slice()).collect();
                ks.emit_to(db, &argv, to);
            }
            if frame {
                ks.emit(db, &[b"EXEC"]);
            }
        }
        Effect::Nothing => {}
    }
}

/// Applies CLIENT REPLY OFF/SKIP by dropping what the command wrote.
fn finish_reply(client: &mut Client, out: &mut Reply, reply_start: usize, cmd: Option<&Command>) {
    match client.reply_mode {
        ReplyMode::On | ReplyMode::SkipNext => {}
        ReplyMode::Off => {
            if out.len() > reply_start
                && client
                    .info
                    .has_flag(crate::server::client::list_flags::REPLICA)
            {
                replica_replied(client, &out.buf[reply_start..], cmd);
            }
            out.truncate(reply_start);
        }
        ReplyMode::Skip => {
            out.truncate(reply_start);
            client.reply_mode = ReplyMode::On;
        }
    }
}

/// A command of a client attached as a replica produced a reply, which
/// would corrupt the payload or stream sent on that connection: it is
/// disconnected instead, as Redis does (with its log lines).
#[cold]
fn replica_replied(client: &Client, reply: &[u8], cmd: Option<&Command>) {
    let name = cmd.map_or("<unknown>", |c| c.name);
    if let Some(msg) = reply.strip_prefix(b"-") {
        let msg = String::from_utf8_lossy(msg);
        crate::warning!(
            "== CRITICAL == This master is sending an error to its replica: '{}' after processing the command '{name}'",
            msg.trim_end()
        );
    }
    crate::warning!(
        "Replica generated a reply to command '{name}', disconnecting it: id={} addr={}",
        client.info.id,
        client.info.addr
    );
    client.info.request_kill();
}
