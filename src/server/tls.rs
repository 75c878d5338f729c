//! TLS: the `tls-*` parameters turned into a rustls server configuration
//! (ring provider), the TLS listeners' hand-off to a worker, and the
//! handshake before a client is registered.
//!
//! Security fails closed: what rustls cannot do (TLS 1.0/1.1, an OpenSSL
//! cipher it does not implement, encrypted private keys) stops the server
//! at start-up, or fails CONFIG SET, with a message naming it; it is never
//! silently dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::Server;
use super::stats::ThreadStats;
use crate::config::Config;

/// A client that has not finished its handshake by then is dropped: it does
/// not count as a client yet, and must not hold a slot forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bigger PEM files are refused rather than read.
const MAX_PEM_FILE: u64 = 16 << 20;
/// `tls-session-cache-size 0` is "no limit" in OpenSSL; here it is this.
const UNLIMITED_SESSIONS: usize = 1 << 20;

/// Redis's CONFIG SET answer when the new TLS settings do not load.
pub const UPDATE_FAILED: &str = "Unable to update TLS configuration. Check server logs.";

/// What the TLS listeners use; replaced whole when CONFIG SET reloads it,
/// so a handshake uses either the old settings or the new ones.
#[derive(Default)]
pub struct Tls {
    acceptor: RwLock<Option<TlsAcceptor>>,
    /// Connections accepted on a TLS port whose handshake is under way.
    handshaking: AtomicUsize,
    /// The worker runtimes, to start accept loops on after start-up.
    workers: std::sync::OnceLock<Workers>,
    /// The TLS listeners' descriptors and accept loops.
    listeners: parking_lot::Mutex<Vec<(i32, tokio::task::AbortHandle)>>,
}

type Workers = &'static [(tokio::runtime::Handle, Arc<ThreadStats>)];

/// Redis's CONFIG SET answer when the new TLS port cannot be bound.
pub const LISTEN_FAILED: &str = "Unable to listen on this port. Check server logs.";

/// Starts the accept loops of the TLS listeners bound at start-up.
pub fn start(srv: &'static Server, listeners: Vec<std::net::TcpListener>, workers: Workers) {
    let _ = srv.tls.workers.set(workers);
    add_listeners(srv, listeners);
}

fn add_listeners(srv: &'static Server, listeners: Vec<std::net::TcpListener>) {
    let Some(&workers) = srv.tls.workers.get() else {
        return;
    };
    for l in listeners {
        use std::os::fd::AsRawFd;
        let fd = l.as_raw_fd();
        srv.listen_fds.lock().push(fd);
        let (rt, _) = &workers[0];
        let task = rt.spawn(super::conn::accept_loop(srv, l, workers, true));
        srv.tls.listeners.lock().push((fd, task.abort_handle()));
    }
}

/// CONFIG SET tls-port: listens on the new port (none for 0) and closes
/// the old listeners once the new ones are bound, as Redis does.
pub fn rebind(srv: &'static Server, port: u16) -> Result<(), String> {
    let fresh = if port == 0 {
        Vec::new()
    } else {
        super::bind_all(&srv.config.bind.get(), port).map_err(|e| e.to_string())?
    };
    let old = std::mem::take(&mut *srv.tls.listeners.lock());
    srv.listen_fds
        .lock()
        .retain(|fd| !old.iter().any(|(o, _)| o == fd));
    // The aborted loop drops its listener, which closes the socket.
    for (_, task) in old {
        task.abort();
    }
    add_listeners(srv, fresh);
    Ok(())
}

/// Whether TLS settings matter now (Redis loads them only then).
fn enabled(config: &Config) -> bool {
    config.tls_port.get() != 0 || config.tls.replication.get() || config.tls.cluster.get()
}

/// Loads the TLS settings at start-up; the error stops the server.
pub fn init(srv: &Server) -> Result<(), String> {
    if !enabled(&srv.config) {
        return Ok(());
    }
    let acceptor = load(&srv.config)?;
    *srv.tls.acceptor.write() = Some(acceptor);
    Ok(())
}

/// Loads the settings again after CONFIG SET changed a `tls-*` parameter;
/// on error the caller restores the previous values.
pub fn reload(srv: &Server) -> Result<(), String> {
    if !enabled(&srv.config) {
        return Ok(());
    }
    let acceptor = load(&srv.config)?;
    *srv.tls.acceptor.write() = Some(acceptor);
    Ok(())
}

