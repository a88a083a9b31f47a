//! The OAuth2 authorization-code flow for a Webex Integration, from the terminal.
//!
//! `ccetl auth login` builds the authorize URL with a random `state`, receives the redirect on
//! a one-shot loopback listener (or takes the redirect URL pasted on stdin, for headless
//! servers), checks `state`, and exchanges the one-time code for tokens. The tokens go to the
//! state DB (0600), never to the pipeline file, argv or the logs.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::oauth::{self, StoredToken, TokenStore};
use crate::http::{HttpClient, HttpError};
use crate::secret::Secret;

/// Requests the loopback listener answers before giving up (browsers also ask for icons).
const MAX_LISTENER_REQUESTS: usize = 16;

/// What a login needs of a source that signs in through a browser (`Source::login`): its
/// OAuth2 integration and where its tokens are tied to.
#[derive(Debug, Clone, Copy)]
pub struct LoginClient<'a> {
    /// The source's name: its tokens are stored under it.
    pub source: &'a str,
    /// The authorization endpoint the browser opens.
    pub authorize_url: &'a url::Url,
    /// The token endpoint the code is exchanged at.
    pub token_url: &'a url::Url,
    /// The integration's client id.
    pub client_id: &'a Secret,
    /// The integration's client secret.
    pub client_secret: &'a Secret,
    /// Where the browser is sent back.
    pub redirect_uri: &'a url::Url,
    /// The scopes asked for.
    pub scopes: &'a [String],
    /// The refresh token the pipeline file configures, if any: stored tokens are tied to it.
    pub configured_refresh: Option<&'a Secret>,
    /// How long the token endpoint may take to answer.
    pub read_timeout: Duration,
}

/// Why `ccetl auth login` could not finish.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The source's config cannot log in (e.g. a redirect URI that is not loopback).
    #[error("{0}")]
    Config(String),
    /// The redirect's `state` is not this login's.
    #[error("the redirect's state does not match this login (a stale or forged redirect); start `ccetl auth login` again")]
    StateMismatch,
    /// The user or the org refused consent.
    #[error("authorization was not granted ({error}{}); approve the consent screen, or ask an admin to allow the integration's scopes", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    #[allow(missing_docs)] // the message names them
    Denied {
        error: String,
        description: Option<String>,
    },
    /// The redirect carried no `code`.
    #[error("the redirect URL has no code; paste the whole URL the browser was sent to")]
    NoCode,
    /// The token endpoint refused the code.
    #[error("the token endpoint refused the code (HTTP {status}: {message}); codes work once and expire in minutes: start `ccetl auth login` again")]
    #[allow(missing_docs)] // the message names them
    Exchange { status: u16, message: String },
    /// The token endpoint could not be reached.
    #[error("token exchange failed: {0}")]
    Http(#[from] HttpError),
    /// The token endpoint answered something else than tokens.
    #[error("token response: {0}")]
    BadResponse(String),
    /// The loopback listener could not run.
    #[error("loopback listener on {addr}: {message}")]
    #[allow(missing_docs)] // the message names them
    Listener { addr: String, message: String },
    /// No redirect arrived in time.
    #[error("no redirect arrived within {0:?}; run again, or use --no-listen and paste the redirect URL")]
    Timeout(Duration),
    /// The tokens could not be stored.
    #[error("storing the tokens: {0}")]
    Store(crate::state::StateError),
}

impl LoginError {
    /// The exit code's kind of this failure.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            LoginError::StateMismatch
            | LoginError::Denied { .. }
            | LoginError::NoCode
            | LoginError::Exchange { .. } => ErrorKind::Auth,
            LoginError::Config(_) => ErrorKind::Config,
            LoginError::Http(e) => e.kind(),
            LoginError::BadResponse(_) => ErrorKind::Data,
            LoginError::Listener { .. } | LoginError::Timeout(_) | LoginError::Store(_) => {
                ErrorKind::Other
            }
        }
    }
}

/// A login in progress: the URL to open and the `state` it must come back with.
#[derive(Debug)]
pub struct Authorization {
    /// The URL to open in a browser.
    pub url: url::Url,
    /// The random `state` the redirect must bring back.
    pub state: String,
}

/// The authorize URL for `client`, with a fresh random `state`.
pub fn authorize_url(client: &LoginClient<'_>) -> Authorization {
    let state = hex::encode(rand::rng().random::<[u8; 16]>());
    let mut url = client.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("client_id", client.client_id.expose())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", client.redirect_uri.as_str())
        .append_pair("scope", &client.scopes.join(" "))
        .append_pair("state", &state);
    Authorization { url, state }
}

/// The code from a redirect URL (or just its query), after checking `state`.
pub fn code_from_redirect(redirect: &str, expected_state: &str) -> Result<Secret, LoginError> {
    let query = redirect
        .trim()
        .split_once('?')
        .map_or(redirect.trim(), |(_, q)| q);
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = Some(v.into_owned()),
            _ => {}
        }
    }
    if state.as_deref() != Some(expected_state) {
        return Err(LoginError::StateMismatch);
    }
    if let Some(error) = error {
        return Err(LoginError::Denied { error, description });
    }
    code.filter(|c| !c.is_empty())
        .map(Secret::new)
        .ok_or(LoginError::NoCode)
}

