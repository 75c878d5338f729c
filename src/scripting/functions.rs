//! Redis 7 functions: libraries of Lua functions loaded with FUNCTION LOAD
//! and called with FCALL.
//!
//! As in Redis, functions live in their own Lua VM, apart from EVAL's. A
//! library's body runs once, at load time, in a restricted environment
//! whose only global is a small `redis` table with `register_function`
//! (and `log`); the functions it registers later run with the full
//! scripting API. Both stages see the same environment table, whose
//! lookups switch from the load API to the VM's globals once loading ends.
//!
//! Locking: [`Functions::lock`] guards the registry and its VM; FCALL holds
//! it while the function runs (like EVAL holds its VM). Counters for
//! FUNCTION STATS and the running function's description are kept outside
//! it, so STATS and KILL answer while a function runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use mlua::{Function as LuaFunction, HookTriggers, Lua, MultiValue, Table, Value, VmState};
use parking_lot::{Mutex, MutexGuard};

use super::vm::{KILLED_MSG, ScriptError, Vm};
use crate::server::Server;

/// Function flags, in the order FUNCTION LIST shows them.
pub const FLAG_NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];
pub const NO_WRITES: u32 = 1;
pub const ALLOW_OOM: u32 = 1 << 1;
pub const ALLOW_STALE: u32 = 1 << 2;

/// How long a library body may run at load time.
const LOAD_TIMEOUT_MS: i64 = 500;

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

pub struct Function {
    /// As registered (FCALL finds it case-insensitively).
    pub name: String,
    pub callback: LuaFunction,
    /// Bits of [`FLAG_NAMES`].
    pub flags: u32,
    pub description: Option<Vec<u8>>,
}

pub struct Library {
    pub name: String,
    /// The whole code as loaded, shebang included (LIST WITHCODE, DUMP).
    pub code: Vec<u8>,
    pub functions: BTreeMap<String, Function>,
}

/// A set of libraries and the index of their functions: the live registry,
/// or the staging set FUNCTION RESTORE loads a payload into.
#[derive(Default)]
pub struct Libraries {
    pub libs: BTreeMap<String, Library>,
    /// Lowercase function name -> library name.
    index: HashMap<String, String>,
}

impl Libraries {
    pub fn function_count(&self) -> usize {
        self.libs.values().map(|l| l.functions.len()).sum()
    }

    /// The function called `name` (any case).
    pub fn find(&self, name: &[u8]) -> Option<&Function> {
        let key = String::from_utf8_lossy(name).to_ascii_lowercase();
        let lib = self.libs.get(self.index.get(&key)?)?;
        lib.functions
            .values()
            .find(|f| f.name.eq_ignore_ascii_case(&key))
    }

