//! Adding rows to a window that already holds some: what `ccetl serve` does with the tasks
//! events announce. A window's files are rewritten whole (their names are the window's), so
//! the rows already in them are read back and kept, except those the new rows replace.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::SourceFailure;
use crate::sink::manifest;
use crate::sink::parquet::TableRows;
use crate::sink::Warehouse;
use crate::window::Window;

/// Merges the rows window `w` holds into `tables`: a previous row stays unless its `key`
/// column value is among the new rows' (those are newer reads of the same thing).
pub async fn with_previous(
    wh: &Warehouse,
    source: &str,
    stream: &str,
    w: Window,
    key: &str,
    tables: &mut [TableRows],
) -> Result<(), SourceFailure> {
    let Some(previous) = manifest::read(wh, source, stream, w.start).await? else {
        return Ok(());
    };
    for t in tables.iter_mut() {
        let fresh: HashSet<String> = keys(&t.batch, key)?.into_iter().flatten().collect();
        let mut batches = vec![t.batch.clone()];
        let mut dates = t.dates.clone();
        for f in previous.files.iter().filter(|f| f.table == t.table) {
            let date = date_of(&f.key).ok_or_else(|| corrupt(&f.key, "no date= in its key"))?;
            let bytes = wh
                .get(&f.key)
                .await?
                .ok_or_else(|| corrupt(&f.key, "the manifest lists it but it is gone"))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| corrupt(&f.key, &e.to_string()))?;
            for batch in reader {
                let batch = batch?;
                let keep: BooleanArray = keys(&batch, key)?
                    .iter()
                    .map(|k| Some(k.as_ref().is_none_or(|k| !fresh.contains(k))))
                    .collect();
                let kept = filter_record_batch(&batch, &keep)?;
                dates.extend(std::iter::repeat_n(date, kept.num_rows()));
                batches.push(kept);
            }
        }
        let schema: Arc<arrow::datatypes::Schema> = t.batch.schema();
        t.batch = concat_batches(&schema, &batches)?;
        t.dates = dates;
    }
    Ok(())
}

fn keys(batch: &RecordBatch, key: &str) -> Result<Vec<Option<String>>, SourceFailure> {
    let col = batch.column_by_name(key).ok_or_else(|| {
        arrow::error::ArrowError::SchemaError(format!("no column '{key}' to merge on"))
    })?;
    let col = col.as_string_opt::<i32>().ok_or_else(|| {
        arrow::error::ArrowError::SchemaError(format!("column '{key}' is not text"))
    })?;
    Ok((0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect())
}

fn date_of(key: &str) -> Option<NaiveDate> {
    let part = key.split('/').find_map(|p| p.strip_prefix("date="))?;
    NaiveDate::parse_from_str(part, "%Y-%m-%d").ok()
}

fn corrupt(key: &str, why: &str) -> SourceFailure {
    arrow::error::ArrowError::ParseError(format!(
        "{key}: cannot read the window's file back to add rows to it: {why}"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_come_from_hive_keys() {
        assert_eq!(
            date_of("webex_tasks/source=wx/date=2026-01-08/part-2026-01-08T00:00:00Z.parquet"),
            NaiveDate::from_ymd_opt(2026, 1, 8)
        );
        assert_eq!(date_of("webex_tasks/part.parquet"), None);
    }
}
