//! `ccetl subscribe` and `ccetl subscriptions list|delete`: the `capture:available`
//! subscription that makes Webex push each new recording to `ccetl serve`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::usage;
use crate::auth::{TokenStore, Tokens};
use crate::cli::SubscriptionsAction;
use crate::config::{ConfigError, PipelineConfig};
use crate::pipeline;
use crate::serve::ServeOptions;
use crate::source::webex::subscriptions::{self, Outcome};
use crate::source::webex::WebexClient;
use crate::state::State;

/// `ccetl subscribe`: registers or updates the source's `capture:available` subscription.
pub async fn subscribe(path: &Path, source: Option<&str>, url: &str) -> anyhow::Result<()> {
    let destination = subscriptions::check_destination(url).map_err(|m| usage("--url", m))?;
    let (cfg, w, state) = super::webex_source(path, source, "subscribing")?;
    let secret = w.webhook_secret.clone().ok_or_else(|| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: format!("source '{}'.webhook_secret", w.name),
        message: "is required to subscribe: Webex signs every event with it and `ccetl serve` checks it; set webhook_secret = \"${WXCC_WEBHOOK_SECRET}\" (32 to 256 characters, e.g. from `openssl rand -hex 24`)".into(),
    })?;
    let client = WebexClient::connect(&w, tokens(&cfg, state)?)?;
    let name = subscriptions::name_for(&cfg.name, &w.name);
    let (sub, outcome) = subscriptions::ensure(&client, &name, &destination, &secret)
        .await
        .with_context(|| format!("source '{}' (webex)", w.name))?;
    let verb = match outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated (it existed; running subscribe again never adds a second)",
    };
    println!(
        "subscription {} {verb}: {} → {} ({}, {})",
        sub.id,
        sub.event_types.join(","),
        sub.destination_url,
        sub.resource_version.as_deref().unwrap_or("?"),
        sub.status.as_deref().unwrap_or("?"),
    );
    Ok(())
}

/// `ccetl subscriptions list|delete`.
pub async fn subscriptions(action: SubscriptionsAction) -> anyhow::Result<()> {
    let (path, source) = match &action {
        SubscriptionsAction::List { pipeline, source } => (pipeline, source),
        SubscriptionsAction::Delete {
            pipeline, source, ..
        } => (pipeline, source),
    };
    let (cfg, w, state) = super::webex_source(path, source.as_deref(), "a subscription")?;
    let client = WebexClient::connect(&w, tokens(&cfg, state)?)?;
    let context = || format!("source '{}' (webex)", w.name);
    match action {
        SubscriptionsAction::List { .. } => {
            let ours = subscriptions::name_for(&cfg.name, &w.name);
            let all = subscriptions::list(&client).await.with_context(context)?;
            if all.is_empty() {
                println!(
                    "no subscriptions (`ccetl subscribe {} --url …` adds one)",
                    path.display()
                );
            }
            for s in all {
                let mark = if s.name == ours { "*" } else { " " };
                println!(
                    "{mark} {}  {:8}  {:20}  {}  \"{}\"",
                    s.id,
                    s.status.as_deref().unwrap_or("?"),
                    s.event_types.join(","),
                    s.destination_url,
                    s.name
                );
            }
        }
        SubscriptionsAction::Delete { id, .. } => {
            subscriptions::delete(&client, &id)
                .await
                .with_context(context)?;
            println!("subscription {id} deleted");
        }
    }
    Ok(())
}

/// `ccetl serve`: receives webhooks and lands each announced recording.
pub async fn serve(
    path: &Path,
    source: Option<&str>,
    listen: std::net::SocketAddr,
    batch_wait: &str,
) -> anyhow::Result<()> {
    let batch_wait =
        crate::units::parse_duration(batch_wait).map_err(|m| usage("--batch-wait", m))?;
    let (cfg, w, state) = super::webex_source(path, source, "serving webhooks")?;
    // Batches open the state themselves, under the run lock, so a scheduled run can share it.
    drop(state);
    let opts = ServeOptions {
        listen,
        batch_wait,
        max_batch: 100,
    };
    let stats = crate::serve::serve(cfg, w, opts, shutdown_signal(), None).await?;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "stopped: {} events accepted ({} duplicates), {} rejected, {} tasks committed, {} dropped",
        n(&stats.accepted),
        n(&stats.duplicates),
        n(&stats.rejected),
        n(&stats.committed),
        n(&stats.dropped)
    );
    Ok(())
}

/// Ctrl-C or SIGTERM (what a service manager or Kubernetes sends).
async fn shutdown_signal() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("Shutting down: no new deliveries; committing what was acknowledged.");
}

/// The source's tokens: its state, and the pipeline's shared token store if it has one.
fn tokens(cfg: &PipelineConfig, state: Arc<State>) -> anyhow::Result<Arc<dyn TokenStore>> {
    Ok(Arc::new(Tokens::new(state, pipeline::token_store(cfg)?)))
}
