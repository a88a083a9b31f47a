//! Table formats: how the files a window wrote become the table readers see.
//!
//! The partition writer ([`super::parquet`]) writes files and describes them; a committer
//! per format makes them the table, as delta-rs hands its writer's `Add` actions to a
//! commit. Hive (`parquet`): the folder is the table, so the window's stale files are
//! deleted once the new ones are in place. Delta: one log commit per window and table
//! removes the window's previous files and adds its new ones, atomically for every reader.

use arrow::array::StructArray;
use chrono::{DateTime, NaiveDate, Utc};

use super::store::{StoreError, Warehouse};
use crate::schema::TableDef;

pub mod delta;
mod hive;

/// `[pipeline] table_format`: what the warehouse's tables are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Delta Lake tables: a `_delta_log` per table, atomic snapshots, history. Engines
    /// register them as tables (Snowflake, Databricks, BigQuery, Athena, Trino, DuckDB).
    #[default]
    Delta,
    /// Plain Hive-partitioned Parquet folders, for readers that only glob.
    Parquet,
}

/// Why a window's files could not be made the table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The warehouse refused a read, write or delete.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Delta log could not be read or committed to.
    #[error(transparent)]
    Delta(#[from] delta::DeltaError),
    /// The runtime shut down under the commit.
    #[error(transparent)]
    ShutDown(#[from] crate::blocking::ShutDown),
}

/// A file the partition writer put, as it describes it to the committer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WrittenFile {
    /// Its table.
    pub table: String,
    /// Its warehouse-relative key.
    pub key: String,
    /// Its rows.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Identical to the file the window's previous manifest recorded: not written again.
    pub unchanged: bool,
    /// Its partition date (the source is the window's).
    #[serde(skip)]
    pub date: NaiveDate,
    /// Its column statistics in Delta's layout (`numRecords`, `nullCount`, `minValues`,
    /// `maxValues`), when the table format keeps them.
    #[serde(skip)]
    pub stats: Option<StructArray>,
}

/// One window's files of one table, to commit.
#[derive(Debug)]
pub struct WindowFiles<'a> {
    /// The table.
    pub table: &'static TableDef,
    /// The source that wrote them, as its partition value.
    pub source: &'a str,
    /// The stream the window belongs to.
    pub stream: &'a str,
    /// The window.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// The run committing it.
    pub run_id: i64,
    /// Every file the window now has in this table (written or unchanged).
    pub files: Vec<WrittenFile>,
    /// The keys the window's previous commit recorded for this table.
    pub previous: Vec<String>,
}

/// Makes `w`'s files the table's rows for its window; returns the table version it
/// produced, for formats that have versions.
pub async fn commit(
    format: TableFormat,
    wh: &Warehouse,
    w: WindowFiles<'_>,
) -> Result<Option<u64>, TableError> {
    match format {
        TableFormat::Parquet => {
            hive::commit(wh, &w).await?;
            Ok(None)
        }
        TableFormat::Delta => Ok(Some(delta::commit(wh, w).await?)),
    }
}

/// Adds `files` to `table` under `source`'s partition and removes nothing (an append-only
/// table: `ccetl_runs`); `params` go into the commit's info where the format keeps one.
/// Returns the table version it produced, for formats that have versions.
pub async fn append(
    format: TableFormat,
    wh: &Warehouse,
    table: &'static TableDef,
    source: &str,
    files: &[WrittenFile],
    params: Vec<(&'static str, String)>,
) -> Result<Option<u64>, TableError> {
    match format {
        // The folder is the table: the files are in it already.
        TableFormat::Parquet => Ok(None),
        TableFormat::Delta => Ok(Some(delta::append(wh, table, source, files, params).await?)),
    }
}
