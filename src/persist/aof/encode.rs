//! Commands as Redis writes them into an AOF: RESP multibulk arrays of
//! bulk strings (`*N\r\n$len\r\narg\r\n...`).

/// Appends one command.
pub fn command<'a>(out: &mut Vec<u8>, argv: impl ExactSizeIterator<Item = &'a [u8]>) {
    header(out, b'*', argv.len());
    for a in argv {
        bulk(out, a);
    }
}

/// Appends `*n\r\n` (or `$n\r\n`).
pub fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends one bulk string.
pub fn bulk(out: &mut Vec<u8>, a: &[u8]) {
    header(out, b'$', a.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b"\r\n");
}

/// Appends `SELECT db`.
pub fn select(out: &mut Vec<u8>, db: usize) {
    let n = itoa::Buffer::new().format(db).to_owned();
    command(out, [&b"SELECT"[..], n.as_bytes()].into_iter());
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_are_multibulk_arrays() {
        let mut out = Vec::new();
        super::select(&mut out, 3);
        super::command(&mut out, [&b"SET"[..], b"k", b""].into_iter());
        assert_eq!(
            out,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
    }
}
