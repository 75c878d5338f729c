//! Start-up configuration: the config file (or stdin), its `include`s, the
//! `--name value` options, and the directives that are not parameters.
//!
//! Security fails closed: a directive whose effect ferrokv does not have
//! and whose absence would leave the server more open, or lose data it was
//! told to keep (`loadmodule`...), stops the
//! server with a message naming it. A Redis directive that is merely not
//! implemented (tuning, logging, replication details) is accepted with one
//! warning. An unknown directive is Redis's fatal "Bad directive" error.

use std::io::Read;
use std::path::PathBuf;

use super::{Config, SetError};
use crate::cmd::CommandTable;

/// One directive: where it is and its words.
#[derive(Debug, Clone)]
pub struct Line {
    /// Line number in its own file (an included file counts from 1 again,
    /// as in Redis); command-line options count on after the file.
    pub line: usize,
    /// The line as written (trimmed), for error messages.
    pub text: String,
    pub args: Vec<String>,
}

/// Why the server must not start.
#[derive(Debug, PartialEq, Eq)]
pub enum Fatal {
    /// Redis's `*** FATAL CONFIG FILE ERROR ***` block for one line.
    Directive {
        line: usize,
        text: String,
        reason: String,
    },
    /// A one-line message (a file that cannot be read).
    Message(String),
}

impl Fatal {
    fn at(l: &Line, reason: impl Into<String>) -> Fatal {
        Fatal::Directive {
            line: l.line,
            text: l.text.clone(),
            reason: reason.into(),
        }
    }

    /// The text Redis prints (stderr for a directive, the log otherwise).
    pub fn render(&self) -> String {
        match self {
            Fatal::Directive { line, text, reason } => format!(
                "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***\nReading the configuration file, at line {}\n>>> '{text}'\n{reason}",
                crate::REDIS_VERSION,
                line
            ),
            Fatal::Message(m) => m.clone(),
        }
    }
}

const BAD_DIRECTIVE: &str = "Bad directive or wrong number of arguments";

/// A config file larger than this is refused (a path such as /dev/zero
/// would otherwise be read until memory runs out).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Nested `include`s deeper than this are refused (a cycle is caught
/// before; this bounds chains of distinct files).
const MAX_INCLUDE_DEPTH: usize = 32;

/// The config file's absolute path (for INFO), if any, and every directive
/// in the order Redis applies them: the file's, then the command-line
/// options. `include`s are read when [`apply`] reaches them (an earlier
/// `dir` changes what a relative path means, as in Redis). `argv`
/// excludes the program name.
pub fn collect(argv: &[String]) -> Result<(Option<String>, Vec<Line>), Fatal> {
    let mut out = Vec::new();
    let mut config_file = None;
    let mut rest = argv;
    // Options are numbered as if they followed the file after an empty
    // line, as Redis appends them.
    let mut first_option_line = 2;
    // A first word not starting with `-` is the file; `-` is stdin.
    if let Some(first) = argv.first()
        && (!first.starts_with('-') || first == "-")
    {
        rest = &argv[1..];
        let text = if first == "-" {
            read_bounded(std::io::stdin().lock(), "stdin")?
        } else {
            let file = std::fs::File::open(first).map_err(|e| open_error(first, &e))?;
            config_file = std::fs::canonicalize(first)
                .ok()
                .map(|p| p.display().to_string());
            read_bounded(file, first)?
        };
        first_option_line += text.iter().filter(|&&b| b == b'\n').count();
        out = parse_text(&text)?;
    }
    for (i, mut l) in options(rest)?.into_iter().enumerate() {
        l.line = first_option_line + i;
        if !l.args.is_empty() {
            out.push(l);
        }
    }
    Ok((config_file, out))
}

