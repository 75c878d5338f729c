//! Bytes quoted the way Redis's messages and logs show them: in double
//! quotes, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escapes, printable
//! ASCII as is and every other byte as `\xHH`.

/// `bytes` quoted as Redis quotes a binary string in its messages.
pub fn quoted(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::quoted;

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
