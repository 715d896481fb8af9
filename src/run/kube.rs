//! The Kubernetes source: the Gateway API objects and the Services and Namespaces they name,
//! watched in the cluster and published as one [`SourceState`] after every change.
//!
//! ```text
//! discovery → one watcher per kind (DynamicObject) → a batch of ready events, each converted
//!           → applied to the published Snapshot in place, with its revision, under the
//!             channel's lock (one batch at a time) → watch channel → pipeline
//! ```
//!
//! Objects are watched as `DynamicObject`s and converted one by one (RUST-NOTES "Traps"): the
//! generated types have no catch-all enum variant, so a typed watcher would fail its whole list
//! on one object from the experimental channel and retry forever. Here an object that cannot
//! be read becomes a warning and the rest arrives; a route's experimental filters only drop
//! their rules (`convert::route`). Only the converted model objects are kept (never the raw
//! objects, so `managedFields` and `status` are not cached at all), which also makes our own
//! status writes invisible: they change no field the model holds, so they publish nothing. Of
//! a route's status, only whether it holds a parent entry of ours is noted ([`OwnedRoutes`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use gateway_api::backendtlspolicies::BackendTlsPolicy;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use routes_core::model::{self, Snapshot};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::source::{SourceReceiver, SourceSender, SourceState};
use super::status_writer::OwnedRoutes;
use crate::convert::{self, Object};
use crate::kinds::Kind;

#[path = "kube_options.rs"]
mod options;
pub use options::KubeOptions;

/// Called with the kind (`HTTPRoute`, `Service`, …) of every watch event, for the
/// watch-events metric; the metrics module stays decoupled from this one.
pub type EventHook = Arc<dyn Fn(&str) + Send + Sync>;

/// How the source watches.
#[derive(Clone)]
pub struct KubeSourceOptions {
    /// Called once per watch event (listed, added, modified or deleted object) with its kind.
    pub on_event: Option<EventHook>,
    /// How often the API server is asked again for an optional kind it did not serve (its CRD
    /// may be installed later).
    pub discovery_interval: Duration,
    /// Back-off of a failed list or watch: doubling from `retry_min` up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for KubeSourceOptions {
    fn default() -> Self {
        // client-go's reflector back-off (800 ms doubling to 30 s) is kind to a struggling API
        // server; kube-runtime's default is the same.
        KubeSourceOptions {
            on_event: None,
            discovery_interval: Duration::from_secs(30),
            retry_min: Duration::from_millis(800),
            retry_max: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for KubeSourceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSourceOptions")
            .field("on_event", &self.on_event.is_some())
            .field("discovery_interval", &self.discovery_interval)
            .field("retry_min", &self.retry_min)
            .field("retry_max", &self.retry_max)
            .finish()
    }
}

/// How each kind is watched.
impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::GatewayClass => "gatewayclasses",
            Kind::Gateway => "gateways",
            Kind::HttpRoute => "httproutes",
            Kind::GrpcRoute => "grpcroutes",
            Kind::ReferenceGrant => "referencegrants",
            Kind::BackendTlsPolicy => "backendtlspolicies",
            Kind::Service => "services",
            Kind::Namespace => "namespaces",
        }
    }

    /// Versions to watch, preferred first. ReferenceGrant is `v1` only from Gateway API v1.5
    /// (older clusters serve `v1beta1`); BackendTLSPolicy was `v1alpha3` before v1.4. The fields
    /// we read are the same in each, so every version is read into the v1 types.
    fn versions(self) -> &'static [&'static str] {
        match self {
            Kind::ReferenceGrant => &["v1", "v1beta1"],
            Kind::BackendTlsPolicy => &["v1", "v1alpha3"],
            _ => &["v1"],
        }
    }

    /// Optional kinds may be missing (their CRD is not installed): a warning, not an error.
    fn optional(self) -> bool {
        matches!(self, Kind::GrpcRoute | Kind::ReferenceGrant | Kind::BackendTlsPolicy)
    }
}

