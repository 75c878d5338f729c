//! Configuration: redis.conf files, `--name value` options and CONFIG GET/SET.
//!
//! Every parameter is one row of [`Config::params`]: its name (and alias),
//! how it parses, how CONFIG GET prints it, and whether CONFIG SET may change
//! it. Values live in atomics or small locks so the command path reads them
//! without taking a shared lock. Defaults, bounds and error texts are Redis
//! 7.0's; a parameter ferrokv does not act on is not listed here at all, so
//! CONFIG GET does not pretend it works.

pub mod file;
pub mod tls;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};

use parking_lot::RwLock;

/// An integer parameter (plain numbers or memory sizes such as `512mb`).
pub struct IntParam {
    v: AtomicI64,
    min: i64,
    max: i64,
    memory: bool,
    /// Values outside this range are accepted but stored clamped (`hz`).
    clamp: Option<(i64, i64)>,
}

impl IntParam {
    pub const fn new(v: i64, min: i64, max: i64) -> IntParam {
        IntParam {
            v: AtomicI64::new(v),
            min,
            max,
            memory: false,
            clamp: None,
        }
    }
    pub const fn memory(v: i64, min: i64, max: i64) -> IntParam {
        IntParam {
            v: AtomicI64::new(v),
            min,
            max,
            memory: true,
            clamp: None,
        }
    }
    pub const fn clamped(mut self, lo: i64, hi: i64) -> IntParam {
        self.clamp = Some((lo, hi));
        self
    }
    #[inline]
    pub fn get(&self) -> i64 {
        self.v.load(Ordering::Relaxed)
    }
    pub fn set(&self, v: i64) {
        self.v.store(v, Ordering::Relaxed);
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
        self.0.store(v, Ordering::Relaxed);
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

/// Keyspace notification classes (`notify-keyspace-events`), as bits.
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 12;
    pub const NEW: u32 = 1 << 13;
    /// What the `A` class stands for (`m` and `n` are not part of it).
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
    /// The class letters in the order Redis prints them (inside `A`).
    pub(super) const LETTERS: [(char, u32); 11] = [
        ('g', GENERIC),
        ('$', STRING),
        ('l', LIST),
        ('s', SET),
        ('h', HASH),
        ('z', ZSET),
        ('x', EXPIRED),
        ('e', EVICTED),
        ('t', STREAM),
        ('d', MODULE),
        ('n', NEW),
    ];
}

/// Output buffer limits per client class: `[hard, soft, soft_seconds]`.
pub struct BufferLimits([[AtomicI64; 3]; 3]);

/// The classes of `client-output-buffer-limit`, in print order.
pub const CLIENT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

impl BufferLimits {
    fn new(v: [[i64; 3]; 3]) -> BufferLimits {
        BufferLimits(v.map(|c| c.map(AtomicI64::new)))
    }
    /// `[hard, soft, soft_seconds]` of class `i` (see [`CLIENT_CLASSES`]).
    pub fn get(&self, i: usize) -> [i64; 3] {
        [0, 1, 2].map(|k| self.0[i][k].load(Ordering::Relaxed))
    }
    fn all(&self) -> [[i64; 3]; 3] {
        [0, 1, 2].map(|i| self.get(i))
    }
}

/// How a row reads and writes its value.
#[derive(Clone, Copy)]
pub enum Kind<'a> {
    Int(&'a IntParam),
    Bool(&'a BoolParam),
    Enum(&'a EnumParam),
    Str(&'a StrParam),
    /// `save`: pairs of seconds and changes.
    Save(&'a StrParam),
    Notify(&'a AtomicU32),
    BufferLimits(&'a BufferLimits),
}

/// Whether CONFIG SET may change a parameter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Mutable,
    Immutable,
    /// Changeable only with `enable-protected-configs` (`dir`, `dbfilename`).
    Protected,
}

/// One parameter as CONFIG sees it.
pub struct Param<'a> {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind<'a>,
    pub access: Access,
}

impl Param<'_> {
    /// Whether a config line may give it several words (or none); the
    /// others take exactly one, as in Redis.
    pub fn multi_arg(&self) -> bool {
        matches!(self.kind, Kind::Save(_) | Kind::BufferLimits(_)) || self.name == "bind"
    }

    /// Whether CONFIG SET may change it; `protected_ok` is whether this
    /// client may change protected ones ([`Config::protected_configs_allowed`]).
    pub fn check_settable(&self, protected_ok: bool) -> Result<(), SetError> {
        match self.access {
            Access::Mutable => Ok(()),
            Access::Immutable => Err(SetError::Immutable),
            Access::Protected if protected_ok => Ok(()),
            Access::Protected => Err(SetError::Protected),
        }
    }
}

pub const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
pub const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];
pub const ACL_PUBSUB_DEFAULT: &[&str] = &["resetchannels", "allchannels"];
pub const MAXMEMORY_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
pub const APPENDFSYNC: &[&str] = &["everysec", "always", "no"];
pub const SUPERVISED: &[&str] = &["upstart", "systemd", "auto", "no"];

const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;
const LONG_MAX: i64 = i64::MAX;
const MB: i64 = 1024 * 1024;

pub struct Config {
    pub port: IntParam,
    pub bind: StrParam,
    pub databases: IntParam,
    pub requirepass: StrParam,
    pub masterauth: StrParam,
    pub masteruser: StrParam,
    pub loglevel: EnumParam,
    pub logfile: StrParam,
    pub pidfile: StrParam,
    pub unixsocket: StrParam,
    pub supervised: EnumParam,
    pub proto_max_bulk_len: IntParam,
    pub client_query_buffer_limit: IntParam,
    pub client_output_buffer_limit: BufferLimits,
    pub maxclients: IntParam,
    pub timeout: IntParam,
    pub tcp_keepalive: IntParam,
    pub tcp_backlog: IntParam,
    pub tls_port: IntParam,
    /// The other `tls-*` parameters.
    pub tls: tls::TlsConfig,
    pub hz: IntParam,
    pub dynamic_hz: BoolParam,
    pub enable_debug_command: EnumParam,
    pub enable_protected_configs: EnumParam,
    pub enable_module_command: EnumParam,
    pub save: StrParam,
    pub appendonly: BoolParam,
    pub appendfsync: EnumParam,
    pub appendfilename: StrParam,
    pub appenddirname: StrParam,
    pub dir: StrParam,
    pub dbfilename: StrParam,
    pub rdbcompression: BoolParam,
    pub rdbchecksum: BoolParam,
    pub stop_writes_on_bgsave_error: BoolParam,
    pub daemonize: BoolParam,
    /// Log the start-up banner (with the pid) even when stdout is not a terminal.
    pub always_show_logo: BoolParam,
    pub protected_mode: BoolParam,
    pub io_threads: IntParam,
    pub maxmemory: IntParam,
    pub maxmemory_policy: EnumParam,
    pub maxmemory_samples: IntParam,
    pub maxmemory_eviction_tenacity: IntParam,
    pub lfu_log_factor: IntParam,
    pub lfu_decay_time: IntParam,
    pub busy_reply_threshold: IntParam,
    pub notify_keyspace_events: AtomicU32,
    pub hash_max_listpack_entries: IntParam,
    pub hash_max_listpack_value: IntParam,
    pub set_max_intset_entries: IntParam,
    pub zset_max_listpack_entries: IntParam,
    pub zset_max_listpack_value: IntParam,
    pub list_max_listpack_size: IntParam,
    pub list_compress_depth: IntParam,
    pub stream_node_max_bytes: IntParam,
    pub stream_node_max_entries: IntParam,
    pub hll_sparse_max_bytes: IntParam,
    pub slowlog_log_slower_than: IntParam,
    pub slowlog_max_len: IntParam,
    pub latency_monitor_threshold: IntParam,
    /// Accepted, not acted on: ferrokv keeps no per-command latency
    /// percentiles (INFO latencystats).
    pub latency_tracking: BoolParam,
    pub active_expire_effort: IntParam,
    pub activerehashing: BoolParam,
    pub lazyfree_lazy_eviction: BoolParam,
    pub lazyfree_lazy_expire: BoolParam,
    pub lazyfree_lazy_server_del: BoolParam,
    pub lazyfree_lazy_user_del: BoolParam,
    pub lazyfree_lazy_user_flush: BoolParam,
    pub replica_read_only: BoolParam,
    pub replica_lazy_flush: BoolParam,
    pub cluster_enabled: BoolParam,
    pub tracking_table_max_keys: IntParam,
    pub acllog_max_len: IntParam,
    /// ACL users file (ACL LOAD/SAVE); exclusive with `user` directives.
    pub aclfile: StrParam,
    /// `user` directives (name, rules), checked as read, applied once the
    /// server exists.
    pub acl_users: parking_lot::Mutex<Vec<Vec<String>>>,
    /// Channels a new user may use: `resetchannels` (none) or `allchannels`.
    pub acl_pubsub_default: EnumParam,
    pub shutdown_timeout: IntParam,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: IntParam::new(6379, 0, 65535),
            bind: StrParam::new("127.0.0.1 -::1"),
            databases: IntParam::new(16, 1, INT_MAX),
            requirepass: StrParam::new(""),
            masterauth: StrParam::new(""),
            masteruser: StrParam::new(""),
            loglevel: EnumParam::new(2, LOGLEVELS),
            logfile: StrParam::new(""),
            pidfile: StrParam::new(""),
            unixsocket: StrParam::new(""),
            supervised: EnumParam::new(3, SUPERVISED),
            proto_max_bulk_len: IntParam::memory(512 * MB, MB, LONG_MAX),
            client_query_buffer_limit: IntParam::memory(1024 * MB, MB, LONG_MAX),
            client_output_buffer_limit: BufferLimits::new([
                [0, 0, 0],
                [256 * MB, 64 * MB, 60],
                [32 * MB, 8 * MB, 60],
            ]),
            maxclients: IntParam::new(10000, 1, i64::from(u32::MAX)),
            timeout: IntParam::new(0, 0, INT_MAX),
            tcp_keepalive: IntParam::new(300, 0, INT_MAX),
            tcp_backlog: IntParam::new(511, 0, INT_MAX),
            tls_port: IntParam::new(0, 0, 65535),
            tls: Default::default(),
            hz: IntParam::new(10, 0, INT_MAX).clamped(1, 500),
            dynamic_hz: BoolParam::new(true),
            enable_debug_command: EnumParam::new(0, YES_NO_LOCAL),
            enable_protected_configs: EnumParam::new(0, YES_NO_LOCAL),
            enable_module_command: EnumParam::new(0, YES_NO_LOCAL),
            save: StrParam::new("3600 1 300 100 60 10000"),
            appendonly: BoolParam::new(false),
            appendfsync: EnumParam::new(0, APPENDFSYNC),
            appendfilename: StrParam::new("appendonly.aof"),
            appenddirname: StrParam::new("appendonlydir"),
            dir: StrParam::new(""),
            dbfilename: StrParam::new("dump.rdb"),
            rdbcompression: BoolParam::new(true),
            rdbchecksum: BoolParam::new(true),
            stop_writes_on_bgsave_error: BoolParam::new(true),
            daemonize: BoolParam::new(false),
            always_show_logo: BoolParam::new(false),
            protected_mode: BoolParam::new(true),
            io_threads: IntParam::new(1, 1, 128),
            maxmemory: IntParam::memory(0, 0, LONG_MAX),
            maxmemory_policy: EnumParam::new(7, MAXMEMORY_POLICIES),
            maxmemory_samples: IntParam::new(5, 1, INT_MAX),
            maxmemory_eviction_tenacity: IntParam::new(10, 0, 100),
            lfu_log_factor: IntParam::new(10, 0, INT_MAX),
            lfu_decay_time: IntParam::new(1, 0, INT_MAX),
            busy_reply_threshold: IntParam::new(5000, 0, LONG_MAX),
            notify_keyspace_events: AtomicU32::new(0),
            hash_max_listpack_entries: IntParam::new(512, 0, LONG_MAX),
            hash_max_listpack_value: IntParam::new(64, 0, LONG_MAX),
            set_max_intset_entries: IntParam::new(512, 0, LONG_MAX),
            zset_max_listpack_entries: IntParam::new(128, 0, LONG_MAX),
            zset_max_listpack_value: IntParam::new(64, 0, LONG_MAX),
            list_max_listpack_size: IntParam::new(-2, INT_MIN, INT_MAX),
            list_compress_depth: IntParam::new(0, 0, INT_MAX),
            stream_node_max_bytes: IntParam::memory(4096, 0, LONG_MAX),
            stream_node_max_entries: IntParam::new(100, 0, LONG_MAX),
            hll_sparse_max_bytes: IntParam::memory(3000, 0, LONG_MAX),
            slowlog_log_slower_than: IntParam::new(10000, -1, LONG_MAX),
            slowlog_max_len: IntParam::new(128, 0, LONG_MAX),
            latency_monitor_threshold: IntParam::new(0, 0, LONG_MAX),
            latency_tracking: BoolParam::new(true),
            active_expire_effort: IntParam::new(1, 1, 10),
            activerehashing: BoolParam::new(true),
            lazyfree_lazy_eviction: BoolParam::new(false),
            lazyfree_lazy_expire: BoolParam::new(false),
            lazyfree_lazy_server_del: BoolParam::new(false),
            lazyfree_lazy_user_del: BoolParam::new(false),
            lazyfree_lazy_user_flush: BoolParam::new(false),
            replica_read_only: BoolParam::new(true),
            replica_lazy_flush: BoolParam::new(false),
            cluster_enabled: BoolParam::new(false),
            tracking_table_max_keys: IntParam::new(1_000_000, 0, LONG_MAX),
            acllog_max_len: IntParam::new(128, 0, LONG_MAX),
            aclfile: StrParam::new(""),
            acl_users: Default::default(),
            acl_pubsub_default: EnumParam::new(0, ACL_PUBSUB_DEFAULT),
            shutdown_timeout: IntParam::new(10, 0, INT_MAX),
        }
    }
}

/// A value checked by [`Config::prepare`], not yet stored.
pub struct Pending<'a> {
    kind: Kind<'a>,
    value: Value,
}

