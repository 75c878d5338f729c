//! TLS listeners (`tls-port`): certificates made at run time with rcgen,
//! clients through rustls directly, the redis crate's `rediss://` and
//! redis-cli `--tls`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, TempDir, run_to_exit};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA, a server and a client certificate it signed, and a second CA with
/// its own server and client certificates (the "wrong" ones).
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("tls");
        for prefix in ["", "other-"] {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.distinguished_name
                .push(DnType::CommonName, format!("ferrokv {prefix}test CA"));
            let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
            dir.write(&format!("{prefix}ca.crt"), &ca.pem());
            for (name, sans) in [
                ("server", vec!["localhost", "127.0.0.1"]),
                ("client", vec![]),
            ] {
                let sans: Vec<String> = sans.into_iter().map(String::from).collect();
                let mut params = CertificateParams::new(sans).unwrap();
                params.distinguished_name.push(DnType::CommonName, name);
                let key = KeyPair::generate().unwrap();
                let cert = params.signed_by(&key, &ca).unwrap();
                dir.write(&format!("{prefix}{name}.crt"), &cert.pem());
                dir.write(&format!("{prefix}{name}.key"), &key.serialize_pem());
            }
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The server options for these certificates.
    fn server_args(&self) -> Vec<String> {
        [
            ("--tls-cert-file", "server.crt"),
            ("--tls-key-file", "server.key"),
            ("--tls-ca-cert-file", "ca.crt"),
        ]
        .iter()
        .flat_map(|(o, f)| [o.to_string(), self.path(f)])
        .collect()
    }

    /// A client trusting `ca` and presenting `cert` (`client` or
    /// `other-client`), if any.
    fn client_config(&self, ca: &str, cert: Option<&str>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.path(ca)).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match cert {
            None => builder.with_no_client_auth(),
            Some(c) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(self.path(&format!("{c}.crt")))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_file(self.path(&format!("{c}.key"))).unwrap(),
                )
                .unwrap(),
        })
    }

    /// A TLS connection to `port` that completed its handshake, or why not.
    fn connect(&self, port: u16, ca: &str, cert: Option<&str>) -> Result<Tls, String> {
        self.connect_to("127.0.0.1", port, ca, cert)
    }

    fn connect_to(
        &self,
        host: &str,
        port: u16,
        ca: &str,
        cert: Option<&str>,
    ) -> Result<Tls, String> {
        let sock = TcpStream::connect((host, port)).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(self.client_config(ca, cert), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(Tls(tls))
    }
}

struct Tls(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

impl Tls {
    /// Sends one command and reads one reply (of the simple kinds these
    /// tests use), or the error that ended the connection.
    fn cmd(&mut self, args: &[&str]) -> Result<String, String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.0
            .write_all(&common::resp(&args))
            .and_then(|()| self.0.flush())
            .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.0.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".into());
            }
            reply.extend_from_slice(&buf[..n]);
            if complete(&reply) {
                return Ok(String::from_utf8_lossy(&reply).into_owned());
            }
        }
    }
}

