use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::store::KindState;
use super::*;

pub(super) fn route(ns: &str, name: &str, path: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "namespace": ns, "name": name, "generation": 1, "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {
            "parentRefs": [{"name": "tunnel"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                       "backendRefs": [{"name": "web", "port": 80}]}],
        },
    }))
    .unwrap()
}

fn with_status(mut object: DynamicObject, status: Value) -> DynamicObject {
    object.data["status"] = status;
    object
}

/// A [`Store`] with the snapshot it keeps (in `run`, the published one).
#[derive(Default)]
struct TestStore {
    store: Store,
    snapshot: Arc<Snapshot>,
}

impl TestStore {
    fn apply(&mut self, kind: Kind, event: Event<DynamicObject>, hook: Option<&EventHook>) -> bool {
        self.store.apply_event(&mut self.snapshot, kind, event, hook)
    }

    fn check_synced(&mut self) -> bool {
        self.store.check_synced()
    }

    fn warnings(&self, discovery_interval: Duration) -> Vec<String> {
        self.store.warnings(discovery_interval)
    }

    fn kind_mut(&mut self, kind: Kind) -> &mut KindState {
        self.store.kind_mut(kind)
    }

    fn snapshot(&self) -> Snapshot {
        (*self.snapshot).clone()
    }
}

fn apply(store: &mut TestStore, event: Event<DynamicObject>) -> bool {
    store.apply(Kind::HttpRoute, event, None)
}

/// A store whose every kind but HTTPRoute has completed its list.
fn listed_store() -> TestStore {
    listed_but(Kind::HttpRoute)
}

/// A store in which every kind but `unlisted` has completed its first (empty) list.
fn listed_but(unlisted: Kind) -> TestStore {
    let mut store = TestStore::default();
    for kind in Kind::ALL.into_iter().filter(|k| *k != unlisted) {
        store.apply(kind, Event::Init, None);
        store.apply(kind, Event::InitDone, None);
    }
    store
}

/// A whole (re-)list of HTTPRoutes: `Init`, each object, `InitDone`; what `InitDone` returned.
fn list(store: &mut TestStore, objects: impl IntoIterator<Item = DynamicObject>) -> bool {
    apply(store, Event::Init);
    for object in objects {
        apply(store, Event::InitApply(object));
    }
    apply(store, Event::InitDone)
}

