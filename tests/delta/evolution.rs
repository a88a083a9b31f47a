//! A table's log as others may leave it: written by an older ccetl (a column fewer), the
//! next commit adds the column; upgraded by a newer writer to a feature ccetl cannot write,
//! the commit is refused in one line and the table left as it was.

use std::path::Path;

use crate::housekeeping::commit_day;

/// Rewrites the `metaData` or `protocol` action of `log`'s version 0 with `edit`.
fn edit_version_zero(log: &Path, action: &str, edit: impl Fn(&mut serde_json::Value)) {
    let path = log.join(format!("{:020}.json", 0));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(a) = v.get_mut(action) {
                edit(a);
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

fn local_warehouse(dir: &Path) -> ccetl::sink::Warehouse {
    let url = url::Url::from_directory_path(dir).unwrap();
    ccetl::sink::Warehouse::open(url.as_str().trim_end_matches('/'), &Default::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_an_older_schema_created_gains_the_new_column_in_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let wh = local_warehouse(dir.path());
    commit_day(&wh, 0).await;
    let table = dir.path().join("webex_tasks");
    let log = table.join("_delta_log");
    // As if created by a ccetl whose tasks had no queue_name yet.
    edit_version_zero(&log, "metaData", |m| {
        let mut schema: serde_json::Value =
            serde_json::from_str(m["schemaString"].as_str().unwrap()).unwrap();
        let fields = schema["fields"].as_array_mut().unwrap();
        fields.retain(|f| f["name"] != "queue_name");
        m["schemaString"] = serde_json::Value::String(schema.to_string());
    });
    let columns = |v: u64| {
        crate::common::readers::run(
            r#"
import json, sys
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1], version=int(sys.argv[2]))
t = dt.to_pyarrow_table()
print(json.dumps({"columns": t.column_names, "rows": t.num_rows,
                  "queue": sorted(str(x) for x in t.column("queue_name").to_pylist()) if "queue_name" in t.column_names else None}))
"#,
            &[&table.display().to_string(), &v.to_string()],
            &[],
        )
    };
    let before = columns(1);
    assert!(
        !before["columns"]
            .as_array()
            .unwrap()
            .contains(&"queue_name".into()),
        "{before}"
    );
    assert_eq!(commit_day(&wh, 1).await, 2);
    let two = std::fs::read_to_string(log.join(format!("{:020}.json", 2))).unwrap();
    assert!(
        two.contains("\"metaData\"") && two.contains("queue_name"),
        "the commit carries the wider schema: {two}"
    );
    let after = columns(2);
    assert_eq!(after["rows"], 2, "{after}");
    assert!(
        after["columns"]
            .as_array()
            .unwrap()
            .contains(&"queue_name".into()),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_upgraded_to_a_feature_ccetl_cannot_write_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let wh = local_warehouse(dir.path());
    commit_day(&wh, 0).await;
    let log = dir.path().join("webex_tasks/_delta_log");
    edit_version_zero(&log, "protocol", |p| {
        *p = serde_json::json!({
            "minReaderVersion": 3, "minWriterVersion": 7,
            "readerFeatures": ["futureFeature"], "writerFeatures": ["futureFeature"],
        });
    });
    let entries = |d: &Path| std::fs::read_dir(d).unwrap().count();
    let before = entries(&log);
    let e = crate::housekeeping::try_commit_day(&wh, 1)
        .await
        .expect_err("a feature ccetl cannot write");
    let line = ccetl::error::one_line(&anyhow::Error::new(e));
    assert!(line.contains("Delta table webex_tasks"), "{line}");
    assert!(line.contains("futureFeature"), "names the feature: {line}");
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(entries(&log), before, "nothing committed");
}
