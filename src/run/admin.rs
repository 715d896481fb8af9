//! The admin HTTP server (`--admin-addr`, default `0.0.0.0:8081`): probes and metrics.
//!
//! - `/healthz`: 200 while the process serves requests (liveness).
//! - `/readyz`: 200 once the first config has been written (or found already on disk) and
//!   cloudflared was reloaded, and, when cloudflared's metrics address is known, verified to
//!   run it; 503 before. After that, a later failed reload or verification does not take the
//!   readiness back (it shows in the Gateway's `Programmed` condition and the metrics, and the
//!   cloudflared running the previous config still serves). One thing does, with `--reload
//!   supervise`: the serving cloudflared child exited, so this pod has no connector at all, and
//!   it is 503 (the body says why) until a restarted child runs the config again. A pod without
//!   a connector must not count as available (a PodDisruptionBudget, a rollout).
//! - `/metrics`: Prometheus/OpenMetrics text.
//!
//! The default port stays clear of cloudflared's own metrics server in the same pod
//! (`metrics: 0.0.0.0:2000` in the usual config, 20241–20245 when unset).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The first config was written, reloaded and verified (never unset).
    ready: AtomicBool,
    /// `supervise`: why no cloudflared child serves now (the serving one exited, and no
    /// restart of it was seen running the config yet).
    down: Mutex<Option<String>>,
}

impl Health {
    pub fn set_ready(&self) {
        if !self.ready.swap(true, Ordering::SeqCst) {
            tracing::info!("ready");
        }
    }

    /// No cloudflared serves (`why`): `/readyz` answers 503 until [`Health::set_serving`].
    pub fn set_down(&self, why: String) {
        let was_up = self.lock_down().replace(why.clone()).is_none();
        if was_up && self.ready.load(Ordering::SeqCst) {
            tracing::warn!("not ready: {why}");
        }
    }

    /// A cloudflared serves again (or still): what [`Health::set_down`] said no longer holds.
    pub fn set_serving(&self) {
        let was_down = self.lock_down().take().is_some();
        if was_down && self.ready.load(Ordering::SeqCst) {
            tracing::info!("ready again: a cloudflared serves the config");
        }
    }

    /// `Ok` when ready, else why not (the body of `/readyz`'s 503).
    pub fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::SeqCst) {
            return Err("no config written and verified yet".to_string());
        }
        match self.lock_down().as_ref() {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }

    fn lock_down(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // Only a string is kept under the lock: a panic elsewhere cannot leave it half-written.
        self.down.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        "/readyz" => match health.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("not ready: {why}\n")),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_is_lost_only_while_no_cloudflared_serves() {
        let health = Health::default();
        assert_eq!(health.readiness(), Err("no config written and verified yet".to_string()));
        health.set_ready();
        assert_eq!(health.readiness(), Ok(()));
        health.set_down("no cloudflared runs the config: it exited with exit status: 1".to_string());
        assert_eq!(
            health.readiness(),
            Err("no cloudflared runs the config: it exited with exit status: 1".to_string())
        );
        assert!(!health.is_ready());
        health.set_ready();
        assert!(!health.is_ready(), "ready once, but no connector now");
        health.set_serving();
        assert!(health.is_ready());
    }
}
