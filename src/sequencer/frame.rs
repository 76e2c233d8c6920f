//! Event-stream frames (atproto "Event Stream" spec): each WebSocket binary message is two
//! concatenated DAG-CBOR objects, a header and a payload.
//!
//! - A message: header `{op: 1, t: "#commit"}` (the lexicon def name with `#`), then the body.
//! - An error: header `{op: -1}`, then `{error, message?}`; the server closes after it.
//!
//! Canonical DAG-CBOR orders map keys by length, then bytes: `t` comes before `op`.

use bytes::Bytes;
use std::collections::BTreeMap;

use super::events::{Error, EventType};
use super::splice::{self, write_head};
use crate::repo::cbor::{self, Ipld};

/// `#info` name sent before a replay whose cursor reached past the backfill window.
pub(crate) const OUTDATED_CURSOR: &str = "OutdatedCursor";
/// Error name for a cursor greater than the latest sequence number.
pub(crate) const FUTURE_CURSOR: &str = "FutureCursor";
/// Error name for a subscriber that fell more than its buffer behind.
pub(crate) const CONSUMER_TOO_SLOW: &str = "ConsumerTooSlow";

/// One encoded firehose message and its sequence number. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub seq: i64,
    pub bytes: Bytes,
}

/// Appends the message header `{t, op: 1}`, written directly: two entries, keys in canonical
/// order (`t` is shorter than `op`); the tests hold it to the encoder's output.
fn write_message_header(out: &mut Vec<u8>, t: &str) {
    write_head(out, 5, 2);
    write_head(out, 3, 1);
    out.push(b't');
    write_head(out, 3, t.len() as u64);
    out.extend_from_slice(t.as_bytes());
    write_head(out, 3, 2);
    out.extend_from_slice(b"op");
    write_head(out, 0, 1);
}

fn message_header(t: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len() + 8);
    write_message_header(&mut out, t);
    out
}

fn join(header: Vec<u8>, body: &[u8]) -> Bytes {
    let mut out = header;
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// The frame of a stored event: header with the event's type, then the body with `seq`
/// spliced in. One allocation, sized up front; no decoding of the body.
pub(crate) fn message_frame(event_type: EventType, body: &[u8], seq: i64) -> Result<Frame, Error> {
    let t = event_type.wire_name();
    let mut out = Vec::with_capacity(t.len() + 8 + body.len() + 16);
    write_message_header(&mut out, t);
    splice::append_with_seq(&mut out, body, seq)?;
    Ok(Frame {
        seq,
        bytes: Bytes::from(out),
    })
}

/// An `#info` message (`{name, message?}`); it has no sequence number.
pub(crate) fn info_frame(name: &str, message: Option<&str>) -> Result<Bytes, Error> {
    let mut fields = BTreeMap::from([("name".to_owned(), Ipld::String(name.to_owned()))]);
    if let Some(message) = message {
        fields.insert("message".to_owned(), Ipld::String(message.to_owned()));
    }
    let body = cbor::encode(&Ipld::Map(fields))?;
    Ok(join(message_header("#info"), &body))
}

/// An error frame: header `{op: -1}`, body `{error, message?}`.
pub(crate) fn error_frame(error: &str, message: Option<&str>) -> Result<Bytes, Error> {
    let header = cbor::encode(&Ipld::Map(BTreeMap::from([(
        "op".to_owned(),
        Ipld::Integer(-1),
    )])))?;
    let mut fields = BTreeMap::from([("error".to_owned(), Ipld::String(error.to_owned()))]);
    if let Some(message) = message {
        fields.insert("message".to_owned(), Ipld::String(message.to_owned()));
    }
    let body = cbor::encode(&Ipld::Map(fields))?;
    Ok(join(header, &body))
}

/// A frame read back (by consumers: tests, benchmarks).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFrame {
    /// `1` for a message, `-1` for an error.
    pub op: i64,
    /// The message type (`#commit`, …); `None` on errors.
    pub t: Option<String>,
    pub body: Ipld,
}

