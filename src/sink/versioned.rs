//! Small JSON documents in the warehouse changed only by compare-and-swap on the object's
//! version (ETag or generation): what leases and checkpoints are made of. A writer that lost
//! a race gets the store's precondition failure, never a silent overwrite.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a versioned document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum VersionedError {
    /// The store cannot compare-and-swap (local disk).
    #[error("{path}: this warehouse's store has no conditional writes; this needs an object store (S3, GCS, Azure)")]
    #[allow(missing_docs)] // the message names them
    Unsupported { path: String },
    /// An object that is not the document expected.
    #[error("{path}: not a ccetl document ({message})")]
    #[allow(missing_docs)] // the message names them
    Corrupt { path: String, message: String },
    /// The store refused a request.
    #[error("{path}: {source}")]
    #[allow(missing_docs)] // the message names them
    Store {
        path: String,
        source: object_store::Error,
    },
}

impl VersionedError {
    /// Its kind, for the exit code.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            VersionedError::Unsupported { .. } => ErrorKind::Config,
            VersionedError::Corrupt { .. } => ErrorKind::Data,
            VersionedError::Store { .. } => ErrorKind::Other,
        }
    }
}

/// The outcome of a conditional write.
#[derive(Debug)]
pub enum Written {
    /// Written: the new version.
    Done(UpdateVersion),
    /// Someone else wrote first (the object exists, or changed since it was read).
    Raced,
}

/// Writes `doc` at `path`: created only if absent (`None`), else only if still at `version`.
pub async fn write<T: Serialize>(
    store: &dyn ObjectStore,
    path: &Path,
    doc: &T,
    version: Option<UpdateVersion>,
) -> Result<Written, VersionedError> {
    let bytes = serde_json::to_vec(doc).map_err(|e| VersionedError::Corrupt {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    let mode = match version {
        None => PutMode::Create,
        Some(v) => PutMode::Update(v),
    };
    let opts = PutOptions {
        mode,
        ..PutOptions::default()
    };
    match store.put_opts(path, Bytes::from(bytes).into(), opts).await {
        Ok(r) => Ok(Written::Done(UpdateVersion {
            e_tag: r.e_tag,
            version: r.version,
        })),
        Err(
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotFound { .. },
        ) => Ok(Written::Raced),
        Err(e) => Err(store_error(path, e)),
    }
}

/// The document at `path` and its version; `None` when there is none.
pub async fn read<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<(T, UpdateVersion)>, VersionedError> {
    let got = match store.get(path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_error(path, e)),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got.bytes().await.map_err(|e| store_error(path, e))?;
    let doc = serde_json::from_slice(&bytes).map_err(|e| VersionedError::Corrupt {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    Ok(Some((doc, version)))
}

fn store_error(path: &Path, e: object_store::Error) -> VersionedError {
    match e {
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => {
            VersionedError::Unsupported {
                path: path.to_string(),
            }
        }
        source => VersionedError::Store {
            path: path.to_string(),
            source,
        },
    }
}
