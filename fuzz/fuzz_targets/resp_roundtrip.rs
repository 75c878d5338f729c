//! A valid encoding of any argv frames back to exactly that argv: as a
//! multibulk (any bytes), and as an inline command with every argument
//! double-quoted and escaped (Redis's and redis-cli's quoting).
#![no_main]

use ferrokv::resp::{Frame, Limits, Parser};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_bulk: 512 * 1024 * 1024,
    authenticated: true,
};

fn multibulk(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Quotes like redis-cli's `sdscatrepr`, choosing among the escapes the
/// splitter knows by the argument's bytes so each one is exercised.
fn inline(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(if a.len() % 2 == 0 { b' ' } else { b'\t' });
        }
        out.push(b'"');
        for &c in a {
            match c {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', c]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                7 => out.extend_from_slice(b"\\a"),
                8 => out.extend_from_slice(b"\\b"),
                0x20..=0x7e => out.push(c),
                _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
            }
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn frame_all(bytes: &[u8]) -> (Frame, Vec<Vec<u8>>) {
    let mut p = Parser::default();
    let f = p.parse(bytes, LIMITS);
    let args = match f {
        Frame::Command { .. } => p.args(bytes).to_vec(),
        _ => Vec::new(),
    };
    (f, args)
}

fuzz_target!(|argv: Vec<Vec<u8>>| {
    if argv.is_empty() {
        return;
    }
    let mb = multibulk(&argv);
    let (f, args) = frame_all(&mb);
    assert_eq!(f, Frame::Command { consumed: mb.len() });
    assert_eq!(args, argv);
    // A prefix is never a command.
    for cut in [0, mb.len() / 2, mb.len() - 1] {
        let (f, _) = frame_all(&mb[..cut]);
        assert!(
            matches!(f, Frame::Incomplete { need } if need > cut),
            "{f:?}"
        );
    }

    let line = inline(&argv);
    if line.len() <= 64 * 1024 {
        let (f, args) = frame_all(&line);
        assert_eq!(
            f,
            Frame::Command {
                consumed: line.len()
            }
        );
        assert_eq!(args, argv);
    }
});
