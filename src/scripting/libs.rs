//! The extra libraries Redis puts in the scripting VM (cjson, cmsgpack,
//! bit, struct).

use mlua::Lua;

pub fn install(lua: &Lua) -> mlua::Result<()> {
    super::bit::install(lua)?;
    super::cjson::install(lua)?;
    Ok(())
}
