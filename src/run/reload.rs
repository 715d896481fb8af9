//! Making cloudflared load a new config file. cloudflared reads its config once and never
//! reloads it; SIGHUP kills it (exit 129). So a reload is a restart: `supervise` starts a
//! second cloudflared, waits until it is ready, then drains the old one; `signal` sends
//! SIGTERM to the cloudflared of a shared process namespace and lets the kubelet restart it;
//! `none` only writes the file.
//!
//! ```text
//! … → write → Reloader::reload(path) → verify(metrics_addr(), rendered, timeout)
//! ```
//!
//! [`build`] turns the `run` flags ([`ReloadOptions`]) into an [`AnyReloader`]; [`Recorder`] is
//! the test double for the pipeline's tests.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use tokio::sync::watch;

pub use super::signal::{NoTurn, Signaller, Turn};
pub use super::supervise::Supervisor;

/// Why a reload failed; the variant name is the `result` label of the reloads metric.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cloudflared did not become ready within {0:?}")]
    NotReady(std::time::Duration),
    #[error("no cloudflared process found: {0}")]
    NoProcess(String),
    #[error("could not start cloudflared: {0}")]
    Spawn(String),
    #[error("{0}")]
    Other(String),
}

impl ReloadError {
    /// Every variant name, as the `result` label of the reloads metric: each series exists
    /// from the start at zero, so an alert on its `increase()` sees the first failure too.
    pub const LABELS: [&'static str; 4] = ["NotReady", "NoProcess", "Spawn", "Other"];

    /// The variant name (one of [`ReloadError::LABELS`]).
    pub fn label(&self) -> &'static str {
        match self {
            ReloadError::NotReady(_) => "NotReady",
            ReloadError::NoProcess(_) => "NoProcess",
            ReloadError::Spawn(_) => "Spawn",
            ReloadError::Other(_) => "Other",
        }
    }
}

/// What became of the cloudflared a reloader keeps running itself (`supervise`), on its own,
/// between reloads. The pipeline turns it into readiness, `Programmed` and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorEvent {
    /// The serving cloudflared exited without being asked to (how it ended, e.g. `exited with
    /// exit status: 1`); it is started again after a pause.
    Exited(String),
    /// It was started again after it exited; it may not serve yet.
    Restarted,
}

/// One way of making cloudflared run the config file at a path.
pub trait Reloader: Send {
    /// The config file at `path` was (re)written: make cloudflared run it. Called once at start
    /// (after the first write) and after every change.
    fn reload(&mut self, path: &Path) -> impl Future<Output = Result<(), ReloadError>> + Send;

    /// cloudflared's metrics server (`/ready`, `/config`) now, if known, for verification.
    fn metrics_addr(&self) -> Option<SocketAddr>;

    /// cloudflared runs only once this reloader started it (`supervise`: it is our child), so
    /// when the first render is refused, cloudflared is started on the file already there
    /// rather than not at all. Elsewhere cloudflared runs on that file without us.
    fn starts_cloudflared(&self) -> bool {
        false
    }

    /// The `metrics:` key of the config file about to be reloaded (`None`: it has no usable
    /// one), told before each `reload`. A reloader that takes its address from the config
    /// (when no flag gives one) uses it; the others ignore it.
    fn use_config_metrics(&mut self, _addr: Option<SocketAddr>) {}

    /// The flag `run` sets on SIGTERM/SIGINT, told once before the first `reload`. A reload in
    /// progress watches it and gives up promptly and safely once it turns true (a half-started
    /// child is stopped, a restart turn released), so the pod's termination grace period goes
    /// to draining, not to waiting out `--ready-timeout`; then [`Reloader::shutdown`] runs.
    fn watch_shutdown(&mut self, _shutdown: watch::Receiver<bool>) {}

    /// Resolves with the next thing that happened to the cloudflared this reloader keeps
    /// running (`supervise`: its serving child exited, or was restarted), since the last
    /// `reload` or event; each is reported once, in order. Never resolves for a reloader that
    /// does not run cloudflared. Cancel-safe: a call dropped before it resolved loses nothing.
    fn connector_event(&mut self) -> impl Future<Output = ConnectorEvent> + Send {
        std::future::pending()
    }

    /// cloudflared-routes is stopping: drain what this reloader started.
    fn shutdown(&mut self) -> impl Future<Output = ()> + Send;
}

/// Resolves once `run` is stopping; never without a shutdown flag.
pub async fn stopping(shutdown: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = shutdown {
        if rx.wait_for(|stop| *stop).await.is_ok() {
            return;
        }
    }
    // Without a flag (or with its sender gone) nothing will ever ask to stop.
    std::future::pending().await
}

