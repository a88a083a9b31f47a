//! Pipeline TOML → validated structs.
//!
//! Parsing is split in two, as ripgrep does with its low/high args: [`RawConfig`] mirrors
//! the file (serde), and [`PipelineConfig`] is the checked result, with `${ENV}` secrets
//! resolved and durations parsed. Every problem is reported before any I/O happens, as one
//! line that names the key and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

pub mod exposure;
mod search;
mod units;
pub use search::{Discovery, SearchConfig, SEARCH_RECORD_CAP, SEARCH_REQUESTS_PER_MINUTE};
pub use units::{parse_bytes, parse_duration};

/// The longest `urlExpiration` the captures API accepts, in minutes (spec: maximum 60).
pub const MAX_URL_EXPIRATION_MINUTES: u32 = 60;

/// Webex Contact Center's documented default limit: 300 requests a minute per client ID
/// (developer portal, "Rate Limiting"; Cisco raises it on request).
pub const WEBEX_REQUESTS_PER_MINUTE: u32 = 300;
/// The legacy reporting API publishes no limit: a conservative budget.
pub const LEGACY_REQUESTS_PER_MINUTE: u32 = 60;

/// A requests-per-minute setting, checked; errors are (key, message).
fn check_rate(key: &'static str, n: u32) -> Result<u32, (&'static str, String)> {
    if (1..=1_000_000).contains(&n) {
        Ok(n)
    } else {
        Err((key, "must be between 1 and 1000000".into()))
    }
}

/// A config problem. Always exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a valid pipeline file: {message} (TOML; see the README's config reference)"
    )]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pipeline: RawPipeline,
    #[serde(default, rename = "source")]
    sources: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    warehouse: String,
    state: String,
    #[serde(default = "default_window")]
    window: String,
    #[serde(default = "default_lookback")]
    lookback: String,
    #[serde(default = "default_settle")]
    settle: String,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// Earliest time the first run extracts from (RFC 3339 or YYYY-MM-DD); default 7 days back.
    #[serde(default)]
    start: Option<String>,
    /// Extra options for the object store builder (endpoint, region, …).
    #[serde(default)]
    storage_options: BTreeMap<String, String>,
}

fn default_window() -> String {
    "1d".into()
}
fn default_lookback() -> String {
    "6h".into()
}
fn default_settle() -> String {
    "15m".into()
}
fn default_concurrency() -> usize {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: String,
    name: String,
    base_url: String,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    org_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    channel_types: Option<Vec<String>>,
    #[serde(default = "default_true")]
    audio: bool,
    #[serde(default = "default_true")]
    segments: bool,
    #[serde(default)]
    discovery: Option<String>,
    #[serde(default)]
    search: Option<search::RawSearch>,
    #[serde(default)]
    webhook_secret: Option<String>,
    #[serde(default)]
    page_size: Option<u32>,
    /// Longest time range one tasks request may cover; windows are split to fit.
    #[serde(default)]
    max_range: Option<String>,
    #[serde(default)]
    url_expiration_minutes: Option<u32>,
    #[serde(default)]
    concurrency: Option<usize>,
    /// The API's rate budget, shared by every source with the same host and credential.
    #[serde(default)]
    requests_per_minute: Option<u32>,
    /// The window `requests_per_minute` is counted over (60s); shorter only to scale time.
    #[serde(default)]
    rate_window: Option<String>,
    #[serde(default)]
    allow_insecure_http: bool,
    /// How long a read may wait for a byte before the request counts as stalled.
    #[serde(default)]
    read_timeout: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    // webex_legacy
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    record_cap: Option<u64>,
    #[serde(default)]
    anchor_id: Option<String>,
    #[serde(default)]
    max_session: Option<String>,
    // xima
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    min_interval: Option<String>,
    #[serde(default)]
    burst_max: Option<usize>,
    #[serde(default)]
    burst_window: Option<String>,
    #[serde(default)]
    egress_budget: Option<String>,
}

