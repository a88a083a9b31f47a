//! A test-only source: ARCHITECTURE.md's "adding a source", followed to the letter. It
//! reads a clock's API (`sim/example.rs`: one tick per `every` in each window, each with a
//! recording) and touches nothing outside this directory but its two lines in
//! `source/mod.rs`: its `mod` and its entry in [`KINDS`](super::KINDS). Its test
//! (`src/tests/example_source.rs`, above every module it runs through) takes it through
//! config, the simulator, windows, tables, the audio copy and its ledger, manifests, state,
//! the run report, the `calls` and `recordings` views, `ccetl query`, `ccetl plan`, `ccetl
//! check`.

mod config;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use chrono::DateTime;
use serde::Deserialize;

pub(crate) use config::ExampleConfig;
use config::RawExample;

use crate::error::ErrorKind;
use crate::extract::fields::struct_keys;
use crate::extract::{
    parse_as, CallsSql, CheckContext, Checked, Counter, RecordingsTable, Source, SourceKind,
    SystemError,
};
use crate::extract::{ReadWindow, RunError, SourceFailure, SourceRun, WindowOutput};
use crate::http::fetch::{decode_json, mib};
use crate::http::{join_path, HttpClient, HttpError, RetryConfig};
use crate::report::{SourceReport, WindowReport};
use crate::schema::{self, TableDef};
use crate::sink::audio::{self, audio_columns, audio_fields, AudioError, AudioState};
use crate::sink::audio_copy::Target;
use crate::sink::keys;
use crate::sink::parquet::TableRows;
use crate::state::AudioStatus;
use crate::window::Window;

/// The example source in the registry of source kinds.
pub(crate) static KIND: SourceKind = SourceKind {
    name: "example",
    stream: "ticks",
    tables: &[&TICKS],
    recordings: Some(RecordingsTable {
        table: &TICKS,
        id: "tick_id",
        call: "tick_id",
    }),
    objects: &[],
    calls: Some(CallsSql::alone(
        "SELECT tick_id AS call_id, source, date, start_time FROM example_ticks",
    )),
    views: &[],
    counters: &[Counter {
        key: "ticks",
        label: "ticks",
        listed: false,
    }],
    default_rate: None,
    reads: &["GET /example/ticks", "GET /example/audio/{id}"],
    keys: struct_keys::<RawExample>,
    parse: |t, f| parse_as(t, f, RawExample::validate),
    hints: &[],
};

/// `example_ticks`: one row per tick, with its recording's audio.
pub(crate) static TICKS: TableDef = TableDef {
    name: "example_ticks",
    schema: ticks_schema,
    unique_columns: &["tick_id", "start_time", "audio_uri", "audio_sha256"],
    keys: &["tick_id"],
    docs: "tick of the test-only example source's clock, with its recording",
};

fn ticks_schema() -> SchemaRef {
    let mut fields = vec![
        schema::utf8("tick_id", false),
        schema::ts("start_time", false),
        schema::ts("stop_time", false),
        schema::field("duration_ms", DataType::Int64, false),
    ];
    fields.extend(audio_fields());
    Arc::new(Schema::new(fields))
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExampleError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("GET /example/ticks: {0}")]
    Decode(String),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("building the ticks: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl SystemError for ExampleError {
    fn kind(&self) -> ErrorKind {
        match self {
            ExampleError::Http(e) => e.kind(),
            ExampleError::Decode(_) | ExampleError::Audio(_) | ExampleError::Arrow(_) => {
                ErrorKind::Other
            }
        }
    }
}

/// One tick as the API lists it.
#[derive(Debug, Deserialize)]
struct Tick {
    id: String,
    /// Epoch ms.
    at: i64,
    duration_ms: i64,
    /// Where its recording is served (no credentials needed).
    recording: url::Url,
}

#[derive(Debug, Deserialize)]
struct TickList {
    ticks: Vec<Tick>,
}

