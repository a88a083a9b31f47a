//! Subscriptions and the webhook receiver end to end: `ccetl subscribe` against the
//! simulated `/v2/subscriptions`, signed `capture:available` deliveries from the simulator
//! to `ccetl serve` (with duplicates, forged and stale events mixed in), a kill between the
//! acknowledgement and the commit, and a scheduled run over the same windows afterwards.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use ccetl::sim::events::Delivered;
use ccetl::sim::Truth;
use common::*;

const SECRET: &str = "sim-webhook-secret-0123456789abcdef";
const DAY_MS: i64 = 86_400_000;

fn with_secret() -> String {
    format!("webhook_secret = \"{SECRET}\"\n")
}

/// The calls of `[from, to)` whose recording is available: what events announce.
fn announced(env: &Env, from: i64, to: i64) -> Truth {
    let mut t = env.truth();
    t.tasks.retain(|t| {
        t.created_ms >= from
            && t.created_ms < to
            && t.recordings.iter().any(|r| !r.segment && r.available)
    });
    t
}

async fn deliver(env: &Env, query: &str) -> Delivered {
    let url = format!("{}/_sim/webhooks/deliver?{query}", env.sim.base_url());
    reqwest::Client::new()
        .post(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn health(addr: SocketAddr) -> serde_json::Value {
    reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the receiver has nothing pending and has committed `committed` tasks.
async fn settled(addr: SocketAddr, committed: u64) -> serde_json::Value {
    for _ in 0..300 {
        let h = health(addr).await;
        if h["pending"] == 0 && h["committed"].as_u64() >= Some(committed) {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the receiver did not settle: {}", health(addr).await);
}

fn yesterday(env: &Env) -> i64 {
    (env.sim.sim.now_ms() / DAY_MS - 1) * DAY_MS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_registers_once_and_list_and_delete_work() {
    let env = env_with(sim_config(), &with_secret()).await;
    let p = env.pipeline.display().to_string();
    let url = "http://127.0.0.1:8088/webhooks/wxcc".to_string();
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(std::string::ToString::to_string).collect();
        tokio::task::spawn_blocking(move || {
            ccetl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let (code, out, err) = run(&["subscribe", &p, "--url", &url]).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created") && out.contains("capture:available"),
        "{out}"
    );
    let (code, out, _) = run(&["subscribe", &p, "--url", &url]).await.unwrap();
    assert_eq!(code, 0);
    assert!(out.contains("updated"), "{out}");
    let subs: Vec<serde_json::Value> = env
        .sim
        .sim
        .subscriptions()
        .iter()
        .map(|s| s.data.clone())
        .collect();
    assert_eq!(
        subs.len(),
        1,
        "subscribing again adds no second subscription"
    );
    assert_eq!(subs[0]["resourceVersion"], "capture:1.0.0");
    assert_eq!(subs[0]["destinationUrl"], url);
    assert_eq!(
        env.sim.sim.subscriptions()[0].secret.as_deref(),
        Some(SECRET),
        "registered with the configured secret"
    );
    let id = subs[0]["id"].as_str().unwrap().to_string();

    let (code, out, _) = run(&["subscriptions", "list", &p]).await.unwrap();
    assert_eq!(code, 0);
    assert!(out.contains(&format!("* {id}")), "ours is marked: {out}");
    let (code, out, _) = run(&["subscriptions", "delete", &p, &id]).await.unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(env.sim.sim.subscriptions().is_empty());

    // A URL Webex would refuse, and a source without a secret: one line, exit 2.
    let (code, _, err) = run(&["subscribe", &p, "--url", "http://hooks.acme.example/wxcc"])
        .await
        .unwrap();
    assert_eq!(code, 2);
    assert!(one_error_line(&err).contains("https://"), "{err}");
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    std::fs::write(&env.pipeline, text.replace(&with_secret(), "")).unwrap();
    let (code, _, err) = run(&["subscribe", &p, "--url", &url]).await.unwrap();
    assert_eq!(code, 2);
    assert!(one_error_line(&err).contains("webhook_secret"), "{err}");
}

/// Subscriptions need `cjp:config_write` (spec): a token consented with the read scope only
/// is refused by the simulator, and `ccetl subscribe` says which scope is missing; a
/// destination Webex would refuse never reaches the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_names_the_missing_write_scope_and_refuses_bad_destinations() {
    let cfg = ccetl::sim::SimConfig {
        initial_scopes: "cjp:config_read".into(),
        ..sim_config()
    };
    let env = env_with(cfg, &with_secret()).await;
    let p = env.pipeline.display().to_string();
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(std::string::ToString::to_string).collect();
        tokio::task::spawn_blocking(move || {
            ccetl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let url = "http://127.0.0.1:8088/webhooks/wxcc";
    let (code, _, err) = run(&["subscribe", &p, "--url", url]).await.unwrap();
    let line = one_error_line(&err);
    println!("read-only token: exit {code}: {line}");
    assert_eq!(code, 3, "{err}");
    assert!(
        line.contains("HTTP 403") && line.contains("needs the cjp:config_write scope"),
        "{line}"
    );
    assert_eq!(env.stats().get("forbidden"), Some(&1));
    assert!(env.sim.sim.subscriptions().is_empty());

    let before = env.stats().get("subscriptions").copied();
    for (bad, needle) in [
        ("https://hooks.acme.example:8443/wxcc", "port 443"),
        (
            "https://user:pw@hooks.acme.example/wxcc",
            "user name or password",
        ),
        ("https://hooks.acme.example/", "path"),
    ] {
        let (code, _, err) = run(&["subscribe", &p, "--url", bad]).await.unwrap();
        assert_eq!(code, 2, "{bad}: {err}");
        let line = one_error_line(&err);
        assert!(line.contains(needle), "{bad}: {line}");
        assert!(!line.contains("pw@"), "the password is not echoed: {line}");
    }
    assert_eq!(
        env.stats().get("subscriptions").copied(),
        before,
        "no request made"
    );
}

/// `ccetl serve` in this process for the pipeline's Webex source, subscribed at the
/// simulator: its address, the sender that stops it, and its task.
async fn serve_subscribed(
    env: &Env,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<std::sync::Arc<ccetl::serve::Stats>, ccetl::serve::ServeError>>,
) {
    let cfg = env.config();
    let Some(w) = cfg.sources[0]
        .downcast::<ccetl::source::webex::config::WebexConfig>()
        .cloned()
    else {
        panic!("webex source expected")
    };
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ccetl::serve::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        batch_wait: Duration::from_millis(100),
        max_batch: 100,
    };
    let server = tokio::spawn(ccetl::serve::serve(
        cfg.clone(),
        cfg.sources[0].clone(),
        opts,
        async {
            let _ = stop_rx.await;
        },
        Some(bound_tx),
    ));
    let addr = bound_rx.await.unwrap();
    let url = url::Url::parse(&format!("http://{addr}/webhooks/wxcc")).unwrap();
    let secret = w.webhook_secret.clone().unwrap();
    let hooks = cfg.sources[0].webhooks().expect("webex has webhooks");
    let state = ccetl::pipeline::open_states(&cfg, &["wx"]).unwrap()["wx"].clone();
    hooks
        .subscribe(state, "ccetl test/wx", &url, &secret)
        .await
        .unwrap();
    (addr, stop_tx, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_exactly_their_recordings_and_forgeries_are_refused() {
    let env = env_with(sim_config(), &with_secret()).await;
    let (addr, stop_tx, server) = serve_subscribed(&env).await;

    // Two deliveries into the same day: the second batch is merged into the first's window.
    let day = yesterday(&env);
    let half = day + 14 * 3_600_000;
    let first = deliver(
        &env,
        &format!("from={day}&to={half}&duplicate=3&forged=2&stale=2"),
    )
    .await;
    let want_first = announced(&env, day, half);
    assert_eq!(first.events as usize, want_first.tasks.len());
    assert!(first.events > 5, "{first:?}");
    assert_eq!(first.posts, first.events + 3 + 2 + 2);
    // Every post is answered 2xx, forged and stale ones too (refused, counted, logged): a
    // non-2xx answer in a row of three sets the simulated subscription inactive, as Webex
    // may, and the second delivery would then never come.
    assert_eq!(
        first.accepted, first.posts,
        "duplicates, forged and stale posts are answered 2xx: {first:?}"
    );
    assert_eq!(first.deactivated, 0, "{first:?}");
    let h = settled(addr, first.events).await;
    assert_eq!(h["duplicates"], 3, "{h}");
    assert_eq!(h["rejected"], 4, "forged and stale are refused: {h}");

    let second = deliver(&env, &format!("from={half}&to={}", day + DAY_MS)).await;
    assert_eq!(second.rejected, 0);
    assert!(
        second.events > 0 && second.accepted == second.posts,
        "{second:?}"
    );
    assert_eq!(env.sim.sim.subscriptions()[0].data["status"], "active");
    settled(addr, first.events + second.events).await;
    let _ = stop_tx.send(());
    let stats = server.await.unwrap().unwrap();
    assert_eq!(stats.last_error(), None);

    eprintln!("first delivery {first:?}\nsecond delivery {second:?}\nreceiver {h}");
    let want = announced(&env, day, day + DAY_MS);
    assert_eq!(want.tasks.len() as u64, first.events + second.events);
    assert_matches(&env, &want);
    let stats = env.stats();
    assert_eq!(stats.get("tasks"), None, "events need no /v1/tasks listing");

    // A scheduled run over the same days afterwards: the full truth, no duplicates.
    env.run_ok().await;
    assert_matches_truth(&env);
    let tasks = env.strings("SELECT task_id FROM webex_tasks");
    assert_eq!(tasks.len(), tasks.iter().collect::<BTreeSet<_>>().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_bucket_events_wait_for_the_scheduled_runs_lease_and_lose_nothing() {
    use ccetl::sink::{checkpoint, lease::Lease};
    let s3 = common::s3::S3::start().await;
    let env = env_with(sim_config(), &with_secret()).await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    let (addr, stop_tx, server) = serve_subscribed(&env).await;

    // Another worker's scheduled run holds the source's lease: batches wait, queued.
    let wh = env.open_warehouse();
    let cfg = env.config();
    let stream = ccetl::pipeline::stream_of(&cfg.sources[0]);
    let path = wh.path(&["_ccetl", "leases", "wx", stream, "latest.json"]);
    let ttl = chrono::Duration::minutes(2);
    let store = wh.store().as_ref();
    let nightly = Lease::acquire(store, &path, "worker-b pid 1", ttl, chrono::Utc::now())
        .await
        .unwrap();
    let day = yesterday(&env);
    let sent = deliver(&env, &format!("from={day}&to={}", day + DAY_MS)).await;
    assert!(sent.events > 5 && sent.accepted == sent.posts, "{sent:?}");
    let mut h = health(addr).await;
    for _ in 0..100 {
        if h["batches_failed"].as_u64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        h = health(addr).await;
    }
    assert!(h["batches_failed"].as_u64() >= Some(1), "{h}");
    assert_eq!(h["pending"], sent.events, "acknowledged and queued: {h}");
    assert!(
        h["last_error"].as_str().unwrap().contains("worker-b"),
        "{h}"
    );
    assert_eq!(h["committed"], 0);

    // The run gives its lease back: the queued events land.
    nightly.release(store).await.unwrap();
    settled(addr, sent.events).await;
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    assert_matches(&env, &announced(&env, day, day + DAY_MS));
    // Events add to windows, never complete them: the checkpoint waits for a scheduled run.
    let cp_path = checkpoint::path_of(&wh, "wx", stream);
    assert_eq!(checkpoint::read(store, &cp_path).await.unwrap(), None);
    assert_no_stray_objects(&env.object_keys().await);

    // That run: the full truth, each task once.
    env.run_ok().await;
    assert_matches_truth(&env);
    let tasks = env.strings("SELECT task_id FROM webex_tasks");
    assert_eq!(tasks.len(), tasks.iter().collect::<BTreeSet<_>>().len());
    assert!(checkpoint::read(store, &cp_path).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_acknowledging_loses_no_event() {
    let env = env_with(sim_config(), &with_secret()).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = |crash: bool, wait: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ccetl"));
        cmd.args(["serve", &env.pipeline.display().to_string(), "--listen"])
            .arg(addr.to_string())
            .args(["--batch-wait", wait])
            .env("CCETL_LOG", "ccetl=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if crash {
            cmd.env("CCETL_CRASH_AT", "serve-batch");
        }
        cmd.spawn().unwrap()
    };
    let up = || async {
        for _ in 0..100 {
            if reqwest::get(format!("http://{addr}/healthz")).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ccetl serve did not come up");
    };
    // Crashing: wait until every delivery is acknowledged before the first batch.
    let mut child = start(true, "3s");
    up().await;
    let p = env.pipeline.display().to_string();
    let url = format!("http://{addr}/webhooks/wxcc");
    let (code, _, err) =
        tokio::task::spawn_blocking(move || ccetl(&["subscribe", &p, "--url", &url]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    let day = yesterday(&env);
    let sent = deliver(&env, &format!("from={day}&to={}", day + DAY_MS)).await;
    assert!(sent.events > 0 && sent.accepted == sent.events, "{sent:?}");
    // The worker aborts at its first batch: every event was acknowledged, none committed.
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "the crash point aborted serve");
    assert!(
        env.files().keys().all(|k| !k.ends_with(".parquet")),
        "nothing committed before the crash"
    );

    // Restarted, it commits what the killed one acknowledged.
    let mut child = start(false, "30s");
    up().await;
    settled(addr, sent.events).await;
    assert_matches(&env, &announced(&env, day, day + DAY_MS));

    // Events of the day before arrive; SIGTERM comes while they wait for their batch: the
    // receiver drains them before it exits, with 0.
    let before = day - DAY_MS;
    let more = deliver(&env, &format!("from={before}&to={day}")).await;
    assert!(
        more.accepted > 0 && more.accepted == more.events,
        "{more:?}"
    );
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_matches(&env, &announced(&env, before, day + DAY_MS));
}
