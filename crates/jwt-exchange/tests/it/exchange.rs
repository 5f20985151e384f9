//! The exchange service end to end: login → authenticate → authorize → revoke.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jwt_exchange::policy::{Decision, PolicyConfig, StaticDirectory};
use jwt_exchange::session::{BearerKeys, BearerSecret, Session, SessionId};
use jwt_exchange::store::{MemoryStore, SessionStore, StoreError};
use jwt_exchange::{Clock, Exchange, ExchangeError, ProviderConfig, VerifyError};
use jwt_exchange_testkit::claims::{
    AUTH0_AUDIENCE, AUTH0_ISSUER, ENTRA_AUDIENCE, ENTRA_ISSUER, ENTRA_TENANT,
};
use jwt_exchange_testkit::fixtures::{self, FIXTURE_NOW};
use jwt_exchange_testkit::JwksServer;
use serde_json::json;

use crate::common::{claims, claims_with, verifier_for, Idp, NOW};

fn policies() -> PolicyConfig {
    serde_json::from_value(json!({
        "groups": {
            "lakefs-data-engineers": ["ReadAll", "WriteData"],
            "readers": ["ReadAll"],
            "read:data": ["ReadAll"],
            "write:data": ["WriteData"]
        },
        "policies": {
            "ReadAll": {"statement": [
                {"effect": "allow", "action": ["fs:Read*", "fs:List*"], "resource": "*"}
            ]},
            "WriteData": {"statement": [
                {"effect": "allow", "action": "fs:Write*", "resource": "repo/data/*"},
                {"effect": "deny", "action": "fs:Write*", "resource": "repo/data/locked/*"}
            ]}
        }
    }))
    .unwrap()
}

fn bearer_keys() -> BearerKeys {
    BearerKeys::new(
        "jwt-exchange-test",
        "b1",
        BearerSecret::from_bytes(vec![7u8; 32]).unwrap(),
    )
}

fn exchange(idp: &Idp, p: ProviderConfig) -> Exchange {
    Exchange::builder(idp.verifier(p), bearer_keys())
        .policies(policies())
        .build()
        .unwrap()
}

#[tokio::test]
async fn entra_and_auth0_fixture_tokens_reach_an_authorization_decision() {
    let set: serde_json::Value = serde_json::from_str(&fixtures::read("jwks.json")).unwrap();
    let server = JwksServer::start(set).await;
    let clock = jwt_exchange::MockClock::at_unix(FIXTURE_NOW + 5);
    let v = verifier_for(
        vec![
            ProviderConfig::new(ENTRA_ISSUER, server.jwks_url())
                .with_audiences([ENTRA_AUDIENCE])
                .with_required_claim("tid", ENTRA_TENANT),
            ProviderConfig::new(AUTH0_ISSUER, server.jwks_url())
                .with_audiences([AUTH0_AUDIENCE])
                .with_identity_claim_ref("/sub")
                .with_groups_claim_ref("/permissions"),
        ],
        &clock,
    );
    let ex = Exchange::builder(v, bearer_keys())
        .policies(policies())
        .build()
        .unwrap();

    let login = ex.login(&fixtures::token("entra-rs256")).await.unwrap();
    assert_eq!(
        login.token_expiration,
        FIXTURE_NOW + 3600,
        "capped by the 1 h max TTL"
    );
    let who = ex.authenticate(login.token.as_str()).await.unwrap();
    assert_eq!(
        who.subject,
        format!("jwt:{ENTRA_ISSUER}:7f3c2a9e-1b4d-4e8f-a2c6-5d9e0f1a2b3c")
    );
    assert_eq!(who.principal_type, "session");
    assert_eq!(who.policies, vec!["ReadAll", "WriteData"]);
    assert_eq!(
        ex.authorize(&who, "fs:ReadObject", "repo/x").await.unwrap(),
        Decision::Allow
    );
    assert_eq!(
        ex.authorize(&who, "fs:WriteObject", "repo/data/a")
            .await
            .unwrap(),
        Decision::Allow
    );
    assert_eq!(
        ex.authorize(&who, "fs:WriteObject", "repo/data/locked/a")
            .await
            .unwrap(),
        Decision::Deny
    );
    assert_eq!(
        ex.authorize(&who, "auth:DeleteSession", "*").await.unwrap(),
        Decision::NoMatch
    );

    let login = ex.login(&fixtures::token("auth0-es256")).await.unwrap();
    let who = ex.authenticate(login.token.as_str()).await.unwrap();
    assert_eq!(who.identity, "ZYDPLLBWSK3MVQJSIYHB1OR2JXCY0X2C@clients");
    assert_eq!(who.policies, vec!["ReadAll", "WriteData"]);
    assert_eq!(
        ex.authorize(&who, "fs:ListObjects", "repo").await.unwrap(),
        Decision::Allow
    );
    let m = ex.metrics();
    assert_eq!(m.logins_succeeded, 2);
    assert_eq!(
        (m.decisions_allow, m.decisions_deny, m.decisions_no_match),
        (3, 1, 1)
    );
}

