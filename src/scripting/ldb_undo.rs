//! The rollback of a `SCRIPT DEBUG YES` session: before a write command of
//! the session runs, each key it may touch is saved once (its DUMP payload
//! and deadline, or that it did not exist), and when the session ends every
//! saved key is put back as it was. All of it runs inside the script job,
//! under the job's locks, so no other client sees the keys in between.
//!
//! The saving and restoring call the DUMP, PEXPIRETIME, DEL and RESTORE
//! handlers directly: no effect (AOF, replicas), no keyspace event, no
//! statistics of their own. A write command whose keys cannot be named
//! (FLUSHDB, SWAPDB, DEBUG RELOAD ...) is refused in such a session: it
//! could not be undone.

use std::collections::HashSet;

use crate::cmd::footprint::{Scope, copy_db, db_arg};
use crate::cmd::{Command, Ctx, DbCtx, Effect, keyspec};
use crate::resp::{Args, Parser, Reply};
use crate::server::stats::ThreadStats;

pub const CANNOT_UNDO: &[u8] = b"ERR This command can't be rolled back at the end of a SCRIPT DEBUG YES session (use SCRIPT DEBUG SYNC)";

/// One saved key: `None` when it did not exist.
struct Saved {
    db: usize,
    key: Vec<u8>,
    was: Option<(Vec<u8>, i64)>,
}

#[derive(Default)]
pub struct Undo {
    saved: Vec<Saved>,
    seen: HashSet<(usize, Vec<u8>)>,
    /// Statistics of the internal calls, counted nowhere else.
    stats: Option<ThreadStats>,
}

/// The (database, key) pairs `cmd` may write, or Err when they cannot be
/// named.
fn touched(
    ctx: &Ctx<'_>,
    cmd: &Command,
    args: &Args<'_>,
) -> Result<Vec<(usize, Vec<u8>)>, &'static [u8]> {
    let db = ctx.client.db;
    let ks = ctx.db.ks;
    let keys = |idx: Vec<usize>| idx.into_iter().map(|i| (db, args[i].to_vec())).collect();
    match (cmd.footprint, cmd.name) {
        (Scope::None | Scope::Select, _) => Ok(Vec::new()),
        (_, "move") => {
            let mut v = vec![(db, args[1].to_vec())];
            if let Some(d) = db_arg(ks, args.get(2)) {
                v.push((d, args[1].to_vec()));
            }
            Ok(v)
        }
        (_, "copy") => Ok(vec![
            (db, args[1].to_vec()),
            (copy_db(ks, args).unwrap_or(db), args[2].to_vec()),
        ]),
        (Scope::Key(_) | Scope::KeyRange { .. } | Scope::Keys, _) | (_, "sort") => {
            keyspec::keys_of(cmd, args)
                .map(keys)
                .map_err(|_| CANNOT_UNDO)
        }
        _ => Err(CANNOT_UNDO),
    }
}

/// Runs one internal command's handler on `db`; its reply.
fn call(ctx: &mut Ctx<'_>, stats: &ThreadStats, db: usize, argv: &[&[u8]]) -> Vec<u8> {
    let srv = ctx.srv;
    let Some(cmd) = (0..srv.commands.len())
        .map(|i| srv.commands.get(i))
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(argv[0]))
    else {
        return Vec::new();
    };
    let Some(handler) = cmd.handler else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    let mut spans = Vec::new();
    for a in argv {
        spans.push((buf.len(), buf.len() + a.len()));
        buf.extend_from_slice(a);
    }
    let args = Parser::args_over(&buf, &spans);
    let ks = ctx.db.ks;
    if crate::cmd::footprint::acquire(ks, ctx.client, ctx.db.locks, cmd, &args, db).is_err() {
        return Vec::new();
    }
    let mut out = Reply::new(false);
    let saved_db = ctx.client.db;
    ctx.client.db = db;
    let mut sub = Ctx {
        srv,
        client: &mut *ctx.client,
        out: &mut out,
        db: DbCtx {
            ks,
            locks: &mut *ctx.db.locks,
            index: db,
            now_ms: ctx.db.now_ms,
            no_touch: true,
        },
        stats,
        cmd,
        dirty: 0,
        effect: Effect::Nothing,
        unchanged_arg: None,
        saved: false,
        events: crate::pubsub::notify::Events::quiet(),
    };
    if let Err(e) = handler(&mut sub, &args) {
        out.error(&e.message());
    }
    ctx.client.db = saved_db;
    out.buf
}

fn bulk(reply: &[u8]) -> Option<Vec<u8>> {
    let rest = reply.strip_prefix(b"$")?;
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    let n: usize = std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()?;
    rest.get(nl + 2..nl + 2 + n).map(<[u8]>::to_vec)
}

fn int(reply: &[u8]) -> Option<i64> {
    let rest = reply.strip_prefix(b":")?;
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()
}

impl Undo {
    /// Saves the keys `cmd` may write that were not saved yet; Err when
    /// the command must not run (its changes could not be undone).
    pub fn before_write(
        &mut self,
        ctx: &mut Ctx<'_>,
        cmd: &Command,
        args: &Args<'_>,
    ) -> Result<(), &'static [u8]> {
        let keys = touched(ctx, cmd, args)?;
        let stats = self
            .stats
            .get_or_insert_with(|| ThreadStats::new(ctx.srv.commands.len()));
        for (db, key) in keys {
            if !self.seen.insert((db, key.clone())) {
                continue;
            }
            let payload = bulk(&call(ctx, stats, db, &[b"dump", &key]));
            let was = payload.map(|p| {
                let at = int(&call(ctx, stats, db, &[b"pexpiretime", &key])).unwrap_or(-1);
                (p, at.max(0))
            });
            self.saved.push(Saved { db, key, was });
        }
        Ok(())
    }

    /// Puts every saved key back as it was.
    pub fn rollback(mut self, ctx: &mut Ctx<'_>) {
        let Some(stats) = self.stats.take() else {
            return;
        };
        for s in self.saved.drain(..).rev() {
            call(ctx, &stats, s.db, &[b"del", &s.key]);
            if let Some((payload, at)) = s.was {
                let at = at.to_string();
                let argv: [&[u8]; 6] = [
                    b"restore",
                    &s.key,
                    at.as_bytes(),
                    &payload,
                    b"ABSTTL",
                    b"REPLACE",
                ];
                let reply = call(ctx, &stats, s.db, &argv);
                if reply.first() == Some(&b'-') {
                    crate::warning!(
                        "SCRIPT DEBUG YES: could not put key back: {}",
                        String::from_utf8_lossy(&reply)
                    );
                }
            }
        }
    }
}