enum Value {
    Int(i64),
    Bool(bool),
    Enum(usize),
    Str(String),
    Notify(u32),
    Limits([[i64; 3]; 3]),
}

#[derive(Debug)]
pub enum SetError {
    Unknown,
    Immutable,
    Protected,
    Invalid(String),
}

impl SetError {
    /// The reason as CONFIG SET words it (after `... argument 'x') - `).
    pub fn reason(&self) -> String {
        match self {
            SetError::Unknown => "unknown option".into(),
            SetError::Immutable => "can't set immutable config".into(),
            SetError::Protected => "can't set protected config".into(),
            SetError::Invalid(why) => why.clone(),
        }
    }
}

impl Config {
    /// Every parameter, in CONFIG GET order.
    pub fn params(&self) -> Vec<Param<'_>> {
        use Access::*;
        use Kind::*;
        let p = |name, alias, kind, access| Param {
            name,
            alias,
            kind,
            access,
        };
        let mut all = vec![
            p("port", None, Int(&self.port), Mutable),
            p("bind", None, Str(&self.bind), Mutable),
            p("databases", None, Int(&self.databases), Immutable),
            p("requirepass", None, Str(&self.requirepass), Mutable),
            p("masterauth", None, Str(&self.masterauth), Mutable),
            p("masteruser", None, Str(&self.masteruser), Mutable),
            p("loglevel", None, Enum(&self.loglevel), Mutable),
            p("logfile", None, Str(&self.logfile), Immutable),
            p("pidfile", None, Str(&self.pidfile), Immutable),
            p("unixsocket", None, Str(&self.unixsocket), Immutable),
            p("supervised", None, Enum(&self.supervised), Immutable),
            p(
                "proto-max-bulk-len",
                None,
                Int(&self.proto_max_bulk_len),
                Mutable,
            ),
            p(
                "client-query-buffer-limit",
                None,
                Int(&self.client_query_buffer_limit),
                Mutable,
            ),
            p(
                "client-output-buffer-limit",
                None,
                BufferLimits(&self.client_output_buffer_limit),
                Mutable,
            ),
            p("maxclients", None, Int(&self.maxclients), Mutable),
            p("timeout", None, Int(&self.timeout), Mutable),
            p("tcp-keepalive", None, Int(&self.tcp_keepalive), Mutable),
            p("tcp-backlog", None, Int(&self.tcp_backlog), Immutable),
            p("tls-port", None, Int(&self.tls_port), Mutable),
            p("hz", None, Int(&self.hz), Mutable),
            p("dynamic-hz", None, Bool(&self.dynamic_hz), Mutable),
            p(
                "enable-debug-command",
                None,
                Enum(&self.enable_debug_command),
                Immutable,
            ),
            p(
                "enable-protected-configs",
                None,
                Enum(&self.enable_protected_configs),
                Immutable,
            ),
            p(
                "enable-module-command",
                None,
                Enum(&self.enable_module_command),
                Immutable,
            ),
            p("save", None, Save(&self.save), Mutable),
            p("appendonly", None, Bool(&self.appendonly), Mutable),
            p("appendfsync", None, Enum(&self.appendfsync), Mutable),
            p("appendfilename", None, Str(&self.appendfilename), Immutable),
            p("appenddirname", None, Str(&self.appenddirname), Immutable),
            p("dir", None, Str(&self.dir), Protected),
            p("dbfilename", None, Str(&self.dbfilename), Protected),
            p("rdbcompression", None, Bool(&self.rdbcompression), Mutable),
            p("rdbchecksum", None, Bool(&self.rdbchecksum), Mutable),
            p(
                "stop-writes-on-bgsave-error",
                None,
                Bool(&self.stop_writes_on_bgsave_error),
                Mutable,
            ),
            p("daemonize", None, Bool(&self.daemonize), Immutable),
            p(
                "always-show-logo",
                None,
                Bool(&self.always_show_logo),
                Immutable,
            ),
            p("protected-mode", None, Bool(&self.protected_mode), Mutable),
            p("io-threads", None, Int(&self.io_threads), Immutable),
            p("maxmemory", None, Int(&self.maxmemory), Mutable),
            p(
                "maxmemory-policy",
                None,
                Enum(&self.maxmemory_policy),
                Mutable,
            ),
            p(
                "maxmemory-samples",
                None,
                Int(&self.maxmemory_samples),
                Mutable,
            ),
            p(
                "maxmemory-eviction-tenacity",
                None,
                Int(&self.maxmemory_eviction_tenacity),
                Mutable,
            ),
            p("lfu-log-factor", None, Int(&self.lfu_log_factor), Mutable),
            p("lfu-decay-time", None, Int(&self.lfu_decay_time), Mutable),
            p(
                "busy-reply-threshold",
                Some("lua-time-limit"),
                Int(&self.busy_reply_threshold),
                Mutable,
            ),
            p(
                "notify-keyspace-events",
                None,
                Notify(&self.notify_keyspace_events),
                Mutable,
            ),
            p(
                "hash-max-listpack-entries",
                Some("hash-max-ziplist-entries"),
                Int(&self.hash_max_listpack_entries),
                Mutable,
            ),
            p(
                "hash-max-listpack-value",
                Some("hash-max-ziplist-value"),
                Int(&self.hash_max_listpack_value),
                Mutable,
            ),
            p(
                "set-max-intset-entries",
                None,
                Int(&self.set_max_intset_entries),
                Mutable,
            ),
            p(
                "zset-max-listpack-entries",
                Some("zset-max-ziplist-entries"),
                Int(&self.zset_max_listpack_entries),
                Mutable,
            ),
            p(
                "zset-max-listpack-value",
                Some("zset-max-ziplist-value"),
                Int(&self.zset_max_listpack_value),
                Mutable,
            ),
            p(
                "list-max-listpack-size",
                Some("list-max-ziplist-size"),
                Int(&self.list_max_listpack_size),
                Mutable,
            ),
            p(
                "list-compress-depth",
                None,
                Int(&self.list_compress_depth),
                Mutable,
            ),
            p(
                "stream-node-max-bytes",
                None,
                Int(&self.stream_node_max_bytes),
                Mutable,
            ),
            p(
                "stream-node-max-entries",
                None,
                Int(&self.stream_node_max_entries),
                Mutable,
            ),
            p(
                "hll-sparse-max-bytes",
                None,
                Int(&self.hll_sparse_max_bytes),
                Mutable,
            ),
            p(
                "slowlog-log-slower-than",
                None,
                Int(&self.slowlog_log_slower_than),
                Mutable,
            ),
            p("slowlog-max-len", None, Int(&self.slowlog_max_len), Mutable),
            p(
                "latency-monitor-threshold",
                None,
                Int(&self.latency_monitor_threshold),
                Mutable,
            ),
            p(
                "active-expire-effort",
                None,
                Int(&self.active_expire_effort),
                Mutable,
            ),
            p(
                "activerehashing",
                None,
                Bool(&self.activerehashing),
                Mutable,
            ),
            p(
                "latency-tracking",
                None,
                Bool(&self.latency_tracking),
                Mutable,
            ),
            p(
                "lazyfree-lazy-eviction",
                None,
                Bool(&self.lazyfree_lazy_eviction),
                Mutable,
            ),
            p(
                "lazyfree-lazy-expire",
                None,
                Bool(&self.lazyfree_lazy_expire),
                Mutable,
            ),
            p(
                "lazyfree-lazy-server-del",
                None,
                Bool(&self.lazyfree_lazy_server_del),
                Mutable,
            ),
            p(
                "lazyfree-lazy-user-del",
                None,
                Bool(&self.lazyfree_lazy_user_del),
                Mutable,
            ),
            p(
                "lazyfree-lazy-user-flush",
                None,
                Bool(&self.lazyfree_lazy_user_flush),
                Mutable,
            ),
            p(
                "replica-read-only",
                Some("slave-read-only"),
                Bool(&self.replica_read_only),
                Mutable,
            ),
            p(
                "replica-lazy-flush",
                Some("slave-lazy-flush"),
                Bool(&self.replica_lazy_flush),
                Mutable,
            ),
            p(
                "cluster-enabled",
                None,
                Bool(&self.cluster_enabled),
                Immutable,
            ),
            p(
                "tracking-table-max-keys",
                None,
                Int(&self.tracking_table_max_keys),
                Mutable,
            ),
            p("acllog-max-len", None, Int(&self.acllog_max_len), Mutable),
            p("aclfile", None, Str(&self.aclfile), Immutable),
            p(
                "acl-pubsub-default",
                None,
                Enum(&self.acl_pubsub_default),
                Mutable,
            ),
            p(
                "shutdown-timeout",
                None,
                Int(&self.shutdown_timeout),
                Mutable,
            ),
        ];
        all.extend(self.tls.params());
        all
    }

    /// Checks `value` for parameter `name` without storing it: the first
    /// half of an atomic CONFIG SET. The error is the reason Redis gives.
    pub fn prepare(
        &self,
        name: &str,
        value: &str,
        at_runtime: bool,
    ) -> Result<Pending<'_>, SetError> {
        let param = self.find(name).ok_or(SetError::Unknown)?;
        if at_runtime {
            param.check_settable(false)?;
        }
        let value = parse_value(param.name, param.kind, value).map_err(SetError::Invalid)?;
        // `dir` moves the process there when applied, as in Redis: check
        // now that it can.
        if param.name == "dir" {
            check_dir(value_str(&value)).map_err(SetError::Invalid)?;
        }
        Ok(Pending {
            kind: param.kind,
            value,
        })
    }

    /// The parameter called `name` (or aliased so), any case.
    pub fn find(&self, name: &str) -> Option<Param<'_>> {
        self.params().into_iter().find(|p| {
            p.name.eq_ignore_ascii_case(name)
                || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
        })
    }

    /// Stores a value checked by [`Config::prepare`].
    pub fn apply(&self, pending: Pending<'_>) {
        match (pending.kind, pending.value) {
            (Kind::Int(p), Value::Int(v)) => p.set(v),
            (Kind::Bool(p), Value::Bool(v)) => p.set(v),
            (Kind::Enum(p), Value::Enum(i)) => {
                p.v.store(i, Ordering::Relaxed);
                if std::ptr::eq(p, &self.loglevel) {
                    crate::log::set_level(i);
                }
            }
            (Kind::Str(p), Value::Str(s)) if std::ptr::eq(p, &self.dir) => {
                // Checked by prepare; a directory removed since then keeps
                // the old working directory (CONFIG GET dir reports it).
                if std::env::set_current_dir(&s).is_ok() {
                    p.set(&s);
                }
            }
            (Kind::Str(p) | Kind::Save(p), Value::Str(s)) => p.set(&s),
            (Kind::Notify(p), Value::Notify(f)) => p.store(f, Ordering::Relaxed),
            (Kind::BufferLimits(p), Value::Limits(v)) => {
                for (class, limits) in p.0.iter().zip(v) {
                    for (slot, x) in class.iter().zip(limits) {
                        slot.store(x, Ordering::Relaxed);
                    }
                }
            }
            _ => unreachable!("prepare pairs each kind with its value"),
        }
    }

    /// Sets one parameter from its textual arguments (config file, command
    /// line or a single CONFIG SET pair).
    pub fn set(&self, name: &str, args: &[&str], at_runtime: bool) -> Result<(), SetError> {
        let pending = self.prepare(name, &args.join(" "), at_runtime)?;
        self.apply(pending);
        Ok(())
    }

    /// The value as CONFIG GET prints it.
    pub fn get_value(param: &Param<'_>) -> String {
        match param.kind {
            Kind::Int(p) => p.get().to_string(),
            Kind::Bool(p) => if p.get() { "yes" } else { "no" }.to_string(),
            Kind::Enum(p) => p.name().to_string(),
            // Redis reports the working directory it is in.
            Kind::Str(_) if param.name == "dir" => std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            Kind::Str(p) | Kind::Save(p) => p.get(),
            Kind::Notify(p) => notify_to_string(p.load(Ordering::Relaxed)),
            Kind::BufferLimits(p) => {
                let all = p.all();
                let parts: Vec<String> = CLIENT_CLASSES
                    .iter()
                    .zip(all)
                    .map(|(c, [h, s, secs])| format!("{c} {h} {s} {secs}"))
                    .collect();
                parts.join(" ")
            }
        }
    }

    /// Whether a client may use what an `enable-*` option (value `no`,
    /// `yes` or `local`) guards; `local` is whether it is a loopback client.
    pub fn enabled_for(option: &EnumParam, local: bool) -> bool {
        match option.name() {
            "yes" => true,
            "local" => local,
            _ => false,
        }
    }

    /// Whether a client may CONFIG SET protected parameters.
    pub fn protected_configs_allowed(&self, local: bool) -> bool {
        Config::enabled_for(&self.enable_protected_configs, local)
    }

    /// The keyspace notification classes enabled (see [`notify`]).
    pub fn notify_flags(&self) -> u32 {
        self.notify_keyspace_events.load(Ordering::Relaxed)
    }
}

