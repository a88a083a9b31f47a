//! `kind = "xima"`: Xima CCaaS recordings, their calls and OPUS audio, under Xima's strict
//! per-tenant pace and five-day bandwidth cap.

use std::time::Duration;

use serde::Deserialize;

use crate::extract::fields::{Fields, KeyError};
use crate::http::pacer::PaceRule;
use crate::secret::Secret;
use crate::units::parse_bytes;

/// A `[[source]]` with `kind = "xima"`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawXima {
    /// Unique within the pipeline; names the source's state file, logs and report.
    name: String,
    /// The tenant's API root.
    base_url: String,
    /// The tenant name in audio paths (`/recordings/{tenant}/{key}/audio`).
    #[serde(default)]
    tenant: Option<String>,
    /// The service user's key (`Authorization: Bearer …`).
    #[serde(default)]
    api_key: Option<String>,
    /// Xima's pace: one request per `min_interval` (3s) and at most `burst_max` (3) in any
    /// `burst_window` (10s; scaled with `min_interval` when unset).
    #[serde(default)]
    min_interval: Option<String>,
    #[serde(default = "default_burst_max")]
    burst_max: usize,
    #[serde(default)]
    burst_window: Option<String>,
    /// Copy recordings' audio into the warehouse.
    #[serde(default = "default_true")]
    audio: bool,
    /// Audio bytes to download in a rolling five days at most (e.g. `"40GB"`): the run
    /// stops before Xima's cap answers 509.
    #[serde(default)]
    egress_budget: Option<String>,
    /// Permit plain http to a non-loopback host.
    #[serde(default)]
    allow_insecure_http: bool,
    /// How long a read may wait for a byte before the request counts as stalled.
    #[serde(default)]
    read_timeout: Option<String>,
}

fn default_burst_max() -> usize {
    3
}
fn default_true() -> bool {
    true
}

/// Xima CCaaS, checked.
#[derive(Debug, Clone)]
pub struct XimaConfig {
    /// The source's name: state, streams and file names carry it.
    pub name: String,
    /// The tenant's API base URL.
    pub base_url: url::Url,
    /// The tenant name in audio paths (`/recordings/{tenant}/{key}/audio`) and the pacer's key.
    pub tenant: String,
    /// The service user's key (`Authorization: Bearer …`).
    pub api_key: Secret,
    /// How many requests per period the tenant allows (3 in 10 s by default).
    pub pace: PaceRule,
    /// Whether recordings' audio is copied into the warehouse.
    pub audio: bool,
    /// Audio bytes to download in a rolling five days at most: stop before Xima's cap (509).
    pub egress_budget: Option<u64>,
    /// A read that waits longer than this for a byte is a stalled request, retried.
    pub read_timeout: Duration,
}

impl RawXima {
    /// Checks every key; the first problem is returned, naming its key.
    pub fn validate(self, f: &Fields) -> Result<XimaConfig, KeyError> {
        let tenant = self.tenant.filter(|t| !t.is_empty()).ok_or_else(|| {
            KeyError::new(
                "tenant",
                "is required for xima: the tenant name in its audio paths",
            )
        })?;
        let min_interval = f.duration(
            "min_interval",
            self.min_interval.as_deref(),
            Duration::from_secs(3),
            Duration::ZERO,
        )?;
        // Xima's ratio: one per 3 s and three per 10 s, so a scaled interval scales the
        // window with it.
        let burst_window = f.duration(
            "burst_window",
            self.burst_window.as_deref(),
            min_interval * 10 / 3,
            Duration::ZERO,
        )?;
        let egress_budget = self
            .egress_budget
            .as_deref()
            .map(|v| parse_bytes(v).map_err(|e| KeyError::new("egress_budget", e.to_string())))
            .transpose()?;
        Ok(XimaConfig {
            base_url: f.url("base_url", &self.base_url, self.allow_insecure_http)?,
            api_key: f.secret("api_key", self.api_key.as_deref())?,
            pace: PaceRule {
                min_interval,
                burst_max: self.burst_max.max(1),
                burst_window,
            },
            audio: self.audio,
            egress_budget,
            read_timeout: f.read_timeout(self.read_timeout.as_deref())?,
            tenant,
            name: self.name,
        })
    }
}
