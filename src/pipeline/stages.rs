//! The stages of a source's run, pipelined across windows: while window N is finished and
//! committed, N+1 is read and N+2 listed, so the API is kept busy while the warehouse is
//! written, and commits still happen in window order.

use std::future::Future;

use futures::future::Either;

use super::{commit, RunError, SourceFailure, SourceReport, SourceRun, WindowOutput};
use crate::window::Window;

/// Tasks a window being read may hold for the next window to be listed beside that read.
/// Above it, each window is listed at the start of its own read instead: with one-day
/// windows of ~100,000 calls, a third window's listing held ~60 MB (issue 8, figure 3),
/// and windows that size take long enough to read that listing first costs little.
pub(super) const LIST_AHEAD_MAX_TASKS: usize = 50_000;

/// A window's listing, as far as the pipeline needs to know it.
pub(super) trait Listing {
    /// How many tasks it holds: what a window's memory grows with.
    fn tasks(&self) -> usize;
}

impl Listing for () {
    fn tasks(&self) -> usize {
        0
    }
}

/// The `finish` of a source whose read already yields the window's output.
pub(super) fn ready(
    _: Window,
    out: WindowOutput,
) -> std::future::Ready<Result<WindowOutput, SourceFailure>> {
    std::future::ready(Ok(out))
}

/// The `list` of a source whose windows need no listing ahead of their read.
pub(super) fn no_listing(_: Window) -> std::future::Ready<Result<(), SourceFailure>> {
    std::future::ready(Ok(()))
}

/// A pipeline stage's work for one window, if there is a window at that stage.
async fn stage<T>(
    work: Option<(Window, impl Future<Output = Result<T, SourceFailure>>)>,
) -> Option<(Window, Result<T, SourceFailure>)> {
    let (w, f) = work?;
    Some((w, f.await))
}

impl SourceRun<'_> {
    /// Lists, reads, finishes and commits each window in order, stopping at the first
    /// failure. The watermark may only move over windows that follow it without a gap.
    ///
    /// Pipelined: while window N is finished (`finish`: audio, tables) and committed, window
    /// N+1 is read (`read`: captures, reports) and window N+2 listed (`list`: its task pages,
    /// the one stretch of requests that must go one after another). So the API is kept busy
    /// while the warehouse is written. Parquet encoding and the state commit run on the
    /// blocking pool, off this task. Commits happen in window order; at most three windows
    /// are held, one of them only as a listing — two when windows are large (see
    /// [`LIST_AHEAD_MAX_TASKS`]): then a window's read lists it first.
    pub(super) async fn drive<L, LF, Y, R, RF, X, F, FF>(
        &self,
        windows: &[Window],
        report: &mut SourceReport,
        mut list: L,
        mut read: R,
        mut finish: F,
    ) -> Result<(), RunError>
    where
        L: FnMut(Window) -> LF,
        LF: Future<Output = Result<Y, SourceFailure>>,
        Y: Listing,
        R: FnMut(Window, Y) -> RF,
        RF: Future<Output = Result<X, SourceFailure>>,
        F: FnMut(Window, X) -> FF,
        FF: Future<Output = Result<WindowOutput, SourceFailure>>,
    {
        let progress = crate::progress::bar(windows.len() as u64, self.name);
        let mut frontier = self.state.high_water(self.name, self.stream)?;
        let mut listed: Option<(Window, Y)> = None;
        let mut extracted: Option<(Window, X)> = None;
        let mut next = windows.iter().copied();
        // The last window read was large: the next one is listed by its own read.
        let mut list_in_read = false;
        let max = self
            .opts
            .list_ahead_max_tasks
            .unwrap_or(LIST_AHEAD_MAX_TASKS);
        // Whether the next window may be listed while this listing's window is read.
        let small = move |y: &Y| y.tasks() <= max;
        let result = loop {
            let to_load = extracted.take().map(|(w, x)| (w, finish(w, x)));
            let (to_read, to_list) = match listed.take() {
                Some((w, y)) => {
                    let small = small(&y);
                    let reading = read(w, y);
                    let reading = async move { Ok::<_, SourceFailure>((reading.await?, small)) };
                    let ahead = if small { next.next() } else { None };
                    (
                        Some((w, Either::Left(reading))),
                        ahead.map(|w| (w, list(w))),
                    )
                }
                None if list_in_read => {
                    let to_read = next.next().map(|w| {
                        let listing = list(w);
                        let read = &mut read;
                        let reading = async move {
                            let y = listing.await?;
                            let small = small(&y);
                            Ok::<_, SourceFailure>((read(w, y).await?, small))
                        };
                        (w, Either::Right(reading))
                    });
                    (to_read, None)
                }
                None => (None, next.next().map(|w| (w, list(w)))),
            };
            if to_load.is_none() && to_read.is_none() && to_list.is_none() {
                break Ok(());
            }
            let load = async {
                let (w, out) = to_load?;
                let loaded = match out.await {
                    Ok(out) => commit::load(self, w, frontier, out).await,
                    Err(e) => Err(e),
                };
                Some((w, loaded))
            };
            let (loaded, read, listing) = tokio::join!(load, stage(to_read), stage(to_list));
            if let Some((w, loaded)) = loaded {
                match loaded {
                    Ok((wr, advanced)) => {
                        if let Some(a) = advanced {
                            frontier = Some(frontier.map_or(a, |f| f.max(a)));
                        }
                        report.windows.push(wr);
                        progress.inc(1);
                    }
                    // Windows read meanwhile are dropped uncommitted, as a crash would.
                    Err(error) => break Err(self.fail(Some(&w), error)),
                }
            }
            match read {
                Some((w, Ok((x, small)))) => {
                    extracted = Some((w, x));
                    list_in_read = !small;
                }
                Some((w, Err(error))) => break Err(self.fail(Some(&w), error)),
                None => {}
            }
            match listing {
                Some((w, Ok(y))) => listed = Some((w, y)),
                Some((w, Err(error))) => break Err(self.fail(Some(&w), error)),
                None => {}
            }
        };
        progress.finish_and_clear();
        result
    }
}
