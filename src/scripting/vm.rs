//! The Lua 5.1 VM scripts run in: standard libraries Redis offers, the
//! `redis` table, the sandbox (read-only globals, no `os`/`io`/file
//! loading) and the instruction-count hook that lets SCRIPT KILL stop a
//! running script.

use std::collections::HashMap;
use std::ffi::c_int;

use mlua::{
    Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState, ffi,
};

use super::convert::error_code_form;
use crate::server::Server;

/// How often (in VM instructions) the hook checks for SCRIPT KILL.
const HOOK_EVERY: u32 = 100_000;

pub const KILLED_MSG: &str = "ERR Script killed by user with SCRIPT KILL...";

/// What an EVAL script declared in its `#!lua flags=...` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShebangFlags {
    /// The script has a shebang (without one it runs in Redis's
    /// compatibility mode: no up-front checks).
    pub shebang: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
}

pub struct Vm {
    pub lua: Lua,
    /// Compiled EVAL bodies by lowercase SHA1 hex, with their shebang's
    /// flags.
    pub scripts: ScriptCache,
    /// Private helpers shared with the prelude (its error handler, ...).
    pub hidden: Table,
    /// The message handler scripts run under: it turns whatever was raised
    /// into `{err=..., line=...}`.
    pub handler: Function,
    /// Script runs until the next garbage-collection step ([`Vm::after_run`]).
    gc_countdown: u32,
}

/// Every this many runs, the collector takes a step of this many KiB:
/// Redis's rhythm, which keeps the VM's memory near what it holds instead
/// of letting it grow to twice that before a cycle.
const GC_PERIOD: u32 = 50;

impl Vm {
    pub fn new(srv: &'static Server) -> mlua::Result<Vm> {
        // SAFETY: the debug library is loaded only so the prelude can take
        // `debug.getinfo` for its error handler; the global is removed below.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::new(),
            )
        };
        let g = lua.globals();
        for name in [
            "print", "dofile", "loadfile", "require", "module", "setfenv", "getfenv", "newproxy",
            "os", "io", "package",
        ] {
            g.raw_set(name, Value::Nil)?;
        }
        let hidden = lua.create_table()?;
        let redis = lua.create_table()?;
        for (i, name) in ["LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"]
            .iter()
            .enumerate()
        {
            redis.raw_set(*name, i as i64)?;
        }
        redis.raw_set("REDIS_VERSION", "7.0.15")?;
        redis.raw_set("REDIS_VERSION_NUM", 0x07000f)?;
        g.raw_set("redis", redis.clone())?;
        install_helpers(&lua, &hidden, &redis)?;
        super::libs::install(&lua)?;
        let prelude = lua
            .load(include_str!("prelude.lua"))
            .set_name("=prelude")
            .into_function()?;
        let raw_pcall: Function = g.raw_get("pcall")?;
        let select: Function = g.raw_get("select")?;
        let type_fn: Function = g.raw_get("type")?;
        let getinfo: Function = g.raw_get::<Table>("debug")?.raw_get("getinfo")?;
        prelude.call::<()>((hidden.clone(), raw_pcall, select, type_fn, getinfo))?;
        g.raw_set("debug", Value::Nil)?;
        lock_globals(&lua)?;
        // Everything a script can reach by name becomes read-only, so no
        // script changes what later ones run with.
        protect(&lua, Value::Table(g))?;
        protect(&lua, Value::Table(string_metatable(&lua)?))?;
        lua.set_hook(
            HookTriggers {
                every_nth_instruction: Some(HOOK_EVERY),
                ..Default::default()
            },
            move |_lua, _debug| {
                srv.scripting.note_if_slow(srv);
                if srv.scripting.kill_requested() || srv.shutting_down() {
                    Err(mlua::Error::RuntimeError(KILLED_MSG.into()))
                } else {
                    Ok(VmState::Continue)
                }
            },
        );
        hidden.raw_set(
            "describe",
            lua.create_function(move |lua, err: Value| describe_error(srv, lua, err))?,
        )?;
        let handler = hidden.raw_get("handler")?;
        let scripts = ScriptCache::new(&lua)?;
        Ok(Vm {
            lua,
            scripts,
            hidden,
            handler,
            gc_countdown: GC_PERIOD,
        })
    }

    /// Counts a script run; every [`GC_PERIOD`] runs, a collection step.
    pub fn after_run(&mut self) {
        self.gc_countdown -= 1;
        if self.gc_countdown == 0 {
            self.gc_countdown = GC_PERIOD;
            let _ = self.lua.gc_step_kbytes(GC_PERIOD as c_int);
        }
    }

    /// Compiles a script body the way EVAL does (chunk name `@user_script`),
    /// reading its `#!lua flags=...` shebang line if it has one. Returns the
    /// function and the flags the script declared.
    pub fn compile(&self, body: &[u8]) -> Result<(Function, ShebangFlags), String> {
        let (flags, body) = parse_shebang(body)?;
        let f = self.compile_chunk(&body, "@user_script")?;
        Ok((f, flags))
    }

    /// Calls `f` without arguments under the error handler: Err((message,
    /// line)) when it raised.
    pub fn protected_call(&self, f: &Function) -> Result<(), (Vec<u8>, i64)> {
        super::run::call_protected(self, f)
    }

    pub fn compile_chunk(&self, body: &[u8], name: &str) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name(name)
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                format!("ERR Error compiling script (new function): {msg}")
            })
    }
}

