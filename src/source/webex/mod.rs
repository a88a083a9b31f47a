//! Webex Contact Center, v1 API: tasks → captures (with segments) → audio.
//!
//! One window at a time: list the window's tasks, query their captures in batches of ten
//! (concurrently, bounded by the source's `concurrency`), then copy each recording's audio
//! into the warehouse. An expired pre-signed URL (403) triggers a re-query of that task's
//! captures for a fresh URL, a bounded number of times.

pub mod captures;
pub mod client;
pub mod config;
pub mod events;
pub mod formats;
pub(crate) mod merge;
pub mod model;
pub(crate) mod reparse;
pub mod run;
pub mod search;
pub mod segments;
pub mod subscriptions;
pub mod tables;
pub mod token_status;
pub mod transcripts;
pub mod webhooks;

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};

use arrow::array::{Array, AsArray};
use captures::PageJoiner;
pub use captures::WindowCaptures;
pub use client::WebexClient;
use model::Task;
pub use transcripts::WindowTranscripts;

use crate::auth::AuthError;
use crate::extract::fields::struct_keys;
use crate::extract::parse_as;
use crate::extract::{CallsSql, Counter, RecordingsTable, SourceKind, ViewSql};
use crate::http::HttpError;
use crate::sink::audio::{self, AudioError, AudioState};
use crate::sink::audio_copy::{AudioCopy, Target};
use crate::sink::keys;
use crate::sink::Warehouse;
use crate::state::AudioStatus;
use config::Discovery;
use config::SensitiveAudio;

/// Webex Contact Center's v1 API in the registry of source kinds.
pub static KIND: SourceKind = SourceKind {
    name: "webex",
    stream: "tasks",
    tables: &[
        &tables::TASKS,
        &tables::CAPTURES,
        &tables::SEGMENTS,
        &segments::TASK_SEGMENTS,
        &transcripts::TRANSCRIPTS,
        &transcripts::MESSAGES,
    ],
    recordings: Some(RecordingsTable {
        table: &tables::CAPTURES,
        id: "capture_id",
        call: "task_id",
    }),
    objects: &[crate::extract::ObjectsTable {
        table: &transcripts::TRANSCRIPTS,
        // `transcripts::Listed::ledger_id`.
        ledger_id: "'transcript/' || task_id || '/' || transcript_id || '/' || file_name",
        call: "task_id",
        object: ["object_uri", "object_bytes", "object_sha256"],
        stored: "status IN ('stored', 'unparsed')",
    }],
    calls: Some(CallsSql {
        select: "SELECT t.task_id AS call_id, t.source, t.date, t.created_time AS start_time,
                        coalesce(t.ended_time, rec.stop_time) AS end_time, t.channel_type,
                        t.direction, t.status, t.origin AS ani, t.destination AS dnis,
                        t.queue_name, t.owner_name AS agent_name
                 FROM webex_tasks t
                 LEFT JOIN (SELECT task_id, max(stop_time) AS stop_time
                            FROM webex_captures WHERE NOT segment GROUP BY task_id) rec
                   ON rec.task_id = t.task_id",
        same_calls_as: None,
        rank: 0,
        real_end: false,
        source_column: Some("webex_source"),
    }),
    views: &[ViewSql {
        name: "transcripts",
        select: "SELECT m.task_id AS call_id, m.source, m.date, c.channel_type, c.queue_name,
                        c.agent_name, t.transcript_id, t.file_name, t.transcript_source,
                        t.language_code, m.seq, m.party_role, m.party_name, m.party_id,
                        m.start_time, m.duration_ms, m.text, t.format, m.direction, m.redacted,
                        m.attachments
                 FROM webex_transcript_messages m
                 JOIN webex_transcripts t
                   ON t.task_id = m.task_id AND t.transcript_id = m.transcript_id
                  AND t.file_name = m.file_name AND t.source = m.source
                 LEFT JOIN calls c ON c.call_id = m.task_id",
        docs: "message of a call's transcript, in order, with its party and the call's queue and agent",
    }],
    counters: &[
        Counter {
            key: "tasks",
            label: "tasks",
            listed: true,
        },
        Counter {
            key: "segments",
            label: "segments",
            listed: false,
        },
        Counter {
            key: "transcripts",
            label: "transcripts",
            listed: false,
        },
        Counter {
            key: "transcripts_stored",
            label: "transcripts stored",
            listed: false,
        },
    ],
    default_rate: Some(config::WEBEX_REQUESTS_PER_MINUTE),
    reads: &["GET /v1/tasks", "POST /search", "POST /v1/captures/query"],
    keys: struct_keys::<config::RawWebex>,
    parse: |t, f| parse_as(t, f, config::RawWebex::validate),
    hints: &[],
};

