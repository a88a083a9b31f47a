//! `kind = "webex"`: the v1 Webex Contact Center API. [`RawWebex`] is the table as written
//! (its doc comments are the key reference); [`RawWebex::validate`] turns it into the
//! checked [`WebexConfig`] the source runs with.

use std::time::Duration;

use serde::Deserialize;

use crate::extract::fields::{Fields, KeyError};
use crate::secret::Secret;

mod search;
pub use search::{Discovery, SearchConfig, SEARCH_RECORD_CAP, SEARCH_REQUESTS_PER_MINUTE};

/// The longest `urlExpiration` the captures API accepts, in minutes (spec: maximum 60).
pub const MAX_URL_EXPIRATION_MINUTES: u32 = 60;

/// Webex Contact Center's documented default limit: 300 requests a minute per client ID
/// (developer portal, "Rate Limiting"; Cisco raises it on request).
pub const WEBEX_REQUESTS_PER_MINUTE: u32 = 300;

/// The scope reading tasks, captures and search needs (`cjp:config` also grants it).
pub const READ_SCOPE: &str = "cjp:config_read";
/// The scope creating, updating and deleting subscriptions needs (spec).
pub const WRITE_SCOPE: &str = "cjp:config_write";

/// The channel types the API knows (spec: `/v1/tasks` `channelTypes`, an enum; the Search
/// API's `channelType` filter is a GraphQL enum of the same values).
pub const CHANNEL_TYPES: [&str; 4] = ["telephony", "chat", "email", "social"];

/// A `[[source]]` with `kind = "webex"`, as written. `${NAME}` in secrets, URLs and
/// `org_id` is read from the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebex {
    /// Unique within the pipeline; names the source's state file, logs and report.
    name: String,
    /// The API host, e.g. `https://api.wxcc-us1.cisco.com`.
    base_url: String,
    /// The OAuth token endpoint.
    #[serde(default = "default_token_url")]
    token_url: String,
    /// Optional: read from the access token when unset.
    #[serde(default)]
    org_id: Option<String>,
    /// The integration's client ID and secret.
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    /// Optional: `ccetl auth login`/`import` keep tokens in the state DB instead.
    #[serde(default)]
    refresh_token: Option<String>,
    /// Which channels to list; telephony when unset, every channel when empty.
    #[serde(default)]
    channel_types: Option<Vec<String>>,
    /// Copy recordings' audio into the warehouse.
    #[serde(default = "default_true")]
    audio: bool,
    /// Keep each recording's segments (IVR, queue, agent legs).
    #[serde(default = "default_true")]
    segments: bool,
    /// Copy the transcripts the captures API lists (orgs with AI Assistant or AI Quality
    /// Management) and split them into messages.
    #[serde(default = "default_true")]
    transcripts: bool,
    /// Ask for virtual-agent recordings too (`includeVARecordings`; the API's default is
    /// false).
    #[serde(default)]
    va_recordings: bool,
    /// `"skip"` (default) or `"store"`: whether the audio of recordings the API flags
    /// `sensitive` is copied. Skipped audio keeps its row, status `withheld`.
    #[serde(default)]
    sensitive_audio: Option<String>,
    /// `"tasks"` (`/v1/tasks`, the default) or `"search"` (the Search API with the
    /// `[source.search]` filters).
    #[serde(default)]
    discovery: Option<String>,
    #[serde(default)]
    search: Option<search::RawSearch>,
    /// Signs `capture:available` events (32 to 256 characters).
    #[serde(default)]
    webhook_secret: Option<String>,
    /// Tasks per `/v1/tasks` page, 1 to 1000.
    #[serde(default = "default_page_size")]
    page_size: u32,
    /// Longest time range one tasks request may cover; windows are split to fit.
    #[serde(default)]
    max_range: Option<String>,
    /// How long a pre-signed audio URL lives, 1 to 60 minutes.
    #[serde(default = "default_url_expiration")]
    url_expiration_minutes: u32,
    /// Captures queries and downloads in flight; `[pipeline] concurrency` when unset.
    #[serde(default)]
    concurrency: Option<usize>,
    /// The API's rate budget, shared by every source with the same host and client ID.
    #[serde(default)]
    requests_per_minute: Option<u32>,
    /// The window `requests_per_minute` is counted over (60s); shorter only to scale time.
    #[serde(default)]
    rate_window: Option<String>,
    /// Permit plain http to a non-loopback host.
    #[serde(default)]
    allow_insecure_http: bool,
    /// How long a read may wait for a byte before the request counts as stalled.
    #[serde(default)]
    read_timeout: Option<String>,
    /// OAuth scopes `ccetl auth login` asks for; derived from the features when unset.
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default = "default_authorize_url")]
    authorize_url: String,
    /// Where the browser is sent after consent (registered with the integration).
    #[serde(default = "default_redirect_uri")]
    redirect_uri: String,
}

