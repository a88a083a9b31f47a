//! The legacy reporting source in the run loop: CSRs → CARs → activity chains per window.

use super::{RunError, SourceFailure, SourceReport, SourceRun, WindowOutput, WindowReport};
use crate::config::LegacyConfig;
use crate::sink::parquet::TableRows;
use crate::source::legacy::{self, chains, tables, LegacyClient};
use crate::window::Window;

pub(super) async fn run(
    run: &SourceRun<'_>,
    cfg: &LegacyConfig,
    report: &mut SourceReport,
) -> Result<(), RunError> {
    let Some(windows) = run.plan(report)? else {
        return Ok(());
    };
    let client = LegacyClient::connect(cfg).map_err(|e| run.fail(None, e.into()))?;
    let client = &client;
    let result = run
        .drive(
            &windows,
            report,
            super::stages::no_listing,
            |w, ()| extract(client, w),
            super::stages::ready,
        )
        .await;
    report.record_http(&client.http);
    result
}

async fn extract(client: &LegacyClient, w: Window) -> Result<WindowOutput, SourceFailure> {
    let ex = legacy::extract(client, w).await?;
    let chains = chains::build(&ex.car)?;
    // Sessions, their activities and chains share the session's start date as partition, so
    // a session that runs past midnight stays in one place.
    let csr_dates = legacy::dates_by_session(&ex.csr, "sid", &ex.session_dates)?;
    let car_dates = legacy::dates_by_session(&ex.car, "session_id", &ex.session_dates)?;
    let chain_dates = legacy::dates_by_session(&chains, "session_id", &ex.session_dates)?;
    let wr = WindowReport {
        sessions: ex.csr.num_rows() as u64,
        activities: ex.car.num_rows() as u64,
        chain_anomalies: chains::anomalies(&chains),
        ..Default::default()
    };
    let tables = vec![
        TableRows {
            table: &tables::CSR_TABLE,
            batch: ex.csr,
            dates: csr_dates,
        },
        TableRows {
            table: &tables::CAR_TABLE,
            batch: ex.car,
            dates: car_dates,
        },
        TableRows {
            table: &chains::ACTIVITY_CHAINS,
            batch: chains,
            dates: chain_dates,
        },
    ];
    Ok(WindowOutput {
        tables,
        ledger: Vec::new(),
        rows: wr.sessions,
        report: wr,
        partial: false,
    })
}
