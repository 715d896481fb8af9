//! cloudflared started on the config already on disk while the source is not synced (a
//! recording reloader that starts cloudflared as `supervise` does, and a scripted verifier).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use routes_core::status::Programmed;
use tokio::sync::watch;
use tokio::time::Instant;

use super::super::tests::{inputs, state, ScriptedVerifier};
use super::super::{render_and_validate, Changes, Debounce, Pipeline, PipelineConfig, StatusReceiver};
use crate::run::admin::Health;
use crate::run::files::RenderInputs;
use crate::run::metrics::Metrics;
use crate::run::reload::{ConnectorEvent, Recorder};
use crate::run::source::SourceState;
use crate::run::writer::ConfigWriter;

struct Harness {
    dir: tempfile::TempDir,
    source: watch::Sender<SourceState>,
    shutdown: watch::Sender<bool>,
    status: StatusReceiver,
    health: Arc<Health>,
    recorder: Recorder,
    verifier: ScriptedVerifier,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    /// A pipeline over `existing` (the config.yml an earlier run left, if any), whose source
    /// is not synced yet, with `recorder` as its reloader.
    fn start(existing: Option<&str>, first: RenderInputs, recorder: Recorder) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        if let Some(existing) = existing {
            std::fs::write(dir.path().join("config.yml"), existing).unwrap();
        }
        let writer = ConfigWriter::new(&dir.path().join("config.yml")).unwrap();
        let (source, source_rx) = watch::channel(SourceState::default());
        let (_inputs_tx, inputs_rx) = watch::channel(Arc::new(first));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(None);
        let health = Arc::new(Health::default());
        let verifier = ScriptedVerifier::default();
        let debounce = Debounce { quiet: Duration::from_millis(10), max_delay: Duration::from_millis(100) };
        let config = PipelineConfig { debounce, verify_timeout: Duration::from_secs(1), resync: None };
        let pipeline = Pipeline::new(
            config,
            writer,
            recorder.clone(),
            verifier.clone(),
            Arc::new(Metrics::new().supervising()),
            status_tx,
            health.clone(),
        );
        let task = tokio::spawn(pipeline.run(Changes::new(source_rx, inputs_rx, shutdown_rx)));
        Harness { dir, source, shutdown, status, health, recorder, verifier, task }
    }

    fn file(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("config.yml")).ok()
    }

    async fn until(&self, what: &str, check: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}: reloads {:?}, readiness {:?}",
                self.recorder.reloaded_contents(),
                self.health.readiness()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn programmed(&self) -> Option<Programmed> {
        self.status.borrow().as_ref().map(|r| r.programmed.clone())
    }

    async fn stop(self) -> Recorder {
        self.shutdown.send_replace(true);
        self.task.await.unwrap().unwrap();
        self.recorder
    }
}

fn supervise() -> Recorder {
    Recorder::new().starting_cloudflared().with_metrics("127.0.0.1:1".parse().unwrap())
}

/// What an earlier run wrote for the routes `hosts`.
fn written(hosts: &[(&str, &str)]) -> String {
    render_and_validate(state(hosts, 0), &inputs("")).text
}

#[tokio::test]
async fn unsynced_cloudflared_serves_the_last_written_config_and_the_same_render_restarts_nothing() {
    let last = written(&[("a", "a.example.com")]);
    let h = Harness::start(Some(&last), inputs(""), supervise());
    h.until("started on the file there", |h| h.recorder.reload_count() == 1).await;
    assert_eq!(h.recorder.reloaded_contents(), [Some(last.clone())]);
    let why = h.health.readiness().expect_err("not ready: the objects are not read");
    assert!(why.contains("serves the last config.yml written") && why.contains("not synced"), "{why}");
    assert_eq!(h.programmed(), None, "no status from a config of no objects read");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.recorder.reload_count(), 1, "nothing more until the source syncs");

    // The source syncs with the same objects: the same bytes, verified as they run.
    h.source.send_replace(state(&[("a", "a.example.com")], 1));
    h.until("verified and ready", |h| h.health.is_ready()).await;
    assert_eq!(h.programmed(), Some(Programmed::Yes));
    assert_eq!(h.verifier.calls.lock().unwrap().as_slice(), std::slice::from_ref(&last));
    assert_eq!(h.file().as_deref(), Some(last.as_str()));
    assert_eq!(h.stop().await.reload_count(), 1, "no restart for the same bytes");
}

