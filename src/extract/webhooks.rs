//! Sources that push: what `ccetl serve`, `ccetl subscribe` and `ccetl subscriptions` ask
//! of a source whose system announces new recordings by webhook. The receiver, its durable
//! queue and the batching are ccetl's (`serve/`); checking a delivery, committing what it
//! announced and managing the system's subscription are the source's ([`Webhooks`]).

use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{RunError, SourceFailure, SourceRun};
use crate::auth::TokenStore;
use crate::report::SourceReport;
use crate::secret::Secret;

/// Why a delivery or a destination was refused, in the source's own words.
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;

/// A verified event: a contact whose recording is ready to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's id: deliveries are retried, so it deduplicates them.
    pub id: String,
    /// The contact (task, call) whose recording is ready.
    pub task_id: String,
    /// When the recording became available (epoch ms); the contact began before it.
    pub created_ms: i64,
    /// When this receiver took it (epoch ms).
    pub received_ms: i64,
}

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A recording is ready.
    Ready(Event),
    /// Another event type (answered 2xx so the subscription stays healthy, then dropped).
    Ignored(String),
}

/// A subscription as the system lists it (its secret is never returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The subscription's id.
    pub id: String,
    /// Its name ([`subscription_name`] for ccetl's own).
    pub name: String,
    /// What it delivers.
    pub event_types: Vec<String>,
    /// Where it delivers.
    pub destination_url: String,
    /// The event payload version, where the system has one.
    pub resource_version: Option<String>,
    /// `active` or `inactive`, as the system reports.
    pub status: Option<String>,
}

/// Whether subscribing registered a new subscription or brought ccetl's up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No subscription had the name.
    Created,
    /// One had it and was changed to match.
    Updated,
}

/// The name ccetl gives a source's subscription, so subscribing again finds and updates it
/// instead of adding a second (at most 64 characters, as Webex wants).
pub fn subscription_name(pipeline: &str, source: &str) -> String {
    format!("ccetl {pipeline}/{source}")
        .chars()
        .take(64)
        .collect()
}

/// A source whose system pushes events. Its config's `webhook_secret` signs deliveries.
pub trait Webhooks: Send + Sync {
    /// The path `ccetl serve` receives deliveries on (e.g. `/webhooks/wxcc`).
    fn path(&self) -> &'static str;
    /// The event type that announces a recording, for messages.
    fn event_type(&self) -> &'static str;
    /// The secret deliveries are signed with; `None` when the config has none.
    fn secret(&self) -> Option<&Secret>;
    /// Checks a delivery (signature, freshness, shape) before anything is recorded.
    fn verify(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Verdict, Refusal>;
    /// Commits the recordings of the contacts `ids` (began within `range`) into their
    /// windows; returns the ids found (the others are not visible to the API yet).
    fn commit<'a>(
        &'a self,
        run: &'a SourceRun<'_>,
        ids: &'a [String],
        range: (DateTime<Utc>, DateTime<Utc>),
        report: &'a mut SourceReport,
    ) -> BoxFuture<'a, Result<Vec<String>, RunError>>;
    /// Refuses a destination the system would refuse, before asking it.
    fn check_destination(&self, url: &str) -> Result<url::Url, Refusal>;
    /// Registers the subscription `name`, or updates it to deliver to `destination`,
    /// signed with `secret` ([`Self::secret`]).
    fn subscribe<'a>(
        &'a self,
        tokens: Arc<dyn TokenStore>,
        name: &'a str,
        destination: &'a url::Url,
        secret: &'a Secret,
    ) -> BoxFuture<'a, Result<(Subscription, Outcome), SourceFailure>>;
    /// Every subscription of the account, ccetl's or not.
    fn subscriptions(
        &self,
        tokens: Arc<dyn TokenStore>,
    ) -> BoxFuture<'_, Result<Vec<Subscription>, SourceFailure>>;
    /// Deletes subscription `id`.
    fn unsubscribe<'a>(
        &'a self,
        tokens: Arc<dyn TokenStore>,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), SourceFailure>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_name_is_the_pipeline_and_source_cut_to_64_characters() {
        assert_eq!(subscription_name("acme", "wxcc-us1"), "ccetl acme/wxcc-us1");
        assert_eq!(subscription_name(&"p".repeat(80), "s").chars().count(), 64);
    }
}
