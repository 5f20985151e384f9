//! The documented key layout, native expiry, `sweep` counting, and two store objects (two
//! instances of a service) sharing one prefix.

use std::time::Duration;

use jwt_exchange::store::SessionStore;
use jwt_exchange_redis::RedisStore;

use crate::common::{self, raw, session};

#[tokio::test]
async fn keys_follow_the_documented_layout() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let prefix = store.config().key_prefix.clone();
    let s = session("layout", 600);
    store.create(&s).await.expect("create");
    assert!(store
        .claim_jti("https://idp.test", "jti-1", common::now() + 600)
        .await
        .expect("claim"));

    let keys = common::keys_of(&store, &url).await;
    let session_key = common::session_key(&store, &url, &s.id).await;
    let tag = &session_key[..=session_key.find('}').expect("tag")];
    assert!(tag.starts_with(&format!("{{{prefix}:")), "{session_key}");
    let index_key = format!("{tag}:u:{}", s.subject);
    let expiry_key = format!("{tag}:x");
    let jti_key = format!("{prefix}:j:16:https://idp.test:jti-1");
    let mut expected = vec![
        session_key.clone(),
        index_key.clone(),
        expiry_key.clone(),
        jti_key.clone(),
    ];
    expected.sort();
    assert_eq!(keys, expected);

    let mut conn = raw(&url).await;
    let json: String = redis::cmd("GET")
        .arg(&session_key)
        .query_async(&mut conn)
        .await
        .expect("get");
    let back: jwt_exchange::Session = serde_json::from_str(&json).expect("record is JSON");
    assert_eq!(back, s);
    // Native expiry at expires_at, in ms, on the record, the index and the jti key.
    for key in [&session_key, &index_key, &jti_key] {
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("pexpiretime");
        assert_eq!(at, s.expires_at * 1000, "{key}");
    }
    let expiry_score: f64 = redis::cmd("ZSCORE")
        .arg(&expiry_key)
        .arg(s.id.as_str())
        .query_async(&mut conn)
        .await
        .expect("zscore");
    assert_eq!(expiry_score as i64, s.expires_at);

    assert!(store.delete(&s.id).await.expect("delete"));
    assert_eq!(
        common::keys_of(&store, &url).await,
        vec![jti_key],
        "delete removes the record and both index entries"
    );
    common::cleanup(&store, &url).await;
}

#[tokio::test]
async fn sweep_counts_natively_expired_sessions_once() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    // One expiry for all short sessions, three seconds out: the first sweep below runs well
    // before it even on a loaded machine (with a one-second TTL, a second boundary passing
    // during the creates made it count them as expired), and the sleep waits exactly past it.
    let expires = common::now() + 3;
    let short: Vec<_> = (0..20)
        .map(|i| {
            let mut s = session(&format!("s{}", i % 3), 3);
            s.expires_at = expires;
            s
        })
        .collect();
    let long = session("s0", 600);
    for s in short.iter().chain([&long]) {
        store.create(s).await.expect("create");
    }
    // A deleted session is not counted as expired later.
    store.delete(&short[0].id).await.expect("delete");
    assert_eq!(store.sweep().await.expect("sweep"), 0);

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis();
    let left = u128::try_from(expires * 1000)
        .expect("positive")
        .saturating_sub(now_ms);
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(left).unwrap_or(3000) + 150,
    ))
    .await;
    assert_eq!(store.sweep().await.expect("sweep"), 19);
    assert_eq!(store.sweep().await.expect("sweep"), 0);
    assert_eq!(store.get(&long.id).await.expect("get"), Some(long.clone()));
    assert_eq!(
        store.list_subject(&long.subject).await.expect("list"),
        vec![long.clone()]
    );
    // Expired records are gone from Redis itself; only the live session's keys remain.
    let keys = common::keys_of(&store, &url).await;
    assert!(keys
        .iter()
        .all(|k| !short.iter().any(|s| k.ends_with(s.id.as_str()))));
    common::cleanup(&store, &url).await;
}

