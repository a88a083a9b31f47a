//! Secret handling, proven: credentials never follow a redirect to another host, no secret
//! appears in any output, even with every crate logging at trace level, and `check` warns
//! about a pipeline file that others can read while it holds literal secrets.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use common::*;

/// Every secret the test pipeline holds (the simulator's access tokens contain `_P0A1_`).
const SECRETS: [&str; 5] = [
    "sim-client-secret",
    "sim-refresh-token",
    "sim-legacy-api-key",
    "sim-xima-key-acme-main",
    "_P0A1_",
];

/// The legacy API's `Authorization` value: an HMAC of the user id, the same on every
/// request, so as good as the key for anyone who sees it.
fn legacy_signature() -> String {
    ccetl::auth::hmac::sign("sim-legacy-api-key", "reports@sim.example")
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret {s:?}:\n{text}");
    }
    let sig = legacy_signature();
    assert!(
        !text.contains(&sig),
        "{what} shows the legacy signature {sig:?}:\n{text}"
    );
    assert!(
        !text.contains("Bearer "),
        "{what} shows a bearer header:\n{text}"
    );
}

/// Runs the binary with every crate at trace level; (exit code, stdout + stderr). The
/// worker thread is handed over while it waits: the simulator runs on this runtime.
fn ccetl_traced(args: &[&str]) -> (i32, String) {
    let (code, out, err) = tokio::task::block_in_place(|| ccetl_logging(args, "trace"));
    (code, out + &err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output_at_trace_level() {
    let env = env_with(xima_sim_config(), &format!("{LEGACY_SOURCE}{XIMA_SOURCE}")).await;
    let p = env.pipeline.to_string_lossy().to_string();
    let now = env.now().to_rfc3339();
    let report = env.dir.path().join("report.json");
    let r = report.to_string_lossy().to_string();

    let (code, out) = ccetl_traced(&["run", &p, "--now", &now, "--report", &r, "-vv"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.len() > 10_000,
        "trace output is verbose ({} bytes)",
        out.len()
    );
    assert_no_secret("a traced run", &out);
    assert_no_secret("the run report", &std::fs::read_to_string(&report).unwrap());

    for args in [
        vec!["check", p.as_str(), "-vv"],
        vec!["auth", "status", p.as_str()],
        vec!["state", "show", p.as_str()],
    ] {
        let (_, out) = ccetl_traced(&args);
        assert_no_secret(&args.join(" "), &out);
    }

    // The pipeline file holds literal secrets: `check` warns while others may read it.
    use std::os::unix::fs::PermissionsExt;
    let mode = |m| std::fs::set_permissions(&env.pipeline, std::fs::Permissions::from_mode(m));
    mode(0o644).unwrap();
    let (_, out) = ccetl_traced(&["check", &p]);
    assert!(
        out.contains("warn")
            && out.contains("source[0].client_secret")
            && out.contains("chmod 600"),
        "{out}"
    );
    mode(0o600).unwrap();
    let (_, out) = ccetl_traced(&["check", &p]);
    assert!(!out.contains("chmod 600"), "{out}");

    // Refused credentials: the errors name what to fix, never the value sent.
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    let wrong = text
        .replace("sim-legacy-api-key", "sim-legacy-api-key-old")
        .replace("sim-xima-key-acme-main", "sim-xima-key-acme-main-old");
    std::fs::write(&env.pipeline, wrong).unwrap();
    let (code, out) = ccetl_traced(&["run", &p, "--now", &now, "-vv"]);
    assert_ne!(code, 0, "{out}");
    assert_no_secret("a run with refused keys", &out);
}

/// What the second host saw: each request's header names and values.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

async fn record(State(seen): State<Seen>, req: Request) -> Response {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    seen.lock().unwrap().push(headers);
    (StatusCode::NOT_FOUND, "nothing here").into_response()
}

async fn redirect(State(to): State<String>, req: Request) -> Response {
    let target = format!("{to}{}", req.uri());
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response()
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Every API (bearer, HMAC signature, API key) behind a server that redirects to a second
/// port: the redirect is followed, but no credential reaches the second host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let env = env_with(xima_sim_config(), &format!("{LEGACY_SOURCE}{XIMA_SOURCE}")).await;
    let seen: Seen = Arc::default();
    let second = serve(
        axum::Router::new()
            .fallback(record)
            .with_state(seen.clone()),
    )
    .await;
    let first = serve(axum::Router::new().fallback(redirect).with_state(second)).await;

    // APIs behind the redirecting host; the token endpoint stays the simulator.
    let sim = env.sim.base_url();
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    let text = text.replace(
        &format!("base_url = \"{sim}"),
        &format!("base_url = \"{first}"),
    );
    std::fs::write(&env.pipeline, text).unwrap();
    let (code, out) = ccetl_traced(&[
        "run",
        &env.pipeline.to_string_lossy(),
        "--now",
        &env.now().to_rfc3339(),
    ]);
    assert_ne!(code, 0, "nothing to read behind the redirect: {out}");

    let seen = seen.lock().unwrap();
    assert!(
        seen.len() >= 3,
        "each source followed its redirect: {seen:?}"
    );
    for headers in seen.iter() {
        for (name, value) in headers {
            assert_ne!(name, "authorization", "{headers:?}");
            for s in SECRETS {
                assert!(!value.contains(s), "{name}: {value}");
            }
            assert!(!value.contains(&legacy_signature()), "{name}: {value}");
        }
    }
}
