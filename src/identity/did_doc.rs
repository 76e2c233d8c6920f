//! DID documents, and the three things atproto reads from them: the repo signing key
//! (`#atproto`), the declared handle (`alsoKnownAs`) and the PDS endpoint (`#atproto_pds`).
//!
//! Members atproto does not use are kept (in `extra`) so a document re-serialises whole.

use serde::{Deserialize, Deserializer, Serialize};

use crate::crypto::{Algorithm, PublicKey};
use crate::syntax::{Did, Handle};

/// Fragment of the repo signing key's verification method id.
pub(crate) const ATPROTO_KEY_FRAGMENT: &str = "#atproto";
/// Fragment of the PDS service id.
pub(crate) const PDS_SERVICE_FRAGMENT: &str = "#atproto_pds";
/// Type of the PDS service.
pub(crate) const PDS_SERVICE_TYPE: &str = "AtprotoPersonalDataServer";

/// Why the atproto signing key could not be read from a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidDocError {
    #[error("DID document declares no atproto signing key")]
    NoKeyDeclared,
    #[error("unsupported verification method type {0:?}")]
    UnsupportedKeyType(String),
    #[error("invalid atproto signing key: {0}")]
    InvalidKey(#[from] crate::crypto::Error),
}

/// A DID document (W3C DID Core), as served by a PLC directory or a `did:web` host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    pub id: Did,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub also_known_as: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub verification_method: Vec<VerificationMethod>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub service: Vec<DocService>,
    /// Every other member, kept as is.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One `verificationMethod` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub controller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One `service` entry. The endpoint may be a string, a map or a list in DID Core; atproto
/// only uses strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocService {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub service_endpoint: serde_json::Value,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The first `at://` entry of an `alsoKnownAs` list, as a handle, if it is one.
pub(crate) fn first_at_handle(also_known_as: &[String]) -> Option<Handle> {
    also_known_as
        .iter()
        .find_map(|a| a.strip_prefix("at://"))
        .and_then(|h| h.parse().ok())
}

impl DidDocument {
    /// Parses a document from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Whether an entry id names `fragment` (e.g. `#atproto`) of this document: either the
    /// relative `#atproto` or the absolute `<did>#atproto`.
    fn id_matches(&self, id: &str, fragment: &str) -> bool {
        id == fragment
            || id
                .strip_prefix(self.id.as_str())
                .is_some_and(|rest| rest == fragment)
    }

    /// The verification method with the given fragment (first match).
    pub fn verification_method(&self, fragment: &str) -> Option<&VerificationMethod> {
        self.verification_method
            .iter()
            .find(|vm| self.id_matches(&vm.id, fragment))
    }

    /// The atproto repo signing key (`#atproto`), in either the current `Multikey` form or
    /// the legacy `EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019`
    /// form (bare point, compressed or not, the curve named by the type).
    pub fn signing_key(&self) -> Result<PublicKey, DidDocError> {
        let vm = self
            .verification_method(ATPROTO_KEY_FRAGMENT)
            .ok_or(DidDocError::NoKeyDeclared)?;
        let multibase = vm
            .public_key_multibase
            .as_deref()
            .ok_or(DidDocError::NoKeyDeclared)?;
        Ok(match vm.kind.as_str() {
            "Multikey" => PublicKey::from_multikey(multibase)?,
            "EcdsaSecp256k1VerificationKey2019" => {
                PublicKey::from_legacy_multibase(multibase, Algorithm::K256)?
            }
            "EcdsaSecp256r1VerificationKey2019" => {
                PublicKey::from_legacy_multibase(multibase, Algorithm::P256)?
            }
            other => {
                return Err(DidDocError::UnsupportedKeyType(
                    other.chars().take(100).collect(),
                ));
            }
        })
    }

    /// The declared (not yet verified) handle: the first `at://` entry of `alsoKnownAs`,
    /// if it is a valid handle.
    pub fn handle(&self) -> Option<Handle> {
        first_at_handle(&self.also_known_as)
    }

