//! A real S3-compatible server for tests: moto's server mode on 127.0.0.1.
//!
//! `.ci/run` starts one and sets `CCETL_TEST_S3_ENDPOINT`; without it, each test starts its
//! own `python3 -m moto.server` (installing moto from PyPI first if needed) and stops it when
//! done. A server that cannot start fails the test: object storage is not optional.

use std::process::{Child, Command, Stdio};

use super::cloud::{free_port, spawn_listening};

pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    child: Option<Child>,
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Installs moto from PyPI once if it is missing, so `cargo test --release` works on a fresh
/// machine as the README says (`.ci/run` does the same before starting its server).
fn ensure_moto() {
    static ONCE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = ONCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *done {
        return;
    }
    let present = Command::new("python3")
        .args(["-c", "import moto.server, flask_cors"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "moto[server]"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "pip install 'moto[server]' failed: the S3 tests need it"
        );
    }
    *done = true;
}

impl S3 {
    /// A server (shared or our own) and a new empty bucket on it.
    pub async fn start() -> S3 {
        let (endpoint, child) = match std::env::var("CCETL_TEST_S3_ENDPOINT") {
            Ok(e) if !e.is_empty() => (e, None),
            _ => {
                ensure_moto();
                let port = free_port();
                let mut cmd = Command::new("python3");
                cmd.args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ]);
                let child = spawn_listening(cmd, port, "python3 -m moto.server (pip install 'moto[server]', or set CCETL_TEST_S3_ENDPOINT)");
                (format!("http://127.0.0.1:{port}"), Some(child))
            }
        };
        let bucket = format!("ccetl-test-{:016x}", rand::random::<u64>());
        // moto does not check signatures: a plain PUT creates the bucket.
        let status = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("S3 server reachable")
            .status();
        assert!(status.is_success(), "creating bucket: {status}");
        S3 {
            endpoint,
            bucket,
            child,
        }
    }

    /// The `[pipeline]` lines for a warehouse in this bucket.
    /// The bucket's URL at `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    pub fn warehouse_toml(&self, prefix: &str) -> String {
        format!(
            "warehouse = \"s3://{}/{prefix}\"\nstorage_options = {{ aws_endpoint = \"{}\", aws_allow_http = \"true\", aws_access_key_id = \"test\", aws_secret_access_key = \"test\", aws_region = \"us-east-1\" }}\n",
            self.bucket, self.endpoint
        )
    }

    /// Multipart uploads started and neither completed nor aborted, as `aws s3api
    /// list-multipart-uploads` shows them.
    pub async fn incomplete_uploads(&self) -> usize {
        let xml = reqwest::get(format!("{}/{}?uploads", self.endpoint, self.bucket))
            .await
            .expect("S3 server reachable")
            .text()
            .await
            .expect("a listing");
        xml.matches("<UploadId>").count()
    }
}
