//! Key specs: where a command's key arguments are, as the reference specs
//! describe them (a begin-search step, then a find-keys step), and the
//! generic extraction that COMMAND GETKEYS, transactions and cluster
//! routing share.

use super::{Command, Error, flags};
use crate::resp::Args;

/// Key spec flags, as bits, in the order COMMAND INFO prints them.
pub mod kflags {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;

    /// (spec name, reply name, bit)
    pub const NAMES: [(&str, &str, u32); 11] = [
        ("RO", "RO", RO),
        ("RW", "RW", RW),
        ("OW", "OW", OW),
        ("RM", "RM", RM),
        ("ACCESS", "access", ACCESS),
        ("UPDATE", "update", UPDATE),
        ("INSERT", "insert", INSERT),
        ("DELETE", "delete", DELETE),
        ("NOT_KEY", "not_key", NOT_KEY),
        ("INCOMPLETE", "incomplete", INCOMPLETE),
        ("VARIABLE_FLAGS", "variable_flags", VARIABLE_FLAGS),
    ];
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeginSearch {
    /// The first key is at this argument index.
    Index(i32),
    /// The first key follows `keyword`, searched from `startfrom` (negative:
    /// from the end, backwards).
    Keyword {
        keyword: &'static str,
        startfrom: i32,
    },
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys up to `lastkey` (relative to the first; negative: from the end),
    /// every `step`; `limit` > 0 divides the remaining arguments.
    Range {
        lastkey: i32,
        step: i32,
        limit: i32,
    },
    /// The key count is at `keynumidx` (relative to the first), the keys
    /// start `firstkey` after it.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        step: i32,
    },
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub flags: u32,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// The command's key specs (compiled in from the reference specs).
#[inline]
pub fn specs(cmd: &Command) -> &'static [KeySpec] {
    cmd.spec.key_specs
}

/// True if the command takes key arguments at all (specs that only name
/// channels, flagged NOT_KEY, don't count).
pub fn has_keys(cmd: &Command) -> bool {
    specs(cmd).iter().any(|s| s.flags & kflags::NOT_KEY == 0)
}

/// The argument positions of the keys of `args` (a full command line,
/// `args[0]` being the command name).
pub fn keys_of(cmd: &Command, args: &Args<'_>) -> Result<Vec<usize>, Error> {
    Ok(keys_and_flags(cmd, args)?
        .into_iter()
        .map(|(i, _)| i)
        .collect())
}

/// Like [`keys_of`], with each key's flags (COMMAND GETKEYSANDFLAGS).
pub fn keys_and_flags(cmd: &Command, args: &Args<'_>) -> Result<Vec<(usize, u32)>, Error> {
    if !has_keys(cmd) {
        return Err(Error::msg("ERR The command has no key arguments"));
    }
    let specs = specs(cmd);
    // The arguments as a slice, on the stack for the usual short command.
    let mut short: [&[u8]; 16] = [&[]; 16];
    let long: Vec<&[u8]>;
    let argv: &[&[u8]] = if args.len() <= short.len() {
        for (slot, a) in short.iter_mut().zip(args.iter()) {
            *slot = a;
        }
        &short[..args.len()]
    } else {
        long = args.iter().collect();
        &long
    };
    let variable = specs.iter().any(|s| s.flags & kflags::VARIABLE_FLAGS != 0);
    let mut found = None;
    if !variable {
        found = from_specs(cmd, specs, argv);
    }
    // As Redis, fall back to the command's own key finder when the specs
    // cannot say (unknown steps, bad counts) or their flags vary.
    let keys = match found {
        Some(k) => k,
        None => cmd.find_keys.and_then(|f| f(argv)).unwrap_or_default(),
    };
    if keys.is_empty() && !cmd.has(flags::NO_MANDATORY_KEYS) {
        return Err(Error::msg("ERR Invalid arguments specified for command"));
    }
    Ok(keys)
}

/// The key of a command whose only key spec names exactly argument 1 (SET,
/// INCR, HSET, LPUSH, ...), with the spec's declared flags; `None` for
/// every other shape (then use [`keys_and_flags`]). Allocation-free, for
/// per-command paths. A spec with variable flags still declares the
/// access kinds (RO/RW/OW/RM) its key can have.
#[inline]
pub fn single_key(cmd: &Command, args: &Args<'_>) -> Option<(usize, u32)> {
    match specs(cmd) {
        [
            KeySpec {
                flags,
                begin: BeginSearch::Index(1),
                find:
                    FindKeys::Range {
                        lastkey: 0,
                        step: 1,
                        limit: 0,
                    },
            },
        ] if flags & (kflags::NOT_KEY | kflags::INCOMPLETE) == 0 && args.len() > 1 => {
            Some((1, *flags))
        }
        _ => None,
    }
}

