//! Leftovers of killed runs, removed by the next run.
//!
//! On local disk, `object_store` writes each file to a staging name (`part.parquet#3`) and
//! renames it into place, so a killed run can leave staging files behind. Readers never
//! see them (no table glob matches `#n`), but they take space: the next run deletes those
//! no one has written to for a while. The wait keeps a concurrent run's files in flight safe.
//! On a bucket, a killed run can leave an unfinished multipart upload: invisible to readers
//! but billed. Its marker (see `upload`) lets the next run abort it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;

use super::store::{StoreError, Warehouse};
use super::upload::{Marker, MARKERS};

/// Removes what killed runs left in `wh`; returns how many leftovers.
pub async fn leftovers(wh: &Warehouse) -> Result<usize, StoreError> {
    match wh.local_root() {
        Some(root) => Ok(staging_leftovers(root, SystemTime::now())),
        None => abandoned_uploads(wh, Utc::now()).await,
    }
}

/// Aborts the multipart uploads whose markers say their writer is gone, and drops the
/// markers. An upload that is already gone (completed or aborted) just loses its marker.
pub async fn abandoned_uploads(wh: &Warehouse, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let Some(multipart) = wh.multipart() else {
        return Ok(0);
    };
    let mut aborted = 0;
    for (location, marker) in wh.read_json_under::<Marker>(MARKERS).await? {
        if !marker.abandoned(now) {
            continue;
        }
        let path = object_store::path::Path::from(marker.path.as_str());
        match multipart.abort_multipart(&path, &marker.upload_id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(cause) => {
                return Err(StoreError::Write {
                    key: marker.path,
                    cause,
                })
            }
        }
        wh.store()
            .delete(&location)
            .await
            .map_err(|cause| StoreError::Write {
                key: location.to_string(),
                cause,
            })?;
        aborted += 1;
    }
    Ok(aborted)
}

/// Staging files untouched this long belong to a dead run.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// Deletes stale staging files under `root`; returns how many.
pub fn staging_leftovers(root: &Path, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            removed += staging_leftovers(&p, now);
            continue;
        }
        let staging = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once('#'))
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= STALE_AFTER));
        if staging && stale && std::fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_stale_staging_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("webex_tasks/source=a/date=2026-01-01");
        std::fs::create_dir_all(&sub).unwrap();
        for name in ["part.parquet", "part.parquet#1", "old.wav#12", "x#y"] {
            std::fs::write(sub.join(name), b"x").unwrap();
        }
        let later = SystemTime::now() + STALE_AFTER + Duration::from_secs(1);
        assert_eq!(
            staging_leftovers(dir.path(), SystemTime::now()),
            0,
            "fresh ones stay"
        );
        assert_eq!(staging_leftovers(dir.path(), later), 2);
        assert!(sub.join("part.parquet").exists() && sub.join("x#y").exists());
        assert!(!sub.join("part.parquet#1").exists());
    }
}
