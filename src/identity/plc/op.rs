//! `did:plc` operations: the three shapes, their DAG-CBOR and JSON forms, signing, DID
//! derivation and verification (did-method-plc specification, "Operation Serialization,
//! Signing, and Validation").
//!
//! Signed and unsigned operations are distinct types: [`UnsignedOp`] is what gets signed
//! (DAG-CBOR without a `sig` key at all), [`SignedOp`] adds the `base64url` signature. Reading
//! an operation is strict — unknown or missing fields are refused — because the CID of an
//! operation read back from a directory becomes the `prev` of the next one, and a field
//! silently dropped would change that CID.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cid::Cid;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::crypto::{Keypair, PublicKey};
use crate::repo::cbor;
use crate::syntax::{Did, Handle};

use super::OpError;

/// Largest DAG-CBOR encoding of a signed operation the directory accepts.
pub const MAX_OP_BYTES: usize = 7500;
/// Most rotation keys an operation may list.
pub const MAX_ROTATION_KEYS: usize = 5;
/// Service type of an atproto PDS entry (`services.atproto_pds.type`).
pub const PDS_SERVICE_TYPE: &str = "AtprotoPersonalDataServer";
/// Key of the PDS entry in `services`.
pub const PDS_SERVICE_ID: &str = "atproto_pds";
/// Key of the repo signing key in `verificationMethods`.
pub const ATPROTO_KEY_ID: &str = "atproto";

const TYPE_OPERATION: &str = "plc_operation";
const TYPE_TOMBSTONE: &str = "plc_tombstone";
const TYPE_LEGACY_CREATE: &str = "create";
/// Length of the identifier part of a `did:plc`.
const DID_PLC_ID_LEN: usize = 24;

/// One entry of `services`: `{type, endpoint}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint: String,
}

/// A regular (`plc_operation`) creation or update, without its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlcOp {
    /// `did:key` strings, most authoritative first; 1 to 5 of them.
    pub rotation_keys: Vec<String>,
    /// Name (no `#`) → `did:key`; `atproto` is the repo signing key.
    pub verification_methods: BTreeMap<String, String>,
    /// URIs; the first `at://` one is the handle.
    pub also_known_as: Vec<String>,
    /// Name (no `#`) → service; `atproto_pds` is the PDS.
    pub services: BTreeMap<String, Service>,
    /// CID string of the previous operation; `None` (encoded as `null`) for a genesis.
    pub prev: Option<String>,
}

impl PlcOp {
    /// The declared handle: the first `at://` entry of `alsoKnownAs`, if it is a valid handle.
    pub fn handle(&self) -> Option<Handle> {
        crate::identity::did_doc::first_at_handle(&self.also_known_as)
    }

    /// The `atproto_pds` service endpoint, if declared with the PDS type.
    pub fn pds_endpoint(&self) -> Option<&str> {
        self.services
            .get(PDS_SERVICE_ID)
            .filter(|s| s.kind == PDS_SERVICE_TYPE)
            .map(|s| s.endpoint.as_str())
    }

    /// The `atproto` verification method (`did:key`), if declared.
    pub fn signing_key(&self) -> Option<&str> {
        self.verification_methods
            .get(ATPROTO_KEY_ID)
            .map(String::as_str)
    }
}

/// The deprecated genesis format (`type: "create"`), still found at the start of old logs.
/// Its `prev` is always `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyCreateOp {
    pub signing_key: String,
    pub recovery_key: String,
    /// A bare handle, without `at://`.
    pub handle: String,
    /// The PDS URL.
    pub service: String,
}

/// Deactivates the DID for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TombstoneOp {
    /// CID string of the previous operation.
    pub prev: String,
}

/// An operation without its signature: exactly the bytes that get signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsignedOp {
    Plc(PlcOp),
    Tombstone(TombstoneOp),
    LegacyCreate(LegacyCreateOp),
}

/// An operation and its signature, as stored in the directory and posted to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedOp {
    pub op: UnsignedOp,
    /// `base64url` (no padding) of the 64-byte low-S signature over the unsigned DAG-CBOR.
    pub sig: String,
}

/// The `/<did>/data` answer: the current state of an active DID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlcData {
    pub did: Did,
    pub rotation_keys: Vec<String>,
    pub verification_methods: BTreeMap<String, String>,
    pub also_known_as: Vec<String>,
    pub services: BTreeMap<String, Service>,
}

