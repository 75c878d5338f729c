//! COMMAND: the command table as clients see it (COMMAND INFO in the Redis
//! 7.0 reply shape, COMMAND DOCS for redis-cli's hints, GETKEYS, LIST).
//! Everything printed comes from the spec facts; only implemented commands
//! are listed.

use super::keyspec::{self, BeginSearch, FindKeys, kflags};
use super::table::Arg;
use super::{CmdResult, Command, Ctx, Error, Handler, flags};
use crate::resp::{Args, Reply};
use crate::util::glob::glob_match;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("command", command_all),
    ("command|count", count),
    ("command|info", info),
    ("command|docs", docs),
    ("command|getkeys", getkeys),
    ("command|getkeysandflags", getkeysandflags),
    ("command|list", list),
    ("command|help", help),
];

/// Command flags in COMMAND INFO order (MAY_REPLICATE, SENTINEL,
/// PROTECTED and TOUCHES_ARBITRARY_KEYS are never shown, as in Redis).
const SHOWN_FLAGS: [(u32, &str); 18] = [
    (flags::WRITE, "write"),
    (flags::READONLY, "readonly"),
    (flags::DENYOOM, "denyoom"),
    (flags::ADMIN, "admin"),
    (flags::PUBSUB, "pubsub"),
    (flags::NOSCRIPT, "noscript"),
    (flags::BLOCKING, "blocking"),
    (flags::LOADING, "loading"),
    (flags::STALE, "stale"),
    (flags::SKIP_MONITOR, "skip_monitor"),
    (flags::SKIP_SLOWLOG, "skip_slowlog"),
    (flags::ASKING, "asking"),
    (flags::FAST, "fast"),
    (flags::NO_AUTH, "no_auth"),
    (flags::NO_MANDATORY_KEYS, "no_mandatory_keys"),
    (flags::NO_ASYNC_LOADING, "no_async_loading"),
    (flags::NO_MULTI, "no_multi"),
    (flags::ALLOW_BUSY, "allow_busy"),
];

/// ACL categories in Redis's order.
pub const ACL_CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The command's ACL categories: the declared ones plus those its flags
/// imply (a command that isn't `@fast` is `@slow`).
pub fn acl_categories(cmd: &Command) -> Vec<&'static str> {
    let declared: Vec<String> = cmd
        .spec
        .acl_categories
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let has = |c: &str| declared.iter().any(|d| d == c);
    let scripting = has("scripting");
    let mut fast = has("fast");
    let mut implied: Vec<&str> = Vec::new();
    if cmd.has(flags::WRITE) {
        implied.push("write");
    }
    if cmd.has(flags::READONLY) && !scripting {
        implied.push("read");
    }
    if cmd.has(flags::ADMIN) {
        implied.extend(["admin", "dangerous"]);
    }
    if cmd.has(flags::PUBSUB) {
        implied.push("pubsub");
    }
    if cmd.has(flags::FAST) {
        implied.push("fast");
        fast = true;
    }
    if cmd.has(flags::BLOCKING) {
        implied.push("blocking");
    }
    if !fast {
        implied.push("slow");
    }
    ACL_CATEGORIES
        .iter()
        .copied()
        .filter(|c| has(c) || implied.contains(c))
        .collect()
}