/// The EVAL script cache. The compiled functions live in a Lua table, not
/// as handles on the Rust side: mlua can hold only a few thousand handles,
/// and a cache may hold any number of scripts.
pub struct ScriptCache {
    /// SHA -> (slot in `fns`, flags).
    index: HashMap<String, (i64, ShebangFlags)>,
    /// The functions, by integer slot (cheaper to reach than by SHA string).
    fns: Table,
    next: i64,
    /// The cached bodies' and SHAs' bytes (INFO `used_memory_scripts_eval`).
    bytes: usize,
}

impl ScriptCache {
    fn new(lua: &Lua) -> mlua::Result<ScriptCache> {
        Ok(ScriptCache {
            index: HashMap::new(),
            fns: lua.create_table()?,
            next: 0,
            bytes: 0,
        })
    }

    /// The script and its shebang's flags.
    pub fn get(&self, sha: &str) -> Option<(Function, ShebangFlags)> {
        let &(slot, flags) = self.index.get(sha)?;
        let f = self.fns.raw_get::<Function>(slot).ok()?;
        Some((f, flags))
    }

    /// Caches a script compiled from `body_len` bytes.
    pub fn insert(&mut self, sha: String, (f, flags): (Function, ShebangFlags), body_len: usize) {
        let slot = self.next + 1;
        if self.fns.raw_set(slot, f).is_ok() {
            self.next = slot;
            self.bytes += sha.len() + body_len;
            self.index.insert(sha, (slot, flags));
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains_key(&self, sha: &str) -> bool {
        self.index.contains_key(sha)
    }

    pub fn clear(&mut self) {
        self.index.clear();
        let _ = self.fns.clear();
        self.next = 0;
        self.bytes = 0;
    }
}

/// The flags a script may declare in its shebang.
const SHEBANG_FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Whether a script body's shebang declares `no-writes` (an invalid
/// shebang declares nothing: the script fails when it runs).
pub fn declares_no_writes(body: &[u8]) -> bool {
    parse_shebang(body).is_ok_and(|(f, _)| f.no_writes)
}

/// The flags a script body's shebang declares, if it has a valid one.
pub fn shebang_flags(body: &[u8]) -> Option<ShebangFlags> {
    parse_shebang(body)
        .ok()
        .map(|(f, _)| f)
        .filter(|f| f.shebang)
}

/// Reads `#!lua [flags=a,b]` off the first line. The line is blanked, not
/// removed, so error line numbers stay those of the text sent.
fn parse_shebang(body: &[u8]) -> Result<(ShebangFlags, std::borrow::Cow<'_, [u8]>), String> {
    if !body.starts_with(b"#!") {
        return Ok((ShebangFlags::default(), body.into()));
    }
    let Some(nl) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..nl]);
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = ShebangFlags {
        shebang: true,
        ..ShebangFlags::default()
    };
    for w in words {
        let Some(list) = w.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {w}"));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            if !SHEBANG_FLAGS.contains(&flag) {
                return Err(format!("ERR Unexpected flag in script shebang: {flag}"));
            }
            flags.no_writes |= flag == "no-writes";
            flags.allow_oom |= flag == "allow-oom";
            flags.allow_stale |= flag == "allow-stale";
        }
    }
    Ok((flags, body[nl..].to_vec().into()))
}

