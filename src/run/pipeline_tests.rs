use std::collections::VecDeque;
use std::sync::Mutex;

use routes_core::render::{BaseConfig, Tunnel};
use routes_core::status::ConditionStatus;
use routes_core::translate::Settings;
use tokio::time::Instant;

use super::*;
use crate::manifests::{load_str, Loaded};
use crate::run::reload::{Recorder, ReloadError};

// ---- the pipeline, with a recording reloader and a scripted verifier ----

const CLASS_AND_GATEWAY: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: cf}
spec: {controllerName: cloudflared-routes/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: web}
spec:
  gatewayClassName: cf
  listeners: [{name: web, protocol: HTTP, port: 80, hostname: '*.example.com'}]
";

fn route(name: &str, host: &str) -> String {
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web}}\n\
         spec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [{host}]\n  rules:\n  - backendRefs: [{{name: svc, port: 80}}]\n"
    )
}

pub(super) fn state(routes: &[(&str, &str)], revision: u64) -> SourceState {
    let mut text = CLASS_AND_GATEWAY.to_string();
    for (name, host) in routes {
        text.push_str(&route(name, host));
    }
    let mut loaded = Loaded::default();
    load_str("test.yaml", &text, &mut loaded).unwrap();
    SourceState { snapshot: Arc::new(loaded.snapshot), warnings: loaded.warnings, synced: true, revision }
}

pub(super) fn inputs(base: &str) -> RenderInputs {
    RenderInputs {
        settings: Settings::default(),
        base: BaseConfig::parse(base).unwrap(),
        tunnel: Tunnel {
            id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".to_string()),
            credentials_file: None,
        },
    }
}

#[test]
fn the_log_hears_what_the_render_summary_says() {
    // `b` repeats `a` (same hostname, every path): its rule is unreachable. `split` spreads its
    // traffic over two Services, which a cloudflared rule cannot.
    let mut text = CLASS_AND_GATEWAY.to_string();
    text.push_str(&route("a", "a.example.com"));
    text.push_str(&route("b", "a.example.com"));
    text.push_str(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: split, namespace: web}\n\
         spec:\n  parentRefs: [{name: gw}]\n  hostnames: [s.example.com]\n  rules:\n  \
         - backendRefs: [{name: one, port: 80, weight: 1}, {name: two, port: 80, weight: 3}]\n",
    );
    for service in ["one", "two"] {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {service}, namespace: web}}\nspec: {{ports: [{{port: 80}}]}}\n"
        ));
    }
    let mut loaded = Loaded::default();
    load_str("test.yaml", &text, &mut loaded).unwrap();
    let state =
        SourceState { snapshot: Arc::new(loaded.snapshot), warnings: vec![], synced: true, revision: 1 };
    let outcome = render_and_validate(state, &inputs(""));
    assert!(
        outcome.news.contains(
            &"unreachable, left out: HTTPRoute web/b rule 0 match 0 (by HTTPRoute web/a rule 0 match 0)"
                .to_string()
        ),
        "{:#?}",
        outcome.news
    );
    assert!(
        outcome
            .news
            .iter()
            .any(|n| n.starts_with("HTTPRoute web/split spec.rules[0]: weighted backends cannot be split")),
        "{:#?}",
        outcome.news
    );
}

#[derive(Clone, Default)]
pub(super) struct ScriptedVerifier {
    pub(super) results: Arc<Mutex<VecDeque<Result<(), String>>>>,
    /// How long each call takes before it answers (none: at once).
    pub(super) delays: Arc<Mutex<VecDeque<Duration>>>,
    pub(super) calls: Arc<Mutex<Vec<String>>>,
}

impl Verifier for ScriptedVerifier {
    async fn verify(&self, _addr: SocketAddr, rendered: &str, _timeout: Duration) -> Result<(), String> {
        self.calls.lock().unwrap().push(rendered.to_string());
        let delay = self.delays.lock().unwrap().pop_front();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.results.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
}

struct Harness {
    dir: tempfile::TempDir,
    source: watch::Sender<SourceState>,
    inputs: watch::Sender<Arc<RenderInputs>>,
    shutdown: watch::Sender<bool>,
    status: StatusReceiver,
    health: Arc<Health>,
    recorder: Recorder,
    verifier: ScriptedVerifier,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    fn start(initial: SourceState, recorder: Recorder) -> Harness {
        let debounce = Debounce { quiet: Duration::from_millis(10), max_delay: Duration::from_millis(100) };
        Harness::start_with(initial, recorder, debounce)
    }

