//! The encoding thresholds the data types take from the configuration,
//! read once per command (the engine knows nothing of the configuration).

use crate::types::{hash, set, stream, zset};

use super::Config;

impl Config {
    /// `set-max-intset-entries` (the inline-set limits are fixed).
    pub fn set_limits(&self) -> set::Limits {
        set::Limits {
            intset_entries: usize::try_from(self.set_max_intset_entries.get()).unwrap_or(0),
            ..set::Limits::default()
        }
    }

    /// `zset-max-listpack-entries` / `-value`.
    pub fn zset_limits(&self) -> zset::Limits {
        zset::Limits {
            entries: self.zset_max_listpack_entries.get().max(0) as usize,
            value: self.zset_max_listpack_value.get().max(0) as usize,
        }
    }

    /// `hash-max-listpack-entries` / `-value`.
    pub fn hash_limits(&self) -> hash::Limits {
        hash::Limits {
            entries: self.hash_max_listpack_entries.get().max(0) as usize,
            value: self.hash_max_listpack_value.get().max(0) as usize,
        }
    }

    /// `stream-node-max-bytes` / `-entries`.
    pub fn stream_limits(&self) -> stream::NodeLimits {
        stream::NodeLimits::new(
            self.stream_node_max_bytes.get(),
            self.stream_node_max_entries.get(),
        )
    }
}