fn default_true() -> bool {
    true
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub path: PathBuf,
    pub name: String,
    /// Warehouse URL, normalised (`file:///abs/path` for local directories).
    pub warehouse: String,
    pub storage_options: BTreeMap<String, String>,
    /// State DB path, `{source}` not yet substituted.
    pub state: PathBuf,
    pub window: Duration,
    pub lookback: Duration,
    pub settle: Duration,
    pub concurrency: usize,
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    pub sources: Vec<SourceConfig>,
}

#[derive(Debug, Clone)]
pub enum SourceConfig {
    Webex(Box<WebexConfig>),
    Legacy(Box<LegacyConfig>),
    Xima(Box<XimaConfig>),
}

impl SourceConfig {
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Webex(w) => &w.name,
            SourceConfig::Legacy(l) => &l.name,
            SourceConfig::Xima(x) => &x.name,
        }
    }
    /// The source's API budget in requests per minute (a shortened window scales it up).
    pub fn requests_per_minute(&self) -> Option<f64> {
        Some(match self {
            SourceConfig::Webex(w) => {
                f64::from(w.requests_per_minute) * 60.0 / w.rate_window.as_secs_f64()
            }
            SourceConfig::Legacy(l) => f64::from(l.requests_per_minute),
            SourceConfig::Xima(x) => x.pace.per_minute(),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Webex(_) => "webex",
            SourceConfig::Legacy(_) => "webex_legacy",
            SourceConfig::Xima(_) => "xima",
        }
    }
}

/// Xima CCaaS: recordings with their calls, OPUS audio, a strict per-tenant pace.
#[derive(Debug, Clone)]
pub struct XimaConfig {
    pub name: String,
    pub base_url: url::Url,
    /// The tenant name in audio paths (`/recordings/{tenant}/{key}/audio`) and the pacer's key.
    pub tenant: String,
    /// The service user's key (`Authorization: Bearer …`).
    pub api_key: Secret,
    pub pace: crate::http::pacer::PaceRule,
    pub audio: bool,
    /// Audio bytes to download in a rolling five days at most: stop before Xima's cap (509).
    pub egress_budget: Option<u64>,
    pub read_timeout: Duration,
}

/// The legacy 1.0 reporting API (CSR/CAR, HMAC-SHA1, CSV).
#[derive(Debug, Clone)]
pub struct LegacyConfig {
    pub name: String,
    pub base_url: url::Url,
    /// The portal user the API key belongs to (sent as `From`).
    pub user_id: String,
    pub api_key: Secret,
    /// Appended as `;tenantId=` to the signature when set (newer tenants).
    pub tenant_id: Option<String>,
    pub timezone: String,
    /// `numberOfRecords` per query; a response that reaches it is split and asked again.
    pub record_cap: u64,
    pub anchor_id: String,
    /// Longest a session can run; bounds how far past a window its activities are read.
    pub max_session: Duration,
    pub read_timeout: Duration,
    /// The API's budget per user: `requests_per_minute` in any minute.
    pub requests_per_minute: u32,
}

/// The v1 Webex Contact Center API.
#[derive(Debug, Clone)]
pub struct WebexConfig {
    pub name: String,
    pub base_url: url::Url,
    pub token_url: url::Url,
    pub org_id: Option<String>,
    pub client_id: Secret,
    pub client_secret: Secret,
    /// Optional: `ccetl auth login`/`import` keep tokens in the state DB instead.
    pub refresh_token: Option<Secret>,
    /// OAuth scopes asked for by `ccetl auth login`.
    pub scopes: Vec<String>,
    pub authorize_url: url::Url,
    /// Where the browser is sent after consent; a loopback `http://` URI is received by
    /// `ccetl auth login` itself. Must equal a redirect URI registered for the integration.
    pub redirect_uri: url::Url,
    pub channel_types: Vec<String>,
    pub audio: bool,
    pub segments: bool,
    pub page_size: u32,
    pub max_range: Duration,
    pub url_expiration_minutes: u32,
    pub concurrency: usize,
    /// The API's budget per client ID: `requests_per_minute` in any `rate_window`.
    pub requests_per_minute: u32,
    pub rate_window: Duration,
    /// A read that waits longer than this for a byte is a stalled request, retried.
    pub read_timeout: Duration,
    /// `/v1/tasks`, or the Search API with filters.
    pub discovery: Discovery,
    /// Signs `capture:available` events (`ccetl subscribe` registers it, `ccetl serve`
    /// checks it).
    pub webhook_secret: Option<Secret>,
}