    fn owner(&self, function: &str) -> Option<&str> {
        self.index
            .get(&function.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn link(&mut self, lib: Library) {
        for f in lib.functions.keys() {
            self.index.insert(f.to_ascii_lowercase(), lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    pub fn remove(&mut self, name: &str) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        for f in lib.functions.keys() {
            let key = f.to_ascii_lowercase();
            if self.index.get(&key) == Some(&lib.name) {
                self.index.remove(&key);
            }
        }
        Some(lib)
    }

    /// Adds every library of `src` (FUNCTION RESTORE's APPEND / REPLACE):
    /// nothing changes unless all of them fit.
    pub fn join(&mut self, src: Libraries, replace: bool) -> Result<(), String> {
        for name in src.libs.keys() {
            if self.libs.contains_key(name) && !replace {
                return Err(format!("ERR Library {name} already exists"));
            }
        }
        for lib in src.libs.values() {
            for f in lib.functions.keys() {
                if let Some(owner) = self.owner(f)
                    && !src.libs.contains_key(owner)
                {
                    return Err(format!("ERR Function {f} already exists"));
                }
            }
        }
        for (name, lib) in src.libs {
            self.remove(&name);
            self.link(lib);
        }
        Ok(())
    }
}

/// The functions' Lua VM with the pieces library loading needs.
pub struct FunctionVm {
    pub vm: Vm,
    /// The environment of every library chunk (and so of its functions).
    env: Table,
    /// Functions `redis.register_function` collected; Some while loading.
    registered: Arc<Mutex<Option<Vec<Function>>>>,
    /// Unix ms after which a loading library body is stopped; 0 = none.
    deadline: Arc<AtomicI64>,
}

#[derive(Default)]
pub struct Registry {
    vm: Option<FunctionVm>,
    pub libs: Libraries,
}

/// What FUNCTION STATS reports about the running function.
pub struct Running {
    pub name: String,
    pub argv: Vec<Vec<u8>>,
}

#[derive(Default)]
pub struct Functions {
    registry: Mutex<Registry>,
    libraries: AtomicUsize,
    functions: AtomicUsize,
    /// The functions' VM memory and the libraries' code bytes (INFO
    /// memory), refreshed with the counters.
    vm_bytes: AtomicUsize,
    code_bytes: AtomicUsize,
    running: Mutex<Option<Running>>,
    /// Every library's code, refreshed with the counters: SAVE reads it
    /// while holding every shard, when taking `registry` could deadlock
    /// with an FCALL that holds it and waits for a shard.
    codes: Mutex<Vec<Vec<u8>>>,
}

impl Functions {
    pub fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock()
    }

    /// The registry if no one holds it (a running function does).
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Registry>> {
        self.registry.try_lock()
    }

    /// The registry if no one holds it (callers that hold shard locks).
    pub fn try_lock_for(&self, wait: std::time::Duration) -> Option<MutexGuard<'_, Registry>> {
        self.registry.try_lock_for(wait)
    }

    /// Every library's code, as of the last change (see `codes`).
    pub fn codes(&self) -> Vec<Vec<u8>> {
        self.codes.lock().clone()
    }

    /// Refreshes the counters FUNCTION STATS reads without the lock.
    pub fn update_counts(&self, reg: &Registry) {
        self.libraries.store(reg.libs.libs.len(), Ordering::Relaxed);
        self.functions
            .store(reg.libs.function_count(), Ordering::Relaxed);
        *self.codes.lock() = reg.libs.libs.values().map(|l| l.code.clone()).collect();
        let vm_bytes = reg.vm.as_ref().map_or(0, |f| f.vm.lua.used_memory());
        self.vm_bytes.store(vm_bytes, Ordering::Relaxed);
        let code: usize = reg.libs.libs.values().map(|l| l.code.len()).sum();
        self.code_bytes.store(code, Ordering::Relaxed);
    }

    /// (the functions' VM memory, the libraries' code bytes).
    pub fn memory(&self) -> (usize, usize) {
        (
            self.vm_bytes.load(Ordering::Relaxed),
            self.code_bytes.load(Ordering::Relaxed),
        )
    }

    /// (libraries, functions).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.libraries.load(Ordering::Relaxed),
            self.functions.load(Ordering::Relaxed),
        )
    }

    pub fn set_running(&self, running: Option<Running>) {
        *self.running.lock() = running;
    }

    /// Name and arguments of the running function.
    pub fn running(&self) -> Option<(String, Vec<Vec<u8>>)> {
        self.running
            .lock()
            .as_ref()
            .map(|r| (r.name.clone(), r.argv.clone()))
    }
}

impl Registry {
    /// The VM, created on first use.
    pub fn vm(&mut self, srv: &'static Server) -> Result<&FunctionVm, String> {
        if self.vm.is_none() {
            let fvm = FunctionVm::new(srv).map_err(|e| format!("ERR creating the Lua VM: {e}"))?;
            self.vm = Some(fvm);
        }
        Ok(self.vm.as_ref().expect("just created"))
    }

    /// FUNCTION LOAD: returns the library's name.
    pub fn load(
        &mut self,
        srv: &'static Server,
        code: &[u8],
        replace: bool,
    ) -> Result<String, String> {
        self.vm(srv)?;
        let fvm = self.vm.as_ref().expect("created above");
        create_library(fvm, &mut self.libs, code, replace)
    }

