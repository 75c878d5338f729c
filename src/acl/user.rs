//! A user: on/off, passwords (kept as SHA-256 digests), the root selector
//! and extra selectors. Users are immutable once published: ACL SETUSER
//! edits a copy and swaps it in, marking the old one stale so connections
//! authenticated as it pick up the new one on their next command.

use std::sync::atomic::{AtomicU8, Ordering};

use sha2::{Digest, Sha256};

use super::index::CmdIndex;
use super::selector::Selector;
use super::{Denied, RuleError};
use crate::cmd::Command;
use crate::resp::Args;

pub type Hash = [u8; 32];

pub fn hash_password(pass: &[u8]) -> Hash {
    Sha256::digest(pass).into()
}

pub fn hex(h: &Hash) -> String {
    let mut s = String::with_capacity(64);
    for b in h {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A `#<hash>` argument: exactly 64 lowercase hex digits.
fn parse_hex(s: &[u8]) -> Result<Hash, RuleError> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if s.len() != 64 {
        return Err(RuleError::BadHash);
    }
    let mut h = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        h[i] = digit(pair[0]).ok_or(RuleError::BadHash)? << 4
            | digit(pair[1]).ok_or(RuleError::BadHash)?;
    }
    Ok(h)
}

/// Equality in time independent of where the digests differ.
fn digests_equal(a: &Hash, b: &Hash) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

#[derive(Debug)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    pub passwords: Vec<Hash>,
    /// `Some(true)`: sanitize-payload, `Some(false)`: skip-sanitize-payload.
    pub sanitize: Option<bool>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
    /// How the per-command check treats this version of the user (one
    /// load): [`Mode`] as a byte.
    mode: AtomicU8,
}

/// What [`User::mode`] answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Replaced or deleted: the connection looks its user up again.
    Stale,
    /// Everything is allowed: the check is this one load.
    Open,
    /// Only the root selector: the quick check can decide.
    Root,
    /// Extra selectors: the full check.
    Selectors,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::Stale, Mode::Open, Mode::Root, Mode::Selectors];
}

impl Clone for User {
    fn clone(&self) -> User {
        User {
            name: self.name.clone(),
            enabled: self.enabled,
            nopass: self.nopass,
            passwords: self.passwords.clone(),
            sanitize: self.sanitize,
            root: self.root.clone(),
            selectors: self.selectors.clone(),
            mode: AtomicU8::new(Mode::Selectors as u8),
        }
    }
}

