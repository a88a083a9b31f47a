//! The Xima source in the run loop: calls → recordings → paced audio → two tables per window.
//! A 509 ends audio for the tenant; metadata keeps being committed and the run is partial.

use chrono::{Duration, Utc};

use super::{RunError, SourceFailure, SourceReport, SourceRun, WindowOutput, WindowReport};
use crate::config::XimaConfig;
use crate::report::EgressReport;
use crate::sink::parquet::TableRows;
use crate::source::xima::{self, tables, Quota, XimaClient};
use crate::window::Window;

/// Xima's bandwidth cap rolls over five days.
const EGRESS_PERIOD_DAYS: u32 = 5;

pub(super) async fn run(
    run: &SourceRun<'_>,
    cfg: &XimaConfig,
    report: &mut SourceReport,
) -> Result<(), RunError> {
    let Some(windows) = run.plan(report)? else {
        return Ok(());
    };
    let client = XimaClient::connect(cfg).map_err(|e| run.fail(None, e.into()))?;
    let since = Utc::now() - Duration::days(EGRESS_PERIOD_DAYS.into());
    let used = run.state.egress_since(&cfg.name, since)?;
    client.set_egress_used(used);
    let client = &client;
    let result = run
        .drive(
            &windows,
            report,
            super::stages::no_listing,
            |w, ()| extract(client, run, w),
            super::stages::ready,
        )
        .await;
    report.record_http(&client.http);
    report.egress = Some(EgressReport {
        period_days: EGRESS_PERIOD_DAYS,
        used_bytes: client.egress_used(),
        budget_bytes: cfg.egress_budget,
    });
    result?;
    let Some(quota) = client.stopped() else {
        return Ok(());
    };
    let deferred: u64 = report.windows.iter().map(|w| w.audio_deferred).sum();
    let why = match quota {
        Quota::Cap => format!(
            "tenant '{}' reached Xima's bandwidth limit (HTTP 509)",
            cfg.tenant
        ),
        Quota::Budget => format!(
            "egress_budget reached ({} bytes used in {EGRESS_PERIOD_DAYS} days)",
            client.egress_used()
        ),
    };
    Err(RunError::Partial {
        source_name: cfg.name.clone(),
        message: format!(
            "{why}; metadata is complete, {deferred} recordings are deferred: rerun later (the limit rolls over five days) to download them"
        ),
    })
}

async fn extract(
    client: &XimaClient,
    run: &SourceRun<'_>,
    w: Window,
) -> Result<WindowOutput, SourceFailure> {
    // One copy at a time: the tenant's pacer admits one request at a time anyway. Xima caps
    // a tenant's egress over a rolling period: each object counts as it lands.
    let settle = run.settle(client.config().audio, 1, true);
    let ex = xima::extract(client, &settle, w).await?;
    let fallback = w.start.timestamp_millis();
    let call_dates = ex
        .calls
        .iter()
        .map(|c| tables::call_date(c, fallback))
        .collect();
    let rec_dates = ex.recordings.iter().map(|r| r.date).collect();
    let mut wr = WindowReport {
        tasks: ex.calls.len() as u64,
        recordings: ex.recordings.len() as u64,
        ..Default::default()
    };
    let mut ledger = Vec::with_capacity(ex.recordings.len());
    for r in &ex.recordings {
        wr.count_audio(&r.audio);
        ledger.extend(r.audio.ledger(&r.recording.recording_key, &r.call_key));
    }
    let tables = vec![
        TableRows {
            table: &tables::CALLS,
            batch: tables::calls_batch(&ex.calls)?,
            dates: call_dates,
        },
        TableRows {
            table: &tables::RECORDINGS,
            batch: tables::recordings_batch(&ex.recordings)?,
            dates: rec_dates,
        },
    ];
    Ok(WindowOutput {
        tables,
        ledger,
        rows: wr.tasks,
        report: wr,
        partial: false,
    })
}
