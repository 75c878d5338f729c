//! The `bit` library (LuaBitOp 1.0 semantics, as Redis ships it): 32-bit
//! operations on Lua numbers, results as signed 32-bit integers.

use mlua::{Lua, Result, Table, Value, Variadic};

/// LuaBitOp's number -> 32 bits: round to nearest (ties to even) and keep
/// the low 32 bits, through the 2^52 + 2^51 trick it uses.
pub fn tobit(n: f64) -> i32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

fn arg(lua: &Lua, v: &Value, pos: usize, name: &str) -> Result<i32> {
    match v {
        Value::Integer(i) => Ok(tobit(*i as f64)),
        Value::Number(n) => Ok(tobit(*n)),
        Value::String(_) => match lua.coerce_number(v.clone())? {
            Some(n) => Ok(tobit(n)),
            None => Err(bad_arg(pos, name, v)),
        },
        _ => Err(bad_arg(pos, name, v)),
    }
}

fn bad_arg(pos: usize, name: &str, v: &Value) -> mlua::Error {
    mlua::Error::RuntimeError(format!(
        "bad argument #{pos} to '{name}' (number expected, got {})",
        v.type_name()
    ))
}

fn fold(lua: &Lua, args: &[Value], name: &str, f: fn(i32, i32) -> i32) -> Result<i32> {
    let Some(first) = args.first() else {
        return Err(bad_arg(1, name, &Value::Nil));
    };
    let mut acc = arg(lua, first, 1, name)?;
    for (i, v) in args.iter().enumerate().skip(1) {
        acc = f(acc, arg(lua, v, i + 1, name)?);
    }
    Ok(acc)
}

fn first(args: &[Value]) -> &[Value] {
    &args[..args.len().min(1)]
}

fn two(lua: &Lua, args: &[Value], name: &str) -> Result<(i32, u32)> {
    let a = arg(lua, args.first().unwrap_or(&Value::Nil), 1, name)?;
    let n = arg(lua, args.get(1).unwrap_or(&Value::Nil), 2, name)?;
    Ok((a, (n & 31) as u32))
}

pub fn install(lua: &Lua) -> Result<()> {
    let bit: Table = lua.create_table()?;
    type Op = fn(&Lua, &[Value], &str) -> Result<i32>;
    let ops: [(&'static str, Op); 11] = [
        ("tobit", |l, a, n| fold(l, first(a), n, |x, _| x)),
        ("bnot", |l, a, n| fold(l, first(a), n, |x, _| x).map(|x| !x)),
        ("bswap", |l, a, n| {
            fold(l, first(a), n, |x, _| x).map(i32::swap_bytes)
        }),
        ("band", |l, a, n| fold(l, a, n, |x, y| x & y)),
        ("bor", |l, a, n| fold(l, a, n, |x, y| x | y)),
        ("bxor", |l, a, n| fold(l, a, n, |x, y| x ^ y)),
        ("lshift", |l, a, n| {
            two(l, a, n).map(|(x, s)| ((x as u32) << s) as i32)
        }),
        ("rshift", |l, a, n| {
            two(l, a, n).map(|(x, s)| ((x as u32) >> s) as i32)
        }),
        ("arshift", |l, a, n| two(l, a, n).map(|(x, s)| x >> s)),
        ("rol", |l, a, n| {
            two(l, a, n).map(|(x, s)| (x as u32).rotate_left(s) as i32)
        }),
        ("ror", |l, a, n| {
            two(l, a, n).map(|(x, s)| (x as u32).rotate_right(s) as i32)
        }),
    ];
    for (name, op) in ops {
        let f = lua.create_function(move |lua, args: Variadic<Value>| {
            op(lua, &args, name).map(|r| r as f64)
        })?;
        bit.raw_set(name, f)?;
    }
    bit.raw_set(
        "tohex",
        lua.create_function(|lua, args: Variadic<Value>| {
            let x = arg(lua, args.first().unwrap_or(&Value::Nil), 1, "tohex")?;
            let n = match args.get(1) {
                None | Some(Value::Nil) => 8,
                Some(v) => arg(lua, v, 2, "tohex")?,
            };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let masked = if digits == 8 {
                x as u32
            } else {
                (x as u32) & ((1u32 << (4 * digits)) - 1)
            };
            let s = if upper {
                format!("{masked:0digits$X}")
            } else {
                format!("{masked:0digits$x}")
            };
            lua.create_string(s)
        })?,
    )?;
    lua.globals().raw_set("bit", bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_and_rounds_like_luabitop() {
        assert_eq!(tobit(0xffff_ffff_u32 as f64), -1);
        assert_eq!(tobit(2f64.powi(32) + 1.0), 1);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(-1.0), -1);
    }
}
