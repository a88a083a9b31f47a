//! `ccetl auth login|import|status`: from a client id and secret to stored tokens without
//! leaving the terminal. Tokens go to the state DB only; nothing here prints one.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::usage;
use crate::auth::login::{self, LoginClient, LoginError};
use crate::auth::TokenStore;
use crate::cli::AuthAction;
use crate::config::{ConfigError, PipelineConfig, SourceConfig};
use crate::extract::CheckContext;
use crate::pipeline;
use crate::state::State;

/// `ccetl auth login|import|status`.
pub async fn run(action: AuthAction) -> anyhow::Result<()> {
    match action {
        AuthAction::Login {
            pipeline,
            source,
            no_listen,
            timeout,
        } => login(&pipeline, &source, no_listen, &timeout).await,
        AuthAction::Import { pipeline, source } => import(&pipeline, &source),
        AuthAction::Status { pipeline } => status(&pipeline).await,
    }
}

/// The pipeline's source `name` and its state.
fn login_source(path: &Path, name: &str) -> anyhow::Result<(SourceConfig, Arc<State>)> {
    let cfg = PipelineConfig::load(path)?;
    let src = super::source_named(path, &cfg, name)?;
    let states = pipeline::open_states(&cfg, &[name])?;
    Ok((src.clone(), states[name].clone()))
}

/// The OAuth2 integration of a source that signs in through a browser.
fn login_client<'a>(path: &Path, src: &'a SourceConfig) -> Result<LoginClient<'a>, ConfigError> {
    src.login().ok_or_else(|| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: format!("--source {}", src.name()),
        message: format!(
            "a {} source does not sign in through a browser; `ccetl auth login` and `import` are for the sources that do",
            src.kind()
        ),
    })
}

async fn login(path: &Path, name: &str, no_listen: bool, timeout: &str) -> anyhow::Result<()> {
    let timeout = crate::units::parse_duration(timeout).map_err(|e| usage("--timeout", e))?;
    let (src, state) = login_source(path, name)?;
    let cfg = login_client(path, &src)?;
    // Bind before printing the URL, so a fast browser cannot beat the listener.
    let listener = if no_listen {
        None
    } else {
        let addr = loopback_addr(cfg.redirect_uri).ok_or_else(|| {
            usage(
                "redirect_uri",
                format!(
                    "{} is not a loopback http:// URI that ccetl can receive; use --no-listen and paste the redirect",
                    cfg.redirect_uri
                ),
            )
        })?;
        Some(
            tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("listening on {addr} for the redirect (is another login running? or use --no-listen)"))?,
        )
    };
    let auth = login::authorize_url(&cfg);
    println!(
        "Open this URL in a browser, sign in and approve access:\n\n  {}\n",
        auth.url
    );
    open_browser(auth.url.as_str());
    let redirect = match listener {
        Some(l) => {
            println!("Waiting for the redirect to {} …", cfg.redirect_uri);
            login::receive_redirect(l, cfg.redirect_uri.path(), timeout).await?
        }
        None => {
            println!("Paste the URL the browser was redirected to, then Enter:");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the redirect URL from stdin")?;
            line
        }
    };
    let code = login::code_from_redirect(&redirect, &auth.state)?;
    let token = login::exchange_and_store(&cfg, &code, state.as_ref()).await?;
    println!(
        "ok   tokens for source '{name}' stored in {} (refresh token valid until {})",
        state.path().display(),
        token.refresh_expires_at.map_or("unknown".into(), |t| t
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    Ok(())
}

/// `host:port` of a redirect URI this process can listen on.
fn loopback_addr(u: &url::Url) -> Option<String> {
    let loopback = match u.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d == "localhost",
    };
    (u.scheme() == "http" && loopback).then(|| {
        format!(
            "{}:{}",
            u.host_str().unwrap_or("127.0.0.1"),
            u.port().unwrap_or(80)
        )
    })
}

/// Opens the URL in a desktop browser when there is one; on a server this does nothing.
fn open_browser(url: &str) {
    let has_display = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || cfg!(target_os = "macos");
    if !has_display || std::env::var_os("CCETL_NO_BROWSER").is_some() {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn import(path: &Path, name: &str) -> anyhow::Result<()> {
    let (src, state) = login_source(path, name)?;
    let cfg = login_client(path, &src)?;
    let mut text = String::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut text)
        .context("reading the tokens from stdin")?;
    let token = login::parse_import(&cfg, &text)?;
    state.save(name, &token).map_err(LoginError::Store)?;
    println!(
        "ok   tokens for source '{name}' stored in {}",
        state.path().display()
    );
    Ok(())
}

async fn status(path: &Path) -> anyhow::Result<()> {
    let cfg = PipelineConfig::load(path)?;
    let names: Vec<&str> = cfg.sources.iter().map(|s| s.name()).collect();
    let states = pipeline::open_states(&cfg, &names)?;
    let token_store = pipeline::token_store(&cfg)?;
    pipeline::pull_shared_tokens(token_store.as_ref(), &states).await?;
    let now = chrono::Utc::now();
    for src in &cfg.sources {
        let ctx = CheckContext {
            pipeline: path,
            state: &states[src.name()],
            token_store: token_store.as_ref(),
            now,
        };
        println!("{}", src.credentials(&ctx)?);
    }
    Ok(())
}
