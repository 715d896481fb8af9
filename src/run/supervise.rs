//! `--reload supervise`: cloudflared-routes is cloudflared's parent.
//!
//! cloudflared cannot reload its config (DOMAIN.md §2), but several processes may run the same
//! tunnel at once, so a change is a zero-downtime replacement: start a second cloudflared on
//! the new file with its own metrics port, wait until it is ready (`/ready` 200), then SIGTERM
//! the old one (never SIGHUP: it kills at once, exit 129) and reap it. When the old one was not
//! ready either (no edge reachable) there is no connector to protect, so the wait is for the
//! new one's `/config` to show the rendered rules instead.
//!
//! Each child is owned by a keeper task: it restarts a child that dies on its own with
//! back-off (1s doubling to 30s, reset once a child stayed up a minute), and drains it when
//! told to stop (SIGTERM, wait `drain_timeout`, SIGKILL). Children get their metrics address
//! through `TUNNEL_METRICS`, alternating between two ports; an old child drains in the
//! background, and the next reload that wants its port waits for it to be gone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::reload::{stopping, ConnectorEvent, ReloadError, Reloader};
use super::verify::{self, Readiness};

#[path = "supervise_keeper.rs"]
mod keeper;
pub use keeper::{Backoff, ChildExit, ChildStatus, ExitHook};
use keeper::{ChildSpec, Keeper};

/// Why the cloudflared command line cannot be supervised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    #[error("--reload supervise needs the cloudflared command line after `--`, e.g. `-- cloudflared --no-autoupdate tunnel run`")]
    Empty,
    #[error("the cloudflared command line must be `cloudflared [global flags] tunnel [tunnel flags] run [run flags] [TUNNEL]`, got {0:?}")]
    NotTunnelRun(String),
    #[error("{0} is managed by cloudflared-routes: each child gets its own metrics address through TUNNEL_METRICS (see --supervise-metrics-ports), and a --metrics flag would override it; remove it")]
    Metrics(String),
    #[error("--config {given} is not --config-out {expected}: cloudflared must run the file cloudflared-routes writes; leave --config out and it is added after `tunnel`")]
    OtherConfig { given: String, expected: String },
    #[error("{0} must stand between `tunnel` and `run`: cloudflared rejects tunnel flags after `run` (and exits 0); leave it out and it is added after `tunnel`")]
    ConfigPosition(String),
    #[error("{0} runs a remotely-managed tunnel, whose dashboard configuration replaces the local ingress; cloudflared-routes needs a locally-managed tunnel (credentials file)")]
    Token(String),
}

