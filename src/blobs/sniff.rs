//! Content-type sniffing of uploads, and the rules that reconcile it with the type the
//! client declared.
//!
//! The reference PDS detects the type from the first bytes (the `file-type` library) and
//! stores the detected type, falling back to the declared `Content-Type` when nothing is
//! detected. Rookery does the same, with the MIME names `file-type` uses, and in addition
//! refuses uploads whose declared type the bytes contradict ([`resolve_mime`]).

/// How many leading bytes [`sniff`] looks at.
pub(crate) const HEAD_LEN: usize = 512;

/// `application/octet-stream`: what unrecognised binary is stored as.
pub(crate) const OCTET_STREAM: &str = "application/octet-stream";
/// `text/plain`: what unrecognised text is stored as.
pub(crate) const TEXT_PLAIN: &str = "text/plain";

/// What the first bytes of an upload look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A format recognised by its signature, with its MIME type.
    Known(&'static str),
    /// No signature, but UTF-8 text without control characters (or a UTF-16 BOM).
    Text,
    /// No signature, not text.
    Binary,
    /// No bytes at all.
    Empty,
}

impl Sniffed {
    /// The type to store when the client declared nothing useful.
    pub fn mime(self) -> &'static str {
        match self {
            Sniffed::Known(mime) => mime,
            Sniffed::Text => TEXT_PLAIN,
            Sniffed::Binary | Sniffed::Empty => OCTET_STREAM,
        }
    }
}

/// Classifies an upload by its first bytes (at most [`HEAD_LEN`] are looked at).
pub(crate) fn sniff(bytes: &[u8]) -> Sniffed {
    let head = bytes.get(..HEAD_LEN).unwrap_or(bytes);
    if head.is_empty() {
        Sniffed::Empty
    } else if let Some(mime) = signature(head) {
        Sniffed::Known(mime)
    } else if is_text(head) {
        Sniffed::Text
    } else {
        Sniffed::Binary
    }
}

/// The declared type contradicts the bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("declared content type {declared} does not match the uploaded bytes ({detected})")]
pub(crate) struct MimeMismatch {
    /// The declared type, normalised (lowercase, without parameters).
    pub declared: String,
    /// What the bytes look like ([`Sniffed::mime`]).
    pub detected: &'static str,
}

/// The MIME type to record for an upload, from the declared `Content-Type` and what the
/// bytes look like.
///
/// The declared value is normalised first: parameters (`; charset=…`) dropped,
/// lowercased, well-known aliases mapped (`image/jpg` → `image/jpeg`, …). Then:
///
/// 1. Declared nothing useful — absent, unparsable, `*/*`, `application/octet-stream` or
///    `binary/octet-stream` → the sniffed type ([`Sniffed::mime`]).
/// 2. Bytes with a recognised signature → the sniffed type, as the reference stores it,
///    provided the declared type is of the same kind: equal, or the same top-level type
///    (`image/jpeg` declared for PNG bytes is accepted and stored as `image/png`), with
///    `audio/*` and `video/*` interchangeable (containers hold either). `type/*` accepts
///    any type under it. Anything else (PNG declared as `text/html`) is refused.
/// 3. Text bytes → the declared type (`text/html`, `image/svg+xml`, `application/json`
///    … are kept; `text/*` gives `text/plain`), unless it names a binary format with a
///    signature (a "`image/png`" that is text is refused).
/// 4. Binary bytes without a recognised signature → the declared type (formats Rookery
///    does not recognise pass through), unless it is a textual type or a format whose
///    signature is mandatory at offset 0 (PNG, JPEG, GIF, WebP, …): then refused.
///    `application/*` gives `application/octet-stream`.
/// 5. No bytes → the declared type unless it is such a mandatory-signature format.
pub(crate) fn resolve_mime(
    declared: Option<&str>,
    sniffed: Sniffed,
) -> Result<String, MimeMismatch> {
    let declared = Declared::parse(declared);
    let mismatch = |d: &str| MimeMismatch {
        declared: d.to_owned(),
        detected: sniffed.mime(),
    };
    match (&declared, sniffed) {
        (Declared::Any, s) => Ok(s.mime().to_owned()),
        (Declared::AnyOf(top), Sniffed::Known(mime)) if same_kind(top, top_level(mime)) => {
            Ok(mime.to_owned())
        }
        (Declared::AnyOf(top), Sniffed::Text | Sniffed::Empty) if top == "text" => {
            Ok(TEXT_PLAIN.to_owned())
        }
        (Declared::AnyOf(top), Sniffed::Binary | Sniffed::Empty) if top == "application" => {
            Ok(OCTET_STREAM.to_owned())
        }
        (Declared::AnyOf(top), _) => Err(mismatch(&format!("{top}/*"))),
        (Declared::Exact(d), Sniffed::Known(mime)) => {
            if d == mime || same_kind(top_level(d), top_level(mime)) {
                Ok(mime.to_owned())
            } else {
                Err(mismatch(d))
            }
        }
        (Declared::Exact(d), Sniffed::Text) => {
            if is_signature_type(d) {
                Err(mismatch(d))
            } else {
                Ok(d.clone())
            }
        }
        (Declared::Exact(d), Sniffed::Binary) => {
            if is_textual(d) || MANDATORY_SIGNATURE.contains(&d.as_str()) {
                Err(mismatch(d))
            } else {
                Ok(d.clone())
            }
        }
        (Declared::Exact(d), Sniffed::Empty) => {
            if MANDATORY_SIGNATURE.contains(&d.as_str()) {
                Err(mismatch(d))
            } else {
                Ok(d.clone())
            }
        }
    }
}

