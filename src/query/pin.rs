//! One consistent set of table versions for `ccetl query`: a window's tables are committed
//! one after another and its manifest last, so a query during a commit could see one table
//! with the window and the next without. Reading each table at the newest version a
//! completed window recorded shows every completed window in every table, and a window
//! still committing in none.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::QueryError;
use crate::sink::manifest::Manifest;
use crate::sink::Warehouse;

/// Per Delta table, the newest version that a completed window's manifest recorded: the
/// newest manifest written of each source and stream, its versions merged by maximum.
pub async fn completed_versions(wh: &Warehouse) -> Result<BTreeMap<String, u64>, QueryError> {
    let err = |e: object_store::Error| {
        QueryError::Mirror(format!(
            "reading the manifests: {}",
            crate::sink::store::describe(&e)
        ))
    };
    let root = wh.path(&["_ccetl/manifests"]);
    let all: Vec<ObjectMeta> = wh
        .store()
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(err)?;
    // The newest manifest written in each stream's directory.
    let mut newest: BTreeMap<String, ObjectMeta> = BTreeMap::new();
    for meta in all {
        let key = meta.location.as_ref();
        let Some((dir, name)) = key.rsplit_once('/') else {
            continue;
        };
        if !name.ends_with(".json") {
            continue;
        }
        let dir = dir.to_string();
        if newest
            .get(&dir)
            .is_none_or(|m| m.last_modified < meta.last_modified)
        {
            newest.insert(dir, meta);
        }
    }
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for meta in newest.values() {
        let bytes = wh
            .store()
            .get(&meta.location)
            .await
            .map_err(err)?
            .bytes()
            .await
            .map_err(err)?;
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else {
            continue; // not ccetl's, or from before manifests recorded versions
        };
        for (table, v) in manifest.versions {
            let pinned = versions.entry(table).or_insert(v);
            *pinned = (*pinned).max(v);
        }
    }
    Ok(versions)
}
