//! The one task that owns `config.yml` (STYLE.md "One task owns the file"):
//!
//! ```text
//! synced? → change → debounce → translate → render → validate → compare bytes → atomic write → reload → verify
//!                    └ translate → render → validate, started at once ┘ (used if nothing changed meanwhile)
//! ```
//!
//! The debounce coalesces writes and restarts of cloudflared, not work: the render of the state a
//! change brought starts when the change arrives, and if no other change comes before the quiet
//! period ends, that render is the one written (so a lone change reaches the file at the end of
//! the quiet period, not a render later). A change during the wait makes it moot: the latest
//! state is rendered again, so a burst costs at most one render more than it did.
//!
//! Nothing else writes the file or calls the reloader, so there is never a race between two
//! writes or two restarts of cloudflared. Sources publish their latest state on `watch`
//! channels: a burst of changes is one wake-up, and a slow step never queues stale snapshots.
//!
//! What the pipeline promises:
//! - nothing is rendered or written before the source is `synced` (never from a half-synced
//!   cache);
//! - a config cloudflared would refuse (or an empty file) is never written: the last good
//!   file stays and the failure is logged and counted. An empty set of routes is not such a
//!   config: it renders the catch-all alone, and that is written;
//! - the file is replaced only when its bytes differ; the reloader runs once at start and
//!   after every write, and again on the next change (or resync) after a failed reload or
//!   verification;
//! - the statuses it computed, with `Programmed` from the verification, are published on a
//!   [`StatusReceiver`] for the status writer;
//! - with a reloader that runs cloudflared (`supervise`), an exit of the serving child between
//!   reloads takes readiness and `Programmed` until a restart shows the file
//!   (`pipeline_connector.rs`);
//! - with such a reloader, cloudflared is started on the config already on disk while the
//!   source is not synced, or when the first render is refused, if cloudflared would accept it
//!   and it names our tunnel; not ready meanwhile (`pipeline_on_disk.rs`).

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use routes_core::render::{self, Rendered};
use routes_core::status::{Programmed, Statuses};
use routes_core::translate::{self, Translation};
use routes_core::validate::{self, Report};
use tokio::sync::watch;

use super::admin::Health;
use super::files::RenderInputs;
use super::memory;
use super::metrics::{Metrics, ResultLabel};
use super::reload::{self, ReloadError, Reloader};
use super::source::SourceState;
use super::writer::{ConfigWriter, WriteOutcome};
use crate::log_text::escaped;

/// What the status writer needs: the statuses of the last render, with `Programmed` set from
/// what is known about cloudflared running it (`Pending` until verified, `Yes` once its
/// `/config` shows the rendered rules, `No` when verification or the write failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    pub statuses: Statuses,
    pub programmed: Programmed,
}

/// `None` until the first render; then the latest [`StatusReport`]. A new value is sent only
/// when it differs from the previous one, so the status writer can patch on every change.
pub type StatusReceiver = watch::Receiver<Option<Arc<StatusReport>>>;
pub type StatusSender = watch::Sender<Option<Arc<StatusReport>>>;

