//! The kinds of parameter values, the row CONFIG sees for each parameter,
//! and [`config_table!`], which declares a configuration struct, its
//! defaults and its rows from one line per parameter.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};

use parking_lot::RwLock;

use super::SetError;

/// An integer parameter (plain numbers or memory sizes such as `512mb`).
pub struct IntParam {
    v: AtomicI64,
    pub(super) min: i64,
    pub(super) max: i64,
    pub(super) memory: bool,
    /// Values outside this range are accepted but stored clamped (`hz`).
    pub(super) clamp: Option<(i64, i64)>,
}

impl IntParam {
    pub const fn new(v: i64, min: i64, max: i64) -> IntParam {
        IntParam {
            v: AtomicI64::new(v),
            min,
            max,
            memory: false,
            clamp: None,
        }
    }
    pub const fn memory(v: i64, min: i64, max: i64) -> IntParam {
        IntParam {
            v: AtomicI64::new(v),
            min,
            max,
            memory: true,
            clamp: None,
        }
    }
    pub const fn clamped(mut self, lo: i64, hi: i64) -> IntParam {
        self.clamp = Some((lo, hi));
        self
    }
    #[inline]
    pub fn get(&self) -> i64 {
        self.v.load(Ordering::Relaxed)
    }
    pub fn set(&self, v: i64) {
        self.v.store(v, Ordering::Relaxed);
    }
}

pub struct BoolParam(AtomicBool);

impl BoolParam {
    pub const fn new(v: bool) -> BoolParam {
        BoolParam(AtomicBool::new(v))
    }
    #[inline]
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, v: bool) {
        self.0.store(v, Ordering::Relaxed);
    }
}

/// One of a fixed set of names.
pub struct EnumParam {
    pub(super) v: AtomicUsize,
    pub(super) names: &'static [&'static str],
}

impl EnumParam {
    pub const fn new(v: usize, names: &'static [&'static str]) -> EnumParam {
        EnumParam {
            v: AtomicUsize::new(v),
            names,
        }
    }
    #[inline]
    pub fn get(&self) -> usize {
        self.v.load(Ordering::Relaxed)
    }
    pub fn name(&self) -> &'static str {
        self.names[self.get()]
    }
}

pub struct StrParam(RwLock<String>);

impl StrParam {
    pub fn new(v: &str) -> StrParam {
        StrParam(RwLock::new(v.to_string()))
    }
    pub fn get(&self) -> String {
        self.0.read().clone()
    }
    pub fn set(&self, v: &str) {
        *self.0.write() = v.to_string();
    }
    pub fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(&self.0.read())
    }
}

/// Keyspace notification classes, defined with the keyspace that raises them.
pub use ferrokv_engine::notify;

/// Output buffer limits per client class: `[hard, soft, soft_seconds]`.
pub struct BufferLimits(pub(super) [[AtomicI64; 3]; 3]);

/// The classes of `client-output-buffer-limit`, in print order.
pub const CLIENT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

impl BufferLimits {
    pub(super) fn new(v: [[i64; 3]; 3]) -> BufferLimits {
        BufferLimits(v.map(|c| c.map(AtomicI64::new)))
    }
    /// `[hard, soft, soft_seconds]` of class `i` (see [`CLIENT_CLASSES`]).
    pub fn get(&self, i: usize) -> [i64; 3] {
        [0, 1, 2].map(|k| self.0[i][k].load(Ordering::Relaxed))
    }
    /// The `replica` (`slave`) class's limits: replicas' and, as Redis
    /// applies them, monitors'.
    pub fn replica(&self) -> [i64; 3] {
        self.get(1)
    }
    pub(super) fn all(&self) -> [[i64; 3]; 3] {
        [0, 1, 2].map(|i| self.get(i))
    }
}

