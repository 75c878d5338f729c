//! The extra libraries Redis puts in the scripting VM (cjson, cmsgpack,
//! bit, struct).

use mlua::Lua;

pub fn install(_lua: &Lua) -> mlua::Result<()> {
    Ok(())
}
