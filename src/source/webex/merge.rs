//! Keeping rows a window already holds. A window's files are rewritten whole (their names
//! are the window's), so rows not read again are read back from them and kept: the tasks a
//! `capture:available` event did not name (`ccetl serve`), and, when a run re-reads a window
//! for its lookback, the captures of tasks whose recordings are all stored already (they
//! are not asked for again: that is most of a lookback's requests).

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::tables;
use super::WebexError;
use crate::sink::manifest::{self, Manifest};
use crate::sink::parquet::TableRows;
use crate::sink::Warehouse;
use crate::state::AudioStatus;
use crate::window::Window;

/// The column rows are kept or replaced by.
const KEY: &str = "task_id";

/// What a window's files held, read back once per window for the tables a read needs.
pub(crate) struct Previous {
    rows: HashMap<&'static str, Vec<(RecordBatch, NaiveDate)>>,
    manifest: Manifest,
}

impl Previous {
    /// The window's rows of `tables`; `None` when the window was never committed.
    pub(crate) async fn read(
        wh: &Warehouse,
        source: &str,
        stream: &str,
        w: Window,
        tables: &[&'static str],
    ) -> Result<Option<Self>, WebexError> {
        let Some(m) = manifest::read(wh, source, stream, w.start).await? else {
            return Ok(None);
        };
        let mut rows = HashMap::new();
        for table in tables {
            rows.insert(*table, previous_rows(wh, &m, table).await?);
        }
        Ok(Some(Previous { rows, manifest: m }))
    }

    /// The window's manifest.
    pub(crate) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The rows of `table` read back, each batch with its partition date.
    pub(crate) fn of(&self, table: &str) -> &[(RecordBatch, NaiveDate)] {
        self.rows.get(table).map_or(&[], Vec::as_slice)
    }

    /// Every row of `table` read back, as the window's files hold them (in their order), to
    /// commit again unchanged.
    pub(crate) fn table_rows(
        &self,
        table: &'static crate::schema::TableDef,
    ) -> Result<TableRows, WebexError> {
        let parts = self.of(table.name);
        let batches: Vec<&RecordBatch> = parts.iter().map(|(b, _)| b).collect();
        let batch = concat_batches(&(table.schema)(), batches)?;
        let dates = parts
            .iter()
            .flat_map(|(b, d)| std::iter::repeat_n(*d, b.num_rows()))
            .collect();
        Ok(TableRows {
            table,
            batch,
            dates,
        })
    }

    /// Tasks whose captures the window's `webex_captures` rows hold with every recording
    /// `stored` (or audio `disabled`), and every transcript settled too: reading their
    /// captures again would change nothing. With `await_transcripts` (transcripts on, and an
    /// org that makes them), a task needs a transcript to be settled: transcripts are made
    /// after the call, often after its audio, and only asking again finds a late one.
    pub(crate) fn settled_tasks(
        &self,
        await_transcripts: bool,
    ) -> Result<HashSet<String>, WebexError> {
        let (mut settled, mut open) = (HashSet::new(), HashSet::new());
        let mut transcribed = HashSet::new();
        for (batch, _) in self.of(super::transcripts::TRANSCRIPTS.name) {
            let tasks = strings(batch, KEY)?;
            let status = strings(batch, "status")?;
            for i in 0..batch.num_rows() {
                if super::transcripts::is_settled(status.value(i)) {
                    transcribed.insert(tasks.value(i).to_string());
                } else {
                    open.insert(tasks.value(i).to_string());
                }
            }
        }
        for (batch, _) in self.of(tables::CAPTURES.name) {
            let tasks = strings(batch, KEY)?;
            let status = strings(batch, "audio_status")?;
            for i in 0..batch.num_rows() {
                let task = tasks.value(i).to_string();
                if AudioStatus::parse(status.value(i)).is_some_and(AudioStatus::is_settled) {
                    settled.insert(task);
                } else {
                    open.insert(task);
                }
            }
        }
        if await_transcripts {
            settled.retain(|t| transcribed.contains(t));
        }
        Ok(settled.difference(&open).cloned().collect())
    }

    /// Adds to each of `tables` the previous rows whose task `keep` says to keep, then
    /// orders rows by task (stably): the order a fresh read gives the capture tables, so a
    /// merge that changes nothing writes identical files.
    pub(crate) fn keep_into(
        &self,
        keep: &(dyn Fn(&str) -> bool + Sync),
        tables: &mut [TableRows],
    ) -> Result<(), WebexError> {
        for t in tables.iter_mut() {
            let mut batches = vec![t.batch.clone()];
            let mut dates = t.dates.clone();
            for (batch, date) in self.of(t.table.name) {
                let keys = strings(batch, KEY)?;
                let mask: BooleanArray = (0..keys.len())
                    .map(|i| Some(keys.is_valid(i) && keep(keys.value(i))))
                    .collect();
                let kept = filter_record_batch(batch, &mask)?;
                dates.extend(std::iter::repeat_n(*date, kept.num_rows()));
                batches.push(kept);
            }
            if dates.len() == t.dates.len() {
                continue;
            }
            let merged = concat_batches(&t.batch.schema(), &batches)?;
            let keys = strings(&merged, KEY)?;
            let mut order: Vec<u32> = (0..merged.num_rows() as u32).collect();
            order.sort_by(|a, b| keys.value(*a as usize).cmp(keys.value(*b as usize)));
            t.batch = take_record_batch(&merged, &UInt32Array::from(order.clone()))?;
            t.dates = order.iter().map(|i| dates[*i as usize]).collect();
        }
        Ok(())
    }
}

/// A table's rows in the window's previous files, each batch with its partition date.
async fn previous_rows(
    wh: &Warehouse,
    m: &Manifest,
    table: &str,
) -> Result<Vec<(RecordBatch, NaiveDate)>, WebexError> {
    // Files an older ccetl wrote may lack columns added since: read in today's schema.
    let schema = super::KIND
        .tables
        .iter()
        .find(|t| t.name == table)
        .map(|t| (t.schema)());
    let mut out = Vec::new();
    for f in m.files.iter().filter(|f| f.table == table) {
        let date = date_of(&f.key).ok_or_else(|| corrupt(&f.key, "no date= in its key"))?;
        let bytes = wh
            .get(&f.key)
            .await?
            .ok_or_else(|| corrupt(&f.key, "the manifest lists it but it is gone"))?;
        #[allow(clippy::redundant_closure_for_method_calls)] // `build` is ambiguous by path
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| corrupt(&f.key, &e.to_string()))?;
        for batch in reader {
            let batch = batch?;
            let batch = match &schema {
                Some(s) => crate::schema::conform(&batch, s)?,
                None => batch,
            };
            out.push((batch, date));
        }
    }
    Ok(out)
}

