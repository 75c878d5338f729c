//! MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP.
//!
//! Replies have Redis 7.0's shape (the same fields, errors and texts); the
//! numbers are ferrokv's own. USAGE is an estimate of what the key costs
//! here: its table slot, its entry allocation and, for a value behind a
//! pointer, the object and what its encoding holds, each allocation counted
//! as `alloc.rs` counts it (rounded up to a word). Collections are sampled
//! as Redis samples them: the first `SAMPLES` elements (5 by default, 0 for
//! all) are measured and the rest assumed alike.

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;
use crate::store::{EntryRef, Object, ValueRef};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("memory|usage", usage),
    ("memory|stats", stats),
    ("memory|doctor", doctor),
    ("memory|malloc-stats", malloc_stats),
    ("memory|purge", purge),
    ("memory|help", help),
];

/// Elements measured when SAMPLES is not given (Redis's default).
const DEFAULT_SAMPLES: usize = 5;

fn words(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn usage(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut samples = DEFAULT_SAMPLES;
    let mut i = 3;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"samples") && i + 1 < args.len() {
            let n = crate::util::num::parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
            if n < 0 {
                return Err(Error::Syntax);
            }
            samples = if n == 0 { usize::MAX } else { n as usize };
            i += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    let mut slot = ctx.db.key(&args[2]);
    let size = slot.lookup().map(|i| key_usage(&slot.entry(i), samples));
    match size {
        Some(n) => ctx.out.int(n as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

/// What one key costs: its 8-byte table slot, its entry, and the object
/// behind the entry (if any) with everything it owns.
pub fn key_usage(e: &EntryRef<'_>, samples: usize) -> usize {
    let object = match e.value() {
        ValueRef::Obj(o) => words(std::mem::size_of::<Object>()) + object_usage(o, samples),
        _ => 0,
    };
    8 + words(e.alloc_size()) + object
}

fn object_usage(o: &Object, samples: usize) -> usize {
    use std::mem::size_of_val;
    match o {
        Object::Str(v) => words(v.capacity()),
        Object::List(l) => words(size_of_val(&**l)) + l.mem_usage(samples),
        Object::Hash(h) => words(size_of_val(&**h)) + h.mem_usage(samples),
        Object::ZSet(z) => words(size_of_val(&**z)) + z.mem_usage(samples),
        Object::Set(s) => words(size_of_val(&**s)) + s.mem_usage(samples),
        Object::Stream(s) => words(size_of_val(&**s)) + s.mem_usage(samples),
    }
}

/// The figures MEMORY STATS and MEMORY DOCTOR report.
struct Figures {
    peak: u64,
    total: u64,
    startup: u64,
    clients_normal: u64,
    /// (db, table slot bytes) of each non-empty database.
    dbs: Vec<(usize, u64)>,
    overhead: u64,
    keys: u64,
    dataset: u64,
    rss: u64,
}

fn figures(ctx: &mut Ctx<'_>) -> Figures {
    let total = crate::alloc::exact_used_memory();
    let peak = crate::server::evict::note_peak(total);
    let startup = ctx.srv.stats.startup_allocated.min(total);
    // Every client's memory, as CLIENT LIST's `tot-mem` sums it.
    let clients_normal = crate::server::client_mem::figures(ctx.srv).0;
    let ks = ctx.db.ks;
    let mut dbs = Vec::new();
    let mut keys = 0u64;
    for db in 0..ks.db_count() {
        let (n, slots) = (0..ks.shard_count()).fold((0, 0), |(n, c), s| {
            ctx.db
                .locks
                .with_shard(ks, db, s, |g| (n + g.len(), c + g.table().capacity()))
        });
        if n > 0 {
            keys += n as u64;
            dbs.push((db, slots as u64 * 8));
        }
    }
    let overhead = startup + clients_normal + dbs.iter().map(|d| d.1).sum::<u64>();
    Figures {
        peak,
        total,
        startup,
        clients_normal,
        dbs,
        overhead,
        keys,
        dataset: total.saturating_sub(overhead),
        rss: super::info::rss_bytes(),
    }
}

/// Redis computes its ratios in single precision; printing them through
/// `f32` gives the same digits Redis prints.
fn ratio(a: u64, b: u64) -> f64 {
    (a as f32 / b.max(1) as f32) as f64
}

fn stats(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let f = figures(ctx);
    let net = f.total.saturating_sub(f.startup);
    let out = &mut *ctx.out;
    out.map(27 + f.dbs.len());
    let int = |out: &mut crate::resp::Reply, name: &str, v: u64| {
        out.bulk(name.as_bytes());
        out.int(v as i64);
    };
    let dbl = |out: &mut crate::resp::Reply, name: &str, v: f64| {
        out.bulk(name.as_bytes());
        out.double(v);
    };
    int(out, "peak.allocated", f.peak);
    int(out, "total.allocated", f.total);
    int(out, "startup.allocated", f.startup);
    int(out, "replication.backlog", 0);
    int(out, "clients.slaves", 0);
    int(out, "clients.normal", f.clients_normal);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", 0);
    int(out, "lua.caches", 0);
    int(out, "functions.caches", 0);
    for (db, slots) in &f.dbs {
        out.bulk(format!("db.{db}").as_bytes());
        out.map(3);
        int(out, "overhead.hashtable.main", *slots);
        // Deadlines live in the entries: there is no second table.
        int(out, "overhead.hashtable.expires", 0);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", f.overhead);
    int(out, "keys.count", f.keys);
    int(
        out,
        "keys.bytes-per-key",
        net.checked_div(f.keys).unwrap_or(0),
    );
    int(out, "dataset.bytes", f.dataset);
    dbl(
        out,
        "dataset.percentage",
        (f.dataset as f32 * 100.0 / net.max(1) as f32) as f64,
    );
    dbl(
        out,
        "peak.percentage",
        (f.total as f32 * 100.0 / f.peak.max(1) as f32) as f64,
    );
    // No allocator page statistics: the allocator's figures are the
    // counted allocations and the process's resident set.
    int(out, "allocator.allocated", f.total);
    int(out, "allocator.active", f.total);
    int(out, "allocator.resident", f.rss);
    dbl(out, "allocator-fragmentation.ratio", 1.0);
    int(out, "allocator-fragmentation.bytes", 0);
    dbl(out, "allocator-rss.ratio", ratio(f.rss, f.total));
    int(out, "allocator-rss.bytes", f.rss.saturating_sub(f.total));
    dbl(out, "rss-overhead.ratio", 1.0);
    int(out, "rss-overhead.bytes", 0);
    dbl(out, "fragmentation", ratio(f.rss, f.total));
    int(out, "fragmentation.bytes", f.rss.saturating_sub(f.total));
    Ok(())
}

const DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
const DOCTOR_FINE: &str = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";
const DOCTOR_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n";
const DOCTOR_RSS: &str = " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"mimalloc\".\n\n";
const DOCTOR_CLIENTS: &str = " * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n";

/// MEMORY DOCTOR: Redis's report texts, for the conditions ferrokv can
/// measure (peak, total RSS, client buffers; no allocator page figures).
fn doctor(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let f = figures(ctx);
    let mut reports = Vec::new();
    let text = if f.total < 5 << 20 {
        DOCTOR_EMPTY.to_string()
    } else {
        if f.peak / 2 > f.total {
            reports.push(DOCTOR_PEAK);
        }
        if ratio(f.rss, f.total) > 1.4 && f.rss.saturating_sub(f.total) > 10 << 20 {
            reports.push(DOCTOR_RSS);
        }
        let clients = ctx.srv.clients.len().max(1) as u64;
        if f.clients_normal / clients > 200 * 1024 {
            reports.push(DOCTOR_CLIENTS);
        }
        if reports.is_empty() {
            DOCTOR_FINE.to_string()
        } else {
            let mut s = String::from(
                "Sam, I detected a few issues in this Redis instance memory implants:\n\n",
            );
            reports.iter().for_each(|r| s.push_str(r));
            s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
            s
        }
    };
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// What Redis answers when not built with jemalloc.
fn malloc_stats(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out
        .verbatim(b"Stats not supported for the current allocator");
    Ok(())
}

/// Redis purges only with jemalloc; otherwise it just answers OK.
fn purge(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}
