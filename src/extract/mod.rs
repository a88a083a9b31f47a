//! The boundary between ccetl and a source system: what a source implements ([`Source`],
//! described by its [`SourceKind`]), and what it is given to run its windows ([`SourceRun`]:
//! plan, drive, audio copy, commit), with the errors both speak ([`RunError`],
//! [`SourceFailure`]) and the checks a kind's config parser shares ([`fields`]).
//!
//! It depends only downward (sink, state, http, report, window): the registry
//! (`source::KINDS`), the config parser and the pipeline build on it, so a source's
//! directory imports this module and nothing above it.

mod commit;
mod error;
pub mod fields;
mod kind;
mod run;
mod stages;
pub mod webhooks;

pub use commit::WindowOutput;
pub use error::{RunError, SourceFailure, SystemFailure};
pub(crate) use kind::parse_as;
pub use kind::{CallsSql, Counter, ObjectsTable, RecordingsTable, SourceKind, ViewSql};
pub use run::{RunSettings, SourceRun};
pub use stages::{Listing, ReadWindow, WindowStages};
pub use webhooks::Webhooks;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::auth::login::LoginClient;
use crate::auth::shared::SharedTokens;
use crate::auth::{TokenStore, Tokens};
use crate::error::ErrorKind;
use crate::report::SourceReport;
use crate::state::State;
use crate::window::Window;

/// A configured source at run time: what the pipeline, `ccetl check` and `ccetl auth
/// status` ask of it. Each kind's validated config implements it; the pipeline holds them
/// as the config's `SourceConfig` (a [`DynSource`]), so nothing outside a
/// source's directory matches on its kind.
pub trait Source: fmt::Debug + Send + Sync + Any {
    /// Its `name`: state, manifests and audio keys are kept under it.
    fn name(&self) -> &str;
    /// Its API budget in requests per minute, which a dry run's estimate divides by.
    fn requests_per_minute(&self) -> Option<f64>;
    /// The budget it shares with every source under the same credential, for `ccetl plan`:
    /// one scheduler pool per key. One shard at a time unless the kind says otherwise.
    fn budget(&self) -> Budget {
        Budget {
            key: self.name().to_string(),
            shards_at_once: 1,
        }
    }
    /// The API's base URL, without credentials: where its runs read (`ccetl describe`, for
    /// lineage).
    fn api(&self) -> Option<String> {
        None
    }
    /// Connects, then extracts and commits the windows `run` plans
    /// ([`SourceRun::plan`], [`SourceRun::drive`]).
    fn run(
        &self,
        run: &SourceRun<'_>,
        report: &mut SourceReport,
    ) -> impl Future<Output = Result<(), RunError>> + Send;
    /// For `ccetl check`: one cheap request proving the credentials and the API work.
    fn check(
        &self,
        ctx: &CheckContext<'_>,
    ) -> impl Future<Output = Result<Checked, SourceFailure>> + Send;
    /// For `ccetl auth status`: what credentials it uses and how long they last.
    fn credentials(&self, ctx: &CheckContext<'_>) -> Result<String, SourceFailure>;
    /// For `ccetl auth login|import`: its OAuth2 integration, if it signs in through a
    /// browser.
    fn login(&self) -> Option<LoginClient<'_>> {
        None
    }
    /// For `ccetl serve`, `subscribe` and `subscriptions`: its webhooks, if its system
    /// pushes events.
    fn webhooks(&self) -> Option<&dyn Webhooks> {
        None
    }
    /// For `ccetl reparse`: committed window `w` again, every table as it holds it but the
    /// rows the source derives from objects it stored, derived anew from those objects
    /// (Webex: transcripts split into messages), with no API request. `None` when the source
    /// derives no rows from objects (or the window was never committed).
    fn reparse<'a>(&'a self, run: &'a SourceRun<'_>, w: Window) -> Option<Reparsing<'a>> {
        let _ = (run, w);
        None
    }
}

/// A window's re-derived output ([`Source::reparse`]): `None` when the window holds nothing
/// to commit.
pub type Reparsing<'a> = BoxFuture<'a, Result<Option<WindowOutput>, SourceFailure>>;

