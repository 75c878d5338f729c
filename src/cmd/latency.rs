//! LATENCY LATEST / HISTORY / RESET / DOCTOR / GRAPH / HISTOGRAM / HELP,
//! and INFO latencystats.
//!
//! Two different things, as in Redis:
//! - The latency monitor ([`Monitor`]): events (`command`, `fast-command`,
//!   `expire-cycle`, `eviction-cycle`) at least `latency-monitor-threshold`
//!   ms long, the last 160 seconds that had one per event. Fed from the
//!   slow path of `cmd::run` ([`super::slowlog::record`]) and the cron.
//! - Per-command latency histograms (`latency-tracking`, on by default):
//!   per worker thread, in `ThreadStats` ([`crate::server::stats::Histogram`],
//!   HdrHistogram's bucket layout for Redis's parameters), summed here on
//!   read. Redis measures in µs and so does ferrokv, so the percentiles and
//!   bucket bounds printed are the ones Redis prints for the same
//!   durations (HdrHistogram keeps 2 significant digits: a value is
//!   reported as the top of its bucket, within 1% of it).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use parking_lot::Mutex;

use super::{CmdResult, Command, Ctx, Error, Handler};
use crate::resp::{Args, Reply};
use crate::server::Server;
use crate::server::stats::{HDR_COUNTS, hdr_index, hdr_range};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("latency|latest", latest),
    ("latency|history", history),
    ("latency|reset", reset),
    ("latency|doctor", doctor),
    ("latency|graph", graph),
    ("latency|histogram", histogram),
    ("latency|help", help),
];

/// Seconds of history kept per event (Redis's 160).
const HISTORY_LEN: usize = 160;

#[derive(Default)]
pub struct Monitor {
    events: Mutex<BTreeMap<String, Event>>,
}

#[derive(Default)]
struct Event {
    /// (unix seconds, ms), oldest first; one per second (the worst).
    samples: VecDeque<(i64, u64)>,
    max: u64,
}

impl Monitor {
    /// Records `ms` for `event` now (the caller checked the threshold).
    pub fn add(&self, event: &str, ms: u64) {
        let now = crate::server::now_ms() / 1000;
        let mut events = self.events.lock();
        let e = events.entry(event.to_string()).or_default();
        e.max = e.max.max(ms);
        match e.samples.back_mut() {
            Some(last) if last.0 == now => last.1 = last.1.max(ms),
            _ => {
                if e.samples.len() == HISTORY_LEN {
                    e.samples.pop_front();
                }
                e.samples.push_back((now, ms));
            }
        }
    }
}

/// Records `elapsed` for a non-command `event` (the cron's cycles) if the
/// latency monitor is on and it was long enough.
pub fn sample(srv: &Server, event: &str, elapsed: std::time::Duration) {
    let threshold = srv.config.latency_monitor_threshold.get();
    let ms = elapsed.as_millis() as u64;
    if threshold > 0 && ms >= threshold as u64 {
        srv.stats.latency.add(event, ms);
    }
}

fn latest(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let events = ctx.srv.stats.latency.events.lock();
    ctx.out.array(events.len());
    for (name, e) in events.iter() {
        let (t, ms) = e.samples.back().copied().unwrap_or((0, 0));
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(t);
        ctx.out.int(ms as i64);
        ctx.out.int(e.max as i64);
    }
    Ok(())
}

fn history(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let events = ctx.srv.stats.latency.events.lock();
    let name = String::from_utf8_lossy(&args[2]);
    let samples = events.get(name.as_ref()).map(|e| &e.samples);
    ctx.out.array(samples.map_or(0, VecDeque::len));
    for (t, ms) in samples.into_iter().flatten() {
        ctx.out.array(2);
        ctx.out.int(*t);
        ctx.out.int(*ms as i64);
    }
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut events = ctx.srv.stats.latency.events.lock();
    let n = if args.len() == 2 {
        let n = events.len();
        events.clear();
        n
    } else {
        args.iter()
            .skip(2)
            .filter(|a| events.remove(String::from_utf8_lossy(a).as_ref()).is_some())
            .count()
    };
    ctx.out.int(n as i64);
    Ok(())
}

