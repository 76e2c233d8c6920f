//! Adding `seq` to a stored event body without decoding it.
//!
//! A stored body is the canonical DAG-CBOR encoding of a map without `seq`. Canonical
//! DAG-CBOR (and so atproto's data model) sorts map keys by the length of their encoding,
//! then bytewise; for text keys that is by UTF-8 length, then bytes. Decoding the map,
//! inserting `seq` and re-encoding it therefore gives: the map head with one more entry, the
//! entries whose keys sort before `seq` unchanged, the `seq` entry, then the remaining entries
//! unchanged. [`append_with_seq`] writes exactly that, walking only the top-level entries;
//! the values are skipped by their encoded lengths (a `#commit`'s `blocks` CAR is jumped over,
//! not copied item by item). The tests hold it byte for byte to the decode/re-encode path.
//!
//! What is checked, so that corrupt or hostile input is refused with an [`Error`] and never
//! panics or reads out of bounds: the body is exactly one map (no trailing bytes); every
//! item is definite-length and well formed, with heads in their shortest form; integers are
//! in the signed 64-bit range; text is UTF-8; the only tag is 42 (CID) over a byte string with
//! the identity multibase prefix; the only simple values are `false`, `true` and `null`
//! (no floats); top-level keys are text, strictly sorted, and `seq` is not among them. Nested
//! maps are walked but their key order is not checked, nor are CIDs parsed: bodies are
//! written by this crate's own strict encoder; this guards against damage, not re-validation.
//! The walk is iterative (a count of items still to skip), so nesting cannot exhaust the stack.

/// Why a stored body cannot take a `seq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("event body is not a DAG-CBOR map")]
    NotAMap,
    #[error("event body is truncated")]
    Truncated,
    #[error("event body has {0} bytes after its map")]
    TrailingBytes(usize),
    #[error("event body uses an indefinite length or a reserved head")]
    Indefinite,
    #[error("event body has a head that is not in its shortest form")]
    NotShortest,
    #[error("event body has an integer outside the signed 64-bit range")]
    IntegerOutOfRange,
    #[error("event body has text that is not UTF-8")]
    InvalidUtf8,
    #[error("event body has tag {0}; DAG-CBOR allows only 42 (CID)")]
    UnsupportedTag(u64),
    #[error("event body has a malformed CID")]
    MalformedCid,
    #[error("event body has a float or simple value {0:#04x}")]
    UnsupportedSimple(u8),
    #[error("event body has a map key that is not text")]
    KeyNotText,
    #[error("event body's map keys are not in canonical order")]
    UnsortedKeys,
    #[error("event body already has a seq")]
    HasSeq,
    #[error("event body has too many entries")]
    TooManyEntries,
}

const SEQ: &[u8] = b"seq";

const MAJOR_UINT: u8 = 0;
const MAJOR_NEGINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;
/// The CID tag of DAG-CBOR.
const TAG_CID: u64 = 42;

/// The body with `seq` added, as its canonical encoding.
#[cfg(test)]
pub(crate) fn with_seq(body: &[u8], seq: i64) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(body.len() + 16);
    append_with_seq(&mut out, body, seq)?;
    Ok(out)
}

/// Appends the canonical encoding of `body` with `seq` added to `out`. On error `out` is left
/// as it was.
pub(crate) fn append_with_seq(out: &mut Vec<u8>, body: &[u8], seq: i64) -> Result<(), Error> {
    let mut reader = Reader {
        bytes: body,
        pos: 0,
    };
    let (major, count) = reader.head()?;
    if major != MAJOR_MAP {
        return Err(Error::NotAMap);
    }
    let entries_start = reader.pos;
    // Where the `seq` entry goes: before the first key that sorts after it.
    let mut insert_at = None;
    let mut previous: Option<&[u8]> = None;
    for _ in 0..count {
        let entry_start = reader.pos;
        let key = reader.key()?;
        if let Some(previous) = previous
            && canonical_cmp(previous, key) != std::cmp::Ordering::Less
        {
            return Err(Error::UnsortedKeys);
        }
        match canonical_cmp(key, SEQ) {
            std::cmp::Ordering::Equal => return Err(Error::HasSeq),
            std::cmp::Ordering::Greater if insert_at.is_none() => insert_at = Some(entry_start),
            _ => {}
        }
        previous = Some(key);
        reader.skip_items(1)?;
    }
    if reader.pos != body.len() {
        return Err(Error::TrailingBytes(body.len() - reader.pos));
    }
    let count = count.checked_add(1).ok_or(Error::TooManyEntries)?;
    let insert_at = insert_at.unwrap_or(body.len());
    let (before, after) = body.split_at(insert_at);
    out.reserve(body.len() + 2 * 9 + SEQ.len());
    write_head(out, MAJOR_MAP, count);
    out.extend_from_slice(&before[entries_start..]);
    write_head(out, MAJOR_TEXT, SEQ.len() as u64);
    out.extend_from_slice(SEQ);
    write_int(out, seq);
    out.extend_from_slice(after);
    Ok(())
}