/// Groups the command line into directives, as redis-server 7.0 does:
/// `--name` starts a directive (its text may hold values too:
/// `"--maxmemory 700mb"`), and the words after it are its values. A name
/// given alone takes the next word as a value even if it starts with `--`
/// (`--logfile --my--log`); once it has a value, a `--` word starts the next
/// directive. `--save` directly before another `--` word, or last, means
/// `save ""`. Words before any `--name` form a directive of their own.
fn options(words: &[String]) -> Result<Vec<Line>, Fatal> {
    let mut out: Vec<Line> = Vec::new();
    let mut has_value = true;
    for (i, w) in words.iter().enumerate() {
        if has_value && let Some(name) = w.strip_prefix("--") {
            let mut l = Line {
                line: 0,
                text: name.to_string(),
                args: Vec::new(),
            };
            l.args = split_line(name)
                .map_err(|_| Fatal::at(&l, "Unbalanced quotes in configuration line"))?;
            has_value = l.args.len() > 1;
            let next_is_option = words.get(i + 1).is_none_or(|n| n.starts_with("--"));
            if !has_value && name.eq_ignore_ascii_case("save") && next_is_option {
                l.args.push(String::new());
                l.text.push_str(" \"\"");
                has_value = true;
            }
            out.push(l);
            continue;
        }
        if out.is_empty() {
            out.push(Line {
                line: 0,
                text: String::new(),
                args: Vec::new(),
            });
        }
        let l = out.last_mut().expect("a line");
        if !l.text.is_empty() {
            l.text.push(' ');
        }
        l.text.push_str(&repr(w));
        l.args.push(w.clone());
        has_value = true;
    }
    Ok(out)
}

/// A value quoted as Redis prints command-line values in its messages.
pub(super) fn repr(s: &str) -> String {
    crate::util::repr::quoted(s.as_bytes())
}

