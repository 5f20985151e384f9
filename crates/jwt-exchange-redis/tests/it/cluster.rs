//! The conformance suite on a real three-node Redis Cluster, started by the test from the
//! local `redis-server` binary on free loopback ports (skipped when the binary is missing).
//! Checks that every script and multi-key command stays within one hash slot (the cluster
//! refuses anything else with CROSSSLOT) and that sessions spread over the nodes.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_exchange::session::SessionId;
use jwt_exchange::store::SessionStore;
use jwt_exchange_redis::RedisStore;
use jwt_exchange_testkit::store_conformance::{self, RealTime};

use crate::common;

/// Three cluster nodes; killed (and their directory removed) on drop.
struct LocalCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn have(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port whose cluster-bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn start_cluster() -> Option<LocalCluster> {
    if !have("redis-server") || !have("redis-cli") {
        println!("skipped: redis-server / redis-cli not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "jwtx-cluster-{}",
        &SessionId::generate().as_str()[..10]
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut cluster = LocalCluster {
        nodes: Vec::new(),
        ports: Vec::new(),
        dir: dir.clone(),
    };
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        cluster.nodes.push(child);
        cluster.ports.push(port);
    }
    for port in &cluster.ports {
        wait_for(|| redis_cli(*port, &["ping"]).is_some_and(|o| o.contains("PONG")));
    }
    let addrs: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let status = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli --cluster create");
    assert!(status.success(), "cluster create failed");
    for port in &cluster.ports {
        wait_for(|| {
            redis_cli(*port, &["cluster", "info"]).is_some_and(|o| o.contains("cluster_state:ok"))
        });
    }
    Some(cluster)
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "local cluster did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_on_a_three_node_cluster() {
    let Some(cluster) = start_cluster() else {
        return;
    };
    let urls: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = RedisStore::connect_cluster(&nodes, common::config())
        .await
        .expect("connect to the cluster");
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    store_conformance::run_all(shared, &RealTime).await;

    // Sessions land on every node.
    for _ in 0..64 {
        store
            .create(&common::session("spread", 600))
            .await
            .expect("create");
    }
    for port in &cluster.ports {
        let keys = redis_cli(*port, &["dbsize"]).unwrap_or_default();
        let n: u64 = keys.trim().parse().unwrap_or(0);
        assert!(n > 0, "node {port} holds no key");
    }
    let subject = common::session("spread", 1).subject;
    assert_eq!(store.delete_subject(&subject).await.expect("revoke"), 64);
    drop(cluster);
}
