//! The admin HTTP server (`--admin-addr`, default `0.0.0.0:8081`): probes and metrics.
//!
//! - `/healthz`: 200 while the process serves requests (liveness).
//! - `/readyz`: 200 once the first config has been written (or found already on disk) and
//!   cloudflared was reloaded, and, when cloudflared's metrics address is known, verified to
//!   run it; 503 before. Once ready it stays ready: a later failed verification is reported in
//!   the Gateway's `Programmed` condition and the metrics, and flapping the pod's readiness
//!   would not help a tunnel (no Service sends traffic to it).
//! - `/metrics`: Prometheus/OpenMetrics text.
//!
//! The default port stays clear of cloudflared's own metrics server in the same pod
//! (`metrics: 0.0.0.0:2000` in the usual config, 20241–20245 when unset).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::metrics::Metrics;

/// The default `--admin-addr`.
pub const DEFAULT_ADMIN_ADDR: &str = "0.0.0.0:8081";

/// Readiness, set by the pipeline.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    pub fn set_ready(&self) {
        if !self.ready.swap(true, Ordering::SeqCst) {
            tracing::info!("ready");
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Binds `addr` (port 0 picks a free port) and serves until the task is dropped. Returns the
/// bound address, also logged as `admin server listening addr=…`.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| super::UnusableInput(format!("--admin-addr {addr}: cannot listen: {e}")))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "admin server listening");
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // E.g. out of file descriptors: wait a little instead of spinning.
                    tracing::warn!(error = %e, "admin server: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (health, metrics) = (health.clone(), metrics.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = respond(&request, &health, &metrics);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "admin server connection");
                }
            });
        }
    });
    Ok((local, task))
}

fn respond(request: &Request<Incoming>, health: &Health, metrics: &Metrics) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if health.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready: no config written and verified yet\n"),
        "/metrics" => {
            let mut response = text(StatusCode::OK, &metrics.encode());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found: try /healthz, /readyz or /metrics\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
