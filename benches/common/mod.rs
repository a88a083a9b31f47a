//! `bench/results.json`, shared by the benches: each writes its own figure's key and keeps
//! the others', so `make bench` leaves one file with every figure.

use std::path::Path;

const PATH: &str = "bench/results.json";

/// Sets `key` to `value` in `bench/results.json`, keeping the other figures.
pub fn record(key: &str, value: serde_json::Value) {
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read(PATH)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    all.insert(key.to_string(), value);
    if let Some(dir) = Path::new(PATH).parent() {
        std::fs::create_dir_all(dir).expect("bench dir");
    }
    let text = serde_json::to_string_pretty(&all).expect("json") + "\n";
    std::fs::write(PATH, text).expect("write bench/results.json");
    println!("wrote {PATH} ({key})");
}
