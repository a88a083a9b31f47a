//! What `ccetl auth status` and `ccetl check` say about a Webex source's tokens: their age,
//! when the access and refresh tokens expire, the org, and whether it is time to renew.

use chrono::{DateTime, Duration, Utc};

use super::config::WebexConfig;
use crate::auth::oauth::{current_token, org_from_token};
use crate::state::{State, StateError};

/// Renew a refresh token that has less than this left.
pub const RENEW_WITHIN_DAYS: i64 = 14;

/// Whether a source's refresh token will last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Valid for more than [`RENEW_WITHIN_DAYS`].
    Ok,
    /// The refresh token expires within [`RENEW_WITHIN_DAYS`].
    ExpiresSoon,
    /// Past its expiry: log in again.
    Expired,
    /// No stored tokens and no `refresh_token` in the pipeline file.
    Missing,
    /// Only the pipeline file's refresh token: its expiry is known after the first refresh.
    Unknown,
}

/// What `ccetl auth status` reports for one source.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    /// The source's name.
    pub source: String,
    /// When tokens were last stored.
    pub saved_at: Option<DateTime<Utc>>,
    /// When the access token expires.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// The org the source reads.
    pub org_id: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The verdict.
    pub health: Health,
}

/// The status of the tokens `cfg` would use now.
pub fn webex(
    cfg: &WebexConfig,
    state: &State,
    now: DateTime<Utc>,
) -> Result<TokenStatus, StateError> {
    let stored = current_token(state, &cfg.name, cfg.refresh_token.as_ref())?;
    let saved_at = match &stored {
        Some(_) => state.token_saved_at(&cfg.name)?,
        None => None,
    };
    let refresh_expires_at = stored.as_ref().and_then(|t| t.refresh_expires_at);
    let health = match (&stored, refresh_expires_at) {
        (None, _) if cfg.refresh_token.is_none() => Health::Missing,
        (None, _) | (Some(_), None) => Health::Unknown,
        (Some(_), Some(at)) if at <= now => Health::Expired,
        (Some(_), Some(at)) if at - now < Duration::days(RENEW_WITHIN_DAYS) => Health::ExpiresSoon,
        _ => Health::Ok,
    };
    Ok(TokenStatus {
        source: cfg.name.clone(),
        saved_at,
        access_expires_at: stored.as_ref().and_then(|t| t.access_expires_at),
        refresh_expires_at,
        org_id: cfg.org_id.clone().or_else(|| {
            stored
                .as_ref()
                .and_then(|t| t.access_token.as_ref())
                .and_then(org_from_token)
        }),
        scopes: cfg.scopes.clone(),
        health,
    })
}

/// "3d 4h", "59m", "expired 2h ago".
pub fn human(d: Duration) -> String {
    let (past, d) = if d < Duration::zero() {
        (true, -d)
    } else {
        (false, d)
    };
    let text = if d >= Duration::days(1) {
        format!("{}d {}h", d.num_days(), d.num_hours() % 24)
    } else if d >= Duration::hours(1) {
        format!("{}h {}m", d.num_hours(), d.num_minutes() % 60)
    } else {
        format!("{}m", d.num_minutes())
    };
    if past {
        format!("{text} ago")
    } else {
        text
    }
}

impl TokenStatus {
    /// One line per fact, for `ccetl auth status`.
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let at = |t: Option<DateTime<Utc>>, what: &str| match t {
            Some(t) if t > now => format!(
                "{what} valid for {} (until {})",
                human(t - now),
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Some(t) => format!(
                "{what} EXPIRED {} ({})",
                human(t - now),
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => format!("{what} expiry unknown"),
        };
        let mut lines = vec![format!("{} (webex)", self.source)];
        match self.health {
            Health::Missing => lines.push("  no tokens: not logged in".into()),
            Health::Unknown if self.saved_at.is_none() => lines.push(
                "  refresh token from the pipeline file, not used yet (expiry known after the first refresh)".into(),
            ),
            _ => {
                if let Some(s) = self.saved_at {
                    lines.push(format!("  tokens stored {}", human(s - now)));
                }
                lines.push(format!("  {}", at(self.access_expires_at, "access token")));
                lines.push(format!("  {}", at(self.refresh_expires_at, "refresh token")));
            }
        }
        lines.push(format!(
            "  org {}",
            self.org_id
                .as_deref()
                .unwrap_or("unknown (from the access token once there is one)")
        ));
        lines.push(format!(
            "  scopes {} (as configured)",
            self.scopes.join(" ")
        ));
        lines.join("\n")
    }

    /// A warning or error line with the command that fixes it, when one is due.
    pub fn advice(&self, pipeline: &str) -> Option<String> {
        let renew = format!("ccetl auth login {pipeline} --source {}", self.source);
        let until = self
            .refresh_expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        match self.health {
            Health::ExpiresSoon => Some(format!(
                "warning: the refresh token of '{}' expires on {until}, within {RENEW_WITHIN_DAYS} days; renew it: {renew}",
                self.source
            )),
            Health::Expired => Some(format!(
                "the refresh token of '{}' expired on {until}; renew it: {renew}",
                self.source
            )),
            Health::Missing => Some(format!(
                "source '{}' has no tokens; log in: {renew} (or `ccetl auth import {pipeline} --source {}` for a Service App)",
                self.source, self.source
            )),
            Health::Ok | Health::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::minutes(59)), "59m");
        assert_eq!(human(Duration::hours(26)), "1d 2h");
        assert_eq!(human(-Duration::minutes(90)), "1h 30m ago");
    }
}
