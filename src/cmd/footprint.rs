//! What each command may touch, declared once per command when the table
//! is built ([`declare`], kept in `Command::footprint`), and the one place
//! that turns a declaration into shard locks ([`acquire`], called by
//! `cmd::run` just before the handler; [`plan_transaction`] for EXEC).
//!
//! Handlers do not lock: they reach keys through `ctx.db`, which finds the
//! shards already held. A one-key command (`Scope::Key`) takes its shard
//! on first access instead, holding nothing, which is what the dispatcher
//! would do and costs no second hash of the key. Where a declaration cannot
//! say what a command touches, the command locks at run time through the
//! same `Locks` rules (holding shards, it never waits: `store::locks`):
//! - the script job: a script's `redis.call`s each take their own
//!   footprint as they run (the job's locks may wait, see `Locks::for_job`);
//! - serving blocked clients: a BLMOVE destination is only *tried*
//!   (`Locks::try_key`);
//! - paths that are not commands (a connection closing drops its watches or
//!   its blocked wait, a served BLMOVE finishes its push, watchers of keys
//!   a command changed outside its locks are marked once it released them:
//!   `multi::touch_later`) lock holding nothing.

use super::keyspec::{self, BeginSearch, FindKeys, kflags};
use super::{Command, flags};
use crate::resp::Args;
use crate::server::client::Client;
use crate::store::{Batch, Keyspace, Locks, Undeclared};
use crate::util::num::parse_i64;

/// A command's footprint.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    /// No key (PING, CONFIG, CLIENT ...).
    None,
    /// One key, always this argument (GET, SET, HSET ...). Alone, its shard
    /// is taken on first access, holding nothing.
    Key(u16),
    /// The keys at `first`, `first + step`, ... up to `last` (from the end
    /// when negative): one range key spec (MGET, MSET, DEL ...).
    KeyRange { first: u16, last: i16, step: u16 },
    /// The keys the key specs locate (several specs, key counts, keywords:
    /// RENAME, ZUNIONSTORE, XREAD ...); the whole selected database when
    /// they can't be located (the handler then replies an error).
    Keys,
    /// The whole selected database, all shards at once (FLUSHDB).
    Db,
    /// Every shard of the selected database, one at a time (KEYS, SCAN,
    /// RANDOMKEY, DBSIZE): alone, nothing is taken up front and other
    /// clients run between shards; in a transaction, the whole database.
    DbByShard,
    /// Every database, all at once (FLUSHALL).
    AllDbs,
    /// Every database, one shard at a time (INFO's keyspace section).
    AllDbsByShard,
    /// Runs Lua, as the script job: each `redis.call` takes its own
    /// command's footprint as it runs (EVAL, FCALL, FUNCTION LOAD ...).
    RunsScripts,
    /// The transaction: its queue's footprints and the watched keys (EXEC).
    Transaction,
    /// The client's watched keys (UNWATCH, DISCARD, RESET).
    Watched,
    /// Nothing itself; moves the database later commands of a
    /// transaction work on (SELECT).
    Select,
    /// Worked out from the arguments by a function: databases named by an
    /// argument (MOVE, COPY ... DB, SWAPDB) and DEBUG OBJECT's key.
    ByArgs(ByArgs),
}

/// Adds what a [`Scope::ByArgs`] command touches, with `db` selected.
pub type ByArgs = fn(&Keyspace, &Args<'_>, usize, &mut Batch<'_>);

/// The footprint of `cmd`: set once when the command table is built.
pub fn declare(cmd: &Command) -> Scope {
    if cmd.has(flags::RUNS_SCRIPTS) {
        return Scope::RunsScripts;
    }
    match cmd.name {
        "exec" => Scope::Transaction,
        "discard" | "unwatch" | "reset" => Scope::Watched,
        "select" => Scope::Select,
        "flushdb" => Scope::Db,
        // BGSAVE: the snapshot's start is an instant of the whole keyspace.
        "flushall" | "bgsave" | "save" | "sync" | "psync" => Scope::AllDbs,
        "keys" | "scan" | "randomkey" | "dbsize" => Scope::DbByShard,
        "info" => Scope::AllDbsByShard,
        "swapdb" => Scope::ByArgs(swapdb),
        "move" => Scope::ByArgs(move_key),
        "copy" => Scope::ByArgs(copy),
        "debug" => Scope::ByArgs(debug),
        "sort" | "sort_ro" => Scope::ByArgs(super::sort::footprint),
        _ => from_specs(cmd),
    }
}

