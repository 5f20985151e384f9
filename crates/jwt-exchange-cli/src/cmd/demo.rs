//! `jwt-exchange demo [--serve]`: the whole flow with nothing else installed.
//!
//! Starts a development IdP in-process (its own keys, JWKS on a loopback port), starts the
//! server on the embedded default store (in a temporary directory), mints an Entra-shaped and an
//! Auth0-shaped client-credentials token, and walks the flow over real HTTP, printing each step
//! and the equivalent `curl` command. Exits 0 when every step behaved as expected. With `--serve`
//! both keep running so a person can try the printed commands. Tokens are written to files in
//! the demo directory (mode 0600) and the commands refer to them; no token is printed.

use std::path::{Path, PathBuf};

use axum::routing::get;
use axum::{Json, Router};
use jwt_exchange::dev::{jwks, SigningKey};
use jwt_exchange::{Algorithm, Clock as _, SystemClock};
use serde_json::{json, Value};

use crate::cmd::serve::{shutdown_signal, Server};
use crate::Failure;

const ENTRA_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// `demo` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Keep the IdP and the server running after the walk-through (until Ctrl-C).
    #[arg(long)]
    serve: bool,
    /// Server listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Directory for the demo's configuration, store and token files (default: a new
    /// temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

struct Walk {
    client: reqwest::Client,
    base: String,
    dir: PathBuf,
    step: u32,
    failures: Vec<String>,
}

impl Walk {
    fn step(&mut self, title: &str, curl: &str) {
        self.step += 1;
        println!("\n[{}] {title}", self.step);
        println!("    $ {curl}");
    }

    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("    ok: {what}");
        } else {
            println!("    UNEXPECTED: {what}");
            self.failures.push(format!("step {}: {what}", self.step));
        }
    }

    fn token_file(&self, name: &str, token: &str) -> Result<PathBuf, Failure> {
        let p = self.dir.join(name);
        jwt_exchange::client::write_secret_file(&p, token)
            .map_err(|e| Failure::Run(e.to_string()))?;
        Ok(p)
    }

    async fn login(&mut self, token: &str) -> Result<(u16, Value), Failure> {
        let r = self
            .client
            .post(format!("{}/auth/jwt/login", self.base))
            .json(&json!({ "token": token }))
            .send()
            .await
            .map_err(|e| Failure::Run(format!("login request: {e}")))?;
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn get(
        &self,
        path: &str,
        bearer: &str,
    ) -> Result<(u16, Value, reqwest::header::HeaderMap), Failure> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .send()
            .await
            .map_err(|e| Failure::Run(format!("GET {path}: {e}")))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Ok((
            status,
            r.json::<Value>().await.unwrap_or(Value::Null),
            headers,
        ))
    }
}

