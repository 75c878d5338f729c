//! Cross-connection ordering (`server/settle.rs`): a command that looks at
//! other connections (CLIENT LIST, CLIENT KILL, INFO) sees what the input
//! that reached the server before it did, as in Redis, which serves its
//! clients one at a time, even when that input went to another worker
//! (Redis's suite, unit/client-eviction: "avoid client eviction when client
//! is freed by output buffer limit", "client evicted due to percentage of
//! maxmemory"). A big argument counts at its announced size from its header
//! on (`client_mem::arriving`), as Redis allocates it then.

mod common;

use std::io::Write;

use common::{Raw, Server, resp, signal};

fn listed(c: &mut redis::Connection, name: &str) -> bool {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
    list.lines().any(|l| l.contains(&format!(" name={name} ")))
}

fn named(srv: &Server, name: &str) -> Raw {
    let mut r = srv.raw();
    r.roundtrip(&resp(&[b"CLIENT", b"SETNAME", name.as_bytes()]), 5);
    r
}

#[test]
fn a_client_past_its_output_limit_is_gone_when_a_later_command_looks() {
    let srv = Server::start_with(&["--client-output-buffer-limit", "normal 1mb 0 0"]);
    let mut c = srv.client();
    let _: i64 = redis::cmd("SETRANGE")
        .arg("k")
        .arg(2 << 20)
        .arg("v")
        .query(&mut c)
        .unwrap();
    // Each round's clients land on every worker (connections are handed
    // out in turn); their GETs all arrive while the server is stopped, so
    // they wait in the sockets when CLIENT LIST arrives after them.
    for round in 0..16 {
        let names: Vec<String> = (0..6).map(|i| format!("obuf-{round}-{i}")).collect();
        let mut clients: Vec<Raw> = names.iter().map(|n| named(&srv, n)).collect();
        signal(srv.pid(), "-STOP");
        for r in &mut clients {
            r.0.write_all(&resp(&[b"GET", b"k"])).unwrap();
        }
        signal(srv.pid(), "-CONT");
        for n in &names {
            assert!(!listed(&mut c, n), "round {round}: {n} still listed");
        }
    }
}

#[test]
fn a_client_evicted_for_its_query_buffer_is_gone_when_a_later_command_looks() {
    let srv = Server::start_with(&["--maxmemory-clients", "400000"]);
    let mut c = srv.client();
    let _: () = redis::cmd("CLIENT")
        .arg("NO-EVICT")
        .arg("on")
        .query(&mut c)
        .unwrap();
    for round in 0..16 {
        let name = format!("qbuf-{round}");
        let mut r = named(&srv, &name);
        // An argument past the limit, announced: Redis makes room for all
        // of it from its header on, so the client is over the limit (and
        // evicted) however little of it arrived yet.
        let mut bytes = b"*1\r\n$450000\r\n".to_vec();
        bytes.resize(bytes.len() + 1000, b'v');
        let _ = r.0.write_all(&bytes);
        assert!(!listed(&mut c, &name), "round {round}: {name} still listed");
    }
}
