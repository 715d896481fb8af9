//! `--reload signal`: cloudflared runs in its own container of the same pod
//! (`shareProcessNamespace: true`); restart it through the kubelet.
//!
//! cloudflared has no reload signal and SIGHUP kills it at once (exit 129), so the only clean
//! way is SIGTERM: it unregisters from the edge, `/ready` turns 503, in-flight requests get its
//! grace-period, it exits 0, and the kubelet starts it again, reading the new file. The reload
//! is done when its `/ready` is 200 again *after* it was seen going down (503, unreachable, or
//! the old pid gone), so a stale 200 from the old process never counts.
//!
//! The process is found by `--cloudflared-pidfile` (cloudflared's own `--pidfile`, written
//! after its first connection), or by scanning `/proc` for a process whose executable, `comm`
//! or `argv[0]` is named `cloudflared`. Signalling another container's process needs the same
//! uid (the official image runs as 65532) or CAP_KILL.
//!
//! Every replica restarts on the same change, so the restart is wrapped in a [`Turn`]. With the
//! Kubernetes API, [`LeaseTurn`] lets one replica at a time go: it holds a Lease (beside the
//! leader-election one, named `<that name>-restart`) from before the SIGTERM until its own
//! cloudflared is ready again. Without an API (`--manifests`), or with `--stagger none`,
//! [`NoTurn`] lets every replica go at once.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use kube::Client;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, error, info, warn};

use super::leader::{Attempt, LeaderElectionOptions, LeaseLock};
use super::reload::{parse_duration, stopping, ReloadError, Reloader};
use super::verify::{self, Readiness, POLL_INTERVAL};

#[path = "signal_proc.rs"]
mod process;
pub use process::scan;
#[cfg(test)]
use process::state;
use process::{alive, read_pidfile, started_at};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Permission for this replica to restart its cloudflared now. A Lease-backed implementation
/// holds the Lease from `take` until `release`, so replicas of one Deployment restart one at
/// a time and each waits for its own cloudflared to be ready before letting the next go.
pub trait Turn: Send + Sync {
    /// Waits until it is this replica's turn.
    fn take(&self) -> BoxFuture<'_, Result<(), ReloadError>>;
    /// The restart is over (ready again, or given up): the next replica may go.
    fn release(&self) -> BoxFuture<'_, ()>;
}

/// Every replica's turn, always.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTurn;

impl Turn for NoTurn {
    fn take(&self) -> BoxFuture<'_, Result<(), ReloadError>> {
        Box::pin(async { Ok(()) })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// `--stagger`: whether replicas take turns restarting cloudflared (`--reload signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stagger {
    /// One restart in flight at a time, through a Kubernetes Lease (Kubernetes API source only)
    Lease,
    /// Every replica restarts at once
    None,
}

/// The staggering flags of `run` (flattened into its options).
#[derive(Debug, Clone, Args)]
pub struct StaggerOptions {
    /// signal: how replicas take turns restarting cloudflared: lease (one at a time through a
    /// Lease, needs the Kubernetes API source) or none (all at once)
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Stagger::Lease, env = "CLOUDFLARED_ROUTES_STAGGER")]
    pub stagger: Stagger,
    /// signal: the longest a replica waits for its turn before it restarts cloudflared anyway
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
    pub stagger_max_wait: Duration,
}

impl Default for StaggerOptions {
    fn default() -> Self {
        StaggerOptions { stagger: Stagger::Lease, stagger_max_wait: Duration::from_secs(600) }
    }
}

/// The restart Lease of a leader-election Lease: the same namespace, a name of its own so that
/// taking a turn never touches leadership. Lease names are DNS subdomains (253 characters), so
/// the suffix fits behind any 63-character leader name.
pub fn turn_lease_name(leader_lease_name: &str) -> String {
    format!("{leader_lease_name}-restart")
}

