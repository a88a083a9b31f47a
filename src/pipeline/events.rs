//! Committing what a source's webhook events announced (for `ccetl serve`): a run of its
//! own in the ledger, under the state's run lock, like any run, so a scheduled `ccetl run`
//! of the same pipeline takes turns with it.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::side_run::SideRun;
use super::{lock_states, SourceReport};
use crate::config::PipelineConfig;
use crate::extract::RunError;
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
    let side = SideRun::begin(cfg, &wh, src, super::token_store(cfg)?).await?;
    let result = hooks.commit(&side.run(), ids, range, report).await;
    let json = serde_json::json!({ "events": ids.len(), "windows": report.windows.len() });
    side.end(result.is_ok(), json).await?;
    result
}
