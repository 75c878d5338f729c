//! The command table: facts from the reference specs (arity, flags, key
//! specs, ACL categories, arguments) joined with the handlers that exist.
//! A command without a handler is "not implemented yet": it is absent from
//! dispatch and from COMMAND, and listed as such in the README.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::Value as Json;

use super::Handler;

/// Command flags, as bits (names as in the reference specs).
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const ASKING: u32 = 1 << 11;
    pub const FAST: u32 = 1 << 12;
    pub const NO_AUTH: u32 = 1 << 13;
    pub const MAY_REPLICATE: u32 = 1 << 14;
    pub const SENTINEL: u32 = 1 << 15;
    pub const ONLY_SENTINEL: u32 = 1 << 16;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    pub const PROTECTED: u32 = 1 << 18;
    pub const NO_ASYNC_LOADING: u32 = 1 << 19;
    pub const NO_MULTI: u32 = 1 << 20;
    pub const ALLOW_BUSY: u32 = 1 << 21;
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 22;
    /// ferrokv's own (not a Redis flag, never shown): the command runs Lua
    /// (see `RUNS_LUA`), so it runs on the script thread.
    pub const RUNS_SCRIPTS: u32 = 1 << 31;

    pub const NAMES: [(&str, u32); 23] = [
        ("WRITE", WRITE),
        ("READONLY", READONLY),
        ("DENYOOM", DENYOOM),
        ("ADMIN", ADMIN),
        ("PUBSUB", PUBSUB),
        ("NOSCRIPT", NOSCRIPT),
        ("BLOCKING", BLOCKING),
        ("LOADING", LOADING),
        ("STALE", STALE),
        ("SKIP_MONITOR", SKIP_MONITOR),
        ("SKIP_SLOWLOG", SKIP_SLOWLOG),
        ("ASKING", ASKING),
        ("FAST", FAST),
        ("NO_AUTH", NO_AUTH),
        ("MAY_REPLICATE", MAY_REPLICATE),
        ("SENTINEL", SENTINEL),
        ("ONLY_SENTINEL", ONLY_SENTINEL),
        ("NO_MANDATORY_KEYS", NO_MANDATORY_KEYS),
        ("PROTECTED", PROTECTED),
        ("NO_ASYNC_LOADING", NO_ASYNC_LOADING),
        ("NO_MULTI", NO_MULTI),
        ("ALLOW_BUSY", ALLOW_BUSY),
        ("TOUCHES_ARBITRARY_KEYS", TOUCHES_ARBITRARY_KEYS),
    ];
}

/// FNV-1a: command names are short, and this map is read on every command.
#[derive(Default)]
pub struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf29ce484222325
        } else {
            self.0
        };
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        self.0 = h;
    }
}

type NameMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<NameHasher>>;

/// Commands that run Lua: EVAL and FCALL and their variants, and FUNCTION
/// LOAD and RESTORE (a library body runs). They get `flags::RUNS_SCRIPTS`.
const RUNS_LUA: [&str; 8] = [
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "function|load",
    "function|restore",
];

pub struct Command {
    /// Lowercase full name: `get`, `client|list`.
    pub name: &'static str,
    /// Index into the table (per-command statistics).
    pub id: usize,
    pub arity: i32,
    pub flags: u32,
    pub handler: Option<Handler>,
    /// The facts from the reference spec (COMMAND INFO / DOCS render these).
    pub spec: &'static Json,
    /// Subcommand ids, for container commands.
    pub subcommands: Option<NameMap<usize>>,
    /// The key specs parsed from `spec`, on first use
    /// ([`super::keyspec::specs`]).
    pub key_specs: std::sync::OnceLock<Vec<super::keyspec::KeySpec>>,
    /// What it may touch, declared once ([`super::footprint::declare`]);
    /// the dispatcher and EXEC lock from it.
    pub footprint: super::footprint::Scope,
}

impl Command {
    #[inline]
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn is_implemented(&self) -> bool {
        self.handler.is_some() || self.subcommands.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// The name as shown in errors: `client|setname`.
    pub fn display_name(&self) -> &'static str {
        self.name
    }
}

pub struct CommandTable {
    commands: Vec<Command>,
    /// Implemented top-level commands by the name clients call them
    /// (`rename-command` changes it).
    top: NameMap<usize>,
    /// Every top-level command Redis 7.0 has, implemented or not, by its
    /// current name: what `rename-command` may rename.
    names: NameMap<usize>,
}