/// Whether a simple reply or one bulk string arrived whole.
fn complete(r: &[u8]) -> bool {
    let Some(end) = r.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match r[0] {
        b'$' => {
            let n: i64 = std::str::from_utf8(&r[1..end]).unwrap().parse().unwrap();
            n < 0 || r.len() >= end + 2 + n as usize + 2
        }
        _ => true,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server with a plain port and a TLS port, and `extra` options.
fn start(pki: &Pki, extra: &[&str]) -> (Server, u16) {
    let tls_port = free_port();
    let mut args = pki.server_args();
    args.extend(["--tls-port".to_string(), tls_port.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Server::start_with(&args), tls_port)
}

/// A TLS-only server (`port 0`), killed on drop.
struct TlsOnly {
    child: Child,
    port: u16,
}

impl Drop for TlsOnly {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tls_only(pki: &Pki) -> TlsOnly {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port"])
        .arg(port.to_string())
        .args(pki.server_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let srv = TlsOnly { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if pki.connect(port, "ca.crt", Some("client")).is_ok() {
            return srv;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("ferrokv did not start with TLS only");
}

#[test]
fn tls_and_plain_ports_serve_side_by_side() {
    let pki = Pki::new();
    let (srv, tls_port) = start(&pki, &[]);
    let mut t = pki.connect(tls_port, "ca.crt", Some("client")).unwrap();
    assert_eq!(t.cmd(&["PING"]).unwrap(), "+PONG\r\n");
    assert_eq!(t.cmd(&["SET", "k", "over tls"]).unwrap(), "+OK\r\n");
    let mut plain = srv.client();
    let v: String = redis::cmd("GET").arg("k").query(&mut plain).unwrap();
    assert_eq!(v, "over tls");
    // As in Redis: INFO's tcp_port is the plain port; the TLS client's
    // laddr is the TLS port.
    let info: String = redis::cmd("INFO").arg("server").query(&mut plain).unwrap();
    assert!(
        info.contains(&format!("tcp_port:{}\r\n", srv.port)),
        "{info}"
    );
    let list = t.cmd(&["CLIENT", "LIST"]).unwrap();
    assert!(
        list.contains(&format!("laddr=127.0.0.1:{tls_port} ")),
        "{list}"
    );
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-port")
        .query(&mut plain)
        .unwrap();
    assert_eq!(got, ["tls-port".to_string(), tls_port.to_string()]);
    // Redis 7.0's twenty tls-* parameters.
    let all: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-*")
        .query(&mut plain)
        .unwrap();
    assert_eq!(all.len(), 40, "{all:?}");
    // A reply bigger than the socket takes at once all arrives (TLS keeps
    // the rest until flushed).
    let value = "x".repeat(8 << 20);
    assert_eq!(t.cmd(&["SET", "big", &value]).unwrap(), "+OK\r\n");
    let got = t.cmd(&["GET", "big"]).unwrap();
    assert_eq!(got, format!("${}\r\n{value}\r\n", value.len()));
    // Idle past the read buffer's release (2 s): bytes are still read.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(t.cmd(&["PING"]).unwrap(), "+PONG\r\n");
    // CLIENT KILL closes a TLS client too.
    let id = t.cmd(&["CLIENT", "ID"]).unwrap();
    let id = id.trim().trim_start_matches(':');
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut plain)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(t.cmd(&["PING"]).is_err());
}

#[test]
fn the_redis_crate_connects_with_rediss() {
    let pki = Pki::new();
    let (_srv, tls_port) = start(&pki, &[]);
    let read = |f: &str| std::fs::read(pki.path(f)).unwrap();
    let client = redis::Client::build_with_tls(
        format!("rediss://localhost:{tls_port}/"),
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read("client.crt"),
                client_key: read("client.key"),
            }),
            root_cert: Some(read("ca.crt")),
        },
    )
    .unwrap();
    let mut c = client.get_connection().unwrap();
    let () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    let v: i64 = redis::cmd("INCR").arg("a").query(&mut c).unwrap();
    assert_eq!(v, 2);
}

#[test]
fn client_certificates_required_optional_or_not() {
    let pki = Pki::new();
    // Default (yes): required, and checked against the CA.
    let (srv, port) = start(&pki, &[]);
    assert!(pki.connect(port, "ca.crt", Some("client")).is_ok());
    let refused = |cert| {
        pki.connect(port, "ca.crt", cert)
            .and_then(|mut t| t.cmd(&["PING"]))
            .is_err()
    };
    assert!(refused(None), "no client certificate");
    assert!(
        refused(Some("other-client")),
        "client certificate of another CA"
    );
    // A client that does not trust the server's CA stops by itself.
    assert!(pki.connect(port, "other-ca.crt", Some("client")).is_err());

    let mut plain = srv.client();
    let set = |c: &mut redis::Connection, v: &str| -> redis::RedisResult<()> {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("tls-auth-clients")
            .arg(v)
            .query(c)
    };
    set(&mut plain, "optional").unwrap();
    let mut t = pki.connect(port, "ca.crt", None).unwrap();
    assert_eq!(t.cmd(&["PING"]).unwrap(), "+PONG\r\n");
    assert!(
        refused(Some("other-client")),
        "optional still checks a certificate"
    );

    set(&mut plain, "no").unwrap();
    let mut t = pki.connect(port, "ca.crt", None).unwrap();
    assert_eq!(t.cmd(&["PING"]).unwrap(), "+PONG\r\n");
    let e = set(&mut plain, "maybe").unwrap_err();
    assert!(
        e.to_string()
            .contains("argument(s) must be one of the following: no, yes, optional"),
        "{e}"
    );
}

#[test]
fn config_set_reloads_or_keeps_the_old_settings() {
    let pki = Pki::new();
    let (srv, port) = start(&pki, &[]);
    let mut plain = srv.client();
    let mut t = pki.connect(port, "ca.crt", Some("client")).unwrap();
    let e = t.cmd(&["CONFIG", "SET", "tls-cert-file", "/nonexistent/cert.pem"]);
    assert_eq!(
        e.unwrap(),
        "-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.\r\n"
    );
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-cert-file")
        .query(&mut plain)
        .unwrap();
    assert_eq!(got[1], pki.path("server.crt"));
    assert!(pki.connect(port, "ca.crt", Some("client")).is_ok());
    // A new certificate serves the next handshakes.
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-cert-file")
        .arg(pki.path("other-server.crt"))
        .arg("tls-key-file")
        .arg(pki.path("other-server.key"))
        .query(&mut plain)
        .unwrap();
    assert!(pki.connect(port, "ca.crt", Some("client")).is_err());
    assert!(pki.connect(port, "other-ca.crt", Some("client")).is_ok());
    for (name, value) in [
        ("tls-protocols", "TLSv1.1"),
        ("tls-ciphers", "DEFAULT:!ECDSA"),
        ("tls-ciphersuites", "TLS_FOO"),
    ] {
        let e = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query::<()>(&mut plain)
            .unwrap_err();
        assert!(
            e.to_string().contains("Unable to update TLS"),
            "{name}: {e}"
        );
    }
}

#[test]
fn config_set_tls_port_moves_the_listener() {
    let pki = Pki::new();
    let srv = Server::start_with(
        &pki.server_args()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let mut plain = srv.client();
    let mut set_port = |port: u16| -> redis::RedisResult<()> {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("tls-port")
            .arg(port)
            .query(&mut plain)
    };
    let first = free_port();
    set_port(first).unwrap();
    assert!(pki.connect(first, "ca.crt", Some("client")).is_ok());
    // A port in use: Redis's answer, and the old listener stays.
    let e = set_port(srv.port).unwrap_err();
    assert!(
        e.to_string()
            .contains("Unable to listen on this port. Check server logs."),
        "{e}"
    );
    assert!(pki.connect(first, "ca.crt", Some("client")).is_ok());
    let second = free_port();
    set_port(second).unwrap();
    assert!(pki.connect(second, "ca.crt", Some("client")).is_ok());
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", first)).is_ok() {
        assert!(Instant::now() < deadline, "the old TLS port still listens");
        std::thread::sleep(Duration::from_millis(20));
    }
    set_port(0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", second)).is_ok() {
        assert!(Instant::now() < deadline, "tls-port 0 still listens");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tls_only_server_with_port_0() {
    let pki = Pki::new();
    let srv = start_tls_only(&pki);
    let mut t = pki.connect(srv.port, "ca.crt", Some("client")).unwrap();
    let info = t.cmd(&["INFO", "server"]).unwrap();
    assert!(info.contains("tcp_port:0\r\n"), "{info}");
}

#[test]
fn a_connection_still_handshaking_is_not_a_client_and_maxclients_applies() {
    let pki = Pki::new();
    let (srv, port) = start(&pki, &["--maxclients", "2"]);
    // Silent: never sends a ClientHello.
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut plain = srv.client();
    let mut t = pki.connect(port, "ca.crt", Some("client")).unwrap();
    assert_eq!(t.cmd(&["PING"]).unwrap(), "+PONG\r\n");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut plain).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    let mut third = pki.connect(port, "ca.crt", Some("client")).unwrap();
    assert_eq!(
        third.cmd(&["PING"]).unwrap(),
        "-ERR max number of clients reached\r\n"
    );
}

/// This machine's first IPv4 address other than loopback, if any.
fn non_loopback_ipv4() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(String::from)
}

#[test]
fn protected_mode_turns_remote_tls_clients_away_over_tls() {
    let Some(ip) = non_loopback_ipv4() else {
        eprintln!("skipped: no non-loopback IPv4 address");
        return;
    };
    let pki = Pki::new();
    let bind = format!("127.0.0.1 {ip}");
    let (_srv, port) = start(&pki, &["--bind", &bind]);
    let mut t = pki.connect_to(&ip, port, "ca.crt", Some("client")).unwrap();
    let reply = t.cmd(&["PING"]).unwrap();
    assert!(
        reply.starts_with("-DENIED Redis is running in protected mode"),
        "{reply}"
    );
    let mut local = pki.connect(port, "ca.crt", Some("client")).unwrap();
    assert_eq!(local.cmd(&["PING"]).unwrap(), "+PONG\r\n");
}

#[test]
fn bad_tls_settings_refuse_to_start() {
    let pki = Pki::new();
    let garbage = pki.dir.write("garbage.pem", "not a pem file\n");
    let garbage = garbage.display().to_string();
    let encrypted = pki.dir.write(
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let encrypted = encrypted.display().to_string();
    let port = free_port().to_string();
    let with = |opts: &[&str]| -> Vec<String> {
        let mut args = pki.server_args();
        args.extend(["--tls-port".into(), port.clone()]);
        args.extend(opts.iter().map(|s| s.to_string()));
        args
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            with(&["--tls-cert-file", "/nonexistent.crt"]),
            "/nonexistent.crt",
        ),
        (
            with(&["--tls-key-file", &garbage]),
            "Failed to load private key",
        ),
        (
            with(&["--tls-key-file", &pki.path("client.key")]),
            "Failed to load certificate",
        ),
        (with(&["--tls-key-file", &encrypted]), "encrypted"),
        (
            with(&["--tls-key-file-pass", "secret"]),
            "tls-key-file-pass",
        ),
        (with(&["--tls-ca-cert-file", &garbage]), "garbage.pem"),
        (with(&["--tls-ca-cert-file", ""]), "tls-ca-cert-file"),
        (with(&["--tls-protocols", "TLSv1.1 TLSv1.2"]), "TLSv1.1"),
        (
            with(&["--tls-ciphers", "DHE-RSA-AES128-SHA"]),
            "DHE-RSA-AES128-SHA",
        ),
        (
            with(&["--tls-client-cert-file", &pki.path("client.crt")]),
            "tls-client-key-file",
        ),
        (with(&["--tls-replication", "yes"]), "tls-replication"),
    ];
    for (args, says) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out) = run_to_exit(pki.dir.path(), &args);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(out.contains(says), "{args:?} should say {says:?}: {out}");
    }
}

/// redis-cli's own TLS client, where the installed one has it.
#[test]
fn redis_cli_tls() {
    let cli = Path::new("/usr/bin/redis-cli");
    if !cli.exists() {
        eprintln!("skipped: no redis-cli");
        return;
    }
    let pki = Pki::new();
    let (_srv, port) = start(&pki, &[]);
    let p = |f: &str| PathBuf::from(pki.path(f));
    let out = Command::new(cli)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--tls",
            "--sni",
            "localhost",
        ])
        .arg("--cacert")
        .arg(p("ca.crt"))
        .arg("--cert")
        .arg(p("client.crt"))
        .arg("--key")
        .arg(p("client.key"))
        .args(["SET", "cli", "ok"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if text.contains("not supported") || text.contains("Unrecognized option") {
        eprintln!("skipped: redis-cli without TLS: {text}");
        return;
    }
    assert_eq!(text.trim(), "OK");
}
