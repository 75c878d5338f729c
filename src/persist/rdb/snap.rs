//! RDB files written from a snapshot walk (`store::snapshot`): BGSAVE, the
//! save points and the AOF's RDB preamble. The walk encodes each key with
//! [`encoder`] under its shard's lock (or from a writer about to change
//! it); [`write`] frames the walk's chunks with the header, each
//! database's start and the footer, streaming them to the file.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::write;
use crate::persist::child::Child;
use crate::server::Server;
use crate::store::EntryRef;
use crate::store::snapshot::{Chunk, Encoder, Snapshot};
use crate::util::crc64::crc64;

/// One key's RDB record (`rdbcompression` as set when it is written).
pub fn encoder(srv: &'static Server) -> Encoder {
    Arc::new(move |e: EntryRef<'_>, out: &mut Vec<u8>| {
        let opts = write::Opts {
            compress: srv.config.rdbcompression.get(),
        };
        write::write_entry_with(out, e.key(), e, opts);
    })
}

/// Writes the whole file: header (with `aof-base` for an AOF preamble),
/// the functions, every database's records, the footer with the CRC-64 of
/// everything before it (or zeros with `rdbchecksum no`).
pub fn write(
    srv: &'static Server,
    snap: &mut Snapshot,
    w: &mut dyn Write,
    aof_base: bool,
    pacer: &mut Pacer<'_>,
) -> io::Result<()> {
    // The replication history, except in an AOF's base (as Redis). Read
    // now, not at the snapshot's cut: a write in between moves the offset
    // past the data by that write (see [`write_with`]).
    let repl = (!aof_base)
        .then(crate::server::repl_aux::save_info)
        .flatten();
    write_with(srv, snap, w, aof_base, repl, pacer)
}

/// [`write`], naming the replication history `repl` (read when the
/// snapshot was cut, for a file a restart continues from).
pub fn write_with(
    srv: &'static Server,
    snap: &mut Snapshot,
    w: &mut dyn Write,
    aof_base: bool,
    repl: Option<crate::server::repl_aux::SaveInfo>,
    pacer: &mut Pacer<'_>,
) -> io::Result<()> {
    let checksum = srv.config.rdbchecksum.get();
    let mut crc = 0u64;
    let mut emit = |bytes: &[u8], w: &mut dyn Write| {
        if checksum {
            crc = crc64(crc, bytes);
        }
        w.write_all(bytes)
    };
    let opts = write::Opts {
        compress: srv.config.rdbcompression.get(),
    };
    let mut buf = Vec::with_capacity(4096);
    let now_s = crate::server::now_ms() / 1000;
    write::write_header_with(
        &mut buf,
        now_s,
        crate::alloc::used_memory(),
        aof_base,
        |b| {
            if let Some(i) = &repl {
                crate::server::repl_aux::write_fields(b, i);
            }
        },
    );
    // The code as of the last change: an FCALL may hold the registry.
    for code in srv.scripting.functions.codes() {
        write::write_function(&mut buf, &code, opts);
    }
    emit(&buf, w)?;
    while let Some(chunk) = snap.next_chunk() {
        match chunk {
            Chunk::Db { db, keys, expires } => {
                buf.clear();
                write::write_db_start(&mut buf, db, keys, expires);
                emit(&buf, w)?;
            }
            Chunk::Bytes(b) => emit(b, w)?,
        }
        pacer.pace(snap)?;
    }
    buf.clear();
    write::write_footer_crc(&mut buf, checksum.then_some(crc));
    w.write_all(&buf)
}

/// Between two chunks of a background save: `rdb-key-save-delay` (the
/// save sleeps that many microseconds per key written, nanoseconds when
/// negative, as Redis's child does, so tests can catch a save in
/// progress) and the ways a save is stopped: `abort` (FLUSHALL, SHUTDOWN)
/// and the stand-in child being killed. Only the walk's own thread
/// sleeps: writers never wait for it. The delay is the one set when the
/// save started (Redis's child has its own copy of the configuration), and
/// the sleep is cut into slices that watch both ways to stop.
pub struct Pacer<'a> {
    /// Nanoseconds per key.
    per_key_ns: u128,
    abort: &'a AtomicBool,
    child: Option<&'a Child>,
    /// Keys the walk had produced at the last pause.
    done: usize,
}

/// Longest single sleep between two looks at the abort flag.
const SLICE: Duration = Duration::from_millis(20);

impl<'a> Pacer<'a> {
    /// `delay`: `rdb-key-save-delay` when the save started.
    pub fn new(delay: i64, abort: &'a AtomicBool, child: Option<&'a Child>) -> Pacer<'a> {
        let per_key_ns = if delay >= 0 {
            delay as u128 * 1000
        } else {
            delay.unsigned_abs() as u128
        };
        Pacer {
            per_key_ns,
            abort,
            child,
            done: 0,
        }
    }

    /// An error if the save must stop now.
    pub fn check(&self) -> io::Result<()> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(io::Error::other("the save was aborted"));
        }
        if let Some(sig) = self.child.and_then(Child::killed) {
            return Err(io::Error::other(format!("terminated by signal {sig}")));
        }
        Ok(())
    }

    /// After a chunk: sleeps for the keys it held; an error once aborted.
    pub fn pace(&mut self, snap: &Snapshot) -> io::Result<()> {
        let st = snap.stats();
        let done = st.walked + st.saved + st.flushed;
        let keys = done.saturating_sub(self.done) as u128;
        self.done = done;
        let mut owed_ns = keys * self.per_key_ns;
        loop {
            self.check()?;
            if owed_ns == 0 {
                return Ok(());
            }
            let nap = (owed_ns.min(SLICE.as_nanos())) as u64;
            std::thread::sleep(Duration::from_nanos(nap));
            owed_ns -= nap as u128;
        }
    }
}
