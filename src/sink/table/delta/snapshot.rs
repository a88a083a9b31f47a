//! Reading a Delta table as its readers do: the files of its current snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use delta_kernel::scan::state::ScanFile;
use delta_kernel::snapshot::Snapshot;
use delta_kernel_default_engine::DefaultEngineBuilder;
use object_store::local::LocalFileSystem;

use super::DeltaError;

/// A Delta table's version and live files under a local directory (a local warehouse or a
/// mirror of one); `None` when `dir` holds no Delta table.
pub fn live_files(dir: &Path, table: &str) -> Result<Option<(u64, Vec<PathBuf>)>, DeltaError> {
    if !dir.join("_delta_log").is_dir() {
        return Ok(None);
    }
    let err = DeltaError::kernel(table);
    let url = url::Url::from_directory_path(dir).map_err(|()| DeltaError::Table {
        table: table.to_string(),
        message: format!("{} is not an absolute directory", dir.display()),
    })?;
    let engine = DefaultEngineBuilder::new(Arc::new(LocalFileSystem::new())).build();
    let snapshot = Snapshot::builder_for(url.as_str())
        .build(&engine)
        .map_err(&err)?;
    let scan = snapshot.clone().scan_builder().build().map_err(&err)?;
    let mut paths: Vec<String> = Vec::new();
    for meta in scan.scan_metadata(&engine).map_err(&err)? {
        paths = meta
            .map_err(&err)?
            .visit_scan_files(paths, |paths: &mut Vec<String>, f: ScanFile| {
                paths.push(f.path);
            })
            .map_err(&err)?;
    }
    paths.sort();
    let files = paths
        .iter()
        .map(|p| p.split('/').fold(dir.to_path_buf(), |d, s| d.join(s)))
        .collect();
    Ok(Some((snapshot.version(), files)))
}
