//! Embedded migrations: create the schema, record versions, run once even when instances
//! start together, and can be skipped at connect.

use jwt_exchange::store::SessionStore;
use jwt_exchange_postgres::{ConnectError, PostgresStore, PostgresStoreConfig};

use crate::common::{self, raw};

#[tokio::test]
async fn migrations_create_the_schema_once() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let schema = store.config().schema.clone();
    assert_eq!(
        store.migrate().await.expect("migrate again"),
        Vec::<i32>::new()
    );

    let db = raw(&url).await;
    let versions: Vec<i32> = db
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![PostgresStore::latest_schema_version()]);

    let mut indexes: Vec<String> = db
        .query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1",
            &[&schema],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "jtis_expires_at_idx",
            "jtis_pkey",
            "schema_migrations_pkey",
            "sessions_expires_at_idx",
            "sessions_pkey",
            "sessions_subject_idx",
        ]
    );
    common::cleanup(&store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_migrate_once() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let config = common::config();
    let starts = (0..6).map(|_| {
        let url = url.clone();
        let config = config.clone();
        tokio::spawn(async move { PostgresStore::connect(&url, config).await })
    });
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.expect("task").expect("connect"));
    }
    let db = raw(&url).await;
    let n: i64 = db
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".schema_migrations",
                config.schema
            ),
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);
    stores[0].ping().await.expect("ping");
    common::cleanup(&stores[0], &url).await;
}

#[tokio::test]
async fn connect_without_migrating_and_bad_config() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    // Without migrations the schema stays absent: operations fail, as Unavailable.
    let config = common::config().with_migrate_on_connect(false);
    let store = PostgresStore::connect(&url, config)
        .await
        .expect("connect without migrating");
    let s = common::session("nomigrate", 60);
    assert!(store
        .create(&s)
        .await
        .expect_err("no table")
        .is_unavailable());
    assert_eq!(store.migrate().await.expect("migrate"), vec![1]);
    store.create(&s).await.expect("create after migrating");
    common::cleanup(&store, &url).await;

    let err = PostgresStore::connect(&url, PostgresStoreConfig::default().with_schema("Bad"))
        .await
        .expect_err("bad schema");
    assert!(matches!(err, ConnectError::InvalidSchema { .. }), "{err:?}");
    let err = PostgresStore::connect("postgres://[::1", PostgresStoreConfig::default())
        .await
        .expect_err("bad url");
    assert!(matches!(err, ConnectError::InvalidUrl(_)), "{err:?}");
}