/// Where the restart Lease is and how [`LeaseTurn`] paces itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseTurnOptions {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// How long a holder that stops renewing (it died mid-restart) keeps the others out.
    pub lease_duration: Duration,
    /// The holder renews this often while its cloudflared restarts.
    pub renew_period: Duration,
    /// The time limit of each read-modify-write of the Lease: an attempt, a renewal, the release.
    pub attempt_timeout: Duration,
    /// A waiting replica looks again after `poll_min`, doubling up to `poll_max`.
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// No answer from the API for this long: restart without a turn.
    pub unreachable_after: Duration,
    /// Waited this long in all: restart without a turn.
    pub max_wait: Duration,
}

impl LeaseTurnOptions {
    /// Beside `leader`'s Lease, for the same identity, paced by its lease duration: renewed
    /// three times per duration, polled at most as often as leader election retries.
    pub fn new(leader: &LeaderElectionOptions, max_wait: Duration) -> Self {
        let lease = leader.lease_duration;
        let at_least = |d: Duration| d.max(Duration::from_millis(50));
        LeaseTurnOptions {
            namespace: leader.namespace.clone(),
            lease_name: turn_lease_name(&leader.lease_name),
            identity: leader.identity.clone(),
            lease_duration: lease,
            renew_period: at_least(lease / 3),
            attempt_timeout: at_least(lease / 3),
            poll_min: at_least(lease / 30),
            poll_max: at_least(lease * 2 / 15),
            // A holder that cannot reach the API cannot renew either: after one lease duration
            // its turn would have lapsed anyway, so waiting longer protects nothing.
            unreachable_after: lease,
            max_wait,
        }
    }
}

/// A [`Turn`] through a `coordination.k8s.io/v1` Lease: one replica restarts at a time. See
/// docs/reload.md for what happens when the API cannot be reached.
pub struct LeaseTurn {
    opts: LeaseTurnOptions,
    lock: Arc<tokio::sync::Mutex<LeaseLock>>,
    /// Renews the Lease while this replica holds it; `None` when it does not.
    renewer: Mutex<Option<JoinHandle<()>>>,
    shutdown: Option<watch::Receiver<bool>>,
}

impl LeaseTurn {
    pub fn new(client: Client, opts: LeaseTurnOptions) -> LeaseTurn {
        let lock =
            LeaseLock::new(client, &opts.namespace, &opts.lease_name, &opts.identity, opts.lease_duration);
        LeaseTurn {
            opts,
            lock: Arc::new(tokio::sync::Mutex::new(lock)),
            renewer: Mutex::new(None),
            shutdown: None,
        }
    }

