//! A table's version 0: protocol reader 1 / writer 2 and its schema, partitioned by source
//! and date, written only if no version 0 exists (two first writers: one wins, the other
//! commits on top of it). A Hive folder written before Delta becomes the table as it is:
//! its files are version 0's, nothing is downloaded again.

use chrono::Utc;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde_json::json;

use super::schema::{table_schema, PARTITION_COLUMNS};
use super::{DeltaError, DeltaStore, ENGINE_INFO};
use crate::schema::TableDef;
use crate::sink::keys;

/// `_delta_log/00000000000000000000.json`, relative to the table.
const VERSION_ZERO: &str = "_delta_log/00000000000000000000.json";

/// Creates `def`'s table unless some writer already did. Asked at every commit (one HEAD of
/// version 0, and a listing of the log once that has expired), not remembered: a table
/// dropped between two windows is created again.
pub(super) async fn ensure(store: &DeltaStore, def: &TableDef) -> Result<(), DeltaError> {
    let table = def.name;
    let err = |message: String| DeltaError::Table {
        table: table.to_string(),
        message,
    };
    let root = store.table_url(table)?;
    let url = root.join(VERSION_ZERO).map_err(|e| err(e.to_string()))?;
    let path = Path::from_url_path(url.path()).map_err(|e| err(e.to_string()))?;
    match store.store.head(&path).await {
        Ok(_) => return Ok(()),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => {
            return Err(err(format!(
                "reading its log: {}",
                crate::sink::backends::describe(&e)
            )))
        }
    }
    // Version 0 expires like any log entry once a checkpoint holds it: the table exists.
    let log = super::log::list(store, table).await?;
    if !log.commits.is_empty() || !log.checkpoints.is_empty() {
        return Ok(());
    }
    let existing = hive_files(store, table).await?;
    let body = version_zero(def, &existing)?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match store
        .store
        .put_opts(&path, PutPayload::from(body), opts)
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(err(format!(
            "creating its log: {}",
            crate::sink::backends::describe(&e)
        ))),
    }
}

/// The log entry that creates the table, with `existing` files as its first rows.
fn version_zero(def: &TableDef, existing: &[(String, ObjectMeta)]) -> Result<String, DeltaError> {
    let schema = table_schema(def)?;
    let schema = serde_json::to_string(&schema).map_err(|e| DeltaError::Table {
        table: def.name.to_string(),
        message: e.to_string(),
    })?;
    let now = Utc::now().timestamp_millis();
    let mut actions = vec![
        json!({"commitInfo": {
            "timestamp": now,
            "operation": if existing.is_empty() { "CREATE TABLE" } else { "CONVERT" },
            "operationParameters": {"partitionBy": "[\"source\",\"date\"]"},
            "engineInfo": ENGINE_INFO,
            "isBlindAppend": true,
        }}),
        json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
        json!({"metaData": {
            "id": uuid::Uuid::new_v4().to_string(),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema,
            "partitionColumns": PARTITION_COLUMNS,
            "configuration": {},
            "createdTime": now,
        }}),
    ];
    for (rel, f) in existing {
        let Some(values) = hive_partition(rel) else {
            continue;
        };
        actions.push(json!({"add": {
            "path": rel,
            "partitionValues": values,
            "size": f.size,
            "modificationTime": f.last_modified.timestamp_millis(),
            "dataChange": true,
        }}));
    }
    Ok(actions.iter().map(|a| format!("{a}\n")).collect())
}

/// The data files under a table's root that a Hive-era run left, with their paths
/// relative to it.
async fn hive_files(
    store: &DeltaStore,
    table: &str,
) -> Result<Vec<(String, ObjectMeta)>, DeltaError> {
    let mut files = store.data_files(table).await?;
    // A Hive-era name: a Delta-era one (with its content's digest) is a file a Delta run
    // wrote and has not committed yet, or never will (a killed run's).
    files.retain(|(rel, _)| {
        rel.rsplit('/')
            .next()
            .and_then(keys::parse_part_file)
            .is_some_and(|(_, digest)| digest.is_none())
    });
    Ok(files)
}

/// `source=S/date=D/name.parquet` → `{source: S, date: D}`.
fn hive_partition(rel: &str) -> Option<serde_json::Value> {
    let mut parts = rel.split('/');
    let source = parts.next()?.strip_prefix("source=")?;
    let date = parts.next()?.strip_prefix("date=")?;
    let _name = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some(json!({"source": source, "date": date}))
}

/// Whether the warehouse's store refuses a second create of one object, as Delta commits
/// need (two writers of one version: one must lose). Writes, re-writes and deletes a probe.
pub async fn probe_conditional_create(wh: &crate::sink::Warehouse) -> Result<(), DeltaError> {
    let path = wh.path(&[&format!("_ccetl/probe-create-{}", uuid::Uuid::new_v4())]);
    let opts = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let refused = |why: String| {
        DeltaError::Table {
        table: wh.url().to_string(),
        message: format!(
            "{why}: its store cannot create an object only if absent, which Delta commits need so that two writers never both write one version; use a store that can (S3 and S3-compatible stores with If-None-Match, GCS, Azure, local disk) or set table_format = \"parquet\""
        ),
    }
    };
    let first = wh
        .store()
        .put_opts(&path, PutPayload::from_static(b"probe"), opts())
        .await;
    let second = match first {
        Ok(_) => {
            wh.store()
                .put_opts(&path, PutPayload::from_static(b"probe"), opts())
                .await
        }
        Err(e) => {
            return Err(refused(format!(
                "a conditional create failed ({})",
                crate::sink::backends::describe(&e)
            )))
        }
    };
    let _ = wh.store().delete(&path).await;
    match second {
        Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Ok(_) => Err(refused("a second create of one object succeeded".into())),
        Err(e) => Err(refused(format!(
            "a second create failed other than as already existing ({})",
            crate::sink::backends::describe(&e)
        ))),
    }
}
