//! Operational settings observed from outside the process, as Redis's
//! `unit/oom-score-adj`, `unit/shutdown`, `unit/networking` and
//! `unit/other` check them: the OOM score in /proc, shutdown by signal,
//! the process title, the source address of outgoing connections.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TempDir, signal, wait_for};

fn get(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
    v.get(1).cloned().unwrap_or_default()
}

fn set_err(c: &mut redis::Connection, args: &[&str]) -> String {
    let r: redis::RedisResult<String> = redis::cmd("CONFIG").arg("SET").arg(args).query(c);
    r.unwrap_err().to_string()
}

fn proc_score(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The first child process of `pid` (the background save's stand-in).
fn child_of(pid: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for t in tasks.flatten() {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            return k.parse().ok();
        }
    }
    None
}

#[test]
fn oom_score_adj_follows_the_configuration() {
    let srv = Server::start();
    let pid = srv.pid();
    let mut c = srv.client();
    assert_eq!(get(&mut c, "oom-score-adj"), "no");
    assert_eq!(get(&mut c, "oom-score-adj-values"), "0 200 800");
    let base = proc_score(pid);

    redis::cmd("CONFIG")
        .arg(&[
            "SET",
            "oom-score-adj-values",
            "10 20 30",
            "oom-score-adj",
            "yes",
        ])
        .exec(&mut c)
        .unwrap();
    assert_eq!(get(&mut c, "oom-score-adj"), "yes");
    assert_eq!(proc_score(pid), (base + 10).min(1000));
    redis::cmd("CONFIG")
        .arg(&["SET", "oom-score-adj-values", "+15 20 30"])
        .exec(&mut c)
        .unwrap();
    assert_eq!(get(&mut c, "oom-score-adj-values"), "15 20 30");
    assert_eq!(proc_score(pid), (base + 15).min(1000));

    // The background save's child takes the third value.
    redis::cmd("SET").arg("k").arg("v").exec(&mut c).unwrap();
    redis::cmd("CONFIG")
        .arg(&["SET", "rdb-key-save-delay", "1000000"])
        .exec(&mut c)
        .unwrap();
    redis::cmd("BGSAVE").exec(&mut c).unwrap();
    let child = child_of(pid).expect("a background save child");
    wait_for("the child's score", || {
        proc_score(child) == (base + 30).min(1000)
    });
    redis::cmd("CONFIG")
        .arg(&["SET", "rdb-key-save-delay", "0"])
        .exec(&mut c)
        .unwrap();

    // Absolute values, then off: the original score comes back.
    redis::cmd("CONFIG")
        .arg(&["SET", "oom-score-adj", "absolute"])
        .exec(&mut c)
        .unwrap();
    assert_eq!(proc_score(pid), 15);
    redis::cmd("CONFIG")
        .arg(&["SET", "oom-score-adj", "no"])
        .exec(&mut c)
        .unwrap();
    assert_eq!(proc_score(pid), base);

    // While off, the values do not touch the file.
    redis::cmd("CONFIG")
        .arg(&["SET", "oom-score-adj-values", "40 50 60"])
        .exec(&mut c)
        .unwrap();
    assert_eq!(proc_score(pid), base);

    for (v, why) in [
        (
            "-2001 0 0",
            "Invalid oom-score-adj-values, elements must be between -2000 and 2000.",
        ),
        (
            "0 0 2001",
            "Invalid oom-score-adj-values, elements must be between -2000 and 2000.",
        ),
        ("1 2", "wrong number of arguments"),
        ("1  2 3", "wrong number of arguments"),
    ] {
        let e = set_err(&mut c, &["oom-score-adj-values", v]);
        assert!(
            e.contains(&format!(
                "CONFIG SET failed (possibly related to argument 'oom-score-adj-values') - {why}"
            )),
            "{v}: {e}"
        );
    }
    let e = set_err(&mut c, &["oom-score-adj", "maybe"]);
    assert!(
        e.contains("argument(s) must be one of the following: no, yes, relative, absolute"),
        "{e}"
    );
}

#[test]
fn shutdown_on_signal_flags_parse_as_redis() {
    let srv = Server::start();
    let mut c = srv.client();
    assert_eq!(get(&mut c, "shutdown-on-sigterm"), "default");
    assert_eq!(get(&mut c, "shutdown-on-sigint"), "default");
    redis::cmd("CONFIG")
        .arg(&["SET", "shutdown-on-sigterm", "now save force"])
        .exec(&mut c)
        .unwrap();
    assert_eq!(get(&mut c, "shutdown-on-sigterm"), "save now force");
    redis::cmd("CONFIG")
        .arg(&["SET", "shutdown-on-sigint", "nosave default"])
        .exec(&mut c)
        .unwrap();
    assert_eq!(get(&mut c, "shutdown-on-sigint"), "nosave");
    let e = set_err(&mut c, &["shutdown-on-sigterm", "save nosave"]);
    assert!(
        e.contains("shutdown options SAVE and NOSAVE can't be used simultaneously"),
        "{e}"
    );
    let e = set_err(&mut c, &["shutdown-on-sigterm", "force bad"]);
    assert!(
        e.contains("argument(s) must be one of the following: default, save, nosave, now, force"),
        "{e}"
    );
}

/// A signal schedules the shutdown for the cron: with the cron paused,
/// SHUTDOWN ABORT cancels it, and the server keeps serving.
#[test]
fn shutdown_abort_cancels_a_sigterm() {
    let mut srv = Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    let e: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("ABORT").query(&mut c);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("No shutdown in progress.")
    );
    redis::cmd("DEBUG")
        .arg(&["PAUSE-CRON", "1"])
        .exec(&mut c)
        .unwrap();
    signal(srv.pid(), "-TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(srv.alive());
    redis::cmd("SHUTDOWN").arg("ABORT").exec(&mut c).unwrap();
    redis::cmd("DEBUG")
        .arg(&["PAUSE-CRON", "0"])
        .exec(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    // Not cancelled, it goes ahead.
    signal(srv.pid(), "-TERM");
    wait_for("the exit", || !srv.alive());
}

/// `shutdown-on-sigterm save` saves without save points; `nosave` never
/// saves even with them.
#[test]
fn shutdown_on_sigterm_save_and_nosave() {
    let dir = TempDir::new("sigsave");
    let mut srv = Server::start_in(
        Some(dir.path()),
        None,
        &["--save", "", "--shutdown-on-sigterm", "save"],
    );
    let mut c = srv.client();
    redis::cmd("SET").arg("k").arg("v").exec(&mut c).unwrap();
    signal(srv.pid(), "-TERM");
    wait_for("the exit", || !srv.alive());
    assert!(dir.path().join("dump.rdb").exists());
    std::fs::remove_file(dir.path().join("dump.rdb")).unwrap();

    let mut srv = Server::start_in(
        Some(dir.path()),
        None,
        &["--save", "1 1", "--shutdown-on-sigterm", "nosave"],
    );
    let mut c = srv.client();
    redis::cmd("SET").arg("k").arg("v").exec(&mut c).unwrap();
    signal(srv.pid(), "-TERM");
    wait_for("the exit", || !srv.alive());
    assert!(!dir.path().join("dump.rdb").exists());
}

#[test]
fn process_title_follows_the_template() {
    let srv = Server::start();
    let mut c = srv.client();
    assert_eq!(
        get(&mut c, "proc-title-template"),
        "{title} {listen-addr} {server-mode}"
    );
    let cmdline = || {
        let raw = std::fs::read(format!("/proc/{}/cmdline", srv.pid())).unwrap();
        String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .to_string()
    };
    assert_eq!(
        cmdline(),
        format!("{} 127.0.0.1:{}", env!("CARGO_BIN_EXE_ferrokv"), srv.port)
    );
    redis::cmd("CONFIG")
        .arg(&[
            "SET",
            "proc-title-template",
            "TEST {title} {listen-addr} {port} {tls-port} {{x}} {unixsocket}",
        ])
        .exec(&mut c)
        .unwrap();
    let port = srv.port;
    assert_eq!(
        cmdline(),
        format!(
            "TEST {} 127.0.0.1:{port} {port} 0 {{x}}",
            env!("CARGO_BIN_EXE_ferrokv")
        )
    );
    for bad in ["{invalid-var}", "{title}", "{title", ""] {
        let e = set_err(&mut c, &["proc-title-template", bad]);
        assert!(
            e.contains("template format is invalid or contains unknown variables"),
            "{bad}: {e}"
        );
    }
}

/// MIGRATE's connection leaves from `bind-source-addr`: the target sees
/// that address.
#[test]
fn bind_source_addr_is_the_source_of_migrate() {
    let target = Server::start_with(&["--protected-mode", "no"]);
    let srv = Server::start();
    let mut c = srv.client();
    assert_eq!(get(&mut c, "bind-source-addr"), "");
    redis::cmd("CONFIG")
        .arg(&["SET", "bind-source-addr", "127.0.0.2"])
        .exec(&mut c)
        .unwrap();
    redis::cmd("SET").arg("k").arg("v").exec(&mut c).unwrap();
    let r: String = redis::cmd("MIGRATE")
        .arg(&[
            "127.0.0.1",
            &target.port.to_string(),
            "k",
            "0",
            "5000",
            "COPY",
        ])
        .query(&mut c)
        .unwrap();
    assert_eq!(r, "OK");
    let mut t = target.client();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut t).unwrap();
    assert!(list.contains("addr=127.0.0.2:"), "{list}");
    // An address that is not one fails the connection.
    let other = Server::start_with(&["--protected-mode", "no"]);
    redis::cmd("CONFIG")
        .arg(&["SET", "bind-source-addr", "1.2.3"])
        .exec(&mut c)
        .unwrap();
    let e: redis::RedisResult<String> = redis::cmd("MIGRATE")
        .arg(&[
            "127.0.0.1",
            &other.port.to_string(),
            "k",
            "0",
            "1000",
            "COPY",
        ])
        .query(&mut c);
    assert!(e.unwrap_err().to_string().contains("IOERR"));
}

/// `unixsocket`: served beside TCP, the client local and shown as Redis
/// shows it; the file has `unixsocketperm` and goes away at SHUTDOWN.
#[test]
fn unix_socket_is_served() {
    use std::io::{Read, Write};
    let dir = TempDir::new("unix");
    let path = dir.path().join("s.sock");
    let path_s = path.to_str().unwrap().to_string();
    // A stale file at the path is replaced.
    std::fs::write(&path, b"stale").unwrap();
    let mut srv = Server::start_with(&["--unixsocket", &path_s, "--unixsocketperm", "700"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let mut c = srv.client();
    assert_eq!(get(&mut c, "unixsocket"), path_s);
    assert_eq!(get(&mut c, "unixsocketperm"), "700");

    let mut u = std::os::unix::net::UnixStream::connect(&path).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut roundtrip = |cmd: &[u8]| {
        u.write_all(cmd).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = u.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(roundtrip(b"PING\r\n"), "+PONG\r\n");
    let info = roundtrip(b"CLIENT INFO\r\n");
    assert!(
        info.contains(&format!("addr={path_s}:0 laddr={path_s}:0 ")),
        "{info}"
    );
    assert!(info.contains(" flags=U "), "{info}");
    let _ = roundtrip(b"SHUTDOWN NOSAVE\r\n");
    wait_for("the exit", || !srv.alive());
    assert!(!path.exists());
}

/// Without a `bind`, ferrokv listens on the loopback addresses only, as
/// DESIGN.md decides (Redis 7.0 listens everywhere and relies on protected
/// mode).
#[test]
fn default_bind_is_loopback_only() {
    use std::process::{Command, Stdio};
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = TempDir::new("bind");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .current_dir(dir.path())
        .args(["--port", &port.to_string(), "--save", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
        {
            break c;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let bind = get(&mut c, "bind");
    let _ = child.kill();
    let _ = child.wait();
    // DESIGN.md: loopback unless told otherwise (Redis compiles in `* -::*`).
    assert_eq!(bind, "127.0.0.1 -::1");
}

/// A port already taken: Redis's two lines, exit 1, and no " PID: " line
/// (Redis's suite takes that line as "listening", and connects at once;
/// "Failed listening on port" makes it try another port).
#[test]
fn a_taken_port_fails_with_redis_words_before_any_banner() {
    use std::process::Command;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new("taken");
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .current_dir(dir.path())
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--always-show-logo",
            "yes",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "# Warning: Could not create server TCP listening socket 127.0.0.1:{port}: bind: Address already in use\n"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "# Failed listening on port {port} (TCP), aborting.\n"
        )),
        "{log}"
    );
    assert!(!log.contains(" PID: "), "{log}");
}

/// A CONFIG SET whose `port` cannot be bound rolls back everything,
/// the OOM score it had already written included.
#[test]
fn failed_config_set_restores_the_oom_score() {
    let srv = Server::start();
    let mut c = srv.client();
    let base = proc_score(srv.pid());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let e = set_err(
        &mut c,
        &[
            "oom-score-adj",
            "yes",
            "oom-score-adj-values",
            "1 1 1",
            "port",
            &port,
        ],
    );
    assert!(e.contains("Unable to listen on this port"), "{e}");
    assert_eq!(get(&mut c, "oom-score-adj"), "no");
    assert_eq!(get(&mut c, "oom-score-adj-values"), "0 200 800");
    assert_eq!(proc_score(srv.pid()), base);
}

/// LOLWUT: the version line by default (and for versions other than 5
/// and 6), pictures of the requested size for 5 and 6.
#[test]
fn lolwut_versions() {
    let srv = Server::start();
    let mut c = srv.client();
    let text = |c: &mut redis::Connection, args: &[&str]| -> String {
        redis::cmd("LOLWUT").arg(args).query(c).unwrap()
    };
    assert_eq!(text(&mut c, &[]), "Redis ver. 7.0.15\n");
    assert_eq!(text(&mut c, &["VERSION", "4"]), "Redis ver. 7.0.15\n");
    assert_eq!(text(&mut c, &["foo"]), "Redis ver. 7.0.15\n");
    let v5 = text(&mut c, &["VERSION", "5", "3", "1", "1"]);
    let lines: Vec<&str> = v5.lines().collect();
    assert_eq!(lines.len(), 4, "{v5}");
    assert!(
        lines[..2].iter().all(|l| l.chars().count() == 3
            && l.chars().all(|ch| ('\u{2800}'..='\u{28ff}').contains(&ch)))
    );
    assert_eq!(
        lines[3],
        "Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15"
    );
    // Out of range sizes are clamped.
    let one = text(&mut c, &["VERSION", "5", "0", "0", "0"]);
    assert_eq!(one.lines().next().unwrap().chars().count(), 1);
    let v6 = text(&mut c, &["VERSION", "6", "3", "2"]);
    let lines: Vec<&str> = v6.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0].matches(" \x1b[0m").count(), 3);
    assert_eq!(
        lines[3],
        "Original 8 bit image from Plaguemon by hikikomori. Redis ver. 7.0.15"
    );
    let e: redis::RedisResult<String> = redis::cmd("LOLWUT")
        .arg(&["VERSION", "5", "x"])
        .query(&mut c);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("value is not an integer or out of range")
    );
    // RESP3: a verbatim string.
    let mut raw = srv.raw();
    raw.send(b"HELLO 3\r\n");
    // HELLO's map ends with its empty `modules` array.
    let mut hello = Vec::new();
    while !hello.ends_with(b"*0\r\n") {
        let chunk = raw.read_n(1);
        assert!(!chunk.is_empty(), "HELLO reply cut short");
        hello.extend_from_slice(&chunk);
    }
    raw.send(b"LOLWUT\r\n");
    assert_eq!(raw.read_n(29), b"=22\r\ntxt:Redis ver. 7.0.15\n\r\n");
}
