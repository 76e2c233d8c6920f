use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/blobs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

#[test]
fn real_files_are_recognised() {
    let cases = [
        ("tiny.png", "image/png"),
        ("tiny.jpg", "image/jpeg"),
        ("tiny.gif", "image/gif"),
        ("tiny.webp", "image/webp"),
        ("tiny.bmp", "image/bmp"),
        ("tiny.tiff", "image/tiff"),
        ("tiny.ico", "image/x-icon"),
        ("tiny.avif", "image/avif"),
        ("tiny.jxl", "image/jxl"),
        ("tiny.mp4", "video/mp4"),
        ("tiny.mov", "video/quicktime"),
        ("tiny.webm", "video/webm"),
        ("tiny.mkv", "video/x-matroska"),
        ("tiny.mpg", "video/mpeg"),
        ("tiny.ogg", "audio/ogg"),
        ("tiny.mp3", "audio/mpeg"),
        ("tiny.aac", "audio/aac"),
        ("tiny.m4a", "audio/x-m4a"),
        ("tiny.flac", "audio/x-flac"),
        ("tiny.wav", "audio/wav"),
        ("tiny.pdf", "application/pdf"),
        ("tiny.txt.gz", "application/gzip"),
        ("tiny.zip", "application/zip"),
    ];
    for (file, mime) in cases {
        let bytes = fixture(file);
        assert_eq!(sniff(&bytes), Sniffed::Known(mime), "{file}");
        // Only the head matters.
        let head = bytes.get(..HEAD_LEN).unwrap_or(&bytes);
        assert_eq!(sniff(head), Sniffed::Known(mime), "{file} head");
        // Every recognised type is listed, and none is textual.
        assert!(SIGNATURE_TYPES.contains(&mime), "{mime} not listed");
        assert!(!is_textual(mime));
    }
}

#[test]
fn fallbacks() {
    assert_eq!(sniff(b""), Sniffed::Empty);
    assert_eq!(sniff(b"hello, world\n"), Sniffed::Text);
    assert_eq!(sniff("é à ü ✓ 🙂\r\n\tok".as_bytes()), Sniffed::Text);
    assert_eq!(
        sniff(b"<!DOCTYPE html><html><script>alert(1)</script>"),
        Sniffed::Text
    );
    assert_eq!(
        sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
        Sniffed::Text
    );
    assert_eq!(sniff(b"\xef\xbb\xbfwith BOM"), Sniffed::Text);
    assert_eq!(sniff(b"\xff\xfeh\x00i\x00"), Sniffed::Text);
    assert_eq!(sniff(b"nul\x00inside"), Sniffed::Binary);
    assert_eq!(sniff(b"bell\x07"), Sniffed::Binary);
    assert_eq!(sniff(&[0x80, 0x81, 0x82]), Sniffed::Binary);
    assert_eq!(sniff(&[0xde, 0xad, 0xbe, 0xef]), Sniffed::Binary);
    // "BM" text is not a bitmap; an EBML header of no known DocType is not WebM.
    assert_eq!(sniff(b"BMW and Audi"), Sniffed::Text);
    assert_eq!(sniff(b"\x1a\x45\xdf\xa3\x80other"), Sniffed::Binary);
    // A UTF-8 character cut by the end of the head is still text.
    let mut long = "a".repeat(HEAD_LEN - 1).into_bytes();
    long.extend_from_slice("é and more".as_bytes());
    assert_eq!(sniff(&long), Sniffed::Text);
    assert_eq!(Sniffed::Text.mime(), "text/plain");
    assert_eq!(Sniffed::Binary.mime(), "application/octet-stream");
    assert_eq!(Sniffed::Empty.mime(), "application/octet-stream");
}

#[test]
fn iso_bmff_brands() {
    let ftyp = |brand: &[u8; 4]| {
        let mut b = vec![0, 0, 0, 0x18];
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(brand);
        b.extend_from_slice(&[0, 0, 2, 0]);
        sniff(&b)
    };
    assert_eq!(ftyp(b"isom"), Sniffed::Known("video/mp4"));
    assert_eq!(ftyp(b"mp42"), Sniffed::Known("video/mp4"));
    assert_eq!(ftyp(b"qt  "), Sniffed::Known("video/quicktime"));
    assert_eq!(ftyp(b"heic"), Sniffed::Known("image/heic"));
    assert_eq!(ftyp(b"mif1"), Sniffed::Known("image/heif"));
    assert_eq!(ftyp(b"avis"), Sniffed::Known("image/avif"));
    assert_eq!(ftyp(b"3gp5"), Sniffed::Known("video/3gpp"));
    assert_eq!(ftyp(b"3g2a"), Sniffed::Known("video/3gpp2"));
    assert_eq!(ftyp(b"M4V "), Sniffed::Known("video/x-m4v"));
}

fn resolve(declared: Option<&str>, file: &str) -> Result<String, MimeMismatch> {
    resolve_mime(declared, sniff(&fixture(file)))
}

