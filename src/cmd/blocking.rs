//! The blocking pops: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN
//! BZPOPMAX BZMPOP. Each first tries its non-blocking form; if every key is
//! empty it parks the client (see `crate::blocking`) with a serve function
//! that performs the same pop later, under the pushing command's locks.
//! Also WAIT, which parks on no key at all.

use std::time::Duration;

use super::lists::{parse_end, parse_lmpop, pop_event, push_event};
use super::zsets::pop::{parse_zmpop, pop_event as zpop_event, reply_pairs};
use super::{CmdResult, Ctx, Error, Handler};
use crate::blocking::{ServeCtx, ServeFn, Served, Waiter};
use crate::config::notify as class;
use crate::resp::{Args, Reply};
use crate::server::client::Blocked;
use crate::store::KeySlot;
use crate::types::list::Fill;
use crate::types::{list, zset};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("blpop", blpop),
    ("brpop", brpop),
    ("blmove", blmove),
    ("brpoplpush", brpoplpush),
    ("blmpop", blmpop),
    ("bzpopmin", bzpopmin),
    ("bzpopmax", bzpopmax),
    ("bzmpop", bzmpop),
];

unsafe extern "C" {
    fn ferrokv_timeout_ms(
        s: *const libc::c_char,
        len: usize,
        ms: *mut libc::c_longlong,
    ) -> libc::c_int;
}

/// The timeout argument: `None` waits forever (0), else how long.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Error> {
    let mut ms: libc::c_longlong = 0;
    // SAFETY: `arg` is valid for its length; the C side copies it first.
    let rc = unsafe { ferrokv_timeout_ms(arg.as_ptr() as *const libc::c_char, arg.len(), &mut ms) };
    if rc != 0 {
        return Err(Error::msg("ERR timeout is not a float or out of range"));
    }
    if ms < 0 {
        return Err(Error::msg("ERR timeout is negative"));
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

/// The null a blocking command replies on timeout, in the client's protocol.
fn timeout_reply(resp3: bool) -> Vec<u8> {
    let mut r = Reply::new(resp3);
    r.null_array();
    r.buf
}

/// Parks the client on `keys` (whose shards the command holds). `also`:
/// other keys the serve writes (see `Waiter::also`).
pub(crate) fn block(
    ctx: &mut Ctx<'_>,
    keys: Vec<Vec<u8>>,
    timeout: Option<Duration>,
    serve: ServeFn,
    also: Vec<Vec<u8>>,
) {
    // Inside EXEC or a script nothing can arrive while it runs: answer the
    // timeout reply at once (a null bulk for the moves, as Redis does).
    if ctx.client.in_exec || crate::scripting::run::in_script() {
        match ctx.cmd.name {
            "blmove" | "brpoplpush" => ctx.out.null(),
            _ => ctx.out.null_array(),
        }
        return;
    }
    let resp3 = ctx.out.resp3;
    let w = Waiter::new(
        ctx.client.id(),
        ctx.db.index,
        keys,
        resp3,
        timeout_reply(resp3),
        serve,
        also,
    );
    park(ctx, w, timeout);
}

/// Registers `w` and marks the client blocked until it is served, its
/// timeout passes, CLIENT UNBLOCK or the connection ends.
pub(crate) fn park(ctx: &mut Ctx<'_>, w: std::sync::Arc<Waiter>, timeout: Option<Duration>) {
    crate::blocking::register(ctx.db.ks, ctx.db.locks, &w);
    // CLIENT LIST's `b` from the moment the wait is registered (cleared by
    // the connection when the wait ends).
    ctx.client
        .info
        .set_flag(crate::server::client::list_flags::BLOCKED, true);
    let deadline = timeout.and_then(|d| tokio::time::Instant::now().checked_add(d));
    // CLIENT LIST shows it blocked (`b`) until its wait ends.
    ctx.client
        .info
        .set_flag(crate::server::client::list_flags::BLOCKED, true);
    ctx.client.blocked = Some(Blocked {
        waiter: w,
        deadline,
        cmd_id: ctx.cmd.id,
        slowlog_argv: None,
    });
}

fn fill(ctx: &Ctx<'_>) -> i64 {
    ctx.srv.config.list_max_listpack_size.get()
}

fn side_cmd(left: bool) -> &'static [u8] {
    if left { b"LPOP" } else { b"RPOP" }
}

fn blpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bpop(ctx, args, true)
}

fn brpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bpop(ctx, args, false)
}