/// LATENCY GRAPH: Redis's ASCII chart of an event's history, 4 rows high
/// and at most 80 samples wide per block, each column labelled with how
/// long ago it was.
fn graph(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let events = ctx.srv.stats.latency.events.lock();
    let Some(e) = events.get(&name).filter(|e| !e.samples.is_empty()) else {
        return Err(Error::owned(format!(
            "ERR No samples available for event '{name}'"
        )));
    };
    let now = crate::server::now_ms() / 1000;
    let low = e.samples.iter().map(|s| s.1).min().unwrap_or(0);
    let high = e.samples.iter().map(|s| s.1).max().unwrap_or(0);
    let mut out = format!(
        "{name} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
        e.max,
        "-".repeat(80)
    );
    let samples: Vec<(u64, String)> = e
        .samples
        .iter()
        .map(|&(t, ms)| (ms, age_label(now - t)))
        .collect();
    for block in samples.chunks(80) {
        sparkline(&mut out, block, low, high);
    }
    drop(events);
    ctx.out.verbatim(out.as_bytes());
    Ok(())
}

fn age_label(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Rows of bars then, after one blank row, the labels written downwards.
/// Each of the 4 rows has 3 levels (`_`, `o`, `#`); a column full below
/// its top shows `|`.
fn sparkline(out: &mut String, block: &[(u64, String)], low: u64, high: u64) {
    const ROWS: i64 = 4;
    const FILL: [char; 3] = ['_', 'o', '#'];
    let steps = FILL.len() as i64 * ROWS;
    let range = if high == low {
        1.0
    } else {
        (high - low) as f64
    };
    let level = |v: u64| (((v - low) as f64 * steps as f64 / range) as i64).clamp(0, steps - 1);
    for row in 0..ROWS {
        for (v, _) in block {
            let k = level(*v) - (ROWS - row - 1) * FILL.len() as i64;
            out.push(match k {
                k if k < 0 => ' ',
                k if k < FILL.len() as i64 => FILL[k as usize],
                _ => '|',
            });
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(block.len()));
    out.push('\n');
    let depth = block.iter().map(|b| b.1.len()).max().unwrap_or(0);
    for i in 0..depth {
        for (_, label) in block {
            out.push(label.as_bytes().get(i).map_or(' ', |&b| b as char));
        }
        out.push('\n');
    }
}

const DOCTOR_OFF: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";
const DOCTOR_NONE: &str = "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n";
const DOCTOR_NO_FIX: &str = "While there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n";
const ADVISE_SLOWLOG_INSPECT: &str = "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n";
const ADVISE_SCHEDULER: &str = "- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n";
const ADVISE_HZ: &str = "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n";
const ADVISE_LARGE_OBJECTS: &str = "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n";
const ADVISE_MASS_EVICTION: &str = "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n";

/// LATENCY DOCTOR: Redis's report (per-event statistics, then the advice
/// its events call for; the advice about forks, disks and AOF concerns
/// events ferrokv does not have).
fn doctor(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let c = &ctx.srv.config;
    let threshold = c.latency_monitor_threshold.get();
    let slowlog = c.slowlog_log_slower_than.get();
    let events = ctx.srv.stats.latency.events.lock();
    let text = if threshold == 0 {
        DOCTOR_OFF.to_string()
    } else if events.is_empty() {
        DOCTOR_NONE.to_string()
    } else {
        let now = crate::server::now_ms() / 1000;
        let mut s = String::from(
            "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
        );
        // Advice flags, in the order Redis prints them.
        let (mut slow_on, mut slow_tune, mut inspect, mut sched, mut hz, mut large, mut evict) =
            (false, false, false, false, false, false, false);
        for (i, (name, e)) in events.iter().enumerate() {
            let n = e.samples.len().max(1) as u64;
            let avg = e.samples.iter().map(|s| s.1).sum::<u64>() / n;
            let mad = e.samples.iter().map(|s| s.1.abs_diff(avg)).sum::<u64>() / n;
            let first = e.samples.front().map_or(now, |s| s.0);
            let period = (now - first) as f64 / n as f64;
            let _ = writeln!(
                s,
                "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {mad}ms, period {period:.2} sec). Worst all time event {}ms.",
                i + 1,
                e.samples.len(),
                e.max
            );
            match name.as_str() {
                "command" => {
                    if slowlog < 0 || c.slowlog_max_len.get() == 0 {
                        slow_on = true;
                    } else if slowlog / 1000 > threshold {
                        slow_tune = true;
                    }
                    inspect = true;
                    large = true;
                }
                "fast-command" => sched = true,
                "expire-cycle" => {
                    hz = true;
                    large = true;
                }
                "eviction-del" => large = true,
                "eviction-cycle" => evict = true,
                _ => {}
            }
        }
        let limit = threshold.saturating_mul(1000);
        let advice: Vec<String> = [
            (slow_on, format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {limit}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n")),
            (slow_tune, format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {limit}'.\n")),
            (inspect, ADVISE_SLOWLOG_INSPECT.to_string()),
            (sched, ADVISE_SCHEDULER.to_string()),
            (hz, ADVISE_HZ.to_string()),
            (large, ADVISE_LARGE_OBJECTS.to_string()),
            (evict, ADVISE_MASS_EVICTION.to_string()),
        ]
        .into_iter()
        .filter_map(|(on, text)| on.then_some(text))
        .collect();
        if advice.is_empty() {
            s.push('\n');
            s.push_str(DOCTOR_NO_FIX);
        } else {
            s.push_str("\nI have a few advices for you:\n\n");
            advice.iter().for_each(|a| s.push_str(a));
        }
        s
    };
    drop(events);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// The summed histogram of `cmd` over every worker thread; `None` when it
/// has no calls recorded.
fn summed(srv: &Server, cmd: &Command) -> Option<(u64, Vec<u64>)> {
    let mut counts = vec![0u64; HDR_COUNTS];
    let mut any = false;
    for t in srv.all_thread_stats() {
        if let Some(h) = t.cmds[cmd.id].hist.get() {
            h.add_to(&mut counts);
            any = true;
        }
    }
    let total: u64 = counts.iter().sum();
    (any && total > 0).then_some((total, counts))
}

/// The value at `pct` (HdrHistogram's rule: the top of the bucket holding
/// the rank, the bottom for the 0th percentile), in ns.
fn percentile(total: u64, counts: &[u64], pct: f64) -> u64 {
    let want = ((pct.min(100.0) / 100.0 * total as f64 + 0.5) as u64).max(1);
    let mut seen = 0;
    for (i, &n) in counts.iter().enumerate() {
        seen += n;
        if seen >= want {
            let (low, width) = hdr_range(i);
            return if pct == 0.0 { low } else { low + width - 1 };
        }
    }
    0
}

/// INFO latencystats lines.
pub fn info_lines(srv: &Server, lines: &mut Vec<String>) {
    if !srv.config.latency_tracking.get() {
        return;
    }
    let pcts: Vec<(String, f64)> = srv
        .config
        .latency_tracking_info_percentiles
        .get()
        .split_whitespace()
        .filter_map(|w| Some((w.to_string(), w.parse().ok()?)))
        .collect();
    for cmd in srv.commands.all() {
        let Some((total, counts)) = summed(srv, cmd) else {
            continue;
        };
        let values: Vec<String> = pcts
            .iter()
            .map(|(name, p)| {
                let ns = percentile(total, &counts, *p);
                format!("p{name}={:.3}", ns as f64 / 1000.0)
            })
            .collect();
        lines.push(format!(
            "latency_percentiles_usec_{}:{}",
            cmd.name,
            values.join(",")
        ));
    }
}

/// LATENCY HISTOGRAM [command ...]: per command, its calls and the
/// cumulative count at each power-of-two bound from 1024 ns (printed in
/// µs), only where the count grows, as Redis prints it.
fn histogram(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    let mut cmds: Vec<&Command> = Vec::new();
    if args.len() == 2 {
        cmds.extend(srv.commands.all());
    } else {
        for a in args.iter().skip(2) {
            let lower = a.to_ascii_lowercase();
            let mut parts = lower.splitn(2, |&b| b == b'|');
            let Some(parent) = parts.next().and_then(|p| srv.commands.lookup(p)) else {
                continue;
            };
            match (parts.next(), &parent.subcommands) {
                (Some(sub), _) => cmds.extend(srv.commands.lookup_sub(parent, sub)),
                (None, Some(_)) => cmds.extend(srv.commands.all().filter(|c| {
                    c.name
                        .split_once('|')
                        .is_some_and(|(p, _)| p == parent.name)
                })),
                (None, None) => cmds.push(parent),
            }
        }
    }
    let found: Vec<(&Command, u64, Vec<u64>)> = cmds
        .into_iter()
        .filter_map(|c| summed(srv, c).map(|(t, counts)| (c, t, counts)))
        .collect();
    let out = &mut *ctx.out;
    out.map(found.len());
    for (cmd, total, counts) in found {
        out.bulk(cmd.name.as_bytes());
        out.map(2);
        out.bulk(b"calls");
        out.int(total as i64);
        out.bulk(b"histogram_usec");
        write_cdf(out, &counts);
    }
    Ok(())
}

fn write_cdf(out: &mut Reply, counts: &[u64]) {
    let mut points = Vec::new();
    let mut bound = 1024u64;
    let mut seen = 0u64;
    let mut i = 0;
    let total: u64 = counts.iter().sum();
    while seen < total {
        // Everything in buckets whose values are all at most `bound`.
        let last = hdr_index(bound.min(crate::server::stats::HDR_MAX));
        while i <= last && i < counts.len() {
            seen += counts[i];
            i += 1;
        }
        if points.last().map_or(0, |&(_, c)| c) < seen {
            // The bound as the top of its bucket, as Redis prints it.
            let (low, width) = hdr_range(hdr_index(bound));
            points.push(((low + width - 1) / 1000, seen));
        }
        bound *= 2;
    }
    out.map(points.len());
    for (us, n) in points {
        out.int(us as i64);
        out.int(n as i64);
    }
}

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts_of(usecs: &[u64]) -> (u64, Vec<u64>) {
        let mut c = vec![0; HDR_COUNTS];
        for &u in usecs {
            c[hdr_index(u * 1000)] += 1;
        }
        (usecs.len() as u64, c)
    }

    #[test]
    fn percentiles_print_redis_bucket_tops() {
        // Values Redis 7.0.15 printed for the same µs durations.
        for (us, want) in [
            (1, 1003),
            (2, 2007),
            (4, 4015),
            (7, 7007),
            (8, 8031),
            (238, 238591),
        ] {
            let (t, c) = counts_of(&[us]);
            assert_eq!(percentile(t, &c, 50.0), want, "{us} µs");
        }
        let (t, c) = counts_of(&[4]);
        assert_eq!(percentile(t, &c, 0.0), 4000);
        let (t, c) = counts_of(&[150_000, 300_000, 200_000]);
        assert_eq!(percentile(t, &c, 100.0), 301_989_887);
    }

    #[test]
    fn sparkline_matches_redis() {
        let mut s = String::new();
        sparkline(&mut s, &[(200, "2s".into()), (300, "1s".into())], 200, 300);
        assert_eq!(s, " #\n |\n |\n_|\n  \n21\nss\n");
    }
}
