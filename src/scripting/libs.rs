//! The extra libraries Redis puts in the scripting VM (cjson, cmsgpack,
//! bit, struct), and the argument checks they share, which reproduce the
//! Lua 5.1 auxiliary library's (`luaL_check*`) behaviour and messages.

use std::ffi::c_int;

use mlua::{Lua, Value, ffi};

pub fn install(lua: &Lua) -> mlua::Result<()> {
    super::bit::install(lua)?;
    super::cjson::install(lua)?;
    super::cmsgpack::install(lua)?;
    super::struct_lib::install(lua)?;
    Ok(())
}

/// What SCRIPT FLUSH resets besides the script cache: Redis gives EVAL a
/// fresh VM, so the libraries' settings (cjson's) go back to defaults.
pub fn reset(lua: &Lua) {
    super::cjson::reset(lua);
}

/// The most stack slots a C function may use (Lua 5.1's `LUAI_MAXCSTACK`);
/// the libraries that return many values fail past it as Redis's do.
pub const MAX_C_STACK: usize = 8000;

/// A plain runtime error: the error handler prefixes the caller's
/// `user_script:<line>:` as `luaL_error` does.
pub fn runtime_error(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// `luaL_typename` of an argument; `None` is a missing argument.
pub fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// `luaL_argerror` for the function running at stack `level` (0: the
/// Rust function itself; 1: the C function of [`c_function`] that called
/// it): "bad argument
/// #n to 'name' (msg)", the name being how that function was called (as
/// `debug.getinfo` names it).
pub fn arg_error(lua: &Lua, level: usize, narg: usize, msg: &str) -> mlua::Error {
    let (name, what) = match lua.inspect_stack(level) {
        Some(d) => {
            let names = d.names();
            (names.name.map(|n| n.into_owned()), names.name_what)
        }
        None => (None, None),
    };
    let name = name.unwrap_or_else(|| "?".into());
    let mut narg = narg;
    if what == Some("method") {
        narg = narg.saturating_sub(1);
        if narg == 0 {
            return runtime_error(format!("calling '{name}' on bad self ({msg})"));
        }
    }
    runtime_error(format!("bad argument #{narg} to '{name}' ({msg})"))
}

/// Lua 5.1's `lua_number2integer` on x86-64: truncation, and the
/// "integer indefinite" value for NaN and out-of-range numbers.
pub fn number_to_integer(n: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-TWO_63..TWO_63).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// `lua_tonumber`: numbers, and strings Lua converts.
pub fn to_number(lua: &Lua, v: Option<&Value>) -> mlua::Result<Option<f64>> {
    Ok(match v {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(v @ Value::String(_)) => lua.coerce_number(v.clone())?,
        _ => None,
    })
}

/// A library function's arguments (as [`c_function`] hands them over: a
/// count and a table), read one at a time with their numbers exact, and
/// checked as the `luaL_check*` functions do (numbered from 1, with their
/// error messages). Reading them on demand keeps few mlua references
/// alive however many arguments there are.
pub struct LuaArgs<'a> {
    pub lua: &'a Lua,
    n: usize,
    table: mlua::Table,
    /// Argument `n + 1` reads as nil, not as missing.
    nil_after: bool,
    /// Stack level of the function the errors name (see [`arg_error`]).
    pub level: usize,
}

impl<'a> LuaArgs<'a> {
    pub fn new(lua: &'a Lua, n: usize, table: mlua::Table, level: usize) -> Self {
        LuaArgs {
            lua,
            n,
            table,
            nil_after: false,
            level,
        }
    }