/// Starts watching. Returns once discovery is done; the receiver reports `synced` after every
/// watch has completed its first list, and the task ends when every receiver is dropped.
///
/// Fails when the API server cannot be asked which Gateway API kinds it serves, or does not
/// serve GatewayClass, Gateway or HTTPRoute (`v1`): the Gateway API CRDs are not installed.
pub async fn spawn(
    client: Client,
    opts: KubeSourceOptions,
) -> anyhow::Result<(SourceReceiver, JoinHandle<()>)> {
    spawn_noting(client, opts, None).await
}

/// As [`spawn`], also noting in `owned_routes` which routes' status holds parent entries we
/// own, before the status is dropped: what the status writer takes out when no computed status
/// covers the route any more.
pub async fn spawn_noting(
    client: Client,
    opts: KubeSourceOptions,
    owned_routes: Option<OwnedRoutes>,
) -> anyhow::Result<(SourceReceiver, JoinHandle<()>)> {
    let (tx, rx) = watch::channel(SourceState::default());
    let task = spawn_into(client, opts, owned_routes, tx).await?;
    Ok((rx, task))
}

/// As [`spawn_noting`], publishing on `tx`: its receivers may wait already, while discovery
/// waits for an API server that does not answer yet (`run`'s pipeline starts first, so that a
/// supervised cloudflared serves the last config written meanwhile). When this fails, `tx` is
/// dropped: the receivers see the source closed.
pub async fn spawn_into(
    client: Client,
    opts: KubeSourceOptions,
    owned_routes: Option<OwnedRoutes>,
    tx: SourceSender,
) -> anyhow::Result<JoinHandle<()>> {
    let mut store = Store::default();
    store.owned_routes = owned_routes;
    let mut streams = SelectAll::new();
    // Discovery is the first request: an API server that cannot be reached yet (a control
    // plane upgrade, a node starting) is waited for, with the watches' back-off, rather than
    // ending the process (whose restarts back off for minutes, with no connector in supervise
    // mode). Not ready meanwhile. A kind that is not served is an answer, not a failure.
    let mut found = Vec::new();
    let mut backoff = RetryBackoff::new(opts.retry_min, opts.retry_max);
    for kind in Kind::ALL {
        loop {
            match discover(&client, kind).await {
                Ok(resource) => {
                    found.push((kind, resource));
                    break;
                }
                Err(e) => {
                    let delay = backoff.next().unwrap_or(opts.retry_max);
                    tracing::warn!(error = format!("{e:#}"), retry_in = ?delay, "the API server cannot be asked which kinds it serves; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
    for (kind, resource) in found {
        match resource {
            Some(resource) => {
                let (stream, watched) = watch_kind(&client, kind, &resource, &opts);
                store.kind_mut(kind).watch = Some(watched);
                streams.push(stream);
            }
            None if kind.optional() => {
                tracing::warn!(kind = kind.name(), "not served by the API server; retrying discovery");
                store.kind_mut(kind).missing = true;
            }
            None => anyhow::bail!(
                "the API server does not serve {} ({}/v1): are the Gateway API CRDs installed?",
                kind.name(),
                kind.group()
            ),
        }
    }
    Ok(tokio::spawn(run(client, opts, store, streams, tx)))
}

type KindEvents = BoxStream<'static, (Kind, Result<Event<DynamicObject>, watcher::Error>)>;

fn watch_kind(
    client: &Client,
    kind: Kind,
    resource: &ApiResource,
    opts: &KubeSourceOptions,
) -> (KindEvents, store::Watched) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let backoff = RetryBackoff::new(opts.retry_min, opts.retry_max);
    let events = watcher::watcher(api, watcher::Config::default()).backoff(backoff);
    // Stopped when the kind is watched at another version, or no longer served.
    let (events, abort) = futures::stream::abortable(events);
    let watched = store::Watched { api_version: resource.api_version.clone(), abort };
    // The stream is !Unpin (RUST-NOTES): boxed, so SelectAll can poll it.
    (events.map(move |event| (kind, event)).boxed(), watched)
}

/// The error of a watch whose resource the API server no longer serves (404): its CRD stopped
/// serving that version (an upgrade dropped `v1beta1`), or was removed.
fn not_served(event: &Result<Event<DynamicObject>, watcher::Error>) -> bool {
    match event {
        Err(
            watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            | watcher::Error::WatchFailed(kube::Error::Api(status)),
        ) => status.code == 404,
        Err(watcher::Error::WatchError(status)) => status.code == 404,
        _ => false,
    }
}

/// The served resource of `kind`, trying its versions in order; `None` when none is served.
async fn discover(client: &Client, kind: Kind) -> anyhow::Result<Option<ApiResource>> {
    for version in kind.versions() {
        let resource = ApiResource {
            group: kind.group().to_string(),
            version: version.to_string(),
            api_version: if kind.group().is_empty() {
                version.to_string()
            } else {
                format!("{}/{version}", kind.group())
            },
            kind: kind.name().to_string(),
            plural: kind.plural().to_string(),
        };
        // The core kinds are always served.
        if kind.group().is_empty() {
            return Ok(Some(resource));
        }
        match client.list_api_group_resources(&resource.api_version).await {
            Ok(list) if list.resources.iter().any(|r| r.name == kind.plural()) => return Ok(Some(resource)),
            Ok(_) => {}
            // The group version itself is not served.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "discovering {} ({})",
                    kind.name(),
                    resource.api_version
                )))
            }
        }
    }
    Ok(None)
}

