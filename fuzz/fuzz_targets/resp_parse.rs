//! RESP framing on arbitrary bytes: every frame stays within the input,
//! `Incomplete { need }` asks for more than is there, and the same bytes
//! arriving in random pieces frame into the same commands as arriving at
//! once (both the way the connection feeds the parser, skipping re-parses
//! until `need` bytes are there, and re-parsing on every piece).
//!
//! Input: byte 0 picks the limits, byte 1 seeds the piece sizes, the rest
//! is what the client sent.
#![no_main]

use ferrokv::resp::{Frame, Limits, Parser};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Command(Vec<Vec<u8>>),
    Empty(usize),
    Error(String),
}

/// What the parser made of everything `input` held, and the `need` of the
/// final `Incomplete` (None after an error).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Event>,
    need: Option<usize>,
}

/// Frames what is buffered until the parser wants more; checks each frame
/// against the bytes it came from. Returns false after a protocol error.
fn drain(
    p: &mut Parser,
    buf: &mut Vec<u8>,
    limits: Limits,
    events: &mut Vec<Event>,
    need: &mut usize,
) -> bool {
    let mut pos = 0;
    let alive = loop {
        let rest = &buf[pos..];
        match p.parse(rest, limits) {
            Frame::Command { consumed } => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "{consumed} of {}",
                    rest.len()
                );
                let args = p.args(rest);
                assert!(!args.is_empty());
                if rest[0] == b'*' {
                    // Multibulk arguments are spans of the frame itself.
                    let frame = rest[..consumed].as_ptr_range();
                    for a in args.iter() {
                        let r = a.as_ptr_range();
                        assert!(frame.start <= r.start && r.end <= frame.end);
                    }
                } else {
                    // An inline command is one line and never holds more
                    // argument bytes than it has.
                    assert_eq!(memchr_count(&rest[..consumed], b'\n'), 1);
                    assert_eq!(rest[consumed - 1], b'\n');
                    assert!(args.iter().map(|a| a.len()).sum::<usize>() <= consumed);
                }
                events.push(Event::Command(args.to_vec()));
                pos += consumed;
            }
            Frame::Empty { consumed } => {
                assert!(consumed > 0 && consumed <= rest.len());
                events.push(Event::Empty(consumed));
                pos += consumed;
            }
            Frame::Incomplete { need: n } => {
                assert!(n > rest.len(), "need {n} with {} buffered", rest.len());
                *need = n;
                break true;
            }
            Frame::Error(msg) => {
                events.push(Event::Error(msg.into_owned()));
                break false;
            }
        }
    };
    buf.drain(..pos);
    if buf.is_empty() {
        p.trim();
    }
    alive
}

fn memchr_count(s: &[u8], b: u8) -> usize {
    s.iter().filter(|&&c| c == b).count()
}

/// Feeds `data` in pieces whose sizes come from `seed` (one piece when
/// `seed` is None). `skip_until_need`: do not parse until `need` bytes are
/// buffered, as the connection does.
fn feed(data: &[u8], limits: Limits, seed: Option<u8>, skip_until_need: bool) -> Outcome {
    let mut p = Parser::default();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut need = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ seed.unwrap_or(0) as u64;
    let mut at = 0;
    while at < data.len() {
        let take = match seed {
            None => data.len(),
            Some(s) => {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                // Mostly tiny pieces, sometimes larger ones.
                let max = if s & 1 == 0 { 4 } else { 64 };
                1 + (rng % max) as usize
            }
        };
        let end = (at + take).min(data.len());
        buf.extend_from_slice(&data[at..end]);
        at = end;
        if skip_until_need && buf.len() < need {
            continue;
        }
        if !drain(&mut p, &mut buf, limits, &mut events, &mut need) {
            return Outcome { events, need: None };
        }
    }
    if data.is_empty() {
        drain(&mut p, &mut buf, limits, &mut events, &mut need);
    }
    Outcome {
        events,
        need: Some(need),
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, seed, data @ ..] = input else {
        return;
    };
    let limits = Limits {
        max_bulk: [512 * 1024 * 1024, 16, 0, 1][(flags & 3) as usize],
        authenticated: flags & 4 == 0,
    };
    let whole = feed(data, limits, None, false);
    let pieces = feed(data, limits, Some(*seed), false);
    assert_eq!(whole, pieces, "pieces re-parsed every time");
    let lazy = feed(data, limits, Some(*seed), true);
    assert_eq!(
        whole.events, lazy.events,
        "pieces parsed once `need` is there"
    );
    if let (Some(a), Some(b)) = (whole.need, lazy.need) {
        // The connection may not have re-parsed since its last answer.
        assert!(b <= a);
    }
});