/// Fresh pre-signed URLs asked for one recording before it is left `pending` for the next run.
const MAX_URL_RENEWALS: u32 = 3;

/// Why a Webex window or command failed; `kind()` maps each cause to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum WebexError {
    /// A transport error or a status the retry policy gave up on.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// No usable access token.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A body that does not match the spec's shape.
    #[error("{endpoint}: unexpected response: {message}")]
    #[allow(missing_docs)] // the message names them
    Decode { endpoint: String, message: String },
    /// `/v1/tasks` paging stopped advancing.
    #[error("GET /v1/tasks: paging cannot advance: {0}; narrow channel_types or ask Cisco why so many tasks share a createdTime")]
    PageLoop(#[from] crate::http::pagination::PageLoop),
    /// The state DB refused a read or write.
    #[error("state: {0}")]
    State(#[from] crate::state::StateError),
    /// Arrow refused the window's columns.
    #[error("joining a window's captures: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Search's cursor repeated itself.
    #[error("POST /search: {0}")]
    CursorLoop(#[from] crate::http::pagination::CursorLoop),
    /// Copying audio failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The warehouse refused an object.
    #[error(transparent)]
    Store(#[from] crate::sink::StoreError),
}

impl crate::extract::SystemError for WebexError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            WebexError::Http(e) => e.kind(),
            WebexError::Auth(e) => e.kind(),
            WebexError::Decode { .. } | WebexError::PageLoop(_) | WebexError::CursorLoop(_) => {
                ErrorKind::Data
            }
            WebexError::State(_)
            | WebexError::Arrow(_)
            | WebexError::Audio(_)
            | WebexError::Store(_) => ErrorKind::Other,
        }
    }
}

