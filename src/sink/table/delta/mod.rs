//! Delta Lake tables through delta-kernel-rs: each table under the warehouse has a
//! `_delta_log`; a window's commit removes the window's previous files and adds its new
//! ones in one log entry, so every reader sees a table all before or all after it.
//!
//! Version 0 is written here, at the lowest protocol the tables need (reader 1, writer 2),
//! which every engine reads; the kernel would create reader 3 / writer 7. Later commits go
//! through the kernel's transactions, whose put-if-absent of the next log entry is what
//! makes two writers of one table safe: the loser reloads the snapshot and rebuilds.

use std::sync::Arc;

use delta_kernel::Engine;
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use delta_kernel_default_engine::DefaultEngineBuilder;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use url::Url;

use super::WindowFiles;
use crate::sink::keys;
use crate::sink::store::Warehouse;

mod checkpoint;
mod commit;
mod create;
mod log;
mod schema;
mod snapshot;
mod vacuum;

pub use create::probe_conditional_create;
pub use log::commit_version;
pub use schema::file_stats;
pub use snapshot::{live_files, live_files_at, At};
pub use vacuum::{vacuum, Vacuumed, MIN_RETENTION};

/// What ccetl writes into `commitInfo.engineInfo`.
const ENGINE_INFO: &str = concat!("ccetl/", env!("CARGO_PKG_VERSION"));

/// Why a Delta table could not be read or committed to. Each names the table.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The kernel refused the log or the commit (unreadable, a protocol it cannot write,
    /// an I/O error reading the log).
    #[error("Delta table {table}: {source}")]
    #[allow(missing_docs)] // the message names them
    Kernel {
        table: String,
        #[source]
        source: Box<delta_kernel::KernelError>,
    },
    /// The table's log is not one ccetl can commit to.
    #[error("Delta table {table}: {message}")]
    #[allow(missing_docs)] // the message names them
    Table { table: String, message: String },
    /// Other writers kept committing first.
    #[error(
        "Delta table {table}: {attempts} commits in a row lost to other writers; run again (the window is replayed)"
    )]
    #[allow(missing_docs)] // the message names them
    Contended { table: String, attempts: u32 },
    /// Column statistics could not be collected from a batch.
    #[error("{0}")]
    Stats(#[source] Box<delta_kernel::KernelError>),
}

impl DeltaError {
    fn kernel(table: &str) -> impl Fn(delta_kernel::KernelError) -> DeltaError + '_ {
        move |source| DeltaError::Kernel {
            table: table.to_string(),
            source: Box::new(without_backtrace(source)),
        }
    }
}

/// The kernel's error without the backtrace it wraps around it when `RUST_BACKTRACE` is set:
/// its message would print the whole trace, where ccetl's errors are one line.
fn without_backtrace(e: delta_kernel::KernelError) -> delta_kernel::KernelError {
    match e {
        delta_kernel::KernelError::Backtraced { source, .. } => without_backtrace(*source),
        e => e,
    }
}

/// The kernel's view of a warehouse: a table's URL and an engine whose object store
/// resolves it.
pub(crate) struct DeltaStore {
    engine: Arc<dyn Engine>,
    /// The warehouse root, ending in `/`.
    root: Url,
    store: Arc<dyn ObjectStore>,
}

impl DeltaStore {
    /// The kernel resolves `file://` URLs by their absolute path, and bucket URLs by their
    /// path within the bucket: a local warehouse gets a store rooted at `/`, a bucket the
    /// warehouse's own (rooted at the bucket).
    pub(crate) fn of(wh: &Warehouse) -> Result<Self, DeltaError> {
        let bad = |message: String| DeltaError::Table {
            table: wh.url().to_string(),
            message,
        };
        let root = Url::parse(&format!("{}/", wh.url())).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match wh.local_root() {
            Some(_) => Arc::new(LocalFileSystem::new()),
            None => wh.store().clone(),
        };
        let engine = engine_for(store.clone());
        Ok(DeltaStore {
            engine,
            root,
            store,
        })
    }

    /// A table's root URL, ending in `/`.
    pub(crate) fn table_url(&self, table: &str) -> Result<Url, DeltaError> {
        self.root
            .join(&format!("{table}/"))
            .map_err(|e| DeltaError::Table {
                table: table.to_string(),
                message: e.to_string(),
            })
    }

