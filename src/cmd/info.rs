//! INFO: Redis's sections and field names, `# Section` headers, CRLF lines.
//! Fields that describe machinery ferrokv doesn't have (forks, replication
//! links, AOF) report the idle values Redis shows when that machinery is off.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

use parking_lot::Mutex;

use super::{CmdResult, Ctx, Handler};
use crate::pubsub::Kind;
use crate::resp::Args;
use crate::server::Server;

pub const COMMANDS: &[(&str, Handler)] = &[("info", info)];

/// Every section, in output order.
const SECTIONS: [&str; 13] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// What `INFO` / `INFO default` shows.
const DEFAULT: [&str; 11] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

fn info(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut wanted: Vec<&str> = Vec::new();
    if args.len() == 1 {
        wanted.extend(DEFAULT);
    }
    for a in args.iter().skip(1) {
        let a = a.to_ascii_lowercase();
        match a.as_slice() {
            b"all" | b"everything" => wanted.extend(SECTIONS),
            b"default" => wanted.extend(DEFAULT),
            _ => wanted.extend(SECTIONS.iter().filter(|s| s.as_bytes() == a.as_slice())),
        }
    }
    // Read through the command's locks: inside EXEC it holds the shards.
    let sizes: Vec<(usize, usize)> = if wanted.contains(&"keyspace") {
        let ks = &ctx.srv.ks;
        (0..ks.db_count())
            .map(|i| ks.db_sizes(ctx.db.locks, i))
            .collect()
    } else {
        Vec::new()
    };
    let text = render(ctx, &wanted, &sizes);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn render(ctx: &Ctx<'_>, wanted: &[&str], sizes: &[(usize, usize)]) -> String {
    let mut out = String::new();
    for section in SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut lines: Vec<String> = Vec::new();
        let title = match *section {
            "server" => {
                server(ctx, &mut lines);
                "Server"
            }
            "clients" => {
                clients(ctx.srv, &mut lines);
                "Clients"
            }
            "memory" => {
                memory(ctx.srv, &mut lines);
                "Memory"
            }
            "persistence" => {
                persistence(ctx.srv, &mut lines);
                "Persistence"
            }
            "stats" => {
                stats(ctx.srv, &mut lines);
                "Stats"
            }
            "replication" => {
                replication(ctx.srv, &mut lines);
                "Replication"
            }
            "cpu" => {
                cpu(&mut lines);
                "CPU"
            }
            "modules" => "Modules",
            "commandstats" => {
                commandstats(ctx.srv, &mut lines);
                "Commandstats"
            }
            "errorstats" => {
                errorstats(ctx.srv, &mut lines);
                "Errorstats"
            }
            "latencystats" => {
                super::latency::info_lines(ctx.srv, &mut lines);
                "Latencystats"
            }
            "cluster" => {
                lines.push("cluster_enabled:0".into());
                "Cluster"
            }
            _ => {
                keyspace(sizes, &mut lines);
                "Keyspace"
            }
        };
        let _ = write!(out, "# {title}\r\n");
        for l in lines {
            out.push_str(&l);
            out.push_str("\r\n");
        }
    }
    out
}

macro_rules! field {
    ($lines:expr, $($t:tt)*) => { $lines.push(format!($($t)*)) };
}

fn uname() -> (String, String, String) {
    // SAFETY: utsname is plain data filled by the kernel.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return ("Linux".into(), String::new(), String::new());
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (s(&u.sysname), s(&u.release), s(&u.machine))
}

/// A build id: stable for a given version, as Redis's is for a build.
fn build_id() -> String {
    let h = xxhash_rust::xxh3::xxh3_64(crate::VERSION.as_bytes());
    format!("{h:016x}")[..15].to_string()
}

