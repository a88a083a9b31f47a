//! Pipeline TOML → validated structs.
//!
//! Parsing is split in two, as ripgrep does with its low/high args: `RawConfig` mirrors
//! the file (serde), and [`PipelineConfig`] is the checked result, with `${ENV}` secrets
//! resolved and durations parsed. Every problem is reported before any I/O happens, as one
//! line that names the key and the fix.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub mod exposure;

use crate::extract::fields::{self, Fields, KeyError, ValueError};
use crate::extract::{DynSource, Source, SourceKind};
use crate::source::KINDS;
use crate::units::{format_duration, parse_duration, parse_time};

/// A config problem. Always exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read pipeline file {path}: {source}")]
    #[allow(missing_docs)] // the message names them
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a valid pipeline file: {message} (TOML; see the README's config reference)"
    )]
    /// The file is not TOML.
    #[allow(missing_docs)] // the message names them
    Syntax { path: PathBuf, message: String },
    /// A key has a value that cannot be used.
    #[error("{path}: {key}: {message}")]
    #[allow(missing_docs)] // the message names them
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// Always [`ErrorKind::Config`](crate::error::ErrorKind::Config): exit code 2.
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Config
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pipeline: RawPipeline,
    /// Each `[[source]]` table, read by its kind's own struct once `kind` is known.
    #[serde(default, rename = "source")]
    sources: Vec<toml::Table>,
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
    /// Where workers that share no disk keep each source's tokens (an object-store URL).
    #[serde(default)]
    token_store: Option<String>,
    /// `delta` (default) or `parquet`.
    #[serde(default)]
    table_format: crate::sink::table::TableFormat,
    /// How long `ccetl vacuum` keeps the files older table versions read.
    #[serde(default = "default_retention")]
    retention: String,
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
/// Delta's default `delta.deletedFileRetentionDuration`.
fn default_retention() -> String {
    "7d".into()
}
fn default_concurrency() -> usize {
    8
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The pipeline file it was read from.
    pub path: PathBuf,
    /// The pipeline's name.
    pub name: String,
    /// Warehouse URL, normalised (`file:///abs/path` for local directories).
    pub warehouse: String,
    /// Options passed to object_store (credentials, region, endpoint).
    pub storage_options: BTreeMap<String, String>,
    /// The token store workers share (an object-store URL outside the warehouse), if any.
    pub token_store: Option<String>,
    /// State DB path, `{source}` not yet substituted.
    pub state: PathBuf,
    /// The length of one window.
    pub window: Duration,
    /// How far back each run reads again, for data the API reports late.
    pub lookback: Duration,
    /// Never read newer than `now - settle`: the API is still filling the newest minutes.
    pub settle: Duration,
    /// Sources run at once.
    pub concurrency: usize,
    /// Earliest time the first run extracts from; `None`: 7 days back.
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// The sources, in file order.
    pub sources: Vec<SourceConfig>,
    /// What the warehouse's tables are: Delta Lake tables (default) or Hive folders.
    pub table_format: crate::sink::table::TableFormat,
    /// How long `ccetl vacuum` keeps the data files that older table versions read (and
    /// files no version names, which a killed run left): time travel reaches this far back.
    pub retention: Duration,
}

/// A validated `[[source]]`: its kind's config, behind the [`Source`] interface, and the
/// kind in the registry that parsed it.
#[derive(Clone)]
pub struct SourceConfig {
    kind: &'static SourceKind,
    source: Arc<dyn DynSource>,
}

impl SourceConfig {
    /// Its `kind = "…"`.
    pub fn kind(&self) -> &'static str {
        self.kind.name
    }

    /// Its system in the registry of source kinds.
    pub fn source_kind(&self) -> &'static SourceKind {
        self.kind
    }

    /// Its kind's own config, when it is of kind `T` (for commands only one kind has, such
    /// as Webex's `auth login`).
    pub fn downcast<T: Source>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.source;
        any.downcast_ref()
    }
}

impl std::ops::Deref for SourceConfig {
    type Target = dyn DynSource;