/// DAG-CBOR's order of text map keys: shorter first, then bytewise.
fn canonical_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Writes a head in its shortest form.
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    // Each arm's range guarantees the narrowing cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn write_int(out: &mut Vec<u8>, value: i64) {
    match u64::try_from(value) {
        Ok(value) => write_head(out, MAJOR_UINT, value),
        // -1 - value, never overflowing: value is negative.
        Err(_) => write_head(out, MAJOR_NEGINT, !(value as u64)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: u64) -> Result<&'a [u8], Error> {
        let len = usize::try_from(len).map_err(|_| Error::Truncated)?;
        let end = self.pos.checked_add(len).ok_or(Error::Truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        let byte = *self.bytes.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// A head of a major type other than 7: its major type and argument.
    fn head(&mut self) -> Result<(u8, u64), Error> {
        let initial = self.byte()?;
        self.argument(initial)
    }

    fn argument(&mut self, initial: u8) -> Result<(u8, u64), Error> {
        let major = initial >> 5;
        let info = initial & 0x1f;
        let (value, least) = match info {
            0..=23 => return Ok((major, u64::from(info))),
            24 => (u64::from(self.byte()?), 24),
            25 => (be(self.take(2)?), 0x100),
            26 => (be(self.take(4)?), 0x1_0000),
            27 => (be(self.take(8)?), 0x1_0000_0000),
            _ => return Err(Error::Indefinite),
        };
        if value < least {
            return Err(Error::NotShortest);
        }
        Ok((major, value))
    }

    fn text(&mut self, len: u64) -> Result<&'a [u8], Error> {
        let text = self.take(len)?;
        std::str::from_utf8(text).map_err(|_| Error::InvalidUtf8)?;
        Ok(text)
    }

    fn key(&mut self) -> Result<&'a [u8], Error> {
        match self.head()? {
            (MAJOR_TEXT, len) => self.text(len),
            _ => Err(Error::KeyNotText),
        }
    }

    /// Skips `items` complete data items. A container adds its elements to the count instead
    /// of recursing; every element takes at least one byte, so a huge declared count runs
    /// into [`Error::Truncated`] rather than looping long.
    fn skip_items(&mut self, mut items: u64) -> Result<(), Error> {
        while items > 0 {
            items -= 1;
            let initial = self.byte()?;
            if initial >> 5 == MAJOR_SIMPLE {
                match initial & 0x1f {
                    20..=22 => continue,
                    other => return Err(Error::UnsupportedSimple(other)),
                }
            }
            let (major, value) = self.argument(initial)?;
            match major {
                MAJOR_UINT | MAJOR_NEGINT if value > i64::MAX as u64 => {
                    return Err(Error::IntegerOutOfRange);
                }
                MAJOR_UINT | MAJOR_NEGINT => {}
                MAJOR_BYTES => {
                    self.take(value)?;
                }
                MAJOR_TEXT => {
                    self.text(value)?;
                }
                MAJOR_ARRAY => items = items.checked_add(value).ok_or(Error::Truncated)?,
                MAJOR_MAP => {
                    let elements = value.checked_mul(2).ok_or(Error::Truncated)?;
                    items = items.checked_add(elements).ok_or(Error::Truncated)?;
                }
                MAJOR_TAG if value == TAG_CID => match self.head()? {
                    // The binary CID behind the identity multibase prefix.
                    (MAJOR_BYTES, len) if len >= 2 => {
                        if self.take(len)?.first() != Some(&0) {
                            return Err(Error::MalformedCid);
                        }
                    }
                    _ => return Err(Error::MalformedCid),
                },
                // Only major type 6 is left: 7 was handled before reading the argument.
                _ => return Err(Error::UnsupportedTag(value)),
            }
        }
        Ok(())
    }
}

fn be(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0, |value, byte| (value << 8) | u64::from(*byte))
}

#[cfg(test)]
pub(crate) mod tests;