/// Checks the user's cloudflared argv and makes it run `config_path`: `--config` is a flag of
/// `cloudflared tunnel` and must come before `run` (after it, cloudflared prints "flag provided
/// but not defined" and exits 0), so it is inserted right after `tunnel` unless the argv
/// already names the same file there. `--metrics` is refused: a flag would override the
/// `TUNNEL_METRICS` each child is given.
pub fn cloudflared_command(argv: &[String], config_path: &Path) -> Result<Vec<String>, ArgvError> {
    if argv.is_empty() {
        return Err(ArgvError::Empty);
    }
    let not_tunnel_run = || ArgvError::NotTunnelRun(argv.join(" "));
    let tunnel = argv.iter().skip(1).position(|a| a == "tunnel").map(|i| i + 1).ok_or_else(not_tunnel_run)?;
    let run = argv[tunnel + 1..]
        .iter()
        .position(|a| a == "run")
        .map(|i| i + tunnel + 1)
        .ok_or_else(not_tunnel_run)?;
    let mut has_config = false;
    for (i, token) in argv.iter().enumerate().skip(1) {
        let Some(flag) = token.strip_prefix("--").or_else(|| token.strip_prefix('-')) else { continue };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        match name {
            "metrics" => return Err(ArgvError::Metrics(token.clone())),
            "token" | "token-file" => return Err(ArgvError::Token(token.clone())),
            "config" if i < tunnel || i > run => return Err(ArgvError::ConfigPosition(token.clone())),
            "config" => {
                let given = inline.or_else(|| argv.get(i + 1).cloned()).ok_or_else(not_tunnel_run)?;
                if !same_file(Path::new(&given), config_path) {
                    return Err(ArgvError::OtherConfig {
                        given,
                        expected: config_path.display().to_string(),
                    });
                }
                has_config = true;
            }
            _ => {}
        }
    }
    let mut command = argv.to_vec();
    if !has_config {
        command.splice(tunnel + 1..tunnel + 1, ["--config".to_string(), config_path.display().to_string()]);
    }
    Ok(command)
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Where to reach a metrics server that listens on `listen`.
fn connectable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// The `supervise` reloader (see the module doc).
pub struct Supervisor {
    spec: Arc<ChildSpec>,
    config_path: PathBuf,
    host: IpAddr,
    ports: [u16; 2],
    ready_timeout: Duration,
    current: Option<Keeper>,
    draining: Vec<Keeper>,
    /// `run` is stopping ([`Reloader::watch_shutdown`]): a reload gives up its waits.
    shutdown: Option<watch::Receiver<bool>>,
}

impl Supervisor {
    /// `argv` is the cloudflared command line (see [`cloudflared_command`]); `config_path`
    /// the file cloudflared-routes writes. Defaults: metrics on 127.0.0.1:20241 and :20242,
    /// 60s ready timeout, 35s drain timeout, [`Backoff::default`].
    pub fn new(argv: &[String], config_path: &Path) -> Result<Supervisor, ArgvError> {
        let mut command = cloudflared_command(argv, config_path)?;
        let program = command.remove(0);
        Ok(Supervisor {
            spec: Arc::new(ChildSpec {
                program,
                args: command,
                env: Vec::new(),
                drain_timeout: Duration::from_secs(35),
                backoff: Backoff::default(),
                on_exit: None,
            }),
            config_path: config_path.to_path_buf(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: [20241, 20242],
            ready_timeout: Duration::from_secs(60),
            current: None,
            draining: Vec::new(),
            shutdown: None,
        })
    }

    /// The address the children's metrics servers listen on, and the two ports they alternate
    /// between.
    pub fn with_metrics(mut self, host: IpAddr, ports: [u16; 2]) -> Self {
        self.host = host;
        self.ports = ports;
        self
    }

    pub fn with_ready_timeout(mut self, ready_timeout: Duration) -> Self {
        self.ready_timeout = ready_timeout;
        self
    }

    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.spec_mut().drain_timeout = drain_timeout;
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.spec_mut().backoff = backoff;
        self
    }

    /// Told of every child process that ends, and whether it was asked to (the exits metric).
    pub fn with_exit_hook(mut self, hook: ExitHook) -> Self {
        self.spec_mut().on_exit = Some(hook);
        self
    }

    /// An extra environment variable for every child (`TUNNEL_GRACE_PERIOD`, say).
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec_mut().env.push((key.into(), value.into()));
        self
    }

    /// The full command line every child runs (after `--config` was added).
    pub fn command_line(&self) -> Vec<String> {
        std::iter::once(self.spec.program.clone()).chain(self.spec.args.iter().cloned()).collect()
    }

    /// The serving child's state and metrics port, if one was started.
    pub fn current_child(&self) -> Option<(u16, ChildStatus)> {
        self.current.as_ref().map(|k| (k.port, k.status.borrow().clone()))
    }

    /// Waits until every replaced child has been reaped.
    pub async fn wait_drained(&mut self) {
        for mut keeper in self.draining.drain(..) {
            let _ = (&mut keeper.task).await;
        }
    }

    /// Running children keep the spec they were started with; later ones get the change.
    fn spec_mut(&mut self) -> &mut ChildSpec {
        Arc::make_mut(&mut self.spec)
    }

    fn listen(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.host, port)
    }

    /// The port the next child gets: the one the serving child does not use.
    fn next_port(&self) -> u16 {
        match &self.current {
            Some(current) if current.port == self.ports[0] => self.ports[1],
            _ => self.ports[0],
        }
    }

    /// A replaced child still draining on `port` holds its metrics server; wait for it (it
    /// is SIGKILLed after the drain timeout). Gives up when `run` stops: the keeper stays in
    /// `draining`, where [`Reloader::shutdown`] waits for it.
    async fn free_port(&mut self, port: u16) -> Result<(), ReloadError> {
        let mut shutdown = self.shutdown.clone();
        for keeper in self.draining.iter_mut().filter(|k| k.port == port) {
            // Awaited by reference: a wait cut short leaves the handle in place, and a handle
            // that finished is removed below, never awaited twice.
            tokio::select! {
                _ = &mut keeper.task => {}
                () = stopping(&mut shutdown) => return Err(abandoned("waiting for a drained child's port")),
            }
        }
        self.draining.retain(|k| !k.task.is_finished());
        Ok(())
    }

    /// Waits until `new` serves: ready, or (`old_ready` false) its `/config` shows `rendered`.
    async fn wait_serving(&self, new: &Keeper, old_ready: bool, rendered: &str) -> Result<(), ReloadError> {
        let serving = async {
            if old_ready {
                match verify::wait_ready(new.probe, self.ready_timeout).await {
                    true => Ok(()),
                    false => Err(ReloadError::NotReady(self.ready_timeout)),
                }
            } else {
                verify::verify(new.probe, rendered, self.ready_timeout).await.map_err(|e| {
                    warn!("the new cloudflared does not show the new config: {e}");
                    ReloadError::NotReady(self.ready_timeout)
                })
            }
        };
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            result = serving => result,
            how = new.exited() => Err(ReloadError::Spawn(format!("the new cloudflared {how} before it served"))),
            () = stopping(&mut shutdown) => Err(abandoned("waiting for the new cloudflared to serve")),
        }
    }

    fn stopping(&self) -> bool {
        self.shutdown.as_ref().is_some_and(|rx| *rx.borrow())
    }
}