/// How a row reads and writes its value.
#[derive(Clone, Copy)]
pub enum Kind<'a> {
    Int(&'a IntParam),
    Bool(&'a BoolParam),
    Enum(&'a EnumParam),
    Str(&'a StrParam),
    /// `save`: pairs of seconds and changes.
    Save(&'a StrParam),
    Notify(&'a AtomicU32),
    BufferLimits(&'a BufferLimits),
}

/// Whether CONFIG SET may change a parameter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Mutable,
    Immutable,
    /// Changeable only with `enable-protected-configs` (`dir`, `dbfilename`).
    Protected,
}

/// A parameter ferrokv lists but does not act on: `when` the values given
/// in the config file would make someone expect an effect, a warning says
/// `why` there is none (once per parameter).
#[derive(Clone, Copy)]
pub struct Inert {
    pub when: fn(&[&str]) -> bool,
    pub why: &'static str,
}

/// One parameter as CONFIG sees it.
pub struct Param<'a> {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind<'a>,
    pub access: Access,
    multi: bool,
    pub inert: Option<Inert>,
    /// Left out of CONFIG GET patterns (named exactly, it is answered).
    pub hidden: bool,
}

impl<'a> Param<'a> {
    pub fn new(
        name: &'static str,
        alias: Option<&'static str>,
        kind: Kind<'a>,
        access: Access,
    ) -> Self {
        Param {
            name,
            alias,
            kind,
            access,
            multi: false,
            inert: None,
            hidden: false,
        }
    }

    /// The `multi` flag of a [`config_table!`] row.
    pub fn multi(mut self) -> Self {
        self.multi = true;
        self
    }

    /// The `hidden` flag of a [`config_table!`] row.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// The `inert(when, why)` flag of a [`config_table!`] row.
    pub fn inert(mut self, when: fn(&[&str]) -> bool, why: &'static str) -> Self {
        self.inert = Some(Inert { when, why });
        self
    }
}

impl Param<'_> {
    /// Whether a config line may give it several words (or none); the
    /// others take exactly one, as in Redis.
    pub fn multi_arg(&self) -> bool {
        self.multi
    }

    /// Whether CONFIG SET may change it; `protected_ok` is whether this
    /// client may change protected ones ([`Config::protected_configs_allowed`]).
    pub fn check_settable(&self, protected_ok: bool) -> Result<(), SetError> {
        match self.access {
            Access::Mutable => Ok(()),
            Access::Immutable => Err(SetError::Immutable),
            Access::Protected if protected_ok => Ok(()),
            Access::Protected => Err(SetError::Protected),
        }
    }
}

/// The value type behind each [`Kind`].
macro_rules! param_type {
    (Int) => {
        $crate::config::IntParam
    };
    (Bool) => {
        $crate::config::BoolParam
    };
    (Enum) => {
        $crate::config::EnumParam
    };
    (Str) => {
        $crate::config::StrParam
    };
    (Save) => {
        $crate::config::StrParam
    };
    (Notify) => {
        ::std::sync::atomic::AtomicU32
    };
    (BufferLimits) => {
        $crate::config::BufferLimits
    };
}
pub(crate) use param_type;

/// Declares a configuration struct from one row per parameter, the only
/// place a parameter is written down:
///
/// ```text
/// field: Kind = default, "name" | "alias", Access, flag, flag(args);
/// ```
///
/// `Kind` is a [`Kind`] variant (it picks the field's type), `default` the
/// value's constructor (with bounds), the alias optional, `Access` an
/// [`Access`] variant, and the flags [`Param`] builder calls (`multi`,
/// `inert(when, why)`). It generates the struct (row fields first, then
/// the `extra { field: Type = default; }` ones, which are not parameters),
/// its `Default`, and `rows()`: the rows in declaration order, which is
/// CONFIG GET's.
macro_rules! config_table {
    (
        $(#[$smeta:meta])*
        pub struct $S:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $kind:ident = $init:expr,
                $name:literal $(| $alias:literal)?, $access:ident
                $(, $flag:ident $(( $($farg:expr),* ))? )* ;
            )*
        }
        $(extra {
            $( $(#[$xmeta:meta])* $xfield:ident : $xty:ty = $xinit:expr ; )*
        })?
    ) => {
        $(#[$smeta])*
        pub struct $S {
            $( $(#[$fmeta])* pub $field: $crate::config::params::param_type!($kind), )*
            $($( $(#[$xmeta])* pub $xfield: $xty, )*)?
        }

        impl Default for $S {
            fn default() -> Self {
                $S {
                    $( $field: $init, )*
                    $($( $xfield: $xinit, )*)?
                }
            }
        }

        impl $S {
            /// This struct's parameters, in declaration order.
            pub(in crate::config) fn rows(&self) -> Vec<$crate::config::Param<'_>> {
                vec![$(
                    $crate::config::Param::new(
                        $name,
                        $crate::config::params::config_table!(@alias $($alias)?),
                        $crate::config::Kind::$kind(&self.$field),
                        $crate::config::Access::$access,
                    ) $( .$flag( $($($farg),*)? ) )*,
                )*]
            }
        }
    };
    (@alias) => { None };
    (@alias $alias:literal) => { Some($alias) };
}
pub(crate) use config_table;
