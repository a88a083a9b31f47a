//! The warehouse in a real S3-compatible store (moto on 127.0.0.1): every source lands there
//! equal to the truth, python's deltalake and polars read every table there as `ccetl query`
//! does through its local mirror, a rerun adds nothing, and the bucket holds nothing but
//! tables, audio and manifests.

mod common;

use common::s3::S3;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_sources_land_in_s3_equal_to_the_truth() {
    let s3 = S3::start().await;
    let env = env_with(xima_sim_config(), &format!("{LEGACY_SOURCE}{XIMA_SOURCE}")).await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    assert!(env.config().warehouse.starts_with("s3://"));

    let report = env.run_ok().await;
    assert_matches_truth(&env);
    assert!(report.totals().audio_stored > 50);
    assert_eq!(
        env.count("SELECT count(*) FROM legacy_csr"),
        env.legacy_truth().tasks.len() as i64
    );
    assert_eq!(
        env.count("SELECT count(*) FROM xima_calls"),
        env.xima_truth("acme-main").calls.len() as i64
    );

    // Only what readers should see: Parquet under table folders, audio, manifests.
    let before = env.object_keys().await;
    assert_no_stray_objects(&before);
    let audio = before.iter().filter(|k| k.starts_with("audio/")).count() as u64;
    assert_eq!(
        audio,
        report.totals().audio_stored,
        "one object per stored recording"
    );

    // Every table is a Delta table in the bucket, and python's deltalake and polars read
    // each as DuckDB does through the mirror.
    let tables: Vec<&str> = ccetl::source::tables()
        .map(|t| t.name)
        .filter(|t| {
            before
                .iter()
                .any(|k| k.starts_with(&format!("{t}/_delta_log/")))
        })
        .collect();
    assert!(tables.len() >= 8, "{tables:?}");
    let keys: std::collections::BTreeMap<&str, &str> = ccetl::source::tables()
        .map(|t| (t.name, t.keys[0]))
        .collect();
    let opts = serde_json::json!({
        "AWS_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
    });
    let mut args = vec![serde_json::to_string(&keys).unwrap(), opts.to_string()];
    args.extend(tables.iter().map(|t| format!("{}/{t}", s3.url("wh"))));
    let read = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::readers::run(common::readers::READ_TABLES, &args, &[])
    })
    .await
    .unwrap();
    for t in &tables {
        let rows = env.count(&format!("SELECT count(*) FROM {t}"));
        assert_eq!(read[*t]["rows"], rows, "{t}: deltalake on S3 = DuckDB");
        assert_eq!(read[*t]["polars_rows"], rows, "{t}: polars on S3 = DuckDB");
        assert_eq!(read[*t]["protocol"], serde_json::json!([1, 2]), "{t}");
    }

    // A rerun with nothing new changes nothing in the bucket.
    env.run_ok().await;
    assert_eq!(env.object_keys().await, before);

    // A file no version names (a killed run's, say): ccetl query does not fetch it, and
    // `ccetl vacuum` finds it in the bucket and keeps it (it is younger than the retention:
    // a running window's, for all vacuum knows).
    let orphan = before
        .iter()
        .find(|k| k.starts_with("webex_tasks/source=") && k.ends_with(".parquet"))
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0
        .to_string()
        + "/part-20260101T000000Z-00000000deadbeef.parquet";
    env.open_warehouse()
        .put(&orphan, bytes::Bytes::from_static(b"PAR1"))
        .await
        .unwrap();

    // `ccetl query` on the s3:// pipeline, as a user runs it.
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let cache = env.dir.path().join("cache");
    let cache_env = cache.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ccetl"))
            .args([
                "query",
                &pipeline,
                "SELECT count(*) AS n FROM recordings WHERE audio_status = 'stored'",
                "--format",
                "csv",
            ])
            .env("CCETL_CACHE_DIR", &cache_env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(csv.trim(), format!("n\n{audio}"));

    // The mirror holds each table's log and only the files its snapshot names.
    let mirror = std::fs::read_dir(cache.join("warehouses"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for t in &tables {
        let files = parquet_files_outside_log(&mirror.join(t));
        assert_eq!(
            read[*t]["files"], files,
            "{t}: mirrored data files = snapshot's"
        );
    }

    let pipeline = env.pipeline.to_string_lossy().to_string();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || ccetl(&["vacuum", &pipeline, "--json"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    let tables: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(tables.len() >= 8, "{out}");
    for t in &tables {
        assert_eq!(t["deleted"], serde_json::json!([]), "{t}");
        let young = if t["table"] == "webex_tasks" { 1 } else { 0 };
        assert_eq!(t["young"], young, "{t}");
    }
    let mut after = before.clone();
    after.push(orphan);
    after.sort();
    assert_eq!(env.object_keys().await, after, "vacuum deleted nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_storage_option_is_a_clear_config_error() {
    let s3 = S3::start().await;
    let env = env(sim_config()).await;
    env.set_warehouse(&s3.warehouse_toml("wh").replace("aws_region", "aws_regoin"));
    let (_, result) = env.run().await;
    let e = result.expect_err("refused");
    assert!(e.to_string().contains("storage_options.aws_regoin"), "{e}");
}

/// Objects above one part (big Parquet files, long recordings) go up as multipart uploads
/// that leave neither a marker nor an incomplete upload behind; small ones are one PUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_objects_go_up_in_parts_and_leave_nothing_behind() {
    let s3 = S3::start().await;
    let env = env(sim_config()).await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    let wh = env.open_warehouse();
    let part = ccetl::sink::upload::PART_SIZE;
    let big: Vec<u8> = (0..part * 2 + 12345).map(|i| (i % 251) as u8).collect();
    wh.put("webex_tasks/big.parquet", big.clone().into())
        .await
        .unwrap();
    wh.put("webex_tasks/small.parquet", vec![7u8; 10].into())
        .await
        .unwrap();
    let got = wh.get("webex_tasks/big.parquet").await.unwrap().unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "read back byte for byte");
    // S3 gives a multipart object the ETag `<md5 of the part md5s>-<parts>`.
    use object_store::ObjectStoreExt;
    for (key, parts) in [("big", "-3"), ("small", "")] {
        let path = wh.path(&[&format!("webex_tasks/{key}.parquet")]);
        let etag = wh.store().head(&path).await.unwrap().e_tag.unwrap();
        let suffix = etag.trim_matches('"').rsplit_once('-').map(|(_, n)| n);
        assert_eq!(suffix, parts.strip_prefix('-'), "{key}: {etag}");
    }
    assert_eq!(s3.incomplete_uploads().await, 0);
    assert_eq!(
        env.object_keys().await,
        vec!["webex_tasks/big.parquet", "webex_tasks/small.parquet"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_checkpoints_in_s3_change_only_by_compare_and_swap() {
    let s3 = S3::start().await;
    let env = common::env(sim_config()).await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    let cfg = env.config();
    let wh = ccetl::sink::Warehouse::open(&cfg.warehouse, &cfg.storage_options).unwrap();
    assert_compare_and_swap_races(&wh).await;
}

/// The Parquet files under `dir`, its `_delta_log` left out (checkpoints are Parquet too).
fn parquet_files_outside_log(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.ends_with("_delta_log"))
        .map(|p| {
            if p.is_dir() {
                parquet_files_outside_log(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}