/// Replaces every `${NAME}` with the environment variable's value.
fn expand_env(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${…}; write ${NAME}".to_string())?;
        let name = &after[..end];
        let val = lookup(name).ok_or_else(|| {
            format!(
                "environment variable {name} is not set; export it or put the value in the file"
            )
        })?;
        out.push_str(&val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl PipelineConfig {
    /// Reads and validates a pipeline file, resolving secrets from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, &|k| std::env::var(k).ok())
    }

    /// Parses pipeline text; `path` anchors relative paths and names the file in errors.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" at byte {}", s.start))
                    .unwrap_or_default(),
        })?;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let p = raw.pipeline;
        if p.name.trim().is_empty() {
            return Err(invalid("pipeline.name", "must not be empty".into()));
        }
        let dur = |key: &str, v: &str| parse_duration(v).map_err(|m| invalid(key, m));
        let window = dur("pipeline.window", &p.window)?;
        let ws = window.as_secs();
        if ws < 60 || !(86_400 % ws == 0 || ws % 86_400 == 0) {
            return Err(invalid(
                "pipeline.window",
                "must divide a day (e.g. 1h, 6h, 1d) or be whole days".into(),
            ));
        }
        let lookback = dur("pipeline.lookback", &p.lookback)?;
        let settle = dur("pipeline.settle", &p.settle)?;
        if p.concurrency == 0 || p.concurrency > 256 {
            return Err(invalid(
                "pipeline.concurrency",
                "must be between 1 and 256".into(),
            ));
        }
        let warehouse = normalise_warehouse(&p.warehouse, base_dir)
            .map_err(|m| invalid("pipeline.warehouse", m))?;
        let state = base_dir.join(&p.state);
        let start = p
            .start
            .as_deref()
            .map(|s| parse_time(s).map_err(|m| invalid("pipeline.start", m)))
            .transpose()?;

        let mut sources = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let at = |k: &str| format!("source[{i}].{k}");
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    &at("name"),
                    format!(
                        "'{}' must be non-empty and use only letters, digits, '-' and '_'",
                        s.name
                    ),
                ));
            }
            if !names.insert(s.name.clone()) {
                return Err(invalid(
                    &at("name"),
                    format!("'{}' is used by two sources; names must be unique", s.name),
                ));
            }
            let secret = |k: &str, v: Option<String>| -> Result<Secret, ConfigError> {
                let v =
                    v.ok_or_else(|| invalid(&at(k), "is required for this source kind".into()))?;
                expand_env(&v, env)
                    .map(Secret::new)
                    .map_err(|m| invalid(&at(k), m))
            };
            let url = |k: &str, v: &str| -> Result<url::Url, ConfigError> {
                let v = expand_env(v, env).map_err(|m| invalid(&at(k), m))?;
                let u = url::Url::parse(&v)
                    .map_err(|e| invalid(&at(k), format!("'{v}' is not a URL: {e}")))?;
                check_scheme(&u, s.allow_insecure_http).map_err(|m| invalid(&at(k), m))?;
                Ok(u)
            };
            let read_timeout = match &s.read_timeout {
                Some(v) => dur(&at("read_timeout"), v)?,
                None => Duration::from_secs(60),
            };
            if read_timeout < Duration::from_millis(100) {
                return Err(invalid(
                    &at("read_timeout"),
                    "must be at least 100ms (60s is the default)".into(),
                ));
            }
            let rate_key = |k: &str| {
                match s.kind.as_str() {
                "xima" => Err(invalid(
                    &at(k),
                    "does not apply to xima, whose pace is min_interval, burst_max and burst_window".into(),
                )),
                _ => Ok(()),
            }
            };
            if s.requests_per_minute.is_some() {
                rate_key("requests_per_minute")?;
            }
            if s.rate_window.is_some() && s.kind != "webex" {
                return Err(invalid(
                    &at("rate_window"),
                    "applies to webex sources only".into(),
                ));
            }
            let requests_per_minute = |default: u32| {
                s.requests_per_minute
                    .map(|n| check_rate("requests_per_minute", n))
                    .transpose()
                    .map(|n| n.unwrap_or(default))
                    .map_err(|(k, m)| invalid(&at(k), m))
            };
            match s.kind.as_str() {
                "webex" => {
                    let rate_window = match &s.rate_window {
                        Some(v) => dur(&at("rate_window"), v)?,
                        None => Duration::from_secs(60),
                    };
                    if rate_window < Duration::from_millis(100) {
                        return Err(invalid(&at("rate_window"), "must be at least 100ms (60s is the default)".into()));
                    }
                    let base_url = url("base_url", &s.base_url)?;
                    let token_url = url(
                        "token_url",
                        s.token_url
                            .as_deref()
                            .unwrap_or("https://webexapis.com/v1/access_token"),
                    )?;
                    let max_range = match &s.max_range {
                        Some(v) => dur(&at("max_range"), v)?,
                        None => Duration::from_secs(86_400),
                    };
                    let page_size = s.page_size.unwrap_or(1000);
                    if !(1..=1000).contains(&page_size) {
                        return Err(invalid(
                            &at("page_size"),
                            "must be between 1 and 1000".into(),
                        ));
                    }
                    let url_expiration_minutes = s.url_expiration_minutes.unwrap_or(30);
                    // The captures API refuses 0 and anything past 60 minutes (spec:
                    // `urlExpiration`, maximum 60).
                    if !(1..=MAX_URL_EXPIRATION_MINUTES).contains(&url_expiration_minutes) {
                        return Err(invalid(
                            &at("url_expiration_minutes"),
                            format!("must be between 1 and {MAX_URL_EXPIRATION_MINUTES} (the captures API's limit, in minutes)"),
                        ));
                    }
                    let discovery = search::discovery(s.discovery.as_deref(), s.search)
                        .map_err(|(key, m)| invalid(&at(key), m))?;
                    let webhook_secret = s
                        .webhook_secret
                        .clone()
                        .map(|v| secret("webhook_secret", Some(v)))
                        .transpose()?;
                    if let Some(w) = &webhook_secret {
                        if !(32..=256).contains(&w.expose().chars().count()) {
                            return Err(invalid(
                                &at("webhook_secret"),
                                "must be 32 to 256 characters (Webex's rule for a subscription secret); generate one with `openssl rand -hex 24`".into(),
                            ));
                        }
                    }
                    sources.push(SourceConfig::Webex(Box::new(WebexConfig {
                        name: s.name.clone(),
                        base_url,
                        token_url,
                        org_id: s
                            .org_id
                            .as_deref()
                            .map(|v| expand_env(v, env).map_err(|m| invalid(&at("org_id"), m)))
                            .transpose()?,
                        client_id: secret("client_id", s.client_id.clone())?,
                        client_secret: secret("client_secret", s.client_secret.clone())?,
                        refresh_token: s
                            .refresh_token
                            .clone()
                            .map(|v| secret("refresh_token", Some(v)))
                            .transpose()?,
                        scopes: scopes(s.scopes.clone(), webhook_secret.is_some())
                            .map_err(|m| invalid(&at("scopes"), m))?,
                        authorize_url: url(
                            "authorize_url",
                            s.authorize_url
                                .as_deref()
                                .unwrap_or("https://webexapis.com/v1/authorize"),
                        )?,
                        redirect_uri: {
                            let v = s
                                .redirect_uri
                                .as_deref()
                                .unwrap_or("http://127.0.0.1:8765/callback");
                            url::Url::parse(v).map_err(|e| {
                                invalid(&at("redirect_uri"), format!("'{v}' is not a URL: {e}"))
                            })?
                        },
                        channel_types: channel_types(s.channel_types.clone())
                            .map_err(|m| invalid(&at("channel_types"), m))?,
                        audio: s.audio,
                        segments: s.segments,
                        page_size,
                        max_range,
                        url_expiration_minutes,
                        concurrency: s.concurrency.unwrap_or(p.concurrency).clamp(1, 64),
                        requests_per_minute: requests_per_minute(WEBEX_REQUESTS_PER_MINUTE)?,
                        rate_window,
                        read_timeout,
                        discovery,
                        webhook_secret,
                    })));
                }
                "webex_legacy" => {
                    let record_cap = s.record_cap.unwrap_or(50_000);
                    if record_cap < 2 {
                        return Err(invalid(&at("record_cap"), "must be at least 2".into()));
                    }
                    let user_id = s
                        .user_id
                        .as_deref()
                        .ok_or_else(|| invalid(&at("user_id"), "is required for webex_legacy: the portal user the API key belongs to".into()))
                        .and_then(|v| expand_env(v, env).map_err(|m| invalid(&at("user_id"), m)))?;
                    sources.push(SourceConfig::Legacy(Box::new(LegacyConfig {
                        name: s.name.clone(),
                        base_url: url("base_url", &s.base_url)?,
                        user_id,
                        api_key: secret("api_key", s.api_key.clone())?,
                        tenant_id: s.tenant_id.clone(),
                        timezone: s.timezone.clone().unwrap_or_else(|| "UTC".into()),
                        record_cap,
                        anchor_id: s.anchor_id.clone().unwrap_or_default(),
                        max_session: match &s.max_session {
                            Some(v) => dur(&at("max_session"), v)?,
                            None => Duration::from_secs(86_400),
                        },
                        read_timeout,
                        requests_per_minute: requests_per_minute(LEGACY_REQUESTS_PER_MINUTE)?,
                    })));
                }
                "xima" => {
                    let tenant = s
                        .tenant
                        .clone()
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            invalid(
                                &at("tenant"),
                                "is required for xima: the tenant name in its audio paths".into(),
                            )
                        })?;
                    let min_interval = match &s.min_interval {
                        Some(v) => dur(&at("min_interval"), v)?,
                        None => Duration::from_secs(3),
                    };
                    // Xima's ratio: one per 3 s and three per 10 s, so a scaled interval
                    // scales the window with it.
                    let burst_window = match &s.burst_window {
                        Some(v) => dur(&at("burst_window"), v)?,
                        None => min_interval * 10 / 3,
                    };
                    let burst_max = s.burst_max.unwrap_or(3).max(1);
                    let egress_budget = s
                        .egress_budget
                        .as_deref()
                        .map(|v| parse_bytes(v).map_err(|m| invalid(&at("egress_budget"), m)))
                        .transpose()?;
                    sources.push(SourceConfig::Xima(Box::new(XimaConfig {
                        name: s.name.clone(),
                        base_url: url("base_url", &s.base_url)?,
                        tenant,
                        api_key: secret("api_key", s.api_key.clone())?,
                        pace: crate::http::pacer::PaceRule {
                            min_interval,
                            burst_max,
                            burst_window,
                        },
                        audio: s.audio,
                        egress_budget,
                        read_timeout,
                    })));
                }
                other => {
                    return Err(invalid(
                        &at("kind"),
                        format!("'{other}' is not a known source kind; use \"webex\", \"webex_legacy\" or \"xima\""),
                    ))
                }
            }
        }
        if sources.is_empty() {
            return Err(invalid(
                "source",
                "no [[source]] is configured; add at least one".into(),
            ));
        }
        Ok(PipelineConfig {
            path: path.to_path_buf(),
            name: p.name,
            warehouse,
            storage_options: p.storage_options,
            state,
            window,
            lookback,
            settle,
            concurrency: p.concurrency,
            start,
            sources,
        })
    }

    /// The state file for one source (`{source}` in `state` gives each source its own file).
    pub fn state_path(&self, source: Option<&str>) -> PathBuf {
        let s = self.state.to_string_lossy();
        match source {
            Some(name) if s.contains("{source}") => PathBuf::from(s.replace("{source}", name)),
            _ => self.state.clone(),
        }
    }
}

