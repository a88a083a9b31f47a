//! Independent Delta readers: python `deltalake` (delta-rs) and `polars`, in a venv pinned by
//! `tests/requirements-readers.txt`, installed on first use (as the Airflow test does).

use std::path::PathBuf;
use std::process::Command;

/// The venv's python, installing the pinned readers if the venv is missing or stale.
pub fn python() -> PathBuf {
    super::venv(
        "CCETL_READERS_VENV",
        ".cache/ccetl-readers",
        "tests/requirements-readers.txt",
    )
    .join("bin/python")
}

/// Runs `script` with the readers' python and `args`; returns its stdout as JSON.
pub fn run(script: &str, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    // deltalake's runtime threads can abort the interpreter's teardown ("terminate called
    // without an active exception") after the answer is printed: leave without one.
    let script =
        format!("{script}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_os._exit(0)\n");
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "reader script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// For each table URI given: its version, protocol, row count read by `deltalake` and by
/// `polars`, and the sorted values of its first key column (as text), read by `deltalake`.
pub const READ_TABLES: &str = r#"
import json, sys
from deltalake import DeltaTable
import polars as pl
out = {}
key = json.loads(sys.argv[1])
opts = json.loads(sys.argv[2])
for uri in sys.argv[3:]:
    dt = DeltaTable(uri, storage_options=opts or None)
    t = dt.to_pyarrow_table()
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    col = key[name]
    p = dt.protocol()
    out[name] = {
        "version": dt.version(),
        "protocol": [p.min_reader_version, p.min_writer_version],
        "rows": t.num_rows,
        "files": len(dt.file_uris()),
        "polars_rows": pl.read_delta(uri, storage_options=opts or None).height,
        "keys": sorted(str(v) for v in t.column(col).to_pylist()),
        "partitions": dt.metadata().partition_columns,
    }
print(json.dumps(out))
"#;
