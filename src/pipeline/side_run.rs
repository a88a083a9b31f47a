//! A run of one source outside `ccetl run` (the webhook receiver's batches, `ccetl
//! reparse`): its own row in the run ledger, the source's lease on a shared warehouse (so it
//! never commits a window another worker's run is writing), and the settings a `SourceRun`
//! needs. The caller holds the state's run lock.

use std::sync::Arc;

use chrono::Utc;

use super::{open_states, settings, RunOptions};
use crate::auth::shared::SharedTokens;
use crate::config::{PipelineConfig, SourceConfig};
use crate::extract::{RunError, RunSettings, SourceRun};
use crate::sink::fence::Fence;
use crate::sink::Warehouse;
use crate::state::State;

/// A begun side run: [`SideRun::run`] for the work, then [`SideRun::end`].
pub(super) struct SideRun<'a> {
    src: &'a SourceConfig,
    wh: &'a Warehouse,
    state: Arc<State>,
    fences: Vec<(String, Arc<Fence>)>,
    run_id: i64,
    settings: RunSettings,
}

impl<'a> SideRun<'a> {
    /// Opens the source's state, takes its lease on a shared warehouse, and records the run
    /// as begun.
    pub(super) async fn begin(
        cfg: &PipelineConfig,
        wh: &'a Warehouse,
        src: &'a SourceConfig,
        token_store: Option<SharedTokens>,
    ) -> Result<Self, RunError> {
        let state = open_states(cfg, &[src.name()])?[src.name()].clone();
        let opts = RunOptions::default();
        let fences = match wh.is_shared() {
            true => super::leases::take(wh, &[src], &opts).await?,
            false => Vec::new(),
        };
        let run_id = state.begin_run(&cfg.name)?;
        Ok(SideRun {
            src,
            wh,
            state,
            fences,
            run_id,
            settings: settings(cfg, &opts, Utc::now(), token_store),
        })
    }

    /// What the source's work is given.
    pub(super) fn run(&self) -> SourceRun<'_> {
        SourceRun::new(
            &self.settings,
            self.src.source_kind(),
            self.src.name(),
            &self.state,
            self.wh,
            self.run_id,
            self.fences.first().map(|(_, f)| f.as_ref()),
        )
    }

    /// Gives the lease back and records how the run ended, with `report` in the ledger.
    pub(super) async fn end(self, ok: bool, report: serde_json::Value) -> Result<(), RunError> {
        super::leases::give_back(self.wh, &self.fences).await;
        let status = if ok { "succeeded" } else { "failed" };
        self.state
            .finish_run(self.run_id, status, &report.to_string())?;
        Ok(())
    }
}
