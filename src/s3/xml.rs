//! Just enough XML for S3's responses: the contents of named elements, entities decoded.
//! S3 documents are flat and regular (no CDATA, no same-named nesting), which is all this
//! reader handles; anything it cannot read is simply absent.

/// The raw contents of every `<name>` element in `doc`, in order (nested ones included).
pub fn elements<'a>(doc: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        // `<Key>`, `<Key attr="…">` or `<Key/>`; not `<KeyMarker>`.
        let Some(next) = after.chars().next() else {
            break;
        };
        if !(next == '>' || next == '/' || next.is_whitespace()) {
            rest = after;
            continue;
        }
        let Some(end_of_tag) = after.find('>') else {
            break;
        };
        let body_start = &after[end_of_tag + 1..];
        if after[..end_of_tag].ends_with('/') {
            out.push("");
            rest = body_start;
            continue;
        }
        let Some(end) = body_start.find(&close) else {
            break;
        };
        out.push(&body_start[..end]);
        rest = &body_start[end + close.len()..];
    }
    out
}

/// The decoded text of the first `<name>` element.
pub fn text(doc: &str, name: &str) -> Option<String> {
    elements(doc, name).first().map(|raw| unescape(raw))
}

/// Decodes the five predefined entities and character references; an unknown or
/// malformed reference is kept as it is.
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let decoded = tail.find(';').and_then(|end| {
            let entity = &tail[1..end];
            let ch = match entity {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let code = if let Some(hex) = entity
                        .strip_prefix("#x")
                        .or_else(|| entity.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = entity.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                }
            };
            ch.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an element's contents.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed raw in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n') => {
                out.push_str(&format!("&#x{:X};", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix>tmp/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>tmp/a&amp;b &lt;1&gt;</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>tmp/&#233;&#x4E2D;</Key><Size>0</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <StartAfter/>
</ListBucketResult>"#;

    #[test]
    fn list_objects_v2() {
        let contents = elements(LIST, "Contents");
        assert_eq!(contents.len(), 2);
        assert_eq!(text(contents[0], "Key").as_deref(), Some("tmp/a&b <1>"));
        assert_eq!(text(contents[0], "Size").as_deref(), Some("434234"));
        assert_eq!(
            text(contents[0], "ETag").as_deref(),
            Some("\"fba9dede5f27731c9771645a39863328\"")
        );
        assert_eq!(text(contents[1], "Key").as_deref(), Some("tmp/é中"));
        assert_eq!(text(contents[1], "LastModified"), None);
        assert_eq!(text(LIST, "IsTruncated").as_deref(), Some("true"));
        assert_eq!(
            text(LIST, "NextContinuationToken").as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert_eq!(text(LIST, "StartAfter").as_deref(), Some(""));
        // `<Key>` does not match `<KeyCount>`.
        assert_eq!(elements(LIST, "Key").len(), 2);
        assert_eq!(text(LIST, "KeyCount").as_deref(), Some("2"));
        assert_eq!(text(LIST, "Missing"), None);
    }

    #[test]
    fn error_documents() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
                   <Message>The resource you requested does not exist</Message>\
                   <Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>";
        let error = elements(doc, "Error");
        assert_eq!(error.len(), 1);
        assert_eq!(text(error[0], "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(
            text(error[0], "Message").as_deref(),
            Some("The resource you requested does not exist")
        );
        let upload = "<InitiateMultipartUploadResult xmlns=\"x\"><Bucket>b</Bucket><Key>k</Key>\
                      <UploadId>VXBsb2FkIElE&#43;</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(text(upload, "UploadId").as_deref(), Some("VXBsb2FkIElE+"));
        let deleted = "<DeleteResult><Deleted><Key>a</Key></Deleted>\
                       <Error><Key>b&amp;c</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>\
                       <Error><Key>d</Key><Code>InternalError</Code><Message/></Error></DeleteResult>";
        let errors = elements(deleted, "Error");
        assert_eq!(errors.len(), 2);
        assert_eq!(text(errors[0], "Key").as_deref(), Some("b&c"));
        assert_eq!(text(errors[1], "Code").as_deref(), Some("InternalError"));
        assert_eq!(text(errors[1], "Message").as_deref(), Some(""));
    }

    #[test]
    fn entities() {
        assert_eq!(unescape("a &amp;amp; b"), "a &amp; b");
        assert_eq!(unescape("&apos;&quot;&#65;&#x42;"), "'\"AB");
        assert_eq!(
            unescape("AT&T &bogus; &#xD800; &"),
            "AT&T &bogus; &#xD800; &"
        );
        for s in ["plain", "a<b>&\"'c", "tmp/did:plc:x/é", "ctl\u{1}"] {
            assert_eq!(unescape(&escape(s)), s);
        }
        assert!(!escape("x<y").contains('<'));
    }

    #[test]
    fn truncated_documents_yield_what_is_complete() {
        assert_eq!(elements("<a><Key>x</Key><Key>y", "Key"), vec!["x"]);
        assert_eq!(elements("<Key", "Key"), Vec::<&str>::new());
        assert_eq!(elements("", "Key"), Vec::<&str>::new());
    }
}
