//! A source's checkpoint kept in the warehouse (issue 28): how far its windows are committed,
//! for workers that share no disk. Shards of one source commit disjoint windows in any order
//! and at once; each commit is a compare-and-swap on the checkpoint object, retried on a lost
//! race, so no commit overwrites another's.

use std::collections::BTreeMap;

use object_store::path::Path;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use super::versioned::{self, VersionedError, Written};

/// Compare-and-swap attempts before giving up: each lost race means another shard's commit
/// went through, so this many in a row means a storm, not a bug.
const MAX_ATTEMPTS: u32 = 64;

const HOUR_MS: i64 = 3_600_000;

/// How long the egress count keeps an hour: longer than any API's rolling period (Xima's is
/// five days).
const EGRESS_KEEP_MS: i64 = 7 * 24 * HOUR_MS;

/// A source's progress in the warehouse: the windows committed, as spans.
///
/// Spans rather than one high water, because shards commit out of order: a shard that
/// finishes first must not make a later reader believe the range before it is done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Committed and complete, as merged spans: start → end (epoch ms).
    pub done: BTreeMap<i64, i64>,
    /// Committed but not complete (audio pending): start → end; read again later.
    pub open: BTreeMap<i64, i64>,
    /// How many commits it has seen.
    pub generation: u64,
    /// Audio bytes the commits of the last days downloaded, by hour (its start, epoch ms):
    /// what an API that caps egress over a rolling period (Xima) has counted, whichever
    /// worker downloaded it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub egress: BTreeMap<i64, u64>,
}

impl Checkpoint {
    /// Records window `[start_ms, end_ms)` as committed, `complete` or not. A complete window
    /// joins the spans next to it; one read again and found incomplete leaves them.
    pub fn commit(&mut self, start_ms: i64, end_ms: i64, complete: bool) {
        cut(&mut self.done, start_ms, end_ms);
        cut(&mut self.open, start_ms, end_ms);
        if !complete {
            self.open.insert(start_ms, end_ms);
            return;
        }
        let (mut s, mut e) = (start_ms, end_ms);
        // The span ending where this one starts, and the one starting where it ends.
        if let Some((&ps, &pe)) = self.done.range(..=s).next_back() {
            if pe == s {
                self.done.remove(&ps);
                s = ps;
            }
        }
        if let Some(ne) = self.done.remove(&e) {
            e = ne;
        }
        self.done.insert(s, e);
    }

    /// Counts `bytes` downloaded at `now_ms`, forgetting hours older than the longest period.
    pub fn add_egress(&mut self, now_ms: i64, bytes: u64) {
        if bytes > 0 {
            *self
                .egress
                .entry(now_ms - now_ms.rem_euclid(HOUR_MS))
                .or_default() += bytes;
        }
        self.egress = self.egress.split_off(&(now_ms - EGRESS_KEEP_MS));
    }

    /// Bytes counted after `since_ms`, the whole hour it falls in included (an over-count
    /// keeps a cap from being passed).
    pub fn egress_since(&self, since_ms: i64) -> u64 {
        self.egress
            .range(since_ms - since_ms.rem_euclid(HOUR_MS)..)
            .map(|(_, b)| b)
            .sum()
    }

    /// Where a run that continues this source starts (before its lookback): the end of the
    /// first span, or the first open window if that comes earlier. `None` before any commit.
    pub fn resume_at(&self) -> Option<i64> {
        let first_done = self.done.iter().next().map(|(_, &e)| e);
        let first_open = self.open.keys().next().copied();
        match (first_done, first_open) {
            (Some(d), Some(o)) => Some(d.min(o)),
            (d, o) => d.or(o),
        }
    }

    /// The ranges between done spans that are not committed at all: what a failed shard
    /// left, for `finalize` to report.
    pub fn gaps(&self) -> Vec<(i64, i64)> {
        let mut spans: Vec<(i64, i64)> = self
            .done
            .iter()
            .chain(self.open.iter())
            .map(|(&s, &e)| (s, e))
            .collect();
        spans.sort_unstable();
        let mut out = Vec::new();
        let mut reach: Option<i64> = None;
        for (s, e) in spans {
            if let Some(r) = reach.filter(|&r| r < s) {
                out.push((r, s));
            }
            reach = Some(reach.map_or(e, |r| r.max(e)));
        }
        out
    }
}

