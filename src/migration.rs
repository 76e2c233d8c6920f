//! Account migration as a service: bringing a repository in (`importRepo`). XRPC handlers
//! and the admin CLI's import share it.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::accounts::{AccountRef, EmailTokenPurpose};
use crate::actor::{ImportError, ImportReport};
use crate::crypto::PublicKey;
use crate::identity::plc::{self as plc_op, SignedOp, UnsignedOp};
use crate::identity::resolver::ResolveError;
use crate::repo::car::Limits;
use crate::server::AppState;
use crate::syntax::{Did, Handle};

/// What `signPlcOperation` may replace (each whole); `None` keeps the previous value.
#[derive(Debug, Clone, Default)]
pub struct PlcFields {
    pub rotation_keys: Option<Vec<String>>,
    pub also_known_as: Option<Vec<String>>,
    pub verification_methods: Option<std::collections::BTreeMap<String, String>>,
    pub services: Option<std::collections::BTreeMap<String, plc_op::Service>>,
}

/// Directory under the data directory for import bodies and staging databases.
pub const IMPORT_DIR: &str = "import-tmp";

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the CAR is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the request body did not arrive whole: {0}")]
    Body(String),
    #[error("cannot resolve the DID document: {0}")]
    Resolve(#[from] ResolveError),
    #[error("the DID document has no usable signing key")]
    NoSigningKey,
    #[error(transparent)]
    Import(Box<ImportError>),
    #[error("{0}")]
    InvalidOperation(String),
    #[error(transparent)]
    Plc(#[from] crate::identity::plc::PlcError),
    #[error("cannot build the operation: {0}")]
    Op(#[from] crate::identity::plc::OpError),
    #[error(transparent)]
    Account(#[from] crate::account_service::Error),
    #[error(transparent)]
    Accounts(#[from] crate::accounts::Error),
    /// The service token of a migrating account is missing or does not verify.
    #[error("{0}")]
    AuthRequired(String),
    #[error("import file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<ImportError> for Error {
    fn from(e: ImportError) -> Self {
        Error::Import(Box::new(e))
    }
}

/// The body file, deleted when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The migration flows over one server's services. Cheap: a borrowed view of the state.
#[derive(Clone, Copy)]
pub struct MigrationService<'a> {
    state: &'a AppState,
}

impl AppState {
    pub fn migration(&self) -> MigrationService<'_> {
        MigrationService { state: self }
    }
}

/// The method a migrating account's service token must be bound to.
pub const CREATE_ACCOUNT_LXM: &str = "com.atproto.server.createAccount";

impl MigrationService<'_> {
    /// Checks the service token that lets `createAccount` take an existing `did`: issued by
    /// `did`, signed with the signing key of its DID document, for this server's service DID
    /// (`aud`) and bound to `com.atproto.server.createAccount` (`lxm`).
    pub async fn verify_create_account_auth(
        &self,
        token: Option<&str>,
        did: &Did,
    ) -> Result<(), Error> {
        let token = token.ok_or_else(|| {
            Error::AuthRequired(format!("Missing auth to create account with did: {did}"))
        })?;
        let doc = self.state.resolver().resolve_did_fresh(did).await?;
        let key = doc.signing_key().map_err(|_| Error::NoSigningKey)?;
        let claims = crate::auth::service::verify_service_jwt(
            token,
            &key,
            &self.state.config().service_did,
            Some(CREATE_ACCOUNT_LXM),
            chrono::Utc::now().timestamp(),
        )
        .map_err(|e| Error::AuthRequired(format!("Invalid service token: {e}")))?;
        if claims.issuer_did() != did.as_str() {
            return Err(Error::AuthRequired(format!(
                "Missing auth to create account with did: {did}"
            )));
        }
        Ok(())
    }

    /// Whether a DID document's `atproto_pds` endpoint is this server's public URL.
    fn is_this_server(&self, endpoint: Option<&str>) -> bool {
        endpoint.map(|e| e.trim_end_matches('/'))
            == Some(self.state.config().public_url.trim_end_matches('/'))
    }

    /// The `did:key` of the repository signing key this server holds for `did`.
    async fn held_signing_key(&self, did: &Did) -> Result<String, Error> {
        let actor = self
            .state
            .repo()
            .stores()
            .open(did)
            .await
            .map_err(crate::account_service::Error::from)?
            .ok_or_else(|| Error::InvalidOperation(format!("Could not find repo: {did}")))?;
        Ok(actor.keypair().public_key().to_did_key())
    }

    fn import_dir(&self) -> PathBuf {
        self.state.config().data_directory.join(IMPORT_DIR)
    }

    fn require_plc(did: &Did) -> Result<(), Error> {
        if did.method() == "plc" {
            Ok(())
        } else {
            Err(Error::InvalidOperation(format!(
                "{did} is not a did:plc: its document is not changed through this server"
            )))
        }
    }

    /// `com.atproto.identity.signPlcOperation`: spends the mailed `plc_operation` token and
    /// signs, with this server's rotation key, an update of the DID's last operation with
    /// `fields` replaced (rotation keys not given are kept). Nothing is sent.
    pub async fn sign_plc_operation(
        &self,
        did: &Did,
        token: &str,
        fields: PlcFields,
    ) -> Result<SignedOp, Error> {
        Self::require_plc(did)?;
        self.state
            .accounts()
            .assert_valid_email_token(
                did.as_str(),
                EmailTokenPurpose::PlcOperation,
                token.trim(),
                chrono::Utc::now().timestamp(),
            )
            .await?;
        let last = self.state.resolver().plc().get_last_op(did).await?;
        if matches!(last.op, UnsignedOp::Tombstone(_)) {
            return Err(Error::InvalidOperation("Did is tombstoned".into()));
        }
        Ok(plc_op::replace_op(
            &last,
            fields.rotation_keys,
            fields.also_known_as,
            fields.verification_methods,
            fields.services,
            self.state.plc_rotation_key(),
        )?)
    }

    /// `com.atproto.identity.submitPlcOperation`: sends `op` to the PLC directory only if it
    /// points the DID at this server (this server's rotation key kept, `atproto_pds` this
    /// server's URL, `atproto` the signing key this server holds for the account, the
    /// account's handle first in `alsoKnownAs`), then announces `#identity`.
    pub async fn submit_plc_operation(&self, did: &Did, op: &SignedOp) -> Result<(), Error> {
        Self::require_plc(did)?;
        let UnsignedOp::Plc(fields) = &op.op else {
            return Err(Error::InvalidOperation("Invalid operation".into()));
        };
        let ours = self.state.plc_rotation_key().public_key().to_did_key();
        if !fields.rotation_keys.contains(&ours) {
            return Err(Error::InvalidOperation(
                "Rotation keys do not include server's rotation key".into(),
            ));
        }
        let pds = fields.services.get("atproto_pds");
        if pds.map(|s| s.kind.as_str()) != Some("AtprotoPersonalDataServer") {
            return Err(Error::InvalidOperation(
                "Incorrect type on atproto_pds service".into(),
            ));
        }
        if !self.is_this_server(pds.map(|s| s.endpoint.as_str())) {
            return Err(Error::InvalidOperation(
                "Incorrect endpoint on atproto_pds service".into(),
            ));
        }
        let signing = self.held_signing_key(did).await?;
        if fields.verification_methods.get("atproto") != Some(&signing) {
            return Err(Error::InvalidOperation("Incorrect signing key".into()));
        }
        let account = self
            .state
            .accounts()
            .get_account(AccountRef::Did(did.as_str()))
            .await?
            .ok_or(crate::accounts::Error::AccountNotFound)?;
        let handle: Option<Handle> = account.handle.as_deref().and_then(|h| h.parse().ok());
        if let Some(handle) = &handle
            && fields.also_known_as.first() != Some(&format!("at://{handle}"))
        {
            return Err(Error::InvalidOperation(
                "Incorrect handle in alsoKnownAs".into(),
            ));
        }
        self.state.resolver().plc().submit(did, op).await?;
        self.state
            .repo()
            .sequence_identity(did, handle.as_ref())
            .await
            .map_err(crate::account_service::Error::from)?;
        if let Err(err) = self.state.resolver().resolve_did_fresh(did).await {
            tracing::warn!(%did, error = %err, "re-reading the DID document after a PLC update failed");
        }
        Ok(())
    }

    /// Checks that `did`'s document points at this server, as activation requires: for a
    /// did:plc (read from the directory) this server's rotation key among the rotation keys;
    /// the `atproto_pds` endpoint this server's URL; the `atproto` key the one this server
    /// holds for the account.
    pub async fn check_did_points_here(&self, did: &Did) -> Result<(), Error> {
        let (endpoint, signing, rotation) = if did.method() == "plc" {
            let data = self.state.resolver().plc().get_data(did).await?;
            let endpoint = data.services.get("atproto_pds").map(|s| s.endpoint.clone());
            let signing = data.verification_methods.get("atproto").cloned();
            (endpoint, signing, Some(data.rotation_keys))
        } else {
            let doc = self.state.resolver().resolve_did_fresh(did).await?;
            let endpoint = doc.pds_endpoint().map(str::to_owned);
            let signing = doc.signing_key().ok().map(|k| k.to_did_key());
            (endpoint, signing, None)
        };
        let ours = self.state.plc_rotation_key().public_key().to_did_key();
        if rotation.is_some_and(|keys| !keys.contains(&ours)) {
            return Err(Error::InvalidOperation(
                "Server rotation key not included in PLC DID data".into(),
            ));
        }
        if !self.is_this_server(endpoint.as_deref()) {
            return Err(Error::InvalidOperation(
                "DID document atproto_pds service endpoint does not match PDS public url".into(),
            ));
        }
        if signing.as_deref() != Some(self.held_signing_key(did).await?.as_str()) {
            return Err(Error::InvalidOperation(
                "DID document verification method does not match expected signing key".into(),
            ));
        }
        Ok(())
    }

    /// `com.atproto.server.activateAccount`: once the DID document points here
    /// ([`Self::check_did_points_here`]), re-signs an imported head with the account's key
    /// ([`crate::actor::ActorRepo::resign_head`]), reactivates the account and announces, in
    /// the reference's order, `#account` (active), `#identity` and `#sync` (whose new events
    /// also prompt the crawl requests to `PDS_CRAWLERS`).
    pub async fn activate_account(&self, did: &Did) -> Result<(), Error> {
        let account = self
            .state
            .accounts()
            .get_account(AccountRef::Did(did.as_str()))
            .await?
            .ok_or(crate::accounts::Error::AccountNotFound)?;
        self.check_did_points_here(did).await?;
        let repo = self.state.repo();
        let actor = |e: crate::actor::Error| Error::from(crate::account_service::Error::from(e));
        repo.resign_head(did).await.map_err(actor)?;
        self.state.accounts().activate(did.as_str()).await?;
        let handle: Option<Handle> = account.handle.as_deref().and_then(|h| h.parse().ok());
        repo.sequence_account(did, true, None)
            .await
            .map_err(actor)?;
        repo.sequence_identity(did, handle.as_ref())
            .await
            .map_err(actor)?;
        repo.sequence_sync(did).await.map_err(actor)?;
        Ok(())
    }

    /// `com.atproto.repo.importRepo`: streams `body` (a CAR of at most the configured
    /// limit) to a temporary file, then replaces `did`'s repository with it, the commit
    /// checked against the signing key of the DID document as it is now.
    pub async fn import_repo<S, E>(&self, did: &Did, body: S) -> Result<ImportReport, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let limit = self.state.config().import_repo_limit;
        let dir = self.import_dir();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
        let name = format!("{}.car", crate::syntax::TidClock::default().next());
        let file = TempFile(dir.join(name));
        let mut out = tokio::fs::File::create(&file.0)
            .await
            .map_err(io(&file.0))?;
        let mut written = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::Body(e.to_string()))?;
            written += chunk.len() as u64;
            if written > limit {
                return Err(Error::TooLarge { limit });
            }
            out.write_all(&chunk).await.map_err(io(&file.0))?;
        }
        out.flush().await.map_err(io(&file.0))?;
        drop(out);
        self.import_file(did, &file.0).await
    }

    /// Imports the CAR file at `path` into `did`'s repository (see [`Self::import_repo`]).
    pub async fn import_file(&self, did: &Did, path: &Path) -> Result<ImportReport, Error> {
        let keys = self.repo_keys(did).await?;
        let limits = Limits {
            max_total_len: Some(self.state.config().import_repo_limit),
            ..Limits::default()
        };
        Ok(self
            .state
            .repo()
            .import_repo(did, path, &keys, &self.import_dir(), limits)
            .await?)
    }

    /// The keys an imported repository's commit may be signed with: the DID document's
    /// signing key and, for did:plc, every `atproto` key of its operation log. So a CAR
    /// exported from the old host still imports after the PLC operation that names this
    /// server's key (a retried or resumed migration), as with the reference, which does not
    /// check the signature at all.
    async fn repo_keys(&self, did: &Did) -> Result<Vec<PublicKey>, Error> {
        let doc = self.state.resolver().resolve_did_fresh(did).await?;
        let mut keys = vec![doc.signing_key().map_err(|_| Error::NoSigningKey)?];
        if did.as_str().starts_with("did:plc:") {
            let log = self.state.resolver().plc().get_log(did).await?;
            for op in log {
                let key = match &op.op {
                    UnsignedOp::Plc(fields) => fields.signing_key(),
                    UnsignedOp::LegacyCreate(create) => Some(create.signing_key.as_str()),
                    UnsignedOp::Tombstone(_) => None,
                };
                if let Some(Ok(key)) = key.map(PublicKey::from_did_key)
                    && !keys.contains(&key)
                {
                    keys.push(key);
                }
            }
        }
        Ok(keys)
    }
}
