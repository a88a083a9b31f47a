//! Opening a warehouse's object store: one arm per backend.
//!
//! Each starts from its cloud's usual environment (`AWS_*` with the web-identity and instance
//! chains, `GOOGLE_*`, `AZURE_*`), as users of those clouds expect, and the pipeline's
//! `storage_options` override it (an S3-compatible endpoint, region, path-style, plain http).
//! An option the backend does not know is an error naming it, never silently ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreScheme};

/// A bucket store: objects, and multipart uploads whose ids we can record (see `upload`).
pub trait CloudStore: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> CloudStore for T {}

/// Why a warehouse URL and its options do not open a store.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The URL names no store object_store knows, or an invalid path in one.
    #[error("{0}")]
    Url(String),
    /// A `storage_options` key the backend does not have.
    #[error(
        "storage_options.{key} is not an option of the {backend} store (see the README's list)"
    )]
    #[allow(missing_docs)] // the message names them
    UnknownOption { key: String, backend: &'static str },
    /// A scheme object_store knows but a warehouse cannot be (`memory://`, `http://`).
    #[error("{0} URLs are not a warehouse; use file://, s3://, gs:// or az://")]
    NotAWarehouse(String),
    /// The backend's builder refused its settings (one line, with the fix where known).
    #[error("{0}")]
    Build(String),
}

/// The store for `url` and the path of the warehouse root inside it.
pub fn open(
    url: &url::Url,
    options: &BTreeMap<String, String>,
) -> Result<(Arc<dyn CloudStore>, Path), BackendError> {
    let (scheme, path) =
        ObjectStoreScheme::parse(url).map_err(|e| BackendError::Url(e.to_string()))?;
    let prefix = Path::parse(path).map_err(|e| BackendError::Url(e.to_string()))?;
    let unknown = |k: &str, backend: &'static str| BackendError::UnknownOption {
        key: k.to_string(),
        backend,
    };
    let build = |e: object_store::Error| BackendError::Build(describe(&e));
    let store: Arc<dyn CloudStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env().with_url(url.as_str());
            for (k, v) in options {
                let key: AmazonS3ConfigKey = k.parse().map_err(|_| unknown(k, "S3"))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(build)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (k, v) in options {
                let key: GoogleConfigKey = k.parse().map_err(|_| unknown(k, "GCS"))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(build)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            for (k, v) in options {
                let key: AzureConfigKey = k.parse().map_err(|_| unknown(k, "Azure"))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(build)?)
        }
        other => return Err(BackendError::NotAWarehouse(format!("{other:?}"))),
    };
    Ok((store, prefix))
}

/// An object store error in one line with the fix: S3-style XML bodies are reduced to their
/// code and message, and the usual causes get their remedy.
pub fn describe(e: &object_store::Error) -> String {
    let text = e.to_string();
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{t}>"))? + start;
        Some(text[start..end].to_string())
    };
    let advice = |code: &str| {
        match code {
        "NoSuchBucket" | "ContainerNotFound" => {
            "; create it, or fix the bucket in the warehouse URL"
        }
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AuthorizationFailure"
        | "AuthenticationFailed" => {
            "; check the credentials (the cloud's environment variables or storage_options) and that they may write here"
        }
        _ => "",
    }
    };
    if let (Some(code), Some(msg)) = (tag("Code"), tag("Message")) {
        return format!("{code}: {msg}{}", advice(&code));
    }
    if text.contains("Missing AccessKeyId")
        || text.contains("credential") && text.contains("Missing")
    {
        return "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run with a role), or storage_options.aws_access_key_id / aws_secret_access_key".into();
    }
    let first = text.lines().next().unwrap_or_default();
    first.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let url = url::Url::parse("s3://bucket/wh").unwrap();
        let mut opts = BTreeMap::new();
        opts.insert("aws_endpoint".to_string(), "http://127.0.0.1:9".to_string());
        opts.insert("aws_region".to_string(), "us-east-1".to_string());
        let (_, prefix) = open(&url, &opts).unwrap();
        assert_eq!(prefix.as_ref(), "wh");
        opts.insert("aws_endpiont".to_string(), "x".to_string());
        let e = open(&url, &opts).err().unwrap().to_string();
        assert!(e.contains("storage_options.aws_endpiont"), "{e}");
        let e = open(&url::Url::parse("ftp://x/y").unwrap(), &BTreeMap::new())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a warehouse") || e.contains("ftp"), "{e}");
    }
}
