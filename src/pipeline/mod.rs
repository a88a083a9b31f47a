//! Window planning and the run loop: the only place that knows the order of stages.
//!
//! For each source: read the watermark → plan grid windows from `high_water - lookback` to
//! `now - settle` → per window: the source extracts its tables (and audio) → its files,
//! manifest and state row are committed; consecutive windows overlap. Data is durable
//! before the state that points at it, so a crash anywhere replays the window harmlessly
//! (its files are replaced, not duplicated). The watermark advances only over contiguous
//! complete windows. A source's part of that ([`SourceRun`]) is in [`crate::extract`]; this
//! module runs the sources: locks, leases, states, reports.

mod estimate;
mod events;
pub mod finalize;
mod leases;
pub mod rebuild;
pub mod reparse;
pub mod shards;
mod side_run;

pub use events::commit_events;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use crate::auth::shared::SharedTokens;
use crate::config::{PipelineConfig, SourceConfig};
use crate::extract::{RunError, RunSettings, SourceRun};
pub use crate::report::{RunReport, SourceReport, WindowReport};
use crate::sink::checkpoint::Checkpoint;
use crate::sink::Warehouse;
use crate::state::lock::RunLock;
use crate::state::{State, StateError};
use crate::window::Window;

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
    /// (None: the default, `extract`'s `LIST_AHEAD_MAX_TASKS`); tests set it low.
    pub list_ahead_max_tasks: Option<usize>,
}

/// The pipeline's sources, or only the one named `only` (`--source` of the commands that
/// take one).
pub fn selected<'a>(
    cfg: &'a PipelineConfig,
    only: Option<&str>,
) -> Result<Vec<&'a SourceConfig>, RunError> {
    if let Some(name) = only.filter(|n| !cfg.sources.iter().any(|s| s.name() == *n)) {
        return Err(RunError::UnknownSource(name.to_string()));
    }
    Ok(cfg
        .sources
        .iter()
        .filter(|s| only.is_none_or(|n| n == s.name()))
        .collect())
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

/// The token store workers share (`token_store`), when the pipeline has one.
pub fn token_store(cfg: &PipelineConfig) -> Result<Option<SharedTokens>, RunError> {
    let Some(url) = &cfg.token_store else {
        return Ok(None);
    };
    Ok(Some(SharedTokens::open(url, &cfg.storage_options)?))
}

