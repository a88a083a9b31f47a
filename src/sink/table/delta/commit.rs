//! One window's commit to one table: remove the window's files the snapshot has and this
//! read did not write, add the ones it lacks, in one log entry. Lost races reload and
//! rebuild, bounded.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use arrow::array::{Array, AsArray, StructArray};
use chrono::{DateTime, Utc};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::engine_data::FilteredEngineData;
use delta_kernel::expressions::Scalar;
use delta_kernel::schema::StructType;
use delta_kernel::snapshot::{Snapshot, SnapshotRef};
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use delta_kernel::{Engine, FileMeta};
use delta_kernel_default_engine::build_add_file_metadata;
use delta_kernel_default_engine::parquet::DataFileMetadata;
use url::Url;

use super::checkpoint;
use super::schema::table_schema;
use super::{is_window_file, log_path, DeltaError, DeltaStore, ENGINE_INFO};
use crate::sink::keys;
use crate::sink::table::{WindowFiles, WrittenFile};

/// Commits lost to other writers before the window gives up (the run then fails and the
/// next replays it). Eight shards on one table each win within a few.
const MAX_ATTEMPTS: u32 = 25;

/// A window committed: the table version that holds it, and the checkpoint written after.
pub(super) struct Committed {
    pub version: u64,
    pub checkpoint: Option<checkpoint::Written>,
}

/// A file to add, as the log names it.
struct NewFile {
    path: String,
    size: u64,
    date_days: i32,
    stats: Option<StructArray>,
}

/// Everything a commit needs, owned, for the blocking pool.
pub(super) struct Plan {
    table: &'static crate::schema::TableDef,
    url: Url,
    schema: StructType,
    source: String,
    source_dir: String,
    stamp: String,
    files: Vec<NewFile>,
    /// A window's commit replaces the window's files; an append only adds.
    replace: bool,
    /// The window's transaction id (`txn`), for engines that track what a writer did.
    app_id: Option<String>,
    window_end_ms: i64,
    params: Vec<(&'static str, String)>,
}

impl Plan {
    pub(super) fn of(w: &WindowFiles<'_>, store: &DeltaStore) -> Result<Self, DeltaError> {
        let (start, end): (DateTime<Utc>, DateTime<Utc>) = w.window;
        Ok(Plan {
            table: w.table,
            url: store.table_url(w.table.name)?,
            schema: table_schema(w.table)?,
            source: keys::safe_segment(w.source),
            source_dir: keys::source_dir(w.source),
            stamp: keys::window_stamp(w.window.0),
            files: new_files(w.table.name, &w.files),
            replace: true,
            app_id: Some(format!("ccetl/{}/{}", w.source, w.stream)),
            window_end_ms: end.timestamp_millis(),
            params: vec![
                ("run", w.run_id.to_string()),
                ("source", w.source.to_string()),
                ("stream", w.stream.to_string()),
                ("windowStart", start.to_rfc3339()),
                ("windowEnd", end.to_rfc3339()),
            ],
        })
    }

