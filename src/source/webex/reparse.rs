//! `ccetl reparse` for Webex: a committed window's transcripts read again from the objects
//! the warehouse stored, and their messages derived anew, with no API request. Rows an older
//! reader left `unparsed` (a digital or legacy voice transcript), or split otherwise, are
//! corrected; every other table is committed as the window's files hold it, so its files
//! come out identical and are not rewritten.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::NaiveDate;

use super::merge::Previous;
use super::transcripts::{self, Listed, Parsed, WindowTranscripts, UNPARSED};
use super::{segments, tables, WebexError, KIND};
use crate::extract::{SourceFailure, SourceRun, WindowOutput};
use crate::report::WindowReport;
use crate::sink::audio::AudioState;
use crate::sink::parquet::TableRows;
use crate::sink::Warehouse;
use crate::state::AudioStatus;
use crate::window::Window;

/// How a stored transcript's body becomes messages: [`Parsed::of`], or in a test the rule
/// an older ccetl followed.
pub(crate) type Reader = fn(&Listed, &[u8]) -> Parsed;

/// Window `w` with its transcripts read again by `read`; `None` when it was never
/// committed.
pub(crate) async fn window(
    run: &SourceRun<'_>,
    w: Window,
    read: Reader,
) -> Result<Option<WindowOutput>, SourceFailure> {
    let names: Vec<&'static str> = KIND.tables.iter().map(|t| t.name).collect();
    let Some(previous) =
        Previous::read(run.warehouse(), run.name(), run.stream(), w, &names).await?
    else {
        return Ok(None);
    };
    let stored = Stored::of(&previous)?;
    let parsed = read_again(run.warehouse(), &stored, read).await?;
    let channel = channels(&previous)?;
    let channel_of: HashMap<&str, &str, ahash::RandomState> = channel
        .iter()
        .map(|(t, c)| (t.as_str(), c.as_str()))
        .collect();
    let ((t_batch, t_dates), (m_batch, m_dates)) =
        transcripts::tables(&stored.window, &stored.objects, &parsed, &channel_of)
            .map_err(WebexError::from)?;
    let mut report = WindowReport::default();
    report
        .counts
        .add("transcripts", stored.window.rows.len() as u64);
    // The manifest keeps saying what the window stored.
    report.audio_reused = previous.manifest().audio_stored;
    let kept = |def| previous.table_rows(def).map_err(SourceFailure::from);
    let tables = vec![
        kept(&tables::TASKS)?,
        kept(&tables::CAPTURES)?,
        kept(&segments::TASK_SEGMENTS)?,
        kept(&tables::SEGMENTS)?,
        TableRows {
            table: &transcripts::TRANSCRIPTS,
            batch: t_batch,
            dates: t_dates,
        },
        TableRows {
            table: &transcripts::MESSAGES,
            batch: m_batch,
            dates: m_dates,
        },
    ];
    Ok(Some(WindowOutput {
        tables,
        ledger: Vec::new(),
        rows: previous.manifest().rows,
        report,
        // Never completes a window nor moves the watermark: only the run that read it does.
        partial: true,
    }))
}

/// A window's transcripts as its `webex_transcripts` rows hold them.
struct Stored {
    window: WindowTranscripts,
    objects: Vec<AudioState>,
}

impl Stored {
    fn of(previous: &Previous) -> Result<Self, WebexError> {
        let mut rows = Vec::new();
        let mut objects = Vec::new();
        let mut created_ms = Vec::new();
        for (b, date) in previous.of(transcripts::TRANSCRIPTS.name) {
            let s = |c: &str| column(b, c).map(|a| a.as_string::<i32>().clone());
            let (task, id, file, source, provider, lang) = (
                s("task_id")?,
                s("transcript_id")?,
                s("file_name")?,
                s("transcript_source")?,
                s("provider")?,
                s("language_code")?,
            );
            let (uri, sha, status, error) = (
                s("object_uri")?,
                s("object_sha256")?,
                s("status")?,
                s("error")?,
            );
            let bytes = column(b, "object_bytes")?
                .as_primitive::<Int64Type>()
                .clone();
            let ts = |c: &str| {
                column(b, c).map(|a| a.as_primitive::<TimestampMicrosecondType>().clone())
            };
            let (start, create) = (ts("start_time")?, ts("create_time")?);
            let opt = |a: &arrow::array::StringArray, i: usize| {
                a.is_valid(i).then(|| a.value(i).to_string())
            };
            let ms = |a: &arrow::array::TimestampMicrosecondArray, i: usize| {
                a.is_valid(i).then(|| a.value(i) / 1000)
            };
            for i in 0..b.num_rows() {
                rows.push(Listed {
                    task_id: task.value(i).to_string(),
                    id: id.value(i).to_string(),
                    file_name: file.value(i).to_string(),
                    source: opt(&source, i),
                    provider: opt(&provider, i),
                    language: opt(&lang, i),
                    start_ms: ms(&start, i),
                    create_ms: ms(&create, i),
                    url: None,
                });
                // `unparsed` is a table status: its object is stored.
                let status = match status.value(i) {
                    UNPARSED => AudioStatus::Stored,
                    other => AudioStatus::parse(other).unwrap_or(AudioStatus::Pending),
                };
                objects.push(AudioState {
                    status,
                    uri: opt(&uri, i),
                    bytes: bytes.is_valid(i).then(|| bytes.value(i) as u64),
                    sha256: opt(&sha, i),
                    error: opt(&error, i).filter(|_| status != AudioStatus::Stored),
                    reused: true,
                });
                created_ms.push(day_start_ms(*date));
            }
        }
        Ok(Stored {
            window: WindowTranscripts { rows, created_ms },
            objects,
        })
    }
}

/// Each stored transcript's body read from the warehouse by `read`; the others not read.
async fn read_again(
    wh: &Warehouse,
    stored: &Stored,
    read: Reader,
) -> Result<Vec<Parsed>, WebexError> {
    let mut out = Vec::with_capacity(stored.objects.len());
    for (t, o) in stored.window.rows.iter().zip(&stored.objects) {
        let uri = o.uri.as_deref().filter(|_| o.status == AudioStatus::Stored);
        let Some(uri) = uri else {
            out.push(Parsed::NotRead);
            continue;
        };
        let body = match wh.key_of_uri(uri) {
            Some(key) => wh.get(key).await?,
            None => None,
        };
        out.push(match body {
            Some(body) => read(t, &body),
            None => Parsed::Unparsed(format!(
                "{uri}: the row says stored, but this warehouse has no such object"
            )),
        });
    }
    Ok(out)
}

/// Each task's channel type, from the window's `webex_tasks` rows.
fn channels(previous: &Previous) -> Result<Vec<(String, String)>, WebexError> {
    let mut out = Vec::new();
    for (b, _) in previous.of(tables::TASKS.name) {
        let task = column(b, "task_id")?.as_string::<i32>();
        let channel = column(b, "channel_type")?.as_string::<i32>();
        for i in (0..b.num_rows()).filter(|i| channel.is_valid(*i)) {
            out.push((task.value(i).to_string(), channel.value(i).to_string()));
        }
    }
    Ok(out)
}

fn column<'b>(b: &'b RecordBatch, name: &str) -> Result<&'b arrow::array::ArrayRef, WebexError> {
    b.column_by_name(name).ok_or_else(|| WebexError::Decode {
        endpoint: "webex_transcripts (reparse)".into(),
        message: format!("the window's files have no column {name}"),
    })
}

/// Midnight UTC of `date` (epoch ms): a transcript's partition is its task's day.
fn day_start_ms(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis())
}
