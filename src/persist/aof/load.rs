//! Reading the AOF back at start-up: the manifest, then the base file and
//! the incremental files in order, each command run through the real
//! dispatcher by an internal client, as Redis's fake client does.
//!
//! A file that ends inside a command (a crash while writing) is cut back
//! to the last whole command with `aof-load-truncated yes`, if it is the
//! last file; a transaction left open at the end is dropped the same way.
//! Anything else malformed stops the start-up, naming the file.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Aof;
use super::manifest::{Info, Manifest};
use crate::cmd::internal::InternalClient;
use crate::resp::{Frame, Limits, Parser};
use crate::server::client::Client;
use crate::server::stats::ThreadStats;
use crate::server::{Server, now_ms};
use ferrokv_util::repr::strerror;

/// Why loading stopped, in Redis's words: the caller logs it (the start-up
/// error is the last line of the log, as Redis's exit leaves it).
#[derive(Debug)]
pub struct LoadError(pub String);

/// How one file loaded.
#[derive(Debug, PartialEq, Eq)]
enum Loaded {
    Ok,
    Empty,
    Truncated,
}

const CHUNK: usize = 1 << 20;

/// The manifest in the AOF directory, or an empty one when there is none.
pub(crate) fn read_manifest(aof: &Aof) -> Result<Manifest, String> {
    let path = aof.path(&aof.manifest_name());
    match std::fs::read(&path) {
        Ok(bytes) => Manifest::parse(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(format!(
            "Fatal error: can't open the AOF manifest {} for reading: {}",
            aof.manifest_name(),
            strerror(&e)
        )),
    }
}

/// A pre-7.0 AOF (`appendfilename` in `dir`) becomes the base of the
/// multi-part layout: the manifest names it, then it moves into the AOF
/// directory under the same name. A manifest already naming it whose move
/// did not happen (a crash in between) finishes the move.
pub(super) fn upgrade_old_aof(aof: &Aof, m: &mut Manifest) -> Result<(), String> {
    let old = std::path::PathBuf::from(&aof.prefix);
    if !old.is_file() {
        return Ok(());
    }
    if m.base.is_none() && m.incrs.is_empty() {
        m.base = Some(Info {
            name: aof.prefix.clone(),
            seq: 1,
        });
        m.base_seq = 1;
        aof.persist_manifest(m)
            .map_err(|e| format!("Can't persist the AOF manifest: {}", strerror(&e)))?;
    }
    std::fs::rename(&old, aof.path(&aof.prefix)).map_err(|e| {
        format!(
            "Error trying to rename the existing AOF to the AOF directory: {}",
            strerror(&e)
        )
    })?;
    let _ = super::manifest::fsync_dir(&aof.dir);
    crate::notice!(
        "Successfully migrated an old-style AOF into the AOF directory {}.",
        aof.srv.config.appenddirname.get()
    );
    Ok(())
}

/// Finishes an interrupted upgrade: the manifest names the old file as its
/// only base, which is still in `dir` and not in the AOF directory.
fn finish_upgrade(aof: &Aof, m: &Manifest) -> Result<(), String> {
    let Some(base) = &m.base else { return Ok(()) };
    if base.name == aof.prefix
        && m.incrs.is_empty()
        && !aof.path(&base.name).exists()
        && std::path::Path::new(&aof.prefix).is_file()
    {
        let mut m = m.clone();
        upgrade_old_aof(aof, &mut m)?;
    }
    Ok(())
}

/// Empties every database (DEBUG LOADAOF), unrecorded.
pub(super) fn empty_dataset(aof: &Aof) {
    aof.loading.store(true, Ordering::Relaxed);
    let mut runner = Runner::new(aof.srv);
    let buf = b"FLUSHALL";
    let spans = [(0, buf.len())];
    let _ = runner.run(&Parser::args_over(buf, &spans));
    drop(runner);
    aof.loading.store(false, Ordering::Relaxed);
}

/// Loads every file of the manifest; true if any held data.
pub(super) fn load_all(aof: &Aof, m: &Manifest) -> Result<bool, LoadError> {
    finish_upgrade(aof, m).map_err(LoadError)?;
    let files: Vec<(&Info, &str)> = m
        .base
        .iter()
        .map(|b| (b, "base"))
        .chain(m.incrs.iter().map(|i| (i, "incr")))
        .collect();
    let mut any = false;
    aof.loading.store(true, Ordering::Relaxed);
    aof.srv.ks.suspend_expiry(true);
    let result = (|| {
        for (n, (info, kind)) in files.iter().enumerate() {
            let last = n + 1 == files.len();
            let started = std::time::Instant::now();
            let loaded = load_file(aof, &info.name, kind == &"base")?;
            let len = std::fs::metadata(aof.path(&info.name)).map_or(0, |md| md.len());
            aof.srv.persist.loading.file_done(len);
            if loaded == Loaded::Truncated && !last {
                return Err(LoadError(
                    "Fatal error: the truncated file is not the last file".into(),
                ));
            }
            if loaded != Loaded::Empty {
                any = true;
                crate::notice!(
                    "DB loaded from {kind} file {}: {:.3} seconds",
                    info.name,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    })();
    aof.srv.ks.suspend_expiry(false);
    aof.loading.store(false, Ordering::Relaxed);
    result.map(|()| any)
}

/// The internal client commands of one file run as (a fresh one per file,
/// in database 0, as Redis's loader starts each file), flagged `loader`.
struct Runner(InternalClient);

impl Runner {
    fn new(srv: &'static Server) -> Runner {
        let addr = "127.0.0.1:0".parse().expect("address");
        let info = srv.clients.register(addr, addr, -1, now_ms());
        let mut client = Client::new(info, true);
        client.loader = true;
        let stats = Arc::new(ThreadStats::new(srv.commands.len()));
        Runner(InternalClient::new(srv, client, stats))
    }

    /// Runs one command; `Err` with its name if it is unknown.
    fn run(&mut self, args: &crate::resp::Args<'_>) -> Result<(), String> {
        self.0.run(args);
        if self.0.out.buf.starts_with(b"-ERR unknown command") {
            return Err(String::from_utf8_lossy(args.arg(0)).into_owned());
        }
        Ok(())
    }

    fn in_multi(&self) -> bool {
        self.0.client.multi.is_some()
    }
}

fn fail(msg: String) -> LoadError {
    LoadError(msg)
}

/// Loads one file of the AOF directory.
fn load_file(aof: &Aof, name: &str, base: bool) -> Result<Loaded, LoadError> {
    let path = aof.path(name);
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(format!(
                "The append log file {name} doesn't exist: {}",
                strerror(&e)
            )));
        }
        Err(e) => {
            return Err(fail(format!(
                "Fatal error: can't open the append log file {name} for reading: {}",
                strerror(&e)
            )));
        }
    };
    let size = f.metadata().map_or(0, |m| m.len());
    if size == 0 {
        return Ok(Loaded::Empty);
    }
    let mut runner = Runner::new(aof.srv);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK.min(size as usize));
    let read_err = |e: std::io::Error| {
        fail(format!(
            "Unrecoverable error reading the append only file {name}: {}",
            strerror(&e)
        ))
    };
    // An RDB preamble: the RDB loader reads it, the AOF tail follows.
    let mut magic = [0u8; 5];
    let n = f.read(&mut magic).map_err(read_err)?;
    buf.extend_from_slice(&magic[..n]);
    let mut file_off = 0u64;
    let mut pos = 0usize;
    if &magic[..n] == b"REDIS" {
        if base {
            crate::notice!("Reading RDB base file on AOF loading...");
        } else {
            crate::notice!("Reading RDB preamble from AOF file...");
        }
        f.read_to_end(&mut buf).map_err(read_err)?;
        let used = crate::persist::save::load_preamble(aof.srv, &buf).map_err(|e| {
            fail(format!(
                "Error reading the RDB base file {name}, AOF loading aborted: {e}"
            ))
        })?;
        if used >= buf.len() {
            return Ok(Loaded::Ok);
        }
        crate::notice!("Reading the remaining AOF tail...");
        pos = used;
    }
    let mut parser = Parser::default();
    let limits = Limits {
        max_bulk: i64::MAX,
        authenticated: true,
    };
    let mut eof = false;
    // The offset after the last whole command, and before an open MULTI.
    let mut valid_up_to = 0u64;
    let mut before_multi = 0u64;
    loop {
        if pos == buf.len() && eof {
            break;
        }
        let need_more = pos == buf.len()
            || match buf[pos] {
                b'#' => match memchr::memchr(b'\n', &buf[pos..]) {
                    Some(nl) => {
                        pos += nl + 1;
                        valid_up_to = file_off + pos as u64;
                        continue;
                    }
                    None => true,
                },
                b'*' => match parser.parse(&buf[pos..], limits) {
                    Frame::Command { consumed } => {
                        let args = parser.args(&buf[pos..]);
                        if args.arg(0).eq_ignore_ascii_case(b"MULTI") && !runner.in_multi() {
                            before_multi = file_off + pos as u64;
                        }
                        if let Err(cmd) = runner.run(&args) {
                            return Err(fail(format!(
                                "Unknown command '{cmd}' reading the append only file {name}"
                            )));
                        }
                        pos += consumed;
                        valid_up_to = file_off + pos as u64;
                        continue;
                    }
                    Frame::Incomplete { .. } => true,
                    Frame::Empty { .. } | Frame::Error(_) => return Err(bad_format(name)),
                },
                _ => return Err(bad_format(name)),
            };
        if need_more {
            if eof {
                return truncated(aof, name, valid_up_to);
            }
            // Keep the unfinished command, read the next chunk after it.
            buf.drain(..pos);
            file_off += pos as u64;
            aof.srv.persist.loading.set_loaded(file_off);
            pos = 0;
            let have = buf.len();
            buf.resize(have + CHUNK, 0);
            let n = loop {
                match f.read(&mut buf[have..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    r => break r.map_err(read_err)?,
                }
            };
            buf.truncate(have + n);
            eof = n == 0;
        }
    }
    if runner.in_multi() {
        crate::warning!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
        return truncated(aof, name, before_multi);
    }
    Ok(Loaded::Ok)
}

fn bad_format(name: &str) -> LoadError {
    fail(format!(
        "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
    ))
}

/// The file ends inside a command (or an open transaction): cut it back to
/// `valid_up_to` if `aof-load-truncated` allows.
fn truncated(aof: &Aof, name: &str, valid_up_to: u64) -> Result<Loaded, LoadError> {
    if aof.srv.config.aof_load_truncated.get() {
        crate::warning!("!!! Warning: short read while loading the AOF file {name}!!!");
        crate::warning!("!!! Truncating the AOF {name} at offset {valid_up_to} !!!");
        let cut = std::fs::OpenOptions::new()
            .write(true)
            .open(aof.path(name))
            .and_then(|f| {
                f.set_len(valid_up_to)?;
                f.sync_all()
            });
        if let Err(e) = cut {
            return Err(fail(format!(
                "Error truncating the AOF file {name}: {}",
                strerror(&e)
            )));
        }
        crate::warning!("AOF {name} loaded anyway because aof-load-truncated is enabled");
        return Ok(Loaded::Truncated);
    }
    Err(fail(format!(
        "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
    )))
}
