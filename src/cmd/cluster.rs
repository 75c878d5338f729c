//! CLUSTER and the cluster connection commands (ASKING, READONLY,
//! READWRITE). ferrokv has no cluster mode, so it answers them as Redis
//! does with `cluster-enabled no`: every one is an error. They still exist
//! in the command table, so their flags apply (CLUSTER RESET inside a script
//! is "not allowed from script", not "unknown"), and COMMAND lists them.

use super::{CmdResult, Ctx, Error, Handler};
use crate::resp::Args;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("asking", disabled),
    ("cluster|addslots", disabled),
    ("cluster|addslotsrange", disabled),
    ("cluster|bumpepoch", disabled),
    ("cluster|count-failure-reports", disabled),
    ("cluster|countkeysinslot", disabled),
    ("cluster|delslots", disabled),
    ("cluster|delslotsrange", disabled),
    ("cluster|failover", disabled),
    ("cluster|flushslots", disabled),
    ("cluster|forget", disabled),
    ("cluster|getkeysinslot", disabled),
    ("cluster|help", disabled),
    ("cluster|info", disabled),
    ("cluster|keyslot", disabled),
    ("cluster|links", disabled),
    ("cluster|meet", disabled),
    ("cluster|myid", disabled),
    ("cluster|nodes", disabled),
    ("cluster|replicas", disabled),
    ("cluster|replicate", disabled),
    ("cluster|reset", disabled),
    ("cluster|saveconfig", disabled),
    ("cluster|set-config-epoch", disabled),
    ("cluster|setslot", disabled),
    ("cluster|shards", disabled),
    ("cluster|slaves", disabled),
    ("cluster|slots", disabled),
    ("readonly", disabled),
    ("readwrite", disabled),
];

fn disabled(_ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    Err(Error::msg("ERR This instance has cluster support disabled"))
}