fn server(ctx: &Ctx<'_>, lines: &mut Vec<String>) {
    let srv = ctx.srv;
    let (sys, rel, mach) = uname();
    let now = crate::server::now_ms();
    let uptime = srv.started.elapsed().as_secs();
    field!(lines, "redis_version:{}", crate::REDIS_VERSION);
    field!(lines, "redis_git_sha1:00000000");
    field!(lines, "redis_git_dirty:0");
    field!(lines, "redis_build_id:{}", build_id());
    field!(lines, "redis_mode:standalone");
    field!(lines, "os:{sys} {rel} {mach}");
    field!(lines, "arch_bits:{}", usize::BITS);
    field!(lines, "monotonic_clock:POSIX clock_gettime");
    field!(lines, "multiplexing_api:epoll");
    field!(lines, "process_id:{}", std::process::id());
    field!(lines, "process_supervised:no");
    field!(lines, "run_id:{}", srv.run_id);
    field!(lines, "tcp_port:{}", srv.tcp_port.load(Ordering::Relaxed));
    field!(lines, "server_time_usec:{}", now_usec());
    field!(lines, "uptime_in_seconds:{uptime}");
    field!(lines, "uptime_in_days:{}", uptime / 86400);
    field!(lines, "hz:{}", srv.config.hz.get());
    field!(lines, "configured_hz:{}", srv.config.hz.get());
    field!(lines, "lru_clock:{}", (now / 1000) & ((1 << 24) - 1));
    field!(lines, "executable:{}", srv.executable);
    field!(
        lines,
        "config_file:{}",
        srv.config_file.as_deref().unwrap_or("")
    );
    field!(lines, "io_threads_active:0");
    if let Some(ms) = crate::server::shutdown::remaining_ms() {
        field!(lines, "shutdown_in_milliseconds:{ms}");
    }
    field!(lines, "ferrokv_version:{}", crate::VERSION);
}

fn now_usec() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn clients(srv: &Server, lines: &mut Vec<String>) {
    // Replicas are not counted, as in Redis.
    let replicas = crate::server::repl::count();
    field!(
        lines,
        "connected_clients:{}",
        srv.clients.len().saturating_sub(replicas)
    );
    field!(lines, "cluster_connections:0");
    field!(lines, "maxclients:{}", srv.config.maxclients.get());
    let (_, max_in, max_out) = crate::server::client_mem::figures(srv);
    field!(lines, "client_recent_max_input_buffer:{max_in}");
    field!(lines, "client_recent_max_output_buffer:{max_out}");
    let blocked = crate::blocking::BLOCKED_CLIENTS.load(std::sync::atomic::Ordering::Relaxed);
    field!(lines, "blocked_clients:{blocked}");
    field!(lines, "tracking_clients:{}", srv.tracking.info().0);
    field!(lines, "clients_in_timeout_table:{blocked}");
}

/// Redis's bytesToHuman: `512B`, `1.50K`, `2.00M`...
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    let (div, unit) = UNITS
        .iter()
        .find(|(d, _)| n >= *d)
        .copied()
        .unwrap_or((1 << 10, "K"));
    format!("{:.2}{unit}", n as f64 / div as f64)
}

/// Resident set size in bytes, from /proc/self/statm.
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

