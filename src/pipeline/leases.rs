//! Who writes a source's windows when workers share only the warehouse: a run on an
//! object-store warehouse holds one lease per source (and per shard: a run given a range
//! holds that range's), so a second worker started on the same work is refused at once, and
//! one that lost its lease stops before its next commit. A `file://` warehouse has one
//! machine's run lock instead.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{stream_of, RunError, RunOptions};
use crate::config::SourceConfig;
use crate::sink::fence::Fence;
use crate::sink::lease::{Lease, LeaseBody};
use crate::sink::Warehouse;

/// How long a lease lives unrenewed: a killed worker's work is free again after this.
const TTL: chrono::Duration = chrono::Duration::minutes(2);
/// How often a holder renews it: four chances before it lapses.
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// Takes the lease of each source for the run's range, or fails naming who holds one.
/// Already taken ones are given back when a later one is refused.
pub(super) async fn take(
    wh: &Warehouse,
    sources: &[&SourceConfig],
    opts: &RunOptions,
) -> Result<Vec<(String, Arc<Fence>)>, RunError> {
    let me = LeaseBody::for_this_process();
    let mut held = Vec::new();
    for src in sources {
        let path = path_of(wh, src, opts);
        let store = wh.store().as_ref();
        match Lease::acquire_as(
            store,
            &path,
            me.clone(),
            TTL,
            Utc::now(),
            LeaseBody::holder_is_gone,
        )
        .await
        {
            Ok(lease) => held.push((
                src.name().to_string(),
                Arc::new(Fence::hold(wh.store().clone(), lease, RENEW_EVERY)),
            )),
            Err(e) => {
                give_back(wh, &held).await;
                return Err(RunError::Lease {
                    source_name: src.name().to_string(),
                    error: e,
                });
            }
        }
    }
    Ok(held)
}

/// Gives the leases up (a failure only delays the next run until they lapse).
pub(super) async fn give_back(wh: &Warehouse, held: &[(String, Arc<Fence>)]) {
    for (source, fence) in held {
        if let Err(e) = fence.release(wh.store().as_ref()).await {
            tracing::warn!(source, "Lease not given back (it lapses by itself): {e}");
        }
    }
}

/// `_ccetl/leases/{source}/{stream}/{range}.json`: `latest` for a scheduled run, the
/// `--since`/`--until` range (epoch ms) for a shard.
fn path_of(wh: &Warehouse, src: &SourceConfig, opts: &RunOptions) -> object_store::path::Path {
    let ms = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(|| "open".into(), |t| t.timestamp_millis().to_string())
    };
    let range = match (opts.since, opts.until) {
        (None, None) => "latest".to_string(),
        (since, until) => format!("{}-{}", ms(since), ms(until)),
    };
    wh.path(&[
        "_ccetl",
        "leases",
        src.name(),
        stream_of(src),
        &format!("{range}.json"),
    ])
}

/// The fence of `source` among `held`.
pub(super) fn fence_of(held: &[(String, Arc<Fence>)], source: &str) -> Option<Arc<Fence>> {
    held.iter()
        .find(|(s, _)| s == source)
        .map(|(_, f)| f.clone())
}
