//! SYNC / PSYNC: a client attached as a replica gets the dataset as an RDB
//! payload, then the write stream framed as Redis frames it (the test
//! suite's `attach_to_replication_stream` reads it this way).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::time::Duration;

use common::q;

/// A connection that sent SYNC and consumed the RDB payload.
struct Stream(BufReader<TcpStream>);

impl Stream {
    fn attach(srv: &common::Server, cmd: &[u8]) -> (Stream, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::io::Write::write_all(&mut s, cmd).unwrap();
        let mut r = BufReader::new(s);
        let mut preamble = Vec::new();
        let len = loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(n) = line.strip_prefix('$') {
                break n.trim().parse::<usize>().unwrap();
            }
            preamble.extend_from_slice(line.as_bytes());
        };
        let mut rdb = vec![0; len];
        r.read_exact(&mut rdb).unwrap();
        assert!(rdb.starts_with(b"REDIS0010"), "{:?}", &rdb[..9]);
        (Stream(r), preamble)
    }

    /// The next command of the stream, its name lowercased.
    fn next(&mut self) -> Vec<String> {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let n: usize = line.trim().strip_prefix('*').unwrap().parse().unwrap();
        (0..n)
            .map(|j| {
                let mut h = String::new();
                self.0.read_line(&mut h).unwrap();
                let len: usize = h.trim().strip_prefix('$').unwrap().parse().unwrap();
                let mut a = vec![0; len + 2];
                self.0.read_exact(&mut a).unwrap();
                a.truncate(len);
                let a = String::from_utf8(a).unwrap();
                if j == 0 { a.to_lowercase() } else { a }
            })
            .collect()
    }

    fn expect(&mut self, want: &[&str]) {
        assert_eq!(self.next(), want);
    }
}

#[test]
fn sync_streams_writes_framed_as_redis_does() {
    let srv = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut c = srv.client();
    q(&mut c, &["SET", "before", "1"]);
    let (mut s, preamble) = Stream::attach(&srv, b"SYNC\r\n");
    assert!(preamble.is_empty());

    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("replica")
        .query(&mut c)
        .unwrap();
    assert!(
        list.contains(" flags=S ") && list.contains(" cmd=sync "),
        "{list}"
    );
    let info: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    assert!(info.contains("connected_slaves:1\r\n"), "{info}");

    // A transaction that writes once is not framed; two writes are.
    q(&mut c, &["MULTI"]);
    q(&mut c, &["SET", "foo", "bar"]);
    q(&mut c, &["EXEC"]);
    q(&mut c, &["MULTI"]);
    q(&mut c, &["SET", "a", "1"]);
    q(&mut c, &["GET", "a"]);
    q(&mut c, &["INCR", "a"]);
    q(&mut c, &["EXEC"]);
    s.expect(&["select", "0"]);
    s.expect(&["set", "foo", "bar"]);
    s.expect(&["multi"]);
    s.expect(&["set", "a", "1"]);
    s.expect(&["incr", "a"]);
    s.expect(&["exec"]);

    // A script whose write call changed nothing replicates nothing (no
    // empty MULTI/EXEC).
    let _: redis::Value = redis::cmd("EVAL")
        .arg("return redis.call('spop', KEYS[1])")
        .arg(1)
        .arg("nosuchset")
        .query(&mut c)
        .unwrap();

    // PUBLISH is replicated though it writes nothing.
    q(&mut c, &["MULTI"]);
    q(&mut c, &["PUBLISH", "ch", "msg"]);
    q(&mut c, &["EXEC"]);
    s.expect(&["publish", "ch", "msg"]);

    // ZMPOP is replicated with the number of elements it popped.
    q(&mut c, &["ZADD", "z", "1", "one", "2", "two"]);
    q(&mut c, &["ZMPOP", "1", "z", "MIN", "COUNT", "10"]);
    s.expect(&["zadd", "z", "1", "one", "2", "two"]);
    s.expect(&["zpopmin", "z", "2"]);
}

