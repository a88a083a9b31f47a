//! Paging: by time for a listing that has no cursor, only a time range and a page size
//! (`/v1/tasks`, [`by_time`]); by cursor for one that has ([`by_cursor`], the Search API).
//!
//! By time:
//! Each full page moves `from` to just before the last time seen, so items sharing that
//! millisecond are read again rather than skipped whichever way the API treats `from`, and
//! ids already seen are dropped. Once a page shows that `from` is inclusive (it holds an item
//! from that very millisecond), `from` moves to the last time itself: re-reading two
//! milliseconds per page could otherwise stall a listing whose pages are small. A full page
//! from a single millisecond cannot move `from`: the page is widened instead, and at the
//! API's largest page the listing stops with [`PageLoop`] rather than asking forever.
//! A fetch may take a smaller page than asked (the API refused the size, `/v1/tasks`' 413):
//! it says so, and no larger page is asked for after.
//!
//! Both return the whole listing rather than a stream, on purpose: a Search range is
//! accepted only once all of it is read (a listing that reaches the record cap was cut
//! silently, and its range is halved and read again), and a window's read needs all its
//! tasks anyway (its task table, the tasks its files settle). A stream would hold the same
//! items; the memory of listing ahead is bounded where windows are read
//! (`extract::stages`' `LIST_AHEAD_MAX_TASKS`).

use std::collections::{HashMap, HashSet};
use std::future::Future;

/// Page sizes for [`by_time`].
#[derive(Debug, Clone, Copy)]
pub struct PageSizes {
    /// The size asked for normally.
    pub normal: u32,
    /// The largest the API accepts.
    pub max: u32,
}

/// More items share one millisecond than the largest page holds.
#[derive(Debug, thiserror::Error)]
#[error("more than {count} items created at {at} ms, the API's largest page")]
pub struct PageLoop {
    /// Items seen at that millisecond.
    pub count: usize,
    /// The millisecond (epoch ms).
    pub at: i64,
}

/// Every item with `start <= time < end`, each once, in the API's order. `fetch(from, to,
/// size)` asks for a page and gives its items and the page size it was read with (at most
/// `size`); `key` gives an item's time (epoch ms) and id.
///
/// Pages come in time order, so only items at or after the next `from` can come back on a
/// later page: their ids are all that is remembered (a few per page, not every id of the
/// listing, which cost a hashed and allocated id per item).
pub async fn by_time<T, E, F, Fut>(
    (start, end): (i64, i64),
    mut sizes: PageSizes,
    mut fetch: F,
    key: impl Fn(&T) -> (i64, &str),
) -> Result<Vec<T>, E>
where
    F: FnMut(i64, i64, u32) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, u32), E>>,
    E: From<PageLoop>,
{
    // Ids read at or after `from`, with their times; and the latest time read.
    let mut recent: HashMap<String, i64> = HashMap::new();
    let mut read_to = i64::MIN;
    let mut out = Vec::new();
    let mut from = start - 1;
    let mut size = sizes.normal;
    let mut inclusive = false;
    loop {
        let (page, used) = fetch(from, end, size).await?;
        if used < size {
            // The API took no more than `used`: never ask it for more.
            sizes.max = used.max(1);
            sizes.normal = sizes.normal.min(sizes.max);
            size = sizes.max;
        }
        let n = page.len();
        let last = page.iter().map(|i| key(i).0).fold(from, i64::max);
        inclusive |= page.iter().any(|i| key(i).0 == from);
        let next = if inclusive { last } else { last - 1 };
        for item in page {
            let (at, id) = key(&item);
            // Behind `from` was read in full before; up to `read_to`, only `recent` can be.
            let repeat = at < from || (at <= read_to && recent.contains_key(id));
            if repeat || at < start || at >= end {
                continue;
            }
            if at >= next {
                recent.insert(id.to_string(), at);
            }
            out.push(item);
        }
        // What the next request can hand back again: items at or after `next` (or after
        // `from`, when the page is widened instead; `next` is then no later).
        recent.retain(|_, at| *at >= next);
        read_to = read_to.max(last);
        if n < size as usize {
            return Ok(out);
        }
        if next > from {
            from = next;
            size = sizes.normal;
        } else if size < sizes.max {
            size = size.saturating_mul(2).min(sizes.max);
        } else {
            return Err(PageLoop { count: n, at: last }.into());
        }
    }
}