/// What an update changes; `None` keeps the previous value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlcChanges {
    /// Replaces the first `at://` entry of `alsoKnownAs` (or is put first if there is none).
    pub handle: Option<Handle>,
    /// New `atproto_pds` endpoint (http or https URL).
    pub pds_endpoint: Option<String>,
    /// New `atproto` signing key (`did:key`).
    pub signing_key: Option<String>,
    /// New rotation keys (`did:key`, most authoritative first).
    pub rotation_keys: Option<Vec<String>>,
}

impl UnsignedOp {
    fn entry_count(&self) -> usize {
        match self {
            UnsignedOp::Plc(_) | UnsignedOp::LegacyCreate(_) => 6,
            UnsignedOp::Tombstone(_) => 2,
        }
    }

    fn write_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        match self {
            UnsignedOp::Plc(op) => {
                map.serialize_entry("type", TYPE_OPERATION)?;
                map.serialize_entry("rotationKeys", &op.rotation_keys)?;
                map.serialize_entry("verificationMethods", &op.verification_methods)?;
                map.serialize_entry("alsoKnownAs", &op.also_known_as)?;
                map.serialize_entry("services", &op.services)?;
                map.serialize_entry("prev", &op.prev)?;
            }
            UnsignedOp::Tombstone(op) => {
                map.serialize_entry("type", TYPE_TOMBSTONE)?;
                map.serialize_entry("prev", &op.prev)?;
            }
            UnsignedOp::LegacyCreate(op) => {
                map.serialize_entry("type", TYPE_LEGACY_CREATE)?;
                map.serialize_entry("signingKey", &op.signing_key)?;
                map.serialize_entry("recoveryKey", &op.recovery_key)?;
                map.serialize_entry("handle", &op.handle)?;
                map.serialize_entry("service", &op.service)?;
                map.serialize_entry("prev", &None::<String>)?;
            }
        }
        Ok(())
    }

    /// The canonical DAG-CBOR bytes that are signed.
    pub fn to_cbor(&self) -> Result<Vec<u8>, OpError> {
        Ok(cbor::encode_serde(self)?)
    }

    /// The CID string of the previous operation, `None` for a genesis.
    pub fn prev(&self) -> Option<&str> {
        match self {
            UnsignedOp::Plc(op) => op.prev.as_deref(),
            UnsignedOp::Tombstone(op) => Some(&op.prev),
            UnsignedOp::LegacyCreate(_) => None,
        }
    }

    /// The operation in regular form: legacy `create` operations are converted the way the
    /// reference implementation does (rotation keys `[recoveryKey, signingKey]`, the handle
    /// as an `at://` URI, the service as the PDS). `None` for a tombstone.
    pub fn normalize(&self) -> Option<PlcOp> {
        match self {
            UnsignedOp::Plc(op) => Some(op.clone()),
            UnsignedOp::Tombstone(_) => None,
            UnsignedOp::LegacyCreate(op) => Some(PlcOp {
                rotation_keys: vec![op.recovery_key.clone(), op.signing_key.clone()],
                verification_methods: BTreeMap::from([(
                    ATPROTO_KEY_ID.to_owned(),
                    op.signing_key.clone(),
                )]),
                also_known_as: vec![ensure_at_prefix(&op.handle)],
                services: BTreeMap::from([(
                    PDS_SERVICE_ID.to_owned(),
                    Service {
                        kind: PDS_SERVICE_TYPE.to_owned(),
                        endpoint: ensure_http_prefix(&op.service),
                    },
                )]),
                prev: None,
            }),
        }
    }

    /// Signs the operation with a rotation key. The result must fit [`MAX_OP_BYTES`].
    pub fn sign(self, signer: &Keypair) -> Result<SignedOp, OpError> {
        let sig = signer.sign(&self.to_cbor()?);
        let signed = SignedOp {
            op: self,
            sig: URL_SAFE_NO_PAD.encode(sig),
        };
        let len = signed.to_cbor()?.len();
        if len > MAX_OP_BYTES {
            return Err(OpError::TooLarge(len));
        }
        Ok(signed)
    }
}

impl Serialize for UnsignedOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entry_count()))?;
        self.write_entries(&mut map)?;
        map.end()
    }
}

impl Serialize for SignedOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.op.entry_count() + 1))?;
        self.op.write_entries(&mut map)?;
        map.serialize_entry("sig", &self.sig)?;
        map.end()
    }
}

