//! The legacy reporting source at run time: CSRs → CARs → activity chains per window, and
//! its `ccetl check` and `auth status`.

use super::config::LegacyConfig;
use super::{chains, tables, LegacyClient, RecordType};
use crate::extract::{CheckContext, Checked, Source};
use crate::extract::{ReadWindow, RunError, SourceFailure, SourceRun, WindowOutput};
use crate::report::{SourceReport, WindowReport};
use crate::sink::parquet::TableRows;
use crate::window::Window;

impl Source for LegacyConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn api(&self) -> Option<String> {
        Some(crate::http::redact_url(&self.base_url))
    }

    fn requests_per_minute(&self) -> Option<f64> {
        Some(f64::from(self.requests_per_minute))
    }

    fn budget(&self) -> crate::extract::Budget {
        crate::extract::Budget {
            key: super::client::pacer_key(self),
            shards_at_once: 1,
        }
    }

    async fn run(&self, run: &SourceRun<'_>, report: &mut SourceReport) -> Result<(), RunError> {
        let Some(windows) = run.plan(report)? else {
            return Ok(());
        };
        let client = LegacyClient::connect(self).map_err(|e| run.fail(None, e.into()))?;
        let result = run.drive(&windows, report, &Windows(&client)).await;
        report.record_http(&client.http);
        result
    }

    /// A record that cannot exist: its 404 proves the signature was accepted.
    async fn check(&self, _: &CheckContext<'_>) -> Result<Checked, SourceFailure> {
        let client = LegacyClient::connect(self)?;
        client
            .get(RecordType::Csr, "ccetl-credential-probe")
            .await?;
        let line = format!(
            "source {} (webex_legacy): signature accepted for {}",
            self.name, self.user_id
        );
        Ok(line.into())
    }

    fn credentials(&self, _: &CheckContext<'_>) -> Result<String, SourceFailure> {
        Ok(format!(
            "{} (webex_legacy)\n  HMAC-SHA1 API key for {} (keys do not expire; `ccetl check` tests it)",
            self.name, self.user_id
        ))
    }
}

/// A window is read in one go: its sessions, their activities, then the chains.
struct Windows<'a>(&'a LegacyClient);

impl ReadWindow for Windows<'_> {
    async fn read_window(&self, w: Window) -> Result<WindowOutput, SourceFailure> {
        extract(self.0, w).await
    }
}

async fn extract(client: &LegacyClient, w: Window) -> Result<WindowOutput, SourceFailure> {
    let ex = super::extract(client, w).await?;
    let chains = chains::build(&ex.car)?;
    // Sessions, their activities and chains share the session's start date as partition, so
    // a session that runs past midnight stays in one place.
    let csr_dates = super::dates_by_session(&ex.csr, "sid", &ex.session_dates)?;
    let car_dates = super::dates_by_session(&ex.car, "session_id", &ex.session_dates)?;
    let chain_dates = super::dates_by_session(&chains, "session_id", &ex.session_dates)?;
    let sessions = ex.csr.num_rows() as u64;
    let mut wr = WindowReport::default();
    wr.counts.add("sessions", sessions);
    wr.counts.add("activities", ex.car.num_rows() as u64);
    wr.counts.add("chain_anomalies", chains::anomalies(&chains));
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
        rows: sessions,
        report: wr,
        partial: false,
    })
}