/// Gives reading a missing global Redis's error. (Writes are refused by
/// the read-only flag [`protect`] sets, so, as in Redis, the metatable has
/// no `__newindex`.)
fn lock_globals(lua: &Lua) -> mlua::Result<()> {
    let mt = lua.create_table()?;
    let code = r#"
        local error, tostring = error, tostring
        return function(t, k)
          error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
    "#;
    let index: Function = lua.load(code).set_name("=sandbox").call(())?;
    mt.raw_set("__index", index)?;
    lua.globals().set_metatable(Some(mt));
    Ok(())
}

// The read-only table flag of ferrokv's patched Lua (vendor/lua-src): every
// write to a marked table (assignment, rawset, the table library,
// setmetatable) raises "Attempt to modify a readonly table".
unsafe extern "C-unwind" {
    pub fn lua_enablereadonlytable(l: *mut ffi::lua_State, idx: c_int, enabled: c_int);
    fn lua_isreadonlytable(l: *mut ffi::lua_State, idx: c_int) -> c_int;
}

/// Marks `root` read-only, with every table reachable from it through
/// values and metatables (as Redis protects its scripting globals).
pub fn protect(lua: &Lua, root: Value) -> mlua::Result<()> {
    /// Depth of nested tables followed; the sandbox's own are shallow.
    const MAX_DEPTH: usize = 32;
    // SAFETY: the stack holds what the recursion pushed, checked for room
    // before each push; it is left as found.
    unsafe fn walk(l: *mut ffi::lua_State, idx: c_int, depth: usize) {
        // SAFETY: `idx` is the absolute index of a table (the root, or a
        // value/metatable checked to be one). The traversal pushes only after
        // `lua_checkstack` and pops what it pushed, and never converts a key,
        // so `lua_next` sees each key unchanged.
        unsafe {
            if lua_isreadonlytable(l, idx) != 0 || depth > MAX_DEPTH {
                return;
            }
            lua_enablereadonlytable(l, idx, 1);
            if ffi::lua_checkstack(l, 3) == 0 {
                return;
            }
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, idx) != 0 {
                if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
                    walk(l, ffi::lua_gettop(l), depth + 1);
                }
                ffi::lua_pop(l, 1);
            }
            if ffi::lua_getmetatable(l, idx) != 0 {
                walk(l, ffi::lua_gettop(l), depth + 1);
                ffi::lua_pop(l, 1);
            }
        }
    }
    if !root.is_table() {
        return Ok(());
    }
    // SAFETY: `root`, a table, is at index 1 of the fresh stack.
    unsafe { lua.exec_raw::<()>(root, |l| walk(l, 1, 0)) }
}

/// The metatable strings share (`getmetatable('')`).
fn string_metatable(lua: &Lua) -> mlua::Result<Table> {
    lua.load("return getmetatable('')")
        .set_name("=sandbox")
        .call(())
}