/// Copies each source's tokens from the pipeline's token store ([`token_store`]), if it has
/// one, into its state, for what reads them there (`ccetl check`, `ccetl auth status`).
pub async fn pull_shared_tokens(
    shared: Option<&SharedTokens>,
    states: &HashMap<String, Arc<State>>,
) -> Result<(), RunError> {
    let Some(shared) = shared else {
        return Ok(());
    };
    for (source, state) in states {
        shared
            .pull(source, state.as_ref())
            .await
            .map_err(|e| RunError::TokenStore {
                url: shared.url().to_string(),
                message: e.to_string(),
            })?;
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
        id: uuid::Uuid::new_v4().to_string(),
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
    let now = opts.now.unwrap_or_else(Utc::now);
    let checkpoints = read_checkpoints(wh, selected).await?;
    refuse_lost_states(cfg, wh, selected, &checkpoints).await?;
    let names: Vec<&str> = selected.iter().map(|s| s.name()).collect();
    let states = open_states(cfg, &names)?;
    if !opts.dry_run {
        let removed = crate::sink::sweep::leftovers(wh).await?;
        if removed > 0 {
            tracing::info!(removed, "Removed what a killed run left unfinished.");
        }
        if wh.is_shared() {
            adopt_checkpoints(cfg, opts, now, wh, selected, &states, &checkpoints).await?;
        }
    }
    let runs = begin_runs(cfg, opts, selected, &states)?;
    if let Some(first) = runs.first() {
        report.run_id.get_or_insert(first.run_id);
    }
    let settings = Arc::new(settings(cfg, opts, now, token_store(cfg)?));
    let mut failures = Vec::new();
    for (sr, outcome) in run_sources(opts, &settings, wh, fences, &runs).await? {
        if let Err(e) = outcome {
            failures.push(e);
        }
        report.sources.push(sr);
    }
    // Only quotas stopped work: the run is partial (exit 4), not failed.
    let all_partial = failures.iter().all(RunError::is_partial);
    if !opts.dry_run {
        let status = match (failures.is_empty(), all_partial) {
            (true, _) => "succeeded",
            (false, true) => "partial",
            (false, false) => "failed",
        };
        let json = serde_json::to_string(report).unwrap_or_default();
        for run in runs.iter().filter(|r| r.first_of_state) {
            run.state.finish_run(run.run_id, status, &json)?;
        }
        // The history is a record, not the data: a warehouse that refuses it is said, and
        // the run's outcome stands.
        if let Err(e) = crate::history::append(wh, cfg.table_format, report, Utc::now()).await {
            tracing::warn!(error = %e, "Could not append the run to ccetl_runs.");
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

/// A shared warehouse's checkpoint of each source, read once (a new worker takes them
/// over); none on a local warehouse.
async fn read_checkpoints<'a>(
    wh: &Warehouse,
    selected: &[&'a SourceConfig],
) -> Result<HashMap<&'a str, Checkpoint>, RunError> {
    let mut checkpoints = HashMap::new();
    if !wh.is_shared() {
        return Ok(checkpoints);
    }
    for src in selected {
        let path = crate::sink::checkpoint::path_of(wh, src.name(), stream_of(src));
        if let Some(cp) = crate::sink::checkpoint::read(wh.store().as_ref(), &path).await? {
            checkpoints.insert(src.name(), cp);
        }
    }
    Ok(checkpoints)
}

/// Refuses to run a source whose state file is gone while the warehouse holds its committed
/// windows (and no checkpoint says where to resume): a lost state file must not silently
/// mean "extract everything again".
async fn refuse_lost_states(
    cfg: &PipelineConfig,
    wh: &Warehouse,
    selected: &[&SourceConfig],
    checkpoints: &HashMap<&str, Checkpoint>,
) -> Result<(), RunError> {
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
    Ok(())
}

/// On a shared warehouse, brings each source's state up to its checkpoint: a worker whose
/// disk is new (or behind) resumes where the workers before it stopped.
async fn adopt_checkpoints(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    now: DateTime<Utc>,
    wh: &Warehouse,
    selected: &[&SourceConfig],
    states: &HashMap<String, Arc<State>>,
    checkpoints: &HashMap<&str, Checkpoint>,
) -> Result<(), RunError> {
    let step = Duration::from_std(cfg.window).unwrap_or(Duration::days(1));
    for src in selected {
        // The windows this run will read, once it resumes where the checkpoint says.
        let reads = |resume| {
            let windows = plan_windows(cfg, opts, now, Some(resume));
            Some((windows.first()?.start, windows.last()?.end))
        };
        let adopted = rebuild::adopt(
            wh,
            &states[src.name()],
            src,
            checkpoints.get(src.name()),
            opts.since.is_some(),
            reads,
            step,
        )
        .await?;
        if let Some(a) = adopted {
            tracing::info!(
                source = src.name(), resume_at = %a.resume_at, windows = a.windows,
                objects = a.objects, "Took over the warehouse's checkpoint."
            );
        }
    }
    Ok(())
}

/// One source's part of the run before it starts: its state and the run id there.
struct Begun<'a> {
    src: &'a SourceConfig,
    state: Arc<State>,
    run_id: i64,
    /// The first source of its state file: it closes the run there.
    first_of_state: bool,
}

/// Opens the run in each state file once (sources may share one); a dry run opens none.
fn begin_runs<'a>(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    selected: &[&'a SourceConfig],
    states: &HashMap<String, Arc<State>>,
) -> Result<Vec<Begun<'a>>, RunError> {
    let mut run_ids: HashMap<*const State, i64> = HashMap::new();
    let mut runs = Vec::with_capacity(selected.len());
    for src in selected {
        let state = states[src.name()].clone();
        let key = Arc::as_ptr(&state);
        let (run_id, first_of_state) = match run_ids.get(&key) {
            Some(id) => (*id, false),
            None => {
                let id = if opts.dry_run {
                    0
                } else {
                    state.begin_run(&cfg.name)?
                };
                run_ids.insert(key, id);
                (id, true)
            }
        };
        runs.push(Begun {
            src,
            state,
            run_id,
            first_of_state,
        });
    }
    Ok(runs)
}

