//! `ccetl state rebuild`: the state DB recreated from the warehouse alone, for workers whose
//! disks do not outlive a run (Airflow on Kubernetes, spot instances).
//!
//! Windows and watermarks come from the manifests (each says whether its window was
//! complete); the audio ledger from the recording tables' `stored` rows, so the next run
//! reuses every object instead of downloading it again. Tokens cannot be rebuilt: a Webex
//! source whose refresh token lived only in the state needs `ccetl auth login` again.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use chrono::{DateTime, Utc};

use super::{open_states, stream_of, RunError};
use crate::config::{PipelineConfig, SourceConfig};
use crate::extract::ObjectsTable;
use crate::sink::{manifest, Warehouse};
use crate::state::AudioStatus;
use crate::state::{AudioRecord, State, WindowRecord};

/// What a rebuild found for one source.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The source's name.
    pub source: String,
    /// Committed windows its manifests list.
    pub windows: usize,
    /// Its watermark, from the complete windows that follow each other.
    pub high_water: Option<DateTime<Utc>>,
    /// Stored audio objects put back in the ledger.
    pub audio_objects: usize,
}

/// Rebuilds the state of the pipeline's sources (or only `only`).
pub async fn rebuild(cfg: &PipelineConfig, only: Option<&str>) -> Result<Vec<Rebuilt>, RunError> {
    let selected = super::selected(cfg, only)?;
    let names: Vec<&str> = selected.iter().map(|s| s.name()).collect();
    let states = open_states(cfg, &names)?;
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let mut out = Vec::new();
    for src in selected {
        out.push(rebuild_source(&wh, &states[src.name()], src).await?);
    }
    Ok(out)
}

async fn rebuild_source(
    wh: &Warehouse,
    state: &Arc<State>,
    src: &SourceConfig,
) -> Result<Rebuilt, RunError> {
    let (name, stream) = (src.name(), stream_of(src));
    let manifests = manifest::list(wh, name, stream).await?;
    // A source without objects (legacy) needs no read of the tables, nor their mirror.
    let ledger = if object_tables(src).is_empty() {
        Vec::new()
    } else {
        let conn = crate::query::open(wh)
            .await
            .map_err(|e| RunError::Rebuild(e.to_string()))?;
        stored_audio(&conn, src)?
    };
    // The watermark moves only over contiguous complete windows, as in a run.
    let mut high_water: Option<DateTime<Utc>> = None;
    for (i, m) in manifests.iter().enumerate() {
        let contiguous = high_water.is_none_or(|h| m.window_start <= h);
        if m.complete && contiguous {
            high_water = Some(high_water.map_or(m.window_end, |h| h.max(m.window_end)));
        }
        let last = i + 1 == manifests.len();
        state.commit_window(
            0,
            &WindowRecord::from(m),
            if last { &ledger } else { &[] },
            high_water,
        )?;
    }
    Ok(Rebuilt {
        source: name.to_string(),
        windows: manifests.len(),
        high_water,
        audio_objects: if manifests.is_empty() {
            0
        } else {
            ledger.len()
        },
    })
}

/// What a worker took over from a shared warehouse's checkpoint.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// Where the checkpoint says the source resumes.
    pub resume_at: DateTime<Utc>,
    /// Committed windows of the range the run reads, now in this worker's state.
    pub windows: usize,
    /// Their stored objects, now in its ledger.
    pub objects: usize,
}

