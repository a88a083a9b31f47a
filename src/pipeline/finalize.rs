//! `ccetl finalize`: after a backfill's shards, proof that the range is whole. Every window
//! of each source's range must be committed (by its checkpoint, or its manifests on a local
//! warehouse), and every file each manifest names must exist with the size it recorded. A
//! shard that failed for good shows as a gap, named with the `ccetl run` that fills it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use serde::Serialize;

use super::{plan_windows, stream_of, RunError, RunOptions};
use crate::config::PipelineConfig;
use crate::sink::checkpoint;
use crate::sink::manifest;
use crate::sink::Warehouse;

/// What finalize found for one source.
#[derive(Debug, Clone, Serialize)]
pub struct Finalized {
    /// The source's name.
    pub source: String,
    /// Windows of the range with a manifest.
    pub windows: usize,
    /// Of those, windows still open (audio pending; the nightly run reads them again).
    pub open: usize,
    /// Files the manifests name, all present with their sizes.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Recordings' audio objects the manifests count as stored (counted, not read again:
    /// each was hashed as it was copied).
    pub audio_objects: u64,
    /// Windows of the range nobody committed: `(start, end)`.
    pub gaps: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Files named by a manifest but absent or of another size: `key: why`.
    pub bad_files: Vec<String>,
}

impl Finalized {
    /// Whether the source's range is whole.
    pub fn whole(&self) -> bool {
        self.gaps.is_empty() && self.bad_files.is_empty()
    }
}

/// Checks the range `opts` names (its `since`, `until`, sources) of every source.
pub async fn finalize(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    now: DateTime<Utc>,
) -> Result<Vec<Finalized>, RunError> {
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let mut out = Vec::new();
    for src in &cfg.sources {
        if !opts.sources.is_empty() && !opts.sources.iter().any(|s| s == src.name()) {
            continue;
        }
        let windows = plan_windows(cfg, opts, now, None);
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            continue;
        };
        let (from, to) = (first.start, last.end);
        let (name, stream) = (src.name(), stream_of(src));
        let manifests: Vec<_> = manifest::list(&wh, name, stream)
            .await?
            .into_iter()
            .filter(|m| m.window_start < to && m.window_end > from)
            .collect();
        let mut f = Finalized {
            source: name.to_string(),
            windows: manifests.len(),
            open: manifests.iter().filter(|m| !m.complete).count(),
            files: 0,
            bytes: 0,
            audio_objects: manifests.iter().map(|m| m.audio_stored).sum(),
            gaps: Vec::new(),
            bad_files: Vec::new(),
        };
        for m in &manifests {
            for file in &m.files {
                f.files += 1;
                f.bytes += file.bytes;
                match wh.store().head(&wh.path(&[&file.key])).await {
                    Ok(meta) if meta.size == file.bytes => {}
                    Ok(meta) => f.bad_files.push(format!(
                        "{}: {} bytes, the manifest says {}",
                        file.key, meta.size, file.bytes
                    )),
                    Err(object_store::Error::NotFound { .. }) => {
                        f.bad_files.push(format!("{}: missing", file.key));
                    }
                    Err(e) => f.bad_files.push(format!("{}: {e}", file.key)),
                }
            }
        }
        // Committed windows: the checkpoint's spans on a shared warehouse (what every
        // worker's commits added up to), else the manifests themselves.
        let mut committed: BTreeMap<i64, i64> = BTreeMap::new();
        let path = checkpoint::path_of(&wh, name, stream);
        match checkpoint::read(wh.store().as_ref(), &path).await? {
            Some(cp) if wh.is_shared() => committed.extend(cp.done.iter().chain(cp.open.iter())),
            _ => committed.extend(manifests.iter().map(|m| {
                (
                    m.window_start.timestamp_millis(),
                    m.window_end.timestamp_millis(),
                )
            })),
        }
        for w in &windows {
            let (s, e) = (w.start.timestamp_millis(), w.end.timestamp_millis());
            let covered = committed
                .range(..=s)
                .next_back()
                .is_some_and(|(_, &end)| end >= e);
            if !covered {
                match f.gaps.last_mut() {
                    Some(g) if g.1 == w.start => g.1 = w.end,
                    _ => f.gaps.push((w.start, w.end)),
                }
            }
        }
        out.push(f);
    }
    Ok(out)
}
