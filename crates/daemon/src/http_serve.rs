//! The bounded HTTP/1 serve loop both of the daemon's listeners use (the
//! telemetry endpoints and the admission webhook).
//!
//! Why not `axum::serve`: it sets no header-read timeout and no connection
//! cap, so a few slow or idle clients could exhaust the process's file
//! descriptors or keep a probe (or the API server's admission call) waiting.
//! Here at most `max_connections` are served at once (more wait in the
//! kernel's backlog), a client must send its headers within
//! `header_read_timeout`, and on shutdown requests in flight get
//! `shutdown_grace` to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The bounds of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes. `open` turns an
/// accepted TCP stream into the stream HTTP is read from (a TLS handshake,
/// or the stream itself); `None` drops the connection. `what` names the
/// listener in logs.
pub async fn serve<S, Open, Opened>(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    what: &'static str,
    open: Open,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    Open: Fn(TcpStream) -> Opened,
    Opened: Future<Output = Option<S>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and the like: pause rather than spin.
                    tracing::warn!(?addr, error = %e, "{what}: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let opened = open(stream);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _slot = slot;
            let Some(stream) = opened.await else {
                return;
            };
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    let _ =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
}
