//! Window planning and the run loop: the only place that knows the order of stages.
//!
//! For each source: read the watermark → plan grid windows from `high_water - lookback` to
//! `now - settle` → per window: the source extracts its tables (and audio) → `commit`
//! writes Parquet files → manifest → state; `stages` overlaps consecutive windows. Data is
//! durable before the state that points at it, so a crash anywhere replays the window
//! harmlessly (its files are replaced, not duplicated). The watermark advances only over
//! contiguous complete windows.
//!
//! What a source implements against ([`SourceRun`], [`WindowStages`], [`ReadWindow`],
//! [`SourceFailure`]) is documented item by item: the lint below keeps it so.

mod commit;
mod estimate;
mod events;
pub mod finalize;
mod leases;
pub mod rebuild;
pub mod shards;
mod stages;

pub use commit::WindowOutput;
pub use events::commit_events;
pub use stages::{Listing, ReadWindow, WindowStages};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use crate::config::{PipelineConfig, SourceConfig};
use crate::error::ErrorKind;
pub use crate::report::{RunReport, SourceReport, WindowReport};
use crate::sink::audio_copy::AudioCopy;
use crate::sink::parquet;
use crate::sink::{StoreError, Warehouse};
use crate::source::SystemError;
use crate::state::lock::RunLock;
use crate::state::{State, StateError};
use crate::window::{self, Window};

/// Options of one `ccetl run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Read from here instead of the watermark minus the lookback (`--since`).
    pub since: Option<DateTime<Utc>>,
    /// Read up to here at most (`--until`); never past now minus `settle`.
    pub until: Option<DateTime<Utc>>,
    /// Only these sources (all when empty).
    pub sources: Vec<String>,
    /// Plan and estimate only: no request, no write (`--dry-run`).
    pub dry_run: bool,
    /// The run's idea of "now" (tests and reproducible backfills); the wall clock otherwise.
    pub now: Option<DateTime<Utc>>,
    /// This run's share of each source's request budget (a shard beside others of its pool);
    /// the whole budget when `None`.
    pub rate_share: Option<f64>,
    /// Above this many tasks in a window, the next window is not listed beside its read
    /// (None: the default, `stages::LIST_AHEAD_MAX_TASKS`); tests set it low.
    pub list_ahead_max_tasks: Option<usize>,
}

/// Why a run, or part of it, failed. Its [`kind`](RunError::kind) sets the exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The warehouse could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A shared warehouse's checkpoint or lease could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] crate::sink::versioned::VersionedError),
    /// The warehouse's tables cannot be committed to safely.
    #[error(transparent)]
    Table(#[from] crate::sink::table::delta::DeltaError),
    /// Another worker holds the source's lease (a shared warehouse).
    #[error("source '{source_name}': {error}")]
    #[allow(missing_docs)]
    Lease {
        source_name: String,
        error: crate::sink::lease::LeaseError,
    },
    /// `--source` names no source of the pipeline.
    #[error("--source {0}: no source of that name in the pipeline")]
    UnknownSource(String),
    /// A source's task panicked or was cancelled.
    #[error("a source's task ended abnormally: {0}")]
    Task(String),
    /// The pipeline's token store could not be read.
    #[error("token store {url}: {message}")]
    #[allow(missing_docs)]
    TokenStore { url: String, message: String },
    /// `state rebuild` could not read the recordings tables back.
    #[error("state rebuild: reading the recording tables: {0}")]
    Rebuild(String),
    /// The state file is gone but the warehouse holds committed windows.
    #[error("state file {path} is missing, but the warehouse holds {windows} committed windows of source '{source_name}': run `ccetl state rebuild {pipeline}` to recreate the state from the warehouse (or remove {warehouse}/_ccetl/manifests to extract everything again)")]
    #[allow(missing_docs)]
    StateMissing {
        path: PathBuf,
        source_name: String,
        windows: usize,
        pipeline: String,
        warehouse: String,
    },
    /// A source failed, in a window when one is named.
    #[error("source '{source_name}'{window}: {error}")]
    #[allow(missing_docs)]
    Source {
        source_name: String,
        window: String,
        error: Box<SourceFailure>,
    },
    /// A quota stopped part of the work; what was done is committed and a rerun resumes.
    #[error("source '{source_name}': partial: {message}")]
    #[allow(missing_docs)]
    Partial {
        source_name: String,
        message: String,
    },
    /// Several sources ran and some failed.
    #[error("{failed} of {total} sources failed; first: {first}")]
    Some {
        /// How many failed, of how many.
        failed: usize,
        /// How many sources ran.
        total: usize,
        /// The first failure.
        first: Box<RunError>,
        /// Every failure was a quota (exit 4, not 1).
        all_partial: bool,
    },
}

