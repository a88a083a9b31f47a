//! A source's OAuth tokens in the state file (0600): what a refresh rotated, or a login or
//! an import stored. Which tokens to use, and the store workers share, are `auth`'s.

use chrono::{DateTime, Utc};
use duckdb::{params, OptionalExt};

use super::{from_ms, ms, State, StateError};
use crate::secret::Secret;

/// Tokens as they are kept in the state DB.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// sha256 of the refresh token configured in the pipeline when this row was written; when
    /// the configured one changes, the user re-authorized and the config wins.
    pub config_fingerprint: String,
    /// The refresh token (rotated by each refresh when the server rotates).
    pub refresh_token: Secret,
    /// The last access token, reused until it expires.
    pub access_token: Option<Secret>,
    /// When the access token expires.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, when the server said.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

impl State {
    /// The source's tokens, if any were stored.
    pub fn load_token(&self, source: &str) -> Result<Option<StoredToken>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT config_fingerprint, refresh_token, access_token, access_expires_at_ms, refresh_expires_at_ms
                 FROM tokens WHERE source = ?",
                params![source],
                |r| {
                    Ok(StoredToken {
                        config_fingerprint: r.get(0)?,
                        refresh_token: Secret::new(r.get::<_, String>(1)?),
                        access_token: r.get::<_, Option<String>>(2)?.map(Secret::new),
                        access_expires_at: r.get::<_, Option<i64>>(3)?.map(from_ms),
                        refresh_expires_at: r.get::<_, Option<i64>>(4)?.map(from_ms),
                    })
                },
            )
            .optional()
        })
    }

    /// Stores the source's tokens, replacing earlier ones, durable at once.
    pub fn save_token(&self, source: &str, t: &StoredToken) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![
                    source,
                    t.config_fingerprint,
                    t.refresh_token.expose(),
                    t.access_token.as_ref().map(|s| s.expose().to_string()),
                    t.access_expires_at.map(ms),
                    t.refresh_expires_at.map(ms),
                    ms(Utc::now())
                ],
            )?;
            // Make the rotated token durable now, not at the next checkpoint.
            c.execute_batch("CHECKPOINT")
        })
    }
}
