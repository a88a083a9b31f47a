//! A test-only source: ARCHITECTURE.md's "adding a source", followed to the letter. It reads
//! a clock (one row per tick of `every` in each window) instead of an API, and touches
//! nothing outside this directory but its two lines in `source/mod.rs`: its `mod` and its
//! entry in [`KINDS`](super::KINDS). Its test runs it through the whole pipeline: config,
//! windows, Parquet, manifests, state, `ccetl check`, `ccetl query`.

mod config;

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{Schema, SchemaRef};

use config::{ExampleConfig, RawExample};

use crate::config::fields::struct_keys;
use crate::config::parse_as;
use crate::error::ErrorKind;
use crate::pipeline::{ReadWindow, RunError, SourceFailure, SourceReport, SourceRun, WindowOutput};
use crate::report::WindowReport;
use crate::schema::{self, TableDef};
use crate::sink::parquet::TableRows;
use crate::source::{CheckContext, Checked, Source, SourceKind, SystemError};
use crate::window::Window;

/// The example source in the registry of source kinds.
pub(crate) static KIND: SourceKind = SourceKind {
    name: "example",
    stream: "ticks",
    tables: &[&TICKS],
    recordings: None,
    objects: &[],
    keys: struct_keys::<RawExample>,
    parse: |t, f| parse_as(t, f, RawExample::validate),
    hints: &[],
};

/// `example_ticks`: one row per tick.
pub(crate) static TICKS: TableDef = TableDef {
    name: "example_ticks",
    schema: ticks_schema,
    unique_columns: &["tick_id", "tick_at"],
    keys: &["tick_id"],
    docs: "tick of the test-only example source's clock",
};

fn ticks_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        schema::utf8("tick_id", false),
        schema::ts("tick_at", false),
    ]))
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExampleError {
    #[error("building the ticks: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl SystemError for ExampleError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl Source for ExampleConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn requests_per_minute(&self) -> Option<f64> {
        None
    }

    async fn run(&self, run: &SourceRun<'_>, report: &mut SourceReport) -> Result<(), RunError> {
        let Some(windows) = run.plan(report)? else {
            return Ok(());
        };
        run.drive(&windows, report, self).await
    }

    async fn check(&self, _: &CheckContext<'_>) -> Result<Checked, SourceFailure> {
        let line = format!(
            "source {} (example): a clock needs no credentials",
            self.name
        );
        Ok(line.into())
    }

    fn credentials(&self, _: &CheckContext<'_>) -> Result<String, SourceFailure> {
        Ok(format!("{} (example)\n  no credentials", self.name))
    }
}

impl ReadWindow for ExampleConfig {
    async fn read_window(&self, w: Window) -> Result<WindowOutput, SourceFailure> {
        let step = chrono::Duration::from_std(self.every).unwrap_or(chrono::Duration::hours(1));
        let mut at = w.start;
        let (mut ids, mut times, mut dates) = (Vec::new(), Vec::new(), Vec::new());
        while at < w.end {
            ids.push(format!("{}-{}", self.name, at.timestamp()));
            times.push(at.timestamp_micros());
            dates.push(at.date_naive());
            at += step;
        }
        let batch = RecordBatch::try_new(
            ticks_schema(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
            ],
        )
        .map_err(ExampleError::from)?;
        let rows = batch.num_rows() as u64;
        Ok(WindowOutput {
            tables: vec![TableRows {
                table: &TICKS,
                batch,
                dates,
            }],
            ledger: Vec::new(),
            rows,
            report: WindowReport::default(),
            partial: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::config::PipelineConfig;
    use crate::pipeline::{self, RunOptions};
    use crate::sink::Warehouse;

    const PIPELINE: &str = r#"
[pipeline]
name = "clock"
warehouse = "wh"
state = "state.duckdb"
window = "1d"

[[source]]
kind = "example"
name = "clock"
every = "6h"
"#;

    fn counts(conn: &duckdb::Connection, sql: &str) -> Vec<i64> {
        let batches = crate::query::run(conn, sql).unwrap();
        let b = &batches[0];
        (0..b.num_columns())
            .map(|i| b.column(i).as_primitive::<Int64Type>().value(0))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_source_runs_end_to_end_from_its_directory_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.toml");
        let cfg = PipelineConfig::parse(&path, PIPELINE, &|_| None).unwrap();
        assert_eq!(cfg.sources[0].kind(), "example");
        assert!(cfg.sources[0].downcast::<ExampleConfig>().is_some());

        // Another kind's key is refused, naming the kind that takes it.
        let wrong = format!("{PIPELINE}tenant = \"acme\"\n");
        let e = PipelineConfig::parse(&path, &wrong, &|_| None).unwrap_err();
        assert!(
            e.to_string().contains("tenant") && e.to_string().contains("xima"),
            "{e}"
        );

        // Three days, four ticks a day; then the same range again writes nothing.
        let opts = RunOptions {
            since: Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()),
            until: Some(Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 0).unwrap()),
            now: Some(Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap()),
            ..Default::default()
        };
        let (report, result) = pipeline::run(&cfg, &opts).await;
        result.unwrap();
        let windows = &report.sources[0].windows;
        assert_eq!(windows.len(), 3);
        assert!(windows.iter().all(|w| w.complete && w.files == 1));
        let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options).unwrap();
        let conn = crate::query::open(&wh).await.unwrap();
        assert_eq!(
            counts(
                &conn,
                "SELECT count(*), count(DISTINCT tick_id), count(DISTINCT date) FROM example_ticks"
            ),
            [12, 12, 3]
        );
        let comment = crate::query::run(
            &conn,
            "SELECT comment FROM duckdb_views() WHERE view_name = 'example_ticks'",
        )
        .unwrap();
        assert_eq!(comment[0].column(0).as_string::<i32>().value(0), TICKS.docs);

        let (report, result) = pipeline::run(&cfg, &opts).await;
        result.unwrap();
        let written: u64 = report.sources[0].windows.iter().map(|w| w.files).sum();
        assert_eq!(written, 0, "a rerun rewrites nothing");
        let state = crate::state::State::open(&cfg.state_path(Some("clock"))).unwrap();
        let hw = state.high_water("clock", KIND.stream).unwrap();
        assert_eq!(hw, opts.until);

        // `ccetl check` and `auth status` ask the source itself.
        let state = Arc::new(state);
        let ctx = CheckContext {
            pipeline: Path::new("clock.toml"),
            state: &state,
            now: Utc::now(),
        };
        assert!(cfg.sources[0]
            .check(&ctx)
            .await
            .unwrap()
            .line
            .contains("(example)"));
        assert!(cfg.sources[0]
            .credentials(&ctx)
            .unwrap()
            .starts_with("clock (example)"));
    }
}