fn total_system_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn memory(srv: &Server, lines: &mut Vec<String>) {
    let used = crate::alloc::exact_used_memory();
    let rss = rss_bytes();
    let peak = crate::server::evict::note_peak(used);
    let total = total_system_memory();
    let maxmemory = srv.config.maxmemory.get().max(0) as u64;
    field!(lines, "used_memory:{used}");
    field!(lines, "used_memory_human:{}", human_bytes(used));
    field!(lines, "used_memory_rss:{rss}");
    field!(lines, "used_memory_rss_human:{}", human_bytes(rss));
    field!(lines, "used_memory_peak:{peak}");
    field!(lines, "used_memory_peak_human:{}", human_bytes(peak));
    field!(
        lines,
        "used_memory_peak_perc:{:.2}%",
        used as f64 * 100.0 / peak.max(1) as f64
    );
    field!(lines, "total_system_memory:{total}");
    field!(lines, "total_system_memory_human:{}", human_bytes(total));
    scripts_memory(srv, lines);
    field!(lines, "maxmemory:{maxmemory}");
    field!(lines, "maxmemory_human:{}", human_bytes(maxmemory));
    field!(
        lines,
        "maxmemory_policy:{}",
        srv.config.maxmemory_policy.name()
    );
    field!(
        lines,
        "mem_fragmentation_ratio:{:.2}",
        rss as f64 / used.max(1) as f64
    );
    field!(
        lines,
        "mem_fragmentation_bytes:{}",
        rss as i64 - used as i64
    );
    // Eviction leaves replication buffers out (`evict::not_counted_for_evict`).
    let backlog = crate::server::repl::backlog_info().2;
    let replicas = crate::server::repl::output_bytes() as u64
        + crate::server::client_mem::replica_buffers(srv);
    field!(
        lines,
        "mem_not_counted_for_evict:{}",
        crate::server::evict::not_counted_for_evict(srv)
    );
    // Client memory (`server::client_mem`); replicas' buffers are theirs.
    field!(lines, "mem_replication_backlog:{backlog}");
    field!(
        lines,
        "mem_total_replication_buffers:{}",
        // The shared stream only (as Redis's figure): a replica's own
        // buffers leave with it, the stream stays while another needs it.
        (crate::server::repl::backlog_memory() + crate::server::repl::output_bytes()) as u64
    );
    field!(lines, "mem_clients_slaves:{replicas}");
    field!(
        lines,
        "mem_clients_normal:{}",
        crate::server::client_mem::figures(srv).0
    );
    field!(lines, "mem_cluster_links:0");
    field!(lines, "mem_aof_buffer:0");
    field!(lines, "mem_allocator:mimalloc");
    field!(lines, "active_defrag_running:0");
    // Objects freed in the background by eviction (FLUSHALL ASYNC's
    // tables are not counted).
    field!(
        lines,
        "lazyfree_pending_objects:{}",
        crate::server::evict::lazyfree_pending()
    );
    field!(
        lines,
        "lazyfreed_objects:{}",
        crate::server::evict::lazyfreed()
    );
}

/// The Lua VMs' lines of INFO memory (figures as of the last command that
/// changed them, see `Scripting::note_eval_vm`).
fn scripts_memory(srv: &Server, lines: &mut Vec<String>) {
    let (scripts, script_bytes, eval_vm) = srv.scripting.eval_vm_figures();
    let (libraries, functions) = srv.scripting.functions.counts();
    let (functions_vm, function_bytes) = srv.scripting.functions.memory();
    let (eval_vm, functions_vm) = (eval_vm as u64, functions_vm as u64);
    let script_total = (script_bytes + function_bytes) as u64;
    field!(lines, "used_memory_lua:{eval_vm}");
    field!(lines, "used_memory_vm_eval:{eval_vm}");
    field!(lines, "used_memory_lua_human:{}", human_bytes(eval_vm));
    field!(lines, "used_memory_scripts_eval:{script_bytes}");
    field!(lines, "number_of_cached_scripts:{scripts}");
    field!(lines, "number_of_functions:{functions}");
    field!(lines, "number_of_libraries:{libraries}");
    field!(lines, "used_memory_vm_functions:{functions_vm}");
    field!(lines, "used_memory_vm_total:{}", eval_vm + functions_vm);
    field!(
        lines,
        "used_memory_vm_total_human:{}",
        human_bytes(eval_vm + functions_vm)
    );
    field!(lines, "used_memory_functions:{function_bytes}");
    field!(lines, "used_memory_scripts:{script_total}");
    field!(
        lines,
        "used_memory_scripts_human:{}",
        human_bytes(script_total)
    );
}

fn persistence(srv: &Server, lines: &mut Vec<String>) {
    crate::persist::save::info_lines(srv, lines);
}

/// Totals over every worker thread.
#[derive(Default, Clone, Copy)]
struct Totals {
    commands: u64,
    net_in: u64,
    net_out: u64,
    hits: u64,
    misses: u64,
    errors: u64,
}

