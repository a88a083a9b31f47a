//! The errors of a source's run: its system's own ([`SystemFailure`]), the writes every
//! source shares ([`SourceFailure`]), and the run's, located in a source and window
//! ([`RunError`]). Each says its [`ErrorKind`], which sets the exit code.

use std::path::PathBuf;

use super::SystemError;
use crate::error::ErrorKind;
use crate::sink::{parquet, StoreError};
use crate::state::StateError;

/// Why a run, or part of it, failed. Its [`kind`](RunError::kind) sets the exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The warehouse could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A shared warehouse's checkpoint or lease could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] crate::sink::versioned::VersionedError),
    /// The warehouse's tables cannot be committed to safely.
    #[error(transparent)]
    Table(#[from] crate::sink::table::delta::DeltaError),
    /// Another worker holds the source's lease (a shared warehouse).
    #[error("source '{source_name}': {error}")]
    #[allow(missing_docs)]
    Lease {
        source_name: String,
        error: crate::sink::lease::LeaseError,
    },
    /// `--source` names no source of the pipeline.
    #[error("--source {0}: no source of that name in the pipeline")]
    UnknownSource(String),
    /// A source's task panicked or was cancelled.
    #[error("a source's task ended abnormally: {0}")]
    Task(String),
    /// The pipeline's token store could not be read.
    #[error("token store {url}: {message}")]
    #[allow(missing_docs)]
    TokenStore { url: String, message: String },
    /// `state rebuild` could not read the recordings tables back.
    #[error("state rebuild: reading the recording tables: {0}")]
    Rebuild(String),
    /// The state file is gone but the warehouse holds committed windows.
    #[error("state file {path} is missing, but the warehouse holds {windows} committed windows of source '{source_name}': run `ccetl state rebuild {pipeline}` to recreate the state from the warehouse (or remove {warehouse}/_ccetl/manifests to extract everything again)")]
    #[allow(missing_docs)]
    StateMissing {
        path: PathBuf,
        source_name: String,
        windows: usize,
        pipeline: String,
        warehouse: String,
    },
    /// A source failed, in a window when one is named.
    #[error("source '{source_name}'{window}: {error}")]
    #[allow(missing_docs)]
    Source {
        source_name: String,
        window: String,
        error: Box<SourceFailure>,
    },
    /// A quota stopped part of the work; what was done is committed and a rerun resumes.
    #[error("source '{source_name}': partial: {message}")]
    #[allow(missing_docs)]
    Partial {
        source_name: String,
        message: String,
    },
    /// Several sources ran and some failed.
    #[error("{failed} of {total} sources failed; first: {first}")]
    Some {
        /// How many failed, of how many.
        failed: usize,
        /// How many sources ran.
        total: usize,
        /// The first failure.
        first: Box<RunError>,
        /// Every failure was a quota (exit 4, not 1).
        all_partial: bool,
    },
}

/// Why a source's window (or its connection) failed: its system's own error, or one of
/// the writes every source shares.
#[derive(Debug, thiserror::Error)]
pub enum SourceFailure {
    /// The source system's own error (its API, its data).
    #[error(transparent)]
    System(SystemFailure),
    /// Encoding a table's Parquet file.
    #[error(transparent)]
    Write(#[from] parquet::WriteError),
    /// Writing to the warehouse.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Committing a window's files to its table.
    #[error(transparent)]
    Table(#[from] crate::sink::table::TableError),
    /// Writing the state.
    #[error(transparent)]
    State(#[from] StateError),
    /// Moving the warehouse's checkpoint (a shared warehouse).
    #[error(transparent)]
    Checkpoint(#[from] crate::sink::versioned::VersionedError),
    /// The run's lease on the source is lost: it stopped before committing.
    #[error(transparent)]
    Fenced(#[from] crate::sink::lease::LeaseError),
    /// Building a table in Arrow.
    #[error(transparent)]
    Transform(#[from] arrow::error::ArrowError),
    /// The runtime shut down under a blocking task.
    #[error(transparent)]
    ShutDown(#[from] crate::blocking::ShutDown),
}

impl SourceFailure {
    /// What the user does about it: the system's own kind, `Other` for shared writes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceFailure::System(e) => e.0.kind(),
            SourceFailure::Checkpoint(e) => e.kind(),
            SourceFailure::Fenced(e) => e.kind(),
            SourceFailure::Write(_)
            | SourceFailure::Store(_)
            | SourceFailure::Table(_)
            | SourceFailure::State(_)
            | SourceFailure::Transform(_)
            | SourceFailure::ShutDown(_) => ErrorKind::Other,
        }
    }

    /// True when the cause is rejected credentials (no window is named then).
    pub fn is_auth(&self) -> bool {
        self.kind() == ErrorKind::Auth
    }
}

impl<E: SystemError> From<E> for SourceFailure {
    fn from(e: E) -> Self {
        SourceFailure::System(SystemFailure(Box::new(e)))
    }
}

/// A source system's error, whichever the system: shown as itself, causes and all.
#[derive(Debug)]
pub struct SystemFailure(Box<dyn SystemError>);

impl std::fmt::Display for SystemFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SystemFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl RunError {
    /// `Quota` when only quotas stopped the run (everything else succeeded); a failed source
    /// is its own error's kind; of several, the first's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RunError::UnknownSource(_) => ErrorKind::Config,
            RunError::Checkpoint(e) => e.kind(),
            RunError::Lease { error, .. } => error.kind(),
            RunError::Partial { .. } => ErrorKind::Quota,
            RunError::Source { error, .. } => error.kind(),
            RunError::Some {
                all_partial: true, ..
            } => ErrorKind::Quota,
            RunError::Some { first, .. } => match first.kind() {
                ErrorKind::Quota => ErrorKind::Other,
                k => k,
            },
            RunError::State(_)
            | RunError::Store(_)
            | RunError::Table(_)
            | RunError::Task(_)
            | RunError::Rebuild(_)
            | RunError::TokenStore { .. }
            | RunError::StateMissing { .. } => ErrorKind::Other,
        }
    }

    /// True when only a quota stopped the run (exit code 4): everything else succeeded.
    pub fn is_partial(&self) -> bool {
        self.kind() == ErrorKind::Quota
    }

    /// True when the cause is rejected credentials (exit code 3).
    pub fn is_auth(&self) -> bool {
        self.kind() == ErrorKind::Auth
    }
}