fn default_token_url() -> String {
    "https://webexapis.com/v1/access_token".into()
}
fn default_authorize_url() -> String {
    "https://webexapis.com/v1/authorize".into()
}
fn default_redirect_uri() -> String {
    "http://127.0.0.1:8765/callback".into()
}
fn default_true() -> bool {
    true
}
fn default_page_size() -> u32 {
    1000
}
fn default_url_expiration() -> u32 {
    30
}

/// What happens to the audio of a recording the captures API flags `sensitive` (virtual-agent
/// recordings that may hold card numbers or personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensitiveAudio {
    /// Keep its metadata, copy no audio: status `withheld`.
    Skip,
    /// Copy it like any other recording.
    Store,
}

/// The v1 Webex Contact Center API, checked.
#[derive(Debug, Clone)]
pub struct WebexConfig {
    /// The source's name: state, streams and file names carry it.
    pub name: String,
    /// The API's base URL (`https://api.wxcc-us1.cisco.com` or a region's).
    pub base_url: url::Url,
    /// The OAuth token endpoint.
    pub token_url: url::Url,
    /// The organization asked for; `None`: the token's own.
    pub org_id: Option<String>,
    /// The integration's client ID.
    pub client_id: Secret,
    /// The integration's client secret.
    pub client_secret: Secret,
    /// Optional: `ccetl auth login`/`import` keep tokens in the state DB instead.
    pub refresh_token: Option<Secret>,
    /// OAuth scopes asked for by `ccetl auth login`.
    pub scopes: Vec<String>,
    /// Where `ccetl auth login` sends the browser for consent.
    pub authorize_url: url::Url,
    /// Where the browser is sent after consent; a loopback `http://` URI is received by
    /// `ccetl auth login` itself. Must equal a redirect URI registered for the integration.
    pub redirect_uri: url::Url,
    /// Which channel types `/v1/tasks` lists (`telephony`, `chat`, …).
    pub channel_types: Vec<String>,
    /// Whether recordings' audio is copied into the warehouse.
    pub audio: bool,
    /// Whether segments are joined to their tasks (`webex_task_segments`).
    pub segments: bool,
    /// Whether transcripts are copied and read into messages.
    pub transcripts: bool,
    /// Whether virtual-agent recordings are asked for (`includeVARecordings`).
    pub va_recordings: bool,
    /// Whether the audio of recordings flagged `sensitive` is copied.
    pub sensitive_audio: SensitiveAudio,
    /// Records per `/v1/tasks` page.
    pub page_size: u32,
    /// The longest range one listing asks for; longer windows are split.
    pub max_range: Duration,
    /// How long pre-signed URLs stay valid (`urlExpiration`, minutes).
    pub url_expiration_minutes: u32,
    /// Audio downloads in flight at once.
    pub concurrency: usize,
    /// The API's budget per client ID: `requests_per_minute` in any `rate_window`.
    pub requests_per_minute: u32,
    /// The window `requests_per_minute` is counted over.
    pub rate_window: Duration,
    /// A read that waits longer than this for a byte is a stalled request, retried.
    pub read_timeout: Duration,
    /// `/v1/tasks`, or the Search API with filters.
    pub discovery: Discovery,
    /// Signs `capture:available` events (`ccetl subscribe` registers it, `ccetl serve`
    /// checks it).
    pub webhook_secret: Option<Secret>,
}

impl WebexConfig {
    /// This config with `share` (0 < share <= 1) of its request budgets, Search's too: one
    /// of several shards running at once under its client ID, which together keep under it.
    pub fn sharing(&self, share: f64) -> WebexConfig {
        let part = |n: u32| ((f64::from(n) * share).floor() as u32).max(1);
        let mut cfg = self.clone();
        if share < 1.0 {
            cfg.requests_per_minute = part(cfg.requests_per_minute);
            if let Discovery::Search(s) = &mut cfg.discovery {
                s.requests_per_minute = Some(part(s.requests_per_minute()));
            }
        }
        cfg
    }
}

