//! `ccetl query`: DuckDB over the warehouse's Parquet files.
//!
//! One view per table (Hive partitions give `source` and `date` columns), and the unified
//! `calls` and `recordings` views that every source feeds, and `transcripts`. A table with no files yet gets an
//! empty view with the documented columns, so queries never fail on a young warehouse.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use duckdb::Connection;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::extract::CallsSql;
use crate::sink::table::delta::{live_files_at, At};
use crate::sink::Warehouse;

pub mod mirror;
pub mod pin;

use mirror::Mirror;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// DuckDB's message only: its error source repeats the message and then says "Error
    /// code 1: Unknown error code", which the CLI's cause chain would print too.
    #[error("query: {0}")]
    Db(String),
    /// Arrow could not print the result.
    #[error("query: {0}")]
    Format(#[from] arrow::error::ArrowError),
    /// The remote warehouse could not be read into the local mirror.
    #[error("query: mirroring the warehouse: {0}")]
    Mirror(String),
    /// A Delta table's log could not be read.
    #[error("query: {0}")]
    Table(#[from] crate::sink::table::delta::DeltaError),
}

impl From<duckdb::Error> for QueryError {
    fn from(e: duckdb::Error) -> Self {
        QueryError::Db(e.to_string())
    }
}

/// How `ccetl query` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[allow(missing_docs)] // clap would show variant docs, turning `--help` into its long form
pub enum Format {
    Table,
    Csv,
    Json,
}

/// The DuckDB type an Arrow column reads as.
pub fn duck_type(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::List(f) => format!("{}[]", duck_type(f.data_type())),
        _ => "VARCHAR".into(),
    }
}

fn empty_view(table: &str, schema: &SchemaRef) -> String {
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "CAST(NULL AS {}) AS \"{}\"",
                duck_type(f.data_type()),
                f.name()
            )
        })
        .chain([
            "CAST(NULL AS VARCHAR) AS source".into(),
            "CAST(NULL AS DATE) AS date".into(),
        ])
        .collect();
    format!(
        "CREATE OR REPLACE VIEW {table} AS SELECT {} WHERE false",
        cols.join(", ")
    )
}

/// One row per recording of every source that copies audio, from each kind's recordings
/// table in the registry (a Webex segment is a part of a stitched recording; other systems
/// have none).
fn recordings_view() -> String {
    let selects: Vec<String> = crate::source::KINDS
        .iter()
        .filter_map(|k| {
            let r = k.recordings?;
            let has_segment = (r.table.schema)().field_with_name("segment").is_ok();
            let segment = if has_segment { "segment" } else { "false" };
            Some(format!(
                "SELECT {} AS recording_id, {} AS call_id, {} AS system, source, date, \
                 {segment} AS segment, start_time, stop_time, duration_ms, audio_uri, \
                 audio_bytes, audio_sha256, audio_status FROM {}",
                r.id,
                r.call,
                sql_str(k.name),
                r.table.name
            ))
        })
        .collect();
    format!(
        "CREATE OR REPLACE VIEW recordings AS\n{};",
        selects.join("\nUNION ALL\n")
    )
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The columns of the `calls` view after `call_id`, `systems`, `source` and each kind's
/// source column, in order: each is the first non-null of the kinds that saw the call, by
/// their rank (`end_time`: a real end first).
const CALL_COLUMNS: [&str; 12] = [
    "date",
    "start_time",
    "end_time",
    "channel_type",
    "direction",
    "status",
    "ani",
    "dnis",
    "queue_name",
    "agent_name",
    "team_name",
    "entrypoint_name",
];

/// One row per call whichever sources saw it, from each kind's part in the registry
/// (`SourceKind::calls`): calls of kinds that share ids (a v1 task and a legacy session) are
/// one row, and `systems` says which saw it. Activity chains join on `call_id =
/// activity_chains.session_id`, recordings on `recordings.call_id`.
///
/// A call's `end_time` is a real end or null, never `lastUpdatedTime` (the spec: it "may
/// also update after task closure"): the legacy CSR's `cetts`, else the Search API's
/// `endedTime`, else the last `stopTime` of the task's stitched recordings.
fn calls_view() -> String {
    let parts: Vec<(&str, CallsSql)> = crate::source::KINDS
        .iter()
        .filter_map(|k| Some((k.name, k.calls?)))
        .collect();
    let seen: Vec<String> = parts
        .iter()
        .map(|(kind, c)| {
            format!(
                "SELECT *, {} AS system, {} AS family, {} AS precedence, {} AS real_end FROM ({})",
                sql_str(kind),
                sql_str(c.same_calls_as.unwrap_or(kind)),
                c.rank,
                c.real_end,
                c.select.trim()
            )
        })
        .collect();
    let first = |column: &str, order: &str| {
        format!("first({column} ORDER BY {order}) FILTER (WHERE {column} IS NOT NULL) AS {column}")
    };
    let source_columns = parts.iter().filter_map(|(kind, c)| {
        let column = c.source_column?;
        Some(format!(
            "first(source) FILTER (WHERE system = {}) AS {column}",
            sql_str(kind)
        ))
    });
    let columns: Vec<String> = [
        "call_id".to_string(),
        "string_agg(system, '+' ORDER BY precedence) AS systems".to_string(),
        first("source", "precedence"),
    ]
    .into_iter()
    .chain(source_columns)
    .chain(CALL_COLUMNS.iter().map(|c| match *c {
        "end_time" => first(c, "real_end DESC, precedence"),
        _ => first(c, "precedence"),
    }))
    .collect();
    format!(
        "CREATE OR REPLACE VIEW calls AS\nWITH seen AS (\n{}\n)\nSELECT {}\nFROM seen GROUP BY family, call_id;",
        seen.join("\nUNION ALL BY NAME\n"),
        columns.join(",\n       ")
    )
}

/// The views kinds add to (`SourceKind::views`), each the union by column name of every
/// adding kind's rows, with the first one's docs.
fn kind_views() -> Vec<(&'static str, String, &'static str)> {
    let mut views: Vec<(&str, Vec<&str>, &str)> = Vec::new();
    for v in crate::source::KINDS.iter().flat_map(|k| k.views) {
        match views.iter_mut().find(|(name, ..)| *name == v.name) {
            Some((_, selects, _)) => selects.push(v.select),
            None => views.push((v.name, vec![v.select], v.docs)),
        }
    }
    views
        .into_iter()
        .map(|(name, selects, docs)| {
            let sql = format!(
                "CREATE OR REPLACE VIEW {name} AS\n{};",
                selects.join("\nUNION ALL BY NAME\n")
            );
            (name, sql, docs)
        })
        .collect()
}

/// An in-memory DuckDB with the views of any warehouse: a local one is read in place, one
/// in object storage through its local mirror (brought up to date first).
pub async fn open(wh: &Warehouse) -> Result<Connection, QueryError> {
    open_view(wh, View::Latest).await
}

/// Which versions of the Delta tables a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Each table's newest.
    Latest,
    /// Each table as it was at this time: its newest version committed then (empty where
    /// the table did not exist yet).
    AsOf(DateTime<Utc>),
    /// Each table at its newest version whose window is complete ([`pin`]): what
    /// `ccetl query` reads.
    Completed,
}