/// Reads at most [`MAX_FILE_BYTES`] from `r`.
fn read_bounded(r: impl Read, name: &str) -> Result<Vec<u8>, Fatal> {
    let mut buf = Vec::new();
    r.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| open_error(name, &e))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(Fatal::Message(format!(
            "Fatal error, config file '{name}' is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(buf)
}

fn open_error(path: &str, e: &std::io::Error) -> Fatal {
    // Redis prints strerror alone; Rust appends " (os error N)".
    let why = ferrokv_util::repr::strerror(e);
    Fatal::Message(format!(
        "Fatal error, can't open config file '{path}': {why}"
    ))
}

/// Splits a file's text into directives.
fn parse_text(text: &[u8]) -> Result<Vec<Line>, Fatal> {
    let mut out = Vec::new();
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_matches([' ', '\t', '\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut l = Line {
            line: n + 1,
            text: line.to_string(),
            args: Vec::new(),
        };
        match split_line(line) {
            Ok(args) if !args.is_empty() => l.args = args,
            Ok(_) => continue,
            Err(_) => return Err(Fatal::at(&l, "Unbalanced quotes in configuration line")),
        }
        out.push(l);
    }
    Ok(out)
}

/// Splits one redis.conf line into arguments (same quoting as inline commands).
pub fn split_line(line: &str) -> Result<Vec<String>, crate::resp::parse::UnbalancedQuotes> {
    let mut out = Vec::new();
    let mut spans = Vec::new();
    crate::resp::parse::split_args(line.as_bytes(), &mut out, &mut spans)?;
    Ok(spans
        .iter()
        .map(|&(s, e)| String::from_utf8_lossy(&out[s..e]).into_owned())
        .collect())
}

/// Applies the directives in order: parameters to `config`, renames to
/// `commands`, included files where they are included. `config_file` is
/// the file `lines` came from (an include of it is a cycle). Returns the
/// warnings to log once logging is set up.
pub fn apply(
    config: &Config,
    commands: &mut CommandTable,
    lines: &[Line],
    config_file: Option<&str>,
) -> Result<Vec<String>, Fatal> {
    let mut st = Applying {
        config,
        commands,
        warnings: Vec::new(),
        inert: Vec::new(),
        saved: false,
        stack: config_file.map(PathBuf::from).into_iter().collect(),
    };
    st.lines(lines)?;
    // Redis raises the period to its minimum once the whole configuration
    // is read: with the final `hz`.
    let wd = &config.watchdog_period;
    wd.set(crate::watchdog::raised(wd.get(), config.hz.get()));
    let mut warnings = st.warnings;
    for (param, why) in st.inert {
        warnings.push(format!(
            "Directive '{param}' is accepted but has no effect in ferrokv: {why}"
        ));
    }
    Ok(warnings)
}

struct Applying<'a> {
    config: &'a Config,
    commands: &'a mut CommandTable,
    warnings: Vec<String>,
    /// Parameters set to a value that does nothing here, and why (warned
    /// once each).
    inert: Vec<(&'static str, &'static str)>,
    /// A `save` line was seen (the next one adds to it).
    saved: bool,
    /// The files being read, outermost first (canonical paths).
    stack: Vec<PathBuf>,
}

impl Applying<'_> {
    /// `user <name> <rules...>`: checked now (Redis's message at this
    /// line), applied when the server starts.
    fn user(&mut self, l: &Line) -> Result<(), Fatal> {
        if l.args.len() < 2 {
            return Err(Fatal::at(l, BAD_DIRECTIVE));
        }
        let name = &l.args[1];
        let mut users = self.config.acl_users.lock();
        let why = if users.iter().any(|u| &u[0] == name) {
            Some("Duplicate user found. A user can only be defined once in config files".into())
        } else {
            let acl = crate::acl::Acl::new(self.commands, "");
            crate::acl::file::build_user(&acl, name, &l.args[2..], false, true).err()
        };
        if let Some(why) = why {
            return Err(Fatal::at(
                l,
                format!("Error in user declaration '{name}': {why}"),
            ));
        }
        users.push(l.args[1..].to_vec());
        Ok(())
    }

    fn lines(&mut self, lines: &[Line]) -> Result<(), Fatal> {
        lines.iter().try_for_each(|l| self.line(l))
    }

    /// `include PATH`: read now, relative to the working directory (which
    /// an earlier `dir` may have changed). A file already being read is
    /// refused (Redis would recurse until it crashes), and so are chains
    /// deeper than [`MAX_INCLUDE_DEPTH`].
    fn include(&mut self, l: &Line) -> Result<(), Fatal> {
        if l.args.len() != 2 {
            return Err(Fatal::at(l, BAD_DIRECTIVE));
        }
        let path = &l.args[1];
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.into());
        if self.stack.contains(&canon) {
            return Err(Fatal::at(
                l,
                format!("Include cycle: '{path}' is already being read"),
            ));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(Fatal::at(
                l,
                format!("Includes nested deeper than {MAX_INCLUDE_DEPTH} files"),
            ));
        }
        let file = std::fs::File::open(path).map_err(|e| open_error(path, &e))?;
        let lines = parse_text(&read_bounded(file, path)?)?;
        self.stack.push(canon);
        let r = self.lines(&lines);
        self.stack.pop();
        r
    }

    fn line(&mut self, l: &Line) -> Result<(), Fatal> {
        let config = self.config;
        let name = l.args[0].to_ascii_lowercase();
        let values: Vec<&str> = l.args[1..].iter().map(String::as_str).collect();
        if name == "include" {
            return self.include(l);
        }
        if let Some(why) = invalid(&name, &values) {
            return Err(Fatal::at(l, why));
        }
        if let Some(why) = refusal(&name, &values) {
            return Err(Fatal::at(l, why));
        }
        // Followed once the dataset is loaded (`server::replica`);
        // `replicaof no one` leaves a master.
        if matches!(name.as_str(), "replicaof" | "slaveof") {
            if !is_no_one(&values) {
                self.config
                    .replicaof
                    .set(&format!("{} {}", values[0], values[1]));
            }
            return Ok(());
        }
        if name == "user" {
            return self.user(l);
        }
        if name == "rename-command" {
            let [old, new] = values[..] else {
                return Err(Fatal::at(l, BAD_DIRECTIVE));
            };
            return self
                .commands
                .rename(old, new)
                .map_err(|why| Fatal::at(l, why));
        }
        if config
            .find(&name)
            .is_some_and(|p| !p.multi_arg() && values.len() != 1)
        {
            return Err(Fatal::at(l, "wrong number of arguments"));
        }
        // Several `save` lines add up (the first replaces the default);
        // `save ""` clears, as in Redis.
        let mut values = values;
        let so_far;
        if name == "save" {
            if self.saved && non_empty(&values) {
                so_far = config.save.get();
                values.insert(0, &so_far);
            }
            self.saved = true;
        }
        match config.set(&name, &values, false) {
            Ok(()) => {
                if let Some(p) = config.find(&name)
                    && let Some(inert) = p.inert
                    && (inert.when)(&values)
                    && !self.inert.iter().any(|(n, _)| *n == p.name)
                {
                    self.inert.push((p.name, inert.why));
                }
            }
            Err(SetError::Unknown) if DEPRECATED.contains(&name.as_str()) => {}
            Err(SetError::Unknown) if is_redis_directive(&name) => self.warnings.push(format!(
                "Directive '{name}' is a Redis option ferrokv does not implement yet; ignored"
            )),
            Err(SetError::Unknown) => return Err(Fatal::at(l, BAD_DIRECTIVE)),
            Err(SetError::Immutable | SetError::Protected) => {
                unreachable!("start-up sets every parameter")
            }
            Err(SetError::Invalid(why)) => return Err(Fatal::at(l, why)),
        }
        Ok(())
    }
}

