//! The audio copier: streams a recording from its pre-signed URL straight into the
//! warehouse, hashing on the way.
//!
//! Memory is bounded by the upload's parts in flight, never by the file (Airbyte PR #52662).
//! Pre-signed URLs carry their own signature, so no `Authorization` header is ever sent to
//! them (S3 rejects a second auth mechanism, and a token must not leak to storage hosts).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field};
use futures::StreamExt;
use object_store::path::Path;
use reqwest::StatusCode;

use super::digest::StreamDigest;
use super::store::Warehouse;
use super::upload::Upload;
use crate::http::fetch::BodyError;
use crate::http::{redact_url, HttpClient, HttpError};
use crate::state::{AudioRecord, AudioStatus};

/// Why one recording's audio was not copied.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The pre-signed URL expired (S3 answers 403): ask the API for a fresh one.
    #[error("{endpoint}: pre-signed URL refused or expired (HTTP 403)")]
    #[allow(missing_docs)] // the message names them
    Expired { endpoint: String },
    /// The object is gone.
    #[error("{endpoint}: recording not found (HTTP 404)")]
    #[allow(missing_docs)] // the message names them
    NotFound { endpoint: String },
    /// A status the retry policy gave up on, or a body that kept breaking off.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The warehouse refused the object.
    #[error("writing audio object {key}: {source}")]
    #[allow(missing_docs)] // the message names them
    Store {
        key: String,
        source: object_store::Error,
    },
}

/// Where a recording's audio ended up, whichever source it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioState {
    /// Where it stands.
    pub status: AudioStatus,
    /// The object's URI, once stored.
    pub uri: Option<String>,
    /// The object's size, once stored.
    pub bytes: Option<u64>,
    /// The object's SHA-256 (hex), once stored.
    pub sha256: Option<String>,
    /// Why it is not stored, when it failed.
    pub error: Option<String>,
    /// Already stored by an earlier run (the ledger said so): nothing was downloaded.
    pub reused: bool,
}

impl AudioState {
    /// Audio this run stored at `uri`.
    pub fn stored(uri: String, s: Stored) -> Self {
        AudioState {
            status: AudioStatus::Stored,
            uri: Some(uri),
            bytes: Some(s.bytes),
            sha256: Some(s.sha256),
            error: None,
            reused: false,
        }
    }

    /// No audio (`pending`, `deferred`, `missing`, `disabled`), and why.
    pub fn none(status: AudioStatus, error: Option<String>) -> Self {
        AudioState {
            status,
            uri: None,
            bytes: None,
            sha256: None,
            error,
            reused: false,
        }
    }

    /// The ledger's entry, when it already holds this recording's audio at `uri`.
    pub fn already_stored(prev: Option<AudioRecord>, uri: &str) -> Option<Self> {
        let prev =
            prev.filter(|p| p.status == AudioStatus::Stored && p.uri.as_deref() == Some(uri))?;
        Some(AudioState {
            status: AudioStatus::Stored,
            uri: prev.uri,
            bytes: prev.bytes,
            sha256: prev.sha256,
            error: None,
            reused: true,
        })
    }

    /// The ledger row of an object this run stored (not one it found already stored): what
    /// [`crate::state::StoredLedger`] records before the window commits.
    pub fn newly_stored(&self, recording_id: &str, call_id: &str) -> Option<AudioRecord> {
        (self.status == AudioStatus::Stored && !self.reused)
            .then(|| self.ledger(recording_id, call_id))
            .flatten()
    }

    /// The audio ledger row recording this state. None when audio is off: nothing was
    /// attempted, so there is nothing to record, and a row an earlier run with audio on
    /// wrote (the object it stored) must stay as it is.
    pub fn ledger(&self, recording_id: &str, call_id: &str) -> Option<AudioRecord> {
        if self.status == AudioStatus::Disabled {
            return None;
        }
        Some(AudioRecord {
            recording_id: recording_id.to_string(),
            call_id: call_id.to_string(),
            uri: self.uri.clone(),
            bytes: self.bytes,
            sha256: self.sha256.clone(),
            status: self.status,
            last_error: self.error.clone(),
        })
    }
}

/// The columns a recordings table keeps its audio in, in this order: where the object went
/// (`audio_uri`), its size and hash, and where it stands (`audio_status`).
pub fn audio_fields() -> [Field; 4] {
    [
        crate::schema::utf8("audio_uri", true),
        crate::schema::field("audio_bytes", DataType::Int64, true),
        crate::schema::utf8("audio_sha256", true),
        crate::schema::utf8("audio_status", false),
    ]
}

