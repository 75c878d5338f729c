//! ACL: users, the per-command check (top level, MULTI/EXEC, scripts),
//! ACL LOG, disconnections, `user` / `aclfile` at start-up, ACL LOAD/SAVE.

mod common;

use common::{Server, TempDir, resp, run_to_exit};

fn cmd(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c)
}

fn ok(c: &mut redis::Connection, args: &[&str]) {
    cmd(c, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

fn err(c: &mut redis::Connection, args: &[&str]) -> String {
    match cmd(c, args) {
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            let detail = e.detail().unwrap_or("").to_string();
            format!("{code} {detail}").trim().to_string()
        }
    }
}

fn as_user(srv: &Server, user: &str, pass: &str) -> redis::Connection {
    let mut c = srv.client();
    ok(&mut c, &["AUTH", user, pass]);
    c
}

/// One reply's raw bytes for a command sent on a raw connection.
fn raw_reply(raw: &mut common::Raw, args: &[&[u8]], expected: &[u8]) {
    let got = raw.roundtrip(&resp(args), expected.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "{:?}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
}

#[test]
fn errors_are_redis_s_word_for_word() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &[
            "ACL", "SETUSER", "lim", "on", ">pw", "~k*", "&ch", "-@all", "+get", "+publish", "+acl",
        ],
    );
    let mut raw = srv.raw();
    raw_reply(&mut raw, &[b"AUTH", b"lim", b"pw"], b"+OK\r\n");
    raw_reply(
        &mut raw,
        &[b"INCR", b"k"],
        b"-NOPERM this user has no permissions to run the 'incr' command\r\n",
    );
    raw_reply(
        &mut raw,
        &[b"GET", b"x"],
        b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
    );
    raw_reply(
        &mut raw,
        &[b"PUBLISH", b"zz", b"1"],
        b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n",
    );
    raw_reply(
        &mut raw,
        &[b"CONFIG", b"GET", b"x"],
        b"-NOPERM this user has no permissions to run the 'config|get' command\r\n",
    );
    raw_reply(&mut raw, &[b"GET", b"k1"], b"$-1\r\n");
    raw_reply(
        &mut raw,
        &[b"AUTH", b"lim", b"bad"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    // AUTH stays allowed to a user without @connection.
    raw_reply(&mut raw, &[b"AUTH", b"default", b"any"], b"+OK\r\n");
    raw_reply(&mut raw, &[b"ACL", b"WHOAMI"], b"$7\r\ndefault\r\n");
}

#[test]
fn transactions_check_at_queue_time_and_again_at_exec() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "t", "on", "nopass", "+@all", "~*", "&*"],
    );
    let mut raw = srv.raw();
    raw_reply(&mut raw, &[b"AUTH", b"t", b"x"], b"+OK\r\n");
    raw_reply(&mut raw, &[b"MULTI"], b"+OK\r\n");
    raw_reply(&mut raw, &[b"INCR", b"k"], b"+QUEUED\r\n");
    raw_reply(&mut raw, &[b"GET", b"k"], b"+QUEUED\r\n");
    raw_reply(&mut raw, &[b"PUBLISH", b"ch", b"x"], b"+QUEUED\r\n");
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "t",
            "-incr",
            "resetkeys",
            "~k2",
            "resetchannels",
        ],
    );
    let prefix = "-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: ";
    let expected = format!(
        "*3\r\n{prefix}no permission to execute the command or subcommand\r\n{prefix}no permission to touch the specified keys\r\n{prefix}no permission to access one of the channels used as arguments\r\n"
    );
    raw_reply(&mut raw, &[b"EXEC"], expected.as_bytes());
    // Refused while queuing: the transaction is aborted.
    raw_reply(&mut raw, &[b"MULTI"], b"+OK\r\n");
    raw_reply(
        &mut raw,
        &[b"INCR", b"k"],
        b"-NOPERM this user has no permissions to run the 'incr' command\r\n",
    );
    raw_reply(
        &mut raw,
        &[b"EXEC"],
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    let log = log_entries(&mut admin);
    assert_eq!(log[0]["context"], "multi");
    assert_eq!(log[0]["object"], "incr");
}

