//! Bytes quoted the way Redis's messages and logs show them: in double
//! quotes, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escapes, printable
//! ASCII as is and every other byte as `\xHH`. Also system errors as
//! Redis words them ([`strerror`]).

/// `bytes` quoted as Redis quotes a binary string in its messages.
pub fn quoted(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    quote_into(&mut out, bytes);
    // Only ASCII is written.
    String::from_utf8(out).expect("quoted bytes are ASCII")
}

/// [`quoted`], appended to `out` (MONITOR lines, the Lua debugger's log).
pub fn quote_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
    }
    out.push(b'"');
}

/// An I/O error as C's `strerror` words it, as Redis prints it: Rust's
/// text without its " (os error N)".
pub fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::{quoted, strerror};

    #[test]
    fn strerror_drops_rusts_error_number() {
        // 98: EADDRINUSE on Linux.
        let os = std::io::Error::from_raw_os_error(98);
        assert_eq!(strerror(&os), "Address already in use");
        let other = std::io::Error::other("no such thing");
        assert_eq!(strerror(&other), "no such thing");
    }

    #[test]
    fn escapes_as_redis() {
        assert_eq!(quoted(b"a\"b\\\r\n\x01 "), "\"a\\\"b\\\\\\r\\n\\x01 \"");
        assert_eq!(quoted(b"\x07\x08\t\x7f"), "\"\\a\\b\\t\\x7f\"");
        assert_eq!(quoted("é".as_bytes()), "\"\\xc3\\xa9\"");
        assert_eq!(
            quoted(b"*1\r\n$3\r\n\"a\\\x01\x7f\t"),
            r#""*1\r\n$3\r\n\"a\\\x01\x7f\t""#
        );
    }
}