#[tokio::test]
async fn session_expiry_is_the_earlier_of_max_ttl_and_token_exp() {
    let idp = Idp::start().await;
    let ex = exchange(
        &idp,
        idp.provider()
            .with_session_max_ttl(Duration::from_secs(600)),
    );
    // Token lives an hour: the session is capped at 10 minutes.
    let l = ex.login(&idp.rsa.mint(&claims())).await.unwrap();
    assert_eq!(l.token_expiration, NOW + 600);
    // Token expires in 2 minutes: the session ends with it.
    let l = ex
        .login(&idp.rsa.mint(&claims_with("exp", json!(NOW + 120))))
        .await
        .unwrap();
    assert_eq!(l.token_expiration, NOW + 120);
    // A token accepted only thanks to the leeway does not produce a session born expired.
    let late = idp.rsa.mint(&claims_with("exp", json!(NOW - 10)));
    assert!(matches!(
        ex.login(&late).await.unwrap_err(),
        ExchangeError::Verify(VerifyError::Expired { .. })
    ));
}

#[tokio::test]
async fn bearers_expire_with_their_session() {
    let idp = Idp::start().await;
    let ex = exchange(
        &idp,
        idp.provider()
            .with_session_max_ttl(Duration::from_secs(600)),
    );
    let l = ex.login(&idp.rsa.mint(&claims())).await.unwrap();
    idp.clock.advance(Duration::from_secs(599));
    assert!(ex.authenticate(l.token.as_str()).await.is_ok());
    idp.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        ex.authenticate(l.token.as_str()).await.unwrap_err(),
        ExchangeError::InvalidBearer(_)
    ));
    // The store reaps it too.
    assert_eq!(ex.store().get(&l.session.id).await.unwrap(), None);
}

#[tokio::test]
async fn revocation_is_immediate_for_one_session_and_for_a_subject() {
    let idp = Idp::start().await;
    let ex = exchange(&idp, idp.provider());
    let t = idp.rsa.mint(&claims());
    let a = ex.login(&t).await.unwrap();
    let b = ex.login(&t).await.unwrap();
    let other = ex
        .login(&idp.rsa.mint(&claims_with("oid", json!("someone-else"))))
        .await
        .unwrap();
    assert!(ex.revoke(&a.session.id).await.unwrap());
    assert!(matches!(
        ex.authenticate(a.token.as_str()).await.unwrap_err(),
        ExchangeError::SessionNotFound
    ));
    assert!(ex.authenticate(b.token.as_str()).await.is_ok());
    assert!(
        !ex.revoke(&a.session.id).await.unwrap(),
        "second revoke finds nothing"
    );

    let subject = b.session.subject.clone();
    assert_eq!(ex.sessions_for(&subject).await.unwrap().len(), 1);
    let c = ex.login(&t).await.unwrap();
    assert_eq!(ex.revoke_subject(&subject).await.unwrap(), 2);
    for l in [&b, &c] {
        assert!(matches!(
            ex.authenticate(l.token.as_str()).await.unwrap_err(),
            ExchangeError::SessionNotFound
        ));
    }
    assert!(
        ex.authenticate(other.token.as_str()).await.is_ok(),
        "other subjects untouched"
    );
    assert_eq!(ex.metrics().sessions_revoked, 3);
}

