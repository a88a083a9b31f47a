//! Simulated Webex OAuth2: `GET /v1/authorize` (consent, answered at once with a redirect)
//! and `POST /v1/access_token` (authorization-code and refresh-token grants).
//!
//! Codes work once and only with the redirect URI they were issued for; refresh tokens
//! rotate (a used one is revoked). `sim_consent=deny` on the authorize URL plays a user who
//! declines the consent screen.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::webex::{fault, latency};
use super::Sim;

/// The scope the tasks and captures APIs need.
const REQUIRED_SCOPE: &str = "cjp:config_read";

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
pub async fn authorize(
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
        } else if !get("scope").split(' ').any(|s| s == REQUIRED_SCOPE) {
            pairs.append_pair("error", "invalid_scope");
            pairs.append_pair("error_description", "cjp:config_read is required");
        } else {
            let code = format!("sac.{:016x}", rand::random::<u64>());
            sim.codes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(code.clone(), get("redirect_uri").to_string());
            pairs.append_pair("code", &code);
        }
        pairs.append_pair("state", get("state"));
    }
    redirect(&to)
}

/// `POST /v1/access_token`.
pub async fn token(
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
    match field("grant_type").as_str() {
        "refresh_token" => {
            let rt = field("refresh_token");
            let valid = {
                let parts: Vec<&str> = rt.split('.').collect();
                rt == sim.cfg.initial_refresh_token
                    || matches!(parts.as_slice(), ["srt", n, sig] if sim.sign(&format!("rt|{n}")) == *sig)
            };
            // Rotation: a refresh token works once.
            if !valid || !sim.revoke(&rt) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token is invalid, expired or already used",
                );
            }
            sim.count("refreshes");
        }
        "authorization_code" => {
            let issued_for = sim
                .codes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&field("code"));
            match issued_for {
                Some(uri) if uri == field("redirect_uri") => sim.count("code_exchanges"),
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
    }
    Json(issue_tokens(&sim)).into_response()
}

/// A new access token and a new (rotated) refresh token.
fn issue_tokens(sim: &Sim) -> serde_json::Value {
    let n: u64 = rand::random();
    let refresh = format!("srt.{n}.{}", sim.sign(&format!("rt|{n}")));
    let exp = sim.now_ms() + sim.cfg.token_ttl_secs as i64 * 1000;
    let access = format!(
        "sat.{exp}.{}_P0A1_{}",
        sim.sign(&format!("at|{exp}")),
        sim.cfg.org_id
    );
    json!({
        "access_token": access,
        "expires_in": sim.cfg.token_ttl_secs,
        "refresh_token": refresh,
        "refresh_token_expires_in": sim.cfg.refresh_ttl_secs,
        "token_type": "Bearer",
    })
}