    /// Every object under `table`'s directory `under` (`""`: the whole table), with its
    /// path relative to the table as segments; `doing` names the listing in an error.
    pub(crate) async fn list(
        &self,
        table: &str,
        under: &str,
        doing: &str,
    ) -> Result<Vec<(Vec<String>, ObjectMeta)>, DeltaError> {
        let bad = |message: String| DeltaError::Table {
            table: table.to_string(),
            message,
        };
        let url = self.table_url(table)?;
        let root = Path::from_url_path(url.path()).map_err(|e| bad(e.to_string()))?;
        let prefix = if under.is_empty() {
            root.clone()
        } else {
            Path::from_url_path(format!("{}{under}/", url.path()))
                .map_err(|e| bad(e.to_string()))?
        };
        let all: Vec<ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| bad(format!("{doing}: {}", crate::sink::backends::describe(&e))))?;
        Ok(all
            .into_iter()
            .filter_map(|m| {
                let rel = m
                    .location
                    .prefix_match(&root)?
                    .map(|p| p.as_ref().to_string())
                    .collect();
                Some((rel, m))
            })
            .collect())
    }

    /// The table's data files: Parquet files outside its hidden directories (`_delta_log`,
    /// names starting with `_` or `.`), by path relative to the table.
    pub(crate) async fn data_files(
        &self,
        table: &str,
    ) -> Result<Vec<(String, ObjectMeta)>, DeltaError> {
        let all = self.list(table, "", "listing its files").await?;
        Ok(all
            .into_iter()
            .filter_map(|(rel, m)| {
                let hidden = rel.iter().any(|s| s.starts_with('_') || s.starts_with('.'));
                let parquet = rel.last().is_some_and(|n| n.ends_with(".parquet"));
                (parquet && !hidden).then(|| (rel.join("/"), m))
            })
            .collect())
    }
}

/// The kernel's default engine over `store`. Inside a runtime it runs its I/O on that
/// runtime's workers: the kernel's checkpoint writer blocks on a future that itself blocks
/// on the next batch, which deadlocks the default single-threaded background executor.
pub(super) fn engine_for(store: Arc<dyn ObjectStore>) -> Arc<dyn Engine> {
    let builder = DefaultEngineBuilder::new(store);
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => Arc::new(
            builder
                .with_task_executor(Arc::new(TokioMultiThreadExecutor::new(h)))
                .build(),
        ),
        _ => Arc::new(builder.build()),
    }
}

/// Commits `w` to its table (created on first use); returns the version it produced, or
/// the current one when the table already holds exactly these files.
pub async fn commit(wh: &Warehouse, w: WindowFiles<'_>) -> Result<u64, DeltaError> {
    let store = DeltaStore::of(wh)?;
    create::ensure(&store, w.table).await?;
    let plan = commit::Plan::of(&w, &store)?;
    run(store, w.table.name, plan).await
}

/// Adds `files` to `table` (created on first use) under `source`'s partition, removing
/// nothing, with `params` in its `commitInfo`; returns the version it produced.
pub async fn append(
    wh: &Warehouse,
    table: &'static crate::schema::TableDef,
    source: &str,
    files: &[super::WrittenFile],
    params: Vec<(&'static str, String)>,
) -> Result<u64, DeltaError> {
    let store = DeltaStore::of(wh)?;
    create::ensure(&store, table).await?;
    let plan = commit::Plan::append(table, source, files, params, &store)?;
    run(store, table.name, plan).await
}

/// Commits `plan` off the runtime, then cleans the log when a checkpoint made room.
async fn run(
    store: DeltaStore,
    table: &'static str,
    plan: commit::Plan,
) -> Result<u64, DeltaError> {
    let started = std::time::Instant::now();
    let store = Arc::new(store);
    let committer = store.clone();
    let committed = crate::blocking::run("Delta commit", move || plan.run(&committer))
        .await
        .map_err(|e| DeltaError::Table {
            table: table.to_string(),
            message: e.to_string(),
        })??;
    let version = committed.version;
    if let Some(retention) = committed.checkpoint.and_then(|c| c.log_retention) {
        // The window is committed; an entry left behind is deleted at the next checkpoint.
        match log::cleanup(&store, table, retention).await {
            Ok(cleaned) => tracing::debug!(table, ?cleaned, "Delta log cleaned."),
            Err(e) => {
                tracing::warn!(table, error = %e, "Could not clean the Delta log.");
            }
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::debug!(table, version, ms, "Delta commit.");
    Ok(version)
}

/// The path the log names a file by: relative to its table, as a URL path.
fn log_path(table: &str, key: &str) -> String {
    key.strip_prefix(&format!("{table}/"))
        .unwrap_or(key)
        .to_string()
}

/// Whether the file at the log path `path` belongs to the window stamped `stamp`, for the
/// source partition `source_dir` (`source=name`).
fn is_window_file(path: &str, source_dir: &str, stamp: &str) -> bool {
    let mut parts = path.rsplitn(2, '/');
    let (Some(name), Some(dir)) = (parts.next(), parts.next()) else {
        return false;
    };
    dir.split('/').next() == Some(source_dir)
        && keys::parse_part_file(name).is_some_and(|(s, _)| s == stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_files_are_told_by_source_and_name() {
        let stamp = "20260131T000000Z";
        let src = "source=wx";
        for (path, yes) in [
            (
                "source=wx/date=2026-01-31/part-20260131T000000Z-0123456789abcdef.parquet",
                true,
            ),
            (
                "source=wx/date=2026-02-01/part-20260131T000000Z.parquet",
                true,
            ),
            (
                "source=wx2/date=2026-01-31/part-20260131T000000Z.parquet",
                false,
            ),
            (
                "source=wx/date=2026-01-31/part-20260131T000000Zx.parquet",
                false,
            ),
            (
                "source=wx/date=2026-01-31/part-20260201T000000Z.parquet",
                false,
            ),
            ("part-20260131T000000Z.parquet", false),
        ] {
            assert_eq!(is_window_file(path, src, stamp), yes, "{path}");
        }
    }
}
