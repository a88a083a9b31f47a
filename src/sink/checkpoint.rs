//! A source's checkpoint kept in the warehouse (issue 28): how far its windows are committed,
//! for workers that share no disk. Shards of one source commit disjoint windows in any order
//! and at once; each commit is a compare-and-swap on the checkpoint object, retried on a lost
//! race, so no commit overwrites another's.

use std::collections::BTreeSet;

use object_store::path::Path;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use super::versioned::{self, VersionedError, Written};

/// Compare-and-swap attempts before giving up: each lost race means another shard's commit
/// went through, so this many in a row means a storm, not a bug.
const MAX_ATTEMPTS: u32 = 64;

/// A source's progress: every window before `high_water_ms` is committed and complete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Everything before this (epoch ms) is committed; `None` before the first window.
    pub high_water_ms: Option<i64>,
    /// Windows committed and complete past the high water, by start (epoch ms): shards finish
    /// out of order, and the high water waits for the gap before them.
    pub ahead: BTreeSet<i64>,
    /// Windows committed but not complete (audio pending), by start: read again later.
    pub open: BTreeSet<i64>,
    /// How many commits it has seen.
    pub generation: u64,
}

impl Checkpoint {
    /// Records window `[start_ms, start_ms + step_ms)` as committed, `complete` or not, then
    /// moves the high water over every complete window that now follows it without a gap.
    /// The first window committed sets where the high water starts.
    pub fn commit(&mut self, start_ms: i64, step_ms: i64, complete: bool) {
        if complete {
            self.open.remove(&start_ms);
            self.ahead.insert(start_ms);
        } else {
            self.open.insert(start_ms);
            self.ahead.remove(&start_ms);
        }
        let mut hw = match self.high_water_ms {
            Some(hw) => hw,
            None if complete => start_ms,
            None => return,
        };
        while self.ahead.remove(&hw) {
            hw += step_ms;
        }
        self.high_water_ms = Some(hw);
    }
}

/// Applies `change` to the checkpoint at `path` (a new one if there is none) by
/// compare-and-swap, re-reading and re-applying after each lost race; returns what was
/// written.
pub async fn update(
    store: &dyn ObjectStore,
    path: &Path,
    change: impl Fn(&mut Checkpoint),
) -> Result<Checkpoint, VersionedError> {
    for _ in 0..MAX_ATTEMPTS {
        let (mut cp, version) = match versioned::read::<Checkpoint>(store, path).await? {
            Some((cp, v)) => (cp, Some(v)),
            None => (Checkpoint::default(), None),
        };
        change(&mut cp);
        cp.generation += 1;
        if let Written::Done(_) = versioned::write(store, path, &cp, version).await? {
            return Ok(cp);
        }
    }
    Err(VersionedError::Store {
        path: path.to_string(),
        source: object_store::Error::Generic {
            store: "checkpoint",
            source: format!("lost {MAX_ATTEMPTS} compare-and-swap races in a row").into(),
        },
    })
}

/// The checkpoint at `path`, if any.
pub async fn read(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<Checkpoint>, VersionedError> {
    Ok(versioned::read(store, path).await?.map(|(cp, _)| cp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    const DAY: i64 = 86_400_000;

    #[test]
    fn the_high_water_waits_for_gaps_and_open_windows() {
        let mut cp = Checkpoint::default();
        cp.commit(2 * DAY, DAY, true);
        assert_eq!(
            cp.high_water_ms,
            Some(3 * DAY),
            "the first window sets the start"
        );
        cp.commit(4 * DAY, DAY, true);
        assert_eq!(cp.high_water_ms, Some(3 * DAY), "day 3 is a gap");
        cp.commit(3 * DAY, DAY, false);
        assert_eq!(cp.high_water_ms, Some(3 * DAY), "day 3 is open");
        assert!(cp.open.contains(&(3 * DAY)));
        cp.commit(3 * DAY, DAY, true);
        assert_eq!(cp.high_water_ms, Some(5 * DAY));
        assert!(cp.ahead.is_empty() && cp.open.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shards_committing_at_once_lose_no_commit() {
        let store = Arc::new(InMemory::new());
        let path = Path::from("_ccetl/checkpoints/wx/tasks.json");
        // Day 0 first, so the high water starts there; then 30 days from 8 shards at once,
        // in an order that leaves gaps until the end.
        update(store.as_ref(), &path, |cp| cp.commit(0, DAY, true))
            .await
            .unwrap();
        let shards = (0..8).map(|s| {
            let (store, path) = (store.clone(), path.clone());
            tokio::spawn(async move {
                for day in (1..=30).rev().filter(|d| d % 8 == s) {
                    update(store.as_ref(), &path, |cp| cp.commit(day * DAY, DAY, true))
                        .await
                        .unwrap();
                }
            })
        });
        for r in futures::future::join_all(shards).await {
            r.unwrap();
        }
        let cp = read(store.as_ref(), &path).await.unwrap().unwrap();
        assert_eq!(cp.generation, 31, "every commit is in");
        assert_eq!(cp.high_water_ms, Some(31 * DAY));
        assert!(cp.ahead.is_empty());
    }
}
