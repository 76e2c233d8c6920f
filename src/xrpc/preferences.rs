//! `app.bsky.actor.getPreferences` / `putPreferences`, stored by this PDS in the account's
//! actor store (`account_pref`), as the reference PDS does.
//!
//! Only `app.bsky.*` preferences are kept. `putPreferences` replaces every stored
//! preference of that namespace the caller may see; `personalDetailsPref` needs a
//! full-access (main password) session to be read or written, and an app-password session
//! neither sees nor replaces it.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::auth::AccessScope;
use crate::error::XrpcError;
use crate::repo::cbor::json_to_value;
use crate::server::AppState;
use crate::store::prefs;
use crate::store::sqlite::begin_write;
use crate::syntax::Nsid;
use crate::xrpc::auth::{AccessAllowDeactivated, Caller};
use crate::xrpc::extract::XrpcJson;

/// The namespace of the preferences this server stores.
pub const NAMESPACE: &str = "app.bsky";
/// Preferences that only a full-access session may read or write.
pub const FULL_ACCESS_ONLY: &[&str] = &["app.bsky.actor.defs#personalDetailsPref"];

const GET_METHOD: &str = "app.bsky.actor.getPreferences";
const PUT_METHOD: &str = "app.bsky.actor.putPreferences";

/// The preference routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xrpc/app.bsky.actor.getPreferences", get(get_preferences))
        .route("/xrpc/app.bsky.actor.putPreferences", post(put_preferences))
}

/// Whether a preference `$type` is in the [`NAMESPACE`].
fn in_namespace(name: &str) -> bool {
    name == NAMESPACE
        || name
            .strip_prefix(NAMESPACE)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Refuses an OAuth caller without an `rpc:` permission for `lxm` on the AppView these
/// preferences stand in for (the reference checks the same, as if the call were proxied).
fn require_preferences_rpc(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    lxm: &str,
) -> Result<(), XrpcError> {
    if caller.oauth.is_none() {
        return Ok(());
    }
    let nsid: Nsid = lxm
        .parse()
        .map_err(|e| XrpcError::internal(format!("{lxm}: {e}")))?;
    let aud = state.proxy().permission_audience(headers, &nsid);
    caller.require_rpc(lxm, aud.as_deref().unwrap_or(""))
}

/// Whether a session of `scope` may read or write the preference `name`.
fn allowed(scope: AccessScope, name: &str) -> bool {
    scope.is_full() || !FULL_ACCESS_ONLY.contains(&name)
}

/// `GET app.bsky.actor.getPreferences` (deactivated accounts too: a migrating account
/// brings its preferences before it is activated, as the reference allows)
async fn get_preferences(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
    headers: HeaderMap,
) -> Result<Json<Value>, XrpcError> {
    require_preferences_rpc(&state, &caller, &headers, GET_METHOD)?;
    let handle = state
        .repo()
        .stores()
        .open(&caller.did)
        .await?
        .ok_or_else(|| XrpcError::invalid_request("Could not find repo"))?;
    let rows = {
        let mut conn = handle.pool().acquire().await.map_err(XrpcError::internal)?;
        prefs::list(&mut conn).await.map_err(XrpcError::internal)?
    };
    let mut preferences = Vec::with_capacity(rows.len());
    for row in rows {
        if !in_namespace(&row.name) || !allowed(caller.scope, &row.name) {
            continue;
        }
        let value: Value = serde_json::from_str(&row.value_json).map_err(XrpcError::internal)?;
        preferences.push(value);
    }
    Ok(Json(json!({ "preferences": preferences })))
}

/// `POST app.bsky.actor.putPreferences`
async fn put_preferences(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
    headers: HeaderMap,
    XrpcJson(body): XrpcJson<Value>,
) -> Result<Json<Value>, XrpcError> {
    require_preferences_rpc(&state, &caller, &headers, PUT_METHOD)?;
    let method: Nsid = PUT_METHOD
        .parse()
        .map_err(|e| XrpcError::internal(format!("{PUT_METHOD}: {e}")))?;
    let value = json_to_value(&body).map_err(|e| XrpcError::invalid_request(e.to_string()))?;
    state
        .catalog()
        .validate_input(&method, &value)
        .map_err(|e| XrpcError::invalid_request(e.to_string()))?;
    let list = body
        .get("preferences")
        .and_then(Value::as_array)
        .ok_or_else(|| XrpcError::invalid_request("Input/preferences must be an array"))?;
    let mut checked = Vec::with_capacity(list.len());
    for pref in list {
        let Some(name) = pref.get("$type").and_then(Value::as_str) else {
            return Err(XrpcError::invalid_request("Preference is missing a $type"));
        };
        checked.push((name.to_owned(), pref.to_string()));
    }
    if !checked.iter().all(|(name, _)| in_namespace(name)) {
        return Err(XrpcError::invalid_request(format!(
            "Some preferences are not in the {NAMESPACE} namespace"
        )));
    }
    if let Some((name, _)) = checked.iter().find(|(n, _)| !allowed(caller.scope, n)) {
        return Err(XrpcError::invalid_request(format!(
            "Do not have authorization to set preferences: {name}"
        )));
    }
    let handle = state
        .repo()
        .stores()
        .open(&caller.did)
        .await?
        .ok_or_else(|| XrpcError::invalid_request("Could not find repo"))?;
    let mut tx = begin_write(handle.pool())
        .await
        .map_err(XrpcError::internal)?;
    let replaced: Vec<i64> = prefs::list(&mut tx)
        .await
        .map_err(XrpcError::internal)?
        .into_iter()
        .filter(|p| in_namespace(&p.name) && allowed(caller.scope, &p.name))
        .map(|p| p.id)
        .collect();
    prefs::delete(&mut tx, &replaced)
        .await
        .map_err(XrpcError::internal)?;
    for (name, json) in &checked {
        prefs::insert(&mut tx, name, json)
            .await
            .map_err(XrpcError::internal)?;
    }
    tx.commit().await.map_err(XrpcError::internal)?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_and_scope_rules() {
        assert!(in_namespace("app.bsky.actor.defs#adultContentPref"));
        assert!(in_namespace("app.bsky"));
        assert!(!in_namespace("app.bskyx.pref"));
        assert!(!in_namespace("com.example.pref"));
        let personal = "app.bsky.actor.defs#personalDetailsPref";
        assert!(allowed(AccessScope::Access, personal));
        assert!(!allowed(AccessScope::AppPass, personal));
        assert!(allowed(
            AccessScope::AppPass,
            "app.bsky.actor.defs#savedFeedsPref"
        ));
    }
}
