//! Fault injection against the real `jwt-exchange serve` binary: the IdP's JWKS endpoint down
//! (refused, black-holed, 5xx), slower than `jwks_timeout`, answering garbage, a 50 MB body, a
//! redirect to another loopback server, no usable key, too many keys; keys rotated and removed;
//! keys unavailable past `jwks_max_stale`. Logins continue from the cached key set where they
//! should, known-`kid` logins never wait behind a failing fetch, the only 5xx is the documented
//! 503 when no usable key set exists, existing sessions are never lost, and memory stays flat.
//!
//! (Session-store outages — Redis / Postgres stopped mid-load — are covered by the store
//! backends' own fault tests, not here.)
//!
//! Memory: `VmRSS` of the server is read from `/proc/<pid>/status` after a warm-up and again
//! after the faults. The allowed growth (64 MiB) is generous on purpose: the allocator keeps
//! freed pages, each capped read may hold up to 1 MiB per concurrent fetch, and tokio / hyper
//! keep per-connection buffers. What it catches is the failure that matters — buffering a 50 MB
//! body (or one per request) would blow through it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwt_exchange::Algorithm;
use jwt_exchange_testkit::proxy::{ProxyMode, TcpProxy};
use jwt_exchange_testkit::{jwks, Behavior, JwksServer, TestKey};
use serde_json::{json, Value};

use crate::common::{config_yaml, ServerProcess, TempDir};
use crate::probe::{self, Metrics};

const ISS: &str = "https://idp.faults.test/";
const MAX_RSS_GROWTH_KIB: u64 = 64 * 1024;