/// Runs every spec over `argv`; `None` when one of them can't be applied.
fn from_specs(cmd: &Command, specs: &[KeySpec], argv: &[&[u8]]) -> Option<Vec<(usize, u32)>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in specs {
        if spec.flags & kflags::NOT_KEY != 0 {
            continue;
        }
        let first = match &spec.begin {
            BeginSearch::Index(pos) => i64::from(*pos),
            BeginSearch::Keyword { keyword, startfrom } => {
                match find_keyword(argv, keyword, i64::from(*startfrom)) {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            BeginSearch::Unknown => return None,
        };
        // A spec that can't see every key defers to the command's finder.
        if spec.flags & kflags::INCOMPLETE != 0 {
            return None;
        }
        let (first, last, step) = match spec.find {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                let lastkey = i64::from(lastkey);
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / i64::from(limit) + lastkey)
                };
                (first, last, i64::from(step))
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                let at = first + i64::from(keynumidx);
                if at >= argc {
                    return None;
                }
                let n = crate::util::num::parse_i64(argv[at as usize]).filter(|n| *n >= 0)?;
                let first = first + i64::from(firstkey);
                (first, first + n - 1, i64::from(step))
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let step = step.max(1);
        let mut i = first;
        while i <= last {
            // Commands with a variable arity may be short; their handler
            // reports the error, the extraction just stops.
            if i < argc {
                keys.push((i as usize, spec.flags));
            } else if cmd.arity >= 0 {
                return None;
            }
            i += step;
        }
    }
    Some(keys)
}

fn find_keyword(argv: &[&[u8]], keyword: &str, startfrom: i64) -> Option<i64> {
    let argc = argv.len() as i64;
    let (start, end) = if startfrom > 0 {
        (startfrom, argc - 1)
    } else {
        (argc + startfrom, 1)
    };
    let mut i = start;
    loop {
        if i >= argc || i < 1 {
            return None;
        }
        if argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
            return Some(i);
        }
        if i == end {
            return None;
        }
        i += if start <= end { 1 } else { -1 };
    }
}

/// A command's own key finder: the key positions of `argv` and each key's
/// flags, or `None` when they can't be found. Used by every key extraction
/// ([`keys_and_flags`]: GETKEYS, ACL key checks, transactions' lock plan,
/// watchers, notifications) where the key specs can't locate every key
/// (INCOMPLETE, unknown steps, bad counts) or the key flags depend on the
/// arguments (VARIABLE_FLAGS).
pub type KeyFinder = fn(&[&[u8]]) -> Option<Vec<(usize, u32)>>;

/// The commands with their own key finder; [`super::CommandTable::build`]
/// puts each on its command's record (`Command::find_keys`).
/// Which keys a command reports as missed (`keymiss` events), declared
/// once per command when the table is built ([`keymiss_of`]) and read
/// after the handler ran (`pubsub::notify::key_misses`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMiss {
    /// None (OBJECT looks its key up without notifying; not a data command).
    Never,
    /// Every key (a read-only command).
    Read,
    /// The read-only keys (sources) of a write command.
    Sources,
    /// Every key, when the command changed nothing (GETEX/GETDEL read their
    /// key as a read command does, then maybe write it).
    ReadUnlessWritten,
}

/// Commands whose keymiss reporting the flags do not tell.
const KEYMISS_EXCEPTIONS: &[(&str, KeyMiss)] = &[
    ("object", KeyMiss::Never),
    ("getex", KeyMiss::ReadUnlessWritten),
    ("getdel", KeyMiss::ReadUnlessWritten),
];

/// The [`KeyMiss`] of a command (subcommands follow their container's
/// exception).
pub fn keymiss_of(name: &str, flags: u32) -> KeyMiss {
    let top = name.split('|').next().unwrap_or(name);
    if let Some((_, k)) = KEYMISS_EXCEPTIONS.iter().find(|(n, _)| *n == top) {
        *k
    } else if flags & super::flags::READONLY != 0 {
        KeyMiss::Read
    } else if flags & super::flags::WRITE != 0 {
        KeyMiss::Sources
    } else {
        KeyMiss::Never
    }
}

