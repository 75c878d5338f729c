//! Command errors and the one place that maps them to Redis's exact strings.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    WrongType,
    NotInteger,
    NotFloat,
    Syntax,
    NoSuchKey,
    Overflow,
    /// `invalid expire time in '<cmd>' command`
    InvalidExpire(&'static str),
    /// `wrong number of arguments for '<cmd>' command`
    WrongArity(Cow<'static, str>),
    NoAuth,
    /// Any other message, starting with its code (`ERR ...`).
    Msg(Cow<'static, str>),
}

pub type CmdResult = Result<(), Error>;

impl Error {
    pub fn msg(s: &'static str) -> Error {
        Error::Msg(Cow::Borrowed(s))
    }

    pub fn owned(s: String) -> Error {
        Error::Msg(Cow::Owned(s))
    }

    /// The error line without the leading `-`.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Error::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value".into()
            }
            Error::NotInteger => "ERR value is not an integer or out of range".into(),
            Error::NotFloat => "ERR value is not a valid float".into(),
            Error::Syntax => "ERR syntax error".into(),
            Error::NoSuchKey => "ERR no such key".into(),
            Error::Overflow => "ERR increment or decrement would overflow".into(),
            Error::InvalidExpire(cmd) => {
                format!("ERR invalid expire time in '{cmd}' command").into()
            }
            Error::WrongArity(cmd) => {
                format!("ERR wrong number of arguments for '{cmd}' command").into()
            }
            Error::NoAuth => "NOAUTH Authentication required.".into(),
            Error::Msg(m) => m.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_the_reference_string() {
        let cases = [
            (
                Error::WrongType,
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                Error::NotInteger,
                "ERR value is not an integer or out of range",
            ),
            (Error::NotFloat, "ERR value is not a valid float"),
            (Error::Syntax, "ERR syntax error"),
            (Error::NoSuchKey, "ERR no such key"),
            (Error::Overflow, "ERR increment or decrement would overflow"),
            (
                Error::InvalidExpire("set"),
                "ERR invalid expire time in 'set' command",
            ),
            (
                Error::WrongArity("get".into()),
                "ERR wrong number of arguments for 'get' command",
            ),
            (Error::NoAuth, "NOAUTH Authentication required."),
        ];
        for (e, s) in cases {
            assert_eq!(e.message(), s);
        }
    }
}