/// A recording row of a window's files: its id, audio status and whether it is a segment.
pub(crate) struct KeptRecording<'a> {
    pub id: &'a str,
    /// `None` for a name ccetl does not write (counted as nothing).
    pub status: Option<AudioStatus>,
    pub segment: bool,
}

/// Each row of a `webex_captures` batch.
pub(crate) fn recordings(captures: &RecordBatch) -> Result<Vec<KeptRecording<'_>>, WebexError> {
    let ids = strings(captures, "capture_id")?;
    let status = strings(captures, "audio_status")?;
    let segment = captures
        .column_by_name("segment")
        .and_then(|c| c.as_boolean_opt())
        .ok_or_else(|| {
            arrow::error::ArrowError::SchemaError("no boolean column 'segment'".into())
        })?;
    Ok((0..captures.num_rows())
        .map(|i| KeptRecording {
            id: ids.value(i),
            status: AudioStatus::parse(status.value(i)),
            segment: segment.value(i),
        })
        .collect())
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, WebexError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| {
            arrow::error::ArrowError::SchemaError(format!("no text column '{name}' to merge on"))
                .into()
        })
}

fn date_of(key: &str) -> Option<NaiveDate> {
    let part = key.split('/').find_map(|p| p.strip_prefix("date="))?;
    NaiveDate::parse_from_str(part, "%Y-%m-%d").ok()
}

fn corrupt(key: &str, why: &str) -> WebexError {
    arrow::error::ArrowError::ParseError(format!(
        "{key}: cannot read the window's file back to keep its rows: {why}"
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