/// [`open`], the Delta tables read as `view` says.
pub async fn open_view(wh: &Warehouse, view: View) -> Result<Connection, QueryError> {
    let (dir, mirror) = match wh.local_root() {
        Some(root) => (root.to_path_buf(), None),
        None => {
            let dir = mirror::cache_dir(wh.url());
            let logs = Mirror::logs(wh, &dir).await?;
            (dir, Some(logs))
        }
    };
    let pins = match view {
        View::Completed => pin::completed_versions(wh, &dir).await?,
        _ => Default::default(),
    };
    let at = |table: &str| match &view {
        View::Latest => At::Latest,
        View::AsOf(t) => At::Time(*t),
        View::Completed => pins.get(table).map_or(At::Latest, |v| At::Version(*v)),
    };
    let files = table_files(&dir, at)?;
    if let Some(m) = mirror {
        let fetched = m.files(&files).await?;
        tracing::info!(warehouse = %wh.url(), mirror = %dir.display(), fetched, "Mirror up to date.");
    }
    connect_dir(&dir, &files)
}

/// [`open`], with an object-store warehouse mirrored into `dir`.
pub async fn open_mirrored_in(
    wh: &Warehouse,
    dir: &std::path::Path,
) -> Result<Connection, QueryError> {
    if wh.local_root().is_some() {
        return connect(wh);
    }
    let logs = Mirror::logs(wh, dir).await?;
    let files = table_files(dir, |_| At::Latest)?;
    let fetched = logs.files(&files).await?;
    tracing::info!(warehouse = %wh.url(), mirror = %dir.display(), fetched, "Mirror up to date.");
    connect_dir(dir, &files)
}

/// An in-memory DuckDB whose views of `tables` read the warehouse (every other view is
/// empty): for a command that needs one small table, not the whole mirror. An object-store
/// warehouse's copy of them is a mirror of its own, so `ccetl query`'s is left whole.
pub async fn open_only(wh: &Warehouse, tables: &[&str]) -> Result<Connection, QueryError> {
    let only = |files: TableFiles| -> TableFiles {
        files
            .into_iter()
            .filter(|(t, _)| tables.contains(t))
            .collect()
    };
    match wh.local_root() {
        Some(root) => connect_dir(root, &only(table_files(root, |_| At::Latest)?)),
        None => {
            let dir = mirror::cache_dir(&format!("{}#{}", wh.url(), tables.join(",")));
            let logs = Mirror::logs_of(wh, &dir, tables).await?;
            let files = only(table_files(&dir, |_| At::Latest)?);
            logs.files(&files).await?;
            connect_dir(&dir, &files)
        }
    }
}

