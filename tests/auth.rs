//! `ccetl auth` end to end through the simulator's authorize endpoint: a login stores tokens
//! a following run uses; a wrong state, a reused code and a denied consent store nothing;
//! `auth status` and `check` report expiry and org; tokens never reach stdout or the file.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use ccetl::auth::TokenStore;
use ccetl::config::PipelineConfig;
use ccetl::pipeline::{self, RunOptions};
use ccetl::state::State;
use common::*;

const ORG: &str = "0b6f1d2e-aaaa-4c4c-9999-111122223333";

/// A pipeline with no refresh_token: its tokens come from `ccetl auth`.
fn login_pipeline(env: &Env, name: &str) -> PathBuf {
    let base = env.sim.base_url();
    let text = pipeline_toml(&base, "UNUSED", "")
        .replace("refresh_token = \"UNUSED\"\n", "")
        .replace("state.duckdb", &format!("{name}.duckdb"))
        .replace(
            "client_secret = \"sim-client-secret\"\n",
            &format!(
                "client_secret = \"sim-client-secret\"\nauthorize_url = \"{base}/v1/authorize\"\nredirect_uri = \"http://127.0.0.1:{}/callback\"\n",
                free_port()
            ),
        );
    let path = env.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

struct Login {
    child: Child,
    out: BufReader<ChildStdout>,
    url: String,
}

/// Starts `ccetl auth login` and reads the authorize URL it prints.
fn start_login(pipeline: &Path, no_listen: bool) -> Login {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccetl"));
    cmd.args([
        "auth",
        "login",
        pipeline.to_str().unwrap(),
        "--source",
        "wx",
    ])
    .env("CCETL_NO_BROWSER", "1")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if no_listen {
        cmd.arg("--no-listen");
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "login printed no URL"
        );
        if line.contains("/v1/authorize?") {
            break;
        }
    }
    Login {
        child,
        out,
        url: line.trim().to_string(),
    }
}

impl Login {
    /// Feeds the pasted redirect (for --no-listen) and waits: (exit code, stdout, stderr).
    fn finish(mut self, paste: Option<&str>) -> (i32, String, String) {
        if let Some(p) = paste {
            let mut stdin = self.child.stdin.take().unwrap();
            writeln!(stdin, "{p}").unwrap();
        }
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.out, &mut rest).unwrap();
        let out = self.child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            rest,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// What a browser does on the consent screen: follows the authorize URL to its redirect.
async fn consent(url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "authorize redirects");
    resp.headers()["location"].to_str().unwrap().to_string()
}

