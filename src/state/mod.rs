//! The run state in a DuckDB file: watermarks, committed windows, the run ledger, the audio
//! ledger, audio egress per source and persisted OAuth tokens.
//!
//! The state is a cache of what the warehouse holds; it is only written *after* the data it
//! describes is durable in the warehouse, so replaying a window after a crash is harmless.
//! Times are stored as epoch milliseconds (BIGINT): exact, and free of time-zone rules.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use duckdb::{params, Connection, OptionalExt};

mod egress;
mod status;
pub use status::SourceStatus;
pub mod lock;
pub mod stored;
mod tokens;

pub use tokens::StoredToken;

pub use stored::StoredLedger;

/// Why the state DB could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// DuckDB refused a statement.
    #[error("state DB {path}: {source}")]
    #[allow(missing_docs)] // the message names them
    Db {
        path: PathBuf,
        source: duckdb::Error,
    },
    /// Another process holds the DuckDB file.
    #[error("state DB {path} is in use by another ccetl process (one run at a time per state file): {message}")]
    #[allow(missing_docs)] // the message names them
    Busy { path: PathBuf, message: String },
    /// Another run holds the run lock.
    #[error("state DB {path}: a run is already running (pid {pid} on {host}, since {since}); wait for it to finish, or stop it (a lock left by a killed run on this host is taken over by itself)")]
    #[allow(missing_docs)] // the message names them
    Running {
        path: PathBuf,
        pid: u32,
        host: String,
        since: chrono::DateTime<Utc>,
    },
    /// The lock file could not be read or written.
    #[error("state lock {path}: {source}")]
    #[allow(missing_docs)] // the message names them
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A new state file could not be put in place.
    #[error("state DB {path}: cannot create it: {source}")]
    #[allow(missing_docs)] // the message names them
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The state directory could not be created.
    #[error("state DB {path}: cannot create its directory: {source}")]
    #[allow(missing_docs)] // the message names them
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The blocking pool is shutting down.
    #[error(transparent)]
    ShutDown(#[from] crate::blocking::ShutDown),
}

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS watermarks (
    source VARCHAR NOT NULL, stream VARCHAR NOT NULL,
    high_water_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (source, stream));
CREATE TABLE IF NOT EXISTS windows (
    source VARCHAR NOT NULL, stream VARCHAR NOT NULL,
    window_start_ms BIGINT NOT NULL, window_end_ms BIGINT NOT NULL,
    status VARCHAR NOT NULL, rows BIGINT NOT NULL, files BIGINT NOT NULL,
    run_id BIGINT NOT NULL, committed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (source, stream, window_start_ms));
CREATE TABLE IF NOT EXISTS runs (
    run_id BIGINT PRIMARY KEY, pipeline VARCHAR NOT NULL, pid BIGINT, host VARCHAR,
    started_at_ms BIGINT NOT NULL, finished_at_ms BIGINT, status VARCHAR NOT NULL,
    report VARCHAR);
CREATE TABLE IF NOT EXISTS audio_objects (
    source VARCHAR NOT NULL, recording_id VARCHAR NOT NULL, call_id VARCHAR NOT NULL,
    uri VARCHAR, bytes BIGINT, sha256 VARCHAR, status VARCHAR NOT NULL,
    attempts BIGINT NOT NULL, last_error VARCHAR, updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (source, recording_id));