    /// Stop waiting for a turn once this turns true (`run` is stopping): a pod being deleted
    /// must not sit out its grace period in a queue.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    async fn wait_for_turn(&self) -> Result<(), ReloadError> {
        let opts = &self.opts;
        let lease = opts.lease_name.as_str();
        let started = Instant::now();
        let mut answered = started;
        let mut pause = opts.poll_min;
        let (mut holder_seen, mut error_seen) = (None::<String>, None::<String>);
        let mut shutdown = self.shutdown.clone();
        loop {
            let attempt = {
                let mut lock = self.lock.lock().await;
                timeout(opts.attempt_timeout, lock.try_acquire_or_renew())
                    .await
                    .unwrap_or(Err(Attempt::Timeout))
            };
            match attempt {
                Ok(()) => {
                    info!(lease, waited = ?started.elapsed(), "took the turn to restart cloudflared");
                    self.start_renewing();
                    return Ok(());
                }
                Err(Attempt::HeldBy(holder)) => {
                    answered = Instant::now();
                    if holder_seen.as_ref() != Some(&holder) {
                        info!(lease, %holder, "waiting for another replica's cloudflared to restart");
                        holder_seen = Some(holder);
                    }
                }
                // Taken by another replica between our read and our write: it is its turn.
                Err(Attempt::Conflict) => answered = Instant::now(),
                Err(e) => {
                    let message = e.to_string();
                    if error_seen.as_ref() != Some(&message) {
                        warn!(lease, error = %message, "could not read or take the restart Lease; retrying");
                        error_seen = Some(message.clone());
                    }
                    if answered.elapsed() >= opts.unreachable_after {
                        error!(lease, error = %message, silent = ?answered.elapsed(),
                            "the Kubernetes API does not answer: restarting cloudflared WITHOUT a turn; other replicas may restart at the same time");
                        return Ok(());
                    }
                }
            }
            if started.elapsed() + pause > opts.max_wait {
                error!(lease, waited = ?started.elapsed(), holder = holder_seen.as_deref().unwrap_or(""),
                    "no turn within --stagger-max-wait: restarting cloudflared WITHOUT a turn");
                return Ok(());
            }
            tokio::select! {
                _ = sleep(pause) => {}
                _ = stopping(&mut shutdown) => {
                    return Err(ReloadError::Other("stopping while waiting for the turn to restart cloudflared".into()));
                }
            }
            pause = (pause * 2).min(opts.poll_max);
        }
    }

    /// Renews the Lease until [`Turn::release`]: a restart may outlast the lease duration
    /// (cloudflared's grace period plus the kubelet's back-off).
    fn start_renewing(&self) {
        let (lock, opts) = (self.lock.clone(), self.opts.clone());
        let task = tokio::spawn(async move {
            let mut pause = opts.renew_period;
            loop {
                sleep(pause).await;
                let attempt = {
                    let mut lock = lock.lock().await;
                    timeout(opts.attempt_timeout, lock.try_acquire_or_renew())
                        .await
                        .unwrap_or(Err(Attempt::Timeout))
                };
                let lease = opts.lease_name.as_str();
                pause = match attempt {
                    Ok(()) => {
                        debug!(lease, "restart turn renewed");
                        opts.renew_period
                    }
                    // It lapsed while renewals failed and another replica took it: taking it
                    // back later would hand out a turn twice.
                    Err(Attempt::HeldBy(holder)) => {
                        warn!(lease, %holder, "lost the restart turn before this restart was over");
                        return;
                    }
                    Err(e) => {
                        // Retried sooner than a renewal: the Lease lapses one duration after the
                        // last write that got through.
                        warn!(lease, error = %e, "could not renew the restart turn; retrying");
                        opts.poll_max
                    }
                };
            }
        });
        let old = self.renewer.lock().unwrap_or_else(|e| e.into_inner()).replace(task);
        if let Some(old) = old {
            old.abort();
        }
    }

    async fn give_back(&self) {
        let renewer = self.renewer.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Not holding it (no turn was needed, or it was skipped): nothing to give back.
        let Some(renewer) = renewer else { return };
        renewer.abort();
        let _ = renewer.await;
        let lease = self.opts.lease_name.as_str();
        let mut lock = self.lock.lock().await;
        match timeout(self.opts.attempt_timeout, lock.release()).await {
            Ok(Ok(())) => info!(lease, "released the turn to restart cloudflared"),
            Ok(Err(e)) => {
                warn!(lease, error = %e, "could not release the restart turn; the next replica goes once it expires")
            }
            Err(_) => {
                warn!(lease, "releasing the restart turn timed out; the next replica goes once it expires")
            }
        }
    }
}

impl Turn for LeaseTurn {
    fn take(&self) -> BoxFuture<'_, Result<(), ReloadError>> {
        Box::pin(self.wait_for_turn())
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.give_back())
    }
}