#[test]
fn scripts_get_the_script_error_and_log_lua_context() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &[
            "ACL", "SETUSER", "s", "on", "nopass", "-@all", "+eval", "+get", "~k*",
        ],
    );
    let mut c = as_user(&srv, "s", "x");
    let e = err(&mut c, &["EVAL", "return redis.call('incr','k')", "0"]);
    assert!(
        e.starts_with(
            "ERR The user executing the script can't run this command or subcommand script:"
        ),
        "{e}"
    );
    let e = err(&mut c, &["EVAL", "return redis.call('get','x')", "0"]);
    assert!(
        e.contains("can't access at least one of the keys mentioned in the command arguments"),
        "{e}"
    );
    let allowed: i64 = redis::cmd("EVAL")
        .arg("return redis.acl_check_cmd('get','k1') and 1 or 0")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(allowed, 1);
    let denied: i64 = redis::cmd("EVAL")
        .arg("return redis.acl_check_cmd('incr','k1') and 1 or 0")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(denied, 0);
    let log = log_entries(&mut admin);
    assert_eq!(log[0]["context"], "lua");
    assert_eq!(log[0]["reason"], "key");
    assert_eq!(log[0]["object"], "x");
}

type Entry = std::collections::HashMap<String, String>;

fn log_entries(c: &mut redis::Connection) -> Vec<Entry> {
    let v: Vec<Vec<redis::Value>> = redis::cmd("ACL").arg("LOG").query(c).unwrap();
    v.into_iter()
        .map(|fields| {
            fields
                .chunks(2)
                .map(|kv| {
                    let k: String = redis::from_redis_value(kv[0].clone()).unwrap();
                    let v: String = match &kv[1] {
                        redis::Value::Int(n) => n.to_string(),
                        other => redis::from_redis_value(other.clone()).unwrap(),
                    };
                    (k, v)
                })
                .collect()
        })
        .collect()
}

#[test]
fn acl_log_records_denials_and_groups_repeats() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "l", "on", ">p", "+@all", "~a*"],
    );
    let mut c = as_user(&srv, "l", "p");
    err(&mut c, &["GET", "b"]);
    err(&mut c, &["GET", "b"]);
    err(&mut admin, &["AUTH", "nobody", "x"]);
    let log = log_entries(&mut admin);
    assert_eq!(log.len(), 2);
    let names: Vec<&str> = log[0].keys().map(String::as_str).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(log[0]["reason"], "auth");
    assert_eq!(log[0]["object"], "AUTH");
    assert_eq!(log[0]["username"], "nobody");
    assert_eq!(log[1]["count"], "2");
    assert_eq!(log[1]["reason"], "key");
    assert_eq!(log[1]["context"], "toplevel");
    assert_eq!(log[1]["username"], "l");
    assert!(
        log[1]["client-info"].contains(" user=l "),
        "{}",
        log[1]["client-info"]
    );
    let age: f64 = log[1]["age-seconds"].parse().unwrap();
    assert!((0.0..60.0).contains(&age));
    ok(&mut admin, &["ACL", "LOG", "RESET"]);
    assert!(log_entries(&mut admin).is_empty());
}

#[test]
fn key_permissions_follow_the_key_specs() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "rw",
            "on",
            "nopass",
            "+@all",
            "%R~read*",
            "%W~write*",
            "~both*",
        ],
    );
    let mut c = as_user(&srv, "rw", "x");
    ok(&mut c, &["GET", "read1"]);
    ok(&mut c, &["SET", "write1", "v"]);
    ok(&mut c, &["SET", "both1", "v", "GET"]);
    assert!(err(&mut c, &["SET", "read1", "v"]).starts_with("NOPERM"));
    assert!(err(&mut c, &["GET", "write1"]).starts_with("NOPERM"));
    // SET ... GET reads as well as writes.
    assert!(err(&mut c, &["SET", "write1", "v", "GET"]).starts_with("NOPERM"));
    ok(&mut c, &["LPUSH", "write2", "a"]);
    assert!(err(&mut c, &["LMOVE", "write2", "read2", "left", "right"]).starts_with("NOPERM"));
}