    fn start_with(initial: SourceState, recorder: Recorder, debounce: Debounce) -> Harness {
        Harness::start_in(tempfile::tempdir().unwrap(), initial, inputs(""), recorder, debounce, None)
    }

    /// Renders again after `resync` without a change.
    fn start_resyncing(initial: SourceState, recorder: Recorder, resync: Duration) -> Harness {
        let debounce = Debounce { quiet: Duration::from_millis(10), max_delay: Duration::from_millis(100) };
        Harness::start_in(tempfile::tempdir().unwrap(), initial, inputs(""), recorder, debounce, Some(resync))
    }

    /// Starts over a `config.yml` an earlier run left, with `first` as the render inputs.
    fn start_over(existing: &str, initial: SourceState, first: RenderInputs, recorder: Recorder) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yml"), existing).unwrap();
        let debounce = Debounce { quiet: Duration::from_millis(10), max_delay: Duration::from_millis(100) };
        Harness::start_in(dir, initial, first, recorder, debounce, None)
    }

    fn start_in(
        dir: tempfile::TempDir,
        initial: SourceState,
        first: RenderInputs,
        recorder: Recorder,
        debounce: Debounce,
        resync: Option<Duration>,
    ) -> Harness {
        let writer = ConfigWriter::new(&dir.path().join("config.yml")).unwrap();
        let (source, source_rx) = watch::channel(initial);
        let (inputs_tx, inputs_rx) = watch::channel(Arc::new(first));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(None);
        let health = Arc::new(Health::default());
        let verifier = ScriptedVerifier::default();
        let config = PipelineConfig { debounce, verify_timeout: Duration::from_secs(1), resync };
        let pipeline = Pipeline::new(
            config,
            writer,
            recorder.clone(),
            verifier.clone(),
            Arc::new(Metrics::new()),
            status_tx,
            health.clone(),
        );
        let task = tokio::spawn(pipeline.run(Changes::new(source_rx, inputs_rx, shutdown_rx)));
        Harness { dir, source, inputs: inputs_tx, shutdown, status, health, recorder, verifier, task }
    }

    fn file(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("config.yml")).ok()
    }

    /// Waits (bounded) until `check` holds.
    async fn until(&self, what: &str, check: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}; file:\n{:?}", self.file());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn programmed(&self) -> Option<Programmed> {
        self.status.borrow().as_ref().map(|r| r.programmed.clone())
    }

    /// The Gateway's `Programmed` condition in the last status report.
    fn gateway_programmed(&self) -> ConditionStatus {
        let report = self.status.borrow().clone().expect("a status report");
        let condition = report.statuses.gateways[0].conditions.iter().find(|c| c.type_ == "Programmed");
        condition.expect("a Programmed condition").status
    }

    async fn stop(self) -> Recorder {
        self.shutdown.send_replace(true);
        self.task.await.unwrap().unwrap();
        self.recorder
    }
}

fn has(host: &'static str) -> impl Fn(&Harness) -> bool {
    move |h| h.file().is_some_and(|f| f.contains(host))
}

#[tokio::test]
async fn nothing_is_written_before_the_source_is_synced() {
    let h =
        Harness::start(SourceState { synced: false, ..state(&[("a", "a.example.com")], 1) }, Recorder::new());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.file(), None);
    assert_eq!(h.recorder.reload_count(), 0);
    h.source.send_replace(state(&[("a", "a.example.com")], 2));
    h.until("written", has("a.example.com")).await;
    let recorder = h.stop().await;
    assert_eq!(recorder.reload_count(), 1);
}

