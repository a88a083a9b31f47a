//! Secrets written into the pipeline file itself, and whether others can read that file.
//!
//! `${ENV}` references are the recommended form; a literal secret is fine in a file only its
//! owner reads. `ccetl check` warns otherwise, naming the keys and the fix.

use std::path::Path;

/// Keys whose values are credentials, wherever they appear (sources, storage_options).
const SECRET_KEYS: [&str; 9] = [
    "client_secret",
    "refresh_token",
    "api_key",
    "webhook_secret",
    "aws_secret_access_key",
    "aws_session_token",
    "azure_storage_account_key",
    "azure_storage_sas_key",
    "google_service_account_key",
];

/// `table.key` paths of secrets written literally (not `${ENV}`) in pipeline `text`.
pub fn literal_secrets(text: &str) -> Vec<String> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk(&toml::Value::Table(doc), "", &mut found);
    found
}

fn walk(v: &toml::Value, at: &str, found: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let here = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match v {
                    toml::Value::String(s)
                        if SECRET_KEYS.contains(&k.as_str()) && !s.contains("${") =>
                    {
                        found.push(here);
                    }
                    _ => walk(v, &here, found),
                }
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// A warning when `path` holds literal secrets and its group or others may read it.
pub fn warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let keys = literal_secrets(&text);
    if keys.is_empty() {
        return None;
    }
    Some(format!(
        "{} holds secrets ({}) and is readable by others (mode {mode:o}): chmod 600 it, or use ${{ENV}} references",
        path.display(),
        keys.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_secrets_only() {
        let text = r#"
[pipeline]
name = "p"
storage_options = { aws_secret_access_key = "abc", aws_region = "x" }
[[source]]
client_secret = "s3cr3t"
refresh_token = "${WX_REFRESH}"
[[source]]
api_key = "k"
"#;
        assert_eq!(
            literal_secrets(text),
            vec![
                "pipeline.storage_options.aws_secret_access_key",
                "source[0].client_secret",
                "source[1].api_key"
            ]
        );
    }

    #[test]
    fn warns_for_a_readable_file_with_literal_secrets() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(&p, "[[source]]\napi_key = \"k\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = warning(&p).unwrap();
        assert!(
            w.contains("source[0].api_key") && w.contains("mode 644"),
            "{w}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(warning(&p), None);
        std::fs::write(&p, "[[source]]\napi_key = \"${K}\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(warning(&p), None);
    }
}
