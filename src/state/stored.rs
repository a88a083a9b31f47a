//! Audio objects recorded in the ledger as they are stored, before their window commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AudioRecord, State, StateError};

/// Objects recorded at most this many at a time…
pub const BATCH: usize = 32;
/// …or this long after the last write, whichever comes first.
const EVERY: Duration = Duration::from_secs(2);

/// Writes newly stored objects to the ledger while their window is still being copied: a
/// run killed before the window commits leaves them in the warehouse, and the next run finds
/// them here instead of downloading them again (an egress cap counts every byte). A kill
/// loses at most the last batch's entries. Batched, and on the blocking pool like the
/// window's commit, because a DuckDB write costs milliseconds and memory: one per object on
/// the task copying the audio cost the audio bench ~30 MB of peak RSS.
pub struct StoredLedger {
    state: Arc<State>,
    source: String,
    pending: Vec<AudioRecord>,
    since: Instant,
}

impl StoredLedger {
    /// An empty ledger batch for one source.
    pub fn new(state: &Arc<State>, source: &str) -> Self {
        StoredLedger {
            state: state.clone(),
            source: source.to_string(),
            pending: Vec::with_capacity(BATCH),
            since: Instant::now(),
        }
    }

    /// Adds an object just stored (`None`: nothing new to record).
    pub async fn add(&mut self, stored: Option<AudioRecord>) -> Result<(), StateError> {
        self.pending.extend(stored);
        if self.pending.len() >= BATCH || self.since.elapsed() >= EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is pending.
    pub async fn flush(&mut self) -> Result<(), StateError> {
        self.since = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        let (state, source) = (self.state.clone(), self.source.clone());
        crate::blocking::run("recording stored audio", move || {
            state.record_stored(&source, &batch)
        })
        .await?
    }

    /// Writes what is pending on the way out of a failed window, whose own error is the one
    /// to report: a failure here only costs the next run some downloads, so it is logged.
    pub async fn flush_quietly(&mut self) {
        if let Err(e) = self.flush().await {
            tracing::warn!(source = %self.source, error = %e, "Could not record the objects stored before the failure; the next run downloads them again.");
        }
    }
}