    /// The same arguments as seen by a C function that pushed a nil after
    /// them: argument `n + 1` is nil, not missing.
    pub fn with_nil_after(&self) -> LuaArgs<'a> {
        LuaArgs {
            table: self.table.clone(),
            nil_after: true,
            ..*self
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Argument `narg`, None when missing.
    pub fn get(&self, narg: usize) -> mlua::Result<Option<Value>> {
        if narg > self.n {
            return Ok((self.nil_after && narg == self.n + 1).then_some(Value::Nil));
        }
        let v = self.table.raw_get::<Value>(narg)?;
        exact_value(&self.table, &Value::Integer(narg as i64), v).map(Some)
    }

    pub fn arg_error(&self, narg: usize, msg: &str) -> mlua::Error {
        arg_error(self.lua, self.level, narg, msg)
    }

    /// `luaL_typerror`: "<expected> expected, got <type>".
    pub fn type_error(&self, narg: usize, expected: &str) -> mlua::Error {
        let got = match self.get(narg) {
            Ok(v) => type_name(v.as_ref()),
            Err(e) => return e,
        };
        self.arg_error(narg, &format!("{expected} expected, got {got}"))
    }

    /// `luaL_checknumber`.
    pub fn number(&self, narg: usize) -> mlua::Result<f64> {
        to_number(self.lua, self.get(narg)?.as_ref())?
            .ok_or_else(|| self.type_error(narg, "number"))
    }

    /// `luaL_checkinteger`.
    pub fn integer(&self, narg: usize) -> mlua::Result<i64> {
        self.number(narg).map(number_to_integer)
    }

    /// `luaL_optinteger`: the default when the argument is absent or nil.
    pub fn opt_integer(&self, narg: usize, default: i64) -> mlua::Result<i64> {
        match self.get(narg)? {
            None | Some(Value::Nil) => Ok(default),
            _ => self.integer(narg),
        }
    }

    /// `luaL_checklstring`: strings, and numbers converted as Lua does.
    pub fn string(&self, narg: usize) -> mlua::Result<mlua::String> {
        match self.get(narg)? {
            Some(Value::String(s)) => Ok(s),
            Some(v @ (Value::Integer(_) | Value::Number(_))) => self
                .lua
                .coerce_string(v)?
                .ok_or_else(|| self.type_error(narg, "string")),
            _ => Err(self.type_error(narg, "string")),
        }
    }
}

/// An error raised without the caller's position (a Lua runtime error
/// from inside C code, like "table index is nil").
#[derive(Debug)]
struct Unpositioned(String);

impl std::fmt::Display for Unpositioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unpositioned {}

pub fn unpositioned_error(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Unpositioned(msg.into()))
}

/// The text of an error a library function raised itself, and whether
/// it takes its caller's position; None for anything else.
fn lib_error(e: &mlua::Error) -> Option<(String, bool)> {
    match e {
        mlua::Error::CallbackError { cause, .. } => lib_error(cause),
        mlua::Error::RuntimeError(m) => Some((m.clone(), true)),
        mlua::Error::ExternalError(x) => x
            .downcast_ref::<Unpositioned>()
            .map(|u| (u.0.clone(), false)),
        _ => None,
    }
}

