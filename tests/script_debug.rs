//! SCRIPT DEBUG and the Lua debugger (what `redis-cli --ldb` and
//! `--ldb-sync-mode` drive), over raw RESP, with Redis 7.0.15's exact
//! replies: each stop is a multi-bulk of status lines, the session ends with
//! `<endsession>` then the script's reply, and the connection closes.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{Raw, Server, q, resp};

/// Reads one complete reply, as its raw bytes.
fn reply(raw: &mut Raw) -> Vec<u8> {
    let mut out = Vec::new();
    read_one(raw, &mut out);
    out
}

fn read_one(raw: &mut Raw, out: &mut Vec<u8>) {
    let start = out.len();
    let mut b = [0u8; 1];
    while !out[start..].ends_with(b"\r\n") {
        match raw.0.read(&mut b) {
            Ok(1) => out.push(b[0]),
            r => panic!(
                "connection ended mid-reply ({r:?}): {:?}",
                String::from_utf8_lossy(out)
            ),
        }
    }
    let line = String::from_utf8_lossy(&out[start + 1..out.len() - 2]).into_owned();
    match out[start] {
        b'*' => {
            for _ in 0..line.parse::<i64>().unwrap().max(0) {
                read_one(raw, out);
            }
        }
        b'$' => {
            let n = line.parse::<i64>().unwrap();
            if n >= 0 {
                out.extend_from_slice(&raw.read_n(n as usize + 2));
            }
        }
        _ => {}
    }
}

/// A multi-bulk of status lines, as the debugger sends its logs.
fn logs(lines: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", lines.len()).into_bytes();
    for l in lines {
        v.extend_from_slice(format!("+{l}\r\n").as_bytes());
    }
    v
}

