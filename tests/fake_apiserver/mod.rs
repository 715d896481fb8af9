//! A fake Kubernetes API server for integration tests: real HTTP on 127.0.0.1, so kube's own
//! client, watcher and back-off code runs against it (STYLE.md "Tests").
//!
//! It speaks enough of the API for the sidecar: discovery (`/api/v1`, `/apis/<group>/<version>`),
//! LIST (`{kind: XList, metadata: {resourceVersion, continue}, items}`, paged by `limit`), WATCH (newline-delimited
//! `ADDED`/`MODIFIED`/`DELETED`/`BOOKMARK` events from a resourceVersion, replayed from a history,
//! `ERROR 410 Expired` when that history is gone), GET, POST and PUT (with `resourceVersion`
//! preconditions: 409 Conflict), and `PATCH .../status` (JSON merge patch). Every request is
//! recorded for assertions. Objects live in memory under one global resourceVersion counter.
//! Tests change objects, expire or drop watches, hold a kind's lists, stop serving a kind, force
//! status conflicts, and shut the server down.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

mod http;
pub mod objects;

pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The resources it knows: (group, kind, plural, namespaced, versions).
const RESOURCES: &[(&str, &str, &str, bool, &[&str])] = &[
    (GATEWAY_GROUP, "GatewayClass", "gatewayclasses", false, &["v1"]),
    (GATEWAY_GROUP, "Gateway", "gateways", true, &["v1"]),
    (GATEWAY_GROUP, "HTTPRoute", "httproutes", true, &["v1"]),
    (GATEWAY_GROUP, "GRPCRoute", "grpcroutes", true, &["v1"]),
    (GATEWAY_GROUP, "ReferenceGrant", "referencegrants", true, &["v1", "v1beta1"]),
    (GATEWAY_GROUP, "BackendTLSPolicy", "backendtlspolicies", true, &["v1"]),
    ("", "Service", "services", true, &["v1"]),
    ("", "Namespace", "namespaces", false, &["v1"]),
    ("coordination.k8s.io", "Lease", "leases", true, &["v1"]),
];

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Recorded {
    pub fn is_status_patch(&self) -> bool {
        self.method == "PATCH" && self.path.ends_with("/status")
    }
    /// A LIST (not a watch) of the collection whose path ends with `/<plural>`.
    pub fn is_list_of(&self, plural: &str) -> bool {
        self.method == "GET" && self.path.ends_with(&format!("/{plural}")) && !self.query.contains("watch=")
    }
}

type Key = (String, String, String, String); // group, kind, namespace, name

struct Change {
    rv: u64,
    group: String,
    kind: String,
    kind_of_event: &'static str,
    object: Value,
}

#[derive(Clone)]
enum Msg {
    Change(Arc<Change>),
    /// Break every watch connection without a clean end.
    Drop,
    /// End every watch with `ERROR 410 Expired`.
    Expire,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Arc<Change>>,
    /// Watches from a resourceVersion below this one are answered 410.
    oldest: u64,
    /// (apiVersion, kind) pairs served.
    served: BTreeSet<(String, String)>,
    requests: Vec<Recorded>,
    /// The next this-many status patches answer 409 Conflict.
    conflicts: usize,
    created: i64,
    /// Open watches by kind.
    watching: BTreeMap<String, usize>,
}

struct Shared {
    state: Mutex<State>,
    events: broadcast::Sender<Msg>,
    /// Kinds whose LISTs wait until released.
    held: watch::Sender<BTreeSet<String>>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeApiServer {
    /// Serves every known kind at every version.
    pub async fn start() -> FakeApiServer {
        FakeApiServer::start_at("127.0.0.1:0").await
    }

    /// The same, on `addr` (an API server that comes back on the address clients know).
    pub async fn start_at(addr: &str) -> FakeApiServer {
        let mut state = State::default();
        for (group, kind, _, _, versions) in RESOURCES {
            for version in *versions {
                state.served.insert((api_version(group, version), kind.to_string()));
            }
        }
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            events,
            held: watch::channel(BTreeSet::new()).0,
            shutdown: watch::channel(false).0,
        });
        let listener =
            tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(http::accept(listener, shared.clone()));
        FakeApiServer { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server (call inside a Tokio runtime).
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url().parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    /// Stops serving `kind` at `api_version` (its CRD is not installed).
    pub fn unserve(&self, api_version: &str, kind: &str) {
        self.shared.lock().served.remove(&(api_version.to_string(), kind.to_string()));
    }

    pub fn serve(&self, api_version: &str, kind: &str) {
        self.shared.lock().served.insert((api_version.to_string(), kind.to_string()));
    }

    /// Creates or replaces an object (by its `apiVersion` group, `kind`, namespace and name),
    /// as `kubectl apply` would: `generation` goes up when the spec changes. Returns it stored.
    pub fn apply(&self, object: Value) -> Value {
        let mut state = self.shared.lock();
        let key = key_of(&object);
        let old = state.objects.get(&key).cloned();
        let mut object = object;
        let generation = match &old {
            Some(old) if old["spec"] == object["spec"] => old["metadata"]["generation"].as_i64().unwrap_or(1),
            Some(old) => old["metadata"]["generation"].as_i64().unwrap_or(1) + 1,
            None => 1,
        };
        // Kept while the object lives; an object created again under its name is another one,
        // with another uid (and a later creationTimestamp), as from a real API server.
        let (created, uid) = match &old {
            Some(old) => (old["metadata"]["creationTimestamp"].clone(), old["metadata"]["uid"].clone()),
            None => {
                state.created += 1;
                // One second apart; valid past the first hour (the runtime bench creates 10,000).
                let t = state.created;
                let created = format!(
                    "2026-01-{:02}T{:02}:{:02}:{:02}Z",
                    1 + t / 86_400,
                    t / 3600 % 24,
                    t / 60 % 60,
                    t % 60
                );
                (json!(created), json!(format!("uid-{}-{}-{t}", key.1, key.3).to_lowercase()))
            }
        };
        let meta = &mut object["metadata"];
        meta["generation"] = json!(generation);
        meta["creationTimestamp"] = created;
        meta["uid"] = uid;
        if old.is_some() && object.get("status").is_none() {
            object["status"] = old.as_ref().map_or(Value::Null, |o| o["status"].clone());
        }
        let event = if old.is_some() { "MODIFIED" } else { "ADDED" };
        store(&self.shared, &mut state, key, object, event)
    }

    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let mut state = self.shared.lock();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        let key = (group.clone(), kind.to_string(), namespace.to_string(), name.to_string());
        if let Some(mut object) = state.objects.remove(&key) {
            state.rv += 1;
            object["metadata"]["resourceVersion"] = json!(state.rv.to_string());
            let change = Arc::new(Change {
                rv: state.rv,
                group,
                kind: kind.to_string(),
                kind_of_event: "DELETED",
                object,
            });
            state.history.push(change.clone());
            let _ = self.shared.events.send(Msg::Change(change));
        }
    }

    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        let key = (group, kind.to_string(), namespace.to_string(), name.to_string());
        self.shared.lock().objects.get(&key).cloned()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn status_patches(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(Recorded::is_status_patch).collect()
    }

