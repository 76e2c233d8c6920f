//! DAG-CBOR straight to atproto JSON text, without building a value in between.
//!
//! The hot reads (`getRecord`, `listRecords`) send stored records as JSON. Going through
//! [`decode`](super::decode) costs a parse into [`Ipld`](super::Ipld), a re-encoding to
//! check the canonical form, a `serde_json::Value` and its serialization; this reads the bytes
//! once and writes the JSON as it goes. It accepts exactly what [`decode`](super::decode)
//! accepts (canonical DAG-CBOR, no floats, 64-bit signed integers, atproto CIDs, at most
//! [`MAX_DEPTH`](super::MAX_DEPTH) nested containers of at most
//! [`MAX_CONTAINER_LEN`](super::MAX_CONTAINER_LEN) elements) and writes what
//! [`value_to_json`](super::value_to_json) writes for it, with map keys in their CBOR order
//! (length first, as the reference implementation answers) instead of sorted.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use cid::Cid;

use super::{Error, Invalid, check_cid};

/// The CBOR tag of a link (DAG-CBOR's only tag).
const TAG_LINK: u64 = 42;

/// Appends `bytes` (one canonical DAG-CBOR value) to `out` as atproto JSON. On error `out`
/// may hold part of the value; the caller discards it.
pub fn cbor_to_json(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut reader = Reader { bytes, at: 0 };
    reader.value(out, 0)?;
    if reader.at != bytes.len() {
        return Err(malformed("trailing bytes after the value"));
    }
    Ok(())
}

fn malformed(what: &str) -> Error {
    Error::Malformed(what.to_owned())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Error> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| malformed("unexpected end of input"))?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], Error> {
        let rest = &self.bytes[self.at..];
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= rest.len())
            .ok_or_else(|| malformed("declared length runs past the end of input"))?;
        self.at += len;
        Ok(&rest[..len])
    }

    /// The header's argument for `info` (the low five bits), refusing forms longer than
    /// needed and indefinite lengths.
    fn argument(&mut self, info: u8) -> Result<u64, Error> {
        let (value, least) = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => (u64::from(self.byte()?), 24),
            25 => (be(self.take(2)?), 0x100),
            26 => (be(self.take(4)?), 0x1_0000),
            27 => (be(self.take(8)?), 0x1_0000_0000),
            31 => return Err(malformed("indefinite lengths are not allowed")),
            _ => return Err(malformed("reserved additional information")),
        };
        if value < least {
            return Err(Error::NonCanonical);
        }
        Ok(value)
    }

    fn header(&mut self) -> Result<(u8, u8), Error> {
        let byte = self.byte()?;
        Ok((byte >> 5, byte & 0x1f))
    }

    fn text(&mut self, info: u8) -> Result<&'a str, Error> {
        let len = self.argument(info)?;
        std::str::from_utf8(self.take(len)?).map_err(|_| malformed("invalid UTF-8 in a string"))
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
        let (major, info) = self.header()?;
        match major {
            0 => {
                let n = self.argument(info)?;
                let n = i64::try_from(n)
                    .map_err(|_| Error::invalid(Invalid::IntegerOutOfRange(n.to_string())))?;
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            }
            1 => {
                let n = self.argument(info)?;
                let n = i64::try_from(n).map(|n| -1 - n).map_err(|_| {
                    Error::invalid(Invalid::IntegerOutOfRange((-1 - i128::from(n)).to_string()))
                })?;
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            }
            2 => {
                let len = self.argument(info)?;
                let bytes = self.take(len)?;
                out.extend_from_slice(b"{\"$bytes\":\"");
                let start = out.len();
                out.resize(
                    start + base64::encoded_len(bytes.len(), false).unwrap_or(0),
                    0,
                );
                let written = STANDARD_NO_PAD
                    .encode_slice(bytes, &mut out[start..])
                    .map_err(|_| malformed("byte string too long"))?;
                out.truncate(start + written);
                out.extend_from_slice(b"\"}");
            }
            3 => {
                let text = self.text(info)?;
                write_string(out, text);
            }
            4 => {
                let len = self.container(info, depth)?;
                out.push(b'[');
                for index in 0..len {
                    if index > 0 {
                        out.push(b',');
                    }
                    self.value(out, depth + 1)
                        .map_err(|e| e.within(&index.to_string()))?;
                }
                out.push(b']');
            }
            5 => {
                let len = self.container(info, depth)?;
                out.push(b'{');
                let mut previous: Option<&str> = None;
                for index in 0..len {
                    let (major, info) = self.header()?;
                    if major != 3 {
                        return Err(malformed("map keys must be strings"));
                    }
                    let key = self.text(info)?;
                    if let Some(previous) = previous {
                        match previous
                            .len()
                            .cmp(&key.len())
                            .then_with(|| previous.as_bytes().cmp(key.as_bytes()))
                        {
                            Ordering::Less => {}
                            Ordering::Equal => return Err(malformed("duplicate map key")),
                            Ordering::Greater => return Err(Error::NonCanonical),
                        }
                    }
                    previous = Some(key);
                    if index > 0 {
                        out.push(b',');
                    }
                    write_string(out, key);
                    out.push(b':');
                    self.value(out, depth + 1).map_err(|e| e.within(key))?;
                }
                out.push(b'}');
            }
            6 => {
                if self.argument(info)? != TAG_LINK {
                    return Err(malformed("unknown tag (DAG-CBOR allows only 42)"));
                }
                let (major, info) = self.header()?;
                if major != 2 {
                    return Err(malformed("a link must be a byte string"));
                }
                let len = self.argument(info)?;
                let bytes = self.take(len)?;
                let Some((0, cid)) = bytes.split_first() else {
                    return Err(malformed(
                        "a link must start with the 0x00 multibase prefix",
                    ));
                };
                let cid = Cid::try_from(cid).map_err(|e| Error::Malformed(e.to_string()))?;
                check_cid(&cid)?;
                out.extend_from_slice(b"{\"$link\":\"");
                out.extend_from_slice(cid.to_string().as_bytes());
                out.extend_from_slice(b"\"}");
            }
            _ => match info {
                20 => out.extend_from_slice(b"false"),
                21 => out.extend_from_slice(b"true"),
                22 => out.extend_from_slice(b"null"),
                25..=27 => return Err(Error::invalid(Invalid::Float)),
                _ => return Err(malformed("simple values other than false, true, null")),
            },
        }
        Ok(())
    }

    /// A list's or map's length, checked against the nesting and length limits.
    fn container(&mut self, info: u8, depth: usize) -> Result<u64, Error> {
        let len = self.argument(info)?;
        super::enter_container(depth, usize::try_from(len).unwrap_or(usize::MAX))?;
        Ok(len)
    }
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

/// Writes `text` as a JSON string (serde_json's escaping).
fn write_string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}