/// A library function: `f` behind a [`c_function`], getting its arguments
/// as [`LuaArgs`] (errors naming the C function). Its errors are raised by
/// the C function as Lua strings, prefixed with the caller's position as
/// `luaL_error` does, so that `pcall` returns the same text as in Redis.
pub fn lib_function<R: mlua::IntoLuaMulti>(
    lua: &Lua,
    results: Results,
    f: impl Fn(&LuaArgs<'_>) -> mlua::Result<R> + Send + 'static,
) -> mlua::Result<mlua::Function> {
    let inner = lua.create_function(move |lua, (n, t): (usize, mlua::Table)| {
        match f(&LuaArgs::new(lua, n, t, 1)) {
            Ok(r) => {
                let mut values = r.into_lua_multi(lua)?;
                values.push_front(Value::Boolean(true));
                Ok(values)
            }
            Err(e) => match lib_error(&e) {
                Some((msg, positioned)) => Ok(mlua::MultiValue::from_iter([
                    Value::Boolean(false),
                    Value::String(lua.create_string(msg)?),
                    Value::Boolean(positioned),
                ])),
                None => Err(e),
            },
        }
    })?;
    c_function(lua, inner, results)
}

/// What [`c_function`]'s inner Rust function returns after its status
/// (true, or false with an error message and whether to position it).
#[derive(Clone, Copy, PartialEq)]
pub enum Results {
    /// Its own return values, as they are.
    Direct,
    /// `(table, n, keep_args)`: the values `table[1..n]`, pushed by the C
    /// trampoline after the arguments (all of them when `keep_args`, else
    /// only the first's slot), the stack room Redis's libraries use.
    Spread,
}

/// A C function around a Rust one, for the library functions that need
/// what mlua's conversions lose:
/// - exact numbers: mlua reads a Lua 5.1 number within `f64::EPSILON` of
///   an integer as that integer (-0 and 1e-20 both become 0); the inner
///   function gets `(nargs, args_table)` instead, whose numbers
///   [`LuaArgs`] reads exactly;
/// - many results: returning thousands of strings or tables from Rust
///   needs as many mlua references at once, which are limited; with
///   [`Results::Spread`] the trampoline pushes them from a table itself;
/// - errors as C libraries raise them (see [`lib_function`]).
///
/// Being a C function, it keeps its caller's frame in a tail call (so
/// errors still name the script line), and the inner function names it
/// in argument errors with stack level 1 ([`LuaArgs::level`]).
pub fn c_function(
    lua: &Lua,
    inner: mlua::Function,
    results: Results,
) -> mlua::Result<mlua::Function> {
    let spread = results == Results::Spread;
    // SAFETY: the closure only makes a C closure of the two values
    // exec_raw pushed, leaving it as the single result.
    unsafe {
        lua.exec_raw::<mlua::Function>((inner, spread), |state| {
            ffi::lua_pushcclosure(state, trampoline, 2);
        })
    }
}

/// Raises the error whose message is at `status + 1` (positioned if
/// `status + 2` is true), as `luaL_error` would from this C function.
///
/// # Safety
/// `state` runs the trampoline; the values are on its stack.
unsafe fn raise(state: *mut ffi::lua_State, status: c_int) -> ! {
    // SAFETY: see the function's contract; lua_error does not return.
    unsafe {
        let positioned = ffi::lua_toboolean(state, status + 2) != 0;
        ffi::lua_pushvalue(state, status + 1);
        if positioned {
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, -2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state)
    }
}

/// The C side of [`c_function`]. No Rust value with a destructor is alive
/// across the Lua calls that may raise (longjmp) an error.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: standard Lua C API use on the running function's own stack;
    // the stack is checked before pushing beyond LUA_MINSTACK.
    unsafe {
        // Lua guarantees LUA_MINSTACK free slots to a C function: enough
        // for the values pushed here, however many arguments came.
        let nargs = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushinteger(state, nargs as ffi::lua_Integer);
        ffi::lua_createtable(state, nargs, 0);
        for i in 1..=nargs {
            ffi::lua_pushvalue(state, i);
            ffi::lua_rawseti_(state, -2, i);
        }
        let status = nargs + 1;
        if ffi::lua_toboolean(state, ffi::lua_upvalueindex(2)) == 0 {
            ffi::lua_call(state, 2, ffi::LUA_MULTRET);
            if ffi::lua_toboolean(state, status) == 0 {
                raise(state, status);
            }
            ffi::lua_remove(state, status);
            return ffi::lua_gettop(state) - nargs;
        }
        ffi::lua_call(state, 2, 4);
        if ffi::lua_toboolean(state, status) == 0 {
            raise(state, status);
        }
        let n = ffi::lua_tointeger_(state, -2) as c_int;
        let keep_args = ffi::lua_toboolean(state, -1) != 0;
        ffi::lua_settop(state, -3);
        ffi::lua_remove(state, status);
        // The table takes the first argument's slot.
        if nargs == 0 {
            ffi::lua_pushnil(state);
            ffi::lua_insert(state, 1);
        }
        ffi::lua_replace(state, 1);
        if !keep_args {
            ffi::lua_settop(state, 1);
        }
        if n > 0 && ffi::lua_checkstack(state, n) == 0 {
            ffi::luaL_error(state, c"stack overflow (too many results)".as_ptr());
        }
        for i in 1..=n {
            ffi::lua_rawgeti_(state, 1, i);
        }
        n
    }
}

/// A table value with its number exact (see [`c_function`]).
pub fn exact_value(t: &mlua::Table, k: &Value, v: Value) -> mlua::Result<Value> {
    Ok(match v {
        Value::Integer(_) => Value::Number(t.raw_get::<f64>(k.clone())?),
        v => v,
    })
}

/// A table walk with Lua's `next`: `walk_next(step, t, keys, slot)` gives
/// the pair after the key in `keys[slot]` (nil: the first), and keeps the
/// new key there. The keys stay on the Lua side because mlua reads a
/// number key lossily (see [`c_function`]), and `next` needs it exact.
pub fn table_walker(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.load(
        "local next = next \
         return function(t, keys, slot) \
           local k, v = next(t, keys[slot]) keys[slot] = k return k ~= nil, v \
         end",
    )
    .set_name("=walker")
    .call(())
}

/// Table walks (see [`table_walker`]), one per slot, numbers exact.
pub struct Walker {
    step: mlua::Function,
    keys: mlua::Table,
}

impl Walker {
    pub fn new(lua: &Lua, step: &mlua::Function) -> mlua::Result<Walker> {
        Ok(Walker {
            step: step.clone(),
            keys: lua.create_table()?,
        })
    }

    /// Starts the walk in `slot` over.
    pub fn restart(&self, slot: usize) -> mlua::Result<()> {
        self.keys.raw_set(slot, Value::Nil)
    }

    /// The next (key, value) of the walk of `t` in `slot`.
    pub fn next(&self, t: &mlua::Table, slot: usize) -> mlua::Result<Option<(Value, Value)>> {
        let (more, v): (bool, Value) = self.step.call((t, &self.keys, slot))?;
        if !more {
            return Ok(None);
        }
        let slot_key = Value::Integer(slot as i64);
        let k = exact_value(&self.keys, &slot_key, self.keys.raw_get(slot)?)?;
        let v = exact_value(t, &k, v)?;
        Ok(Some((k, v)))
    }
}