impl User {
    /// A new user: off, no passwords, no commands, no keys.
    pub fn new(name: &str, idx: &CmdIndex, allchannels: bool) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            sanitize: None,
            root: Selector::new(idx.len, allchannels),
            selectors: Vec::new(),
            mode: AtomicU8::new(Mode::Selectors as u8),
        }
    }

    /// Computes the check's mode; called before the user is published.
    pub fn seal(self, idx: &CmdIndex) -> User {
        let mode = if !self.selectors.is_empty() {
            Mode::Selectors
        } else if self.root.is_unrestricted(idx) {
            Mode::Open
        } else {
            Mode::Root
        };
        self.mode.store(mode as u8, Ordering::Relaxed);
        self
    }

    /// How the per-command check treats this user now.
    #[inline]
    pub fn mode(&self) -> Mode {
        Mode::ALL[usize::from(self.mode.load(Ordering::Relaxed) & 3)]
    }

    pub fn mark_stale(&self) {
        self.mode.store(Mode::Stale as u8, Ordering::Relaxed);
    }

    pub fn is_stale(&self) -> bool {
        self.mode() == Mode::Stale
    }

    pub fn password_ok(&self, given: &Hash) -> bool {
        // Every stored digest is compared, with no early exit.
        self.passwords
            .iter()
            .fold(false, |ok, h| digests_equal(h, given) | ok)
    }

    /// Applies one ACL SETUSER rule. `(...)` selectors arrive whole.
    pub fn apply(
        &mut self,
        idx: &CmdIndex,
        rule: &[u8],
        allchannels: bool,
    ) -> Result<(), RuleError> {
        if rule.first() == Some(&b'(') && rule.last() == Some(&b')') && rule.len() >= 2 {
            let mut sel = Selector::new(idx.len, allchannels);
            let inner = &rule[1..rule.len() - 1];
            for word in inner.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
                if !sel.apply(idx, word)? {
                    return Err(RuleError::Syntax);
                }
            }
            self.selectors.push(sel);
            return Ok(());
        }
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"skip-sanitize-payload" => self.sanitize = Some(false),
            b"sanitize-payload" => self.sanitize = Some(true),
            b"clearselectors" => self.selectors.clear(),
            b"reset" => {
                for r in ["resetpass", "resetkeys", "resetchannels"] {
                    self.apply(idx, r.as_bytes(), allchannels)?;
                }
                if allchannels {
                    self.apply(idx, b"allchannels", allchannels)?;
                }
                for r in ["off", "clearselectors", "-@all", "sanitize-payload"] {
                    self.apply(idx, r.as_bytes(), allchannels)?;
                }
            }
            _ => match rule.first() {
                Some(b'>') => {
                    self.add_password(hash_password(&rule[1..]));
                }
                Some(b'#') => {
                    self.add_password(parse_hex(&rule[1..])?);
                }
                Some(b'<') => self.remove_password(&hash_password(&rule[1..]))?,
                Some(b'!') => self.remove_password(&parse_hex(&rule[1..])?)?,
                _ => {
                    if !self.root.apply(idx, rule)? {
                        return Err(RuleError::Syntax);
                    }
                }
            },
        }
        Ok(())
    }

    fn add_password(&mut self, h: Hash) {
        self.nopass = false;
        if !self.passwords.contains(&h) {
            self.passwords.push(h);
        }
    }

    fn remove_password(&mut self, h: &Hash) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != h);
        if self.passwords.len() == before {
            return Err(RuleError::NoSuchPassword);
        }
        self.nopass = false;
        Ok(())
    }

    /// The command against every selector: allowed if one allows it;
    /// otherwise the most specific denial (channel over key over command).
    pub fn check(&self, idx: &CmdIndex, cmd: &Command, args: &Args<'_>) -> Result<(), Denied> {
        let mut keys = None;
        let mut worst = match self.root.check(idx, cmd, args, &mut keys) {
            Ok(()) => return Ok(()),
            Err(d) => d,
        };
        for sel in &self.selectors {
            match sel.check(idx, cmd, args, &mut keys) {
                Ok(()) => return Ok(()),
                // The same kind of denial: the one further in the
                // arguments (the selector that got furthest).
                Err(d) if d.rank() > worst.rank() => worst = d,
                Err(d) if d.rank() == worst.rank() && d.pos() > worst.pos() => worst = d,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// Whether some selector lets the user subscribe to `channel`.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .any(|s| s.channel_allowed(channel, is_pattern))
    }

    /// The flags ACL GETUSER lists.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(true) => f.push("sanitize-payload"),
            Some(false) => f.push("skip-sanitize-payload"),
            None => {}
        }
        f
    }

    /// The user as an ACL LIST line / ACL file line.
    pub fn describe(&self, idx: &CmdIndex) -> String {
        let mut s = format!("user {}", self.name);
        for f in self.flags() {
            s.push(' ');
            s.push_str(f);
        }
        for p in &self.passwords {
            s.push_str(" #");
            s.push_str(&hex(p));
        }
        s.push(' ');
        s.push_str(&self.root.describe(idx));
        for sel in &self.selectors {
            s.push_str(" (");
            s.push_str(&sel.describe(idx));
            s.push(')');
        }
        s
    }
}

/// Joins the words of `(...)` selectors split across arguments, as Redis
/// does: from one starting with `(` to one ending with `)`, with spaces.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::with_capacity(args.len());
    let mut open: Option<Vec<u8>> = None;
    for &a in args {
        match open.as_mut() {
            Some(acc) => {
                acc.push(b' ');
                acc.extend_from_slice(a);
                if a.last() == Some(&b')') {
                    out.push(open.take().expect("open"));
                }
            }
            None if a.first() == Some(&b'(') && a.last() != Some(&b')') => {
                open = Some(a.to_vec());
            }
            None => out.push(a.to_vec()),
        }
    }
    if let Some(acc) = open {
        return Err(format!(
            "ERR Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(&acc)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            hex(&hash_password(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&hash_password(b"p1")),
            "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"
        );
        assert_eq!(
            parse_hex(hex(&hash_password(b"x")).as_bytes()).unwrap(),
            hash_password(b"x")
        );
        assert!(parse_hex(b"ABC").is_err());
        assert!(parse_hex(&[b'A'; 64]).is_err());
    }

    #[test]
    fn selectors_split_across_arguments_are_joined() {
        let args: Vec<&[u8]> = vec![b"on", b"(+get", b"~x*)", b"(+set)"];
        let m = merge_selector_args(&args).unwrap();
        assert_eq!(
            m,
            vec![b"on".to_vec(), b"(+get ~x*)".to_vec(), b"(+set)".to_vec()]
        );
        let bad: Vec<&[u8]> = vec![b"(+get"];
        assert_eq!(
            merge_selector_args(&bad).unwrap_err(),
            "ERR Unmatched parenthesis in acl selector starting at '(+get'."
        );
    }
}
