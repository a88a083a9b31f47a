//! The Xima source at run time: calls → recordings → paced audio → two tables per window,
//! and its `ccetl check` and `auth status`. A 509 ends audio for the tenant; metadata keeps
//! being committed and the run is partial.

use chrono::{Duration, Utc};

use super::config::XimaConfig;
use super::{tables, Quota, XimaClient};
use crate::extract::{CheckContext, Checked, Source};
use crate::extract::{ReadWindow, RunError, SourceFailure, SourceRun, WindowOutput};
use crate::report::EgressReport;
use crate::report::{SourceReport, WindowReport};
use crate::sink::parquet::TableRows;
use crate::window::Window;

impl Source for XimaConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn api(&self) -> Option<String> {
        Some(crate::http::redact_url(&self.base_url))
    }

    fn requests_per_minute(&self) -> Option<f64> {
        Some(self.pace.per_minute())
    }

    /// Per tenant, one shard at a time: its three requests in ten seconds do not divide.
    fn budget(&self) -> crate::extract::Budget {
        crate::extract::Budget {
            key: super::client::pacer_key(self),
            shards_at_once: 1,
        }
    }

    async fn run(&self, run: &SourceRun<'_>, report: &mut SourceReport) -> Result<(), RunError> {
        run_windows(run, self, report).await
    }

    /// One paced request for the last minute's calls proves the key works.
    async fn check(&self, ctx: &CheckContext<'_>) -> Result<Checked, SourceFailure> {
        let client = XimaClient::connect(self)?;
        client
            .calls(ctx.now - Duration::minutes(1), ctx.now)
            .await?;
        let line = format!(
            "source {} (xima): key accepted for tenant {}",
            self.name, self.tenant
        );
        Ok(line.into())
    }

    fn credentials(&self, _: &CheckContext<'_>) -> Result<String, SourceFailure> {
        Ok(format!(
            "{} (xima)\n  service user key for tenant {} (`ccetl check` tests it)",
            self.name, self.tenant
        ))
    }
}

/// Xima's bandwidth cap rolls over five days.
const EGRESS_PERIOD_DAYS: u32 = 5;

/// The run's windows, its egress report, and a partial outcome when a quota stopped audio.
async fn run_windows(
    run: &SourceRun<'_>,
    cfg: &XimaConfig,
    report: &mut SourceReport,
) -> Result<(), RunError> {
    let Some(windows) = run.plan(report)? else {
        return Ok(());
    };
    let client = XimaClient::connect(cfg).map_err(|e| run.fail(None, e.into()))?;
    let since = Utc::now() - Duration::days(EGRESS_PERIOD_DAYS.into());
    let used = run.egress_since(since).await?;
    client.set_egress_used(used);
    let windows_of = Windows {
        client: &client,
        run,
    };
    let result = run.drive(&windows, report, &windows_of).await;
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

/// A window is read in one go: its calls with their recordings, then the audio.
struct Windows<'a> {
    client: &'a XimaClient,
    run: &'a SourceRun<'a>,
}

impl ReadWindow for Windows<'_> {
    async fn read_window(&self, w: Window) -> Result<WindowOutput, SourceFailure> {
        extract(self.client, self.run, w).await
    }
}

async fn extract(
    client: &XimaClient,
    run: &SourceRun<'_>,
    w: Window,
) -> Result<WindowOutput, SourceFailure> {
    // One copy at a time: the tenant's pacer admits one request at a time anyway. Xima caps
    // a tenant's egress over a rolling period: each object counts as it lands.
    let copy = run.audio_copy(client.config().audio, 1, true);
    let ex = super::extract(client, &copy, w).await?;
    let fallback = w.start.timestamp_millis();
    let call_dates = ex
        .calls
        .iter()
        .map(|c| tables::call_date(c, fallback))
        .collect();
    let rec_dates = ex.recordings.iter().map(|r| r.date).collect();
    let calls = ex.calls.len() as u64;
    let mut wr = WindowReport {
        recordings: ex.recordings.len() as u64,
        ..Default::default()
    };
    wr.counts.add("calls", calls);
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
        rows: calls,
        report: wr,
        partial: false,
    })
}
