//! The keeper of one child slot of `--reload supervise`: a task that starts cloudflared on a
//! metrics port, restarts it with back-off when it dies on its own, and drains it when told to
//! stop. The [`Supervisor`](super::Supervisor) holds one [`Keeper`] per child it runs.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tracing::{info, warn};

use super::super::reload::ConnectorEvent;
use super::connectable;

/// Restart pacing for a child that dies on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first restart.
    pub initial: Duration,
    /// Doubling stops here.
    pub max: Duration,
    /// A child that stayed up this long starts the doubling over.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// What a keeper knows about its child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildStatus {
    /// The running process, if any (none between a crash and its restart, and after a stop).
    pub pid: Option<u32>,
    /// Processes started so far (1 + restarts).
    pub starts: u32,
    /// Processes that ended on their own (crashes, or a refused config), or could not be
    /// started.
    pub exits: u32,
    /// How the last one ended.
    pub last_exit: Option<String>,
    /// The keeper was told to stop and its child is gone (reaped).
    pub stopped: bool,
}

/// How a child process ended, for the exits metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// Stopped by cloudflared-routes: replaced on a reload, given up by a failed one, or at
    /// shutdown (drained, or SIGKILLed after the drain timeout).
    Stopped,
    /// Ended on its own (a crash, a refused config, a revoked tunnel), or could not be started:
    /// its keeper starts it again after a pause.
    Unexpected,
}

/// Told of every child process that ends, whichever slot it ran in.
pub type ExitHook = Arc<dyn Fn(ChildExit) + Send + Sync>;

/// How every child is started; shared by the keeper tasks.
#[derive(Clone)]
pub(super) struct ChildSpec {
    pub(super) program: String,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) drain_timeout: Duration,
    pub(super) backoff: Backoff,
    pub(super) on_exit: Option<ExitHook>,
}

impl ChildSpec {
    fn command(&self, metrics: SocketAddr) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // The environment variable, not a flag: flags after `run` are rejected, and the
            // variable also overrides the config file's `metrics:` key (DOMAIN.md §2).
            .env("TUNNEL_METRICS", metrics.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            // Its own process group: a terminal's Ctrl-C reaches only us, and we drain the
            // children in order instead of having them all stop (and be restarted) at once.
            .process_group(0)
            // If our task is dropped (runtime shutdown, a test failing), never leak a child.
            .kill_on_drop(true);
        command
    }

    fn exited(&self, how: ChildExit) {
        if let Some(hook) = &self.on_exit {
            hook(how);
        }
    }
}

/// One child slot: a metrics port and the task keeping a cloudflared alive on it.
pub(super) struct Keeper {
    pub(super) port: u16,
    pub(super) probe: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub(super) status: watch::Receiver<ChildStatus>,
    pub(super) task: JoinHandle<()>,
    /// The starts and exits [`Keeper::next_event`] has reported (or that need no report).
    reported: (u32, u32),
}

impl Keeper {
    pub(super) fn start(spec: Arc<ChildSpec>, listen: SocketAddr) -> Keeper {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (status_tx, status_rx) = watch::channel(ChildStatus::default());
        let task = tokio::spawn(keep(spec, listen, stop_rx, status_tx));
        Keeper {
            port: listen.port(),
            probe: connectable(listen),
            stop: Some(stop_tx),
            status: status_rx,
            task,
            reported: (0, 0),
        }
    }

    /// From now on, report what happens to the child after its `starts`th start and `exits`th
    /// exit (the ones the caller already knows of).
    pub(super) fn report_after(&mut self, starts: u32, exits: u32) {
        self.reported = (starts, exits);
    }