impl ParsedFrame {
    /// The body's `seq`, if it has one.
    pub fn seq(&self) -> Option<i64> {
        match &self.body {
            Ipld::Map(fields) => match fields.get("seq") {
                Some(Ipld::Integer(seq)) => i64::try_from(*seq).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// A string field of the body.
    pub fn text(&self, key: &str) -> Option<&str> {
        match &self.body {
            Ipld::Map(fields) => match fields.get(key) {
                Some(Ipld::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Splits a frame into its header and body, both strictly decoded.
pub fn parse(bytes: &[u8]) -> Result<ParsedFrame, Error> {
    let mut reader = std::io::Cursor::new(bytes);
    let header: Ipld =
        serde_ipld_dagcbor::de::from_reader_once(&mut reader).map_err(|_| Error::NotAMap)?;
    let split = usize::try_from(reader.position()).map_err(|_| Error::NotAMap)?;
    let header_bytes = bytes.get(..split).ok_or(Error::NotAMap)?;
    // The header must be canonical too: re-decode its bytes strictly.
    let header = if cbor::decode(header_bytes)? == header {
        header
    } else {
        return Err(Error::NotAMap);
    };
    let body = cbor::decode(bytes.get(split..).ok_or(Error::NotAMap)?)?;
    let Ipld::Map(fields) = header else {
        return Err(Error::NotAMap);
    };
    let op = match fields.get("op") {
        Some(Ipld::Integer(op)) => i64::try_from(*op).map_err(|_| Error::NotAMap)?,
        _ => return Err(Error::NotAMap),
    };
    let t = match fields.get("t") {
        Some(Ipld::String(t)) => Some(t.clone()),
        _ => None,
    };
    Ok(ParsedFrame { op, t, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequencer::events;

    /// "did:plc:ewvi7nxzyoun6zhxrhs64oiz" in hex.
    macro_rules! hex_did {
        () => {
            "6469643a706c633a65777669376e787a796f756e367a687872687336346f697a"
        };
    }

    /// Bytes written out by hand from the DAG-CBOR rules (RFC 8949 major types; keys sorted
    /// by length then bytes), not produced by the encoder under test.
    #[test]
    fn identity_frame_bytes() {
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let time = "2025-04-16T21:30:26.717Z";
        let body = events::identity_event(did, Some("a.test"), time)
            .unwrap()
            .body;
        let frame = message_frame(EventType::Identity, &body, 300).unwrap();
        assert_eq!(frame.seq, 300);
        let mut expected = Vec::new();
        // Header: map(2) {"t": "#identity", "op": 1}.
        expected.extend_from_slice(&[0xa2, 0x61, b't', 0x69]);
        expected.extend_from_slice(b"#identity");
        expected.extend_from_slice(&[0x62, b'o', b'p', 0x01]);
        // Body: map(4) {"did", "seq", "time", "handle"} (3, 3, 4, 6 bytes long).
        expected.extend_from_slice(&[0xa4, 0x63]);
        expected.extend_from_slice(b"did");
        expected.extend_from_slice(&[0x78, 32]); // text(32), one-byte length
        expected.extend_from_slice(did.as_bytes());
        expected.extend_from_slice(&[0x63]);
        expected.extend_from_slice(b"seq");
        expected.extend_from_slice(&[0x19, 0x01, 0x2c]); // uint16 300
        expected.extend_from_slice(&[0x64]);
        expected.extend_from_slice(b"time");
        expected.extend_from_slice(&[0x78, 24]);
        expected.extend_from_slice(time.as_bytes());
        expected.extend_from_slice(&[0x66]);
        expected.extend_from_slice(b"handle");
        expected.extend_from_slice(&[0x66]);
        expected.extend_from_slice(b"a.test");
        assert_eq!(hex::encode(&frame.bytes), hex::encode(&expected));
    }

    #[test]
    fn account_frame_hex() {
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let body = events::account_event(did, false, Some("deleted"), "2025-04-16T21:30:26.717Z")
            .unwrap()
            .body;
        let frame = message_frame(EventType::Account, &body, 7).unwrap();
        let expected = concat!(
            // {"t": "#account", "op": 1}
            "a2",
            "6174",
            "68",
            "236163636f756e74",
            "626f70",
            "01",
            // map(5): did, seq, time, active, status
            "a5",
            "63646964",
            "7820",
            hex_did!(),
            "63736571",
            "07",
            "6474696d65",
            "7818",
            "323032352d30342d31365432313a33303a32362e3731375a",
            "66616374697665",
            "f4",
            "66737461747573",
            "6764656c65746564",
        );
        assert_eq!(hex::encode(&frame.bytes), expected);
    }

    /// The hand-written header equals the encoder's canonical output for every type.
    #[test]
    fn message_header_matches_encoder() {
        for t in [
            "#commit",
            "#sync",
            "#identity",
            "#account",
            "#info",
            &"#x".repeat(30),
        ] {
            let expected = cbor::encode(&Ipld::Map(BTreeMap::from([
                ("op".to_owned(), Ipld::Integer(1)),
                ("t".to_owned(), Ipld::String(t.to_owned())),
            ])))
            .unwrap();
            assert_eq!(hex::encode(message_header(t)), hex::encode(expected), "{t}");
        }
    }

    #[test]
    fn frames_parse_back() {
        let body = events::account_event("did:plc:x", true, None, "t")
            .unwrap()
            .body;
        let parsed = parse(&message_frame(EventType::Account, &body, 42).unwrap().bytes).unwrap();
        assert_eq!((parsed.op, parsed.t.as_deref()), (1, Some("#account")));
        assert_eq!(parsed.seq(), Some(42));
        assert_eq!(parsed.text("did"), Some("did:plc:x"));
        let parsed = parse(&error_frame(FUTURE_CURSOR, Some("m")).unwrap()).unwrap();
        assert_eq!((parsed.op, parsed.t.as_deref()), (-1, None));
        assert_eq!(parsed.text("error"), Some(FUTURE_CURSOR));
        assert_eq!(parsed.seq(), None);
        assert!(parse(b"").is_err());
        assert!(parse(&[0xa1, 0x62, b'o', b'p']).is_err());
    }

    #[test]
    fn error_and_info_frames() {
        // {"op": -1} {"error": "FutureCursor", "message": "x"}
        let frame = error_frame(FUTURE_CURSOR, Some("x")).unwrap();
        assert_eq!(
            hex::encode(&frame),
            concat!(
                "a1",
                "626f70",
                "20",
                "a2",
                "656572726f72",
                "6c",
                "467574757265437572736f72",
                "676d657373616765",
                "6178",
            )
        );
        let frame = error_frame(CONSUMER_TOO_SLOW, None).unwrap();
        assert_eq!(
            hex::encode(&frame),
            concat!(
                "a1",
                "626f70",
                "20",
                "a1",
                "656572726f72",
                "6f",
                "436f6e73756d6572546f6f536c6f77",
            )
        );
        // {"t": "#info", "op": 1} {"name": "OutdatedCursor"}
        let frame = info_frame(OUTDATED_CURSOR, None).unwrap();
        assert_eq!(
            hex::encode(&frame),
            concat!(
                "a2",
                "6174",
                "65",
                "23696e666f",
                "626f70",
                "01",
                "a1",
                "646e616d65",
                "6e",
                "4f75746461746564437572736f72",
            )
        );
    }
}
