//! A loopback TCP proxy that a test can cut, black-hole and restore, to simulate a store's
//! server going away and coming back without touching the real server.

use std::io;
use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward bytes both ways (the initial mode).
    Forward,
    /// Close every open connection and close new ones as soon as they are accepted (the server
    /// is down: clients see resets / EOF at once).
    Refuse,
    /// Stop forwarding but keep connections open, and accept new ones without ever answering
    /// (a network partition: clients only notice through their own timeouts). Connections held
    /// this way are closed when the mode changes again.
    Blackhole,
}

/// A TCP proxy on `127.0.0.1:<random port>` in front of `upstream`. Dropping it closes the
/// listener and every connection.
///
/// ```no_run
/// use jwt_exchange_testkit::proxy::{ProxyMode, TcpProxy};
///
/// # async fn a_test() -> std::io::Result<()> {
/// let proxy = TcpProxy::start("127.0.0.1:6379").await?;
/// let url = format!("redis://{}", proxy.addr());
/// // ... connect the store to `url`, use it ...
/// proxy.set_mode(ProxyMode::Refuse); // the server "goes away"
/// // ... operations fail with StoreError::Unavailable ...
/// proxy.set_mode(ProxyMode::Forward); // and comes back
/// # let _ = url; Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a random loopback port and forwards to `upstream` (`host:port`).
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound.
    pub async fn start(upstream: impl Into<String>) -> io::Result<Self> {
        let upstream = upstream.into();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(ProxyMode::Forward);
        let modes = mode.clone();
        let task = tokio::spawn(async move {
            // Owned here, so aborting the accept loop aborts every connection too.
            let mut conns = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                while conns.try_join_next().is_some() {}
                let rx = modes.subscribe();
                let upstream = upstream.clone();
                conns.spawn(serve(client, upstream, rx));
            }
        });
        Ok(TcpProxy { addr, mode, task })
    }

    /// The proxy's listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the mode; takes effect at once for open and new connections.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client connection, for as long as the mode allows.
async fn serve(mut client: TcpStream, upstream: String, mut rx: watch::Receiver<ProxyMode>) {
    let mode = *rx.borrow_and_update();
    match mode {
        ProxyMode::Refuse => return,
        ProxyMode::Blackhole => {
            // Hold the socket, never answer; close it once the mode changes.
            let _ = rx.changed().await;
            return;
        }
        ProxyMode::Forward => {}
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        () = wait_for_other_than_forward(&mut rx) => {
            if *rx.borrow() == ProxyMode::Blackhole {
                // Keep both sockets open, silent, until the next change.
                let _ = rx.changed().await;
            }
        }
    }
}

async fn wait_for_other_than_forward(rx: &mut watch::Receiver<ProxyMode>) {
    loop {
        if rx.changed().await.is_err() {
            // The proxy is gone; the task is being aborted anyway.
            std::future::pending::<()>().await;
        }
        if *rx.borrow_and_update() != ProxyMode::Forward {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server on loopback.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn roundtrip(addr: SocketAddr) -> io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut buf))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_refuses_blackholes_and_restores() {
        let proxy = TcpProxy::start(echo().await.to_string())
            .await
            .expect("proxy");
        assert_eq!(roundtrip(proxy.addr()).await.expect("forward"), b"ping");

        let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
        open.write_all(b"x").await.expect("write");
        let mut one = [0u8; 1];
        open.read_exact(&mut one).await.expect("echo");

        proxy.set_mode(ProxyMode::Refuse);
        assert_eq!(proxy.mode(), ProxyMode::Refuse);
        // The open connection is closed: EOF (or a reset).
        let n = tokio::time::timeout(Duration::from_secs(2), open.read(&mut one))
            .await
            .expect("closed promptly");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        assert!(roundtrip(proxy.addr()).await.is_err());

        proxy.set_mode(ProxyMode::Blackhole);
        let err = roundtrip(proxy.addr()).await.expect_err("black-holed");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        proxy.set_mode(ProxyMode::Forward);
        assert_eq!(roundtrip(proxy.addr()).await.expect("restored"), b"ping");
    }
}