static FACTS: &str = include_str!("../../data/commands.json");
static EXTRA_FACTS: &str = include_str!("../../data/commands-extra.json");

fn parse_flags(spec: &Json) -> u32 {
    let mut f = 0;
    if let Some(list) = spec.get("command_flags").and_then(|v| v.as_array()) {
        for name in list.iter().filter_map(|v| v.as_str()) {
            if let Some((_, bit)) = flags::NAMES.iter().find(|(n, _)| *n == name) {
                f |= bit;
            }
        }
    }
    f
}

/// Lowercases `name` into `buf` if it fits; command names are short.
#[inline]
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(&buf[..name.len()])
}

impl CommandTable {
    /// Builds the table from the facts and the registered handlers.
    pub fn build(handlers: &[(&'static str, Handler)]) -> CommandTable {
        let facts: &'static Json = Box::leak(Box::new(
            serde_json::from_str::<Json>(FACTS).expect("data/commands.json is valid JSON"),
        ));
        let extra: &'static Json = Box::leak(Box::new(
            serde_json::from_str::<Json>(EXTRA_FACTS).expect("data/commands-extra.json is valid"),
        ));
        let mut all: Vec<(&'static str, &'static Json)> = Vec::new();
        for src in [facts, extra] {
            for (name, spec) in src.as_object().expect("facts map") {
                let flags = parse_flags(spec);
                if flags & flags::ONLY_SENTINEL != 0 {
                    continue;
                }
                all.push((Box::leak(name.clone().into_boxed_str()), spec));
            }
        }
        all.sort_by_key(|(n, _)| *n);
        let mut table = CommandTable {
            commands: Vec::new(),
            top: NameMap::default(),
            names: NameMap::default(),
        };
        for (name, spec) in &all {
            let id = table.commands.len();
            let handler = handlers.iter().find(|(n, _)| n == name).map(|(_, h)| *h);
            table.commands.push(Command {
                name,
                id,
                arity: spec.get("arity").and_then(|v| v.as_i64()).unwrap_or(-1) as i32,
                flags: parse_flags(spec)
                    | if RUNS_LUA.contains(name) {
                        flags::RUNS_SCRIPTS
                    } else {
                        0
                    },
                handler,
                spec,
                subcommands: None,
                key_specs: std::sync::OnceLock::new(),
                footprint: super::footprint::Scope::None,
            });
            let footprint = super::footprint::declare(&table.commands[id]);
            table.commands[id].footprint = footprint;
        }
        for (name, _) in handlers {
            assert!(
                all.iter().any(|(n, _)| n == name),
                "handler registered for `{name}`, which has no spec in data/"
            );
        }
        // Link subcommands to containers; only implemented ones are reachable.
        for id in 0..table.commands.len() {
            let name = table.commands[id].name;
            if let Some((parent, sub)) = name.split_once('|') {
                if table.commands[id].handler.is_none() {
                    continue;
                }
                let pid = table
                    .commands
                    .iter()
                    .position(|c| c.name == parent)
                    .expect("container");
                table.commands[pid]
                    .subcommands
                    .get_or_insert_with(NameMap::default)
                    .insert(sub.as_bytes().into(), id);
            } else {
                table.top.insert(name.as_bytes().into(), id);
            }
        }
        table.names = table.top.clone();
        // Containers with no implemented subcommand stay out of dispatch.
        table
            .top
            .retain(|_, id| table.commands[*id].is_implemented());
        table
    }

    /// `rename-command old new`: the command answers to `new` only; an
    /// empty `new` removes it. Names are any case. The command keeps its
    /// own name in replies (COMMAND INFO, errors, statistics), as in Redis.
    /// A command Redis has but ferrokv does not implement yet can be
    /// renamed too (it stays unknown under either name).
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), &'static str> {
        let old: Box<[u8]> = old.to_ascii_lowercase().into_bytes().into();
        let new: Box<[u8]> = new.to_ascii_lowercase().into_bytes().into();
        let Some(&id) = self.names.get(&old) else {
            return Err("No such command in rename-command");
        };
        // Checked before anything changes; renaming to itself is allowed.
        if !new.is_empty() && new != old && self.names.contains_key(&new) {
            return Err("Target command name already exists");
        }
        self.names.remove(&old);
        let implemented = self.top.remove(&old).is_some();
        if !new.is_empty() {
            if implemented {
                self.top.insert(new.clone(), id);
            }
            self.names.insert(new, id);
        }
        Ok(())
    }

    /// A top-level command by (any-case) name.
    #[inline]
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 64];
        let id = match lower(name, &mut buf) {
            Some(key) => self.top.get(key),
            // Only a name given by rename-command can be this long.
            None => self.top.get(name.to_ascii_lowercase().as_slice()),
        };
        id.map(|&id| &self.commands[id])
    }

    /// A subcommand of `parent` by (any-case) name.
    #[inline]
    pub fn lookup_sub(&self, parent: &Command, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 64];
        let key = lower(name, &mut buf)?;
        parent
            .subcommands
            .as_ref()?
            .get(key)
            .map(|&id| &self.commands[id])
    }

    pub fn get(&self, id: usize) -> &Command {
        &self.commands[id]
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Every command and subcommand with a spec, implemented or not.
    pub fn all(&self) -> impl Iterator<Item = &Command> {
        self.commands.iter()
    }

    /// Implemented top-level commands (what COMMAND lists).
    pub fn top_level(&self) -> impl Iterator<Item = &Command> {
        let mut ids: Vec<usize> = self.top.values().copied().collect();
        ids.sort_unstable();
        ids.into_iter().map(move |id| &self.commands[id])
    }

    /// Implemented subcommands of a container, in name order.
    pub fn subcommands_of<'a>(&'a self, parent: &'a Command) -> impl Iterator<Item = &'a Command> {
        let mut ids: Vec<usize> = parent
            .subcommands
            .iter()
            .flat_map(|m| m.values().copied())
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(move |id| &self.commands[id])
    }
}

