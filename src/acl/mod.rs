//! Access control lists (Redis 7.0): users, their passwords and
//! permissions, the per-command check, and the ACL LOG.
//!
//! Users live in a map of immutable `Arc<User>`s; a connection holds the
//! `Arc` of the user it authenticated as. ACL SETUSER publishes a new
//! version and marks the old one stale, so the connection looks its user
//! up again on its next command. A user allowed everything (the default
//! user) carries a flag that makes the per-command check one load and one
//! branch.

pub mod file;
pub mod index;
pub mod log;
pub mod selector;
pub mod user;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::cmd::{Command, CommandTable};
use crate::resp::Args;
use crate::server::Server;
use crate::server::client::Client;
pub use index::CmdIndex;
use user::Mode;
pub use user::User;

/// Why a command is refused, with the argument at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// Which denial to report when no selector allows a command.
    fn rank(self) -> u8 {
        match self {
            Denied::Command => 1,
            Denied::Key(_) => 2,
            Denied::Channel(_) => 3,
        }
    }

    fn pos(self) -> usize {
        match self {
            Denied::Command => 0,
            Denied::Key(i) | Denied::Channel(i) => i,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
        }
    }

    /// The error a client gets.
    pub fn message(self, cmd: &Command) -> String {
        match self {
            Denied::Command => format!(
                "NOPERM this user has no permissions to run the '{}' command",
                cmd.name
            ),
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .into()
            }
        }
    }

    /// The error for a queued command EXEC finds no longer allowed.
    pub fn exec_message(self) -> String {
        let why = match self {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
        )
    }

    /// The error `redis.call` raises in a script.
    pub fn script_message(self) -> &'static str {
        match self {
            Denied::Command => {
                "ERR The user executing the script can't run this command or subcommand"
            }
            Denied::Key(_) => {
                "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => {
                "ERR The user executing the script can't publish to the channel mentioned in the command"
            }
        }
    }

    /// The ACL LOG object: the command's name, or the key or channel.
    fn object(self, cmd: &Command, args: &Args<'_>) -> Vec<u8> {
        match self {
            Denied::Command => cmd.name.as_bytes().to_vec(),
            Denied::Key(i) | Denied::Channel(i) => args[i].to_vec(),
        }
    }
}

/// Why an ACL rule is refused (Redis's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    Unknown,
    AfterAllKeys,
    AfterAllChannels,
    NoSuchPassword,
    BadHash,
    SubcommandFirstArg,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::AfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::AfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

pub struct Acl {
    pub idx: CmdIndex,
    users: RwLock<BTreeMap<String, Arc<User>>>,
    pub log: log::AclLog,
}

impl Acl {
    /// The `default` user, `on nopass ~* &* +@all`, with `requirepass`.
    pub fn new(table: &CommandTable, requirepass: &str) -> Acl {
        let acl = Acl {
            idx: CmdIndex::build(table),
            users: RwLock::new(BTreeMap::new()),
            log: Default::default(),
        };
        acl.users
            .write()
            .insert("default".into(), Arc::new(acl.initial_default()));
        acl.set_requirepass(requirepass);
        acl
    }

    fn initial_default(&self) -> User {
        let mut u = User::new("default", &self.idx, false);
        for r in ["on", "nopass", "~*", "&*", "+@all"] {
            u.apply(&self.idx, r.as_bytes(), false)
                .expect("the default user's rules");
        }
        u.seal(&self.idx)
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get("default").expect("the default user always exists")
    }

    /// New connections must AUTH: the default user has a password or is off.
    pub fn default_needs_auth(&self) -> bool {
        let d = self.default_user();
        !d.nopass || !d.enabled
    }

    /// `requirepass`: the default user's only password (none: nopass).
    pub fn set_requirepass(&self, pass: &str) {
        let rules: Vec<Vec<u8>> = if pass.is_empty() {
            vec![b"resetpass".to_vec(), b"nopass".to_vec()]
        } else {
            vec![b"resetpass".to_vec(), format!(">{pass}").into_bytes()]
        };
        let _ = self.set_user("default", &rules, false);
    }

    /// ACL SETUSER: applies `rules` to a copy of the user (a new user if
    /// absent) and publishes it; nothing changes on error. The error is
    /// Redis's reply.
    pub fn set_user(&self, name: &str, rules: &[Vec<u8>], allchannels: bool) -> Result<(), String> {
        let mut users = self.users.write();
        let old = users.get(name).cloned();
        let mut u = match &old {
            Some(u) => User::clone(u),
            None => User::new(name, &self.idx, allchannels),
        };
        for r in rules {
            u.apply(&self.idx, r, allchannels).map_err(|e| {
                format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(r),
                    e.text()
                )
            })?;
        }
        users.insert(name.to_string(), Arc::new(u.seal(&self.idx)));
        if let Some(old) = old {
            old.mark_stale();
        }
        Ok(())
    }

    /// Removes users; the number removed.
    pub fn delete(&self, names: &[&str]) -> usize {
        let mut users = self.users.write();
        let mut n = 0;
        for name in names {
            if let Some(u) = users.remove(*name) {
                u.mark_stale();
                n += 1;
            }
        }
        n
    }

    /// Replaces every user (ACL LOAD, start-up): `default` is reset to its
    /// initial state first unless `users` defines it.
    pub fn replace_all(&self, users: Vec<User>) {
        let mut map = BTreeMap::new();
        map.insert("default".to_string(), Arc::new(self.initial_default()));
        for u in users {
            map.insert(u.name.clone(), Arc::new(u.seal(&self.idx)));
        }
        let old = std::mem::replace(&mut *self.users.write(), map);
        for u in old.values() {
            u.mark_stale();
        }
    }

    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// The user `name` if `pass` is one of its passwords (or it has
    /// nopass) and it is on.
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        // Hashed before the user table is locked.
        let given = user::hash_password(pass);
        let u = self.get(std::str::from_utf8(name).ok()?)?;
        let ok = u.enabled && (u.nopass || u.password_ok(&given));
        ok.then_some(u)
    }
}