/// Removes `[start, end)` from `spans`, keeping what lies outside it.
fn cut(spans: &mut BTreeMap<i64, i64>, start: i64, end: i64) {
    let touched: Vec<(i64, i64)> = spans
        .range(..end)
        .filter(|(_, &e)| e > start)
        .map(|(&s, &e)| (s, e))
        .collect();
    for (s, e) in touched {
        spans.remove(&s);
        if s < start {
            spans.insert(s, start);
        }
        if e > end {
            spans.insert(end, e);
        }
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

/// Where `source`'s checkpoint for `stream` lives in `wh`.
pub fn path_of(wh: &super::Warehouse, source: &str, stream: &str) -> Path {
    wh.path(&["_ccetl", "checkpoints", source, &format!("{stream}.json")])
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
    fn spans_merge_wait_for_gaps_and_split_when_a_window_reopens() {
        let mut cp = Checkpoint::default();
        cp.commit(2 * DAY, 3 * DAY, true);
        assert_eq!(cp.resume_at(), Some(3 * DAY));
        cp.commit(4 * DAY, 5 * DAY, true);
        assert_eq!(cp.resume_at(), Some(3 * DAY), "day 3 is a gap");
        assert_eq!(cp.gaps(), [(3 * DAY, 4 * DAY)]);
        cp.commit(3 * DAY, 4 * DAY, false);
        assert_eq!(cp.resume_at(), Some(3 * DAY), "day 3 is open");
        assert!(cp.gaps().is_empty(), "an open window is committed");
        cp.commit(3 * DAY, 4 * DAY, true);
        assert_eq!(cp.done.len(), 1, "one span: {cp:?}");
        assert_eq!(cp.resume_at(), Some(5 * DAY));
        assert!(cp.open.is_empty());
        // A shard of an earlier range commits last: the span grows backwards.
        cp.commit(DAY, 2 * DAY, true);
        assert_eq!(cp.done.iter().next(), Some((&DAY, &(5 * DAY))));
        // A lookback finds day 3 incomplete again: the span splits around it.
        cp.commit(3 * DAY, 4 * DAY, false);
        assert_eq!(cp.resume_at(), Some(3 * DAY));
        assert_eq!(cp.done.len(), 2);
        // Windows need not be a day: a short last window of a run.
        cp.commit(3 * DAY, 4 * DAY, true);
        cp.commit(5 * DAY, 5 * DAY + 3_600_000, true);
        assert_eq!(cp.resume_at(), Some(5 * DAY + 3_600_000));
    }

    #[test]
    fn egress_counts_by_hour_over_the_last_days() {
        let mut cp = Checkpoint::default();
        let now = 40 * DAY + 1_800_000;
        cp.add_egress(now - 8 * DAY, 1_000);
        cp.add_egress(now - 2 * DAY, 20);
        cp.add_egress(now - 2 * DAY + 60_000, 5);
        cp.add_egress(now, 3);
        cp.add_egress(now, 0);
        assert_eq!(
            cp.egress.len(),
            2,
            "old hours forgotten, one per hour: {cp:?}"
        );
        assert_eq!(cp.egress_since(now - 5 * DAY), 28);
        assert_eq!(
            cp.egress_since(now - 60_000),
            3,
            "the current hour counts whole"
        );
        assert_eq!(cp.egress_since(now + 2 * 3_600_000), 0);
        // A checkpoint written before egress was counted reads as none.
        let old: Checkpoint =
            serde_json::from_str(r#"{"done":{},"open":{},"generation":3}"#).unwrap();
        assert_eq!(old.egress_since(0), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shards_committing_at_once_lose_no_commit() {
        let store = Arc::new(InMemory::new());
        let path = Path::from("_ccetl/checkpoints/wx/tasks.json");
        // Day 0, then 30 days from 8 shards at once, in an order that leaves gaps until the
        // end.
        update(store.as_ref(), &path, |cp| cp.commit(0, DAY, true))
            .await
            .unwrap();
        let shards = (0..8).map(|s| {
            let (store, path) = (store.clone(), path.clone());
            tokio::spawn(async move {
                for day in (1..=30).rev().filter(|d| d % 8 == s) {
                    update(store.as_ref(), &path, |cp| {
                        cp.commit(day * DAY, (day + 1) * DAY, true);
                    })
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
        assert_eq!(cp.done.into_iter().collect::<Vec<_>>(), [(0, 31 * DAY)]);
        assert!(cp.open.is_empty());
    }
}
