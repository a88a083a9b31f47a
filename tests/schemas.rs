//! `schemas/{table}.json` is the documented contract; the code's Arrow schemas must match it.
//! Regenerate after a deliberate change with `UPDATE_SCHEMAS=1 cargo test --release --test schemas`.

use std::path::PathBuf;

#[test]
fn code_schemas_match_schema_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut mismatched = Vec::new();
    for table in ccetl::tables::all() {
        let path = dir.join(format!("{}.json", table.name));
        let want = ccetl::schema::to_json(table);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            mismatched.push(format!("{}:\n{want}", path.display()));
        }
    }
    assert!(
        mismatched.is_empty(),
        "schema files differ from the code:\n{}",
        mismatched.join("\n")
    );
    // Every file in schemas/ belongs to a table the code writes.
    let known: Vec<String> = ccetl::tables::all()
        .map(|t| format!("{}.json", t.name))
        .collect();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(
            known.contains(&name),
            "schemas/{name} has no table in the code"
        );
    }
}

#[test]
fn example_pipelines_parse() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let env = |k: &str| Some(format!("test-{k}"));
    for name in ["demo.toml", "production.toml", "airflow-demo.toml"] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        ccetl::config::PipelineConfig::parse(&path, &text, &env)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The README's table of tables is the registry's: every table, its one-line docs and its
/// key columns, in the registry's order.
#[test]
fn readme_lists_every_table_as_the_registry_declares_it() {
    let readme = include_str!("../README.md");
    let header = "| table | one row per | key columns |";
    let start = readme.find(header).expect("the README's table of tables");
    let rows: Vec<&str> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let want: Vec<String> = ccetl::tables::all()
        .map(|t| {
            let keys: Vec<String> = t.keys.iter().map(|k| format!("`{k}`")).collect();
            format!("| `{}` | {} | {} |", t.name, t.docs, keys.join(", "))
        })
        .collect();
    assert_eq!(rows, want, "README table of tables vs the registry");
}