/// `namespace/name:path` of every route, sorted (the snapshot's order does not matter).
fn paths(store: &TestStore) -> Vec<String> {
    let snapshot = store.snapshot();
    let mut paths: Vec<String> = snapshot
        .routes
        .iter()
        .map(|r| match &r.rules[0].matches[0] {
            model::RouteMatch::Http(m) => format!("{}:{}", r.meta.key(), m.path.value),
            other => panic!("{other:?}"),
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn not_synced_until_every_kind_listed() {
    let mut store = listed_store();
    assert!(!store.check_synced(), "HTTPRoute has not listed yet");
    apply(&mut store, Event::Init);
    apply(&mut store, Event::InitApply(route("apps", "web", "/")));
    assert!(!store.check_synced(), "a list in progress is not a completed list");
    assert!(apply(&mut store, Event::InitDone));
    assert!(store.check_synced());
    assert_eq!(paths(&store), ["apps/web:/"]);
}

#[test]
fn missing_optional_kind_counts_as_listed_and_warns() {
    let mut store = listed_but(Kind::GrpcRoute);
    store.kind_mut(Kind::GrpcRoute).missing = true;
    assert!(store.check_synced());
    let warnings = store.warnings(Duration::from_secs(30));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("GRPCRoute: not served by the API server"), "{warnings:?}");
    // Found later: its first list clears the warning.
    store.apply(Kind::GrpcRoute, Event::Init, None);
    assert!(store.apply(Kind::GrpcRoute, Event::InitDone, None));
    assert!(store.warnings(Duration::from_secs(30)).is_empty());
}

#[test]
fn added_changed_and_deleted_route_changes_the_snapshot() {
    let mut store = listed_store();
    list(&mut store, []);
    assert!(apply(&mut store, Event::Apply(route("apps", "web", "/a"))));
    assert_eq!(paths(&store), ["apps/web:/a"]);
    assert!(apply(&mut store, Event::Apply(route("apps", "web", "/b"))));
    assert_eq!(paths(&store), ["apps/web:/b"]);
    assert!(apply(&mut store, Event::Delete(route("apps", "web", "/b"))));
    assert!(paths(&store).is_empty());
    assert!(!apply(&mut store, Event::Delete(route("apps", "web", "/b"))), "already gone");
}

#[test]
fn status_and_managed_fields_changes_publish_nothing() {
    let mut store = listed_store();
    list(&mut store, [route("apps", "web", "/")]);
    let mut written = with_status(route("apps", "web", "/"), json!({"parents": [{"controllerName": "x"}]}));
    written.metadata.resource_version = Some("8".into());
    written.metadata.managed_fields = None;
    assert!(!apply(&mut store, Event::Apply(written)), "our own status write must not re-render");
}

#[test]
fn routes_holding_our_status_entries_are_noted_though_status_is_dropped() {
    let owned = OwnedRoutes::new(super::super::status_writer::Ownership::new("us/c", &[]));
    let mut store = listed_store();
    store.store.owned_routes = Some(owned.clone());
    list(&mut store, [route("apps", "web", "/")]);
    assert!(owned.routes().is_empty());
    let ours = json!({"parents": [{"controllerName": "us/c", "parentRef": {"name": "tunnel"}}]});
    assert!(
        !apply(&mut store, Event::Apply(with_status(route("apps", "web", "/"), ours))),
        "nothing to render"
    );
    assert_eq!(owned.routes(), [(model::RouteKind::Http, "apps".to_string(), "web".to_string())]);
    apply(&mut store, Event::Delete(route("apps", "web", "/")));
    assert!(owned.routes().is_empty());
}

#[test]
fn unreadable_object_is_a_warning_and_the_rest_arrives() {
    let mut store = listed_store();
    let mut bad = route("apps", "bad", "/");
    // A value the generated enum does not know.
    bad.data["spec"]["rules"][0]["matches"][0]["path"]["type"] = json!("Glob");
    // An experimental-channel filter is not unreadable: its rule is dropped, in status.
    let mut auth = route("apps", "auth", "/auth");
    auth.data["spec"]["rules"][0]["filters"] = json!([{"type": "ExternalAuth", "externalAuth": {}}]);
    assert!(list(&mut store, [bad.clone(), auth, route("apps", "good", "/")]));
    assert_eq!(paths(&store), ["apps/auth:/auth", "apps/good:/"]);
    let warnings = store.warnings(Duration::from_secs(30));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("HTTPRoute apps/bad skipped: "), "{warnings:?}");
    assert!(warnings[0].contains("Glob"), "{warnings:?}");

    // The same bad object again changes nothing; fixing it replaces the warning by the route.
    assert!(!apply(&mut store, Event::Apply(bad)));
    assert!(apply(&mut store, Event::Apply(route("apps", "bad", "/fixed"))));
    assert_eq!(paths(&store), ["apps/auth:/auth", "apps/bad:/fixed", "apps/good:/"]);
    assert!(store.warnings(Duration::from_secs(30)).is_empty());
}

#[test]
fn good_object_turned_bad_leaves_the_snapshot() {
    let mut store = listed_store();
    list(&mut store, [route("apps", "web", "/")]);
    let mut bad = route("apps", "web", "/");
    bad.data["spec"]["rules"][0]["matches"][0]["method"] = json!("BREW");
    assert!(apply(&mut store, Event::Apply(bad)));
    assert!(paths(&store).is_empty());
    assert_eq!(store.warnings(Duration::from_secs(30)).len(), 1);
}

#[test]
fn relist_is_swapped_in_whole() {
    let mut store = listed_store();
    list(&mut store, [route("apps", "a", "/"), route("apps", "b", "/")]);
    // A 410 re-list in progress: the published objects stay until it completes.
    assert!(!apply(&mut store, Event::Init));
    assert!(!apply(&mut store, Event::InitApply(route("apps", "a", "/"))));
    assert_eq!(paths(&store), ["apps/a:/", "apps/b:/"]);
    apply(&mut store, Event::InitApply(route("apps", "c", "/")));
    assert!(apply(&mut store, Event::InitDone));
    assert_eq!(paths(&store), ["apps/a:/", "apps/c:/"]);
    // The same list again is no change.
    assert!(!list(&mut store, [route("apps", "a", "/"), route("apps", "c", "/")]));
}

#[test]
fn every_object_event_reaches_the_hook_with_its_kind() {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let hook: EventHook = Arc::new(move |kind| {
        assert_eq!(kind, "HTTPRoute");
        seen.fetch_add(1, Ordering::SeqCst);
    });
    let mut store = listed_store();
    store.apply(Kind::HttpRoute, Event::Init, Some(&hook));
    store.apply(Kind::HttpRoute, Event::InitApply(route("apps", "a", "/")), Some(&hook));
    store.apply(Kind::HttpRoute, Event::InitDone, Some(&hook));
    store.apply(Kind::HttpRoute, Event::Apply(route("apps", "a", "/x")), Some(&hook));
    store.apply(Kind::HttpRoute, Event::Delete(route("apps", "a", "/x")), Some(&hook));
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn cluster_scoped_and_core_kinds_convert() {
    let class: DynamicObject = serde_json::from_value(json!({
        "metadata": {"name": "cloudflared", "generation": 2},
        "spec": {"controllerName": "example.com/c"},
    }))
    .unwrap();
    let (key, read) = read_object(Kind::GatewayClass, class);
    assert_eq!(key, "cloudflared");
    match read.unwrap() {
        Object::GatewayClass(c) => {
            assert_eq!((c.controller_name.as_str(), c.meta.generation), ("example.com/c", 2))
        }
        other => panic!("{other:?}"),
    }
    let service: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "apps", "name": "web"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80, "targetPort": "http"}]},
    }))
    .unwrap();
    match read_object(Kind::Service, service).1.unwrap() {
        Object::Service(s) => {
            assert!(s.headless);
            assert_eq!(s.ports[0].target_port, Some(model::TargetPort::Name("http".into())));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reference_grant_of_an_older_version_reads_into_v1() {
    let grant: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"namespace": "backends", "name": "allow"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "apps"}],
                 "to": [{"group": "", "kind": "Service"}]},
    }))
    .unwrap();
    match read_object(Kind::ReferenceGrant, grant).1.unwrap() {
        Object::ReferenceGrant(g) => assert_eq!(g.from[0].namespace, "apps"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn backoff_doubles_to_its_max_with_jitter_and_resets_after_a_quiet_period() {
    use kube::runtime::utils::Backoff;
    let mut backoff = RetryBackoff::new(Duration::from_millis(100), Duration::from_millis(350));
    let delays: Vec<Duration> = (0..4).map(|_| backoff.next().unwrap()).collect();
    let nominal = [100, 200, 350, 350];
    for (delay, nominal) in delays.iter().zip(nominal) {
        let nominal = Duration::from_millis(nominal);
        assert!(*delay <= nominal && *delay >= nominal.mul_f64(0.75), "{delays:?}");
    }
    // A success right after a retry (the `Init` a watcher emits before it lists again) does
    // not reset it: a list that keeps failing is retried ever more slowly.
    backoff.reset();
    assert!(backoff.next().unwrap() >= Duration::from_millis(350).mul_f64(0.75));
    // After a quiet period it does.
    backoff.last_retry = std::time::Instant::now().checked_sub(backoff.quiet());
    backoff.reset();
    assert!(backoff.next().unwrap() <= Duration::from_millis(100));
}

// ---- the snapshot, changed in place ----

fn grpc_route(ns: &str, name: &str, service: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"parentRefs": [{"name": "tunnel"}],
                 "rules": [{"matches": [{"method": {"service": service}}],
                            "backendRefs": [{"name": "grpc", "port": 50051}]}]},
    }))
    .unwrap()
}

