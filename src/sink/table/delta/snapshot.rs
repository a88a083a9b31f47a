//! Reading a Delta table as its readers do: the files of its current snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use delta_kernel::history_manager::error::LogHistoryError;
use delta_kernel::history_manager::{latest_version_as_of, HistoryCommitType};
use delta_kernel::scan::state::ScanFile;
use delta_kernel::snapshot::{Snapshot, SnapshotRef};
use delta_kernel::Engine;
use object_store::local::LocalFileSystem;

use super::DeltaError;

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The newest.
    Latest,
    /// The newest committed at or before this time.
    Time(DateTime<Utc>),
    /// This version (the newest when it is newer).
    Version(u64),
}

/// A Delta table's version and live files under a local directory (a local warehouse or a
/// mirror of one); `None` when `dir` holds no Delta table.
pub fn live_files(dir: &Path, table: &str) -> Result<Option<(u64, Vec<PathBuf>)>, DeltaError> {
    live_files_at(dir, table, At::Latest)
}

/// [`live_files`] of the version `at` names; no files, version 0, when the table was
/// created after the time asked for.
pub fn live_files_at(
    dir: &Path,
    table: &str,
    at: At,
) -> Result<Option<(u64, Vec<PathBuf>)>, DeltaError> {
    if !dir.join("_delta_log").is_dir() {
        return Ok(None);
    }
    let err = DeltaError::kernel(table);
    let url = url::Url::from_directory_path(dir).map_err(|()| DeltaError::Table {
        table: table.to_string(),
        message: format!("{} is not an absolute directory", dir.display()),
    })?;
    let engine = super::engine_for(Arc::new(LocalFileSystem::new()));
    let mut snapshot = Snapshot::builder_for(url.as_str())
        .build(engine.as_ref())
        .map_err(&err)?;
    let version = match at {
        At::Latest => None,
        At::Time(t) => {
            let found = latest_version_as_of(
                &snapshot,
                engine.as_ref(),
                t.timestamp_millis(),
                HistoryCommitType::Recreatable,
            );
            match found {
                Ok(commit) => Some(commit.version),
                Err(e) if is_out_of_range(&e) && created_after(&snapshot, engine.as_ref(), t) => {
                    return Ok(Some((0, Vec::new())));
                }
                Err(e) => return Err(err(e)),
            }
        }
        At::Version(v) => Some(v.min(snapshot.version())),
    };
    if let Some(v) = version.filter(|v| *v != snapshot.version()) {
        snapshot = Snapshot::builder_for(url.as_str())
            .at_version(v)
            .build(engine.as_ref())
            .map_err(&err)?;
    }
    let paths = live_paths(&snapshot, engine.as_ref(), table)?;
    let files = paths
        .iter()
        .map(|p| p.split('/').fold(dir.to_path_buf(), |d, s| d.join(s)))
        .collect();
    Ok(Some((snapshot.version(), files)))
}

fn is_out_of_range(e: &delta_kernel::KernelError) -> bool {
    matches!(e, delta_kernel::KernelError::LogHistory(h)
        if matches!(**h, LogHistoryError::TimestampOutOfRange { .. }))
}

/// Whether the table's version 0 is still in its log and newer than `t`: before it, the
/// table was empty. (Once version 0 has expired, "too early" means history is gone.)
fn created_after(snapshot: &SnapshotRef, engine: &dyn Engine, t: DateTime<Utc>) -> bool {
    let Ok(zero) = Snapshot::builder_for(snapshot.table_root().as_str())
        .at_version(0)
        .build(engine)
    else {
        return false;
    };
    zero.get_timestamp(engine)
        .is_ok_and(|ms| ms > t.timestamp_millis())
}

/// The paths of `snapshot`'s files, relative to its table and decoded, sorted.
pub(super) fn live_paths(
    snapshot: &SnapshotRef,
    engine: &dyn Engine,
    table: &str,
) -> Result<Vec<String>, DeltaError> {
    let err = DeltaError::kernel(table);
    let scan = snapshot.clone().scan_builder().build().map_err(&err)?;
    let mut paths: Vec<String> = Vec::new();
    for meta in scan.scan_metadata(engine).map_err(&err)? {
        paths = meta
            .map_err(&err)?
            .visit_scan_files(paths, |paths: &mut Vec<String>, f: ScanFile| {
                paths.push(super::log::decode_path(&f.path));
            })
            .map_err(&err)?;
    }
    paths.sort();
    Ok(paths)
}
