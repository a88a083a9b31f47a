//! The run report: what each window of each source read, stored and requested. Written by
//! `--report FILE` and into the `runs` table, summarised on stdout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::pacer::Pacer;
use crate::http::{HttpClient, HttpCounts};
use crate::sink::audio::AudioState;
use crate::state::AudioStatus;

/// What one window did: one entry of a source's `windows` in the JSON run report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WindowReport {
    /// Start of the window (inclusive).
    pub start: DateTime<Utc>,
    /// End of the window (exclusive).
    pub end: DateTime<Utc>,
    /// Recordings (Webex captures, Xima recordings).
    pub recordings: u64,
    /// Audio objects copied into the warehouse this run.
    pub audio_stored: u64,
    /// Audio objects already in the warehouse, reused.
    pub audio_reused: u64,
    /// Audio bytes copied.
    pub audio_bytes: u64,
    /// Recordings whose audio is not ready yet or kept failing: the next run tries again.
    pub audio_pending: u64,
    /// Not downloaded because a quota (Xima's bandwidth cap) was reached; next run.
    pub audio_deferred: u64,
    /// Recordings whose audio the source no longer has (404).
    pub audio_missing: u64,
    /// Objects besides audio (Webex's transcripts) not stored yet, or that kept failing:
    /// the next run tries again.
    pub objects_pending: u64,
    /// Parquet files written.
    pub files: u64,
    /// Parquet files already in place, identical.
    pub files_unchanged: u64,
    /// Whether the window committed (nothing pending holds its watermark).
    pub complete: bool,
    /// The window's rows in each table it holds, after this run (unchanged files included).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub table_rows: BTreeMap<String, u64>,
    /// The Delta table versions holding the window (none for Hive folders).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub table_versions: BTreeMap<String, u64>,
    /// The source's own figures (Webex's tasks, Xima's calls, legacy's sessions…), under
    /// the keys its kind declares, flat beside the figures every source has.
    #[serde(flatten)]
    pub counts: Counts,
}

/// A source's own figures of a window, by the keys its kind declares (`SourceKind::counters`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Counts(BTreeMap<&'static str, u64>);

impl Counts {
    /// Adds `n` to `key`.
    pub fn add(&mut self, key: &'static str, n: u64) {
        *self.0.entry(key).or_default() += n;
    }

    /// The figure under `key` (0 when never counted).
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// Adds every figure of `other`.
    pub fn add_all(&mut self, other: &Counts) {
        for (k, n) in &other.0 {
            self.add(k, *n);
        }
    }
}

/// What one source did in a run.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// The source's name.
    pub name: String,
    /// Its kind (`webex`, `legacy`, `xima`).
    pub kind: String,
    /// Its windows, in order.
    pub windows: Vec<WindowReport>,
    /// Its request counters.
    pub http: HttpCounts,
    /// Its watermark after the run.
    pub high_water: Option<DateTime<Utc>>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The exit code this source alone would give: 0 done, 4 partial (a quota stopped it),
    /// else its error's (1 failed, 2 config, 3 credentials).
    pub exit_code: u8,
    /// Wall time of this source's part of the run (sources run at the same time).
    pub duration_ms: u64,
    /// Sources with an egress quota (Xima): what the quota has left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<EgressReport>,
    /// Sources whose API calls draw on a rate budget: the budget and what became of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateReport>,
    /// Dry runs: what the planned windows will cost, from recent runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

/// A dry run's forecast for one source's planned windows.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Estimate {
    /// The recent runs the figures come from.
    pub runs: usize,
    /// API requests per task in those runs.
    pub requests_per_task: f64,
    /// Tasks per day in those runs.
    pub tasks_per_day: f64,
    /// API requests the planned windows need.
    pub requests: u64,
    /// The budget the minutes are counted at.
    pub budget_per_minute: f64,
    /// Minutes the planned windows take at that budget.
    pub minutes: f64,
}

/// A source's rate budget (shared with every source on the same API and credential).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct RateReport {
    /// As configured, in requests per minute (a shortened `rate_window` scales it up).
    pub budget_per_minute: f64,
    /// The allowance at the end of the run.
    pub allowance_per_minute: f64,
    /// The lowest the allowance fell to after 429s.
    pub lowest_per_minute: f64,
    /// Ceilings met: 429s in a row that lowered the allowance (one per congestion, for all
    /// who share it). Lone 429s only delay the request refused.
    pub cuts: u64,
    /// Seconds every request of the budget was held back by a ceiling's `Retry-After`.
    pub paused_s: f64,
    /// This source's API calls per minute of its wall time (see [`SourceReport::set_duration`]).
    pub achieved_per_minute: f64,
}

impl RateReport {
    fn of(pacer: &Pacer) -> Self {
        let rule = pacer.rule();
        let c = pacer.counts();
        let per_minute = 60.0 / rule.burst_window.as_secs_f64();
        RateReport {
            budget_per_minute: rule.per_minute(),
            allowance_per_minute: c.allowance * per_minute,
            lowest_per_minute: c.lowest * per_minute,
            cuts: c.cuts,
            paused_s: c.paused.as_secs_f64(),
            achieved_per_minute: 0.0,
        }
    }
}