    /// The next exit or restart not reported yet: an exit first (even if the next start came
    /// already), then the start that followed it. A start whose child has exited by the time
    /// this looks is not reported (its exit is): nothing runs that could be verified. So a
    /// restart that fails at once reads as a restart and an exit, or, on a loaded machine, as
    /// the exit alone. Cancel-safe: what it reports is marked reported only when it returns.
    pub(super) async fn next_event(&mut self) -> ConnectorEvent {
        loop {
            {
                let status = self.status.borrow_and_update();
                let (starts, exits) = &mut self.reported;
                if !status.stopped && status.exits > *exits {
                    *exits = status.exits;
                    return ConnectorEvent::Exited(status.last_exit.clone().unwrap_or_default());
                }
                if !status.stopped && status.starts > *starts && status.pid.is_some() {
                    *starts = status.starts;
                    return ConnectorEvent::Restarted;
                }
            }
            if self.status.changed().await.is_err() {
                // The keeper is gone (stopped): nothing more will happen to its child.
                return std::future::pending().await;
            }
        }
    }

    /// Tells the keeper to drain its child; it finishes on its own.
    pub(super) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Resolves once the child ended on its own (crash, refused config) and reports how.
    pub(super) async fn exited(&self) -> String {
        let mut status = self.status.clone();
        let how = match status.wait_for(|s| s.exits > 0).await {
            Ok(s) => s.last_exit.clone().unwrap_or_default(),
            Err(_) => "its keeper ended".to_string(),
        };
        how
    }
}

/// The keeper task: start, wait, restart with back-off, until told to stop.
async fn keep(
    spec: Arc<ChildSpec>,
    listen: SocketAddr,
    mut stop: oneshot::Receiver<()>,
    status: watch::Sender<ChildStatus>,
) {
    let mut delay = spec.backoff.initial;
    loop {
        let started = Instant::now();
        match spec.command(listen).spawn() {
            Ok(mut child) => {
                let pid = child.id();
                info!(pid, metrics = %listen, "started cloudflared");
                status.send_modify(|s| {
                    s.pid = pid;
                    s.starts += 1;
                });
                tokio::select! {
                    exit = child.wait() => {
                        let how = match exit {
                            Ok(exit) => format!("exited with {exit}"),
                            Err(e) => format!("could not be waited for: {e}"),
                        };
                        warn!(pid, metrics = %listen, "cloudflared {how}");
                        spec.exited(ChildExit::Unexpected);
                        status.send_modify(|s| {
                            s.pid = None;
                            s.exits += 1;
                            s.last_exit = Some(how);
                        });
                    }
                    // A stop, or the supervisor dropped: drain either way.
                    _ = &mut stop => {
                        drain(&mut child, pid, spec.drain_timeout).await;
                        spec.exited(ChildExit::Stopped);
                        status.send_modify(|s| {
                            s.pid = None;
                            s.stopped = true;
                        });
                        return;
                    }
                }
            }
            Err(e) => {
                let how = format!("could not be started ({}): {e}", spec.program);
                warn!(metrics = %listen, "cloudflared {how}");
                spec.exited(ChildExit::Unexpected);
                status.send_modify(|s| {
                    s.exits += 1;
                    s.last_exit = Some(how);
                });
            }
        }
        if started.elapsed() >= spec.backoff.reset_after {
            delay = spec.backoff.initial;
        }
        info!(metrics = %listen, "restarting cloudflared in {delay:?}");
        tokio::select! {
            _ = sleep(delay) => {}
            _ = &mut stop => {
                status.send_modify(|s| s.stopped = true);
                return;
            }
        }
        delay = (delay * 2).min(spec.backoff.max);
    }
}

/// SIGTERM (cloudflared unregisters, `/ready` turns 503, in-flight requests get its
/// grace-period), then reap; SIGKILL after `within`.
async fn drain(child: &mut tokio::process::Child, pid: Option<u32>, within: Duration) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        info!(pid, "sending SIGTERM to cloudflared");
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            warn!(pid, "SIGTERM failed: {e}");
        }
    }
    match timeout(within, child.wait()).await {
        Ok(Ok(exit)) => info!(pid, "cloudflared drained, {exit}"),
        Ok(Err(e)) => warn!(pid, "cloudflared could not be waited for: {e}"),
        Err(_) => {
            warn!(pid, "cloudflared did not exit within {within:?}; sending SIGKILL");
            let _ = child.kill().await;
        }
    }
}
