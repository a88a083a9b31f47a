//! Window planning and the run loop: the only place that knows the order of stages.
//!
//! For each source: read the watermark → plan grid windows from `high_water - lookback` to
//! `now - settle` → per window: extract → audio → tables → Parquet files → manifest →
//! state commit. Data is durable before the state that points at it, so a crash anywhere
//! replays the window harmlessly (its files are replaced, not duplicated). The watermark
//! advances only over contiguous complete windows.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use crate::auth::AuthError;
use crate::config::{PipelineConfig, SourceConfig, WebexConfig};
use crate::http::HttpCounts;
pub use crate::report::{RunReport, SourceReport, WindowReport};
use crate::sink::manifest::{self, Manifest};
use crate::sink::parquet::{self, TableRows, WrittenFile};
use crate::sink::{StoreError, Warehouse};
use crate::source::webex::{self, tables, WebexClient, WebexError};
use crate::state::{AudioRecord, State, StateError, WindowRecord};
use crate::transform;
use crate::window::{self, Window};

/// Options of one `ccetl run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only these sources (all when empty).
    pub sources: Vec<String>,
    pub dry_run: bool,
    /// The run's idea of "now" (tests and reproducible backfills); the wall clock otherwise.
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--source {0}: no source of that name in the pipeline")]
    UnknownSource(String),
    #[error("source '{source_name}'{window}: {error}")]
    Source {
        source_name: String,
        window: String,
        error: SourceFailure,
    },
    #[error("{failed} of {total} sources failed; first: {first}")]
    Some {
        failed: usize,
        total: usize,
        first: Box<RunError>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceFailure {
    #[error(transparent)]
    Webex(#[from] WebexError),
    #[error(transparent)]
    Write(#[from] parquet::WriteError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Transform(#[from] arrow::error::ArrowError),
}

impl SourceFailure {
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            SourceFailure::Webex(WebexError::Auth(
                AuthError::Rejected { .. } | AuthError::StillUnauthorized { .. }
            ))
        )
    }
}

impl RunError {
    /// True when the cause is rejected credentials (exit code 3).
    pub fn is_auth(&self) -> bool {
        match self {
            RunError::Source { error, .. } => error.is_auth(),
            RunError::Some { first, .. } => first.is_auth(),
            _ => false,
        }
    }
}

/// The stream name of the Webex tasks pipeline in state and manifests.
pub const WEBEX_STREAM: &str = "tasks";

/// Opens each state file once (sources may share one, or have their own via `{source}`).
pub fn open_states(
    cfg: &PipelineConfig,
    names: &[&str],
) -> Result<HashMap<String, Arc<State>>, StateError> {
    let mut by_path: HashMap<PathBuf, Arc<State>> = HashMap::new();
    let mut out = HashMap::new();
    for name in names {
        let path = cfg.state_path(Some(name));
        let st = match by_path.get(&path) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(State::open(&path)?);
                by_path.insert(path, s.clone());
                s
            }
        };
        out.insert(name.to_string(), st);
    }
    Ok(out)
}

/// Runs the pipeline; the report is returned even when some source failed.
pub async fn run(cfg: &PipelineConfig, opts: &RunOptions) -> (RunReport, Result<(), RunError>) {
    let started = Instant::now();
    let started_at = Utc::now();
    let mut report = RunReport {
        pipeline: cfg.name.clone(),
        run_id: None,
        started_at,
        duration_ms: 0,
        status: "failed".into(),
        dry_run: opts.dry_run,
        sources: Vec::new(),
    };
    let result = run_inner(cfg, opts, &mut report).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.status = match &result {
        Ok(()) => "succeeded".into(),
        Err(_) => "failed".into(),
    };
    (report, result)
}