#[test]
fn first_args_and_subcommands() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "f",
            "on",
            "nopass",
            "-@all",
            "+select|0",
            "+config",
            "-config|set",
            "+acl",
        ],
    );
    let mut c = as_user(&srv, "f", "x");
    ok(&mut c, &["SELECT", "0"]);
    assert_eq!(
        err(&mut c, &["SELECT", "1"]),
        "NOPERM this user has no permissions to run the 'select' command"
    );
    ok(&mut c, &["CONFIG", "GET", "maxmemory"]);
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "maxmemory", "0"]),
        "NOPERM this user has no permissions to run the 'config|set' command"
    );
    let v: redis::Value = cmd(&mut admin, &["ACL", "GETUSER", "f"]).unwrap();
    let s = common::show(&v);
    assert!(
        s.contains("-@all +acl +config -config|set +select|0"),
        "{s}"
    );
}

#[test]
fn selectors_allow_what_any_of_them_allows() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "sel",
            "on",
            "nopass",
            "-@all",
            "(+get",
            "~r*)",
            "(+set ~w*)",
        ],
    );
    let mut c = as_user(&srv, "sel", "x");
    ok(&mut c, &["GET", "r1"]);
    ok(&mut c, &["SET", "w1", "v"]);
    assert!(err(&mut c, &["SET", "r1", "v"]).contains("keys"));
    assert!(err(&mut c, &["GET", "w1"]).contains("keys"));
    assert!(err(&mut c, &["INCR", "w1"]).contains("'incr' command"));
    let e = err(&mut admin, &["ACL", "SETUSER", "sel", "(+get"]);
    assert_eq!(
        e,
        "ERR Unmatched parenthesis in acl selector starting at '(+get'."
    );
}

#[test]
fn requirepass_sets_the_default_user_s_password() {
    let srv = Server::start_with(&["--requirepass", "secret"]);
    let mut raw = srv.raw();
    raw_reply(
        &mut raw,
        &[b"GET", b"x"],
        b"-NOAUTH Authentication required.\r\n",
    );
    raw_reply(&mut raw, &[b"AUTH", b"secret"], b"+OK\r\n");
    raw_reply(
        &mut raw,
        &[b"CONFIG", b"SET", b"requirepass", b"other"],
        b"+OK\r\n",
    );
    raw_reply(
        &mut raw,
        &[b"AUTH", b"default", b"secret"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    raw_reply(&mut raw, &[b"AUTH", b"default", b"other"], b"+OK\r\n");
    raw_reply(
        &mut raw,
        &[b"CONFIG", b"SET", b"requirepass", b""],
        b"+OK\r\n",
    );
    raw_reply(
        &mut raw,
        &[b"AUTH", b"x"],
        b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    );
}

#[test]
fn deleted_users_are_disconnected_and_changed_ones_see_the_change() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "d", "on", ">p", "+@all", "~*"],
    );
    let mut raw = srv.raw();
    raw_reply(&mut raw, &[b"AUTH", b"d", b"p"], b"+OK\r\n");
    raw_reply(&mut raw, &[b"GET", b"x"], b"$-1\r\n");
    ok(&mut admin, &["ACL", "SETUSER", "d", "-get"]);
    raw_reply(
        &mut raw,
        &[b"GET", b"x"],
        b"-NOPERM this user has no permissions to run the 'get' command\r\n",
    );
    // Turned off: no new logins, the connection stays (as Redis 7.0).
    ok(&mut admin, &["ACL", "SETUSER", "d", "off"]);
    raw_reply(&mut raw, &[b"PING"], b"+PONG\r\n");
    ok(&mut admin, &["ACL", "SETUSER", "d", "on"]);
    // Deleted: the connection closes; deleting itself, after the reply.
    let mut own = srv.raw();
    raw_reply(&mut own, &[b"AUTH", b"d", b"p"], b"+OK\r\n");
    let n: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg("d")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 1);
    assert!(raw.read_to_close().is_empty());
    ok(&mut admin, &["ACL", "SETUSER", "me", "on", ">p", "+@all"]);
    let mut me = srv.raw();
    raw_reply(&mut me, &[b"AUTH", b"me", b"p"], b"+OK\r\n");
    raw_reply(&mut me, &[b"ACL", b"DELUSER", b"me"], b":1\r\n");
    assert!(me.read_to_close().is_empty());
}

#[test]
fn revoked_channels_close_subscribers() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "p", "on", "nopass", "+@all", "&news"],
    );
    let mut sub = srv.raw();
    raw_reply(&mut sub, &[b"AUTH", b"p", b"x"], b"+OK\r\n");
    raw_reply(
        &mut sub,
        &[b"SUBSCRIBE", b"news"],
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    ok(
        &mut admin,
        &["ACL", "SETUSER", "p", "resetchannels", "&other"],
    );
    assert!(sub.read_to_close().is_empty());
}

