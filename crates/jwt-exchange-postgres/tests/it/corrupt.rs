//! Undecodable rows: `Corrupt` on read, never a panic, and never an obstacle to revocation.

use jwt_exchange::store::{SessionStore, StoreError};

use crate::common::{self, raw, session};

#[tokio::test]
async fn garbage_row_is_corrupt_and_still_revocable() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let schema = store.config().schema.clone();
    let db = raw(&url).await;
    let tamper = format!("UPDATE \"{schema}\".sessions SET record = $2 WHERE id = $1");

    for garbage in ["not json", "{\"id\": 1}", "", "null"] {
        let s = session("garbage", 600);
        store.create(&s).await.expect("create");
        let n = db
            .execute(&tamper, &[&s.id.as_str(), &garbage])
            .await
            .expect("tamper");
        assert_eq!(n, 1);
        assert!(
            matches!(store.get(&s.id).await, Err(StoreError::Corrupt(_))),
            "{garbage:?}"
        );
        assert!(matches!(
            store.list_subject(&s.subject).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(store.delete(&s.id).await.expect("delete garbage"));
        assert_eq!(store.get(&s.id).await.expect("get"), None);
    }

    // Another session's record under this id: Corrupt on get, revocable by subject.
    let a = session("swap", 600);
    let b = session("swap", 600);
    store.create(&a).await.expect("create");
    let json = serde_json::to_string(&b).expect("json");
    db.execute(&tamper, &[&a.id.as_str(), &json])
        .await
        .expect("tamper");
    assert!(matches!(
        store.get(&a.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(store.delete_subject(&a.subject).await.expect("revoke"), 1);
    common::cleanup(&store, &url).await;
}
