//! `ccetl reparse`: the rows sources derive from objects they stored (transcripts split into
//! messages), derived again from those objects in every committed window of a range, with
//! no API request: a fix to a reader reaches rows written before it. Each window is a
//! commit like any other (files, table commits, manifest, state row), under the state's run
//! lock and, on a shared warehouse, the source's lease; a window whose rows come out the same
//! rewrites no file.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::side_run::SideRun;
use super::{lock_states, stream_of, SourceReport};
use crate::config::{PipelineConfig, SourceConfig};
use crate::extract::RunError;
use crate::sink::{manifest, Warehouse};
use crate::window::Window;

/// Re-derives the selected sources' rows (every source that derives rows from objects, or
/// only `only`) in the committed windows overlapping `[since, until)`. One report per
/// source that does.
pub async fn reparse(
    cfg: &PipelineConfig,
    only: Option<&str>,
    (since, until): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> Result<Vec<SourceReport>, RunError> {
    let selected = super::selected(cfg, only)?;
    let names: Vec<&str> = selected.iter().map(|s| s.name()).collect();
    let _locks = lock_states(cfg, &names)?;
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let range = (
        since.unwrap_or(DateTime::<Utc>::MIN_UTC),
        until.unwrap_or(DateTime::<Utc>::MAX_UTC),
    );
    let mut out = Vec::new();
    for src in selected {
        let mut report = SourceReport::new(src.name(), src.kind());
        let started = Instant::now();
        let result = reparse_source(cfg, &wh, src, range, &mut report).await;
        report.set_duration(started.elapsed().as_millis() as u64);
        match result {
            Ok(true) => out.push(report),
            Ok(false) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One source's windows; `false` when it derives no rows from objects.
async fn reparse_source(
    cfg: &PipelineConfig,
    wh: &Warehouse,
    src: &SourceConfig,
    range: (DateTime<Utc>, DateTime<Utc>),
    report: &mut SourceReport,
) -> Result<bool, RunError> {
    // Rows derived from objects are in the tables whose rows own objects.
    if src.source_kind().objects.is_empty() {
        return Ok(false);
    }
    let (name, stream) = (src.name(), stream_of(src));
    let windows: Vec<Window> = manifest::list(wh, name, stream)
        .await?
        .into_iter()
        .filter(|m| m.window_start < range.1 && m.window_end > range.0)
        .map(|m| Window {
            start: m.window_start,
            end: m.window_end,
        })
        .collect();
    let side = SideRun::begin(cfg, wh, src, None).await?;
    let run = side.run();
    let mut result = Ok(());
    for w in windows {
        let Some(reparsing) = src.reparse(&run, w) else {
            break;
        };
        let committed = match reparsing.await {
            Ok(Some(out)) => run.commit(w, out).await.map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match committed {
            Ok(Some(wr)) => report.windows.push(wr),
            Ok(None) => {}
            Err(e) => {
                result = Err(run.fail(Some(&w), e));
                break;
            }
        }
    }
    let json = serde_json::json!({ "reparse": report.windows.len() });
    side.end(result.is_ok(), json).await?;
    result.map(|()| true)
}