pub(super) fn yes(v: &[&str]) -> bool {
    v.len() == 1 && v[0].eq_ignore_ascii_case("yes")
}

pub(super) fn non_empty(v: &[&str]) -> bool {
    v.iter().any(|s| !s.is_empty())
}

/// Redis's own complaint about the value of a directive ferrokv does not
/// implement (checked first, so a bad line gets Redis's message).
fn invalid(name: &str, v: &[&str]) -> Option<&'static str> {
    match name {
        "replicaof" | "slaveof" if v.len() != 2 => Some("wrong number of arguments"),
        "replicaof" | "slaveof"
            if !is_no_one(v) && crate::util::num::parse_i64(v[1].as_bytes())
                .is_none_or(|p| !(0..=65535).contains(&p)) =>
        {
            Some("Invalid master port")
        }
        "shutdown-on-sigint" | "shutdown-on-sigterm"
            // One word may hold several flags ("now force"), as in Redis.
            if v.iter().all(|f| f.trim().is_empty())
                || v.iter().flat_map(|f| f.split_whitespace()).any(|f| {
                    !["default", "save", "nosave", "now", "force"]
                        .iter()
                        .any(|ok| ok.eq_ignore_ascii_case(f))
                }) =>
        {
            Some("argument(s) must be one of the following: default, save, nosave, now, force")
        }
        _ => None,
    }
}

/// `replicaof no one`: be a master, which ferrokv is.
fn is_no_one(v: &[&str]) -> bool {
    matches!(v, [a, b] if a.eq_ignore_ascii_case("no") && b.eq_ignore_ascii_case("one"))
}

/// Why a directive stops the server: ignoring it would weaken security or
/// lose data. `None` for everything else.
fn refusal(name: &str, v: &[&str]) -> Option<String> {
    let why = match name {
        "loadmodule" => "ferrokv cannot load Redis modules",
        "tls-replication" | "tls-cluster" if yes(v) => {
            "ferrokv has no replication or cluster links to encrypt"
        }
        // Redis's own words: a Redis server is not a Sentinel.
        "sentinel" => return Some("sentinel directive while not in sentinel mode".into()),
        _ => return None,
    };
    Some(format!(
        "'{name}' is not supported: {why}; refusing to start rather than ignore it"
    ))
}

/// `supervised` set to anything but `no` (an `inert` flag's test).
pub(super) fn supervised(v: &[&str]) -> bool {
    !(v.len() == 1 && v[0].eq_ignore_ascii_case("no"))
}