fn totals(srv: &Server) -> Totals {
    let mut t = Totals::default();
    for s in srv.all_thread_stats() {
        t.commands += s.commands_processed.get();
        t.net_in += s.net_input_bytes.get();
        t.net_out += s.net_output_bytes.get();
        t.hits += s.keyspace_hits.get();
        t.misses += s.keyspace_misses.get();
        t.errors += s.error_replies.get();
    }
    t
}

/// Recent (time, commands, bytes in, bytes out) samples, taken when INFO
/// runs, for the instantaneous rates.
static SAMPLES: Mutex<VecDeque<(Instant, Totals)>> = Mutex::new(VecDeque::new());
const SAMPLE_EVERY_MS: u128 = 100;
const SAMPLE_WINDOW: usize = 16;

pub fn reset_ops_samples() {
    SAMPLES.lock().clear();
}

/// (ops/sec, input kbps, output kbps) over the sampled window.
fn rates(now: Totals) -> (u64, f64, f64) {
    let mut samples = SAMPLES.lock();
    let t = Instant::now();
    if samples
        .back()
        .is_none_or(|(at, _)| t.duration_since(*at).as_millis() >= SAMPLE_EVERY_MS)
    {
        samples.push_back((t, now));
        if samples.len() > SAMPLE_WINDOW {
            samples.pop_front();
        }
    }
    let Some((at, old)) = samples.front().copied() else {
        return (0, 0.0, 0.0);
    };
    let secs = t.duration_since(at).as_secs_f64();
    if secs <= 0.0 {
        return (0, 0.0, 0.0);
    }
    let per_sec = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
    (
        per_sec(now.commands, old.commands) as u64,
        per_sec(now.net_in, old.net_in) / 1024.0,
        per_sec(now.net_out, old.net_out) / 1024.0,
    )
}

fn stats(srv: &Server, lines: &mut Vec<String>) {
    let t = totals(srv);
    let (ops, kin, kout) = rates(t);
    field!(
        lines,
        "total_connections_received:{}",
        srv.stats.connections_received.load(Ordering::Relaxed)
    );
    field!(lines, "total_commands_processed:{}", t.commands);
    field!(lines, "instantaneous_ops_per_sec:{ops}");
    field!(lines, "total_net_input_bytes:{}", t.net_in);
    field!(lines, "total_net_output_bytes:{}", t.net_out);
    field!(lines, "total_net_repl_input_bytes:0");
    field!(lines, "total_net_repl_output_bytes:0");
    field!(lines, "instantaneous_input_kbps:{kin:.2}");
    field!(lines, "instantaneous_output_kbps:{kout:.2}");
    field!(lines, "instantaneous_input_repl_kbps:0.00");
    field!(lines, "instantaneous_output_repl_kbps:0.00");
    field!(
        lines,
        "rejected_connections:{}",
        srv.stats.rejected_connections.load(Ordering::Relaxed)
    );
    let (full, partial_ok, partial_err) = crate::server::repl::sync_counts();
    field!(lines, "sync_full:{full}");
    field!(lines, "sync_partial_ok:{partial_ok}");
    field!(lines, "sync_partial_err:{partial_err}");
    field!(
        lines,
        "expired_keys:{}",
        srv.ks.expired_keys.load(Ordering::Relaxed)
    );
    field!(lines, "expired_stale_perc:0.00");
    field!(lines, "expired_time_cap_reached_count:0");
    field!(
        lines,
        "evicted_keys:{}",
        srv.ks.evicted_keys.load(Ordering::Relaxed)
    );
    field!(
        lines,
        "evicted_clients:{}",
        srv.clients.eviction.evicted.load(Ordering::Relaxed)
    );
    field!(lines, "keyspace_hits:{}", t.hits);
    field!(lines, "keyspace_misses:{}", t.misses);
    field!(
        lines,
        "pubsub_channels:{}",
        srv.pubsub.active(Kind::Channel)
    );
    field!(
        lines,
        "pubsub_patterns:{}",
        srv.pubsub.active(Kind::Pattern)
    );
    field!(
        lines,
        "pubsubshard_channels:{}",
        srv.pubsub.active(Kind::Shard)
    );
    field!(lines, "latest_fork_usec:0");
    field!(
        lines,
        "total_forks:{}",
        crate::persist::child::total_started()
    );
    field!(
        lines,
        "migrate_cached_sockets:{}",
        super::migrate::cached_sockets()
    );
    let (_, keys, items, prefixes) = srv.tracking.info();
    field!(lines, "tracking_total_keys:{keys}");
    field!(lines, "tracking_total_items:{items}");
    field!(lines, "tracking_total_prefixes:{prefixes}");
    field!(lines, "unexpected_error_replies:0");
    field!(lines, "total_error_replies:{}", t.errors);
}