/// [`Source`] as a trait object: its futures boxed, one allocation per source per run
/// (each window's stages still run monomorphised, see [`WindowStages`]).
pub trait DynSource: fmt::Debug + Send + Sync + Any {
    /// [`Source::name`].
    fn name(&self) -> &str;
    /// [`Source::requests_per_minute`].
    fn requests_per_minute(&self) -> Option<f64>;
    /// [`Source::budget`].
    fn budget(&self) -> Budget;
    /// [`Source::api`].
    fn api(&self) -> Option<String>;
    /// [`Source::run`].
    fn run<'a>(
        &'a self,
        run: &'a SourceRun<'_>,
        report: &'a mut SourceReport,
    ) -> BoxFuture<'a, Result<(), RunError>>;
    /// [`Source::check`].
    fn check<'a>(
        &'a self,
        ctx: &'a CheckContext<'_>,
    ) -> BoxFuture<'a, Result<Checked, SourceFailure>>;
    /// [`Source::credentials`].
    fn credentials(&self, ctx: &CheckContext<'_>) -> Result<String, SourceFailure>;
    /// [`Source::login`].
    fn login(&self) -> Option<LoginClient<'_>>;
    /// [`Source::webhooks`].
    fn webhooks(&self) -> Option<&dyn Webhooks>;
    /// [`Source::reparse`].
    fn reparse<'a>(&'a self, run: &'a SourceRun<'_>, w: Window) -> Option<Reparsing<'a>>;
}

impl<T: Source> DynSource for T {
    fn name(&self) -> &str {
        Source::name(self)
    }

    fn requests_per_minute(&self) -> Option<f64> {
        Source::requests_per_minute(self)
    }

    fn budget(&self) -> Budget {
        Source::budget(self)
    }

    fn api(&self) -> Option<String> {
        Source::api(self)
    }

    fn run<'a>(
        &'a self,
        run: &'a SourceRun<'_>,
        report: &'a mut SourceReport,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(Source::run(self, run, report))
    }

    fn check<'a>(
        &'a self,
        ctx: &'a CheckContext<'_>,
    ) -> BoxFuture<'a, Result<Checked, SourceFailure>> {
        Box::pin(Source::check(self, ctx))
    }

    fn credentials(&self, ctx: &CheckContext<'_>) -> Result<String, SourceFailure> {
        Source::credentials(self, ctx)
    }

    fn login(&self) -> Option<LoginClient<'_>> {
        Source::login(self)
    }

    fn webhooks(&self) -> Option<&dyn Webhooks> {
        Source::webhooks(self)
    }

    fn reparse<'a>(&'a self, run: &'a SourceRun<'_>, w: Window) -> Option<Reparsing<'a>> {
        Source::reparse(self, run, w)
    }
}

/// An API budget shared by every source under one credential (the pacer's key), and how
/// many shards of a backfill may use it at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The credential's key: the same for sources that share a budget.
    pub key: String,
    /// Shards that may run at once: more only where they speed something up.
    pub shards_at_once: usize,
}

/// What a source's check may read.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    /// The pipeline file, for advice naming the command to run.
    pub pipeline: &'a Path,
    /// The source's state (stored tokens).
    pub state: &'a Arc<State>,
    /// The token store workers share, when the pipeline has one.
    pub token_store: Option<&'a SharedTokens>,
    /// The time the check runs at (token expiry is measured against it).
    pub now: chrono::DateTime<chrono::Utc>,
}

impl CheckContext<'_> {
    /// Where the source's OAuth tokens are kept (see [`SourceRun::tokens`]).
    pub fn tokens(&self) -> Arc<dyn TokenStore> {
        Arc::new(Tokens::new(self.state.clone(), self.token_store.cloned()))
    }
}

/// A check that passed: its line, and warnings to print beside it.
#[derive(Debug, Default)]
pub struct Checked {
    /// What was proven, printed after `ok`.
    pub line: String,
    /// What the user should act on soon (a refresh token about to expire).
    pub warnings: Vec<String>,
}

impl From<String> for Checked {
    fn from(line: String) -> Self {
        Checked {
            line,
            warnings: Vec::new(),
        }
    }
}

/// A source system's own error: the pipeline carries it as a [`SourceFailure`] and reads
/// its kind for the exit code.
pub trait SystemError: std::error::Error + Send + Sync + 'static {
    /// What the user does about it (the exit code).
    fn kind(&self) -> ErrorKind;
}
