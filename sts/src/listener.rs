//! The STS's listener, plain or TLS: accepts connections and serves each with hyper (HTTP/1.1;
//! over TLS also HTTP/2 by ALPN), bounding what a slow or idle client can hold. A TLS
//! handshake must finish within `tls_handshake`; an HTTP/1.1 request's headers must arrive
//! within `header_read`, which also closes a keep-alive connection idle that long (so a
//! client that sends half a request line, slowly, is dropped). Finished connections are
//! forgotten as they end (`signet_sts_connections` counts those held). On shutdown no new
//! connection is accepted, idle ones are closed, and requests in flight get 30 s to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How long a client may take at the edges of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// To send a request's headers (and the longest a keep-alive connection stays idle).
    pub header_read: Duration,
    /// To finish the TLS handshake.
    pub tls_handshake: Duration,
}

/// How long requests in flight may take after shutdown begins.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` (through TLS when `tls` is given) until `shutdown`
/// completes, then drains. `held` is set to the number of connections held.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    held: Gauge,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            // Forget each connection as it ends, so none is kept until shutdown.
            Some(_) = connections.join_next(), if !connections.is_empty() => {
                held.set(connections.len() as i64);
                continue;
            }
            () = &mut shutdown => break,
        };
        let connection = Connection {
            router: router.clone(),
            acceptor: acceptor.clone(),
            limits,
            peer,
            watcher: graceful.watcher(),
        };
        connections.spawn(connection.serve(stream));
        held.set(connections.len() as i64);
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 30 s; exiting anyway");
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    router: Router,
    acceptor: Option<TlsAcceptor>,
    limits: Limits,
    peer: SocketAddr,
    watcher: Watcher,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let Some(acceptor) = self.acceptor.clone() else {
            return self.http(stream, false).await;
        };
        let handshake = acceptor.accept(stream);
        match tokio::time::timeout(self.limits.tls_handshake, handshake).await {
            Ok(Ok(stream)) => self.http(stream, true).await,
            Ok(Err(error)) => tracing::debug!(peer = %self.peer, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn http<S>(self, stream: S, h2: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // The peer address, as axum's ConnectInfo gives it to handlers.
        let router = self
            .router
            .layer(axum::Extension(axum::extract::ConnectInfo(self.peer)));
        let service = TowerToHyperService::new(router);
        let mut builder = Builder::new(TokioExecutor::new());
        if !h2 {
            builder = builder.http1_only();
        }
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        if let Err(error) = self.watcher.watch(connection.into_owned()).await {
            tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
        }
    }
}
