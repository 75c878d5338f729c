//! Start-up configuration through the real binary: config files with
//! `include` and `rename-command`, the directives that refuse to start,
//! and the `enable-*` gates (protected configs, DEBUG, MODULE).
//! Expected texts are redis-server 7.0.15's for the same files.

mod common;

use common::{Server, TempDir, run_to_exit};

fn err(c: &mut redis::Connection, cmd: &mut redis::Cmd) -> String {
    let r: redis::RedisResult<redis::Value> = cmd.query(c);
    let e = r.expect_err("expected an error reply");
    // The redis crate splits the code from the text; put them back.
    format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or(""))
}

/// Starts with `text` as the config file (in a temp dir that is also the
/// working directory).
fn start_with_conf(text: &str, extra: &[&str]) -> (TempDir, Server) {
    let dir = TempDir::new("conf");
    dir.write("ferrokv.conf", text);
    let srv = Server::start_in(Some(dir.path()), Some("ferrokv.conf"), extra);
    (dir, srv)
}

/// Runs with `text` as the config file and expects a failed start.
fn fails_with_conf(text: &str) -> String {
    let dir = TempDir::new("conf");
    dir.write("ferrokv.conf", text);
    let (code, out) = run_to_exit(dir.path(), &["ferrokv.conf"]);
    assert_eq!(code, Some(1), "exit status for {text:?}; output:\n{out}");
    out
}

fn fatal_block(line: usize, text: &str, reason: &str) -> String {
    format!(
        "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line {line}\n>>> '{text}'\n{reason}\n"
    )
}

#[test]
fn renamed_commands_answer_to_their_new_name_only() {
    let (_d, srv) = start_with_conf(
        "rename-command GET MyGet\nrename-command config \"\"\nrename-command client cli2\n",
        &[],
    );
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    assert_eq!(
        err(&mut c, redis::cmd("GET").arg("k")),
        "ERR unknown command 'GET', with args beginning with: 'k' "
    );
    let v: String = redis::cmd("myget").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    assert_eq!(
        err(&mut c, redis::cmd("CONFIG").arg("GET").arg("port")),
        "ERR unknown command 'CONFIG', with args beginning with: 'GET' 'port' "
    );
    // A renamed container keeps its subcommands; errors name it as called.
    let _: i64 = redis::cmd("CLI2").arg("ID").query(&mut c).unwrap();
    assert_eq!(
        err(&mut c, redis::cmd("cli2").arg("foo")),
        "ERR unknown subcommand 'foo'. Try CLI2 HELP."
    );
    // Arity errors and COMMAND INFO use the command's own name, as Redis.
    assert_eq!(
        err(&mut c, &mut redis::cmd("MYGET")),
        "ERR wrong number of arguments for 'get' command"
    );
    let info: Vec<redis::Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("myget")
        .arg("get")
        .query(&mut c)
        .unwrap();
    match &info[0] {
        redis::Value::Array(a) => assert_eq!(a[0], redis::Value::BulkString(b"get".to_vec())),
        other => panic!("COMMAND INFO myget: {other:?}"),
    }
    assert_eq!(info[1], redis::Value::Nil);
    let names: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut c).unwrap();
    assert!(names.iter().any(|n| n == "get"));
    assert!(!names.iter().any(|n| n == "config" || n == "myget"));
}

#[test]
fn renamed_away_commands_are_unreachable_from_multi_and_scripts() {
    let (_d, srv) = start_with_conf("rename-command get myget\n", &[]);
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    // MULTI: the unknown name fails the transaction.
    let mut raw = srv.raw();
    let want = b"+OK\r\n-ERR unknown command 'GET', with args beginning with: 'k' \r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n";
    let got = raw.roundtrip(b"MULTI\r\nGET k\r\nmyget k\r\nEXEC\r\n", want.len());
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    // Scripts call through the same table.
    let e = err(
        &mut c,
        redis::cmd("EVAL")
            .arg("return redis.call('get', KEYS[1])")
            .arg(1)
            .arg("k"),
    );
    assert!(
        e.starts_with("ERR Unknown Redis command called from script"),
        "{e}"
    );
    let v: String = redis::cmd("EVAL")
        .arg("return redis.call('myget', KEYS[1])")
        .arg(1)
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "v");
    let e = err(
        &mut c,
        redis::cmd("EVAL")
            .arg("return redis.pcall('get', 'k')")
            .arg(0),
    );
    assert_eq!(e, "ERR Unknown Redis command called from script");
}