#[tokio::test]
async fn bearer_secret_rotation_and_tampering() {
    let idp = Idp::start().await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(Arc::new(idp.clock.clone())));
    let old_secret = vec![1u8; 32];
    let old = Exchange::builder(
        idp.verifier(idp.provider()),
        BearerKeys::new(
            "jwt-exchange-test",
            "k-old",
            BearerSecret::from_bytes(old_secret.clone()).unwrap(),
        ),
    )
    .store(Arc::clone(&store))
    .build()
    .unwrap();
    let issued = old.login(&idp.rsa.mint(&claims())).await.unwrap();

    // The new instance signs with k-new and still accepts k-old bearers.
    let rotated = Exchange::builder(
        idp.verifier(idp.provider()),
        BearerKeys::new(
            "jwt-exchange-test",
            "k-new",
            BearerSecret::from_bytes(vec![2u8; 32]).unwrap(),
        )
        .with_verification_key("k-old", BearerSecret::from_bytes(old_secret).unwrap()),
    )
    .store(Arc::clone(&store))
    .build()
    .unwrap();
    assert!(rotated.authenticate(issued.token.as_str()).await.is_ok());
    let fresh = rotated.login(&idp.rsa.mint(&claims())).await.unwrap();
    assert!(rotated.authenticate(fresh.token.as_str()).await.is_ok());
    // The old instance does not know k-new.
    assert!(matches!(
        old.authenticate(fresh.token.as_str()).await.unwrap_err(),
        ExchangeError::InvalidBearer(_)
    ));

    // Another server's secret, with the same kid: refused.
    let stranger = Exchange::builder(
        idp.verifier(idp.provider()),
        BearerKeys::new(
            "jwt-exchange-test",
            "k-old",
            BearerSecret::from_bytes(vec![3u8; 32]).unwrap(),
        ),
    )
    .store(Arc::clone(&store))
    .build()
    .unwrap();
    assert!(matches!(
        stranger
            .authenticate(issued.token.as_str())
            .await
            .unwrap_err(),
        ExchangeError::InvalidBearer(_)
    ));

    // Tampering with the session id inside the bearer.
    let parts: Vec<&str> = issued.token.as_str().split('.').collect();
    let forged_payload = jwt_exchange_testkit::b64(
        json!({"sub": fresh.session.id.as_str(), "iss": "jwt-exchange-test", "iat": NOW, "exp": NOW + 60}).to_string(),
    );
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(matches!(
        old.authenticate(&forged).await.unwrap_err(),
        ExchangeError::InvalidBearer(_)
    ));
    // An external IdP token is not a bearer.
    assert!(old.authenticate(&idp.rsa.mint(&claims())).await.is_err());
}

#[tokio::test]
async fn unmatched_groups_authenticate_without_permissions() {
    let idp = Idp::start().await;
    let ex = exchange(&idp, idp.provider());
    let l = ex
        .login(
            &idp.rsa
                .mint(&claims_with("roles", json!(["nobody-knows-me"]))),
        )
        .await
        .unwrap();
    let who = ex.authenticate(l.token.as_str()).await.unwrap();
    assert!(who.policies.is_empty());
    assert_eq!(
        ex.authorize(&who, "fs:ReadObject", "x").await.unwrap(),
        Decision::NoMatch
    );
}

#[tokio::test]
async fn editing_a_policy_changes_live_sessions() {
    let idp = Idp::start().await;
    let dir = Arc::new(StaticDirectory::new(policies()).unwrap());
    let ex = Exchange::builder(idp.verifier(idp.provider()), bearer_keys())
        .directory(dir.clone())
        .build()
        .unwrap();
    let l = ex.login(&idp.rsa.mint(&claims())).await.unwrap(); // roles: readers, writers
    let who = ex.authenticate(l.token.as_str()).await.unwrap();
    assert_eq!(
        ex.authorize(&who, "fs:ReadObject", "repo/x").await.unwrap(),
        Decision::Allow
    );
    let mut edited = policies();
    edited.policies.insert(
        "ReadAll".into(),
        serde_json::from_value(json!({"statement": [
            {"effect": "deny", "action": "fs:*", "resource": "*"}
        ]}))
        .unwrap(),
    );
    dir.replace(edited).unwrap();
    assert_eq!(
        ex.authorize(&who, "fs:ReadObject", "repo/x").await.unwrap(),
        Decision::Deny
    );
}

/// A store whose writes fail (a backend that is down) wrapping a real one.
#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    fail_create: bool,
    fail_claim: bool,
}

#[async_trait]
impl SessionStore for Broken {
    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        if self.fail_create {
            return Err(StoreError::unavailable("connection refused"));
        }
        self.inner.create(s).await
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.inner.get(id).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.delete(id).await
    }
    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        self.inner.delete_subject(subject).await
    }
    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        self.inner.list_subject(subject).await
    }
    async fn sweep(&self) -> Result<usize, StoreError> {
        self.inner.sweep().await
    }
    async fn claim_jti(&self, issuer: &str, jti: &str, exp: i64) -> Result<bool, StoreError> {
        if self.fail_claim {
            return Err(StoreError::unavailable("connection reset"));
        }
        self.inner.claim_jti(issuer, jti, exp).await
    }
}

