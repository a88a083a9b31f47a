//! A table's `_delta_log` as a listing: the versions it holds, when each was committed,
//! its checkpoints. The kernel reads the log; this is for what it leaves to the writer:
//! deleting expired log entries, and finding the files that old versions referenced.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::{DeltaError, DeltaStore};

/// One table's log, by version.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// `{version}.json`: the commits still in the log.
    pub commits: BTreeMap<u64, ObjectMeta>,
    /// `{version}.checkpoint[.{part}.{parts}].parquet`.
    pub checkpoints: BTreeMap<u64, Vec<ObjectMeta>>,
    /// `{version}.crc`: checksums some writers leave.
    pub checksums: BTreeMap<u64, ObjectMeta>,
}

impl Listing {
    /// The first version a reader can still rebuild: version 0 while its commit is there,
    /// else the oldest checkpoint.
    pub(super) fn earliest_readable(&self) -> Option<u64> {
        if self.commits.contains_key(&0) {
            return Some(0);
        }
        self.checkpoints.keys().next().copied()
    }

    /// The newest version committed at or before `t` (by its log entry's time, which is
    /// the commit's time for a table without in-commit timestamps, as ccetl's are).
    pub(super) fn version_at(&self, t: DateTime<Utc>) -> Option<u64> {
        self.commits
            .iter()
            .rev()
            .find(|(_, m)| m.last_modified <= t)
            .map(|(v, _)| *v)
    }
}

/// What [`cleanup`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cleaned {
    /// Log entries (commits, checkpoints, checksums) deleted.
    pub(super) entries: usize,
    /// The oldest version still readable afterwards.
    pub(super) earliest: u64,
}

fn store_error<'a>(table: &'a str, doing: &str) -> impl Fn(object_store::Error) -> DeltaError + 'a {
    let doing = doing.to_string();
    move |e| DeltaError::Table {
        table: table.to_string(),
        message: format!("{doing}: {}", crate::sink::backends::describe(&e)),
    }
}

/// Lists `table`'s log. Names ccetl does not know (compactions, staged commits) are left
/// out, so nothing here ever deletes them.
pub(super) async fn list(store: &DeltaStore, table: &str) -> Result<Listing, DeltaError> {
    let all = store.list(table, "_delta_log", "listing its log").await?;
    let mut listing = Listing::default();
    for (rel, meta) in all {
        // `_delta_log/{name}`; deeper ones are under a subdirectory (`_staged_commits/`).
        let [_, name] = rel.as_slice() else {
            continue;
        };
        match classify(name) {
            Some((v, Entry::Commit)) => {
                listing.commits.insert(v, meta);
            }
            Some((v, Entry::Checkpoint)) => listing.checkpoints.entry(v).or_default().push(meta),
            Some((v, Entry::Checksum)) => {
                listing.checksums.insert(v, meta);
            }
            None => {}
        }
    }
    Ok(listing)
}

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Commit,
    Checkpoint,
    Checksum,
}

/// The version a log entry named `name` commits (`00000000000000000010.json` → 10); `None`
/// for checkpoints, checksums and any other name.
pub fn commit_version(name: &str) -> Option<u64> {
    match classify(name)? {
        (v, Entry::Commit) => Some(v),
        _ => None,
    }
}

