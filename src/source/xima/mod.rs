//! Xima CCaaS: calls with their recordings (`call-recording-info`), then OPUS audio.
//!
//! One metadata request per window: the expanded call info already lists each call's
//! recordings, so the plain recordings list would only spend the tenant's scarce requests.
//! Audio is copied only for `SAVED` recordings not already in the ledger; other statuses stay
//! `pending`, and after a 509 the rest is `deferred`, both retried by later runs.

pub mod client;
pub mod config;
pub mod model;
pub mod tables;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use client::{Quota, XimaClient};
use tables::RecordingRow;

use crate::http::HttpError;
use crate::sink::audio::AudioError;
use crate::sink::audio::{AudioState, AudioStatus};
use crate::sink::{keys, Warehouse};
use crate::state::{AudioRecord, State, StoredLedger};
use crate::window::Window;

#[derive(Debug, thiserror::Error)]
pub enum XimaError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("Xima refused the API key: {message}")]
    Auth { message: String },
    #[error("{endpoint}: unexpected response: {message}")]
    Decode { endpoint: String, message: String },
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("state: {0}")]
    State(#[from] crate::state::StateError),
}

impl XimaError {
    pub fn kind(&self) -> crate::error::ErrorKind {
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
    pub calls: Vec<model::Call>,
    pub recordings: Vec<RecordingRow>,
}

fn deferral(client: &XimaClient) -> String {
    match client.stopped() {
        Some(Quota::Budget) => "egress budget reached".into(),
        _ => "bandwidth limit reached (HTTP 509)".into(),
    }
}

pub async fn extract(
    client: &XimaClient,
    wh: &Warehouse,
    state: &Arc<State>,
    w: Window,
) -> Result<Extracted, XimaError> {
    let calls = client.calls(w.start, w.end).await?;
    // What the ledger already holds of the window, in one query: reused with audio on,
    // still reported as stored with audio off.
    let mut stored = {
        let keys = calls.iter().flat_map(|c| c.recordings.iter());
        let keys: Vec<&str> = keys.map(|r| r.recording_key.as_str()).collect();
        state.stored_audio(&client.config().name, &keys)?
    };
    let mut recordings = Vec::new();
    let mut ledger = StoredLedger::new(state, &client.config().name);
    // Sequential on purpose: the tenant's pacer admits one request at a time anyway.
    for call in &calls {
        let started = call.start_time.unwrap_or(w.start.timestamp_millis());
        let at = DateTime::from_timestamp_millis(started).unwrap_or(w.start);
        for rec in &call.recordings {
            let before = stored.remove(&rec.recording_key);
            let audio = match audio_of(client, wh, state, at, call, rec, before).await {
                Ok(audio) => audio,
                Err(e) => {
                    // The window stops, but what it stored is recorded first.
                    ledger.flush_quietly().await;
                    return Err(e);
                }
            };
            let stored = audio.newly_stored(&rec.recording_key, &call.call_key);
            ledger.add(stored).await?;
            recordings.push(RecordingRow {
                call_key: call.call_key.clone(),
                date: tables::call_date(call, w.start.timestamp_millis()),
                recording: rec.clone(),
                audio,
            });
        }
    }
    ledger.flush().await?;
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

/// One recording's audio: skipped unless `SAVED`, reused when the ledger has it
/// (`stored_before`), else copied (or deferred once a quota stopped audio for the run). With
/// audio off: what an earlier run stored, else "disabled".
async fn audio_of(
    client: &XimaClient,
    wh: &Warehouse,
    state: &State,
    at: DateTime<Utc>,
    call: &model::Call,
    rec: &model::Recording,
    stored_before: Option<AudioRecord>,
) -> Result<AudioState, XimaError> {
    let source = &client.config().name;
    let key = keys::audio_key(source, at, &call.call_key, &rec.recording_key, "opus");
    let path = wh.path(&[&key]);
    let uri = wh.uri(&path);
    if !client.config().audio {
        let stored = AudioState::already_stored(stored_before, &uri);
        return Ok(stored.unwrap_or_else(|| AudioState::none(AudioStatus::Disabled, None)));
    }
    if rec.status.as_deref() != Some("SAVED") {
        let status = rec.status.as_deref().unwrap_or("unknown");
        return Ok(AudioState::none(
            AudioStatus::Pending,
            Some(format!("recording status {status}")),
        ));
    }
    if let Some(done) = AudioState::already_stored(stored_before, &uri) {
        return Ok(done);
    }
    let size = rec.size.and_then(|s| u64::try_from(s).ok());
    Ok(
        match client.copy_audio(tenant_of(client, call, rec), &rec.recording_key, size, wh, &path).await {
            Ok(Some(stored)) => {
                state.record_egress(source, Utc::now(), stored.bytes)?;
                AudioState::stored(uri, stored)
            }
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