#[tokio::test]
async fn two_instances_see_each_others_sessions_and_revocations() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let config = common::config();
    let a = RedisStore::connect(&url, config.clone())
        .await
        .expect("instance a");
    let b = RedisStore::connect(&url, config).await.expect("instance b");

    let s1 = session("shared", 600);
    let s2 = session("shared", 600);
    a.create(&s1).await.expect("create on a");
    b.create(&s2).await.expect("create on b");
    assert_eq!(b.get(&s1.id).await.expect("get on b"), Some(s1.clone()));
    assert_eq!(a.list_subject(&s1.subject).await.expect("list").len(), 2);

    // Login on one instance with an id another instance already used never overwrites.
    assert!(b.create(&s1).await.is_err());

    // Revocation on b is visible on a at its next request.
    assert!(b.delete(&s1.id).await.expect("delete on b"));
    assert_eq!(a.get(&s1.id).await.expect("get on a"), None);
    assert_eq!(a.delete_subject(&s2.subject).await.expect("revoke on a"), 1);
    assert_eq!(b.get(&s2.id).await.expect("get on b"), None);

    // Replay protection is shared too.
    let exp = common::now() + 600;
    assert!(a
        .claim_jti("https://idp.test", "j", exp)
        .await
        .expect("claim"));
    assert!(!b
        .claim_jti("https://idp.test", "j", exp)
        .await
        .expect("claim"));
    common::cleanup(&a, &url).await;
}

/// Memory per session, for docs/operations.md:
/// `cargo test -p jwt-exchange-redis --test it sizing -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn sizing() {
    const N: usize = 10_000;
    let Some((store, url)) = common::store().await else {
        return;
    };
    let mut conn = raw(&url).await;
    let used = |info: String| -> i64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory")
    };
    let before: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("info");
    let now = common::now();
    let mut first = None;
    for i in 0..N {
        let s = jwt_exchange_testkit::store_conformance::typical_session(
            &format!("user{}@example.com", i % 1000),
            now,
        );
        store.create(&s).await.expect("create");
        first.get_or_insert(s);
    }
    let after: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("info");
    let first = first.expect("one session");
    let key = common::session_key(&store, &url, &first.id).await;
    let record: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("memory usage");
    let json = serde_json::to_string(&first).expect("json").len();
    println!(
        "redis: {} bytes per session in all (used_memory delta / {N}; {} subjects), \
         record key alone {record} bytes, JSON {json} bytes",
        (used(after) - used(before)) / N as i64,
        1000
    );
    common::cleanup(&store, &url).await;
}

/// An absurdly late expiry is clamped (to the end of year 9999), never turned into a past
/// one: the session and its index stay, so revoking the subject still finds it.
#[tokio::test]
async fn far_future_expiry_is_clamped() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let mut s = session("far", 600);
    s.expires_at = i64::MAX;
    store.create(&s).await.expect("create");
    assert_eq!(store.get(&s.id).await.expect("get"), Some(s.clone()));
    assert_eq!(
        store.list_subject(&s.subject).await.expect("list"),
        vec![s.clone()]
    );
    let mut conn = raw(&url).await;
    for key in common::keys_of(&store, &url).await {
        let at: i64 = redis::cmd("PEXPIRETIME")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("pexpiretime");
        assert!(at == -1 || at == 253_402_300_799_000, "{key}: {at}");
    }
    assert_eq!(store.delete_subject(&s.subject).await.expect("revoke"), 1);
    common::cleanup(&store, &url).await;
}

/// Revoking a subject from an instance whose clock runs a minute ahead still deletes the
/// sessions about to expire, which an instance with a correct clock would go on accepting.
#[tokio::test]
async fn delete_subject_does_not_depend_on_the_revoking_instance_clock() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let prefix = store.config().key_prefix.clone();
    let ahead = jwt_exchange::MockClock::at_unix(common::now() + 60);
    let fast = RedisStore::connect(
        &url,
        common::config()
            .with_key_prefix(prefix)
            .with_clock(std::sync::Arc::new(ahead)),
    )
    .await
    .expect("connect");
    let soon = session("skewed", 30);
    let later = session("skewed", 600);
    store.create(&soon).await.expect("create");
    store.create(&later).await.expect("create");
    assert_eq!(fast.delete_subject(&soon.subject).await.expect("revoke"), 2);
    assert_eq!(
        store.get(&soon.id).await.expect("get"),
        None,
        "revoked everywhere"
    );
    assert_eq!(store.get(&later.id).await.expect("get"), None);
    common::cleanup(&store, &url).await;
}
