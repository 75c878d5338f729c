//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP.

use std::sync::atomic::Ordering;

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::Config;
use crate::resp::Args;
use crate::util::glob::glob_match;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("config|get", get),
    ("config|set", set),
    ("config|resetstat", resetstat),
    ("config|rewrite", rewrite),
    ("config|help", help),
];

/// CONFIG GET: every parameter named exactly (printed as the client spelled
/// it) or matching a glob pattern (names and aliases), each once.
fn get(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let config = &ctx.srv.config;
    let params = config.params();
    let mut found: Vec<(String, String)> = Vec::new();
    let seen =
        |found: &[(String, String)], n: &str| found.iter().any(|(f, _)| f.eq_ignore_ascii_case(n));
    for pat in args.iter().skip(2) {
        let pat_s = String::from_utf8_lossy(pat);
        if !pat.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            if seen(&found, &pat_s) {
                continue;
            }
            let hit = params.iter().find(|p| {
                p.name.eq_ignore_ascii_case(&pat_s)
                    || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(&pat_s))
            });
            if let Some(p) = hit {
                found.push((pat_s.into_owned(), Config::get_value(p)));
            }
            continue;
        }
        for p in params.iter().filter(|p| !p.hidden) {
            for name in std::iter::once(p.name).chain(p.alias) {
                if !seen(&found, name) && glob_match(pat, name.as_bytes(), true) {
                    found.push((name.to_string(), Config::get_value(p)));
                }
            }
        }
    }
    ctx.out.map(found.len());
    for (k, v) in &found {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

/// CONFIG SET name value [name value ...]: all checked first, then all
/// applied, so a bad pair changes nothing.
fn set(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(Error::Syntax);
    }
    let config = &ctx.srv.config;
    let pairs: Vec<(String, String)> = (2..args.len())
        .step_by(2)
        .map(|i| {
            (
                String::from_utf8_lossy(&args[i]).into_owned(),
                String::from_utf8_lossy(&args[i + 1]).into_owned(),
            )
        })
        .collect();
    let protected_ok = config.protected_configs_allowed(ctx.client.info.is_local());
    // Names first, in order: unknown, immutable and duplicate names are
    // reported before any value is looked at, as Redis does.
    let mut names: Vec<&'static str> = Vec::new();
    for (name, _) in &pairs {
        let Some(param) = config.find(name) else {
            return Err(Error::owned(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if let Err(e) = param.check_settable(protected_ok) {
            return Err(failed(name, &e.reason()));
        }
        // An alias is its own entry (named as such in errors, and not a
        // duplicate of the name it stands for), as in Redis 7.0.
        let entry = match param.alias {
            Some(a) if a.eq_ignore_ascii_case(name) => a,
            _ => param.name,
        };
        if names.contains(&entry) {
            return Err(failed(name, "duplicate parameter"));
        }
        names.push(entry);
    }
    // As Redis: these cannot change under a load in progress (the
    // LOADING error, which clients may handle apart from a plain ERR).
    if (ctx.srv.persist.loading.active() || crate::server::replica_sync::async_loading())
        && names
            .iter()
            .any(|n| matches!(*n, "dir" | "dbfilename" | "appendonly"))
    {
        return Err(Error::msg(crate::persist::load::LOADING_ERROR));
    }
    let mut pending = Vec::with_capacity(pairs.len());
    for ((_, value), canon) in pairs.iter().zip(&names) {
        // Mutability was checked above, with this client's rights.
        match config.prepare(canon, value, false) {
            Ok(p) => pending.push(p),
            Err(e) => return Err(failed(canon, &e.reason())),
        }
    }
    let tls_before = tls_snapshot(config, &names);
    let aof_was = config.appendonly.get();
    let listen_before = listen_snapshot(config, &names);
    let oom_before = oom_snapshot(config, &names);
    let _watchdog = names
        .contains(&"watchdog-period")
        .then_some(SyncWatchdog(config));
    for (p, name) in pending.into_iter().zip(&names) {
        config.apply(p);
        if *name == "watchdog-period" {
            // Raised with `hz` as it is now (an `hz` later in the same
            // CONFIG SET does not count), as Redis applies them in order.
            let wd = &config.watchdog_period;
            wd.set(crate::watchdog::raised(wd.get(), config.hz.get()));
        }
    }
    let oom_changed = oom_before.is_some();
    if let Some(before) = oom_before {
        reapply_oom(config, before)?;
    }
    // A failure below restores every value of this CONFIG SET: the OOM
    // score written above goes back with them, as in Redis.
    let undo_oom = |e: Error| {
        if oom_changed {
            let _ = crate::server::oom::apply(config);
        }
        e
    };
    if names.contains(&"proc-title-template") {
        crate::server::title::apply(ctx.srv);
    }
    if let Some(before) = listen_before {
        relisten(ctx.srv, before).map_err(undo_oom)?;
    }
    if let Some(before) = tls_before {
        reload_tls(ctx.srv, before).map_err(undo_oom)?;
    }
    if names.contains(&"appendonly") && config.appendonly.get() != aof_was {
        let on = config.appendonly.get();
        if let Err(why) = crate::persist::aof::set_enabled(ctx.srv, on, ctx.client.in_exec) {
            config.appendonly.set(aof_was);
            return Err(failed("appendonly", &why));
        }
    }
    if names.contains(&"aof-disable-auto-gc") && !config.aof_disable_auto_gc.get() {
        crate::persist::aof::auto_gc_enabled();
    }
    if names.contains(&"maxmemory") {
        warn_if_over_maxmemory(config);
    }
    if names.contains(&"requirepass") {
        ctx.srv.acl.set_requirepass(&config.requirepass.get());
    }
    if names.contains(&"acllog-max-len") {
        ctx.srv
            .acl
            .log
            .trim(config.acllog_max_len.get().max(0) as usize);
    }
    crate::server::evict::sync_access_tracking(ctx.srv);
    if names.contains(&"maxmemory-clients") || names.contains(&"maxmemory") {
        // A lower limit applies at once: Redis evicts clients before it
        // answers.
        crate::server::client_mem::sync_limit(ctx.srv);
        let limit = ctx.srv.clients.eviction.limit();
        if limit > 0 {
            crate::server::client_mem::evict(ctx.srv, limit);
        }
    }
    super::slowlog::sync(ctx.srv);
    ctx.out.ok();
    Ok(())
}

/// Applies `watchdog-period` as it is stored when CONFIG SET returns, on
/// every path (a failure later on may have restored it).
struct SyncWatchdog<'a>(&'a Config);

impl Drop for SyncWatchdog<'_> {
    fn drop(&mut self) {
        crate::watchdog::configure(self.0.watchdog_period.get());
    }
}

/// `oom-score-adj` and `oom-score-adj-values` before a CONFIG SET that
/// changes either, and the first of them it names (blamed on failure).
type OomSnapshot = (&'static str, usize, String);

fn oom_snapshot(config: &Config, names: &[&'static str]) -> Option<OomSnapshot> {
    let first = names.iter().find(|n| n.starts_with("oom-score-adj"))?;
    Some((
        first,
        config.oom_score_adj.get(),
        config.oom_score_adj_values.get(),
    ))
}

/// Writes the new score to /proc; if the kernel refuses it (lowering a
/// score needs privileges), both parameters go back to their values
/// before, the old score is restored, and CONFIG SET fails as in Redis.
fn reapply_oom(config: &Config, (name, mode, values): OomSnapshot) -> Result<(), Error> {
    use crate::server::oom;
    if oom::apply(config).is_ok() {
        return Ok(());
    }
    let mode_name = oom::MODES.get(mode).copied().unwrap_or("no");
    let _ = config.set("oom-score-adj", &[mode_name], false);
    let _ = config.set("oom-score-adj-values", &[values.as_str()], false);
    let _ = oom::apply(config);
    Err(failed(name, oom::SET_FAILED))
}

/// A limit below what is in use takes effect at the next command (and in
/// the cron); Redis says so in its log.
fn warn_if_over_maxmemory(config: &crate::config::Config) {
    let max = config.maxmemory.get();
    let used = crate::alloc::used_memory();
    if max > 0 && (max as u64) < used {
        crate::warning!(
            "WARNING: the new maxmemory value set via CONFIG SET ({max}) is smaller than the current memory usage ({used}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy."
        );
    }
}

/// Every value a CONFIG SET changes, before it, when it changes `port`
/// or `bind` (whose new listeners may fail to bind: then all go back).
fn listen_snapshot(config: &Config, names: &[&'static str]) -> Option<Vec<(&'static str, String)>> {
    if !names.iter().any(|n| matches!(*n, "port" | "bind")) {
        return None;
    }
    let values = names
        .iter()
        .filter_map(|n| Some((*n, Config::get_value(&config.find(n)?))))
        .collect();
    Some(values)
}

/// Listens as the new `port` / `bind` say (when they changed); if that
/// fails, every value of this CONFIG SET is restored from `before` and the
/// error names the parameter, as Redis does.
fn relisten(
    srv: &'static crate::server::Server,
    before: Vec<(&'static str, String)>,
) -> Result<(), Error> {
    use crate::server::listen;
    let config = &srv.config;
    let changed = |name: &str| {
        let now = config.find(name).map(|p| Config::get_value(&p));
        before
            .iter()
            .any(|(n, v)| *n == name && Some(v) != now.as_ref())
    };
    let (port, bind) = (changed("port"), changed("bind"));
    if !port && !bind {
        return Ok(());
    }
    // Same port, new addresses: the old listeners must close first.
    let close_first = !port;
    let Err(why) = listen::rebind(srv, close_first) else {
        return Ok(());
    };
    let (name, answer) = if port {
        ("port", listen::PORT_FAILED)
    } else {
        ("bind", listen::BIND_FAILED)
    };
    crate::warning!("{why}");
    crate::warning!(
        "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
    );
    for (n, v) in &before {
        let _ = config.set(n, &[v.as_str()], false);
    }
    if close_first && let Err(why) = listen::rebind(srv, true) {
        crate::warning!("Failed to restore the old listening sockets: {why}");
    }
    Err(failed(name, answer))
}

/// The `tls-*` values before a CONFIG SET that changes one of them (they
/// are loaded again after it, and restored if that fails, as in Redis).
fn tls_snapshot(config: &crate::config::Config, names: &[&str]) -> Option<Vec<(String, String)>> {
    let name = names.iter().find(|n| n.starts_with("tls-"))?;
    let mut values = vec![(name.to_string(), String::new())];
    values.extend(
        config
            .params()
            .iter()
            .filter(|p| p.name.starts_with("tls-"))
            .map(|p| (p.name.to_string(), crate::config::Config::get_value(p))),
    );
    Some(values)
}

/// Loads the TLS settings again and, when `tls-port` changed, listens on
/// the new port; on failure restores the values in `before` (whose first
/// entry names the parameter to blame).
fn reload_tls(
    srv: &'static crate::server::Server,
    before: Vec<(String, String)>,
) -> Result<(), Error> {
    use crate::server::tls;
    let old_port = before
        .iter()
        .find(|(n, _)| n == "tls-port")
        .and_then(|(_, v)| v.parse::<i64>().ok());
    let new_port = srv.config.tls_port.get();
    let (name, why, answer) = match tls::reload(srv) {
        Err(why) => (before[0].0.as_str(), why, tls::UPDATE_FAILED),
        Ok(()) if old_port == Some(new_port) => return Ok(()),
        Ok(()) => match tls::rebind(srv, new_port as u16) {
            Ok(()) => return Ok(()),
            Err(why) => ("tls-port", why, tls::LISTEN_FAILED),
        },
    };
    crate::warning!("{why}");
    crate::warning!(
        "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
    );
    for (n, v) in &before[1..] {
        let _ = srv.config.set(n, &[v.as_str()], false);
    }
    let _ = tls::reload(srv);
    Err(failed(name, answer))
}

fn failed(name: &str, why: &str) -> Error {
    Error::owned(format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
    ))
}

/// CONFIG RESETSTAT: every counter INFO reports as a total.
fn resetstat(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    reset_stats(ctx.srv);
    ctx.out.ok();
    Ok(())
}

pub fn reset_stats(srv: &crate::server::Server) {
    for t in srv.all_thread_stats() {
        t.reset();
    }
    srv.stats.connections_received.store(0, Ordering::Relaxed);
    srv.stats.rejected_connections.store(0, Ordering::Relaxed);
    srv.ks.expired_keys.store(0, Ordering::Relaxed);
    srv.ks.evicted_keys.store(0, Ordering::Relaxed);
    srv.clients.eviction.evicted.store(0, Ordering::Relaxed);
    crate::server::evict::reset_lazyfreed();
    crate::server::repl::reset_sync_counts();
    super::info::reset_ops_samples();
    crate::server::evict::reset_lazyfreed();
}

/// CONFIG REWRITE: the config file the server started with, brought up to
/// date (`config::rewrite`).
fn rewrite(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    rewrite_file(ctx.srv, false)?;
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE, and DEBUG CONFIG-REWRITE-FORCE-ALL (`force_all`: every
/// parameter is written, default or not).
pub fn rewrite_file(srv: &crate::server::Server, force_all: bool) -> Result<(), Error> {
    use crate::config::rewrite::{RewriteError, rewrite};
    match rewrite(srv, force_all) {
        Ok(()) => {
            crate::warning!("CONFIG REWRITE executed with success.");
            Ok(())
        }
        Err(RewriteError::NoConfigFile) => Err(Error::msg(
            "ERR The server is running without a config file",
        )),
        Err(RewriteError::Io(why)) => {
            crate::warning!("CONFIG REWRITE failed: {why}");
            Err(Error::owned(format!("ERR Rewriting config file: {why}")))
        }
    }
}

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "CONFIG",
        &[
            "GET <pattern> [<pattern> ...]",
            "    Parameters whose names match a glob-style pattern, with their values.",
            "SET <directive> <value> [<directive> <value> ...]",
            "    Change parameters; either every change is made or none.",
            "RESETSTAT",
            "    Zero the statistics that INFO reports.",
            "REWRITE",
            "    Write the running configuration back to the config file.",
        ],
    );
    Ok(())
}
