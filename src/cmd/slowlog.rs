//! SLOWLOG GET / LEN / RESET / HELP, and the slow-command path of
//! `cmd::run` that feeds it and the latency monitor ([`super::latency`]).
//!
//! Cost when nothing is slow: `cmd::run` compares the command's duration
//! with one relaxed load, [`SlowLog::floor`] (the lowest of the two
//! thresholds, in µs). Only a command at least that slow takes
//! [`slow_command`], which re-reads the configuration, so CONFIG SET needs
//! no hook for correctness: the floor starts at 0 (every command goes the
//! slow way once and computes it) and CONFIG SET resets it to 0 ([`sync`]).
//! The log itself is one small lock, taken only for a logged command.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{CmdResult, Command, Ctx, Error, Handler, flags};
use crate::resp::Args;
use crate::server::Server;
use crate::server::client::{Client, ClientInfo};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("slowlog|get", get),
    ("slowlog|len", len),
    ("slowlog|reset", reset),
    ("slowlog|help", help),
];

/// Arguments kept per entry (the last one says how many more there were).
const MAX_ARGC: usize = 32;
/// Bytes kept per argument (then how many more there were).
const MAX_ARG_LEN: usize = 128;

struct Entry {
    id: u64,
    unix_s: i64,
    usec: u64,
    argv: Vec<Vec<u8>>,
    addr: String,
    name: Vec<u8>,
}

#[derive(Default)]
pub struct SlowLog {
    /// Commands at least this many µs long take [`slow_command`]; 0 until
    /// computed (and after CONFIG SET), which sends the next command there.
    pub floor: AtomicU64,
    entries: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    next_id: u64,
    /// Newest first.
    entries: VecDeque<Entry>,
}

/// The floor for the configuration now: the slow log's threshold (when it
/// logs at all) and the latency monitor's (when on), whichever is lower.
fn floor(srv: &Server) -> u64 {
    let c = &srv.config;
    let slow = c.slowlog_log_slower_than.get();
    let slow = if slow >= 0 && c.slowlog_max_len.get() > 0 {
        slow as u64
    } else {
        u64::MAX
    };
    let lat = c.latency_monitor_threshold.get();
    let lat = if lat > 0 {
        (lat as u64).saturating_mul(1000)
    } else {
        u64::MAX
    };
    slow.min(lat)
}

/// After CONFIG SET: the next command recomputes the floor, and the log is
/// cut to `slowlog-max-len`.
pub fn sync(srv: &Server) {
    srv.stats.slowlog.floor.store(0, Ordering::Relaxed);
    let max = srv.config.slowlog_max_len.get().max(0) as usize;
    srv.stats.slowlog.entries.lock().entries.truncate(max);
}

/// A command that took `usec` µs, at least [`SlowLog::floor`]. Commands a
/// script calls and a command that blocked are not logged here, as in
/// Redis (the script is; a blocked command when it is served).
#[cold]
pub fn slow_command(srv: &Server, client: &mut Client, cmd: &Command, args: &Args<'_>, usec: u64) {
    let f = floor(srv);
    srv.stats.slowlog.floor.store(f, Ordering::Relaxed);
    if usec < f || crate::scripting::run::in_script() {
        return;
    }
    if let Some(blocked) = &mut client.blocked {
        // Served later in no measurable time: logged then only if every
        // command is.
        if srv.config.slowlog_log_slower_than.get() == 0 {
            blocked.slowlog_argv = Some(trimmed_argv(args));
        }
        return;
    }
    record(srv, client, cmd, args, usec);
}