/// The per-command check: whether the client's user may run `cmd` with
/// `args`. The default user costs one branch; a user with only its root
/// selector is usually decided by [`selector::Selector::quick_allows`].
#[inline]
pub fn check(
    srv: &Server,
    client: &mut Client,
    cmd: &Command,
    args: &Args<'_>,
) -> Result<(), Denied> {
    if let Some(u) = &client.user {
        match u.mode() {
            Mode::Open => return Ok(()),
            Mode::Root if u.root.quick_allows(cmd.id, srv.acl.idx.quick[cmd.id], args) => {
                return Ok(());
            }
            _ => {}
        }
    }
    check_slow(srv, client, cmd, args)
}

#[cold]
fn check_slow(
    srv: &Server,
    client: &mut Client,
    cmd: &Command,
    args: &Args<'_>,
) -> Result<(), Denied> {
    // No reference count is taken here: the user is shared by every
    // connection authenticated as it.
    if client.user.as_ref().is_none_or(|u| u.is_stale()) {
        current_user(srv, client);
    }
    match &client.user {
        Some(u) => u.check(&srv.acl.idx, cmd, args),
        // Deleted: its connections are being closed.
        None => Err(Denied::Command),
    }
}

/// Whether the client's user may read every key with `cmd`: SORT's BY and
/// GET patterns read keys no argument names, so Redis asks for a selector
/// allowing the command with all keys (`allkeys`, or a `*` pattern with
/// read permission).
pub fn reads_all_keys(srv: &Server, client: &mut Client, cmd: &Command) -> bool {
    let Some(u) = current_user(srv, client) else {
        return false;
    };
    std::iter::once(&u.root)
        .chain(&u.selectors)
        .any(|s| s.allowed(cmd.id) && s.reads_all_keys())
}

/// The client's user as it is now (after any ACL SETUSER).
pub fn current_user(srv: &Server, client: &mut Client) -> Option<Arc<User>> {
    if let Some(u) = &client.user
        && !u.is_stale()
    {
        return Some(u.clone());
    }
    let name = client.info.user.lock().clone();
    let u = srv.acl.get(&name);
    client.user.clone_from(&u);
    u
}

/// Where a denial happened (ACL LOG `context`).
#[derive(Clone, Copy)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

/// Records a denial in the ACL LOG.
pub fn log_denial(
    srv: &Server,
    client: &Client,
    client_info: String,
    denied: Denied,
    ctx: Context,
    cmd: &Command,
    args: &Args<'_>,
) {
    let username = client.info.user.lock().as_bytes().to_vec();
    let entry = log::Entry {
        count: 1,
        reason: denied.reason(),
        context: match ctx {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        },
        object: denied.object(cmd, args),
        username,
        at_ms: crate::server::now_ms(),
        client_info,
    };
    srv.acl
        .log
        .add(entry, srv.config.acllog_max_len.get().max(0) as usize);
}

/// Records a failed AUTH (reason `auth`, object `AUTH`).
pub fn log_auth_failure(srv: &Server, username: &[u8], client_info: String) {
    let entry = log::Entry {
        count: 1,
        reason: "auth",
        context: "toplevel",
        object: b"AUTH".to_vec(),
        username: username.to_vec(),
        at_ms: crate::server::now_ms(),
        client_info,
    };
    srv.acl
        .log
        .add(entry, srv.config.acllog_max_len.get().max(0) as usize);
}

/// The client's CLIENT LIST line while it runs `cmd` (ACL LOG client-info).
pub fn client_info(srv: &Server, client: &Client, cmd: &'static str, obl: usize) -> String {
    let me = crate::cmd::client::Me {
        cmd,
        obl: obl as u64,
        closing: client.close_after_reply,
    };
    crate::cmd::client::client_line(srv, &client.info, Some(me), crate::server::now_ms())
}

/// The central check's refusal: logged, and the error to reply.
pub fn refuse(
    srv: &Server,
    client: &Client,
    obl: usize,
    denied: Denied,
    cmd: &Command,
    args: &Args<'_>,
) -> String {
    let ctx = if client.multi.is_some() {
        Context::Multi
    } else {
        Context::Toplevel
    };
    let info = client_info(srv, client, cmd.name, obl);
    log_denial(srv, client, info, denied, ctx, cmd, args);
    denied.message(cmd)
}

