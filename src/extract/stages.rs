//! The stages of a source's run, pipelined across windows: while window N is finished and
//! committed, N+1 is read and N+2 listed, so the API is kept busy while the warehouse is
//! written, and commits still happen in window order.

use std::future::Future;

use futures::future::Either;

use super::{commit, RunError, SourceFailure, SourceRun, WindowOutput};
use crate::report::SourceReport;
use crate::window::Window;

/// Tasks a window being read may hold for the next window to be listed beside that read.
/// Above it, each window is listed at the start of its own read instead: with one-day
/// windows of ~100,000 calls, a third window's listing held ~60 MB (issue 8, figure 3),
/// and windows that size take long enough to read that listing first costs little.
pub(super) const LIST_AHEAD_MAX_TASKS: usize = 50_000;

/// A window's listing, as far as the pipeline needs to know it.
pub trait Listing {
    /// How many tasks it holds: what a window's memory grows with.
    fn tasks(&self) -> usize;
}

impl Listing for () {
    fn tasks(&self) -> usize {
        0
    }
}

/// A source's work on one window, in the three stages [`SourceRun::drive`] overlaps across
/// windows. A source whose windows need no listing implements [`ReadWindow`] instead.
pub trait WindowStages: Sync {
    /// What `list` hands `read`.
    type Listing: Listing + Send;
    /// What `read` hands `finish`.
    type Read: Send;
    /// The requests that must go one after another (paging a window's task list).
    fn list(&self, w: Window) -> impl Future<Output = Result<Self::Listing, SourceFailure>> + Send;
    /// The window's records (captures, reports), from its listing.
    fn read(
        &self,
        w: Window,
        listing: Self::Listing,
    ) -> impl Future<Output = Result<Self::Read, SourceFailure>> + Send;
    /// Audio and tables: the window ready to commit.
    fn finish(
        &self,
        w: Window,
        read: Self::Read,
    ) -> impl Future<Output = Result<WindowOutput, SourceFailure>> + Send;
}

/// A source that reads a window in one go: no listing ahead, nothing left to finish.
pub trait ReadWindow: Sync {
    /// The window ready to commit.
    fn read_window(
        &self,
        w: Window,
    ) -> impl Future<Output = Result<WindowOutput, SourceFailure>> + Send;
}

impl<T: ReadWindow> WindowStages for T {
    type Listing = ();
    type Read = WindowOutput;

    fn list(&self, _: Window) -> impl Future<Output = Result<(), SourceFailure>> + Send {
        std::future::ready(Ok(()))
    }

    fn read(
        &self,
        w: Window,
        (): (),
    ) -> impl Future<Output = Result<WindowOutput, SourceFailure>> + Send {
        self.read_window(w)
    }

    fn finish(
        &self,
        _: Window,
        out: WindowOutput,
    ) -> impl Future<Output = Result<WindowOutput, SourceFailure>> + Send {
        std::future::ready(Ok(out))
    }
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
    /// `LIST_AHEAD_MAX_TASKS`): then a window's read lists it first.
    pub async fn drive<S: WindowStages>(
        &self,
        windows: &[Window],
        report: &mut SourceReport,
        stages: &S,
    ) -> Result<(), RunError> {
        let progress = crate::progress::bar(windows.len() as u64, self.name);
        let mut frontier = self.state.high_water(self.name, self.kind.stream)?;
        let mut listed: Option<(Window, S::Listing)> = None;
        let mut extracted: Option<(Window, S::Read)> = None;
        let mut next = windows.iter().copied();
        // The last window read was large: the next one is listed by its own read.
        let mut list_in_read = false;
        let max = self
            .settings
            .list_ahead_max_tasks
            .unwrap_or(LIST_AHEAD_MAX_TASKS);
        // Whether the next window may be listed while this listing's window is read.
        let small = move |y: &S::Listing| y.tasks() <= max;
        let result = loop {
            let to_load = extracted.take().map(|(w, x)| (w, stages.finish(w, x)));
            let (to_read, to_list) = match listed.take() {
                Some((w, y)) => {
                    let small = small(&y);
                    let reading = stages.read(w, y);
                    let reading = async move { Ok::<_, SourceFailure>((reading.await?, small)) };
                    let ahead = if small { next.next() } else { None };
                    (
                        Some((w, Either::Left(reading))),
                        ahead.map(|w| (w, stages.list(w))),
                    )
                }
                None if list_in_read => {
                    let to_read = next.next().map(|w| {
                        let listing = stages.list(w);
                        let reading = async move {
                            let y = listing.await?;
                            let small = small(&y);
                            Ok::<_, SourceFailure>((stages.read(w, y).await?, small))
                        };
                        (w, Either::Right(reading))
                    });
                    (to_read, None)
                }
                None => (None, next.next().map(|w| (w, stages.list(w)))),
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