/// `00000000000000000010.json` → (10, Commit), and so on; `None` for any other name.
fn classify(name: &str) -> Option<(u64, Entry)> {
    let (digits, rest) = name.split_once('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = digits.parse().ok()?;
    let entry = match rest {
        "json" => Entry::Commit,
        "crc" => Entry::Checksum,
        "checkpoint.parquet" => Entry::Checkpoint,
        multi if is_multipart_checkpoint(multi) => Entry::Checkpoint,
        _ => return None,
    };
    Some((version, entry))
}

/// `checkpoint.{part:010}.{parts:010}.parquet`.
fn is_multipart_checkpoint(rest: &str) -> bool {
    let Some(numbers) = rest
        .strip_prefix("checkpoint.")
        .and_then(|r| r.strip_suffix(".parquet"))
    else {
        return false;
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| p.len() == 10 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the log entries no reader needs any more: those older than `retention` that a
/// newer checkpoint makes redundant. Every version committed within `retention` stays
/// readable (its checkpoint and the commits after it stay); entries go oldest first, so a
/// crash midway leaves a log without gaps.
pub(super) async fn cleanup(
    store: &DeltaStore,
    table: &str,
    retention: Duration,
) -> Result<Cleaned, DeltaError> {
    let listing = list(store, table).await?;
    let cutoff = Utc::now() - retention;
    let Some(&newest) = listing.commits.keys().next_back() else {
        return Ok(Cleaned::default());
    };
    // The oldest version that must stay readable: the first committed after the cutoff.
    let oldest_kept = listing
        .commits
        .iter()
        .find(|(_, m)| m.last_modified > cutoff)
        .map_or(newest, |(v, _)| *v);
    let Some(&keep_from) = listing
        .checkpoints
        .range(..=oldest_kept)
        .next_back()
        .map(|(v, _)| v)
    else {
        return Ok(Cleaned {
            entries: 0,
            earliest: listing.earliest_readable().unwrap_or(0),
        });
    };
    let mut doomed: Vec<(u64, &Path)> = Vec::new();
    doomed.extend(
        listing
            .commits
            .range(..keep_from)
            .map(|(v, m)| (*v, &m.location)),
    );
    doomed.extend(
        listing
            .checkpoints
            .range(..keep_from)
            .flat_map(|(v, ms)| ms.iter().map(move |m| (*v, &m.location))),
    );
    doomed.extend(
        listing
            .checksums
            .range(..keep_from)
            .map(|(v, m)| (*v, &m.location)),
    );
    doomed.sort();
    for (_, path) in &doomed {
        match store.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_error(table, "deleting an expired log entry")(e)),
        }
    }
    Ok(Cleaned {
        entries: doomed.len(),
        earliest: keep_from,
    })
}

/// The paths (relative to the table, decoded) that the commits `versions` added.
pub(super) async fn added_paths(
    store: &DeltaStore,
    table: &str,
    listing: &Listing,
    versions: std::ops::RangeInclusive<u64>,
) -> Result<BTreeSet<String>, DeltaError> {
    let mut paths = BTreeSet::new();
    for (v, meta) in listing.commits.range(versions) {
        let body: Bytes = store
            .store
            .get(&meta.location)
            .await
            .map_err(store_error(table, "reading its log"))?
            .bytes()
            .await
            .map_err(store_error(table, "reading its log"))?;
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let action: serde_json::Value =
                serde_json::from_slice(line).map_err(|e| DeltaError::Table {
                    table: table.to_string(),
                    message: format!("its log entry {v} is not JSON lines: {e}"),
                })?;
            if let Some(path) = action.pointer("/add/path").and_then(|p| p.as_str()) {
                paths.insert(decode_path(path));
            }
        }
    }
    Ok(paths)
}

/// A log path (a relative URI, percent-encoded) as the object's name.
pub(super) fn decode_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_are_classified_by_version_and_kind() {
        let v = |n: u64| format!("{n:020}");
        assert_eq!(
            classify(&format!("{}.json", v(7))),
            Some((7, Entry::Commit))
        );
        assert_eq!(
            classify(&format!("{}.checkpoint.parquet", v(10))),
            Some((10, Entry::Checkpoint))
        );
        assert_eq!(
            classify(&format!(
                "{}.checkpoint.0000000001.0000000002.parquet",
                v(20)
            )),
            Some((20, Entry::Checkpoint))
        );
        assert_eq!(
            classify(&format!("{}.crc", v(3))),
            Some((3, Entry::Checksum))
        );
        for other in [
            "_last_checkpoint".to_string(),
            format!("{}.{}.compacted.json", v(1), v(4)),
            format!(
                "{}.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json",
                v(5)
            ),
            "0001.json".to_string(),
            format!("{}.json.tmp", v(2)),
        ] {
            assert_eq!(classify(&other), None, "{other}");
        }
    }

    #[test]
    fn log_paths_are_decoded() {
        assert_eq!(
            decode_path("source=a%20b/date=2026-01-31/part-x.parquet"),
            "source=a b/date=2026-01-31/part-x.parquet"
        );
    }
}
