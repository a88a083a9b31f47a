//! Xima CCaaS: calls with their recordings (`call-recording-info`), then OPUS audio.
//!
//! One metadata request per window: the expanded call info already lists each call's
//! recordings, so the plain recordings list would only spend the tenant's scarce requests.
//! Audio is copied only for `SAVED` recordings not already in the ledger; other statuses stay
//! `pending`, and after a 509 the rest is `deferred`, both retried by later runs.

pub mod client;
pub mod config;
pub mod model;
mod run;
pub mod tables;

use chrono::DateTime;

pub use client::{Quota, XimaClient};
use tables::RecordingRow;

use crate::extract::fields::struct_keys;
use crate::extract::parse_as;
use crate::extract::{CallsSql, Counter, RecordingsTable, SourceKind};
use crate::http::HttpError;
use crate::sink::audio::AudioError;
use crate::sink::audio::AudioState;
use crate::sink::audio_copy::{AudioCopy, Target};
use crate::sink::keys;
use crate::sink::Warehouse;
use crate::state::AudioStatus;
use crate::window::Window;

/// Xima CCaaS in the registry of source kinds: a tenant's calls and recordings.
pub static KIND: SourceKind = SourceKind {
    name: "xima",
    stream: "calls",
    tables: &[&tables::CALLS, &tables::RECORDINGS],
    recordings: Some(RecordingsTable {
        table: &tables::RECORDINGS,
        id: "recording_key",
        call: "call_key",
    }),
    objects: &[],
    calls: Some(CallsSql::alone(
        "SELECT x.call_key AS call_id, x.source, x.date, x.start_time, x.end_time,
                'telephony' AS channel_type, lower(x.direction) AS direction,
                x.drop_event_type AS status, x.caller_id AS ani,
                x.dialed_party_number AS dnis, r.skill AS queue_name, r.agent AS agent_name
         FROM xima_calls x
         LEFT JOIN (SELECT call_key, first(skill ORDER BY start_time) AS skill,
                           last(agent ORDER BY start_time) AS agent
                    FROM xima_recordings GROUP BY call_key) r
           ON r.call_key = x.call_key",
    )),
    views: &[],
    counters: &[Counter {
        key: "calls",
        label: "calls",
        listed: true,
    }],
    default_rate: None,
    reads: &[
        "GET /rest/api/v2/call-recording-info",
        "GET /rest/api/v2/recordings/{tenant}/{key}/audio",
    ],
    keys: struct_keys::<config::RawXima>,
    parse: |t, f| parse_as(t, f, config::RawXima::validate),
    hints: &[(
        "requests_per_minute",
        "whose pace is min_interval, burst_max and burst_window",
    )],
};

/// Why a Xima window failed; `kind()` maps each cause to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum XimaError {
    /// A transport error or a status the retry policy gave up on.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// HTTP 401/403: the API key was refused.
    #[error("Xima refused the API key: {message}")]
    #[allow(missing_docs)] // the message names them
    Auth { message: String },
    /// A body that does not match the documented shape.
    #[error("{endpoint}: unexpected response: {message}")]
    #[allow(missing_docs)] // the message names them
    Decode { endpoint: String, message: String },
    /// Copying audio failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The state DB refused a read or write.
    #[error("state: {0}")]
    State(#[from] crate::state::StateError),
}

impl crate::extract::SystemError for XimaError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            XimaError::Http(e) => e.kind(),
            XimaError::Auth { .. } => ErrorKind::Auth,
            XimaError::Decode { .. } => ErrorKind::Data,
            XimaError::Audio(_) | XimaError::State(_) => ErrorKind::Other,
        }
    }
}

/// A window's calls and their recordings with audio settled.
#[derive(Debug)]
pub struct Extracted {
    /// The calls that started in the window.
    pub calls: Vec<model::Call>,
    /// Their recordings, audio settled.
    pub recordings: Vec<RecordingRow>,
}