CREATE TABLE IF NOT EXISTS audio_staging (
    source VARCHAR NOT NULL, recording_id VARCHAR NOT NULL, call_id VARCHAR NOT NULL,
    uri VARCHAR, bytes BIGINT, sha256 VARCHAR, status VARCHAR NOT NULL,
    attempts BIGINT NOT NULL, last_error VARCHAR, updated_at_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS egress (
    source VARCHAR NOT NULL, at_ms BIGINT NOT NULL, bytes BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    source VARCHAR PRIMARY KEY, config_fingerprint VARCHAR NOT NULL,
    refresh_token VARCHAR NOT NULL, access_token VARCHAR,
    access_expires_at_ms BIGINT, refresh_expires_at_ms BIGINT, updated_at_ms BIGINT NOT NULL);
";

/// A committed window, as the pipeline records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRecord {
    /// The source's name.
    pub source: String,
    /// The stream (table group) the window belongs to.
    pub stream: String,
    /// Start of the window (inclusive).
    pub start: DateTime<Utc>,
    /// End of the window (exclusive).
    pub end: DateTime<Utc>,
    /// Rows the window holds.
    pub rows: u64,
    /// Its files.
    pub files: u64,
}

/// Where a recording's audio stands. Its name is the `audio_status` column and the ledger's
/// `status`; the README's warehouse section lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioStatus {
    /// In the warehouse at `audio_uri`.
    Stored,
    /// Not downloadable yet (not ready, or its URL kept failing): the next run tries again.
    Pending,
    /// Held back by a quota (Xima's bandwidth cap, the egress budget): a rerun resumes.
    Deferred,
    /// The recording is gone (404); asked for again by a few runs, then left.
    Missing,
    /// Audio is off for the source: nothing was attempted.
    Disabled,
    /// Flagged sensitive by the source, and the pipeline does not store such audio.
    Withheld,
}

impl AudioStatus {
    /// Every status, in the README's order.
    pub const ALL: [AudioStatus; 6] = [
        AudioStatus::Stored,
        AudioStatus::Pending,
        AudioStatus::Deferred,
        AudioStatus::Missing,
        AudioStatus::Disabled,
        AudioStatus::Withheld,
    ];

    /// The name written to tables and the ledger.
    pub const fn as_str(self) -> &'static str {
        match self {
            AudioStatus::Stored => "stored",
            AudioStatus::Pending => "pending",
            AudioStatus::Deferred => "deferred",
            AudioStatus::Missing => "missing",
            AudioStatus::Disabled => "disabled",
            AudioStatus::Withheld => "withheld",
        }
    }

    /// The status a table or the ledger names; `None` for a name ccetl never writes.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Nothing more will come of asking again: stored, or not asked for at all.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            AudioStatus::Stored | AudioStatus::Disabled | AudioStatus::Withheld
        )
    }
}

/// One recording in the audio ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioRecord {
    /// The recording's id in its source.
    pub recording_id: String,
    /// The call (task) it belongs to.
    pub call_id: String,
    /// The stored object's URI, once copied.
    pub uri: Option<String>,
    /// Its size in bytes.
    pub bytes: Option<u64>,
    /// Its SHA-256, hex.
    pub sha256: Option<String>,
    /// Where its audio stands.
    pub status: AudioStatus,
    /// The last failure, for `pending` and `failed`.
    pub last_error: Option<String>,
}

/// A window's stored objects by recording id ([`State::stored_audio`]); looked up once per
/// recording, so with a hasher cheaper than SipHash.
pub type StoredAudio = HashMap<String, AudioRecord, ahash::RandomState>;