fn replication(srv: &Server, lines: &mut Vec<String>) {
    let replica = crate::server::replica::is_replica();
    field!(lines, "role:{}", if replica { "slave" } else { "master" });
    if replica {
        crate::server::replica::info_lines(srv, lines);
    }
    field!(lines, "connected_slaves:{}", crate::server::repl::count());
    lines.extend(crate::server::repl::info_lines());
    let ids = crate::server::repl::ids();
    field!(
        lines,
        "master_failover_state:{}",
        crate::server::failover::state_name()
    );
    field!(lines, "master_replid:{}", ids.replid);
    field!(lines, "master_replid2:{}", ids.replid2);
    field!(
        lines,
        "master_repl_offset:{}",
        crate::server::repl::master_offset()
    );
    field!(lines, "second_repl_offset:{}", ids.second_offset);
    let (active, first, histlen) = crate::server::repl::backlog_info();
    field!(lines, "repl_backlog_active:{}", i32::from(active));
    field!(
        lines,
        "repl_backlog_size:{}",
        srv.config.repl_backlog_size.get()
    );
    field!(lines, "repl_backlog_first_byte_offset:{first}");
    field!(lines, "repl_backlog_histlen:{histlen}");
}

fn rusage(who: libc::c_int) -> (String, String) {
    // SAFETY: rusage is plain data filled by the kernel.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `r` is a valid, writable rusage.
    unsafe { libc::getrusage(who, &mut r) };
    let fmt = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (fmt(r.ru_stime), fmt(r.ru_utime))
}

fn cpu(lines: &mut Vec<String>) {
    let (sys, user) = rusage(libc::RUSAGE_SELF);
    let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
    field!(lines, "used_cpu_sys:{sys}");
    field!(lines, "used_cpu_user:{user}");
    field!(lines, "used_cpu_sys_children:{csys}");
    field!(lines, "used_cpu_user_children:{cuser}");
}

fn commandstats(srv: &Server, lines: &mut Vec<String>) {
    let threads = srv.all_thread_stats();
    for cmd in srv.commands.all() {
        let (mut calls, mut usec, mut rejected, mut failed) = (0u64, 0u64, 0u64, 0u64);
        for t in &threads {
            let s = &t.cmds[cmd.id];
            calls += s.calls.get();
            usec += s.usec.get();
            rejected += s.rejected.get();
            failed += s.failed.get();
        }
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let per_call = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        field!(
            lines,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}",
            cmd.name
        );
    }
}

fn errorstats(srv: &Server, lines: &mut Vec<String>) {
    let mut all: BTreeMap<String, u64> = BTreeMap::new();
    for t in srv.all_thread_stats() {
        for (code, n) in t.errors.lock().iter() {
            *all.entry(code.to_string()).or_default() += n;
        }
    }
    for (code, n) in all {
        field!(lines, "errorstat_{code}:count={n}");
    }
}

fn keyspace(sizes: &[(usize, usize)], lines: &mut Vec<String>) {
    for (i, &(keys, expires)) in sizes.iter().enumerate() {
        if keys > 0 {
            field!(lines, "db{i}:keys={keys},expires={expires},avg_ttl=0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_redis() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(1648856), "1.57M");
        assert_eq!(human_bytes(25325268992), "23.59G");
    }
}
