//! Webex Contact Center's legacy 1.0 reporting API: contact session records (CSRs) and
//! contact activity records (CARs), signed with HMAC-SHA1, read as CSV.
//!
//! A window's sessions are the CSRs that *start* in it. Their activities are read from the
//! window start to the end of the window's last session, and kept only when they belong to
//! one of the window's sessions, so a session that crosses a window boundary keeps its whole
//! chain in one window, and no activity is stored twice.

pub mod chains;
pub mod client;
pub mod config;
pub mod csv;
mod run;
pub mod tables;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, Duration, NaiveDate, Utc};

pub use client::{LegacyClient, RecordType};

use crate::extract::fields::struct_keys;
use crate::extract::parse_as;
use crate::extract::{CallsSql, Counter, SourceKind};
use crate::http::HttpError;
use crate::schema::day_of_ms;
use crate::window::Window;

/// The legacy 1.0 reporting API in the registry of source kinds: CSRs, CARs and their
/// chains, kept together as one stream of sessions.
pub static KIND: SourceKind = SourceKind {
    name: "webex_legacy",
    stream: "sessions",
    tables: &[
        &tables::CSR_TABLE,
        &tables::CAR_TABLE,
        &chains::ACTIVITY_CHAINS,
    ],
    recordings: None,
    objects: &[],
    calls: Some(CallsSql {
        select: "SELECT sid AS call_id, source, date, cstts AS start_time, cetts AS end_time,
                        channel_type, direction, termination_type AS status, ani, dnis,
                        queue_name, agent_name, team_name, entrypoint_name
                 FROM legacy_csr",
        same_calls_as: Some("webex"),
        rank: 1,
        real_end: true,
        source_column: Some("legacy_source"),
    }),
    views: &[],
    counters: &[
        Counter {
            key: "sessions",
            label: "sessions",
            listed: false,
        },
        Counter {
            key: "activities",
            label: "activities",
            listed: false,
        },
        Counter {
            key: "chain_anomalies",
            label: "chain rows flagged",
            listed: false,
        },
    ],
    default_rate: None,
    reads: &["GET /csrs", "GET /cars"],
    keys: struct_keys::<config::RawLegacy>,
    parse: |t, f| parse_as(t, f, config::RawLegacy::validate),
    hints: &[],
};

/// Why a legacy window failed; `kind()` maps each cause to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// A transport error or a status the retry policy gave up on.
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(
        "the legacy reporting API refused the credentials (HTTP {status}: {message}); {diagnosis}"
    )]
    /// HTTP 401/403: the key or the signature was refused.
    #[allow(missing_docs)] // the message names them
    Auth {
        status: u16,
        message: String,
        diagnosis: String,
    },
    #[error(
        "{endpoint}: {source}; the window is not committed, fix the data or report it and rerun"
    )]
    /// A CSV body did not decode; the window stays uncommitted.
    #[allow(missing_docs)] // the message names them
    Csv {
        endpoint: String,
        source: csv::CsvError,
    },
    /// A body that is neither CSV nor the documented error JSON.
    #[error("{endpoint}: unexpected response: {message}")]
    #[allow(missing_docs)] // the message names them
    Decode { endpoint: String, message: String },
    /// More records in one millisecond than a page may hold: paging cannot advance.
    #[error("{endpoint}: {cap} or more records start at {at}, in one millisecond; raise record_cap to the API's limit")]
    #[allow(missing_docs)] // the message names them
    TooDense {
        endpoint: String,
        at: String,
        cap: u64,
    },
    /// Arrow refused the decoded rows.
    #[error("arranging rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl crate::extract::SystemError for LegacyError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            LegacyError::Http(e) => e.kind(),
            LegacyError::Auth { .. } => ErrorKind::Auth,
            LegacyError::Csv { .. } | LegacyError::Decode { .. } | LegacyError::TooDense { .. } => {
                ErrorKind::Data
            }
            LegacyError::Arrow(_) => ErrorKind::Other,
        }
    }
}

/// A window's sessions and their activities.
#[derive(Debug)]
pub struct Extracted {
    /// The window's session records.
    pub csr: RecordBatch,
    /// The window's activity records.
    pub car: RecordBatch,
    /// The partition date of each session (its start date), by session id.
    pub session_dates: HashMap<String, NaiveDate>,
}