    /// The endpoint of the service with the given fragment and type, if it is an http(s) URL.
    pub fn service_endpoint(&self, fragment: &str, kind: &str) -> Option<&str> {
        let service = self
            .service
            .iter()
            .find(|s| self.id_matches(&s.id, fragment))?;
        if service.kind != kind {
            return None;
        }
        let endpoint = service.service_endpoint.as_str()?;
        let url = reqwest::Url::parse(endpoint).ok()?;
        (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then_some(endpoint)
    }

    /// The PDS endpoint (`#atproto_pds`, type `AtprotoPersonalDataServer`).
    pub fn pds_endpoint(&self) -> Option<&str> {
        self.service_endpoint(PDS_SERVICE_FRAGMENT, PDS_SERVICE_TYPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> DidDocument {
        let path = format!(
            "{}/fixtures/interop/extra/indigo/atproto/identity/testdata/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).expect("fixture readable");
        DidDocument::from_json(&bytes).expect("fixture parses")
    }

    const KEY: &str = "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF";

    #[test]
    fn plc_documents_current_and_legacy_agree() {
        for name in ["did_plc_doc.json", "did_plc_doc_legacy.json"] {
            let doc = fixture(name);
            assert_eq!(
                doc.id.as_str(),
                "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
                "{name}"
            );
            assert_eq!(
                doc.handle().map(String::from).as_deref(),
                Some("atproto.com")
            );
            assert_eq!(doc.pds_endpoint(), Some("https://bsky.social"), "{name}");
            let key = doc.signing_key().expect(name);
            assert_eq!(key.algorithm(), Algorithm::K256, "{name}");
            assert_eq!(key.to_did_key(), KEY, "{name}");
        }
        // The two files spell the key id differently: absolute and relative.
        assert_eq!(
            fixture("did_plc_doc.json").verification_method[0].id,
            "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto"
        );
        assert_eq!(
            fixture("did_plc_doc_legacy.json").verification_method[0].id,
            "#atproto"
        );
    }

    #[test]
    fn web_document_has_no_atproto_data() {
        let doc = fixture("did_web_doc.json");
        assert_eq!(doc.id.as_str(), "did:web:discover.bsky.social");
        assert_eq!(doc.signing_key(), Err(DidDocError::NoKeyDeclared));
        assert_eq!(
            doc.signing_key().unwrap_err().to_string(),
            "DID document declares no atproto signing key"
        );
        assert_eq!(doc.pds_endpoint(), None);
        assert_eq!(doc.handle(), None);
        // Its one service is found by fragment and type, and members we do not model stay.
        assert_eq!(
            doc.service_endpoint("#bsky_fg", "BskyFeedGenerator"),
            Some("https://discover.bsky.social")
        );
        assert_eq!(
            doc.extra.get("authentication"),
            Some(&serde_json::Value::Null)
        );
    }

    #[test]
    fn round_trips_through_json() {
        let doc = fixture("did_plc_doc.json");
        let json = serde_json::to_vec(&doc).unwrap();
        assert_eq!(DidDocument::from_json(&json).unwrap(), doc);
    }

    fn doc(value: serde_json::Value) -> DidDocument {
        serde_json::from_value(value).expect("document parses")
    }

    #[test]
    fn p256_legacy_and_rules() {
        // A P-256 legacy key (compressed point, no multicodec prefix).
        let key = crate::crypto::Keypair::from_private_hex(
            Algorithm::P256,
            "6b0b91287ae3348f8c2f2552d766f30e3604867e34adc37ccbb74a8e6b893e02",
        )
        .unwrap()
        .public_key();
        let legacy = multibase::encode(multibase::Base::Base58Btc, key.to_compressed_bytes());
        let d = doc(serde_json::json!({
            "id": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
            "alsoKnownAs": ["https://example.com", "at://Alice.Example.COM", "at://second.com"],
            "verificationMethod": [
                {"id": "#other", "type": "Multikey", "publicKeyMultibase": key.to_multikey()},
                {"id": "did:plc:other#atproto", "type": "Multikey", "controller": "x",
                 "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"},
                {"id": "#atproto", "type": "EcdsaSecp256r1VerificationKey2019",
                 "controller": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "publicKeyMultibase": legacy},
            ],
            "service": [
                {"id": "#atproto_pds", "type": "SomethingElse", "serviceEndpoint": "https://a.com"},
            ],
        }));
        assert_eq!(d.signing_key(), Ok(key.clone()));
        assert_eq!(
            d.handle().map(String::from).as_deref(),
            Some("alice.example.com")
        );
        // The first #atproto_pds entry has the wrong type: no PDS.
        assert_eq!(d.pds_endpoint(), None);

        let d = doc(serde_json::json!({
            "id": "did:web:example.com",
            "alsoKnownAs": ["at://not a handle", "at://later.com"],
            "verificationMethod": [{"id": "#atproto", "type": "JsonWebKey2020"}],
            "service": [{"id": "did:web:example.com#atproto_pds",
                         "type": "AtprotoPersonalDataServer", "serviceEndpoint": "ftp://x.com"}],
        }));
        // A first at:// entry that is not a handle means no handle (not the next one).
        assert_eq!(d.handle(), None);
        assert_eq!(d.signing_key(), Err(DidDocError::NoKeyDeclared));
        assert_eq!(d.pds_endpoint(), None);

        let d = doc(serde_json::json!({
            "id": "did:web:example.com",
            "verificationMethod": [{"id": "did:web:example.com#atproto", "type": "JsonWebKey2020",
                                    "publicKeyMultibase": "zabc"}],
            "service": [{"id": "did:web:example.com#atproto_pds",
                         "type": "AtprotoPersonalDataServer",
                         "serviceEndpoint": "http://localhost:2583"}],
        }));
        assert_eq!(
            d.signing_key(),
            Err(DidDocError::UnsupportedKeyType("JsonWebKey2020".into()))
        );
        assert_eq!(d.pds_endpoint(), Some("http://localhost:2583"));
        assert!(d.also_known_as.is_empty());
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"id": "not-a-did"}),
            serde_json::json!({"id": "did:plc:x", "alsoKnownAs": "at://a.com"}),
            serde_json::json!({"id": "did:plc:x", "verificationMethod": [{"id": "#atproto"}]}),
            serde_json::json!({"id": "did:plc:x", "service": [{"id": "#a", "type": "t"}]}),
        ] {
            assert!(
                serde_json::from_value::<DidDocument>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let key_garbage = doc(serde_json::json!({
            "id": "did:plc:x",
            "verificationMethod": [{"id": "#atproto", "type": "Multikey",
                                    "publicKeyMultibase": "z111"}],
        }));
        assert!(matches!(
            key_garbage.signing_key(),
            Err(DidDocError::InvalidKey(_))
        ));
    }
}