/// `--reload none`: write only.
///
/// `metrics` (`--cloudflared-metrics`) is where verification looks; without it, the written
/// config's `metrics:` key ([`Reloader::use_config_metrics`]), so a cloudflared started by
/// someone else on that config can still be verified.
#[derive(Debug, Default)]
pub struct NoReload {
    pub metrics: Option<SocketAddr>,
    config_metrics: Option<SocketAddr>,
}

impl NoReload {
    /// `metrics`: the `--cloudflared-metrics` flag.
    pub fn new(metrics: Option<SocketAddr>) -> NoReload {
        NoReload { metrics, config_metrics: None }
    }
}

impl Reloader for NoReload {
    async fn reload(&mut self, _path: &Path) -> Result<(), ReloadError> {
        Ok(())
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.or(self.config_metrics)
    }

    fn use_config_metrics(&mut self, addr: Option<SocketAddr>) {
        self.config_metrics = addr;
    }

    async fn shutdown(&mut self) {}
}

/// `--reload`: how a new config reaches cloudflared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReloadMode {
    /// Only write the file; something else restarts cloudflared.
    None,
    /// Be cloudflared's parent: start a second one on every change, drain the old one once the
    /// new one is ready (the argv after `--`).
    Supervise,
    /// SIGTERM the cloudflared of the pod (shareProcessNamespace) and wait until the kubelet's
    /// restart of it is ready again.
    Signal,
}

/// The reload flags of `run` (flattened into its options).
#[derive(Debug, Clone, Args)]
pub struct ReloadOptions {
    /// How cloudflared is made to run a new config: none (write only), supervise (start and
    /// replace cloudflared ourselves, argv after --), signal (SIGTERM the pod's cloudflared)
    #[arg(long = "reload", id = "reload", value_enum, value_name = "MODE", default_value_t = ReloadMode::None, env = "CLOUDFLARED_ROUTES_RELOAD")]
    pub mode: ReloadMode,
    /// signal: the file holding cloudflared's pid (cloudflared's own --pidfile); default: scan
    /// /proc for a process named cloudflared
    #[arg(long, value_name = "PATH")]
    pub cloudflared_pidfile: Option<PathBuf>,
    /// none/signal: cloudflared's metrics server, for /ready and /config (default: the
    /// config's metrics: key, 0.0.0.0 read as 127.0.0.1)
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_metrics_addr)]
    pub cloudflared_metrics: Option<SocketAddr>,
    /// supervise: the two metrics ports the cloudflared children alternate between (given to
    /// each child as TUNNEL_METRICS); 20241 and 20242 are cloudflared's own default ports
    #[arg(long, value_name = "PORT,PORT", value_delimiter = ',', default_value = "20241,20242")]
    pub supervise_metrics_ports: Vec<u16>,
    /// supervise: the address the children's metrics servers listen on (0.0.0.0 to be scraped
    /// from outside the pod)
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub supervise_metrics_host: IpAddr,
    /// supervise/signal: how long a (re)started cloudflared may take to be ready (or, with no
    /// edge reachable, to serve the new rules on /config). signal: include cloudflared's
    /// grace-period and the kubelet's restart back-off
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub ready_timeout: Duration,
    /// supervise: how long a SIGTERMed child may drain before SIGKILL; keep it above
    /// cloudflared's grace-period (default 30s, set with TUNNEL_GRACE_PERIOD or --grace-period)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "35s")]
    pub drain_timeout: Duration,
    /// supervise: the cloudflared command line, e.g. `-- cloudflared --no-autoupdate tunnel run`
    /// (`--config <config-out>` is inserted after `tunnel`)
    #[arg(last = true, value_name = "CLOUDFLARED ARGV")]
    pub cloudflared: Vec<String>,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            mode: ReloadMode::None,
            cloudflared_pidfile: None,
            cloudflared_metrics: None,
            supervise_metrics_ports: vec![20241, 20242],
            supervise_metrics_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ready_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(35),
            cloudflared: Vec::new(),
        }
    }
}

/// The reloader `--reload` asks for.
pub enum AnyReloader {
    None(NoReload),
    Supervise(Supervisor),
    Signal(Signaller),
}

impl AnyReloader {
    /// The mode, for logs and metric labels.
    pub fn mode(&self) -> ReloadMode {
        match self {
            AnyReloader::None(_) => ReloadMode::None,
            AnyReloader::Supervise(_) => ReloadMode::Supervise,
            AnyReloader::Signal(_) => ReloadMode::Signal,
        }
    }
}

