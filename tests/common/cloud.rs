//! Azurite, Microsoft's own Azure Storage emulator (from npm), on 127.0.0.1 for `az://`
//! warehouses, plus the process helpers the S3 server shares. Each test starts its own and
//! stops it when done; one that cannot be installed or started fails the test.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A port nothing listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `cmd` (quiet) and waits until it listens on `port`.
pub fn spawn_listening(mut cmd: Command, port: u16, what: &str) -> Child {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{what} never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Where test tools from npm live between runs (`.ci/run` installs them there first).
fn tools_dir() -> PathBuf {
    match std::env::var_os("CCETL_TOOLS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/ccetl-tools"),
    }
}

static INSTALL: Mutex<()> = Mutex::new(());

fn azurite_bin() -> PathBuf {
    let _once = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tools_dir();
    let bin = dir.join("node_modules/.bin/azurite-blob");
    if !bin.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "azurite@3",
            ])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok && bin.exists(),
            "npm install azurite failed: the Azure tests need it"
        );
    }
    bin
}

/// Azurite's well-known development account and key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Emulator {
    pub endpoint: String,
    /// The container, new and empty.
    pub bucket: String,
    /// `[pipeline]` lines pointing a warehouse at it, `{PREFIX}` to fill in.
    toml: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    pub fn warehouse_toml(&self, prefix: &str) -> String {
        self.toml.replace("{PREFIX}", prefix)
    }

    /// Azurite's blob service with the well-known development account.
    pub async fn azurite() -> Emulator {
        let port = free_port();
        let data = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(azurite_bin());
        cmd.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--location",
        ])
        .arg(data.path());
        let child = spawn_listening(cmd, port, "azurite-blob");
        let endpoint = format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}");
        let bucket = format!("ccetl-test-{:08x}", rand::random::<u32>());
        create_container(&endpoint, AZURITE_ACCOUNT, AZURITE_KEY, &bucket).await;
        let toml = format!(
            "warehouse = \"az://{bucket}/{{PREFIX}}\"\nstorage_options = {{ azure_storage_account_name = \"{AZURITE_ACCOUNT}\", azure_storage_account_key = \"{AZURITE_KEY}\", azure_storage_endpoint = \"{endpoint}\", azure_allow_http = \"true\" }}\n"
        );
        Emulator {
            endpoint,
            bucket,
            toml,
            child,
            _data: data,
        }
    }
}

/// Creates a container with a Shared Key request (object_store has no call for it).
async fn create_container(endpoint: &str, account: &str, key: &str, container: &str) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let version = "2021-08-06";
    let path = format!("{}/{container}", url::Url::parse(endpoint).unwrap().path());
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}{path}\nrestype:container"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&b64.decode(key).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = b64.encode(mac.finalize().into_bytes());
    let resp = reqwest::Client::new()
        .put(format!("{endpoint}/{container}?restype=container"))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("content-length", "0")
        .header("authorization", format!("SharedKey {account}:{signature}"))
        .send()
        .await
        .expect("azurite reachable");
    let status = resp.status();
    assert!(
        status.is_success(),
        "creating container: {status} {}",
        resp.text().await.unwrap_or_default()
    );
}