    pub fn lists_of(&self, plural: &str) -> usize {
        self.requests().iter().filter(|r| r.is_list_of(plural)).count()
    }

    /// WATCH requests of the collection whose path ends with `/<plural>`.
    pub fn watches_of(&self, plural: &str) -> usize {
        let suffix = format!("/{plural}");
        self.requests().iter().filter(|r| r.path.ends_with(&suffix) && r.query.contains("watch=true")).count()
    }

    /// The next `n` status patches answer 409 Conflict (another writer got there first).
    pub fn conflict_next_status_patches(&self, n: usize) {
        self.shared.lock().conflicts = n;
    }

    /// Forgets the event history and ends every watch with `ERROR 410 Expired`, as an API
    /// server does when etcd compacted past a watcher's resourceVersion: only a new LIST sees
    /// what changed from here.
    pub fn expire_watches(&self) {
        let mut state = self.shared.lock();
        // Every resourceVersion handed out so far is now too old to watch from.
        state.rv += 1;
        state.oldest = state.rv;
        state.history.clear();
        let _ = self.shared.events.send(Msg::Expire);
    }

    /// Breaks every watch connection mid-stream; the history stays, so clients resume.
    pub fn drop_watches(&self) {
        let _ = self.shared.events.send(Msg::Drop);
    }

    /// LISTs of `kind` wait until [`release_lists`](Self::release_lists).
    pub fn hold_lists(&self, kind: &str) {
        self.shared.held.send_modify(|held| {
            held.insert(kind.to_string());
        });
    }

    pub fn release_lists(&self, kind: &str) {
        self.shared.held.send_modify(|held| {
            held.remove(kind);
        });
    }

    /// Goes away: no more connections, every open one closed.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let _ = self.shared.events.send(Msg::Drop);
    }

    /// Waits (at most `timeout`) until a watch of `kind` is open, so that what a test does next
    /// reaches it (and not a watch that has yet to start).
    pub async fn wait_for_watch(&self, kind: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared.lock().watching.get(kind).copied().unwrap_or(0) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no watch of {kind} opened");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (at most `timeout`) until the recorded requests satisfy `done`.
    pub async fn wait_for_requests(&self, what: &str, timeout: Duration, done: impl Fn(&[Recorded]) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.requests()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let seen: Vec<String> =
                    self.requests().iter().map(|r| format!("{} {}?{}", r.method, r.path, r.query)).collect();
                panic!("timed out waiting for {what}; requests:\n{}", seen.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn key_of(object: &Value) -> Key {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        group.to_string(),
        text(&object["kind"]),
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Stores `object` under a new resourceVersion and tells the watches. Nulls are dropped, as an
/// API server does (typed decoding for built-in kinds, pruning for custom resources).
fn store(shared: &Shared, state: &mut State, key: Key, mut object: Value, event: &'static str) -> Value {
    strip_nulls(&mut object);
    state.rv += 1;
    object["metadata"]["resourceVersion"] = json!(state.rv.to_string());
    let change = Arc::new(Change {
        rv: state.rv,
        group: key.0.clone(),
        kind: key.1.clone(),
        kind_of_event: event,
        object: object.clone(),
    });
    state.history.push(change.clone());
    state.objects.insert(key, object.clone());
    let _ = shared.events.send(Msg::Change(change));
    object
}
