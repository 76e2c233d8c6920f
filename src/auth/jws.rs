//! The JWS compact serialisation (RFC 7515 §7.1) shared by session and service tokens:
//! `base64url(header) "." base64url(payload) "." base64url(signature)`, unpadded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::InvalidReason;

/// Longest token accepted. Ours are a few hundred bytes; the cap only bounds the work a
/// hostile header can cause before anything is verified.
pub(super) const MAX_TOKEN_LEN: usize = 8 * 1024;

pub(super) const MALFORMED_TOO_LONG: &str = "token is too long";
pub(super) const MALFORMED_PARTS: &str = "expected three non-empty dot-separated parts";
pub(super) const MALFORMED_BASE64: &str = "part is not unpadded base64url";
pub(super) const MALFORMED_HEADER: &str = "header is not a JSON object with a string alg";
pub(super) const MALFORMED_CRIT: &str = "critical header extensions are not supported";
pub(super) const MALFORMED_CLAIMS: &str = "payload is not a JSON object with the required claims";

/// A token cut into its parts; nothing in it has been verified yet.
pub(super) struct Compact<'a> {
    /// `header "." payload`, exactly the bytes the signature covers.
    pub signing_input: &'a str,
    pub header: Header,
    payload_b64: &'a str,
    pub signature: Vec<u8>,
}

/// The JOSE header fields we read; others (`kid`, …) are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct Header {
    pub alg: String,
    pub typ: Option<String>,
    /// Extensions the recipient must understand (RFC 7515 §4.1.11); we understand none.
    crit: Option<IgnoredAny>,
}

impl<'a> Compact<'a> {
    /// Splits `token` and decodes its header and signature (not the payload: that is only
    /// parsed once the signature has been checked).
    pub(crate) fn parse(token: &'a str) -> Result<Self, InvalidReason> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(InvalidReason::Malformed(MALFORMED_TOO_LONG));
        }
        let (signing_input, signature_b64) = token
            .rsplit_once('.')
            .ok_or(InvalidReason::Malformed(MALFORMED_PARTS))?;
        let (header_b64, payload_b64) = signing_input
            .split_once('.')
            .ok_or(InvalidReason::Malformed(MALFORMED_PARTS))?;
        if [header_b64, payload_b64, signature_b64]
            .iter()
            .any(|part| part.is_empty() || part.contains('.'))
        {
            return Err(InvalidReason::Malformed(MALFORMED_PARTS));
        }
        let header: Header = decode_json(header_b64, MALFORMED_HEADER)?;
        if header.crit.is_some() {
            return Err(InvalidReason::Malformed(MALFORMED_CRIT));
        }
        let signature = decode_b64(signature_b64)?;
        Ok(Compact {
            signing_input,
            header,
            payload_b64,
            signature,
        })
    }

    /// Decodes the claims. Call only after the signature has been verified.
    pub(crate) fn claims<T: DeserializeOwned>(&self) -> Result<T, InvalidReason> {
        decode_json(self.payload_b64, MALFORMED_CLAIMS)
    }
}

/// Builds `header.payload` for signing, from the two JSON texts.
pub(super) fn signing_input(header: &serde_json::Value, payload: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// Appends the encoded signature to a signing input, completing the token.
pub(super) fn finish(signing_input: String, signature: &[u8]) -> String {
    let mut token = signing_input;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
}

fn decode_b64(part: &str) -> Result<Vec<u8>, InvalidReason> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| InvalidReason::Malformed(MALFORMED_BASE64))
}