/// Waits on the redirect URI's loopback address for the browser's redirect, answering it
/// with a short page. Returns the request's path and query.
pub async fn receive_redirect(
    listener: tokio::net::TcpListener,
    path: &str,
    timeout: Duration,
) -> Result<String, LoginError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let listen_err = |e: std::io::Error| LoginError::Listener {
        addr: addr.clone(),
        message: e.to_string(),
    };
    let work = async {
        for _ in 0..MAX_LISTENER_REQUESTS {
            let (mut sock, _) = listener.accept().await.map_err(listen_err)?;
            let mut buf = vec![0u8; 8192];
            let mut n = 0;
            while n < buf.len() {
                let read = sock.read(&mut buf[n..]).await.map_err(listen_err)?;
                if read == 0 {
                    break;
                }
                n += read;
                if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let target = head
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string();
            let ours = target.split('?').next() == Some(path);
            let (status, body) = if ours {
                ("200 OK", "ccetl: authorization received. You can close this tab and return to the terminal.")
            } else {
                ("404 Not Found", "not found")
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
            if ours {
                return Ok(target);
            }
        }
        Err(LoginError::Listener {
            addr: addr.clone(),
            message: format!("{MAX_LISTENER_REQUESTS} requests without the redirect"),
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| LoginError::Timeout(timeout))?
}

#[derive(Debug, Deserialize)]
struct CodeResponse {
    access_token: String,
    expires_in: i64,
    refresh_token: String,
    refresh_token_expires_in: Option<i64>,
}

/// Exchanges the code at the token URL and stores the tokens for `client`'s source.
pub async fn exchange_and_store(
    client: &LoginClient<'_>,
    code: &Secret,
    store: &dyn TokenStore,
) -> Result<StoredToken, LoginError> {
    let http = HttpClient::new(crate::http::RetryConfig::default(), client.read_timeout)?;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client.client_id.expose()),
        ("client_secret", client.client_secret.expose()),
        ("code", code.expose()),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    let endpoint = format!("POST {}", crate::http::redact_url(client.token_url));
    let resp = http
        .send(&endpoint, || async {
            Ok::<_, HttpError>(http.reqwest().post(client.token_url.clone()).form(&form))
        })
        .await
        .map_err(|e| match e {
            HttpError::Status {
                status, message, ..
            } if status.is_client_error() => LoginError::Exchange {
                status: status.as_u16(),
                message,
            },
            other => LoginError::Http(other),
        })?;
    let body = resp
        .bytes()
        .await
        .map_err(|e| LoginError::BadResponse(e.without_url().to_string()))?;
    let r: CodeResponse =
        serde_json::from_slice(&body).map_err(|e| LoginError::BadResponse(e.to_string()))?;
    let token = stored_token(
        client,
        r.access_token,
        r.expires_in,
        r.refresh_token,
        r.refresh_token_expires_in,
    );
    store
        .save(client.source, &token)
        .map_err(LoginError::Store)?;
    Ok(token)
}

/// Tokens as the state keeps them, tied to the pipeline's current `refresh_token` setting so
/// that they win over it until it changes.
pub fn stored_token(
    client: &LoginClient<'_>,
    access: String,
    expires_in: i64,
    refresh: String,
    refresh_expires_in: Option<i64>,
) -> StoredToken {
    let now = Utc::now();
    StoredToken {
        config_fingerprint: oauth::config_fingerprint(client.configured_refresh),
        refresh_token: Secret::new(refresh),
        access_token: (!access.is_empty()).then(|| Secret::new(access)),
        access_expires_at: (expires_in > 0).then(|| now + chrono::Duration::seconds(expires_in)),
        refresh_expires_at: refresh_expires_in.map(|s| now + chrono::Duration::seconds(s)),
    }
}

/// Tokens pasted from a Service App's page: its JSON, or just the refresh token.
#[derive(Debug, Deserialize)]
struct ImportedTokens {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: i64,
    refresh_token: String,
    #[serde(default)]
    refresh_token_expires_in: Option<i64>,
}

/// Parses what `ccetl auth import` read from stdin.
pub fn parse_import(client: &LoginClient<'_>, text: &str) -> Result<StoredToken, LoginError> {
    let text = text.trim();
    let t: ImportedTokens = if text.starts_with('{') {
        serde_json::from_str(text).map_err(|e| {
            LoginError::BadResponse(format!(
                "stdin is not the token JSON ({e}); paste the JSON, or only the refresh token"
            ))
        })?
    } else if !text.is_empty() && !text.contains(char::is_whitespace) {
        ImportedTokens {
            access_token: String::new(),
            expires_in: 0,
            refresh_token: text.to_string(),
            refresh_token_expires_in: None,
        }
    } else {
        return Err(LoginError::BadResponse(
            "stdin is empty or holds more than one word; paste the token JSON, or only the refresh token".into(),
        ));
    };
    Ok(stored_token(
        client,
        t.access_token,
        t.expires_in,
        t.refresh_token,
        t.refresh_token_expires_in,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_checked_before_anything_else() {
        assert!(matches!(
            code_from_redirect("http://127.0.0.1:8765/callback?code=c1&state=s1", "s1"),
            Ok(c) if c.expose() == "c1"
        ));
        assert!(matches!(
            code_from_redirect("/callback?code=c1&state=evil", "s1"),
            Err(LoginError::StateMismatch)
        ));
        assert!(matches!(
            code_from_redirect("code=c1", "s1"),
            Err(LoginError::StateMismatch)
        ));
        assert!(matches!(
            code_from_redirect("?error=access_denied&state=s1", "s1"),
            Err(LoginError::Denied { .. })
        ));
        assert!(matches!(
            code_from_redirect("?state=s1", "s1"),
            Err(LoginError::NoCode)
        ));
    }
}
