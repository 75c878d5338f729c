//! A selector: one set of permissions (commands, keys, channels). A user
//! has a root selector and any number of extra ones written `(...)`; a
//! command is allowed when any selector allows all of it.

use super::index::{ChannelArgs, CmdIndex, Quick, category_index};
use super::{Denied, RuleError};
use crate::cmd::Command;
use crate::cmd::keyspec::{self, kflags};
use crate::resp::Args;
use crate::util::glob::glob_match;

/// Key pattern permissions.
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// One bit per command id.
    bits: Vec<u64>,
    /// `+@all` / `allcommands` was the last word on all commands: commands
    /// added later (modules, in Redis) would be allowed; it decides how
    /// the rules are described (`+@all ...` or `-@all ...`).
    pub allcommands: bool,
    /// Allowed first arguments of commands otherwise denied (`+select|0`).
    first_args: Vec<(usize, Vec<Vec<u8>>)>,
    pub allkeys: bool,
    /// Key patterns, in the order given.
    pub keys: Vec<KeyPattern>,
    /// Indexes of the patterns with a literal first byte, grouped by that
    /// byte: a key is compared only with the patterns it could match.
    by_first: Vec<Probe>,
    /// Where each first byte's group starts in `by_first` (`b` to `b + 1`).
    starts: Vec<u32>,
    /// Patterns starting with a glob character.
    wild: Vec<usize>,
    pub allchannels: bool,
    pub channels: Vec<Vec<u8>>,
}

impl Selector {
    /// No commands, no keys; channels as `acl-pubsub-default` says.
    pub fn new(len: usize, allchannels: bool) -> Selector {
        Selector {
            bits: vec![0; len.div_ceil(64)],
            allcommands: false,
            first_args: Vec::new(),
            allkeys: false,
            keys: Vec::new(),
            by_first: Vec::new(),
            starts: Vec::new(),
            wild: Vec::new(),
            allchannels,
            channels: Vec::new(),
        }
    }