#[path = "kube_store.rs"]
mod store;
use store::Store;

/// Events ready at once are applied together and published once, so a burst of changes (a
/// re-list of thousands of objects) builds one snapshot, not thousands.
const MAX_BATCH: usize = 4096;

/// Time limit of one periodic discovery request.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

async fn run(
    client: Client,
    opts: KubeSourceOptions,
    mut store: Store,
    mut streams: SelectAll<KindEvents>,
    tx: watch::Sender<SourceState>,
) {
    let mut rediscover = tokio::time::interval(opts.discovery_interval.max(Duration::from_millis(100)));
    rediscover.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    rediscover.reset(); // the first tick would fire at once; discovery just ran
    let hook = opts.on_event.as_ref();
    // Changes not published yet (nothing is, before every kind has listed). A missing optional
    // kind (counted as listed) must still be published once we are synced.
    let mut pending = true;
    loop {
        tokio::select! {
            // (None only when no kind is watched: every optional kind gone, which leaves the
            // required ones; kept for safety rather than ending the source.)
            Some((kind, event)) = streams.next() => {
                // Every event ready now is read (converted) first, outside the channel's lock;
                // then the batch is applied and published at once.
                let mut batch = Vec::new();
                batch.extend(read(&mut store, kind, event, hook));
                for _ in 0..MAX_BATCH {
                    match streams.next().now_or_never() {
                        Some(Some((kind, event))) => batch.extend(read(&mut store, kind, event, hook)),
                        _ => break,
                    }
                }
                commit(&mut store, &tx, &mut pending, &opts, |store, snapshot| {
                    let mut changed = false;
                    for (kind, change) in batch {
                        changed |= store.apply(snapshot, kind, change);
                    }
                    changed
                });
            }
            _ = rediscover.tick(), if store.kinds.iter().any(|k| k.watch.is_none() || k.lost) => {
                watch_found_kinds(&client, &opts, &mut store, &tx, &mut streams, &mut pending).await;
            }
            _ = tx.closed() => return,
        }
    }
}