/// Logs and samples a finished command (also a served blocked one).
pub fn record(srv: &Server, client: &Client, cmd: &Command, args: &Args<'_>, usec: u64) {
    let c = &srv.config;
    let lat = c.latency_monitor_threshold.get();
    if lat > 0 && usec / 1000 >= lat as u64 {
        let event = if cmd.has(flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        srv.stats.latency.add(event, usec / 1000);
    }
    let slow = c.slowlog_log_slower_than.get();
    let max = c.slowlog_max_len.get();
    if cmd.has(flags::SKIP_SLOWLOG) || slow < 0 || usec < slow as u64 || max <= 0 {
        return;
    }
    push(srv, &client.info, trimmed_argv(args), usec);
}

/// Adds an entry (`argv` already trimmed), cutting the log to its length.
pub fn push(srv: &Server, info: &ClientInfo, argv: Vec<Vec<u8>>, usec: u64) {
    let max = srv.config.slowlog_max_len.get();
    if max <= 0 {
        return;
    }
    let entry = Entry {
        id: 0,
        unix_s: crate::server::now_ms() / 1000,
        usec,
        argv,
        addr: info.addr.clone(),
        name: info.name(),
    };
    let mut log = srv.stats.slowlog.entries.lock();
    let entry = Entry {
        id: log.next_id,
        ..entry
    };
    log.next_id += 1;
    log.entries.push_front(entry);
    log.entries.truncate(max as usize);
}

/// The arguments as Redis logs them: at most 32 (the last saying how many
/// more there were), each cut at 128 bytes, secrets redacted.
fn trimmed_argv(args: &Args<'_>) -> Vec<Vec<u8>> {
    let argc = args.len();
    let kept = if argc > MAX_ARGC { MAX_ARGC - 1 } else { argc };
    let redacted = redacted(args);
    let mut argv: Vec<Vec<u8>> = (0..kept)
        .map(|i| {
            if redacted.contains(&i) {
                return b"(redacted)".to_vec();
            }
            let a = &args[i];
            if a.len() > MAX_ARG_LEN {
                let mut v = a[..MAX_ARG_LEN].to_vec();
                v.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes(),
                );
                v
            } else {
                a.to_vec()
            }
        })
        .collect();
    if argc > MAX_ARGC {
        argv.push(format!("... ({} more arguments)", argc - kept).into_bytes());
    }
    argv
}

/// Positions Redis 7.0 replaces with `(redacted)`: AUTH's arguments,
/// HELLO's AUTH pair, every argument of ACL SETUSER, the values of the
/// sensitive parameters in CONFIG SET, MIGRATE's AUTH/AUTH2 secrets.
fn redacted(args: &Args<'_>) -> Vec<usize> {
    let name = args[0].to_ascii_lowercase();
    let sub = |i: usize| args.get(i).map(|a| a.to_ascii_lowercase());
    match name.as_slice() {
        b"auth" => (1..args.len()).collect(),
        b"hello" => (2..args.len())
            .find(|&i| args[i].eq_ignore_ascii_case(b"auth"))
            .map(|i| (i + 1..(i + 3).min(args.len())).collect())
            .unwrap_or_default(),
        b"acl" if sub(1).as_deref() == Some(b"setuser") => (2..args.len()).collect(),
        b"config" if sub(1).as_deref() == Some(b"set") => (2..args.len())
            .step_by(2)
            .filter(|&i| {
                let p = args[i].to_ascii_lowercase();
                matches!(p.as_slice(), b"requirepass" | b"masterauth" | b"masteruser")
            })
            .map(|i| i + 1)
            .filter(|&i| i < args.len())
            .collect(),
        b"migrate" => {
            let mut out = Vec::new();
            for i in 6..args.len() {
                if args[i].eq_ignore_ascii_case(b"auth") {
                    out.push(i + 1);
                } else if args[i].eq_ignore_ascii_case(b"auth2") {
                    out.extend([i + 1, i + 2]);
                }
            }
            out.retain(|&i| i < args.len());
            out
        }
        _ => Vec::new(),
    }
}

fn get(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let count = match args.len() {
        2 => 10,
        3 => match crate::util::num::parse_i64(&args[2]) {
            Some(n) if n >= -1 => n,
            _ => {
                return Err(Error::msg(
                    "ERR count should be greater than or equal to -1",
                ));
            }
        },
        _ => return Err(unknown_sub(&args[1])),
    };
    let log = ctx.srv.stats.slowlog.entries.lock();
    let n = if count < 0 {
        log.entries.len()
    } else {
        (count as usize).min(log.entries.len())
    };
    let out = &mut *ctx.out;
    out.array(n);
    for e in log.entries.iter().take(n) {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.unix_s);
        out.int(e.usec as i64);
        out.array(e.argv.len());
        for a in &e.argv {
            out.bulk(a);
        }
        out.bulk(e.addr.as_bytes());
        out.bulk(&e.name);
    }
    Ok(())
}

fn unknown_sub(sub: &[u8]) -> Error {
    Error::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
        String::from_utf8_lossy(sub)
    ))
}

fn len(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let n = ctx.srv.stats.slowlog.entries.lock().entries.len();
    ctx.out.int(n as i64);
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.srv.stats.slowlog.entries.lock().entries.clear();
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}