impl Drop for LeaseTurn {
    /// Stops renewing: a Lease left behind lapses after its duration, as a dead holder's does.
    fn drop(&mut self) {
        if let Some(task) = self.renewer.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// The `signal` reloader (see the module doc).
pub struct Signaller {
    pidfile: Option<PathBuf>,
    process_name: String,
    proc_root: PathBuf,
    metrics: Option<SocketAddr>,
    config_metrics: Option<SocketAddr>,
    ready_timeout: Duration,
    turn: Box<dyn Turn>,
    /// No reload has run yet: cloudflared may not have been started (a native sidecar starts
    /// before it), and then it will read the file we just wrote on its own; or it may already
    /// run that file (this container restarted), and then it is left alone.
    first: bool,
    /// `run` is stopping ([`Reloader::watch_shutdown`]): the waits of a reload give up.
    shutdown: Option<watch::Receiver<bool>>,
}

/// What the first reload finds.
enum AtStart {
    /// No cloudflared yet: it will read the file when it starts.
    NotRunning(String),
    /// cloudflared runs this file already (its `/config`), or started after it was written.
    RunsIt(String),
    /// cloudflared runs something else, or nothing shows that it runs this file.
    Restart(String),
}

/// A process that started this long after the file's mtime read it (the start time from /proc
/// is in clock ticks; the margin also covers a file written in the same second).
const STARTED_AFTER_MARGIN: Duration = Duration::from_secs(1);

impl Signaller {
    /// Finds cloudflared by scanning /proc for `cloudflared`; verifies on the config's
    /// `metrics:` address.
    pub fn new(ready_timeout: Duration) -> Signaller {
        Signaller {
            pidfile: None,
            process_name: "cloudflared".into(),
            proc_root: PathBuf::from("/proc"),
            metrics: None,
            config_metrics: None,
            ready_timeout,
            turn: Box::new(NoTurn),
            first: true,
            shutdown: None,
        }
    }

    /// cloudflared's pidfile; a stale one (no such process) falls back to the /proc scan.
    pub fn with_pidfile(mut self, pidfile: PathBuf) -> Self {
        self.pidfile = Some(pidfile);
        self
    }

    /// cloudflared's metrics server, instead of the config's `metrics:` key.
    pub fn with_metrics(mut self, addr: SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }

    /// The process name the /proc scan looks for (tests use a unique one).
    pub fn with_process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = name.into();
        self
    }

    /// Who decides when this replica may restart its cloudflared.
    pub fn with_turn(mut self, turn: Box<dyn Turn>) -> Self {
        self.turn = turn;
        self
    }

    /// The cloudflared processes a reload would signal.
    pub fn find(&self) -> Result<Vec<i32>, ReloadError> {
        if let Some(pidfile) = &self.pidfile {
            match read_pidfile(pidfile) {
                Ok(pid) if alive(&self.proc_root, pid) => return Ok(vec![pid]),
                Ok(pid) => warn!(pid, "the pid in {} is not running; scanning /proc", pidfile.display()),
                Err(why) => warn!("{why}; scanning /proc"),
            }
        }
        let pids = scan(&self.proc_root, &self.process_name);
        if pids.is_empty() {
            return Err(ReloadError::NoProcess(format!(
                "no process named {} in {} (is shareProcessNamespace set on the pod?)",
                self.process_name,
                self.proc_root.display()
            )));
        }
        Ok(pids)
    }

    /// At the first reload, before cloudflared exists: wait until it runs and is ready.
    async fn wait_for_start(&self, addr: SocketAddr, why: String) -> Result<(), ReloadError> {
        info!("{why}; waiting for cloudflared to start (it will read the config just written)");
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            let from_pidfile = self.pidfile.as_ref().and_then(|p| read_pidfile(p).ok());
            let running = from_pidfile.is_some_and(|pid| alive(&self.proc_root, pid))
                || !scan(&self.proc_root, &self.process_name).is_empty();
            if running && verify::readiness(addr, Duration::from_secs(1)).await == Readiness::Ready {
                info!(metrics = %addr, "cloudflared is ready");
                return Ok(());
            }
            if Instant::now() + POLL_INTERVAL > deadline {
                return Err(ReloadError::NotReady(self.ready_timeout));
            }
            self.pause().await?;
        }
    }