    #[inline]
    pub fn allowed(&self, id: usize) -> bool {
        self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set(&mut self, id: usize, on: bool) {
        if on {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
        }
        self.first_args.retain(|(c, _)| *c != id);
    }

    /// A command and, for a container, all its subcommands.
    fn set_command(&mut self, idx: &CmdIndex, id: usize, on: bool) {
        self.set(id, on);
        for &sub in &idx.subs[id] {
            self.set(sub, on);
        }
    }

    /// Every command: everything may run (and the user is as the default).
    pub fn is_unrestricted(&self, idx: &CmdIndex) -> bool {
        self.allkeys && self.allchannels && (0..idx.len).all(|id| self.allowed(id))
    }

    /// Applies one rule that belongs to a selector (commands, keys,
    /// channels). `Ok(false)`: not a selector rule.
    pub fn apply(&mut self, idx: &CmdIndex, rule: &[u8]) -> Result<bool, RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" => return self.add_key(READ | WRITE, b"*", true).map(|()| true),
            b"resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
                self.index_keys();
                return Ok(true);
            }
            b"allchannels" => return self.add_channel(b"*").map(|()| true),
            b"resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
                return Ok(true);
            }
            b"allcommands" => return self.command_rule(idx, b"+@all").map(|()| true),
            b"nocommands" => return self.command_rule(idx, b"-@all").map(|()| true),
            _ => {}
        }
        match rule.first() {
            Some(b'~') => self.add_key(READ | WRITE, &rule[1..], true).map(|()| true),
            Some(b'%') => {
                let tilde = rule
                    .iter()
                    .position(|&b| b == b'~')
                    .ok_or(RuleError::Syntax)?;
                let mut perm = 0;
                for &b in &rule[1..tilde] {
                    let bit = match b.to_ascii_uppercase() {
                        b'R' => READ,
                        b'W' => WRITE,
                        _ => return Err(RuleError::Syntax),
                    };
                    if perm & bit != 0 {
                        return Err(RuleError::Syntax);
                    }
                    perm |= bit;
                }
                if perm == 0 {
                    return Err(RuleError::Syntax);
                }
                self.add_key(perm, &rule[tilde + 1..], false).map(|()| true)
            }
            Some(b'&') => self.add_channel(&rule[1..]).map(|()| true),
            Some(b'+' | b'-') => self.command_rule(idx, rule).map(|()| true),
            _ => Ok(false),
        }
    }

    fn add_key(&mut self, perm: u8, pat: &[u8], all: bool) -> Result<(), RuleError> {
        // Only `~*` itself means all keys; `%RW~*` is a pattern like others.
        if perm == READ | WRITE && pat == b"*" && all {
            self.allkeys = true;
            self.keys.clear();
            self.index_keys();
            return Ok(());
        }
        if self.allkeys {
            return Err(RuleError::AfterAllKeys);
        }
        // The same pattern given again widens its permissions.
        if let Some(k) = self.keys.iter_mut().find(|k| k.pat == pat) {
            k.perm |= perm;
        } else {
            self.keys.push(KeyPattern::new(perm, pat));
        }
        self.index_keys();
        Ok(())
    }

    fn index_keys(&mut self) {
        let mut firsts: Vec<(u8, usize)> = Vec::new();
        self.wild.clear();
        for (i, k) in self.keys.iter().enumerate() {
            match k.first_literal() {
                Some(b) => firsts.push((b, i)),
                None => self.wild.push(i),
            }
        }
        firsts.sort_unstable();
        self.by_first = firsts
            .iter()
            .map(|&(_, i)| Probe::new(&self.keys[i], i))
            .collect();
        self.starts.clear();
        if firsts.is_empty() {
            return;
        }
        // Each pattern is an argument of one ACL SETUSER: far fewer than
        // u32::MAX.
        self.starts = (0..=256usize)
            .map(|b| firsts.partition_point(|&(f, _)| usize::from(f) < b) as u32)
            .collect();
    }

    fn add_channel(&mut self, pat: &[u8]) -> Result<(), RuleError> {
        if pat == b"*" {
            self.allchannels = true;
            self.channels.clear();
            return Ok(());
        }
        if self.allchannels {
            return Err(RuleError::AfterAllChannels);
        }
        if !self.channels.iter().any(|c| c == pat) {
            self.channels.push(pat.to_vec());
        }
        Ok(())
    }

    /// `+cmd`, `-cmd`, `+@cat`, `-@cat`, `+cmd|sub`, `-cmd|sub`,
    /// `+cmd|firstarg`.
    fn command_rule(&mut self, idx: &CmdIndex, rule: &[u8]) -> Result<(), RuleError> {
        let on = rule[0] == b'+';
        let name = std::str::from_utf8(&rule[1..]).map_err(|_| RuleError::Unknown)?;
        if let Some(cat) = name.strip_prefix('@') {
            if cat.eq_ignore_ascii_case("all") {
                for id in 0..idx.len {
                    self.set(id, on);
                }
                self.first_args.clear();
                self.allcommands = on;
                return Ok(());
            }
            let bit = 1 << category_index(cat).ok_or(RuleError::Unknown)?;
            for id in 0..idx.len {
                if idx.cats[id] & bit != 0 {
                    self.set(id, on);
                }
            }
            return Ok(());
        }
        if let Some(id) = idx.lookup(name) {
            // A subcommand with `|`, or a plain command.
            self.set_command(idx, id, on);
            return Ok(());
        }
        let Some((cmd, arg)) = name.split_once('|') else {
            return Err(RuleError::Unknown);
        };
        if cmd.is_empty() || arg.is_empty() {
            return Err(RuleError::Syntax);
        }
        let id = idx.lookup(cmd).ok_or(RuleError::Unknown)?;
        if idx.is_container(id) {
            // `config|get|x`: first arguments of subcommands are not rules.
            return match arg.split_once('|') {
                Some((sub, _)) if idx.lookup(&format!("{cmd}|{sub}")).is_some() => {
                    Err(RuleError::SubcommandFirstArg)
                }
                _ => Err(RuleError::Unknown),
            };
        }
        if !on || arg.contains('|') {
            return Err(RuleError::Unknown);
        }
        if self.allowed(id) {
            return Ok(());
        }
        let arg = arg.as_bytes().to_vec();
        match self.first_args.iter_mut().find(|(c, _)| *c == id) {
            Some((_, list)) => {
                if !list.iter().any(|a| a.eq_ignore_ascii_case(&arg)) {
                    list.push(arg);
                }
            }
            None => self.first_args.push((id, vec![arg])),
        }
        Ok(())
    }

    /// Whether this selector allows `cmd` with `args`. `keys` caches the
    /// key positions across the user's selectors.
    pub fn check(
        &self,
        idx: &CmdIndex,
        cmd: &Command,
        args: &Args<'_>,
        keys: &mut Option<Vec<(usize, u32)>>,
    ) -> Result<(), Denied> {
        // AUTH and HELLO are always allowed (a user must be able to leave).
        if !self.allowed(cmd.id) && !cmd.has(crate::cmd::flags::NO_AUTH) {
            let first = args.len() > 1
                && self.first_args.iter().any(|(c, list)| {
                    *c == cmd.id && list.iter().any(|a| a.eq_ignore_ascii_case(&args[1]))
                });
            if !first {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys
            && let Some((pos, mut flags)) = idx.single_key[cmd.id]
        {
            // SET ... GET also reads the key.
            if flags & kflags::VARIABLE_FLAGS != 0
                && args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"))
            {
                flags |= kflags::ACCESS;
            }
            if pos < args.len() && !self.key_allowed(&args[pos], flags) {
                return Err(Denied::Key(pos));
            }
        } else if !self.allkeys && keyspec::has_keys(cmd) {
            let keys =
                keys.get_or_insert_with(|| keyspec::keys_and_flags(cmd, args).unwrap_or_default());
            for &(pos, flags) in keys.iter() {
                if !self.key_allowed(&args[pos], flags) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.allchannels {
            let (from, to, pattern) = match idx.channels[cmd.id] {
                ChannelArgs::None => (0, 0, false),
                ChannelArgs::First => (1, 2.min(args.len()), false),
                ChannelArgs::All => (1, args.len(), false),
                ChannelArgs::AllPatterns => (1, args.len(), true),
            };
            for pos in from..to {
                if !self.channel_allowed(&args[pos], pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    /// The common case of [`Selector::check`], decided from precomputed
    /// facts without key extraction: true when the command is allowed and
    /// its one key (if any) matches a pattern. False means "not decided
    /// here" (the full check runs and finds the reason).
    #[inline]
    pub fn quick_allows(&self, id: usize, quick: Quick, args: &Args<'_>) -> bool {
        if !self.allowed(id) {
            return false;
        }
        match quick {
            Quick::NoKeys => true,
            Quick::OneKey {
                pos,
                need,
                variable,
            } => {
                let pos = usize::from(pos);
                (!variable || args.len() <= pos + 2)
                    && pos < args.len()
                    && (self.allkeys || self.key_allowed_need(&args[pos], need))
            }
            Quick::Other => false,
        }
    }

    /// Whether every key may be read (`allkeys`, or `*` with `R`).
    pub fn reads_all_keys(&self) -> bool {
        self.allkeys
            || self
                .keys
                .iter()
                .any(|k| k.pat == b"*" && k.perm & READ != 0)
    }

    /// A key with the access its key spec declares: reading (ACCESS)
    /// needs `R`, changing (INSERT, DELETE, UPDATE) needs `W`.
    pub fn key_allowed(&self, key: &[u8], spec_flags: u32) -> bool {
        if self.allkeys {
            return true;
        }
        self.key_allowed_need(key, need_of(spec_flags))
    }

    /// A key with the permission bits `need` ([`READ`], [`WRITE`]).
    #[inline]
    fn key_allowed_need(&self, key: &[u8], need: u8) -> bool {
        if let Some(&b) = key.first()
            && !self.starts.is_empty()
        {
            let (from, to) = (self.starts[b as usize], self.starts[b as usize + 1]);
            for p in &self.by_first[from as usize..to as usize] {
                if p.perm & need == need && p.matches(key, &self.keys) {
                    return true;
                }
            }
        }
        self.wild.iter().any(|&i| {
            let k = &self.keys[i];
            k.perm & need == need && k.matches(key)
        })
    }

    /// A channel; a PSUBSCRIBE pattern must be one of the patterns as
    /// written.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|pat| {
                if is_pattern {
                    pat == channel
                } else {
                    pattern_match(pat, channel)
                }
            })
    }

    /// Keys as ACL GETUSER shows them: `~*`, or the patterns.
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|KeyPattern { perm, pat, .. }| {
                let prefix = match *perm {
                    READ => "%R~",
                    WRITE => "%W~",
                    _ => "~",
                };
                format!("{prefix}{}", String::from_utf8_lossy(pat))
            })
            .collect();
        parts.join(" ")
    }

    /// Channels as ACL GETUSER shows them: `&*`, or the patterns.
    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let parts: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        parts.join(" ")
    }

    /// The whole selector as ACL LIST writes it: keys, channels, commands.
    pub fn describe(&self, idx: &CmdIndex) -> String {
        let mut parts = Vec::new();
        let keys = self.describe_keys();
        if !keys.is_empty() || self.allkeys {
            parts.push(keys);
        }
        if self.allchannels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let ch = self.describe_channels();
            if !ch.is_empty() {
                parts.push(ch);
            }
        }
        parts.push(self.describe_commands(idx));
        parts.join(" ")
    }

    /// Command rules that rebuild exactly this selector's commands: `+@all`
    /// or `-@all`, then categories chosen greedily (each the one that
    /// fixes the most commands), then single commands and subcommands.
    pub fn describe_commands(&self, idx: &CmdIndex) -> String {
        let additive = !self.allcommands;
        let mut fake = Selector::new(idx.len, false);
        if !additive {
            fake.command_rule(idx, b"+@all").expect("+@all is a rule");
        }
        let mut rules = vec![if additive { "-@all" } else { "+@all" }.to_string()];
        let leaves: Vec<usize> = idx.leaves().collect();
        loop {
            let mut best: Option<(i64, usize)> = None;
            for cat in 0..crate::cmd::command_info::ACL_CATEGORIES.len() {
                let bit = 1 << cat;
                let mut gain = 0i64;
                for &id in &leaves {
                    if idx.cats[id] & bit == 0 || fake.allowed(id) == additive {
                        continue;
                    }
                    // Applying the category sets `id` to `additive`.
                    gain += if self.allowed(id) == additive { 1 } else { -1 };
                }
                if gain > 0 && best.is_none_or(|(g, _)| gain > g) {
                    best = Some((gain, cat));
                }
            }
            let Some((_, cat)) = best else { break };
            let name = crate::cmd::command_info::ACL_CATEGORIES[cat];
            let rule = format!("{}@{name}", if additive { '+' } else { '-' });
            fake.command_rule(idx, rule.as_bytes())
                .expect("a category is a rule");
            rules.push(rule);
        }
        let sign = |on: bool| if on { '+' } else { '-' };
        for id in 0..idx.len {
            if idx.parent[id].is_some() {
                continue;
            }
            let subs = &idx.subs[id];
            if subs.is_empty() {
                if self.allowed(id) != fake.allowed(id) {
                    rules.push(format!("{}{}", sign(self.allowed(id)), idx.names[id]));
                }
                if let Some((_, args)) = self.first_args.iter().find(|(c, _)| *c == id) {
                    for a in args {
                        rules.push(format!("+{}|{}", idx.names[id], String::from_utf8_lossy(a)));
                    }
                }
                continue;
            }
            let differ: Vec<usize> = subs
                .iter()
                .copied()
                .filter(|&s| self.allowed(s) != fake.allowed(s))
                .collect();
            if differ.is_empty() {
                continue;
            }
            let on = subs.iter().filter(|&&s| self.allowed(s)).count();
            let majority = on * 2 >= subs.len();
            let exceptions = subs
                .iter()
                .filter(|&&s| self.allowed(s) != majority)
                .count();
            let whole = subs.iter().any(|&s| fake.allowed(s) != majority);
            if whole && 1 + exceptions < differ.len() {
                rules.push(format!("{}{}", sign(majority), idx.names[id]));
                for &s in subs {
                    if self.allowed(s) != majority {
                        rules.push(format!("{}{}", sign(!majority), idx.names[s]));
                    }
                }
            } else {
                for s in differ {
                    rules.push(format!("{}{}", sign(self.allowed(s)), idx.names[s]));
                }
            }
        }
        rules.join(" ")
    }
}