/// Every field any operation shape may carry; which ones must be present depends on `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawOp {
    #[serde(rename = "type")]
    kind: String,
    sig: String,
    /// Outer `None`: absent; `Some(None)`: present and `null`.
    #[serde(default, deserialize_with = "present")]
    prev: Option<Option<String>>,
    rotation_keys: Option<Vec<String>>,
    verification_methods: Option<BTreeMap<String, String>>,
    also_known_as: Option<Vec<String>>,
    services: Option<BTreeMap<String, Service>>,
    signing_key: Option<String>,
    recovery_key: Option<String>,
    handle: Option<String>,
    service: Option<String>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl TryFrom<RawOp> for SignedOp {
    type Error = String;

    fn try_from(raw: RawOp) -> Result<Self, String> {
        let regular = [
            raw.rotation_keys.is_some(),
            raw.verification_methods.is_some(),
            raw.also_known_as.is_some(),
            raw.services.is_some(),
        ];
        let legacy = [
            raw.signing_key.is_some(),
            raw.recovery_key.is_some(),
            raw.handle.is_some(),
            raw.service.is_some(),
        ];
        let op = match raw.kind.as_str() {
            TYPE_OPERATION => {
                if legacy.contains(&true) {
                    return Err("plc_operation with legacy create fields".into());
                }
                let missing = || "plc_operation is missing a field".to_owned();
                UnsignedOp::Plc(PlcOp {
                    rotation_keys: raw.rotation_keys.ok_or_else(missing)?,
                    verification_methods: raw.verification_methods.ok_or_else(missing)?,
                    also_known_as: raw.also_known_as.ok_or_else(missing)?,
                    services: raw.services.ok_or_else(missing)?,
                    prev: raw.prev.ok_or_else(missing)?,
                })
            }
            TYPE_TOMBSTONE => {
                if regular.contains(&true) || legacy.contains(&true) {
                    return Err("plc_tombstone with extra fields".into());
                }
                let prev = raw
                    .prev
                    .flatten()
                    .ok_or("plc_tombstone needs a non-null prev")?;
                UnsignedOp::Tombstone(TombstoneOp { prev })
            }
            TYPE_LEGACY_CREATE => {
                if regular.contains(&true) {
                    return Err("create operation with plc_operation fields".into());
                }
                if raw.prev != Some(None) {
                    return Err("create operation needs prev: null".into());
                }
                let missing = || "create operation is missing a field".to_owned();
                UnsignedOp::LegacyCreate(LegacyCreateOp {
                    signing_key: raw.signing_key.ok_or_else(missing)?,
                    recovery_key: raw.recovery_key.ok_or_else(missing)?,
                    handle: raw.handle.ok_or_else(missing)?,
                    service: raw.service.ok_or_else(missing)?,
                })
            }
            _ => return Err("unknown operation type".into()),
        };
        Ok(SignedOp { op, sig: raw.sig })
    }
}

impl<'de> Deserialize<'de> for SignedOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SignedOp::try_from(RawOp::deserialize(d)?).map_err(D::Error::custom)
    }
}

impl SignedOp {
    /// Canonical DAG-CBOR of the signed operation (what the DID and CIDs hash).
    pub fn to_cbor(&self) -> Result<Vec<u8>, OpError> {
        Ok(cbor::encode_serde(self)?)
    }

    /// Reads a signed operation from DAG-CBOR (strict: canonical bytes, known fields only).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, OpError> {
        Ok(cbor::decode_serde(bytes)?)
    }

    /// The CID (v1, DAG-CBOR, SHA-256) of the signed operation; its string form is what the
    /// next operation puts in `prev`.
    pub fn cid(&self) -> Result<Cid, OpError> {
        Ok(crate::repo::cid::cid_for_cbor(&self.to_cbor()?))
    }

    /// Index in `rotation_keys` of the first key whose signature check passes. Keys that do
    /// not parse as `did:key` are skipped (they cannot have signed anything).
    pub fn verify_sig(&self, rotation_keys: &[String]) -> Result<usize, OpError> {
        let sig = URL_SAFE_NO_PAD
            .decode(&self.sig)
            .map_err(|_| OpError::SigEncoding)?;
        let bytes = self.op.to_cbor()?;
        rotation_keys
            .iter()
            .position(|key| {
                PublicKey::from_did_key(key).is_ok_and(|pk| pk.verify(&bytes, &sig).is_ok())
            })
            .ok_or(OpError::BadSignature)
    }
}

