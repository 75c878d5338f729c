//! Parsing an RDB payload while it arrives (a replica's diskless load),
//! with the slice parser of [`file`](super::file).
//!
//! Whole records are parsed from a buffer holding what arrived and not
//! yet parsed. A record the buffer ends inside fails with the reader's
//! [`short`](Reader::short) set (running out is told apart from
//! corruption, counts checked against the bytes left included); the
//! buffer then grows, to at least twice what the record had, before the
//! record is parsed again, so a huge record is parsed a bounded number
//! of times and the buffer holds about the largest record, never the
//! payload. A record fails without handing anything to the sink
//! (`Records`), so parsing it again is safe. The CRC-64 runs over the
//! bytes dropped from the buffer's front.

use super::Error;
use super::file::{Records, Sink, Stats, header};
use super::read::{Limits, Reader, Result};
use crate::util::crc64::crc64;

/// What one read of the input gave.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fill {
    /// Bytes were appended.
    Data,
    /// Nothing came for a while (the input goes on).
    Idle,
    /// The input ended.
    End,
}

/// Where the payload comes from.
pub trait Input {
    /// Appends the next bytes of the input to `buf`, waiting a while for
    /// them. An error ends the load.
    fn fill(&mut self, buf: &mut Vec<u8>) -> std::result::Result<Fill, String>;
}

/// A record cut off with at least this much of it buffered waits for
/// twice as much before it is parsed again (smaller ones are parsed
/// again at each read: cheap).
const GROW_FROM: usize = 64 * 1024;

/// The buffer over the input: `buf[pos..]` is unparsed, `buf[0]` is at
/// offset `start` of the payload.
struct Window<'i> {
    input: &'i mut dyn Input,
    buf: Vec<u8>,
    pos: usize,
    start: usize,
    /// CRC-64 of the payload before `buf[0]`.
    crc: u64,
    ended: bool,
}

impl Window<'_> {
    fn unparsed(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads until `need` unparsed bytes are buffered or the input ends,
    /// then on up to `want` while the input keeps coming (the end of the
    /// payload may be nearer than `want`: an idle input stops it).
    fn more(&mut self, need: usize, want: usize) -> Result<()> {
        if self.pos > 0 {
            self.crc = crc64(self.crc, &self.buf[..self.pos]);
            self.buf.drain(..self.pos);
            self.start += self.pos;
            self.pos = 0;
        }
        while self.buf.len() < need.max(want) && !self.ended {
            match self.input.fill(&mut self.buf) {
                Ok(Fill::Data) => {}
                Ok(Fill::Idle) if self.buf.len() >= need => break,
                Ok(Fill::Idle) => {}
                Ok(Fill::End) => self.ended = true,
                Err(e) => {
                    let at = self.start + self.buf.len();
                    return Err(Error::new(
                        at,
                        format!("Unexpected EOF reading RDB file ({e})"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs `step` on a reader over the unparsed bytes until it does not
    /// run out of them (reading more each time); the bytes it used are
    /// parsed.
    fn parse<T>(&mut self, mut step: impl FnMut(&mut Reader<'_>) -> Result<T>) -> Result<T> {
        loop {
            let mut r = Reader::partial(self.unparsed(), self.start + self.pos);
            let e = match step(&mut r) {
                Ok(v) => {
                    self.pos += r.pos();
                    return Ok(v);
                }
                Err(e) => e,
            };
            match r.short() {
                Some(need) if !self.ended => {
                    let have = self.buf.len() - self.pos;
                    // Geometric: a big record is parsed O(log size) times.
                    let want = if have >= GROW_FROM { have * 2 } else { 0 };
                    self.more(have.saturating_add(need), want)?;
                }
                _ => return Err(e),
            }
        }
    }
}

/// Parses the RDB payload `input` delivers, handing keys and functions
/// to `sink` as [`file::parse`](super::file::parse) does. Returns what
/// was found and the bytes read past the payload's end (an end mark, the
/// stream after it).
pub fn parse(
    input: &mut dyn Input,
    dbs: usize,
    lim: &Limits,
    now_ms: i64,
    sink: &mut dyn Sink,
) -> Result<(Stats, Vec<u8>)> {
    let mut w = Window {
        input,
        buf: Vec::new(),
        pos: 0,
        start: 0,
        crc: 0,
        ended: false,
    };
    let version = w.parse(header)?;
    let mut records = Records::new(version, dbs, lim, now_ms);
    while !w.parse(|r| records.record(r, sink))? {}
    if version >= 5 {
        w.more(8, 0)?;
    }
    let at = w.pos;
    let crc = crc64(w.crc, &w.buf[..at]);
    let mut r = Reader::with_base(w.unparsed(), w.start + at);
    let stats = records.footer(&mut r, || crc)?;
    let used = r.pos();
    w.buf.drain(..at + used);
    Ok((stats, w.buf))
}

#[cfg(test)]
mod tests;
