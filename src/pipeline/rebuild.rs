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
use crate::sink::audio::AudioStatus;
use crate::sink::{manifest, Warehouse};
use crate::source::ObjectsTable;
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
    if let Some(name) = only.filter(|n| !cfg.sources.iter().any(|s| s.name() == *n)) {
        return Err(RunError::UnknownSource(name.to_string()));
    }
    let selected: Vec<&SourceConfig> = cfg
        .sources
        .iter()
        .filter(|s| only.is_none_or(|n| n == s.name()))
        .collect();
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
    let ledger = stored_audio(wh, src).await?;
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
            &WindowRecord {
                source: name.to_string(),
                stream: stream.to_string(),
                start: m.window_start,
                end: m.window_end,
                rows: m.rows,
                files: m.files.len() as u64,
            },
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

/// The source's stored objects, as its recordings table and its other object tables list
/// them.
async fn stored_audio(wh: &Warehouse, src: &SourceConfig) -> Result<Vec<AudioRecord>, RunError> {
    let kind = src.source_kind();
    let name = src.name().replace('\'', "''");
    // The recordings are one more table of objects, in the audio columns.
    let recordings = kind.recordings.iter().map(|r| ObjectsTable {
        table: r.table,
        ledger_id: r.id,
        call: r.call,
        object: ["audio_uri", "audio_bytes", "audio_sha256"],
        stored: "audio_status = 'stored'",
    });
    let queries: Vec<String> = recordings
        .chain(kind.objects.iter().copied())
        .map(|o| {
            let [uri, bytes, sha] = o.object;
            format!(
                "SELECT {}, {}, {uri}, {bytes}, {sha} FROM {} WHERE source = '{name}' AND {}",
                o.ledger_id, o.call, o.table.name, o.stored
            )
        })
        .collect();
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let conn = crate::query::open(wh)
        .await
        .map_err(|e| RunError::Rebuild(e.to_string()))?;
    let mut batches = Vec::new();
    for sql in &queries {
        batches
            .extend(crate::query::run(&conn, sql).map_err(|e| RunError::Rebuild(e.to_string()))?);
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
