//! A runaway script must not make the server deaf: scripts run on their
//! own thread, so even with one worker thread (the server started under
//! `taskset -c 0`) every connection is read, other clients get BUSY once
//! `busy-reply-threshold` has passed, and SCRIPT KILL, FUNCTION KILL and
//! SHUTDOWN NOSAVE are served. Exact replies as Redis 7.0 gives them.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Raw, Server, resp};

const BUSY: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
const UNKILLABLE: &str = "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
/// SHA1 of `while true do end`.
const SPIN_SHA: &str = "694a5fe1ddb97a4c6a1bf299d9537c7d3d0f84e7";

/// Reads one reply; simple, error and integer replies and bulk strings
/// come back as their first line (a bulk string as `$<its text>`).
fn reply(raw: &mut Raw) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match raw.0.read(&mut b) {
            Ok(1) => line.push(b[0]),
            r => panic!(
                "no reply (got {:?}, read: {r:?})",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    line.truncate(line.len() - 2);
    let text = String::from_utf8_lossy(&line).into_owned();
    if let Some(n) = text.strip_prefix('$')
        && let Ok(n) = n.parse::<usize>()
    {
        let body = raw.read_n(n + 2);
        return format!("${}", String::from_utf8_lossy(&body[..n]));
    }
    text
}

fn call(raw: &mut Raw, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.send(&resp(&args));
    reply(raw)
}

/// A server on one core with a 100 ms BUSY threshold.
fn one_core() -> Server {
    let srv = Server::start_pinned(&[]);
    let mut admin = srv.raw();
    assert_eq!(
        call(
            &mut admin,
            &["CONFIG", "SET", "busy-reply-threshold", "100"]
        ),
        "+OK"
    );
    srv
}

/// Sends `args` on a connection of its own and leaves the reply unread.
fn start(srv: &Server, args: &[&str]) -> Raw {
    let mut raw = srv.raw();
    raw.0
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.send(&resp(&args));
    raw
}

/// PINGs from new connections until one answers `want` (the script has
/// passed the threshold); every new connection must answer something.
fn wait_for(srv: &Server, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = call(&mut srv.raw(), &["PING"]);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "never got {want}, last {got}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn runaway_script_on_one_core_others_get_busy_and_script_kill_stops_it() {
    let srv = one_core();
    let mut runner = start(&srv, &["EVAL", "while true do end", "0"]);
    wait_for(&srv, BUSY);
    // Every new connection is read and answered, whichever worker.
    for _ in 0..6 {
        let mut c = srv.raw();
        assert_eq!(call(&mut c, &["PING"]), BUSY);
        assert_eq!(call(&mut c, &["GET", "x"]), BUSY);
        assert_eq!(call(&mut c, &["FUNCTION", "KILL"]), BUSY);
    }
    let mut admin = srv.raw();
    assert_eq!(call(&mut admin, &["SCRIPT", "KILL"]), "+OK");
    assert_eq!(
        reply(&mut runner),
        format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {SPIN_SHA}, on @user_script:1."
        )
    );
    assert_eq!(call(&mut admin, &["PING"]), "+PONG");
    // The script's own connection is usable after its script was killed.
    assert_eq!(call(&mut runner, &["PING"]), "+PONG");
    assert_eq!(
        call(&mut admin, &["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now."
    );
}

/// Redis's "Timedout read-only scripts can be killed by SCRIPT KILL even
/// when use pcall": once killed, the script stops at its next line, also
/// outside the `pcall` that catches the kill error where it loops.
#[test]
fn script_kill_stops_a_script_that_catches_errors_with_pcall() {
    let srv = one_core();
    let body = "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end";
    let mut runner = start(&srv, &["EVAL", body, "0"]);
    wait_for(&srv, BUSY);
    let mut admin = srv.raw();
    assert_eq!(call(&mut admin, &["SCRIPT", "KILL"]), "+OK");
    let err = reply(&mut runner);
    assert!(
        err.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{err}"
    );
    assert_eq!(call(&mut admin, &["PING"]), "+PONG");
    // The VM's own hook is back: the next script runs to its end.
    assert_eq!(
        call(
            &mut runner,
            &["EVAL", "for i=1,300000 do end return 1", "0"]
        ),
        ":1"
    );
}

#[test]
fn runaway_function_on_one_core_is_stopped_by_function_kill() {
    let srv = one_core();
    let mut admin = srv.raw();
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(call(&mut admin, &["FUNCTION", "LOAD", lib]), "$spin");
    let mut runner = start(&srv, &["FCALL", "spin", "0"]);
    wait_for(&srv, BUSY_FUNCTION);
    assert_eq!(call(&mut admin, &["SCRIPT", "KILL"]), BUSY_FUNCTION);
    assert_eq!(call(&mut admin, &["FUNCTION", "KILL"]), "+OK");
    assert_eq!(
        reply(&mut runner),
        "-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."
    );
    assert_eq!(call(&mut admin, &["PING"]), "+PONG");
}

#[test]
fn write_script_is_unkillable_others_get_busy_and_shutdown_nosave_stops_the_server() {
    let mut srv = one_core();
    let _runner = start(
        &srv,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'y') while true do end",
            "1",
            "x",
        ],
    );
    wait_for(&srv, BUSY);
    let mut admin = srv.raw();
    assert_eq!(call(&mut admin, &["SCRIPT", "KILL"]), UNKILLABLE);
    assert_eq!(call(&mut srv.raw(), &["PING"]), BUSY);
    // Only SHUTDOWN NOSAVE may stop a server running a timed-out script.
    assert_eq!(call(&mut admin, &["SHUTDOWN"]), BUSY);
    admin.send(&resp(&[b"SHUTDOWN", b"NOSAVE"]));
    assert!(admin.is_closed());
    // Gone at once, as Redis's suite checks: nothing accepts any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", srv.port)).is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.alive() {
        assert!(Instant::now() < deadline, "server still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Redis's "MULTI and script timeout": MULTI is served while the script
/// runs, a command refused with BUSY fails the transaction.
#[test]
fn multi_during_busy_script_fails_the_transaction() {
    let srv = one_core();
    let mut admin = srv.raw();
    assert_eq!(call(&mut admin, &["SET", "xx", "1"]), "+OK");
    let mut runner = start(&srv, &["EVAL", "while true do end", "0"]);
    wait_for(&srv, BUSY);
    let mut c = srv.raw();
    assert_eq!(call(&mut c, &["MULTI"]), "+OK");
    assert_eq!(call(&mut c, &["INCR", "xx"]), BUSY);
    assert_eq!(call(&mut admin, &["SCRIPT", "KILL"]), "+OK");
    assert!(reply(&mut runner).contains("Script killed by user"));
    assert_eq!(call(&mut c, &["INCR", "xx"]), "+QUEUED");
    assert_eq!(
        call(&mut c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(call(&mut admin, &["GET", "xx"]), "$1");
    assert_eq!(call(&mut c, &["PING", "asdf"]), "$asdf");
}

/// Redis's "EXEC and script timeout": an EXEC refused with BUSY discards
/// the transaction.
#[test]
fn exec_during_busy_script_discards_the_transaction() {
    let srv = one_core();
    let mut admin = srv.raw();
    assert_eq!(call(&mut admin, &["SET", "xx", "1"]), "+OK");
    let mut c = srv.raw();
    assert_eq!(call(&mut c, &["MULTI"]), "+OK");
    assert_eq!(call(&mut c, &["INCR", "xx"]), "+QUEUED");
    let mut runner = start(&srv, &["EVAL", "while true do end", "0"]);
    wait_for(&srv, BUSY);
    assert_eq!(
        call(&mut c, &["EXEC"]),
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &BUSY[1..]
        )
    );
    assert_eq!(call(&mut admin, &["SCRIPT", "KILL"]), "+OK");
    assert!(reply(&mut runner).contains("Script killed by user"));
    assert_eq!(call(&mut admin, &["GET", "xx"]), "$1");
    assert_eq!(call(&mut c, &["PING", "asdf"]), "$asdf");
}

/// Every refusal of EXEC is an EXECABORT in Redis 7.0, also without MULTI
/// (checked against redis-server 7.0.15); with WATCHes the EXEC waits for
/// the script (unwatching needs the shards it may hold) and then runs.
#[test]
fn exec_without_multi_during_busy_script_is_an_execabort() {
    let srv = one_core();
    let mut c = srv.raw();
    let mut w = srv.raw();
    assert_eq!(call(&mut w, &["WATCH", "wk"]), "+OK");
    let mut runner = start(&srv, &["EVAL", "while true do end", "0"]);
    wait_for(&srv, BUSY);
    assert_eq!(
        call(&mut c, &["EXEC"]),
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &BUSY[1..]
        )
    );
    let args: Vec<&[u8]> = vec![b"EXEC"];
    w.send(&resp(&args));
    let mut admin = srv.raw();
    assert_eq!(call(&mut admin, &["SCRIPT", "KILL"]), "+OK");
    assert!(reply(&mut runner).contains("Script killed by user"));
    assert_eq!(reply(&mut w), "-ERR EXEC without MULTI");
    assert_eq!(call(&mut c, &["PING"]), "+PONG");
}

/// A client blocked on a key the running script holds times out and
/// leaves meanwhile (its waiter is removed once the script ends), a client
/// with WATCHes disconnects, another WATCHes: none of it stops the only
/// worker thread from answering.
#[test]
fn clients_leaving_keys_the_script_holds_do_not_stop_the_worker() {
    let srv = one_core();
    let mut blocked = start(&srv, &["BLPOP", "x", "0.3"]);
    let mut watcher = srv.raw();
    assert_eq!(call(&mut watcher, &["WATCH", "x"]), "+OK");
    let mut runner = start(
        &srv,
        &[
            "EVAL",
            "redis.call('get', KEYS[1]) while true do end",
            "1",
            "x",
        ],
    );
    wait_for(&srv, BUSY);
    drop(watcher);
    // Its timeout passes while the script runs.
    std::thread::sleep(Duration::from_millis(400));
    let mut late = start(&srv, &["WATCH", "x"]);
    for _ in 0..3 {
        assert_eq!(call(&mut srv.raw(), &["PING"]), BUSY);
    }
    assert_eq!(call(&mut srv.raw(), &["SCRIPT", "KILL"]), "+OK");
    assert!(reply(&mut runner).contains("Script killed by user"));
    assert_eq!(reply(&mut blocked), "*-1");
    // WATCH waited for the script (it needs the key's shard).
    assert_eq!(reply(&mut late), "+OK");
    assert_eq!(call(&mut srv.raw(), &["PING"]), "+PONG");
}

/// Scripts and plain commands on the same keys from many connections, on
/// one core: everything completes (a command that passed the script check
/// never waits on a shard a script holds, nor a script on a command).
#[test]
fn scripts_and_commands_on_one_core_all_complete() {
    let srv = Server::start_pinned(&[]);
    let rounds = 300;
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let mut con = srv.client();
            con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            std::thread::spawn(move || {
                for i in 0..rounds {
                    let k = format!("k{}", (i + t) % 10);
                    if t % 2 == 0 {
                        let _: i64 = redis::cmd("EVAL")
                            .arg("redis.call('INCR', KEYS[1]) return redis.call('INCR', KEYS[2])")
                            .arg(2)
                            .arg(&k)
                            .arg("total")
                            .query(&mut con)
                            .unwrap();
                    } else {
                        let _: (i64, i64) = redis::pipe()
                            .cmd("INCR")
                            .arg(&k)
                            .cmd("INCR")
                            .arg("total")
                            .query(&mut con)
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut con = srv.client();
    let total: i64 = redis::cmd("GET").arg("total").query(&mut con).unwrap();
    assert_eq!(total, 6 * rounds as i64);
}

/// What scripts do for other clients is unchanged by their running on the
/// script thread: a push inside a script (alone or inside MULTI) serves a
/// blocked BLPOP, and a script's write breaks another client's WATCH.
#[test]
fn script_writes_serve_blocked_clients_and_break_watches() {
    let srv = Server::start_pinned(&[]);
    let mut admin = srv.client();
    let push = "redis.call('rpush', KEYS[1], ARGV[1]) return 1";
    let mut blocked = start(&srv, &["BLPOP", "q", "5"]);
    common::wait_blocked(&mut admin, 1);
    let mut c = srv.raw();
    assert_eq!(call(&mut c, &["EVAL", push, "1", "q", "a"]), ":1");
    assert_eq!(reply(&mut blocked), "*2");
    assert_eq!(reply(&mut blocked), "$q");
    assert_eq!(reply(&mut blocked), "$a");
    blocked.send(&resp(&[b"BLPOP", b"q", b"5"]));
    common::wait_blocked(&mut admin, 1);
    assert_eq!(call(&mut c, &["MULTI"]), "+OK");
    assert_eq!(call(&mut c, &["EVAL", push, "1", "q", "b"]), "+QUEUED");
    assert_eq!(call(&mut c, &["EXEC"]), "*1");
    assert_eq!(reply(&mut c), ":1");
    assert_eq!(reply(&mut blocked), "*2");
    assert_eq!(reply(&mut blocked), "$q");
    assert_eq!(reply(&mut blocked), "$b");

    let mut w = srv.raw();
    assert_eq!(call(&mut w, &["WATCH", "x"]), "+OK");
    assert_eq!(call(&mut c, &["EVAL", push, "1", "x", "1"]), ":1");
    assert_eq!(call(&mut w, &["MULTI"]), "+OK");
    assert_eq!(call(&mut w, &["LLEN", "x"]), "+QUEUED");
    assert_eq!(call(&mut w, &["EXEC"]), "*-1");
}

/// Redis's "Timedout scripts and unblocked command": HELLO (allowed while
/// a script is busy) is served during the script and changes what the
/// script sees; the client blocked on the script's key is served once the
/// script has finished, with what the script left last.
#[test]
fn hello_is_served_during_a_busy_script_and_blocked_clients_wait_for_its_end() {
    let srv = Server::start_pinned(&["--enable-debug-command", "yes"]);
    let mut admin = srv.raw();
    assert_eq!(
        call(
            &mut admin,
            &["CONFIG", "SET", "busy-reply-threshold", "100"]
        ),
        "+OK"
    );
    assert_eq!(
        call(&mut admin, &["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]),
        "+OK"
    );
    let mut blocked = start(&srv, &["BLPOP", "x", "0"]);
    let mut admin_con = srv.client();
    common::wait_blocked(&mut admin_con, 1);
    let body = "redis.call('lpush', KEYS[1], 'y') \
        local clients \
        while true do \
            clients = redis.call('client', 'list') \
            if string.find(clients, 'abortscript') ~= nil then break end \
        end \
        redis.call('lpush', KEYS[1], 'z') \
        return 'done'";
    let mut runner = start(&srv, &["EVAL", body, "1", "x"]);
    wait_for(&srv, BUSY);
    let mut r3 = srv.raw();
    r3.send(&resp(&[b"HELLO", b"2", b"SETNAME", b"abortscript"]));
    assert_eq!(reply(&mut runner), "$done");
    assert_eq!(reply(&mut blocked), "*2");
    assert_eq!(reply(&mut blocked), "$x");
    assert_eq!(reply(&mut blocked), "$z");
    assert_eq!(
        call(&mut admin, &["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"]),
        "+OK"
    );
    let denied = call(
        &mut admin,
        &["EVAL", "return redis.call('client', 'list')", "0"],
    );
    assert!(
        denied.starts_with("-ERR This Redis command is not allowed from script script: "),
        "{denied}"
    );
}

/// Past `busy-reply-threshold` a script is reported in the log once, by
/// its SHA1 (a function by its name), as Redis words it.
#[test]
fn a_slow_script_is_logged_once_by_name() {
    let dir = common::TempDir::new("slow-script-log");
    let log = dir.path().join("log");
    let srv = Server::start_with(&[
        "--busy-reply-threshold",
        "10",
        "--logfile",
        log.to_str().unwrap(),
    ]);
    let mut c = srv.client();
    let slow = "local i=0 while i < 20000000 do i=i+1 end return 1";
    let fast = "return 2";
    let _: i64 = redis::cmd("EVAL").arg(fast).arg(0).query(&mut c).unwrap();
    let _: i64 = redis::cmd("EVAL").arg(slow).arg(0).query(&mut c).unwrap();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(format!(
            "#!lua name=lib\nredis.register_function('slowfn', function() {slow} end)"
        ))
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("FCALL")
        .arg("slowfn")
        .arg(0)
        .query(&mut c)
        .unwrap();
    // The log may be written a moment after the reply.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.matches("Slow script").count() >= 2 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("Slow script")).collect();
    let sha = {
        let s: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(slow)
            .query(&mut c)
            .unwrap();
        s
    };
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("# Slow script detected: still in execution after ")
            && lines[0].ends_with(&format!(
            " milliseconds. You can try killing the script using the SCRIPT KILL command. Script name is: {sha}."
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(
            " milliseconds. You can try killing the script using the FUNCTION KILL command. Script name is: slowfn."
        ),
        "{}",
        lines[1]
    );
}