pub(super) fn service(ns: &str, name: &str, port: i32) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"ports": [{"port": port}]},
    }))
    .unwrap()
}

/// One object of the property test: its kind, name (namespace `apps`) and a value that
/// distinguishes its versions (a path, a gRPC service, a port).
fn object(kind: Kind, name: &str, value: u8) -> DynamicObject {
    match kind {
        Kind::HttpRoute => route("apps", name, &format!("/{value}")),
        Kind::GrpcRoute => grpc_route("apps", name, &format!("pkg.S{value}")),
        _ => service("apps", name, 1000 + i32::from(value)),
    }
}

/// What the snapshot holds, as `(kind, key, value)`, sorted.
pub(super) fn contents(snapshot: &Snapshot) -> Vec<(&'static str, String, String)> {
    let mut all: Vec<_> = snapshot
        .routes
        .iter()
        .map(|r| {
            let value = match &r.rules[0].matches[0] {
                model::RouteMatch::Http(m) => m.path.value.trim_start_matches('/').to_string(),
                model::RouteMatch::Grpc(m) => {
                    m.method.as_ref().and_then(|m| m.service.clone()).unwrap_or_default().replace("pkg.S", "")
                }
            };
            (r.kind.kind(), r.meta.key(), value)
        })
        .chain(
            snapshot.services.iter().map(|s| ("Service", s.meta.key(), (s.ports[0].port - 1000).to_string())),
        )
        .collect();
    all.sort();
    all
}