/// A queued command EXEC finds no longer allowed: logged, and the error.
pub fn refuse_in_exec(
    srv: &Server,
    client: &Client,
    obl: usize,
    denied: Denied,
    cmd: &Command,
    args: &Args<'_>,
) -> String {
    let info = client_info(srv, client, "exec", obl);
    log_denial(srv, client, info, denied, Context::Multi, cmd, args);
    denied.exec_message()
}

/// A script's `redis.call` refused: logged, and the error it raises.
pub fn refuse_in_script(
    srv: &Server,
    client: &Client,
    denied: Denied,
    cmd: &Command,
    args: &Args<'_>,
    running: &'static str,
) -> &'static str {
    let info = client_info(srv, client, running, 0);
    log_denial(srv, client, info, denied, Context::Lua, cmd, args);
    denied.script_message()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick check never allows what the full check denies, and
    /// decides every allowed single-key command without SET's options.
    #[test]
    fn quick_check_agrees_with_the_full_check() {
        let table = CommandTable::build(&crate::cmd::handlers());
        let acl = Acl::new(&table, "");
        let users: [&[&str]; 4] = [
            &["on", "+@all", "-@dangerous", "~key:*", "%R~ro*", "%W~wo*"],
            &[
                "on", "+get", "+set", "+mget", "+del", "+publish", "~k?y*", "~*x",
            ],
            &["on", "+@read", "allkeys", "-get"],
            &["on", "+@all", "resetkeys", "~[a-c]*", "~exact"],
        ];
        let commands: [&[&str]; 16] = [
            &["set", "key:1", "v"],
            &["set", "key:1", "v", "get"],
            &["set", "ro1", "v"],
            &["set", "wo1", "v"],
            &["set", "wo1", "v", "GET"],
            &["get", "ro1"],
            &["get", "wo1"],
            &["get", "kay"],
            &["get", "x"],
            &["get", "bx"],
            &["get", ""],
            &["get", "exact"],
            &["mget", "key:1", "ro2"],
            &["del", "key:2"],
            &["publish", "ch", "m"],
            &["ping"],
        ];
        for (n, rules) in users.iter().enumerate() {
            let name = format!("u{n}");
            let rules: Vec<Vec<u8>> = rules.iter().map(|r| r.as_bytes().to_vec()).collect();
            acl.set_user(&name, &rules, false).unwrap();
            let u = acl.get(&name).unwrap();
            assert_eq!(u.mode(), Mode::Root, "{name}");
            for argv in commands {
                let mut buf = Vec::new();
                let mut spans = Vec::new();
                for a in argv {
                    spans.push((buf.len(), buf.len() + a.len()));
                    buf.extend_from_slice(a.as_bytes());
                }
                let args = crate::resp::parse::Parser::args_over(&buf, &spans);
                let cmd = table.lookup(argv[0].as_bytes()).unwrap();
                let quick = acl.idx.quick[cmd.id];
                let full = u.check(&acl.idx, cmd, &args).is_ok();
                let fast = u.root.quick_allows(cmd.id, quick, &args);
                assert!(
                    !fast || full,
                    "{name} {argv:?}: quick allowed a denied command"
                );
                let decidable = match quick {
                    index::Quick::NoKeys => true,
                    index::Quick::OneKey { variable, .. } => !variable || argv.len() <= 3,
                    index::Quick::Other => false,
                };
                if decidable {
                    assert_eq!(fast, full, "{name} {argv:?}");
                }
            }
        }
    }

    /// The cost of one check for a user with 20 key patterns and category
    /// rules (run with --ignored --nocapture in release).
    #[test]
    #[ignore]
    fn check_cost() {
        let table = CommandTable::build(&crate::cmd::handlers());
        let acl = Acl::new(&table, "");
        let mut rules: Vec<Vec<u8>> =
            ["on", "+@all", "-@dangerous", "-@admin", "+@read", "+@write"]
                .iter()
                .map(|r| r.as_bytes().to_vec())
                .collect();
        for i in 1..20 {
            rules.push(format!("~p{i}:*").into_bytes());
        }
        rules.push(b"~key:*".to_vec());
        acl.set_user("perf", &rules, false).unwrap();
        let u = acl.get("perf").unwrap();
        let buf = b"SETkey:000000012345value".to_vec();
        let spans = [(0, 3), (3, 19), (19, 24)];
        let args = crate::resp::parse::Parser::args_over(&buf, &spans);
        let set = table.lookup(b"set").unwrap();
        let n = 2_000_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert!(std::hint::black_box(&u).check(&acl.idx, set, &args).is_ok());
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!("SET check: {ns:.1} ns");
        let buf = b"GETkey:000000012345".to_vec();
        let spans = [(0, 3), (3, 19)];
        let args = crate::resp::parse::Parser::args_over(&buf, &spans);
        let get = table.lookup(b"get").unwrap();
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert!(std::hint::black_box(&u).check(&acl.idx, get, &args).is_ok());
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!("GET check: {ns:.1} ns");
    }
}
