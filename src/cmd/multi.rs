//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.
//!
//! Between MULTI and EXEC the central dispatcher queues every command that
//! passed its checks (see [`queue`]). EXEC's footprint is the union of its
//! queued commands' footprints (`footprint::plan_transaction`): the
//! dispatcher locks all of their shards in one ascending pass, then EXEC
//! checks the WATCHed keys and runs the queue with those locks held: no
//! other client sees the transaction half done, whatever shards it spans,
//! and clients on other shards are not held up at all.
//!
//! WATCH registers a shared [`Watch`] flag on each key in the key's shard.
//! Whoever changes a watched key marks the flag while holding the key's
//! shard: writes (centrally, after the command, see [`touch_written`]),
//! deletions and expiry (`Shard::remove`), FLUSHDB/FLUSHALL/SWAPDB
//! (`Shard::take_all` / `Shard::swap`). A key that merely reaches its
//! deadline between WATCH and EXEC also aborts (Redis 7.0), checked at EXEC.

use std::sync::atomic::Ordering;

use super::{CmdResult, Command, Ctx, Error, Handler};
use crate::resp::{Args, Parser, Reply};
use crate::server::client::{Client, list_flags};
use crate::store::keyspace::hash_key;
use crate::store::{Keyspace, Locks};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("multi", multi),
    ("exec", exec),
    ("discard", discard),
    ("watch", watch),
    ("unwatch", unwatch),
];

/// The commands queued since MULTI.
#[derive(Default)]
pub struct Queue {
    cmds: Vec<Queued>,
    /// Bytes the queued commands hold (CLIENT LIST `multi-mem`).
    bytes: usize,
    /// A command was rejected while queuing: EXEC must abort.
    failed: bool,
    /// A queued script declared (by its shebang or function flags) that it
    /// may write, or did not declare `allow-stale`: EXEC counts as a write,
    /// or as refused by a stale replica, as Redis sums the queued
    /// commands' flags (a script's from its declaration) when queuing.
    script_writes: bool,
    script_not_stale: bool,
}

impl Queue {
    /// Whether a queued command satisfies `f` (with its arguments).
    pub fn any(&self, mut f: impl FnMut(&'static Command, &Args<'_>) -> bool) -> bool {
        self.cmds.iter().any(|q| f(q.cmd, &q.args()))
    }

    /// Whether a queued command has `flag` (EXEC is refused under OOM
    /// when one is `denyoom`).
    pub fn has_flag(&self, flag: u32) -> bool {
        self.cmds.iter().any(|q| q.cmd.has(flag))
    }

    /// Whether a queued command writes, a script declaring it may included.
    pub fn writes(&self) -> bool {
        self.script_writes || self.has_flag(super::flags::WRITE)
    }

    /// Whether a queued command is refused by a stale replica, a script
    /// not declaring `allow-stale` included.
    pub fn denied_when_stale(&self) -> bool {
        self.script_not_stale || self.any_command(|c| !c.has(super::flags::STALE))
    }

    /// Whether a queued command satisfies `f`.
    pub fn any_command(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.cmds.iter().any(|q| f(q.cmd))
    }

    /// Memory the queue holds (client memory accounting).
    pub fn mem(&self) -> usize {
        self.bytes + self.cmds.capacity() * std::mem::size_of::<Queued>()
    }

    /// A command was rejected while queuing: EXEC will abort.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// The queued commands with their arguments.
    pub fn commands(&self) -> impl Iterator<Item = (&'static Command, Args<'_>)> {
        self.cmds.iter().map(|q| (q.cmd, q.args()))
    }
}

/// One queued command, its arguments copied into one buffer.
struct Queued {
    cmd: &'static Command,
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Queued {
    fn args(&self) -> Args<'_> {
        Parser::args_over(&self.buf, &self.spans)
    }
}