/// `did:plc:` + the first 24 characters of base32-lower(SHA-256(DAG-CBOR of the signed
/// genesis operation)).
pub fn did_for_genesis(op: &SignedOp) -> Result<Did, OpError> {
    let digest = Sha256::digest(op.to_cbor()?);
    let encoded = multibase::Base::Base32Lower.encode(digest);
    let id = encoded
        .get(..DID_PLC_ID_LEN)
        .ok_or(OpError::DidDerivation)?;
    format!("did:plc:{id}")
        .parse()
        .map_err(|_| OpError::DidDerivation)
}

/// Builds and signs a genesis operation and derives its DID.
///
/// `signing_key` is the repo signing key and `rotation_keys` the keys that control the DID
/// (all `did:key`); `signer` must be the private half of one of the rotation keys.
pub fn create_genesis(
    signing_key: &str,
    rotation_keys: Vec<String>,
    handle: &Handle,
    pds_endpoint: &str,
    signer: &Keypair,
) -> Result<(Did, SignedOp), OpError> {
    let op = PlcOp {
        rotation_keys,
        verification_methods: BTreeMap::from([(ATPROTO_KEY_ID.to_owned(), signing_key.to_owned())]),
        also_known_as: vec![format!("at://{handle}")],
        services: BTreeMap::from([(
            PDS_SERVICE_ID.to_owned(),
            Service {
                kind: PDS_SERVICE_TYPE.to_owned(),
                endpoint: pds_endpoint.to_owned(),
            },
        )]),
        prev: None,
    };
    check_new_op(&op, signer)?;
    let signed = UnsignedOp::Plc(op).sign(signer)?;
    let did = did_for_genesis(&signed)?;
    Ok((did, signed))
}

/// Builds and signs an update on top of `prev_op`: the previous state with `changes`
/// applied, `prev` set to the CID of `prev_op`. `signer` must be one of the previous
/// operation's rotation keys.
pub fn update_op(
    prev_op: &SignedOp,
    changes: &PlcChanges,
    signer: &Keypair,
) -> Result<SignedOp, OpError> {
    let previous = prev_op.op.normalize().ok_or(OpError::Tombstoned)?;
    check_signer(&previous.rotation_keys, signer)?;
    let mut op = previous;
    if let Some(handle) = &changes.handle {
        let uri = format!("at://{handle}");
        match op.also_known_as.iter().position(|a| a.starts_with("at://")) {
            Some(i) => op.also_known_as[i] = uri,
            None => op.also_known_as.insert(0, uri),
        }
    }
    if let Some(endpoint) = &changes.pds_endpoint {
        op.services.insert(
            PDS_SERVICE_ID.to_owned(),
            Service {
                kind: PDS_SERVICE_TYPE.to_owned(),
                endpoint: endpoint.clone(),
            },
        );
    }
    if let Some(key) = &changes.signing_key {
        op.verification_methods
            .insert(ATPROTO_KEY_ID.to_owned(), key.clone());
    }
    if let Some(keys) = &changes.rotation_keys {
        op.rotation_keys = keys.clone();
    }
    op.prev = Some(prev_op.cid()?.to_string());
    // The new rotation keys need not include the signer: only the previous ones authorise.
    check_op_fields(&op)?;
    UnsignedOp::Plc(op).sign(signer)
}

/// Builds and signs an update on top of `prev_op` whose fields are the previous ones with
/// each given field replaced whole (`signPlcOperation`), `prev` set to the CID of `prev_op`.
/// `signer` must be one of the previous operation's rotation keys.
pub fn replace_op(
    prev_op: &SignedOp,
    rotation_keys: Option<Vec<String>>,
    also_known_as: Option<Vec<String>>,
    verification_methods: Option<BTreeMap<String, String>>,
    services: Option<BTreeMap<String, Service>>,
    signer: &Keypair,
) -> Result<SignedOp, OpError> {
    let previous = prev_op.op.normalize().ok_or(OpError::Tombstoned)?;
    check_signer(&previous.rotation_keys, signer)?;
    let mut op = previous;
    if let Some(keys) = rotation_keys {
        op.rotation_keys = keys;
    }
    if let Some(aka) = also_known_as {
        op.also_known_as = aka;
    }
    if let Some(methods) = verification_methods {
        for key in methods.values() {
            PublicKey::from_did_key(key)?;
        }
        op.verification_methods = methods;
    }
    if let Some(services) = services {
        op.services = services;
    }
    op.prev = Some(prev_op.cid()?.to_string());
    check_op_fields(&op)?;
    UnsignedOp::Plc(op).sign(signer)
}