#[tokio::test]
async fn unsynced_cloudflared_serves_the_last_written_config_until_the_objects_render_other_bytes() {
    let last = written(&[("a", "a.example.com")]);
    let h = Harness::start(Some(&last), inputs(""), supervise());
    h.until("started on the file there", |h| h.recorder.reload_count() == 1).await;
    h.source.send_replace(state(&[("a", "a.example.com"), ("b", "b.example.com")], 1));
    h.until("reloaded on the new render", |h| h.recorder.reload_count() == 2).await;
    let now = h.file().unwrap();
    assert!(now.contains("b.example.com"), "{now}");
    assert_eq!(h.recorder.reloaded_contents()[1].as_deref(), Some(now.as_str()));
    h.until("verified and ready", |h| h.health.is_ready()).await;
    assert_eq!(h.programmed(), Some(Programmed::Yes));
    h.stop().await;
}

#[tokio::test]
async fn unsynced_nothing_starts_on_a_missing_refused_or_other_tunnels_config() {
    let other_tunnel = written(&[("a", "a.example.com")])
        .replace("6ff42ae2-765d-4adf-8112-31c55c1551ef", "0e9d7a6c-1b1e-4c8e-9f3a-5d2b7c4e8a10");
    let cases: [(&str, Option<String>); 4] = [
        ("no file", None),
        ("a file cloudflared would refuse", Some("ingress:\n  - service: nope\n".to_string())),
        ("an empty file", Some(String::new())),
        ("another tunnel's file", Some(other_tunnel)),
    ];
    for (case, existing) in cases {
        let h = Harness::start(existing.as_deref(), inputs(""), supervise());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(h.recorder.reload_count(), 0, "{case}: started before the source synced");
        assert_eq!(h.file(), existing, "{case}: the file is left as it is");
        assert_eq!(h.health.readiness(), Err("no config written and verified yet".to_string()), "{case}");
        // As before: cloudflared starts with the first render.
        h.source.send_replace(state(&[("a", "a.example.com")], 1));
        h.until(&format!("{case}: started on the first render"), |h| h.recorder.reload_count() == 1).await;
        assert_eq!(h.recorder.reloaded_contents()[0], h.file(), "{case}");
        h.stop().await;
    }
}

#[tokio::test]
async fn unsynced_a_config_without_a_tunnel_is_used_when_cloudflareds_command_line_names_it() {
    // No tunnel in the inputs: `run` only starts when the tunnel is named after `run`.
    let no_tunnel = RenderInputs { tunnel: Default::default(), ..inputs("") };
    let last = render_and_validate(state(&[("a", "a.example.com")], 0), &no_tunnel).text;
    assert!(!last.contains("tunnel:"), "{last}");
    let h = Harness::start(Some(&last), no_tunnel, supervise());
    h.until("started on the file there", |h| h.recorder.reload_count() == 1).await;
    h.stop().await;
}

#[tokio::test]
async fn unsynced_without_a_reloader_that_starts_cloudflared_nothing_is_restarted() {
    // `signal` and `none`: cloudflared runs on that file without us already.
    let last = written(&[("a", "a.example.com")]);
    let h = Harness::start(Some(&last), inputs(""), Recorder::new());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.recorder.reload_count(), 0);
    h.stop().await;
}

#[tokio::test]
async fn unsynced_exits_and_restarts_of_the_child_are_heard_while_waiting() {
    let last = written(&[("a", "a.example.com")]);
    let h = Harness::start(Some(&last), inputs(""), supervise());
    h.until("started on the file there", |h| h.recorder.reload_count() == 1).await;
    h.recorder.connector(ConnectorEvent::Exited("exited with exit status: 1".to_string()));
    h.recorder.connector(ConnectorEvent::Restarted);
    h.until("the restart is verified against the file", |h| h.verifier.calls.lock().unwrap().len() == 1)
        .await;
    assert!(!h.health.is_ready(), "still not a config of the current objects");

    // Synced with the same objects: looked at again, not restarted.
    h.source.send_replace(state(&[("a", "a.example.com")], 1));
    h.until("verified and ready", |h| h.health.is_ready()).await;
    assert_eq!(h.stop().await.reload_count(), 1);
}