/// Checks that cloudflared at `addr` runs the rendered config (the real one polls `/config`).
pub trait Verifier: Send + Sync {
    fn verify(
        &self,
        addr: SocketAddr,
        rendered: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

#[path = "pipeline_changes.rs"]
mod changes;
pub use changes::{ChangeStream, Changes, Debounce, Wake};
#[path = "pipeline_connector.rs"]
mod connector;
#[path = "pipeline_on_disk.rs"]
mod on_disk;
use on_disk::OnDisk;

#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    pub debounce: Debounce,
    pub verify_timeout: Duration,
    /// After this long without a change, render again anyway (`None`: never). Same bytes are
    /// not written, so this only acts when something went wrong: a reload or verification that
    /// failed is retried, and a `config.yml` changed or removed behind our back is put back.
    pub resync: Option<Duration>,
}

/// What ended a wait with nothing to do.
enum Idle {
    Wake(Wake),
    /// `--resync` passed without a change.
    Resync,
    /// The cloudflared the reloader runs exited or was restarted (`supervise`).
    Connector(reload::ConnectorEvent),
}

/// What to do after a step.
enum Flow {
    /// Wait for the next change.
    Idle,
    /// A change arrived while verifying: settle and render again.
    Changed,
    Shutdown,
}

pub struct Pipeline<R, V> {
    pub config: PipelineConfig,
    pub writer: ConfigWriter,
    pub reloader: R,
    pub verifier: V,
    pub metrics: Arc<Metrics>,
    pub status: StatusSender,
    pub health: Arc<Health>,
    /// The reloader ran successfully at least once.
    started: bool,
    /// The last reload or verification failed: do them again on the next change even if the
    /// bytes did not change.
    retry: bool,
    /// What is known about cloudflared running the file on disk.
    programmed: Programmed,
    /// cloudflared was restarted on the file on disk, but has not shown it yet: its
    /// verification failed, or a change cut it short. With the same bytes, the next step
    /// verifies again without a restart when a change cut it short (`retry` is false: the
    /// restart itself went well), and at a resync after a failure, so that a verification
    /// that cannot succeed (a wrong metrics address) does not restart cloudflared at every
    /// resync.
    unverified: bool,
    /// A config rendered from the objects was written (or found on disk with the same bytes),
    /// so a cloudflared seen running the file on disk runs a render of ours.
    wrote_a_render: bool,
    /// Last logged warnings, rejections, unreachable rules and notes, to log only what is new.
    last_notes: HashSet<String>,
    /// The `metrics:` key of the rendered config, and the render inputs it was read from.
    config_metrics: Option<(Arc<RenderInputs>, Option<SocketAddr>)>,
}

impl<R: Reloader, V: Verifier> Pipeline<R, V> {
    pub fn new(
        config: PipelineConfig,
        writer: ConfigWriter,
        reloader: R,
        verifier: V,
        metrics: Arc<Metrics>,
        status: StatusSender,
        health: Arc<Health>,
    ) -> Self {
        Pipeline {
            config,
            writer,
            reloader,
            verifier,
            metrics,
            status,
            health,
            started: false,
            retry: false,
            programmed: Programmed::Pending,
            unverified: false,
            wrote_a_render: false,
            last_notes: HashSet::new(),
            config_metrics: None,
        }
    }

    /// Runs until shutdown (then drains the reloader) or until the source closes (an error).
    pub async fn run(mut self, mut changes: Changes) -> anyhow::Result<()> {
        let result = self.run_until_stopped(&mut changes).await;
        self.reloader.shutdown().await;
        result
    }

    async fn run_until_stopped(&mut self, changes: &mut Changes) -> anyhow::Result<()> {
        // (`supervise`: cloudflared serves the last config written meanwhile, if usable.)
        if !self.wait_for_sync(changes).await? {
            return Ok(());
        }
        let mut flow = self.step(changes, None, false).await;
        memory::release_soon();
        loop {
            let mut resync = false;
            let wake = match flow {
                Flow::Shutdown => return Ok(()),
                Flow::Changed => Wake::Changed,
                Flow::Idle => match self.idle(changes).await {
                    Idle::Wake(wake) => wake,
                    Idle::Resync => {
                        resync = true;
                        Wake::Changed
                    }
                    Idle::Connector(event) => {
                        flow = self.on_connector(event, changes).await;
                        continue;
                    }
                },
            };
            let (wake, early) = match wake {
                Wake::Changed => {
                    // Render what changed while the debounce waits for quiet: most changes come
                    // alone, and then the config is ready to be written when the quiet period
                    // ends. A change during the wait makes it moot (it is rendered again).
                    let early = self.start_render(changes);
                    (self.config.debounce.settle(changes).await, Some(early))
                }
                other => (other, None),
            };
            match wake {
                Wake::Changed => {
                    flow = self.step(changes, early, resync).await;
                    // The render's temporaries are gone: give their pages back.
                    memory::release_soon();
                }
                Wake::Shutdown => return Ok(()),
                Wake::Closed => anyhow::bail!("the source of objects stopped"),
            }
        }
    }

