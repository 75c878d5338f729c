//! Inputs the fuzz targets (fuzz/, scripts/fuzz.sh) found, replayed
//! through a real connection. Expected replies are redis-server 7.0.15's.

mod common;

/// Redis finds line ends with `strchr`, which stops at a NUL: a request
/// with a NUL before its newline never completes and ends as "too big".
/// ferrokv used to split such a line forever (unbounded memory).
#[test]
fn a_nul_in_an_inline_request_waits_until_too_big_as_redis_does() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    let mut input = b"ping\r\n\0\r\nPING\r\n".to_vec();
    input.resize(input.len() + 70_000, b'x');
    raw.send(&input);
    assert_eq!(
        String::from_utf8_lossy(&raw.read_to_close()),
        "+PONG\r\n-ERR Protocol error: too big inline request\r\n"
    );
    // The server is fine.
    let mut c = srv.client();
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

/// The same holds for multibulk header lines: a NUL before the `\r` keeps
/// the header incomplete (an invalid length error before).
#[test]
fn a_nul_in_a_multibulk_header_waits_until_too_big_as_redis_does() {
    let srv = common::Server::start();
    for (head, reply) in [
        (&b"*1\0\r\n"[..], "too big mbulk count string"),
        (b"*1\r\n$1\0\r\n", "too big bulk count string"),
    ] {
        let mut raw = srv.raw();
        let mut input = head.to_vec();
        input.resize(input.len() + 70_000, b'x');
        raw.send(&input);
        assert_eq!(
            String::from_utf8_lossy(&raw.read_to_close()),
            format!("-ERR Protocol error: {reply}\r\n")
        );
    }
}

/// Redis's `isspace` includes the vertical tab: it separates arguments
/// before one and after a closing quote.
#[test]
fn a_vertical_tab_separates_inline_arguments_as_in_redis() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    assert_eq!(raw.roundtrip(b"\x0bping\r\n", 7), b"+PONG\r\n");
    let reply = b"-ERR wrong number of arguments for 'echo' command\r\n";
    assert_eq!(raw.roundtrip(b"echo \"a\"\x0bb\r\n", reply.len()), reply);
    assert_eq!(raw.roundtrip(b"echo a\x0bb\r\n", 9), b"$3\r\na\x0bb\r\n");
}