#[test]
fn declared_generic_uses_sniffed() {
    for declared in [
        None,
        Some("*/*"),
        Some("application/octet-stream"),
        Some("Application/Octet-Stream; foo=bar"),
        Some("binary/octet-stream"),
        Some(""),
        Some("garbage"),
        Some("a b/c"),
    ] {
        assert_eq!(
            resolve(declared, "tiny.png").unwrap(),
            "image/png",
            "{declared:?}"
        );
        assert_eq!(
            resolve_mime(declared, Sniffed::Text).unwrap(),
            "text/plain",
            "{declared:?}"
        );
        assert_eq!(
            resolve_mime(declared, Sniffed::Binary).unwrap(),
            "application/octet-stream"
        );
        assert_eq!(
            resolve_mime(declared, Sniffed::Empty).unwrap(),
            "application/octet-stream"
        );
    }
}

#[test]
fn declared_matching_or_same_kind() {
    assert_eq!(resolve(Some("image/png"), "tiny.png").unwrap(), "image/png");
    assert_eq!(
        resolve(Some("IMAGE/PNG; q=1"), "tiny.png").unwrap(),
        "image/png"
    );
    assert_eq!(
        resolve(Some("image/jpg"), "tiny.jpg").unwrap(),
        "image/jpeg"
    );
    assert_eq!(resolve(Some("image/*"), "tiny.webp").unwrap(), "image/webp");
    // Same kind, different subtype: stored as what the bytes are, as the reference does.
    assert_eq!(
        resolve(Some("image/jpeg"), "tiny.png").unwrap(),
        "image/png"
    );
    assert_eq!(
        resolve(Some("video/mp4"), "tiny.mov").unwrap(),
        "video/quicktime"
    );
    // Audio and video containers are interchangeable.
    assert_eq!(resolve(Some("audio/mp4"), "tiny.mp4").unwrap(), "video/mp4");
    assert_eq!(
        resolve(Some("audio/webm"), "tiny.webm").unwrap(),
        "video/webm"
    );
    assert_eq!(resolve(Some("video/*"), "tiny.ogg").unwrap(), "audio/ogg");
    assert_eq!(
        resolve(Some("application/mp4"), "tiny.mp4").unwrap(),
        "video/mp4"
    );
    assert_eq!(
        resolve(Some("application/x-pdf"), "tiny.pdf").unwrap(),
        "application/pdf"
    );
}

#[test]
fn declared_contradicting_bytes_is_refused() {
    assert_eq!(
        resolve(Some("text/html"), "tiny.png"),
        Err(MimeMismatch {
            declared: "text/html".into(),
            detected: "image/png"
        })
    );
    assert_eq!(
        resolve(Some("text/html; charset=utf-8"), "tiny.gif"),
        Err(MimeMismatch {
            declared: "text/html".into(),
            detected: "image/gif"
        })
    );
    assert!(resolve(Some("application/javascript"), "tiny.jpg").is_err());
    assert!(resolve(Some("image/svg+xml"), "tiny.mp4").is_err());
    assert!(resolve(Some("application/pdf"), "tiny.png").is_err());
    assert!(resolve(Some("text/*"), "tiny.png").is_err());
    // A signature format declared for text, binary without signature, or nothing.
    let html = sniff(b"<html><body>hi</body></html>");
    assert_eq!(
        resolve_mime(Some("image/png"), html),
        Err(MimeMismatch {
            declared: "image/png".into(),
            detected: "text/plain"
        })
    );
    assert!(resolve_mime(Some("video/mp4"), html).is_err());
    assert_eq!(
        resolve_mime(Some("image/jpeg"), Sniffed::Binary),
        Err(MimeMismatch {
            declared: "image/jpeg".into(),
            detected: "application/octet-stream"
        })
    );
    assert!(resolve_mime(Some("image/png"), Sniffed::Empty).is_err());
    // Textual types are refused for binary bytes.
    assert!(resolve_mime(Some("text/html"), Sniffed::Binary).is_err());
    assert!(resolve_mime(Some("application/json"), Sniffed::Binary).is_err());
    assert!(resolve_mime(Some("image/svg+xml"), Sniffed::Binary).is_err());
    assert!(resolve_mime(Some("image/*"), Sniffed::Text).is_err());
}

#[test]
fn declared_kept_when_bytes_do_not_contradict() {
    let text = sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    assert_eq!(
        resolve_mime(Some("image/svg+xml"), text).unwrap(),
        "image/svg+xml"
    );
    assert_eq!(
        resolve_mime(Some("text/html; charset=UTF-8"), text).unwrap(),
        "text/html"
    );
    assert_eq!(
        resolve_mime(Some("application/json"), text).unwrap(),
        "application/json"
    );
    assert_eq!(resolve_mime(Some("text/*"), text).unwrap(), "text/plain");
    // Binary formats Rookery does not recognise pass through, as do loose containers.
    assert_eq!(
        resolve_mime(Some("application/x-custom"), Sniffed::Binary).unwrap(),
        "application/x-custom"
    );
    assert_eq!(
        resolve_mime(Some("video/quicktime"), Sniffed::Binary).unwrap(),
        "video/quicktime"
    );
    assert_eq!(
        resolve_mime(Some("application/*"), Sniffed::Binary).unwrap(),
        "application/octet-stream"
    );
    assert_eq!(
        resolve_mime(Some("text/plain"), Sniffed::Empty).unwrap(),
        "text/plain"
    );
}