    /// An append of `files` to `table` under `source`'s partition: nothing removed.
    pub(super) fn append(
        table: &'static crate::schema::TableDef,
        source: &str,
        files: &[WrittenFile],
        params: Vec<(&'static str, String)>,
        store: &DeltaStore,
    ) -> Result<Self, DeltaError> {
        Ok(Plan {
            table,
            url: store.table_url(table.name)?,
            schema: table_schema(table)?,
            source: keys::safe_segment(source),
            source_dir: keys::source_dir(source),
            stamp: String::new(),
            files: new_files(table.name, files),
            replace: false,
            app_id: None,
            window_end_ms: 0,
            params,
        })
    }

    /// Commits, reloading and rebuilding after each commit another writer won; writes a
    /// checkpoint when the table is due one.
    pub(super) fn run(self, store: &DeltaStore) -> Result<Committed, DeltaError> {
        let engine = store.engine.as_ref();
        let err = DeltaError::kernel(self.table.name);
        for attempt in 0..MAX_ATTEMPTS {
            let snapshot = Snapshot::builder_for(self.url.as_str())
                .build(engine)
                .map_err(&err)?;
            let Some(txn) = self.transaction(&snapshot, engine)? else {
                return Ok(Committed {
                    version: snapshot.version(),
                    checkpoint: None,
                });
            };
            match txn.commit(engine).map_err(&err)? {
                CommitResult::Committed(c) => {
                    let version = c.commit_version();
                    let reload = || {
                        Snapshot::builder_for(self.url.as_str())
                            .at_version(version)
                            .build(engine)
                            .ok()
                    };
                    let checkpoint = checkpoint::after_commit(&c, reload, engine, self.table.name);
                    return Ok(Committed {
                        version,
                        checkpoint,
                    });
                }
                CommitResult::Conflicted(_) | CommitResult::Retryable(_) => {
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
        Err(DeltaError::Contended {
            table: self.table.name.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The window's commit on top of `snapshot`; `None` when the snapshot already holds
    /// exactly the window's files.
    fn transaction(
        &self,
        snapshot: &SnapshotRef,
        engine: &dyn Engine,
    ) -> Result<Option<delta_kernel::transaction::Transaction>, DeltaError> {
        let err = DeltaError::kernel(self.table.name);
        let wanted: BTreeSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        let (removes, present) = self.window_files(snapshot, engine, &wanted)?;
        let any_removed = removes
            .iter()
            .any(|r| r.selection_vector().iter().any(|s| *s));
        if !any_removed && present.len() == wanted.len() {
            return Ok(None);
        }
        let known = snapshot.schema();
        let mut builder =
            snapshot
                .clone()
                .update_table(UpdateTableOperation::Write, ENGINE_INFO, true);
        for field in self.schema.fields() {
            if known.field(field.name()).is_none() {
                // A column added since the table was created: files before it read it as null.
                builder = builder.add_column(field.clone());
            }
        }
        if let Some(app_id) = &self.app_id {
            let last = snapshot
                .get_app_id_version(app_id, engine)
                .map_err(&err)?
                .unwrap_or(i64::MIN);
            builder = builder.with_transaction_id(app_id.clone(), last.max(self.window_end_ms));
        }
        let mut txn = builder
            .with_operation_parameters(self.params.iter().map(|(k, v)| (*k, Some(v.clone()))))
            .build(engine, Box::new(FileSystemCommitter::new()))
            .map_err(&err)?;
        for r in removes {
            txn.remove_files(r);
        }
        let state = txn.write_state().map_err(&err)?;
        let now = Utc::now().timestamp_millis();
        for f in self.files.iter().filter(|f| !present.contains(&f.path)) {
            let context = state
                .write_context_builder()
                .with_partition_values(HashMap::from([
                    ("source".to_string(), Scalar::String(self.source.clone())),
                    ("date".to_string(), Scalar::Date(f.date_days)),
                ]))
                .build()
                .map_err(&err)?;
            let meta = FileMeta {
                location: self.url.join(&f.path).map_err(|e| DeltaError::Table {
                    table: self.table.name.to_string(),
                    message: e.to_string(),
                })?,
                last_modified: now,
                size: f.size,
            };
            let stats = f
                .stats
                .clone()
                .unwrap_or_else(|| StructArray::new_empty_fields(1, None));
            let add = build_add_file_metadata(DataFileMetadata::new(meta, stats), &context)
                .map_err(&err)?;
            txn.add_files(add);
        }
        Ok(Some(txn))
    }

    /// The snapshot's files of this window that are not wanted (as removals), and the wanted
    /// ones it already has.
    fn window_files(
        &self,
        snapshot: &SnapshotRef,
        engine: &dyn Engine,
        wanted: &BTreeSet<&str>,
    ) -> Result<(Vec<FilteredEngineData>, BTreeSet<String>), DeltaError> {
        let err = DeltaError::kernel(self.table.name);
        let scan = snapshot.clone().scan_builder().build().map_err(&err)?;
        let mut removes = Vec::new();
        let mut present = BTreeSet::new();
        for meta in scan.scan_metadata(engine).map_err(&err)? {
            let (data, selected) = meta.map_err(&err)?.scan_files.into_parts();
            let data = ArrowEngineData::try_from_engine_data(data).map_err(&err)?;
            let paths = data
                .record_batch()
                .column_by_name("path")
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| DeltaError::Table {
                    table: self.table.name.to_string(),
                    message: "its scan has no string `path` column".into(),
                })?;
            let mut remove = vec![false; paths.len()];
            for (i, path) in paths.iter().enumerate() {
                let live = selected.get(i).copied().unwrap_or(true);
                let Some(path) = path.filter(|_| live) else {
                    continue;
                };
                if wanted.contains(path) {
                    present.insert(path.to_string());
                } else if self.replace && is_window_file(path, &self.source_dir, &self.stamp) {
                    remove[i] = true;
                }
            }
            removes.push(FilteredEngineData::try_new(data, remove).map_err(&err)?);
        }
        Ok((removes, present))
    }
}

/// `files` as the log names them.
fn new_files(table: &str, files: &[WrittenFile]) -> Vec<NewFile> {
    let epoch = chrono::NaiveDate::default();
    files
        .iter()
        .map(|f| NewFile {
            path: log_path(table, &f.key),
            size: f.bytes,
            date_days: (f.date - epoch).num_days() as i32,
            stats: f.stats.clone(),
        })
        .collect()
}

/// 20 ms doubling to 1.3 s, with jitter, so racing shards spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 20u64 << attempt.min(6);
    Duration::from_millis(base + rand::random_range(0..=base))
}