/// The footprint the key specs give: the common shapes are kept so that
/// locating the keys needs no allocation.
fn from_specs(cmd: &Command) -> Scope {
    let mut specs = keyspec::specs(cmd)
        .iter()
        .filter(|s| s.flags & kflags::NOT_KEY == 0);
    let Some(spec) = specs.next() else {
        return Scope::None;
    };
    if specs.next().is_some() || spec.flags & kflags::INCOMPLETE != 0 {
        return Scope::Keys;
    }
    match (&spec.begin, &spec.find) {
        (
            BeginSearch::Index(first),
            FindKeys::Range {
                lastkey,
                step,
                limit: 0,
            },
        ) if *first > 0 => {
            let (Ok(first), Ok(last), Ok(step)) = (
                u16::try_from(*first),
                i16::try_from(*lastkey),
                u16::try_from((*step).max(1)),
            ) else {
                return Scope::Keys;
            };
            if last == 0 {
                Scope::Key(first)
            } else {
                Scope::KeyRange { first, last, step }
            }
        }
        _ => Scope::Keys,
    }
}

/// A database index argument, if valid.
pub fn db_arg(ks: &Keyspace, arg: Option<&[u8]>) -> Option<usize> {
    let n = parse_i64(arg?)?;
    (0..ks.db_count() as i64).contains(&n).then_some(n as usize)
}

/// SWAPDB a b: both databases whole.
fn swapdb(ks: &Keyspace, args: &Args<'_>, _db: usize, b: &mut Batch<'_>) {
    for i in [1, 2] {
        if let Some(d) = db_arg(ks, args.get(i)) {
            b.db(d);
        }
    }
}

/// MOVE key db: the key here and there.
fn move_key(ks: &Keyspace, args: &Args<'_>, db: usize, b: &mut Batch<'_>) {
    let key = &args[1];
    b.key(db, key);
    if let Some(d) = db_arg(ks, args.get(2)) {
        b.key(d, key);
    }
}

/// The COPY ... DB destination, if given: read as the handler reads the
/// options (the last DB wins; a syntax error ends the options).
pub fn copy_db(ks: &Keyspace, args: &Args<'_>) -> Option<usize> {
    let mut dst = None;
    let mut i = 3;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"replace") {
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            dst = db_arg(ks, args.get(i + 1));
            i += 2;
        } else {
            break;
        }
    }
    dst
}

/// COPY source destination [DB n]: the destination may be in database n.
fn copy(ks: &Keyspace, args: &Args<'_>, db: usize, b: &mut Batch<'_>) {
    b.key(db, &args[1]);
    b.key(copy_db(ks, args).unwrap_or(db), &args[2]);
}

/// DEBUG OBJECT, LISTPACK and QUICKLIST read one key, RELOAD every
/// database, POPULATE writes anywhere in the selected one; the other
/// subcommands touch none.
fn debug(_ks: &Keyspace, args: &Args<'_>, db: usize, b: &mut Batch<'_>) {
    let sub = |name: &[u8]| args[1].eq_ignore_ascii_case(name);
    if args.len() >= 3 && (sub(b"object") || sub(b"listpack") || sub(b"quicklist")) {
        b.key(db, &args[2]);
    } else if sub(b"reload") {
        b.all_dbs();
    } else if sub(b"populate") {
        b.db(db);
    }
}

/// Adds the keys of a range scope.
fn range(args: &Args<'_>, db: usize, first: u16, last: i16, step: u16, b: &mut Batch<'_>) {
    let argc = args.len() as i64;
    let first = i64::from(first);
    let last = if last >= 0 {
        first + i64::from(last)
    } else {
        argc + i64::from(last)
    };
    let mut i = first;
    while i <= last && i < argc {
        b.key(db, &args[i as usize]);
        i += i64::from(step);
    }
}

