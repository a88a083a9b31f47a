//! Vacuum: delete the data files no version within the retention references. A window
//! replayed leaves its previous files behind (older versions still read them); a killed
//! run leaves files no version ever named. Both go once they are older than the retention,
//! and only then: a file younger than it may be a running window's, not yet committed.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use delta_kernel::snapshot::Snapshot;
use object_store::ObjectStoreExt;

use super::snapshot::live_paths;
use super::{log, DeltaError, DeltaStore};
use crate::sink::store::Warehouse;

/// The shortest retention vacuum accepts: a window's files are written before its commit,
/// and vacuum must never delete files a running window is about to commit.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// What vacuum did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vacuumed {
    /// The table.
    pub table: String,
    /// Its version when vacuumed; `None`: the warehouse has no such Delta table.
    pub version: Option<u64>,
    /// Data files deleted (or, in a dry run, that would be), relative to the table.
    pub deleted: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
    /// Data files no version references, kept because they are younger than the retention.
    pub young: usize,
}

/// Deletes `table`'s data files that no version committed within `retain` references and
/// that are older than `retain`; with `dry_run`, only lists them.
pub async fn vacuum(
    wh: &Warehouse,
    table: &str,
    retain: Duration,
    dry_run: bool,
) -> Result<Vacuumed, DeltaError> {
    let store = DeltaStore::of(wh)?;
    let mut report = Vacuumed {
        table: table.to_string(),
        ..Vacuumed::default()
    };
    let listing = log::list(&store, table).await?;
    let Some(&newest) = listing.commits.keys().next_back() else {
        return Ok(report);
    };
    let cutoff = Utc::now() - retain;
    let earliest = listing.earliest_readable().unwrap_or(0);
    // The version readers had at the cutoff, and every one since.
    let from = listing.version_at(cutoff).unwrap_or(earliest).max(earliest);
    let mut referenced = referenced_at(&store, table, from).await?;
    if from < newest {
        referenced.extend(log::added_paths(&store, table, &listing, from + 1..=newest).await?);
    }
    report.version = Some(newest);
    for (rel, meta) in store.data_files(table).await? {
        if referenced.contains(&rel) {
            continue;
        }
        if meta.last_modified > cutoff {
            report.young += 1;
            continue;
        }
        if !dry_run {
            match store.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(DeltaError::Table {
                        table: table.to_string(),
                        message: format!("deleting {rel}: {}", crate::sink::backends::describe(&e)),
                    })
                }
            }
        }
        report.bytes += meta.size;
        report.deleted.push(rel);
    }
    Ok(report)
}

/// The files of `table` at `version`, read by the kernel (from the checkpoint and commits
/// before it).
async fn referenced_at(
    store: &DeltaStore,
    table: &str,
    version: u64,
) -> Result<BTreeSet<String>, DeltaError> {
    let url = store.table_url(table)?;
    let engine = store.engine.clone();
    let name = table.to_string();
    crate::blocking::run("Delta snapshot", move || {
        let snapshot = Snapshot::builder_for(url.as_str())
            .at_version(version)
            .build(engine.as_ref())
            .map_err(DeltaError::kernel(&name))?;
        live_paths(&snapshot, engine.as_ref(), &name).map(|p| p.into_iter().collect())
    })
    .await
    .map_err(|e| DeltaError::Table {
        table: table.to_string(),
        message: e.to_string(),
    })?
}
