//! The binary as a user runs it: exit codes and one-line errors for bad config and bad
//! credentials, with the state left as it was.

mod common;

use std::process::Command;

use common::*;

#[test]
fn bad_config_is_exit_2_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[pipeline]\nname = \"x\"\n", "warehouse"),
        ("not toml [", "TOML"),
        (
            "[pipeline]\nname=\"x\"\nwarehouse=\"w\"\nstate=\"s.duckdb\"\nwindow=\"7x\"\n[[source]]\nkind=\"webex\"\nname=\"a\"\nbase_url=\"http://127.0.0.1:1\"\nclient_id=\"a\"\nclient_secret=\"b\"\nrefresh_token=\"c\"\n",
            "pipeline.window",
        ),
        (
            "[pipeline]\nname=\"x\"\nwarehouse=\"w\"\nstate=\"s.duckdb\"\n[[source]]\nkind=\"webex\"\nname=\"a\"\nbase_url=\"http://127.0.0.1:1\"\nclient_id=\"${CCETL_TEST_UNSET_VAR}\"\nclient_secret=\"b\"\nrefresh_token=\"c\"\n",
            "CCETL_TEST_UNSET_VAR",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("p{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = ccetl(&["run", p.to_str().unwrap()]);
        assert_eq!(code, 2, "case {i}: {err}");
        let line = one_error_line(&err);
        assert!(line.contains(needle), "case {i}: {line}");
        assert!(
            !dir.path().join("s.duckdb").exists(),
            "no state created for a bad config"
        );
    }
    let (code, _, err) = ccetl(&["run", "/nonexistent/pipeline.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(one_error_line(&err).contains("cannot read pipeline file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_exit_3_and_leave_state_untouched() {
    let env = env(sim_config()).await;
    env.run_ok().await;
    let state_path = env.dir.path().join("state.duckdb");
    let snapshot = || {
        let st = ccetl::state::State::open(&state_path).unwrap();
        let s = st.summary().unwrap();
        // The run ledger grows by one failed run; everything else must be unchanged.
        let keep: Vec<&str> = s
            .lines()
            .take_while(|l| !l.starts_with("last runs"))
            .collect();
        (
            keep.join("\n"),
            st.count("tokens").unwrap(),
            st.count("audio_objects").unwrap(),
        )
    };
    let before = snapshot();

    // A refresh token that was revoked (a new one configured, so the stored one is not used).
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, pipeline_toml(&env.sim.base_url(), "srt.1.0000", "")).unwrap();
    let now = env.now().to_rfc3339();
    let pipeline_path = bad.to_str().unwrap().to_string();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || ccetl(&["run", &pipeline_path, "--now", &now]))
            .await
            .unwrap();
    assert_eq!(code, 3, "{err}");
    let line = one_error_line(&err);
    assert!(
        line.contains("re-authorize") && line.contains("'wx'"),
        "{line}"
    );
    assert!(
        !line.contains("sim-client-secret") && !line.contains("srt.1.0000"),
        "no secrets: {line}"
    );
    assert_eq!(snapshot(), before, "state untouched");

    // A wrong client secret on a fresh state (and warehouse: a fresh state beside a used
    // warehouse is refused, pointing at `state rebuild`).
    let text = pipeline_toml(&env.sim.base_url(), "sim-refresh-token-0", "")
        .replace("sim-client-secret", "wrong")
        .replace("state.duckdb", "fresh.duckdb")
        .replace(
            "warehouse = \"warehouse\"",
            "warehouse = \"fresh-warehouse\"",
        );
    std::fs::write(&bad, text).unwrap();
    let pipeline_path = bad.to_str().unwrap().to_string();
    let (code, _, err) = tokio::task::spawn_blocking(move || ccetl(&["run", &pipeline_path]))
        .await
        .unwrap();
    assert_eq!(code, 3, "{err}");
    assert!(
        one_error_line(&err).contains("client_id and client_secret"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_legacy_api_key_is_exit_3_and_check_says_so() {
    let good = env_with(sim_config(), LEGACY_SOURCE).await;
    let path = good.pipeline.to_str().unwrap().to_string();
    let (code, out, err) = tokio::task::spawn_blocking(move || ccetl(&["check", &path]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("legacy (webex_legacy): signature accepted"),
        "{out}"
    );

    let bad = env_with(
        sim_config(),
        &LEGACY_SOURCE.replace("sim-legacy-api-key", "wrong-key-123"),
    )
    .await;
    let path = bad.pipeline.to_str().unwrap().to_string();
    let now = bad.now().to_rfc3339();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        let run = ccetl(&["run", &path, "--source", "legacy", "--now", &now]);
        let check = ccetl(&["check", &path]);
        assert_eq!(check.0, 3, "check: {}", check.2);
        run
    })
    .await
    .unwrap();
    assert_eq!(code, 3, "{err}");
    let line = one_error_line(&err);
    assert!(
        line.contains("source 'legacy'")
            && line.contains("api_key does not belong to user 'reports@sim.example'"),
        "{line}"
    );
    assert!(!line.contains("wrong-key-123"), "no secrets: {line}");
    let st = ccetl::state::State::open(&bad.dir.path().join("state.duckdb")).unwrap();
    assert_eq!(st.count("windows").unwrap(), 0, "nothing committed");
    assert!(
        !bad.warehouse_dir().join("legacy_csr").exists(),
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_is_refused_while_one_runs_and_a_killed_runs_lock_is_taken_over() {
    // Slow API responses keep the first run going long enough to be caught in the act.
    let env = env(ccetl::sim::SimConfig {
        latency_ms: 40,
        ..sim_config()
    })
    .await;
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let now = env.now().to_rfc3339();
    let mut first = Command::new(env!("CARGO_BIN_EXE_ccetl"))
        .args(["run", &pipeline, "--now", &now])
        .env("CCETL_LOG", "ccetl=error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = env.dir.path().join("state.duckdb.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !lock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run took its lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let (p, n) = (pipeline.clone(), now.clone());
    let (code, _, err) = tokio::task::spawn_blocking(move || ccetl(&["run", &p, "--now", &n]))
        .await
        .unwrap();
    let line = one_error_line(&err);
    assert_eq!(code, 1, "{err}");
    assert!(
        line.contains("already running") && line.contains(&format!("pid {}", first.id())),
        "{line}"
    );

    // SIGKILL leaves the lock behind; the next run sees its holder is gone and takes over.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(lock.exists(), "a killed run cannot release its lock");
    let (code, _, err) =
        tokio::task::spawn_blocking(move || ccetl(&["run", &pipeline, "--now", &now]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(!lock.exists(), "released when the run ends");
    assert_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_each_sources_standing_and_alerts_when_stale() {
    let env = env(sim_config()).await;
    let report = env.run_ok().await;
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ccetl(&args)
        })
    };
    let args = |extra: &[&str]| {
        let mut v = vec!["status".to_string(), pipeline.clone()];
        v.extend(extra.iter().map(ToString::to_string));
        v
    };
    let (code, out, err) = run(args(&["--json"])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let source = &report.sources[0];
    assert_eq!(line["source"], "wx");
    assert_eq!(
        line["high_water"]
            .as_str()
            .map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap()),
        source.high_water,
        "{line}"
    );
    assert_eq!(line["windows"], source.windows.len() as u64, "{line}");
    // Recordings and transcripts share the ledger.
    let stored = source
        .windows
        .iter()
        .map(|w| w.audio_stored + w.counts.get("transcripts_stored"))
        .sum::<u64>();
    assert_eq!(line["objects"]["stored"], stored, "{line}");
    assert!(
        line["lag_s"].as_i64().unwrap() > 0,
        "the simulator's clock is in the past"
    );
    assert_eq!(line["stale"], false, "no threshold, no alert");
    // The simulated data is months old: stale against a day, not against ten years.
    let (code, _, err) = run(args(&["--stale", "1d"])).await.unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("stale: wx"), "{err}");
    let (code, out, err) = run(args(&["--stale", "3650d"])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("source") && out.contains("wx"), "{out}");
    let (code, _, err) = run(args(&["--stale", "soon"])).await.unwrap();
    assert_eq!(code, 2, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_query_says_why_once() {
    let env = env(sim_config()).await;
    env.run_ok().await;
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || ccetl(&["query", &pipeline, "SELECT nope FROM calls"]))
            .await
            .unwrap();
    assert_ne!(code, 0);
    assert_eq!(
        err.matches("Referenced column \"nope\" not found").count(),
        1,
        "{err}"
    );
    assert!(!err.contains("Unknown error code"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_cuts_a_backfill_into_disjoint_shards_with_their_pools() {
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    let p = env.pipeline.display().to_string();
    let args = [
        "plan",
        &p,
        "--since",
        "2026-01-01",
        "--until",
        "2026-01-20",
        "--windows-per-shard",
        "5",
        "--json",
    ];
    let (code, out, err) = ccetl(&args);
    assert_eq!(code, 0, "{err}");
    let shards: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    for source in ["wx", "xima"] {
        let mine: Vec<&serde_json::Value> =
            shards.iter().filter(|s| s["source"] == source).collect();
        let windows: u64 = mine.iter().map(|s| s["windows"].as_u64().unwrap()).sum();
        assert_eq!(windows, 19, "{source}: every day once");
        assert!(
            mine.windows(2).all(|p| p[0]["until"] == p[1]["since"]),
            "{source}: shards meet without overlap"
        );
    }
    let xima = shards.iter().find(|s| s["source"] == "xima").unwrap();
    assert_eq!(xima["pool_slots"], 1, "one shard at a time per tenant");
    // Each shard's command line is a run of its range.
    assert_eq!(xima["args"][0], "run");
    assert_eq!(xima["args"][3], "xima");

    let (code, _, err) = ccetl(&["plan", &p, "--source", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no source is named 'nope'"), "{err}");
}

/// `ccetl_runs`: one row per source per run, failed, partial and good alike, as each run's
/// report has it; `ccetl status` reads it when the state is gone (a worker's new disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_leaves_one_history_row_per_source_and_status_reads_it_without_the_state() {
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let now = env.now().to_rfc3339();
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    let run = |n: usize, extra: &[&str]| {
        let report = env.dir.path().join(format!("report{n}.json"));
        let mut args: Vec<String> = ["run", &pipeline, "--now", &now, "--report"]
            .iter()
            .map(ToString::to_string)
            .collect();
        args.push(report.display().to_string());
        args.extend(extra.iter().map(ToString::to_string));
        let (code, _, err) = tokio::task::block_in_place(|| {
            ccetl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        });
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        (code, err, report)
    };

    // 1: Xima refuses the key (3), Webex succeeds; 2: Xima's cap stops its audio (4);
    // 3: both succeed.
    std::fs::write(
        &env.pipeline,
        text.replace("sim-xima-key-acme-main", "wrong-key"),
    )
    .unwrap();
    let (code, err, first) = run(1, &[]);
    assert_eq!(code, 3, "the failed source's kind: {err}");
    std::fs::write(&env.pipeline, &text).unwrap();
    let saved = env.xima_saved_bytes("acme-main");
    env.sim.sim.set_xima_cap(saved * 2 / 5);
    let (code, err, second) = run(2, &["--source", "xima"]);
    assert_eq!(code, 4, "{err}");
    env.sim.sim.set_xima_cap(u64::MAX);
    let (code, err, third) = run(3, &[]);
    assert_eq!(code, 0, "{err}");

    let got = env.strings(
        "SELECT run_id || ' ' || source || ' ' || status || ' ' || exit_code || ' ' || \
         windows || ' ' || requests || ' ' || recordings || ' ' || audio_bytes || ' ' || \
         table_rows || ' ' || coalesce(error, '-') FROM ccetl_runs ORDER BY started_at, source",
    );
    let mut want = Vec::new();
    for (report, statuses) in [
        (&first, vec![("wx", "succeeded 0"), ("xima", "failed 3")]),
        (&second, vec![("xima", "partial 4")]),
        (&third, vec![("wx", "succeeded 0"), ("xima", "succeeded 0")]),
    ] {
        for (name, status) in statuses {
            let s = report["sources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .unwrap();
            let windows = s["windows"].as_array().unwrap();
            let sum = |k: &str| windows.iter().map(|w| w[k].as_u64().unwrap()).sum::<u64>();
            let mut table_rows = std::collections::BTreeMap::<String, u64>::new();
            for w in windows {
                for (t, n) in w["table_rows"].as_object().into_iter().flatten() {
                    *table_rows.entry(t.clone()).or_default() += n.as_u64().unwrap();
                }
            }
            want.push(format!(
                "{} {name} {status} {} {} {} {} {} {}",
                report["id"].as_str().unwrap(),
                windows.len(),
                s["http"]["requests"],
                sum("recordings"),
                sum("audio_bytes"),
                serde_json::to_string(&table_rows).unwrap(),
                s["error"].as_str().unwrap_or("-"),
            ));
        }
    }
    assert_eq!(got, want, "one row per source per run, as its report says");
    assert!(got[1].contains("refused the API key"), "{}", got[1]);
    assert!(!third["sources"][0]["windows"]
        .as_array()
        .unwrap()
        .is_empty());

    // A worker whose disk is new: no state file, the warehouse's history still answers.
    for e in std::fs::read_dir(env.dir.path()).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("state.duckdb") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let (code, out, err) = ccetl(&["status", &pipeline, "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, s) in lines.iter().zip(third["sources"].as_array().unwrap()) {
        assert_eq!(line["source"], s["name"]);
        assert_eq!(line["last_status"], "succeeded", "{line}");
        assert_eq!(line["high_water"], s["high_water"], "{line}");
        assert!(line["last_success"].is_string(), "{line}");
        assert_eq!(line["windows"], 0, "the state is gone: {line}");
    }
    assert!(
        !env.dir.path().join("state.duckdb").exists(),
        "status makes no state file"
    );
    let (code, _, err) = ccetl(&["status", &pipeline, "--stale", "1d"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("stale: wx, xima"), "{err}");
}

/// `ccetl describe`: what the provider reads when a DAG is parsed. The pools are `plan`'s,
/// each source names its API and endpoints and the tables it writes, and no secret of the
/// pipeline file is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_names_each_sources_api_tables_and_pool_and_no_secret() {
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    let p = env.pipeline.display().to_string();
    let (code, out, err) = ccetl(&["describe", &p, "--json"]);
    assert_eq!(code, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (code, plan, err) = ccetl(&[
        "plan",
        &p,
        "--since",
        "2026-01-01",
        "--until",
        "2026-01-03",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let plan: Vec<serde_json::Value> = serde_json::from_str(&plan).unwrap();
    for s in d["sources"].as_array().unwrap() {
        let shard = plan.iter().find(|p| p["source"] == s["source"]).unwrap();
        assert_eq!(s["pool"], shard["pool"], "{s}");
        assert_eq!(s["pool_slots"], shard["pool_slots"], "{s}");
        assert_eq!(s["api"].as_str().unwrap(), env.sim.base_url(), "{s}");
        assert!(!s["reads"].as_array().unwrap().is_empty(), "{s}");
    }
    let wx = &d["sources"][0];
    assert_eq!(wx["kind"], "webex");
    assert!(wx["tables"]
        .as_array()
        .unwrap()
        .contains(&"webex_tasks".into()));
    assert!(wx["views"].as_array().unwrap().contains(&"calls".into()));
    assert_eq!(d["history"], "ccetl_runs");
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    for secret in ["sim-client-secret", "sim-xima-key-acme-main"] {
        assert!(text.contains(secret), "the pipeline holds {secret}");
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
}