pub(crate) async fn run(a: Args) -> Result<(), Failure> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("jwt-exchange-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::Run(format!("creating {}: {e}", dir.display())))?;
    println!("jwt-exchange demo — files in {}", dir.display());

    // The development IdP: two keys, JWKS and discovery on a loopback port.
    let entra_key = SigningKey::generate(Algorithm::RS256, "entra-dev-1")
        .map_err(|e| Failure::Run(e.to_string()))?;
    let auth0_key = SigningKey::generate(Algorithm::ES256, "auth0-dev-1")
        .map_err(|e| Failure::Run(e.to_string()))?;
    let idp_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::Run(format!("starting the development IdP: {e}")))?;
    let idp_addr = idp_listener
        .local_addr()
        .map_err(|e| Failure::Run(e.to_string()))?;
    let set = jwks(&[&entra_key, &auth0_key]);
    let idp = Router::new().route("/jwks", get(move || std::future::ready(Json(set.clone()))));
    let idp_task = tokio::spawn(async move {
        let _ = axum::serve(idp_listener, idp).await;
    });
    let idp_base = format!("http://{idp_addr}");
    println!("development IdP: JWKS at {idp_base}/jwks");

    let entra_iss = format!("https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0");
    let auth0_iss = "https://demo-tenant.us.auth0.com/".to_owned();
    let config_path = dir.join("config.yaml");
    std::fs::write(
        &config_path,
        demo_config(&idp_base, &entra_iss, &auth0_iss, &dir),
    )
    .map_err(|e| Failure::Run(format!("writing {}: {e}", config_path.display())))?;
    let loaded = crate::config::load(&config_path)?;
    let server = Server::build(&loaded).await?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .map_err(|e| Failure::Run(format!("cannot listen on {}: {e}", a.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Run(e.to_string()))?;
    let base = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(server.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    println!(
        "server: {base} (config {}, embedded store)",
        config_path.display()
    );

    let mut w = Walk {
        client: reqwest::Client::new(),
        base: base.clone(),
        dir: dir.clone(),
        step: 0,
        failures: Vec::new(),
    };
    walk(&mut w, &entra_key, &auth0_key, &entra_iss, &auth0_iss).await?;

    if a.serve && w.failures.is_empty() {
        println!("\nthe IdP and the server keep running; try the commands above (Ctrl-C to stop)");
        println!("  export JWTX={base}");
        shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    let _ = server_task.await;
    idp_task.abort();
    if w.failures.is_empty() {
        println!("\ndemo finished: every step behaved as expected");
        Ok(())
    } else {
        Err(Failure::Run(format!(
            "{} step(s) misbehaved:\n  {}",
            w.failures.len(),
            w.failures.join("\n  ")
        )))
    }
}

#[allow(clippy::too_many_lines)] // one linear script, step by step
async fn walk(
    w: &mut Walk,
    entra_key: &SigningKey,
    auth0_key: &SigningKey,
    entra_iss: &str,
    auth0_iss: &str,
) -> Result<(), Failure> {
    let now = SystemClock.unix_seconds();
    let b = w.base.clone();
    let entra_token = entra_key.mint(&json!({
        "aud": "api://lakefs", "iss": entra_iss, "iat": now, "nbf": now, "exp": now + 3600,
        "azp": "0b6f7c4d-2b1e-4f6a-9a7e-3c5d2e1f0a9b", "oid": "7f3c2a9e-1b4d-4e8f-a2c6-5d9e0f1a2b3c",
        "sub": "7f3c2a9e-1b4d-4e8f-a2c6-5d9e0f1a2b3c", "roles": ["lakefs-data-engineers"],
        "tid": ENTRA_TENANT, "ver": "2.0"
    }));
    let entra_file = w.token_file("entra.jwt", &entra_token)?;

    w.step(
        "log in with an Entra-shaped client-credentials token",
        &format!("curl -s -X POST {b}/auth/jwt/login -H 'Content-Type: application/json' -d \"{{\\\"token\\\": \\\"$(cat {})\\\"}}\"", entra_file.display()),
    );
    let (status, body) = w.login(&entra_token).await?;
    let bearer = body
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    w.check(
        status == 200 && !bearer.is_empty(),
        &format!(
            "200 with a bearer, expires at {}",
            body.get("token_expiration").unwrap_or(&Value::Null)
        ),
    );
    let bearer_file = w.token_file("entra.bearer", &bearer)?;
    let auth = format!(
        "-H \"Authorization: Bearer $(cat {})\"",
        bearer_file.display()
    );

    w.step("who am I", &format!("curl -s {b}/auth/session {auth}"));
    let (status, who, _) = w.get("/auth/session", &bearer).await?;
    w.check(
        status == 200,
        &format!(
            "{status}: subject {}",
            who.get("subject").unwrap_or(&Value::Null)
        ),
    );
    println!(
        "    groups {}  policies {}",
        who.get("groups").unwrap_or(&Value::Null),
        who.get("policies").unwrap_or(&Value::Null)
    );

    w.step(
        "forward-auth check: fs:ReadObject on repo/data/file (allowed)",
        &format!("curl -s -o /dev/null -w '%{{http_code}}' '{b}/auth/check?action=fs:ReadObject&resource=repo/data/file' {auth}"),
    );
    let (status, _, headers) = w
        .get(
            "/auth/check?action=fs:ReadObject&resource=repo/data/file",
            &bearer,
        )
        .await?;
    w.check(
        status == 204 && headers.contains_key("x-auth-subject"),
        &format!("{status} with X-Auth-Subject"),
    );

    w.step(
        "forward-auth check: fs:DeleteRepository on repo (denied)",
        &format!("curl -s -o /dev/null -w '%{{http_code}}' '{b}/auth/check?action=fs:DeleteRepository&resource=repo' {auth}"),
    );
    let (status, _, _) = w
        .get(
            "/auth/check?action=fs:DeleteRepository&resource=repo",
            &bearer,
        )
        .await?;
    w.check(status == 403, &format!("{status} (403 expected)"));

    let auth0_token = auth0_key.mint(&json!({
        "iss": auth0_iss, "sub": "ZYDPLLBWSK3MVQJSIYHB1OR2JXCY0X2C@clients", "aud": "https://lakefs.example.com/api",
        "iat": now, "exp": now + 86_400, "gty": "client-credentials", "azp": "ZYDPLLBWSK3MVQJSIYHB1OR2JXCY0X2C",
        "scope": "read:data", "permissions": ["read:data"]
    }));
    let auth0_file = w.token_file("auth0.jwt", &auth0_token)?;
    w.step(
        "log in with an Auth0-shaped machine-to-machine token",
        &format!("curl -s -X POST {b}/auth/jwt/login -H 'Content-Type: application/json' -d \"{{\\\"token\\\": \\\"$(cat {})\\\"}}\"", auth0_file.display()),
    );
    let (status, body) = w.login(&auth0_token).await?;
    w.check(
        status == 200 && body.get("token").is_some(),
        &format!("{status} with a bearer"),
    );

    let impostor_key = SigningKey::generate(Algorithm::RS256, "entra-dev-1")
        .map_err(|e| Failure::Run(e.to_string()))?;
    let forged_token = impostor_key.mint(&json!({
        "aud": "api://lakefs", "iss": entra_iss, "iat": now, "exp": now + 3600, "oid": "attacker",
        "roles": ["lakefs-data-engineers"], "tid": ENTRA_TENANT
    }));
    let forged_file = w.token_file("forged.jwt", &forged_token)?;
    w.step(
        "a forged token (same kid, a key the IdP never published) is refused",
        &format!("curl -s -X POST {b}/auth/jwt/login -H 'Content-Type: application/json' -d \"{{\\\"token\\\": \\\"$(cat {})\\\"}}\"", forged_file.display()),
    );
    let (status, body) = w.login(&forged_token).await?;
    w.check(status == 401, &format!("{status}: {body}"));

    w.step(
        "log out: revoke the Entra session",
        &format!("curl -s -X DELETE {b}/auth/session {auth}"),
    );
    let r = w
        .client
        .delete(format!("{b}/auth/session"))
        .bearer_auth(&bearer)
        .send()
        .await
        .map_err(|e| Failure::Run(e.to_string()))?;
    w.check(
        r.status().as_u16() == 204,
        &format!("{} (204 expected)", r.status().as_u16()),
    );

    w.step(
        "the revoked bearer is refused at once",
        &format!("curl -s {b}/auth/session {auth}"),
    );
    let (status, _, _) = w.get("/auth/session", &bearer).await?;
    w.check(status == 401, &format!("{status} (401 expected)"));
    Ok(())
}

fn demo_config(idp: &str, entra_iss: &str, auth0_iss: &str, dir: &Path) -> String {
    format!(
        r#"# Written by `jwt-exchange demo`.
listen_address: 127.0.0.1:8000
auth:
  providers:
    jwt:
      - issuer: {entra_iss}
        jwks_url: {idp}/jwks
        audiences: ["api://lakefs"]
        identity_claim_ref: /oid
        groups_claim_ref: /roles
        required_claims:
          tid: {ENTRA_TENANT}
      - issuer: {auth0_iss}
        jwks_url: {idp}/jwks
        audiences: ["https://lakefs.example.com/api"]
        identity_claim_ref: /sub
        groups_claim_ref: /permissions
  groups:
    lakefs-data-engineers: [ReadAll, WriteData]
    read:data: [ReadAll]
  policies:
    ReadAll:
      statement:
        - effect: allow
          action: ["fs:Read*", "fs:List*"]
          resource: "*"
    WriteData:
      statement:
        - effect: allow
          action: ["fs:Write*"]
          resource: "repo/data/*"
session_store:
  type: embedded
  path: {}
bearer:
  secret_file: {}
"#,
        dir.join("sessions.redb").display(),
        dir.join("bearer.secret").display()
    )
}
