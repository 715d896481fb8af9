//! The Kubernetes source against the fake API server: kube's real client, watcher and back-off
//! run over HTTP on 127.0.0.1.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudflared_routes::run::kube::{spawn, EventHook, KubeSourceOptions};
use cloudflared_routes::run::source::{SourceReceiver, SourceState};
use fake_apiserver::objects::{self, V1};
use fake_apiserver::FakeApiServer;
use routes_core::translate::{translate, Settings};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

fn options(hook: Option<EventHook>) -> KubeSourceOptions {
    KubeSourceOptions {
        on_event: hook,
        discovery_interval: Duration::from_millis(200),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
    }
}

/// Counts hook calls by kind.
fn counter() -> (EventHook, Arc<Mutex<BTreeMap<String, usize>>>) {
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    let seen = counts.clone();
    let hook: EventHook =
        Arc::new(move |kind: &str| *seen.lock().unwrap().entry(kind.to_string()).or_insert(0) += 1);
    (hook, counts)
}

async fn server_with(objects: Vec<serde_json::Value>) -> FakeApiServer {
    let server = FakeApiServer::start().await;
    for object in objects {
        server.apply(object);
    }
    server
}

async fn wait(rx: &mut SourceReceiver, what: &str, done: impl Fn(&SourceState) -> bool) -> SourceState {
    let result = match tokio::time::timeout(WAIT, rx.wait_for(|s| done(s))).await {
        Ok(Ok(state)) => Ok(state.clone()),
        Ok(Err(_)) => panic!("the source ended while waiting for {what}"),
        Err(_) => Err(()),
    };
    result.unwrap_or_else(|()| panic!("timed out waiting for {what}; last state: {:#?}", *rx.borrow()))
}

/// `namespace/name prefix` of every HTTPRoute's first match, sorted.
fn routes(state: &SourceState) -> Vec<String> {
    let mut routes: Vec<String> = state
        .snapshot
        .routes
        .iter()
        .map(|r| match &r.rules.first().and_then(|rule| rule.matches.first()) {
            Some(routes_core::model::RouteMatch::Http(m)) => format!("{} {}", r.meta.key(), m.path.value),
            _ => format!("{} {}", r.meta.key(), r.kind),
        })
        .collect();
    routes.sort();
    routes
}

