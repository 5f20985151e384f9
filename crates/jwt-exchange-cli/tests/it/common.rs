//! Running the real binary: temporary directories, free ports, a server process that is killed
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_jwt-exchange");

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let p = std::env::temp_dir().join(format!("jwtx-e2e-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the binary to completion with `stdin`.
pub fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// A running `jwt-exchange serve`, killed on drop; its stderr goes to a log file.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl ServerProcess {
    pub async fn start(config: &Path, dir: &Path) -> Self {
        let s = Self::spawn(config, dir);
        s.wait_healthy().await;
        s
    }

    /// Starts `serve` on a free port without waiting for it: for a configuration whose
    /// `/healthz` is not on the API's listener (`server.ops_listen_address`).
    pub fn spawn(config: &Path, dir: &Path) -> Self {
        let port = free_port();
        let log = dir.join(format!("server-{port}.log"));
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info,jwt_exchange=trace")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.base)).await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become healthy; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A YAML configuration for one provider at `jwks_url` with issuer `iss`.
pub fn config_yaml(iss: &str, jwks_url: &str, extra_provider: &str, extra_top: &str) -> String {
    format!(
        r#"auth:
  providers:
    jwt:
      issuer: {iss}
      jwks_url: {jwks_url}
      audiences: ["api://lakefs"]
      jwks_refetch_cooldown: 1s
{extra_provider}
  groups:
    readers: [ReadAll]
    admins: [Admin]
  policies:
    ReadAll:
      statement:
        - effect: allow
          action: ["fs:Read*"]
          resource: "*"
    Admin:
      statement:
        - effect: allow
          action: ["auth:*"]
          resource: "*"
session_store:
  type: memory
bearer:
  secrets:
    - kid: test-1
      secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8
{extra_top}
"#
    )
}