/// How long the serving child is given to answer `/ready` while its process runs.
const OLD_READY_WAIT: Duration = Duration::from_secs(5);

/// Whether the serving child is ready (an edge connection registered). A process that runs
/// but does not answer is asked again, up to [`OLD_READY_WAIT`]: on a starved machine its
/// answer can be slow, and a ready child taken for unready would be stopped as soon as the new
/// one shows the config, before the new one has an edge connection. An answer other than 200
/// (503: no edge connection) or no process is final at once.
async fn old_is_ready(old: &Keeper) -> bool {
    let deadline = tokio::time::Instant::now() + OLD_READY_WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match verify::readiness(old.probe, left).await {
            Readiness::Ready => return true,
            Readiness::NotReady => return false,
            Readiness::Unreachable if old.status.borrow().pid.is_none() || left.is_zero() => return false,
            Readiness::Unreachable => tokio::time::sleep(verify::POLL_INTERVAL.min(left)).await,
        }
    }
}

/// The error of a reload given up because `run` is stopping.
fn abandoned(during: &str) -> ReloadError {
    ReloadError::Other(format!("stopping: the reload was abandoned while {during}"))
}

impl Reloader for Supervisor {
    fn starts_cloudflared(&self) -> bool {
        true
    }

    async fn reload(&mut self, path: &Path) -> Result<(), ReloadError> {
        if !same_file(path, &self.config_path) {
            return Err(ReloadError::Other(format!(
                "supervise runs cloudflared on {}, not {}",
                self.config_path.display(),
                path.display()
            )));
        }
        let rendered = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| ReloadError::Other(format!("cannot read {}: {e}", path.display())))?;
        let port = self.next_port();
        self.free_port(port).await?;
        if self.stopping() {
            return Err(abandoned("starting"));
        }
        let old_ready = match &self.current {
            Some(old) => {
                // Up to OLD_READY_WAIT: a shutdown meanwhile must not start a child only to
                // stop it at once.
                let mut shutdown = self.shutdown.clone();
                tokio::select! {
                    ready = old_is_ready(old) => ready,
                    () = stopping(&mut shutdown) => {
                        return Err(abandoned("asking the serving cloudflared whether it is ready"))
                    }
                }
            }
            None => false,
        };
        let mut new = Keeper::start(self.spec.clone(), self.listen(port));
        let waited = if old_ready { "ready" } else { "serving the new rules on /config" };
        match self.wait_serving(&new, old_ready, &rendered).await {
            Ok(()) => {
                if self.current.is_some() {
                    info!(metrics = %new.probe, "the new cloudflared is {waited}; draining the old one");
                } else {
                    info!(metrics = %new.probe, "cloudflared is {waited}");
                }
                // Its first process served: what happens to it from here on is news (an exit
                // that came right after it served included).
                new.report_after(1, 0);
                if let Some(mut old) = self.current.replace(new) {
                    old.stop();
                    self.draining.push(old);
                }
                Ok(())
            }
            // `run` is stopping: the half-started child is stopped now, and drained with the
            // others by `shutdown`, bounded by the drain timeout; the serving one stays current.
            Err(e) if self.stopping() => {
                warn!("stopping: the new cloudflared is stopped before it served");
                new.stop();
                self.draining.push(new);
                Err(e)
            }
            Err(e) if self.current.is_none() => {
                // The first child is the only connector there can be: keep it, and let its
                // keeper restart it with back-off if it keeps dying. The failure is reported;
                // its next exits and restarts are news.
                let status = new.status.borrow().clone();
                new.report_after(status.starts, status.exits);
                self.current = Some(new);
                Err(e)
            }
            Err(e) => {
                warn!("keeping the old cloudflared: {e}");
                new.stop();
                self.draining.push(new);
                Err(e)
            }
        }
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        self.current.as_ref().map(|k| k.probe)
    }

    fn watch_shutdown(&mut self, shutdown: watch::Receiver<bool>) {
        self.shutdown = Some(shutdown);
    }

    /// The serving child's exits and restarts (its keeper restarts it with back-off). A
    /// replaced child's are not reported: it is draining, and another one serves.
    async fn connector_event(&mut self) -> ConnectorEvent {
        match &mut self.current {
            Some(current) => current.next_event().await,
            None => std::future::pending().await,
        }
    }

    async fn shutdown(&mut self) {
        if let Some(current) = self.current.take() {
            self.draining.push(current);
        }
        for keeper in &mut self.draining {
            keeper.stop();
        }
        // All drain at once (each is bounded by the drain timeout), then all are reaped.
        self.wait_drained().await;
    }
}

#[cfg(test)]
#[path = "supervise_tests.rs"]
mod tests;