/// Why a source's window (or its connection) failed: its system's own error, or one of
/// the writes every source shares.
#[derive(Debug, thiserror::Error)]
pub enum SourceFailure {
    /// The source system's own error (its API, its data).
    #[error(transparent)]
    System(SystemFailure),
    /// Encoding a table's Parquet file.
    #[error(transparent)]
    Write(#[from] parquet::WriteError),
    /// Writing to the warehouse.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Committing a window's files to its table.
    #[error(transparent)]
    Table(#[from] crate::sink::table::TableError),
    /// Writing the state.
    #[error(transparent)]
    State(#[from] StateError),
    /// Moving the warehouse's checkpoint (a shared warehouse).
    #[error(transparent)]
    Checkpoint(#[from] crate::sink::versioned::VersionedError),
    /// The run's lease on the source is lost: it stopped before committing.
    #[error(transparent)]
    Fenced(#[from] crate::sink::lease::LeaseError),
    /// Building a table in Arrow.
    #[error(transparent)]
    Transform(#[from] arrow::error::ArrowError),
    /// The runtime shut down under a blocking task.
    #[error(transparent)]
    ShutDown(#[from] crate::blocking::ShutDown),
}

impl SourceFailure {
    /// What the user does about it: the system's own kind, `Other` for shared writes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceFailure::System(e) => e.0.kind(),
            SourceFailure::Checkpoint(e) => e.kind(),
            SourceFailure::Fenced(e) => e.kind(),
            SourceFailure::Write(_)
            | SourceFailure::Store(_)
            | SourceFailure::Table(_)
            | SourceFailure::State(_)
            | SourceFailure::Transform(_)
            | SourceFailure::ShutDown(_) => ErrorKind::Other,
        }
    }

    /// True when the cause is rejected credentials (no window is named then).
    pub fn is_auth(&self) -> bool {
        self.kind() == ErrorKind::Auth
    }
}

impl<E: SystemError> From<E> for SourceFailure {
    fn from(e: E) -> Self {
        SourceFailure::System(SystemFailure(Box::new(e)))
    }
}

/// A source system's error, whichever the system: shown as itself, causes and all.
#[derive(Debug)]
pub struct SystemFailure(Box<dyn SystemError>);

impl std::fmt::Display for SystemFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SystemFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl RunError {
    /// `Quota` when only quotas stopped the run (everything else succeeded); a failed source
    /// is its own error's kind; of several, the first's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RunError::UnknownSource(_) => ErrorKind::Config,
            RunError::Checkpoint(e) => e.kind(),
            RunError::Lease { error, .. } => error.kind(),
            RunError::Partial { .. } => ErrorKind::Quota,
            RunError::Source { error, .. } => error.kind(),
            RunError::Some {
                all_partial: true, ..
            } => ErrorKind::Quota,
            RunError::Some { first, .. } => match first.kind() {
                ErrorKind::Quota => ErrorKind::Other,
                k => k,
            },
            RunError::State(_)
            | RunError::Store(_)
            | RunError::Table(_)
            | RunError::Task(_)
            | RunError::Rebuild(_)
            | RunError::TokenStore { .. }
            | RunError::StateMissing { .. } => ErrorKind::Other,
        }
    }

    /// True when only a quota stopped the run (exit code 4): everything else succeeded.
    pub fn is_partial(&self) -> bool {
        self.kind() == ErrorKind::Quota
    }

    /// True when the cause is rejected credentials (exit code 3).
    pub fn is_auth(&self) -> bool {
        self.kind() == ErrorKind::Auth
    }
}

/// The stream name a source's windows, manifests and watermark are kept under.
pub fn stream_of(src: &SourceConfig) -> &'static str {
    src.source_kind().stream
}

/// Takes the run lock of each state file the named sources use (once per file).
pub fn lock_states(cfg: &PipelineConfig, names: &[&str]) -> Result<Vec<RunLock>, StateError> {
    let mut paths: Vec<PathBuf> = names.iter().map(|n| cfg.state_path(Some(n))).collect();
    paths.sort();
    paths.dedup();
    paths.iter().map(|p| RunLock::acquire(p)).collect()
}

/// Opens each state file once (sources may share one, or have their own via `{source}`).
pub fn open_states(
    cfg: &PipelineConfig,
    names: &[&str],
) -> Result<HashMap<String, Arc<State>>, RunError> {
    let shared = match &cfg.token_store {
        Some(url) => Some(crate::auth::shared::SharedTokens::open(
            url,
            &cfg.storage_options,
        )?),
        None => None,
    };
    let mut by_path: HashMap<PathBuf, Arc<State>> = HashMap::new();
    let mut out = HashMap::new();
    for name in names {
        let path = cfg.state_path(Some(name));
        let st = match by_path.get(&path) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(State::open(&path)?);
                if let Some(shared) = &shared {
                    s.share_tokens(shared.clone());
                }
                by_path.insert(path, s.clone());
                s
            }
        };
        out.insert(name.to_string(), st);
    }
    Ok(out)
}