#[tokio::test]
async fn writes_reloads_once_per_change_and_skips_same_bytes() {
    let h = Harness::start(state(&[("a", "a.example.com")], 1), Recorder::new());
    h.until("first write", has("a.example.com")).await;
    h.until("first reload", |h| h.recorder.reload_count() == 1).await;
    let first = h.file().unwrap();
    assert!(validate::validate_str(&first).is_valid());

    // A new revision with the same objects: same bytes, no write, no reload.
    h.source.send_replace(state(&[("a", "a.example.com")], 2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.recorder.reload_count(), 1);

    h.source.send_replace(state(&[("a", "a.example.com"), ("b", "b.example.com")], 3));
    h.until("second write", has("b.example.com")).await;
    h.until("second reload", |h| h.recorder.reload_count() == 2).await;
    let contents = h.recorder.reloaded_contents();
    assert!(contents[1].as_deref().unwrap().contains("b.example.com"), "reload sees the new file");

    // Every route gone: the catch-all alone is a legitimate config, and it is written.
    h.source.send_replace(state(&[], 4));
    h.until("routes removed", |h| h.file().is_some_and(|f| !f.contains("a.example.com"))).await;
    assert!(validate::validate_str(&h.file().unwrap()).is_valid());
    assert!(h.health.is_ready(), "ready after the first write (nothing to verify)");
    assert_eq!(h.programmed(), Some(Programmed::Pending), "unverified: Programmed stays Pending");
    let recorder = h.stop().await;
    assert_eq!(recorder.calls().last(), Some(&crate::run::reload::RecordedCall::Shutdown));
}

#[tokio::test]
async fn a_resync_retries_a_failed_reload_and_puts_back_a_removed_file() {
    let recorder = Recorder::new();
    recorder.fail_next(ReloadError::NotReady(Duration::from_secs(1)));
    let h =
        Harness::start_resyncing(state(&[("a", "a.example.com")], 1), recorder, Duration::from_millis(100));
    h.until("first write", has("a.example.com")).await;
    assert!(!h.health.is_ready(), "the first reload failed");
    // No change comes; the resync reloads again.
    h.until("reload retried", |h| h.recorder.reload_count() == 2).await;
    h.until("ready", |h| h.health.is_ready()).await;

    std::fs::remove_file(h.dir.path().join("config.yml")).unwrap();
    h.until("file put back", has("a.example.com")).await;
    h.until("reloaded on it", |h| h.recorder.reload_count() == 3).await;
    // Nothing wrong any more: resyncs neither write nor reload.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(h.recorder.reload_count(), 3);
    h.stop().await;
}

#[tokio::test]
async fn a_resync_after_a_failed_verification_looks_again_without_restarting_cloudflared() {
    let recorder = Recorder::new().with_metrics("127.0.0.1:1".parse().unwrap());
    let h =
        Harness::start_resyncing(state(&[("a", "a.example.com")], 1), recorder, Duration::from_millis(150));
    h.verifier
        .results
        .lock()
        .unwrap()
        .extend([Err("still the old rules".to_string()), Err("still".to_string())]);
    h.until("verification failed", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    h.until("verified on a later resync", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert_eq!(h.verifier.calls.lock().unwrap().len(), 3, "verified at the write and at two resyncs");
    assert_eq!(h.recorder.reload_count(), 1, "looked again, never restarted");
    h.stop().await;
}

#[tokio::test]
async fn a_change_that_cuts_a_verification_short_does_not_restart_cloudflared_for_the_same_bytes() {
    let recorder = Recorder::new().with_metrics("127.0.0.1:1".parse().unwrap());
    let h = Harness::start(state(&[("a", "a.example.com")], 1), recorder);
    // The first verification is still waiting when a change arrives that renders the same bytes
    // (another controller's route, a Service's label).
    h.verifier.delays.lock().unwrap().push_back(Duration::from_secs(30));
    h.until("first verification started", |h| h.verifier.calls.lock().unwrap().len() == 1).await;
    h.source.send_replace(state(&[("a", "a.example.com")], 2));
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert_eq!(h.recorder.reload_count(), 1, "looked again, never restarted");
    assert_eq!(h.verifier.calls.lock().unwrap().len(), 2);

    // A change that does alter the bytes during a verification is reloaded as usual.
    h.verifier.delays.lock().unwrap().push_back(Duration::from_secs(30));
    h.source.send_replace(state(&[("a", "a.example.com"), ("b", "b.example.com")], 3));
    h.until("second verification started", |h| h.verifier.calls.lock().unwrap().len() == 3).await;
    h.source.send_replace(state(&[("a", "a.example.com"), ("c", "c.example.com")], 4));
    h.until("third reload", |h| h.recorder.reload_count() == 3).await;
    h.until("verified again", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert!(h.file().unwrap().contains("c.example.com"));
    h.stop().await;
}

#[tokio::test]
async fn without_resync_nothing_happens_until_a_change() {
    let recorder = Recorder::new();
    recorder.fail_next(ReloadError::NotReady(Duration::from_secs(1)));
    let h = Harness::start(state(&[("a", "a.example.com")], 1), recorder);
    h.until("first reload", |h| h.recorder.reload_count() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.recorder.reload_count(), 1);
    h.source.send_replace(state(&[("a", "a.example.com")], 2));
    h.until("retried on the next change", |h| h.recorder.reload_count() == 2).await;
    h.stop().await;
}

/// A base config that makes every render refused: a rule without a scheme.
const REFUSED_BASE: &str = "ingress: [{hostname: ssh.example.net, service: nope}]";

#[tokio::test]
async fn a_refused_first_render_starts_cloudflared_on_the_last_good_file() {
    let last_good = render_and_validate(state(&[("a", "a.example.com")], 0), &inputs("")).text;
    let h = Harness::start_over(
        &last_good,
        state(&[("a", "a.example.com"), ("b", "b.example.com")], 1),
        inputs(REFUSED_BASE),
        Recorder::new().starting_cloudflared(),
    );
    h.until("refusal reported", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    h.until("started on the old file", |h| h.recorder.reload_count() == 1).await;
    assert_eq!(h.recorder.reloaded_contents(), [Some(last_good.clone())]);
    assert_eq!(h.file().as_deref(), Some(last_good.as_str()), "the last good file stays");
    assert!(!h.health.is_ready(), "not ready: the current objects are not served");

    // Fixed: the new render is written, and cloudflared restarted on it.
    h.inputs.send_replace(Arc::new(inputs("")));
    h.until("written", has("b.example.com")).await;
    h.until("reloaded", |h| h.recorder.reload_count() == 2).await;
    assert!(h.health.is_ready());
    h.stop().await;
}

#[tokio::test]
async fn a_refused_first_render_starts_nothing_on_a_file_cloudflared_would_refuse() {
    let broken = "ingress:\n  - service: nope\n";
    let h = Harness::start_over(
        broken,
        state(&[("a", "a.example.com")], 1),
        inputs(REFUSED_BASE),
        Recorder::new().starting_cloudflared(),
    );
    h.until("refusal reported", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.recorder.reload_count(), 0);
    assert_eq!(h.file().as_deref(), Some(broken));
    h.stop().await;
}

#[tokio::test]
async fn a_refused_first_render_restarts_no_cloudflared_that_runs_without_us() {
    // `signal` and `none`: cloudflared already runs on the file there; a restart gains nothing.
    let last_good = render_and_validate(state(&[("a", "a.example.com")], 0), &inputs("")).text;
    let h = Harness::start_over(
        &last_good,
        state(&[("a", "a.example.com")], 1),
        inputs(REFUSED_BASE),
        Recorder::new(),
    );
    h.until("refusal reported", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.recorder.reload_count(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_config_cloudflared_would_refuse_is_not_written() {
    let h = Harness::start(state(&[("a", "a.example.com")], 1), Recorder::new());
    h.until("first write", has("a.example.com")).await;
    // A base config rule without a scheme: cloudflared would refuse the whole file.
    h.inputs.send_replace(Arc::new(inputs("ingress: [{hostname: ssh.example.net, service: nope}]")));
    h.source.send_replace(state(&[("a", "a.example.com"), ("b", "b.example.com")], 2));
    h.until("refusal reported", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    assert!(!h.file().unwrap().contains("b.example.com"), "the last good file stays");
    let Some(Programmed::No(why)) = h.programmed() else { unreachable!() };
    assert!(why.contains("refused"), "{why}");

    h.inputs.send_replace(Arc::new(inputs("")));
    h.until("fixed base config renders", has("b.example.com")).await;
    h.stop().await;
}

#[tokio::test]
async fn verification_sets_programmed_and_a_failure_is_retried_on_the_next_change() {
    let recorder = Recorder::new().with_metrics("127.0.0.1:1".parse().unwrap());
    let h = Harness::start(state(&[("a", "a.example.com")], 1), recorder);
    h.verifier.results.lock().unwrap().push_back(Err("still the old rules".to_string()));
    h.until("verification failed", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    assert!(!h.health.is_ready(), "not ready until verified");
    assert_eq!(h.gateway_programmed(), ConditionStatus::False);

    // Same bytes, but the failed verification is retried: reload and verify again.
    h.source.send_replace(state(&[("a", "a.example.com")], 2));
    h.until("verified", |h| h.programmed() == Some(Programmed::Yes)).await;
    assert!(h.health.is_ready());
    assert_eq!(h.recorder.reload_count(), 2);
    assert_eq!(h.verifier.calls.lock().unwrap().len(), 2);
    assert_eq!(h.gateway_programmed(), ConditionStatus::True);

    // Verified and unchanged: nothing to do.
    h.source.send_replace(state(&[("a", "a.example.com")], 3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.recorder.reload_count(), 2);
    h.stop().await;
}

#[tokio::test]
async fn a_failed_reload_is_counted_and_retried_on_the_next_change() {
    let recorder = Recorder::new();
    recorder.fail_next(ReloadError::NoProcess("no cloudflared in /proc".to_string()));
    let h = Harness::start(state(&[("a", "a.example.com")], 1), recorder);
    h.until("reload failed", |h| matches!(h.programmed(), Some(Programmed::No(_)))).await;
    assert!(!h.health.is_ready());
    h.source.send_replace(state(&[("a", "a.example.com")], 2));
    h.until("reloaded again", |h| h.recorder.reload_count() == 2).await;
    h.until("ready", |h| h.health.is_ready()).await;
    h.stop().await;
}

// ---- validation without parsing the rendered text back ----

/// Every fixture's objects (the conformance and gRPC fixtures, the examples), each with
/// several base configs and tunnels: `render_and_validate` gives the report that parsing the
/// whole rendered text gives, and the text reads back as the rules it was rendered from,
/// followed by the frame's (docs/architecture.md, "Validation").
#[test]
fn validating_the_rendered_parts_is_validating_the_written_text() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut snapshots = Vec::new();
    for dir in ["tests/fixtures/conformance", "tests/fixtures/grpc"] {
        let mut names: Vec<_> =
            std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for path in names {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name == "base.yaml" || name.ends_with(".expect.yaml") || !name.ends_with(".yaml") {
                continue;
            }
            let loaded = crate::manifests::load_paths(&[root.join(dir).join("base.yaml"), path]).unwrap();
            snapshots.push((name, loaded.snapshot));
        }
    }
    let examples = crate::manifests::load_paths(&[root.join("examples")]).unwrap();
    snapshots.push(("examples/".to_string(), examples.snapshot));
    assert!(snapshots.len() > 40, "fixtures found: {}", snapshots.len());

    let example_base = std::fs::read_to_string(root.join("examples/base-config/config.yml")).unwrap();
    let bases = [
        "",
        example_base.as_str(),
        // Refused: a rule without a scheme, a wrongly typed duration, a catch-all mid-list.
        "originRequest: {connectTimeout: 30}\ningress:\n  - {hostname: ssh.example.net, service: nope}\n  - service: http_status:503\n  - {hostname: b.example.net, service: 'http://b:80'}\n",
    ];
    let tunnels = [
        Tunnel { id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()), credentials_file: None },
        Tunnel { id: None, credentials_file: Some("/etc/cloudflared/creds/credentials.json".into()) },
    ];
    let (mut valid, mut refused) = (0, 0);
    for (name, snapshot) in &snapshots {
        let snapshot = Arc::new(snapshot.clone());
        for base in bases {
            for tunnel in &tunnels {
                let inputs = RenderInputs { tunnel: tunnel.clone(), ..inputs(base) };
                let state =
                    SourceState { snapshot: snapshot.clone(), synced: true, ..SourceState::default() };
                let outcome = render_and_validate(state, &inputs);
                let from_text = validate::validate_str(&outcome.text);
                assert_eq!(outcome.report, from_text, "{name} with base {base:?}:\n{}", outcome.text);
                if from_text.is_valid() {
                    valid += 1;
                } else {
                    refused += 1;
                }

                // The generated rules, in order, then the frame's (unless a catch-all ended them).
                let translation = translate::translate(&snapshot, &inputs.settings);
                let read: serde_json::Value = serde_saphyr::from_str(&outcome.text).unwrap();
                let frame: serde_json::Value = serde_saphyr::from_str(&outcome.frame).unwrap();
                let ingress = read["ingress"].as_array().unwrap();
                let generated = translation.rules.len();
                for (rule, value) in translation.rules.iter().zip(ingress) {
                    assert_eq!(value["service"].as_str(), Some(rule.service()), "{name}");
                    assert_eq!(value.get("hostname").and_then(|v| v.as_str()), rule.hostname(), "{name}");
                    assert_eq!(value.get("path").and_then(|v| v.as_str()), rule.path(), "{name}");
                    let origin = rule.origin_request();
                    let read_origin = |key: &str| value.get("originRequest").and_then(|o| o.get(key));
                    assert_eq!(
                        read_origin("httpHostHeader").and_then(|v| v.as_str()),
                        origin.http_host_header.as_deref()
                    );
                    assert_eq!(
                        read_origin("originServerName").and_then(|v| v.as_str()),
                        origin.origin_server_name.as_deref()
                    );
                    assert_eq!(read_origin("http2Origin").is_some(), origin.http2_origin);
                    assert_eq!(read_origin("noTLSVerify").is_some(), origin.no_tls_verify);
                    let keys = value.as_object().unwrap().len();
                    assert_eq!(
                        keys,
                        1 + usize::from(rule.hostname().is_some())
                            + usize::from(rule.path().is_some())
                            + usize::from(!origin.is_empty()),
                        "{name}: {value}"
                    );
                }
                let terminated = translation.rules.last().is_some_and(|r| r.is_catch_all());
                let tail: &[serde_json::Value] =
                    if terminated { &[] } else { frame["ingress"].as_array().unwrap() };
                assert_eq!(&ingress[generated..], tail, "{name}");
                let mut top = read.clone();
                let mut frame_top = frame.clone();
                top.as_object_mut().unwrap().remove("ingress");
                frame_top.as_object_mut().unwrap().remove("ingress");
                assert_eq!(top, frame_top, "{name}: the same top-level keys");
            }
        }
    }
    assert!(valid > 40 && refused > 40, "{valid} valid, {refused} refused");
}

#[tokio::test]
async fn the_reloader_is_told_the_metrics_key_of_the_base_config() {
    let recorder = Recorder::new();
    let h = Harness::start(state(&[("a", "a.example.com")], 1), recorder);
    h.inputs.send_replace(Arc::new(inputs("metrics: 0.0.0.0:2000\n")));
    h.until("written with the metrics key", |h| {
        h.file().is_some_and(|f| f.contains("metrics: '0.0.0.0:2000'"))
    })
    .await;
    h.until("reloaded", |h| h.recorder.config_metrics() == Some(Some("127.0.0.1:2000".parse().unwrap())))
        .await;

    h.inputs.send_replace(Arc::new(inputs("loglevel: debug\n")));
    h.until("written without it", |h| {
        h.file().is_some_and(|f| f.contains("loglevel") && !f.contains("metrics"))
    })
    .await;
    h.until("reloaded", |h| h.recorder.config_metrics() == Some(None)).await;
    h.stop().await;
}

#[tokio::test]
async fn a_change_during_the_debounce_makes_the_early_render_moot() {
    // A quiet period long enough for the second change to come inside it on a busy machine.
    let debounce = Debounce { quiet: Duration::from_millis(400), max_delay: Duration::from_secs(5) };
    let h = Harness::start_with(state(&[("a", "a.example.com")], 1), Recorder::new(), debounce);
    h.until("first write", has("a.example.com")).await;
    h.until("first reload", |h| h.recorder.reload_count() == 1).await;

    // B is rendered early as soon as it arrives; C comes while the debounce waits.
    h.source.send_replace(state(&[("a", "a.example.com"), ("b", "b.example.com")], 2));
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.source.send_replace(state(&[("a", "a.example.com"), ("c", "c.example.com")], 3));
    h.until("the latest state written", has("c.example.com")).await;
    // The reload follows the write (after a read on a blocking thread): wait for it first.
    h.until("the latest state reloaded", |h| h.recorder.reload_count() >= 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!h.file().unwrap().contains("b.example.com"), "the moot render is never written");
    let contents = h.recorder.reloaded_contents();
    assert_eq!(contents.len(), 2, "one write and one reload for the burst");
    assert!(contents.iter().all(|c| !c.as_deref().unwrap_or_default().contains("b.example.com")));

    // Alone, a change is written once the quiet period ends, from its early render.
    let before = std::time::Instant::now();
    h.source.send_replace(state(&[("d", "d.example.com")], 4));
    h.until("written", has("d.example.com")).await;
    assert!(before.elapsed() >= Duration::from_millis(400), "not before the quiet period ended");
    h.until("reloaded", |h| h.recorder.reload_count() == 3).await;
    h.stop().await;
}