/// Only https, or http on a loopback host (the simulator, a local proxy).
fn check_scheme(u: &url::Url, allow_insecure: bool) -> Result<(), String> {
    match u.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if loopback || allow_insecure {
                Ok(())
            } else {
                Err(format!("'{u}' uses plain http to a non-loopback host; use https or set allow_insecure_http = true"))
            }
        }
        s => Err(format!("scheme '{s}' is not supported; use https")),
    }
}

/// Turns a warehouse setting into a URL; bare paths become `file://` relative to the pipeline file.
fn normalise_warehouse(value: &str, base_dir: &Path) -> Result<String, String> {
    if let Some((scheme, _)) = value.split_once("://") {
        return match scheme {
            "file" | "s3" | "gs" | "az" | "abfs" | "abfss" => {
                Ok(value.trim_end_matches('/').to_string())
            }
            other => Err(format!(
                "scheme '{other}' is not supported; use file://, s3://, gs:// or az://"
            )),
        };
    }
    let dir = base_dir.join(value);
    let abs = std::path::absolute(&dir).map_err(|e| format!("cannot resolve '{value}': {e}"))?;
    let u = url::Url::from_directory_path(&abs)
        .map_err(|_| format!("'{}' is not a usable directory path", abs.display()))?;
    Ok(u.as_str().trim_end_matches('/').to_string())
}

