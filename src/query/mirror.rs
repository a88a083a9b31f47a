//! `ccetl query` over object storage, offline: the warehouse's Parquet tables (and their
//! Delta logs) are mirrored into a local cache (only what changed since the last query),
//! and DuckDB reads the mirror.
//!
//! DuckDB's own S3/GCS/Azure readers are extensions it downloads at run time; a mirror needs
//! nothing beyond the `object_store` client every run already uses, and repeated queries
//! cost only a listing.

use std::collections::BTreeSet;
use std::path::{Path as FsPath, PathBuf};
use std::time::SystemTime;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use super::QueryError;
use crate::sink::Warehouse;

/// The cache directory for a warehouse URL: `$CCETL_CACHE_DIR`, else `$XDG_CACHE_HOME/ccetl`,
/// else `~/.cache/ccetl`, then one folder per warehouse.
pub fn cache_dir(warehouse_url: &str) -> PathBuf {
    let base = std::env::var_os("CCETL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("ccetl")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ccetl")))
        .unwrap_or_else(|| std::env::temp_dir().join("ccetl"));
    let id = hex::encode(&Sha256::digest(warehouse_url.as_bytes())[..8]);
    base.join("warehouses").join(id)
}

/// Brings `dir` in line with the warehouse's Parquet files; returns how many were fetched.
pub async fn sync(wh: &Warehouse, dir: &FsPath) -> Result<usize, QueryError> {
    let io = |what: &str, p: &FsPath, e: std::io::Error| {
        QueryError::Mirror(format!("{what} {}: {e}", p.display()))
    };
    let mut wanted = BTreeSet::new();
    let mut fetched = 0;
    for table in crate::source::tables().map(|t| t.name) {
        let prefix = wh.path(&[table]);
        let objects: Vec<_> = wh
            .store()
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| QueryError::Mirror(format!("listing {table}: {e}")))?;
        for meta in objects {
            let Some(rel) = meta.location.prefix_match(&wh.path(&[])) else {
                continue;
            };
            let rel: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
            let in_log = rel.iter().any(|s| s == "_delta_log");
            if !in_log && !rel.last().is_some_and(|n| n.ends_with(".parquet")) {
                continue; // staging leftovers and anything else a reader must not see
            }
            let local = rel.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
            wanted.insert(local.clone());
            let modified: SystemTime = meta.last_modified.into();
            let fresh = std::fs::metadata(&local)
                .is_ok_and(|m| m.len() == meta.size && m.modified().is_ok_and(|t| t == modified));
            if fresh {
                continue;
            }
            download(wh, &meta.location, &local, Some(modified)).await?;
            fetched += 1;
        }
    }
    remove_unwanted(dir, &wanted).map_err(|e| io("cleaning", dir, e))?;
    Ok(fetched)
}

/// Copies the warehouse's objects at `keys` under `dir`, in the same layout: the files of a
/// few windows, for a worker that needs only those (a scoped rebuild of its state).
pub async fn fetch_keys(wh: &Warehouse, keys: &[String], dir: &FsPath) -> Result<(), QueryError> {
    for key in keys {
        let local = key.split('/').fold(dir.to_path_buf(), |p, s| p.join(s));
        download(wh, &wh.path(&[key]), &local, None).await?;
    }
    Ok(())
}

/// Writes the object at `location` to `local` (whole, then renamed: DuckDB never reads half
/// a file), dated `modified` when given.
async fn download(
    wh: &Warehouse,
    location: &object_store::path::Path,
    local: &FsPath,
    modified: Option<SystemTime>,
) -> Result<(), QueryError> {
    let io = |what: &str, p: &FsPath, e: std::io::Error| {
        QueryError::Mirror(format!("{what} {}: {e}", p.display()))
    };
    let read_err = |e: object_store::Error| QueryError::Mirror(format!("reading {location}: {e}"));
    let got = wh.store().get(location).await.map_err(read_err)?;
    let bytes = got.bytes().await.map_err(read_err)?;
    if let Some(parent) = local.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
    }
    let mut tmp = local.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes).map_err(|e| io("writing", &tmp, e))?;
    if let Some(modified) = modified {
        let f = std::fs::File::options()
            .write(true)
            .open(&tmp)
            .map_err(|e| io("opening", &tmp, e))?;
        f.set_modified(modified)
            .map_err(|e| io("dating", &tmp, e))?;
    }
    std::fs::rename(&tmp, local).map_err(|e| io("renaming", &tmp, e))
}

/// Deletes mirrored files the warehouse no longer has (a replaced window's old files).
fn remove_unwanted(dir: &FsPath, wanted: &BTreeSet<PathBuf>) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            remove_unwanted(&p, wanted)?;
        } else if !wanted.contains(&p) {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}