/// Reads the window's CSRs, then the CARs of exactly those sessions.
pub async fn extract(client: &LegacyClient, w: Window) -> Result<Extracted, LegacyError> {
    let csr_schema = tables::CSR.schema();
    let batches = client.query(RecordType::Csr, w.start, w.end).await?;
    let csr = concat_batches(&csr_schema, &batches)?;
    // The API's `dateEnd` may be inclusive: keep exactly [start, end).
    let (lo, hi) = (w.start.timestamp_micros(), w.end.timestamp_micros());
    let csr = keep(&csr, |_, cstts| cstts >= lo && cstts < hi)?;
    let csr = dedupe(&csr, "sid")?;

    let column = |name: &str| csr_schema.index_of(name).map(|i| csr.column(i));
    let sids = column("sid")?.as_string::<i32>();
    let starts = column("cstts")?.as_primitive::<TimestampMicrosecondType>();
    let ends = column("cetts")?.as_primitive::<TimestampMicrosecondType>();
    let max_session = Duration::from_std(client.config().max_session).unwrap_or(Duration::days(1));
    let mut session_dates = HashMap::with_capacity(csr.num_rows());
    let mut car_end: Option<DateTime<Utc>> = None;
    for i in 0..csr.num_rows() {
        let start_ms = starts.value(i) / 1000;
        session_dates.insert(sids.value(i).to_string(), day_of_ms(start_ms));
        // A session still running may gain activities until it ends; read up to its limit.
        let end_ms = if ends.is_null(i) {
            start_ms + max_session.num_milliseconds()
        } else {
            ends.value(i) / 1000 + 1
        };
        let end = DateTime::from_timestamp_millis(end_ms).unwrap_or(w.end);
        car_end = Some(car_end.map_or(end, |c| c.max(end)));
    }

    let car_schema = tables::CAR.schema();
    let car = match car_end {
        None => RecordBatch::new_empty(car_schema),
        Some(end) => {
            let batches = client
                .query(RecordType::Car, w.start, end.max(w.end))
                .await?;
            let all = concat_batches(&car_schema, &batches)?;
            let session_col = tables::CAR.index_of("session_id").unwrap_or(1);
            let sessions = all.column(session_col).as_string::<i32>().clone();
            let car = keep(&all, |i, _| session_dates.contains_key(sessions.value(i)))?;
            dedupe(&car, "car_id")?
        }
    };
    Ok(Extracted {
        csr,
        car,
        session_dates,
    })
}

/// Rows for which `pred(row, cstts in µs)` holds.
fn keep(
    batch: &RecordBatch,
    pred: impl Fn(usize, i64) -> bool,
) -> Result<RecordBatch, LegacyError> {
    let idx = batch.schema().index_of("cstts")?;
    let cstts = batch.column(idx).as_primitive::<TimestampMicrosecondType>();
    let mask: BooleanArray = (0..batch.num_rows())
        .map(|i| Some(pred(i, cstts.value(i))))
        .collect();
    Ok(filter_record_batch(batch, &mask)?)
}

/// The first row of each id (adjacent split ranges may both return a boundary record).
fn dedupe(batch: &RecordBatch, id: &str) -> Result<RecordBatch, LegacyError> {
    let idx = batch.schema().index_of(id)?;
    let ids = Arc::clone(batch.column(idx));
    let ids = ids.as_string::<i32>();
    let mut seen = HashSet::with_capacity(batch.num_rows());
    let mask: BooleanArray = (0..batch.num_rows())
        .map(|i| Some(seen.insert(ids.value(i))))
        .collect();
    if mask.true_count() == batch.num_rows() {
        return Ok(batch.clone());
    }
    Ok(filter_record_batch(batch, &mask)?)
}

/// The partition date of each row of a batch with a session id column.
pub fn dates_by_session(
    batch: &RecordBatch,
    column: &str,
    session_dates: &HashMap<String, NaiveDate>,
) -> Result<Vec<NaiveDate>, LegacyError> {
    let idx = batch.schema().index_of(column)?;
    let ids = batch.column(idx).as_string::<i32>();
    Ok((0..batch.num_rows())
        .map(|i| session_dates.get(ids.value(i)).copied().unwrap_or_default())
        .collect())
}
