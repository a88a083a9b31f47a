//! Committing what a source's webhook events announced (for `ccetl serve`): a run of its
//! own in the ledger, under the state's run lock, like any run, so a scheduled `ccetl run`
//! of the same pipeline takes turns with it.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{lock_states, open_states, RunOptions, SourceReport};
use crate::config::PipelineConfig;
use crate::extract::{RunError, SourceRun};
use crate::sink::Warehouse;

/// Commits the contacts that events announced for source `source` (its
/// [`Webhooks::commit`](crate::extract::Webhooks::commit)): a run of its own in the ledger,
/// under the state's run lock. Returns the report and the ids committed.
pub async fn commit_events(
    cfg: &PipelineConfig,
    source: &str,
    ids: &[String],
    range: (DateTime<Utc>, DateTime<Utc>),
) -> (SourceReport, Result<Vec<String>, RunError>) {
    let kind = cfg.sources.iter().find(|s| s.name() == source);
    let mut sr = SourceReport::new(source, kind.map_or("", |s| s.kind()));
    let started = Instant::now();
    let result = commit_events_inner(cfg, source, ids, range, &mut sr).await;
    sr.set_duration(started.elapsed().as_millis() as u64);
    if let Err(e) = &result {
        sr.error = Some(e.to_string());
    }
    (sr, result)
}

async fn commit_events_inner(
    cfg: &PipelineConfig,
    source: &str,
    ids: &[String],
    range: (DateTime<Utc>, DateTime<Utc>),
    report: &mut SourceReport,
) -> Result<Vec<String>, RunError> {
    let found = cfg.sources.iter().find(|s| s.name() == source);
    let (Some(src), Some(hooks)) = (found, found.and_then(|s| s.webhooks())) else {
        return Err(RunError::UnknownSource(source.to_string()));
    };
    let _lock = lock_states(cfg, &[source])?;
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let states = open_states(cfg, &[source])?;
    let state = states[source].clone();
    let opts = RunOptions::default();
    // A shared warehouse: the source's scheduled-run lease, so announced tasks never merge
    // into a window another worker's run is writing.
    let fences = match wh.is_shared() {
        true => super::leases::take(&wh, &[src], &opts).await?,
        false => Vec::new(),
    };
    let run_id = state.begin_run(&cfg.name)?;
    let settings = super::settings(cfg, &opts, Utc::now(), super::token_store(cfg)?);
    let ctx = SourceRun::new(
        &settings,
        src.source_kind(),
        source,
        &state,
        &wh,
        run_id,
        fences.first().map(|(_, f)| f.as_ref()),
    );
    let result = hooks.commit(&ctx, ids, range, report).await;
    super::leases::give_back(&wh, &fences).await;
    let status = if result.is_ok() {
        "succeeded"
    } else {
        "failed"
    };
    let json = serde_json::json!({ "events": ids.len(), "windows": report.windows.len() });
    state.finish_run(run_id, status, &json.to_string())?;
    result
}