/// The legacy (first key, last key, step) triple and whether the keys can
/// only be found by the key specs ("movablekeys"), derived as Redis does.
pub fn legacy_range(cmd: &Command) -> (i64, i64, i64, bool) {
    let specs = keyspec::specs(cmd);
    if specs.is_empty() {
        return (0, 0, 0, false);
    }
    let range = |s: &keyspec::KeySpec| match (&s.begin, &s.find) {
        (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) => {
            Some((i64::from(*pos), i64::from(*lastkey), i64::from(*step)))
        }
        _ => None,
    };
    if specs.len() == 1
        && let Some((pos, last, step)) = range(&specs[0])
    {
        let movable = specs[0].flags & kflags::INCOMPLETE != 0;
        let last = if last >= 0 { last + pos } else { last };
        return (pos, last, step, movable);
    }
    let mut movable = false;
    let (mut first, mut last, mut prev_last) = (i64::MAX, 0i64, 0i64);
    for s in specs {
        let Some((pos, lastkey, step)) = range(s) else {
            movable = true;
            continue;
        };
        if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
            movable = true;
            continue;
        }
        if s.flags & kflags::INCOMPLETE != 0 {
            movable = true;
        }
        first = first.min(pos);
        let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
        // Redis compares as unsigned: a negative (from the end) wins.
        last = if (last as u32) >= (abs as u32) {
            last
        } else {
            abs
        };
        prev_last = last;
    }
    if first == i64::MAX {
        return (0, 0, 0, true);
    }
    (first, last, 1, movable)
}

/// One command's COMMAND INFO entry.
fn reply_info(out: &mut Reply, cmd: &Command, table: &crate::cmd::CommandTable) {
    let (first, last, step, movable) = legacy_range(cmd);
    out.array(10);
    out.bulk(cmd.name.as_bytes());
    out.int(i64::from(cmd.arity));
    let mut shown: Vec<&str> = SHOWN_FLAGS
        .iter()
        .filter(|(f, _)| cmd.has(*f))
        .map(|(_, n)| *n)
        .collect();
    if movable {
        let at = shown
            .iter()
            .position(|f| *f == "allow_busy")
            .unwrap_or(shown.len());
        shown.insert(at, "movablekeys");
    }
    out.set(shown.len());
    shown.iter().for_each(|f| out.simple(f));
    out.int(first);
    out.int(last);
    out.int(step);
    let cats = acl_categories(cmd);
    out.set(cats.len());
    cats.iter().for_each(|c| out.simple(&format!("@{c}")));
    let tips: Vec<String> = cmd
        .spec
        .command_tips
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect();
    out.set(tips.len());
    tips.iter().for_each(|t| out.bulk(t.as_bytes()));
    reply_key_specs(out, cmd);
    if cmd.subcommands.is_some() {
        let subs: Vec<&Command> = table.subcommands_of(cmd).collect();
        out.array(subs.len());
        for s in subs {
            reply_info(out, s, table);
        }
    } else {
        out.set(0);
    }
}

fn reply_key_specs(out: &mut Reply, cmd: &Command) {
    let specs = keyspec::specs(cmd);
    out.set(specs.len());
    for s in specs {
        out.map(3);
        out.bulk(b"flags");
        let names: Vec<&str> = kflags::NAMES
            .iter()
            .filter(|(_, _, b)| s.flags & b != 0)
            .map(|(_, n, _)| *n)
            .collect();
        out.set(names.len());
        names.iter().for_each(|n| out.simple(n));
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        match &s.begin {
            BeginSearch::Index(pos) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                out.bulk(b"index");
                out.int(i64::from(*pos));
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                out.bulk(b"startfrom");
                out.int(i64::from(*startfrom));
            }
            BeginSearch::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        let fields: Vec<(&str, i32)> = match s.find {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                out.bulk(b"range");
                vec![("lastkey", lastkey), ("keystep", step), ("limit", limit)]
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                out.bulk(b"keynum");
                vec![
                    ("keynumidx", keynumidx),
                    ("firstkey", firstkey),
                    ("keystep", step),
                ]
            }
            FindKeys::Unknown => {
                out.bulk(b"unknown");
                vec![]
            }
        };
        out.bulk(b"spec");
        out.map(fields.len());
        for (k, v) in fields {
            out.bulk(k.as_bytes());
            out.int(i64::from(v));
        }
    }
}