    fn deref(&self) -> &Self::Target {
        &*self.source
    }
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.source, f)
    }
}

/// `"webex", "webex_legacy" or "xima"`.
fn kind_list() -> String {
    let names: Vec<String> = KINDS.iter().map(|k| format!("\"{}\"", k.name)).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Why `key` is refused on a source of `kind`: another kind's key, or no kind's.
fn foreign_key(kind: &SourceKind, key: &str) -> String {
    if let Some((_, why)) = kind.hints.iter().find(|(k, _)| *k == key) {
        return format!("does not apply to {}, {why}", kind.name);
    }
    let owners: Vec<&str> = KINDS
        .iter()
        .filter(|k| (k.keys)().contains(&key))
        .map(|k| k.name)
        .collect();
    if owners.is_empty() {
        format!(
            "unknown key for a {} source; it takes kind, {}",
            kind.name,
            (kind.keys)().join(", ")
        )
    } else {
        format!(
            "is a key of {} sources, not of {} ones; remove it, or check `kind`",
            owners.join(" and "),
            kind.name
        )
    }
}

/// One `[[source]]` table, checked by its kind; errors are (key within the source, message).
fn parse_source(mut table: toml::Table, fields: &Fields) -> Result<SourceConfig, KeyError> {
    let kind = match table.remove("kind") {
        Some(toml::Value::String(k)) => k,
        Some(_) => {
            return Err(KeyError::new(
                "kind",
                format!("must be a string: {}", kind_list()),
            ))
        }
        None => {
            return Err(KeyError::new(
                "kind",
                format!("is required: {}", kind_list()),
            ))
        }
    };
    let kind = KINDS.iter().find(|k| k.name == kind).ok_or_else(|| {
        KeyError::new(
            "kind",
            format!("'{kind}' is not a known source kind; use {}", kind_list()),
        )
    })?;
    let known = (kind.keys)();
    if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(KeyError::new(key.as_str(), foreign_key(kind, key)));
    }
    Ok(SourceConfig {
        kind,
        source: (kind.parse)(table, fields)?,
    })
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

    /// [`PipelineConfig::load`] for commands that print no secret and send no request
    /// (`ccetl describe`, which an orchestrator runs where the secrets are not set): an unset
    /// `${VAR}` reads as the placeholder `unset:VAR`.
    pub fn load_without_secrets(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, &|k| {
            Some(std::env::var(k).unwrap_or_else(|_| format!("unset:{k}")))
        })
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
            message: fields::printable(&message),
        };
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let p = raw.pipeline;
        if p.name.trim().is_empty() {
            return Err(invalid("pipeline.name", "must not be empty".into()));
        }
        let dur = |key: &str, v: &str| parse_duration(v).map_err(|e| invalid(key, e.to_string()));
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
        let retention = dur("pipeline.retention", &p.retention)?;
        let min = crate::sink::table::delta::MIN_RETENTION;
        if retention < min {
            return Err(invalid(
                "pipeline.retention",
                format!(
                    "must be at least {}: a window's files are written before its commit, and vacuum must not delete them",
                    format_duration(min)
                ),
            ));
        }
        if p.concurrency == 0 || p.concurrency > 256 {
            return Err(invalid(
                "pipeline.concurrency",
                "must be between 1 and 256".into(),
            ));
        }
        let warehouse = normalise_warehouse(&p.warehouse, base_dir)
            .map_err(|e| invalid("pipeline.warehouse", e.to_string()))?;
        let state = base_dir.join(&p.state);
        let start = p
            .start
            .as_deref()
            .map(|s| parse_time(s).map_err(|e| invalid("pipeline.start", e.to_string())))
            .transpose()?;

        let mut sources = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        let fields = Fields::new(env, p.concurrency);
        for (i, table) in raw.sources.into_iter().enumerate() {
            let at = |k: &str| match k {
                "" => format!("source[{i}]"),
                k => format!("source[{i}].{k}"),
            };
            let source =
                parse_source(table, &fields).map_err(|e| invalid(&at(&e.key), e.message))?;
            let name = source.name();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    &at("name"),
                    format!("'{name}' must be non-empty and use only letters, digits, '-' and '_'"),
                ));
            }
            if !names.insert(name.to_string()) {
                return Err(invalid(
                    &at("name"),
                    format!("'{name}' is used by two sources; names must be unique"),
                ));
            }
            sources.push(source);
        }
        if sources.is_empty() {
            return Err(invalid(
                "source",
                "no [[source]] is configured; add at least one".into(),
            ));
        }
        let token_store = match p.token_store {
            Some(url) => {
                Some(check_token_store(&url, &warehouse).map_err(|e| invalid(&e.key, e.message))?)
            }
            None => None,
        };
        Ok(PipelineConfig {
            path: path.to_path_buf(),
            name: p.name,
            warehouse,
            storage_options: p.storage_options,
            token_store,
            state,
            window,
            lookback,
            settle,
            concurrency: p.concurrency,
            start,
            sources,
            table_format: p.table_format,
            retention,
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

/// Turns a warehouse setting into a URL; bare paths become `file://` relative to the pipeline file.
/// A token store is an object store (a local disk is what the state file already is) outside
/// the warehouse, whose readers must not read tokens.
fn check_token_store(url: &str, warehouse: &str) -> Result<String, KeyError> {
    let bad = |message: String| KeyError::new("pipeline.token_store", message);
    let parsed = url::Url::parse(url).map_err(|e| {
        bad(format!("'{url}' is not a URL ({e}); give an object-store prefix such as s3://bucket/ccetl-tokens"))
    })?;
    if parsed.scheme() == "file" {
        return Err(bad("must be an object store (s3://, gs://, az://): on one machine the state file keeps the tokens".into()));
    }
    let url = url.trim_end_matches('/').to_string();
    let inside =
        |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
    if inside(warehouse, &url) {
        return Err(bad(format!(
            "'{url}' is inside the warehouse {warehouse}, whose readers would see the tokens; choose a prefix outside it"
        )));
    }
    let bucket = |u: &str| {
        url::Url::parse(u)
            .ok()
            .map(|p| (p.scheme().to_string(), p.host_str().map(str::to_string)))
    };
    if bucket(&url) == bucket(warehouse) {
        tracing::warn!(token_store = %url, warehouse, "The token store shares the warehouse's bucket: grant readers of the warehouse its prefix only.");
    }
    Ok(url)
}

fn normalise_warehouse(value: &str, base_dir: &Path) -> Result<String, ValueError> {
    if let Some((scheme, _)) = value.split_once("://") {
        return match scheme {
            "file" | "s3" | "gs" | "az" | "abfs" | "abfss" => {
                Ok(value.trim_end_matches('/').to_string())
            }
            other => Err(ValueError::WarehouseScheme(other.to_string())),
        };
    }
    let dir = base_dir.join(value);
    let abs = std::path::absolute(&dir).map_err(|source| ValueError::Unresolvable {
        path: value.to_string(),
        source,
    })?;
    let u = url::Url::from_directory_path(&abs)
        .map_err(|()| ValueError::NotADirectory(abs.display().to_string()))?;
    Ok(u.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::legacy::config::LegacyConfig;
    use crate::source::webex::config::{Discovery, WebexConfig, WEBEX_REQUESTS_PER_MINUTE};

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
    fn a_value_with_a_newline_is_echoed_on_one_line() {
        // The fuzzer's find: a control character inside a quoted value the message repeats.
        for value in [r#"["teleph\ny"]"#, r#"["teleph\u000by"]"#] {
            let text = format!("{GOOD}channel_types = {value}\n");
            let e = PipelineConfig::parse(Path::new("/p/x.toml"), &text, &env).unwrap_err();
            let msg = e.to_string();
            assert!(!msg.contains('\n') && !msg.contains('\u{b}'), "{msg}");
            assert!(
                msg.contains("channel_types") && msg.contains("teleph"),
                "{msg}"
            );
        }
    }

    #[test]
    fn parses_and_expands_env() {
        let c = PipelineConfig::parse(Path::new("/p/x.toml"), GOOD, &env).unwrap();
        assert_eq!(c.warehouse, "file:///p/wh");
        assert_eq!(c.window, Duration::from_secs(86_400));
        let Some(w) = c.sources[0].downcast::<WebexConfig>() else {
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
        let Some(w) = c.sources[0].downcast::<WebexConfig>() else {
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
        let Some(w) = c.sources[0].downcast::<WebexConfig>() else {
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
                .map(|c| {
                    let w = c.sources[0].downcast::<WebexConfig>();
                    w.expect("webex source expected").discovery.clone()
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
                .map(|c| {
                    let w = c.sources[0].downcast::<WebexConfig>();
                    w.expect("webex source expected").scopes.join(" ")
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
        let Some(l) = c.sources[1].downcast::<LegacyConfig>() else {
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
    fn another_kinds_key_is_refused_naming_the_kind_that_has_it() {
        let xima = "[[source]]\nkind = \"xima\"\nname = \"x\"\nbase_url = \"http://127.0.0.1:9\"\ntenant = \"t\"\napi_key = \"k\"\n";
        let legacy = "[[source]]\nkind = \"webex_legacy\"\nname = \"lg\"\nbase_url = \"https://rest.example/aws/api\"\nuser_id = \"u\"\napi_key = \"k\"\n";
        let parse = |text: String| {
            PipelineConfig::parse(Path::new("x.toml"), &text, &env).map_err(|e| e.to_string())
        };
        assert!(parse(format!("{GOOD}{xima}{legacy}")).is_ok());
        for (text, key, says) in [
            (
                format!("{GOOD}tenant = \"t\"\n"),
                "source[0].tenant",
                "a key of xima sources, not of webex ones",
            ),
            (
                format!("{GOOD}{xima}discovery = \"search\"\n"),
                "source[1].discovery",
                "a key of webex sources, not of xima ones",
            ),
            (
                format!("{GOOD}{xima}[source.search]\nqueues = [\"q\"]\n"),
                "source[1].search",
                "a key of webex sources",
            ),
            (
                format!("{GOOD}{legacy}audio = false\n"),
                "source[1].audio",
                "a key of webex and xima sources, not of webex_legacy ones",
            ),
            (
                format!("{GOOD}{legacy}egress_budget = \"1GB\"\n"),
                "source[1].egress_budget",
                "a key of xima sources",
            ),
            (
                format!("{GOOD}{xima}rate_window = \"6s\"\n"),
                "source[1].rate_window",
                "a key of webex sources",
            ),
            (
                format!("{GOOD}tenent = \"t\"\n"),
                "source[0].tenent",
                "unknown key for a webex source; it takes kind, name, base_url",
            ),
            (
                format!("{GOOD}page_size = \"big\"\n"),
                "source[0].page_size",
                "invalid type: string \"big\", expected u32",
            ),
            (
                GOOD.replace("kind = \"webex\"\n", ""),
                "source[0].kind",
                "is required: \"webex\", \"webex_legacy\", \"xima\"",
            ),
            (
                GOOD.replace("\"webex\"", "\"genesys\""),
                "source[0].kind",
                "'genesys' is not a known source kind",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.contains(&format!("{key}: ")) && e.contains(says),
                "{key}: {e}"
            );
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn each_kind_knows_its_keys() {
        for k in KINDS.iter().filter(|k| k.name != "example") {
            let keys = (k.keys)();
            assert!(
                keys.contains(&"name") && keys.contains(&"base_url"),
                "{}: {keys:?}",
                k.name
            );
        }
        assert!((crate::source::webex::KIND.keys)().contains(&"search"));
    }

    #[test]
    fn unknown_key_is_rejected() {
        let text = GOOD.replace("state = ", "stat = \"x\"\nstate = ");
        let e = PipelineConfig::parse(Path::new("x.toml"), &text, &env).unwrap_err();
        assert!(e.to_string().contains("stat"), "{e}");
    }
}
