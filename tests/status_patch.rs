//! Status writing and leader election against the fake API server: what the PATCHes carry
//! (DOMAIN.md §5), what they keep, when none is sent, and who may send them.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudflared_routes::run::kube::{spawn, KubeSourceOptions};
use cloudflared_routes::run::leader::{spawn_leader_election, LeaderElectionOptions};
use cloudflared_routes::run::pipeline::StatusReport;
use cloudflared_routes::run::status_writer::{spawn_status_writer, ResultHook, StatusWriterOptions};
use cloudflared_routes::status_yaml;
use fake_apiserver::objects::{self, CONTROLLER, V1};
use fake_apiserver::{FakeApiServer, Recorded};
use routes_core::status::{Programmed, Statuses};
use routes_core::translate::{translate, Settings};
use serde_json::{json, Value};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(15);
const OLD: &str = "2020-01-01T00:00:00Z";

fn foreign_parent() -> Value {
    json!({"controllerName": "other.example/controller",
           "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "istio"},
           "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                           "observedGeneration": 1, "lastTransitionTime": OLD}]})
}

/// The base objects and `apps/web`, whose status already holds another controller's entry.
async fn cluster() -> FakeApiServer {
    let server = FakeApiServer::start().await;
    for object in objects::base() {
        server.apply(object);
    }
    let mut route = objects::http_route("apps", "web", "web.example.com", "/", "web");
    route["status"] = json!({"parents": [foreign_parent()]});
    server.apply(route);
    server
}

/// What the core computes for the cluster now, read through the Kubernetes source.
async fn computed(server: &FakeApiServer, programmed: &Programmed) -> Statuses {
    let (mut rx, _task) = spawn(server.client(), KubeSourceOptions::default()).await.unwrap();
    let state = tokio::time::timeout(WAIT, rx.wait_for(|s| s.synced)).await.unwrap().unwrap().clone();
    let mut statuses = translate(&state.snapshot, &Settings::default()).statuses;
    statuses.set_programmed(programmed);
    statuses
}

fn report(statuses: &Statuses, programmed: Programmed) -> Option<Arc<StatusReport>> {
    let mut statuses = statuses.clone();
    statuses.set_programmed(&programmed);
    Some(Arc::new(StatusReport { statuses, programmed }))
}

/// Writer options with a hook recording every result.
fn writer_options() -> (StatusWriterOptions, Arc<Mutex<Vec<String>>>) {
    let results = Arc::new(Mutex::new(Vec::new()));
    let seen = results.clone();
    let hook: ResultHook = Arc::new(move |result: &str| seen.lock().unwrap().push(result.to_string()));
    let opts = StatusWriterOptions {
        call_timeout: Duration::from_secs(2),
        retry_interval: Duration::from_millis(200),
        on_result: Some(hook),
        ..StatusWriterOptions::new(CONTROLLER)
    };
    (opts, results)
}

async fn wait_for_results(results: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = results.lock().unwrap().clone();
        if seen.len() >= n {
            return seen;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {seen:?} after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cluster with a leading writer that has written its three objects (the class, the
/// Gateway, `apps/web`) from what the core computes: the start of the tests below.
struct Writing {
    server: FakeApiServer,
    statuses: Statuses,
    tx: watch::Sender<Option<Arc<StatusReport>>>,
    results: Arc<Mutex<Vec<String>>>,
    _leader: watch::Sender<bool>,
    _writer: tokio::task::JoinHandle<()>,
}

async fn writing() -> Writing {
    let server = cluster().await;
    let statuses = computed(&server, &Programmed::Yes).await;
    let (tx, statuses_rx) = watch::channel(report(&statuses, Programmed::Yes));
    let (_leader, leader_rx) = watch::channel(true);
    let (opts, results) = writer_options();
    let _writer = spawn_status_writer(server.client(), statuses_rx, leader_rx, opts);
    wait_for_results(&results, 3).await;
    Writing { server, statuses, tx, results, _leader, _writer }
}

/// Reads and writes of the objects whose status is written (not the source's lists and watches).
fn status_traffic(server: &FakeApiServer) -> usize {
    let objects = ["/httproutes/web", "/gateways/tunnel", "/gatewayclasses/cloudflared"];
    let is_object =
        |path: &str| objects.iter().any(|o| path.ends_with(o) || path.ends_with(&format!("{o}/status")));
    server.requests().iter().filter(|r| is_object(&r.path)).count()
}

fn patch_of<'a>(patches: &'a [Recorded], path_end: &str) -> &'a Recorded {
    patches.iter().find(|p| p.path.ends_with(path_end)).unwrap_or_else(|| panic!("no PATCH of {path_end}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_patches_carry_the_domain_content_and_keep_foreign_parents() {
    let server = cluster().await;
    let statuses = computed(&server, &Programmed::Yes).await;
    let (_statuses_tx, statuses_rx) = watch::channel(report(&statuses, Programmed::Yes));
    let (_leader_tx, leader_rx) = watch::channel(true);
    let (opts, results) = writer_options();
    let _writer = spawn_status_writer(server.client(), statuses_rx, leader_rx, opts);

    assert_eq!(wait_for_results(&results, 3).await, ["applied", "applied", "applied"]);
    let patches = server.status_patches();
    assert_eq!(patches.len(), 3, "{patches:#?}");
    for patch in &patches {
        assert_eq!(patch.content_type.as_deref(), Some("application/merge-patch+json"));
        assert!(patch.query.contains("fieldManager=cloudflared-routes"), "{}", patch.query);
        assert!(patch.body["metadata"]["resourceVersion"].is_string(), "lost-update guard: {}", patch.body);
    }

    let route = patch_of(&patches, "/namespaces/apps/httproutes/web/status");
    let parents = route.body["status"]["parents"].as_array().unwrap();
    assert_eq!(parents.len(), 2, "{:#}", route.body);
    assert_eq!(parents[0], foreign_parent(), "the other controller's entry is kept as it was");
    let ours = &parents[1];
    assert_eq!(ours["controllerName"], CONTROLLER);
    assert_eq!(
        ours["parentRef"],
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra",
               "name": "tunnel"}),
        "the parentRef as written, with its schema defaults"
    );
    let condition = |type_: &str| {
        ours["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).cloned().unwrap()
    };
    let generation = server.get(V1, "HTTPRoute", "apps", "web").unwrap()["metadata"]["generation"].clone();
    for (type_, reason) in [("Accepted", "Accepted"), ("ResolvedRefs", "ResolvedRefs")] {
        let c = condition(type_);
        assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("True"), Some(reason)), "{c}");
        assert_eq!(c["observedGeneration"], generation, "{c}");
        assert!(c["lastTransitionTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{c}");
    }
    // The server now holds exactly what was sent.
    let stored = server.get(V1, "HTTPRoute", "apps", "web").unwrap();
    assert_eq!(stored["status"], route.body["status"]);

    let gateway = &patch_of(&patches, "/namespaces/infra/gateways/tunnel/status").body["status"];
    let programmed =
        gateway["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Programmed").unwrap();
    assert_eq!(programmed["status"], "True");
    assert_eq!(gateway["listeners"][0]["attachedRoutes"], 1);
    assert_eq!(gateway["listeners"][0]["supportedKinds"][0]["kind"], "HTTPRoute");

    let class = &patch_of(&patches, "/gatewayclasses/cloudflared/status").body["status"];
    assert_eq!(class["conditions"][0]["type"], "Accepted");
    assert!(class["supportedFeatures"].as_array().unwrap().contains(&json!({"name": "HTTPRoute"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_conditions_keep_their_time_and_no_op_writes_are_skipped() {
    let server = cluster().await;
    let pending = computed(&server, &Programmed::Pending).await;
    // What an earlier term wrote in 2020, with cloudflared not yet verified.
    let old = status_yaml::parse_time(OLD).unwrap();
    let mut route = server.get(V1, "HTTPRoute", "apps", "web").unwrap();
    let ours =
        serde_json::to_value(status_yaml::http_route_status(&pending.routes[0], CONTROLLER, &old)).unwrap();
    route["status"]["parents"].as_array_mut().unwrap().push(ours["parents"][0].clone());
    server.apply(route);
    let mut gateway = server.get(V1, "Gateway", "infra", "tunnel").unwrap();
    gateway["status"] =
        serde_json::to_value(status_yaml::gateway_status(&pending.gateways[0], &old)).unwrap();
    server.apply(gateway);
    let mut class = server.get(V1, "GatewayClass", "", "cloudflared").unwrap();
    class["status"] =
        serde_json::to_value(status_yaml::gateway_class_status(&pending.gateway_classes[0], &old)).unwrap();
    server.apply(class);

    // Now verified: only the Gateway's Programmed conditions change.
    let (statuses_tx, statuses_rx) = watch::channel(report(&pending, Programmed::Yes));
    let (_leader_tx, leader_rx) = watch::channel(true);
    let (opts, results) = writer_options();
    let writer = spawn_status_writer(server.client(), statuses_rx, leader_rx, opts.clone());
    let mut seen = wait_for_results(&results, 3).await;
    seen.sort();
    assert_eq!(seen, ["applied", "unchanged", "unchanged"]);
    let patches = server.status_patches();
    assert_eq!(patches.len(), 1, "only the Gateway changed: {patches:#?}");
    let gateway = &patches[0].body["status"];
    let time_of = |conditions: &Value, type_: &str| {
        conditions.as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()["lastTransitionTime"]
            .clone()
    };
    assert_eq!(time_of(&gateway["conditions"], "Accepted"), OLD);
    assert_ne!(time_of(&gateway["conditions"], "Programmed"), OLD);
    assert_eq!(time_of(&gateway["listeners"][0]["conditions"], "Accepted"), OLD);
    assert_ne!(time_of(&gateway["listeners"][0]["conditions"], "Programmed"), OLD);

    // The same statuses again: nothing to do, nothing read.
    let requests = status_traffic(&server);
    statuses_tx.send_replace(report(&pending, Programmed::Yes));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_traffic(&server), requests);
    writer.abort();

    // A new writer (a new leader) reads every object and finds nothing to change.
    let (opts, results) = writer_options();
    let (_leader_tx, leader_rx) = watch::channel(true);
    let _writer = spawn_status_writer(server.client(), statuses_tx.subscribe(), leader_rx, opts);
    assert_eq!(wait_for_results(&results, 3).await, ["unchanged", "unchanged", "unchanged"]);
    assert_eq!(server.status_patches().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_read_again_and_retried() {
    let server = cluster().await;
    let statuses = computed(&server, &Programmed::Yes).await;
    server.conflict_next_status_patches(1);
    let (_statuses_tx, statuses_rx) = watch::channel(report(&statuses, Programmed::Yes));
    let (_leader_tx, leader_rx) = watch::channel(true);
    let (opts, results) = writer_options();
    let _writer = spawn_status_writer(server.client(), statuses_rx, leader_rx, opts);
    assert_eq!(wait_for_results(&results, 3).await, ["applied", "applied", "applied"]);
    assert_eq!(server.status_patches().len(), 4, "one 409, then the same object again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_leader_writes_no_status() {
    let server = cluster().await;
    let statuses = computed(&server, &Programmed::Yes).await;
    let (statuses_tx, statuses_rx) = watch::channel(report(&statuses, Programmed::Yes));
    let (leader_tx, leader_rx) = watch::channel(false);
    let (opts, results) = writer_options();
    let _writer = spawn_status_writer(server.client(), statuses_rx, leader_rx, opts);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_traffic(&server), 0, "a follower neither reads nor writes status");

    leader_tx.send_replace(true);
    wait_for_results(&results, 3).await;
    assert_eq!(server.status_patches().len(), 3);

    // Leadership lost: a change is not written.
    leader_tx.send_replace(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    statuses_tx.send_replace(report(&statuses, Programmed::No("verification failed".into())));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.status_patches().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_no_longer_ours_loses_only_our_entry() {
    let Writing { server, statuses, tx: statuses_tx, results, _leader, _writer } = writing().await;

    let mut without_route = statuses.clone();
    without_route.routes.clear();
    statuses_tx.send_replace(report(&without_route, Programmed::Yes));
    wait_for_results(&results, 4).await;
    let stored = server.get(V1, "HTTPRoute", "apps", "web").unwrap();
    assert_eq!(stored["status"]["parents"], json!([foreign_parent()]));
}

fn election(namespace: &str, identity: &str) -> LeaderElectionOptions {
    LeaderElectionOptions {
        retry_period: Duration::from_millis(100),
        renew_deadline: Duration::from_millis(1400),
        ..LeaderElectionOptions::new(namespace, CONTROLLER, identity, Duration::from_secs(2))
    }
}

async fn wait_until(rx: &mut watch::Receiver<bool>, value: bool, who: &str) {
    let waited = tokio::time::timeout(WAIT, rx.wait_for(|v| *v == value)).await;
    assert!(matches!(waited, Ok(Ok(_))), "{who} never became leader={value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_candidate_leads_and_another_takes_over_when_it_releases() {
    let server = FakeApiServer::start().await;
    let (mut a, task_a) = spawn_leader_election(server.client(), election("infra", "pod-a"));
    wait_until(&mut a, true, "pod-a").await;
    let (mut b, _task_b) = spawn_leader_election(server.client(), election("infra", "pod-b"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!*b.borrow(), "two leaders");
    let name = election("infra", "pod-a").lease_name;
    let lease = server.get("coordination.k8s.io/v1", "Lease", "infra", &name).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-a");

    // pod-a stops: it releases the Lease, and pod-b takes it without waiting for it to expire.
    drop(a);
    tokio::time::timeout(WAIT, task_a).await.unwrap().unwrap();
    wait_until(&mut b, true, "pod-b").await;
    let lease = server.get("coordination.k8s.io/v1", "Lease", "infra", &name).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_elsewhere_keeps_us_out_until_it_is_not_renewed() {
    let server = FakeApiServer::start().await;
    let name = election("infra", "me").lease_name;
    server.apply(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"namespace": "infra", "name": name},
                        "spec": {"holderIdentity": "crashed-pod", "leaseDurationSeconds": 1,
                                 "renewTime": "2020-01-01T00:00:00.000000Z", "leaseTransitions": 4}}));
    let started = tokio::time::Instant::now();
    let (mut rx, _task) = spawn_leader_election(server.client(), election("infra", "me"));
    wait_until(&mut rx, true, "me").await;
    // Expiry is judged by our own clock from when we first saw the record, never by comparing
    // its renewTime with our clock.
    assert!(started.elapsed() >= Duration::from_secs(1), "took over after {:?}", started.elapsed());
    let lease = server.get("coordination.k8s.io/v1", "Lease", "infra", &name).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "me");
    assert_eq!(lease["spec"]["leaseTransitions"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_elected_replica_writes_status() {
    let server = cluster().await;
    let statuses = computed(&server, &Programmed::Yes).await;
    let (_statuses_tx, statuses_rx) = watch::channel(report(&statuses, Programmed::Yes));

    let (mut leader_a, _a) = spawn_leader_election(server.client(), election("infra", "pod-a"));
    wait_until(&mut leader_a, true, "pod-a").await;
    let (leader_b, _b) = spawn_leader_election(server.client(), election("infra", "pod-b"));
    let (opts_a, results_a) = writer_options();
    let (opts_b, results_b) = writer_options();
    let _writer_b = spawn_status_writer(server.client(), statuses_rx.clone(), leader_b, opts_b);
    let _writer_a = spawn_status_writer(server.client(), statuses_rx, leader_a, opts_a);

    wait_for_results(&results_a, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(results_b.lock().unwrap().is_empty(), "the follower wrote: {:?}", results_b.lock().unwrap());
    assert_eq!(server.status_patches().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_deleted_and_created_again_gets_its_status_written() {
    // `kubectl replace --force`, or a delete and an apply within one debounce: the new object
    // computes the very status the old one had (generation 1 both), yet has none.
    let Writing { server, statuses: before, tx: statuses_tx, results, _leader, _writer } = writing().await;
    for (kind, namespace, name) in
        [("HTTPRoute", "apps", "web"), ("Gateway", "infra", "tunnel"), ("GatewayClass", "", "cloudflared")]
    {
        let mut object = server.get(V1, kind, namespace, name).unwrap();
        server.delete(V1, kind, namespace, name);
        object["status"] = Value::Null;
        object.as_object_mut().unwrap().remove("status");
        server.apply(object);
        assert!(server.get(V1, kind, namespace, name).unwrap().get("status").is_none_or(Value::is_null));
    }
    let after = computed(&server, &Programmed::Yes).await;
    assert_ne!(after, before, "the new objects' statuses name them (their uids)");
    statuses_tx.send_replace(report(&after, Programmed::Yes));
    wait_for_results(&results, 6).await;
    let route = server.get(V1, "HTTPRoute", "apps", "web").unwrap();
    let parents = route["status"]["parents"].as_array().expect("the new route has a status");
    assert!(parents.iter().any(|p| p["controllerName"] == CONTROLLER), "{route:#}");
    let gateway = server.get(V1, "Gateway", "infra", "tunnel").unwrap();
    assert!(gateway["status"]["conditions"].as_array().is_some_and(|c| !c.is_empty()), "{gateway:#}");
    let class = server.get(V1, "GatewayClass", "", "cloudflared").unwrap();
    assert_eq!(class["status"]["conditions"][0]["status"], "True", "{class:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_object_is_not_found_not_a_failure() {
    let server = cluster().await;
    let statuses = computed(&server, &Programmed::Yes).await;
    server.delete(V1, "HTTPRoute", "apps", "web");
    let (_statuses_tx, statuses_rx) = watch::channel(report(&statuses, Programmed::Yes));
    let (_leader_tx, leader_rx) = watch::channel(true);
    let (opts, results) = writer_options();
    let _writer = spawn_status_writer(server.client(), statuses_rx, leader_rx, opts);
    let mut seen = wait_for_results(&results, 3).await;
    seen.sort();
    assert_eq!(seen, ["applied", "applied", "not_found"]);
    // Not a failure: no retry follows.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(results.lock().unwrap().len(), 3);
}

/// Moves Gateway `infra/tunnel` to `class`, keeping its status, or setting `status` if given.
fn move_gateway(server: &FakeApiServer, class: &str, status: Option<Value>) {
    let mut gateway = server.get(V1, "Gateway", "infra", "tunnel").unwrap();
    gateway["spec"]["gatewayClassName"] = json!(class);
    if let Some(status) = status {
        gateway["status"] = status;
    }
    server.apply(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_no_longer_ours_is_released_unless_its_new_controller_wrote_it() {
    let Writing { server, tx: statuses_tx, results, _leader, _writer, .. } = writing().await;
    let gateway = || server.get(V1, "Gateway", "infra", "tunnel").unwrap();
    assert!(gateway()["status"]["listeners"].is_array(), "{:#}", gateway());

    // Moved to a class with no controller: nobody else will write its status, and ours (an
    // address external-dns follows, Programmed) would be a lie. Given back as a new Gateway has it.
    move_gateway(&server, "istio", None);
    let moved = computed(&server, &Programmed::Yes).await;
    assert!(moved.gateways.is_empty() && moved.routes.is_empty());
    statuses_tx.send_replace(report(&moved, Programmed::Yes));
    wait_for_results(&results, 5).await; // the route's entry retracted, the Gateway released
    let status = gateway()["status"].clone();
    let conditions: Vec<_> = (status["conditions"].as_array().unwrap().iter())
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(conditions, [("Accepted", "Unknown", "Pending"), ("Programmed", "Unknown", "Pending")]);
    assert_eq!(status["conditions"][0]["message"], "Waiting for controller");
    assert!(status.get("addresses").is_none() && status.get("listeners").is_none(), "{status:#}");
    let stored = server.get(V1, "HTTPRoute", "apps", "web").unwrap();
    assert_eq!(stored["status"]["parents"], json!([foreign_parent()]));

    // Back to ours: written again. Then moved to a class whose controller writes its own
    // status before our next pass: that status is the new controller's, and stays.
    move_gateway(&server, "cloudflared", None);
    statuses_tx.send_replace(report(&computed(&server, &Programmed::Yes).await, Programmed::Yes));
    wait_for_results(&results, 7).await;
    assert!(gateway()["status"]["listeners"].is_array(), "{:#}", gateway());
    let theirs = json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
        "message": "istio", "observedGeneration": 4, "lastTransitionTime": OLD}]});
    move_gateway(&server, "istio", Some(theirs.clone()));
    statuses_tx.send_replace(report(&computed(&server, &Programmed::Yes).await, Programmed::Yes));
    let mut seen = wait_for_results(&results, 9).await;
    assert_eq!(gateway()["status"], theirs);
    seen.sort();
    assert_eq!(seen.iter().filter(|r| *r == "unchanged").count(), 1, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_class_of_ours_cannot_be_read_is_held_not_released() {
    let Writing { server, tx: statuses_tx, results, _leader, _writer, .. } = writing().await;
    let gateway = || server.get(V1, "Gateway", "infra", "tunnel").unwrap();
    let written = gateway()["status"].clone();
    assert!(written["listeners"].is_array(), "{written:#}");

    // Our class gains a value our types cannot read: the source leaves it out (a warning names
    // it), and the Gateway with it. Its controllerName is still ours: no other controller
    // will take the Gateway, so our status stays.
    let mut class = server.get(V1, "GatewayClass", "", "cloudflared").unwrap();
    class["spec"]["parametersRef"] = json!("not an object");
    server.apply(class);
    let unreadable = computed(&server, &Programmed::Yes).await;
    assert!(unreadable.gateway_classes.is_empty() && unreadable.gateways.is_empty(), "{unreadable:?}");
    statuses_tx.send_replace(report(&unreadable, Programmed::Yes));
    let seen = wait_for_results(&results, 5).await; // the route's entry retracted; the Gateway held
    assert_eq!(seen[3..].iter().filter(|r| *r == "unchanged").count(), 1, "{seen:?}");
    assert_eq!(gateway()["status"], written, "released though its class is still ours");

    // The class deleted: the Gateway is nobody's now, and released.
    server.delete(V1, "GatewayClass", "", "cloudflared");
    statuses_tx.send_replace(report(&unreadable, Programmed::Yes));
    wait_for_results(&results, 6).await;
    let status = gateway()["status"].clone();
    assert_eq!(status["conditions"][0]["message"], "Waiting for controller", "{status:#}");
    assert!(status.get("addresses").is_none(), "{status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_older_than_the_gateway_never_overwrites_its_new_controllers_status() {
    // The Gateway moves to `istio`, whose controller writes its status at once; a report made
    // before the move (a verification's result republishing the last statuses) comes first.
    let Writing { server, statuses: ours, tx: statuses_tx, results, _leader, _writer } = writing().await;
    let theirs = json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
        "message": "istio", "observedGeneration": 2, "lastTransitionTime": OLD}]});
    move_gateway(&server, "istio", Some(theirs.clone()));
    statuses_tx.send_replace(report(&ours, Programmed::No("verification failed".into())));
    wait_for_results(&results, 4).await; // the Gateway's Programmed: stale, left as it is
    let gateway = || server.get(V1, "Gateway", "infra", "tunnel").unwrap();
    assert_eq!(gateway()["status"], theirs, "overwritten by a stale report");
    statuses_tx.send_replace(report(&computed(&server, &Programmed::Yes).await, Programmed::Yes));
    wait_for_results(&results, 6).await; // the route's entry retracted; the Gateway left alone
    assert_eq!(gateway()["status"], theirs, "released");

    // Moved back to our class while a report still says it is not ours: not released.
    move_gateway(&server, "cloudflared", None);
    let mut ours_again = computed(&server, &Programmed::Yes).await;
    statuses_tx.send_replace(report(&ours_again, Programmed::Yes));
    wait_for_results(&results, 8).await;
    let written = gateway()["status"].clone();
    assert!(written["listeners"].is_array(), "{written:#}");
    ours_again.gateways.clear();
    ours_again.routes.clear();
    statuses_tx.send_replace(report(&ours_again, Programmed::Yes));
    wait_for_results(&results, 10).await;
    assert_eq!(gateway()["status"], written, "a Gateway of our class released on a stale report");
}