/// Changes the published snapshot with `change` and, when that or an earlier change is not
/// published yet and every kind has listed, publishes it with a new revision: both in one
/// `send_if_modified`, under the channel's write lock. A reader (woken by this change or by
/// anything else) sees the state before the batch or after it, with its revision, never a
/// batch half applied (a route without the Service it names, which would be rendered, written,
/// and restart cloudflared once more than needed). The lock is held only to move converted
/// objects into place (and, while a render holds the snapshot, to copy it first).
///
/// Before every kind has listed, objects go into the snapshot unpublished: readers see
/// `synced: false`, and nothing is rendered from it.
fn commit(
    store: &mut Store,
    tx: &watch::Sender<SourceState>,
    pending: &mut bool,
    opts: &KubeSourceOptions,
    change: impl FnOnce(&mut Store, &mut Arc<Snapshot>) -> bool,
) {
    let published = tx.send_if_modified(|state| {
        *pending |= change(store, &mut state.snapshot);
        if !(*pending && store.check_synced()) {
            return false;
        }
        *pending = false;
        store.revision += 1;
        state.warnings = store.warnings(opts.discovery_interval);
        state.synced = true;
        state.revision = store.revision;
        true
    });
    if published {
        tracing::debug!(revision = store.revision, "source changed");
    }
}

/// Asks again for the optional kinds that were not served, and watches those that now are;
/// and for the kinds whose watched version stopped being served, which are watched at the
/// version served now, or, optional and served at no version, forgotten (published at once).
async fn watch_found_kinds(
    client: &Client,
    opts: &KubeSourceOptions,
    store: &mut Store,
    tx: &watch::Sender<SourceState>,
    streams: &mut SelectAll<KindEvents>,
    pending: &mut bool,
) {
    let asked: Vec<Kind> = (Kind::ALL.into_iter())
        .filter(|k| store.kinds[*k as usize].watch.is_none() || store.kinds[*k as usize].lost)
        .collect();
    for kind in asked {
        // Bounded: events wait while this runs.
        let found = tokio::time::timeout(DISCOVERY_TIMEOUT, discover(client, kind)).await;
        let found = match found.unwrap_or_else(|_| Err(anyhow::anyhow!("timed out"))) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(kind = kind.name(), error = format!("{e:#}"), "discovery failed");
                continue;
            }
        };
        let state = store.kind_mut(kind);
        let watched = state.watch.as_ref().map(|w| w.api_version.clone());
        state.lost = false;
        match found {
            // Served as watched: the 404 was passing, and the watch retries by itself.
            Some(resource) if Some(&resource.api_version) == watched.as_ref() => {}
            Some(resource) => {
                match &watched {
                    None => {
                        tracing::info!(kind = kind.name(), version = %resource.version, "now served; watching")
                    }
                    Some(old) => tracing::info!(
                        kind = kind.name(),
                        from = %old,
                        to = %resource.api_version,
                        "the watched version is no longer served; watching the one served now"
                    ),
                }
                // The new watch's list replaces the kind's objects in whole when it completes.
                // (`missing` stays set until then, so the warning and the objects change
                // together.)
                let (stream, watched) = watch_kind(client, kind, &resource, opts);
                state.watch = Some(watched); // stops the old watch
                streams.push(stream);
            }
            None if watched.is_none() => {}
            None if kind.optional() => {
                tracing::warn!(
                    kind = kind.name(),
                    "no longer served by the API server; its objects are dropped"
                );
                commit(store, tx, pending, opts, |store, snapshot| store.forget(snapshot, kind));
            }
            None => {
                // Never empty the config for an API problem: the last objects stay, and the
                // watch keeps retrying; asked again at the next discovery.
                tracing::warn!(
                    kind = kind.name(),
                    "not served by the API server any more (are the Gateway API CRDs installed?); keeping the last objects"
                );
                state.lost = true;
            }
        }
    }
}

/// Reads one watch event into the change it makes (converted, not applied yet); `None` for a
/// watch error, which changes nothing.
fn read(
    store: &mut Store,
    kind: Kind,
    event: Result<Event<DynamicObject>, watcher::Error>,
    hook: Option<&EventHook>,
) -> Option<(Kind, store::Change)> {
    match event {
        Ok(event) => Some((kind, store.read(kind, event, hook))),
        // The watcher retries (re-listing after a 410) with back-off; meanwhile the last state
        // stays published: an unreachable API server must not empty the config.
        Err(watcher::Error::WatchError(status)) if status.code == 410 => {
            tracing::info!(kind = kind.name(), "watch expired (410 Gone); listing again");
            None
        }
        Err(e) => {
            tracing::warn!(kind = kind.name(), error = %e, "watch failed; retrying");
            if not_served(&Err(e)) {
                store.kind_mut(kind).lost = true;
            }
            None
        }
    }
}

