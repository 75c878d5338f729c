//! Reply encoding for RESP2 and RESP3 into the connection's output buffer.

/// The output buffer of one connection, and the protocol it speaks.
#[derive(Default)]
pub struct Reply {
    pub buf: Vec<u8>,
    pub resp3: bool,
    /// The client's hard output limit in bytes (0: none), set by the
    /// connection. A client over it is closed after the command, so a loop
    /// whose reply size comes from an argument (SRANDMEMBER with a count of
    /// -10^12) stops once [`Reply::full`] says so, as Redis's loops stop for
    /// a client scheduled to close: what it built is never sent.
    pub limit: usize,
    /// Bytes at the front of `buf` already written to the socket: a
    /// partial write moves this mark instead of the rest of the buffer,
    /// which is compacted once the mark is past half of it (a big pending
    /// output written a piece at a time would be copied over and over).
    /// Positions in `buf` stay valid while a command runs.
    pub sent: usize,
}

impl Reply {
    pub fn new(resp3: bool) -> Reply {
        Reply {
            buf: Vec::with_capacity(16 * 1024),
            resp3,
            limit: 0,
            sent: 0,
        }
    }

    /// Whether the pending output is past the client's hard limit.
    #[inline]
    pub fn full(&self) -> bool {
        self.limit != 0 && self.pending() > self.limit
    }

    #[inline]
    fn line(&mut self, prefix: u8, body: &[u8]) {
        self.buf.push(prefix);
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply (`+text`). `text` must not contain CR or LF.
    pub fn simple(&mut self, text: &str) {
        self.line(b'+', text.as_bytes());
    }

    /// An error reply; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`).
    /// Newlines would break the framing, so they become spaces as in Redis.
    pub fn error(&mut self, msg: &str) {
        self.buf.push(b'-');
        let start = self.buf.len();
        self.buf.extend_from_slice(msg.as_bytes());
        for b in &mut self.buf[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string (GET of an integer-encoded value).
    #[inline]
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs: `%n` in RESP3, a flat array of 2n in RESP2.
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// A set: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'~', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// A push frame (RESP3 `>n`; an array in RESP2).
    pub fn push(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'>', n as i64);
        } else {
            self.header(b'*', n as i64);
        }
    }

    /// A double: `,x` in RESP3, a bulk string in RESP2, formatted as Redis does.
    pub fn double(&mut self, d: f64) {
        let mut tmp = [0u8; 64];
        let s = ferrokv_util::num::fmt_double(d, &mut tmp);
        if self.resp3 {
            self.line(b',', s);
        } else {
            self.bulk(s);
        }
    }

    /// A double already formatted by the caller (GEOPOS's 17 decimals):
    /// `,text` in RESP3, a bulk string in RESP2.
    pub fn double_text(&mut self, text: &[u8]) {
        if self.resp3 {
            self.line(b',', text);
        } else {
            self.bulk(text);
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// Verbatim text (`=len\r\ntxt:...` in RESP3, a bulk string in RESP2).
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// A bulk string array of `items`.
    pub fn bulk_array<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a [u8]>) {
        self.array(items.len());
        for i in items {
            self.bulk(i);
        }
    }

    /// A container command's HELP reply: a title line, the `lines` (pairs of
    /// usage and explanation), then the HELP entry itself.
    pub fn help(&mut self, command: &str, lines: &[&str]) {
        self.array(lines.len() + 3);
        self.simple(&format!(
            "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
        ));
        for l in lines {
            self.simple(l);
        }
        self.simple("HELP");
        self.simple("    Prints this help.");
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes not written yet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut r = Reply::new(false);
        r.null();
        r.map(2);
        r.double(1.5);
        r.boolean(true);
        assert_eq!(r.buf, b"$-1\r\n*4\r\n$3\r\n1.5\r\n:1\r\n");
        let mut r = Reply::new(true);
        r.null();
        r.map(2);
        r.double(1.5);
        r.boolean(true);
        assert_eq!(r.buf, b"_\r\n%2\r\n,1.5\r\n#t\r\n");
    }

    #[test]
    fn errors_cannot_break_framing() {
        let mut r = Reply::new(false);
        r.error("ERR a\r\nb");
        assert_eq!(r.buf, b"-ERR a  b\r\n");
    }
}