impl SourceReport {
    /// An empty report for source `name` of `kind`, filled in as it runs.
    pub fn new(name: &str, kind: &str) -> Self {
        SourceReport {
            name: name.to_string(),
            kind: kind.to_string(),
            windows: Vec::new(),
            http: Default::default(),
            high_water: None,
            error: None,
            exit_code: 0,
            duration_ms: 0,
            egress: None,
            rate: None,
            estimate: None,
        }
    }

    /// Takes the counters of the client a source used, and its rate budget's state.
    pub fn record_http(&mut self, http: &HttpClient) {
        self.http = http.stats().snapshot();
        self.rate = http.pacers().first().map(|p| RateReport::of(p));
    }

    /// Sets the source's wall time, and the rate its API calls achieved over it.
    pub fn set_duration(&mut self, duration_ms: u64) {
        self.duration_ms = duration_ms;
        if let Some(r) = &mut self.rate {
            r.achieved_per_minute =
                self.http.paced_requests as f64 * 60_000.0 / duration_ms.max(1) as f64;
        }
    }
}

/// Audio egress of a source with a quota (Xima's bandwidth cap).
#[derive(Debug, Clone, Serialize)]
pub struct EgressReport {
    /// The rolling period, in days.
    pub period_days: u32,
    /// Audio bytes downloaded in it, this run included.
    pub used_bytes: u64,
    /// The configured `egress_budget`.
    pub budget_bytes: Option<u64>,
}

/// The JSON run report (`--report`), also kept in the state's run ledger.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id in the ledger (`None` for dry runs).
    pub run_id: Option<i64>,
    /// The run's id in the warehouse's `ccetl_runs` (a UUID: unique across workers).
    pub id: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// Its wall time.
    pub duration_ms: u64,
    /// `succeeded`, `partial` (only quotas stopped work) or `failed`.
    pub status: String,
    /// Whether it was `--dry-run`.
    pub dry_run: bool,
    /// Each source's part.
    pub sources: Vec<SourceReport>,
}

impl WindowReport {
    /// A recording kept from the window's files (not read again), by its `audio_status`.
    pub fn count_kept(&mut self, status: Option<AudioStatus>) {
        self.recordings += 1;
        if let Some(status) = status {
            self.count_status(status, true, 0);
        }
    }

    /// A recording's audio as this window settled it.
    pub fn count_audio(&mut self, a: &AudioState) {
        self.count_status(a.status, a.reused, a.bytes.unwrap_or(0));
    }

    /// An object besides audio (a Webex transcript) as this window settled it: `true` when
    /// this run stored it. One not stored yet holds the window's watermark.
    pub fn count_object(&mut self, a: &AudioState) -> bool {
        match a.status {
            AudioStatus::Stored => !a.reused,
            AudioStatus::Pending | AudioStatus::Deferred => {
                self.objects_pending += 1;
                false
            }
            _ => false,
        }
    }

    /// One recording's audio: `reused` when the object was stored by an earlier run.
    fn count_status(&mut self, status: AudioStatus, reused: bool, bytes: u64) {
        match status {
            AudioStatus::Stored if reused => self.audio_reused += 1,
            AudioStatus::Stored => {
                self.audio_stored += 1;
                self.audio_bytes += bytes;
            }
            AudioStatus::Pending => self.audio_pending += 1,
            AudioStatus::Deferred => self.audio_deferred += 1,
            AudioStatus::Missing => self.audio_missing += 1,
            AudioStatus::Disabled | AudioStatus::Withheld => {}
        }
    }
}

impl RunReport {
    /// The run's windows summed over every source (the summary's figures).
    pub fn totals(&self) -> WindowReport {
        self.totals_of(|_| true)
    }

    /// The windows of the sources `keep` takes, summed.
    pub fn totals_of(&self, keep: impl Fn(&SourceReport) -> bool) -> WindowReport {
        let mut t = WindowReport::default();
        let sources = self.sources.iter().filter(|s| keep(s));
        for w in sources.flat_map(|s| &s.windows) {
            t.recordings += w.recordings;
            t.audio_stored += w.audio_stored;
            t.audio_reused += w.audio_reused;
            t.audio_bytes += w.audio_bytes;
            t.audio_pending += w.audio_pending;
            t.audio_missing += w.audio_missing;
            t.audio_deferred += w.audio_deferred;
            t.objects_pending += w.objects_pending;
            t.counts.add_all(&w.counts);
            t.files += w.files;
            t.files_unchanged += w.files_unchanged;
            for (table, n) in &w.table_rows {
                *t.table_rows.entry(table.clone()).or_default() += n;
            }
            for (table, v) in &w.table_versions {
                let newest = t.table_versions.entry(table.clone()).or_default();
                *newest = (*newest).max(*v);
            }
        }
        t
    }

    /// Requests sent by every source.
    pub fn requests(&self) -> u64 {
        self.sources.iter().map(|s| s.http.requests).sum()
    }
}