#[tokio::test]
async fn unsynced_sigterm_while_waiting_drains_the_child() {
    let last = written(&[("a", "a.example.com")]);
    let h = Harness::start(Some(&last), inputs(""), supervise());
    h.until("started on the file there", |h| h.recorder.reload_count() == 1).await;
    let recorder = h.stop().await;
    assert!(
        matches!(recorder.calls().last(), Some(crate::run::reload::RecordedCall::Shutdown)),
        "{:?}",
        recorder.calls()
    );
}

#[tokio::test]
async fn at_start_a_file_left_as_it_was_is_not_announced_as_pending() {
    // A restart of `run` over the file cloudflared runs: no new config, so Programmed goes
    // from what the cluster says straight to what the verification finds, with no flip through
    // Pending (which would also reset its lastTransitionTime).
    let last = written(&[("a", "a.example.com")]);
    let recorder = Recorder::new().with_metrics("127.0.0.1:1".parse().unwrap());
    let h = Harness::start(Some(&last), inputs(""), recorder);
    h.verifier.delays.lock().unwrap().extend([Duration::from_millis(300), Duration::from_millis(300)]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (mut reports, sink) = (h.status.clone(), seen.clone());
    tokio::spawn(async move {
        while reports.changed().await.is_ok() {
            let programmed = reports.borrow_and_update().as_ref().map(|r| r.programmed.clone());
            sink.lock().unwrap().push(programmed);
        }
    });
    // Wait on what the listener task recorded, not on the channel itself: the listener is a
    // task of its own and may not have run yet when the channel already holds the value.
    let heard = |n: usize| {
        let seen = seen.clone();
        move |_: &Harness| {
            let seen = seen.lock().unwrap();
            seen.len() >= n && seen.last() == Some(&Some(Programmed::Yes))
        }
    };
    h.source.send_replace(state(&[("a", "a.example.com")], 1));
    h.until("verified", heard(1)).await;
    assert_eq!(h.file().as_deref(), Some(last.as_str()), "rewritten");
    assert_eq!(*seen.lock().unwrap(), [Some(Programmed::Yes)], "announced before it was verified");

    // A new config is announced: Pending until cloudflared is seen running it.
    h.source.send_replace(state(&[("a", "a.example.com"), ("b", "b.example.com")], 2));
    h.until("the new config verified", heard(2)).await;
    assert!(h.file().is_some_and(|f| f.contains("b.example.com")), "not written");
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(Programmed::Yes), Some(Programmed::Pending), Some(Programmed::Yes)]
    );
    h.stop().await;
}

#[tokio::test]
async fn at_start_a_verification_cut_short_publishes_the_statuses() {
    // Same bytes at start (nothing announced), then changes that render the same bytes keep
    // cutting the verification short: the statuses must not wait for one to finish.
    let last = written(&[("a", "a.example.com")]);
    let recorder = Recorder::new().with_metrics("127.0.0.1:1".parse().unwrap());
    let h = Harness::start(Some(&last), inputs(""), recorder);
    // Verifications that outlast the wait below by far: a status seen within it was published
    // while they were cut short, not after one finished (however slow the machine).
    h.verifier.delays.lock().unwrap().extend([Duration::from_secs(3600), Duration::from_secs(3600)]);
    h.source.send_replace(state(&[("a", "a.example.com")], 1));
    h.until("verifying", |h| h.verifier.calls.lock().unwrap().len() == 1).await;
    h.source.send_replace(state(&[("a", "a.example.com")], 2));
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.programmed().is_none() {
        assert!(Instant::now() < deadline, "no status published while verifications are cut short");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.programmed(), Some(Programmed::Pending));
    assert_eq!(h.file().as_deref(), Some(last.as_str()));
    h.shutdown.send_replace(true);
}
