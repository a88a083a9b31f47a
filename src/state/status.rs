//! What `ccetl status` says of a source, from its state: how far its data reaches, what is
//! still open, and when its refresh token runs out. Read-only, one query per figure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use duckdb::{params, OptionalExt};
use serde::Serialize;

use super::{from_ms, State, StateError};

/// A source's standing, as its state records it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStatus {
    /// Everything before it is in the warehouse.
    pub high_water: Option<DateTime<Utc>>,
    /// Committed windows.
    pub windows: u64,
    /// Committed windows the watermark has not passed: recordings still to come, or a gap
    /// before them.
    pub open_windows: u64,
    /// When a window of it was last committed.
    pub last_commit: Option<DateTime<Utc>>,
    /// The ledger's objects (recordings and transcripts) by status: `pending`, `deferred`,
    /// `withheld`, …
    pub objects: BTreeMap<String, u64>,
    /// When its stored refresh token expires, for a source that has one.
    pub refresh_expires: Option<DateTime<Utc>>,
}

impl State {
    /// The standing of `source`'s `stream`.
    pub fn status(&self, source: &str, stream: &str) -> Result<SourceStatus, StateError> {
        let high_water = self.high_water(source, stream)?;
        self.with(|c| {
            let (windows, open, last): (i64, i64, Option<i64>) = c.query_row(
                "SELECT count(*), count(*) FILTER (WHERE window_end_ms > ?), max(committed_at_ms)
                 FROM windows WHERE source = ? AND stream = ?",
                params![
                    high_water.map_or(i64::MIN, |h| h.timestamp_millis()),
                    source,
                    stream
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let mut objects = BTreeMap::new();
            let mut st = c.prepare(
                "SELECT status, count(*) FROM audio_objects WHERE source = ? GROUP BY 1 ORDER BY 1",
            )?;
            for row in st.query_map(params![source], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })? {
                let (status, n) = row?;
                objects.insert(status, n.max(0) as u64);
            }
            let refresh: Option<Option<i64>> = c
                .query_row(
                    "SELECT refresh_expires_at_ms FROM tokens WHERE source = ?",
                    params![source],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(SourceStatus {
                high_water,
                windows: windows.max(0) as u64,
                open_windows: open.max(0) as u64,
                last_commit: last.map(from_ms),
                objects,
                refresh_expires: refresh.flatten().map(from_ms),
            })
        })
    }
}