/// A server whose JWKS comes through a cuttable proxy from a fault-injecting IdP.
struct Rig {
    idp: JwksServer,
    proxy: TcpProxy,
    key: TestKey,
    server: ServerProcess,
    http: reqwest::Client,
    sent: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl Rig {
    async fn start(tag: &str, provider_extra: &str, mode: ProxyMode) -> Rig {
        let key = TestKey::generate(Algorithm::ES256, "k1");
        let idp = JwksServer::start(jwks(&[&key])).await;
        let upstream = idp.base_url().trim_start_matches("http://").to_owned();
        let proxy = TcpProxy::start(upstream).await.unwrap();
        proxy.set_mode(mode);
        let dir = TempDir::new(tag);
        let url = format!("http://{}/jwks", proxy.addr());
        let cfg = dir.write("config.yaml", &config_yaml(ISS, &url, provider_extra, ""));
        let server = ServerProcess::start(&cfg, dir.path()).await;
        Rig {
            idp,
            proxy,
            key,
            server,
            http: probe::client(),
            sent: Arc::default(),
            _dir: dir,
        }
    }

    fn base(&self) -> String {
        self.server.base.clone()
    }

    fn pid(&self) -> u32 {
        self.server.child.id()
    }

    /// A valid token from the published key.
    fn token(&self) -> String {
        let t = self.key.mint(&probe::claims(ISS, "svc-1", &json!({})));
        self.sent.lock().unwrap().push(t.clone());
        t
    }

    /// A token whose `kid` the IdP never published: forces a refetch (after the cool-down).
    fn rogue(&self) -> String {
        let k = TestKey::generate(Algorithm::ES256, format!("rogue-{}", probe::rand_u64()));
        let t = k.mint(&probe::claims(ISS, "svc-1", &json!({})));
        self.sent.lock().unwrap().push(t.clone());
        t
    }

    async fn login(&self, token: &str) -> probe::Answer {
        probe::login(&self.http, &self.server.base, token).await
    }

    async fn metrics(&self) -> Metrics {
        Metrics::fetch(&self.http, &self.server.base).await
    }

    /// Checks the server is alive and healthy and its log holds no token.
    fn finish(mut self) {
        assert_eq!(self.server.child.try_wait().unwrap(), None, "server alive");
        let log = self.server.log_text();
        probe::assert_no_secrets(&log, &self.sent.lock().unwrap());
        probe::assert_log_lines_well_formed(&log);
        let status = self.server.terminate();
        assert!(status.success(), "graceful exit: {status:?}");
    }
}

/// A JWKS fault.
enum Fault {
    Idp(Behavior),
    Proxy(ProxyMode),
    Jwks(Value),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_idp_never_stops_logins_from_the_cached_keys() {
    let rig = Rig::start("fault-cache", "      jwks_timeout: 2s", ProxyMode::Forward).await;
    let base = rig.base();
    let mut bearers = Vec::new();
    for _ in 0..30 {
        let a = rig.login(&rig.token()).await;
        assert_eq!(a.status, 200, "warm-up: {}", a.body);
        bearers.push(
            serde_json::from_str::<Value>(&a.body).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let rss_before = probe::rss_kib(rig.pid());

    let attacker = JwksServer::start(json!({"keys": []})).await;
    let good_set = jwks(&[&rig.key]);
    let mut oct_only = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]});
    oct_only["keys"].as_array_mut().unwrap().push(
        json!({"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
            "x": good_set["keys"][0]["x"], "y": good_set["keys"][0]["y"]}),
    );
    let too_many = json!({"keys": vec![good_set["keys"][0].clone(); 300]});
    let faults = [
        ("500", Fault::Idp(Behavior::Status(500))),
        ("404", Fault::Idp(Behavior::Status(404))),
        ("429", Fault::Idp(Behavior::Status(429))),
        ("connection refused", Fault::Proxy(ProxyMode::Refuse)),
        ("black hole", Fault::Proxy(ProxyMode::Blackhole)),
        (
            "slower than jwks_timeout",
            Fault::Idp(Behavior::Stall(Duration::from_secs(5))),
        ),
        ("garbage", Fault::Idp(Behavior::Garbage)),
        ("50 MB streamed", Fault::Idp(Behavior::Huge(50 << 20))),
        (
            "50 MB with Content-Length",
            Fault::Idp(Behavior::HugeWithLength(50 << 20)),
        ),
        (
            "redirect to another loopback port",
            Fault::Idp(Behavior::Redirect(attacker.jwks_url())),
        ),
        ("empty key set", Fault::Jwks(json!({"keys": []}))),
        ("no usable key", Fault::Jwks(oct_only)),
        ("too many keys", Fault::Jwks(too_many)),
        ("not a key set", Fault::Jwks(json!(["k1"]))),
    ];
    for (what, fault) in faults {
        match &fault {
            Fault::Idp(b) => rig.idp.set_behavior(b.clone()),
            Fault::Proxy(m) => rig.proxy.set_mode(*m),
            Fault::Jwks(v) => rig.idp.set_jwks(v.clone()),
        }
        // Past the 1 s refetch cool-down, an unknown kid sends the server to the broken IdP.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let failures = rig.metrics().await.jwks_fetches(ISS, "failure");
        let rogue = rig.rogue();
        let probe_login = {
            let (http, base) = (rig.http.clone(), base.clone());
            tokio::spawn(async move { probe::login(&http, &base, &rogue).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // While that fetch is failing (or hanging), known-kid logins go on from the cache and
        // do not wait for it.
        for _ in 0..5 {
            let t0 = Instant::now();
            let a = rig.login(&rig.token()).await;
            assert_eq!(
                a.status, 200,
                "{what}: cached keys keep serving: {}",
                a.body
            );
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "{what}: a known-kid login waited {:?} (behind the fetch?)",
                t0.elapsed()
            );
        }
        let a = probe_login.await.unwrap();
        assert_eq!(
            a.status, 401,
            "{what}: the unknown kid is refused: {}",
            a.body
        );
        let after = rig.metrics().await.jwks_fetches(ISS, "failure");
        assert!(
            after > failures,
            "{what}: the fault was exercised ({failures} -> {after})"
        );
        // Sessions made before the fault are untouched.
        let b = &bearers[bearers.len() / 2];
        let who = probe::get_with_bearer(&rig.http, &base, "/auth/session", b).await;
        assert_eq!(who.status, 200, "{what}: existing sessions survive");
        rig.idp.set_behavior(Behavior::Serve);
        rig.proxy.set_mode(ProxyMode::Forward);
        rig.idp.set_jwks(good_set.clone());
    }
    assert_eq!(attacker.total_hits(), 0, "the redirect was not followed");
    let rss_after = probe::rss_kib(rig.pid());
    assert!(
        rss_after <= rss_before + MAX_RSS_GROWTH_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!("faults: RSS {rss_before} KiB -> {rss_after} KiB");
    let m = rig.metrics().await;
    assert_eq!(
        m.value(&format!(r#"jwtx_jwks_keys{{issuer="{ISS}"}}"#)),
        Some(1)
    );
    rig.sent.lock().unwrap().extend(bearers);
    assert!(rig.server.log_text().contains("JWKS fetch failed"));
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_unavailable_is_503_until_the_idp_returns_and_sessions_survive() {
    let extra = "      jwks_timeout: 1s\n      jwks_max_stale: 3s";
    let rig = Rig::start("fault-503", extra, ProxyMode::Refuse).await;
    let base = rig.base();

    // IdP down from the start: every login is the documented 503, never 401 or 500, even
    // under concurrent load.
    let statuses = hammer(&rig, 8, 6).await;
    assert!(
        statuses.iter().all(|s| *s == 503),
        "IdP down at start: {statuses:?}"
    );
    let a = rig.login(&rig.token()).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers["retry-after"], "5");
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["error"], "temporarily_unavailable");
    let ready = rig.http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);

    // It comes back: logins succeed again without a restart.
    rig.proxy.set_mode(ProxyMode::Forward);
    let bearer = wait_for_login(&rig, Duration::from_secs(15)).await;
    let recovered = Instant::now();

    // Down again: the cached set serves until jwks_max_stale (3 s), then 503.
    rig.proxy.set_mode(ProxyMode::Refuse);
    let a = rig.login(&rig.token()).await;
    assert_eq!(
        a.status, 200,
        "the cache serves inside max_stale: {}",
        a.body
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = rig.login(&rig.token()).await;
        assert!(matches!(a.status, 200 | 503), "{}: {}", a.status, a.body);
        if a.status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "stale keys never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered.elapsed() >= Duration::from_secs(2),
        "keys expired after {:?}, before jwks_max_stale",
        recovered.elapsed()
    );
    // Sessions do not depend on the IdP: the bearer keeps working through the outage.
    let who = probe::get_with_bearer(&rig.http, &base, "/auth/session", &bearer).await;
    assert_eq!(who.status, 200, "sessions survive an IdP outage");
    let statuses = hammer(&rig, 8, 4).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");

    rig.proxy.set_mode(ProxyMode::Forward);
    let _ = wait_for_login(&rig, Duration::from_secs(15)).await;
    rig.sent.lock().unwrap().push(bearer);
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_and_removed_keys_over_http() {
    let rig = Rig::start("fault-rotate", "", ProxyMode::Forward).await;
    let base = rig.base();
    let a = rig.login(&rig.token()).await;
    assert_eq!(a.status, 200);
    let bearer = serde_json::from_str::<Value>(&a.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = |t: String| {
        rig.sent.lock().unwrap().push(t.clone());
        t
    };

    // Rotation: k2 replaces k1.
    let k2 = TestKey::generate(Algorithm::EdDSA, "k2");
    rig.idp.set_jwks(jwks(&[&k2]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t2 = sent(k2.mint(&probe::claims(ISS, "svc-2", &json!({}))));
    assert_eq!(rig.login(&t2).await.status, 200, "the new kid is fetched");
    assert_eq!(
        rig.login(&rig.token()).await.status,
        401,
        "the removed key no longer verifies"
    );
    let who = probe::get_with_bearer(&rig.http, &base, "/auth/session", &bearer).await;
    assert_eq!(
        who.status, 200,
        "a session from the old key survives rotation"
    );

    // An added key, then the removal of k2: k2 stops once the server has refetched.
    let k3 = TestKey::generate(Algorithm::RS256, "k3");
    rig.idp.set_jwks(jwks(&[&k2, &k3]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t3 = sent(k3.mint(&probe::claims(ISS, "svc-3", &json!({}))));
    assert_eq!(rig.login(&t3).await.status, 200);
    rig.idp.set_jwks(jwks(&[&k3]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        rig.login(&rig.rogue()).await.status,
        401,
        "forces a refetch"
    );
    let t2 = sent(k2.mint(&probe::claims(ISS, "svc-2", &json!({}))));
    assert_eq!(rig.login(&t2).await.status, 401, "k2 removed");
    let t3 = sent(k3.mint(&probe::claims(ISS, "svc-3", &json!({}))));
    assert_eq!(rig.login(&t3).await.status, 200, "k3 kept");
    rig.sent.lock().unwrap().push(bearer);
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_while_the_jwks_fails_and_stalls_never_5xx() {
    // Background refresh every second, so fetches fail on their own as well as on unknown kids.
    let extra = "      jwks_timeout: 3s\n      jwks_refresh_interval: 1s";
    let rig = Arc::new(Rig::start("fault-hammer", extra, ProxyMode::Forward).await);
    for _ in 0..20 {
        assert_eq!(rig.login(&rig.token()).await.status, 200);
    }
    let rss_before = probe::rss_kib(rig.pid());
    let attacker = JwksServer::start(json!({"keys": []})).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slowest_known = Arc::new(Mutex::new(Duration::ZERO));
    let counts = Arc::new([const { AtomicUsize::new(0) }; 3]);
    let mut clients = Vec::new();
    for c in 0..12 {
        let (rig, stop, slowest, counts) = (
            Arc::clone(&rig),
            Arc::clone(&stop),
            Arc::clone(&slowest_known),
            Arc::clone(&counts),
        );
        clients.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (kind, token) = match i % 4 {
                    0 => (1, rig.rogue()),
                    1 => (2, format!("garbage.{i}.token")),
                    _ => (0, rig.token()),
                };
                let t0 = Instant::now();
                let a = rig.login(&token).await;
                counts[kind].fetch_add(1, Ordering::Relaxed);
                if kind == 0 {
                    assert_eq!(a.status, 200, "known kid during JWKS faults: {}", a.body);
                    {
                        let mut s = slowest.lock().unwrap();
                        *s = (*s).max(t0.elapsed());
                    }
                    // Log out again, so the session count (and memory) stays bounded however
                    // fast the machine is.
                    let bearer = serde_json::from_str::<Value>(&a.body).unwrap()["token"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let r = rig
                        .http
                        .delete(format!("{}/auth/session", rig.server.base))
                        .bearer_auth(&bearer)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 204);
                    rig.sent.lock().unwrap().push(bearer);
                } else {
                    assert_eq!(a.status, 401, "unknown kid / garbage: {}", a.body);
                }
            }
        }));
    }
    let cycle = [
        Fault::Idp(Behavior::Stall(Duration::from_secs(10))),
        Fault::Idp(Behavior::Garbage),
        Fault::Proxy(ProxyMode::Blackhole),
        Fault::Idp(Behavior::Status(500)),
        Fault::Idp(Behavior::Huge(50 << 20)),
        Fault::Proxy(ProxyMode::Refuse),
        Fault::Idp(Behavior::Redirect(attacker.jwks_url())),
        Fault::Jwks(json!({"keys": []})),
    ];
    let end = Instant::now() + Duration::from_secs(8);
    for fault in cycle.iter().cycle() {
        if Instant::now() >= end {
            break;
        }
        match fault {
            Fault::Idp(b) => rig.idp.set_behavior(b.clone()),
            Fault::Proxy(m) => rig.proxy.set_mode(*m),
            Fault::Jwks(v) => rig.idp.set_jwks(v.clone()),
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        rig.idp.set_behavior(Behavior::Serve);
        rig.proxy.set_mode(ProxyMode::Forward);
        rig.idp.set_jwks(jwks(&[&rig.key]));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let counts: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    eprintln!(
        "hammer: {counts:?} (known, unknown kid, garbage) logins; slowest known-kid login {:?}",
        slowest_known.lock().unwrap()
    );
    assert!(
        counts.iter().all(|n| *n >= 10),
        "load was applied: {counts:?}"
    );
    assert!(
        *slowest_known.lock().unwrap() < Duration::from_secs(2),
        "a known-kid login waited for a failing fetch"
    );
    assert_eq!(attacker.total_hits(), 0);
    let m = rig.metrics().await;
    assert!(m.jwks_fetches(ISS, "failure") >= 3, "{}", m.0);
    assert_eq!(
        m.active_sessions(),
        20,
        "every hammer session was logged out"
    );
    let health = rig
        .http
        .get(format!("{}/healthz", rig.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let rss_after = probe::rss_kib(rig.pid());
    eprintln!("hammer: RSS {rss_before} KiB -> {rss_after} KiB");
    assert!(
        rss_after <= rss_before + MAX_RSS_GROWTH_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let Ok(rig) = Arc::try_unwrap(rig) else {
        panic!("clients finished")
    };
    rig.finish();
}

/// `clients` concurrent tasks × `each` logins with valid tokens; the statuses seen.
async fn hammer(rig: &Rig, clients: usize, each: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let tokens: Vec<String> = (0..each).map(|_| rig.token()).collect();
        let (http, base) = (rig.http.clone(), rig.base());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for t in tokens {
                out.push(probe::login(&http, &base, &t).await.status);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Logs in until it succeeds (the IdP came back); returns the bearer.
async fn wait_for_login(rig: &Rig, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let a = rig.login(&rig.token()).await;
        if a.status == 200 {
            return serde_json::from_str::<Value>(&a.body).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        assert_eq!(a.status, 503, "{}", a.body);
        assert!(Instant::now() < deadline, "logins never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