#[test]
fn config_users_and_aclfile_load_and_save() {
    let dir = TempDir::new("acl");
    dir.write(
        "users.acl",
        "user alice on >a ~* &* +@all\nuser bob on nopass -@all +get ~b*\n",
    );
    let path = dir.path().join("users.acl");
    let path = path.to_str().unwrap();
    let srv = Server::start_with(&["--aclfile", path]);
    let mut admin = srv.client();
    let users: Vec<String> = redis::cmd("ACL").arg("USERS").query(&mut admin).unwrap();
    assert_eq!(users, ["alice", "bob", "default"]);
    ok(
        &mut admin,
        &["ACL", "SETUSER", "carol", "on", ">c", "+@all"],
    );
    ok(&mut admin, &["ACL", "SAVE"]);
    let saved = std::fs::read_to_string(path).unwrap();
    assert!(saved.contains("user carol on #"), "{saved}");
    std::fs::write(
        path,
        "user alice on >a ~* &* +@all\nbad line\nuser x on +nope\n",
    )
    .unwrap();
    let e = err(&mut admin, &["ACL", "LOAD"]);
    assert_eq!(
        e,
        format!(
            "ERR {path}:2 should start with user keyword followed by the username. {path}:3: Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        )
    );
    std::fs::write(path, "user alice on >a ~* &* +@all\n").unwrap();
    ok(&mut admin, &["ACL", "LOAD"]);
    let users: Vec<String> = redis::cmd("ACL").arg("USERS").query(&mut admin).unwrap();
    assert_eq!(users, ["alice", "default"]);
    drop(srv);

    // `user` directives; both ways at once refuse to start.
    dir.write(
        "users.conf",
        "user default on nopass ~* +@all\nuser eve on >e +@all ~*\n",
    );
    let srv = Server::start_in(Some(dir.path()), Some("users.conf"), &[]);
    let mut c = srv.client();
    let list: Vec<String> = redis::cmd("ACL").arg("LIST").query(&mut c).unwrap();
    assert_eq!(
        list,
        [
            "user default on nopass sanitize-payload ~* resetchannels +@all".to_string(),
            format!(
                "user eve on #{} ~* resetchannels +@all",
                "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
            )
        ]
    );
    let (code, out) = run_to_exit(
        dir.path(),
        &["--port", "0", "--user", "a on", "--aclfile", path],
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid."),
        "{out}"
    );
    let (code, out) = run_to_exit(dir.path(), &["--user", "foo", "--user", "foo"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("Error in user declaration 'foo': Duplicate user found. A user can only be defined once in config files"),
        "{out}"
    );
}

#[test]
fn client_list_shows_the_user() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "u", "on", "nopass", "+@all"],
    );
    let mut c = as_user(&srv, "u", "x");
    let me: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(me.contains(" user=u "), "{me}");
}

#[test]
fn hello_auth_with_a_user_and_pubsub_default() {
    let srv = Server::start();
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "h", "on", ">p", "+@all", "~*"],
    );
    let mut raw = srv.raw();
    raw_reply(
        &mut raw,
        &[b"HELLO", b"3", b"AUTH", b"h", b"bad"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    raw.send(&resp(&[b"HELLO", b"3", b"AUTH", b"h", b"p"]));
    let _ = raw.read_n(10);
    let mut c = srv.client();
    ok(&mut c, &["AUTH", "h", "p"]);
    // New users get no channels by default (Redis 7), all with allchannels.
    assert!(err(&mut c, &["PUBLISH", "x", "1"]).contains("channels"));
    ok(
        &mut admin,
        &["CONFIG", "SET", "acl-pubsub-default", "allchannels"],
    );
    ok(
        &mut admin,
        &["ACL", "SETUSER", "h2", "on", ">p", "+@all", "~*"],
    );
    let mut c2 = as_user(&srv, "h2", "p");
    ok(&mut c2, &["PUBLISH", "x", "1"]);
    let v: redis::Value = cmd(&mut admin, &["ACL", "GETUSER", "h2"]).unwrap();
    assert!(
        common::show(&v).contains("channels &*"),
        "{}",
        common::show(&v)
    );
}