/// Builds the rustls configuration the `tls-*` parameters describe.
pub fn load(config: &Config) -> Result<TlsAcceptor, String> {
    let t = &config.tls;
    if !t.key_file_pass.get().is_empty() || !t.client_key_file_pass.get().is_empty() {
        return Err("tls-key-file-pass / tls-client-key-file-pass are not supported: ferrokv cannot decrypt encrypted private keys; use an unencrypted key file".into());
    }
    if !t.dh_params_file.get().is_empty() {
        crate::warning!(
            "tls-dh-params-file is ignored: rustls uses ECDHE key exchange only, never DH parameters"
        );
    }
    let versions = protocols(&t.protocols.get())?;
    let mut provider = ring::default_provider();
    provider.cipher_suites = cipher_suites(&t.ciphersuites.get(), &t.ciphers.get())?;
    let provider = Arc::new(provider);
    if !versions.iter().all(|v| {
        provider
            .cipher_suites
            .iter()
            .any(|s| s.version().version == v.version)
    }) {
        return Err("No cipher left for one of the enabled tls-protocols".into());
    }

    let (cert_file, key_file) = (t.cert_file.get(), t.key_file.get());
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("tls-cert-file and tls-key-file must both be set".into());
    }
    let chain = load_certs(&cert_file)?;
    let key = load_key(&key_file)?;
    let client_cert = t.client_cert_file.get();
    if !client_cert.is_empty() {
        // For outgoing connections (none yet): checked now, as Redis does.
        let client_key = t.client_key_file.get();
        if client_key.is_empty() {
            return Err("tls-client-cert-file is set but tls-client-key-file is not".into());
        }
        rustls::sign::CertifiedKey::from_der(
            load_certs(&client_cert)?,
            load_key(&client_key)?,
            &provider,
        )
        .map_err(|e| format!("Failed to load tls-client-cert-file / tls-client-key-file: {e}"))?;
    }

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure tls-protocols: {e}"))?;
    let auth = t.auth_clients.name();
    let (ca_file, ca_dir) = (t.ca_cert_file.get(), t.ca_cert_dir.get());
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        if ca_file.is_empty() && ca_dir.is_empty() {
            return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!".into());
        }
        let roots = load_roots(&ca_file, &ca_dir)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if auth == "optional" {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        let verifier = verifier
            .build()
            .map_err(|e| format!("Failed to configure the CA certificates: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut server = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("Failed to load certificate: {cert_file} / {key_file}: {e}"))?;
    server.ignore_client_order = t.prefer_server_ciphers.get();
    // Stateful resumption only, as Redis configures OpenSSL; the cache is
    // bounded by its size (rustls has no per-entry timeout, so
    // tls-session-cache-timeout is not enforced).
    server.session_storage = if t.session_caching.get() {
        let size = match t.session_cache_size.get() {
            0 => UNLIMITED_SESSIONS,
            n => n as usize,
        };
        ServerSessionMemoryCache::new(size)
    } else {
        Arc::new(NoServerSessionStorage {})
    };
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// `tls-protocols`: empty is TLS 1.2 and 1.3 (Redis's default).
fn protocols(spec: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let mut out = Vec::new();
    for word in spec.split_whitespace() {
        let v = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            "tlsv1" | "tlsv1.1" => {
                return Err(format!(
                    "tls-protocols: {word} is not supported by ferrokv (rustls implements TLSv1.2 and TLSv1.3 only)"
                ));
            }
            _ => {
                return Err("Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.".into());
            }
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        out = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    }
    Ok(out)
}

/// The suites `tls-ciphersuites` (TLS 1.3, IANA/OpenSSL names) and
/// `tls-ciphers` (TLS 1.2, OpenSSL names) allow; empty allows every suite
/// ring offers. Names are separated by `:` (or `,` and spaces, as OpenSSL
/// accepts). `tls-ciphers` also takes `DEFAULT`, `HIGH` and `ALL` (every
/// suite rustls has is in them) and exclusions (`!name`, `-name`) of its
/// names or of what rustls never offers; any other OpenSSL cipher
/// expression is refused rather than guessed at.
fn cipher_suites(tls13: &str, tls12: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    use rustls::CipherSuite as C;
    const TLS13: &[(&str, C)] = &[
        ("TLS_AES_256_GCM_SHA384", C::TLS13_AES_256_GCM_SHA384),
        ("TLS_AES_128_GCM_SHA256", C::TLS13_AES_128_GCM_SHA256),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            C::TLS13_CHACHA20_POLY1305_SHA256,
        ),
    ];
    const TLS12: &[(&str, C)] = &[
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ];
    let all = ring::ALL_CIPHER_SUITES;
    let pick = |spec: &str,
                table: &[(&str, C)],
                which: &str,
                is13: bool|
     -> Result<Vec<SupportedCipherSuite>, String> {
        let words: Vec<&str> = spec
            .split([':', ',', ' '])
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Ok(all
                .iter()
                .filter(|s| s.tls13().is_some() == is13)
                .copied()
                .collect());
        }
        let every = || all.iter().filter(|s| s.tls13().is_some() == is13).copied();
        let mut out: Vec<SupportedCipherSuite> = Vec::new();
        for w in words {
            // OpenSSL's cipher-list keywords, in `tls-ciphers` only.
            let (exclude, name) = match w.strip_prefix(['!', '-']) {
                Some(rest) if !is13 => (true, rest),
                _ => (false, w),
            };
            let found = table.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
            if !is13 && found.is_none() {
                // Every suite rustls has is in OpenSSL's DEFAULT, HIGH and
                // ALL, so these are all of them.
                if !exclude && ["DEFAULT", "HIGH", "ALL"].contains(&name) {
                    for s in every() {
                        if !out.contains(&s) {
                            out.push(s);
                        }
                    }
                    continue;
                }
                // Excluding what rustls never offers changes nothing.
                if exclude && never_offered(name) {
                    continue;
                }
            }
            if exclude && let Some((_, id)) = found {
                out.retain(|s| s.suite() != *id);
                continue;
            }
            let Some((_, id)) = found.filter(|_| !exclude) else {
                return Err(format!(
                    "Failed to configure {which}: {w} (ferrokv's rustls knows only {})",
                    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(":")
                ));
            };
            if let Some(s) = all.iter().find(|s| s.suite() == *id)
                && !out.contains(s)
            {
                out.push(*s);
            }
        }
        Ok(out)
    };
    let mut suites = pick(tls13, TLS13, "ciphersuites", true)?;
    suites.extend(pick(tls12, TLS12, "ciphers", false)?);
    Ok(suites)
}

/// OpenSSL cipher-list names rustls never offers: weak classes, and exact
/// names of CBC suites (`AES128-SHA256`, `ECDHE-RSA-AES128-SHA`). A class
/// that could also match a suite rustls has (`ECDSA`, `AESGCM`...) is not
/// here, so excluding it is refused rather than ignored.
fn never_offered(name: &str) -> bool {
    const CLASSES: &[&str] = &[
        "aNULL", "eNULL", "NULL", "MD5", "RC4", "DES", "3DES", "EXPORT", "EXP", "LOW", "MEDIUM",
        "PSK", "SRP", "DSS", "kRSA", "aDH", "ADH", "AECDH", "SEED", "IDEA", "CAMELLIA", "ARIA",
        "CBC", "SHA1",
    ];
    CLASSES.contains(&name)
        || (name.contains('-')
            && ["-SHA", "-SHA256", "-SHA384"]
                .iter()
                .any(|end| name.ends_with(end))
            && !name.contains("GCM")
            && !name.contains("POLY1305"))
}

fn read_pem(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("Failed to open {path}: {e}"))?;
    let mut data = Vec::new();
    f.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("Failed to read {path}: {e}"))?;
    if data.len() as u64 > MAX_PEM_FILE {
        return Err(format!("{path} is larger than {MAX_PEM_FILE} bytes"));
    }
    Ok(data)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("Failed to load certificate: {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "Failed to load certificate: {path}: no PEM certificate found"
        ));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let data = read_pem(path)?;
    if memchr::memmem::find(&data, b"ENCRYPTED").is_some() {
        return Err(format!(
            "Failed to load private key: {path}: the key is encrypted, which ferrokv does not support (tls-key-file-pass); use an unencrypted key file"
        ));
    }
    PrivateKeyDer::from_pem_slice(&data)
        .map_err(|e| format!("Failed to load private key: {path}: {e}"))
}

