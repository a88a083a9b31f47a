//! A test-only source: ARCHITECTURE.md's "adding a source", followed to the letter. It reads
//! a clock (one row per tick of `every` in each window) instead of an API, and touches
//! nothing outside this directory but its two lines in `source/mod.rs`: its `mod` and its
//! entry in [`KINDS`](super::KINDS). Its test (`src/tests/example_source.rs`, above every
//! module it runs through) takes it through config, windows, tables, manifests, state, the
//! run report, the `calls` view, `ccetl query`, `ccetl plan`, `ccetl check`.

mod config;

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{Schema, SchemaRef};

pub(crate) use config::ExampleConfig;
use config::RawExample;

use crate::error::ErrorKind;
use crate::extract::fields::struct_keys;
use crate::extract::{
    parse_as, CallsSql, CheckContext, Checked, Counter, Source, SourceKind, SystemError,
};
use crate::extract::{ReadWindow, RunError, SourceFailure, SourceRun, WindowOutput};
use crate::report::{SourceReport, WindowReport};
use crate::schema::{self, TableDef};
use crate::sink::parquet::TableRows;
use crate::window::Window;

/// The example source in the registry of source kinds.
pub(crate) static KIND: SourceKind = SourceKind {
    name: "example",
    stream: "ticks",
    tables: &[&TICKS],
    recordings: None,
    objects: &[],
    calls: Some(CallsSql::alone(
        "SELECT tick_id AS call_id, source, date, tick_at AS start_time FROM example_ticks",
    )),
    views: &[],
    counters: &[Counter {
        key: "ticks",
        label: "ticks",
        listed: false,
    }],
    default_rate: None,
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
        let mut report = WindowReport::default();
        report.counts.add("ticks", rows);
        Ok(WindowOutput {
            tables: vec![TableRows {
                table: &TICKS,
                batch,
                dates,
            }],
            ledger: Vec::new(),
            rows,
            report,
            partial: false,
        })
    }
}