/// `hostname path service` of every translated rule.
fn rules(state: &SourceState) -> Vec<String> {
    translate(&state.snapshot, &Settings::default())
        .rules
        .iter()
        .map(|r| format!("{} {} {}", r.hostname().unwrap_or("*"), r.path().unwrap_or("*"), r.service()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_added_changed_and_deleted_reaches_the_snapshot_and_the_rules() {
    let server = server_with(objects::base()).await;
    let (hook, counts) = counter();
    let (mut rx, _task) = spawn(server.client(), options(Some(hook))).await.unwrap();
    let state = wait(&mut rx, "synced", |s| s.synced).await;
    assert!(state.snapshot.routes.is_empty() && state.warnings.is_empty(), "{state:#?}");
    assert_eq!(state.snapshot.gateways.len(), 1);

    server.apply(objects::http_route("apps", "web", "web.example.com", "/api", "web"));
    let state = wait(&mut rx, "route added", |s| routes(s) == ["apps/web /api"]).await;
    let rule = rules(&state);
    assert!(rule[0].starts_with("web.example.com ^/api"), "{rule:?}");
    assert!(rule[0].ends_with("http://web.apps.svc.cluster.local:80"), "{rule:?}");

    server.apply(objects::http_route("apps", "web", "web.example.com", "/v2", "web"));
    let state = wait(&mut rx, "route changed", |s| routes(s) == ["apps/web /v2"]).await;
    assert_eq!(state.snapshot.routes[0].meta.generation, 2);
    assert!(rules(&state)[0].starts_with("web.example.com ^/v2"));

    server.delete(V1, "HTTPRoute", "apps", "web");
    let state = wait(&mut rx, "route deleted", |s| s.snapshot.routes.is_empty()).await;
    assert!(rules(&state).iter().all(|r| !r.contains("web.apps")), "{:?}", rules(&state));
    assert!(counts.lock().unwrap().get("HTTPRoute").copied().unwrap_or(0) >= 3, "{counts:?}");
    assert!(counts.lock().unwrap().get("Service").copied().unwrap_or(0) >= 1, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_with_an_unknown_enum_value_is_a_warning_and_the_rest_arrives() {
    let mut bad = objects::http_route("apps", "bad", "bad.example.com", "/", "web");
    // A path type the generated enum has no variant for.
    bad["spec"]["rules"][0]["matches"][0]["path"]["type"] = json!("Glob");
    // An experimental-channel filter is not a reason to skip the route: its rule is dropped.
    let mut auth = objects::http_route("apps", "auth", "auth.example.com", "/", "web");
    auth["spec"]["rules"][0]["filters"] =
        json!([{"type": "ExternalAuth", "externalAuth": {"protocol": "HTTP"}}]);
    let mut all = objects::base();
    all.push(bad);
    all.push(auth);
    all.push(objects::http_route("apps", "good", "good.example.com", "/", "web"));
    let server = server_with(all).await;
    let (mut rx, _task) = spawn(server.client(), options(None)).await.unwrap();

    let state = wait(&mut rx, "synced", |s| s.synced).await;
    assert_eq!(routes(&state), ["apps/auth /", "apps/good /"]);
    assert_eq!(state.warnings.len(), 1, "{:?}", state.warnings);
    assert!(state.warnings[0].starts_with("HTTPRoute apps/bad skipped:"), "{:?}", state.warnings);
    assert!(state.warnings[0].contains("Glob"), "{:?}", state.warnings);

    // The watch did not stall on it.
    server.apply(objects::http_route("apps", "later", "later.example.com", "/", "web"));
    wait(&mut rx, "a later route", |s| routes(s) == ["apps/auth /", "apps/good /", "apps/later /"]).await;
    server.delete(V1, "HTTPRoute", "apps", "bad");
    wait(&mut rx, "the warning gone with its object", |s| s.warnings.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_synced_until_every_kind_has_listed() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "web", "web.example.com", "/", "web"));
    let server = server_with(all).await;
    server.hold_lists("Namespace");
    let (hook, counts) = counter();
    let (mut rx, _task) = spawn(server.client(), options(Some(hook))).await.unwrap();

    let plurals = ["gatewayclasses", "gateways", "httproutes", "services", "namespaces"];
    server
        .wait_for_requests("every kind listed", WAIT, |_| plurals.iter().all(|p| server.lists_of(p) > 0))
        .await;
    // The other kinds' objects have arrived, yet nothing is published.
    let deadline = tokio::time::Instant::now() + WAIT;
    while ["HTTPRoute", "Service", "Gateway"].iter().any(|k| !counts.lock().unwrap().contains_key(*k)) {
        assert!(tokio::time::Instant::now() < deadline, "objects never listed: {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!rx.borrow().synced, "published before Namespaces were listed");
    assert_eq!(rx.borrow().revision, 0);

    server.release_lists("Namespace");
    let state = wait(&mut rx, "synced", |s| s.synced).await;
    assert_eq!(state.snapshot.namespaces.len(), 2);
    assert_eq!(routes(&state), ["apps/web /"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_watch_lists_again_and_converges() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "a", "a.example.com", "/", "web"));
    all.push(objects::http_route("apps", "b", "b.example.com", "/", "web"));
    let server = server_with(all).await;
    let (mut rx, _task) = spawn(server.client(), options(None)).await.unwrap();
    wait(&mut rx, "synced", |s| s.synced && routes(s).len() == 2).await;
    server.wait_for_watch("HTTPRoute", WAIT).await;
    let lists = server.lists_of("httproutes");

    // History gone: these changes reach the client only through a new LIST.
    server.expire_watches();
    server.delete(V1, "HTTPRoute", "apps", "b");
    server.apply(objects::http_route("apps", "c", "c.example.com", "/", "web"));
    let state = wait(&mut rx, "converged", |s| routes(s) == ["apps/a /", "apps/c /"]).await;
    assert!(state.synced);
    assert!(server.lists_of("httproutes") > lists, "a 410 must force a re-list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_resumes_from_its_resource_version() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "a", "a.example.com", "/one", "web"));
    let server = server_with(all).await;
    let (mut rx, _task) = spawn(server.client(), options(None)).await.unwrap();
    wait(&mut rx, "synced", |s| s.synced && !s.snapshot.routes.is_empty()).await;
    server.wait_for_watch("HTTPRoute", WAIT).await;
    let (lists, watches) = (server.lists_of("httproutes"), server.watches_of("httproutes"));

    server.drop_watches();
    server.apply(objects::http_route("apps", "a", "a.example.com", "/two", "web"));
    wait(&mut rx, "the change after the drop", |s| routes(s) == ["apps/a /two"]).await;
    assert_eq!(server.lists_of("httproutes"), lists, "resumed by watching from its resourceVersion");
    assert!(server.watches_of("httproutes") > watches, "the connection was not dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_going_away_keeps_the_last_state() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "a", "a.example.com", "/", "web"));
    let server = server_with(all).await;
    let (mut rx, task) = spawn(server.client(), options(None)).await.unwrap();
    let before = wait(&mut rx, "synced", |s| s.synced && !s.snapshot.routes.is_empty()).await;

    server.shutdown();
    // Long enough for several failed re-watches and re-lists at this back-off.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!rx.has_changed().unwrap(), "nothing may be published while the API is away");
    let after = rx.borrow().clone();
    assert_eq!(after.revision, before.revision);
    assert_eq!(routes(&after), ["apps/a /"]);
    assert!(after.synced);
    assert!(!task.is_finished(), "the source keeps retrying");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_grpcroute_crd_is_a_warning_and_is_picked_up_when_installed() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "web", "web.example.com", "/", "web"));
    let server = server_with(all).await;
    server.unserve(V1, "GRPCRoute");
    let (mut rx, _task) = spawn(server.client(), options(None)).await.unwrap();

    let state = wait(&mut rx, "synced", |s| s.synced).await;
    assert_eq!(routes(&state), ["apps/web /"]);
    assert_eq!(state.warnings.len(), 1, "{:?}", state.warnings);
    assert!(state.warnings[0].starts_with("GRPCRoute: not served by the API server"), "{:?}", state.warnings);
    assert!(!rules(&state).is_empty());

    // The CRD is installed later, with a route: found by the periodic discovery.
    server.apply(objects::grpc_route("apps", "rpc", "rpc.example.com", "web"));
    server.serve(V1, "GRPCRoute");
    let state = wait(&mut rx, "the GRPCRoute", |s| s.snapshot.routes.len() == 2).await;
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    assert!(state.synced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_grant_falls_back_to_v1beta1() {
    let server = server_with(objects::base()).await;
    server.unserve(V1, "ReferenceGrant");
    server.apply(json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"namespace": "apps", "name": "allow-routes"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "other"}],
                 "to": [{"group": "", "kind": "Service"}]},
    }));
    let (mut rx, _task) = spawn(server.client(), options(None)).await.unwrap();
    let state = wait(&mut rx, "synced", |s| s.synced).await;
    assert_eq!(state.snapshot.reference_grants.len(), 1);
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    assert!(server
        .requests()
        .iter()
        .any(|r| r.path == "/apis/gateway.networking.k8s.io/v1beta1/referencegrants"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_whose_watched_version_stops_being_served_is_watched_at_the_one_served_now() {
    // Gateway API v1.5 serves ReferenceGrant v1 beside v1beta1; a later upgrade that stops
    // serving v1beta1 must not leave the source retrying a 404 for ever with stale grants.
    const V1BETA1: &str = "gateway.networking.k8s.io/v1beta1";
    let grant = |name: &str| {
        json!({
            "apiVersion": V1BETA1, "kind": "ReferenceGrant",
            "metadata": {"namespace": "apps", "name": name},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "other"}],
                     "to": [{"group": "", "kind": "Service"}]},
        })
    };
    let server = server_with(objects::base()).await;
    server.unserve(V1, "ReferenceGrant");
    server.apply(grant("first"));
    let (mut rx, _task) = spawn(server.client(), options(None)).await.unwrap();
    wait(&mut rx, "synced", |s| s.synced && s.snapshot.reference_grants.len() == 1).await;

    server.serve(V1, "ReferenceGrant");
    server.unserve(V1BETA1, "ReferenceGrant");
    server.drop_watches();
    server.apply(grant("second"));
    let state =
        wait(&mut rx, "both grants, read through v1", |s| s.snapshot.reference_grants.len() == 2).await;
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    assert!(server.requests().iter().any(|r| r.path == "/apis/gateway.networking.k8s.io/v1/referencegrants"));
    // And the watch follows v1 from here.
    server.delete(V1, "ReferenceGrant", "apps", "first");
    wait(&mut rx, "the deletion, seen through v1", |s| s.snapshot.reference_grants.len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_kind_no_longer_served_at_all_drops_its_objects_and_is_found_again() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "web", "web.example.com", "/", "web"));
    all.push(objects::grpc_route("apps", "rpc", "rpc.example.com", "web"));
    let server = server_with(all).await;
    let (mut rx, _task) = spawn(server.client(), options(None)).await.unwrap();
    wait(&mut rx, "synced", |s| s.synced && s.snapshot.routes.len() == 2).await;

    // The watch was cut when the CRD went, so no deletion reached us.
    server.unserve(V1, "GRPCRoute");
    server.drop_watches();
    let state = wait(&mut rx, "the GRPCRoute dropped", |s| s.snapshot.routes.len() == 1).await;
    assert_eq!(routes(&state), ["apps/web /"]);
    assert!(state.warnings.iter().any(|w| w.starts_with("GRPCRoute: not served")), "{:?}", state.warnings);

    server.serve(V1, "GRPCRoute");
    let state = wait(&mut rx, "the GRPCRoute back", |s| s.snapshot.routes.len() == 2).await;
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_kind_no_longer_served_keeps_its_last_objects() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "web", "web.example.com", "/", "web"));
    let server = server_with(all).await;
    let (mut rx, task) = spawn(server.client(), options(None)).await.unwrap();
    wait(&mut rx, "synced", |s| s.synced && s.snapshot.routes.len() == 1).await;
    let discoveries =
        || server.requests().iter().filter(|r| r.path == "/apis/gateway.networking.k8s.io/v1").count();
    let before = discoveries();
    server.unserve(V1, "HTTPRoute");
    server.drop_watches();
    // Several discoveries (every 200 ms here) later, the route is still there. At least 1.5 s,
    // and then at least two discoveries: a loaded machine may not have made them in 1.5 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while discoveries() <= before + 1 {
        assert!(tokio::time::Instant::now() < deadline, "never asked again whether HTTPRoute is served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(routes(&rx.borrow()), ["apps/web /"]);
    assert!(!task.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_gateway_api_is_an_error() {
    let server = server_with(vec![]).await;
    server.unserve(V1, "HTTPRoute");
    let error = spawn(server.client(), options(None)).await.expect_err("no HTTPRoute, no source");
    assert!(error.to_string().contains("HTTPRoute"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_do_not_publish_a_new_snapshot() {
    let mut all = objects::base();
    all.push(objects::http_route("apps", "web", "web.example.com", "/", "web"));
    let server = server_with(all).await;
    let (hook, counts) = counter();
    let (mut rx, _task) = spawn(server.client(), options(Some(hook))).await.unwrap();
    let before = wait(&mut rx, "synced", |s| s.synced && !s.snapshot.routes.is_empty()).await;
    let events = |kind: &str| counts.lock().unwrap().get(kind).copied().unwrap_or(0);
    let route_events = events("HTTPRoute");

    // What a status write looks like to a watcher: MODIFIED, same generation, new status.
    let mut written = server.get(V1, "HTTPRoute", "apps", "web").unwrap();
    let ours =
        json!({"controllerName": objects::CONTROLLER, "parentRef": {"name": "tunnel"}, "conditions": []});
    written["status"] = json!({"parents": [ours]});
    server.apply(written);
    let deadline = tokio::time::Instant::now() + WAIT;
    while events("HTTPRoute") == route_events {
        assert!(tokio::time::Instant::now() < deadline, "the status event never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A real change afterwards is the very next revision. (An object is never seen before the
    // revision that brings it: a batch and its revision are published together.)
    server.apply(objects::service("apps", "other", 8080));
    let after = wait(&mut rx, "the Service", |s| s.snapshot.services.len() == 2).await;
    assert_eq!(after.revision, before.revision + 1, "the status write published a revision");
}
