//! Configuration: redis.conf files, `--name value` options and CONFIG GET/SET.
//!
//! Every parameter is one row of [`Config::params`]: its name (and aliases),
//! how it parses, how CONFIG GET prints it, and whether CONFIG SET may change
//! it. Values live in atomics or small locks so the command path reads them
//! without taking a shared lock.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use parking_lot::RwLock;

/// An integer parameter (plain numbers or memory sizes such as `512mb`).
pub struct IntParam {
    v: AtomicI64,
    min: i64,
    max: i64,
    memory: bool,
}

impl IntParam {
    pub const fn new(v: i64, min: i64, max: i64) -> IntParam {
        IntParam {
            v: AtomicI64::new(v),
            min,
            max,
            memory: false,
        }
    }
    pub const fn memory(v: i64, min: i64, max: i64) -> IntParam {
        IntParam {
            v: AtomicI64::new(v),
            min,
            max,
            memory: true,
        }
    }
    #[inline]
    pub fn get(&self) -> i64 {
        self.v.load(Ordering::Relaxed)
    }
    pub fn set(&self, v: i64) {
        self.v.store(v, Ordering::Relaxed)
    }
}

pub struct BoolParam(AtomicBool);

impl BoolParam {
    pub const fn new(v: bool) -> BoolParam {
        BoolParam(AtomicBool::new(v))
    }
    #[inline]
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, v: bool) {
        self.0.store(v, Ordering::Relaxed)
    }
}

/// One of a fixed set of names.
pub struct EnumParam {
    v: AtomicUsize,
    names: &'static [&'static str],
}

impl EnumParam {
    pub const fn new(v: usize, names: &'static [&'static str]) -> EnumParam {
        EnumParam {
            v: AtomicUsize::new(v),
            names,
        }
    }
    #[inline]
    pub fn get(&self) -> usize {
        self.v.load(Ordering::Relaxed)
    }
    pub fn name(&self) -> &'static str {
        self.names[self.get()]
    }
}

pub struct StrParam(RwLock<String>);

impl StrParam {
    pub fn new(v: &str) -> StrParam {
        StrParam(RwLock::new(v.to_string()))
    }
    pub fn get(&self) -> String {
        self.0.read().clone()
    }
    pub fn set(&self, v: &str) {
        *self.0.write() = v.to_string();
    }
    pub fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(&self.0.read())
    }
}

/// How a row reads and writes its value.
pub enum Kind<'a> {
    Int(&'a IntParam),
    Bool(&'a BoolParam),
    Enum(&'a EnumParam),
    Str(&'a StrParam),
}

/// One parameter as CONFIG sees it.
pub struct Param<'a> {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind<'a>,
    /// CONFIG SET may change it at run time.
    pub mutable: bool,
}

pub const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
pub const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];

pub struct Config {
    pub port: IntParam,
    pub bind: StrParam,
    pub databases: IntParam,
    pub requirepass: StrParam,
    pub loglevel: EnumParam,
    pub logfile: StrParam,
    pub proto_max_bulk_len: IntParam,
    pub client_query_buffer_limit: IntParam,
    pub maxclients: IntParam,
    pub timeout: IntParam,
    pub tcp_keepalive: IntParam,
    pub tcp_backlog: IntParam,
    pub hz: IntParam,
    pub enable_debug_command: EnumParam,
    pub save: StrParam,
    pub appendonly: BoolParam,
    pub dir: StrParam,
    pub dbfilename: StrParam,
    pub daemonize: BoolParam,
    pub protected_mode: BoolParam,
    pub io_threads: IntParam,
    pub maxmemory: IntParam,
    pub lua_time_limit: IntParam,
    pub hash_max_listpack_entries: IntParam,
    pub hash_max_listpack_value: IntParam,
    pub set_max_intset_entries: IntParam,
    pub set_max_listpack_entries: IntParam,
    pub set_max_listpack_value: IntParam,
    pub zset_max_listpack_entries: IntParam,
    pub zset_max_listpack_value: IntParam,
    pub list_max_listpack_size: IntParam,
    pub list_compress_depth: IntParam,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: IntParam::new(6379, 0, 65535),
            bind: StrParam::new("127.0.0.1 -::1"),
            databases: IntParam::new(16, 1, i32::MAX as i64),
            requirepass: StrParam::new(""),
            loglevel: EnumParam::new(2, LOGLEVELS),
            logfile: StrParam::new(""),
            proto_max_bulk_len: IntParam::memory(512 * 1024 * 1024, 1024 * 1024, i64::MAX),
            client_query_buffer_limit: IntParam::memory(1024 * 1024 * 1024, 1024 * 1024, i64::MAX),
            maxclients: IntParam::new(10000, 1, i64::from(u32::MAX)),
            timeout: IntParam::new(0, 0, i64::from(i32::MAX)),
            tcp_keepalive: IntParam::new(300, 0, i64::from(i32::MAX)),
            tcp_backlog: IntParam::new(511, 0, i64::from(i32::MAX)),
            hz: IntParam::new(10, 0, i64::from(i32::MAX)),
            enable_debug_command: EnumParam::new(0, YES_NO_LOCAL),
            save: StrParam::new("3600 1 300 100 60 10000"),
            appendonly: BoolParam::new(false),
            dir: StrParam::new(""),
            dbfilename: StrParam::new("dump.rdb"),
            daemonize: BoolParam::new(false),
            protected_mode: BoolParam::new(true),
            io_threads: IntParam::new(1, 1, 128),
            maxmemory: IntParam::memory(0, 0, i64::MAX),
            lua_time_limit: IntParam::new(5000, 0, i64::MAX),
            hash_max_listpack_entries: IntParam::new(128, 0, i64::MAX),
            hash_max_listpack_value: IntParam::new(64, 0, i64::MAX),
            set_max_intset_entries: IntParam::new(512, 0, i64::MAX),
            set_max_listpack_entries: IntParam::new(128, 0, i64::MAX),
            set_max_listpack_value: IntParam::new(64, 0, i64::MAX),
            zset_max_listpack_entries: IntParam::new(128, 0, i64::MAX),
            zset_max_listpack_value: IntParam::new(64, 0, i64::MAX),
            list_max_listpack_size: IntParam::new(-2, i64::from(i32::MIN), i64::from(i32::MAX)),
            list_compress_depth: IntParam::new(0, 0, i64::from(i32::MAX)),
        }
    }
}