/// The CA certificates of `tls-ca-cert-file` and of every PEM file in
/// `tls-ca-cert-dir`.
fn load_roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let mut add = |path: &str, certs: Vec<CertificateDer<'static>>| {
        for c in certs {
            roots.add(c).map_err(|e| {
                format!("Failed to configure CA certificate(s) file/directory: {path}: {e}")
            })?;
        }
        Ok::<(), String>(())
    };
    if !file.is_empty() {
        add(file, load_certs(file)?)?;
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            format!("Failed to configure CA certificate(s) file/directory: {dir}: {e}")
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let path = path.display().to_string();
            // Like OpenSSL's hashed directory lookup, files that are not
            // certificates are passed over.
            if let Ok(certs) = load_certs(&path) {
                add(&path, certs)?;
            }
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "Failed to configure CA certificate(s) file/directory: no certificate in '{file}' / '{dir}'"
        ));
    }
    Ok(roots)
}

/// Hands a connection accepted on a TLS port to a worker, which does the
/// handshake (bounded in time) and then the same admission checks as for
/// a plain connection, answering a refusal over TLS.
pub fn hand_off(
    srv: &'static Server,
    sock: TcpStream,
    rt: &tokio::runtime::Handle,
    stats: Arc<ThreadStats>,
) {
    let Some(acceptor) = srv.tls.acceptor.read().clone() else {
        return;
    };
    // Handshakes in flight are bounded like clients.
    let max = srv.config.maxclients.get().max(0) as usize;
    if srv.tls.handshaking.load(Ordering::Relaxed) >= max {
        srv.stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    let std_sock = match sock.into_std() {
        Ok(s) => s,
        Err(e) => {
            crate::warning!("handing off a connection: {e}");
            return;
        }
    };
    srv.tls.handshaking.fetch_add(1, Ordering::Relaxed);
    rt.spawn(async move {
        let stream = async {
            let sock = TcpStream::from_std(std_sock).ok()?;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    crate::warning!("Error accepting a client connection: {e}");
                    None
                }
                Err(_) => {
                    crate::verbose!("Error accepting a client connection: handshake timed out");
                    None
                }
            }
        }
        .await;
        srv.tls.handshaking.fetch_sub(1, Ordering::Relaxed);
        let Some(mut stream) = stream else { return };
        let peer = stream.get_ref().0.peer_addr();
        // A place under maxclients is held from here until `serve`
        // registers the client (or given back on a refusal).
        let refusal = if !srv.clients.admit(srv.config.maxclients.get()) {
            Some(&b"-ERR max number of clients reached\r\n"[..])
        } else if peer.is_ok_and(|p| super::conn::protected_mode_denies(srv, p.ip())) {
            srv.clients.arrived();
            Some(super::conn::DENIED)
        } else {
            None
        };
        if let Some(msg) = refusal {
            use tokio::io::AsyncWriteExt;
            srv.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            // A peer that does not read gets a second at most.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                stream.write_all(msg).await?;
                stream.shutdown().await
            })
            .await;
            return;
        }
        srv.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        super::conn::serve(srv, stream, stats).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_write_now_never_waits_on_a_client_that_does_not_read() {
        use crate::server::conn::Stream;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let connect = async {
                let sock = TcpStream::connect(addr).await.unwrap();
                let name = "localhost".try_into().unwrap();
                let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
                connector.connect(name, sock).await.unwrap()
            };
            let accept = async {
                let (sock, _) = listener.accept().await.unwrap();
                TlsAcceptor::from(Arc::new(server))
                    .accept(sock)
                    .await
                    .unwrap()
            };
            let (mut c, mut s) = tokio::join!(connect, accept);
            let chunk = vec![7u8; 1 << 20];
            let mut sent = 0usize;
            loop {
                match s.try_write_now(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                        break;
                    }
                }
                assert!(
                    sent < 256 << 20,
                    "the client does not read: it must fill up"
                );
            }
            assert!(sent > 0);
            // Nothing taken was lost: the rest goes with a flush.
            let read = async {
                let mut buf = vec![0u8; sent];
                c.read_exact(&mut buf).await.unwrap();
                buf.iter().all(|&b| b == 7)
            };
            let (all_sevens, flushed) = tokio::join!(read, s.flush());
            flushed.unwrap();
            assert!(all_sevens);
        });
    }

    #[test]
    fn protocols_follow_redis_names() {
        assert_eq!(protocols("").unwrap().len(), 2);
        assert_eq!(protocols("TLSv1.2").unwrap().len(), 1);
        assert_eq!(protocols("tlsv1.2 TLSv1.3 TLSv1.3").unwrap().len(), 2);
        assert!(protocols("TLSv1.1").unwrap_err().contains("not supported"));
        assert!(protocols("TLSv1.0").unwrap_err().starts_with("Invalid"));
    }

    #[test]
    fn cipher_names_map_or_are_refused() {
        assert_eq!(cipher_suites("", "").unwrap().len(), 9);
        let s = cipher_suites("TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256").unwrap();
        assert_eq!(s.len(), 2);
        assert!(cipher_suites("TLS_FOO", "").is_err());
        assert_eq!(cipher_suites("", "HIGH:!aNULL:!MD5").unwrap().len(), 9);
        // Redis's own test values: DEFAULT less a CBC suite rustls lacks.
        assert_eq!(
            cipher_suites("", "DEFAULT:-AES128-SHA256").unwrap().len(),
            9
        );
        let s = cipher_suites(
            "TLS_AES_128_GCM_SHA256",
            "DEFAULT:!ECDHE-RSA-AES128-GCM-SHA256",
        );
        assert_eq!(s.unwrap().len(), 6);
        assert!(cipher_suites("", "DEFAULT:!ECDSA").is_err());
        assert!(cipher_suites("", "AES128-SHA256").is_err());
    }
}
