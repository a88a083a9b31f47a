//! OAuth2 refresh-token grant for Webex, with a token cache behind one lock.
//!
//! The cache refreshes early (a buffer of half the token's life, at most five minutes), and
//! only once however many requests ask at the same time: they queue on the lock and find the
//! fresh token. Webex may rotate the refresh token on every refresh, so the new one is
//! persisted to the state DB *before* the access token is handed out; a crash right after a
//! refresh can then never strand us with a refresh token that only existed in memory.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::shared::SharedTokens;
use crate::http::{HttpClient, HttpError};
use crate::secret::Secret;
pub use crate::state::StoredToken;
use crate::state::{State, StateError};

/// A credential problem. Exit code 3 when the server said no.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token endpoint refused the client or the refresh token.
    #[error("the token endpoint rejected the credentials (HTTP {status}: {message}); {fix}")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    Rejected {
        source_name: String,
        status: u16,
        message: String,
        fix: &'static str,
    },
    /// The token endpoint could not be reached.
    #[error("token refresh failed: {source}")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    Http {
        source_name: String,
        source: HttpError,
    },
    /// The token endpoint answered something else than tokens.
    #[error("token response is not valid JSON: {message}")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    BadResponse {
        source_name: String,
        message: String,
    },
    /// A rotated refresh token could not be stored: the next run would hold a dead one.
    #[error("cannot persist the rotated refresh token: {source}")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    Persist {
        source_name: String,
        source: Box<StateError>,
    },
    /// No refresh token anywhere.
    #[error("no refresh token: run `ccetl auth login PIPELINE.toml --source {source_name}` (Integration) or `ccetl auth import PIPELINE.toml --source {source_name}` (Service App), or set refresh_token")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    NotAuthorized { source_name: String },
    /// The shared token store could not be read or written, or a peer held its refresh
    /// lease too long.
    #[error("token store: {message}")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    SharedStore {
        source_name: String,
        message: String,
    },
    /// The refresh token expired or was revoked.
    #[error("{advice}")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    RenewalNeeded { source_name: String, advice: String },
    /// A scope is missing.
    #[error("{endpoint}: HTTP 403 ({message}): the token is valid but not allowed here; {endpoint} needs the {scope} scope: list it in the source's `scopes` if set, then log in again (`ccetl auth login`) as a user with access to the org")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    Forbidden {
        source_name: String,
        endpoint: String,
        message: String,
        /// The scope the endpoint needs (spec).
        scope: &'static str,
    },
    /// A fresh token still gets 401.
    #[error("the API still answers 401 with a freshly refreshed token ({endpoint}); check that the integration has the cjp:config_read scope and access to the org")]
    #[allow(missing_docs)] // `source_name` is the source; the message names the rest
    StillUnauthorized {
        source_name: String,
        endpoint: String,
    },
}

impl AuthError {
    /// A rejection is `Auth`; a refresh that failed on the way is its transport's kind.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            e if e.is_rejection() => ErrorKind::Auth,
            AuthError::Http { source, .. } => source.kind(),
            AuthError::BadResponse { .. } => ErrorKind::Data,
            _ => ErrorKind::Other,
        }
    }

    /// The server (or the absence of any credential) said no: exit code 3.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            AuthError::Rejected { .. }
                | AuthError::StillUnauthorized { .. }
                | AuthError::NotAuthorized { .. }
                | AuthError::RenewalNeeded { .. }
                | AuthError::Forbidden { .. }
        )
    }
}

/// Where rotated tokens are persisted (the state DB in production).
pub trait TokenStore: Send + Sync {
    /// The source's tokens, if any were stored.
    fn load(&self, source: &str) -> Result<Option<StoredToken>, StateError>;
    /// Stores the source's tokens, replacing earlier ones.
    fn save(&self, source: &str, token: &StoredToken) -> Result<(), StateError>;
    /// The token store workers share (`token_store`), when the pipeline has one: it then
    /// holds the newest tokens, and refreshes go through its lease.
    fn shared(&self) -> Option<SharedTokens> {
        None
    }
}

/// The state file alone: what `ccetl auth login` and `import` write to.
impl TokenStore for State {
    fn load(&self, source: &str) -> Result<Option<StoredToken>, StateError> {
        self.load_token(source)
    }

