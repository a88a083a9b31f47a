//! One source's part of a run ([`SourceRun`]) and what the pipeline decided for every
//! source of it ([`RunSettings`]).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::commit;
use super::{RunError, SourceFailure, SourceKind, WindowOutput};
use crate::auth::shared::SharedTokens;
use crate::auth::{TokenStore, Tokens};
use crate::report::{SourceReport, WindowReport};
use crate::sink::audio_copy::AudioCopy;
use crate::sink::fence::Fence;
use crate::sink::lease::LeaseError;
use crate::sink::table::TableFormat;
use crate::sink::Warehouse;
use crate::state::State;
use crate::window::{self, Window};

/// What the pipeline decided for every source of a run: the windows' grid and range, and
/// how windows are written. The pipeline builds it from its file and the run's flags, so a
/// source reads no pipeline config.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The length of one window.
    pub window: Duration,
    /// How far behind the watermark a run starts again.
    pub lookback: Duration,
    /// How far behind now the newest window ends.
    pub settle: Duration,
    /// Where the first run starts; `None`: 7 days back.
    pub start: Option<DateTime<Utc>>,
    /// `--since`: the first window, whatever the watermark.
    pub since: Option<DateTime<Utc>>,
    /// `--until`: the last window's end (never past now - settle).
    pub until: Option<DateTime<Utc>>,
    /// The run's now.
    pub now: DateTime<Utc>,
    /// Plan and estimate only.
    pub dry_run: bool,
    /// This run's share of each source's request budget (`None`: all of it).
    pub rate_share: Option<f64>,
    /// Above this many tasks in a window, the next window is not listed beside its read
    /// (`None`: the default); tests set it low.
    pub list_ahead_max_tasks: Option<usize>,
    /// What a window's files are committed into.
    pub table_format: TableFormat,
    /// The token store workers share (`token_store`), when the pipeline has one.
    pub token_store: Option<SharedTokens>,
}

impl RunSettings {
    /// The windows a run reads for a stream whose watermark is `high_water`.
    pub fn windows(&self, high_water: Option<DateTime<Utc>>) -> Vec<Window> {
        let from = match (self.since, high_water) {
            (Some(s), _) => s,
            (None, Some(hw)) => hw - self.lookback,
            (None, None) => self.start.unwrap_or(self.now - Duration::days(7)),
        };
        // Never read past now - settle (Airbyte #70341), even when --until asks for more.
        let settled = self.now - self.settle;
        let to = self.until.map_or(settled, |u| u.min(settled));
        window::plan(from, to, self.window)
    }
}

/// One source's part of a run: what every window of it needs to know, and what a source's
/// [`Source::run`](super::Source::run) calls to plan, drive and commit its windows.
pub struct SourceRun<'a> {
    pub(super) settings: &'a RunSettings,
    pub(super) kind: &'static SourceKind,
    pub(super) name: &'a str,
    pub(super) state: &'a Arc<State>,
    pub(super) wh: &'a Warehouse,
    pub(super) run_id: i64,
    /// The source's lease on a shared warehouse, checked before each commit.
    pub(super) fence: Option<&'a Fence>,
}

impl<'a> SourceRun<'a> {
    /// Source `name`'s (of `kind`) part of run `run_id`.
    pub fn new(
        settings: &'a RunSettings,
        kind: &'static SourceKind,
        name: &'a str,
        state: &'a Arc<State>,
        wh: &'a Warehouse,
        run_id: i64,
        fence: Option<&'a Fence>,
    ) -> Self {
        SourceRun {
            settings,
            kind,
            name,
            state,
            wh,
            run_id,
            fence,
        }
    }

    /// The source's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Its state: stored tokens, the egress ledger.
    pub fn state(&self) -> &'a Arc<State> {
        self.state
    }

    /// The warehouse its windows are committed to.
    pub fn warehouse(&self) -> &'a Warehouse {
        self.wh
    }

    /// Where its OAuth tokens are kept: its state, and the store workers share if any.
    pub fn tokens(&self) -> Arc<dyn TokenStore> {
        Arc::new(Tokens::new(
            self.state.clone(),
            self.settings.token_store.clone(),
        ))
    }

    /// The stream its windows are kept under.
    pub fn stream(&self) -> &'static str {
        self.kind.stream
    }

    /// Audio bytes this source downloaded after `since`, for a cap over a rolling period:
    /// this worker's ledger, or on a shared warehouse what every worker's commits counted
    /// in the checkpoint, if more (a worker's disk knows only its own downloads, the
    /// checkpoint only committed ones).
    pub async fn egress_since(&self, since: DateTime<Utc>) -> Result<u64, RunError> {
        let local = self.state.egress_since(self.name, since)?;
        if !self.wh.is_shared() {
            return Ok(local);
        }
        let path = crate::sink::checkpoint::path_of(self.wh, self.name, self.kind.stream);
        let shared = crate::sink::checkpoint::read(self.wh.store().as_ref(), &path)
            .await?
            .map_or(0, |cp| cp.egress_since(since.timestamp_millis()));
        Ok(local.max(shared))
    }

    /// `Ok` unless this run's lease on the source (a shared warehouse) may be another's now:
    /// then it must not commit.
    pub(super) fn check_lease(&self) -> Result<(), LeaseError> {
        self.fence.map_or(Ok(()), Fence::check)
    }

    /// This run's share of the source's request budget (1: all of it).
    pub fn rate_share(&self) -> f64 {
        self.settings.rate_share.unwrap_or(1.0)
    }

    /// The pipeline's window length.
    pub fn window_step(&self) -> Duration {
        self.settings.window
    }

    /// The error for a failure, located in its window (not for credentials: there it is noise).
    pub fn fail(&self, w: Option<&Window>, error: SourceFailure) -> RunError {
        let window = match w {
            Some(w) if !error.is_auth() => {
                format!(", window {}..{}", w.start.to_rfc3339(), w.end.to_rfc3339())
            }
            _ => String::new(),
        };
        RunError::Source {
            source_name: self.name.to_string(),
            window,
            error: Box::new(error),
        }
    }

    /// Commits one window outside [`SourceRun::drive`] (what events announced): it never
    /// moves the watermark.
    pub async fn commit(
        &self,
        w: Window,
        out: WindowOutput,
    ) -> Result<WindowReport, SourceFailure> {
        Ok(commit::load(self, w, None, out).await?.0)
    }

    /// The audio settings of the source's windows (see [`crate::sink::audio_copy`]).
    pub fn audio_copy(
        &self,
        copy_audio: bool,
        concurrency: usize,
        count_egress: bool,
    ) -> AudioCopy<'_> {
        AudioCopy {
            state: self.state,
            wh: self.wh,
            source: self.name,
            copy_audio,
            concurrency,
            count_egress,
        }
    }

    /// The windows to read; `None` on a dry run, whose report then lists them.
    pub fn plan(&self, report: &mut SourceReport) -> Result<Option<Vec<Window>>, RunError> {
        let hw = self.state.high_water(self.name, self.kind.stream)?;
        let windows = self.settings.windows(hw);
        tracing::info!(source = %self.name, windows = windows.len(), high_water = ?hw, "Planned windows.");
        if !self.settings.dry_run {
            return Ok(Some(windows));
        }
        report.windows = windows
            .iter()
            .map(|w| WindowReport {
                start: w.start,
                end: w.end,
                ..Default::default()
            })
            .collect();
        Ok(None)
    }
}