/// Copies each source's tokens from the pipeline's token store, if it has one, into its
/// state, for what reads them there (`ccetl check`, `ccetl auth status`).
pub async fn pull_shared_tokens(states: &HashMap<String, Arc<State>>) -> Result<(), RunError> {
    use crate::auth::TokenStore;
    for (source, state) in states {
        if let Some(shared) = state.shared() {
            shared
                .pull(source, state.as_ref())
                .await
                .map_err(|e| RunError::TokenStore {
                    url: shared.url().to_string(),
                    message: e.to_string(),
                })?;
        }
    }
    Ok(())
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
        Err(e) if e.is_partial() => "partial".into(),
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
    // One writer per state file, taken before DuckDB's own lock so a second run is told
    // who holds it. Held until the run ends.
    let _locks = if opts.dry_run {
        Vec::new()
    } else {
        lock_states(cfg, &names)?
    };
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    // A bucket that cannot refuse a second create would let two Delta commits both land:
    // refused before anything is written.
    if wh.is_shared() && !opts.dry_run && cfg.table_format == crate::sink::table::TableFormat::Delta
    {
        crate::sink::table::delta::probe_conditional_create(&wh).await?;
    }
    // On a shared warehouse, one writer per source (per shard) across workers.
    let fences = if wh.is_shared() && !opts.dry_run {
        leases::take(&wh, &selected, opts).await?
    } else {
        Vec::new()
    };
    let result = run_held(cfg, opts, report, &selected, &wh, &fences).await;
    leases::give_back(&wh, &fences).await;
    result
}

