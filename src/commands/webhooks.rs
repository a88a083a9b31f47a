//! `ccetl subscribe`, `ccetl subscriptions list|delete` and `ccetl serve`: the subscription
//! that makes a source's system push each new recording (Webex: `capture:available`), and
//! the receiver that lands them.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::usage;
use crate::auth::{TokenStore, Tokens};
use crate::cli::SubscriptionsAction;
use crate::config::{ConfigError, PipelineConfig, SourceConfig};
use crate::extract::webhooks::{subscription_name, Outcome};
use crate::extract::Webhooks;
use crate::pipeline;
use crate::serve::ServeOptions;
use crate::state::State;

/// The pipeline, its source `name` (or its only one whose system pushes events), that
/// source's webhooks and its state. `purpose` says what needs webhooks, for the error.
fn webhook_source(
    path: &Path,
    name: Option<&str>,
    purpose: &str,
) -> anyhow::Result<(PipelineConfig, SourceConfig, Arc<State>)> {
    let cfg = PipelineConfig::load(path)?;
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: "--source".into(),
        message,
    };
    let pushing: Vec<&SourceConfig> = cfg
        .sources
        .iter()
        .filter(|s| s.webhooks().is_some())
        .collect();
    let source = match name {
        Some(n) => {
            let s = super::source_named(path, &cfg, n)?;
            if s.webhooks().is_none() {
                let why = format!("source '{n}' is a {} source, whose system pushes no events; {purpose} needs one that does", s.kind());
                return Err(invalid(why).into());
            }
            s.clone()
        }
        None => match pushing.as_slice() {
            [one] => (*one).clone(),
            [] => {
                let why = format!("{purpose} needs a source whose system pushes events (webex); the pipeline has none");
                return Err(invalid(why).into());
            }
            many => {
                let names: Vec<&str> = many.iter().map(|s| s.name()).collect();
                let why = format!(
                    "the pipeline has several sources with webhooks; name one with --source ({})",
                    names.join(", ")
                );
                return Err(invalid(why).into());
            }
        },
    };
    let states = pipeline::open_states(&cfg, &[source.name()])?;
    let state = states[source.name()].clone();
    Ok((cfg, source, state))
}

/// The source's webhooks ([`webhook_source`] found them).
fn hooks(source: &SourceConfig) -> anyhow::Result<&dyn Webhooks> {
    source
        .webhooks()
        .with_context(|| format!("source '{}' has no webhooks", source.name()))
}

/// `ccetl subscribe`: registers or updates the source's subscription.
pub async fn subscribe(path: &Path, source: Option<&str>, url: &str) -> anyhow::Result<()> {
    let (cfg, source, state) = webhook_source(path, source, "subscribing")?;
    let hooks = hooks(&source)?;
    let destination = hooks
        .check_destination(url)
        .map_err(|m| usage("--url", m))?;
    let secret = hooks.secret().ok_or_else(|| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: format!("source '{}'.webhook_secret", source.name()),
        message: "is required to subscribe: the system signs every event with it and `ccetl serve` checks it; set webhook_secret = \"${WEBHOOK_SECRET}\" (32 to 256 characters, e.g. from `openssl rand -hex 24`)".into(),
    })?;
    let name = subscription_name(&cfg.name, source.name());
    let (sub, outcome) = hooks
        .subscribe(tokens(&cfg, state)?, &name, &destination, secret)
        .await
        .with_context(|| format!("source '{}' ({})", source.name(), source.kind()))?;
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
    let (cfg, source, state) = webhook_source(path, source.as_deref(), "a subscription")?;
    let hooks = hooks(&source)?;
    let tokens = tokens(&cfg, state)?;
    let context = || format!("source '{}' ({})", source.name(), source.kind());
    match action {
        SubscriptionsAction::List { .. } => {
            let ours = subscription_name(&cfg.name, source.name());
            let all = hooks.subscriptions(tokens).await.with_context(context)?;
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
            hooks.unsubscribe(tokens, &id).await.with_context(context)?;
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
    let (cfg, source, state) = webhook_source(path, source, "serving webhooks")?;
    // Batches open the state themselves, under the run lock, so a scheduled run can share it.
    drop(state);
    let opts = ServeOptions {
        listen,
        batch_wait,
        max_batch: 100,
    };
    let stats = crate::serve::serve(cfg, source, opts, shutdown_signal(), None).await?;
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