#[derive(Clone, Debug)]
enum Step {
    Init(usize),
    InitApply(usize, u8, u8),
    InitDone(usize),
    Apply(usize, u8, u8),
    Delete(usize, u8),
}

/// The property test's model of one kind: its objects (name → value), and a list in progress.
type ModelKind = (BTreeMap<String, u8>, Option<BTreeMap<String, u8>>);

const TESTED_KINDS: [Kind; 3] = [Kind::HttpRoute, Kind::GrpcRoute, Kind::Service];

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        1 => (0usize..3).prop_map(Step::Init),
        3 => (0usize..3, 0u8..6, 0u8..3).prop_map(|(k, n, v)| Step::InitApply(k, n, v)),
        1 => (0usize..3).prop_map(Step::InitDone),
        4 => (0usize..3, 0u8..6, 0u8..3).prop_map(|(k, n, v)| Step::Apply(k, n, v)),
        2 => (0usize..3, 0u8..6).prop_map(|(k, n)| Step::Delete(k, n)),
    ]
}

proptest::proptest! {
    /// Whatever the events (lists, re-lists, changes, deletions, of two kinds sharing the
    /// routes vector and one other), the snapshot changed in place holds exactly what a plain
    /// map per kind says, and an event reports a change exactly when that map changed. (Not
    /// synced: a first list goes straight into the snapshot; later ones are swapped in whole.)
    #[test]
    fn the_snapshot_changed_in_place_is_the_objects_of_the_events(steps in proptest::collection::vec(step(), 0..60)) {
        let mut store = TestStore::default();
        // The model: per kind, the objects (name → value) and a list in progress.
        let mut model: [ModelKind; 3] = Default::default();
        let mut listed = [false; 3];
        // Never synced here: a kind's first list goes straight into the snapshot.
        let mut direct = [false; 3];
        for step in steps {
            let (changed, model_changed) = match step {
                Step::Init(k) if !listed[k] => {
                    direct[k] = true;
                    model[k].0.clear();
                    (store.apply(TESTED_KINDS[k], Event::Init, None), false)
                }
                Step::Init(k) => {
                    model[k].1 = Some(BTreeMap::new());
                    (store.apply(TESTED_KINDS[k], Event::Init, None), false)
                }
                Step::InitApply(k, n, v) => {
                    let objects = if direct[k] { &mut model[k].0 } else { model[k].1.get_or_insert_with(BTreeMap::new) };
                    objects.insert(format!("o{n}"), v);
                    (store.apply(TESTED_KINDS[k], Event::InitApply(object(TESTED_KINDS[k], &format!("o{n}"), v)), None), false)
                }
                Step::InitDone(k) if direct[k] => {
                    direct[k] = false;
                    listed[k] = true;
                    (store.apply(TESTED_KINDS[k], Event::InitDone, None), true)
                }
                Step::InitDone(k) => {
                    let list = model[k].1.take().unwrap_or_default();
                    let differs = list != model[k].0 || !listed[k];
                    model[k].0 = list;
                    listed[k] = true;
                    (store.apply(TESTED_KINDS[k], Event::InitDone, None), differs)
                }
                Step::Apply(k, n, v) => {
                    let differs = model[k].0.insert(format!("o{n}"), v) != Some(v);
                    (store.apply(TESTED_KINDS[k], Event::Apply(object(TESTED_KINDS[k], &format!("o{n}"), v)), None), differs)
                }
                Step::Delete(k, n) => {
                    let differs = model[k].0.remove(&format!("o{n}")).is_some();
                    (store.apply(TESTED_KINDS[k], Event::Delete(object(TESTED_KINDS[k], &format!("o{n}"), 0)), None), differs)
                }
            };
            proptest::prop_assert_eq!(changed, model_changed);
            let mut expected: Vec<(&'static str, String, String)> = TESTED_KINDS
                .iter()
                .zip(&model)
                .flat_map(|(kind, (objects, _))| {
                    objects.iter().map(move |(name, v)| (kind.name(), format!("apps/{name}"), v.to_string()))
                })
                .collect();
            expected.sort();
            proptest::prop_assert_eq!(contents(&store.snapshot), expected);
        }
    }
}

#[test]
fn the_snapshot_is_copied_only_while_a_render_holds_it() {
    let mut store = listed_store();
    list(&mut store, [route("apps", "a", "/a")]);
    let first = Arc::as_ptr(&store.snapshot);
    assert!(apply(&mut store, Event::Apply(route("apps", "b", "/b"))));
    assert_eq!(Arc::as_ptr(&store.snapshot), first, "nobody else holds it: changed in place");

    // A render holds it: the change goes to a copy, and the render's snapshot stays as it was.
    let held = store.snapshot.clone();
    assert!(!apply(&mut store, Event::Apply(route("apps", "b", "/b"))), "no change, no copy");
    assert_eq!(Arc::as_ptr(&store.snapshot), first);
    assert!(apply(&mut store, Event::Apply(route("apps", "c", "/c"))));
    assert_ne!(Arc::as_ptr(&store.snapshot), first);
    assert_eq!(held.routes.len(), 2);
    assert_eq!(paths(&store), ["apps/a:/a", "apps/b:/b", "apps/c:/c"]);
    drop(held);
    let second = Arc::as_ptr(&store.snapshot);
    assert!(apply(&mut store, Event::Delete(route("apps", "a", "/a"))));
    assert_eq!(Arc::as_ptr(&store.snapshot), second, "in place again once the render let go");
    assert_eq!(paths(&store), ["apps/b:/b", "apps/c:/c"]);
}

#[test]
fn once_synced_a_kind_listed_late_is_still_swapped_in_whole() {
    let mut store = listed_but(Kind::GrpcRoute);
    store.kind_mut(Kind::GrpcRoute).missing = true;
    assert!(store.check_synced());
    // GRPCRoute's CRD is installed later: its first list must not be published half-done.
    store.apply(Kind::GrpcRoute, Event::Init, None);
    store.apply(Kind::GrpcRoute, Event::InitApply(grpc_route("apps", "a", "pkg.S1")), None);
    assert!(store.snapshot().routes.is_empty(), "not before the list completes");
    assert!(store.apply(Kind::GrpcRoute, Event::InitDone, None));
    assert_eq!(store.snapshot().routes.len(), 1);
}