/// The run, once it may write: its sources' states opened (or taken over from a shared
/// warehouse's checkpoint) and its sources run side by side.
async fn run_held(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    report: &mut RunReport,
    selected: &[&SourceConfig],
    wh: &Warehouse,
    fences: &[(String, Arc<crate::sink::fence::Fence>)],
) -> Result<(), RunError> {
    let names: Vec<&str> = selected.iter().map(|s| s.name()).collect();
    // A shared warehouse's checkpoints say what is done, read once: a new worker takes
    // them over.
    let mut checkpoints = HashMap::new();
    if wh.is_shared() {
        for src in selected {
            let path = crate::sink::checkpoint::path_of(wh, src.name(), stream_of(src));
            if let Some(cp) = crate::sink::checkpoint::read(wh.store().as_ref(), &path).await? {
                checkpoints.insert(src.name(), cp);
            }
        }
    }
    // A lost state file must not silently mean "extract everything again".
    for src in selected {
        let path = cfg.state_path(Some(src.name()));
        if path.exists() || checkpoints.contains_key(src.name()) {
            continue;
        }
        let windows = crate::sink::manifest::list(wh, src.name(), stream_of(src))
            .await?
            .len();
        if windows > 0 {
            return Err(RunError::StateMissing {
                path,
                source_name: src.name().to_string(),
                windows,
                pipeline: cfg.path.display().to_string(),
                warehouse: cfg.warehouse.clone(),
            });
        }
    }
    let states = open_states(cfg, &names)?;
    if !opts.dry_run {
        let removed = crate::sink::sweep::leftovers(wh).await?;
        if removed > 0 {
            tracing::info!(removed, "Removed what a killed run left unfinished.");
        }
    }
    let now = opts.now.unwrap_or_else(Utc::now);
    if wh.is_shared() && !opts.dry_run {
        let step = Duration::from_std(cfg.window).unwrap_or(Duration::days(1));
        for src in selected {
            // The windows this run will read, once it resumes where the checkpoint says.
            let reads = |resume| {
                let windows = plan_windows(cfg, opts, now, Some(resume));
                Some((windows.first()?.start, windows.last()?.end))
            };
            if let Some(a) = rebuild::adopt(
                wh,
                &states[src.name()],
                src,
                checkpoints.get(src.name()),
                opts.since.is_some(),
                reads,
                step,
            )
            .await?
            {
                tracing::info!(
                    source = src.name(), resume_at = %a.resume_at, windows = a.windows,
                    objects = a.objects, "Took over the warehouse's checkpoint."
                );
            }
        }
    }

    let mut run_ids: HashMap<*const State, i64> = HashMap::new();
    let mut runs = Vec::with_capacity(selected.len());
    for src in selected {
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
        runs.push((*src, state, run_id));
    }
    // Sources are independent (own API, own quota, own watermark): they run at the same
    // time, each on its own task so that one source's CPU work (Parquet, hashing, state
    // commits) does not delay another's paced requests.
    let shared = Arc::new((cfg.clone(), opts.clone(), wh.clone()));
    let tasks: Vec<_> = runs
        .iter()
        .map(|(src, state, run_id)| {
            let (shared, src, state, run_id) =
                (shared.clone(), (*src).clone(), state.clone(), *run_id);
            let fence = leases::fence_of(fences, src.name());
            tokio::spawn(async move {
                let (cfg, opts, wh) = &*shared;
                let held = Held {
                    state: &state,
                    wh,
                    run_id,
                    fence: fence.as_deref(),
                };
                run_source(cfg, opts, now, &src, held).await
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        let (sr, outcome) = task.await.map_err(|e| RunError::Task(e.to_string()))?;
        let sr = sr?;
        if let Err(e) = outcome {
            failures.push(e);
        }
        report.sources.push(sr);
    }
    // Only quotas stopped work: the run is partial (exit 4), not failed.
    let all_partial = failures.iter().all(RunError::is_partial);
    let status = if failures.is_empty() {
        "succeeded"
    } else if all_partial {
        "partial"
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
            all_partial,
            first: Box::new(failures.remove(0)),
        }),
    }
}

/// What a source's run writes through: its state, the warehouse, its run id and its lease.
struct Held<'a> {
    state: &'a Arc<State>,
    wh: &'a Warehouse,
    run_id: i64,
    fence: Option<&'a crate::sink::fence::Fence>,
}

/// Runs one source; its report, and its outcome.
async fn run_source(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    now: DateTime<Utc>,
    src: &SourceConfig,
    held: Held<'_>,
) -> (Result<SourceReport, RunError>, Result<(), RunError>) {
    let Held {
        state,
        wh,
        run_id,
        fence,
    } = held;
    let mut sr = SourceReport::new(src.name(), src.kind());
    let started = Instant::now();
    let ctx = SourceRun {
        cfg,
        opts,
        now,
        name: src.name(),
        stream: stream_of(src),
        state,
        wh,
        run_id,
        fence,
    };
    let outcome = src.run(&ctx, &mut sr).await;
    sr.set_duration(started.elapsed().as_millis() as u64);
    if opts.dry_run {
        match estimate::estimate(src, state, &sr) {
            Ok(e) => sr.estimate = e,
            Err(e) => return (Err(e.into()), outcome),
        }
    }
    match state.high_water(ctx.name, ctx.stream) {
        Ok(hw) => sr.high_water = hw,
        Err(e) => return (Err(e.into()), outcome),
    }
    if let Err(e) = &outcome {
        // main prints the error once; the log keeps it for -v and JSON logs.
        tracing::info!(source = %ctx.name, error = %e, "Source failed.");
        sr.error = Some(e.to_string());
    }
    (Ok(sr), outcome)
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

/// One source's part of a run: what every window of it needs to know, and what a source's
/// [`Source::run`](crate::source::Source::run) calls to plan, drive and commit its windows.
pub struct SourceRun<'a> {
    cfg: &'a PipelineConfig,
    opts: &'a RunOptions,
    now: DateTime<Utc>,
    name: &'a str,
    stream: &'static str,
    state: &'a Arc<State>,
    wh: &'a Warehouse,
    run_id: i64,
    /// The source's lease on a shared warehouse, checked before each commit.
    fence: Option<&'a crate::sink::fence::Fence>,
}

