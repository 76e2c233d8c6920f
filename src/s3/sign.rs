//! AWS Signature Version 4, header form, for S3 (`s3` service, single-chunk payloads).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// SHA-256 of the empty string: the payload hash of requests without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Payload hash of streamed bodies (not hashed up front).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// S3's `UriEncode`: every byte but the unreserved `A-Z a-z 0-9 - . _ ~` as `%XX`
/// (upper-case hex); `/` kept when `keep_slash` (object key paths).
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string (also the one sent): names and values encoded, sorted.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// What is signed of one request. `headers` are every header to sign (names in any
/// case), `host`, `x-amz-date` and `x-amz-content-sha256` included.
pub struct Signing<'a> {
    pub method: &'a str,
    /// Already encoded (see [`uri_encode`]), e.g. `/bucket/my%20key`.
    pub canonical_uri: &'a str,
    /// As [`canonical_query`] builds it.
    pub canonical_query: &'a str,
    pub headers: &'a [(String, String)],
    pub payload_hash: &'a str,
    /// `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: &'a str,
    pub region: &'a str,
}

/// The `Authorization` header value.
pub fn authorization(access_key: &str, secret_key: &str, s: &Signing<'_>) -> String {
    let mut headers: Vec<(String, String)> = s
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), collapse_spaces(v)))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        s.method, s.canonical_uri, s.canonical_query, s.payload_hash
    );
    let date = s.amz_date.get(..8).unwrap_or(s.amz_date);
    let scope = format!("{date}/{}/s3/aws4_request", s.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        s.amz_date,
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, s.region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// Trims a header value and turns runs of spaces into one.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    //! Expected values: the examples of AWS's "Signature Calculations for the Authorization
    //! Header: Transferring Payload in a Single Chunk" (S3 API reference), bucket
    //! `examplebucket`, 2013-05-24, us-east-1.
    use super::*;

    pub(crate) const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
    pub(crate) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const HOST: &str = "examplebucket.s3.amazonaws.com";
    const DATE: &str = "20130524T000000Z";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sign(method: &str, uri: &str, query: &str, headers: &[(&str, &str)], hash: &str) -> String {
        authorization(
            ACCESS,
            SECRET,
            &Signing {
                method,
                canonical_uri: uri,
                canonical_query: query,
                headers: &h(headers),
                payload_hash: hash,
                amz_date: DATE,
                region: "us-east-1",
            },
        )
    }

    #[test]
    fn aws_example_get_object_with_range() {
        let auth = sign(
            "GET",
            "/test.txt",
            "",
            &[
                ("Host", HOST),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", DATE),
            ],
            EMPTY_SHA256,
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn aws_example_put_object() {
        let hash = sha256_hex(b"Welcome to Amazon S3.");
        assert_eq!(
            hash,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let uri = format!("/{}", uri_encode("test$file.text", true));
        assert_eq!(uri, "/test%24file.text");
        let auth = sign(
            "PUT",
            &uri,
            "",
            &[
                ("Host", HOST),
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-date", DATE),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ("x-amz-content-sha256", &hash),
            ],
            &hash,
        );
        assert!(
            auth.ends_with(
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,\
                 Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{auth}"
        );
    }

    #[test]
    fn aws_example_get_bucket_lifecycle() {
        let query = canonical_query(&[("lifecycle".into(), String::new())]);
        assert_eq!(query, "lifecycle=");
        let auth = sign(
            "GET",
            "/",
            &query,
            &[
                ("host", HOST),
                ("x-amz-date", DATE),
                ("x-amz-content-sha256", EMPTY_SHA256),
            ],
            EMPTY_SHA256,
        );
        assert!(
            auth.ends_with(
                "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            ),
            "{auth}"
        );
    }

    #[test]
    fn aws_example_list_objects() {
        // Out of order on purpose: the canonical form sorts.
        let query = canonical_query(&[
            ("prefix".into(), "J".into()),
            ("max-keys".into(), "2".into()),
        ]);
        assert_eq!(query, "max-keys=2&prefix=J");
        let auth = sign(
            "GET",
            "/",
            &query,
            &[
                ("host", HOST),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", DATE),
            ],
            EMPTY_SHA256,
        );
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
        // A different query is a different signature.
        let other = sign(
            "GET",
            "/",
            "max-keys=2&prefix=K",
            &[
                ("host", HOST),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", DATE),
            ],
            EMPTY_SHA256,
        );
        assert_ne!(auth, other);
    }

    #[test]
    fn encoding_is_s3s() {
        assert_eq!(uri_encode("a b+c", true), "a%20b%2Bc");
        assert_eq!(uri_encode("a/b", true), "a/b");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(uri_encode("A-z_0.9~", false), "A-z_0.9~");
        assert_eq!(uri_encode("did:plc:x", true), "did%3Aplc%3Ax");
        // Already-encoded text is encoded again (keys are raw, never pre-encoded).
        assert_eq!(uri_encode("%3A", true), "%253A");
        assert_eq!(uri_encode("é", true), "%C3%A9");
        assert_eq!(
            canonical_query(&[
                ("prefix".into(), "tmp/did:plc:a/".into()),
                ("list-type".into(), "2".into()),
                ("continuation-token".into(), "a+b=".into()),
            ]),
            "continuation-token=a%2Bb%3D&list-type=2&prefix=tmp%2Fdid%3Aplc%3Aa%2F"
        );
    }
}