/// One command's COMMAND DOCS entry (facts only: summaries, complexity and
/// history prose are not carried).
fn reply_docs(out: &mut Reply, cmd: &Command, table: &crate::cmd::CommandTable) {
    let spec = cmd.spec;
    let since = spec.since;
    let doc_flags: Vec<String> = spec
        .doc_flags
        .iter()
        .map(|f| f.to_ascii_lowercase())
        .collect();
    let deprecated = spec.deprecated_since;
    let args = spec.arguments;
    let container = cmd.subcommands.is_some();
    let n = 1
        + usize::from(since.is_some())
        + usize::from(!doc_flags.is_empty())
        + usize::from(deprecated.is_some())
        + usize::from(args.is_some())
        + usize::from(container);
    out.map(n);
    if let Some(s) = since {
        out.bulk(b"since");
        out.bulk(s.as_bytes());
    }
    out.bulk(b"group");
    // The spec files spell `sorted_set`; Redis prints `sorted-set`.
    out.bulk(spec.group.replace('_', "-").as_bytes());
    if !doc_flags.is_empty() {
        out.bulk(b"doc_flags");
        out.set(doc_flags.len());
        doc_flags.iter().for_each(|f| out.simple(f));
    }
    if let Some(d) = deprecated {
        out.bulk(b"deprecated_since");
        out.bulk(d.as_bytes());
    }
    if let Some(a) = args {
        out.bulk(b"arguments");
        reply_args(out, a);
    }
    if container {
        out.bulk(b"subcommands");
        let subs: Vec<&Command> = table.subcommands_of(cmd).collect();
        out.map(subs.len());
        for s in subs {
            out.bulk(s.name.as_bytes());
            reply_docs(out, s, table);
        }
    }
}

fn reply_args(out: &mut Reply, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let flag_names: Vec<&str> = [
            ("optional", a.optional),
            ("multiple", a.multiple),
            ("multiple_token", a.multiple_token),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| f)
        .collect();
        let ksi = a.key_spec_index;
        let nested = a.arguments;
        let n = 2
            + usize::from(ksi.is_some())
            + usize::from(a.token.is_some())
            + usize::from(a.since.is_some())
            + usize::from(!flag_names.is_empty())
            + usize::from(nested.is_some());
        out.map(n);
        // Redis's generated tables lowercase argument names.
        out.bulk(b"name");
        out.bulk(a.name.to_ascii_lowercase().as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.as_bytes());
        if let Some(i) = ksi {
            out.bulk(b"key_spec_index");
            out.int(i);
        }
        if let Some(t) = a.token {
            // As Redis's generated tables: tokens uppercase, `""` the empty string.
            out.bulk(b"token");
            out.bulk(
                if t == "\"\"" {
                    String::new()
                } else {
                    t.to_ascii_uppercase()
                }
                .as_bytes(),
            );
        }
        if let Some(v) = a.since {
            out.bulk(b"since");
            out.bulk(v.as_bytes());
        }
        if !flag_names.is_empty() {
            out.bulk(b"flags");
            out.set(flag_names.len());
            flag_names.iter().for_each(|f| out.simple(f));
        }
        if let Some(sub) = nested {
            out.bulk(b"arguments");
            reply_args(out, sub);
        }
    }
}

/// `name` or `container|sub`, any case, implemented only.
fn lookup_full<'t>(table: &'t crate::cmd::CommandTable, name: &[u8]) -> Option<&'t Command> {
    match name.iter().position(|&b| b == b'|') {
        None => table.lookup(name),
        Some(i) => {
            let parent = table.lookup(&name[..i])?;
            table.lookup_sub(parent, &name[i + 1..])
        }
    }
}

fn command_all(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let table = &ctx.srv.commands;
    let all: Vec<&Command> = table.top_level().collect();
    ctx.out.array(all.len());
    for c in all {
        reply_info(ctx.out, c, table);
    }
    Ok(())
}

fn count(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.int(ctx.srv.commands.top_level().count() as i64);
    Ok(())
}