/// The pattern permissions a key spec's flags need.
pub fn need_of(spec_flags: u32) -> u8 {
    let mut need = 0;
    if spec_flags & kflags::ACCESS != 0 {
        need |= READ;
    }
    if spec_flags & (kflags::INSERT | kflags::DELETE | kflags::UPDATE) != 0 {
        need |= WRITE;
    }
    need
}

/// A key pattern with its literal prefix worked out once: most patterns
/// are `prefix*`, decided by comparing the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub perm: u8,
    pub pat: Vec<u8>,
    /// Bytes before the first glob special character.
    lit: usize,
    shape: Shape,
}

/// A pattern with a literal first byte as the key check reads it: its
/// permissions and literal prefix inline, so a key is decided from this
/// array alone (one or two cache lines) unless the prefix is long or the
/// rest of the pattern needs the glob matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Probe {
    perm: u8,
    shape: Shape,
    /// The literal prefix's length when it fits in `head`.
    lit: Option<u8>,
    head: [u8; PROBE_HEAD],
    /// The pattern in `Selector::keys`.
    index: u32,
}

const PROBE_HEAD: usize = 14;

impl Probe {
    fn new(k: &KeyPattern, index: usize) -> Probe {
        let mut head = [0u8; PROBE_HEAD];
        let lit = (k.lit <= PROBE_HEAD).then(|| {
            head[..k.lit].copy_from_slice(&k.pat[..k.lit]);
            k.lit as u8
        });
        Probe {
            perm: k.perm,
            shape: k.shape,
            lit,
            head,
            // Patterns are arguments of ACL SETUSER: far fewer than u32::MAX.
            index: index as u32,
        }
    }

