//! The directory's rules for a proposed operation, as the reference directory
//! (`@did-plc/server` and `@did-plc/lib`) applies them: the size and field limits on what may
//! be posted, the genesis checks, `prev` chaining, signatures by the authorised rotation keys,
//! nullification by a higher-priority key within 72 hours, and the per-DID operation rate.
//!
//! Pure functions over the DID's operations and the current time, so every rule is unit
//! tested without a database or a clock. Error messages are the reference's.

use crate::crypto::PublicKey;
use crate::identity::plc::{PlcOp, SignedOp, UnsignedOp, did_for_genesis};

use super::Error;

/// Largest accepted operation, in bytes of DAG-CBOR (the reference directory's limit).
pub(crate) const MAX_OP_BYTES: usize = 4000;
/// How long after an operation a higher-priority rotation key may still nullify it.
pub(crate) const RECOVERY_WINDOW_MS: i64 = 72 * HOUR_MS;

const HOUR_MS: i64 = 60 * 60 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;
const MAX_AKA_ENTRIES: usize = 10;
const MAX_AKA_LENGTH: usize = 258;
const MAX_ROTATION_KEYS: usize = 5;
const MAX_ROTATION_ENTRIES: usize = 10;
const MAX_SERVICE_ENTRIES: usize = 10;
const MAX_SERVICE_TYPE_LENGTH: usize = 256;
const MAX_SERVICE_ENDPOINT_LENGTH: usize = 512;
const MAX_VERIFICATION_METHOD_ENTRIES: usize = 10;
const MAX_ID_LENGTH: usize = 32;
const MAX_DID_KEY_LENGTH: usize = 256;
/// Operations per DID: (window, most already in it), checked only for operations that
/// nullify nothing, so an attacker cannot rate-limit a recovery away.
const RATE_LIMITS: [(i64, usize, &str); 3] = [
    (HOUR_MS, 10, "hour"),
    (DAY_MS, 30, "day"),
    (7 * DAY_MS, 100, "week"),
];

/// One stored operation of a DID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexedOp {
    pub cid: String,
    pub op: SignedOp,
    pub nullified: bool,
    /// UNIX milliseconds.
    pub created_at_ms: i64,
}

/// What accepting an operation does besides appending it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Accepted {
    /// CIDs of the operations it nullifies.
    pub nullified: Vec<String>,
}

/// Reads a posted body: a JSON signed operation (`plc_operation` or `plc_tombstone`; legacy
/// `create` operations are only read from old logs, never accepted) within the size and
/// field limits.
pub(crate) fn parse_incoming(body: &serde_json::Value) -> Result<SignedOp, Error> {
    let json = || serde_json::to_string(body).unwrap_or_default();
    // Any JSON has a CBOR form (the checks of our strict encoder do not apply here).
    let size = serde_ipld_dagcbor::to_vec(body).map_or(usize::MAX, |b| b.len());
    if size > MAX_OP_BYTES {
        return Err(Error::Invalid(format!(
            "Operation too large ({MAX_OP_BYTES} bytes maximum in cbor encoding)"
        )));
    }
    let op: SignedOp = serde_json::from_value(body.clone())
        .map_err(|_| Error::Invalid(format!("Not a valid operation: {}", json())))?;
    match &op.op {
        UnsignedOp::Plc(plc) => check_fields(plc)?,
        UnsignedOp::Tombstone(_) => {}
        UnsignedOp::LegacyCreate(_) => {
            return Err(Error::Invalid(format!("Not a valid operation: {}", json())));
        }
    }
    Ok(op)
}

fn check_fields(op: &PlcOp) -> Result<(), Error> {
    let invalid = |m: String| Err(Error::Invalid(m));
    if op.also_known_as.len() > MAX_AKA_ENTRIES {
        return invalid(format!(
            "To many alsoKnownAs entries (max {MAX_AKA_ENTRIES})"
        ));
    }
    for (i, aka) in op.also_known_as.iter().enumerate() {
        if aka.len() > MAX_AKA_LENGTH {
            return invalid(format!(
                "alsoKnownAs entry too long (max {MAX_AKA_LENGTH}): {aka}"
            ));
        }
        if op.also_known_as[..i].contains(aka) {
            return invalid(format!("duplicate alsoKnownAs entry: {aka}"));
        }
    }
    if op.rotation_keys.len() > MAX_ROTATION_ENTRIES {
        return invalid(format!(
            "Too many rotationKey entries (max {MAX_ROTATION_ENTRIES})"
        ));
    }
    for key in &op.rotation_keys {
        if PublicKey::from_did_key(key).is_err() {
            return invalid(format!("Invalid rotationKey: {key}"));
        }
    }
    if op.services.len() > MAX_SERVICE_ENTRIES {
        return invalid(format!(
            "To many service entries (max {MAX_SERVICE_ENTRIES})"
        ));
    }
    for (id, service) in &op.services {
        if id.len() > MAX_ID_LENGTH {
            return invalid(format!("Service id too long (max {MAX_ID_LENGTH}): {id}"));
        }
        if service.kind.len() > MAX_SERVICE_TYPE_LENGTH {
            return invalid(format!(
                "Service type too long (max {MAX_SERVICE_TYPE_LENGTH})"
            ));
        }
        if service.endpoint.len() > MAX_SERVICE_ENDPOINT_LENGTH {
            return invalid(format!(
                "Service endpoint too long (max {MAX_SERVICE_ENDPOINT_LENGTH})"
            ));
        }
    }
    if op.verification_methods.len() > MAX_VERIFICATION_METHOD_ENTRIES {
        return invalid(format!(
            "Too many Verification Method entries (max {MAX_VERIFICATION_METHOD_ENTRIES})"
        ));
    }
    for (id, key) in &op.verification_methods {
        if id.len() > MAX_ID_LENGTH {
            return invalid(format!(
                "Verification Method id too long (max {MAX_ID_LENGTH}): {id}"
            ));
        }
        if key.len() > MAX_DID_KEY_LENGTH {
            return invalid(format!(
                "Verification Method key too long (max {MAX_DID_KEY_LENGTH}): {key}"
            ));
        }
        // Only did:key syntax (multibase base58btc): any key type may be published.
        let valid = key
            .strip_prefix("did:key:z")
            .is_some_and(|rest| multibase::decode(format!("z{rest}")).is_ok());
        if !valid {
            return invalid(format!("Invalid verificationMethod key: {key}"));
        }
    }
    Ok(())
}