fn info(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    let table = &ctx.srv.commands;
    ctx.out.array(args.len() - 2);
    for name in args.iter().skip(2) {
        match lookup_full(table, name) {
            Some(c) => reply_info(ctx.out, c, table),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn docs(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let table = &ctx.srv.commands;
    let found: Vec<&Command> = if args.len() == 2 {
        table.top_level().collect()
    } else {
        args.iter()
            .skip(2)
            .filter_map(|n| lookup_full(table, n))
            .collect()
    };
    ctx.out.map(found.len());
    for c in found {
        ctx.out.bulk(c.name.as_bytes());
        reply_docs(ctx.out, c, table);
    }
    Ok(())
}

/// The command named by `args[2..]` and its keys, with GETKEYS's errors.
fn keys_for(ctx: &Ctx<'_>, args: &Args<'_>) -> Result<Vec<(usize, u32)>, Error> {
    let line = args.tail(2);
    let cmd = ctx.srv.commands.lookup(&line[0]).and_then(|c| {
        if c.subcommands.is_some() {
            ctx.srv.commands.lookup_sub(c, line.get(1)?)
        } else {
            Some(c)
        }
    });
    let Some(cmd) = cmd else {
        return Err(Error::msg("ERR Invalid command specified"));
    };
    if !keyspec::has_keys(cmd) {
        return Err(Error::msg("ERR The command has no key arguments"));
    }
    let n = line.len() as i32;
    if (cmd.arity > 0 && cmd.arity != n) || n < -cmd.arity {
        return Err(Error::msg(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    // The positions index `line`: callers add 2 to read them from `args`.
    keyspec::keys_and_flags(cmd, &line)
}

fn getkeys(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = keys_for(ctx, args)?;
    ctx.out.array(keys.len());
    for (i, _) in keys {
        ctx.out.bulk(&args[i + 2]);
    }
    Ok(())
}

fn getkeysandflags(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let keys = keys_for(ctx, args)?;
    ctx.out.array(keys.len());
    for (i, f) in keys {
        ctx.out.array(2);
        ctx.out.bulk(&args[i + 2]);
        let names: Vec<&str> = kflags::NAMES
            .iter()
            .filter(|(_, _, b)| f & b != 0)
            .map(|(_, n, _)| *n)
            .collect();
        ctx.out.set(names.len());
        names.iter().for_each(|n| ctx.out.simple(n));
    }
    Ok(())
}

enum Filter<'a> {
    All,
    Module,
    AclCat(&'a [u8]),
    Pattern(&'a [u8]),
}

fn list(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let filter = match args.len() {
        2 => Filter::All,
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let what = &args[3];
            if what.eq_ignore_ascii_case(b"module") {
                Filter::Module
            } else if what.eq_ignore_ascii_case(b"aclcat") {
                Filter::AclCat(&args[4])
            } else if what.eq_ignore_ascii_case(b"pattern") {
                Filter::Pattern(&args[4])
            } else {
                return Err(Error::Syntax);
            }
        }
        _ => return Err(Error::Syntax),
    };
    let table = &ctx.srv.commands;
    let mut names: Vec<&str> = Vec::new();
    for c in table.top_level() {
        for cmd in std::iter::once(c).chain(table.subcommands_of(c)) {
            let keep = match filter {
                Filter::All => true,
                Filter::Module => false,
                Filter::AclCat(cat) => acl_categories(cmd)
                    .iter()
                    .any(|c| c.as_bytes().eq_ignore_ascii_case(cat)),
                Filter::Pattern(p) => glob_match(p, cmd.name.as_bytes(), true),
            };
            if keep {
                names.push(cmd.name);
            }
        }
    }
    ctx.out.array(names.len());
    names.iter().for_each(|n| ctx.out.bulk(n.as_bytes()));
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Details of every command the server implements.",
            "COUNT",
            "    Number of top-level commands.",
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "    Names of the commands, optionally filtered.",
            "INFO [<command-name> ...]",
            "    Details of the given commands (all commands without names).",
            "DOCS [<command-name> ...]",
            "    Documentation facts of the given commands (all without names).",
            "GETKEYS <full-command>",
            "    Keys of a full command line.",
            "GETKEYSANDFLAGS <full-command>",
            "    Keys of a full command line, with their access flags.",
        ],
    );
    Ok(())
}