/// An error a Rust helper raises with Redis's exact text (code included).
#[derive(Debug)]
pub struct ScriptError(pub String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

fn raise<T>(msg: impl Into<String>) -> mlua::Result<T> {
    Err(mlua::Error::external(ScriptError(msg.into())))
}

/// The message of an error value that is not a string or a table: a
/// failure raised from Rust (a helper's error, the SCRIPT KILL hook's).
/// Returns (message, plain): a plain message is a Lua-style runtime error
/// that still needs its position and error code.
fn describe_error(
    srv: &'static Server,
    lua: &Lua,
    err: Value,
) -> mlua::Result<(mlua::String, bool)> {
    let (msg, plain) = match err {
        Value::Error(e) => match root_cause(&e) {
            Ok(text) => (text, false),
            Err(_) if srv.scripting.kill_requested() => (KILLED_MSG.to_string(), false),
            Err(text) => (text, true),
        },
        _ => ("ERR unknown error".into(), false),
    };
    Ok((lua.create_string(msg)?, plain))
}

/// Ok(text with its code) for errors raised with Redis's wording, else
/// Err(description).
fn root_cause(e: &mlua::Error) -> Result<String, String> {
    match e {
        mlua::Error::CallbackError { cause, .. } => root_cause(cause),
        mlua::Error::ExternalError(inner) => match inner.downcast_ref::<ScriptError>() {
            Some(s) => Ok(s.0.clone()),
            None => Err(inner.to_string()),
        },
        mlua::Error::RuntimeError(m) if m == KILLED_MSG => Ok(m.clone()),
        mlua::Error::RuntimeError(m) => Err(m.clone()),
        other => Err(other.to_string()),
    }
}

/// The `redis.*` functions written in Rust. `redis.call` / `redis.pcall`
/// reach the running script's context through [`super::run`]; being C
/// functions, they keep the caller's frame (and so its line number) even
/// in `return redis.call(...)`.
fn install_helpers(lua: &Lua, hidden: &Table, redis: &Table) -> mlua::Result<()> {
    // SAFETY: C functions that only touch their own stack.
    unsafe {
        redis.raw_set("call", lua.create_c_function(super::run::redis_call)?)?;
        redis.raw_set("pcall", lua.create_c_function(super::run::redis_pcall)?)?;
        redis.raw_set(
            "acl_check_cmd",
            lua.create_c_function(super::run::redis_acl_check_cmd)?,
        )?;
    }
    // Redis 7 always replicates a script's effects, so asking is a yes.
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    // The script debugger's hooks do nothing outside a debugging session.
    // SAFETY: C functions that only touch their own stack.
    unsafe {
        redis.raw_set(
            "breakpoint",
            lua.create_c_function(super::ldb::redis_breakpoint)?,
        )?;
        redis.raw_set("debug", lua.create_c_function(super::ldb::redis_debug)?)?;
    }
    for (name, flags) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, flags)?;
    }
    redis.raw_set(
        "set_repl",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return raise("ERR redis.set_repl() requires two arguments.");
            }
            let v = args.into_iter().next().unwrap_or(Value::Nil);
            // As Lua's tonumber: anything else counts as 0 (REPL_NONE).
            let n = match v {
                Value::Integer(n) => n as f64,
                Value::Number(n) => n,
                Value::String(_) => lua
                    .coerce_number(v)
                    .ok()
                    .flatten()
                    .unwrap_or(0.0),
                _ => 0.0,
            } as i64;
            if !(0..=3).contains(&n) {
                return raise(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                );
            }
            super::run::set_repl(n as u8);
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return raise("ERR wrong number of arguments");
            }
            let v = args.into_iter().next().unwrap_or(Value::Nil);
            let bytes = lua
                .coerce_string(v)?
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default();
            let hex = super::sha1_hex(&bytes);
            lua.create_string(hex)
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() < 2 {
                return raise("ERR redis.log() requires two arguments or more.");
            }
            let mut it = args.into_iter();
            let level = match it.next() {
                Some(Value::Integer(n)) => n,
                Some(Value::Number(n)) => n as i64,
                _ => return raise("ERR First argument must be a number (log level)."),
            };
            if !(0..=3).contains(&level) {
                return raise("ERR Invalid debug level.");
            }
            let mut words = Vec::new();
            for v in it {
                if let Some(s) = lua.coerce_string(v)? {
                    words.push(String::from_utf8_lossy(&s.as_bytes()).into_owned());
                }
            }
            crate::log::log(level as usize, &words.join(" "));
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "setresp",
        lua.create_function(move |_lua, args: MultiValue| {
            if args.len() != 1 {
                return raise("ERR redis.setresp() requires one argument.");
            }
            let n = match args.into_iter().next() {
                Some(Value::Integer(n)) => n,
                Some(Value::Number(n)) => n as i64,
                _ => 0,
            };
            if n != 2 && n != 3 {
                return raise("ERR RESP version must be 2 or 3.");
            }
            super::run::set_resp(n == 3);
            Ok(())
        })?,
    )?;
    hidden.raw_set(
        "error_code_form",
        lua.create_function(|lua, s: mlua::String| {
            let mut msg = b"-".to_vec();
            let b = s.as_bytes();
            msg.extend_from_slice(b.strip_prefix(b"-").unwrap_or(&b));
            lua.create_string(error_code_form(&msg))
        })?,
    )?;
    Ok(())
}