/// The state DB. DuckDB takes an exclusive file lock, so a second process fails to open it.
pub struct State {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

/// One thread: a commit is a few small statements, and DuckDB's idle worker threads call
/// `malloc_trim` twice a second, handing the whole process's free memory back to the kernel
/// only for the run to fault it in again (~5% of a run's CPU, issue 8).
fn config(path: &Path) -> Result<duckdb::Config, StateError> {
    duckdb::Config::default()
        .threads(1)
        .map_err(|source| StateError::Db {
            path: path.to_path_buf(),
            source,
        })
}

/// Creates the state file whole: made beside it, then renamed into place, so a run killed
/// while creating it leaves no half-made file that a rerun could not open.
fn create(path: &Path) -> Result<(), StateError> {
    let db = |source| StateError::Db {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("duckdb.new");
    let wal = tmp.with_extension("new.wal");
    for leftover in [&tmp, &wal] {
        let _ = std::fs::remove_file(leftover);
    }
    let conn = Connection::open_with_flags(&tmp, config(path)?).map_err(db)?;
    conn.execute_batch(SCHEMA).map_err(db)?;
    conn.close().map_err(|(_, e)| db(e))?;
    std::fs::rename(&tmp, path).map_err(|source| StateError::Create {
        path: path.to_path_buf(),
        source,
    })
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

impl State {
    /// Opens (creating if needed) the state file; tokens live here, so it is made 0600.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        if !path.exists() {
            create(path)?;
        }
        let conn = Connection::open_with_flags(path, config(path)?).map_err(|source| {
            let text = source.to_string();
            if text.contains("lock") {
                StateError::Busy {
                    path: path.to_path_buf(),
                    message: text.lines().next().unwrap_or("").to_string(),
                }
            } else {
                StateError::Db {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        restrict_permissions(path);
        let state = State {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        state.with(|c| c.execute_batch(SCHEMA))?;
        restrict_permissions(&path.with_extension("duckdb.wal"));
        Ok(state)
    }

    /// The DuckDB file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> duckdb::Result<T>,
    ) -> Result<T, StateError> {
        let run = || {
            let mut guard = self
                .conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        };
        // DuckDB calls block, and sources share the state: on a multi-threaded runtime the
        // worker hands its other tasks on first, so one source's commit (or its wait for the
        // lock) never stalls another's paced requests.
        use tokio::runtime::{Handle, RuntimeFlavor};
        let result = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        };
        result.map_err(|source| StateError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// The watermark of a stream: the end of the last window committed contiguously from the start.
    pub fn high_water(
        &self,
        source: &str,
        stream: &str,
    ) -> Result<Option<DateTime<Utc>>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT high_water_ms FROM watermarks WHERE source = ? AND stream = ?",
                params![source, stream],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|o| o.map(from_ms))
    }

    /// [`State::commit_window`] on the blocking pool: with a day of recordings in its ledger
    /// it takes long enough that the run's next window should keep fetching meanwhile.
    pub async fn commit_window_off_thread(
        self: &Arc<Self>,
        run_id: i64,
        w: WindowRecord,
        audio: Vec<AudioRecord>,
        high_water: Option<DateTime<Utc>>,
    ) -> Result<(), StateError> {
        let state = self.clone();
        crate::blocking::run("the window's state commit", move || {
            state.commit_window(run_id, &w, &audio, high_water)
        })
        .await?
    }

    /// Records objects just stored, before their window commits (see [`StoredLedger`]): the
    /// attempt is counted by the window's commit, which records them again.
    pub fn record_stored(&self, source: &str, audio: &[AudioRecord]) -> Result<(), StateError> {
        let now = ms(Utc::now());
        self.with(|c| {
            let tx = c.transaction()?;
            upsert_audio(&tx, source, audio, now, Attempt::NotCounted)?;
            tx.commit()
        })
    }

    /// Records a committed window and its audio, and moves the watermark to `high_water`
    /// (never backwards), all in one transaction.
    pub fn commit_window(
        &self,
        run_id: i64,
        w: &WindowRecord,
        audio: &[AudioRecord],
        high_water: Option<DateTime<Utc>>,
    ) -> Result<(), StateError> {
        let now = ms(Utc::now());
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?, 'committed', ?, ?, ?, ?)",
                params![
                    w.source,
                    w.stream,
                    ms(w.start),
                    ms(w.end),
                    w.rows as i64,
                    w.files as i64,
                    run_id,
                    now
                ],
            )?;
            upsert_audio(&tx, &w.source, audio, now, Attempt::Counted)?;
            if let Some(hw) = high_water {
                upsert_watermark(&tx, &w.source, &w.stream, hw, now)?;
            }
            tx.commit()
        })
    }

