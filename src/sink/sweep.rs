//! Leftovers of killed runs in a local warehouse.
//!
//! `object_store`'s local backend writes each file to a staging name (`part.parquet#3`) and
//! renames it into place, so a killed run can leave staging files behind. Readers never
//! see them (no table glob matches `#n`), but they take space: the next run deletes those
//! no one has written to for a while. The wait keeps a concurrent run's files in flight safe.
//! (On S3, incomplete multipart uploads are invisible; a bucket lifecycle rule
//! `AbortIncompleteMultipartUpload` removes them.)

use std::path::Path;
use std::time::{Duration, SystemTime};

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