impl<'a> SourceRun<'a> {
    /// The source's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Its state: stored tokens, the egress ledger.
    pub fn state(&self) -> &'a Arc<State> {
        self.state
    }

    /// The warehouse its windows are committed to.
    pub fn warehouse(&self) -> &'a Warehouse {
        self.wh
    }

    /// The stream its windows are kept under.
    pub fn stream(&self) -> &'static str {
        self.stream
    }

    /// Audio bytes this source downloaded after `since`, for a cap over a rolling period:
    /// this worker's ledger, or on a shared warehouse what every worker's commits counted
    /// in the checkpoint, if more (a worker's disk knows only its own downloads, the
    /// checkpoint only committed ones).
    pub async fn egress_since(&self, since: DateTime<Utc>) -> Result<u64, RunError> {
        let local = self.state.egress_since(self.name, since)?;
        if !self.wh.is_shared() {
            return Ok(local);
        }
        let path = crate::sink::checkpoint::path_of(self.wh, self.name, self.stream);
        let shared = crate::sink::checkpoint::read(self.wh.store().as_ref(), &path)
            .await?
            .map_or(0, |cp| cp.egress_since(since.timestamp_millis()));
        Ok(local.max(shared))
    }

    /// `Ok` unless this run's lease on the source (a shared warehouse) may be another's now:
    /// then it must not commit.
    fn check_lease(&self) -> Result<(), crate::sink::lease::LeaseError> {
        self.fence.map_or(Ok(()), crate::sink::fence::Fence::check)
    }

    /// This run's share of the source's request budget (1: all of it).
    pub fn rate_share(&self) -> f64 {
        self.opts.rate_share.unwrap_or(1.0)
    }

    /// The pipeline's window length.
    pub fn window_step(&self) -> Duration {
        Duration::from_std(self.cfg.window).unwrap_or(Duration::days(1))
    }

    /// The error for a failure, located in its window (not for credentials: there it is noise).
    pub fn fail(&self, w: Option<&Window>, error: SourceFailure) -> RunError {
        let window = match w {
            Some(w) if !error.is_auth() => {
                format!(", window {}..{}", w.start.to_rfc3339(), w.end.to_rfc3339())
            }
            _ => String::new(),
        };
        RunError::Source {
            source_name: self.name.to_string(),
            window,
            error: Box::new(error),
        }
    }

    /// Commits one window outside [`SourceRun::drive`] (what events announced): it never
    /// moves the watermark.
    pub async fn commit(
        &self,
        w: Window,
        out: WindowOutput,
    ) -> Result<WindowReport, SourceFailure> {
        Ok(commit::load(self, w, None, out).await?.0)
    }

    /// The audio settings of the source's windows (see [`crate::sink::audio_copy`]).
    pub fn audio_copy(
        &self,
        copy_audio: bool,
        concurrency: usize,
        count_egress: bool,
    ) -> AudioCopy<'_> {
        AudioCopy {
            state: self.state,
            wh: self.wh,
            source: self.name,
            copy_audio,
            concurrency,
            count_egress,
        }
    }

    /// The windows to read; `None` on a dry run, whose report then lists them.
    pub fn plan(&self, report: &mut SourceReport) -> Result<Option<Vec<Window>>, RunError> {
        let hw = self.state.high_water(self.name, self.stream)?;
        let windows = plan_windows(self.cfg, self.opts, self.now, hw);
        tracing::info!(source = %self.name, windows = windows.len(), high_water = ?hw, "Planned windows.");
        if !self.opts.dry_run {
            return Ok(Some(windows));
        }
        report.windows = windows
            .iter()
            .map(|w| WindowReport {
                start: w.start,
                end: w.end,
                ..Default::default()
            })
            .collect();
        Ok(None)
    }
}