fn object_key(object: &DynamicObject) -> String {
    let name = object.metadata.name.as_deref().unwrap_or_default();
    match object.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Converts one watched object into the model, or says why it cannot be read.
fn read_object(kind: Kind, object: DynamicObject) -> (String, Result<Object, String>) {
    let key = object_key(&object);
    let DynamicObject { mut metadata, data, .. } = object;
    metadata.managed_fields = None;
    let mut value = data;
    let read = match value.as_object_mut() {
        None => Err("not a JSON object".to_string()),
        Some(map) => {
            // Neither is read by the model, and a status written by another controller must not
            // make the object unreadable; the served apiVersion may be an older one.
            map.remove("status");
            map.remove("apiVersion");
            map.remove("kind");
            match serde_json::to_value(&metadata) {
                Ok(metadata) => {
                    map.insert("metadata".to_string(), metadata);
                    convert_value(kind, value)
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    (key, read)
}

fn convert_value(kind: Kind, value: Value) -> Result<Object, String> {
    fn decode<T: DeserializeOwned>(value: Value) -> Result<T, String> {
        crate::decode::decode(value).map_err(|e| e.to_string())
    }
    Ok(match kind {
        Kind::GatewayClass => Object::GatewayClass(convert::gateway_class(&decode::<GatewayClass>(value)?)),
        Kind::Gateway => Object::Gateway(convert::gateway(&decode::<Gateway>(value)?)),
        Kind::HttpRoute => {
            Object::Route(convert::route(model::RouteKind::Http, value).map_err(|e| e.to_string())?)
        }
        Kind::GrpcRoute => {
            Object::Route(convert::route(model::RouteKind::Grpc, value).map_err(|e| e.to_string())?)
        }
        Kind::ReferenceGrant => {
            Object::ReferenceGrant(convert::reference_grant(&decode::<ReferenceGrant>(value)?))
        }
        Kind::BackendTlsPolicy => {
            Object::BackendTlsPolicy(convert::backend_tls_policy(&decode::<BackendTlsPolicy>(value)?))
        }
        Kind::Service => Object::Service(convert::service(&decode::<Service>(value)?)),
        Kind::Namespace => Object::Namespace(convert::namespace(&decode::<Namespace>(value)?)),
    })
}

/// Exponential back-off with jitter for a failing list or watch.
///
/// The watcher's stream asks for a reset on every successful item, and a watcher that retries
/// a failed list first emits `Event::Init`, a success: taken at its word, a list that keeps
/// failing (a 403, a broken conversion webhook) would be retried at the shortest delay for
/// ever. So a reset counts only once no retry was needed for [`RetryBackoff::quiet`], as
/// client-go resets its back-off after two quiet minutes.
struct RetryBackoff {
    min: Duration,
    max: Duration,
    next: Duration,
    /// When the last delay was handed out.
    last_retry: Option<std::time::Instant>,
}

impl RetryBackoff {
    fn new(min: Duration, max: Duration) -> Self {
        RetryBackoff { min, max: max.max(min), next: min, last_retry: None }
    }

    /// How long without a retry before the delays start again from `min`.
    fn quiet(&self) -> Duration {
        (self.max * 2).max(Duration::from_secs(120))
    }
}

impl Iterator for RetryBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.last_retry = Some(std::time::Instant::now());
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        // Up to 25% less, so that replicas restarted together do not retry in step.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Some(delay.mul_f64(1.0 - f64::from(nanos % 250) / 1000.0))
    }
}

impl kube::runtime::utils::Backoff for RetryBackoff {
    fn reset(&mut self) {
        if self.last_retry.is_none_or(|at| at.elapsed() >= self.quiet()) {
            self.next = self.min;
        }
    }
}

#[cfg(test)]
#[path = "kube_batch_tests.rs"]
mod batch_tests;
#[cfg(test)]
#[path = "kube_tests.rs"]
mod tests;
