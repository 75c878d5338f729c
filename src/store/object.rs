//! Values that live outside the entry allocation: strings that are edited in
//! place (APPEND, SETRANGE) and, in later issues, the collection types.

/// A heap value owned by an entry.
#[derive(Debug, Clone)]
pub enum Object {
    /// A string grown or edited in place; reported as encoding `raw`.
    Str(Vec<u8>),
    /// A sorted set past the packed thresholds (encoding `skiplist`).
    ZSet(Box<crate::types::zset::Full>),
}

impl Object {
    pub(crate) fn placeholder() -> Object {
        Object::Str(Vec::new())
    }

    /// The name TYPE replies.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
            Object::ZSet(_) => "zset",
        }
    }

    /// The name OBJECT ENCODING replies.
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
            Object::ZSet(_) => "skiplist",
        }
    }
}
