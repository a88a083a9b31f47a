//! Load: the warehouse (object store), Parquet partition files, audio objects, manifests.

pub mod audio;
pub mod audio_copy;
pub mod backends;
pub mod checkpoint;
pub mod digest;
pub mod fence;
pub mod keys;
pub mod lease;
pub mod manifest;
pub mod parquet;
pub mod store;
pub mod sweep;
pub mod table;
pub mod upload;
pub mod versioned;

pub use store::{StoreError, Warehouse};
