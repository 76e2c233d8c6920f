//! Handle and signing-key changes: the account database, the DID document (for a did:plc,
//! an operation signed with this server's rotation key), the resolver's caches and the
//! firehose's `#identity`, in that order.

use super::{AccountService, Error, rules};
use crate::accounts::{self, AccountRef};
use crate::identity::plc::{self, PlcChanges};
use crate::syntax::{Did, Handle};

impl AccountService<'_> {
    /// The handle of a new account: under one of the service domains (see
    /// [`rules::new_account_handle`]), or, for an account moving here with its `did`, a
    /// handle of its own domain that already resolves to that DID, as the reference allows.
    pub async fn new_account_handle(
        &self,
        input: &str,
        did: Option<&Did>,
    ) -> Result<Handle, Error> {
        let domains = &self.state.config().service_handle_domains;
        let handle = rules::normalize_handle(input)?;
        match (rules::service_domain(&handle, domains), did) {
            (Some(_), _) | (None, None) => rules::new_account_handle(input, domains),
            (None, Some(did)) => {
                let resolved = self.state.resolver().resolve_handle(&handle).await.ok();
                if resolved.as_ref() != Some(did) {
                    return Err(Error::InvalidHandle(
                        "External handle did not resolve to DID".into(),
                    ));
                }
                Ok(handle)
            }
        }
    }

    /// Gives `did` the handle `input`, as `identity.updateHandle` and (with `allow_reserved`,
    /// which allows reserved names under the service domains) `admin.updateAccountHandle`
    /// do. A handle outside the service domains must resolve to `did`. Giving an account
    /// the handle it has only announces it again, as the reference does.
    pub async fn change_handle(
        &self,
        did: &Did,
        input: &str,
        allow_reserved: bool,
    ) -> Result<Handle, Error> {
        let handle = rules::normalize_handle(input)?;
        let state = self.state;
        match rules::service_domain(&handle, &state.config().service_handle_domains) {
            Some(domain) => rules::check_service_handle(&handle, domain, allow_reserved)?,
            None => {
                let resolved = state.resolver().resolve_handle(&handle).await.ok();
                if resolved.as_ref() != Some(did) {
                    return Err(Error::Refused(
                        "External handle did not resolve to DID".into(),
                    ));
                }
            }
        }
        let taken =
            || Error::HandleNotAvailable(format!("Handle already taken: {}", handle.as_str()));
        let holder = self
            .db()
            .get_account(AccountRef::Handle(handle.as_str()))
            .await?;
        let previous = self
            .db()
            .get_account(AccountRef::Did(did.as_str()))
            .await?
            .ok_or_else(|| Error::Refused("Account not found".into()))?
            .handle;
        match holder {
            Some(account) if account.did != did.as_str() => return Err(taken()),
            Some(_) => {}
            None => {
                if did.method() == "plc" {
                    self.update_plc(
                        did,
                        PlcChanges {
                            handle: Some(handle.clone()),
                            ..PlcChanges::default()
                        },
                    )
                    .await?;
                } else {
                    let configured = state
                        .resolver()
                        .resolve_did(did)
                        .await
                        .is_ok_and(|doc| doc.handle().as_ref() == Some(&handle));
                    if !configured {
                        return Err(Error::Refused(
                            "DID is not properly configured for handle".into(),
                        ));
                    }
                }
                self.db()
                    .update_handle(did.as_str(), &handle)
                    .await
                    .map_err(|e| match e {
                        accounts::Error::HandleTaken => taken(),
                        other => other.into(),
                    })?;
            }
        }
        let resolver = state.resolver();
        resolver.purge_did(did);
        resolver.purge_handle(&handle);
        if let Some(old) = previous.and_then(|h| h.parse::<Handle>().ok()) {
            resolver.purge_handle(&old);
        }
        self.announce_identity(did, Some(&handle)).await;
        Ok(handle)
    }

    /// Replaces the `atproto` signing key in `did`'s PLC document
    /// (`admin.updateAccountSigningKey`) and announces the identity change.
    pub async fn update_signing_key(&self, did: &Did, signing_key: &str) -> Result<(), Error> {
        if did.method() != "plc" {
            return Err(Error::Refused(
                "Only did:plc documents can be updated by this server".into(),
            ));
        }
        self.account(did.as_str()).await?;
        self.update_plc(
            did,
            PlcChanges {
                signing_key: Some(signing_key.to_owned()),
                ..PlcChanges::default()
            },
        )
        .await?;
        let handle = self.handle_of(did.as_str()).await?;
        self.announce_identity(did, handle.as_ref()).await;
        Ok(())
    }

    /// Submits a PLC operation making `changes`, chained on the directory's last operation
    /// and signed with the server's rotation key, and forgets the cached document.
    async fn update_plc(&self, did: &Did, changes: PlcChanges) -> Result<(), Error> {
        let directory = self.state.resolver().plc();
        let last = directory.get_last_op(did).await?;
        let op = plc::update_op(&last, &changes, self.state.plc_rotation_key()).map_err(
            |e| match e {
                plc::OpError::SignerNotRotationKey => Error::Refused(
                    "This server's rotation key cannot update this DID's PLC document".into(),
                ),
                other => Error::PlcUpdate(other),
            },
        )?;
        directory.submit(did, &op).await?;
        self.state.resolver().purge_did(did);
        Ok(())
    }

    /// Sequences `#identity`; a failure is logged, not returned: the change itself is made.
    async fn announce_identity(&self, did: &Did, handle: Option<&Handle>) {
        if let Err(err) = self.state.repo().sequence_identity(did, handle).await {
            tracing::error!(did = did.as_str(), %err, "failed to sequence an identity change");
        }
    }
}