    /// Moves a stream's watermark to `high_water` (never backwards): what a shared
    /// warehouse's checkpoint says is done.
    pub fn move_high_water(
        &self,
        source: &str,
        stream: &str,
        high_water: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let now = ms(Utc::now());
        self.with(|c| upsert_watermark(c, source, stream, high_water, now))
    }

    /// How many window commits have recorded this recording so far (0: none).
    pub fn audio_attempts(&self, source: &str, recording_id: &str) -> Result<u64, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT coalesce(max(attempts), 0) FROM audio_objects
                 WHERE source = ? AND recording_id = ?",
                params![source, recording_id],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n.max(0) as u64)
    }

    /// Whether the ledger holds any object of `source` whose id starts with `prefix` and
    /// ends with `suffix`: for Webex, whether the org has ever produced a voice transcript
    /// (`transcript/…oiceTranscript.json`).
    pub fn has_objects_like(
        &self,
        source: &str,
        prefix: &str,
        suffix: &str,
    ) -> Result<bool, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM audio_objects WHERE source = ? AND starts_with(recording_id, ?) AND ends_with(recording_id, ?))",
                params![source, prefix, suffix],
                |r| r.get(0),
            )
        })
    }

    /// The stored objects among `recording_ids`, by recording id, in one query per window:
    /// with audio on, objects an earlier run stored are reused rather than downloaded again;
    /// with audio off, they are still reported (and found) rather than called "disabled". A
    /// source that never stored any (the usual case with audio off) costs one small query.
    pub fn stored_audio(
        &self,
        source: &str,
        recording_ids: &[&str],
    ) -> Result<StoredAudio, StateError> {
        if recording_ids.is_empty() {
            return Ok(StoredAudio::default());
        }
        self.with(|c| {
            let any: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM audio_objects WHERE source = ? AND status = 'stored')",
                params![source],
                |r| r.get(0),
            )?;
            if !any {
                return Ok(StoredAudio::default());
            }
            // One string parameter split by DuckDB: ids never hold the unit separator.
            let ids = recording_ids.join("\u{1f}");
            let mut stmt = c.prepare(
                "SELECT recording_id, call_id, uri, bytes, sha256, status, last_error
                 FROM audio_objects WHERE source = ? AND status = 'stored'
                 AND recording_id IN (SELECT unnest(string_split(?, chr(31))))",
            )?;
            let found = stmt.query_map(params![source, ids], audio_record)?;
            found
                .map(|a| a.map(|a| (a.recording_id.clone(), a)))
                .collect()
        })
    }

    /// Records a run as started; returns its id.
    pub fn begin_run(&self, pipeline: &str) -> Result<i64, StateError> {
        let host = crate::process::hostname();
        self.with(|c| {
            let id: i64 =
                c.query_row("SELECT coalesce(max(run_id), 0) + 1 FROM runs", [], |r| {
                    r.get(0)
                })?;
            c.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL, 'running', NULL)",
                params![
                    id,
                    pipeline,
                    i64::from(std::process::id()),
                    host,
                    ms(Utc::now())
                ],
            )?;
            Ok(id)
        })
    }

    /// The reports of the last `n` finished runs, newest first.
    pub fn recent_reports(&self, n: usize) -> Result<Vec<String>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT report FROM runs WHERE finished_at_ms IS NOT NULL AND report IS NOT NULL \
                 ORDER BY run_id DESC LIMIT ?",
            )?;
            let rows = stmt.query_map(params![n as i64], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    /// Records a run's end and its report (JSON).
    pub fn finish_run(&self, run_id: i64, status: &str, report: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET finished_at_ms = ?, status = ?, report = ? WHERE run_id = ?",
                params![ms(Utc::now()), status, report, run_id],
            )
            .map(|_| ())
        })
    }

    /// Forgets watermarks and windows (tokens and the audio ledger stay, so a reset neither
    /// strands a rotated refresh token nor re-downloads stored audio).
    pub fn reset(&self, source: Option<&str>) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            match source {
                Some(s) => {
                    tx.execute("DELETE FROM watermarks WHERE source = ?", params![s])?;
                    tx.execute("DELETE FROM windows WHERE source = ?", params![s])?;
                }
                None => {
                    tx.execute_batch("DELETE FROM watermarks; DELETE FROM windows;")?;
                }
            }
            tx.commit()
        })
    }

    /// A human summary: watermarks, window counts, audio ledger and the last runs.
    pub fn summary(&self) -> Result<String, StateError> {
        self.with(|c| {
            let mut out = String::new();
            out.push_str("watermarks:\n");
            let mut st = c.prepare("SELECT source, stream, high_water_ms FROM watermarks ORDER BY 1, 2")?;
            for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))? {
                let (s, t, h) = r?;
                out.push_str(&format!("  {s}/{t}: {}\n", from_ms(h).to_rfc3339()));
            }
            let mut st = c.prepare("SELECT source, stream, count(*), sum(rows) FROM windows GROUP BY 1, 2 ORDER BY 1, 2")?;
            out.push_str("windows:\n");
            for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?)))? {
                let (s, t, n, rows) = r?;
                out.push_str(&format!("  {s}/{t}: {n} committed, {} rows\n", rows.unwrap_or(0)));
            }
            // Transcripts share the ledger under ids of their own (`transcript/…`).
            let mut st = c.prepare("SELECT source || CASE WHEN starts_with(recording_id, 'transcript/') THEN ' (transcripts)' ELSE '' END, status, count(*), coalesce(sum(bytes), 0) FROM audio_objects GROUP BY 1, 2 ORDER BY 1, 2")?;
            out.push_str("audio:\n");
            for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)))? {
                let (s, status, n, b) = r?;
                out.push_str(&format!("  {s}: {n} {status} ({b} bytes)\n"));
            }
            let mut st = c.prepare("SELECT run_id, status, started_at_ms, finished_at_ms FROM runs ORDER BY run_id DESC LIMIT 5")?;
            out.push_str("last runs:\n");
            for r in st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?)))? {
                let (id, status, s, f) = r?;
                let took = f.map(|f| format!(" in {:.1}s", (f - s) as f64 / 1000.0)).unwrap_or_default();
                out.push_str(&format!("  #{id} {status} at {}{took}\n", from_ms(s).to_rfc3339()));
            }
            Ok(out)
        })
    }

    /// Total rows in a state table, for tests and `state show`.
    /// When a source's tokens were last written (by a refresh, a login or an import).
    pub fn token_saved_at(&self, source: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        Ok(self
            .with(|c| {
                c.query_row(
                    "SELECT updated_at_ms FROM tokens WHERE source = ?",
                    params![source],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
            })?
            .map(from_ms))
    }

    /// Rows in one of the state's tables (tests and `state` commands).
    pub fn count(&self, table: &str) -> Result<i64, StateError> {
        let sql = match table {
            "watermarks" | "windows" | "runs" | "audio_objects" | "tokens" => {
                format!("SELECT count(*) FROM {table}")
            }
            _ => "SELECT 0".to_string(),
        };
        self.with(|c| c.query_row(&sql, [], |r| r.get(0)))
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

fn audio_record(r: &duckdb::Row<'_>) -> duckdb::Result<AudioRecord> {
    Ok(AudioRecord {
        recording_id: r.get(0)?,
        call_id: r.get(1)?,
        uri: r.get(2)?,
        bytes: r.get::<_, Option<i64>>(3)?.map(|b| b as u64),
        sha256: r.get(4)?,
        status: {
            let name: String = r.get(5)?;
            AudioStatus::parse(&name).ok_or_else(|| {
                duckdb::Error::FromSqlConversionFailure(
                    5,
                    duckdb::types::Type::Text,
                    format!("'{name}' is not an audio status ccetl writes").into(),
                )
            })?
        },
        last_error: r.get(6)?,
    })
}

/// Whether a ledger write counts an attempt (a window's commit) or not (an object recorded
/// as soon as it is stored, which its window's commit records again).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Counted,
    NotCounted,
}

/// Moves a stream's watermark to `hw`, never backwards.
fn upsert_watermark(
    c: &Connection,
    source: &str,
    stream: &str,
    hw: DateTime<Utc>,
    now: i64,
) -> duckdb::Result<()> {
    c.execute(
        "INSERT INTO watermarks VALUES (?, ?, ?, ?)
         ON CONFLICT (source, stream) DO UPDATE SET
           high_water_ms = greatest(watermarks.high_water_ms, excluded.high_water_ms),
           updated_at_ms = excluded.updated_at_ms",
        params![source, stream, ms(hw), now],
    )
    .map(|_| ())
}

/// Records the audio ledger rows of a window (the last row wins for a recording listed
/// twice), counting one more attempt for recordings already known when `attempt` says so.
/// The rows go in through an appender and one upsert: a statement per recording cost DuckDB
/// milliseconds of planning each, more than the rest of a metadata-only run
/// (benches/throughput.rs).
fn upsert_audio(
    tx: &duckdb::Transaction<'_>,
    source: &str,
    audio: &[AudioRecord],
    now: i64,
    attempt: Attempt,
) -> duckdb::Result<()> {
    let counted = i64::from(attempt == Attempt::Counted);
    let mut last: HashMap<&str, &AudioRecord> = HashMap::new();
    for a in audio {
        last.insert(a.recording_id.as_str(), a);
    }
    if last.is_empty() {
        return Ok(());
    }
    tx.execute("DELETE FROM audio_staging", [])?;
    {
        let mut app = tx.appender("audio_staging")?;
        for a in last.values() {
            app.append_row(params![
                source,
                a.recording_id,
                a.call_id,
                a.uri,
                a.bytes.map(|b| b as i64),
                a.sha256,
                a.status.as_str(),
                counted,
                a.last_error,
                now
            ])?;
        }
        app.flush()?;
    }
    tx.execute(
        "INSERT INTO audio_objects SELECT * FROM audio_staging
         ON CONFLICT (source, recording_id) DO UPDATE SET
           call_id = excluded.call_id, uri = excluded.uri, bytes = excluded.bytes,
           sha256 = excluded.sha256, status = excluded.status,
           attempts = audio_objects.attempts + excluded.attempts, last_error = excluded.last_error,
           updated_at_ms = excluded.updated_at_ms",
        [],
    )?;
    tx.execute("DELETE FROM audio_staging", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn watermark_never_moves_back_and_tokens_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("s.duckdb")).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let w = WindowRecord {
            source: "wx".into(),
            stream: "tasks".into(),
            start: t0,
            end: t0 + chrono::Duration::days(1),
            rows: 3,
            files: 1,
        };
        let run = st.begin_run("p").unwrap();
        st.commit_window(run, &w, &[], Some(w.end)).unwrap();
        st.commit_window(run, &w, &[], Some(t0)).unwrap();
        assert_eq!(st.high_water("wx", "tasks").unwrap(), Some(w.end));
        assert_eq!(st.count("windows").unwrap(), 1);

        let tok = StoredToken {
            config_fingerprint: "fp".into(),
            refresh_token: Secret::new("r2"),
            access_token: Some(Secret::new("a2")),
            access_expires_at: Some(t0),
            refresh_expires_at: None,
        };
        st.save_token("wx", &tok).unwrap();
        let back = st.load_token("wx").unwrap().unwrap();
        assert_eq!(back.refresh_token.expose(), "r2");
        assert_eq!(back.access_expires_at, Some(t0));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("s.duckdb"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
