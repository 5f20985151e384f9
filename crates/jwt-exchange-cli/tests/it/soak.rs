//! A bounded soak of the real `jwt-exchange serve` binary on loopback: several concurrent
//! clients mix logins (JSON and the OAuth token endpoint), authenticated requests (who-am-I,
//! forward-auth) and revocations (logout, RFC 7009 revoke, revoke-by-subject) while the IdP and
//! the store are healthy.
//!
//! It asserts zero 5xx, every live bearer accepted, every revoked bearer refused on its very next
//! request, the server's session count equal to the bearers the clients still hold, the success
//! counter equal to the logins made, flat memory after warm-up, and no token or bearer in the
//! TRACE log.
//!
//! `JWTX_SOAK_SECS` sets the duration (default 15 s, for CI); `JWTX_SOAK_CLIENTS` the number of
//! concurrent clients (default 6). The longer run:
//! `JWTX_SOAK_SECS=60 cargo test -p jwt-exchange-cli --test it soak -- --nocapture`.
//!
//! Memory: `VmRSS` is sampled once a second after the warm-up (a quarter of the run, at least
//! 3 s); the largest sample may exceed the warm-up sample by at most 32 MiB. The number of live
//! sessions is bounded (each client holds at most 24 bearers), so steady state needs no more
//! memory than warm-up; the slack covers allocator retention and connection buffers.

use std::time::{Duration, Instant};

use jwt_exchange::Algorithm;
use jwt_exchange_testkit::{jwks, JwksServer, TestKey};
use serde_json::{json, Value};

use crate::common::{config_yaml, ServerProcess, TempDir};
use crate::probe::{self, Metrics};

const ISS: &str = "https://idp.soak.test/";
const MAX_LIVE: usize = 24;
const MAX_RSS_GROWTH_KIB: u64 = 32 * 1024;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one client did.
#[derive(Default)]
struct Report {
    logins: usize,
    exchanges: usize,
    requests: usize,
    revocations: usize,
    subject_revocations: usize,
    revoked_checks: usize,
    server_errors: usize,
    unexpected: Vec<String>,
    live: Vec<String>,
    sent: Vec<String>,
}

/// A small deterministic PRNG (xorshift64*), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Client {
    id: usize,
    base: String,
    http: reqwest::Client,
    key: std::sync::Arc<TestKey>,
    rng: Rng,
    revoked: Vec<String>,
    report: Report,
}

impl Client {
    fn subject(&self) -> String {
        format!("jwt:{ISS}:soak-{}", self.id)
    }

    fn expect(&mut self, what: &str, got: &probe::Answer, want: u16) -> bool {
        if got.status >= 500 {
            self.report.server_errors += 1;
        }
        if got.status == want {
            return true;
        }
        if self.report.unexpected.len() < 20 {
            self.report.unexpected.push(format!(
                "client {}: {what}: {} (wanted {want}) {}",
                self.id, got.status, got.body
            ));
        }
        false
    }

    async fn login(&mut self) {
        let oid = format!("soak-{}", self.id);
        let token = self.key.mint(&probe::claims(
            ISS,
            &oid,
            &json!({"roles": ["readers", "admins"]}),
        ));
        self.report.sent.push(token.clone());
        let oauth = self.rng.below(2) == 0;
        let a = if oauth {
            probe::token_grant(&self.http, &self.base, &token).await
        } else {
            probe::login(&self.http, &self.base, &token).await
        };
        if !self.expect(if oauth { "token exchange" } else { "login" }, &a, 200) {
            return;
        }
        let v: Value = serde_json::from_str(&a.body).unwrap();
        let bearer = v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .unwrap()
            .to_owned();
        if oauth {
            self.report.exchanges += 1;
        } else {
            self.report.logins += 1;
        }
        self.report.sent.push(bearer.clone());
        self.report.live.push(bearer);
        if self.report.live.len() > MAX_LIVE {
            let oldest = self.report.live.remove(0);
            self.revoke(oldest, false).await;
        }
    }

    async fn use_live(&mut self) {
        let i = self.rng.below(self.report.live.len());
        let bearer = self.report.live[i].clone();
        self.report.requests += 1;
        if self.rng.below(2) == 0 {
            let a = probe::get_with_bearer(&self.http, &self.base, "/auth/session", &bearer).await;
            if self.expect("who-am-I with a live bearer", &a, 200) {
                let v: Value = serde_json::from_str(&a.body).unwrap();
                if v["subject"] != self.subject() {
                    self.report
                        .unexpected
                        .push(format!("wrong subject {}", v["subject"]));
                }
            }
        } else {
            let path = "/auth/check?action=fs:ReadObject&resource=repo/data";
            let a = probe::get_with_bearer(&self.http, &self.base, path, &bearer).await;
            self.expect("forward-auth with a live bearer", &a, 204);
        }
    }

    /// Revokes `bearer` (logout or RFC 7009) and checks its very next use is refused.
    async fn revoke(&mut self, bearer: String, rfc7009: bool) {
        let a = if rfc7009 {
            let body = format!("token={}", probe::form_encode(&bearer));
            let a = probe::post(
                &self.http,
                &self.base,
                "/oauth2/revoke",
                Some("application/x-www-form-urlencoded"),
                body,
            )
            .await;
            self.expect("RFC 7009 revoke", &a, 200);
            a
        } else {
            let r = self
                .http
                .delete(format!("{}/auth/session", self.base))
                .bearer_auth(&bearer)
                .send()
                .await
                .unwrap();
            let a = probe::Answer {
                status: r.status().as_u16(),
                headers: r.headers().clone(),
                body: r.text().await.unwrap_or_default(),
            };
            self.expect("logout", &a, 204);
            a
        };
        if a.status < 300 {
            self.report.revocations += 1;
        }
        self.check_revoked(&bearer).await;
        self.revoked.push(bearer);
        if self.revoked.len() > 64 {
            self.revoked.remove(0);
        }
    }