fn deferral(client: &XimaClient) -> String {
    match client.stopped() {
        Some(Quota::Budget) => "egress budget reached".into(),
        _ => "bandwidth limit reached (HTTP 509)".into(),
    }
}

/// Lists a window's calls, then copies their recordings' audio (copied, reused, deferred).
pub async fn extract(
    client: &XimaClient,
    copy: &AudioCopy<'_>,
    w: Window,
) -> Result<Extracted, XimaError> {
    let calls = client.calls(w.start, w.end).await?;
    let recs: Vec<(&model::Call, &model::Recording)> = calls
        .iter()
        .flat_map(|c| c.recordings.iter().map(move |r| (c, r)))
        .collect();
    let wh = copy.wh;
    let started = |call: &model::Call| {
        let ms = call.start_time.unwrap_or(w.start.timestamp_millis());
        DateTime::from_timestamp_millis(ms).unwrap_or(w.start)
    };
    let audio = copy
        .run(
            recs.len(),
            |i| {
                (
                    recs[i].1.recording_key.as_str(),
                    recs[i].0.call_key.as_str(),
                )
            },
            |i| {
                let (call, rec) = recs[i];
                let (at, source) = (started(call), copy.source);
                keys::audio_key(source, at, &call.call_key, &rec.recording_key, "opus")
            },
            |i, to| copy_one(client, wh, recs[i].0, recs[i].1, to),
        )
        .await?;
    let recordings = recs
        .iter()
        .zip(audio)
        .map(|((call, rec), audio)| RecordingRow {
            call_key: call.call_key.clone(),
            date: tables::call_date(call, w.start.timestamp_millis()),
            recording: (*rec).clone(),
            audio,
        })
        .collect();
    Ok(Extracted { calls, recordings })
}

/// The tenant name an audio request names: the one in the recording's (or its call's) JSON,
/// as Xima's guide says ("the tenant-name as collected from the JSON will need to be
/// included in your request"); the configured tenant only when the JSON has none.
fn tenant_of<'a>(
    client: &'a XimaClient,
    call: &'a model::Call,
    rec: &'a model::Recording,
) -> &'a str {
    rec.tenant_name
        .as_deref()
        .or(call.tenant_name.as_deref())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(&client.config().tenant)
}

/// Copies one recording's audio, unless Xima does not have it yet (not `SAVED`) or a quota
/// stopped audio for the run.
async fn copy_one(
    client: &XimaClient,
    wh: &Warehouse,
    call: &model::Call,
    rec: &model::Recording,
    to: Target,
) -> Result<AudioState, XimaError> {
    if rec.status.as_deref() != Some("SAVED") {
        let status = rec.status.as_deref().unwrap_or("unknown");
        return Ok(AudioState::none(
            AudioStatus::Pending,
            Some(format!("recording status {status}")),
        ));
    }
    let size = rec.size.and_then(|s| u64::try_from(s).ok());
    Ok(
        match client.copy_audio(tenant_of(client, call, rec), &rec.recording_key, size, wh, &to.path).await {
            Ok(Some(stored)) => AudioState::stored(to.uri, stored),
            Ok(None) => AudioState::none(AudioStatus::Deferred, Some(deferral(client))),
            Err(e @ AudioError::NotFound { .. }) => AudioState::none(AudioStatus::Missing, Some(e.to_string())),
            Err(AudioError::Http(e)) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
                return Err(client.auth_error(e))
            }
            Err(AudioError::Expired { .. }) => {
                return Err(XimaError::Auth {
                    message: format!(
                        "the key may not read tenant '{}' audio (HTTP 403); set tenant to the service user's own tenant",
                        client.config().tenant
                    ),
                })
            }
            // Retried by the next run, like any recording not yet stored.
            Err(e @ AudioError::Http(_)) => {
                AudioState::none(AudioStatus::Pending, Some(e.to_string()))
            }
            Err(e @ AudioError::Store { .. }) => return Err(e.into()),
        },
    )
}
