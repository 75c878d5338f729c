//! Values that live outside the entry allocation: strings that are edited in
//! place (APPEND, SETRANGE) and the large forms of the collection types.

use crate::types::set::SetTable;

/// A heap value owned by an entry.
#[derive(Debug, Clone)]
pub enum Object {
    /// A string grown or edited in place; reported as encoding `raw`.
    Str(Vec<u8>),
    /// A set past the inline thresholds (encoding `hashtable`).
    Set(Box<SetTable>),
}

impl Object {
    pub(crate) fn placeholder() -> Object {
        Object::Str(Vec::new())
    }

    /// The name TYPE replies.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
            Object::Set(_) => "set",
        }
    }

    /// The name OBJECT ENCODING replies.
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
            Object::Set(_) => "hashtable",
        }
    }
}
