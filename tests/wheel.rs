//! `pip install` (issue 47): maturin builds the wheel from the one release build (same
//! profile, same target dir: every dependency is fresh and DuckDB is not built again; cargo
//! may compile ccetl's own crate once more, about two minutes, when `cargo test` was the last
//! to build its binary),
//! a fresh virtualenv installs only that wheel, and `ccetl demo` and `ccetl query` run from
//! it; the Airflow provider is in the same wheel and registers itself with Airflow.
//!
//! maturin comes from `python/requirements-wheel.txt`, installed on first use into the
//! virtualenv `CCETL_WHEEL_VENV` (default `~/.cache/ccetl-wheel`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(c: &mut Command) -> Output {
    let out = c.output().expect("runs");
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_wheel_alone_installs_ccetl_and_its_airflow_provider_into_a_fresh_venv() {
    let tools = common::venv(
        "CCETL_WHEEL_VENV",
        ".cache/ccetl-wheel",
        "python/requirements-wheel.txt",
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = PathBuf::from(env!("CARGO_BIN_EXE_ccetl"));
    // …/target/release/ccetl: the target dir this test binary was built in.
    let target = built.parent().unwrap().parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");

    let out = run(Command::new(tools.join("bin/maturin"))
        .args(["build", "--release", "--out"])
        .arg(&wheels)
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", target));
    let log = String::from_utf8_lossy(&out.stderr);
    let compiled: Vec<&str> = log
        .lines()
        .filter(|l| l.trim_start().starts_with("Compiling ") && !l.contains("Compiling ccetl v"))
        .collect();
    assert!(
        compiled.is_empty(),
        "building the wheel compiled dependencies again (another profile or flags?): {compiled:?}"
    );
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("a wheel");
    eprintln!(
        "{}: {} bytes",
        wheel.display(),
        wheel.metadata().unwrap().len()
    );

    // A fresh venv with only the wheel (no index: nothing else is needed).
    let venv = dir.path().join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheel));
    let ccetl = venv.join("bin/ccetl");
    assert_eq!(
        std::fs::read(&ccetl).unwrap(),
        std::fs::read(&built).unwrap(),
        "the wheel carries the binary the release build made"
    );
    // The demo and a query, from the venv, with a PATH that has no other ccetl.
    let path = format!("{}:/usr/bin:/bin", venv.join("bin").display());
    let demo = dir.path().join("demo");
    let out = run(Command::new(&ccetl)
        .args(["demo", "--dir"])
        .arg(&demo)
        .env("PATH", &path));
    assert!(String::from_utf8_lossy(&out.stdout).contains("warehouse:"));
    let pipeline = demo.join("pipeline.toml");
    let out = run(Command::new("ccetl")
        .arg("query")
        .arg(&pipeline)
        .arg("SELECT count(*) AS calls FROM calls")
        .arg("--format")
        .arg("csv")
        .env("PATH", &path));
    let text = String::from_utf8_lossy(&out.stdout);
    let calls: u64 = text.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(calls > 0, "{text}");
    // `python -m ccetl` finds the same binary; the provider lists itself to Airflow.
    let out = run(Command::new(venv.join("bin/python"))
        .args(["-m", "ccetl", "--version"])
        .env("PATH", "/usr/bin:/bin"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ccetl"));
    let out = run(Command::new(venv.join("bin/python")).args([
        "-c",
        "import importlib.metadata as m, json\n\
         eps = [e for e in m.entry_points(group='apache_airflow_provider') if e.name == 'provider_info']\n\
         print(json.dumps(eps[0].load()()))",
    ]));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["package-name"], "ccetl", "{info}");
    assert_eq!(
        info["connection-types"][0]["hook-class-name"],
        "ccetl_airflow.hooks.CcetlHook"
    );
    // The pools helper needs no Airflow: `ccetl describe` through it.
    let described = run(Command::new(&ccetl)
        .arg("describe")
        .arg(&pipeline)
        .arg("--json"));
    let mut helper = Command::new(venv.join("bin/python"))
        .args(["-m", "ccetl_airflow.pools"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    helper
        .stdin
        .take()
        .unwrap()
        .write_all(&described.stdout)
        .unwrap();
    let pools = helper.wait_with_output().unwrap();
    assert!(pools.status.success());
    let pools: serde_json::Value = serde_json::from_slice(&pools.stdout).unwrap();
    assert_eq!(
        pools.as_object().unwrap().len(),
        3,
        "three API budgets: {pools}"
    );
}