async fn run_inner(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<(), RunError> {
    for s in &opts.sources {
        if !cfg.sources.iter().any(|c| c.name() == s) {
            return Err(RunError::UnknownSource(s.clone()));
        }
    }
    let selected: Vec<&SourceConfig> = cfg
        .sources
        .iter()
        .filter(|s| opts.sources.is_empty() || opts.sources.iter().any(|n| n == s.name()))
        .collect();
    let names: Vec<&str> = selected.iter().map(|s| s.name()).collect();
    let states = open_states(cfg, &names)?;
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let now = opts.now.unwrap_or_else(Utc::now);

    let mut run_ids: HashMap<*const State, i64> = HashMap::new();
    let mut failures = Vec::new();
    for src in &selected {
        let state = states[src.name()].clone();
        let key = Arc::as_ptr(&state);
        let run_id = match run_ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = if opts.dry_run {
                    0
                } else {
                    state.begin_run(&cfg.name)?
                };
                run_ids.insert(key, id);
                id
            }
        };
        report.run_id.get_or_insert(run_id);
        let SourceConfig::Webex(wcfg) = src;
        let mut sr = SourceReport {
            name: wcfg.name.clone(),
            kind: src.kind().into(),
            windows: Vec::new(),
            http: HttpCounts::default(),
            high_water: None,
            error: None,
        };
        let outcome = run_webex(cfg, opts, now, wcfg, &state, &wh, run_id, &mut sr).await;
        sr.high_water = state.high_water(&wcfg.name, WEBEX_STREAM)?;
        if let Err(e) = outcome {
            // main prints the error once; the log keeps it for -v and JSON logs.
            tracing::info!(source = %wcfg.name, error = %e, "Source failed.");
            sr.error = Some(e.to_string());
            failures.push(e);
        }
        report.sources.push(sr);
    }
    let status = if failures.is_empty() {
        "succeeded"
    } else {
        "failed"
    };
    if !opts.dry_run {
        let json = serde_json::to_string(report).unwrap_or_default();
        for (ptr, id) in &run_ids {
            if let Some(st) = states.values().find(|s| Arc::as_ptr(s) == *ptr) {
                st.finish_run(*id, status, &json)?;
            }
        }
    }
    let total = selected.len();
    match failures.len() {
        0 => Ok(()),
        1 if total == 1 => Err(failures.remove(0)),
        n => Err(RunError::Some {
            failed: n,
            total,
            first: Box::new(failures.remove(0)),
        }),
    }
}

/// The windows a run reads for one stream.
pub fn plan_windows(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    now: DateTime<Utc>,
    high_water: Option<DateTime<Utc>>,
) -> Vec<Window> {
    let step = Duration::from_std(cfg.window).unwrap_or(Duration::days(1));
    let settled = now - Duration::from_std(cfg.settle).unwrap_or_default();
    let lookback = Duration::from_std(cfg.lookback).unwrap_or_default();
    let from = match (opts.since, high_water) {
        (Some(s), _) => s,
        (None, Some(hw)) => hw - lookback,
        (None, None) => cfg.start.unwrap_or(now - Duration::days(7)),
    };
    // Never read past now - settle (Airbyte #70341), even when --until asks for more.
    let to = opts.until.map_or(settled, |u| u.min(settled));
    window::plan(from, to, step)
}

