//! The pipeline hears of the supervised child's exits and restarts (a recording reloader that
//! reports them as `supervise` does, and a scripted verifier).

use std::sync::Arc;
use std::time::Duration;

use routes_core::status::{Condition, ConditionStatus, Programmed};
use tokio::sync::watch;
use tokio::time::Instant;

use super::super::tests::{inputs, state, ScriptedVerifier};
use super::super::{Changes, Debounce, Pipeline, PipelineConfig, StatusReceiver};
use crate::run::admin::Health;
use crate::run::metrics::Metrics;
use crate::run::reload::{ConnectorEvent, Recorder};
use crate::run::source::SourceState;
use crate::run::writer::ConfigWriter;

const CRASH: &str = "exited with exit status: 1";

struct Harness {
    _dir: tempfile::TempDir,
    source: watch::Sender<SourceState>,
    inputs: watch::Sender<Arc<crate::run::files::RenderInputs>>,
    shutdown: watch::Sender<bool>,
    status: StatusReceiver,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    verifier: ScriptedVerifier,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    /// A pipeline whose reloader runs cloudflared (`supervise`), serving the routes of `hosts`.
    fn start(hosts: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let writer = ConfigWriter::new(&dir.path().join("config.yml")).unwrap();
        let recorder = Recorder::new().starting_cloudflared().with_metrics("127.0.0.1:1".parse().unwrap());
        let (source, source_rx) = watch::channel(state(hosts, 1));
        let (inputs_tx, inputs_rx) = watch::channel(Arc::new(inputs("")));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(None);
        let health = Arc::new(Health::default());
        let metrics = Arc::new(Metrics::new().supervising());
        let verifier = ScriptedVerifier::default();
        let debounce = Debounce { quiet: Duration::from_millis(10), max_delay: Duration::from_millis(100) };
        let config = PipelineConfig { debounce, verify_timeout: Duration::from_secs(1), resync: None };
        let pipeline = Pipeline::new(
            config,
            writer,
            recorder.clone(),
            verifier.clone(),
            metrics.clone(),
            status_tx,
            health.clone(),
        );
        let task = tokio::spawn(pipeline.run(Changes::new(source_rx, inputs_rx, shutdown_rx)));
        Harness {
            _dir: dir,
            source,
            inputs: inputs_tx,
            shutdown,
            status,
            health,
            metrics,
            recorder,
            verifier,
            task,
        }
    }

    async fn until(&self, what: &str, check: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}: programmed {:?}, readiness {:?}",
                self.programmed(),
                self.health.readiness()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn programmed(&self) -> Option<Programmed> {
        self.status.borrow().as_ref().map(|r| r.programmed.clone())
    }

    /// The Gateway's `Programmed` condition in the last status report.
    fn gateway_programmed(&self) -> Condition {
        let report = self.status.borrow().clone().expect("a status report");
        let condition = report.statuses.gateways[0].conditions.iter().find(|c| c.type_ == "Programmed");
        condition.expect("a Programmed condition").clone()
    }

    fn serving(&self) -> i64 {
        self.metrics.child_serving.get()
    }

    fn verifications(&self) -> usize {
        self.verifier.calls.lock().unwrap().len()
    }

    async fn stop(self) {
        self.shutdown.send_replace(true);
        self.task.await.unwrap().unwrap();
    }
}

fn down(h: &Harness) -> bool {
    matches!(h.programmed(), Some(Programmed::Down(_)))
}