    /// Waits for a change, the resync period, or news of the cloudflared the reloader runs.
    async fn idle(&mut self, changes: &mut Changes) -> Idle {
        let period = self.config.resync;
        let resync = async move {
            match period {
                Some(period) => {
                    tokio::time::sleep(period).await;
                    tracing::debug!("no change for {period:?}: rendering again (resync)");
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            wake = changes.next() => Idle::Wake(wake),
            () = resync => Idle::Resync,
            event = self.reloader.connector_event() => Idle::Connector(event),
        }
    }

    /// Starts translate → render → validate of the latest state on a blocking thread
    /// (thousands of routes take a while: off the async workers).
    fn start_render(&mut self, changes: &mut Changes) -> Rendering {
        let state: SourceState = changes.source.borrow_and_update().clone();
        let inputs: Arc<RenderInputs> = changes.inputs.borrow_and_update().clone();
        let (revision, snapshot) = (state.revision, Arc::as_ptr(&state.snapshot) as usize);
        let render_inputs = inputs.clone();
        let task = tokio::task::spawn_blocking(move || render_and_validate(state, &render_inputs));
        Rendering { revision, snapshot, inputs, task }
    }

    /// The render of the latest state: `early`, if it rendered what is current (no change
    /// since it started), else a new one.
    async fn current_render(&mut self, changes: &mut Changes, early: Option<Rendering>) -> Rendering {
        let Some(early) = early else { return self.start_render(changes) };
        let current = {
            let state = changes.source.borrow();
            early.revision == state.revision
                && early.snapshot == Arc::as_ptr(&state.snapshot) as usize
                && Arc::ptr_eq(&early.inputs, &changes.inputs.borrow())
        };
        if current {
            return early;
        }
        tracing::debug!(revision = early.revision, "changed while rendering early; rendering again");
        // Not awaited: its result is moot, and the task ends on its own.
        drop(early.task);
        self.start_render(changes)
    }

    /// One render of the latest state (`early`, if still current), and whatever follows;
    /// `resync`: woken by the resync period, not by a change.
    async fn step(&mut self, changes: &mut Changes, early: Option<Rendering>, resync: bool) -> Flow {
        let Rendering { revision, inputs, task, .. } = self.current_render(changes, early).await;
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "the render task failed; keeping the last config");
                self.metrics.renders.get_or_create(&ResultLabel::new("panic")).inc();
                return Flow::Idle;
            }
        };
        self.metrics.render_duration.observe(outcome.duration.as_secs_f64());
        self.metrics.source_warnings.set(outcome.source_warnings.len() as i64);
        self.log_news(&outcome);
        self.update_config_metrics(&inputs, &outcome.frame);
        let Outcome { text, rule_count, report, statuses, routes_accepted, routes_rejected, .. } = outcome;

        if !report.is_valid() || text.trim().is_empty() {
            self.metrics.renders.get_or_create(&ResultLabel::new("invalid")).inc();
            let why = refusal(&report);
            tracing::error!(revision, "{}; keeping the last good config.yml", escaped(&why));
            self.publish(statuses, Programmed::No(why));
            if !self.started && self.reloader.starts_cloudflared() {
                self.start_on_the_file_there(&inputs, OnDisk::Refused, changes).await;
            }
            return Flow::Idle;
        }
        self.metrics.renders.get_or_create(&ResultLabel::new("ok")).inc();
        self.metrics.ingress_rules.set(rule_count as i64);
        self.metrics.set_routes(routes_accepted, routes_rejected);

        let writer = self.writer.clone();
        let text = Arc::new(text);
        let bytes = text.clone();
        let written = tokio::task::spawn_blocking(move || writer.write_if_changed(bytes.as_bytes()))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let written = match written {
            Ok(WriteOutcome::Written(n)) => {
                self.metrics.config_writes.inc();
                self.metrics.config_write_bytes.inc_by(n as u64);
                tracing::info!(
                    revision,
                    path = %self.writer.target().display(),
                    bytes = n,
                    rules = rule_count,
                    routes_accepted,
                    routes_rejected,
                    "config written"
                );
                self.wrote_a_render = true;
                true
            }
            Ok(WriteOutcome::Unchanged) => {
                tracing::debug!(revision, "config unchanged");
                self.wrote_a_render = true;
                false
            }
            Err(e) => {
                self.metrics.config_write_errors.inc();
                tracing::error!(revision, error = %e, "could not write the config; the previous file stays");
                self.retry = true;
                self.publish(statuses, Programmed::No(format!("could not write the config: {e}")));
                return Flow::Idle;
            }
        };

