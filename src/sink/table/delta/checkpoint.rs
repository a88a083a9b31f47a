//! Checkpoints: every `delta.checkpointInterval` commits (Delta's default, 10) the table's
//! state is written as one Parquet file, so loading a snapshot reads that file and at most
//! a few commits, however long the table's history. After a checkpoint, log entries older
//! than `delta.logRetentionDuration` (default 30 days) that it makes redundant are deleted.

use std::time::Duration;

use delta_kernel::snapshot::SnapshotRef;
use delta_kernel::transaction::CommittedTransaction;
use delta_kernel::Engine;

/// Delta's default `delta.checkpointInterval`.
const DEFAULT_INTERVAL: u64 = 10;
/// Delta's default `delta.logRetentionDuration`.
const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// A checkpoint just written: the log may now be cleaned up to `log_retention`, unless the
/// table turned cleanup off.
#[derive(Debug, Clone, Copy)]
pub(super) struct Written {
    pub log_retention: Option<Duration>,
}

/// Writes a checkpoint of the version `committed` produced when the table is due one.
/// A failed checkpoint is a warning, not a failed commit: the window is committed, and the
/// next commit, still due, tries again.
pub(super) fn after_commit(
    committed: &CommittedTransaction,
    snapshot: impl FnOnce() -> Option<SnapshotRef>,
    engine: &dyn Engine,
    table: &str,
) -> Option<Written> {
    let snapshot = committed
        .post_commit_snapshot()
        .cloned()
        .or_else(snapshot)?;
    let props = snapshot.table_properties();
    let interval = props
        .checkpoint_interval
        .map_or(DEFAULT_INTERVAL, std::num::NonZero::get);
    if committed.post_commit_stats().commits_since_checkpoint < interval {
        return None;
    }
    let cleanup = props.enable_expired_log_cleanup.unwrap_or(true);
    let log_retention = props
        .log_retention_duration
        .unwrap_or(DEFAULT_LOG_RETENTION);
    match snapshot.checkpoint(engine, None) {
        Ok(_) => {
            tracing::debug!(
                table,
                version = snapshot.version(),
                "Delta checkpoint written."
            );
            Some(Written {
                log_retention: cleanup.then_some(log_retention),
            })
        }
        Err(e) => {
            tracing::warn!(
                table,
                version = snapshot.version(),
                error = %super::without_backtrace(e),
                "Could not write a Delta checkpoint; the next commit tries again."
            );
            None
        }
    }
}
