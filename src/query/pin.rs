//! One consistent set of table versions for `ccetl query`: a window's tables are committed
//! one after another and its manifest last, so a query during a commit could see one table
//! with the window and the next without. Each table is read at its newest version whose
//! window is complete (its manifest records that version or a later one): a window still
//! committing shows in no table rather than in some.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::QueryError;
use crate::sink::manifest::Manifest;
use crate::sink::table::delta::commit_version;
use crate::sink::{keys, Warehouse};

/// How far back a table's log is searched for a complete commit before its newest version
/// is read as it is (only concurrent windows still committing are ever skipped).
const MAX_STEPS: u64 = 32;

/// Per Delta table under `root` (the local warehouse or its mirror), the newest version
/// that is complete: ccetl's commit of a window whose manifest records it, or a commit of
/// any other kind (version 0, a conversion, another engine's erasure or compaction: never
/// hidden). Tables without a log are left out.
pub async fn completed_versions(
    wh: &Warehouse,
    root: &Path,
) -> Result<BTreeMap<String, u64>, QueryError> {
    let mut pins = BTreeMap::new();
    for def in crate::tables::all() {
        let log = root.join(def.name).join("_delta_log");
        let Some(newest) = newest_version(&log) else {
            continue;
        };
        for v in (newest.saturating_sub(MAX_STEPS)..=newest).rev() {
            match window_of(&log, v) {
                Some(Commit::Other) => {
                    pins.insert(def.name.to_string(), v);
                    break;
                }
                Some(Commit::Window(w)) if recorded(wh, &w, def.name).await? >= Some(v) => {
                    pins.insert(def.name.to_string(), v);
                    break;
                }
                Some(Commit::Window(_)) => {} // still committing: the version before
                None => break,                // expired or unreadable: read the newest
            }
        }
    }
    Ok(pins)
}

/// What a commit was.
enum Commit {
    /// ccetl's commit of one window.
    Window(WindowId),
    /// Anything else.
    Other,
}

struct WindowId {
    source: String,
    stream: String,
    start: DateTime<Utc>,
}

fn newest_version(log: &Path) -> Option<u64> {
    std::fs::read_dir(log)
        .ok()?
        .flatten()
        .filter_map(|e| commit_version(&e.file_name().to_string_lossy()))
        .max()
}

/// The window a log entry committed, from its `commitInfo`; `None` when the entry is gone.
fn window_of(log: &Path, version: u64) -> Option<Commit> {
    let text = std::fs::read_to_string(log.join(format!("{version:020}.json"))).ok()?;
    let info = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|a| a.get("commitInfo").cloned())?;
    let ccetl = info
        .get("engineInfo")
        .and_then(|e| e.as_str())
        .is_some_and(|e| e.starts_with("ccetl/"));
    let param = |k: &str| {
        info.pointer(&format!("/operationParameters/{k}"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let window = (|| {
        Some(WindowId {
            source: param("source")?,
            stream: param("stream")?,
            start: DateTime::parse_from_rfc3339(&param("windowStart")?)
                .ok()?
                .with_timezone(&Utc),
        })
    })();
    Some(match window {
        Some(w) if ccetl => Commit::Window(w),
        _ => Commit::Other,
    })
}

/// The version of `table` that window `w`'s manifest records, if it has one.
async fn recorded(wh: &Warehouse, w: &WindowId, table: &str) -> Result<Option<u64>, QueryError> {
    let key = keys::manifest_key(&w.source, &w.stream, w.start);
    let bytes = wh
        .get(&key)
        .await
        .map_err(|e| QueryError::Mirror(e.to_string()))?;
    Ok(bytes
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        .and_then(|m| m.versions.get(table).copied()))
}