        // This very file was reloaded but not seen running: look again before restarting,
        // after a verification that a change cut short, or at a resync after a failed one.
        let verify_again = !written && self.unverified && (resync || !self.retry);
        if !(verify_again || written || self.retry || !self.started) {
            // Same bytes: cloudflared's state is what it was; the statuses may still differ.
            let programmed = self.programmed.clone();
            self.publish(statuses, programmed);
            return Flow::Idle;
        }
        // At start, a file left as it was is no new config (a restart of `run` over the file
        // cloudflared runs): Programmed goes from what the cluster says straight to what the
        // verification finds, without a flip through Pending that resets lastTransitionTime.
        let announce = written || self.started;
        if !verify_again {
            self.programmed = Programmed::Pending;
            self.unverified = false;
            if announce {
                self.publish(statuses.clone(), Programmed::Pending);
            }
            // A reload is never cancelled half-way: a supervisor may have a child half-started.
            // On SIGTERM the reloader itself gives up its waits, safely.
            self.reloader.use_config_metrics(self.config_metrics.as_ref().and_then(|(_, addr)| *addr));
            if let Err(e) = self.reloader.reload(self.writer.target()).await {
                if *changes.shutdown.borrow() {
                    // SIGTERM: the reloader gave up its waits (Reloader::watch_shutdown).
                    tracing::info!(error = %e, "reload abandoned: stopping");
                    return Flow::Shutdown;
                }
                self.reload_failed(&e);
                self.publish(statuses, self.programmed.clone());
                return Flow::Idle;
            }
            self.started = true;
            self.connector_serving();
            self.metrics.reloads.get_or_create(&ResultLabel::new("ok")).inc();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.metrics.last_reload_timestamp.set(now.as_secs() as i64);
        }

        let Some(addr) = self.reloader.metrics_addr() else {
            // Nothing to verify against: the file is written, cloudflared's state unknown.
            if !announce {
                self.publish(statuses, Programmed::Pending);
            }
            self.retry = false;
            self.health.set_ready();
            return Flow::Idle;
        };
        let timeout = self.config.verify_timeout;
        let verified = tokio::select! {
            r = self.verifier.verify(addr, &text, timeout) => Some(r),
            wake = changes.next() => {
                if wake == Wake::Shutdown {
                    return Flow::Shutdown;
                }
                None
            }
        };
        let Some(verified) = verified else {
            // Newer objects: render them first. The reload went well, so if they render the
            // same bytes this file is verified again, and cloudflared is not restarted.
            self.retry = false;
            self.unverified = true;
            if !announce {
                // Nothing published yet this start: changes arriving faster than a
                // verification takes must not hold back every status.
                self.publish(statuses, Programmed::Pending);
            }
            return Flow::Changed;
        };
        match verified {
            Ok(()) => {
                self.metrics.verifications.get_or_create(&ResultLabel::new("ok")).inc();
                tracing::info!(revision, %addr, "cloudflared runs the rendered config");
                self.retry = false;
                self.unverified = false;
                self.programmed = Programmed::Yes;
                self.health.set_ready();
                self.connector_serving();
            }
            Err(e) => {
                self.metrics.verifications.get_or_create(&ResultLabel::new("failed")).inc();
                tracing::warn!(revision, %addr, error = %e, "cloudflared does not run the rendered config; retrying on the next change or resync");
                self.retry = true;
                self.unverified = true;
                self.programmed =
                    Programmed::No(format!("cloudflared does not run the rendered config: {e}"));
            }
        }
        self.publish(statuses, self.programmed.clone());
        Flow::Idle
    }

    fn reload_failed(&mut self, e: &ReloadError) {
        self.metrics.reloads.get_or_create(&ResultLabel::new(e.label())).inc();
        tracing::error!(error = %e, "reloading cloudflared failed; retrying on the next change");
        self.retry = true;
        self.programmed = Programmed::No(format!("reloading cloudflared failed: {e}"));
    }

    fn publish(&self, mut statuses: Statuses, programmed: Programmed) {
        statuses.set_programmed(&programmed);
        let report = StatusReport { statuses, programmed };
        self.status.send_if_modified(|current| {
            if current.as_deref() == Some(&report) {
                return false;
            }
            *current = Some(Arc::new(report));
            true
        });
    }

