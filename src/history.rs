//! The run history in the warehouse: every `ccetl run` appends one row per source to
//! `ccetl_runs`, beside the data, so what ran (and how it ended) outlives the scratch disk
//! of the worker that ran it and is read by SQL from any engine. Append-only: a row is
//! never rewritten, and each file is named by its content, so two workers appending at
//! once never overwrite each other (Delta: two commits, the loser rebuilt on top).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use chrono::{DateTime, Utc};

use crate::report::{RunReport, SourceReport};
use crate::schema::{field, ts, ts_type, utf8, TableDef};
use crate::sink::parquet::{write_table, TableRows, WriteError};
use crate::sink::table::{self, TableError, TableFormat};
use crate::sink::Warehouse;

/// `ccetl_runs`.
pub static RUNS: TableDef = TableDef {
    name: "ccetl_runs",
    schema: runs_schema,
    unique_columns: &["run_id", "started_at", "finished_at", "report"],
    keys: &["run_id", "source"],
    docs: "run of one source: when, how it ended (`status`, `exit_code`, `error`), its windows, rows per table, recordings and bytes, API requests and 429s, the watermark after",
};

/// Why a run's history row could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Arrow refused the row (a schema bug).
    #[error("building the ccetl_runs row: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The file could not be written.
    #[error("writing ccetl_runs: {0}")]
    Write(#[from] WriteError),
    /// The table could not be committed to.
    #[error("committing ccetl_runs: {0}")]
    Table(#[from] TableError),
}

/// The `ccetl_runs` schema: one row per source per run.
pub fn runs_schema() -> SchemaRef {
    let int = |name: &str| field(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        utf8("run_id", false),
        utf8("pipeline", false),
        utf8("kind", false),
        ts("started_at", false),
        ts("finished_at", false),
        int("duration_ms"),
        utf8("status", false),
        field("exit_code", DataType::Int32, false),
        utf8("error", true),
        ts("since", true),
        ts("until", true),
        int("windows"),
        int("windows_complete"),
        utf8("table_rows", false),
        int("recordings"),
        int("audio_stored"),
        int("audio_bytes"),
        int("audio_pending"),
        int("audio_deferred"),
        int("audio_missing"),
        int("objects_pending"),
        int("requests"),
        int("throttled_429"),
        ts("watermark", true),
        utf8("host", true),
        utf8("ccetl_version", false),
        utf8("report", false),
    ]))
}

/// `succeeded`, `partial` or `failed`, from a source's exit code.
pub fn status_of(exit_code: u8) -> &'static str {
    match exit_code {
        0 => "succeeded",
        4 => "partial",
        _ => "failed",
    }
}

/// Appends `run`'s sources, each a row of its own partition (`source`, the run's start
/// date). A dry run has no history.
pub async fn append(
    wh: &Warehouse,
    format: TableFormat,
    run: &RunReport,
    finished_at: DateTime<Utc>,
) -> Result<(), HistoryError> {
    for sr in &run.sources {
        let batch = row(run, sr, finished_at)?;
        let rows = TableRows {
            table: &RUNS,
            batch,
            dates: vec![run.started_at.date_naive()],
        };
        // Content-named in either format (an append must never take another's name).
        let files = write_table(
            wh,
            &sr.name,
            run.started_at,
            rows,
            &Default::default(),
            TableFormat::Delta,
        )
        .await?;
        let params = vec![("runId", run.id.clone()), ("source", sr.name.clone())];
        table::append(format, wh, &RUNS, &sr.name, &files, params).await?;
    }
    Ok(())
}

/// One source's row.
fn row(
    run: &RunReport,
    sr: &SourceReport,
    finished_at: DateTime<Utc>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let t = run.totals_of(|s| std::ptr::eq(s, sr));
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let string = |v: Option<&str>| {
        let mut b = StringBuilder::new();
        b.append_option(v);
        Arc::new(b.finish()) as ArrayRef
    };
    let time = |v: Option<DateTime<Utc>>| {
        let mut b = TimestampMicrosecondBuilder::new().with_data_type(ts_type());
        b.append_option(v.map(micros));
        Arc::new(b.finish()) as ArrayRef
    };
    let int = |v: u64| {
        let mut b = Int64Builder::new();
        b.append_value(v.min(i64::MAX as u64) as i64);
        Arc::new(b.finish()) as ArrayRef
    };
    let mut exit = Int32Builder::new();
    exit.append_value(i32::from(sr.exit_code));
    let complete = sr.windows.iter().filter(|w| w.complete).count() as u64;
    let duration = (finished_at - run.started_at).num_milliseconds().max(0) as u64;
    let columns: Vec<ArrayRef> = vec![
        string(Some(&run.id)),
        string(Some(&run.pipeline)),
        string(Some(&sr.kind)),
        time(Some(run.started_at)),
        time(Some(finished_at)),
        int(duration),
        string(Some(status_of(sr.exit_code))),
        Arc::new(exit.finish()),
        string(sr.error.as_deref()),
        time(sr.windows.first().map(|w| w.start)),
        time(sr.windows.last().map(|w| w.end)),
        int(sr.windows.len() as u64),
        int(complete),
        string(Some(&json(&t.table_rows))),
        int(t.recordings),
        int(t.audio_stored),
        int(t.audio_bytes),
        int(t.audio_pending),
        int(t.audio_deferred),
        int(t.audio_missing),
        int(t.objects_pending),
        int(sr.http.requests),
        int(sr.http.throttled_429),
        time(sr.high_water),
        string(host().as_deref()),
        string(Some(env!("CARGO_PKG_VERSION"))),
        string(Some(&json(sr))),
    ];
    RecordBatch::try_new(runs_schema(), columns)
}

/// Plain data as JSON (maps with string keys and numbers: serialising cannot fail).
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// The machine's name, for telling workers apart.
fn host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
}