/// A declared `Content-Type`, normalised.
#[derive(Debug, PartialEq, Eq)]
enum Declared {
    /// No information.
    Any,
    /// `type/*`.
    AnyOf(String),
    /// `type/subtype`, lowercase, aliases resolved.
    Exact(String),
}

impl Declared {
    fn parse(value: Option<&str>) -> Declared {
        let Some(value) = value else {
            return Declared::Any;
        };
        let essence = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some((top, sub)) = essence.split_once('/') else {
            return Declared::Any;
        };
        if !is_token(top) || !(sub == "*" || is_token(sub)) {
            return Declared::Any;
        }
        match (top, sub) {
            ("*", "*") => Declared::Any,
            (_, "*") => Declared::AnyOf(top.to_owned()),
            _ if matches!(
                essence.as_str(),
                "application/octet-stream" | "binary/octet-stream"
            ) =>
            {
                Declared::Any
            }
            _ => Declared::Exact(alias(&essence).unwrap_or(&essence).to_owned()),
        }
    }
}

/// RFC 6838 restricted-name characters (and `*` alone for wildcards).
fn is_token(s: &str) -> bool {
    (s == "*")
        || (!s.is_empty()
            && s.len() <= 127
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                    )
            }))
}

/// Common non-canonical names for the types [`signature`] reports.
fn alias(essence: &str) -> Option<&'static str> {
    Some(match essence {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/x-png" => "image/png",
        "image/x-ms-bmp" | "image/x-bmp" => "image/bmp",
        "image/vnd.microsoft.icon" => "image/x-icon",
        "audio/mp3" | "audio/x-mp3" | "audio/mpeg3" | "audio/x-mpeg" => "audio/mpeg",
        "audio/wave" | "audio/x-wav" | "audio/vnd.wave" => "audio/wav",
        "audio/flac" => "audio/x-flac",
        "audio/m4a" => "audio/x-m4a",
        "video/avi" | "video/x-msvideo" | "video/msvideo" => "video/vnd.avi",
        "application/mp4" => "video/mp4",
        "application/pdf" | "application/x-pdf" => "application/pdf",
        "application/x-gzip" => "application/gzip",
        "application/x-zip-compressed" => "application/zip",
        _ => return None,
    })
}

fn top_level(essence: &str) -> &str {
    essence.split_once('/').map_or(essence, |(top, _)| top)
}

/// Same top-level type, `audio` and `video` counting as one.
fn same_kind(a: &str, b: &str) -> bool {
    let media = |t: &str| matches!(t, "audio" | "video");
    a == b || (media(a) && media(b))
}

/// Types whose content is text.
fn is_textual(essence: &str) -> bool {
    top_level(essence) == "text"
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/ecmascript"
        )
}

/// Formats whose files always start with their signature, so that bytes without it
/// cannot be one of them. (Not MP4/QuickTime, MPEG audio or ZIP, whose files may start
/// with other data.)
const MANDATORY_SIGNATURE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/avif",
    "image/heic",
    "image/heif",
    "image/jxl",
    "application/pdf",
    "application/gzip",
    "audio/wav",
    "audio/ogg",
    "video/ogg",
    "video/webm",
];

/// Every type [`signature`] can report: all binary formats, none of them text.
const SIGNATURE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/x-icon",
    "image/avif",
    "image/heic",
    "image/heic-sequence",
    "image/heif",
    "image/heif-sequence",
    "image/jxl",
    "image/jp2",
    "video/mp4",
    "video/quicktime",
    "video/x-m4v",
    "video/3gpp",
    "video/3gpp2",
    "video/webm",
    "video/x-matroska",
    "video/ogg",
    "video/mpeg",
    "video/vnd.avi",
    "audio/mpeg",
    "audio/aac",
    "audio/x-m4a",
    "audio/mp4",
    "audio/ogg",
    "audio/wav",
    "audio/x-flac",
    "application/ogg",
    "application/pdf",
    "application/zip",
    "application/gzip",
];

fn is_signature_type(essence: &str) -> bool {
    SIGNATURE_TYPES.contains(&essence)
}

fn at(head: &[u8], offset: usize, expect: &[u8]) -> bool {
    head.get(offset..offset + expect.len()) == Some(expect)
}