fn parse_value(name: &str, kind: Kind<'_>, s: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Int(p) => Value::Int(parse_int(p, s)?),
        // ferrokv has no AOF: accepting `yes` would promise durability it
        // does not give (at start-up and at run time alike).
        Kind::Bool(_) if name == "appendonly" && s.eq_ignore_ascii_case("yes") => {
            return Err(APPENDONLY_UNSUPPORTED.into());
        }
        Kind::Bool(_) => match s.to_ascii_lowercase().as_str() {
            "yes" => Value::Bool(true),
            "no" => Value::Bool(false),
            _ => return Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(p) => match p.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            Some(i) => Value::Enum(i),
            None => {
                return Err(format!(
                    "argument(s) must be one of the following: {}",
                    p.names.join(", ")
                ));
            }
        },
        Kind::Str(_) => Value::Str(s.to_string()),
        Kind::Save(_) => Value::Str(parse_save(s).ok_or("Invalid save parameters")?),
        Kind::Notify(_) => Value::Notify(
            parse_notify(s).ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?,
        ),
        Kind::BufferLimits(p) => Value::Limits(parse_buffer_limits(p.all(), s)?),
    })
}

fn value_str(v: &Value) -> &str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

/// Whether the working directory can move to `path`; the error is the
/// system's words, as Redis gives them.
fn check_dir(path: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err("Not a directory".into()),
        Err(e) => Err(e
            .to_string()
            .split(" (os error")
            .next()
            .unwrap_or_default()
            .to_string()),
    }
}

