//! Whose route status entries the writer replaces and takes out, against the fake API server:
//! entries left by an earlier leader on routes that are no longer ours, and instances sharing a
//! controller name, one per Gateway (`--gateway`), each with its own Lease and its own entries.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudflared_routes::run::kube::{spawn_noting, KubeSourceOptions};
use cloudflared_routes::run::leader::{spawn_leader_election, LeaderElectionOptions};
use cloudflared_routes::run::pipeline::StatusReport;
use cloudflared_routes::run::status_writer::{
    spawn_status_writer, OwnedRoutes, Ownership, ResultHook, StatusWriterOptions,
};
use fake_apiserver::objects::{self, CONTROLLER, V1};
use fake_apiserver::FakeApiServer;
use routes_core::model::ObjectRef;
use routes_core::status::Programmed;
use routes_core::translate::{translate, Settings};
use serde_json::{json, Value};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(15);
const OLD: &str = "2020-01-01T00:00:00Z";

fn parent(controller: &str, gateway: &str) -> Value {
    json!({"controllerName": controller,
           "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra",
                         "name": gateway},
           "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                           "observedGeneration": 1, "lastTransitionTime": OLD}]})
}

/// One `run` instance's Kubernetes side: the source noting our routes, the statuses it computes
/// for `gateways` (empty: all), and a writer fed by them.
struct Instance {
    results: Arc<Mutex<Vec<String>>>,
    _statuses: watch::Sender<Option<Arc<StatusReport>>>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn instance(server: &FakeApiServer, gateways: &[ObjectRef], leader: watch::Receiver<bool>) -> Instance {
    let ownership = Ownership::new(CONTROLLER, gateways);
    let owned = OwnedRoutes::new(ownership.clone());
    let (mut rx, source) =
        spawn_noting(server.client(), KubeSourceOptions::default(), Some(owned.clone())).await.unwrap();
    let state = tokio::time::timeout(WAIT, rx.wait_for(|s| s.synced)).await.unwrap().unwrap().clone();
    let settings = Settings { gateways: gateways.to_vec(), ..Settings::default() };
    let mut statuses = translate(&state.snapshot, &settings).statuses;
    statuses.set_programmed(&Programmed::Yes);
    let report = StatusReport { statuses, programmed: Programmed::Yes };
    let (statuses_tx, statuses_rx) = watch::channel(Some(Arc::new(report)));
    let results = Arc::new(Mutex::new(Vec::new()));
    let seen = results.clone();
    let hook: ResultHook = Arc::new(move |result: &str| seen.lock().unwrap().push(result.to_string()));
    let opts = StatusWriterOptions {
        ownership,
        owned_routes: Some(owned),
        retry_interval: Duration::from_millis(200),
        resync_interval: Duration::from_millis(300),
        on_result: Some(hook),
        ..StatusWriterOptions::new(CONTROLLER)
    };
    let writer = spawn_status_writer(server.client(), statuses_rx, leader, opts);
    Instance { results, _statuses: statuses_tx, _tasks: vec![source, writer] }
}

async fn wait_for_route(server: &FakeApiServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let route = server.get(V1, "HTTPRoute", "apps", "web").unwrap();
        if done(&route["status"]) {
            return route["status"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {:#}", route["status"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn gateway_names(status: &Value) -> Vec<String> {
    let parents = status["parents"].as_array().into_iter().flatten();
    let mut names: Vec<String> =
        parents.map(|p| p["parentRef"]["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_changed_while_no_replica_led_loses_our_stale_entry() {
    let server = FakeApiServer::start().await;
    for object in objects::base() {
        server.apply(object);
    }
    // Our entry from an earlier leader; since then the route was changed to name only the
    // other controller's Gateway. Nothing written during this term names it.
    let mut route = objects::http_route("apps", "web", "web.example.com", "/", "web");
    route["spec"]["parentRefs"] = json!([{"name": "istio", "namespace": "infra"}]);
    route["status"] =
        json!({"parents": [parent("other.example/controller", "istio"), parent(CONTROLLER, "tunnel")]});
    server.apply(route);

    let (_leader_tx, leader) = watch::channel(true);
    let instance = instance(&server, &[], leader).await;
    let status = wait_for_route(&server, "our stale entry stays", |s| gateway_names(s) == ["istio"]).await;
    assert_eq!(status["parents"][0], parent("other.example/controller", "istio"), "theirs is untouched");

    // Taken out once: later resyncs find nothing of ours on it and send nothing.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let route_patches =
        server.status_patches().iter().filter(|p| p.path.ends_with("/httproutes/web/status")).count();
    assert_eq!(route_patches, 1);
    assert!(instance.results.lock().unwrap().iter().all(|r| r == "applied" || r == "unchanged"));
}

fn gateway_ref(name: &str) -> ObjectRef {
    ObjectRef { namespace: "infra".into(), name: name.into() }
}

fn election(gateways: &[ObjectRef], identity: &str) -> LeaderElectionOptions {
    LeaderElectionOptions {
        retry_period: Duration::from_millis(100),
        renew_deadline: Duration::from_millis(1400),
        ..LeaderElectionOptions::for_gateways("infra", CONTROLLER, gateways, identity, Duration::from_secs(2))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_per_gateway_each_lead_and_keep_each_others_entries() {
    let server = FakeApiServer::start().await;
    for object in objects::base() {
        server.apply(object);
    }
    server.apply(objects::gateway("infra", "a", "cloudflared"));
    server.apply(objects::gateway("infra", "b", "cloudflared"));
    let mut route = objects::http_route("apps", "web", "web.example.com", "/", "web");
    route["spec"]["parentRefs"] =
        json!([{"name": "a", "namespace": "infra"}, {"name": "b", "namespace": "infra"}]);
    route["status"] = json!({"parents": [parent("other.example/controller", "istio")]});
    server.apply(route);

    // Two Deployments in one namespace, `--gateway infra/a` and `--gateway infra/b`.
    let (only_a, only_b) = ([gateway_ref("a")], [gateway_ref("b")]);
    let (mut leader_a, _election_a) = spawn_leader_election(server.client(), election(&only_a, "pod-a"));
    let (mut leader_b, _election_b) = spawn_leader_election(server.client(), election(&only_b, "pod-b"));
    for (leader, who) in [(&mut leader_a, "pod-a"), (&mut leader_b, "pod-b")] {
        let waited = tokio::time::timeout(WAIT, leader.wait_for(|v| *v)).await;
        assert!(matches!(waited, Ok(Ok(_))), "{who} never became leader");
    }
    let a = instance(&server, &only_a, leader_a).await;
    // b starts once a has written its three objects: started together, both could read the
    // shared GatewayClass before either wrote it, and the second write would be a 409 (a second
    // patch) rather than the "finds it written" counted below.
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.results.lock().unwrap().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "pod-a wrote {:?}", a.results.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = instance(&server, &only_b, leader_b).await;

    let status = wait_for_route(&server, "both entries", |s| gateway_names(s) == ["a", "b", "istio"]).await;
    // Several resyncs of both: every write after the first of each finds nothing to change.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.get(V1, "HTTPRoute", "apps", "web").unwrap()["status"], status, "flapped");
    let patches = server.status_patches();
    let count = |path: &str| patches.iter().filter(|p| p.path.ends_with(path)).count();
    assert_eq!(count("/httproutes/web/status"), 2, "one write per instance");
    assert_eq!(count("/gateways/a/status"), 1);
    assert_eq!(count("/gateways/b/status"), 1);
    // The shared GatewayClass: both compute the same status; the second finds it written.
    assert_eq!(count("/gatewayclasses/cloudflared/status"), 1);
    for results in [&a.results, &b.results] {
        assert!(results.lock().unwrap().iter().all(|r| r == "applied" || r == "unchanged"), "{results:?}");
    }
}