/// The [`audio_fields`] columns of a table whose rows are `audio`, in order.
pub fn audio_columns<'a>(audio: impl ExactSizeIterator<Item = &'a AudioState>) -> [ArrayRef; 4] {
    let n = audio.len();
    let mut uri = StringBuilder::with_capacity(n, n * 96);
    let mut bytes = Int64Builder::with_capacity(n);
    let mut sha = StringBuilder::with_capacity(n, n * 64);
    let mut status = StringBuilder::with_capacity(n, n * 8);
    for a in audio {
        uri.append_option(a.uri.as_deref());
        bytes.append_option(a.bytes.and_then(|b| i64::try_from(b).ok()));
        sha.append_option(a.sha256.as_deref());
        status.append_value(a.status.as_str());
    }
    [
        Arc::new(uri.finish()),
        Arc::new(bytes.finish()),
        Arc::new(sha.finish()),
        Arc::new(status.finish()),
    ]
}

/// A stored object's size and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// Copies a pre-signed `url` to `path` in the warehouse, restarting when the body breaks off.
pub async fn copy(
    http: &HttpClient,
    url: &url::Url,
    wh: &Warehouse,
    path: &Path,
) -> Result<Stored, AudioError> {
    let endpoint = format!("GET {}", redact_url(url));
    // No bearer token here, on purpose: the URL is its own credential.
    copy_from(
        http,
        &endpoint,
        || async { Ok(http.reqwest().get(url.clone())) },
        wh,
        path,
    )
    .await
}

/// Copies what the request `make` builds (for each attempt) to `path` in the warehouse, for
/// APIs that serve audio themselves (with their own auth and pacing in `make`). A body that
/// breaks off starts the download over, from a fresh request (whose URL may have expired
/// meanwhile: that is reported as [`AudioError::Expired`], for the caller to renew).
pub async fn copy_from<F, Fut>(
    http: &HttpClient,
    endpoint: &str,
    make: F,
    wh: &Warehouse,
    path: &Path,
) -> Result<Stored, AudioError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::RequestBuilder, HttpError>>,
{
    let send = || async {
        http.send(endpoint, &make)
            .await
            .map_err(|e| match e.status() {
                Some(StatusCode::FORBIDDEN) => AudioError::Expired {
                    endpoint: endpoint.to_string(),
                },
                Some(StatusCode::NOT_FOUND) => AudioError::NotFound {
                    endpoint: endpoint.to_string(),
                },
                _ => AudioError::Http(e),
            })
    };
    http.fetch(endpoint, send, |resp| copy_body(http, resp, wh, path))
        .await
}

/// Streams one response body into an upload at `path`, hashing on the way; a body that
/// breaks off aborts the upload, so nothing partial is ever visible.
async fn copy_body(
    http: &HttpClient,
    resp: reqwest::Response,
    wh: &Warehouse,
    path: &Path,
) -> Result<Stored, BodyError<AudioError>> {
    let store_err = |source| {
        BodyError::Fatal(AudioError::Store {
            key: path.to_string(),
            source,
        })
    };
    let hashing_err = |e: crate::blocking::ShutDown| {
        store_err(object_store::Error::Generic {
            store: "ccetl",
            source: Box::new(e),
        })
    };
    let mut upload = Upload::start(wh, path.clone()).await.map_err(store_err)?;
    let mut digest = StreamDigest::default();
    let mut total: u64 = 0;
    let mut body = std::pin::pin!(http.chunks(resp));
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(broken) => {
                upload.abort().await;
                return Err(broken);
            }
        };
        total += chunk.len() as u64;
        if let Err(e) = digest.update(chunk.clone()).await {
            upload.abort().await;
            return Err(hashing_err(e));
        }
        if let Err(e) = upload.write(chunk).await {
            upload.abort().await;
            return Err(store_err(e));
        }
        crate::failpoint::hit("audio");
    }
    // The last batch's hash and the upload's completion (a rename, or a multipart
    // completion) at once.
    let (finished, sha256) = tokio::join!(upload.finish(), digest.finish());
    finished.map_err(store_err)?;
    Ok(Stored {
        bytes: total,
        sha256: sha256.map_err(hashing_err)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_off_leaves_the_ledger_alone_and_other_states_are_recorded() {
        // A run with audio off attempted nothing: an entry would overwrite the one a run
        // with audio on wrote (the stored object's URI and hash).
        assert_eq!(
            AudioState::none(AudioStatus::Disabled, None).ledger("r1", "c1"),
            None
        );
        let stored = AudioState::stored(
            "file:///wh/audio/r1.wav".into(),
            Stored {
                bytes: 3,
                sha256: "abc".into(),
            },
        );
        let entry = stored.ledger("r1", "c1").expect("stored audio is recorded");
        assert_eq!(
            (entry.status.as_str(), entry.uri.as_deref(), entry.bytes),
            ("stored", Some("file:///wh/audio/r1.wav"), Some(3))
        );
        let pending = AudioState::none(AudioStatus::Pending, Some("not yet available".into()));
        let entry = pending.ledger("r1", "c1").expect("pending is recorded");
        assert_eq!(entry.last_error.as_deref(), Some("not yet available"));
    }
}
