//! `kind = "webex_legacy"`: the legacy 1.0 reporting API (CSR/CAR, HMAC-SHA1, CSV).

use std::time::Duration;

use serde::Deserialize;

use crate::extract::fields::{Fields, KeyError};
use crate::secret::Secret;

/// The legacy reporting API publishes no limit: a conservative budget.
pub const LEGACY_REQUESTS_PER_MINUTE: u32 = 60;

/// A `[[source]]` with `kind = "webex_legacy"`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLegacy {
    /// Unique within the pipeline; names the source's state file, logs and report.
    name: String,
    /// The reporting API's root, e.g. `https://rest.cjp.cisco.com/aws/api`.
    base_url: String,
    /// The portal user the API key belongs to (sent as `From`).
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    /// Appended as `;tenantId=` to the signature when set (newer tenants).
    #[serde(default)]
    tenant_id: Option<String>,
    /// The tenant's time zone, which CSV times are written in.
    #[serde(default = "default_timezone")]
    timezone: String,
    /// `numberOfRecords` per query; a response that reaches it is split and asked again.
    #[serde(default = "default_record_cap")]
    record_cap: u64,
    /// The Analyzer query's `anchorId`, as the tenant's portal sends it (empty by default).
    #[serde(default)]
    anchor_id: String,
    /// Longest a session can run; bounds how far past a window its activities are read.
    #[serde(default)]
    max_session: Option<String>,
    /// The API's budget per user (60 a minute when unset: no limit is published).
    #[serde(default)]
    requests_per_minute: Option<u32>,
    /// Permit plain http to a non-loopback host.
    #[serde(default)]
    allow_insecure_http: bool,
    /// How long a read may wait for a byte before the request counts as stalled.
    #[serde(default)]
    read_timeout: Option<String>,
}

fn default_timezone() -> String {
    "UTC".into()
}
fn default_record_cap() -> u64 {
    50_000
}

/// The legacy 1.0 reporting API, checked.
#[derive(Debug, Clone)]
pub struct LegacyConfig {
    /// The source's name: state, streams and file names carry it.
    pub name: String,
    /// The reporting API's base URL (`https://rest.cjp.cisco.com` or a region's).
    pub base_url: url::Url,
    /// The portal user the API key belongs to (sent as `From`).
    pub user_id: String,
    /// The API key: signs requests (HMAC-SHA1), never sent.
    pub api_key: Secret,
    /// Appended as `;tenantId=` to the signature when set (newer tenants).
    pub tenant_id: Option<String>,
    /// The tenant's time zone, which CSV times are written in.
    pub timezone: String,
    /// `numberOfRecords` per query; a response that reaches it is split and asked again.
    pub record_cap: u64,
    /// The Analyzer query's `anchorId`, as the tenant's portal sends it (empty by default).
    pub anchor_id: String,
    /// Longest a session can run; bounds how far past a window its activities are read.
    pub max_session: Duration,
    /// A read that waits longer than this for a byte is a stalled request, retried.
    pub read_timeout: Duration,
    /// The API's budget per user: `requests_per_minute` in any minute.
    pub requests_per_minute: u32,
}

impl RawLegacy {
    /// Checks every key; the first problem is returned, naming its key.
    pub fn validate(self, f: &Fields) -> Result<LegacyConfig, KeyError> {
        if self.record_cap < 2 {
            return Err(KeyError::new("record_cap", "must be at least 2"));
        }
        let user_id = self.user_id.as_deref().ok_or_else(|| {
            KeyError::new(
                "user_id",
                "is required for webex_legacy: the portal user the API key belongs to",
            )
        })?;
        Ok(LegacyConfig {
            user_id: f.expand("user_id", user_id)?,
            base_url: f.url("base_url", &self.base_url, self.allow_insecure_http)?,
            api_key: f.secret("api_key", self.api_key.as_deref())?,
            max_session: f.duration(
                "max_session",
                self.max_session.as_deref(),
                Duration::from_secs(86_400),
                Duration::ZERO,
            )?,
            read_timeout: f.read_timeout(self.read_timeout.as_deref())?,
            requests_per_minute: f.rate(
                "requests_per_minute",
                self.requests_per_minute,
                LEGACY_REQUESTS_PER_MINUTE,
            )?,
            tenant_id: self.tenant_id,
            timezone: self.timezone,
            record_cap: self.record_cap,
            anchor_id: self.anchor_id,
            name: self.name,
        })
    }
}
