//! Webex Contact Center, v1 API: tasks → captures (with segments) → audio.
//!
//! One window at a time: list the window's tasks, query their captures in batches of ten
//! (concurrently, bounded by the source's `concurrency`), then copy each recording's audio
//! into the warehouse. An expired pre-signed URL (403) triggers a re-query of that task's
//! captures for a fresh URL, a bounded number of times.

pub mod client;
pub mod events;
pub mod model;
pub mod search;
pub mod subscriptions;
pub mod tables;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use crate::sink::audio::AudioState;
pub use client::WebexClient;
use model::{Task, TaskCaptures};
use tables::RecordingRow;

use crate::auth::AuthError;
use crate::config::Discovery;
use crate::http::HttpError;
use crate::sink::audio::{self, AudioError};
use crate::sink::{keys, Warehouse};
use crate::state::{AudioRecord, State, StoredLedger};

/// Fresh pre-signed URLs asked for one recording before it is left `pending` for the next run.
const MAX_URL_RENEWALS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum WebexError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{endpoint}: unexpected response: {message}")]
    Decode { endpoint: String, message: String },
    #[error("GET /v1/tasks: paging cannot advance: {0}; narrow channel_types or ask Cisco why so many tasks share a createdTime")]
    PageLoop(#[from] crate::http::pagination::PageLoop),
    #[error("state: {0}")]
    State(#[from] crate::state::StateError),
    #[error("POST /search: {0}")]
    CursorLoop(#[from] crate::http::pagination::CursorLoop),
}

/// A window's extracted data, before audio.
#[derive(Debug)]
pub struct Extracted {
    pub tasks: Vec<Task>,
    pub captures: Vec<TaskCaptures>,
    pub org_id: Option<String>,
}

/// The tasks created in `[start, end)`, from `/v1/tasks` or, filtered, from the Search API.
pub async fn discover(
    client: &WebexClient,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Task>, WebexError> {
    match &client.config().discovery {
        Discovery::Tasks => client.list_tasks(start, end).await,
        Discovery::Search(filters) => search::list_tasks(client, filters, start, end).await,
    }
}

/// Queries the captures of `tasks` but those in `skip`, ten tasks a request,
/// `concurrency` requests at a time.
pub async fn with_captures(
    client: &WebexClient,
    tasks: Vec<Task>,
    skip: &HashSet<String>,
) -> Result<Extracted, WebexError> {
    let org_id = client.org_id().await?;
    // captureRequested=false means no capture will ever exist: don't ask.
    let ids: Vec<String> = tasks
        .iter()
        .filter(|t| t.attributes.capture_requested != Some(false) && !skip.contains(&t.id))
        .map(|t| t.id.clone())
        .collect();
    // Owned chunks: a future borrowing a slice from a closure argument is not `Send` for
    // every lifetime, and runs are spawned on the runtime.
    let chunks: Vec<Vec<String>> = ids
        .chunks(client::MAX_TASK_IDS)
        .map(<[String]>::to_vec)
        .collect();
    let batches: Vec<Vec<TaskCaptures>> = futures::stream::iter(chunks)
        .map(|chunk| async move {
            let mut captures = client.query_captures(&chunk).await?;
            if !client.config().audio {
                let recordings = captures.iter_mut().flat_map(|c| c.recording.iter_mut());
                recordings.for_each(|r| r.attributes.forget_url());
            }
            Ok::<_, WebexError>(captures)
        })
        .buffer_unordered(client.config().concurrency)
        .try_collect()
        .await?;
    let mut captures = Vec::with_capacity(batches.iter().map(Vec::len).sum());
    let found = batches.into_iter().flatten();
    captures.extend(found.filter(|c| !c.recording.is_empty()));
    // Task ids are unique: an unstable sort gives the same order, in place.
    captures.sort_unstable_by(|a, b| a.task_id.cmp(&b.task_id));
    Ok(Extracted {
        tasks,
        captures,
        org_id,
    })
}

fn extension(file_name: Option<&str>) -> &str {
    file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("wav")
}

/// Copies every recording's audio (unless the ledger already holds it) and returns the rows
/// for the capture tables, in no particular order (downloads finish in any). The captures
/// are consumed: a window holds tens of thousands of recordings, each becomes one row
/// without a copy.
pub async fn fetch_audio(
    client: &WebexClient,
    wh: &Warehouse,
    state: &Arc<State>,
    tasks: &[Task],
    captures: Vec<TaskCaptures>,
) -> Result<Vec<RecordingRow>, WebexError> {
    let created: HashMap<&str, i64, ahash::RandomState> = tasks
        .iter()
        .map(|t| (t.id.as_str(), t.attributes.created_time))
        .collect();
    let captures_len = captures.iter().map(|c| c.recording.len()).sum();
    let source = client.config().name.as_str();
    // What the ledger already holds of the window, in one query: reused with audio on,
    // still reported (and where) with audio off.
    let mut stored = {
        let recordings = captures.iter().flat_map(|c| c.recording.iter());
        let ids: Vec<&str> = recordings.map(|r| r.id.as_str()).collect();
        state.stored_audio(source, &ids)?
    };
    let jobs = captures.into_iter().flat_map(|c| {
        let at = created.get(c.task_id.as_str()).copied().unwrap_or_default();
        let task_id = c.task_id;
        c.recording.into_iter().map(move |recording| RecordingRow {
            task_id: task_id.clone(),
            task_created_ms: at,
            recording,
            audio: AudioState::none("disabled", None),
        })
    });
    // Sized up front: a day's window holds tens of thousands of rows, and a vector grown by
    // doubling copies them and faults in fresh pages at each step.
    let mut rows = Vec::with_capacity(captures_len);
    if client.config().audio {
        let jobs = jobs.map(|row| {
            let before = stored.remove(&row.recording.id);
            (row, before)
        });
        let mut copied = futures::stream::iter(jobs)
            .map(|(mut row, before)| async move {
                row.audio = copy_one(client, wh, source, &row, before).await?;
                row.recording.attributes.forget_url();
                Ok::<_, WebexError>(row)
            })
            .buffer_unordered(client.config().concurrency);
        let mut ledger = StoredLedger::new(state, source);
        loop {
            let row = match copied.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    // The window stops, but what it stored is recorded first.
                    ledger.flush_quietly().await;
                    return Err(e);
                }
            };
            let stored = row.audio.newly_stored(&row.recording.id, &row.task_id);
            ledger.add(stored).await?;
            rows.push(row);
        }
        ledger.flush().await?;
    } else {
        rows.extend(jobs);
        // Audio an earlier run stored says so, and where: "disabled" would tell the analyst
        // it does not exist.
        for row in &mut rows {
            if let Some(before) = stored.remove(&row.recording.id) {
                let (_, uri) = audio_path(wh, source, row);
                if let Some(done) = AudioState::already_stored(Some(before), &uri) {
                    row.audio = done;
                }
            }
        }
    }
    Ok(rows)
}

/// Where a recording's audio goes in the warehouse, and that place as a URI.
fn audio_path(wh: &Warehouse, source: &str, row: &RecordingRow) -> (Path, String) {
    let rec = &row.recording;
    let at = chrono::DateTime::from_timestamp_millis(row.task_created_ms).unwrap_or_default();
    let ext = extension(rec.attributes.file_name.as_deref());
    let key = keys::audio_key(source, at, &row.task_id, &rec.id, ext);
    let path: Path = wh.path(&[&key]);
    let uri = wh.uri(&path);
    (path, uri)
}

/// Copies a recording's audio, unless `before` (its ledger entry) says it is stored already.
async fn copy_one(
    client: &WebexClient,
    wh: &Warehouse,
    source: &str,
    row: &RecordingRow,
    before: Option<AudioRecord>,
) -> Result<AudioState, WebexError> {
    let (task_id, rec) = (row.task_id.as_str(), &row.recording);
    let (path, uri) = audio_path(wh, source, row);
    if let Some(done) = AudioState::already_stored(before, &uri) {
        return Ok(done);
    }
    let mut url = parse_file_path(&rec.attributes.file_path)?;
    let mut renewals = 0;
    loop {
        match audio::copy(&client.http, &url, wh, &path).await {
            Ok(stored) => return Ok(AudioState::stored(uri, stored)),
            Err(AudioError::Expired { .. }) if renewals < MAX_URL_RENEWALS => {
                renewals += 1;
                tracing::info!(source, task_id, recording = %rec.id, "Pre-signed URL expired; asking for a fresh one.");
                let fresh = client.query_captures(&[task_id.to_string()]).await?;
                let found = fresh
                    .iter()
                    .flat_map(|c| c.recording.iter())
                    .find(|r| r.id == rec.id)
                    .map(|r| r.attributes.file_path.clone());
                match found {
                    Some(p) => url = parse_file_path(&p)?,
                    None => {
                        return Ok(missing(
                            "recording no longer listed by the captures API".into(),
                        ))
                    }
                }
            }
            Err(AudioError::NotFound { endpoint }) => {
                return Ok(missing(format!("{endpoint}: not found (404)")));
            }
            Err(e @ AudioError::Expired { .. }) => return Ok(pending(e.to_string())),
            Err(e @ AudioError::Http(_)) => return Ok(pending(e.to_string())),
            Err(AudioError::Store { key, source }) => {
                return Err(WebexError::Decode {
                    endpoint: format!("audio store {key}"),
                    message: source.to_string(),
                })
            }
        }
    }
}

fn missing(error: String) -> AudioState {
    AudioState::none("missing", Some(error))
}

fn pending(error: String) -> AudioState {
    AudioState::none("pending", Some(error))
}

fn parse_file_path(p: &str) -> Result<url::Url, WebexError> {
    url::Url::parse(p).map_err(|e| WebexError::Decode {
        endpoint: "POST /v1/captures/query".into(),
        message: format!("recording filePath is not a URL: {e}"),
    })
}
