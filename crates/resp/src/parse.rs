//! Request framing: RESP multibulk arrays and inline commands.

use std::borrow::Cow;
use std::ops::Index;

/// Longest header or inline line Redis accepts without its newline.
const MAX_INLINE: usize = 64 * 1024;
/// Largest multibulk count Redis 7.0 accepts (INT_MAX).
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Argument slots reserved up front; a huge count must not allocate before
/// its arguments actually arrive.
const PREALLOC_ARGS: usize = 1024;
/// Before AUTH, Redis accepts only small requests.
const UNAUTH_MULTIBULK: i64 = 10;
const UNAUTH_BULK: i64 = 16384;

/// Limits that depend on configuration and on the connection.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_bulk: i64,
    pub authenticated: bool,
}

/// What the framer found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A command of `consumed` bytes; its arguments are in the parser.
    Command { consumed: usize },
    /// Bytes to skip that hold no command (an empty line, `*0`).
    Empty { consumed: usize },
    /// More bytes needed; the total buffered length that could complete it,
    /// when known, so the caller need not re-parse before then.
    Incomplete { need: usize },
    /// A protocol error: reply `-ERR Protocol error: <msg>` and close.
    Error(Cow<'static, str>),
}

/// Reusable parser state: argument spans and the buffer for unquoted inline args.
///
/// A multibulk that is not complete yet is not framed again from its start
/// on the next read: the arguments framed so far stay in `spans` and
/// `partial` says where to go on, so a command trickling in over many reads
/// costs time linear in its size. The caller passes the same buffer (grown
/// at its end) until a frame other than `Incomplete` comes back.
#[derive(Default)]
pub struct Parser {
    spans: Vec<(usize, usize)>,
    inline: Vec<u8>,
    is_inline: bool,
    partial: Option<Partial>,
    /// The bytes before this offset were searched for the end of the line
    /// being read without finding it (so a long header or inline line
    /// arriving a byte at a time is searched once).
    scanned: usize,
}

/// A multibulk whose header was read and whose first `spans.len()`
/// arguments were framed.
#[derive(Clone, Copy)]
struct Partial {
    count: usize,
    /// Where the next argument's `$` header starts.
    pos: usize,
    /// Where that argument's bytes start, once its header was read (0
    /// before).
    body: usize,
}

/// Spans kept allocated between commands; a huge command's are given back.
const KEEP_SPANS: usize = 64 * 1024;

/// The arguments of the command just parsed.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).map(|&(s, e)| &self.buf[s..e])
    }

    #[inline]
    pub fn arg(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.spans[i];
        &self.buf[s..e]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + DoubleEndedIterator + 'a {
        let buf = self.buf;
        self.spans.iter().map(move |&(s, e)| &buf[s..e])
    }

    /// Arguments from `from` on.
    pub fn tail(&self, from: usize) -> Args<'a> {
        Args {
            buf: self.buf,
            spans: &self.spans[from.min(self.spans.len())..],
        }
    }

    /// Copies the arguments out (for queuing and effects).
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(|a| a.to_vec()).collect()
    }
}

impl Index<usize> for Args<'_> {
    type Output = [u8];
    #[inline]
    fn index(&self, i: usize) -> &[u8] {
        self.arg(i)
    }
}

/// Redis's strict decimal parse for protocol lengths.
fn parse_len(s: &[u8]) -> Option<i64> {
    ferrokv_util::num::parse_i64(s)
}

