//! MIGRATE: moves (or with COPY copies) keys to another server, as DUMP
//! payloads restored there with RESTORE, then deletes what the target
//! acknowledged. Like Redis, the command blocks while it talks to the
//! target: it holds its keys' shard locks and its worker thread for at most
//! `timeout` milliseconds per network step. Connections are kept per target
//! for 10 seconds of idleness and reused (INFO `migrate_cached_sockets`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{CmdResult, Ctx, Error, Handler};
use crate::config::notify as class;
use crate::persist::rdb::write::{Opts, dump_payload};
use crate::resp::Args;
use crate::util::num::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[("migrate", migrate)];

/// How long an unused cached connection is kept (Redis's 10 s).
const CACHE_IDLE: Duration = Duration::from_secs(10);
/// At most this many cached connections (Redis's 64).
const CACHE_MAX: usize = 64;

const CONNECT_ERR: &str = "IOERR error or timeout connecting to the client";
const WRITE_ERR: &str = "IOERR error or timeout writing to target instance";
const READ_ERR: &str = "IOERR error or timeout reading to target instance";

struct Cached {
    reader: BufReader<TcpStream>,
    /// The database the connection last SELECTed.
    db: Option<i64>,
    last_use: Instant,
}

/// Connections by `host:port`. Process-wide: a process runs one server.
static CACHE: Mutex<Option<HashMap<String, Cached>>> = Mutex::new(None);

/// INFO `migrate_cached_sockets`: idle connections past their time are
/// closed first.
pub fn cached_sockets() -> usize {
    let mut cache = CACHE.lock();
    let map = cache.get_or_insert_with(HashMap::new);
    map.retain(|_, c| c.last_use.elapsed() < CACHE_IDLE);
    map.len()
}

struct Request<'a> {
    host: String,
    port: String,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// AUTH's arguments (password, or username and password).
    auth: Vec<&'a [u8]>,
    keys: Vec<&'a [u8]>,
    /// `bind-source-addr`: the local address new connections bind to.
    source: String,
}