impl Config {
    /// Every parameter, in CONFIG GET order.
    pub fn params(&self) -> Vec<Param<'_>> {
        use Kind::*;
        let p = |name, alias, kind, mutable| Param {
            name,
            alias,
            kind,
            mutable,
        };
        vec![
            p("port", None, Int(&self.port), true),
            p("bind", None, Str(&self.bind), true),
            p("databases", None, Int(&self.databases), false),
            p("requirepass", None, Str(&self.requirepass), true),
            p("loglevel", None, Enum(&self.loglevel), true),
            p("logfile", None, Str(&self.logfile), false),
            p(
                "proto-max-bulk-len",
                None,
                Int(&self.proto_max_bulk_len),
                true,
            ),
            p(
                "client-query-buffer-limit",
                None,
                Int(&self.client_query_buffer_limit),
                true,
            ),
            p("maxclients", None, Int(&self.maxclients), true),
            p("timeout", None, Int(&self.timeout), true),
            p("tcp-keepalive", None, Int(&self.tcp_keepalive), true),
            p("tcp-backlog", None, Int(&self.tcp_backlog), false),
            p("hz", None, Int(&self.hz), true),
            p(
                "enable-debug-command",
                None,
                Enum(&self.enable_debug_command),
                false,
            ),
            p("save", None, Str(&self.save), true),
            p("appendonly", None, Bool(&self.appendonly), true),
            p("dir", None, Str(&self.dir), true),
            p("dbfilename", None, Str(&self.dbfilename), true),
            p("daemonize", None, Bool(&self.daemonize), false),
            p("protected-mode", None, Bool(&self.protected_mode), true),
            p("io-threads", None, Int(&self.io_threads), false),
            p("maxmemory", None, Int(&self.maxmemory), true),
            p(
                "lua-time-limit",
                Some("busy-reply-threshold"),
                Int(&self.lua_time_limit),
                true,
            ),
            p(
                "hash-max-listpack-entries",
                Some("hash-max-ziplist-entries"),
                Int(&self.hash_max_listpack_entries),
                true,
            ),
            p(
                "hash-max-listpack-value",
                Some("hash-max-ziplist-value"),
                Int(&self.hash_max_listpack_value),
                true,
            ),
            p(
                "set-max-intset-entries",
                None,
                Int(&self.set_max_intset_entries),
                true,
            ),
            p(
                "set-max-listpack-entries",
                None,
                Int(&self.set_max_listpack_entries),
                true,
            ),
            p(
                "set-max-listpack-value",
                None,
                Int(&self.set_max_listpack_value),
                true,
            ),
            p(
                "zset-max-listpack-entries",
                Some("zset-max-ziplist-entries"),
                Int(&self.zset_max_listpack_entries),
                true,
            ),
            p(
                "zset-max-listpack-value",
                Some("zset-max-ziplist-value"),
                Int(&self.zset_max_listpack_value),
                true,
            ),
            p(
                "list-max-listpack-size",
                Some("list-max-ziplist-size"),
                Int(&self.list_max_listpack_size),
                true,
            ),
            p(
                "list-compress-depth",
                None,
                Int(&self.list_compress_depth),
                true,
            ),
        ]
    }

    /// Sets one parameter from its textual arguments (config file, command
    /// line or CONFIG SET). The error is the reason Redis gives.
    pub fn set(&self, name: &str, args: &[&str], at_runtime: bool) -> Result<(), SetError> {
        let lname = name.to_ascii_lowercase();
        let params = self.params();
        let Some(param) = params
            .iter()
            .find(|p| p.name == lname || p.alias == Some(lname.as_str()))
        else {
            return Err(SetError::Unknown);
        };
        if at_runtime && !param.mutable {
            return Err(SetError::Immutable);
        }
        let joined = args.join(" ");
        match &param.kind {
            Kind::Int(p) => {
                let v = if p.memory {
                    parse_memory(&joined)
                } else {
                    joined.parse::<i64>().ok()
                };
                let v = v.ok_or_else(|| {
                    SetError::Invalid(if p.memory {
                        "argument must be a memory value".into()
                    } else {
                        "argument couldn't be parsed into an integer".into()
                    })
                })?;
                if v < p.min || v > p.max {
                    return Err(SetError::Invalid(format!(
                        "argument must be between {} and {} inclusive",
                        p.min, p.max
                    )));
                }
                p.set(v);
            }
            Kind::Bool(p) => match joined.to_ascii_lowercase().as_str() {
                "yes" => p.set(true),
                "no" => p.set(false),
                _ => return Err(SetError::Invalid("argument must be 'yes' or 'no'".into())),
            },
            Kind::Enum(p) => {
                let l = joined.to_ascii_lowercase();
                let Some(i) = p.names.iter().position(|n| *n == l) else {
                    return Err(SetError::Invalid(format!(
                        "argument(s) must be one of the following: {}",
                        p.names.join(", ")
                    )));
                };
                p.v.store(i, Ordering::Relaxed);
            }
            Kind::Str(p) => p.set(&joined),
        }
        Ok(())
    }

    /// The value as CONFIG GET prints it.
    pub fn get_value(param: &Param<'_>) -> String {
        match &param.kind {
            Kind::Int(p) => p.get().to_string(),
            Kind::Bool(p) => if p.get() { "yes" } else { "no" }.to_string(),
            Kind::Enum(p) => p.name().to_string(),
            Kind::Str(p) => p.get(),
        }
    }
}

