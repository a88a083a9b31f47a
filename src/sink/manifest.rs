//! Window manifests: the warehouse's own record of what each committed window wrote.
//!
//! A manifest is written after the window's data files and before the state commit, so the
//! warehouse alone can tell which windows are complete (`state rebuild` reads them back).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys;
use super::store::{StoreError, Warehouse};
use super::table::WrittenFile;
use crate::state::WindowRecord;

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
    /// The Delta version each table's commit produced (empty for Hive tables): a reader
    /// pins these to see every table as of this window.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub versions: std::collections::BTreeMap<String, u64>,
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

/// The state's row of a committed window: what its manifest says, in short (one record,
/// whether a run commits the window or `state rebuild` reads it back).
impl From<&Manifest> for WindowRecord {
    fn from(m: &Manifest) -> Self {
        WindowRecord {
            source: m.source.clone(),
            stream: m.stream.clone(),
            start: m.window_start,
            end: m.window_end,
            rows: m.rows,
            files: m.files.len() as u64,
        }
    }
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

/// The readable manifests of windows overlapping `[from, to)`, in window order, reading only
/// those whose name (the window's start) can overlap it given windows of at most `longest`:
/// a worker taking a range over must not read a year of manifests.
pub async fn list_between(
    wh: &Warehouse,
    source: &str,
    stream: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    longest: chrono::Duration,
) -> Result<Vec<Manifest>, StoreError> {
    let dir = keys::manifest_dir(source, stream);
    let may_overlap = |name: &str| {
        let stamp = name.trim_end_matches(".json");
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
            .map(|t| t.and_utc())
            // A name that is not a stamp is read, to be safe.
            .map_or(true, |start| start < to && start + longest > from)
    };
    let mut out: Vec<Manifest> = wh
        .read_json_under_where(&dir, may_overlap)
        .await?
        .into_iter()
        .map(|(_, m): (_, Manifest)| m)
        .filter(|m| m.window_start < to && m.window_end > from)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[tokio::test]
    async fn list_between_finds_the_windows_of_a_range_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let wh = Warehouse::open(&url, &Default::default()).unwrap();
        let day0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let manifest = |start: DateTime<Utc>, end| Manifest {
            source: "wx".into(),
            stream: "tasks".into(),
            window_start: start,
            window_end: end,
            run_id: 1,
            written_at: start,
            files: Vec::new(),
            versions: Default::default(),
            audio_stored: 0,
            rows: 0,
            complete: true,
        };
        for d in 0..30 {
            let start = day0 + Duration::days(d);
            write(&wh, &manifest(start, start + Duration::days(1)))
                .await
                .unwrap();
        }
        // A short last window (a run whose until is mid-day).
        let short = day0 + Duration::days(30);
        write(&wh, &manifest(short, short + Duration::hours(6)))
            .await
            .unwrap();
        let range = (day0 + Duration::days(10), day0 + Duration::days(12));
        let got = list_between(&wh, "wx", "tasks", range, Duration::days(1))
            .await
            .unwrap();
        let starts: Vec<_> = got.iter().map(|m| m.window_start).collect();
        assert_eq!(starts, [range.0, range.0 + Duration::days(1)]);
        // A range starting mid-window takes the window around its start.
        let mid = (day0 + Duration::hours(36), day0 + Duration::days(2));
        let got = list_between(&wh, "wx", "tasks", mid, Duration::days(1))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].window_start, day0 + Duration::days(1));
        let tail = (short, short + Duration::days(1));
        let got = list_between(&wh, "wx", "tasks", tail, Duration::days(1))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(list(&wh, "wx", "tasks").await.unwrap().len(), 31);
    }
}
