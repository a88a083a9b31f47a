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

/// A Delta table's version and live files under a local directory (a local warehouse or a
/// mirror of one); `None` when `dir` holds no Delta table.
pub fn live_files(dir: &Path, table: &str) -> Result<Option<(u64, Vec<PathBuf>)>, DeltaError> {
    live_files_as_of(dir, table, None)
}

/// [`live_files`] of the newest version committed at or before `as_of` (`None`: now); no
/// files, version 0, when the table was created after it.
pub fn live_files_as_of(
    dir: &Path,
    table: &str,
    as_of: Option<DateTime<Utc>>,
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
    if let Some(t) = as_of {
        let found = latest_version_as_of(
            &snapshot,
            engine.as_ref(),
            t.timestamp_millis(),
            HistoryCommitType::Recreatable,
        );
        let version = match found {
            Ok(commit) => commit.version,
            Err(e) if is_out_of_range(&e) && created_after(&snapshot, engine.as_ref(), t) => {
                return Ok(Some((0, Vec::new())));
            }
            Err(e) => return Err(err(e)),
        };
        snapshot = Snapshot::builder_for(url.as_str())
            .at_version(version)
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