/// The scope reading tasks, captures and search needs (`cjp:config` also grants it).
pub const READ_SCOPE: &str = "cjp:config_read";
/// The scope creating, updating and deleting subscriptions needs (spec).
pub const WRITE_SCOPE: &str = "cjp:config_write";

/// The OAuth scopes `ccetl auth login` asks for: read, and write when webhooks are set up
/// (`webhook_secret`: `ccetl subscribe` registers a subscription). Configured scopes that
/// lack what the configured features need are refused here, not at the first 403.
fn scopes(v: Option<Vec<String>>, webhooks: bool) -> Result<Vec<String>, String> {
    let has = |v: &[String], s: &str| v.iter().any(|x| x == s || x == "cjp:config");
    match v {
        None if webhooks => Ok(vec![READ_SCOPE.into(), WRITE_SCOPE.into()]),
        None => Ok(vec![READ_SCOPE.into()]),
        Some(v) if !has(&v, READ_SCOPE) => Err(format!(
            "must include {READ_SCOPE} (tasks, captures and search need it)"
        )),
        Some(v) if webhooks && !has(&v, WRITE_SCOPE) => Err(format!(
            "must include {WRITE_SCOPE}: webhook_secret is set and `ccetl subscribe` needs it to register the subscription"
        )),
        Some(v) => Ok(v),
    }
}

