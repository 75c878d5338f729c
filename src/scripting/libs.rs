//! The extra libraries Redis puts in the scripting VM (cjson, cmsgpack,
//! bit, struct), and the argument checks they share, which reproduce the
//! Lua 5.1 auxiliary library's (`luaL_check*`) behaviour and messages.

use mlua::{Lua, Value};

pub fn install(lua: &Lua) -> mlua::Result<()> {
    super::bit::install(lua)?;
    super::cjson::install(lua)?;
    super::cmsgpack::install(lua)?;
    // STRUCT

    Ok(())
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

/// `luaL_argerror`: "bad argument #n to 'name' (msg)", the name being how
/// the running function was called (as `debug.getinfo` names it).
pub fn arg_error(lua: &Lua, narg: usize, msg: &str) -> mlua::Error {
    let (name, what) = match lua.inspect_stack(0) {
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

/// `luaL_typerror`: "<expected> expected, got <type>".
pub fn type_error(lua: &Lua, args: &[Value], narg: usize, expected: &str) -> mlua::Error {
    let got = type_name(args.get(narg - 1));
    arg_error(lua, narg, &format!("{expected} expected, got {got}"))
}

/// Lua 5.1's `lua_number2integer` on x86-64: truncation, and the
/// "integer indefinite" value for NaN and out-of-range numbers.
pub fn number_to_integer(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_775_808e18..9.223_372_036_854_775_808e18).contains(&n) {
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

/// `luaL_checknumber`.
pub fn check_number(lua: &Lua, args: &[Value], narg: usize) -> mlua::Result<f64> {
    to_number(lua, args.get(narg - 1))?.ok_or_else(|| type_error(lua, args, narg, "number"))
}

/// `luaL_checkinteger`.
pub fn check_integer(lua: &Lua, args: &[Value], narg: usize) -> mlua::Result<i64> {
    match args.get(narg - 1) {
        Some(Value::Integer(i)) => Ok(*i),
        _ => check_number(lua, args, narg).map(number_to_integer),
    }
}

/// `luaL_optinteger`: the default when the argument is absent or nil.
pub fn opt_integer(lua: &Lua, args: &[Value], narg: usize, default: i64) -> mlua::Result<i64> {
    match args.get(narg - 1) {
        None | Some(Value::Nil) => Ok(default),
        _ => check_integer(lua, args, narg),
    }
}

/// `luaL_checklstring`: strings, and numbers converted as Lua does.
pub fn check_string(lua: &Lua, args: &[Value], narg: usize) -> mlua::Result<mlua::String> {
    match args.get(narg - 1) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(v.clone())?
            .ok_or_else(|| type_error(lua, args, narg, "string")),
        _ => Err(type_error(lua, args, narg, "string")),
    }
}