/// A cursor-paged listing handed back a cursor it had already given: following it would
/// read the same pages forever.
#[derive(Debug, thiserror::Error)]
#[error("the API handed back cursor '{0}' a second time; following it would loop")]
pub struct CursorLoop(pub String);

/// Every item of a cursor-paged listing, in the API's order. `fetch(cursor)` asks for a
/// page and gives its items and the next cursor (`None` after the last page).
pub async fn by_cursor<T, E, F, Fut>(first: &str, mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), E>>,
    E: From<CursorLoop>,
{
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut cursor = first.to_string();
    loop {
        let (items, next) = fetch(cursor).await?;
        out.extend(items);
        match next {
            None => return Ok(out),
            Some(c) if !seen.insert(c.clone()) => return Err(CursorLoop(c).into()),
            Some(c) => cursor = c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn by_cursor_follows_cursors_and_stops_a_loop() {
        let pages = |c: String| async move {
            Ok::<_, CursorLoop>(match c.as_str() {
                "0" => (vec![1, 2], Some("a".to_string())),
                "a" => (vec![3], Some("b".to_string())),
                _ => (vec![4], None),
            })
        };
        let all = futures::executor::block_on(by_cursor("0", pages)).unwrap();
        assert_eq!(all, vec![1, 2, 3, 4]);
        let looping = |c: String| async move {
            Ok::<_, CursorLoop>((vec![c.len()], Some(if c == "x" { "y" } else { "x" }.into())))
        };
        let e = futures::executor::block_on(by_cursor("0", looping)).unwrap_err();
        assert_eq!(e.0, "x");
    }

    /// A listing API over `items` (time, id), sorted by time then id, treating `from` and
    /// `to` as inclusive or exclusive.
    fn api(
        items: &[(i64, String)],
        from: i64,
        to: i64,
        size: u32,
        from_incl: bool,
        to_incl: bool,
    ) -> Vec<(i64, String)> {
        let mut sorted = items.to_vec();
        sorted.sort();
        sorted
            .into_iter()
            .filter(|(t, _)| if from_incl { *t >= from } else { *t > from })
            .filter(|(t, _)| if to_incl { *t <= to } else { *t < to })
            .take(size as usize)
            .collect()
    }

    fn run(
        items: &[(i64, String)],
        range: (i64, i64),
        sizes: PageSizes,
        incl: (bool, bool),
    ) -> (Result<Vec<(i64, String)>, PageLoop>, usize) {
        run_limited(items, range, sizes, incl, u32::MAX)
    }

    fn run_limited(
        items: &[(i64, String)],
        range: (i64, i64),
        sizes: PageSizes,
        incl: (bool, bool),
        limit: u32,
    ) -> (Result<Vec<(i64, String)>, PageLoop>, usize) {
        let mut requests = 0;
        let result = futures::executor::block_on(by_time(
            range,
            sizes,
            |from, to, size| {
                requests += 1;
                assert!(requests < 100_000, "the pager does not terminate");
                // An API that refuses pages larger than `limit` (413) and a fetch that halves.
                let mut used = size;
                while used > limit {
                    used /= 2;
                }
                let page = api(items, from, to, used.max(1), incl.0, incl.1);
                async move { Ok::<_, PageLoop>((page, used.max(1))) }
            },
            |(t, id): &(i64, String)| (*t, id.as_str()),
        ));
        (result, requests)
    }

    proptest! {
        /// Whatever the page size, the clustering of times and the API's view of its range
        /// bounds, every item in range comes back exactly once; or, when more items share a
        /// millisecond than the largest page holds, the pager says so instead of looping.
        #[test]
        fn every_item_once_or_a_clear_stop(
            times in proptest::collection::vec(0i64..40, 0..120),
            normal in 1u32..12,
            extra in 0u32..3,
            lo in 0i64..10,
            span in 1i64..45,
            incl in (any::<bool>(), any::<bool>()),
        ) {
            let items: Vec<(i64, String)> =
                times.iter().enumerate().map(|(i, t)| (*t, format!("id{i:03}"))).collect();
            let sizes = PageSizes { normal, max: normal << extra };
            let (lo, hi) = (lo, lo + span);
            let (result, requests) = run(&items, (lo, hi), sizes, incl);
            let mut want: Vec<(i64, String)> =
                items.iter().filter(|(t, _)| *t >= lo && *t < hi).cloned().collect();
            want.sort();
            let densest = (lo - 1..=hi)
                .map(|ms| items.iter().filter(|(t, _)| *t == ms).count())
                .max()
                .unwrap_or(0);
            match result {
                Ok(mut got) => {
                    got.sort();
                    prop_assert_eq!(got, want);
                }
                Err(e) => prop_assert!(
                    densest >= sizes.max as usize,
                    "stopped ({e}) though no millisecond holds {} items", sizes.max
                ),
            }
            // Each request moves `from` past an item or widens the page: bounded.
            let reachable = items.iter().filter(|(t, _)| *t >= lo - 1 && *t <= hi).count();
            prop_assert!(requests <= (reachable + 2) * (extra as usize + 2), "{requests} requests");
        }
    }

    #[test]
    fn pages_ending_on_the_range_end_and_an_empty_range() {
        let items: Vec<(i64, String)> = (0..6).map(|i| (i, format!("id{i}"))).collect();
        let sizes = PageSizes { normal: 2, max: 2 };
        // Exclusive `from`: [0,1] [1,2] [2,3] [3,4] [4,5] [5] — the last page is short.
        let (result, requests) = run(&items, (0, 6), sizes, (false, false));
        assert_eq!(result.unwrap().len(), 6);
        assert_eq!(requests, 6);
        // Inclusive `from` learnt from the second page, then one millisecond re-read per page.
        let (result, requests) = run(&items, (0, 6), sizes, (true, false));
        assert_eq!(result.unwrap().len(), 6);
        assert_eq!(requests, 7);
        let (result, requests) = run(&items, (7, 9), sizes, (true, true));
        assert!(result.unwrap().is_empty());
        assert_eq!(requests, 1);
    }

    #[test]
    fn two_busy_milliseconds_in_a_row_do_not_stall_an_inclusive_api() {
        let items: Vec<(i64, String)> = ["0a", "0b", "1a", "1b", "2a"]
            .iter()
            .map(|id| (id[..1].parse().unwrap(), id.to_string()))
            .collect();
        let sizes = PageSizes { normal: 2, max: 4 };
        let (result, _) = run(&items, (0, 3), sizes, (true, false));
        assert_eq!(result.unwrap().len(), 5);
    }

    #[test]
    fn a_smaller_page_than_asked_is_not_taken_for_the_last() {
        let items: Vec<(i64, String)> = (0..40).map(|i| (i, format!("id{i:02}"))).collect();
        let sizes = PageSizes {
            normal: 16,
            max: 32,
        };
        for incl in [(false, false), (true, false)] {
            let (result, requests) = run_limited(&items, (0, 40), sizes, incl, 5);
            assert_eq!(result.unwrap().len(), 40, "{incl:?}");
            assert!(requests >= 40 / 4, "pages of 4: {requests}");
        }
    }

    #[test]
    fn too_many_in_one_millisecond_stops_with_page_loop() {
        let items: Vec<(i64, String)> = (0..9).map(|i| (5, format!("id{i}"))).collect();
        let sizes = PageSizes { normal: 2, max: 8 };
        let (result, _) = run(&items, (0, 10), sizes, (true, false));
        let e = result.unwrap_err();
        assert_eq!((e.count, e.at), (8, 5));
    }
}
