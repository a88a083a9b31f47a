//! Webex's `capture:available` webhooks ([`Webhooks`]): deliveries checked as `events`
//! says, subscriptions managed through `/v2/subscriptions`, and the tasks announced looked
//! up through the Search API and merged into the windows they belong to.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::config::WebexConfig;
use super::merge::Previous;
use super::model::Task;
use super::run::{output, Keep};
use super::subscriptions::{self, CAPTURE_AVAILABLE};
use super::{events, search, tables, transcripts, WebexClient};
use crate::auth::TokenStore;
use crate::extract::webhooks::{Outcome, Refusal, Subscription, Verdict, Webhooks};
use crate::extract::{RunError, SourceFailure, SourceRun};
use crate::report::SourceReport;
use crate::secret::Secret;
use crate::window::{self, Window};

impl Webhooks for WebexConfig {
    fn path(&self) -> &'static str {
        "/webhooks/wxcc"
    }

    fn event_type(&self) -> &'static str {
        CAPTURE_AVAILABLE
    }

    fn secret(&self) -> Option<&Secret> {
        self.webhook_secret.as_ref()
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Verdict, Refusal> {
        let secret = self
            .webhook_secret
            .as_ref()
            .ok_or(events::Rejected::Unsigned)?;
        Ok(events::verify(headers, body, secret, now_ms)?)
    }

    fn commit<'a>(
        &'a self,
        run: &'a SourceRun<'_>,
        ids: &'a [String],
        range: (DateTime<Utc>, DateTime<Utc>),
        report: &'a mut SourceReport,
    ) -> BoxFuture<'a, Result<Vec<String>, RunError>> {
        commit_events(run, self, ids, range, report).boxed()
    }

    fn check_destination(&self, url: &str) -> Result<url::Url, Refusal> {
        Ok(subscriptions::check_destination(url)?)
    }

    fn subscribe<'a>(
        &'a self,
        tokens: Arc<dyn TokenStore>,
        name: &'a str,
        destination: &'a url::Url,
        secret: &'a Secret,
    ) -> BoxFuture<'a, Result<(Subscription, Outcome), SourceFailure>> {
        async move {
            let client = WebexClient::connect(self, tokens)?;
            Ok(subscriptions::ensure(&client, name, destination, secret).await?)
        }
        .boxed()
    }

    fn subscriptions(
        &self,
        tokens: Arc<dyn TokenStore>,
    ) -> BoxFuture<'_, Result<Vec<Subscription>, SourceFailure>> {
        async move {
            let client = WebexClient::connect(self, tokens)?;
            Ok(subscriptions::list(&client).await?)
        }
        .boxed()
    }

    fn unsubscribe<'a>(
        &'a self,
        tokens: Arc<dyn TokenStore>,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), SourceFailure>> {
        async move {
            let client = WebexClient::connect(self, tokens)?;
            Ok(subscriptions::delete(&client, id).await?)
        }
        .boxed()
    }
}

/// Commits the tasks events announced: looked up through the Search API (created in
/// `range`), their captures and audio fetched, each added to the grid window it belongs to,
/// merged with what that window holds. Returns the ids committed; an id not found (filtered
/// out, or not searchable yet) is not among them.
async fn commit_events(
    run: &SourceRun<'_>,
    cfg: &WebexConfig,
    ids: &[String],
    range: (DateTime<Utc>, DateTime<Utc>),
    report: &mut SourceReport,
) -> Result<Vec<String>, RunError> {
    let client = WebexClient::connect(cfg, run.tokens()).map_err(|e| run.fail(None, e.into()))?;
    let found = search::tasks_by_id(&client, ids, range.0, range.1)
        .await
        .map_err(|e| run.fail(None, e.into()))?;
    let step = run.window_step();
    let mut by_window: BTreeMap<Window, Vec<Task>> = BTreeMap::new();
    for t in found {
        let created = Utc
            .timestamp_millis_opt(t.attributes.created_time)
            .single()
            .unwrap_or(range.0);
        let start = window::align_down(created, step);
        by_window
            .entry(Window {
                start,
                end: start + step,
            })
            .or_default()
            .push(t);
    }
    let mut committed = Vec::new();
    for (w, tasks) in by_window {
        let ids: HashSet<String> = tasks.iter().map(|t| t.id.clone()).collect();
        let loaded = async {
            let ex = super::with_captures(&client, tasks, &HashSet::new()).await?;
            let tables = [
                tables::TASKS.name,
                tables::CAPTURES.name,
                tables::SEGMENTS.name,
                transcripts::TRANSCRIPTS.name,
                transcripts::MESSAGES.name,
            ];
            let previous =
                Previous::read(run.warehouse(), run.name(), run.stream(), w, &tables).await?;
            let keep = Keep::AllBut(ids.clone());
            let mut out = output(&client, run, ex, previous, keep).await?;
            out.partial = true;
            run.commit(w, out).await
        }
        .await;
        match loaded {
            Ok(wr) => report.windows.push(wr),
            Err(e) => {
                report.record_http(&client.http);
                return Err(run.fail(Some(&w), e));
            }
        }
        committed.extend(ids);
    }
    report.record_http(&client.http);
    Ok(committed)
}
