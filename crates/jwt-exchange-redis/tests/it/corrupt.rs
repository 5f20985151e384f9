//! Garbage under a session key: `Corrupt` on read, never a panic, and never an obstacle to
//! revocation.

use jwt_exchange::store::{SessionStore, StoreError};

use crate::common::{self, raw, session};

#[tokio::test]
async fn garbage_record_is_corrupt_and_still_revocable() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let mut conn = raw(&url).await;

    // Not JSON.
    let s = session("garbage", 600);
    store.create(&s).await.expect("create");
    let key = common::session_key(&store, &url, &s.id).await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(b"\xff\x00not json".as_slice())
        .arg("KEEPTTL")
        .query_async(&mut conn)
        .await
        .expect("tamper");
    assert!(matches!(
        store.get(&s.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_subject(&s.subject).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(store.delete(&s.id).await.expect("delete garbage"));
    assert_eq!(store.get(&s.id).await.expect("get"), None);

    // JSON, but another session's record (or another id): Corrupt.
    let a = session("swap", 600);
    let b = session("swap", 600);
    store.create(&a).await.expect("create");
    let key_a = common::session_key(&store, &url, &a.id).await;
    let _: () = redis::cmd("SET")
        .arg(&key_a)
        .arg(serde_json::to_string(&b).expect("json"))
        .arg("KEEPTTL")
        .query_async(&mut conn)
        .await
        .expect("tamper");
    assert!(matches!(
        store.get(&a.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(store.delete_subject(&a.subject).await.expect("revoke"), 1);

    // A value of another type (WRONGTYPE).
    let w = session("wrongtype", 600);
    store.create(&w).await.expect("create");
    let key_w = common::session_key(&store, &url, &w.id).await;
    let _: () = redis::pipe()
        .del(&key_w)
        .hset(&key_w, "f", "v")
        .ignore()
        .query_async(&mut conn)
        .await
        .expect("tamper");
    assert!(matches!(
        store.get(&w.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(store.delete(&w.id).await.expect("delete wrong type"));
    let w2 = session("wrongtype", 600);
    store.create(&w2).await.expect("create");
    let key_w2 = common::session_key(&store, &url, &w2.id).await;
    let _: () = redis::pipe()
        .del(&key_w2)
        .sadd(&key_w2, "m")
        .ignore()
        .query_async(&mut conn)
        .await
        .expect("tamper");
    assert_eq!(store.delete_subject(&w2.subject).await.expect("revoke"), 1);
    assert_eq!(store.get(&w2.id).await.expect("get"), None);

    common::cleanup(&store, &url).await;
}
