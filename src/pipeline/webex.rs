//! The Webex v1 source in the run loop: tasks → captures → audio → four tables per window.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{commit, merge};
use super::{RunError, SourceFailure, SourceReport, SourceRun, WindowOutput, WindowReport};
use crate::config::WebexConfig;
use crate::sink::parquet::TableRows;
use crate::source::webex::model::Task;
use crate::source::webex::{self, tables, WebexClient};
use crate::transform;
use crate::window::{self, Window};

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
    output(client, run, ex).await
}

/// Audio, then the four tables, for extracted tasks and captures.
async fn output(
    client: &WebexClient,
    run: &SourceRun<'_>,
    ex: webex::Extracted,
) -> Result<WindowOutput, SourceFailure> {
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
        partial: false,
    })
}

/// Commits the tasks events announced: looked up through the Search API (created in
/// `range`), their captures and audio fetched, each added to the grid window it belongs to,
/// merged with what that window holds. Returns the ids committed; an id not found (filtered
/// out, or not searchable yet) is not among them.
pub(super) async fn commit_events(
    run: &SourceRun<'_>,
    cfg: &WebexConfig,
    ids: &[String],
    range: (DateTime<Utc>, DateTime<Utc>),
    report: &mut SourceReport,
) -> Result<Vec<String>, RunError> {
    let client =
        WebexClient::connect(cfg, run.state.clone()).map_err(|e| run.fail(None, e.into()))?;
    let found = webex::search::tasks_by_id(&client, ids, range.0, range.1)
        .await
        .map_err(|e| run.fail(None, e.into()))?;
    let step = Duration::from_std(run.cfg.window).unwrap_or(Duration::days(1));
    let mut by_window: BTreeMap<Window, Vec<Task>> = BTreeMap::new();
    for t in found {
        let created = Utc
            .timestamp_millis_opt(t.attributes.created_time)
            .single()
            .unwrap_or(range.0);
        let start = window::align_down(created, step);
        by_window
            .entry(Window {
                start,
                end: start + step,
            })
            .or_default()
            .push(t);
    }
    let mut committed = Vec::new();
    for (w, tasks) in by_window {
        let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        let loaded = async {
            let ex = webex::with_captures(&client, tasks).await?;
            let mut out = output(&client, run, ex).await?;
            merge::with_previous(run.wh, run.name, run.stream, w, "task_id", &mut out.tables)
                .await?;
            out.rows = out.tables[0].batch.num_rows() as u64;
            out.partial = true;
            commit::load(run, w, None, out).await
        }
        .await;
        match loaded {
            Ok((wr, _)) => report.windows.push(wr),
            Err(e) => {
                report.http = client.http.stats().snapshot();
                return Err(run.fail(Some(&w), e));
            }
        }
        committed.extend(ids);
    }
    report.http = client.http.stats().snapshot();
    Ok(committed)
}
