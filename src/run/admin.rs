//! The admin HTTP server (`--admin-addr`, default `0.0.0.0:8081`): probes and metrics.
//!
//! - `/healthz`: 200 while the process serves requests (liveness).
//! - `/readyz`: 200 once the first config has been written (or found already on disk) and
//!   cloudflared was reloaded, and, when cloudflared's metrics address is known, verified to
//!   run it; 503 before. Only a config rendered from the current objects counts: a cloudflared
//!   started on the last config written by an earlier run, while the source is not synced or
//!   the first render is refused, serves but is not ready (the body says so). After that, a later failed reload or verification does not take the
//!   readiness back (it shows in the Gateway's `Programmed` condition and the metrics, and the
//!   cloudflared running the previous config still serves). One thing does, with `--reload
//!   supervise`: the serving cloudflared child exited, so this pod has no connector at all, and
//!   it is 503 (the body says why) until a restarted child runs the config again. A pod without
//!   a connector must not count as available (a PodDisruptionBudget, a rollout).
//! - `/metrics`: Prometheus/OpenMetrics text.
//!
//! It answers anyone who reaches it, so every connection is bounded ([`Limits`]): a time to
//! send the request head, a lifetime, a buffer size, and a number open at once.
//!
//! The default port stays clear of cloudflared's own metrics server in the same pod
//! (`metrics: 0.0.0.0:2000` in the usual config, 20241–20245 when unset).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;

/// The default `--admin-addr`.
pub const DEFAULT_ADMIN_ADDR: &str = "0.0.0.0:8081";

/// What one client may hold of the admin server. It listens on the pod network without
/// authentication, so a client must not be able to exhaust the process's file descriptors
/// (then it can read neither its manifests nor write config.yml) or its memory. A kubelet
/// probe or a Prometheus scrape is one request of a few hundred bytes, answered at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From accepting a connection to the end of its request head (a connection that sends
    /// nothing included). Probes and scrapes send their head in one packet.
    pub header_read_timeout: Duration,
    /// The whole life of a connection: one request and its answer (keep-alive is off). Above
    /// Prometheus' default `scrape_timeout` (10s), so no scrape this server could answer is
    /// cut.
    pub connection_timeout: Duration,
    /// Connections open at once. Beyond it the oldest is closed to make room for the new one:
    /// clients that hold connections open cannot lock probes out, they only shorten each
    /// other's time (refusing the newcomer instead would fail every probe during a flood).
    pub max_connections: usize,
}

/// The limits of `run` (docs/run.md "Admin server").
pub const LIMITS: Limits = Limits {
    header_read_timeout: Duration::from_secs(5),
    connection_timeout: Duration::from_secs(15),
    max_connections: 64,
};

/// hyper's read and write buffer limit per connection (its default is ~400 KB; 8 KiB is its
/// minimum). A request head larger than this is answered 431 and the connection closed.
const MAX_BUF_SIZE: usize = 16 * 1024;

/// Waits after a failed accept (out of file descriptors, say), doubling up to the maximum, so
/// that the loop does not spin while the error lasts.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Readiness, set by the pipeline.
#[derive(Debug, Default)]
pub struct Health {
    /// The first config was written, reloaded and verified (never unset).
    ready: AtomicBool,
    /// `supervise`: why no cloudflared child serves now (the serving one exited, and no
    /// restart of it was seen running the config yet).
    down: Mutex<Option<String>>,
    /// Until ready: what cloudflared does meanwhile, when that says more than "nothing yet"
    /// (it serves the config already on disk: `/readyz`'s body says so).
    before_ready: Mutex<Option<String>>,
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

    /// Why `/readyz` says 503 until the first config is written and verified, when there is
    /// more to say than that (`None`: nothing more).
    pub fn set_before_ready(&self, why: Option<String>) {
        *self.before_ready.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = why;
    }

    /// `Ok` when ready, else why not (the body of `/readyz`'s 503).
    pub fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::SeqCst) {
            let before = self.before_ready.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
            return Err(before.unwrap_or_else(|| "no config written and verified yet".to_string()));
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
    serve_with(addr, LIMITS, health, metrics).await
}

/// [`serve`] with other limits (tests).
pub async fn serve_with(
    addr: SocketAddr,
    limits: Limits,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| super::UnusableInput(format!("--admin-addr {addr}: cannot listen: {e}")))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "admin server listening");
    let task = tokio::spawn(accept_loop(listener, limits, health, metrics));
    Ok((local, task))
}

async fn accept_loop(listener: TcpListener, limits: Limits, health: Arc<Health>, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // One sender per open connection, oldest first; sending (or dropping, when this task
    // ends) closes it.
    let mut open: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF.0;
                stream
            }
            Err(e) => {
                if backoff == ACCEPT_BACKOFF.0 {
                    tracing::warn!(error = %e, "admin server: accept failed");
                } else {
                    tracing::debug!(error = %e, "admin server: accept failed");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        open.retain(|cancel| !cancel.is_closed());
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Full: close the oldest connection still open, and take its slot once it has
                // let go (at once: its task only drops the socket).
                while let Some(cancel) = open.pop_front() {
                    if cancel.send(()).is_ok() {
                        metrics.admin_connection_dropped("evicted");
                        break;
                    }
                }
                match slots.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return, // never closed
                }
            }
        };
        let (cancel, cancelled) = oneshot::channel();
        open.push_back(cancel);
        tokio::spawn(connection(stream, permit, cancelled, limits, health.clone(), metrics.clone()));
    }
}

/// Serves one connection: one request (keep-alive is off), within the limits, or until the
/// accept loop closes it to make room.
async fn connection(
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    cancelled: oneshot::Receiver<()>,
    limits: Limits,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) {
    let _open = metrics.admin_connection_opened();
    let service = {
        let metrics = metrics.clone();
        hyper::service::service_fn(move |request| {
            let response = respond(&request, &health, &metrics);
            async move { Ok::<_, Infallible>(response) }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_SIZE)
        // One request per connection: a kubelet probe opens a new one each time, and
        // Prometheus reconnects per scrape when told to close, so no connection idles between
        // requests, and its whole life is bounded by `connection_timeout`.
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        outcome = tokio::time::timeout(limits.connection_timeout, connection) => match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_timeout() => {
                tracing::debug!("admin server: request head not received in time; connection closed");
                metrics.admin_connection_dropped("timeout");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "admin server connection"),
            Err(_) => {
                tracing::debug!("admin server: connection open too long; closed");
                metrics.admin_connection_dropped("timeout");
            }
        },
        // Closed to make room (counted there), or the server stopped.
        _ = cancelled => {}
    }
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
#[path = "admin_tests.rs"]
mod tests;