#[tokio::test]
async fn a_failed_store_write_creates_nothing_and_is_an_outage() {
    let idp = Idp::start().await;
    for (fail_create, fail_claim) in [(true, false), (false, true)] {
        let store = Arc::new(Broken {
            inner: MemoryStore::new(Arc::new(idp.clock.clone())),
            fail_create,
            fail_claim,
        });
        let ex = Exchange::builder(idp.verifier(idp.provider()), bearer_keys())
            .store(store.clone())
            .replay_protection(true)
            .build()
            .unwrap();
        let e = ex.login(&idp.rsa.mint(&claims())).await.unwrap_err();
        assert!(matches!(e, ExchangeError::Store(_)), "{e:?}");
        assert!(e.is_unavailable());
        assert_eq!(store.inner.len(), 0, "no session left behind");
        assert_eq!(ex.metrics().logins_failed.get("store"), Some(&1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_protection_lets_a_jti_through_exactly_once() {
    let idp = Idp::start().await;
    let store = Arc::new(MemoryStore::new(Arc::new(idp.clock.clone())));
    let ex = Exchange::builder(idp.verifier(idp.provider()), bearer_keys())
        .store(store.clone())
        .replay_protection(true)
        .build()
        .unwrap();
    ex.verifier().refresh_keys().await.unwrap();
    let token = Arc::new(idp.rsa.mint(&claims()));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (ex, t) = (ex.clone(), Arc::clone(&token));
        tasks.push(tokio::spawn(async move { ex.login(&t).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(matches!(e, ExchangeError::Replayed), "{e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(store.len(), 1, "losers left no session behind");
    // Without a jti nothing can be protected, so the token is refused.
    let no_jti = idp.rsa.mint(&claims_with("jti", serde_json::Value::Null));
    assert!(matches!(
        ex.login(&no_jti).await.unwrap_err(),
        ExchangeError::Replayed
    ));
    // Another jti is fine.
    assert!(ex
        .login(&idp.rsa.mint(&claims_with("jti", json!("jti-2"))))
        .await
        .is_ok());
}

/// A token may outlive its session (`session_max_ttl` 1 h, Auth0's default 24 h tokens): its
/// `jti` stays claimed until the token's own `exp`, not the session's end.
#[tokio::test]
async fn a_claimed_jti_outlives_the_session_until_the_token_expires() {
    let idp = Idp::start().await;
    let store = Arc::new(MemoryStore::new(Arc::new(idp.clock.clone())));
    let provider = idp
        .provider()
        .with_session_max_ttl(Duration::from_secs(3600))
        .with_leeway(Duration::from_secs(60));
    let ex = Exchange::builder(idp.verifier(provider), bearer_keys())
        .store(store.clone())
        .replay_protection(true)
        .build()
        .unwrap();
    let day = 24 * 3600;
    let token = idp.rsa.mint(&claims_with("exp", json!(NOW + day)));
    let first = ex.login(&token).await.unwrap();
    assert_eq!(
        first.token_expiration,
        NOW + 3600,
        "the session ends after an hour"
    );
    // Past the session, the token is still valid and still refused.
    idp.clock.advance(Duration::from_secs(3600 + 1));
    assert!(matches!(
        ex.login(&token).await.unwrap_err(),
        ExchangeError::Replayed
    ));
    // So it is in the token's last second.
    idp.clock.advance(Duration::from_secs(
        u64::try_from(day - 3600 - 1 - 1).unwrap(),
    ));
    let e = ex.login(&token).await.unwrap_err();
    assert!(matches!(e, ExchangeError::Replayed), "{e:?}");
    // From `exp` on the token itself cannot log in (within the leeway it verifies, but its
    // session would be born expired), so the record has nothing left to guard.
    idp.clock.advance(Duration::from_secs(1));
    assert_eq!(ex.login(&token).await.unwrap_err().check(), "exp");
}

#[tokio::test]
async fn verification_failures_and_outages_are_told_apart() {
    let idp = Idp::start().await;
    let ex = exchange(&idp, idp.provider());
    let e = ex.login("garbage").await.unwrap_err();
    assert!(!e.is_unavailable());
    assert_eq!(e.check(), "format");
    idp.server
        .set_behavior(jwt_exchange_testkit::Behavior::Status(500));
    let e = ex.login(&idp.rsa.mint(&claims())).await.unwrap_err();
    assert!(e.is_unavailable(), "keys unavailable is a 503, not a 401");
    assert_eq!(ex.metrics().logins_failed.get("keys_unavailable"), Some(&1));
    let _ = idp.clock.unix_seconds();
}