#[test]
fn psync_answers_fullresync_and_scan_reclaims_expired_keys() {
    let srv = common::Server::start_with(&["--enable-debug-command", "local"]);
    let mut c = srv.client();
    q(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q(&mut c, &["SET", "gone", "x", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    let (mut s, preamble) = Stream::attach(&srv, b"REPLCONF listening-port 6380\r\nPSYNC ? -1\r\n");
    let preamble = String::from_utf8(preamble).unwrap();
    assert!(
        preamble.starts_with("+OK\r\n+FULLRESYNC ") && preamble.ends_with(" 0\r\n"),
        "{preamble}"
    );
    let info: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    assert!(
        info.contains("\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=0,lag=0\r\n"),
        "{info}"
    );
    q(&mut c, &["SCAN", "0"]);
    s.expect(&["select", "0"]);
    s.expect(&["del", "gone"]);
    assert_eq!(q(&mut c, &["DBSIZE"]), redis::Value::Int(0));
}

#[test]
fn replconf_checks_its_options() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let err = |c: &mut redis::Connection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let e: redis::RedisResult<()> = cmd.query(c);
        e.unwrap_err().to_string()
    };
    assert_eq!(
        q(&mut c, &["REPLCONF", "listening-port", "1", "capa", "eof"]),
        redis::Value::Okay
    );
    assert!(err(&mut c, &["REPLCONF", "a"]).contains("syntax error"));
    assert!(err(&mut c, &["REPLCONF", "a", "b"]).contains("Unrecognized REPLCONF option: a"));
    assert!(err(&mut c, &["REPLCONF", "rdb-only", "5"]).contains("value must between 0 and 1"));
    assert!(
        err(&mut c, &["REPLCONF", "rdb-filter-only", "foo"])
            .contains("Unsupported rdb-filter-only option: foo")
    );
}

/// CLIENT LIST shows `b` for a client blocked in BLPOP.
#[test]
fn blocked_client_shows_flag_b() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let mut raw = srv.raw();
    raw.send(b"BLPOP nokey 0\r\n");
    common::wait_blocked(&mut c, 1);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(
        list.lines()
            .any(|l| l.contains(" flags=b ") && l.contains(" cmd=blpop ")),
        "{list}"
    );
    q(&mut c, &["RPUSH", "nokey", "v"]);
    assert_eq!(common::blocked_clients(&mut c), 0);
}

/// min-replicas-to-write: writes are refused while too few replicas
/// acknowledge (a SYNC client that never ACKs does not count); a queued
/// write flags the transaction; REPLICAOF NO ONE on a master is accepted.
#[test]
fn min_replicas_to_write_refuses_writes() {
    let srv = common::Server::start();
    let mut c = srv.client();
    assert_eq!(q(&mut c, &["REPLICAOF", "NO", "ONE"]), redis::Value::Okay);
    q(&mut c, &["SET", "xx", "1"]);
    let mut r1 = srv.client();
    let mut raw = srv.raw();
    raw.send(b"MULTI\r\nINCR xx\r\n");
    assert_eq!(raw.read_n(14), b"+OK\r\n+QUEUED\r\n");
    q(&mut r1, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let _attached = Stream::attach(&srv, b"SYNC\r\n");
    let want = b"-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write.\r\n";
    assert_eq!(raw.roundtrip(b"EXEC\r\n", want.len()), want);
    let e: redis::RedisResult<()> = redis::cmd("SET").arg("a").arg("b").query(&mut c);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("Not enough good replicas")
    );
    assert_eq!(
        q(&mut c, &["GET", "xx"]),
        redis::Value::BulkString(b"1".to_vec())
    );
    q(&mut r1, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    assert_eq!(q(&mut c, &["SET", "a", "b"]), redis::Value::Okay);
}

/// Under min-replicas-to-write a script that may write is refused before
/// it runs (shebang without no-writes), a `redis.call` write from a
/// script without shebang is refused, and reads go ahead.
#[test]
fn min_replicas_to_write_refuses_writing_scripts() {
    let srv = common::Server::start();
    let mut c = srv.client();
    q(&mut c, &["SET", "x", "v"]);
    q(&mut c, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let eval = |c: &mut redis::Connection, body: &str| -> redis::RedisResult<redis::Value> {
        redis::cmd("EVAL").arg(body).arg(1).arg("x").query(c)
    };
    let read = "return redis.call('get','x')";
    assert_eq!(
        eval(&mut c, &format!("#!lua flags=no-writes\n{read}")).unwrap(),
        redis::Value::BulkString(b"v".to_vec())
    );
    assert_eq!(
        eval(&mut c, read).unwrap(),
        redis::Value::BulkString(b"v".to_vec())
    );
    let e = eval(&mut c, &format!("#!lua\n{read}")).unwrap_err();
    assert!(e.to_string().contains("NOREPLICAS"), "{e}");
    let e = eval(&mut c, "return redis.call('set','x','w')").unwrap_err();
    assert!(e.to_string().contains("NOREPLICAS"), "{e}");
    q(&mut c, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    assert_eq!(
        q(&mut c, &["GET", "x"]),
        redis::Value::BulkString(b"v".to_vec())
    );
}