impl Source for ExampleConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn api(&self) -> Option<String> {
        Some(crate::http::redact_url(&self.base_url))
    }

    fn requests_per_minute(&self) -> Option<f64> {
        None
    }

    async fn run(&self, run: &SourceRun<'_>, report: &mut SourceReport) -> Result<(), RunError> {
        let Some(windows) = run.plan(report)? else {
            return Ok(());
        };
        let http = HttpClient::new(RetryConfig::default(), Duration::from_secs(30))
            .map_err(|e| run.fail(None, ExampleError::from(e).into()))?;
        let clock = Clock {
            cfg: self,
            http: &http,
            run,
        };
        let result = run.drive(&windows, report, &clock).await;
        report.record_http(&http);
        result
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

/// A run's reader of windows: the source, its HTTP client, and the run it commits through.
struct Clock<'a> {
    cfg: &'a ExampleConfig,
    http: &'a HttpClient,
    run: &'a SourceRun<'a>,
}

impl Clock<'_> {
    /// The ticks in `w`: one request.
    async fn ticks(&self, w: Window) -> Result<Vec<Tick>, ExampleError> {
        let url = join_path(&self.cfg.base_url, "/example/ticks");
        let endpoint = "GET /example/ticks";
        let query = [
            ("from", w.start.timestamp_millis()),
            ("to", w.end.timestamp_millis()),
            ("every", self.cfg.every.as_secs() as i64),
        ];
        let send = || async {
            self.http
                .send(endpoint, || async {
                    Ok::<_, HttpError>(self.http.reqwest().get(url.clone()).query(&query))
                })
                .await
                .map_err(ExampleError::from)
        };
        let list: TickList = self
            .http
            .fetch_page(
                endpoint,
                send,
                |body| decode_json(body).map_err(|e| ExampleError::Decode(e.to_string())),
                |limit| ExampleError::Decode(format!("response larger than {}", mib(limit))),
            )
            .await?;
        Ok(list.ticks)
    }

    /// Copies one tick's recording to `to`: a missing one is recorded as such, a failed one
    /// left pending for the next run.
    async fn copy(&self, tick: &Tick, to: Target) -> Result<AudioState, SourceFailure> {
        let wh = self.run.warehouse();
        Ok(
            match audio::copy(self.http, &tick.recording, wh, &to.path).await {
                Ok(stored) => AudioState::stored(to.uri, stored),
                Err(e @ AudioError::NotFound { .. }) => {
                    AudioState::none(AudioStatus::Missing, Some(e.to_string()))
                }
                Err(e @ AudioError::Store { .. }) => return Err(ExampleError::from(e).into()),
                Err(e) => AudioState::none(AudioStatus::Pending, Some(e.to_string())),
            },
        )
    }
}

impl ReadWindow for Clock<'_> {
    async fn read_window(&self, w: Window) -> Result<WindowOutput, SourceFailure> {
        let ticks = self.ticks(w).await?;
        let started = |t: &Tick| DateTime::from_timestamp_millis(t.at).unwrap_or(w.start);
        let copy = self.run.audio_copy(self.cfg.recordings, 4, false);
        let audio = copy
            .run(
                ticks.len(),
                |i| (ticks[i].id.as_str(), ticks[i].id.as_str()),
                |i| {
                    let t = &ticks[i];
                    keys::audio_key(&self.cfg.name, started(t), &t.id, &t.id, "txt")
                },
                |i, to| self.copy(&ticks[i], to),
            )
            .await?;
        let micros = |ms: i64| ms * 1000;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(ticks.iter().map(|t| &t.id))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(ticks.iter().map(|t| micros(t.at)))
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    ticks.iter().map(|t| micros(t.at + t.duration_ms)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from_iter_values(
                ticks.iter().map(|t| t.duration_ms),
            )),
        ];
        columns.extend(audio_columns(audio.iter()));
        let batch = RecordBatch::try_new(ticks_schema(), columns).map_err(ExampleError::from)?;
        let rows = batch.num_rows() as u64;
        let mut report = WindowReport {
            recordings: rows,
            ..Default::default()
        };
        report.counts.add("ticks", rows);
        let mut ledger = Vec::new();
        for (t, a) in ticks.iter().zip(&audio) {
            report.count_audio(a);
            ledger.extend(a.ledger(&t.id, &t.id));
        }
        Ok(WindowOutput {
            tables: vec![TableRows {
                table: &TICKS,
                batch,
                dates: ticks.iter().map(|t| started(t).date_naive()).collect(),
            }],
            ledger,
            rows,
            report,
            partial: false,
        })
    }
}