/// The format whose signature `head` starts with, if any (MIME names as `file-type`).
fn signature(h: &[u8]) -> Option<&'static str> {
    if at(h, 0, b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if at(h, 0, &[0xff, 0xd8, 0xff]) {
        return Some("image/jpeg");
    }
    if at(h, 0, b"GIF87a") || at(h, 0, b"GIF89a") {
        return Some("image/gif");
    }
    if at(h, 0, b"RIFF") {
        return match h.get(8..12) {
            Some(b"WEBP") => Some("image/webp"),
            Some(b"WAVE") => Some("audio/wav"),
            Some(b"AVI ") => Some("video/vnd.avi"),
            _ => None,
        };
    }
    if at(h, 4, b"ftyp") {
        return h.get(8..12).map(iso_bmff_brand);
    }
    if at(h, 0, &[0x1a, 0x45, 0xdf, 0xa3]) {
        // EBML; the DocType element says which flavour.
        return if contains(h, b"webm") {
            Some("video/webm")
        } else if contains(h, b"matroska") {
            Some("video/x-matroska")
        } else {
            None
        };
    }
    if at(h, 0, b"OggS") {
        return Some(if at(h, 28, b"\x80theora") || at(h, 28, b"\x01video\x00") {
            "video/ogg"
        } else if at(h, 28, b"OpusHead")
            || at(h, 28, b"\x01vorbis")
            || at(h, 28, b"\x7fFLAC")
            || at(h, 28, b"Speex  ")
        {
            "audio/ogg"
        } else {
            "application/ogg"
        });
    }
    if at(h, 0, b"ID3") {
        return Some("audio/mpeg");
    }
    if at(h, 0, b"fLaC") {
        return Some("audio/x-flac");
    }
    if at(h, 0, b"%PDF-") {
        return Some("application/pdf");
    }
    if at(h, 0, b"PK\x03\x04") {
        return Some("application/zip");
    }
    if at(h, 0, &[0x1f, 0x8b, 0x08]) {
        return Some("application/gzip");
    }
    if at(h, 0, b"II*\x00") || at(h, 0, b"MM\x00*") {
        return Some("image/tiff");
    }
    // "BM" alone is too weak (text starts with it); the reserved header fields are zero.
    if at(h, 0, b"BM") && at(h, 6, &[0, 0, 0, 0]) {
        return Some("image/bmp");
    }
    // Reserved 0, type 1 (icon), at least one image.
    if at(h, 0, &[0, 0, 1, 0]) && h.get(4..6).is_some_and(|n| n != [0, 0]) {
        return Some("image/x-icon");
    }
    if at(h, 0, &[0xff, 0x0a]) || at(h, 0, b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a") {
        return Some("image/jxl");
    }
    if at(h, 0, b"\x00\x00\x00\x0cjP  \x0d\x0a\x87\x0a") {
        return Some("image/jp2");
    }
    if at(h, 0, &[0, 0, 1, 0xba]) || at(h, 0, &[0, 0, 1, 0xb3]) {
        return Some("video/mpeg");
    }
    // MPEG audio frame sync: MPEG-1/2 layer III, or AAC in ADTS.
    match h {
        [0xff, 0xfb | 0xfa | 0xf3 | 0xf2, ..] => Some("audio/mpeg"),
        [0xff, 0xf1 | 0xf9, ..] => Some("audio/aac"),
        _ => None,
    }
}

/// ISO base media files (MP4, QuickTime, HEIF, AVIF, 3GP): the major brand of `ftyp`.
fn iso_bmff_brand(brand: &[u8]) -> &'static str {
    match brand {
        b"avif" | b"avis" => "image/avif",
        b"mif1" => "image/heif",
        b"msf1" => "image/heif-sequence",
        b"heic" | b"heix" => "image/heic",
        b"hevc" | b"hevx" => "image/heic-sequence",
        b"qt  " => "video/quicktime",
        b"M4V " | b"M4VH" | b"M4VP" => "video/x-m4v",
        b"M4A " => "audio/x-m4a",
        b"M4B " | b"M4P " => "audio/mp4",
        [b'3', b'g', b'2', _] => "video/3gpp2",
        [b'3', b'g', _, _] => "video/3gpp",
        _ => "video/mp4",
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// UTF-8 (possibly cut mid-character at the end of the head) without control characters
/// other than tab, newlines, form feed and escape; or anything with a UTF-16 BOM.
fn is_text(head: &[u8]) -> bool {
    if at(head, 0, &[0xfe, 0xff]) || at(head, 0, &[0xff, 0xfe]) {
        return true;
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A character cut by the end of the head is fine; an invalid sequence is not.
        Err(e) if e.error_len().is_none() => match head.get(..e.valid_up_to()) {
            Some(valid) => std::str::from_utf8(valid).unwrap_or_default(),
            None => return false,
        },
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b'))
}

#[cfg(test)]
mod tests;