/// Runs the sources at once, each on its own task so that one source's CPU work (Parquet,
/// hashing, state commits) does not delay another's paced requests: they are independent
/// (own API, own quota, own watermark). Each source's report and outcome, in order.
async fn run_sources(
    opts: &RunOptions,
    settings: &Arc<RunSettings>,
    wh: &Warehouse,
    fences: &[(String, Arc<crate::sink::fence::Fence>)],
    runs: &[Begun<'_>],
) -> Result<Vec<(SourceReport, Result<(), RunError>)>, RunError> {
    let shared = Arc::new((opts.clone(), wh.clone(), settings.clone()));
    let tasks: Vec<_> = runs
        .iter()
        .map(|run| {
            let (shared, src, state, run_id) = (
                shared.clone(),
                run.src.clone(),
                run.state.clone(),
                run.run_id,
            );
            let fence = leases::fence_of(fences, src.name());
            tokio::spawn(async move {
                let (opts, wh, settings) = &*shared;
                let held = Held {
                    state: &state,
                    wh,
                    run_id,
                    fence: fence.as_deref(),
                };
                run_source(opts, settings, &src, held).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (sr, outcome) = task.await.map_err(|e| RunError::Task(e.to_string()))?;
        out.push((sr?, outcome));
    }
    Ok(out)
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
    opts: &RunOptions,
    settings: &RunSettings,
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
    let ctx = SourceRun::new(
        settings,
        src.source_kind(),
        src.name(),
        state,
        wh,
        run_id,
        fence,
    );
    let outcome = src.run(&ctx, &mut sr).await;
    sr.set_duration(started.elapsed().as_millis() as u64);
    if opts.dry_run {
        match estimate::estimate(src, state, &sr) {
            Ok(e) => sr.estimate = e,
            Err(e) => return (Err(e.into()), outcome),
        }
    }
    match state.high_water(ctx.name(), ctx.stream()) {
        Ok(hw) => sr.high_water = hw,
        Err(e) => return (Err(e.into()), outcome),
    }
    if let Err(e) = &outcome {
        // main prints the error once; the log keeps it for -v and JSON logs.
        tracing::info!(source = %ctx.name(), error = %e, "Source failed.");
        sr.error = Some(e.to_string());
        sr.exit_code = e.kind().exit_code();
    }
    (Ok(sr), outcome)
}

/// What every source of a run is told: the pipeline's windows and table format, the run's
/// flags.
pub fn settings(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    now: DateTime<Utc>,
    token_store: Option<SharedTokens>,
) -> RunSettings {
    RunSettings {
        window: Duration::from_std(cfg.window).unwrap_or(Duration::days(1)),
        lookback: Duration::from_std(cfg.lookback).unwrap_or_default(),
        settle: Duration::from_std(cfg.settle).unwrap_or_default(),
        start: cfg.start,
        since: opts.since,
        until: opts.until,
        now,
        dry_run: opts.dry_run,
        rate_share: opts.rate_share,
        list_ahead_max_tasks: opts.list_ahead_max_tasks,
        table_format: cfg.table_format,
        token_store,
    }
}

/// The windows a run reads for one stream.
pub fn plan_windows(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    now: DateTime<Utc>,
    high_water: Option<DateTime<Utc>>,
) -> Vec<Window> {
    settings(cfg, opts, now, None).windows(high_water)
}
