//! `ccetl query` over object storage, offline: the warehouse's Delta logs, and the Parquet
//! files of the versions a query reads, are mirrored into a local cache (only what changed
//! since the last query), and DuckDB reads the mirror.
//!
//! DuckDB's own S3/GCS/Azure readers are extensions it downloads at run time; a mirror needs
//! nothing beyond the `object_store` client every run already uses, and repeated queries
//! cost only a listing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path as FsPath, PathBuf};
use std::time::SystemTime;

use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use super::QueryError;
use super::TableFiles;
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

/// A warehouse's tables being mirrored: logs first, so the versions to read can be chosen
/// from them, then only the data files those versions read.
pub struct Mirror<'a> {
    wh: &'a Warehouse,
    dir: PathBuf,
    /// Every Parquet file the store holds outside a log, by its local path.
    data: BTreeMap<PathBuf, ObjectMeta>,
    /// Every mirrored log entry: kept when stale data files are removed.
    logs: BTreeSet<PathBuf>,
    fetched: usize,
}

impl<'a> Mirror<'a> {
    /// Lists every table and brings `dir`'s copies of their Delta logs up to date.
    pub async fn logs(wh: &'a Warehouse, dir: &FsPath) -> Result<Mirror<'a>, QueryError> {
        let all: Vec<&str> = crate::tables::all().map(|t| t.name).collect();
        Self::logs_of(wh, dir, &all).await
    }

    /// [`Mirror::logs`] of `tables` only: `dir` then mirrors nothing else (its other
    /// tables' files are removed by [`Mirror::files`]).
    pub async fn logs_of(
        wh: &'a Warehouse,
        dir: &FsPath,
        tables: &[&str],
    ) -> Result<Mirror<'a>, QueryError> {
        let mut m = Mirror {
            wh,
            dir: dir.to_path_buf(),
            data: BTreeMap::new(),
            logs: BTreeSet::new(),
            fetched: 0,
        };
        for &table in tables {
            let prefix = wh.path(&[table]);
            let objects: Vec<ObjectMeta> = wh
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
                let local = rel.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
                if rel.iter().any(|s| s == "_delta_log") {
                    m.fetch(&meta, &local).await?;
                    m.logs.insert(local);
                } else if rel.last().is_some_and(|n| n.ends_with(".parquet")) {
                    m.data.insert(local, meta);
                } // else: staging leftovers and anything else a reader must not see
            }
            // A local log entry the store no longer has (a warehouse made again under the
            // same URL) must not be read as part of the table.
            let log_dir = dir.join(table).join("_delta_log");
            for e in std::fs::read_dir(&log_dir).into_iter().flatten().flatten() {
                if e.path().is_file() && !m.logs.contains(&e.path()) {
                    std::fs::remove_file(e.path()).map_err(|err| {
                        QueryError::Mirror(format!("cleaning {}: {err}", log_dir.display()))
                    })?;
                }
            }
        }
        Ok(m)
    }

    /// Fetches the data files of each Delta table's snapshot in `files` (every Parquet file
    /// of a table without a log) and removes the rest; returns how many objects were fetched.
    /// Older versions kept for time travel stay in the store until a query asks for them.
    pub async fn files(mut self, files: &TableFiles) -> Result<usize, QueryError> {
        let mut wanted = self.logs.clone();
        for (table, snapshot) in files {
            match snapshot {
                Some(files) => wanted.extend(files.iter().cloned()),
                None => {
                    let root = self.dir.join(table);
                    wanted.extend(self.data.keys().filter(|p| p.starts_with(&root)).cloned());
                }
            }
        }
        let data = std::mem::take(&mut self.data);
        let needed: Vec<&PathBuf> = wanted.iter().filter(|p| !self.logs.contains(*p)).collect();
        for local in needed {
            match data.get(local) {
                Some(meta) => self.fetch(meta, local).await?,
                // Committed after this mirror's listing of the table: fetched by its key.
                None => self.fetch_unlisted(local).await?,
            }
        }
        remove_unwanted(&self.dir, &wanted)
            .map_err(|e| QueryError::Mirror(format!("cleaning {}: {e}", self.dir.display())))?;
        Ok(self.fetched)
    }

    /// Downloads the object a snapshot names at `local` that the listing did not show (a
    /// commit landed between the listing and the log read); one that is not in the store
    /// either is an error that says so.
    async fn fetch_unlisted(&mut self, local: &FsPath) -> Result<(), QueryError> {
        let rel = local.strip_prefix(&self.dir).unwrap_or(local);
        let segments: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let location = self.wh.path(&refs);
        match self.wh.store().head(&location).await {
            Ok(meta) => self.fetch(&meta, local).await,
            Err(object_store::Error::NotFound { .. }) => Err(QueryError::Mirror(format!(
                "{} is in a table's snapshot but not in the store (deleted by hand, or vacuumed with too short a retention?)",
                rel.display()
            ))),
            Err(e) => Err(QueryError::Mirror(format!("reading {location}: {e}"))),
        }
    }

    /// Downloads `meta` to `local` unless the copy there has its size and date.
    async fn fetch(&mut self, meta: &ObjectMeta, local: &FsPath) -> Result<(), QueryError> {
        let modified: SystemTime = meta.last_modified.into();
        let fresh = std::fs::metadata(local)
            .is_ok_and(|m| m.len() == meta.size && m.modified().is_ok_and(|t| t == modified));
        if !fresh {
            download(self.wh, &meta.location, local, Some(modified)).await?;
            self.fetched += 1;
        }
        Ok(())
    }
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