    /// Loads libraries into a staging set (FUNCTION RESTORE), in this
    /// registry's VM so they can run once installed.
    pub fn load_into(
        &mut self,
        srv: &'static Server,
        staging: &mut Libraries,
        code: &[u8],
    ) -> Result<String, String> {
        let fvm = self.vm(srv)?;
        create_library(fvm, staging, code, false)
    }

    /// FUNCTION FLUSH: every library goes, and the VM with them.
    pub fn flush(&mut self) {
        self.libs = Libraries::default();
        self.vm = None;
    }
}

/// A library's shebang line: `#!<engine> name=<library>`.
struct Metadata<'a> {
    engine: String,
    name: String,
    /// The code from the end of the shebang line on (its newline kept, so
    /// line numbers in errors are those of the text loaded).
    body: &'a [u8],
}

fn parse_metadata(code: &[u8]) -> Result<Metadata<'_>, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    // Redis looks for the newline in a C string: a NUL before it means
    // there is none.
    let Some(nl) = memchr::memchr2(b'\n', 0, code).filter(|&i| code[i] == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    // Redis splits the line with its argument quoting rules (redis-cli's);
    // unbalanced quotes make the metadata invalid.
    let (mut buf, mut spans) = (Vec::new(), Vec::new());
    if crate::resp::parse::split_args(&code[..nl], &mut buf, &mut spans).is_err() {
        return Err("ERR Invalid library metadata".into());
    }
    let mut words = spans.iter().map(|&(s, e)| &buf[s..e]);
    let first = words.next().unwrap_or(b"#!");
    let engine = String::from_utf8_lossy(&first[2..]).into_owned();
    let mut name = None;
    for w in words {
        if w.len() >= 5 && w[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(String::from_utf8_lossy(&w[5..]).into_owned());
        } else {
            return Err(format!(
                "ERR Invalid metadata value given: {}",
                String::from_utf8_lossy(w)
            ));
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    Ok(Metadata {
        engine,
        name,
        body: &code[nl..],
    })
}

/// Names of libraries and functions: letters, digits and `_`, not empty.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Compiles and runs a library's code, then adds it to `libs` (replacing
/// the library of the same name when `replace`). Returns its name.
fn create_library(
    fvm: &FunctionVm,
    libs: &mut Libraries,
    code: &[u8],
    replace: bool,
) -> Result<String, String> {
    let md = parse_metadata(code)?;
    if !valid_name(&md.name) {
        return Err(format!("ERR {BAD_NAME}"));
    }
    if !md.engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{}' not found", md.engine));
    }
    if libs.libs.contains_key(&md.name) && !replace {
        return Err(format!("ERR Library '{}' already exists", md.name));
    }
    let functions = fvm.run_library(md.body)?;
    if functions.is_empty() {
        return Err("ERR No functions registered".into());
    }
    for f in &functions {
        if let Some(owner) = libs.owner(&f.name)
            && owner != md.name
        {
            return Err(format!("ERR Function {} already exists", f.name));
        }
    }
    libs.remove(&md.name);
    let name = md.name.clone();
    libs.link(Library {
        name: md.name,
        code: code.to_vec(),
        functions: functions.into_iter().map(|f| (f.name.clone(), f)).collect(),
    });
    Ok(name)
}

impl FunctionVm {
    fn new(srv: &'static Server) -> mlua::Result<FunctionVm> {
        let vm = Vm::new(srv)?;
        let registered: Arc<Mutex<Option<Vec<Function>>>> = Arc::default();
        let deadline: Arc<AtomicI64> = Arc::default();
        let lua = &vm.lua;
        let load_redis = lua.create_table()?;
        load_redis.raw_set("register_function", register_function(lua, &registered)?)?;
        let redis: Table = lua.globals().raw_get("redis")?;
        for field in [
            "log",
            "LOG_DEBUG",
            "LOG_VERBOSE",
            "LOG_NOTICE",
            "LOG_WARNING",
            "REDIS_VERSION",
            "REDIS_VERSION_NUM",
        ] {
            load_redis.raw_set(field, redis.raw_get::<Value>(field)?)?;
        }
        let (env, load_api): (Table, Table) = lua
            .load(include_str!("functions_env.lua"))
            .set_name("=functions")
            .call((vm.hidden.clone(), lua.globals(), load_redis.clone()))?;
        // A function keeping the load-time `redis` could otherwise change
        // what later FUNCTION LOADs run with.
        for t in [&env, &load_api, &load_redis] {
            super::vm::protect(lua, Value::Table(t.clone()))?;
        }
        // The VM's own hook, plus the load-time limit.
        let limit = deadline.clone();
        lua.set_hook(
            HookTriggers {
                every_nth_instruction: Some(100_000),
                ..Default::default()
            },
            move |_lua, _debug| {
                let until = limit.load(Ordering::Relaxed);
                if until != 0 && crate::server::now_ms() > until {
                    return Err(mlua::Error::external(ScriptError(
                        "ERR FUNCTION LOAD timeout".into(),
                    )));
                }
                srv.scripting.note_if_slow(srv);
                if srv.scripting.kill_requested() || srv.shutting_down() {
                    return Err(mlua::Error::RuntimeError(KILLED_MSG.into()));
                }
                Ok(VmState::Continue)
            },
        );
        Ok(FunctionVm {
            vm,
            env,
            registered,
            deadline,
        })
    }

    /// Compiles a library body and runs it with the load-time API; returns
    /// the functions it registered, in registration order.
    fn run_library(&self, body: &[u8]) -> Result<Vec<Function>, String> {
        let chunk = self
            .vm
            .lua
            .load(body)
            .set_name("@user_function")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                format!("ERR Error compiling function: {msg}")
            })?;
        *self.registered.lock() = Some(Vec::new());
        let _ = self.vm.hidden.raw_set("loading", true);
        self.deadline
            .store(crate::server::now_ms() + LOAD_TIMEOUT_MS, Ordering::Relaxed);
        let result = self.vm.protected_call(&chunk);
        self.deadline.store(0, Ordering::Relaxed);
        let _ = self.vm.hidden.raw_set("loading", Value::Nil);
        let functions = self.registered.lock().take().unwrap_or_default();
        match result {
            Ok(()) => Ok(functions),
            Err((msg, _line)) => Err(format!(
                "ERR Error registering functions: {}",
                String::from_utf8_lossy(&msg)
            )),
        }
    }
}