    async fn check_revoked(&mut self, bearer: &str) {
        self.report.revoked_checks += 1;
        let a = probe::get_with_bearer(&self.http, &self.base, "/auth/session", bearer).await;
        self.expect("a revoked bearer", &a, 401);
    }

    async fn revoke_subject(&mut self) {
        let i = self.rng.below(self.report.live.len());
        let admin = self.report.live[i].clone();
        let url = format!(
            "{}/auth/sessions?subject={}",
            self.base,
            probe::form_encode(&self.subject())
        );
        let r = self
            .http
            .delete(url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let a = probe::Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap_or_default(),
        };
        if !self.expect("revoke by subject", &a, 204) {
            return;
        }
        self.report.subject_revocations += 1;
        for b in std::mem::take(&mut self.report.live) {
            self.check_revoked(&b).await;
            self.revoked.push(b);
        }
    }

    async fn run(mut self, until: Instant) -> Report {
        while Instant::now() < until {
            let op = self.rng.below(100);
            if self.report.live.is_empty() || op < 20 {
                self.login().await;
            } else if op < 70 {
                self.use_live().await;
            } else if op < 85 {
                let i = self.rng.below(self.report.live.len());
                let b = self.report.live.remove(i);
                let rfc7009 = self.rng.below(2) == 0;
                self.revoke(b, rfc7009).await;
            } else if op < 97 {
                if !self.revoked.is_empty() {
                    let i = self.rng.below(self.revoked.len());
                    let b = self.revoked[i].clone();
                    self.check_revoked(&b).await;
                }
            } else {
                self.revoke_subject().await;
            }
        }
        self.report
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_mixed_logins_requests_and_revocations() {
    let secs = env_or("JWTX_SOAK_SECS", 15);
    let clients = env_or("JWTX_SOAK_CLIENTS", 6) as usize;
    let key = std::sync::Arc::new(TestKey::generate(Algorithm::ES256, "k1"));
    let idp = JwksServer::start(jwks(&[&key])).await;
    let dir = TempDir::new("soak");
    let cfg = dir.write("config.yaml", &config_yaml(ISS, &idp.jwks_url(), "", ""));
    let mut server = ServerProcess::start(&cfg, dir.path()).await;
    let pid = server.child.id();
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let warm_up = Duration::from_secs((secs / 4).max(3)).min(Duration::from_secs(secs));

    let mut tasks = Vec::new();
    for id in 0..clients {
        let c = Client {
            id,
            base: server.base.clone(),
            http: probe::client(),
            key: std::sync::Arc::clone(&key),
            rng: Rng(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1) ^ probe::rand_u64()),
            revoked: Vec::new(),
            report: Report::default(),
        };
        tasks.push(tokio::spawn(c.run(until)));
    }
    tokio::time::sleep(warm_up).await;
    let rss_warm = probe::rss_kib(pid);
    let mut rss_max = rss_warm;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_max = rss_max.max(probe::rss_kib(pid));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total = |f: fn(&Report) -> usize| reports.iter().map(f).sum::<usize>();
    let logins = total(|r| r.logins);
    let exchanges = total(|r| r.exchanges);
    let requests = total(|r| r.requests);
    let revocations = total(|r| r.revocations);
    let live = total(|r| r.live.len());
    let ops = logins + exchanges + requests + revocations + total(|r| r.revoked_checks);
    eprintln!(
        "soak: {secs} s, {clients} clients, {ops} requests ({:.0}/s): {logins} logins, \
         {exchanges} token exchanges, {requests} authenticated requests, {revocations} \
         revocations ({} by subject), {} revoked-bearer checks, {live} live at the end; \
         RSS {rss_warm} KiB after warm-up, {rss_max} KiB max",
        ops as f64 / elapsed.as_secs_f64(),
        total(|r| r.subject_revocations),
        total(|r| r.revoked_checks),
    );
    let unexpected: Vec<&String> = reports.iter().flat_map(|r| &r.unexpected).collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
    assert_eq!(total(|r| r.server_errors), 0, "zero 5xx");
    assert!(
        logins > 0 && exchanges > 0 && requests > 0 && revocations > 0,
        "every kind of operation ran"
    );
    assert!(
        ops as u64 >= 20 * secs,
        "the soak made progress: {ops} requests"
    );

    let m = Metrics::fetch(&probe::client(), &server.base).await;
    assert_eq!(
        m.active_sessions(),
        live as u64,
        "the server holds exactly the sessions of the live bearers"
    );
    assert_eq!(m.logins_succeeded(), (logins + exchanges) as u64);
    assert_eq!(m.logins_failed(), 0);
    assert!(
        rss_max <= rss_warm + MAX_RSS_GROWTH_KIB,
        "RSS grew from {rss_warm} KiB after warm-up to {rss_max} KiB"
    );

    assert!(server.terminate().success(), "graceful exit");
    let sent: Vec<String> = reports.into_iter().flat_map(|r| r.sent).collect();
    let log = server.log_text();
    probe::assert_no_secrets(&log, &sent);
    probe::assert_log_lines_well_formed(&log);
}
