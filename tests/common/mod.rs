//! Starts the real `ferrokv` binary on a free port for integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    child: Child,
    /// The working directory made for a server started without one: the
    /// server saves `dump.rdb` there (and loads it at start), so one test's
    /// file never reaches another test's server. Removed on drop.
    scratch: Option<TempDir>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True if the server on `port` answers INFO with process id `pid` (or,
/// when it wants a password first, is answering at all).
fn answers_as(port: u16, pid: u32) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let want = format!("process_id:{pid}\r\n");
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.starts_with(b"-NOAUTH") {
            return true;
        }
        let text = String::from_utf8_lossy(&reply);
        if text.contains(&want) {
            return true;
        }
        if text.contains("process_id:") && text.ends_with("\r\n\r\n") {
            break;
        }
    }
    false
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts with extra `--name value` arguments; waits until it accepts
    /// connections. A free port can be taken by another test's server
    /// between choosing it and binding it: a server that exits (it could not
    /// bind) is started again on another port, and one only counts as up
    /// when the server answering on the port is this process.
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_in(None, None, extra)
    }

    /// Starts on one core (`taskset -c 0`, so with one worker thread), or
    /// like [`Server::start_with`] where `taskset` is missing.
    pub fn start_pinned(extra: &[&str]) -> Server {
        let has_taskset = Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_taskset {
            Server::start_under(&["taskset", "-c", "0"], None, None, extra)
        } else {
            Server::start_with(extra)
        }
    }

    /// Starts with a config file (`config`, before the options, as
    /// redis-server takes it) in working directory `dir` when given.
    pub fn start_in(dir: Option<&Path>, config: Option<&str>, extra: &[&str]) -> Server {
        let srv = Server::start_under(&[], dir, config, extra);
        srv.wait_loaded();
        srv
    }

    /// Like [`Server::start_in`], but returns as soon as the server answers,
    /// possibly still loading its dataset.
    pub fn start_in_loading(dir: &Path, extra: &[&str]) -> Server {
        Server::start_under(&[], Some(dir), None, extra)
    }

    /// Waits until the dataset is loaded (commands no longer get
    /// `-LOADING`); at most a minute.
    pub fn wait_loaded(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8];
            if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() || s.read(&mut buf).is_err() {
                return;
            }
            if !buf.starts_with(b"-LOADING") {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("ferrokv still loading after a minute");
    }

    /// Starts the binary through `wrapper` (a command and its arguments
    /// that run the rest), if any.
    fn start_under(
        wrapper: &[&str],
        dir: Option<&Path>,
        config: Option<&str>,
        extra: &[&str],
    ) -> Server {
        let scratch = dir.is_none().then(|| TempDir::new("cwd"));
        let dir = dir.or(scratch.as_ref().map(|t| t.path()));
        for _ in 0..5 {
            let port = free_port();
            let bin = env!("CARGO_BIN_EXE_ferrokv");
            let mut cmd = match wrapper.split_first() {
                Some((first, rest)) => {
                    let mut c = Command::new(first);
                    c.args(rest).arg(bin);
                    c
                }
                None => Command::new(bin),
            };
            if let Some(dir) = dir {
                cmd.current_dir(dir);
            }
            let mut child = cmd
                .args(config)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn ferrokv");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                if answers_as(port, child.id()) && matches!(child.try_wait(), Ok(None)) {
                    return Server {
                        port,
                        child,
                        scratch,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("ferrokv did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A `redis` crate connection (RESP2).
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A raw TCP connection with a read timeout.
    pub fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw(s)
    }

    /// The server's process id (for /proc checks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process is alive.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Raw(pub TcpStream);

impl Raw {
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    /// Reads until `n` bytes arrived (or the peer closed / timed out).
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.0.read(&mut out[got..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        out.truncate(got);
        out
    }

    /// Sends `bytes` and reads exactly the length of `expected`, returning what came.
    pub fn roundtrip(&mut self, bytes: &[u8], expected_len: usize) -> Vec<u8> {
        self.send(bytes);
        self.read_n(expected_len)
    }

    /// Reads whatever arrives until the peer closes or the timeout hits.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.0.read_to_end(&mut out);
        out
    }

    /// True if the server closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0))
    }

    /// Reads one reply line, up to and with its `\r\n` (less if the peer
    /// closes or the read times out).
    pub fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            match self.0.read(&mut b) {
                Ok(1) => line.push(b[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&line).into_owned()
    }

    /// True if nothing arrives within `ms` milliseconds (the read timeout
    /// is 10 seconds afterwards).
    pub fn nothing_within(&mut self, ms: u64) -> bool {
        self.0
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut b = [0u8; 1];
        let r = self.0.read(&mut b);
        self.0
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        matches!(r, Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
    }
}

/// Encodes a command as a RESP array.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Sends `args` as one command; panics, naming the command, on an error.
pub fn q(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `DEBUG DIGEST` (the server must allow DEBUG).
pub fn digest(c: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap()
}

/// Field `name` of INFO `section`, trimmed, if the section lists it.
pub fn info_opt(c: &mut redis::Connection, section: &str, name: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Field `name` of INFO `section`, or "" where it is not listed (a master
/// has no `master_link_status`, a replica not yet attached no `slave0`).
pub fn info_field(c: &mut redis::Connection, section: &str, name: &str) -> String {
    info_opt(c, section, name).unwrap_or_default()
}

/// Field `name` of INFO `section` as a number; panics where it is missing.
pub fn info_num(c: &mut redis::Connection, section: &str, name: &str) -> i64 {
    let v = info_opt(c, section, name).unwrap_or_else(|| panic!("no {name} in INFO {section}"));
    v.parse()
        .unwrap_or_else(|_| panic!("INFO {section} {name}:{v} is not a number"))
}

/// INFO's `blocked_clients`.
pub fn blocked_clients(c: &mut redis::Connection) -> i64 {
    info_num(c, "clients", "blocked_clients")
}

/// Polls `f` every 20 ms until it holds; panics naming `what` after a
/// minute (generous: the tests also run on a loaded 2-core CI box).
pub fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_within(what, Duration::from_secs(60), f);
}

/// [`wait_for`] with a limit of the caller's, for a wait whose bound is
/// what the test checks.
pub fn wait_within(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `sig` (`-STOP`, `-CONT`, `-TERM`, ...) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// `REPLICAOF 127.0.0.1 <port>` on `replica` (ferrokv or redis-server);
/// waits until its link to the master is up (the first sync done).
pub fn follow(replica: &mut redis::Connection, port: u16) {
    let port = port.to_string();
    assert_eq!(
        q(replica, &["REPLICAOF", "127.0.0.1", &port]),
        redis::Value::Okay
    );
    wait_link_up(replica);
}

/// On the master behind `m`, in one transaction: its replicas dropped, the
/// backlog shrunk to 16 KiB and 160 KiB written, so a replica that comes
/// back has the same history but out of the backlog's reach (a full sync,
/// loaded asynchronously with `repl-diskless-load swapdb`).
pub fn outrun_backlog(m: &mut redis::Connection) {
    let big = "A".repeat(16384);
    let mut p = redis::pipe();
    p.atomic()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .cmd("CONFIG")
        .arg("SET")
        .arg("repl-backlog-size")
        .arg("16384");
    for i in 0..10 {
        p.cmd("SET").arg(format!("big{i}")).arg(&big);
    }
    let _: redis::Value = p.query(m).unwrap();
}

/// A field of the CLIENT LIST line of the client named `name`, if listed.
pub fn client_field(c: &mut redis::Connection, name: &str, field: &str) -> Option<u64> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))?;
    let v = line
        .split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))?;
    v.parse().ok()
}

/// True if the replica behind `r` has its link to the master up.
pub fn link_up(r: &mut redis::Connection) -> bool {
    info_field(r, "replication", "master_link_status") == "up"
}

/// Waits until the replica behind `r` has its link to the master up.
pub fn wait_link_up(r: &mut redis::Connection) {
    wait_for("the link up", || link_up(r));
}

/// Waits until the replica behind `r` applied all the master behind `m`
/// streamed so far (their `master_repl_offset`s are equal).
pub fn wait_applied(m: &mut redis::Connection, r: &mut redis::Connection) {
    wait_for("the replica's offset", || {
        info_num(m, "replication", "master_repl_offset")
            == info_num(r, "replication", "master_repl_offset")
    });
}

/// Waits until the first `replicas` replicas of the master behind `m`
/// acknowledged its whole stream (INFO `slave<i>`'s `offset=`).
pub fn wait_acked(m: &mut redis::Connection, replicas: usize) {
    wait_for("the replicas' acknowledgements", || {
        let off = info_field(m, "replication", "master_repl_offset");
        (0..replicas).all(|i| {
            info_field(m, "replication", &format!("slave{i}")).contains(&format!(",offset={off},"))
        })
    });
}

/// Waits until `n` clients are blocked (so a write cannot race the block).
pub fn wait_blocked(c: &mut redis::Connection, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(c) != n {
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lowers `busy-reply-threshold` to 100 ms, then runs `cmd` (a script that
/// never ends by itself) on a connection of its own; the thread returns
/// the error the script is stopped with.
pub fn spawn_busy_script(
    srv: &Server,
    admin: &mut redis::Connection,
    cmd: redis::Cmd,
) -> std::thread::JoinHandle<String> {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg("100")
        .query(admin)
        .unwrap();
    let mut con = srv.client();
    std::thread::spawn(move || cmd.query::<()>(&mut con).unwrap_err().to_string())
}

/// Sends `probe` until it fails with a BUSY error (the script has run past
/// the threshold); returns that error's text.
pub fn wait_busy(admin: &mut redis::Connection, probe: &redis::Cmd) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match probe.query::<redis::Value>(admin) {
            Err(e) if e.to_string().contains("BUSY") => return e.to_string(),
            _ if Instant::now() > deadline => panic!("never got BUSY"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A raw connection subscribed to every keyevent of database 0 (the server
/// must have been started with keyevent notifications on).
pub fn keyevent_subscriber(srv: &Server) -> Raw {
    let mut sub = srv.raw();
    let want = b"*3\r\n$10\r\npsubscribe\r\n$15\r\n__keyevent@0__*\r\n:1\r\n";
    sub.send(&resp(&[b"PSUBSCRIBE", b"__keyevent@0__*"]));
    assert_eq!(sub.read_n(want.len()), want);
    sub
}

/// Reads pmessage frames until `n` arrived; returns (channel, payload) pairs.
pub fn read_pmessages(raw: &mut Raw, n: usize) -> Vec<(String, String)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < n && Instant::now() < deadline {
        let mut chunk = [0u8; 4096];
        match raw.0.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        out = text
            .split("*4\r\n")
            .filter_map(|f| {
                let parts: Vec<&str> = f.split("\r\n").collect();
                (parts.len() >= 8).then(|| (parts[5].to_string(), parts[7].to_string()))
            })
            .collect();
    }
    out
}

/// A reply in a compact text form: arrays as [..], bulk strings bare, nil.
pub fn show(v: &redis::Value) -> String {
    match v {
        redis::Value::Nil => "nil".into(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", inner.join(" "))
        }
        other => format!("{other:?}"),
    }
}

/// Runs the binary with `args` (and a free port) in `dir` and expects it to exit (within 10
/// seconds): its exit code and what it wrote to stdout and stderr.
pub fn run_to_exit(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    run_to_exit_with_input(dir, args, b"")
}

/// [`run_to_exit`] with `input` on the process's stdin.
pub fn run_to_exit_with_input(dir: &Path, args: &[&str], input: &[u8]) -> (Option<i32>, String) {
    // The port goes after the config file, before the options under test
    // (a `--name` word right after an option without a value is its value).
    let file = args.first().filter(|a| !a.starts_with('-') || **a == "-");
    let options = &args[file.is_some() as usize..];
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .current_dir(dir)
        .args(file)
        .args(["--port", &free_port().to_string(), "--bind", "127.0.0.1"])
        .args(options)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrokv");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferrokv {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    (status.code(), text)
}

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrokv-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `text` to `name` (relative to the directory; parents created).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A reference redis-server of the test's own (DEBUG enabled), killed on
/// drop; `None` when redis-server is not installed or does not answer.
pub struct Reference {
    child: Child,
    pub port: u16,
    /// Its working directory, of its own: a `dump.rdb` left wherever the
    /// tests run must not be loaded into it.
    dir: PathBuf,
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn reference() -> Option<Reference> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let dir = std::env::temp_dir().join(format!("ferrokv-ref-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--enable-debug-command", "yes"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let r = Reference { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            && let Ok(mut con) = c.get_connection()
            && redis::cmd("PING").query::<String>(&mut con).is_ok()
        {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
