//! A server that may evict keys is refused at connect, unless `insecure_allow_eviction`.

use std::process::{Child, Command, Stdio};

use jwt_exchange_redis::{ConnectError, RedisStore};
use jwt_exchange_testkit::services::{is_ci, wait_listening};

use crate::common::{config, redis_url};

/// A `redis-server` of this test's own with a memory limit and an evicting policy (the shared
/// server's settings are not changed under other tests), killed on drop.
struct EvictingRedis(Child, u16);

impl EvictingRedis {
    async fn start(policy: &str) -> Option<EvictingRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory", "1gb", "--maxmemory-policy", policy])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            assert!(!is_ci(), "redis-server not found (CI=true requires it)");
            println!("skipped: redis-server not found");
            return None;
        };
        let server = EvictingRedis(child, port);
        wait_listening(port, "redis-server").await;
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.1)
    }
}

impl Drop for EvictingRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_server_that_may_evict_keys_is_refused_unless_allowed() {
    // The shared server (no memory limit) is accepted: every other test connects to it.
    if redis_url().await.is_none() {
        return;
    }
    for policy in ["allkeys-lru", "volatile-ttl"] {
        let Some(server) = EvictingRedis::start(policy).await else {
            return;
        };
        let e = RedisStore::connect(&server.url(), config())
            .await
            .expect_err("refused");
        match &e {
            ConnectError::EvictingServer {
                policy: p,
                maxmemory,
            } => {
                assert_eq!(p, policy);
                assert_eq!(*maxmemory, 1 << 30);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("noeviction"), "{e}");
        RedisStore::connect(&server.url(), config().with_insecure_allow_eviction(true))
            .await
            .expect("allowed");
    }
    let Some(server) = EvictingRedis::start("noeviction").await else {
        return;
    };
    RedisStore::connect(&server.url(), config())
        .await
        .expect("a memory limit without eviction is fine");
}