/// The keys of a `CMD key [key ...] timeout` command.
fn keys_before_timeout(args: &Args<'_>) -> Vec<Vec<u8>> {
    args.iter()
        .skip(1)
        .take(args.len() - 2)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The shared shape of the blocking pops: try `pop` on each key now, and
/// if all are empty park the client with the same `pop` as its serve
/// function. `reply` writes the result, `effect` is what is published,
/// `event` (class, name) what the pop announces.
fn pop_or_block<T: 'static>(
    ctx: &mut Ctx<'_>,
    keys: Vec<Vec<u8>>,
    timeout: Option<Duration>,
    pop: impl Fn(&mut KeySlot<'_, '_>) -> Result<Option<T>, Error> + Send + Sync + 'static,
    reply: fn(&mut Reply, &[u8], &T),
    effect: impl Fn(&[u8], &T) -> Vec<Vec<u8>> + Send + Sync + 'static,
    (class, event): (u32, &'static str),
) -> CmdResult {
    for key in &keys {
        if let Some(v) = pop(&mut ctx.db.key(key))? {
            reply(ctx.out, key, &v);
            ctx.dirty += 1;
            ctx.event(class, event, key);
            ctx.event_if_emptied(key);
            ctx.rewrite_effect(effect(key, &v));
            return Ok(());
        }
    }
    block(
        ctx,
        keys,
        timeout,
        Box::new(move |sctx: &mut ServeCtx<'_>, key: &[u8], w: &Waiter| {
            let v = pop(&mut sctx.key(key)).ok()??;
            let e = effect(key, &v);
            let argv: Vec<&[u8]> = e.iter().map(Vec::as_slice).collect();
            sctx.effect(&argv);
            sctx.event(class, event, key);
            sctx.event_if_emptied(key);
            let mut r = Reply::new(w.resp3);
            reply(&mut r, key, &v);
            Some(Served::reply(r.buf))
        }),
        Vec::new(),
    );
    Ok(())
}

/// BLPOP/BRPOP key [key ...] timeout
fn bpop(ctx: &mut Ctx<'_>, args: &Args<'_>, left: bool) -> CmdResult {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    pop_or_block(
        ctx,
        keys_before_timeout(args),
        timeout,
        move |slot| Ok(list::pop(slot, left, 1)?.and_then(|mut v| v.pop())),
        |out, key, elem: &Vec<u8>| {
            out.array(2);
            out.bulk(key);
            out.bulk(elem);
        },
        move |key, _| vec![side_cmd(left).to_vec(), key.to_vec()],
        (class::LIST, pop_event(left)),
    )
}

fn blmove(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let from = parse_end(&args[3])?;
    let to = parse_end(&args[4])?;
    let timeout = parse_timeout(&args[5])?;
    bmove(ctx, &args[1], &args[2], from, to, timeout)
}

fn brpoplpush(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let timeout = parse_timeout(&args[3])?;
    bmove(ctx, &args[1], &args[2], false, true, timeout)
}

/// What a served or immediate move propagates: BRPOPLPUSH as RPOPLPUSH,
/// BLMOVE as LMOVE, as Redis rewrites them.
fn lmove_effect(src: &[u8], dst: &[u8], from: bool, to: bool, rpoplpush: bool) -> Vec<Vec<u8>> {
    if rpoplpush {
        return vec![b"RPOPLPUSH".to_vec(), src.to_vec(), dst.to_vec()];
    }
    let side = |l: bool| {
        if l {
            b"LEFT".to_vec()
        } else {
            b"RIGHT".to_vec()
        }
    };
    vec![
        b"LMOVE".to_vec(),
        src.to_vec(),
        dst.to_vec(),
        side(from),
        side(to),
    ]
}