    /// The poll interval, or an error once `run` is stopping (a restart turn is then released
    /// at once, and the pod's grace period is not spent waiting for readiness).
    async fn pause(&self) -> Result<(), ReloadError> {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = sleep(POLL_INTERVAL) => Ok(()),
            () = stopping(&mut shutdown) => {
                Err(ReloadError::Other("stopping: gave up waiting for cloudflared to be ready".into()))
            }
        }
    }

    /// At the first reload: does cloudflared need a restart to run the file at `path`? Not
    /// when its `/config` shows the file's ingress already (the usual case after this container
    /// restarted: the file was not even rewritten). When `/config` cannot be read, a process
    /// that started after the file was last written read it; otherwise it is restarted.
    async fn at_start(&self, addr: SocketAddr, path: &Path) -> Result<AtStart, ReloadError> {
        let pids = match self.find() {
            Ok(pids) => pids,
            Err(ReloadError::NoProcess(why)) => return Ok(AtStart::NotRunning(why)),
            Err(e) => return Err(e),
        };
        let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
        let Ok(expected) = verify::rendered_rules(&text) else {
            return Ok(AtStart::Restart(format!("{} has no readable ingress", path.display())));
        };
        let why = match verify::loaded_rules(addr, Duration::from_secs(2)).await {
            Ok(loaded) => {
                return Ok(match verify::difference(&expected, &loaded) {
                    None => AtStart::RunsIt(format!("its /config on {addr} shows the file's ingress")),
                    Some(difference) => AtStart::Restart(format!("it runs another config: {difference}")),
                })
            }
            Err(why) => why,
        };
        let written = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let later = |pid| {
            started_at(&self.proc_root, pid).zip(written).is_some_and(|(s, w)| s > w + STARTED_AFTER_MARGIN)
        };
        Ok(if pids.iter().all(|&pid| later(pid)) {
            AtStart::RunsIt(format!(
                "its /config cannot be read ({why}), but it started after the file was written"
            ))
        } else {
            AtStart::Restart(format!(
                "its /config cannot be read ({why}) and it may have started on an older file"
            ))
        })
    }

    async fn restart(&self, addr: SocketAddr) -> Result<(), ReloadError> {
        let pids = self.find()?;
        for &pid in &pids {
            match kill(Pid::from_raw(pid), Signal::SIGTERM) {
                Ok(()) => info!(pid, "sent SIGTERM to cloudflared; waiting for its restart to be ready"),
                // Gone since we looked: its restart is what we wait for anyway.
                Err(Errno::ESRCH) => {}
                Err(Errno::EPERM) => {
                    return Err(ReloadError::NoProcess(format!(
                        "not permitted to signal cloudflared (pid {pid}): run as its uid or with CAP_KILL"
                    )))
                }
                Err(e) => return Err(ReloadError::Other(format!("SIGTERM to pid {pid}: {e}"))),
            }
        }
        let deadline = Instant::now() + self.ready_timeout;
        let mut went_down = false;
        loop {
            // Checked before the probe: a 200 that follows the old processes' end comes from
            // the new one.
            let old_gone = pids.iter().all(|&pid| !alive(&self.proc_root, pid));
            let readiness = verify::readiness(addr, Duration::from_secs(1)).await;
            went_down |= old_gone || readiness != Readiness::Ready;
            if went_down && readiness == Readiness::Ready {
                info!(metrics = %addr, "cloudflared is ready again");
                return Ok(());
            }
            if Instant::now() + POLL_INTERVAL > deadline {
                return Err(ReloadError::NotReady(self.ready_timeout));
            }
            self.pause().await?;
        }
    }
}

impl Reloader for Signaller {
    async fn reload(&mut self, path: &Path) -> Result<(), ReloadError> {
        let addr = self.metrics_addr().ok_or_else(|| {
            ReloadError::Other(
                "no address to check cloudflared's readiness on: set --cloudflared-metrics or a metrics: key in the base config"
                    .into(),
            )
        })?;
        if std::mem::replace(&mut self.first, false) {
            // No turn is taken for what needs no restart.
            match self.at_start(addr, path).await? {
                AtStart::NotRunning(why) => return self.wait_for_start(addr, why).await,
                AtStart::RunsIt(why) => {
                    info!("cloudflared runs the config already ({why}): not restarting it");
                    return Ok(());
                }
                AtStart::Restart(why) => info!("restarting cloudflared on the config: {why}"),
            }
        }
        self.turn.take().await?;
        let result = self.restart(addr).await;
        self.turn.release().await;
        result
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.or(self.config_metrics)
    }

    fn use_config_metrics(&mut self, addr: Option<SocketAddr>) {
        self.config_metrics = addr;
    }

    fn watch_shutdown(&mut self, shutdown: watch::Receiver<bool>) {
        self.shutdown = Some(shutdown);
    }

    /// cloudflared is not ours to stop: the kubelet stops its container.
    async fn shutdown(&mut self) {}
}

#[cfg(test)]
#[path = "signal_tests.rs"]
mod tests;
