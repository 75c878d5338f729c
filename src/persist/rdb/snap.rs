//! RDB files written from a snapshot walk (`store::snapshot`): BGSAVE, the
//! save points and the AOF's RDB preamble. The walk encodes each key with
//! [`encoder`] under its shard's lock (or from a writer about to change
//! it); [`write`] frames the walk's chunks with the header, each
//! database's start and the footer, streaming them to the file.

use std::io::{self, Write};
use std::sync::Arc;

use super::write;
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
    write::write_header(&mut buf, now_s, crate::alloc::used_memory(), aof_base);
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
    }
    buf.clear();
    write::write_footer_crc(&mut buf, checksum.then_some(crc));
    w.write_all(&buf)
}