fn ccetl(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccetl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn stored(pipeline: &Path) -> Option<ccetl::auth::StoredToken> {
    let state = pipeline.with_extension("duckdb");
    State::open(&state).unwrap().load("wx").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_tokens_and_the_next_run_uses_them() {
    let env = env(sim_config()).await;
    let pipeline = login_pipeline(&env, "login");
    let file_before = std::fs::read_to_string(&pipeline).unwrap();

    // Before login: a run fails with exit-3 advice naming the command.
    let cfg = PipelineConfig::load(&pipeline).unwrap();
    let opts = RunOptions {
        now: Some(env.now()),
        ..RunOptions::default()
    };
    let (_, result) = pipeline::run(&cfg, &opts).await;
    let err = result.unwrap_err();
    assert!(
        err.is_auth() && err.to_string().contains("ccetl auth login"),
        "{err}"
    );

    let login = start_login(&pipeline, false);
    assert!(login.url.contains("state=") && login.url.contains("scope=cjp%3Aconfig_read"));
    let location = consent(&login.url).await;
    // The browser follows the redirect to ccetl's loopback listener.
    let page = reqwest::get(&location).await.unwrap();
    assert_eq!(page.status(), 200);
    let (code, out, err) = tokio::task::spawn_blocking(move || login.finish(None))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok   tokens for source 'wx' stored"), "{out}");

    let token = stored(&pipeline).expect("tokens stored");
    let refresh = token.refresh_token.expose().to_string();
    assert!(
        !out.contains(&refresh) && !err.contains(&refresh),
        "no token printed"
    );
    assert_eq!(
        std::fs::read_to_string(&pipeline).unwrap(),
        file_before,
        "pipeline file untouched"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pipeline.with_extension("duckdb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the state holding tokens is 0600");
    }

    let (_, result) = pipeline::run(&cfg, &opts).await;
    result.unwrap();
    assert_matches_truth(&env);

    let p = pipeline.to_str().unwrap().to_string();
    let (code, out, _) = tokio::task::spawn_blocking(move || ccetl(&["auth", "status", &p], ""))
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert!(out.contains(&format!("org {ORG}")), "{out}");
    assert!(out.contains("refresh token valid for 89d"), "{out}");
    assert!(!out.contains("warning"), "{out}");
    assert!(!out.contains(&refresh), "no token printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_state_reused_code_and_denied_consent_store_nothing() {
    let env = env(sim_config()).await;
    let pipeline = login_pipeline(&env, "fail");

    // A forged redirect: the state does not match.
    let login = start_login(&pipeline, true);
    let location = consent(&login.url).await;
    let forged = with_state(&location, "forged");
    let (code, _, err) = tokio::task::spawn_blocking(move || login.finish(Some(&forged)))
        .await
        .unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("state does not match"), "{err}");
    assert!(stored(&pipeline).is_none(), "nothing stored");

    // The user declines the consent screen.
    let login = start_login(&pipeline, true);
    let location = consent(&format!("{}&sim_consent=deny", login.url)).await;
    let (code, _, err) = tokio::task::spawn_blocking(move || login.finish(Some(&location)))
        .await
        .unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not granted (access_denied"), "{err}");
    assert!(stored(&pipeline).is_none(), "nothing stored");

    // A good pasted login, then its code replayed in a second login.
    let login = start_login(&pipeline, true);
    let first = consent(&login.url).await;
    let paste = first.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || login.finish(Some(&paste)))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let before = stored(&pipeline).expect("stored").refresh_token;
    let login = start_login(&pipeline, true);
    let second = consent(&login.url).await;
    let new_state = query_param(&second, "state");
    let replay = with_state(&first, &new_state);
    let (code, _, err) = tokio::task::spawn_blocking(move || login.finish(Some(&replay)))
        .await
        .unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("refused the code") && err.contains("already used"),
        "{err}"
    );
    assert_eq!(
        stored(&pipeline).unwrap().refresh_token,
        before,
        "nothing new stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_status_and_expiry_warnings() {
    let env = env(ccetl::sim::SimConfig {
        refresh_ttl_secs: 7 * 86_400,
        ..sim_config()
    })
    .await;
    let pipeline = login_pipeline(&env, "import");
    let p = pipeline.to_str().unwrap().to_string();

    // A Service App's tokens on stdin (never argv); the run uses and rotates them.
    let json = r#"{"access_token":"","expires_in":0,"refresh_token":"sim-refresh-token-0","refresh_token_expires_in":7776000}"#;
    let args = ["auth", "import", p.as_str(), "--source", "wx"].map(String::from);
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        ccetl(&a, json)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let cfg = PipelineConfig::load(&pipeline).unwrap();
    let opts = RunOptions {
        now: Some(env.now()),
        ..RunOptions::default()
    };
    pipeline::run(&cfg, &opts).await.1.unwrap();
    assert_matches_truth(&env);

    // The simulator's rotated refresh tokens live 7 days: status and check warn, with the fix.
    let p2 = p.clone();
    let ((code, out, _), (ccode, cout, cerr)) = tokio::task::spawn_blocking(move || {
        (
            ccetl(&["auth", "status", &p2], ""),
            ccetl(&["check", &p2], ""),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert!(out.contains(&format!("org {ORG}")), "{out}");
    let renew = format!("renew it: ccetl auth login {p} --source wx");
    assert!(
        out.contains("within 14 days") && out.contains(&renew),
        "{out}"
    );
    assert_eq!(ccode, 0, "{cout}{cerr}");
    assert!(
        cout.contains("warning: the refresh token of 'wx' expires"),
        "{cout}"
    );

    // An imported token already past its expiry: check fails (exit 3) and says what to run.
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        let r = ccetl(
            &["auth", "import", &p, "--source", "wx"],
            r#"{"refresh_token":"old","refresh_token_expires_in":-60}"#,
        );
        assert_eq!(r.0, 0, "{}", r.2);
        ccetl(&["check", &p], "")
    })
    .await
    .unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("expired") && err.contains(&renew), "{err}");
}

fn query_param(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `url` with its `state` parameter set to `state`.
fn with_state(url: &str, state: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                state.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_fix_for_a_token_without_access_and_checks_the_other_sources() {
    let env = env_with(sim_config(), LEGACY_SOURCE).await;
    // The API answers 403 to a valid token (missing scope, or no access to the org).
    env.sim
        .sim
        .faults
        .add(ccetl::sim::faults::parse("tasks:403").unwrap());
    let p = env.pipeline.to_str().unwrap().to_string();
    let (code, out, err) = tokio::task::spawn_blocking(move || ccetl(&["check", &p], ""))
        .await
        .unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("HTTP 403") && err.contains("cjp:config_read") && err.contains("source 'wx'"),
        "{err}"
    );
    // The failing source does not hide the others: each gets its line.
    assert!(
        out.contains("ok   warehouse")
            && out.contains("ok   source legacy (webex_legacy): signature accepted"),
        "{out}"
    );
    assert!(err.contains("1 of 3 checks failed"), "{err}");
    let http_403 = err.matches("HTTP 403").count();
    assert_eq!(http_403, 1, "each cause once: {err}");
}