/// An in-memory DuckDB whose views hold only the files at `keys` (copied under `dir` from an
/// object-store warehouse; read in place from a local one, which holds nothing else unread).
pub async fn open_files(
    wh: &Warehouse,
    keys: &[String],
    dir: &std::path::Path,
) -> Result<Connection, QueryError> {
    if wh.local_root().is_some() {
        return connect(wh);
    }
    mirror::fetch_keys(wh, keys, dir).await?;
    connect_dir(dir, &table_files(dir, |_| At::Latest)?)
}

/// An in-memory DuckDB with the views of a local warehouse.
pub fn connect(wh: &Warehouse) -> Result<Connection, QueryError> {
    match wh.local_root() {
        Some(root) => connect_dir(root, &table_files(root, |_| At::Latest)?),
        None => Err(QueryError::Mirror(format!(
            "{} is not local: use query::open",
            wh.url()
        ))),
    }
}

/// Each table's files at the version a query reads: the Delta snapshot's (maybe none), or
/// `None` for a table without a log (Hive folders, or not written yet).
pub(crate) type TableFiles = BTreeMap<&'static str, Option<Vec<PathBuf>>>;

/// [`TableFiles`] of the tables under `root`, each Delta table at the version `at` names:
/// read once, for both the mirror and the views.
fn table_files(root: &Path, at: impl Fn(&str) -> At) -> Result<TableFiles, QueryError> {
    crate::tables::all()
        .map(|def| {
            let files = live_files_at(&root.join(def.name), def.name, at(def.name))?;
            Ok((def.name, files.map(|(_, f)| f)))
        })
        .collect()
}

/// DuckDB views over the tables under `root`, each Delta table of `files` over its files;
/// a table `files` leaves out is an empty view.
fn connect_dir(root: &Path, files: &TableFiles) -> Result<Connection, QueryError> {
    let conn = Connection::open_in_memory()?;
    for def in crate::tables::all() {
        let table = def.name;
        let dir = root.join(table);
        let sql = match files.get(table) {
            // A Delta table: exactly its snapshot's files, never what a listing finds.
            Some(Some(files)) if !files.is_empty() => {
                let list: Vec<String> = files
                    .iter()
                    .map(|f| sql_str(&f.display().to_string()))
                    .collect();
                parquet_view(table, &format!("[{}]", list.join(", ")))
            }
            Some(None) if dir.is_dir() && walk_has_parquet(&dir) => {
                let glob = format!("{}/*/*/*.parquet", dir.display());
                parquet_view(table, &sql_str(&glob))
            }
            _ => empty_view(table, &(def.schema)()),
        };
        conn.execute_batch(&sql)?;
        // What a row is, for `SELECT view_name, comment FROM duckdb_views()`.
        conn.execute_batch(&format!("COMMENT ON VIEW {table} IS {}", sql_str(def.docs)))?;
    }
    conn.execute_batch(&calls_view())?;
    conn.execute_batch(&recordings_view())?;
    for (name, sql, docs) in kind_views() {
        conn.execute_batch(&sql)?;
        conn.execute_batch(&format!("COMMENT ON VIEW {name} IS {}", sql_str(docs)))?;
    }
    for (view, docs) in [
        (
            "calls",
            "call, whichever sources saw it (`systems`); join recordings on call_id",
        ),
        (
            "recordings",
            "recording of every source that copies audio, with its audio object",
        ),
    ] {
        conn.execute_batch(&format!("COMMENT ON VIEW {view} IS {}", sql_str(docs)))?;
    }
    Ok(conn)
}

/// A view over Parquet files (a glob or a list), their Hive partitions as columns.
fn parquet_view(table: &str, files: &str) -> String {
    format!(
        "CREATE OR REPLACE VIEW {table} AS SELECT * EXCLUDE (source, date), source, date FROM read_parquet({files}, hive_partitioning = true, union_by_name = true)"
    )
}

fn walk_has_parquet(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            walk_has_parquet(&p)
        } else {
            p.extension().is_some_and(|x| x == "parquet")
        }
    })
}

/// Runs `sql` and returns the result batches.
pub fn run(conn: &Connection, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let mut stmt = conn.prepare(sql)?;
    let batches: Vec<RecordBatch> = stmt.query_arrow([])?.collect();
    Ok(batches)
}

/// CSV has no lists or structs: such columns are written as their display text (`[a, b]`).
fn nested_as_text(b: &RecordBatch) -> Result<RecordBatch, QueryError> {
    use arrow::array::{ArrayRef, StringArray};
    use arrow::datatypes::{Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use std::sync::Arc;
    if !b
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(b.clone());
    }
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (f, col) in b.schema().fields().iter().zip(b.columns()) {
        if f.data_type().is_nested() {
            let fmt = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
            let text: StringArray = (0..col.len())
                .map(|i| col.is_valid(i).then(|| fmt.value(i).to_string()))
                .collect();
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            cols.push(Arc::new(text));
        } else {
            fields.push(f.as_ref().clone());
            cols.push(col.clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Formats batches for the terminal or a pipe.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<String, QueryError> {
    match format {
        Format::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in batches {
                    w.write(&nested_as_text(b)?)?;
                }
            }
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}