#[test]
fn rename_command_on_the_command_line_too() {
    let srv = Server::start_with(&["--rename-command", "flushall", ""]);
    let mut c = srv.client();
    let e = err(&mut c, &mut redis::cmd("FLUSHALL"));
    assert!(e.starts_with("ERR unknown command 'FLUSHALL'"), "{e}");
}

#[test]
fn bad_renames_stop_the_server_with_redis_messages() {
    let out = fails_with_conf("port 7000\nrename-command nosuch x\n");
    assert!(
        out.contains(&fatal_block(
            2,
            "rename-command nosuch x",
            "No such command in rename-command"
        )),
        "{out}"
    );
    let out = fails_with_conf("rename-command get set\n");
    assert!(
        out.contains("\nTarget command name already exists\n"),
        "{out}"
    );
    let out = fails_with_conf("rename-command get\n");
    assert!(
        out.contains("\nBad directive or wrong number of arguments\n"),
        "{out}"
    );
    // A name renamed away is gone; a subcommand cannot be renamed.
    let out = fails_with_conf("rename-command get \"\"\nrename-command get x\n");
    assert!(out.contains("at line 2\n"), "{out}");
    let out = fails_with_conf("rename-command client|id x\n");
    assert!(
        out.contains("\nNo such command in rename-command\n"),
        "{out}"
    );
}

#[test]
fn includes_nest_resolve_against_the_working_directory_and_apply_in_order() {
    let dir = TempDir::new("include");
    dir.write("main.conf", "hz 11\ninclude sub/b.conf\nmaxmemory 5mb\n");
    // `c.conf` inside sub/b.conf is relative to the working directory.
    dir.write("sub/b.conf", "maxmemory 3mb\nhz 20\ninclude c.conf\n");
    dir.write("c.conf", "hz 30\n");
    dir.write("sub/c.conf", "hz 40\n");
    let srv = Server::start_in(Some(dir.path()), Some("main.conf"), &[]);
    let mut c = srv.client();
    let get = |c: &mut redis::Connection, name: &str| -> String {
        let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
        v[1].clone()
    };
    assert_eq!(get(&mut c, "hz"), "30");
    assert_eq!(get(&mut c, "maxmemory"), "5242880");
    drop(srv);
    // `dir` moves the server at once: a later relative include is read
    // from there, as in Redis.
    dir.write("d1/x.conf", "hz 33\n");
    dir.write("x.conf", "hz 44\n");
    dir.write("dir.conf", "dir d1\ninclude x.conf\n");
    let srv = Server::start_in(Some(dir.path()), Some("dir.conf"), &[]);
    let mut c = srv.client();
    assert_eq!(get(&mut c, "hz"), "33");
    let d1 = std::fs::canonicalize(dir.path().join("d1")).unwrap();
    assert_eq!(get(&mut c, "dir"), d1.display().to_string());
    drop(srv);
    let out = fails_with_conf("dir /nonexistent/dir\n");
    assert!(
        out.contains(&fatal_block(
            1,
            "dir /nonexistent/dir",
            "No such file or directory"
        )),
        "{out}"
    );
    // The command line can include too, after the file.
    let srv = Server::start_in(
        Some(dir.path()),
        Some("main.conf"),
        &["--include", "sub/c.conf"],
    );
    let mut c = srv.client();
    assert_eq!(get(&mut c, "hz"), "40");
}