    fn save(&self, source: &str, token: &StoredToken) -> Result<(), StateError> {
        self.save_token(source, token)
    }
}

/// A source's tokens where the pipeline keeps them: its state file, and the store workers
/// share when the pipeline has one (`token_store`).
#[derive(Debug, Clone)]
pub struct Tokens {
    local: Arc<State>,
    shared: Option<SharedTokens>,
}

impl Tokens {
    /// The tokens in `local`, kept in `shared` too when there is one.
    pub fn new(local: Arc<State>, shared: Option<SharedTokens>) -> Self {
        Tokens { local, shared }
    }
}

impl TokenStore for Tokens {
    fn load(&self, source: &str) -> Result<Option<StoredToken>, StateError> {
        self.local.load_token(source)
    }

    fn save(&self, source: &str, token: &StoredToken) -> Result<(), StateError> {
        self.local.save_token(source, token)
    }

    fn shared(&self) -> Option<SharedTokens> {
        self.shared.clone()
    }
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
    refresh_token: Option<String>,
    refresh_token_expires_in: Option<i64>,
}

#[derive(Debug, Clone)]
struct Cached {
    access: Secret,
    expires_at: DateTime<Utc>,
    lifetime: Duration,
}

impl Cached {
    fn fresh(&self, now: DateTime<Utc>) -> bool {
        let buffer = (self.lifetime / 2).min(Duration::from_secs(300));
        let left = (self.expires_at - now).to_std().unwrap_or(Duration::ZERO);
        left > buffer
    }
}

struct Inner {
    cached: Option<Cached>,
    refresh_token: Secret,
    refresh_expires_at: Option<DateTime<Utc>>,
}

/// Hands out access tokens for one source, refreshing them as needed.
pub struct OAuthTokens {
    source: String,
    http: HttpClient,
    token_url: url::Url,
    client_id: Secret,
    client_secret: Secret,
    fingerprint: String,
    store: Arc<dyn TokenStore>,
    shared: Option<SharedTokens>,
    inner: Mutex<Inner>,
}

/// How long a worker waits for a peer's refresh before giving up.
const PEER_WAIT: Duration = Duration::from_secs(90);

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a secret, hex: tells secrets apart without keeping them.
pub fn fingerprint(secret: &Secret) -> String {
    hex::encode(Sha256::digest(secret.expose().as_bytes()))
}

/// What stored tokens are tied to: the configured refresh token, or its absence (tokens
/// from `ccetl auth login`/`import`). Configuring a different one means re-authorization.
pub fn config_fingerprint(configured: Option<&Secret>) -> String {
    configured.map_or_else(|| "unconfigured".to_string(), fingerprint)
}

/// The tokens a source would use now: stored ones tied to the current config, else none.
pub fn current_token(
    store: &dyn TokenStore,
    source: &str,
    configured: Option<&Secret>,
) -> Result<Option<StoredToken>, StateError> {
    let fp = config_fingerprint(configured);
    Ok(store.load(source)?.filter(|t| t.config_fingerprint == fp))
}