#[allow(clippy::too_many_arguments)]
async fn run_webex(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    now: DateTime<Utc>,
    wcfg: &WebexConfig,
    state: &Arc<State>,
    wh: &Warehouse,
    run_id: i64,
    report: &mut SourceReport,
) -> Result<(), RunError> {
    let fail = |w: Option<&Window>, error: SourceFailure| {
        // A window locates a data problem; for credentials it is noise.
        let window = match (w, &error) {
            (Some(w), e) if !e.is_auth() => {
                format!(", window {}..{}", w.start.to_rfc3339(), w.end.to_rfc3339())
            }
            _ => String::new(),
        };
        RunError::Source {
            source_name: wcfg.name.clone(),
            window,
            error,
        }
    };
    let hw = state.high_water(&wcfg.name, WEBEX_STREAM)?;
    let windows = plan_windows(cfg, opts, now, hw);
    tracing::info!(source = %wcfg.name, windows = windows.len(), high_water = ?hw, "Planned windows.");
    if opts.dry_run {
        report.windows = windows
            .iter()
            .map(|w| WindowReport {
                start: w.start,
                end: w.end,
                ..Default::default()
            })
            .collect();
        return Ok(());
    }
    let client = WebexClient::connect(wcfg, state.clone()).map_err(|e| fail(None, e.into()))?;
    let http = client.http.clone();

    let progress = crate::progress::bar(windows.len() as u64, &wcfg.name);
    // The watermark may only move over windows that follow it without a gap.
    let mut frontier = hw;
    let mut result = Ok(());
    for w in &windows {
        match run_window(&client, wh, state, run_id, *w, frontier).await {
            Ok((wr, advanced)) => {
                if let Some(a) = advanced {
                    frontier = Some(a);
                }
                report.windows.push(wr);
            }
            Err(error) => {
                result = Err(fail(Some(w), error));
                break;
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    report.http = http.stats().snapshot();
    result
}

/// Extracts, loads and commits one window. Returns the new watermark when it advanced.
async fn run_window(
    client: &WebexClient,
    wh: &Warehouse,
    state: &State,
    run_id: i64,
    w: Window,
    frontier: Option<DateTime<Utc>>,
) -> Result<(WindowReport, Option<DateTime<Utc>>), SourceFailure> {
    let source = client.config().name.clone();
    let ex = webex::extract(client, w).await?;
    let rows = webex::fetch_audio(client, wh, state, &ex).await?;

    let (tasks, task_dates) = tables::tasks_batch(&ex.tasks, ex.org_id.as_deref());
    let (captures, capture_dates) = tables::captures_batch(&rows);
    let (segments, segment_dates) = tables::segments_batch(&rows);
    let joined = transform::segments::join(&segments, &tasks)?;
    let outputs = [
        TableRows {
            table: "webex_tasks",
            batch: tasks,
            dates: task_dates,
        },
        TableRows {
            table: "webex_captures",
            batch: captures,
            dates: capture_dates,
        },
        TableRows {
            table: "task_segments",
            batch: joined,
            dates: segment_dates.clone(),
        },
        TableRows {
            table: "webex_segments",
            batch: segments,
            dates: segment_dates,
        },
    ];
    let previous = manifest::read(wh, &source, WEBEX_STREAM, w.start).await?;
    let previous_files: HashMap<String, String> = previous
        .iter()
        .flat_map(|m| m.files.iter().map(|f| (f.key.clone(), f.sha256.clone())))
        .collect();
    let mut files: Vec<WrittenFile> = Vec::new();
    for t in &outputs {
        files.extend(parquet::write_table(wh, &source, w.start, t, &previous_files).await?);
    }
    // Files an earlier read of this window wrote that this read does not: gone with it.
    for stale in previous_files
        .keys()
        .filter(|k| !files.iter().any(|f| &f.key == *k))
    {
        wh.delete(stale).await?;
    }

    let mut wr = WindowReport {
        start: w.start,
        end: w.end,
        tasks: ex.tasks.len() as u64,
        recordings: rows.len() as u64,
        segments: rows.iter().filter(|r| r.recording.segment).count() as u64,
        files: files.iter().filter(|f| !f.unchanged).count() as u64,
        files_unchanged: files.iter().filter(|f| f.unchanged).count() as u64,
        ..Default::default()
    };
    let mut ledger = Vec::with_capacity(rows.len());
    for r in &rows {
        match r.audio.status {
            "stored" if r.audio.reused => wr.audio_reused += 1,
            "stored" => {
                wr.audio_stored += 1;
                wr.audio_bytes += r.audio.bytes.unwrap_or(0);
            }
            "pending" => wr.audio_pending += 1,
            "missing" => wr.audio_missing += 1,
            _ => {}
        }
        ledger.push(AudioRecord {
            recording_id: r.recording.id.clone(),
            call_id: r.task_id.clone(),
            uri: r.audio.uri.clone(),
            bytes: r.audio.bytes,
            sha256: r.audio.sha256.clone(),
            status: r.audio.status.to_string(),
            last_error: r.audio.error.clone(),
        });
    }
    wr.complete = wr.audio_pending == 0;

    let m = Manifest {
        source: source.clone(),
        stream: WEBEX_STREAM.into(),
        window_start: w.start,
        window_end: w.end,
        run_id,
        written_at: Utc::now(),
        files: files.iter().map(Into::into).collect(),
        audio_stored: wr.audio_stored + wr.audio_reused,
    };
    let same = previous.is_some_and(|p| {
        p.window_end == m.window_end
            && p.audio_stored == m.audio_stored
            && p.files.len() == m.files.len()
    }) && wr.files == 0;
    if !same {
        manifest::write(wh, &m).await?;
    }

    let contiguous = frontier.is_none_or(|f| w.start <= f);
    let advance = (wr.complete && contiguous).then_some(w.end);
    state.commit_window(
        run_id,
        &WindowRecord {
            source: source.clone(),
            stream: WEBEX_STREAM.into(),
            start: w.start,
            end: w.end,
            rows: wr.tasks,
            files: wr.files,
        },
        &ledger,
        advance,
    )?;
    tracing::info!(
        source = %source, window = %w.start.to_rfc3339(), tasks = wr.tasks, recordings = wr.recordings,
        audio_stored = wr.audio_stored, audio_pending = wr.audio_pending, "Committed window."
    );
    Ok((wr, advance.map(|a| frontier.map_or(a, |f| f.max(a)))))
}