fn fail<T>(msg: &str) -> mlua::Result<T> {
    Err(mlua::Error::external(ScriptError(format!("ERR {msg}"))))
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=, callback=, flags=, description=}`.
fn register_function(
    lua: &Lua,
    registered: &Arc<Mutex<Option<Vec<Function>>>>,
) -> mlua::Result<LuaFunction> {
    let registered = registered.clone();
    lua.create_function(move |lua, args: MultiValue| {
        if registered.lock().is_none() {
            return fail("redis.register_function can only be called on FUNCTION LOAD command");
        }
        let f = read_registration(lua, args)?;
        if !valid_name(&f.name) {
            return fail(BAD_NAME);
        }
        let mut guard = registered.lock();
        let list = guard.as_mut().expect("checked above");
        if list.iter().any(|g| g.name == f.name) {
            return fail("Function already exists in the library");
        }
        list.push(f);
        Ok(())
    })
}

/// Lua's "is a string" (numbers convert) as text.
fn as_text(lua: &Lua, v: &Value) -> mlua::Result<Option<Vec<u8>>> {
    match v {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => {
            Ok(lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()))
        }
        _ => Ok(None),
    }
}

fn read_registration(lua: &Lua, args: MultiValue) -> mlua::Result<Function> {
    let args: Vec<Value> = args.into_iter().collect();
    match args.as_slice() {
        [Value::Table(t)] => read_named(lua, t),
        [_] => fail(
            "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
        ),
        [name, callback] => {
            let Some(name) = as_text(lua, name)? else {
                return fail("first argument to redis.register_function must be a string");
            };
            let Value::Function(callback) = callback else {
                return fail("second argument to redis.register_function must be a function");
            };
            Ok(Function {
                name: String::from_utf8_lossy(&name).into_owned(),
                callback: callback.clone(),
                flags: 0,
                description: None,
            })
        }
        _ => fail("wrong number of arguments to redis.register_function"),
    }
}

fn read_named(lua: &Lua, t: &Table) -> mlua::Result<Function> {
    let mut name = None;
    let mut callback = None;
    let mut flags = 0;
    let mut description = None;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Some(k) = as_text(lua, &k)? else {
            return fail("named argument key given to redis.register_function is not a string");
        };
        match k.as_slice() {
            b"function_name" => match as_text(lua, &v)? {
                Some(n) => name = Some(String::from_utf8_lossy(&n).into_owned()),
                None => {
                    return fail(
                        "function_name argument given to redis.register_function must be a string",
                    );
                }
            },
            b"description" => match as_text(lua, &v)? {
                Some(d) => description = Some(d),
                None => {
                    return fail(
                        "description argument given to redis.register_function must be a string",
                    );
                }
            },
            b"callback" => match v {
                Value::Function(f) => callback = Some(f),
                _ => {
                    return fail(
                        "callback argument given to redis.register_function must be a function",
                    );
                }
            },
            b"flags" => match v {
                Value::Table(list) => flags = read_flags(lua, &list)?,
                _ => {
                    return fail(
                        "flags argument to redis.register_function must be a table representing function flags",
                    );
                }
            },
            _ => return fail("unknown argument given to redis.register_function"),
        }
    }
    let Some(name) = name else {
        return fail("redis.register_function must get a function name argument");
    };
    let Some(callback) = callback else {
        return fail("redis.register_function must get a callback argument");
    };
    Ok(Function {
        name,
        callback,
        flags,
        description,
    })
}

/// The flags list: elements 1, 2, ... up to the first nil.
fn read_flags(lua: &Lua, list: &Table) -> mlua::Result<u32> {
    let mut flags = 0;
    for i in 1.. {
        let v: Value = list.raw_get(i)?;
        if v.is_nil() {
            break;
        }
        let known = as_text(lua, &v)?
            .and_then(|s| FLAG_NAMES.iter().position(|f| f.as_bytes() == s.as_slice()));
        match known {
            Some(bit) => flags |= 1 << bit,
            None => return fail("unknown flag given"),
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata() {
        let md = parse_metadata(b"#!lua name=mylib\nbody").unwrap();
        assert_eq!((md.engine.as_str(), md.name.as_str()), ("lua", "mylib"));
        assert_eq!(md.body, b"\nbody");
        let md = parse_metadata(b"#!LUA\tNAME=x \r\n").unwrap();
        assert_eq!((md.engine.as_str(), md.name.as_str()), ("LUA", "x"));
        let err = |code: &[u8]| parse_metadata(code).err().unwrap();
        assert_eq!(err(b"return 1"), "ERR Missing library metadata");
        assert_eq!(
            err(b"#!lua name=x\0\nreturn 1"),
            "ERR Invalid library metadata"
        );
        assert_eq!(
            err(b"#!lua name=my'lib\nreturn 1"),
            "ERR Invalid library metadata"
        );
        let md = parse_metadata(b"#!lua \"name=my\\x41lib\"\n").unwrap();
        assert_eq!(md.name, "myAlib");
        assert_eq!(err(b"#!lua name=x"), "ERR Invalid library metadata");
        assert_eq!(err(b"#!lua\n"), "ERR Library name was not given");
        assert_eq!(
            err(b"#!lua name=a name=b\n"),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(err(b"#!lua x=y\n"), "ERR Invalid metadata value given: x=y");
    }

    #[test]
    fn names() {
        assert!(valid_name("abc_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a-b"));
    }
}
