//! RESP framing and replies.
//!
//! Framing answers "is a whole command here?"; needing more bytes is a normal
//! answer, not an error. Arguments are spans into the read buffer, so parsing
//! a command allocates nothing.

pub mod parse;
pub mod reply;

pub use parse::{Args, Frame, Limits, Parser};
pub use reply::Reply;