impl OAuthTokens {
    /// Loads the newest refresh token: the persisted (rotated) one unless the configured one
    /// changed since it was written.
    pub fn new(
        source: &str,
        http: HttpClient,
        token_url: url::Url,
        client_id: Secret,
        client_secret: Secret,
        configured_refresh: Option<Secret>,
        store: Arc<dyn TokenStore>,
    ) -> Result<Self, AuthError> {
        let fp = config_fingerprint(configured_refresh.as_ref());
        let stored =
            current_token(store.as_ref(), source, configured_refresh.as_ref()).map_err(|e| {
                AuthError::Persist {
                    source_name: source.to_string(),
                    source: Box::new(e),
                }
            })?;
        let (cached, refresh_token, refresh_expires_at) = match (stored, configured_refresh) {
            (Some(t), _) => {
                let cached = match (t.access_token, t.access_expires_at) {
                    (Some(access), Some(expires_at)) => Some(Cached {
                        access,
                        expires_at,
                        // Unknown original lifetime: treat what is left as the lifetime.
                        lifetime: (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                    }),
                    _ => None,
                };
                (cached, t.refresh_token, t.refresh_expires_at)
            }
            (None, Some(configured)) => (None, configured, None),
            (None, None) => {
                return Err(AuthError::NotAuthorized {
                    source_name: source.to_string(),
                })
            }
        };
        Ok(OAuthTokens {
            source: source.to_string(),
            http,
            token_url,
            client_id,
            client_secret,
            fingerprint: fp,
            shared: store.shared(),
            store,
            inner: Mutex::new(Inner {
                cached,
                refresh_token,
                refresh_expires_at,
            }),
        })
    }

    /// A valid access token, refreshed first if it is close to expiry.
    pub async fn access_token(&self) -> Result<Secret, AuthError> {
        let mut inner = self.inner.lock().await;
        if let Some(c) = &inner.cached {
            if c.fresh(Utc::now()) {
                return Ok(c.access.clone());
            }
        }
        match self.shared.clone() {
            Some(shared) => self.refresh_shared(&shared, &mut inner).await,
            None => self.refresh(&mut inner).await,
        }
    }

    /// [`Self::refresh`] across workers: a peer's fresh tokens are taken as they are; else
    /// the refresh happens under the store's lease, after a last re-read. While a peer holds
    /// the lease, a still-valid access token keeps serving.
    async fn refresh_shared(
        &self,
        shared: &SharedTokens,
        inner: &mut Inner,
    ) -> Result<Secret, AuthError> {
        let started = std::time::Instant::now();
        loop {
            if let Some(access) = self.adopt_shared(shared, inner).await? {
                return Ok(access);
            }
            let lease = shared
                .lock(&self.source)
                .await
                .map_err(|e| self.store_error(&e))?;
            if let Some(lease) = lease {
                let result = match self.adopt_shared(shared, inner).await {
                    Ok(Some(access)) => Ok(access),
                    Ok(None) => self.refresh(inner).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = shared.unlock(lease).await {
                    tracing::warn!(source = %self.source, "Refresh lease not given back (it lapses in a minute): {e}");
                }
                return result;
            }
            let soon = Utc::now() + chrono::Duration::seconds(30);
            if let Some(c) = inner.cached.as_ref().filter(|c| c.expires_at > soon) {
                return Ok(c.access.clone());
            }
            if started.elapsed() > PEER_WAIT {
                return Err(AuthError::SharedStore {
                    source_name: self.source.clone(),
                    message: format!(
                        "another worker has held the refresh lease of '{}' in {} for over {} s; if it was killed, the lease lapses within a minute: run again",
                        self.source,
                        shared.url(),
                        PEER_WAIT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Takes the store's tokens: their refresh token always (after a rotation only the
    /// newest works), their access token when fresh, which is then returned. Tokens tied to
    /// another configured refresh token are ignored: the user re-authorized.
    async fn adopt_shared(
        &self,
        shared: &SharedTokens,
        inner: &mut Inner,
    ) -> Result<Option<Secret>, AuthError> {
        let loaded = shared
            .load(&self.source)
            .await
            .map_err(|e| self.store_error(&e))?;
        let Some((t, saved_at)) = loaded.filter(|(t, _)| t.config_fingerprint == self.fingerprint)
        else {
            return Ok(None);
        };
        inner.refresh_token = t.refresh_token;
        inner.refresh_expires_at = t.refresh_expires_at;
        let (Some(access), Some(expires_at)) = (t.access_token, t.access_expires_at) else {
            return Ok(None);
        };
        let cached = Cached {
            access,
            expires_at,
            lifetime: (expires_at - saved_at).to_std().unwrap_or(Duration::ZERO),
        };
        let fresh = cached.fresh(Utc::now()).then(|| cached.access.clone());
        inner.cached = Some(cached);
        Ok(fresh)
    }

    fn store_error(&self, e: &dyn std::fmt::Display) -> AuthError {
        AuthError::SharedStore {
            source_name: self.source.clone(),
            message: e.to_string(),
        }
    }

    /// Forgets `token` after a 401, so the next call refreshes. A token that was already
    /// replaced by another task is left alone, so one 401 burst causes one refresh.
    pub async fn invalidate(&self, token: &Secret) {
        let mut inner = self.inner.lock().await;
        if inner.cached.as_ref().is_some_and(|c| &c.access == token) {
            inner.cached = None;
        }
    }

    async fn refresh(&self, inner: &mut Inner) -> Result<Secret, AuthError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.expose()),
            ("client_secret", self.client_secret.expose()),
            ("refresh_token", inner.refresh_token.expose()),
        ];
        let endpoint = format!("POST {}", crate::http::redact_url(&self.token_url));
        let result = self
            .http
            .send(&endpoint, || async {
                Ok::<_, HttpError>(self.http.reqwest().post(self.token_url.clone()).form(&form))
            })
            .await;
        let resp = match result {
            Ok(r) => r,
            Err(HttpError::Status {
                status, message, ..
            }) if status.is_client_error() => {
                let fix = if message.to_ascii_lowercase().contains("client") {
                    "check client_id and client_secret"
                } else {
                    "the refresh token is expired or revoked: re-authorize the integration (or copy a new Service App token) and set refresh_token"
                };
                return Err(AuthError::Rejected {
                    source_name: self.source.clone(),
                    status: status.as_u16(),
                    message,
                    fix,
                });
            }
            Err(source) => {
                return Err(AuthError::Http {
                    source_name: self.source.clone(),
                    source,
                })
            }
        };
        let body = resp.bytes().await.map_err(|e| AuthError::BadResponse {
            source_name: self.source.clone(),
            message: e.without_url().to_string(),
        })?;
        let tr: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| AuthError::BadResponse {
                source_name: self.source.clone(),
                message: e.to_string(),
            })?;
        let now = Utc::now();
        let lifetime = Duration::from_secs(tr.expires_in.max(1) as u64);
        let expires_at = now + chrono::Duration::seconds(tr.expires_in.max(1));
        let access = Secret::new(tr.access_token);
        let refresh_token = tr
            .refresh_token
            .map_or_else(|| inner.refresh_token.clone(), Secret::new);
        let refresh_expires_at = tr
            .refresh_token_expires_in
            .map(|s| now + chrono::Duration::seconds(s))
            .or(inner.refresh_expires_at);
        let stored = StoredToken {
            config_fingerprint: self.fingerprint.clone(),
            refresh_token: refresh_token.clone(),
            access_token: Some(access.clone()),
            access_expires_at: Some(expires_at),
            refresh_expires_at,
        };
        self.store
            .save(&self.source, &stored)
            .map_err(|e| AuthError::Persist {
                source_name: self.source.clone(),
                source: Box::new(e),
            })?;
        // Peers read the rotated refresh token from the shared store: written before the
        // access token is handed out, like the local copy.
        if let Some(shared) = &self.shared {
            shared
                .save(&self.source, &stored)
                .await
                .map_err(|e| self.store_error(&e))?;
        }
        tracing::info!(source = %self.source, expires_in_s = tr.expires_in, "Refreshed access token.");
        inner.refresh_token = refresh_token;
        inner.refresh_expires_at = refresh_expires_at;
        inner.cached = Some(Cached {
            access: access.clone(),
            expires_at,
            lifetime,
        });
        Ok(access)
    }
}

/// The org id a WxCC access token carries as its last `_`-separated part.
pub fn org_from_token(token: &Secret) -> Option<String> {
    let parts: Vec<&str> = token.expose().split('_').collect();
    (parts.len() >= 3)
        .then(|| parts[parts.len() - 1].to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_buffer() {
        let now = Utc::now();
        let c = Cached {
            access: Secret::new("a"),
            expires_at: now + chrono::Duration::seconds(100),
            lifetime: Duration::from_secs(1000),
        };
        // buffer = min(500 s, 300 s) = 300 s > 100 s left.
        assert!(!c.fresh(now));
        let c = Cached {
            lifetime: Duration::from_secs(100),
            expires_at: now + chrono::Duration::seconds(60),
            ..c
        };
        assert!(c.fresh(now));
    }

    #[test]
    fn org_id_from_token() {
        assert_eq!(
            org_from_token(&Secret::new("abc_P0A1_0b6f-org")).as_deref(),
            Some("0b6f-org")
        );
        assert_eq!(org_from_token(&Secret::new("plain")), None);
    }
}