/// Decodes one part as a JSON object into `T`. Duplicate known members are refused by the
/// derived deserialisers, and the object check keeps serde from accepting a JSON array
/// positionally in place of a struct.
fn decode_json<T: DeserializeOwned>(part: &str, what: &'static str) -> Result<T, InvalidReason> {
    let bytes = decode_b64(part)?;
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return Err(InvalidReason::Malformed(what));
    }
    serde_json::from_slice(&bytes).map_err(|_| InvalidReason::Malformed(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn err(token: &str) -> InvalidReason {
        match Compact::parse(token) {
            Ok(_) => panic!("{token:?} parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_parts() {
        let header = b64(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"x"}"#);
        let payload = b64(r#"{"sub":"did:example:a"}"#);
        let token = format!("{header}.{payload}.AQID");
        let compact = Compact::parse(&token).expect("parses");
        assert_eq!(compact.signing_input, format!("{header}.{payload}"));
        assert_eq!(compact.header.alg, "EdDSA");
        assert_eq!(compact.header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(compact.signature, vec![1, 2, 3]);
        #[derive(Deserialize)]
        struct Sub {
            sub: String,
        }
        assert_eq!(
            compact.claims::<Sub>().expect("claims").sub,
            "did:example:a"
        );
    }

    #[test]
    fn rejects_bad_structure() {
        let header = b64(r#"{"alg":"EdDSA"}"#);
        let payload = b64("{}");
        let parts = InvalidReason::Malformed(MALFORMED_PARTS);
        assert_eq!(err(""), parts);
        assert_eq!(err("abc"), parts);
        assert_eq!(err(&format!("{header}.{payload}")), parts);
        assert_eq!(err(&format!("{header}.{payload}.")), parts);
        assert_eq!(err(&format!("{header}..AQID")), parts);
        assert_eq!(err(&format!(".{payload}.AQID")), parts);
        assert_eq!(err(&format!("{header}.{payload}.AQID.AQID")), parts);
        let long = format!("{header}.{}.AQID", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(err(&long), InvalidReason::Malformed(MALFORMED_TOO_LONG));
    }

    #[test]
    fn rejects_bad_encoding_and_headers() {
        let payload = b64("{}");
        let base64 = InvalidReason::Malformed(MALFORMED_BASE64);
        let header_err = InvalidReason::Malformed(MALFORMED_HEADER);
        let good = b64(r#"{"alg":"EdDSA"}"#);
        // Padding, the standard alphabet, and non-canonical trailing bits are all refused.
        assert_eq!(err(&format!("{good}.{payload}.AQI=")), base64);
        assert_eq!(err(&format!("{good}.{payload}.+/+/")), base64);
        assert_eq!(err(&format!("{good}.{payload}.AQJ")), base64);
        assert_eq!(err(&format!("{good}=.{payload}.AQID")), base64);
        for header in [
            "[\"EdDSA\"]",
            "{}",
            r#"{"alg":5}"#,
            r#"{"alg":"EdDSA","typ":1}"#,
            r#"{"alg":"EdDSA","alg":"none"}"#,
            r#"{"alg":"EdDSA"} x"#,
            "not json",
        ] {
            assert_eq!(
                err(&format!("{}.{payload}.AQID", b64(header))),
                header_err,
                "{header}"
            );
        }
        let crit = b64(r#"{"alg":"EdDSA","crit":["exp"]}"#);
        assert_eq!(
            err(&format!("{crit}.{payload}.AQID")),
            InvalidReason::Malformed(MALFORMED_CRIT)
        );
    }

    #[test]
    fn claims_must_be_an_object() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Sub {
            sub: String,
        }
        let header = b64(r#"{"alg":"EdDSA"}"#);
        for payload in [r#"["did:example:a"]"#, r#"{"sub":1}"#, "{}", "null"] {
            let token = format!("{header}.{}.AQID", b64(payload));
            let compact = Compact::parse(&token).expect("header parses");
            assert_eq!(
                compact.claims::<Sub>().map(|_| ()),
                Err(InvalidReason::Malformed(MALFORMED_CLAIMS)),
                "{payload}"
            );
        }
    }

    #[test]
    fn builds_tokens() {
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256K"});
        let payload = serde_json::json!({"iss": "did:example:a"});
        let input = signing_input(&header, &payload);
        assert_eq!(
            input,
            format!(
                "{}.{}",
                b64(r#"{"typ":"JWT","alg":"ES256K"}"#),
                b64(r#"{"iss":"did:example:a"}"#)
            )
        );
        assert_eq!(finish(input.clone(), &[0xfb, 0xff]), format!("{input}.-_8"));
    }
}