/// Builds and signs a tombstone on top of `prev_op`, with one of its rotation keys.
pub fn tombstone_op(prev_op: &SignedOp, signer: &Keypair) -> Result<SignedOp, OpError> {
    let previous = prev_op.op.normalize().ok_or(OpError::Tombstoned)?;
    check_signer(&previous.rotation_keys, signer)?;
    UnsignedOp::Tombstone(TombstoneOp {
        prev: prev_op.cid()?.to_string(),
    })
    .sign(signer)
}

/// Checks a genesis operation against its DID: regular or legacy shape, `prev` null,
/// valid keys, signed by one of its own rotation keys, and hashing to `did`.
pub fn verify_genesis(did: &Did, op: &SignedOp) -> Result<PlcOp, OpError> {
    let state = op.op.normalize().ok_or(OpError::NotGenesis)?;
    if op.op.prev().is_some() {
        return Err(OpError::NotGenesis);
    }
    check_op_fields(&state)?;
    op.verify_sig(&state.rotation_keys)?;
    let derived = did_for_genesis(op)?;
    if &derived != did {
        return Err(OpError::DidMismatch(derived));
    }
    Ok(state)
}

/// Replays a whole operation log (as `/<did>/log` returns it): a valid genesis for `did`,
/// then each operation pointing at the previous one and signed by one of its rotation keys.
/// Returns the final state, or `None` if the log ends in a tombstone.
pub fn verify_log(did: &Did, ops: &[SignedOp]) -> Result<Option<PlcOp>, OpError> {
    let (first, rest) = ops.split_first().ok_or(OpError::EmptyLog)?;
    let mut state = verify_genesis(did, first)?;
    let mut prev_cid = first.cid()?.to_string();
    for (i, op) in rest.iter().enumerate() {
        if matches!(op.op, UnsignedOp::LegacyCreate(_)) || op.op.prev() != Some(&prev_cid) {
            return Err(OpError::BrokenChain);
        }
        op.verify_sig(&state.rotation_keys)?;
        match op.op.normalize() {
            Some(next) => {
                check_op_fields(&next)?;
                state = next;
            }
            None if i + 1 == rest.len() => return Ok(None),
            None => return Err(OpError::BrokenChain),
        }
        prev_cid = op.cid()?.to_string();
    }
    Ok(Some(state))
}

/// The rules the directory enforces on a regular operation's contents.
fn check_op_fields(op: &PlcOp) -> Result<(), OpError> {
    let count = op.rotation_keys.len();
    if count == 0 || count > MAX_ROTATION_KEYS {
        return Err(OpError::RotationKeyCount(count));
    }
    for (i, key) in op.rotation_keys.iter().enumerate() {
        PublicKey::from_did_key(key)?;
        if op.rotation_keys[..i].contains(key) {
            return Err(OpError::DuplicateRotationKey);
        }
    }
    Ok(())
}

/// Extra checks on operations we create ourselves.
fn check_new_op(op: &PlcOp, signer: &Keypair) -> Result<(), OpError> {
    check_op_fields(op)?;
    check_signer(&op.rotation_keys, signer)?;
    for key in op.verification_methods.values() {
        PublicKey::from_did_key(key)?;
    }
    for service in op.services.values() {
        if !(service.endpoint.starts_with("https://") || service.endpoint.starts_with("http://"))
            || reqwest::Url::parse(&service.endpoint).is_err()
        {
            return Err(OpError::InvalidEndpoint);
        }
    }
    Ok(())
}

fn check_signer(rotation_keys: &[String], signer: &Keypair) -> Result<(), OpError> {
    let own = signer.public_key().to_did_key();
    if rotation_keys.contains(&own) {
        Ok(())
    } else {
        Err(OpError::SignerNotRotationKey)
    }
}

/// As the reference implementation: keep `at://…`, else drop one `http://` and one
/// `https://` and prefix `at://`.
fn ensure_at_prefix(s: &str) -> String {
    if s.starts_with("at://") {
        return s.to_owned();
    }
    let stripped = s.replacen("http://", "", 1).replacen("https://", "", 1);
    format!("at://{stripped}")
}

fn ensure_http_prefix(s: &str) -> String {
    if s.starts_with("http://") || s.starts_with("https://") {
        s.to_owned()
    } else {
        format!("https://{s}")
    }
}
