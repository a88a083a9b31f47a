//! Simulated Webex OAuth2: `GET /v1/authorize` (consent, answered at once with a redirect)
//! and `POST /v1/access_token` (authorization-code and refresh-token grants).
//!
//! Codes work once and only with the redirect URI they were issued for; refresh tokens
//! rotate (a used one is revoked). `sim_consent=deny` on the authorize URL plays a user who
//! declines the consent screen.
//!
//! Tokens carry the scopes consented to (`r`: `cjp:config_read`, `rw`: with
//! `cjp:config_write`), signed into them, and keep them through refreshes: the spec's
//! subscription create/update/delete need `cjp:config_write`, and the simulator refuses them
//! (403) to a token without it. The initial refresh token has [`super::SimConfig`]'s
//! `initial_scopes`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::webex::{fault, latency};
use super::Sim;

/// The scope the tasks and captures APIs need (`cjp:config` also grants it).
const REQUIRED_SCOPE: &str = "cjp:config_read";
/// The scope subscriptions need to be created, updated or deleted.
pub(super) const WRITE_SCOPE: &str = "cjp:config_write";

/// The scope code a token carries for a space-separated scope list.
pub(super) fn scope_code(scopes: &str) -> &'static str {
    if scopes
        .split(' ')
        .any(|s| s == WRITE_SCOPE || s == "cjp:config")
    {
        "rw"
    } else {
        "r"
    }
}

fn oauth_error(status: StatusCode, code: &str, desc: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": desc, "trackingId": "sim-0000" })),
    )
        .into_response()
}

fn redirect(to: &url::Url) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, to.as_str().to_string())],
    )
        .into_response()
}

/// `GET /v1/authorize?client_id&response_type=code&redirect_uri&scope&state`.
pub(super) async fn authorize(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    sim.count("authorize");
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != sim.cfg.client_id {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let Ok(mut to) = url::Url::parse(get("redirect_uri")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    if get("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "response_type must be code").into_response();
    }
    {
        let mut pairs = to.query_pairs_mut();
        if get("sim_consent") == "deny" {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair("error_description", "The user denied the request");
        } else if !get("scope")
            .split(' ')
            .any(|s| s == REQUIRED_SCOPE || s == "cjp:config")
        {
            pairs.append_pair("error", "invalid_scope");
            pairs.append_pair("error_description", "cjp:config_read is required");
        } else {
            let code = format!("sac.{:016x}", rand::random::<u64>());
            sim.codes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(
                    code.clone(),
                    (get("redirect_uri").to_string(), scope_code(get("scope"))),
                );
            pairs.append_pair("code", &code);
        }
        pairs.append_pair("state", get("state"));
    }
    redirect(&to)
}

/// `POST /v1/access_token`.
pub(super) async fn token(
    State(sim): State<Arc<Sim>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    sim.count("token");
    latency(&sim).await;
    if let Some(r) = fault(&sim, "token").await {
        return r;
    }
    if form.get("client_id") != Some(&sim.cfg.client_id)
        || form.get("client_secret") != Some(&sim.cfg.client_secret)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: unknown client_id or wrong client_secret",
        );
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let scopes = match field("grant_type").as_str() {
        "refresh_token" => {
            let rt = field("refresh_token");
            let scopes = {
                let parts: Vec<&str> = rt.split('.').collect();
                match parts.as_slice() {
                    _ if rt == sim.cfg.initial_refresh_token => {
                        Some(scope_code(&sim.cfg.initial_scopes))
                    }
                    ["srt", n, code @ ("r" | "rw"), sig]
                        if sim.sign(&format!("rt|{n}|{code}")) == *sig =>
                    {
                        Some(if *code == "rw" { "rw" } else { "r" })
                    }
                    _ => None,
                }
            };
            // Rotation: a refresh token works once.
            let Some(scopes) = scopes.filter(|_| sim.revoke(&rt)) else {
                sim.count("refresh_refused");
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token is invalid, expired or already used",
                );
            };
            sim.count("refreshes");
            scopes
        }
        "authorization_code" => {
            let issued_for = sim
                .codes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&field("code"));
            match issued_for {
                Some((uri, scopes)) if uri == field("redirect_uri") => {
                    sim.count("code_exchanges");
                    scopes
                }
                Some(_) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "redirect_uri does not match the authorization request",
                    )
                }
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "authorization code is invalid, expired or already used",
                    )
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
    };
    Json(issue_tokens(&sim, scopes)).into_response()
}

/// A new access token and a new (rotated) refresh token, both with `scopes` (a scope code).
fn issue_tokens(sim: &Sim, scopes: &str) -> serde_json::Value {
    let n: u64 = rand::random();
    let refresh = format!("srt.{n}.{scopes}.{}", sim.sign(&format!("rt|{n}|{scopes}")));
    let exp = sim.now_ms() + sim.cfg.token_ttl_secs as i64 * 1000;
    let access = format!(
        "sat.{exp}.{scopes}.{}_P0A1_{}",
        sim.sign(&format!("at|{exp}|{scopes}")),
        sim.cfg.org_id
    );
    let scope = match scopes {
        "rw" => format!("{REQUIRED_SCOPE} {WRITE_SCOPE}"),
        _ => REQUIRED_SCOPE.to_string(),
    };
    json!({
        "scope": scope,
        "access_token": access,
        "expires_in": sim.cfg.token_ttl_secs,
        "refresh_token": refresh,
        "refresh_token_expires_in": sim.cfg.refresh_ttl_secs,
        "token_type": "Bearer",
    })
}
