//! The command facts ACL rules are written against: every Redis 7.0
//! command and subcommand (implemented or not, by its original name, as
//! rules name commands regardless of `rename-command`), its categories, and
//! the container/subcommand links.

use std::collections::HashMap;

use crate::cmd::CommandTable;
use crate::cmd::command_info::{ACL_CATEGORIES, acl_categories};

pub struct CmdIndex {
    /// Command ids run from 0 to `len` (the command table's ids).
    pub len: usize,
    /// Categories per command id, as bits indexed like [`ACL_CATEGORIES`].
    pub cats: Vec<u32>,
    /// Subcommand ids of each container (empty for plain commands).
    pub subs: Vec<Vec<usize>>,
    /// The container of each subcommand.
    pub parent: Vec<Option<usize>>,
    pub names: Vec<&'static str>,
    by_name: HashMap<&'static str, usize>,
    /// Channel arguments, per command id (see [`ChannelArgs`]).
    pub channels: Vec<ChannelArgs>,
    /// Commands with exactly one key at a fixed position: (position, key
    /// spec flags), so the check needs no key extraction. SET's flags
    /// depend on its GET option (it alone has VARIABLE_FLAGS here).
    pub single_key: Vec<Option<(usize, u32)>>,
    /// What the per-command check of a single-selector user needs to look
    /// at, per command id (see [`Quick`]).
    pub quick: Vec<Quick>,
}

/// A command's shape as the quick ACL check sees it: no keys and no
/// channels, one key at a fixed position (with the permission it needs),
/// or anything else (the full check decides).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Quick {
    NoKeys,
    /// `need` is [`super::selector::READ`] / `WRITE` bits. `variable`: the
    /// need changes with options (SET's GET), so it holds only when the
    /// command has no arguments past the value.
    OneKey {
        pos: u8,
        need: u8,
        variable: bool,
    },
    Other,
}

/// Which arguments of a command are Pub/Sub channels ACLs check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChannelArgs {
    None,
    /// The first argument (PUBLISH, SPUBLISH).
    First,
    /// Every argument (SUBSCRIBE, SSUBSCRIBE).
    All,
    /// Every argument, each a pattern compared literally (PSUBSCRIBE).
    AllPatterns,
}

impl CmdIndex {
    pub fn build(table: &CommandTable) -> CmdIndex {
        let len = table.len();
        let mut idx = CmdIndex {
            len,
            cats: vec![0; len],
            subs: vec![Vec::new(); len],
            parent: vec![None; len],
            names: vec![""; len],
            by_name: HashMap::with_capacity(len),
            channels: vec![ChannelArgs::None; len],
            single_key: vec![None; len],
            quick: vec![Quick::Other; len],
        };
        for c in table.all() {
            idx.names[c.id] = c.name;
            idx.by_name.insert(c.name, c.id);
            let mut bits = 0;
            for cat in acl_categories(c) {
                if let Some(i) = category_index(cat) {
                    bits |= 1 << i;
                }
            }
            idx.cats[c.id] = bits;
            idx.single_key[c.id] = single_key(c);
            idx.channels[c.id] = match c.name {
                "publish" | "spublish" => ChannelArgs::First,
                "subscribe" | "ssubscribe" => ChannelArgs::All,
                "psubscribe" => ChannelArgs::AllPatterns,
                _ => ChannelArgs::None,
            };
            idx.quick[c.id] = quick(c, idx.single_key[c.id], idx.channels[c.id]);
        }
        for c in table.all() {
            if let Some((parent, _)) = c.name.split_once('|')
                && let Some(&pid) = idx.by_name.get(parent)
            {
                idx.parent[c.id] = Some(pid);
                idx.subs[pid].push(c.id);
            }
        }
        idx
    }

    /// A command or subcommand (`config|get`) by name, any case.
    pub fn lookup(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(name.to_ascii_lowercase().as_str())
            .copied()
    }

    pub fn is_container(&self, id: usize) -> bool {
        !self.subs[id].is_empty()
    }

    /// Commands that run (everything but containers), in table order.
    pub fn leaves(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&id| !self.is_container(id))
    }
}

/// The index of a category name (any case) in Redis's order.
pub fn category_index(name: &str) -> Option<usize> {
    ACL_CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
}

fn quick(c: &crate::cmd::Command, single: Option<(usize, u32)>, channels: ChannelArgs) -> Quick {
    use crate::cmd::keyspec::{has_keys, kflags};
    if channels != ChannelArgs::None {
        return Quick::Other;
    }
    match single {
        Some((pos, flags)) => match u8::try_from(pos) {
            Ok(pos) => Quick::OneKey {
                pos,
                need: super::selector::need_of(flags),
                variable: flags & kflags::VARIABLE_FLAGS != 0,
            },
            Err(_) => Quick::Other,
        },
        None if has_keys(c) => Quick::Other,
        None => Quick::NoKeys,
    }
}

/// `(position, flags)` when the command's only key is at a fixed position.
fn single_key(c: &crate::cmd::Command) -> Option<(usize, u32)> {
    use crate::cmd::keyspec::{BeginSearch, FindKeys, kflags, specs};
    if c.name == "set" {
        // VARIABLE_FLAGS marks it: a GET option adds ACCESS.
        return Some((1, kflags::OW | kflags::UPDATE | kflags::VARIABLE_FLAGS));
    }
    let [spec] = specs(c) else { return None };
    if spec.flags & (kflags::INCOMPLETE | kflags::VARIABLE_FLAGS | kflags::NOT_KEY) != 0 {
        return None;
    }
    match (&spec.begin, &spec.find) {
        (BeginSearch::Index(pos), FindKeys::Range { lastkey: 0, .. }) if *pos > 0 => {
            Some((*pos as usize, spec.flags))
        }
        _ => None,
    }
}