/// A window's extracted data, before audio.
#[derive(Debug)]
pub struct Extracted {
    /// The tasks created in the window.
    pub tasks: Vec<Task>,
    /// Their recordings, one row each.
    pub captures: WindowCaptures,
    /// Their transcripts.
    pub transcripts: WindowTranscripts,
    /// The org the API answered for (`meta.orgId`).
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
    // A call with captureRequested=false will never have a recording: don't ask. A digital
    // task is asked all the same: its transcript is a capture too (spec: "Supported
    // channels are Voice, Chat, Email & Social"). Asked in id order, the pages join into a
    // window in (task, recording) order without a sort.
    let never = |t: &Task| {
        t.attributes.capture_requested == Some(false)
            && t.attributes
                .channel_type
                .as_deref()
                .is_none_or(|c| c == "telephony")
    };
    let mut ids: Vec<&str> = tasks
        .iter()
        .filter(|t| !never(t) && !skip.contains(&t.id))
        .map(|t| t.id.as_str())
        .collect();
    ids.sort_unstable();
    // Owned chunks: a future borrowing a slice from a closure argument is not `Send` for
    // every lifetime, and runs are spawned on the runtime.
    let chunks: Vec<Vec<String>> = ids
        .chunks(client::MAX_TASK_IDS)
        .map(|c| c.iter().map(std::string::ToString::to_string).collect())
        .collect();
    let mut pages =
        futures::stream::iter(chunks.into_iter().enumerate())
            .map(|(i, chunk)| async move {
                Ok::<_, WebexError>((i, client.query_captures(&chunk).await?))
            })
            .buffer_unordered(client.config().concurrency);
    let mut joined = PageJoiner::default();
    let mut listed = Vec::new();
    while let Some((i, page)) = pages.try_next().await? {
        joined.add(i, page.recordings)?;
        listed.extend(page.transcripts);
    }
    let created: HashMap<&str, i64, ahash::RandomState> = tasks
        .iter()
        .map(|t| (t.id.as_str(), t.attributes.created_time))
        .collect();
    let captures = joined.finish(&created)?;
    let transcripts = WindowTranscripts::new(listed, &created);
    drop(created);
    Ok(Extracted {
        tasks,
        captures,
        transcripts,
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

/// One recording, as the audio copy needs it.
struct Job<'a> {
    task_id: &'a str,
    recording_id: &'a str,
    segment: bool,
    sensitive: bool,
    task_created_ms: i64,
    file_name: Option<&'a str>,
    url: Option<&'a str>,
}

impl<'a> Job<'a> {
    fn of(captures: &'a WindowCaptures, i: usize) -> Self {
        let (names, urls) = (captures.file_names(), captures.urls());
        Job {
            task_id: captures.task_ids().value(i),
            recording_id: captures.ids().value(i),
            segment: captures.is_segment(i),
            sensitive: captures.is_sensitive(i),
            task_created_ms: captures.created_ms()[i],
            file_name: names.is_valid(i).then(|| names.value(i)),
            url: urls.is_valid(i).then(|| urls.value(i)),
        }
    }
}

/// Copies every recording's audio (unless the ledger already holds it) and returns where
/// each one's audio is, one state per row of `captures`; their URLs are forgotten.
pub async fn fetch_audio(
    client: &WebexClient,
    copy: &AudioCopy<'_>,
    captures: &mut WindowCaptures,
) -> Result<Vec<AudioState>, WebexError> {
    let wh = copy.wh;
    let window: &WindowCaptures = captures;
    let (ids, task_ids) = (window.ids(), window.task_ids());
    let audio = copy
        .run(
            window.len(),
            |i| (ids.value(i), task_ids.value(i)),
            |i| {
                let job = Job::of(window, i);
                let at = chrono::DateTime::from_timestamp_millis(job.task_created_ms);
                let ext = extension(job.file_name);
                keys::audio_key(
                    copy.source,
                    at.unwrap_or_default(),
                    job.task_id,
                    job.recording_id,
                    ext,
                )
            },
            |i, to| copy_one(client, wh, Job::of(window, i), to),
        )
        .await;
    captures.forget_urls()?;
    audio
}

/// Copies every transcript (unless the ledger already holds it), one state per row of
/// `transcripts`; their URLs are forgotten. With transcripts off, each is `disabled` (or
/// where an earlier run stored it).
pub async fn fetch_transcripts(
    client: &WebexClient,
    copy: &AudioCopy<'_>,
    transcripts: &mut WindowTranscripts,
) -> Result<Vec<AudioState>, WebexError> {
    let wh = copy.wh;
    let w: &WindowTranscripts = transcripts;
    let ledger_ids: Vec<String> = w.rows.iter().map(transcripts::Listed::ledger_id).collect();
    let states = copy
        .run(
            w.rows.len(),
            |i| (ledger_ids[i].as_str(), w.rows[i].task_id.as_str()),
            |i| {
                let t = &w.rows[i];
                let at = chrono::DateTime::from_timestamp_millis(w.created_ms[i]);
                keys::transcript_key(
                    copy.source,
                    at.unwrap_or_default(),
                    &t.task_id,
                    &t.id,
                    &t.file_name,
                )
            },
            |i, to| copy_transcript(client, wh, &w.rows[i], to),
        )
        .await;
    transcripts.forget_urls();
    states
}

/// Reads back each stored transcript from the warehouse and splits it into messages, its
/// format told by its content; one answer per row. A transcript in no known format keeps
/// its object and row (`unparsed`, with the reason).
pub async fn read_transcripts(
    wh: &Warehouse,
    transcripts: &WindowTranscripts,
    states: &[AudioState],
) -> Result<Vec<transcripts::Parsed>, WebexError> {
    let mut out = Vec::with_capacity(states.len());
    for (t, s) in transcripts.rows.iter().zip(states) {
        let Some(uri) = s.uri.as_deref().filter(|_| s.status == AudioStatus::Stored) else {
            out.push(transcripts::Parsed::NotRead);
            continue;
        };
        let body = match wh.key_of_uri(uri) {
            Some(key) => wh.get(key).await?,
            None => None,
        };
        let parsed = match body {
            Some(body) => transcripts::Parsed::of(t, &body),
            None => transcripts::Parsed::Unparsed(format!(
                "{uri}: the ledger says stored, but this warehouse has no such object"
            )),
        };
        out.push(parsed);
    }
    Ok(out)
}

/// Copies a recording's audio from its pre-signed URL, renewing an expired one.
async fn copy_one(
    client: &WebexClient,
    wh: &Warehouse,
    job: Job<'_>,
    to: Target,
) -> Result<AudioState, WebexError> {
    let (source, task_id, recording) =
        (client.config().name.as_str(), job.task_id, job.recording_id);
    if job.sensitive && client.config().sensitive_audio == SensitiveAudio::Skip {
        return Ok(AudioState::none(AudioStatus::Withheld, None));
    }
    let Some(first_url) = job.url else {
        // Listed before its audio is ready (the spec requires no attribute of a recording):
        // a later run, re-reading the window, finds the path.
        return Ok(pending(
            "no filePath yet: the captures API lists the recording still processing".into(),
        ));
    };
    let renew = || async {
        tracing::info!(
            source,
            task_id,
            recording,
            "Pre-signed URL expired; asking for a fresh one."
        );
        let fresh = client
            .query_captures_of(&[task_id.to_string()], job.segment)
            .await?
            .recordings;
        let (ids, urls) = (
            fresh.column(captures::col().id).as_string::<i32>(),
            fresh.column(captures::col().url).as_string::<i32>(),
        );
        Ok((0..fresh.num_rows())
            .find(|&i| ids.value(i) == recording && urls.is_valid(i))
            .map(|i| urls.value(i).to_string()))
    };
    copy_renewing(client, wh, first_url, to, renew).await
}

/// Copies a transcript from its pre-signed URL, renewing an expired one.
async fn copy_transcript(
    client: &WebexClient,
    wh: &Warehouse,
    t: &transcripts::Listed,
    to: Target,
) -> Result<AudioState, WebexError> {
    let Some(first_url) = t.url.as_deref() else {
        return Ok(pending(
            "no filePath: the captures API lists the transcript without one".into(),
        ));
    };
    let renew = || async {
        tracing::info!(
            source = client.config().name.as_str(),
            task_id = t.task_id,
            transcript = t.id,
            "Pre-signed transcript URL expired; asking for a fresh one."
        );
        let fresh = client
            .query_captures_of(std::slice::from_ref(&t.task_id), false)
            .await?
            .transcripts;
        Ok(fresh.into_iter().find(|f| f.same(t)).and_then(|f| f.url))
    };
    copy_renewing(client, wh, first_url, to, renew).await
}

/// Copies an object from a pre-signed URL to `to`; when the URL has expired, `renew` asks
/// the captures API for a fresh one (`None`: no longer listed), a bounded number of times.
async fn copy_renewing<R, F>(
    client: &WebexClient,
    wh: &Warehouse,
    first_url: &str,
    to: Target,
    renew: R,
) -> Result<AudioState, WebexError>
where
    R: Fn() -> F,
    F: std::future::Future<Output = Result<Option<String>, WebexError>>,
{
    let mut url = parse_file_path(first_url)?;
    let mut renewals = 0;
    loop {
        match audio::copy(&client.downloads, &url, wh, &to.path).await {
            Ok(stored) => return Ok(AudioState::stored(to.uri, stored)),
            Err(AudioError::Expired { .. }) if renewals < MAX_URL_RENEWALS => {
                renewals += 1;
                match renew().await? {
                    Some(p) => url = parse_file_path(&p)?,
                    None => return Ok(missing("no longer listed by the captures API".into())),
                }
            }
            Err(AudioError::NotFound { endpoint }) => {
                return Ok(missing(format!("{endpoint}: not found (404)")));
            }
            Err(e @ AudioError::Expired { .. }) => return Ok(pending(e.to_string())),
            Err(e @ AudioError::Http(_)) => return Ok(pending(e.to_string())),
            Err(e @ AudioError::Store { .. }) => return Err(e.into()),
        }
    }
}

fn missing(error: String) -> AudioState {
    AudioState::none(AudioStatus::Missing, Some(error))
}

fn pending(error: String) -> AudioState {
    AudioState::none(AudioStatus::Pending, Some(error))
}

fn parse_file_path(p: &str) -> Result<url::Url, WebexError> {
    url::Url::parse(p).map_err(|e| WebexError::Decode {
        endpoint: "POST /v1/captures/query".into(),
        message: format!("recording filePath is not a URL: {e}"),
    })
}