pub const KEY_FINDERS: &[(&str, KeyFinder)] = &[
    ("set", set_keys),
    ("bitfield", bitfield_keys),
    ("sort", sort_keys),
    ("sort_ro", sort_ro_keys),
    ("migrate", migrate_keys),
];

/// SET's key is read too with GET.
fn set_keys(argv: &[&[u8]]) -> Option<Vec<(usize, u32)>> {
    use kflags::*;
    let get = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
    let f = if get {
        RW | ACCESS | UPDATE
    } else {
        OW | UPDATE
    };
    (argv.len() > 1).then(|| vec![(1, f)])
}

/// BITFIELD writes only with SET or INCRBY.
fn bitfield_keys(argv: &[&[u8]]) -> Option<Vec<(usize, u32)>> {
    use kflags::*;
    let read_only = argv
        .iter()
        .skip(2)
        .all(|a| !a.eq_ignore_ascii_case(b"set") && !a.eq_ignore_ascii_case(b"incrby"));
    let f = if read_only {
        RO | ACCESS
    } else {
        RW | ACCESS | UPDATE
    };
    (argv.len() > 1).then(|| vec![(1, f)])
}

fn sort_ro_keys(_argv: &[&[u8]]) -> Option<Vec<(usize, u32)>> {
    Some(vec![(1, kflags::RO | kflags::ACCESS)])
}

/// SORT's source, and its STORE destination: the last STORE wins; LIMIT and
/// GET/BY take arguments.
fn sort_keys(argv: &[&[u8]]) -> Option<Vec<(usize, u32)>> {
    use kflags::*;
    let argc = argv.len();
    let mut keys = vec![(1, RO | ACCESS)];
    let mut store = None;
    let mut i = 2;
    while i < argc {
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if (a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by")) && i + 1 < argc
        {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argc {
            store = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    keys.extend(store.map(|i| (i, OW | UPDATE)));
    Some(keys)
}

/// MIGRATE's one key, or (with an empty key argument) the keys after KEYS.
fn migrate_keys(argv: &[&[u8]]) -> Option<Vec<(usize, u32)>> {
    use kflags::*;
    let argc = argv.len();
    let f = RW | ACCESS | DELETE;
    if argc > 6 && argv[3].is_empty() {
        // AUTH and AUTH2 take a password (and a user) that may be
        // spelled KEYS.
        let mut i = 6;
        let kw = loop {
            let a = argv.get(i)?;
            if a.eq_ignore_ascii_case(b"auth") {
                i += 2;
            } else if a.eq_ignore_ascii_case(b"auth2") {
                i += 3;
            } else if a.eq_ignore_ascii_case(b"keys") {
                break i;
            } else {
                i += 1;
            }
        };
        Some((kw + 1..argc).map(|i| (i, f)).collect())
    } else {
        (argc > 3).then(|| vec![(3, f)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_search_runs_both_ways() {
        let argv: Vec<&[u8]> = vec![b"migrate", b"h", b"p", b"", b"0", b"5", b"KEYS", b"a", b"b"];
        assert_eq!(find_keyword(&argv, "KEYS", -2), Some(6));
        assert_eq!(find_keyword(&argv, "KEYS", 1), Some(6));
        assert_eq!(find_keyword(&argv, "NOPE", 1), None);
    }

    #[test]
    fn sort_finds_its_store_key() {
        let argv: Vec<&[u8]> = vec![b"sort", b"a", b"by", b"store", b"store", b"b"];
        let k = sort_keys(&argv).unwrap();
        assert_eq!(k.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 5]);
    }

    #[test]
    fn every_command_the_specs_cannot_cover_has_a_key_finder() {
        let table = super::super::CommandTable::build(&super::super::handlers());
        for cmd in table.all() {
            let partial = specs(cmd).iter().any(|s| {
                s.flags & (kflags::INCOMPLETE | kflags::VARIABLE_FLAGS) != 0
                    || s.begin == BeginSearch::Unknown
                    || s.find == FindKeys::Unknown
            });
            assert_eq!(partial, cmd.find_keys.is_some(), "{}", cmd.name);
        }
        let set = table.lookup(b"set").unwrap();
        let argv: Vec<&[u8]> = vec![b"set", b"k", b"v", b"GET"];
        let k = (set.find_keys.unwrap())(&argv).unwrap();
        assert_eq!(k, vec![(1, kflags::RW | kflags::ACCESS | kflags::UPDATE)]);
    }
}