/// The channel types the API knows (spec: `/v1/tasks` `channelTypes`, an enum; the Search
/// API's `channelType` filter is a GraphQL enum of the same values).
pub const CHANNEL_TYPES: [&str; 4] = ["telephony", "chat", "email", "social"];

/// `channel_types`, each one the API knows; telephony when unset, every channel when empty.
fn channel_types(v: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let v = v.unwrap_or_else(|| vec!["telephony".into()]);
    match v.iter().find(|c| !CHANNEL_TYPES.contains(&c.as_str())) {
        Some(c) => Err(format!(
            "'{c}' is not a channel type of the API; use {} (lowercase)",
            CHANNEL_TYPES.join(", ")
        )),
        None => Ok(v),
    }
}

/// Parses RFC 3339 or a plain UTC date.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(format!(
        "'{s}' is not a time; write 2026-01-31 or 2026-01-31T00:00:00Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[pipeline]
name = "t"
warehouse = "wh"
state = "state.duckdb"
[[source]]
kind = "webex"
name = "wx"
base_url = "http://127.0.0.1:9"
token_url = "http://127.0.0.1:9/v1/access_token"
client_id = "${CID}"
client_secret = "s"
refresh_token = "r"
"#;

    fn env(k: &str) -> Option<String> {
        (k == "CID").then(|| "client-1".to_string())
    }

    #[test]
    fn parses_and_expands_env() {
        let c = PipelineConfig::parse(Path::new("/p/x.toml"), GOOD, &env).unwrap();
        assert_eq!(c.warehouse, "file:///p/wh");
        assert_eq!(c.window, Duration::from_secs(86_400));
        let SourceConfig::Webex(w) = &c.sources[0] else {
            panic!("webex source expected")
        };
        assert_eq!(w.client_id.expose(), "client-1");
    }

    #[test]
    fn the_readme_config_reference_parses() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("## Pipeline config")
            .nth(1)
            .expect("README has a Pipeline config section");
        let toml = section
            .split("```toml\n")
            .nth(1)
            .and_then(|t| t.split("```").next())
            .expect("the section opens with a TOML block");
        let c = PipelineConfig::parse(Path::new("/p/acme.toml"), toml, &|_| Some("x".repeat(40)))
            .unwrap_or_else(|e| panic!("README config: {e}"));
        assert_eq!(c.sources.len(), 3);
        let SourceConfig::Webex(w) = &c.sources[0] else {
            panic!("webex first")
        };
        let Discovery::Search(search) = &w.discovery else {
            panic!("the reference shows Search discovery")
        };
        assert_eq!(search.ani.as_deref(), Some("\\+1555.*"));
    }

    #[test]
    fn rate_budgets_default_to_the_documented_limits_and_are_checked() {
        let parse = |extra: &str| {
            PipelineConfig::parse(Path::new("x.toml"), &format!("{GOOD}{extra}"), &env)
                .map_err(|e| e.to_string())
        };
        let c = parse("").unwrap();
        let SourceConfig::Webex(w) = &c.sources[0] else {
            panic!("webex source expected")
        };
        assert_eq!(w.requests_per_minute, WEBEX_REQUESTS_PER_MINUTE);
        assert_eq!(w.rate_window, Duration::from_secs(60));
        assert_eq!(c.sources[0].requests_per_minute(), Some(300.0));
        let c = parse("requests_per_minute = 1000\nrate_window = \"6s\"\n").unwrap();
        assert_eq!(c.sources[0].requests_per_minute(), Some(10_000.0));
        let e = parse("requests_per_minute = 0\n").unwrap_err();
        assert!(
            e.contains("source[0].requests_per_minute") && e.contains("between 1"),
            "{e}"
        );
        let e = parse("rate_window = \"10ms\"\n").unwrap_err();
        assert!(
            e.contains("rate_window") && e.contains("at least 100ms"),
            "{e}"
        );
        let e = parse("discovery = \"search\"\n[source.search]\nrequests_per_minute = 0\n")
            .unwrap_err();
        assert!(e.contains("search.requests_per_minute"), "{e}");
        let xima = "[[source]]\nkind = \"xima\"\nname = \"x\"\nbase_url = \"http://127.0.0.1:9\"\ntenant = \"t\"\napi_key = \"k\"\nrequests_per_minute = 20\n";
        let e = parse(xima).unwrap_err();
        assert!(
            e.contains("source[1].requests_per_minute") && e.contains("min_interval"),
            "{e}"
        );
    }

    #[test]
    fn search_discovery_is_checked_with_its_filters() {
        let parse = |extra: &str| {
            PipelineConfig::parse(Path::new("x.toml"), &format!("{GOOD}{extra}"), &env)
                .map(|c| match &c.sources[0] {
                    SourceConfig::Webex(w) => w.discovery.clone(),
                    _ => panic!("webex source expected"),
                })
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse(""), Ok(Discovery::Tasks));
        let Ok(Discovery::Search(s)) = parse(
            "discovery = \"search\"\n[source.search]\nqueues = [\"Support_Q\"]\nmin_duration = \"1m\"\nani = \"\\\\+1555.*\"\n",
        ) else {
            panic!("search discovery expected")
        };
        assert_eq!(s.queues, ["Support_Q"]);
        assert_eq!(s.min_duration, Some(Duration::from_secs(60)));
        assert_eq!(s.ani.as_deref(), Some("\\+1555.*"));
        let e = parse("discovery = \"graphql\"\n").unwrap_err();
        assert!(
            e.contains("source[0].discovery") && e.contains("\"search\""),
            "{e}"
        );
        let e = parse("[source.search]\nteams = [\"Red\"]\n").unwrap_err();
        assert!(
            e.contains("source[0].search") && e.contains("discovery = \"search\""),
            "{e}"
        );
        let e = parse("discovery = \"search\"\n[source.search]\nani = \"+(\"\n").unwrap_err();
        assert!(
            e.contains("source[0].search.ani") && e.contains("not a valid pattern"),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
        let e = parse("discovery = \"search\"\n[source.search]\nqueue = [\"x\"]\n").unwrap_err();
        assert!(e.contains("unknown field `queue`"), "{e}");
    }

    #[test]
    fn url_expiration_is_within_the_apis_limit() {
        let parse = |minutes: u32| {
            let text = format!("{GOOD}url_expiration_minutes = {minutes}\n");
            PipelineConfig::parse(Path::new("x.toml"), &text, &env).map_err(|e| e.to_string())
        };
        assert!(parse(60).is_ok());
        for bad in [0, 61, 1440] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.contains("source[0].url_expiration_minutes") && e.contains("between 1 and 60"),
                "{e}"
            );
        }
    }

    #[test]
    fn channel_types_are_the_apis() {
        let parse = |v: &str| {
            let text = format!("{GOOD}channel_types = {v}\n");
            PipelineConfig::parse(Path::new("x.toml"), &text, &env).map_err(|e| e.to_string())
        };
        assert!(parse(r#"["telephony", "chat", "email", "social"]"#).is_ok());
        let e = parse(r#"["Telephony"]"#).unwrap_err();
        assert!(
            e.contains("source[0].channel_types") && e.contains("'Telephony'"),
            "{e}"
        );
        assert!(parse("[]").is_ok(), "empty: every channel");
    }

    #[test]
    fn scopes_follow_the_configured_features() {
        let scopes = |extra: &str| {
            let text = format!("{GOOD}{extra}");
            PipelineConfig::parse(Path::new("x.toml"), &text, &env)
                .map(|c| match &c.sources[0] {
                    SourceConfig::Webex(w) => w.scopes.join(" "),
                    _ => panic!("webex source expected"),
                })
                .map_err(|e| e.to_string())
        };
        assert_eq!(scopes(""), Ok("cjp:config_read".into()));
        let secret = format!("webhook_secret = \"{}\"\n", "s".repeat(40));
        assert_eq!(
            scopes(&secret),
            Ok("cjp:config_read cjp:config_write".into())
        );
        let e = scopes(&format!("{secret}scopes = [\"cjp:config_read\"]\n")).unwrap_err();
        assert!(
            e.contains("source[0].scopes") && e.contains("cjp:config_write"),
            "{e}"
        );
        let e = scopes("scopes = [\"spark:all\"]\n").unwrap_err();
        assert!(e.contains("cjp:config_read"), "{e}");
        assert!(scopes(&format!("{secret}scopes = [\"cjp:config\"]\n")).is_ok());
    }

    #[test]
    fn missing_env_names_variable() {
        let e = PipelineConfig::parse(Path::new("x.toml"), GOOD, &|_| None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("source[0].client_id") && msg.contains("CID"),
            "{msg}"
        );
    }

    #[test]
    fn refuses_plain_http_off_loopback() {
        let text = GOOD.replace("http://127.0.0.1:9\"\ntoken", "http://example.com\"\ntoken");
        let e = PipelineConfig::parse(Path::new("x.toml"), &text, &env).unwrap_err();
        assert!(e.to_string().contains("allow_insecure_http"), "{e}");
    }

    #[test]
    fn legacy_source_parses_and_needs_its_user() {
        let legacy = "[[source]]\nkind = \"webex_legacy\"\nname = \"lg\"\nbase_url = \"https://rest.example/aws/api\"\nuser_id = \"r@x.example\"\napi_key = \"${CID}\"\nrecord_cap = 500\n";
        let c =
            PipelineConfig::parse(Path::new("x.toml"), &format!("{GOOD}{legacy}"), &env).unwrap();
        let SourceConfig::Legacy(l) = &c.sources[1] else {
            panic!("legacy source expected")
        };
        assert_eq!(
            (l.api_key.expose(), l.record_cap, l.timezone.as_str()),
            ("client-1", 500, "UTC")
        );
        let text = format!("{GOOD}{}", legacy.replace("user_id", "# user_id"));
        let e = PipelineConfig::parse(Path::new("x.toml"), &text, &env).unwrap_err();
        assert!(e.to_string().contains("source[1].user_id"), "{e}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let text = GOOD.replace("state = ", "stat = \"x\"\nstate = ");
        let e = PipelineConfig::parse(Path::new("x.toml"), &text, &env).unwrap_err();
        assert!(e.to_string().contains("stat"), "{e}");
    }
}
