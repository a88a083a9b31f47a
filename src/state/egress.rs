//! Audio bytes downloaded per source, for quotas over a rolling period (Xima caps egress per
//! tenant over five days): the run report shows what is used, and a budget stops before the
//! provider's cap does.

use chrono::{DateTime, Duration, Utc};
use duckdb::params;

use super::{ms, State, StateError};

/// Rows older than this are of no use to any quota and are dropped.
const KEEP: Duration = Duration::days(30);

impl State {
    /// Records a download of `bytes` at `at`.
    pub fn record_egress(
        &self,
        source: &str,
        at: DateTime<Utc>,
        bytes: u64,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO egress VALUES (?, ?, ?)",
                params![source, ms(at), bytes as i64],
            )?;
            c.execute(
                "DELETE FROM egress WHERE source = ? AND at_ms < ?",
                params![source, ms(at - KEEP)],
            )?;
            Ok(())
        })
    }

    /// Bytes downloaded for `source` after `since`.
    pub fn egress_since(&self, source: &str, since: DateTime<Utc>) -> Result<u64, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT coalesce(sum(bytes), 0)::BIGINT FROM egress WHERE source = ? AND at_ms > ?",
                params![source, ms(since)],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|b| b.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_rolling_period() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("s.duckdb")).unwrap();
        let now = Utc::now();
        st.record_egress("x", now - Duration::days(6), 100).unwrap();
        st.record_egress("x", now - Duration::days(1), 20).unwrap();
        st.record_egress("x", now, 3).unwrap();
        st.record_egress("y", now, 1000).unwrap();
        assert_eq!(st.egress_since("x", now - Duration::days(5)).unwrap(), 23);
        assert_eq!(st.egress_since("x", now - Duration::days(7)).unwrap(), 123);
        assert_eq!(st.egress_since("z", now - Duration::days(7)).unwrap(), 0);
    }
}
