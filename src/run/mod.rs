//! `cloudflared-routes run`: the sidecar runtime. It keeps cloudflared's `config.yml` in step
//! with the Gateway API objects.
//!
//! ```text
//! source (files | Kubernetes API) ─┐
//! credentials file, base config ───┴→ pipeline: debounce → translate → render → validate
//!                                       → compare → atomic write → reload → verify → statuses
//! admin HTTP: /healthz /readyz /metrics
//! ```
//!
//! Sources publish their latest state on `watch` channels ([`source`], [`files`]); one task
//! ([`pipeline`]) owns the file and the reloader ([`reload`]); [`writer`] replaces the file
//! atomically; [`admin`] serves probes and [`metrics`]. docs/run.md is the user's guide.

pub mod admin;
pub mod file_watch;
pub mod files;
pub mod kube;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod signal;
pub mod source;
pub mod status_writer;
pub mod supervise;
pub mod verify;
pub mod writer;

/// The stand-in cloudflared of the reload tests (its binary, ports, event log), once for all.
#[cfg(test)]
#[path = "../../tests/fake_cloudflared/harness.rs"]
mod fake_cloudflared;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cli::RenderOptions;
use admin::Health;
use files::Ignore;
use metrics::Metrics;
use pipeline::{Changes, Debounce, Pipeline, PipelineConfig, Verifier};
use reload::{parse_duration, ReloadOptions};
use writer::ConfigWriter;

/// An error in what the user gave (a flag, an unreadable file): exit code 2, like `render`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnusableInput(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct RunOptions {
    #[command(flatten)]
    pub render: RenderOptions,
    /// Read the objects from these manifest files or directories (repeatable) and watch them,
    /// instead of the Kubernetes API
    #[arg(long, value_name = "DIR")]
    pub manifests: Vec<PathBuf>,
    /// The cloudflared config.yml to keep up to date (its directory is created if missing)
    #[arg(long, value_name = "PATH", env = "CLOUDFLARED_ROUTES_CONFIG_OUT")]
    pub config_out: PathBuf,
    #[command(flatten)]
    pub reload: ReloadOptions,
    #[command(flatten)]
    pub stagger: signal::StaggerOptions,
    #[command(flatten)]
    pub kube: kube::KubeOptions,
    /// Quiet period: render once no change has arrived for this long
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "200ms")]
    pub debounce: Duration,
    /// Render at the latest this long after the first change of a burst, even if changes go on
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub max_delay: Duration,
    /// How long cloudflared's /config may take to show the rendered rules after a reload
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub verify_timeout: Duration,
    /// Render again after this long without a change (0: never): retries a failed reload or
    /// verification, and puts back a config.yml changed or removed by someone else
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
    pub resync: Duration,
    /// The admin HTTP server: /healthz, /readyz, /metrics (port 0: any free port, logged)
    #[arg(long, value_name = "HOST:PORT", default_value = admin::DEFAULT_ADMIN_ADDR, env = "CLOUDFLARED_ROUTES_ADMIN_ADDR")]
    pub admin_addr: SocketAddr,
    /// Log format on stderr
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, as RUST_LOG (e.g. `info`, `cloudflared_routes=debug`); default: RUST_LOG, else info
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// Verification through cloudflared's `/config` (R2's [`verify::verify`]).
pub struct CloudflaredVerifier;

impl Verifier for CloudflaredVerifier {
    async fn verify(&self, addr: SocketAddr, rendered: &str, timeout: Duration) -> Result<(), String> {
        verify::verify(addr, rendered, timeout).await.map_err(|e| e.to_string())
    }
}

