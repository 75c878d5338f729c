//! MODULE LIST / LOAD / LOADEX / UNLOAD / HELP. ferrokv cannot load Redis
//! modules (they are C libraries written against Redis's internals): LIST
//! is always empty, and LOAD fails the way Redis fails on a library it
//! cannot load. LOAD, LOADEX and UNLOAD are protected commands, refused in
//! dispatch unless `enable-module-command` allows them
//! ([`super::protected_denied`]).

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("module|list", list),
    ("module|load", load),
    ("module|loadex", load),
    ("module|unload", unload),
    ("module|help", help),
];

fn list(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.array(0);
    Ok(())
}

fn load(_ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    crate::warning!(
        "Module {} failed to load: ferrokv cannot load Redis modules",
        String::from_utf8_lossy(&args[2])
    );
    Err(Error::msg(
        "ERR Error loading the extension. Please check the server logs.",
    ))
}

fn unload(_ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    Err(Error::msg(
        "ERR Error unloading module: no such module with that name",
    ))
}

const HELP: &[&str] = &[
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
];

fn help(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    ctx.out.help("MODULE", HELP);
    Ok(())
}
