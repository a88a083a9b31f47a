//! Tokens shared by workers that share no disk (issue 28): each source's tokens kept as one
//! object in a token store (`token_store`, an object-store prefix apart from the warehouse),
//! refreshed under a lease. Webex may rotate the refresh token on every refresh and revoke
//! the used one, so two workers refreshing at once would leave one with a dead token: a
//! worker takes the source's refresh lease, re-reads the tokens (a peer may have refreshed
//! meanwhile), and only then refreshes and writes them back; a worker that finds the lease
//! held keeps using its still-valid access token, or waits for the peer's new one.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::sink::lease::{Lease, LeaseBody, LeaseError};
use crate::sink::versioned::{self, VersionedError};
use crate::sink::{StoreError, Warehouse};
use crate::state::{State, StoredToken};

/// Why a source's tokens could not be copied from the token store into a worker's state.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The token store could not be read.
    #[error(transparent)]
    Store(#[from] VersionedError),
    /// The state could not be written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// How long a refresh may hold the lease: one token request, with its retries.
const REFRESH_TTL: chrono::Duration = chrono::Duration::minutes(1);

/// The token store: where each source's tokens live, and its refresh leases.
#[derive(Clone)]
pub struct SharedTokens {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

impl std::fmt::Debug for SharedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokens")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A source's tokens as the store keeps them.
#[derive(Serialize, Deserialize)]
struct TokenDoc {
    /// When it was written: with `access_expires_at`, the access token's lifetime.
    saved_at: DateTime<Utc>,
    config_fingerprint: String,
    refresh_token: String,
    access_token: Option<String>,
    access_expires_at: Option<DateTime<Utc>>,
    refresh_expires_at: Option<DateTime<Utc>>,
}

impl SharedTokens {
    /// The token store at `url` (an object store: S3, GCS, Azure), with `options`.
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Self, StoreError> {
        let wh = Warehouse::open(url, options)?;
        Ok(SharedTokens {
            store: wh.store().clone(),
            prefix: wh.path(&[]),
            url: wh.url().to_string(),
        })
    }

    /// Its URL (no secret in it).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, source: &str, suffix: &str) -> Path {
        self.prefix.clone().join(format!("{source}{suffix}"))
    }

    /// The source's tokens, if the store has them, and when they were written.
    pub async fn load(
        &self,
        source: &str,
    ) -> Result<Option<(StoredToken, DateTime<Utc>)>, VersionedError> {
        let doc =
            versioned::read::<TokenDoc>(self.store.as_ref(), &self.path(source, ".json")).await?;
        Ok(doc.map(|(d, _)| {
            let t = StoredToken {
                config_fingerprint: d.config_fingerprint,
                refresh_token: Secret::new(d.refresh_token),
                access_token: d.access_token.map(Secret::new),
                access_expires_at: d.access_expires_at,
                refresh_expires_at: d.refresh_expires_at,
            };
            (t, d.saved_at)
        }))
    }

    /// Writes the source's tokens (under its refresh lease).
    pub async fn save(&self, source: &str, t: &StoredToken) -> Result<(), VersionedError> {
        let path = self.path(source, ".json");
        let doc = TokenDoc {
            saved_at: Utc::now(),
            config_fingerprint: t.config_fingerprint.clone(),
            refresh_token: t.refresh_token.expose().to_string(),
            access_token: t.access_token.as_ref().map(|s| s.expose().to_string()),
            access_expires_at: t.access_expires_at,
            refresh_expires_at: t.refresh_expires_at,
        };
        let bytes = serde_json::to_vec(&doc).map_err(|e| VersionedError::Corrupt {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|source| VersionedError::Store {
                path: path.to_string(),
                source,
            })
    }

    /// Copies the source's tokens from the store into `local` (a worker's state), so what
    /// reads tokens there (`ccetl auth status`, `ccetl check`) sees the newest ones; whether
    /// the store had any.
    pub async fn pull(&self, source: &str, local: &State) -> Result<bool, PullError> {
        match self.load(source).await? {
            Some((t, _)) => {
                local.save_token(source, &t)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The source's refresh lease, or `None` while a peer holds it (a peer killed on this
    /// host does not hold it).
    pub async fn lock(&self, source: &str) -> Result<Option<Lease>, LeaseError> {
        let path = self.path(source, ".refresh-lease.json");
        let me = LeaseBody::for_this_process();
        let now = Utc::now();
        let gone = LeaseBody::holder_is_gone;
        match Lease::acquire_as(self.store.as_ref(), &path, me, REFRESH_TTL, now, gone).await {
            Ok(lease) => Ok(Some(lease)),
            Err(LeaseError::Held { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Gives a refresh lease back.
    pub async fn unlock(&self, lease: Lease) -> Result<(), LeaseError> {
        lease.release(self.store.as_ref()).await
    }
}