/// Why `appendonly yes` is refused.
pub const APPENDONLY_UNSUPPORTED: &str =
    "appendonly yes is not supported: ferrokv has no AOF persistence";

fn parse_int(p: &IntParam, s: &str) -> Result<i64, String> {
    let v = if p.memory {
        parse_memory(s)
    } else {
        crate::util::num::parse_i64(s.as_bytes())
    };
    let v = v.ok_or_else(|| {
        if p.memory {
            "argument must be a memory value".to_string()
        } else {
            "argument couldn't be parsed into an integer".to_string()
        }
    })?;
    if v < p.min || v > p.max {
        return Err(format!(
            "argument must be between {} and {} inclusive",
            p.min, p.max
        ));
    }
    Ok(match p.clamp {
        Some((lo, hi)) => v.clamp(lo, hi),
        None => v,
    })
}

/// Parses a memory value as Redis's memtoull: digits, then an optional unit
/// (`b`, `k`/`m`/`g` powers of 1000, `kb`/`mb`/`gb` powers of 1024, any
/// case). No sign, no spaces, no fraction; an empty string is 0.
pub fn parse_memory(s: &str) -> Option<i64> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let mul: i64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: i64 = if num.is_empty() { 0 } else { num.parse().ok()? };
    n.checked_mul(mul)
}

