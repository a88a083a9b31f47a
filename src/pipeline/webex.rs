//! The Webex v1 source in the run loop: tasks → captures → audio → four tables per window.

use super::{RunError, SourceFailure, SourceReport, SourceRun, WindowOutput, WindowReport};
use crate::config::WebexConfig;
use crate::sink::parquet::TableRows;
use crate::source::webex::{self, tables, WebexClient};
use crate::transform;
use crate::window::Window;

pub(super) async fn run(
    run: &SourceRun<'_>,
    cfg: &WebexConfig,
    report: &mut SourceReport,
) -> Result<(), RunError> {
    let Some(windows) = run.plan(report)? else {
        return Ok(());
    };
    let client =
        WebexClient::connect(cfg, run.state.clone()).map_err(|e| run.fail(None, e.into()))?;
    let client = &client;
    let result = run
        .drive(&windows, report, |w| extract(client, run, w))
        .await;
    report.http = client.http.stats().snapshot();
    result
}

async fn extract(
    client: &WebexClient,
    run: &SourceRun<'_>,
    w: Window,
) -> Result<WindowOutput, SourceFailure> {
    let ex = webex::extract(client, w).await?;
    let rows = webex::fetch_audio(client, run.wh, run.state, &ex).await?;

    let (tasks, task_dates) = tables::tasks_batch(&ex.tasks, ex.org_id.as_deref());
    let (captures, capture_dates) = tables::captures_batch(&rows);
    let (segments, segment_dates) = tables::segments_batch(&rows);
    let joined = transform::segments::join(&segments, &tasks)?;
    let tables = vec![
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

    let mut wr = WindowReport {
        tasks: ex.tasks.len() as u64,
        recordings: rows.len() as u64,
        segments: rows.iter().filter(|r| r.recording.segment).count() as u64,
        ..Default::default()
    };
    let mut ledger = Vec::with_capacity(rows.len());
    for r in &rows {
        wr.count_audio(&r.audio);
        ledger.push(r.audio.ledger(&r.recording.id, &r.task_id));
    }
    Ok(WindowOutput {
        tables,
        ledger,
        rows: wr.tasks,
        report: wr,
    })
}