#[test]
fn include_errors_stop_the_server() {
    let out = fails_with_conf("include nosuch.conf\n");
    assert!(
        out.contains(
            "# Fatal error, can't open config file 'nosuch.conf': No such file or directory\n"
        ),
        "{out}"
    );
    let out = fails_with_conf("include\n");
    assert!(
        out.contains(&fatal_block(
            1,
            "include",
            "Bad directive or wrong number of arguments"
        )),
        "{out}"
    );
    // An error inside an included file gives that file's line.
    let dir = TempDir::new("include");
    dir.write("bad.conf", "hz 5\n\nbogus 1\n");
    dir.write("main.conf", "# c\ninclude bad.conf\n");
    let (code, out) = run_to_exit(dir.path(), &["main.conf"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains(&fatal_block(
            3,
            "bogus 1",
            "Bad directive or wrong number of arguments"
        )),
        "{out}"
    );
    // A cycle is refused (Redis recurses until it crashes).
    dir.write("a.conf", "hz 5\ninclude b.conf\n");
    dir.write("b.conf", "include a.conf\n");
    let (code, out) = run_to_exit(dir.path(), &["a.conf"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains(&fatal_block(
            1,
            "include a.conf",
            "Include cycle: 'a.conf' is already being read"
        )),
        "{out}"
    );
    dir.write("self.conf", "include self.conf\n");
    let (code, out) = run_to_exit(dir.path(), &["self.conf"]);
    assert_eq!(code, Some(1), "{out}");
}

#[test]
fn directives_ferrokv_cannot_honour_safely_refuse_to_start() {
    for (conf, name) in [
        ("loadmodule /usr/lib/redis/x.so\n", "loadmodule"),
        ("tls-replication yes\n", "tls-replication"),
    ] {
        let out = fails_with_conf(conf);
        assert!(
            out.contains(&format!(
                ">>> '{}'\n'{name}' is not supported: ",
                conf.trim_end()
            )) && out.contains("refusing to start rather than ignore it"),
            "{conf}: {out}"
        );
    }
    let out = fails_with_conf("sentinel monitor m 127.0.0.1 6379 2\n");
    assert!(
        out.contains("\nsentinel directive while not in sentinel mode\n"),
        "{out}"
    );
}

#[test]
fn harmless_directives_start_with_a_warning() {
    // What the Python harness and Redis's test suite (default.conf) pass.
    let (_d, srv) = start_with_conf(
        "save 900 1\nappendonly no\nappendfsync everysec\nno-appendfsync-on-rewrite no\n\
         tls-replication no\nmaxmemory-clients 0\nlua-replicate-commands yes\n",
        &["--save", "", "--appendonly", "no"],
    );
    let mut c = srv.client();
    let _: String = redis::cmd("PING").query(&mut c).unwrap();
    drop(srv);
    // The warnings themselves: one line each, in the log.
    let (d, srv) = start_with_conf(
        "save 900 1\nsyslog-enabled yes\njemalloc-bg-thread yes\nsave 300 10\n",
        &["--logfile", "w.log"],
    );
    drop(srv);
    let log = std::fs::read_to_string(d.path().join("w.log")).unwrap();
    for name in ["syslog-enabled", "jemalloc-bg-thread"] {
        let line = format!(
            "# Directive '{name}' is a Redis option ferrokv does not implement yet; ignored\n"
        );
        assert_eq!(log.matches(&line).count(), 1, "{log}");
    }
    // `save` works now (BGSAVE at the save points): no warning.
    assert!(!log.contains("Directive 'save'"), "{log}");
    // An unknown directive is still Redis's fatal error.
    let out = fails_with_conf("syslog-enabled yes\nbogus-option 1\n");
    assert!(
        out.contains(&fatal_block(
            2,
            "bogus-option 1",
            "Bad directive or wrong number of arguments"
        )),
        "{out}"
    );
}

#[test]
fn protected_configs_need_enable_protected_configs() {
    let srv = Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query(&mut c)
        .unwrap();
    for name in ["dir", "dbfilename"] {
        assert_eq!(
            err(&mut c, redis::cmd("CONFIG").arg("SET").arg(name).arg("x")),
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
            )
        );
    }
    assert_eq!(
        err(
            &mut c,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("enable-protected-configs")
                .arg("yes")
        ),
        "ERR CONFIG SET failed (possibly related to argument 'enable-protected-configs') - can't set immutable config"
    );
    drop(srv);
    for mode in ["yes", "local"] {
        let srv = Server::start_with(&["--enable-protected-configs", mode]);
        let mut c = srv.client();
        // CONFIG SET dir moves the server, or says why it cannot.
        let tmp = TempDir::new("dir");
        let tmp_path = std::fs::canonicalize(tmp.path()).unwrap();
        let tmp_dir = tmp_path.display().to_string();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("dir")
            .arg(&tmp_dir)
            .query(&mut c)
            .unwrap();
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dir")
            .query(&mut c)
            .unwrap();
        assert_eq!(v[1], tmp_dir);
        assert_eq!(
            err(
                &mut c,
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("dir")
                    .arg("/nonexistent/x")
            ),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory"
        );
        let file = tmp.write("f", "");
        assert_eq!(
            err(
                &mut c,
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("dir")
                    .arg(file.to_str().unwrap())
            ),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - Not a directory"
        );
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("dbfilename")
            .arg("other.rdb")
            .query(&mut c)
            .unwrap();
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dbfilename")
            .query(&mut c)
            .unwrap();
        assert_eq!(v[1], "other.rdb");
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("enable-protected-configs")
            .query(&mut c)
            .unwrap();
        assert_eq!(v[1], mode);
    }
}

#[test]
fn debug_and_module_are_gated_before_authentication() {
    let srv = Server::start_with(&["--requirepass", "pw"]);
    let mut raw = srv.raw();
    // Refused before NOAUTH, as in Redis; MODULE LIST is not protected.
    let want = b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n-ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n-NOAUTH Authentication required.\r\n";
    let got = raw.roundtrip(
        b"DEBUG HELP\r\nMODULE LOAD /x.so\r\nMODULE LIST\r\n",
        want.len(),
    );
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    drop(srv);
    let srv = Server::start_with(&["--enable-module-command", "local"]);
    let mut c = srv.client();
    let mods: Vec<redis::Value> = redis::cmd("MODULE").arg("LIST").query(&mut c).unwrap();
    assert!(mods.is_empty());
    assert_eq!(
        err(&mut c, redis::cmd("MODULE").arg("LOAD").arg("/x.so")),
        "ERR Error loading the extension. Please check the server logs."
    );
    assert_eq!(
        err(&mut c, redis::cmd("MODULE").arg("UNLOAD").arg("x")),
        "ERR Error unloading module: no such module with that name"
    );
    // DEBUG stays refused: each option guards its own command.
    let e = err(&mut c, redis::cmd("DEBUG").arg("HELP"));
    assert!(e.starts_with("ERR DEBUG command not allowed"), "{e}");
}

/// This machine's address on a non-loopback interface, if it has one (the
/// route lookup of a UDP connect sends nothing).
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn local_means_loopback_only() {
    let Some(ip) = outside_address() else {
        eprintln!("no non-loopback address: skipped");
        return;
    };
    let srv = Server::start_with(&[
        "--bind",
        "0.0.0.0",
        "--protected-mode",
        "no",
        "--enable-debug-command",
        "local",
        "--enable-protected-configs",
        "local",
    ]);
    let far = redis::Client::open(format!("redis://{ip}:{}/", srv.port)).unwrap();
    let mut far = far.get_connection().unwrap();
    let e = err(&mut far, redis::cmd("DEBUG").arg("HELP"));
    assert!(e.starts_with("ERR DEBUG command not allowed"), "{e}");
    let e = err(
        &mut far,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("dbfilename")
            .arg("x.rdb"),
    );
    assert!(e.ends_with("can't set protected config"), "{e}");
    // The same from loopback is allowed.
    let mut c = srv.client();
    let _: () = redis::cmd("DEBUG")
        .arg("LOG")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("dbfilename")
        .arg("x.rdb")
        .query(&mut c)
        .unwrap();
}

#[test]
fn command_line_words_group_as_redis_groups_them() {
    let dir = TempDir::new("argv");
    for (args, line, text, reason) in [
        // Lines 2 and 3 are the --port and --bind that run_to_exit adds.
        (&["--hz"][..], 4, "hz", "wrong number of arguments"),
        (
            &["--hz", "5", "6"][..],
            4,
            "hz \"5\" \"6\"",
            "wrong number of arguments",
        ),
        (
            &["--hz", "--loglevel", "verbose"][..],
            4,
            "hz \"--loglevel\" \"verbose\"",
            "wrong number of arguments",
        ),
        (
            &["--logfile", "--my--log", "--loglevel", "--bla"][..],
            5,
            "loglevel \"--bla\"",
            "argument(s) must be one of the following: debug, verbose, notice, warning",
        ),
        // Directives ferrokv does not implement still get Redis's checks.
        (
            &["--shutdown-on-sigint", "now force", "--shutdown-on-sigterm"][..],
            5,
            "shutdown-on-sigterm",
            "argument(s) must be one of the following: default, save, nosave, now, force",
        ),
        (
            &["--replicaof", "--127.0.0.1", "abc"][..],
            4,
            "replicaof \"--127.0.0.1\" \"abc\"",
            "Invalid master port",
        ),
        (
            &["--replicaof", "--127.0.0.1", "--abc"][..],
            4,
            "replicaof \"--127.0.0.1\"",
            "wrong number of arguments",
        ),
    ] {
        let (code, out) = run_to_exit(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        assert!(
            out.contains(&fatal_block(line, text, reason)),
            "{args:?}: {out}"
        );
    }
    // Options are numbered after the file's lines and an empty one.
    dir.write("three.conf", "hz 5\n\n# x\n");
    let (_, out) = run_to_exit(dir.path(), &["three.conf", "--hz", "a\"b"]);
    assert!(
        out.contains(&fatal_block(
            7,
            "hz \"a\\\"b\"",
            "argument couldn't be parsed into an integer"
        )),
        "{out}"
    );
    // Name and value in one word; a bare --save before another option or
    // at the end means save ""; words before any option form a line;
    // several save lines add up.
    dir.write("s.conf", "save 900 1\n");
    let get = |srv: &Server, name: &str| -> String {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(&mut srv.client())
            .unwrap();
        v[1].clone()
    };
    let srv = Server::start_in(
        Some(dir.path()),
        Some("s.conf"),
        &["--maxmemory 700mb", "--save", "--loglevel", "verbose"],
    );
    assert_eq!(get(&srv, "maxmemory"), "734003200");
    assert_eq!(get(&srv, "save"), "");
    assert_eq!(get(&srv, "loglevel"), "verbose");
    drop(srv);
    let srv = Server::start_in(
        Some(dir.path()),
        Some("s.conf"),
        &["--save", "10", "1", "--save", "20 2"],
    );
    assert_eq!(get(&srv, "save"), "900 1 10 1 20 2");
}

#[test]
fn a_config_on_stdin_is_read() {
    let dir = TempDir::new("stdin");
    let (code, out) =
        common::run_to_exit_with_input(dir.path(), &["-"], b"hz 5\nrename-command nosuch x\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&fatal_block(
            2,
            "rename-command nosuch x",
            "No such command in rename-command"
        )),
        "{out}"
    );
}

#[test]
fn a_password_set_in_an_included_file_is_required() {
    // Ignoring `include` used to start this server without its password.
    let dir = TempDir::new("include");
    dir.write("secrets/auth.conf", "requirepass s3cret\n");
    dir.write("main.conf", "include secrets/auth.conf\n");
    let srv = Server::start_in(Some(dir.path()), Some("main.conf"), &[]);
    let mut raw = srv.raw();
    let want = b"-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n";
    let got = raw.roundtrip(b"PING\r\nAUTH s3cret\r\nPING\r\n", want.len());
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

#[test]
fn protected_mode_lets_remote_clients_reach_auth_when_a_password_is_set() {
    let Some(ip) = outside_address() else {
        eprintln!("no non-loopback address: skipped");
        return;
    };
    let srv = Server::start_with(&["--bind", "0.0.0.0", "--requirepass", "pw"]);
    let mut far = common::Raw(std::net::TcpStream::connect((ip, srv.port)).unwrap());
    far.0
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let want = b"-NOAUTH Authentication required.\r\n";
    assert_eq!(far.roundtrip(b"PING\r\n", want.len()), want);
}
