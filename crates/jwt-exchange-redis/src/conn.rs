//! The connection a store talks through: one auto-reconnecting multiplexed connection to a
//! single server, or (feature `cluster`) a cluster connection that follows slot moves.

use std::time::Duration;

use jwt_exchange::store::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::error::map_err;
use crate::store::timed_out;

/// Opens an auto-reconnecting connection within `timeout`.
///
/// The manager retries a failed attempt until the timeout, so on its own it would report
/// every failure as "timed out". One direct attempt (at most a second) then names the cause:
/// a TLS handshake the server or this client refused, a rejected password, a refused port.
pub(crate) async fn manager(
    client: redis::Client,
    config: ConnectionManagerConfig,
    timeout: Duration,
) -> Result<ConnectionManager, StoreError> {
    let attempt = ConnectionManager::new_with_config(client.clone(), config);
    if let Ok(result) = tokio::time::timeout(timeout, attempt).await {
        return result.map_err(map_err);
    }
    let probe = timeout.min(Duration::from_secs(1));
    match tokio::time::timeout(probe, client.get_multiplexed_async_connection()).await {
        Ok(Err(e)) => Err(map_err(e)),
        _ => Err(StoreError::unavailable(timed_out("connect", timeout))),
    }
}

/// A cheap-to-clone handle; clones share the underlying connection(s).
#[derive(Clone)]
pub(crate) enum Conn {
    /// A single server (or a proxy in front of one).
    Single(ConnectionManager),
    /// Redis Cluster.
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "cluster")]
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