fn parse<'a>(args: &'a Args<'_>) -> Result<Request<'a>, Error> {
    let mut req = Request {
        host: String::from_utf8_lossy(&args[1]).into_owned(),
        port: String::from_utf8_lossy(&args[2]).into_owned(),
        db: 0,
        timeout: Duration::ZERO,
        copy: false,
        replace: false,
        auth: Vec::new(),
        keys: Vec::new(),
        source: String::new(),
    };
    let mut keys_at = None;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - j - 1;
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"copy") {
            req.copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            req.replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") {
            if more < 1 {
                return Err(Error::Syntax);
            }
            req.auth = vec![&args[j + 1]];
            j += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(Error::Syntax);
            }
            req.auth = vec![&args[j + 1], &args[j + 2]];
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !args[3].is_empty() {
                return Err(Error::msg(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys_at = Some(j + 1);
            break;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let timeout = parse_i64(&args[5]).ok_or(Error::NotInteger)?;
    req.db = parse_i64(&args[4])
        .filter(|d| i32::try_from(*d).is_ok())
        .ok_or(Error::NotInteger)?;
    // A timeout of 0 or less means one second, as in Redis.
    let ms = if timeout <= 0 { 1000 } else { timeout as u64 };
    req.timeout = Duration::from_millis(ms);
    req.keys = match keys_at {
        Some(at) => (at..args.len()).map(|i| &args[i][..]).collect(),
        None => vec![&args[3][..]],
    };
    Ok(req)
}

/// What a key goes to the target as.
struct Outgoing<'a> {
    key: &'a [u8],
    /// Milliseconds left to live, 0 for none.
    ttl: i64,
    payload: Vec<u8>,
}

fn migrate(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let mut req = parse(args)?;
    req.source = ctx.srv.config.bind_source_addr.get();
    let opts = Opts {
        compress: ctx.srv.config.rdbcompression.get(),
    };
    let now = ctx.db.now_ms;
    let mut out = Vec::new();
    for &key in &req.keys {
        if let Some(e) = ctx.db.key(key).get() {
            let ttl = e.expire().map_or(0, |at| (at - now).max(1));
            out.push(Outgoing {
                key,
                ttl,
                payload: dump_payload(e.value(), opts),
            });
        }
    }
    if out.is_empty() {
        ctx.out.simple("NOKEY");
        return Ok(());
    }
    let target = format!("{}:{}", req.host, req.port);
    // A cached connection the target has closed fails at once: retried
    // once on a fresh one, unless the failure was a timeout.
    let mut outcome = exchange(&target, &req, &out);
    if let Err(Failure::Io(_, retry)) = &outcome
        && *retry
    {
        outcome = exchange(&target, &req, &out);
    }
    let acked = match outcome {
        Ok(acked) => acked,
        Err(Failure::Io(msg, _)) => return Err(Error::msg(msg)),
        Err(Failure::Target(msg)) => return Err(target_error(&msg)),
    };
    // Keys the target restored go (unless COPY); the first error the
    // target gave for another is the reply.
    let mut first_err = None;
    let mut deleted = vec![b"DEL".to_vec()];
    for (o, reply) in out.iter().zip(acked) {
        match reply {
            Err(msg) => {
                first_err.get_or_insert(msg);
            }
            Ok(()) if !req.copy => {
                if ctx.db.key(o.key).remove().is_some() {
                    ctx.dirty += 1;
                    ctx.event(class::GENERIC, "del", o.key);
                    deleted.push(o.key.to_vec());
                }
            }
            Ok(()) => {}
        }
    }
    // Replicas and the AOF see the deletions, not the MIGRATE.
    if deleted.len() > 1 {
        ctx.rewrite_effect(deleted);
    }
    match first_err {
        Some(msg) => Err(target_error(&msg)),
        None => {
            ctx.out.ok();
            Ok(())
        }
    }
}

fn target_error(msg: &str) -> Error {
    Error::owned(format!("ERR Target instance replied with error: {msg}"))
}

enum Failure {
    /// The connection failed (its IOERR message); whether to retry.
    Io(&'static str, bool),
    /// The target refused AUTH or SELECT (its error, without the `-`).
    Target(String),
}

/// Sends AUTH, SELECT and one RESTORE per key in one write, then reads the
/// replies: each RESTORE's outcome, in order. The connection goes back to
/// the cache unless it failed.
fn exchange(
    target: &str,
    req: &Request<'_>,
    out: &[Outgoing<'_>],
) -> Result<Vec<Result<(), String>>, Failure> {
    let (mut conn, cached) = take_connection(target, req)?;
    let mut buf = Vec::new();
    if !req.auth.is_empty() {
        let mut argv: Vec<&[u8]> = vec![b"AUTH"];
        argv.extend(&req.auth);
        encode(&mut buf, &argv);
    }
    let select = conn.db != Some(req.db);
    if select {
        encode(&mut buf, &[b"SELECT", req.db.to_string().as_bytes()]);
    }
    for o in out {
        let ttl = o.ttl.to_string();
        let mut argv: Vec<&[u8]> = vec![b"RESTORE", o.key, ttl.as_bytes(), &o.payload];
        if req.replace {
            argv.push(b"REPLACE");
        }
        encode(&mut buf, &argv);
    }
    let io = |e: std::io::Error, msg| {
        let timed_out = matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        );
        Failure::Io(msg, cached && !timed_out)
    };
    conn.reader
        .get_mut()
        .write_all(&buf)
        .map_err(|e| io(e, WRITE_ERR))?;
    if !req.auth.is_empty() {
        read_reply(&mut conn.reader)
            .map_err(|e| io(e, READ_ERR))?
            .map_err(Failure::Target)?;
    }
    if select {
        match read_reply(&mut conn.reader).map_err(|e| io(e, READ_ERR))? {
            Ok(()) => conn.db = Some(req.db),
            Err(msg) => {
                // Left unknown: the next MIGRATE selects again.
                conn.db = None;
                return Err(Failure::Target(msg));
            }
        }
    }
    let mut replies = Vec::with_capacity(out.len());
    for _ in out {
        replies.push(read_reply(&mut conn.reader).map_err(|e| io(e, READ_ERR))?);
    }
    conn.last_use = Instant::now();
    let mut cache = CACHE.lock();
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() < CACHE_MAX {
        map.insert(target.to_string(), conn);
    }
    Ok(replies)
}

/// The cached connection to `target` (true), or a new one (false).
fn take_connection(target: &str, req: &Request<'_>) -> Result<(Cached, bool), Failure> {
    let cached = {
        let mut cache = CACHE.lock();
        let map = cache.get_or_insert_with(HashMap::new);
        map.retain(|_, c| c.last_use.elapsed() < CACHE_IDLE);
        map.remove(target)
    };
    let timeouts = |s: &TcpStream| {
        s.set_read_timeout(Some(req.timeout))?;
        s.set_write_timeout(Some(req.timeout))
    };
    if let Some(c) = cached {
        timeouts(c.reader.get_ref()).map_err(|_| Failure::Io(CONNECT_ERR, false))?;
        return Ok((c, true));
    }
    let fail = || Failure::Io(CONNECT_ERR, false);
    let port: u16 = req.port.parse().map_err(|_| fail())?;
    let addr = (req.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| fail())?
        .next()
        .ok_or_else(fail)?;
    let stream =
        crate::server::listen::connect(&req.source, &addr, req.timeout).map_err(|_| fail())?;
    let _ = stream.set_nodelay(true);
    timeouts(&stream).map_err(|_| fail())?;
    Ok((
        Cached {
            reader: BufReader::new(stream),
            db: None,
            last_use: Instant::now(),
        },
        false,
    ))
}

fn encode(buf: &mut Vec<u8>, argv: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

/// One status or error reply: Ok for `+...`, Err(text) for `-text`.
/// Anything else is a protocol error (read as a failed read).
fn read_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<Result<(), String>> {
    let mut line = Vec::new();
    // A status line is short; a target sending more is not a Redis server.
    let n = r.by_ref().take(64 * 1024).read_until(b'\n', &mut line)?;
    if n == 0 || !line.ends_with(b"\r\n") {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    line.truncate(line.len() - 2);
    match line.first() {
        Some(b'+') => Ok(Ok(())),
        Some(b'-') => Ok(Err(String::from_utf8_lossy(&line[1..]).into_owned())),
        _ => Err(std::io::ErrorKind::InvalidData.into()),
    }
}