/// Runs until SIGTERM/SIGINT (then drains the reloader and returns `Ok`), or until something
/// fails for good (an error; [`UnusableInput`] for bad flags and unreadable inputs at start).
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    init_logging(&opts)?;
    // First: a SIGTERM during start-up must also end in a clean exit, not the default death.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let metrics = match opts.reload.mode {
        reload::ReloadMode::Supervise => Metrics::new().supervising(),
        _ => Metrics::new(),
    };
    let metrics = Arc::new(metrics);
    let health = Arc::new(Health::default());

    // Watchers report absolute paths for absolute watches: compare like with like.
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let config_out = absolute(&opts.config_out);
    let writer = ConfigWriter::new(&config_out).map_err(|e| UnusableInput(format!("--config-out: {e}")))?;
    let ignore = Ignore { paths: vec![config_out.clone()] };
    let render = RenderOptions {
        credentials_file: opts.render.credentials_file.as_ref().map(absolute),
        base_config: opts.render.base_config.as_ref().map(absolute),
        ..opts.render.clone()
    };
    let (inputs, _inputs_watcher) = files::spawn_inputs(&render, ignore.clone(), metrics.clone())?;
    if opts.reload.mode == reload::ReloadMode::Supervise {
        no_tunnel_named(&inputs.borrow(), &opts.reload.cloudflared).map_err(UnusableInput)?;
    }
    let mut reloader =
        reload::build(&opts.reload, &config_out).map_err(|e| UnusableInput(format!("{e:#}")))?;
    if let reload::AnyReloader::Supervise(supervisor) = reloader {
        let exits = metrics.clone();
        let hook: supervise::ExitHook = Arc::new(move |how| exits.child_exited(how));
        reloader = reload::AnyReloader::Supervise(supervisor.with_exit_hook(hook));
    }

    let (_admin_addr, admin_task) = admin::serve(opts.admin_addr, health.clone(), metrics.clone()).await?;
    let (status_tx, status_rx) = watch::channel(None);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // A reload in progress at SIGTERM gives up its waits (docs/run.md "Logs and signals").
    reload::Reloader::watch_shutdown(&mut reloader, shutdown_rx.clone());

    let (source, pending) = if opts.manifests.is_empty() {
        let client = opts.kube.client().await?;
        let election =
            opts.kube.leader_election(&client, &opts.render.controller_name, &opts.render.gateways);
        reloader = take_turns(reloader, &opts.stagger, &client, &election, shutdown_rx.clone());
        // The source publishes here once discovery answers (below).
        let (tx, source) = watch::channel(source::SourceState::default());
        (source, PendingSource::Kube(Box::new(KubeStart { client, election, tx, statuses: status_rx })))
    } else {
        // Files have no status subresource: the computed statuses go nowhere.
        drop(status_rx);
        if reloader.mode() == reload::ReloadMode::Signal {
            tracing::info!(
                "--manifests: no Lease to take turns through; every replica restarts cloudflared at once"
            );
        }
        let roots = opts.manifests.iter().map(absolute).collect();
        let settings = inputs.borrow().settings.clone();
        let (source, watcher) = files::spawn_manifests(roots, settings, ignore, metrics.clone())?;
        (source, PendingSource::Files(watcher))
    };

    let config = PipelineConfig {
        debounce: Debounce { quiet: opts.debounce, max_delay: opts.max_delay },
        verify_timeout: opts.verify_timeout,
        resync: (!opts.resync.is_zero()).then_some(opts.resync),
    };
    // The pipeline starts before the Kubernetes API has answered: until the source is synced it
    // renders nothing, but with `supervise` it starts cloudflared on the last config written
    // (docs/run.md "Sources"), so a restart of this container during an API outage does not
    // take the tunnel down with it.
    let pipeline =
        Pipeline::new(config, writer, reloader, CloudflaredVerifier, metrics.clone(), status_tx, health);
    let mut task = tokio::spawn(pipeline.run(Changes::new(source, inputs, shutdown_rx)));
    tracing::info!(config = %config_out.display(), "running");

    // Discovery waits for an API server that cannot be reached yet; a signal meanwhile stops
    // the pipeline (and what it started) as at any other time.
    let (mut guard, kube_start) = match pending {
        PendingSource::Files(watcher) => (Some(SourceGuard::Files(watcher)), None),
        PendingSource::Kube(start) => {
            let KubeStart { client, election, tx, statuses } = *start;
            (None, Some(start_kube(&opts, client, election, &metrics, statuses, tx)))
        }
    };
    let kube_start = async move {
        match kube_start {
            Some(start) => start.await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(kube_start);
    let mut start_failed = None;
    let signalled = loop {
        tokio::select! {
            started = &mut kube_start, if guard.is_none() && start_failed.is_none() => match started {
                Ok(tasks) => guard = Some(SourceGuard::Kube(tasks)),
                // (The source's sender is gone: the pipeline stops, draining what it started.)
                Err(e) => start_failed = Some(e),
            },
            _ = terminate.recv() => break Err("SIGTERM"),
            _ = interrupt.recv() => break Err("SIGINT"),
            r = &mut task => break Ok(r.map_err(anyhow::Error::from).and_then(|r| r)),
        }
    };
    let result = match signalled {
        Ok(result) => result,
        Err(signal) => match stop(signal, &shutdown_tx, task, &mut terminate, &mut interrupt).await {
            Ok(result) => result,
            // Nothing more is waited for: the runtime's shutdown drops every task, and with
            // them the supervised children (killed on drop).
            Err(again) => return Err(anyhow::anyhow!("{again} received again: stopped without waiting")),
        },
    };
    if guard.is_none() && start_failed.is_none() {
        tracing::info!("stopped before the Kubernetes API answered");
    }
    // The Gateway API CRDs are not installed, say: that, not the pipeline's "source stopped".
    let result = match start_failed {
        Some(e) => Err(e),
        None => result,
    };
    match guard {
        None => {}
        Some(SourceGuard::Files(watcher)) => drop(watcher),
        Some(SourceGuard::Kube(tasks)) => tasks.finish().await,
    }
    admin_task.abort();
    result
}

/// A source not started yet: the Kubernetes API's starts once discovery answers.
enum PendingSource {
    Files(files::ManifestSource),
    Kube(Box<KubeStart>),
}

/// What starting the Kubernetes side takes: the client, the Lease, where the source
/// publishes, and the statuses the status writer is to write.
struct KubeStart {
    client: ::kube::Client,
    election: leader::LeaderElectionOptions,
    tx: source::SourceSender,
    statuses: pipeline::StatusReceiver,
}

/// What keeps a source running; dropped or finished when `run` ends.
enum SourceGuard {
    Files(files::ManifestSource),
    Kube(KubeTasks),
}

/// The Kubernetes side: the source, leader election and the status writer.
struct KubeTasks {
    source: tokio::task::JoinHandle<()>,
    leader: tokio::task::JoinHandle<()>,
    status_writer: tokio::task::JoinHandle<()>,
}

impl KubeTasks {
    /// The pipeline has stopped (its status sender is dropped), so the status writer finishes
    /// its last write and ends, dropping the leader receiver, and the leader task releases the
    /// Lease so another replica takes over at once. Both are given a few seconds.
    async fn finish(self) {
        self.source.abort();
        let wait = async {
            let _ = self.status_writer.await;
            let _ = self.leader.await;
        };
        if tokio::time::timeout(Duration::from_secs(5), wait).await.is_err() {
            tracing::warn!("the status writer or leader election did not finish in 5s");
        }
    }
}

/// `--reload signal` with the Kubernetes API: replicas restart their cloudflared one at a time,
/// through a Lease beside the leader-election one (docs/reload.md), unless `--stagger none`.
fn take_turns(
    reloader: reload::AnyReloader,
    opts: &signal::StaggerOptions,
    client: &::kube::Client,
    election: &leader::LeaderElectionOptions,
    shutdown: watch::Receiver<bool>,
) -> reload::AnyReloader {
    match reloader {
        reload::AnyReloader::Signal(signaller) if opts.stagger == signal::Stagger::Lease => {
            let turn_options = signal::LeaseTurnOptions::new(election, opts.stagger_max_wait);
            tracing::info!(namespace = %turn_options.namespace, lease = %turn_options.lease_name, "restarts take turns");
            let turn = signal::LeaseTurn::new(client.clone(), turn_options).with_shutdown(shutdown);
            reload::AnyReloader::Signal(signaller.with_turn(Box::new(turn)))
        }
        reload::AnyReloader::Signal(signaller) => {
            tracing::info!("--stagger none: every replica restarts cloudflared at once");
            reload::AnyReloader::Signal(signaller)
        }
        other => other,
    }
}

/// `cloudflared tunnel run` needs to be told which tunnel: the config's `tunnel:` (from
/// `--credentials-file`, `--tunnel-id` or the base config) or a name after `run`. Without one,
/// every cloudflared started would exit at once, and be restarted for ever.
fn no_tunnel_named(inputs: &files::RenderInputs, argv: &[String]) -> Result<(), String> {
    let in_config = inputs.tunnel.id.is_some() || inputs.base.get("tunnel").is_some_and(|t| !t.is_null());
    // Any word after `run` that is no flag may be the name (or a flag's value: not refused).
    let named = argv.iter().skip_while(|a| *a != "run").skip(1).any(|a| !a.starts_with('-'));
    if in_config || named {
        return Ok(());
    }
    Err("--reload supervise: no tunnel is named, so every cloudflared started would exit at once; give \
         --credentials-file or --tunnel-id, a `tunnel:` in --base-config, or the tunnel's name after `run` \
         in the cloudflared command"
        .to_string())
}

/// Starts the Kubernetes API source (publishing on `tx`), leader election and the status
/// writer fed by `statuses`; returns once discovery answered.
async fn start_kube(
    opts: &RunOptions,
    client: ::kube::Client,
    election: leader::LeaderElectionOptions,
    metrics: &Arc<Metrics>,
    statuses: pipeline::StatusReceiver,
    tx: source::SourceSender,
) -> anyhow::Result<KubeTasks> {
    metrics.watching(crate::kinds::Kind::ALL.map(crate::kinds::Kind::name));
    let events = metrics.clone();
    let source_options = kube::KubeSourceOptions {
        on_event: Some(Arc::new(move |kind: &str| events.watch_event(kind))),
        ..Default::default()
    };
    let controller_name = &opts.render.controller_name;
    let patches = metrics.clone();
    let mut writer_options = status_writer::StatusWriterOptions {
        on_result: Some(Arc::new(move |result: &str| {
            patches.status_patches.get_or_create(&metrics::ResultLabel::new(result)).inc();
        })),
        ..opts.kube.status_writer(controller_name, &opts.render.gateways)
    };
    // The source notes which routes hold status entries of ours, for the writer to clean up.
    let owned_routes = status_writer::OwnedRoutes::new(writer_options.ownership.clone());
    writer_options.owned_routes = Some(owned_routes.clone());
    let source_task = kube::spawn_into(client.clone(), source_options, Some(owned_routes), tx).await?;
    let (leader, leader_task) = leader::spawn_leader_election(client.clone(), election);
    let writer_task = status_writer::spawn_status_writer(client, statuses, leader, writer_options);
    Ok(KubeTasks { source: source_task, leader: leader_task, status_writer: writer_task })
}

/// Stops watching and lets the pipeline drain the reloader (cloudflared children included).
/// Stops the pipeline (which drains what its reloader started) and waits for it: `Ok` with
/// its result. A second SIGTERM or SIGINT during that wait gives up waiting (`Err`, naming it):
/// a stop that takes too long (children draining for `--drain-timeout`) can still be forced,
/// as with most daemons.
async fn stop(
    signal: &str,
    shutdown: &watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    terminate: &mut tokio::signal::unix::Signal,
    interrupt: &mut tokio::signal::unix::Signal,
) -> Result<anyhow::Result<()>, &'static str> {
    tracing::info!("{signal} received: stopping (a second SIGTERM or SIGINT stops at once)");
    shutdown.send_replace(true);
    let again = tokio::select! {
        r = task => {
            let result = r.map_err(anyhow::Error::from).and_then(|r| r);
            tracing::info!("stopped");
            return Ok(result);
        }
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::warn!("{again} received again: stopping at once; supervised cloudflared children are killed");
    Err(again)
}

fn init_logging(opts: &RunOptions) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match &opts.log_level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|e| UnusableInput(format!("--log-level {level:?}: {e}")))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests running `run` twice in one process) keeps the first.
    let _ = match opts.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use routes_core::render::{BaseConfig, Tunnel};
    use routes_core::translate::Settings;

    #[test]
    fn supervise_needs_a_tunnel_named_somewhere() {
        let inputs = |id: Option<&str>, base: &str| files::RenderInputs {
            settings: Settings::default(),
            base: BaseConfig::parse(base).unwrap(),
            tunnel: Tunnel { id: id.map(str::to_string), credentials_file: None },
        };
        let argv = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let plain = argv("cloudflared --no-autoupdate tunnel run");
        assert!(no_tunnel_named(&inputs(None, ""), &plain).is_err());
        assert!(no_tunnel_named(&inputs(None, "tunnel: ~\n"), &plain).is_err());
        assert!(no_tunnel_named(&inputs(Some("6ff42ae2-765d-4adf-8112-31c55c1551ef"), ""), &plain).is_ok());
        assert!(no_tunnel_named(&inputs(None, "tunnel: edge\n"), &plain).is_ok());
        assert!(no_tunnel_named(&inputs(None, ""), &argv("cloudflared tunnel run edge")).is_ok());
        assert!(no_tunnel_named(&inputs(None, ""), &argv("cloudflared tunnel --loglevel debug run")).is_err());
    }
}