    /// Logs rejections and render warnings when they change, not on every render.
    fn log_news(&mut self, outcome: &Outcome) {
        let notes: Vec<String> = outcome.news.iter().chain(outcome.render_warnings.iter()).cloned().collect();
        for note in notes.iter().filter(|n| !self.last_notes.contains(*n)) {
            tracing::warn!("{}", escaped(note));
        }
        self.last_notes = notes.into_iter().collect();
    }

    /// The `metrics:` key of the file, for the reloader: read from the frame (the file's
    /// top-level keys come from the base config and the tunnel, see [`render_and_validate`]),
    /// once per change of the render inputs rather than from the written file after each write.
    fn update_config_metrics(&mut self, inputs: &Arc<RenderInputs>, frame: &str) {
        if self.config_metrics.as_ref().is_some_and(|(seen, _)| Arc::ptr_eq(seen, inputs)) {
            return;
        }
        self.config_metrics = Some((inputs.clone(), reload::metrics_from_config(frame)));
    }
}

/// A render on its way: of which state, and the task doing it.
struct Rendering {
    revision: u64,
    /// The address of the snapshot rendered, to recognise it (the snapshot is not held: the
    /// source changes it in place when nobody does).
    snapshot: usize,
    inputs: Arc<RenderInputs>,
    task: tokio::task::JoinHandle<Outcome>,
}

/// What one render produced: everything the rest of the step needs, and nothing bigger (the
/// snapshot and the rules are dropped before the write).
struct Outcome {
    /// Time spent translating, rendering and validating.
    duration: std::time::Duration,
    /// The config to write.
    text: String,
    rule_count: usize,
    render_warnings: Vec<String>,
    /// The same config without the generated rules (see [`render_and_validate`]).
    frame: String,
    report: Report,
    statuses: Statuses,
    /// What the user should hear about the routes, as `render`'s summary says it: what is not
    /// rendered, unreachable rules, weights that cannot be split.
    news: Vec<String>,
    routes_accepted: usize,
    routes_rejected: usize,
    source_warnings: Vec<String>,
}

/// translate → render → validate, on a blocking thread.
///
/// Validation does not parse the rendered text back (tens of milliseconds per thousand routes,
/// and as much memory again as the text): it checks the generated rules as they were rendered,
/// and parses only the *frame*, the same config rendered without them (its top-level keys,
/// the base config's rules, the catch-all), which is a few lines. `validate_rendered` gives the
/// report `validate_str` would give for the whole text; the tests prove that the text parses
/// back to exactly what was validated (docs/architecture.md, "Validation").
fn render_and_validate(state: SourceState, inputs: &RenderInputs) -> Outcome {
    let started = std::time::Instant::now();
    let SourceState { snapshot, warnings: source_warnings, .. } = state;
    let translation = translate::translate(&snapshot, &inputs.settings);
    // Let the source change its snapshot in place again (it copies it while we hold it).
    drop(snapshot);
    let Rendered { text, warnings: render_warnings, rule_count } =
        render::render(&translation, &inputs.base, &inputs.tunnel);
    let frame =
        render::render_rules(&Default::default(), translation.uses_grpc, &inputs.base, &inputs.tunnel).text;
    let report = validate::validate_rendered(&translation.rules, &frame);
    let news = (translation.rejections.iter().map(|r| format!("not rendered: {r}")))
        .chain(translation.unresolved_backends.iter().map(|r| format!("backend not resolved: {r}")))
        .chain(translation.unreachable().map(|u| format!("unreachable, left out: {u}")))
        .chain(translation.notes.iter().cloned())
        .collect();
    let Translation { statuses, routes_accepted, routes_rejected, .. } = translation;
    Outcome {
        duration: started.elapsed(),
        text,
        rule_count,
        render_warnings,
        frame,
        report,
        statuses,
        news,
        routes_accepted,
        routes_rejected,
        source_warnings,
    }
}

fn refusal(report: &Report) -> String {
    if report.errors.is_empty() {
        return "the rendered config is empty".to_string();
    }
    let findings: Vec<String> = report
        .errors
        .iter()
        .map(|f| match f.rule {
            Some(i) => format!("ingress[{i}]: {}", f.message),
            None => f.message.clone(),
        })
        .collect();
    format!("the rendered config would be refused by cloudflared: {}", findings.join("; "))
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