fn send(raw: &mut Raw, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.send(&resp(&args));
    reply(raw)
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts a session on a new connection: SCRIPT DEBUG `mode`, then EVAL.
fn session(srv: &Server, mode: &str, script: &str, keys: &[&str]) -> (Raw, Vec<u8>) {
    let mut raw = srv.raw();
    assert_eq!(send(&mut raw, &["SCRIPT", "DEBUG", mode]), b"+OK\r\n");
    let n = keys.len().to_string();
    let mut args = vec!["EVAL", script, &n];
    args.extend_from_slice(keys);
    let first = send(&mut raw, &args);
    (raw, first)
}

#[test]
fn script_debug_modes_and_their_errors() {
    let srv = Server::start();
    let mut raw = srv.raw();
    for mode in ["YES", "sync", "No"] {
        assert_eq!(send(&mut raw, &["SCRIPT", "DEBUG", mode]), b"+OK\r\n");
    }
    assert_eq!(
        show(&send(&mut raw, &["SCRIPT", "DEBUG", "maybe"])),
        "-ERR Use SCRIPT DEBUG YES/SYNC/NO\r\n"
    );
    assert_eq!(
        show(&send(&mut raw, &["SCRIPT", "DEBUG"])),
        "-ERR wrong number of arguments for 'script|debug' command\r\n"
    );
    send(&mut raw, &["MULTI"]);
    assert_eq!(send(&mut raw, &["SCRIPT", "DEBUG", "yes"]), b"+QUEUED\r\n");
    assert_eq!(
        show(&send(&mut raw, &["EXEC"])),
        "*1\r\n-ERR SCRIPT DEBUG must be called outside a pipeline\r\n"
    );
    // Not from a script.
    let refused = show(&send(
        &mut raw,
        &["EVAL", "return redis.call('script','debug','yes')", "0"],
    ));
    assert!(
        refused.contains("This Redis command is not allowed from script"),
        "{refused}"
    );
    // NO: EVAL runs as usual, on the same connection.
    assert_eq!(send(&mut raw, &["EVAL", "return 5", "0"]), b":5\r\n");
    assert_eq!(send(&mut raw, &["SCRIPT", "DEBUG", "sync"]), b"+OK\r\n");
    for cmd in ["EVALSHA", "EVALSHA_RO"] {
        assert_eq!(
            show(&send(
                &mut raw,
                &[cmd, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"]
            )),
            "-ERR Please use EVAL instead of EVALSHA for debugging\r\n"
        );
    }
    assert_eq!(send(&mut raw, &["SCRIPT", "DEBUG", "no"]), b"+OK\r\n");
    assert_eq!(send(&mut raw, &["EVAL", "return 6", "0"]), b":6\r\n");
    // Outside a session the debugger functions do nothing.
    assert_eq!(
        send(
            &mut raw,
            &["EVAL", "redis.debug(1); return redis.breakpoint()", "0"]
        ),
        b"$-1\r\n"
    );
}

#[test]
fn sync_session_steps_lists_prints_and_keeps_its_writes() {
    let srv = Server::start();
    let script = "local a = 1\nlocal b = {1,2,'x',{y=3}}\nredis.call('set',KEYS[1],a)\nreturn redis.call('get', KEYS[1])\n";
    let (mut raw, first) = session(&srv, "sync", script, &["k"]);
    assert_eq!(
        show(&first),
        show(&logs(&[
            "* Stopped at 1, stop reason = step over",
            "-> 1   local a = 1"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["s"])),
        show(&logs(&[
            "* Stopped at 2, stop reason = step over",
            "-> 2   local b = {1,2,'x',{y=3}}"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["step"])),
        show(&logs(&[
            "* Stopped at 3, stop reason = step over",
            "-> 3   redis.call('set',KEYS[1],a)"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["list", "2", "1"])),
        show(&logs(&[
            "   1   local a = 1",
            "   2   local b = {1,2,'x',{y=3}}",
            "-> 3   redis.call('set',KEYS[1],a)"
        ]))
    );
    assert!(send(&mut raw, &["w"]).starts_with(b"*4\r\n"));
    assert_eq!(
        show(&send(&mut raw, &["p"])),
        show(&logs(&[
            "<value> a = 1",
            "<value> b = {1; 2; \"x\"; {[\"y\"]=3}}"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["print", "KEYS"])),
        show(&logs(&["<value> {\"k\"}"]))
    );
    assert_eq!(
        show(&send(&mut raw, &["p", "nosuch"])),
        show(&logs(&["No such variable."]))
    );
    assert_eq!(
        show(&send(&mut raw, &["e", "1", "+", "1"])),
        show(&logs(&["<retval> 2"]))
    );
    assert_eq!(
        show(&send(&mut raw, &["eval", "error('boom')"])),
        show(&logs(&["<error> ldb_eval:1: boom"]))
    );
    assert_eq!(
        show(&send(&mut raw, &["r", "ping"])),
        show(&logs(&["<redis> ping", "<reply> \"+PONG\""]))
    );
    assert_eq!(
        show(&send(&mut raw, &["redis", "nosuch"])),
        show(&logs(&[
            "<redis> nosuch",
            "<error> Unknown Redis command called from script"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["x"])),
        show(&logs(&[
            "<error> Unknown Redis Lua debugger command or wrong number of arguments."
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["m", "10"])),
        show(&logs(&["<value> replies are truncated at 60 bytes."]))
    );
    assert_eq!(
        show(&send(&mut raw, &["e", "string.rep('y', 100)"])),
        show(&logs(&[&format!("<retval> \"{} ...", "y".repeat(50))]))
    );
    assert_eq!(
        show(&send(&mut raw, &["n"])),
        show(&logs(&[
            "<redis> set k 1",
            "<reply> \"+OK\"",
            "* Stopped at 4, stop reason = step over",
            "-> 4   return redis.call('get', KEYS[1])"
        ]))
    );
    // The end: what is left to log, <endsession>, the reply, then close.
    assert_eq!(
        show(&send(&mut raw, &["next"])),
        show(&logs(&["<redis> get k", "<reply> \"1\"", "<endsession>"]))
    );
    assert_eq!(reply(&mut raw), b"$1\r\n1\r\n");
    assert!(raw.read_to_close().is_empty());
    let mut c = srv.client();
    assert_eq!(
        q(&mut c, &["GET", "k"]),
        redis::Value::BulkString(b"1".to_vec())
    );
}

#[test]
fn breakpoints_redis_breakpoint_debug_and_trace() {
    let srv = Server::start();
    let script = "local function f(x)\n  local y = x * 2\n  redis.debug('in f', y)\n  redis.breakpoint()\n  return y\nend\nlocal r = f(21)\nreturn r\n";
    let (mut raw, first) = session(&srv, "sync", script, &[]);
    assert!(show(&first).contains("* Stopped at 6, stop reason = step over"));
    assert_eq!(
        show(&send(&mut raw, &["b", "2"])),
        show(&logs(&[
            "   1   local function f(x)",
            "  #2     local y = x * 2",
            "   3     redis.debug('in f', y)"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["b", "99", "x"])),
        show(&logs(&["Wrong line number.", "Invalid argument:'x'"]))
    );
    assert_eq!(
        show(&send(&mut raw, &["b"])),
        show(&logs(&["1 breakpoints set:", "  #2     local y = x * 2"]))
    );
    assert_eq!(
        show(&send(&mut raw, &["c"])),
        show(&logs(&[
            "* Stopped at 2, stop reason = break point",
            "->#2     local y = x * 2"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["b", "-2"])),
        show(&logs(&["Breakpoint removed."]))
    );
    assert_eq!(
        show(&send(&mut raw, &["c"])),
        show(&logs(&[
            "<debug> line 3: \"in f\", 42",
            "* Stopped at 5, stop reason = redis.breakpoint() called",
            "-> 5     return y"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["t"])),
        show(&logs(&[
            "In f:",
            "-> 5     return y",
            "From top level:",
            "   7   local r = f(21)"
        ]))
    );
    assert_eq!(
        show(&send(&mut raw, &["c"])),
        show(&logs(&["<endsession>"]))
    );
    assert_eq!(reply(&mut raw), b":42\r\n");
}

#[test]
fn abort_and_script_errors_end_the_session() {
    let srv = Server::start();
    let (mut raw, _) = session(&srv, "sync", "local x = 1\nreturn x", &[]);
    assert_eq!(
        show(&send(&mut raw, &["a"])),
        show(&logs(&["<endsession>"]))
    );
    assert_eq!(
        show(&reply(&mut raw)),
        "-ERR script aborted for user request script: 81d3cc25cd49aae96a424764ed1ee8c44c88ce76, on @user_script:1.\r\n"
    );
    assert!(raw.read_to_close().is_empty());
    // A compile error ends the session at once.
    let (mut raw, first) = session(&srv, "sync", "syntax error", &[]);
    assert_eq!(show(&first), show(&logs(&["<endsession>"])));
    assert!(show(&reply(&mut raw)).starts_with("-ERR Error compiling script"));
    // A protocol error (the debugger takes multi-bulks only) too.
    let (mut raw, _) = session(&srv, "sync", "redis.call('set','pk','1')\nreturn 1", &[]);
    raw.send(b"help\r\n");
    assert_eq!(show(&reply(&mut raw)), show(&logs(&["<endsession>"])));
    assert!(show(&reply(&mut raw)).starts_with("-ERR protocol error script: "));
    let mut c = srv.client();
    assert_eq!(q(&mut c, &["EXISTS", "pk"]), redis::Value::Int(0));
}

/// The suite's "Test scripting debug protocol parsing".
#[test]
fn commands_with_nul_bytes_are_unknown() {
    let srv = Server::start();
    let (mut raw, _) = session(&srv, "sync", "return 'hello'", &[]);
    for cmd in [
        &b"'hello\0world'"[..],
        b"'hello\0'",
        b"'\0hello'",
        b"'\0hello\0'",
    ] {
        raw.send(&resp(&[cmd]));
        assert_eq!(
            show(&reply(&mut raw)),
            show(&logs(&[
                "<error> Unknown Redis Lua debugger command or wrong number of arguments."
            ]))
        );
    }
    raw.send(&resp(&[b"c"]));
    assert_eq!(show(&reply(&mut raw)), show(&logs(&["<endsession>"])));
    assert_eq!(reply(&mut raw), b"$5\r\nhello\r\n");
}

/// The suite's "Test scripting debug lua stack overflow": a `redis`
/// command with 100 arguments, then the client goes away mid-session.
#[test]
fn a_redis_command_with_100_arguments_then_a_reconnect() {
    let srv = Server::start();
    let (mut raw, _) = session(&srv, "sync", "return 'hello'", &[]);
    let mut cmd = b"*101\r\n$5\r\nredis\r\n".to_vec();
    cmd.extend_from_slice(&b"$4\r\ntest\r\n".repeat(100));
    raw.send(&cmd);
    let got = show(&reply(&mut raw));
    assert_eq!(
        got,
        show(&logs(&[
            "<redis> test test test test test test test test test test ... (89 more)",
            "<error> Unknown Redis command called from script"
        ]))
    );
    drop(raw);
    let mut c = srv.client();
    assert_eq!(
        q(&mut c, &["PING"]),
        redis::Value::SimpleString("PONG".into())
    );
}

/// A client that leaves while stopped: the script runs on to its end
/// (SYNC keeps what it did) and nothing stays parked.
#[test]
fn a_client_gone_mid_session_lets_the_script_finish() {
    let srv = Server::start();
    let script = "redis.call('set','g','1')\nredis.call('incr','g')\nreturn 1";
    let (mut raw, _) = session(&srv, "sync", script, &[]);
    send(&mut raw, &["s"]);
    drop(raw);
    let mut c = srv.client();
    assert_eq!(
        q(&mut c, &["GET", "g"]),
        redis::Value::BulkString(b"2".to_vec())
    );
    // The script thread is free: another session and a plain EVAL run.
    let (mut raw, _) = session(&srv, "sync", "return 7", &[]);
    send(&mut raw, &["c"]);
    assert_eq!(reply(&mut raw), b":7\r\n");
    assert_eq!(q(&mut c, &["EVAL", "return 8", "0"]), redis::Value::Int(8));
}

/// While stopped, the script is a running script to other clients: they
/// wait, then get BUSY; SCRIPT KILL ends a session that did not write.
#[test]
fn other_clients_get_busy_and_script_kill_ends_a_session() {
    let srv = Server::start_with(&["--busy-reply-threshold", "200"]);
    let (mut raw, _) = session(&srv, "sync", "local x = 1\nreturn x", &[]);
    let mut other = srv.raw();
    std::thread::sleep(Duration::from_millis(300));
    other.send(&resp(&[b"GET", b"x"]));
    assert!(show(&reply(&mut other)).starts_with("-BUSY Redis is busy running a script."));
    other.send(&resp(&[b"SCRIPT", b"KILL"]));
    assert_eq!(reply(&mut other), b"+OK\r\n");
    assert_eq!(show(&reply(&mut raw)), show(&logs(&["<endsession>"])));
    assert!(show(&reply(&mut raw)).starts_with("-ERR Script killed by user with SCRIPT KILL..."));
    other.send(&resp(&[b"PING"]));
    assert_eq!(reply(&mut other), b"+PONG\r\n");
}

/// SCRIPT DEBUG YES: whatever the session wrote is undone when it ends,
/// and none of it is propagated.
#[test]
fn a_yes_session_leaves_the_dataset_as_it_was() {
    let srv = Server::start_with(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    q(&mut c, &["SET", "s", "v"]);
    q(&mut c, &["PEXPIRE", "s", "100000"]);
    q(&mut c, &["HSET", "h", "f", "1", "g", "2"]);
    q(&mut c, &["RPUSH", "l", "a", "b"]);
    q(&mut c, &["SET", "gone", "x"]);
    let before = common::digest(&mut c);
    let pexpire = |c: &mut redis::Connection| match q(c, &["PEXPIRETIME", "s"]) {
        redis::Value::Int(n) => n,
        v => panic!("{v:?}"),
    };
    let at = pexpire(&mut c);
    let script = "redis.call('set','s','changed')\nredis.call('hset','h','f','9','n','new')\nredis.call('lpop','l')\nredis.call('del','gone')\nredis.call('set','fresh','1')\nredis.call('rename','l','l2')\nredis.call('copy','h','h3')\nreturn redis.call('get','s')\n";
    let (mut raw, _) = session(&srv, "yes", script, &[]);
    for _ in 0..3 {
        send(&mut raw, &["s"]);
    }
    // FLUSHDB could not be undone: refused in a YES session.
    let flush = show(&send(&mut raw, &["r", "flushdb"]));
    assert!(
        flush.contains("<error> This command can't be rolled back"),
        "{flush}"
    );
    send(&mut raw, &["c"]);
    assert_eq!(reply(&mut raw), b"$7\r\nchanged\r\n");
    assert!(raw.read_to_close().is_empty());
    assert_eq!(common::digest(&mut c), before);
    assert_eq!(pexpire(&mut c), at);
    assert_eq!(
        q(&mut c, &["EXISTS", "fresh", "l2", "h3"]),
        redis::Value::Int(0)
    );
    // A session the client leaves is undone as well.
    let (mut raw, _) = session(&srv, "yes", "redis.call('set','s','again')\nreturn 1", &[]);
    send(&mut raw, &["s"]);
    drop(raw);
    common::wait_for(
        "the session to end",
        || matches!(q(&mut c, &["GET", "s"]), redis::Value::BulkString(ref v) if v == b"v"),
    );
    assert_eq!(common::digest(&mut c), before);
}

/// The same bytes to redis-server 7.0.15 and to ferrokv: the same replies.
#[test]
fn a_sync_session_answers_as_redis_does() {
    let Some(reference) = common::reference() else {
        eprintln!("redis-server not available: skipped");
        return;
    };
    let srv = Server::start();
    let script = "local t = {a=1, [3]=false}\nlocal s = 'he\"llo\\n'\nlocal n = {1, {2}}\nredis.call('set','dk','1')\nredis.debug(t, s, nil)\nfor i=1,2 do\n  n[i] = i\nend\nreturn {n[1], 'x'}\n";
    let steps: &[&[&str]] = &[
        &["help"],
        &["s"],
        &["s"],
        &["s"],
        &["p"],
        &["p", "s"],
        &["l"],
        &["l", "0", "1"],
        &["list", "100"],
        &["w"],
        &["b", "7", "8", "99", "-1", "-x", "-0"],
        &["b"],
        &["b", "-7"],
        &["b"],
        &["t"],
        &["m"],
        &["m", "-1"],
        &["m", "x"],
        &["e", "{1, nil, 3}"],
        &["e", "{1234567, 0.1 + 0.2, 1/0, -1/0, 2^53, true}"],
        &["e", "redis.setresp(3)"],
        &["r", "hgetall", "nohash"],
        &["e", "redis.setresp(2)"],
        &["e", "return", "{['1']=5}"],
        &["e", "'a\\0b\\1'"],
        &["e", "x"],
        &["e", "syntax error here"],
        &["r", "set", "dk", "2"],
        &["r", "hgetall", "dk"],
        &["r", "get"],
        &["r", "lrange", "nolist", "0", "-1"],
        &["r", "get", "nokey"],
        &["r"],
        &["PING"],
        &["s"],
        &["c"],
        &["p"],
        &["c"],
    ];
    let run = |port: u16, script: &str, steps: &[&[&str]]| -> Vec<String> {
        let mut raw = Raw(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
        raw.0
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = vec![show(&send(&mut raw, &["SCRIPT", "DEBUG", "SYNC"]))];
        got.push(show(&send(&mut raw, &["EVAL", script, "0"])));
        for step in steps {
            got.push(show(&send(&mut raw, step)));
            if got.last().unwrap().contains("<endsession>") {
                got.push(show(&reply(&mut raw)));
                break;
            }
        }
        got
    };
    let sessions: &[(&str, &[&[&str]])] = &[
        (script, steps),
        // Line breaks: CRLF source lines, trailing breaks, a shebang line.
        (
            "local x = 'a'\r\nreturn x\r\n\r\n",
            &[&["w"], &["r", "set", "a\r\nb", "1"], &["s"], &["c"]],
        ),
        (
            "#!lua flags=no-writes\nreturn redis.call('set','x','1')",
            &[&["w"], &["s"]],
        ),
    ];
    for (script, steps) in sessions {
        let want = run(reference.port, script, steps);
        let got = run(srv.port, script, steps);
        assert!(
            want.last().unwrap().starts_with(['*', '$', '-']),
            "{want:?}"
        );
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(g, w, "reply {i} differs");
        }
        assert_eq!(got.len(), want.len());
    }
}

/// A script that runs on for `busy-reply-threshold` without stopping is
/// stopped, so an endless loop under `continue` can still be looked at.
#[test]
fn an_endless_loop_stops_once_the_threshold_passes() {
    let srv = Server::start_with(&["--busy-reply-threshold", "200"]);
    let (mut raw, _) = session(
        &srv,
        "yes",
        "local i = 0\nwhile true do\n  i = i + 1\nend\n",
        &[],
    );
    assert_eq!(
        show(&send(&mut raw, &["c"])),
        show(&logs(&[
            "* Stopped at 3, stop reason = timeout reached, infinite loop?",
            "-> 3     i = i + 1"
        ]))
    );
    assert!(show(&send(&mut raw, &["p"])).starts_with("*1\r\n+<value> i = "));
    assert_eq!(
        show(&send(&mut raw, &["abort"])),
        show(&logs(&["<endsession>"]))
    );
    assert_eq!(
        show(&reply(&mut raw)),
        "-ERR script aborted for user request script: 206c984a3f840124232835b51c0881a3b7aad363, on @user_script:3.\r\n"
    );
}

/// A debugger waiting for its user is not a stuck script: neither the
/// watchdog nor the slow-script warning fires while it waits.
#[test]
fn a_waiting_debugger_is_not_reported_as_stuck() {
    let dir = common::TempDir::new("ldb-watchdog");
    let log = dir.path().join("log");
    let srv = Server::start_in(
        Some(dir.path()),
        None,
        &[
            "--logfile",
            log.to_str().unwrap(),
            "--busy-reply-threshold",
            "100",
        ],
    );
    let mut c = srv.client();
    q(&mut c, &["CONFIG", "SET", "watchdog-period", "200"]);
    let (mut raw, _) = session(&srv, "sync", "local x = 1\nreturn x", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    send(&mut raw, &["c"]);
    assert_eq!(reply(&mut raw), b":1\r\n");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("WATCHDOG TIMER EXPIRED"), "{text}");
    assert!(!text.contains("Slow script detected"), "{text}");
}

/// A YES session's changes are not announced (they are undone); a SYNC
/// session's are, as any script's.
#[test]
fn a_yes_session_raises_no_keyspace_events() {
    let srv = Server::start_with(&["--notify-keyspace-events", "KEA"]);
    let mut sub = common::keyevent_subscriber(&srv);
    for (mode, key) in [("yes", "yes-key"), ("sync", "ev")] {
        let script = format!("redis.call('set','{key}','1')\nreturn 1");
        let (mut raw, _) = session(&srv, mode, &script, &[]);
        send(&mut raw, &["c"]);
        assert_eq!(reply(&mut raw), b":1\r\n");
    }
    // The first event to arrive is the SYNC session's.
    let got = common::read_pmessages(&mut sub, 1);
    assert_eq!(got[0], ("__keyevent@0__:set".into(), "ev".into()));
}
