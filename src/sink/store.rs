//! The warehouse: one object store (local disk, S3, GCS or Azure) and a root prefix.
//!
//! Every write in ccetl goes through here, so moving a warehouse from disk to a bucket is a
//! config change. Local directories use `LocalFileSystem`, whose writes land in a staging
//! file (`name#n`) and are renamed into place, so readers never see a partial file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::backends::{describe, CloudStore};

/// A warehouse operation that failed, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The warehouse URL or its options cannot be opened.
    #[error("warehouse '{url}': {message}")]
    #[allow(missing_docs)] // the message names them
    Open { url: String, message: String },
    /// `cause` rather than `source`: its raw text (S3's XML) is summarised by [`describe`],
    /// and error chains must not print it again.
    #[error("warehouse read {key}: {}", describe(cause))]
    #[allow(missing_docs)] // the message names them
    Read {
        key: String,
        cause: object_store::Error,
    },
    /// An object could not be written or deleted.
    #[error("warehouse write {key}: {}", describe(cause))]
    #[allow(missing_docs)] // the message names them
    Write {
        key: String,
        cause: object_store::Error,
    },
}

/// The warehouse: an object store under a URL (local disk, S3, GCS, Azure).
#[derive(Debug, Clone)]
pub struct Warehouse {
    store: Arc<dyn ObjectStore>,
    /// The same store's multipart API, on buckets (local disk stages and renames instead).
    multipart: Option<Arc<dyn CloudStore>>,
    /// The warehouse URL without a trailing slash, e.g. `file:///data/wh` or `s3://b/wh`.
    url: String,
    prefix: Path,
    local_root: Option<PathBuf>,
}

impl Warehouse {
    /// Opens the warehouse at `url` (`file://` directories are created).
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Self, StoreError> {
        let open_err = |message: String| StoreError::Open {
            url: url.to_string(),
            message,
        };
        let parsed = url::Url::parse(url).map_err(|e| open_err(e.to_string()))?;
        if parsed.scheme() == "file" {
            let dir = parsed
                .to_file_path()
                .map_err(|()| open_err("not a local path".into()))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| open_err(format!("cannot create directory: {e}")))?;
            let store =
                LocalFileSystem::new_with_prefix(&dir).map_err(|e| open_err(e.to_string()))?;
            return Ok(Warehouse {
                store: Arc::new(store),
                multipart: None,
                url: url.trim_end_matches('/').to_string(),
                prefix: Path::default(),
                local_root: Some(dir),
            });
        }
        let (cloud, prefix) =
            super::backends::open(&parsed, options).map_err(|e| open_err(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = cloud.clone();
        Ok(Warehouse {
            store,
            multipart: Some(cloud),
            url: url.trim_end_matches('/').to_string(),
            prefix,
            local_root: None,
        })
    }

    /// Whether workers share it through its objects alone (a bucket, not a local disk):
    /// then its checkpoints and leases, not a local state file, say what is done and who
    /// writes.
    pub fn is_shared(&self) -> bool {
        self.local_root.is_none()
    }

    /// The object store under it.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Its multipart API, on buckets; `None` on local disk.
    pub fn multipart(&self) -> Option<&Arc<dyn CloudStore>> {
        self.multipart.as_ref()
    }

    /// The object path for a warehouse-relative key made of already-safe parts.
    pub fn path(&self, parts: &[&str]) -> Path {
        let mut p = self.prefix.clone();
        for part in parts {
            for seg in part.split('/').filter(|s| !s.is_empty()) {
                p = p.join(seg);
            }
        }
        p
    }

    /// Writes `bytes` at the warehouse-relative `key`, atomically: one PUT, or on a bucket
    /// and above one part, a multipart upload that only becomes visible when complete.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(&[key]);
        let result = self.put_whole_or_in_parts(path, bytes).await;
        result.map_err(|cause| StoreError::Write {
            key: key.to_string(),
            cause,
        })
    }

    /// Reads the object at `key`; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let read_err = |cause| StoreError::Read {
            key: key.to_string(),
            cause,
        };
        match self.store.get(&self.path(&[key])).await {
            Ok(got) => got.bytes().await.map(Some).map_err(read_err),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(read_err(e)),
        }
    }

    /// Every `.json` object under the warehouse-relative `dir` that parses as `T`, with its
    /// path; the others are skipped (and logged).
    pub async fn read_json_under<T: serde::de::DeserializeOwned>(
        &self,
        dir: &str,
    ) -> Result<Vec<(Path, T)>, StoreError> {
        self.read_json_under_where(dir, |_| true).await
    }

    /// [`Self::read_json_under`], reading only the objects whose file name `keep` accepts
    /// (one listing, then a GET each).
    pub async fn read_json_under_where<T: serde::de::DeserializeOwned>(
        &self,
        dir: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<(Path, T)>, StoreError> {
        use futures::TryStreamExt;
        let read_err = |key: String| move |cause| StoreError::Read { key, cause };
        let objects: Vec<_> = self
            .store
            .list(Some(&self.path(&[dir])))
            .try_collect()
            .await
            .map_err(read_err(dir.to_string()))?;
        let mut out = Vec::new();
        for meta in objects {
            let name = meta.location.filename().unwrap_or_default();
            if !name.ends_with(".json") || !keep(name) {
                continue;
            }
            let key = meta.location.to_string();
            let got = self.store.get(&meta.location).await;
            let bytes = got
                .map_err(read_err(key.clone()))?
                .bytes()
                .await
                .map_err(read_err(key.clone()))?;
            match serde_json::from_slice(&bytes) {
                Ok(v) => out.push((meta.location, v)),
                Err(e) => tracing::warn!(key, error = %e, "Unreadable ccetl object skipped."),
            }
        }
        Ok(out)
    }

    /// Deletes a warehouse-relative key.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store
            .delete(&self.path(&[key]))
            .await
            .map_err(|cause| StoreError::Write {
                key: key.to_string(),
                cause,
            })
    }

    /// The full URI of an object, as recorded in `audio_uri`.
    pub fn uri(&self, path: &Path) -> String {
        let rel = path
            .as_ref()
            .strip_prefix(self.prefix.as_ref())
            .unwrap_or(path.as_ref())
            .trim_start_matches('/');
        format!("{}/{}", self.url, rel)
    }

    /// The warehouse-relative key of a URI [`Self::uri`] gave; `None` for one elsewhere.
    pub fn key_of_uri<'u>(&self, uri: &'u str) -> Option<&'u str> {
        uri.strip_prefix(self.url.as_str())?.strip_prefix('/')
    }

    /// Its URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local directory of a `file://` warehouse.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_read_in_one_line_with_the_fix() {
        let xml = "Error performing PUT http://h/b/k in 11ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        let e = object_store::Error::Generic {
            store: "S3",
            source: xml.into(),
        };
        let d = describe(&e);
        assert_eq!(
            d,
            "NoSuchBucket: The specified bucket does not exist; create it, or fix the bucket in the warehouse URL"
        );
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Missing AccessKeyId".into(),
        };
        assert!(describe(&e).starts_with("no credentials found"));
    }
}