/// Adds what `cmd`'s footprint needs for `args` to `b`. `db` is the selected database, moved by
/// SELECT when planning a transaction. `whole` is false for a command
/// alone: a one-key command takes its shard on first access and the
/// shard-by-shard scopes take nothing up front; a transaction (`whole`)
/// takes everything before its first command.
fn gather(
    ks: &Keyspace,
    client: &Client,
    cmd: &Command,
    args: &Args<'_>,
    db: &mut usize,
    whole: bool,
    b: &mut Batch<'_>,
) {
    match cmd.footprint {
        Scope::None | Scope::RunsScripts => {}
        Scope::Key(i) => {
            if whole && let Some(k) = args.get(usize::from(i)) {
                b.key(*db, k);
            }
        }
        Scope::KeyRange { first, last, step } => range(args, *db, first, last, step, b),
        Scope::Keys => match keyspec::keys_of(cmd, args) {
            Ok(idx) => idx.into_iter().for_each(|i| b.key(*db, args.arg(i))),
            _ => b.db(*db),
        },
        Scope::Db => b.db(*db),
        Scope::AllDbs => b.all_dbs(),
        Scope::DbByShard if whole => b.db(*db),
        Scope::AllDbsByShard if whole => b.all_dbs(),
        Scope::DbByShard | Scope::AllDbsByShard => {}
        Scope::Transaction => plan_transaction(ks, client, b),
        Scope::Watched => {
            for (d, k) in &client.watched {
                b.key(*d, k);
            }
        }
        Scope::Select => {
            if whole && let Some(d) = db_arg(ks, args.get(1)) {
                *db = d;
            }
        }
        Scope::ByArgs(f) => f(ks, args, *db, b),
    }
}

/// Adds what EXEC needs before its first command: the watched keys (to
/// check them), and, unless the transaction is already doomed, the union
/// of its queued commands' footprints, following SELECT inside the queue.
/// Commands that run scripts add nothing: such an EXEC runs as the script
/// job, whose locks take what the scripts reach as they run.
pub fn plan_transaction(ks: &Keyspace, client: &Client, b: &mut Batch<'_>) {
    for (d, k) in &client.watched {
        b.key(*d, k);
    }
    let Some(q) = client.multi.as_ref().filter(|q| !q.is_failed()) else {
        return;
    };
    let mut db = client.db;
    for (cmd, args) in q.commands() {
        gather(ks, client, cmd, &args, &mut db, true, b);
    }
}

/// Takes the shards `cmd`'s footprint declares before its handler runs
/// (`cmd::run`), database `db` selected. Alone (nothing held) this waits
/// as `Locks` allows; inside a transaction everything is held already;
/// in a script, the job's locks take what is missing.
#[inline]
pub fn acquire(
    ks: &'static Keyspace,
    client: &Client,
    locks: &mut Locks,
    cmd: &Command,
    args: &Args<'_>,
    db: usize,
) -> Result<(), Undeclared> {
    // The hot path: nothing to gather (a one-key command locks on access).
    if matches!(
        cmd.footprint,
        Scope::None
            | Scope::Key(_)
            | Scope::RunsScripts
            | Scope::Select
            | Scope::DbByShard
            | Scope::AllDbsByShard
    ) {
        return Ok(());
    }
    let mut db = db;
    let mut b = locks.batch(ks);
    gather(ks, client, cmd, args, &mut db, false, &mut b);
    b.take()
}

/// Whether `cmd` runs as the script job: it runs Lua, or it is an EXEC
/// whose queue holds a command that does.
pub fn runs_as_job(cmd: &Command, client: &Client) -> bool {
    match cmd.footprint {
        Scope::RunsScripts => true,
        Scope::Transaction => client
            .multi
            .as_ref()
            .is_some_and(|q| q.any_command(|c| matches!(c.footprint, Scope::RunsScripts))),
        _ => false,
    }
}