#[derive(Debug)]
pub enum SetError {
    Unknown,
    Immutable,
    Invalid(String),
}

/// Parses `1gb`, `512mb`, `100k`, `42` as Redis's memtoull does
/// (k/m/g are powers of 1000, kb/mb/gb powers of 1024).
pub fn parse_memory(s: &str) -> Option<i64> {
    let l = s.trim().to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1024i64 * 1024 * 1024),
        ("mb", 1024 * 1024),
        ("kb", 1024),
        ("g", 1000 * 1000 * 1000),
        ("m", 1000 * 1000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| l.strip_suffix(suf).map(|n| (n.to_string(), *m)))
    .unwrap_or((l.clone(), 1));
    let n: i64 = num.parse().ok()?;
    n.checked_mul(mul)
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

static REDIS_DIRECTIVES: &str = include_str!("../data/redis-config-names.txt");

/// True for a directive Redis 7.0 knows (so an unimplemented one only warns).
pub fn is_redis_directive(name: &str) -> bool {
    REDIS_DIRECTIVES
        .lines()
        .any(|l| l.eq_ignore_ascii_case(name))
        || matches!(
            name,
            "include" | "rename-command" | "user" | "loadmodule" | "sentinel"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100k"), Some(100_000));
        assert_eq!(parse_memory("512MB"), Some(512 << 20));
        assert_eq!(parse_memory("x"), None);
    }

    #[test]
    fn set_checks_names_ranges_and_mutability() {
        let c = Config::default();
        assert!(c.set("port", &["7000"], false).is_ok());
        assert_eq!(c.port.get(), 7000);
        assert!(matches!(
            c.set("nosuch", &["1"], true),
            Err(SetError::Unknown)
        ));
        assert!(matches!(
            c.set("databases", &["4"], true),
            Err(SetError::Immutable)
        ));
        assert!(matches!(
            c.set("port", &["70000"], true),
            Err(SetError::Invalid(_))
        ));
        assert!(c.set("busy-reply-threshold", &["100"], true).is_ok());
        assert_eq!(c.lua_time_limit.get(), 100);
    }
}
