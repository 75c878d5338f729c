//! The FUNCTION DUMP payload, in Redis's format so payloads move between
//! ferrokv and Redis: for each library the RDB function opcode and its code
//! as an RDB string (LZF-compressed when that saves space, as Redis does),
//! then the RDB version (2 bytes, little endian) and the CRC-64 of all that
//! (8 bytes, little endian).

use super::functions::{Libraries, Registry};
use crate::server::Server;
use crate::util::{crc64::crc64, lzf};

/// The RDB version the payload declares; newer payloads are refused.
const RDB_VERSION: u16 = 10;
/// A library: its code as one string.
const OPCODE_FUNCTION2: u8 = 245;
/// Redis 7.0 release candidates: name, engine, description, code.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

pub const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";

pub fn dump(libs: &Libraries) -> Vec<u8> {
    encode_libraries(libs.libs.values().map(|lib| &lib.code[..]))
}

/// The payload for libraries with these codes (dump's encoder; the fuzz
/// target round-trips it through [`for_each_library`]).
pub fn encode_libraries<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        write_string(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if u32::try_from(len).is_ok() {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// An RDB string: compressed when longer than 20 bytes and LZF saves at
/// least 4 bytes. (Library code starts with `#!`, so the integer encoding
/// Redis tries on short strings never applies.)
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() > 20
        && let Some(c) = lzf::compress(s, s.len() - 4)
    {
        out.push(0xc0 | ENC_LZF);
        write_len(out, c.len());
        write_len(out, s.len());
        out.extend_from_slice(&c);
        return;
    }
    write_len(out, s.len());
    out.extend_from_slice(s);
}

/// Checks the footer (version and checksum).
fn verify(payload: &[u8]) -> Result<(), &'static str> {
    if payload.len() < 10 {
        return Err(BAD_PAYLOAD);
    }
    let (body, footer) = payload.split_at(payload.len() - 8);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    if version > RDB_VERSION || crc64(0, body).to_le_bytes() != footer {
        return Err(BAD_PAYLOAD);
    }
    Ok(())
}

/// Reads RDB values; like Redis it reads from the whole payload, footer
/// included, so a truncated entry fails on the footer's bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

enum Len {
    Plain(usize),
    Encoded(u8),
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn len(&mut self) -> Option<Len> {
        let b = self.byte()?;
        Some(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as usize),
            1 => Len::Plain((((b & 0x3f) as usize) << 8) | self.byte()? as usize),
            2 if b == 0x80 => {
                let n = u32::from_be_bytes(self.bytes(4)?.try_into().ok()?);
                Len::Plain(n as usize)
            }
            2 if b == 0x81 => {
                let n = u64::from_be_bytes(self.bytes(8)?.try_into().ok()?);
                Len::Plain(usize::try_from(n).ok()?)
            }
            2 => return None,
            _ => Len::Encoded(b & 0x3f),
        })
    }

    /// A length where no encoding is expected: as in Redis, an encoding
    /// byte then reads as its low six bits.
    fn plain_len(&mut self) -> Option<usize> {
        match self.len()? {
            Len::Plain(n) => Some(n),
            Len::Encoded(n) => Some(n as usize),
        }
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len()? {
            Len::Plain(n) => Some(self.bytes(n)?.to_vec()),
            Len::Encoded(ENC_INT8) => Some(int_text(self.bytes(1)?[0] as i8 as i64)),
            Len::Encoded(ENC_INT16) => {
                let v = i16::from_le_bytes(self.bytes(2)?.try_into().ok()?);
                Some(int_text(v as i64))
            }
            Len::Encoded(ENC_INT32) => {
                let v = i32::from_le_bytes(self.bytes(4)?.try_into().ok()?);
                Some(int_text(v as i64))
            }
            Len::Encoded(ENC_LZF) => {
                let clen = self.plain_len()?;
                let len = self.plain_len()?;
                let c = self.bytes(clen)?;
                // Redis takes an expected length of 0 as met whatever the
                // input (its decompressor answers 0 for "did not fit").
                if len == 0 {
                    return Some(Vec::new());
                }
                lzf::decompress(c, len)
            }
            Len::Encoded(_) => None,
        }
    }
}

fn int_text(v: i64) -> Vec<u8> {
    itoa::Buffer::new().format(v).as_bytes().to_vec()
}

/// Loads every library of `payload` into a new set (not yet installed),
/// compiled in `reg`'s VM. Errors carry Redis's text.
pub fn load_payload(
    reg: &mut Registry,
    srv: &'static Server,
    payload: &[u8],
) -> Result<Libraries, String> {
    let mut staging = Libraries::default();
    for_each_library(payload, |code| {
        reg.load_into(srv, &mut staging, code).map(|_| ())
    })?;
    Ok(staging)
}

/// Checks the footer, then decodes the libraries one at a time and hands
/// each one's code to `f`, stopping at the first error (as Redis compiles
/// each library as it reads it). Pure: the fuzz target drives it directly.
pub fn for_each_library(
    payload: &[u8],
    mut f: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    verify(payload)?;
    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    while r.pos < payload.len() - 10 {
        let code = match r.byte() {
            Some(OPCODE_FUNCTION2) => r.string().ok_or("ERR Failed loading library payload")?,
            Some(OPCODE_FUNCTION_PRE_GA) => read_pre_ga(&mut r)?,
            _ => return Err("ERR given type is not a function".into()),
        };
        f(&code)?;
    }
    Ok(())
}

/// A release-candidate entry: name, engine, optional description, code.
/// The code gets a shebang line made of the name and engine.
fn read_pre_ga(r: &mut Reader<'_>) -> Result<Vec<u8>, &'static str> {
    let name = r.string().ok_or("ERR Failed loading library name")?;
    let engine = r.string().ok_or("ERR Failed loading engine name")?;
    let has_desc = r
        .plain_len()
        .ok_or("ERR Failed loading library description indicator")?;
    if has_desc != 0 {
        r.string().ok_or("ERR Failed loading library description")?;
    }
    let code = r.string().ok_or("ERR Failed loading library payload")?;
    let mut full = b"#!".to_vec();
    full.extend_from_slice(&engine);
    full.extend_from_slice(b" name=");
    full.extend_from_slice(&name);
    full.push(b'\n');
    full.extend_from_slice(&code);
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dump_is_footer_only() {
        let d = dump(&Libraries::default());
        assert_eq!(d.len(), 10);
        assert_eq!(&d[..2], &[10, 0]);
        assert!(verify(&d).is_ok());
    }

    #[test]
    fn footer_checks() {
        let mut d = dump(&Libraries::default());
        d[9] ^= 1;
        assert!(verify(&d).is_err());
        assert!(verify(b"123456789").is_err());
    }

    #[test]
    fn strings_round_trip() {
        let long = b"#!lua name=x\n".repeat(10);
        for s in [&b"#!lua name=a\n"[..], &long[..]] {
            let mut buf = Vec::new();
            write_string(&mut buf, s);
            let mut r = Reader { data: &buf, pos: 0 };
            assert_eq!(r.string().as_deref(), Some(s));
            assert_eq!(r.pos, buf.len());
        }
        let mut r = Reader {
            data: b"\xc0\x05\xc1\x00\x01",
            pos: 0,
        };
        assert_eq!(r.string().as_deref(), Some(&b"5"[..]));
        assert_eq!(r.string().as_deref(), Some(&b"256"[..]));
    }
}