impl CommandTable {
    /// The README's compatibility table: per command group, which Redis 7.0
    /// commands (and subcommands) are implemented and which are not yet.
    pub fn compatibility_markdown(&self) -> String {
        use std::collections::BTreeMap;
        let mut groups: BTreeMap<&str, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for c in &self.commands {
            // Containers are represented by their subcommands.
            if self
                .commands
                .iter()
                .any(|s| s.name.starts_with(c.name) && s.name[c.name.len()..].starts_with('|'))
            {
                continue;
            }
            let group = c
                .spec
                .get("group")
                .and_then(|g| g.as_str())
                .unwrap_or("other");
            let shown = c.name.replace('|', " ").to_ascii_uppercase();
            let entry = groups.entry(group).or_default();
            if c.handler.is_some() {
                entry.0.push(shown);
            } else {
                entry.1.push(shown);
            }
        }
        let mut s = String::from("| group | implemented | not yet |\n|---|---|---|\n");
        for (g, (yes, no)) in groups {
            s.push_str(&format!(
                "| {g} | {} | {} |\n",
                if yes.is_empty() {
                    "—".into()
                } else {
                    yes.join(", ")
                },
                if no.is_empty() {
                    "—".into()
                } else {
                    no.join(", ")
                }
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_moves_the_name_and_keeps_the_command_s_own() {
        let mut t = CommandTable::build(&crate::cmd::handlers());
        let count = t.top_level().count();
        t.rename("GET", "MyGet").unwrap();
        assert!(t.lookup(b"get").is_none());
        assert_eq!(t.lookup(b"MYGET").unwrap().name, "get");
        assert_eq!(t.top_level().count(), count);
        assert_eq!(
            t.rename("get", "x"),
            Err("No such command in rename-command")
        );
        assert_eq!(
            t.rename("myget", "set"),
            Err("Target command name already exists")
        );
        // Renaming to itself works (the old name is gone first).
        t.rename("set", "SET").unwrap();
        assert!(t.lookup(b"set").is_some());
        // Removal, and names longer than the lookup's stack buffer.
        t.rename("ping", "").unwrap();
        assert!(t.lookup(b"ping").is_none());
        assert_eq!(t.top_level().count(), count - 1);
        let long = "p".repeat(100);
        t.rename("echo", &long).unwrap();
        assert_eq!(
            t.lookup(long.to_uppercase().as_bytes()).unwrap().name,
            "echo"
        );
        // Subcommands are not top-level names; unimplemented commands can
        // be renamed (they stay unknown).
        assert!(t.rename("client|id", "x").is_err());
        t.rename("bgsave", "").unwrap();
        t.rename("sync", "sync2").unwrap();
        assert!(t.lookup(b"sync2").is_none());
    }
}