    #[inline]
    fn matches(&self, key: &[u8], keys: &[KeyPattern]) -> bool {
        let Some(lit) = self.lit else {
            return keys[self.index as usize].matches(key);
        };
        let lit = usize::from(lit);
        // Byte by byte: a call to memcmp costs more than these few bytes.
        if key.len() < lit || key.iter().zip(&self.head[..lit]).any(|(a, b)| a != b) {
            return false;
        }
        match self.shape {
            Shape::Exact => key.len() == lit,
            Shape::Prefix => !key.is_empty(),
            Shape::Glob => glob_match(&keys[self.index as usize].pat, key, false),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Exact,
    Prefix,
    Glob,
}

impl KeyPattern {
    fn new(perm: u8, pat: &[u8]) -> KeyPattern {
        let lit = literal_len(pat);
        let shape = match &pat[lit..] {
            b"" => Shape::Exact,
            b"*" => Shape::Prefix,
            _ => Shape::Glob,
        };
        KeyPattern {
            perm,
            pat: pat.to_vec(),
            lit,
            shape,
        }
    }

    fn first_literal(&self) -> Option<u8> {
        (self.lit > 0).then(|| self.pat[0])
    }

    #[inline]
    fn matches(&self, key: &[u8]) -> bool {
        // Most patterns that don't match differ in the first byte.
        if self.lit > 0 && key.first() != self.pat.first() {
            return false;
        }
        // A short prefix compares faster byte by byte than through memcmp.
        let prefix = &self.pat[..self.lit];
        if key.len() < prefix.len() || prefix.iter().zip(key).any(|(a, b)| a != b) {
            return false;
        }
        match self.shape {
            Shape::Exact => key.len() == self.lit,
            // Redis's matcher: a non-empty pattern never matches "".
            Shape::Prefix => !key.is_empty(),
            Shape::Glob => glob_match(&self.pat, key, false),
        }
    }
}

fn literal_len(pat: &[u8]) -> usize {
    pat.iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pat.len())
}

/// Glob matching, deciding `prefix*` patterns by their prefix. As Redis's
/// matcher, a non-empty pattern never matches the empty key (`~*` itself
/// is `allkeys`, decided before any pattern).
fn pattern_match(pat: &[u8], text: &[u8]) -> bool {
    let lit = literal_len(pat);
    if !text.starts_with(&pat[..lit]) {
        return false;
    }
    match &pat[lit..] {
        b"" => text.len() == lit,
        b"*" => !text.is_empty(),
        _ => glob_match(pat, text, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_index_finds_every_matching_pattern() {
        let mut s = Selector::new(1, false);
        for p in [&b"kb*"[..], b"ka*", b"*x", b"", b"k", b"[z]*", b"zz"] {
            s.add_key(READ | WRITE, p, true).unwrap();
        }
        s.add_key(READ, b"r*", false).unwrap();
        let rw = kflags::ACCESS | kflags::UPDATE;
        for (key, want) in [
            (&b"ka1"[..], true),
            (b"kb1", true),
            (b"kc1", false),
            (b"k", true),
            (b"", true),
            (b"yx", true),
            (b"zz", true),
            (b"za", true),
            (b"y", false),
        ] {
            assert_eq!(s.key_allowed(key, rw), want, "{key:?}");
        }
        assert!(s.key_allowed(b"r1", kflags::ACCESS));
        assert!(!s.key_allowed(b"r1", rw));
    }

    #[test]
    fn probes_decide_as_the_patterns_do() {
        let pats: [&[u8]; 8] = [
            b"key:*",
            b"key",
            b"k?y",
            b"averyveryverylongprefix:*",
            b"averyveryverylongprefix",
            b"k[a-z]y*",
            b"key:**",
            b"k\\*",
        ];
        let texts: [&[u8]; 9] = [
            b"key",
            b"key:1",
            b"",
            b"kay",
            b"k*",
            b"averyveryverylongprefix",
            b"averyveryverylongprefix:x",
            b"averyveryverylongprefi",
            b"key:",
        ];
        for p in pats {
            let k = KeyPattern::new(READ | WRITE, p);
            let probe = Probe::new(&k, 0);
            let keys = [k];
            for t in texts {
                assert_eq!(probe.matches(t, &keys), keys[0].matches(t), "{p:?} {t:?}");
                assert_eq!(keys[0].matches(t), glob_match(p, t, false), "{p:?} {t:?}");
            }
        }
    }

    #[test]
    fn pattern_shortcuts_agree_with_glob() {
        let pats: [&[u8]; 9] = [
            b"*",
            b"key:*",
            b"key",
            b"k?y",
            b"",
            b"a\\*b",
            b"[a-k]ey*",
            b"key:**",
            b"ke",
        ];
        let texts: [&[u8]; 7] = [b"key", b"key:1", b"", b"a*b", b"kay", b"ke", b"key:"];
        for p in pats {
            for t in texts {
                assert_eq!(pattern_match(p, t), glob_match(p, t, false), "{p:?} {t:?}");
            }
        }
    }
}
