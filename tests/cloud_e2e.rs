//! An `az://` warehouse against Azurite on 127.0.0.1: a run lands equal to the truth with
//! every audio object's hash (some sent in parts), the container holds nothing but tables,
//! audio and manifests, and a rerun changes nothing; leases and checkpoints race by
//! compare-and-swap (Azurite checks If-Match itself).

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
    assert_eq!(assert_audio_present(&env) as u64, stored);
    let big = env.count(&format!(
        "SELECT count(*) FROM recordings WHERE audio_bytes > {}",
        ccetl::sink::upload::PART_SIZE
    ));
    assert!(big > 0, "some recordings went up in parts");
    env.run_ok().await;
    assert_eq!(env.object_keys().await, keys, "a rerun changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_checkpoints_in_azurite_change_only_by_compare_and_swap() {
    let store = Emulator::azurite().await;
    let env = env(sim_config()).await;
    env.set_warehouse(&store.warehouse_toml("races"));
    assert_compare_and_swap_races(&env.open_warehouse()).await;
}
