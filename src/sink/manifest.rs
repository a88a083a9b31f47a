//! Window manifests: the warehouse's own record of what each committed window wrote.
//!
//! A manifest is written after the window's data files and before the state commit, so the
//! warehouse alone can tell which windows are complete (`state rebuild` reads them back).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys;
use super::parquet::WrittenFile;
use super::store::{StoreError, Warehouse};

/// What one committed window wrote: `_ccetl/manifests/{source}/{stream}/{window}.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The source's name.
    pub source: String,
    /// The stream its windows are kept under.
    pub stream: String,
    /// The window.
    pub window_start: DateTime<Utc>,
    /// Its end (exclusive).
    pub window_end: DateTime<Utc>,
    /// The run that committed it.
    pub run_id: i64,
    /// When.
    pub written_at: DateTime<Utc>,
    /// Its Parquet files.
    pub files: Vec<ManifestFile>,
    /// Audio objects stored in it.
    pub audio_stored: u64,
    /// Rows the state counts for the window (tasks, sessions, calls).
    #[serde(default)]
    pub rows: u64,
    /// All audio settled (none pending or deferred): the watermark may pass this window.
    /// Absent in an old manifest: not complete, so a rebuilt state re-reads the window.
    #[serde(default)]
    pub complete: bool,
}

/// One Parquet file of a window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its table.
    pub table: String,
    /// Its warehouse-relative key.
    pub key: String,
    /// Its rows.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256 (hex): an identical rewrite is skipped.
    #[serde(default)]
    pub sha256: String,
}

impl From<&WrittenFile> for ManifestFile {
    fn from(w: &WrittenFile) -> Self {
        ManifestFile {
            table: w.table.clone(),
            key: w.key.clone(),
            rows: w.rows,
            bytes: w.bytes,
            sha256: w.sha256.clone(),
        }
    }
}

/// The window's last manifest, if there is a readable one.
pub async fn read(
    wh: &Warehouse,
    source: &str,
    stream: &str,
    window_start: DateTime<Utc>,
) -> Result<Option<Manifest>, StoreError> {
    let key = keys::manifest_key(source, stream, window_start);
    let Some(bytes) = wh.get(&key).await? else {
        return Ok(None);
    };
    // An unreadable manifest only costs a rewrite of the window's files.
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Every readable manifest of a source's stream, in window order.
pub async fn list(wh: &Warehouse, source: &str, stream: &str) -> Result<Vec<Manifest>, StoreError> {
    let dir = keys::manifest_dir(source, stream);
    let mut out: Vec<Manifest> = wh
        .read_json_under(&dir)
        .await?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    out.sort_by_key(|m| m.window_start);
    Ok(out)
}

/// Puts a window's manifest; returns its key.
pub async fn write(wh: &Warehouse, m: &Manifest) -> Result<String, StoreError> {
    let key = keys::manifest_key(&m.source, &m.stream, m.window_start);
    let body = serde_json::to_vec_pretty(m).unwrap_or_default();
    wh.put(&key, body.into()).await?;
    Ok(key)
}