#[tokio::test]
async fn an_exit_of_the_serving_child_takes_readiness_and_programmed_until_a_restart_runs_the_config() {
    let h = Harness::start(&[("a", "a.example.com")]);
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert!(h.health.is_ready());
    assert_eq!(h.serving(), 1, "a child serves");

    h.recorder.connector(ConnectorEvent::Exited(CRASH.to_string()));
    h.until("the exit is reported", down).await;
    let why = h.health.readiness().expect_err("/readyz is 503 while no child serves");
    assert!(why.contains(CRASH) && why.contains("restarted"), "{why}");
    let condition = h.gateway_programmed();
    assert_eq!((condition.status, condition.reason), (ConditionStatus::False, "Pending"));
    assert!(condition.message.contains(CRASH), "{}", condition.message);
    assert_eq!(h.serving(), 0);

    // A restart that does not show the rendered rules leaves everything as it is.
    h.verifier.results.lock().unwrap().push_back(Err("unreachable".to_string()));
    h.recorder.connector(ConnectorEvent::Restarted);
    h.until("the restart is checked", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    assert!(!h.health.is_ready());
    assert_eq!(h.serving(), 0);

    // It crashes again, and the next restart runs the file on disk.
    h.recorder.connector(ConnectorEvent::Exited(CRASH.to_string()));
    h.until("the second exit", down).await;
    h.recorder.connector(ConnectorEvent::Restarted);
    h.until("the restart runs the config", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert!(h.health.is_ready(), "{:?}", h.health.readiness());
    assert_eq!(h.serving(), 1);
    assert_eq!(h.gateway_programmed().status, ConditionStatus::True);
    let calls = h.verifier.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "verified at the reload and at each restart");
    assert!(calls[2].contains("a.example.com"), "verified against the file on disk:\n{}", calls[2]);
    assert_eq!(h.recorder.reload_count(), 1, "the pipeline restarted nothing: the keeper did");
    h.stop().await;
}

#[tokio::test]
async fn another_exit_cuts_the_check_of_a_restart_short() {
    let h = Harness::start(&[("a", "a.example.com")]);
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    h.recorder.connector(ConnectorEvent::Exited(CRASH.to_string()));
    h.until("the exit is reported", down).await;

    // The restarted child never shows its config in time; it dies meanwhile.
    h.verifier.delays.lock().unwrap().push_back(Duration::from_secs(30));
    h.recorder.connector(ConnectorEvent::Restarted);
    h.until("the restart is being checked", |h| h.verifications() == 2).await;
    h.recorder.connector(ConnectorEvent::Exited("exited with signal: 9 (SIGKILL)".to_string()));
    h.until(
        "the second exit",
        |h| matches!(h.programmed(), Some(Programmed::Down(why)) if why.contains("SIGKILL")),
    )
    .await;
    assert!(h.health.readiness().unwrap_err().contains("SIGKILL"));

    h.recorder.connector(ConnectorEvent::Restarted);
    h.until("the restart runs the config", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert!(h.health.is_ready());
    h.stop().await;
}

#[tokio::test]
async fn a_change_during_an_outage_is_written_and_reloaded_and_that_reload_serves() {
    let h = Harness::start(&[("a", "a.example.com")]);
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    h.recorder.connector(ConnectorEvent::Exited(CRASH.to_string()));
    h.until("the exit is reported", down).await;

    // A new child started by a reload serves: the outage is over.
    h.source.send_replace(state(&[("a", "a.example.com"), ("b", "b.example.com")], 2));
    h.until("reloaded", |h| h.recorder.reload_count() == 2).await;
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert!(h.health.is_ready(), "{:?}", h.health.readiness());
    assert_eq!(h.serving(), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_exit_does_not_hide_a_refused_render_and_its_restart_does_not_clear_it() {
    /// A base config rule without a scheme: cloudflared would refuse the whole file.
    const REFUSED_BASE: &str = "ingress: [{hostname: ssh.example.net, service: nope}]";
    let h = Harness::start(&[("a", "a.example.com")]);
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    h.inputs.send_replace(Arc::new(inputs(REFUSED_BASE)));
    let refused =
        |h: &Harness| matches!(h.programmed(), Some(Programmed::No(why)) if why.contains("refused"));
    h.until("refusal reported", refused).await;

    h.recorder.connector(ConnectorEvent::Exited(CRASH.to_string()));
    h.until("not ready", |h| !h.health.is_ready()).await;
    assert!(refused(&h), "the refusal still explains Programmed: {:?}", h.programmed());
    assert_eq!(h.serving(), 0);
    h.recorder.connector(ConnectorEvent::Restarted);
    h.until("ready again", |h| h.health.is_ready()).await;
    assert!(refused(&h), "{:?}", h.programmed());

    // Fixed: the last written file is what runs, and Programmed says so.
    h.inputs.send_replace(Arc::new(inputs("")));
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    h.stop().await;
}