impl Reloader for AnyReloader {
    async fn reload(&mut self, path: &Path) -> Result<(), ReloadError> {
        match self {
            AnyReloader::None(r) => r.reload(path).await,
            AnyReloader::Supervise(r) => r.reload(path).await,
            AnyReloader::Signal(r) => r.reload(path).await,
        }
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        match self {
            AnyReloader::None(r) => r.metrics_addr(),
            AnyReloader::Supervise(r) => r.metrics_addr(),
            AnyReloader::Signal(r) => r.metrics_addr(),
        }
    }

    fn starts_cloudflared(&self) -> bool {
        match self {
            AnyReloader::None(r) => r.starts_cloudflared(),
            AnyReloader::Supervise(r) => r.starts_cloudflared(),
            AnyReloader::Signal(r) => r.starts_cloudflared(),
        }
    }

    fn use_config_metrics(&mut self, addr: Option<SocketAddr>) {
        match self {
            AnyReloader::None(r) => r.use_config_metrics(addr),
            AnyReloader::Supervise(r) => r.use_config_metrics(addr),
            AnyReloader::Signal(r) => r.use_config_metrics(addr),
        }
    }

    fn watch_shutdown(&mut self, shutdown: watch::Receiver<bool>) {
        match self {
            AnyReloader::None(r) => r.watch_shutdown(shutdown),
            AnyReloader::Supervise(r) => r.watch_shutdown(shutdown),
            AnyReloader::Signal(r) => r.watch_shutdown(shutdown),
        }
    }

    async fn connector_event(&mut self) -> ConnectorEvent {
        match self {
            AnyReloader::None(r) => r.connector_event().await,
            AnyReloader::Supervise(r) => r.connector_event().await,
            AnyReloader::Signal(r) => r.connector_event().await,
        }
    }

    async fn shutdown(&mut self) {
        match self {
            AnyReloader::None(r) => r.shutdown().await,
            AnyReloader::Supervise(r) => r.shutdown().await,
            AnyReloader::Signal(r) => r.shutdown().await,
        }
    }
}

/// Builds the reloader for `opts`; `config_path` is `--config-out`, the file cloudflared runs.
/// Fails (before anything is started) on flags that cannot work together.
pub fn build(opts: &ReloadOptions, config_path: &Path) -> anyhow::Result<AnyReloader> {
    if opts.mode != ReloadMode::Supervise && !opts.cloudflared.is_empty() {
        bail!("a cloudflared command line after `--` is only used with --reload supervise");
    }
    Ok(match opts.mode {
        ReloadMode::None => AnyReloader::None(NoReload::new(opts.cloudflared_metrics)),
        ReloadMode::Signal => {
            let mut signaller = Signaller::new(opts.ready_timeout);
            if let Some(pidfile) = &opts.cloudflared_pidfile {
                signaller = signaller.with_pidfile(pidfile.clone());
            }
            if let Some(addr) = opts.cloudflared_metrics {
                signaller = signaller.with_metrics(addr);
            }
            AnyReloader::Signal(signaller)
        }
        ReloadMode::Supervise => {
            if opts.cloudflared_pidfile.is_some() {
                bail!("--cloudflared-pidfile is for --reload signal; supervise starts cloudflared itself");
            }
            let ports = match opts.supervise_metrics_ports[..] {
                [a, b] if a != b && a != 0 && b != 0 => [a, b],
                _ => bail!(
                    "--supervise-metrics-ports needs two different non-zero ports, got {:?}",
                    opts.supervise_metrics_ports
                ),
            };
            let supervisor = Supervisor::new(&opts.cloudflared, config_path)
                .context("--reload supervise")?
                .with_metrics(opts.supervise_metrics_host, ports)
                .with_ready_timeout(opts.ready_timeout)
                .with_drain_timeout(opts.drain_timeout);
            AnyReloader::Supervise(supervisor)
        }
    })
}

/// Parses a metrics address as cloudflared's `metrics:` key or `--metrics` takes it, and turns
/// it into an address to connect to: `localhost` and the unspecified addresses (`0.0.0.0`,
/// `[::]`) mean loopback. Other host names are refused (give an IP).
pub fn parse_metrics_addr(value: &str) -> Result<SocketAddr, String> {
    let (host, port) = value.rsplit_once(':').ok_or_else(|| format!("{value:?} is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("{value:?}: the port is not a number"))?;
    if port == 0 {
        return Err(format!("{value:?}: port 0 (a random port) cannot be probed; give a fixed port"));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => host.parse::<IpAddr>().map_err(|_| format!("{value:?}: the host must be an IP or localhost"))?,
    };
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, port))
}