/// Checks `proposed` against the DID's current (not nullified) operations, oldest first, at
/// time `now_ms` (UNIX milliseconds).
pub(crate) fn assure_valid_next_op(
    did: &str,
    ops: &[IndexedOp],
    proposed: &SignedOp,
    now_ms: i64,
) -> Result<Accepted, Error> {
    let Some(last) = ops.last() else {
        assure_valid_creation_op(did, proposed)?;
        return Ok(Accepted::default());
    };
    let prev = proposed.op.prev().ok_or_else(misordered)?;
    let index_of_prev = ops
        .iter()
        .position(|op| op.cid == prev)
        .ok_or_else(misordered)?;
    let (in_history, nullified) = ops.split_at(index_of_prev + 1);
    let prev_op = &in_history[index_of_prev];
    let prev_state = prev_op.op.op.normalize().ok_or_else(misordered)?;
    check_rotation_keys(&prev_state)?;

    let Some(first_nullified) = nullified.first() else {
        check_sig(&prev_state.rotation_keys, proposed)?;
        check_rate(ops, now_ms)?;
        return Ok(Accepted::default());
    };
    // Forking history: only a key listed before the one that signed the first operation
    // being undone may do it, and only within the recovery window.
    let disputed_signer = check_sig(&prev_state.rotation_keys, &first_nullified.op)?;
    check_sig(&prev_state.rotation_keys[..disputed_signer], proposed)?;
    if now_ms <= last.created_at_ms {
        return Err(misordered());
    }
    let lapsed = now_ms - first_nullified.created_at_ms;
    if lapsed > RECOVERY_WINDOW_MS {
        return Err(Error::Invalid(format!(
            "Recovery operation occurred outside of the allowed 72 hr recovery window. Time lapsed: {lapsed}"
        )));
    }
    Ok(Accepted {
        nullified: nullified.iter().map(|op| op.cid.clone()).collect(),
    })
}

/// A genesis: a regular operation with `prev: null`, signed by one of its own rotation keys,
/// whose hash is the DID.
fn assure_valid_creation_op(did: &str, op: &SignedOp) -> Result<(), Error> {
    let state = op.op.normalize().ok_or_else(misordered)?;
    check_rotation_keys(&state)?;
    check_sig(&state.rotation_keys, op)?;
    let expected = did_for_genesis(op)
        .map_err(|e| Error::Invalid(format!("Improperly formatted did: {e}")))?;
    if expected.as_str() != did {
        return Err(Error::Invalid(format!(
            "Hash of genesis operation does not match DID identifier: {expected}"
        )));
    }
    if op.op.prev().is_some() {
        return Err(Error::Invalid(format!(
            "Improperly formatted operation, expected null prev on create: {}",
            op_json(op)
        )));
    }
    Ok(())
}

fn check_rotation_keys(state: &PlcOp) -> Result<(), Error> {
    let count = state.rotation_keys.len();
    if count > MAX_ROTATION_KEYS {
        return Err(Error::Invalid(format!(
            "Improperly formatted operation, too many rotation keys: {count}"
        )));
    }
    if count < 1 {
        return Err(Error::Invalid(
            "Improperly formatted operation, need at least one rotation key".into(),
        ));
    }
    for key in &state.rotation_keys {
        if let Err(e) = PublicKey::from_did_key(key) {
            return Err(Error::Invalid(format!("Unsupported key type {key}: {e}")));
        }
    }
    Ok(())
}

/// Index of the first of `keys` whose signature `op` carries. A padded signature is refused
/// as the reference does.
fn check_sig(keys: &[String], op: &SignedOp) -> Result<usize, Error> {
    if op.sig.ends_with('=') {
        return Err(invalid_sig(op));
    }
    op.verify_sig(keys).map_err(|_| invalid_sig(op))
}

fn check_rate(ops: &[IndexedOp], now_ms: i64) -> Result<(), Error> {
    for (window, limit, name) in RATE_LIMITS {
        let recent = ops
            .iter()
            .filter(|op| op.created_at_ms > now_ms - window)
            .count();
        if recent >= limit {
            return Err(Error::Invalid(format!(
                "To many operations within last {name} (max {limit})"
            )));
        }
    }
    Ok(())
}

fn invalid_sig(op: &SignedOp) -> Error {
    Error::Invalid(format!("Invalid signature on op: {}", op_json(op)))
}

fn misordered() -> Error {
    Error::Invalid("Operations not correctly ordered".into())
}

fn op_json(op: &SignedOp) -> String {
    serde_json::to_string(op).unwrap_or_default()
}
