//! How a Webex source discovers its tasks: `/v1/tasks` (everything in a window), or the
//! Search API (GraphQL) with filters, so only the calls wanted are listed and have their
//! captures asked for (`discovery = "search"` plus a `[source.search]` table).

use std::time::Duration;

use serde::Deserialize;

use crate::extract::fields::check_rate;
use crate::units::parse_duration;

/// `[source.search]` as written. Lists match any of their values; the filters combine with
/// AND.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSearch {
    /// Queue names or ids (the task's last queue).
    #[serde(default)]
    queues: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
    /// Sites: Webex's business units.
    #[serde(default)]
    sites: Vec<String>,
    /// Agent names or ids (the last agent who handled the task).
    #[serde(default)]
    agents: Vec<String>,
    #[serde(default)]
    directions: Vec<String>,
    #[serde(default)]
    termination_types: Vec<String>,
    /// Shorter calls (total duration) are left out.
    #[serde(default)]
    min_duration: Option<String>,
    /// Patterns the caller's number (ANI) / the number dialled (DNIS) must match whole.
    #[serde(default)]
    ani: Option<String>,
    #[serde(default)]
    dnis: Option<String>,
    /// Global variables (CAD) read into `extra.globalVariables`.
    #[serde(default)]
    variables: Vec<String>,
    /// The most records one query pages through (Cisco's samples: 100,000 for taskDetails);
    /// a range whose listing reaches it is split and asked again.
    #[serde(default)]
    record_cap: Option<usize>,
    /// Search's own rate budget, on top of the source's (Cisco publishes no Search limit).
    #[serde(default)]
    requests_per_minute: Option<u32>,
}

/// Checked filters of the Search API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchConfig {
    /// Queue ids a task must have been in.
    pub queues: Vec<String>,
    /// Team ids.
    pub teams: Vec<String>,
    /// Site ids.
    pub sites: Vec<String>,
    /// Agent ids.
    pub agents: Vec<String>,
    /// Directions (`INBOUND`, `OUTBOUND`).
    pub directions: Vec<String>,
    /// Termination types (`normal`, `abandoned`, …).
    pub termination_types: Vec<String>,
    /// Shortest task kept.
    pub min_duration: Option<Duration>,
    /// Calling number.
    pub ani: Option<String>,
    /// Dialed number.
    pub dnis: Option<String>,
    /// Global variables (CAD) read into `extra.globalVariables`.
    pub variables: Vec<String>,
    /// `None`: the documented [`SEARCH_RECORD_CAP`].
    pub record_cap: Option<usize>,
    /// Search's own budget, within the source's `requests_per_minute`; `None`: the
    /// conservative [`SEARCH_REQUESTS_PER_MINUTE`].
    pub requests_per_minute: Option<u32>,
}

/// Search's budget when none is set: Cisco publishes no limit for `/search` and calls it
/// "not designed for bulk data export", so a fifth of the API's default.
pub const SEARCH_REQUESTS_PER_MINUTE: u32 = 60;

/// The most `taskDetails` records one Search query pages through (Cisco's graphql-sample
/// README: page size 250, at most 100,000 records with pagination).
pub const SEARCH_RECORD_CAP: usize = 100_000;

impl SearchConfig {
    /// The record cap queries are sized under.
    pub fn record_cap(&self) -> usize {
        self.record_cap.unwrap_or(SEARCH_RECORD_CAP)
    }

    /// Search's requests per minute (per rate window).
    pub fn requests_per_minute(&self) -> u32 {
        self.requests_per_minute
            .unwrap_or(SEARCH_REQUESTS_PER_MINUTE)
    }
}

/// Where a Webex source's task list comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    /// `GET /v1/tasks`, paged by time.
    Tasks,
    /// `POST /search` (`taskDetails`), filtered, paged by cursor.
    Search(Box<SearchConfig>),
}

/// Checks `discovery` and `[source.search]` together; errors are (key, message).
pub(super) fn discovery(
    discovery: Option<&str>,
    search: Option<RawSearch>,
) -> Result<Discovery, (&'static str, String)> {
    match (discovery.unwrap_or("tasks"), search) {
        ("tasks", None) => Ok(Discovery::Tasks),
        ("tasks", Some(_)) => Err((
            "search",
            "filters only apply to Search discovery; add discovery = \"search\"".into(),
        )),
        ("search", raw) => check(raw.unwrap_or_default()).map(|s| Discovery::Search(Box::new(s))),
        (other, _) => Err((
            "discovery",
            format!("'{other}' is not a discovery; use \"tasks\" or \"search\""),
        )),
    }
}

fn check(raw: RawSearch) -> Result<SearchConfig, (&'static str, String)> {
    let pattern = |key: &'static str, p: Option<String>| -> Result<_, (&'static str, String)> {
        if let Some(p) = &p {
            regex::Regex::new(p).map_err(|e| {
                (
                    key,
                    format!("'{p}' is not a valid pattern: {}", one_line(&e)),
                )
            })?;
        }
        Ok(p)
    };
    for (key, list) in [
        ("search.queues", &raw.queues),
        ("search.teams", &raw.teams),
        ("search.sites", &raw.sites),
        ("search.agents", &raw.agents),
        ("search.directions", &raw.directions),
        ("search.termination_types", &raw.termination_types),
        ("search.variables", &raw.variables),
    ] {
        if list.iter().any(|v| v.trim().is_empty()) {
            return Err((key, "holds an empty value; remove it".into()));
        }
    }
    let min_duration = raw
        .min_duration
        .as_deref()
        .map(|v| parse_duration(v).map_err(|e| ("search.min_duration", e.to_string())))
        .transpose()?;
    Ok(SearchConfig {
        ani: pattern("search.ani", raw.ani)?,
        dnis: pattern("search.dnis", raw.dnis)?,
        queues: raw.queues,
        teams: raw.teams,
        sites: raw.sites,
        agents: raw.agents,
        directions: raw.directions,
        termination_types: raw.termination_types,
        min_duration,
        variables: raw.variables,
        requests_per_minute: raw
            .requests_per_minute
            .map(|n| check_rate("search.requests_per_minute", n))
            .transpose()?,
        record_cap: match raw.record_cap {
            Some(n) if n < 2 => return Err(("search.record_cap", "must be at least 2".into())),
            other => other,
        },
    })
}

fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}
