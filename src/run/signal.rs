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
//! Every replica restarts on the same change; staggering them (one restart in flight per
//! Deployment, through a Kubernetes Lease) belongs behind [`Turn`]. Today's [`NoTurn`] lets
//! every replica go at once.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::time::{sleep, Instant};
use tracing::{info, warn};

use super::reload::{metrics_from_config_file, ReloadError, Reloader};
use super::verify::{self, Readiness, POLL_INTERVAL};

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

/// The `signal` reloader (see the module doc).
pub struct Signaller {
    pidfile: Option<PathBuf>,
    process_name: String,
    proc_root: PathBuf,
    metrics: Option<SocketAddr>,
    config_metrics: Option<SocketAddr>,
    ready_timeout: Duration,
    turn: Box<dyn Turn>,
}

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
            sleep(POLL_INTERVAL).await;
        }
    }
}

impl Reloader for Signaller {
    async fn reload(&mut self, path: &Path) -> Result<(), ReloadError> {
        if self.metrics.is_none() {
            self.config_metrics = metrics_from_config_file(path).await;
        }
        let addr = self.metrics_addr().ok_or_else(|| {
            ReloadError::Other(
                "no address to check cloudflared's readiness on: set --cloudflared-metrics or a metrics: key in the base config"
                    .into(),
            )
        })?;
        self.turn.take().await?;
        let result = self.restart(addr).await;
        self.turn.release().await;
        result
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.or(self.config_metrics)
    }

    /// cloudflared is not ours to stop: the kubelet stops its container.
    async fn shutdown(&mut self) {}
}

fn read_pidfile(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim().parse().map_err(|_| format!("{} does not hold a pid: {:?}", path.display(), text.trim()))
}

/// A process that exists and is not a zombie (an exited child its parent has not reaped yet
/// still answers `kill(pid, 0)`).
fn alive(proc_root: &Path, pid: i32) -> bool {
    let exists = match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    };
    exists && state(proc_root, pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// The state letter of /proc/PID/stat (after the parenthesised comm, which may hold spaces).
fn state(proc_root: &Path, pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Processes named `name`, by executable, `comm` (the kernel truncates it to 15 bytes) or
/// `argv[0]`; never this process, never a zombie.
pub fn scan(proc_root: &Path, name: &str) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir(proc_root) else { return Vec::new() };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own && named(&proc_root.join(pid.to_string()), name))
        .filter(|&pid| alive(proc_root, pid))
        .collect();
    pids.sort_unstable();
    pids
}

fn named(dir: &Path, name: &str) -> bool {
    let basename = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    if let Ok(exe) = std::fs::read_link(dir.join("exe")) {
        let exe = exe.to_string_lossy();
        if basename(exe.trim_end_matches(" (deleted)")) == name {
            return true;
        }
    }
    let short = &name.as_bytes()[..name.len().min(15)];
    if std::fs::read(dir.join("comm")).is_ok_and(|comm| comm.strip_suffix(b"\n").unwrap_or(&comm) == short) {
        return true;
    }
    std::fs::read(dir.join("cmdline")).is_ok_and(|cmdline| {
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        basename(&String::from_utf8_lossy(argv0)) == name
    })
}

#[cfg(test)]
#[path = "signal_tests.rs"]
mod tests;
