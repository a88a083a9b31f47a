//! A warehouse in object storage is the shared truth (issue 28): every window commit moves
//! the source's checkpoint there, and a worker with an empty disk takes it over instead of
//! starting again or refusing to run, reading back only the windows it will read again.

mod common;

use ccetl::sink::checkpoint;
use common::s3::S3;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_takes_over_the_checkpoint_and_downloads_nothing_again() {
    let s3 = S3::start().await;
    let env = env_with(xima_sim_config(), &format!("{LEGACY_SOURCE}{XIMA_SOURCE}")).await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    env.run_ok().await;
    assert_matches_truth(&env);

    // Each source's checkpoint says what its state says.
    let wh = env.open_warehouse();
    let cfg = env.config();
    let state = ccetl::state::State::open(&env.dir.path().join("state.duckdb")).unwrap();
    for src in &cfg.sources {
        let stream = ccetl::pipeline::stream_of(src);
        let path = checkpoint::path_of(&wh, src.name(), stream);
        let cp = checkpoint::read(wh.store().as_ref(), &path)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{}: a checkpoint", src.name()));
        let hw = state.high_water(src.name(), stream).unwrap().unwrap();
        assert_eq!(
            cp.resume_at(),
            Some(hw.timestamp_millis()),
            "{}",
            src.name()
        );
        assert!(cp.gaps().is_empty(), "{}: {cp:?}", src.name());
    }
    drop(state);

    // Another worker, with an empty disk (Webex's rotated token lived in the old state, so
    // only the sources without one run).
    for f in ["state.duckdb", "state.duckdb.wal"] {
        let _ = std::fs::remove_file(env.dir.path().join(f));
    }
    let (xima_audio, keys) = (env.stats()["xima_audio"], env.object_keys().await);
    let (report, result) = env.run_sources(&["legacy", "xima"]).await;
    result.expect("a new worker runs");
    assert_eq!(
        env.stats()["xima_audio"],
        xima_audio,
        "no audio downloaded again"
    );
    let totals = report.totals();
    assert!(
        totals.audio_reused > 0 && totals.audio_stored == 0,
        "{totals:?}"
    );
    assert_eq!(env.object_keys().await, keys, "no object added or removed");
    assert_matches_truth(&env);
    // It read what the checkpoint left to read: the lookback, not everything again.
    let xima = report.sources.iter().find(|s| s.name == "xima").unwrap();
    let lookback_windows = (cfg.lookback.as_secs() / cfg.window.as_secs()) as usize + 1;
    assert!(
        xima.windows.len() <= lookback_windows + 1,
        "{} windows read",
        xima.windows.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_counts_what_others_downloaded_against_the_egress_budget() {
    use ccetl::extract::RunError;
    use ccetl::pipeline::{self, RunOptions};
    let s3 = S3::start().await;
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    let cfg = env.config();
    let (start, now) = (cfg.start.unwrap(), env.now());
    let mid = start + (now - start) / 2;
    let run = |since, until| {
        let cfg = env.config();
        async move {
            let opts = RunOptions {
                now: Some(now),
                since: Some(since),
                until: Some(until),
                sources: vec!["xima".into()],
                ..RunOptions::default()
            };
            pipeline::run(&cfg, &opts).await
        }
    };
    // Worker A: the first half, its audio counted in the checkpoint as it commits.
    let (a, result) = run(start, mid).await;
    result.expect("worker A runs");
    let used = a.totals().audio_bytes;
    assert!(used > 0);
    let wh = env.open_warehouse();
    let path = checkpoint::path_of(&wh, "xima", ccetl::pipeline::stream_of(&cfg.sources[1]));
    let cp = checkpoint::read(wh.store().as_ref(), &path)
        .await
        .unwrap()
        .unwrap();
    let since = (chrono::Utc::now() - chrono::Duration::days(5)).timestamp_millis();
    assert_eq!(cp.egress_since(since), used, "{cp:?}");

    // Worker B, an empty disk, a budget A nearly used up: it downloads nothing more.
    for f in ["state.duckdb", "state.duckdb.wal"] {
        let _ = std::fs::remove_file(env.dir.path().join(f));
    }
    let text = std::fs::read_to_string(&env.pipeline).unwrap().replace(
        "min_interval = \"30ms\"\n",
        &format!(
            "min_interval = \"30ms\"\negress_budget = \"{}\"\n",
            used + 1000
        ),
    );
    std::fs::write(&env.pipeline, text).unwrap();
    let downloads = env.stats()["xima_audio"];
    let (b, result) = run(mid, now - chrono::Duration::minutes(15)).await;
    match result {
        Err(RunError::Partial { message, .. }) => {
            assert!(message.contains("egress_budget reached"), "{message}");
        }
        other => panic!("B stops at the budget A used: {other:?}"),
    }
    assert_eq!(
        env.stats()["xima_audio"],
        downloads,
        "no download past the budget"
    );
    assert!(b.totals().audio_deferred > 0, "{:?}", b.totals());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_is_refused_while_a_lease_is_live_and_takes_over_a_lapsed_one() {
    use ccetl::sink::lease::{Lease, LeaseBody};
    use chrono::{Duration, Utc};
    let s3 = S3::start().await;
    let env = env_with(sim_config(), LEGACY_SOURCE).await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    let wh = env.open_warehouse();
    let store = wh.store().as_ref();
    let cfg = env.config();
    let legacy = cfg.sources.iter().find(|s| s.name() == "legacy").unwrap();
    let stream = ccetl::pipeline::stream_of(legacy);
    let path = wh.path(&["_ccetl", "leases", "legacy", stream, "latest.json"]);

    // Another worker is running the source.
    let theirs = Lease::acquire(store, &path, "worker-b", Duration::minutes(10), Utc::now())
        .await
        .unwrap();
    let (_, result) = env.run_sources(&["legacy"]).await;
    let e = result.expect_err("refused");
    assert!(
        e.to_string().contains("held by worker-b until") && e.to_string().contains("legacy"),
        "{e}"
    );
    assert_eq!(e.kind(), ccetl::error::ErrorKind::Transient);
    let keys = env.object_keys().await;
    assert!(
        keys.iter().all(|k| k.starts_with("_ccetl/leases/")),
        "nothing written: {keys:?}"
    );

    // It was killed an hour ago: its lease lapsed, and the next run takes it over.
    theirs.release(store).await.unwrap();
    let hour_ago = Utc::now() - Duration::hours(1);
    Lease::acquire(store, &path, "worker-b", Duration::minutes(2), hour_ago)
        .await
        .unwrap();
    env.run_sources(&["legacy"]).await.1.expect("takes over");
    assert_eq!(
        env.count("SELECT count(*) FROM legacy_csr"),
        env.legacy_truth().tasks.len() as i64
    );
    // Given back when the run ended, so the next one need not wait.
    let (body, _) = ccetl::sink::versioned::read::<LeaseBody>(store, &path)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.generation, 2, "{body:?}");
    assert!(
        body.holder.contains(&format!("pid {}", std::process::id())),
        "{body:?}"
    );
    assert_eq!(body.expires_at_ms, 0, "released");
    env.run_sources(&["legacy"]).await.1.expect("the next run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_one_rotating_refresh_token_through_the_token_store() {
    let s3 = S3::start().await;
    let env = env(sim_config()).await;
    env.set_warehouse(&format!(
        "{}token_store = \"{}\"\n",
        s3.warehouse_toml("wh"),
        s3.url("tokens")
    ));
    // The simulator rotates refresh tokens and revokes a used one, as Webex may.
    // Worker A runs; worker B, on another disk, starts from the configured (now revoked)
    // refresh token, and must find A's rotated one in the token store.
    env.run_ok().await;
    let refreshes = env.stats()["refreshes"];
    for f in ["state.duckdb", "state.duckdb.wal"] {
        let _ = std::fs::remove_file(env.dir.path().join(f));
    }
    env.run_ok().await;
    assert_eq!(
        env.stats().get("refresh_refused"),
        None,
        "no refresh token refused"
    );
    assert_eq!(
        env.stats()["refreshes"],
        refreshes,
        "A's access token still served B"
    );
    assert_matches_truth(&env);
    // `ccetl auth status` on a third, empty disk reads the store: the org its token names.
    for f in ["state.duckdb", "state.duckdb.wal"] {
        let _ = std::fs::remove_file(env.dir.path().join(f));
    }
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let (code, out, err) = tokio::task::block_in_place(|| ccetl(&["auth", "status", &pipeline]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&env.sim.sim.cfg.org_id), "{out}");

    // Four workers whose access tokens all expired refresh at once: one refresh, the
    // others take its tokens.
    let cfg = env.config();
    let src = cfg.sources[0]
        .downcast::<ccetl::source::webex::config::WebexConfig>()
        .unwrap();
    let shared = ccetl::auth::shared::SharedTokens::open(
        cfg.token_store.as_deref().unwrap(),
        &cfg.storage_options,
    )
    .unwrap();
    let mut stale = shared.load("wx").await.unwrap().unwrap().0;
    stale.access_expires_at = Some(chrono::Utc::now());
    shared.save("wx", &stale).await.unwrap();
    let workers = (0..4).map(|i| {
        let dir = env.dir.path().join(format!("worker-{i}.duckdb"));
        let state = std::sync::Arc::new(ccetl::state::State::open(&dir).unwrap());
        let http =
            ccetl::http::HttpClient::new(ccetl::http::RetryConfig::default(), src.read_timeout)
                .unwrap();
        let tokens = ccetl::auth::oauth::OAuthTokens::new(
            "wx",
            http,
            src.token_url.clone(),
            src.client_id.clone(),
            src.client_secret.clone(),
            src.refresh_token.clone(),
            std::sync::Arc::new(ccetl::auth::Tokens::new(state, Some(shared.clone()))),
        )
        .unwrap();
        tokio::spawn(async move { tokens.access_token().await })
    });
    let before = env.stats()["refreshes"];
    for r in futures::future::join_all(workers).await {
        r.unwrap().expect("every worker gets a token");
    }
    assert_eq!(
        env.stats()["refreshes"],
        before + 1,
        "one refresh for four workers"
    );
    assert_eq!(env.stats().get("refresh_refused"), None);
}

/// The shards `ccetl plan` cuts, each run as its own process with its own state (workers
/// with nothing in common but the bucket), those of one pool side by side: `ccetl finalize`
/// finds the range whole, and the warehouse equals one machine's run of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_on_separate_workers_equal_one_machine_and_finalize_proves_it() {
    let s3 = S3::start().await;
    let sources = format!("{LEGACY_SOURCE}{XIMA_SOURCE}");
    let sharded = env_with(xima_sim_config(), &sources).await;
    sharded.set_warehouse(&format!(
        "{}token_store = \"{}\"\n",
        s3.warehouse_toml("sharded"),
        s3.url("tokens")
    ));
    let single = env_with(xima_sim_config(), &sources).await;
    single.set_warehouse(&s3.warehouse_toml("single"));
    let cfg = sharded.config();
    let since = cfg.start.unwrap().to_rfc3339();
    let now = sharded.now();
    let until = (now - chrono::Duration::minutes(15)).to_rfc3339();
    let pipeline = sharded.pipeline.to_string_lossy().to_string();
    let (p, s, u) = (pipeline.clone(), since.clone(), until.clone());
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        ccetl(&[
            "plan",
            &p,
            "--since",
            &s,
            "--until",
            &u,
            "--windows-per-shard",
            "1",
            "--json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let shards: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let mut pools: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    for s in shards {
        pools
            .entry(s["pool"].as_str().unwrap().to_string())
            .or_default()
            .push(s);
    }
    assert_eq!(pools.len(), 3, "a pool per budget");

    // Pools side by side; within a pool, up to its slots at once, each on a fresh disk.
    let now_arg = now.to_rfc3339();
    let mut pool_tasks = Vec::new();
    for (pool, shards) in pools {
        let (dir, now_arg) = (sharded.dir.path().to_path_buf(), now_arg.clone());
        pool_tasks.push(tokio::spawn(async move {
            let slots = shards[0]["pool_slots"].as_u64().unwrap() as usize;
            for chunk in shards.chunks(slots) {
                let runs = chunk.iter().map(|s| {
                    let mut args: Vec<String> = s["args"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_string())
                        .collect();
                    let id = s["id"].as_str().unwrap();
                    let state = dir.join("workers").join(id).join("state.duckdb");
                    args.extend(["--state".into(), state.to_string_lossy().into()]);
                    args.extend(["--now".into(), now_arg.clone()]);
                    tokio::task::spawn_blocking(move || {
                        let a: Vec<&str> = args.iter().map(String::as_str).collect();
                        ccetl(&a)
                    })
                });
                for r in futures::future::join_all(runs).await {
                    let (code, _, err) = r.unwrap();
                    assert_eq!(code, 0, "{pool}: {err}");
                }
            }
        }));
    }
    for t in pool_tasks {
        t.await.unwrap();
    }

    let (p, s, u) = (pipeline.clone(), since.clone(), until.clone());
    let (code, out, err) =
        tokio::task::spawn_blocking(move || ccetl(&["finalize", &p, "--since", &s, "--until", &u]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wx: ") && out.contains("xima: "), "{out}");

    let (p, s, u, n) = (
        single.pipeline.to_string_lossy().to_string(),
        since.clone(),
        until.clone(),
        now_arg.clone(),
    );
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        ccetl(&["run", &p, "--since", &s, "--until", &u, "--now", &n])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let (got, want) = (table_snapshot(&sharded), table_snapshot(&single));
    for (table, rows) in &want {
        assert!(
            got[table] == *rows,
            "{table} differs between shards and one machine"
        );
    }
    assert!(want["webex_tasks"].lines().count() > 50);
    assert_eq!(
        sharded.stats().get("refresh_refused"),
        None,
        "no refresh token refused"
    );
    assert_eq!(sharded.stats().get("xima_429").copied().unwrap_or(0), 0);

    // A file lost after the fact: finalize names it.
    let wh = sharded.open_warehouse();
    let lost = sharded
        .object_keys()
        .await
        .into_iter()
        .find(|k| k.starts_with("legacy_csr/") && k.ends_with(".parquet"))
        .unwrap();
    wh.delete(&lost).await.unwrap();
    let (p, s, u) = (pipeline.clone(), since.clone(), until.clone());
    let (code, _, err) =
        tokio::task::spawn_blocking(move || ccetl(&["finalize", &p, "--since", &s, "--until", &u]))
            .await
            .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&lost) && err.contains("missing"), "{err}");
}

/// `ccetl status` on a shared warehouse goes by the checkpoint: this machine's state ran only
/// the first shard, other workers the rest; status here says where the warehouse is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_a_shared_warehouse_goes_by_the_checkpoint_not_a_state_left_behind() {
    let s3 = S3::start().await;
    let env = env(sim_config()).await;
    env.set_warehouse(&format!(
        "{}token_store = \"{}\"\n",
        s3.warehouse_toml("behind"),
        s3.url("tokens")
    ));
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let now = env.now().to_rfc3339();
    let since = env.config().start.unwrap().to_rfc3339();
    let until = (env.now() - chrono::Duration::minutes(15)).to_rfc3339();
    let (code, out, err) = tokio::task::block_in_place(|| {
        ccetl(&[
            "plan",
            &pipeline,
            "--since",
            &since,
            "--until",
            &until,
            "--windows-per-shard",
            "1",
            "--json",
        ])
    });
    assert_eq!(code, 0, "{err}");
    let shards: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(shards.len() >= 3, "{shards:?}");
    for (i, s) in shards.iter().enumerate() {
        let mut args: Vec<String> = s["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        // The first on this machine's own state; the others on workers' fresh disks.
        if i > 0 {
            let state = env.dir.path().join(format!("worker{i}/state.duckdb"));
            args.extend(["--state".into(), state.display().to_string()]);
        }
        args.extend(["--now".into(), now.clone()]);
        let (code, _, err) = tokio::task::block_in_place(|| {
            ccetl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        });
        assert_eq!(code, 0, "shard {i}: {err}");
    }
    let local = ccetl::state::State::open(&env.dir.path().join("state.duckdb"))
        .unwrap()
        .high_water("wx", "tasks")
        .unwrap()
        .unwrap();
    let first_end: chrono::DateTime<chrono::Utc> =
        shards[0]["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        local, first_end,
        "this machine's state ran the first shard only"
    );
    let (code, out, err) = tokio::task::block_in_place(|| ccetl(&["status", &pipeline, "--json"]));
    assert_eq!(code, 0, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let last_end: chrono::DateTime<chrono::Utc> = shards.last().unwrap()["until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let got: chrono::DateTime<chrono::Utc> = line["high_water"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        got, last_end,
        "the checkpoint, not the state left behind: {line}"
    );
    assert_eq!(line["last_status"], "succeeded", "{line}");
}