/// The commands that run, rather than queue, inside MULTI.
pub fn runs_in_multi(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Marks the open transaction as failed (a command was rejected).
pub fn flag_failed(client: &mut Client) {
    if let Some(q) = client.multi.as_mut() {
        q.failed = true;
    }
}

/// Queues `args` in the client's transaction (the gate refused what may
/// not run inside one, see [`super::gate`]).
pub fn queue(
    srv: &crate::server::Server,
    client: &mut Client,
    out: &mut Reply,
    cmd: &'static Command,
    args: &Args<'_>,
) {
    let Some(q) = client.multi.as_mut() else {
        return;
    };
    if cmd.has(super::flags::RUNS_SCRIPTS)
        && let crate::scripting::Declared::Flags {
            no_writes,
            allow_stale,
        } = crate::scripting::declaration(srv, cmd, args)
    {
        q.script_writes |= !no_writes;
        q.script_not_stale |= !allow_stale;
    }
    let mut buf = Vec::with_capacity(args.iter().map(<[u8]>::len).sum());
    let mut spans = Vec::with_capacity(args.len());
    for a in args.iter() {
        spans.push((buf.len(), buf.len() + a.len()));
        buf.extend_from_slice(a);
    }
    q.bytes += buf.capacity() + spans.capacity() * std::mem::size_of::<(usize, usize)>();
    q.cmds.push(Queued { cmd, buf, spans });
    client
        .info
        .multi
        .store(q.cmds.len() as i64, Ordering::Relaxed);
    out.simple("QUEUED");
}

fn end_multi(client: &mut Client) -> Option<Queue> {
    clear_multi_info(client);
    client.multi.take()
}

/// CLIENT LIST shows the transaction until EXEC is done, as Redis does.
fn clear_multi_info(client: &Client) {
    client.info.multi.store(-1, Ordering::Relaxed);
    client.info.set_flag(list_flags::MULTI, false);
}

fn multi(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(Error::msg("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Queue {
        cmds: Vec::with_capacity(8),
        ..Queue::default()
    });
    ctx.client.info.multi.store(0, Ordering::Relaxed);
    ctx.client.info.set_flag(list_flags::MULTI, true);
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    if end_multi(ctx.client).is_none() {
        return Err(Error::msg("ERR DISCARD without MULTI"));
    }
    unwatch_all(&ctx.srv.ks, ctx.client, ctx.db.locks);
    ctx.out.ok();
    Ok(())
}

/// Drops the client's transaction and watches (RESET).
pub fn reset(ks: &'static Keyspace, client: &mut Client, locks: &mut Locks) {
    end_multi(client);
    unwatch_all(ks, client, locks);
}

fn watch(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(Error::msg("ERR WATCH inside MULTI is not allowed"));
    }
    let ks = &ctx.srv.ks;
    let db = ctx.db.index;
    let keys: Vec<&[u8]> = args.iter().skip(1).collect();
    let w = ctx
        .client
        .watch
        .get_or_insert_with(Default::default)
        .clone();
    for k in keys {
        if ctx.client.watched.iter().any(|(d, x)| *d == db && x == k) {
            continue;
        }
        // A key already past its deadline is reclaimed now, so that only a
        // change after WATCH counts.
        let live = ctx.db.key(k).lookup().is_some();
        ctx.db.locks.shard_for(ks, db, k).add_watcher(k, w.clone());
        ctx.client.watched.push((db, k.to_vec()));
        ctx.client.watched_live.push(live);
        ks.count_watches(1);
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    unwatch_all(&ctx.srv.ks, ctx.client, ctx.db.locks);
    ctx.out.ok();
    Ok(())
}

/// Removes every WATCH of the client; the caller releases the locks.
/// UNWATCH, DISCARD, RESET and EXEC hold the watched keys already (their
/// footprints declare them). A connection closing, and a refused EXEC,
/// are no command's footprint: they come here holding nothing, and the
/// batch below takes the keys (it cannot wait while holding others).
pub fn unwatch_all(ks: &'static Keyspace, client: &mut Client, locks: &mut Locks) {
    let Some(w) = client.watch.take() else {
        return;
    };
    let mut b = locks.batch(ks);
    for (db, k) in &client.watched {
        b.key(*db, k);
    }
    if b.take().is_err() {
        // Only if a caller held other shards (a footprint bug): the
        // registrations then stay until their keys change or go.
        crate::warning!("UNWATCH could not take the watched keys' shards");
        client.watched.clear();
        client.watched_live.clear();
        return;
    }
    let mut removed = 0;
    for (db, k) in &client.watched {
        if locks.shard_for(ks, *db, k).remove_watcher(k, &w) {
            removed += 1;
        }
    }
    ks.count_watches(-removed);
    client.watched.clear();
    client.watched_live.clear();
}

/// True if a watched key changed, or reached its deadline, since WATCH.
/// The caller holds the watched keys' shards.
fn watch_broken(ks: &'static Keyspace, client: &Client, locks: &mut Locks, now_ms: i64) -> bool {
    let Some(w) = &client.watch else {
        return false;
    };
    w.is_dirty()
        || client
            .watched
            .iter()
            .zip(&client.watched_live)
            .any(|((db, k), live)| {
                if !*live {
                    return false;
                }
                let shard = locks.shard_for(ks, *db, k);
                shard
                    .find(hash_key(k), k)
                    .is_some_and(|i| shard.get(i).is_expired(now_ms))
            })
}

fn exec(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let Some(queue) = ctx.client.multi.take() else {
        return Err(Error::msg("ERR EXEC without MULTI"));
    };
    let result = run_queue(ctx, queue);
    clear_multi_info(ctx.client);
    result
}

fn run_queue(ctx: &mut Ctx<'_>, queue: Queue) -> CmdResult {
    let ks = &ctx.srv.ks;
    if queue.failed {
        unwatch_all(ks, ctx.client, ctx.db.locks);
        return Err(Error::msg(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let all_args: Vec<Args<'_>> = queue.cmds.iter().map(Queued::args).collect();
    // The dispatcher took the transaction's footprint before this handler
    // ran (`footprint::plan_transaction`): every shard the queue can touch
    // and the watched keys, in one ascending batch. An EXEC that runs
    // scripts is the script job: they lock what else they reach.
    let broken = watch_broken(ks, ctx.client, ctx.db.locks, ctx.db.now_ms);
    // Our own writes must not mark our watches: drop them first.
    unwatch_all(ks, ctx.client, ctx.db.locks);
    if broken {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(queue.cmds.len());
    // The transaction's records reach consumers as one group, published
    // when this returns, before the dispatcher releases the shards.
    let _group = ks.begin_group();
    let mut published_multi = false;
    ctx.client.in_exec = true;
    for (q, args) in queue.cmds.iter().zip(&all_args) {
        // ACL rules may have changed since the command was queued.
        if let Err(super::gate::Refusal::Acl(d)) =
            super::gate::exec_queued(ctx.srv, ctx.client, q.cmd, args)
        {
            let msg =
                crate::acl::refuse_in_exec(ctx.srv, ctx.client, ctx.out.len(), d, q.cmd, args);
            ctx.out.error(&msg);
            continue;
        }
        super::run(
            ctx.srv,
            ctx.client,
            ctx.out,
            ctx.db.locks,
            ctx.stats,
            q.cmd,
            args,
            ctx.db.now_ms,
            Some(&mut published_multi),
        );
    }
    ctx.client.in_exec = false;
    ctx.db.index = ctx.client.db;
    if published_multi {
        ks.emit(ctx.db.index, &[b"EXEC"]);
    }
    Ok(())
}

/// Marks the watchers of the keys a write command changed, while the
/// command still holds their shards. Keys whose shard it does not hold
/// (a command that changed less than its key specs say) are left in
/// `later` for the caller to mark after it released its locks.
pub fn touch_written(
    ks: &'static Keyspace,
    locks: &mut Locks,
    cmd: &Command,
    args: &Args<'_>,
    db: usize,
    skip: Option<usize>,
    later: &mut Vec<(usize, Vec<u8>)>,
) {
    let Ok(keys) = super::keyspec::keys_and_flags(cmd, args) else {
        return;
    };
    // Read-only keys (the sources of PFMERGE, SUNIONSTORE, COPY...) are
    // not modified: Redis signals only the keys written.
    let ro = super::keyspec::kflags::RO;
    let idx = keys
        .into_iter()
        .filter(|&(_, f)| f & ro == 0)
        .map(|(i, _)| i);
    // MOVE and COPY ... DB change the key in a second database too.
    let other = match cmd.name {
        "move" => super::footprint::db_arg(ks, args.get(2)),
        "copy" => super::footprint::copy_db(ks, args),
        _ => None,
    };
    for i in idx.filter(|&i| Some(i) != skip) {
        let key = args.arg(i);
        for d in std::iter::once(db).chain(other) {
            if locks.holds(ks, d, key) {
                locks.shard_for(ks, d, key).touch_watched(key);
            } else {
                later.push((d, key.to_vec()));
            }
        }
    }
}

/// Marks watchers of keys [`touch_written`] could not reach under the
/// command's locks; called with no lock held.
pub fn touch_later(ks: &'static Keyspace, locks: &mut Locks, later: Vec<(usize, Vec<u8>)>) {
    for (db, key) in later {
        locks.shard_for(ks, db, &key).touch_watched(&key);
        locks.release();
    }
}
