//! Time windows: the planner and the splitter, used by every source.
//!
//! Windows sit on a fixed UTC grid (`pipeline.window`), so a window always has the same
//! start whichever run reads it, and its files keep the same names: re-reading replaces.

use chrono::{DateTime, Duration, TimeZone, Utc};

/// A time range `[start, end)` on the UTC grid: the unit a source reads and commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

/// The grid line at or before `t`.
pub fn align_down(t: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let step_ms = step.num_milliseconds().max(1);
    let ms = t.timestamp_millis();
    let aligned = ms - ms.rem_euclid(step_ms);
    Utc.timestamp_millis_opt(aligned).single().unwrap_or(t)
}

/// Grid windows covering `[from, to)`: the first starts at `align_down(from)`, the last ends
/// at `to` (partial when `to` is off the grid).
pub fn plan(from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) -> Vec<Window> {
    let mut out = Vec::new();
    let mut start = align_down(from, step);
    while start < to {
        let end = (start + step).min(to);
        out.push(Window { start, end });
        start += step;
    }
    out
}

/// `[start, end)` cut into pieces no longer than `max`, for APIs with a maximum range.
pub fn split(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    max: Duration,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let max = if max <= Duration::zero() {
        Duration::milliseconds(1)
    } else {
        max
    };
    let mut out = Vec::new();
    let mut s = start;
    while s < end {
        let e = (s + max).min(end);
        out.push((s, e));
        s = e;
    }
    out
}

/// Every piece of `[start, end)` read with `read`, where an answer of `cap` items or more
/// may have been cut off by the API (the legacy API's `numberOfRecords`, the Search API's
/// 100,000 records per query): such a range is halved and each half read again, until every
/// piece is below the cap. Pieces come back in time order. A single millisecond that still
/// reaches the cap cannot be split: `too_dense(at)` is the error then.
pub async fn read_below_cap<T, E, F, Fut>(
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    cap: usize,
    mut read: F,
    too_dense: impl FnOnce(DateTime<Utc>) -> E,
) -> Result<Vec<T>, E>
where
    F: FnMut(DateTime<Utc>, DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = Result<(T, usize), E>>,
{
    let mut out = Vec::new();
    // A stack of ranges still to read, the earliest on top.
    let mut todo = vec![(start, end)];
    while let Some((s, e)) = todo.pop() {
        let (piece, items) = read(s, e).await?;
        if items < cap {
            out.push(piece);
            continue;
        }
        if e - s <= Duration::milliseconds(1) {
            return Err(too_dense(s));
        }
        tracing::debug!(from = %s, to = %e, items, cap, "An answer reached the record cap; splitting its range.");
        // Whole milliseconds: the APIs' ranges are in epoch ms.
        let half = Duration::milliseconds(((e - s).num_milliseconds() + 1) / 2);
        let mut parts = split(s, e, half);
        parts.reverse();
        todo.extend(parts);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    #[test]
    fn reads_below_the_cap_in_time_order() {
        // An API that answers at most 3 of the items in a range.
        let items: Vec<i64> = vec![0, 1, 2, 3, 4, 5, 6, 7, 7, 7, 9];
        let read = |cap: usize| {
            let items = items.clone();
            futures::executor::block_on(read_below_cap(
                (t(0), t(10)),
                cap,
                |s, e| {
                    let got: Vec<i64> = items
                        .iter()
                        .copied()
                        .filter(|&i| i >= s.timestamp_millis() && i < e.timestamp_millis())
                        .take(cap)
                        .collect();
                    let n = got.len();
                    async move { Ok::<_, DateTime<Utc>>((got, n)) }
                },
                |at| at,
            ))
        };
        let got: Vec<i64> = read(4).unwrap().into_iter().flatten().collect();
        assert_eq!(got, items, "every item once, in order");
        assert_eq!(read(3).unwrap_err(), t(7), "three items in one millisecond");
    }

    #[test]
    fn plans_on_the_grid() {
        let day = Duration::days(1);
        let from = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 3, 3, 6, 0, 0).unwrap();
        let w = plan(from, to, day);
        assert_eq!(w.len(), 3);
        assert_eq!(
            w[0].start,
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(w[2].end, to);
        assert_eq!(w[0].end - w[0].start, day);
    }

    proptest! {
        #[test]
        fn plan_covers_exactly(from in 0i64..4_000_000_000_000, len in 0i64..900_000_000, step_h in 1i64..48) {
            let step = Duration::hours(step_h);
            let (f, to) = (t(from), t(from + len));
            let w = plan(f, to, step);
            if len == 0 { prop_assert!(w.is_empty()); } else {
                prop_assert!(w[0].start <= f);
                prop_assert_eq!(w.last().unwrap().end, to);
                for pair in w.windows(2) { prop_assert_eq!(pair[0].end, pair[1].start); }
                for x in &w { prop_assert_eq!(align_down(x.start, step), x.start); }
            }
        }

        #[test]
        fn split_is_contiguous_and_bounded(start in 0i64..1_000_000_000, len in 0i64..100_000_000, max in 1i64..10_000_000) {
            let parts = split(t(start), t(start + len), Duration::milliseconds(max));
            let mut at = t(start);
            for (s, e) in &parts {
                prop_assert_eq!(*s, at);
                prop_assert!(*e - *s <= Duration::milliseconds(max) && *e > *s);
                at = *e;
            }
            prop_assert_eq!(at, t(start + len));
        }
    }
}
