//! The partition writer: one Parquet file (zstd) per (table, date partition, window).
//!
//! Each file is written with one atomic `put` and described (key, rows, size, hash,
//! partition, column statistics) for the table format's committer. A Hive file is named by
//! the window start, so re-reading a window replaces it; a Delta file by the window and its
//! content, so no file a snapshot references is ever overwritten.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{RecordBatch, StructArray, UInt32Array};
use arrow::compute::take_record_batch;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use super::keys;
use super::store::{StoreError, Warehouse};
use super::table::{delta, TableFormat, WrittenFile};
use crate::schema::TableDef;

/// Why a table's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Parquet refused the batch.
    #[error("encoding {table} as Parquet: {source}")]
    #[allow(missing_docs)] // the message names them
    Encode {
        table: String,
        source: parquet::errors::ParquetError,
    },
    /// Arrow could not split it by date.
    #[error("splitting {table} into partitions: {source}")]
    #[allow(missing_docs)] // the message names them
    Split {
        table: String,
        source: arrow::error::ArrowError,
    },
    /// The warehouse refused the file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Delta's column statistics could not be collected.
    #[error("collecting {table}'s column statistics: {source}")]
    #[allow(missing_docs)] // the message names them
    Stats {
        table: String,
        source: delta::DeltaError,
    },
    /// The runtime shut down under the encoder.
    #[error(transparent)]
    ShutDown(#[from] crate::blocking::ShutDown),
}

/// A table's rows for one window, with each row's partition date (the call's own date).
#[derive(Debug, Clone)]
pub struct TableRows {
    /// The table.
    pub table: &'static TableDef,
    /// Its rows.
    pub batch: RecordBatch,
    /// Each row's partition date.
    pub dates: Vec<NaiveDate>,
}

/// The writer's settings for a table.
fn properties(table: &TableDef) -> WriterProperties {
    let builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024));
    // Interning values that do not repeat took a tenth of Parquet's CPU on the metadata path
    // (the writer falls back to plain encoding once the dictionary page is full anyway).
    table
        .unique_columns
        .iter()
        .fold(builder, |b, column| {
            b.set_column_dictionary_enabled(ColumnPath::from(*column), false)
        })
        .build()
}

/// Writes `rows` into its date partitions for the window starting at `window_start`.
///
/// Encoding is deterministic, so a file whose hash equals the one in `previous` (key →
/// sha256 from the window's last manifest) is already in place and is not written again:
/// a rerun with no new data leaves the warehouse untouched. `rows` is taken whole: it moves
/// to the blocking pool for encoding, without a copy.
pub async fn write_table(
    wh: &Warehouse,
    source: &str,
    window_start: DateTime<Utc>,
    rows: TableRows,
    previous: &HashMap<String, String>,
    format: TableFormat,
) -> Result<Vec<WrittenFile>, WriteError> {
    let table = rows.table.name;
    let with_stats = format == TableFormat::Delta;
    let parts = crate::blocking::run("Parquet encoding", move || {
        encode_partitions(&rows, with_stats)
    })
    .await??;
    let mut written = Vec::with_capacity(parts.len());
    for (date, part) in parts {
        let name = match format {
            TableFormat::Parquet => keys::part_file(window_start),
            TableFormat::Delta => keys::content_part_file(window_start, &part.sha256),
        };
        let key = keys::table_file(table, source, date, &name);
        let unchanged = previous.get(&key) == Some(&part.sha256);
        if !unchanged {
            wh.put(&key, part.bytes).await?;
        }
        written.push(WrittenFile {
            table: table.to_string(),
            key,
            rows: part.rows,
            bytes: part.size,
            sha256: part.sha256,
            unchanged,
            date,
            stats: part.stats,
        });
    }
    Ok(written)
}

/// One date partition of a table, encoded.
struct Encoded {
    bytes: Bytes,
    size: u64,
    sha256: String,
    rows: u64,
    stats: Option<StructArray>,
}

/// Splits `rows` by partition date and encodes each part, with its column statistics when
/// asked (CPU only: runs off the run's task).
fn encode_partitions(
    rows: &TableRows,
    with_stats: bool,
) -> Result<Vec<(NaiveDate, Encoded)>, WriteError> {
    let mut by_date: BTreeMap<NaiveDate, Vec<u32>> = BTreeMap::new();
    for (i, d) in rows.dates.iter().enumerate() {
        by_date.entry(*d).or_default().push(i as u32);
    }
    let mut parts = Vec::with_capacity(by_date.len());
    for (date, idx) in by_date {
        let part = if idx.len() == rows.batch.num_rows() {
            rows.batch.clone()
        } else {
            take_record_batch(&rows.batch, &UInt32Array::from(idx)).map_err(|source| {
                WriteError::Split {
                    table: rows.table.name.to_string(),
                    source,
                }
            })?
        };
        let bytes = encode(rows.table, &part)?;
        let stats = with_stats
            .then(|| delta::file_stats(&part))
            .transpose()
            .map_err(|source| WriteError::Stats {
                table: rows.table.name.to_string(),
                source,
            })?;
        let encoded = Encoded {
            stats,
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            rows: part.num_rows() as u64,
            bytes,
        };
        parts.push((date, encoded));
    }
    Ok(parts)
}

fn encode(table: &TableDef, batch: &RecordBatch) -> Result<Bytes, WriteError> {
    let err = |source| WriteError::Encode {
        table: table.name.to_string(),
        source,
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut w =
        ArrowWriter::try_new(&mut buf, batch.schema(), Some(properties(table))).map_err(err)?;
    w.write(batch).map_err(err)?;
    w.close().map_err(err)?;
    Ok(Bytes::from(buf))
}
