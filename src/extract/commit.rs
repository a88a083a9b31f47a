//! Loading one window, the same for every source: Parquet files, then each table's commit
//! (Delta: one log entry per table; Hive: the window's stale files deleted), then the
//! manifest, then the state row. A replayed window replaces its files; identical files are
//! not rewritten, so a rerun with no new data writes nothing.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{SourceFailure, SourceRun};
use crate::report::WindowReport;
use crate::sink::checkpoint;
use crate::sink::manifest::{self, Manifest};
use crate::sink::parquet::{self, TableRows};
use crate::sink::table::WrittenFile;
use crate::sink::table::{self, WindowFiles};
use crate::state::AudioStatus;
use crate::state::{AudioRecord, WindowRecord};
use crate::window::Window;

/// Runs that find a recording's audio gone (404) before it is `missing` for good: until
/// then its window stays open, so the next runs ask again (storage can lag the listing),
/// and after that the watermark moves on.
pub(super) const MISSING_ATTEMPTS: u64 = 3;

/// What a source produced for one window, ready to load.
#[derive(Debug)]
pub struct WindowOutput {
    /// The window's rows of each table the source writes, with each row's date partition.
    pub tables: Vec<TableRows>,
    /// Audio ledger rows to record with the window (empty for sources without audio).
    pub ledger: Vec<AudioRecord>,
    /// The source's counts; `files`, `files_unchanged` and `start`/`end` are filled here.
    pub report: WindowReport,
    /// Rows the state's window record counts (tasks, sessions, …).
    pub rows: u64,
    /// Only some of the window's data (tasks events announced, merged into what it held):
    /// it never completes a window or moves the watermark.
    pub partial: bool,
}

/// Writes and commits a window. Returns its report and the new watermark if it advanced.
pub(super) async fn load(
    run: &SourceRun<'_>,
    w: Window,
    frontier: Option<DateTime<Utc>>,
    out: WindowOutput,
) -> Result<(WindowReport, Option<DateTime<Utc>>), SourceFailure> {
    let (wh, source, stream) = (run.wh, run.name, run.kind.stream);
    run.check_lease()?;
    let previous = manifest::read(wh, source, stream, w.start).await?;
    let previous_files: HashMap<String, String> = previous
        .iter()
        .flat_map(|m| m.files.iter().map(|f| (f.key.clone(), f.sha256.clone())))
        .collect();
    let format = run.settings.table_format;
    let mut files: Vec<WrittenFile> = Vec::new();
    for t in out.tables {
        files.extend(parquet::write_table(wh, source, w.start, t, &previous_files, format).await?);
    }
    crate::failpoint::hit("files");
    let versions = commit_tables(run, w, &files, previous.as_ref()).await?;

    let mut wr = out.report;
    wr.start = w.start;
    wr.end = w.end;
    wr.files = files.iter().filter(|f| !f.unchanged).count() as u64;
    wr.files_unchanged = files.iter().filter(|f| f.unchanged).count() as u64;
    for f in &files {
        *wr.table_rows.entry(f.table.clone()).or_default() += f.rows;
    }
    wr.table_versions = versions.clone();
    wr.complete = wr.audio_pending == 0
        && wr.audio_deferred == 0
        && wr.objects_pending == 0
        && !retry_missing(run, &out.ledger)?;
    if out.partial {
        // Adding rows keeps a complete window complete; it never completes one.
        wr.complete &= previous.as_ref().is_some_and(|p| p.complete);
    }

    let m = Manifest {
        source: source.to_string(),
        stream: stream.into(),
        window_start: w.start,
        window_end: w.end,
        run_id: run.run_id,
        written_at: Utc::now(),
        files: files.iter().map(Into::into).collect(),
        versions,
        audio_stored: wr.audio_stored + wr.audio_reused,
        rows: out.rows,
        complete: wr.complete,
    };
    // Files are in place but unseen until the manifest names them: the last moment to stop.
    run.check_lease()?;
    let same = previous.is_some_and(|p| {
        p.window_end == m.window_end
            && p.audio_stored == m.audio_stored
            && p.complete == m.complete
            && p.rows == m.rows
            && p.files.len() == m.files.len()
    }) && wr.files == 0;
    if !same {
        manifest::write(wh, &m).await?;
    }
    crate::failpoint::hit("manifest");
    // A shared warehouse's checkpoint says what is done for every worker; it moves before
    // this worker's state, so a crash between the two replays the window (harmlessly).
    if wh.is_shared() && !out.partial {
        let (start, end) = (w.start.timestamp_millis(), w.end.timestamp_millis());
        let path = checkpoint::path_of(wh, source, stream);
        let (now, bytes) = (Utc::now().timestamp_millis(), wr.audio_bytes);
        checkpoint::update(wh.store().as_ref(), &path, |cp| {
            cp.commit(start, end, wr.complete);
            cp.add_egress(now, bytes);
        })
        .await?;
    }

    let contiguous = frontier.is_none_or(|f| w.start <= f);
    let advance = (wr.complete && contiguous && !out.partial).then_some(w.end);
    run.state
        .commit_window_off_thread(run.run_id, WindowRecord::from(&m), out.ledger, advance)
        .await?;
    crate::failpoint::hit("state");
    tracing::info!(
        source = %source, window = %w.start.to_rfc3339(), rows = out.rows, recordings = wr.recordings,
        audio_stored = wr.audio_stored, audio_pending = wr.audio_pending, "Committed window."
    );
    Ok((wr, advance))
}

/// Commits the window's files table by table: every table it wrote, and every table its
/// previous commit wrote (whose rows may all be gone now). Returns the Delta versions.
async fn commit_tables(
    run: &SourceRun<'_>,
    w: Window,
    files: &[WrittenFile],
    previous: Option<&Manifest>,
) -> Result<BTreeMap<String, u64>, SourceFailure> {
    let previous_keys = |table: &str| -> Vec<String> {
        previous
            .iter()
            .flat_map(|m| m.files.iter())
            .filter(|f| f.table == table)
            .map(|f| f.key.clone())
            .collect()
    };
    let names: std::collections::BTreeSet<&str> = files
        .iter()
        .map(|f| f.table.as_str())
        .chain(
            previous
                .iter()
                .flat_map(|m| m.files.iter().map(|f| f.table.as_str())),
        )
        .collect();
    let mut versions = BTreeMap::new();
    for def in run
        .kind
        .tables
        .iter()
        .copied()
        .filter(|t| names.contains(t.name))
    {
        let wf = WindowFiles {
            table: def,
            source: run.name,
            stream: run.kind.stream,
            window: (w.start, w.end),
            run_id: run.run_id,
            files: files
                .iter()
                .filter(|f| f.table == def.name)
                .cloned()
                .collect(),
            previous: previous_keys(def.name),
        };
        if let Some(v) = table::commit(run.settings.table_format, run.wh, wf).await? {
            versions.insert(def.name.to_string(), v);
        }
        crate::failpoint::hit("table");
    }
    Ok(versions)
}

/// Whether a recording of the window found missing has runs left to be asked for again.
fn retry_missing(run: &SourceRun<'_>, ledger: &[AudioRecord]) -> Result<bool, SourceFailure> {
    for a in ledger.iter().filter(|a| a.status == AudioStatus::Missing) {
        if run.state.audio_attempts(run.name, &a.recording_id)? + 1 < MISSING_ATTEMPTS {
            return Ok(true);
        }
    }
    Ok(false)
}