impl RawWebex {
    /// Checks every key; the first problem is returned, naming its key.
    pub fn validate(self, f: &Fields) -> Result<WebexConfig, KeyError> {
        let insecure = self.allow_insecure_http;
        if !(1..=1000).contains(&self.page_size) {
            return Err(KeyError::new("page_size", "must be between 1 and 1000"));
        }
        // The captures API refuses 0 and anything past 60 minutes (spec: `urlExpiration`,
        // maximum 60).
        if !(1..=MAX_URL_EXPIRATION_MINUTES).contains(&self.url_expiration_minutes) {
            return Err(KeyError::new(
                "url_expiration_minutes",
                format!("must be between 1 and {MAX_URL_EXPIRATION_MINUTES} (the captures API's limit, in minutes)"),
            ));
        }
        let discovery = search::discovery(self.discovery.as_deref(), self.search)?;
        let webhook_secret = f.optional_secret("webhook_secret", self.webhook_secret.as_deref())?;
        if let Some(w) = &webhook_secret {
            if !(32..=256).contains(&w.expose().chars().count()) {
                return Err(KeyError::new(
                    "webhook_secret",
                    "must be 32 to 256 characters (Webex's rule for a subscription secret); generate one with `openssl rand -hex 24`",
                ));
            }
        }
        let redirect_uri = url::Url::parse(&self.redirect_uri).map_err(|e| {
            KeyError::new(
                "redirect_uri",
                format!("'{}' is not a URL: {e}", self.redirect_uri),
            )
        })?;
        Ok(WebexConfig {
            rate_window: f.duration(
                "rate_window",
                self.rate_window.as_deref(),
                Duration::from_secs(60),
                Duration::from_millis(100),
            )?,
            base_url: f.url("base_url", &self.base_url, insecure)?,
            token_url: f.url("token_url", &self.token_url, insecure)?,
            max_range: f.duration(
                "max_range",
                self.max_range.as_deref(),
                Duration::from_secs(86_400),
                Duration::ZERO,
            )?,
            org_id: self
                .org_id
                .as_deref()
                .map(|v| f.expand("org_id", v))
                .transpose()?,
            client_id: f.secret("client_id", self.client_id.as_deref())?,
            client_secret: f.secret("client_secret", self.client_secret.as_deref())?,
            refresh_token: f.optional_secret("refresh_token", self.refresh_token.as_deref())?,
            scopes: scopes(self.scopes, webhook_secret.is_some())?,
            authorize_url: f.url("authorize_url", &self.authorize_url, insecure)?,
            redirect_uri,
            channel_types: channel_types(self.channel_types)?,
            audio: self.audio,
            segments: self.segments,
            transcripts: self.transcripts,
            va_recordings: self.va_recordings,
            sensitive_audio: match self.sensitive_audio.as_deref() {
                None | Some("skip") => SensitiveAudio::Skip,
                Some("store") => SensitiveAudio::Store,
                Some(other) => {
                    return Err(KeyError::new(
                        "sensitive_audio",
                        format!("'{other}' is not \"skip\" or \"store\""),
                    ))
                }
            },
            page_size: self.page_size,
            url_expiration_minutes: self.url_expiration_minutes,
            concurrency: self.concurrency.unwrap_or(f.concurrency).clamp(1, 64),
            requests_per_minute: f.rate(
                "requests_per_minute",
                self.requests_per_minute,
                WEBEX_REQUESTS_PER_MINUTE,
            )?,
            read_timeout: f.read_timeout(self.read_timeout.as_deref())?,
            discovery,
            webhook_secret,
            name: self.name,
        })
    }
}

/// The OAuth scopes `ccetl auth login` asks for: read, and write when webhooks are set up
/// (`webhook_secret`: `ccetl subscribe` registers a subscription). Configured scopes that
/// lack what the configured features need are refused here, not at the first 403.
fn scopes(v: Option<Vec<String>>, webhooks: bool) -> Result<Vec<String>, KeyError> {
    let has = |v: &[String], s: &str| v.iter().any(|x| x == s || x == "cjp:config");
    match v {
        None if webhooks => Ok(vec![READ_SCOPE.into(), WRITE_SCOPE.into()]),
        None => Ok(vec![READ_SCOPE.into()]),
        Some(v) if !has(&v, READ_SCOPE) => Err(KeyError::new(
            "scopes",
            format!("must include {READ_SCOPE} (tasks, captures and search need it)"),
        )),
        Some(v) if webhooks && !has(&v, WRITE_SCOPE) => Err(KeyError::new(
            "scopes",
            format!("must include {WRITE_SCOPE}: webhook_secret is set and `ccetl subscribe` needs it to register the subscription"),
        )),
        Some(v) => Ok(v),
    }
}

/// `channel_types`, each one the API knows; telephony when unset, every channel when empty.
fn channel_types(v: Option<Vec<String>>) -> Result<Vec<String>, KeyError> {
    let v = v.unwrap_or_else(|| vec!["telephony".into()]);
    match v.iter().find(|c| !CHANNEL_TYPES.contains(&c.as_str())) {
        Some(c) => Err(KeyError::new(
            "channel_types",
            format!(
                "'{c}' is not a channel type of the API; use {} (lowercase)",
                CHANNEL_TYPES.join(", ")
            ),
        )),
        None => Ok(v),
    }
}