/// Names Redis 7.0 still accepts in a config file and ignores.
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

static REDIS_DIRECTIVES: &str = include_str!("../../data/redis-config-names.txt");

/// Debug-only directives Redis 7.0 has but CONFIG GET * does not list (its
/// own test suite sets them); those ferrokv keeps are `hidden` rows of the
/// config table.
pub(crate) const HIDDEN: &[&str] = &[
    "key-load-delay",
    "rdb-key-save-delay",
    "use-exit-on-panic",
    "loading-process-events-interval-bytes",
    "watchdog-period",
];

/// True for a directive Redis 7.0 knows (so an unimplemented one only warns).
pub fn is_redis_directive(name: &str) -> bool {
    REDIS_DIRECTIVES
        .lines()
        .any(|l| l.eq_ignore_ascii_case(name))
        || HIDDEN.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<(String, Vec<String>)> {
        let w: Vec<String> = w.iter().map(|s| s.to_string()).collect();
        options(&w)
            .unwrap()
            .into_iter()
            .map(|l| (l.text, l.args))
            .collect()
    }

    fn line(text: &str, args: &[&str]) -> (String, Vec<String>) {
        (text.into(), args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn command_line_grouping() {
        assert_eq!(
            words(&["--port", "--loglevel", "verbose"]),
            [line(
                "port \"--loglevel\" \"verbose\"",
                &["port", "--loglevel", "verbose"]
            )]
        );
        assert_eq!(
            words(&["--port", "--bla", "--loglevel", "verbose"]),
            [
                line("port \"--bla\"", &["port", "--bla"]),
                line("loglevel \"verbose\"", &["loglevel", "verbose"])
            ]
        );
        assert_eq!(
            words(&["loglevel", "verbose", "--maxmemory '700mb'"]),
            [
                line("\"loglevel\" \"verbose\"", &["loglevel", "verbose"]),
                line("maxmemory '700mb'", &["maxmemory", "700mb"])
            ]
        );
        assert_eq!(
            words(&["--save", "--x", "1", "--save"]),
            [
                line("save \"\"", &["save", ""]),
                line("x \"1\"", &["x", "1"]),
                line("save \"\"", &["save", ""])
            ]
        );
        assert_eq!(repr("a\"b\\\n\x01é"), "\"a\\\"b\\\\\\n\\x01\\xc3\\xa9\"");
    }

    #[test]
    fn refusals_name_the_directive() {
        for (name, v) in [
            ("loadmodule", &["/x.so"][..]),
            ("tls-replication", &["yes"][..]),
        ] {
            let why = refusal(name, v).unwrap();
            assert!(
                why.starts_with(&format!("'{name}' is not supported: ")),
                "{why}"
            );
        }
        for (name, v) in [
            ("tls-port", &["0"][..]),
            ("tls-replication", &["no"][..]),
            ("maxmemory-clients", &["0"][..]),
            ("min-replicas-to-write", &["0"][..]),
            ("save", &["900", "1"][..]),
        ] {
            assert_eq!(refusal(name, v), None, "{name}");
        }
    }

    #[test]
    fn apply_renames_warns_and_refuses_in_order() {
        let config = Config::default();
        let mut t = CommandTable::build(&crate::cmd::handlers());
        let l = |n: usize, text: &str| Line {
            line: n,
            text: text.into(),
            args: split_line(text).unwrap(),
        };
        let warnings = apply(
            &config,
            &mut t,
            &[
                l(1, "rename-command get g2"),
                l(2, "syslog-enabled yes"),
                l(3, "daemonize yes"),
                l(4, "hz 20"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(t.lookup(b"g2").unwrap().name, "get");
        assert_eq!(config.hz.get(), 20);
        let e = apply(&config, &mut t, &[l(7, "hz 1 2"), l(8, "user x x")], None).unwrap_err();
        assert_eq!(
            e,
            Fatal::Directive {
                line: 7,
                text: "hz 1 2".into(),
                reason: "wrong number of arguments".into()
            }
        );
    }
}