impl Parser {
    /// The arguments of the last `Frame::Command`; `buf` is the buffer it was parsed from.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        Args {
            buf: if self.is_inline { &self.inline } else { buf },
            spans: &self.spans,
        }
    }

    /// Owned argument storage: builds `Args` over caller-provided vectors.
    pub fn args_over<'a>(buf: &'a [u8], spans: &'a [(usize, usize)]) -> Args<'a> {
        Args { buf, spans }
    }

    pub fn parse(&mut self, buf: &[u8], limits: Limits) -> Frame {
        let frame = match self.partial {
            Some(p) if p.pos <= buf.len() => self.multibulk_args(buf, limits, p),
            _ => {
                self.partial = None;
                match buf.first() {
                    None => Frame::Incomplete { need: 1 },
                    Some(b'*') => self.parse_multibulk(buf, limits),
                    Some(_) => self.parse_inline(buf),
                }
            }
        };
        if !matches!(frame, Frame::Incomplete { .. }) {
            self.partial = None;
            self.scanned = 0;
        }
        frame
    }

    /// The end of the line starting at `from` (the offset of its `byte`),
    /// searching only bytes not searched before.
    ///
    /// Redis looks for line ends with `strchr`, which stops at a NUL byte:
    /// a line with a NUL before its end is never complete (the request
    /// waits until it is too big). The NUL is remembered, so the line is
    /// not searched again as more bytes arrive.
    fn find_line_end(&mut self, buf: &[u8], from: usize, byte: u8) -> Option<usize> {
        let start = self.scanned.max(from).min(buf.len());
        // Header lines (`*3`, `$5`) are a few bytes: a plain scan of the
        // first ones beats setting up the vector search.
        let head = &buf[start..buf.len().min(start + 16)];
        let quick = head.iter().position(|&b| b == byte || b == 0);
        let found = match quick {
            Some(i) => Some(i),
            None if head.len() < 16 => None,
            None => memchr::memchr2(byte, 0, &buf[start + 16..]).map(|i| i + 16),
        };
        match found {
            Some(i) if buf[start + i] == byte => {
                self.scanned = 0;
                Some(start + i)
            }
            Some(_) => {
                self.scanned = usize::MAX;
                None
            }
            None => {
                self.scanned = self.scanned.max(buf.len());
                None
            }
        }
    }

    fn start_frame(&mut self, inline: bool) {
        self.is_inline = inline;
        self.trim();
    }

    /// How many leading bytes of a command still arriving are framed
    /// already (its header, complete arguments, the header of the argument
    /// being read): Redis's query buffer no longer holds those (its
    /// `qbuf` counts the rest). 0 between commands.
    pub fn framed(&self) -> usize {
        self.partial.map_or(0, |p| p.pos.max(p.body))
    }

    /// Gives back the argument storage a huge command needed (between
    /// commands: it forgets the last command's arguments).
    pub fn trim(&mut self) {
        if self.partial.is_none() {
            self.spans.clear();
            if self.spans.capacity() > KEEP_SPANS {
                self.spans.shrink_to(PREALLOC_ARGS);
            }
            if self.inline.capacity() > MAX_INLINE {
                self.inline = Vec::new();
            }
        }
    }

    fn parse_multibulk(&mut self, buf: &[u8], limits: Limits) -> Frame {
        self.start_frame(false);
        let Some(nl) = self.find_line_end(buf, 0, b'\r') else {
            return if buf.len() > MAX_INLINE {
                Frame::Error(Cow::Borrowed("too big mbulk count string"))
            } else {
                Frame::Incomplete {
                    need: buf.len() + 1,
                }
            };
        };
        if nl + 1 >= buf.len() {
            return Frame::Incomplete { need: nl + 2 };
        }
        let count = match parse_len(&buf[1..nl]) {
            Some(n) if n <= MAX_MULTIBULK => n,
            _ => return Frame::Error(Cow::Borrowed("invalid multibulk length")),
        };
        if !limits.authenticated && count > UNAUTH_MULTIBULK {
            return Frame::Error(Cow::Borrowed("unauthenticated multibulk length"));
        }
        let pos = nl + 2;
        if count <= 0 {
            return Frame::Empty { consumed: pos };
        }
        self.spans.reserve((count as usize).min(PREALLOC_ARGS));
        let p = Partial {
            count: count as usize,
            pos,
            body: 0,
        };
        self.multibulk_args(buf, limits, p)
    }

    /// Frames the arguments of a multibulk from `p` on; remembers where it
    /// stopped if the buffer ends first.
    fn multibulk_args(&mut self, buf: &[u8], limits: Limits, mut p: Partial) -> Frame {
        let frame = loop {
            if self.spans.len() >= p.count {
                break Frame::Command { consumed: p.pos };
            }
            let pos = p.pos;
            if pos >= buf.len() {
                break Frame::Incomplete { need: pos + 1 };
            }
            if buf[pos] != b'$' {
                break expected_dollar(buf[pos]);
            }
            let Some(line_end) = self.find_line_end(buf, pos, b'\r') else {
                break if buf.len() - pos > MAX_INLINE {
                    Frame::Error(Cow::Borrowed("too big bulk count string"))
                } else {
                    Frame::Incomplete {
                        need: buf.len() + 1,
                    }
                };
            };
            if line_end + 1 >= buf.len() {
                break Frame::Incomplete { need: line_end + 2 };
            }
            let len = match parse_len(&buf[pos + 1..line_end]) {
                Some(n) if (0..=limits.max_bulk).contains(&n) => n,
                _ => break Frame::Error(Cow::Borrowed("invalid bulk length")),
            };
            if !limits.authenticated && len > UNAUTH_BULK {
                break Frame::Error(Cow::Borrowed("unauthenticated bulk length"));
            }
            let start = line_end + 2;
            let end = start + len as usize;
            if end + 2 > buf.len() {
                p.body = start;
                break Frame::Incomplete { need: end + 2 };
            }
            self.spans.push((start, end));
            p.pos = end + 2;
            p.body = 0;
        };
        self.partial = matches!(frame, Frame::Incomplete { .. }).then_some(p);
        frame
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Frame {
        self.start_frame(true);
        self.inline.clear();
        // Redis looks for the newline in a C string: a NUL before it means
        // the line is not complete yet (until it is too big).
        let Some(nl) = self.find_line_end(buf, 0, b'\n') else {
            return if buf.len() > MAX_INLINE {
                Frame::Error(Cow::Borrowed("too big inline request"))
            } else {
                Frame::Incomplete {
                    need: buf.len() + 1,
                }
            };
        };
        let mut line = &buf[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if split_args(line, &mut self.inline, &mut self.spans).is_err() {
            return Frame::Error(Cow::Borrowed("unbalanced quotes in request"));
        }
        if self.spans.is_empty() {
            return Frame::Empty { consumed: nl + 1 };
        }
        Frame::Command { consumed: nl + 1 }
    }
}

fn expected_dollar(got: u8) -> Frame {
    Frame::Error(Cow::Owned(format!("expected '$', got '{}'", got as char)))
}

/// A quoted argument that is not closed, or closed and not followed by a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnbalancedQuotes;

/// C's `isspace`: ASCII whitespace and the vertical tab, which Rust's
/// `is_ascii_whitespace` leaves out.
fn is_c_space(c: u8) -> bool {
    c.is_ascii_whitespace() || c == 0x0b
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Splits an inline line into arguments the way redis-cli and Redis do:
/// whitespace separates, "double quotes" take C-like escapes (\n \r \t \b
/// \a \\ \" \xHH), 'single quotes' take only \', and a closing quote must
/// be followed by a space or the end of the line.
///
/// Redis splits a C string: a NUL byte ends the line (an unquoted
/// argument must not stop at a NUL without consuming it either, or the
/// split would never end).
pub fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), UnbalancedQuotes> {
    let line = &line[..memchr::memchr(0, line).unwrap_or(line.len())];
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_c_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(());
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return Err(UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && is_hex(line[i + 2])
                    && is_hex(line[i + 3])
                {
                    out.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    out.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return Err(UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return Err(UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    out.push(b'\'');
                    i += 1;
                } else if c == b'\'' {
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return Err(UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => out.push(c),
                }
            }
            i += 1;
        }
        spans.push((start, out.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_bulk: 512 * 1024 * 1024,
        authenticated: true,
    };

    fn args(p: &Parser, buf: &[u8]) -> Vec<Vec<u8>> {
        p.args(buf).to_vec()
    }

    #[test]
    fn multibulk_complete_and_partial() {
        let mut p = Parser::default();
        let cmd = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
        assert_eq!(
            p.parse(cmd, L),
            Frame::Command {
                consumed: cmd.len()
            }
        );
        assert_eq!(args(&p, cmd), vec![b"GET".to_vec(), b"foo".to_vec()]);
        for cut in 0..cmd.len() {
            assert!(
                matches!(p.parse(&cmd[..cut], L), Frame::Incomplete { .. }),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn multibulk_errors_match_redis() {
        let mut p = Parser::default();
        assert_eq!(
            p.parse(b"*x\r\n", L),
            Frame::Error(Cow::Borrowed("invalid multibulk length"))
        );
        assert_eq!(
            p.parse(b"*1\r\n+GET\r\n", L),
            Frame::Error(Cow::Borrowed("expected '$', got '+'"))
        );
        assert_eq!(
            p.parse(b"*1\r\n$-5\r\n", L),
            Frame::Error(Cow::Borrowed("invalid bulk length"))
        );
        let small = Limits {
            max_bulk: 10,
            authenticated: true,
        };
        assert_eq!(
            p.parse(b"*1\r\n$11\r\n", small),
            Frame::Error(Cow::Borrowed("invalid bulk length"))
        );
        assert_eq!(p.parse(b"*0\r\n", L), Frame::Empty { consumed: 4 });
        let unauth = Limits {
            max_bulk: 1 << 20,
            authenticated: false,
        };
        assert_eq!(
            p.parse(b"*11\r\n", unauth),
            Frame::Error(Cow::Borrowed("unauthenticated multibulk length"))
        );
    }

    #[test]
    fn inline_with_quotes() {
        let mut p = Parser::default();
        let line = b"set \"a b\\x41\\n\" 'it\\'s'\r\n";
        assert_eq!(
            p.parse(line, L),
            Frame::Command {
                consumed: line.len()
            }
        );
        assert_eq!(
            args(&p, line),
            vec![b"set".to_vec(), b"a bA\n".to_vec(), b"it's".to_vec()]
        );
        assert_eq!(
            p.parse(b"set \"abc\r\n", L),
            Frame::Error(Cow::Borrowed("unbalanced quotes in request"))
        );
        assert_eq!(
            p.parse(b"get \"a\"b\r\n", L),
            Frame::Error(Cow::Borrowed("unbalanced quotes in request"))
        );
        assert_eq!(p.parse(b"   \r\n", L), Frame::Empty { consumed: 5 });
        assert!(matches!(p.parse(b"ping", L), Frame::Incomplete { .. }));
    }

    #[test]
    fn resumes_a_partial_multibulk_where_it_stopped() {
        let mut p = Parser::default();
        let mut cmd = b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n$0\r\n\r\n".to_vec();
        for cut in 1..cmd.len() {
            let f = p.parse(&cmd[..cut], L);
            assert!(matches!(f, Frame::Incomplete { .. }), "cut {cut}: {f:?}");
        }
        let whole = cmd.len();
        assert_eq!(p.parse(&cmd, L), Frame::Command { consumed: whole });
        assert_eq!(
            args(&p, &cmd),
            vec![b"SET".to_vec(), b"k".to_vec(), b"value".to_vec(), vec![]]
        );
        // The next command starts fresh, and an error mid-way is still seen.
        cmd = b"*2\r\n$1\r\na\r\n+x\r\n".to_vec();
        assert!(matches!(p.parse(&cmd[..9], L), Frame::Incomplete { .. }));
        assert_eq!(
            p.parse(&cmd, L),
            Frame::Error(Cow::Borrowed("expected '$', got '+'"))
        );
        assert_eq!(
            p.parse(b"*1\r\n$1\r\nx\r\n", L),
            Frame::Command { consumed: 11 }
        );
    }

    #[test]
    fn many_arguments_in_small_pieces_are_framed_once() {
        let n = 200_000;
        let mut cmd = format!("*{n}\r\n").into_bytes();
        for _ in 0..n {
            cmd.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut p = Parser::default();
        let started = std::time::Instant::now();
        let mut cut = 0;
        while cut < cmd.len() {
            cut = (cut + 5).min(cmd.len());
            if let Frame::Command { consumed } = p.parse(&cmd[..cut], L) {
                assert_eq!(consumed, cmd.len());
                assert_eq!(p.args(&cmd).len(), n);
                // Re-framing from the start every time would be ~3e11 steps.
                assert!(started.elapsed() < std::time::Duration::from_secs(20));
                return;
            }
        }
        panic!("never complete");
    }

    #[test]
    fn a_nul_before_the_line_end_keeps_the_request_incomplete_as_in_redis() {
        // Found by the resp_parse fuzz target: an unquoted argument stopped
        // at a NUL without consuming it, so "\0\r\n" split forever.
        for prefix in [&b"\0"[..], b"get a\0b", b"*1\0", b"*1\r\n$1\0"] {
            let mut p = Parser::default();
            let mut buf = prefix.to_vec();
            buf.extend_from_slice(b"\r\n$1\r\nx\r\nping\r\n");
            let f = p.parse(&buf, L);
            assert!(
                matches!(f, Frame::Incomplete { need } if need > buf.len()),
                "{prefix:?}: {f:?}"
            );
            buf.resize(MAX_INLINE + 16, b'\n');
            assert!(matches!(p.parse(&buf, L), Frame::Error(_)), "{prefix:?}");
        }
        let mut p = Parser::default();
        let mut buf = b"get a\0b\r\n".to_vec();
        buf.resize(MAX_INLINE + 2, b'x');
        assert_eq!(
            p.parse(&buf, L),
            Frame::Error(Cow::Borrowed("too big inline request"))
        );
    }

    #[test]
    fn split_args_ends_at_a_nul_and_takes_vertical_tab_as_space() {
        let split = |line: &[u8]| {
            let (mut out, mut spans) = (Vec::new(), Vec::new());
            split_args(line, &mut out, &mut spans).map(|()| {
                spans
                    .iter()
                    .map(|&(s, e)| out[s..e].to_vec())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(split(b"\0"), Ok(vec![]));
        assert_eq!(split(b"a\0b c"), Ok(vec![b"a".to_vec()]));
        assert_eq!(split(b"\"a\0\""), Err(UnbalancedQuotes));
        assert_eq!(split(b"\"a\"\0x"), Ok(vec![b"a".to_vec()]));
        // As redis-server 7.0.15: `\v` separates before an argument and
        // after a closing quote; inside an unquoted one it is a byte.
        assert_eq!(
            split(b"\x0bping \"a\"\x0bb c\x0bd"),
            Ok(vec![
                b"ping".to_vec(),
                b"a".to_vec(),
                b"b".to_vec(),
                b"c\x0bd".to_vec()
            ])
        );
    }

    #[test]
    fn a_long_header_line_arriving_bytewise_stays_an_error_past_the_limit() {
        let mut p = Parser::default();
        let mut buf = b"*1\r\n$".to_vec();
        buf.resize(MAX_INLINE + 8, b'1');
        for cut in (6..buf.len()).step_by(997) {
            assert!(matches!(p.parse(&buf[..cut], L), Frame::Incomplete { .. }));
        }
        assert_eq!(
            p.parse(&buf, L),
            Frame::Error(Cow::Borrowed("too big bulk count string"))
        );
    }

    #[test]
    fn inline_nul_and_vertical_tab_as_redis() {
        let mut p = Parser::default();
        // A NUL hides the newline from Redis: the line never completes, until
        // it is too big. (This used to split forever into empty arguments.)
        assert!(matches!(
            p.parse(b"ECHO a\0b\r\nPING\r\n", L),
            Frame::Incomplete { .. }
        ));
        let big = [b"ECHO \0".as_slice(), &[b'x'; 70 * 1024], b"\r\n"].concat();
        assert_eq!(
            p.parse(&big, L),
            Frame::Error(Cow::Borrowed("too big inline request"))
        );
        // Vertical tab separates like other C whitespace, but does not end
        // an argument.
        let line = b"ECHO \x0bb c\x0b\r\n";
        assert!(matches!(p.parse(line, L), Frame::Command { .. }));
        assert_eq!(
            args(&p, line),
            vec![b"ECHO".to_vec(), b"b".to_vec(), b"c\x0b".to_vec()]
        );
        let (mut out, mut spans) = (Vec::new(), Vec::new());
        split_args(b"a\0b c", &mut out, &mut spans).unwrap();
        assert_eq!(spans.len(), 1);
    }
}