fn bmove(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: bool,
    to: bool,
    timeout: Option<Duration>,
) -> CmdResult {
    let fill_n = fill(ctx);
    if list::find(&mut ctx.db.key(src))?.is_some() {
        // The non-blocking form does the whole job (and its checks; a
        // one-element list rotated onto itself keeps its TTL).
        super::lists::move_generic(ctx, src, dst, from, to)?;
        let rpoplpush = ctx.cmd.name == "brpoplpush";
        ctx.rewrite_effect(lmove_effect(src, dst, from, to, rpoplpush));
        return Ok(());
    }
    let dst = dst.to_vec();
    let rpoplpush = ctx.cmd.name == "brpoplpush";
    let also = vec![dst.clone()];
    let (srv, me) = (ctx.srv, ctx.client.info.id);
    block(
        ctx,
        vec![src.to_vec()],
        timeout,
        Box::new(move |sctx: &mut ServeCtx<'_>, key: &[u8], w: &Waiter| {
            // Only a list with elements serves a move.
            list::find(&mut sctx.key(key)).ok()??;
            // The whole move happens under both shards' locks or not at all:
            // with the destination's shard busy nothing is popped, and the
            // waiter serves itself holding both (`blocking::serve_self`).
            let Some(mut d) = sctx.try_key(&dst) else {
                return Some(Served::retry());
            };
            // A destination of another type: the client gets WRONGTYPE and
            // the element stays where it is, as in Redis.
            if let Err(e) = list::find(&mut d) {
                let mut r = Reply::new(w.resp3);
                r.error(&e.message());
                return Some(Served::reply(r.buf));
            }
            let elem = if key == dst.as_slice() {
                // Rotation: one edit, so the list never goes away.
                let mut s = sctx.key(key);
                let idx = list::find(&mut s).ok()??;
                let fill = Fill::new(fill_n);
                list::edit(&mut s, idx, fill, |q| {
                    let v = q.pop(from)?;
                    q.push(to, &v, fill);
                    Some(v)
                })?
            } else {
                let elem = list::pop(&mut sctx.key(key), from, 1).ok()??.pop()?;
                let mut d = sctx.try_key(&dst)?;
                // The type was checked, so the push cannot fail.
                list::push(&mut d, to, [elem.as_slice()], false, fill_n).ok()?;
                elem
            };
            let effect = lmove_effect(key, &dst, from, to, rpoplpush);
            let argv: Vec<&[u8]> = effect.iter().map(Vec::as_slice).collect();
            sctx.effect(&argv);
            sctx.event(class::LIST, push_event(to), &dst);
            sctx.event(class::LIST, pop_event(from), key);
            sctx.event_if_emptied(key);
            let mut r = Reply::new(w.resp3);
            r.bulk(&elem);
            crate::pubsub::tracking::served_write(srv, &dst, me, &mut r.buf);
            Some(Served::reply(r.buf))
        }),
        also,
    );
    Ok(())
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
fn blmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let timeout = parse_timeout(&args[1])?;
    // Past the timeout, the arguments are laid out as LMPOP's.
    let (keys, left, count) = parse_lmpop(&args.tail(1))?;
    pop_or_block(
        ctx,
        keys,
        timeout,
        move |slot| list::pop(slot, left, count),
        |out, key, items: &Vec<Vec<u8>>| reply_mpop_list(out, key, items),
        move |key, items| count_effect(side_cmd(left), key, items.len()),
        (class::LIST, pop_event(left)),
    )
}

fn reply_mpop_list(out: &mut Reply, key: &[u8], items: &[Vec<u8>]) {
    out.array(2);
    out.bulk(key);
    out.bulk_array(items.iter().map(Vec::as_slice));
}

fn count_effect(cmd: &[u8], key: &[u8], n: usize) -> Vec<Vec<u8>> {
    vec![
        cmd.to_vec(),
        key.to_vec(),
        itoa::Buffer::new().format(n).as_bytes().to_vec(),
    ]
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bzpop(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    bzpop(ctx, args, true)
}

fn zpop_cmd(max: bool) -> &'static [u8] {
    if max { b"ZPOPMAX" } else { b"ZPOPMIN" }
}

/// [key, member, score] as BZPOPMIN/BZPOPMAX reply.
fn reply_bzpop(out: &mut Reply, key: &[u8], member: &[u8], score: f64) {
    out.array(3);
    out.bulk(key);
    out.bulk(member);
    out.double(score);
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout
fn bzpop(ctx: &mut Ctx<'_>, args: &Args<'_>, max: bool) -> CmdResult {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    pop_or_block(
        ctx,
        keys_before_timeout(args),
        timeout,
        move |slot| Ok(zset::pop(slot, max, 1)?.and_then(|mut v| v.pop())),
        |out, key, (member, score): &(Vec<u8>, f64)| reply_bzpop(out, key, member, *score),
        move |key, _| vec![zpop_cmd(max).to_vec(), key.to_vec()],
        (class::ZSET, zpop_event(max)),
    )
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
fn bzmpop(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let timeout = parse_timeout(&args[1])?;
    let (keys, max, count) = parse_zmpop(&args.tail(1))?;
    pop_or_block(
        ctx,
        keys,
        timeout,
        move |slot| zset::pop(slot, max, count),
        |out, key, items: &Vec<(Vec<u8>, f64)>| reply_mpop_zset(out, key, items),
        // Replicated with the number popped, as Redis does.
        move |key, items| count_effect(zpop_cmd(max), key, items.len()),
        (class::ZSET, zpop_event(max)),
    )
}

fn reply_mpop_zset(out: &mut Reply, key: &[u8], items: &[(Vec<u8>, f64)]) {
    out.array(2);
    out.bulk(key);
    reply_pairs(out, items, true);
}