/// The connectable address of a config's `metrics:` key, if it has a usable one (the pipeline
/// reads it from the config's frame, see [`Reloader::use_config_metrics`]).
pub fn metrics_from_config(yaml: &str) -> Option<SocketAddr> {
    #[derive(Deserialize)]
    struct Metrics {
        metrics: Option<String>,
    }
    let parsed: Metrics = serde_saphyr::from_str_with_options(yaml, routes_core::yaml::options()).ok()?;
    match parse_metrics_addr(parsed.metrics?.trim()) {
        Ok(addr) => Some(addr),
        Err(why) => {
            tracing::warn!("the config's metrics: key is not usable for verification: {why}");
            None
        }
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds (`15`, `0.5`): every
/// duration flag of `run`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{value:?} is not a duration like 30s"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{value:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{value:?}: {e}"))
}

/// One call a [`Recorder`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedCall {
    /// `reload(path)`, with the file's content at that moment (`None`: unreadable).
    Reload {
        path: PathBuf,
        contents: Option<String>,
    },
    Shutdown,
}

/// The recording test double: remembers every call, answers with the results it was told to
/// (success by default). Cloning shares the record, so a test keeps a handle while the
/// pipeline owns the reloader.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<RecorderState>>,
    /// Wakes a waiting `connector_event` when a test adds one.
    event_added: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Default)]
struct RecorderState {
    calls: Vec<RecordedCall>,
    failures: std::collections::VecDeque<ReloadError>,
    metrics: Option<SocketAddr>,
    /// What the last `use_config_metrics` said (`None`: never called).
    config_metrics: Option<Option<SocketAddr>>,
    delay: Duration,
    starts_cloudflared: bool,
    /// What `watch_shutdown` gave: a reload's delay ends with an error once it turns true.
    shutdown: Option<watch::Receiver<bool>>,
    /// Events `connector_event` is to report, in order.
    events: std::collections::VecDeque<ConnectorEvent>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `metrics_addr()` answers (a fake cloudflared's `/config` server, say).
    pub fn with_metrics(self, addr: SocketAddr) -> Self {
        self.lock().metrics = Some(addr);
        self
    }

    /// Answers `starts_cloudflared()` as `supervise` does.
    pub fn starting_cloudflared(self) -> Self {
        self.lock().starts_cloudflared = true;
        self
    }

    /// Every reload takes this long (to test coalescing behind a slow reload), or until the
    /// flag given to `watch_shutdown` turns true (then it fails, as the real reloaders do).
    pub fn with_delay(self, delay: Duration) -> Self {
        self.lock().delay = delay;
        self
    }

    /// The next reload returns `error` (queued: several calls fail several reloads).
    pub fn fail_next(&self, error: ReloadError) {
        self.lock().failures.push_back(error);
    }

    /// `connector_event` reports `event` next (as `supervise` does when its child exits or is
    /// restarted).
    pub fn connector(&self, event: ConnectorEvent) {
        self.lock().events.push_back(event);
        self.event_added.notify_one();
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    /// The contents of the file at each reload, in order.
    pub fn reloaded_contents(&self) -> Vec<Option<String>> {
        self.lock()
            .calls
            .iter()
            .filter_map(|c| match c {
                RecordedCall::Reload { contents, .. } => Some(contents.clone()),
                RecordedCall::Shutdown => None,
            })
            .collect()
    }

    pub fn reload_count(&self) -> usize {
        self.reloaded_contents().len()
    }

    /// The config's `metrics:` address the last `use_config_metrics` gave (`None`: never
    /// called).
    pub fn config_metrics(&self) -> Option<Option<SocketAddr>> {
        self.lock().config_metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        // A test that panicked while holding the lock must not hide the record from the others.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Reloader for Recorder {
    async fn reload(&mut self, path: &Path) -> Result<(), ReloadError> {
        let contents = tokio::fs::read_to_string(path).await.ok();
        let (delay, mut shutdown) = {
            let mut state = self.lock();
            state.calls.push(RecordedCall::Reload { path: path.to_path_buf(), contents });
            (state.delay, state.shutdown.clone())
        };
        if !delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopping(&mut shutdown) => return Err(ReloadError::Other("stopping".into())),
            }
        }
        match self.lock().failures.pop_front() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        self.lock().metrics
    }

    fn starts_cloudflared(&self) -> bool {
        self.lock().starts_cloudflared
    }

    fn use_config_metrics(&mut self, addr: Option<SocketAddr>) {
        self.lock().config_metrics = Some(addr);
    }

    fn watch_shutdown(&mut self, shutdown: watch::Receiver<bool>) {
        self.lock().shutdown = Some(shutdown);
    }

    async fn connector_event(&mut self) -> ConnectorEvent {
        loop {
            // Taken only when returned: a call dropped while it waits loses nothing.
            if let Some(event) = self.lock().events.pop_front() {
                return event;
            }
            self.event_added.notified().await;
        }
    }

    async fn shutdown(&mut self) {
        self.lock().calls.push(RecordedCall::Shutdown);
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
