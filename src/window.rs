//! Time windows: the planner and the splitter, used by every source.
//!
//! Windows sit on a fixed UTC grid (`pipeline.window`), so a window always has the same
//! start whichever run reads it, and its files keep the same names: re-reading replaces.

use chrono::{DateTime, Duration, TimeZone, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: DateTime<Utc>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
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