/// `save`: an empty value disables snapshots; otherwise pairs of seconds (>= 1)
/// and changes (>= 0). Returns the canonical form CONFIG GET prints.
fn parse_save(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some(String::new());
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.is_empty() || !parts.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let v: i64 = p.strip_prefix('+').unwrap_or(p).parse().ok()?;
        if (i % 2 == 0 && v < 1) || v < 0 {
            return None;
        }
        out.push(v.to_string());
    }
    Some(out.join(" "))
}

fn parse_notify(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => notify::ALL,
            'K' => notify::KEYSPACE,
            'E' => notify::KEYEVENT,
            'm' => notify::KEY_MISS,
            _ => notify::LETTERS.iter().find(|(l, _)| *l == c)?.1,
        };
    }
    Some(flags)
}

fn notify_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & notify::ALL == notify::ALL {
        s.push('A');
    } else {
        s.extend(
            notify::LETTERS
                .iter()
                .filter(|(_, f)| flags & f != 0)
                .map(|(l, _)| *l),
        );
    }
    for (l, f) in [
        ('K', notify::KEYSPACE),
        ('E', notify::KEYEVENT),
        ('m', notify::KEY_MISS),
    ] {
        if flags & f != 0 {
            s.push(l);
        }
    }
    s
}

/// `client-output-buffer-limit`: groups of `<class> <hard> <soft> <seconds>`;
/// classes not named keep their current limits.
fn parse_buffer_limits(mut cur: [[i64; 3]; 3], s: &str) -> Result<[[i64; 3]; 3], String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if !parts.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for group in parts.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into());
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(group[1]).ok_or_else(bad)?;
        let soft = parse_memory(group[2]).ok_or_else(bad)?;
        let secs: i64 = group[3].parse().ok().filter(|v| *v >= 0).ok_or_else(bad)?;
        cur[class] = [hard, soft, secs];
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100k"), Some(100_000));
        assert_eq!(parse_memory("512MB"), Some(512 << 20));
        assert_eq!(parse_memory(""), Some(0));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1.5gb"), None);
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
            c.set("dir", &["/"], true),
            Err(SetError::Protected)
        ));
        assert!(matches!(
            c.set("port", &["70000"], true),
            Err(SetError::Invalid(_))
        ));
        assert!(matches!(
            c.set("port", &["07"], true),
            Err(SetError::Invalid(_))
        ));
        assert!(c.set("lua-time-limit", &["100"], true).is_ok());
        assert_eq!(c.busy_reply_threshold.get(), 100);
        assert!(c.set("hz", &["0"], true).is_ok());
        assert_eq!(c.hz.get(), 1);
    }

    #[test]
    fn notify_classes_round_trip_as_redis_prints_them() {
        assert_eq!(notify_to_string(parse_notify("KEA").unwrap()), "AKE");
        assert_eq!(
            notify_to_string(parse_notify("Ag$lshzxeKEtmdn").unwrap()),
            "AKEm"
        );
        assert_eq!(notify_to_string(parse_notify("xK").unwrap()), "xK");
        assert!(parse_notify("Q").is_none());
    }

    #[test]
    fn save_and_buffer_limits() {
        assert_eq!(parse_save("100 1 200 2").as_deref(), Some("100 1 200 2"));
        assert_eq!(parse_save("").as_deref(), Some(""));
        assert!(parse_save("  ").is_none());
        assert!(parse_save("100").is_none());
        assert!(parse_save("0 1").is_none());
        let c = Config::default();
        c.set(
            "client-output-buffer-limit",
            &["normal 1mb 2 3 pubsub 1 2 3"],
            true,
        )
        .unwrap();
        let p = &c
            .params()
            .into_iter()
            .find(|p| p.name == "client-output-buffer-limit")
            .unwrap();
        assert_eq!(
            Config::get_value(p),
            "normal 1048576 2 3 slave 268435456 67108864 60 pubsub 1 2 3"
        );
        assert!(
            c.set("client-output-buffer-limit", &["master 1 2 3"], true)
                .is_err()
        );
    }
}
