//! An `az://` warehouse against Azurite on 127.0.0.1: a run lands equal to the truth with
//! every audio object's hash (some sent in parts), the container holds nothing but tables,
//! audio and manifests, and a rerun changes nothing.

mod common;

use ccetl::sim::SimConfig;
use common::cloud::Emulator;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_warehouse_lands_equal_to_the_truth() {
    let store = Emulator::azurite().await;
    let env = env(SimConfig {
        audio_rate: 48_000,
        calls_per_day: 8,
        ..sim_config()
    })
    .await;
    env.set_warehouse(&store.warehouse_toml("wh"));
    let report = env.run_ok().await;
    assert_matches_truth(&env);
    let stored = report.totals().audio_stored;
    assert!(stored > 0);
    let keys = env.object_keys().await;
    assert_no_stray_objects(&keys);
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("audio/")).count() as u64,
        stored
    );
    // Every object whole, including those that went up in parts.
    let mut big = 0;
    for b in env.sql(
        "SELECT audio_uri, audio_sha256, audio_bytes FROM recordings WHERE audio_status = 'stored'",
    ) {
        use arrow::array::AsArray;
        use sha2::Digest;
        let (uri, sha) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
        );
        let bytes = b.column(2).as_primitive::<arrow::datatypes::Int64Type>();
        for i in 0..b.num_rows() {
            let data = env.read_uri(uri.value(i));
            assert_eq!(hex::encode(sha2::Sha256::digest(&data)), sha.value(i));
            if bytes.value(i) as usize > ccetl::sink::upload::PART_SIZE {
                big += 1;
            }
        }
    }
    assert!(big > 0, "some recordings went up in parts");
    env.run_ok().await;
    assert_eq!(env.object_keys().await, keys, "a rerun changes nothing");
}
