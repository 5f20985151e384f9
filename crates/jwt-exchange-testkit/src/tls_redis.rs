//! A TLS-only `redis-server` of a test's own, with a CA, a server and a client certificate
//! made by `openssl` for the run ([`make_certificates`]): for the TLS tests of the store
//! backends and the binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use jwt_exchange::session::SessionId;

use crate::services::is_ci;

/// A running TLS-only `redis-server` on a free loopback port, stopped (and its files removed)
/// on drop. PEM files in [`dir`](Self::dir): `ca.crt`, `server.crt`/`.key` (for `localhost`),
/// `client.crt`/`.key`.
pub struct TlsRedis {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TlsRedis {
    /// Starts one; with `mutual`, clients must present a certificate signed by the test CA.
    /// `None` (after printing `skipped: …`) when `redis-server` or `openssl` is missing, except
    /// under `CI=true`.
    ///
    /// # Panics
    ///
    /// When a tool is missing under `CI=true`, or the server does not start.
    pub async fn start(mutual: bool) -> Option<TlsRedis> {
        for (tool, version) in [("redis-server", "--version"), ("openssl", "version")] {
            let found = Command::new(tool)
                .arg(version)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                assert!(!is_ci(), "{tool} not found (CI=true requires it)");
                println!("skipped: {tool} not found");
                return None;
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "jwtx-redis-tls-{}",
            &SessionId::generate().as_str()[..12]
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        make_certificates(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let file = |name: &str| dir.join(name).display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &file("server.crt")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.crt")])
            .args(["--tls-auth-clients", if mutual { "yes" } else { "no" }])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = TlsRedis { child, dir, port };
        crate::services::wait_listening(port, "redis-server").await;
        Some(server)
    }

    /// `rediss://localhost:<port>` (the name in the server's certificate; `127.0.0.1` is
    /// not in it, which host-name checks can use).
    pub fn url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the PEM files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The contents of one of the PEM files.
    ///
    /// # Panics
    ///
    /// When the file does not exist.
    pub fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).expect("a PEM file of the run")
    }
}

/// Writes a P-256 CA (`ca.crt`, `ca.key`), and a server (`server.crt`/`.key`, for
/// `localhost` only) and a client certificate (`client.crt`/`.key`) it signed, into
/// `dir`, with the `openssl` command-line tool.
///
/// # Panics
///
/// When `openssl` is missing or fails.
pub fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca = [
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=jwtx test CA",
    ];
    run(&[&["req", "-x509"][..], &ec, &ca].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")
        .expect("write client.ext");
    for who in ["server", "client"] {
        let (key, csr, crt, ext, subject) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.crt"),
            format!("{who}.ext"),
            format!("/CN=jwtx test {who}"),
        );
        run(&[
            &["req"][..],
            &ec,
            &["-keyout", &key, "-out", &csr, "-subj", &subject],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            &ext,
        ]);
    }
}

/// An error's message and its sources', `: `-separated: what a TLS test matches the
/// handshake's reason (`UnknownIssuer`, `CertificateRequired`, …) against.
///
/// ```
/// let e = std::io::Error::other("outer");
/// assert_eq!(jwt_exchange_testkit::tls_redis::error_chain(&e), "outer");
/// ```
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