/// Brings a worker's state up to a shared warehouse's checkpoint, when the checkpoint is
/// ahead of it (a fresh worker, or one another worker overtook): the watermark moves to where
/// the checkpoint resumes, and the windows this run will read again (`reads`), with their
/// stored objects, come from those windows' manifests and files alone, so nothing stored is
/// downloaded again and no other window is read. `None` when there is nothing to take.
/// A shard (`shard`: its range given) takes its range's windows even when this worker's
/// watermark is ahead: another worker may have written them. `checkpoint`: the source's, as
/// the run read it at its start; `longest`: the window length (manifests are found by their
/// window's start).
pub async fn adopt(
    wh: &Warehouse,
    state: &State,
    src: &SourceConfig,
    checkpoint: Option<&crate::sink::checkpoint::Checkpoint>,
    shard: bool,
    reads: impl Fn(DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)>,
    longest: chrono::Duration,
) -> Result<Option<Adopted>, RunError> {
    let (name, stream) = (src.name(), stream_of(src));
    let Some(resume) = checkpoint
        .and_then(crate::sink::checkpoint::Checkpoint::resume_at)
        .and_then(DateTime::from_timestamp_millis)
    else {
        return Ok(None);
    };
    if !shard
        && state
            .high_water(name, stream)?
            .is_some_and(|hw| hw >= resume)
    {
        return Ok(None);
    }
    let manifests: Vec<_> = match reads(resume) {
        Some(range) => manifest::list_between(wh, name, stream, range, longest).await?,
        None => Vec::new(),
    };
    let tables = object_tables(src);
    let keys: Vec<String> = manifests
        .iter()
        .flat_map(|m| &m.files)
        .filter(|f| tables.iter().any(|t| t.table.name == f.table))
        .map(|f| f.key.clone())
        .collect();
    let ledger = if keys.is_empty() {
        Vec::new()
    } else {
        // A scratch mirror of just these files, emptied first: its views must hold nothing
        // else.
        let dir = crate::query::mirror::cache_dir(wh.url())
            .join("adopt")
            .join(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(RunError::Rebuild(format!(
                    "clearing {}: {e}",
                    dir.display()
                )));
            }
            _ => {}
        }
        let conn = crate::query::open_files(wh, &keys, &dir)
            .await
            .map_err(|e| RunError::Rebuild(e.to_string()))?;
        stored_audio(&conn, src)?
    };
    for (i, m) in manifests.iter().enumerate() {
        let last = i + 1 == manifests.len();
        state.commit_window(
            0,
            &WindowRecord::from(m),
            if last { &ledger } else { &[] },
            None,
        )?;
    }
    state.move_high_water(name, stream, resume)?;
    Ok(Some(Adopted {
        resume_at: resume,
        windows: manifests.len(),
        objects: ledger.len(),
    }))
}

/// The tables where the source records its objects: its recordings (in the audio columns)
/// and its other object tables.
fn object_tables(src: &SourceConfig) -> Vec<ObjectsTable> {
    let kind = src.source_kind();
    let recordings = kind.recordings.iter().map(|r| ObjectsTable {
        table: r.table,
        ledger_id: r.id,
        call: r.call,
        object: ["audio_uri", "audio_bytes", "audio_sha256"],
        stored: "audio_status = 'stored'",
    });
    recordings.chain(kind.objects.iter().copied()).collect()
}

/// The source's stored objects, as its object tables list them in `conn`'s views.
fn stored_audio(
    conn: &duckdb::Connection,
    src: &SourceConfig,
) -> Result<Vec<AudioRecord>, RunError> {
    let name = src.name().replace('\'', "''");
    let queries: Vec<String> = object_tables(src)
        .into_iter()
        .map(|o| {
            let [uri, bytes, sha] = o.object;
            format!(
                "SELECT {}, {}, {uri}, {bytes}, {sha} FROM {} WHERE source = '{name}' AND {}",
                o.ledger_id, o.call, o.table.name, o.stored
            )
        })
        .collect();
    let mut batches = Vec::new();
    for sql in &queries {
        batches.extend(crate::query::run(conn, sql).map_err(|e| RunError::Rebuild(e.to_string()))?);
    }
    let mut out = Vec::new();
    for b in batches {
        let (ids, calls, uris) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
        );
        let bytes = b.column(3).as_primitive::<Int64Type>();
        let sha = b.column(4).as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push(AudioRecord {
                recording_id: ids.value(i).to_string(),
                call_id: calls.value(i).to_string(),
                uri: uris.is_valid(i).then(|| uris.value(i).to_string()),
                bytes: bytes.is_valid(i).then(|| bytes.value(i) as u64),
                sha256: sha.is_valid(i).then(|| sha.value(i).to_string()),
                status: AudioStatus::Stored,
                last_error: None,
            });
        }
    }
    Ok(out)
}
