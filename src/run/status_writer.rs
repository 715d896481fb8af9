//! Writing status: the thin, leader-gated, time-bounded shell around the statuses the core
//! computed (STYLE.md "Status is a value").
//!
//! ```text
//! Statuses (watch) → changed objects → GET → merge with what is there → same? skip : PATCH /status
//! ```
//!
//! Merging keeps what is not ours (DOMAIN.md §5): other controllers' `status.parents` entries
//! and those of other instances sharing our controller name ([`Ownership`]), and the
//! `lastTransitionTime` of every condition whose status did not change. The PATCH is a JSON
//! merge patch of `status` carrying the `metadata.resourceVersion` that was read: merge patches
//! replace lists whole (so the foreign entries we read go back with ours), and the
//! resourceVersion makes a concurrent writer's change a 409 Conflict, after which we read and
//! merge again, instead of a lost update.
//!
//! Entries of ours on routes no computed status covers any more are taken out: those written
//! during this leadership term, and those the watch saw in the cluster ([`OwnedRoutes`]), which
//! covers routes changed while no replica of ours was leading.
//!
//! A Gateway written during this term that stops being ours (moved to another class, its class
//! deleted) is given back the status of a Gateway no controller has taken, but only if its
//! status is still exactly what we left: a Gateway's status has no per-controller entries, so
//! anything else there is the new controller's, and stays; and only if its GatewayClass, as
//! the API server has it, is not ours (one we cannot decode leaves the snapshot, not us).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::Client;
use routes_core::model::{RouteKind, GATEWAY_GROUP};
use routes_core::status::{GatewayClassStatus, GatewayStatus, RouteStatus, Statuses};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::pipeline::StatusReceiver;

#[path = "status_owner.rs"]
mod owner;
pub use owner::{OwnedRoutes, Ownership};
#[path = "status_merge.rs"]
mod merge;
#[cfg(test)]
use merge::to_json;
use merge::{merged_status, normal, now, patch_body, released_gateway_status, retracted_status, same_status};

/// Field manager of our writes (visible in `managedFields`).
pub const FIELD_MANAGER: &str = "cloudflared-routes";

/// Called with the result of every object's status write, for the status-patches metric:
/// `applied`, `unchanged` (no-op, no PATCH sent), `not_found`, `conflict` (409 on every
/// attempt), `timeout` or `error`.
pub type ResultHook = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct StatusWriterOptions {
    /// `--controller-name` (our `status.parents[].controllerName`) and `--gateway`: the route
    /// parent entries this instance writes and takes out.
    pub ownership: Ownership,
    /// The routes whose status holds entries we own, noted by the Kubernetes source
    /// (`kube::spawn_noting`, with the same [`Ownership`]): the leader takes out those entries
    /// when no computed status covers the route. Without it, only routes written during the
    /// current leadership term are cleaned up.
    pub owned_routes: Option<OwnedRoutes>,
    /// Time limit of each GET or PATCH.
    pub call_timeout: Duration,
    /// When some write failed, try again after this long even if nothing changes.
    pub retry_interval: Duration,
    /// Every object is read again this often even if nothing changed, to repair what the
    /// cache of written statuses cannot see (an object deleted and re-created between two
    /// renders, a status cleared by hand).
    pub resync_interval: Duration,
    pub on_result: Option<ResultHook>,
}

impl StatusWriterOptions {
    pub fn new(controller_name: &str) -> Self {
        StatusWriterOptions {
            ownership: Ownership::new(controller_name, &[]),
            owned_routes: None,
            call_timeout: Duration::from_secs(10),
            retry_interval: Duration::from_secs(10),
            resync_interval: Duration::from_secs(600),
            on_result: None,
        }
    }
}

impl std::fmt::Debug for StatusWriterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriterOptions")
            .field("ownership", &self.ownership)
            .field("owned_routes", &self.owned_routes.is_some())
            .field("call_timeout", &self.call_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("resync_interval", &self.resync_interval)
            .field("on_result", &self.on_result.is_some())
            .finish()
    }
}

/// Writes every change of the pipeline's statuses while `leader` is true (nothing before the
/// first render). The task ends when either sender is dropped (the pipeline stopped, or leader
/// election ended: no more writes).
pub fn spawn_status_writer(
    client: Client,
    statuses: StatusReceiver,
    leader: watch::Receiver<bool>,
    opts: StatusWriterOptions,
) -> JoinHandle<()> {
    let writer = Writer::new(client, opts);
    tokio::spawn(writer.run(statuses, leader))
}

/// One object whose status we write.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    GatewayClass(String),
    Gateway { namespace: String, name: String },
    Route { kind: RouteKind, namespace: String, name: String },
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::GatewayClass(_) => "GatewayClass",
            Target::Gateway { .. } => "Gateway",
            Target::Route { kind, .. } => kind.kind(),
        }
    }

    fn api(&self, client: &Client) -> (Api<DynamicObject>, &str) {
        let (plural, namespace, name) = match self {
            Target::GatewayClass(name) => ("gatewayclasses", None, name),
            Target::Gateway { namespace, name } => ("gateways", Some(namespace), name),
            Target::Route { kind: RouteKind::Http, namespace, name } => ("httproutes", Some(namespace), name),
            Target::Route { kind: RouteKind::Grpc, namespace, name } => ("grpcroutes", Some(namespace), name),
        };
        let resource = ApiResource {
            group: GATEWAY_GROUP.to_string(),
            version: "v1".to_string(),
            api_version: format!("{GATEWAY_GROUP}/v1"),
            kind: self.kind().to_string(),
            plural: plural.to_string(),
        };
        let api = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        (api, name)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::GatewayClass(name) => write!(f, "GatewayClass {name}"),
            Target::Gateway { namespace, name } | Target::Route { namespace, name, .. } => {
                write!(f, "{} {namespace}/{name}", self.kind())
            }
        }
    }
}

/// What the core says one object's status should be (borrowed from the pipeline's report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Desired<'a> {
    GatewayClass(&'a GatewayClassStatus),
    Gateway(&'a GatewayStatus),
    Route(&'a RouteStatus),
}

impl Desired<'_> {
    /// A 64-bit hash of the whole status: what the writer remembers of what it wrote, instead
    /// of a copy of every status (as much memory again as the pipeline's report). Two
    /// different statuses of one object with the same fingerprint (odds of 2^-64 per change)
    /// would skip a write until the next resync.
    fn fingerprint(&self) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }

    /// Whether this status was computed from another object than `object`, or from an older
    /// spec of it (the report that sees the new one is on its way): writing it would put a
    /// stale status on the object, and on a Gateway moved to another class, overwrite what
    /// that class's controller wrote.
    fn is_stale_for(&self, object: &DynamicObject) -> bool {
        let (incarnation, generation) = match self {
            Desired::GatewayClass(c) => (c.incarnation, c.generation),
            Desired::Gateway(g) => (g.incarnation, g.generation),
            Desired::Route(r) => (r.incarnation, r.generation),
        };
        let other = incarnation != 0
            && object.metadata.uid.as_deref().map(crate::convert::incarnation) != Some(incarnation);
        other || object.metadata.generation.is_some_and(|now| now > generation)
    }
}

fn desired(statuses: &Statuses) -> BTreeMap<Target, Desired<'_>> {
    let classes = statuses
        .gateway_classes
        .iter()
        .map(|c| (Target::GatewayClass(c.name.clone()), Desired::GatewayClass(c)));
    let gateways = statuses.gateways.iter().map(|g| {
        (Target::Gateway { namespace: g.namespace.clone(), name: g.name.clone() }, Desired::Gateway(g))
    });
    let routes = statuses.routes.iter().map(|r| {
        let target = Target::Route {
            kind: r.route.kind,
            namespace: r.route.namespace().to_string(),
            name: r.route.name().to_string(),
        };
        (target, Desired::Route(r))
    });
    classes.chain(gateways).chain(routes).collect()
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("conflict on every attempt (409)")]
    Conflict,
    #[error("timed out")]
    Timeout,
    /// Leadership was lost during the write: another replica writes now.
    #[error("no longer the leader")]
    NotLeader,
    #[error(transparent)]
    Api(#[from] kube::Error),
}

impl WriteError {
    fn label(&self) -> &'static str {
        match self {
            WriteError::Conflict => "conflict",
            WriteError::Timeout => "timeout",
            WriteError::NotLeader => "not_leader",
            WriteError::Api(_) => "error",
        }
    }
}

/// What one write does to an object's status.
#[derive(Clone, Copy, Debug)]
enum Action<'a> {
    /// Our part becomes this.
    Write(&'a Desired<'a>),
    /// Our entries go (routes only).
    Retract,
    /// A Gateway no longer ours: back to the CRD's default, if its status is still this
    /// (normalised) one we left, and it names none of these GatewayClasses (ours).
    Release(&'a Value, &'a [&'a str]),
}

#[derive(Debug, PartialEq, Eq)]
enum Written {
    /// With a Gateway's status as it now is, normalised ([`normal`]): what a release compares
    /// with. None for other kinds, which are never released.
    Applied(Option<Value>),
    Unchanged(Option<Value>),
    NotFound,
    /// A released Gateway whose status another writer has changed since ours, or that names
    /// one of our classes again: left alone.
    NotOurs,
    /// Not written: the status was computed from an older spec or another object of that name
    /// ([`Desired::is_stale_for`]). The next report writes it.
    Stale,
    /// A Gateway to release whose GatewayClass, as the API server has it, is still ours: one
    /// the source could not decode (its warning names it), so the Gateway left the snapshot
    /// without leaving us. Left as it is; the next pass asks again.
    Held,
}

/// Attempts per object when another writer keeps changing it under us.
const ATTEMPTS: usize = 3;

struct Writer {
    client: Client,
    opts: StatusWriterOptions,
    /// The objects written (or found already right) during this leadership term, with the
    /// fingerprint of that status: an object whose desired status did not change is not read
    /// again. A resync forgets the fingerprints (`None`: read it again) but keeps the objects,
    /// so a route that stops being ours in the same pass still loses our entries.
    written: BTreeMap<Target, Option<u64>>,
    /// Routes of [`OwnedRoutes`] whose entries were taken out (or found gone) since the last
    /// resync: not read again while the watch has not yet delivered the change.
    retracted: BTreeSet<Target>,
    /// The Gateways written (or found already right) during this term, with their status as
    /// it was then (normalised): released when they stop being ours, if it still is.
    gateways: BTreeMap<Target, Value>,
}

impl Writer {
    fn new(client: Client, opts: StatusWriterOptions) -> Writer {
        Writer {
            client,
            opts,
            written: BTreeMap::new(),
            retracted: BTreeSet::new(),
            gateways: BTreeMap::new(),
        }
    }

    async fn run(mut self, mut statuses: StatusReceiver, mut leader: watch::Receiver<bool>) {
        let mut resync = tokio::time::Instant::now() + self.opts.resync_interval;
        loop {
            let leading = *leader.borrow_and_update();
            let mut failed = false;
            if leading {
                let current = statuses.borrow_and_update().clone();
                if let Some(report) = current {
                    failed = !self.pass(&report.statuses, &leader).await;
                    // The pass's JSON documents are gone: give their pages back.
                    super::memory::release_soon();
                }
            } else {
                // A new term starts from what is in the cluster, not from what we once wrote.
                self.written.clear();
                self.retracted.clear();
                self.gateways.clear();
            }
            tokio::select! {
                changed = statuses.changed() => if changed.is_err() { return },
                changed = leader.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(self.opts.retry_interval), if failed => {}
                _ = tokio::time::sleep_until(resync) => {
                    resync = tokio::time::Instant::now() + self.opts.resync_interval;
                    self.resync();
                }
            }
        }
    }

    /// Every object is read again at its next pass, and every route of [`OwnedRoutes`].
    fn resync(&mut self) {
        self.written.values_mut().for_each(|fingerprint| *fingerprint = None);
        self.retracted.clear();
    }

    /// Writes what changed since the last pass; false when some write failed.
    async fn pass(&mut self, statuses: &Statuses, leader: &watch::Receiver<bool>) -> bool {
        let desired = desired(statuses);
        self.retracted.retain(|target| !desired.contains_key(target));
        let mut ok = true;
        for (target, want) in &desired {
            if !*leader.borrow() {
                return false;
            }
            let fingerprint = want.fingerprint();
            if self.written.get(target) == Some(&Some(fingerprint)) {
                continue;
            }
            match self.write(target, Action::Write(want), leader).await {
                Some(Written::Applied(status) | Written::Unchanged(status)) => {
                    self.written.insert(target.clone(), Some(fingerprint));
                    if let Some(status) = status {
                        self.gateways.insert(target.clone(), status);
                    }
                }
                // Not remembered: if it is created again, its status must be written.
                Some(Written::NotFound | Written::NotOurs) => {
                    self.written.remove(target);
                    self.gateways.remove(target);
                }
                // What the object holds is unchanged: for a Gateway, still what we left. (Only
                // a release is held.)
                Some(Written::Stale | Written::Held) => {
                    self.written.remove(target);
                }
                None => ok = false,
            }
        }
        self.written
            .retain(|target, _| matches!(target, Target::Route { .. }) || desired.contains_key(target));
        // Gateways no longer ours: released. (A GatewayClass no longer ours has been deleted:
        // its controllerName cannot change.)
        let released: Vec<Target> =
            self.gateways.keys().filter(|t| !desired.contains_key(*t)).cloned().collect();
        let classes: Vec<&str> = (desired.keys())
            .filter_map(|t| if let Target::GatewayClass(name) = t { Some(name.as_str()) } else { None })
            .collect();
        for target in released {
            if !*leader.borrow() {
                return false;
            }
            let left = &self.gateways[&target];
            match self.write(&target, Action::Release(left, &classes), leader).await {
                // Still ours: released once its class is gone, or written once it is readable.
                Some(Written::Held) => {}
                Some(_) => {
                    self.gateways.remove(&target);
                }
                None => ok = false,
            }
        }
        // Routes that no longer name one of our Gateways: take our entries out.
        for target in self.to_retract(&desired) {
            if !*leader.borrow() {
                return false;
            }
            if self.write(&target, Action::Retract, leader).await.is_some() {
                self.written.remove(&target);
                self.retracted.insert(target);
            } else {
                ok = false;
            }
        }
        ok
    }

    /// Routes with a status entry of ours that no computed status covers: those written this
    /// term, and those the watch saw holding one (not yet retracted since the last resync).
    fn to_retract(&self, desired: &BTreeMap<Target, Desired<'_>>) -> BTreeSet<Target> {
        let mut gone: BTreeSet<Target> = (self.written.keys())
            .filter(|t| matches!(t, Target::Route { .. }) && !desired.contains_key(t))
            .cloned()
            .collect();
        let seen = self.opts.owned_routes.as_ref().map(OwnedRoutes::routes).unwrap_or_default();
        for (kind, namespace, name) in seen {
            let target = Target::Route { kind, namespace, name };
            if !desired.contains_key(&target) && !self.retracted.contains(&target) {
                gone.insert(target);
            }
        }
        gone
    }

    /// One object's write, reported to the hook and the log; `None` when it failed.
    async fn write(
        &self,
        target: &Target,
        action: Action<'_>,
        leader: &watch::Receiver<bool>,
    ) -> Option<Written> {
        let result = self.write_object(target, action, leader).await;
        if let Err(WriteError::NotLeader) = result {
            // Not a failure of ours: the new leader writes this object.
            tracing::debug!(object = %target, "leadership lost: status write left to the new leader");
            return None;
        }
        let label = match &result {
            Ok(Written::Applied(_)) => "applied",
            Ok(Written::Unchanged(_) | Written::NotOurs | Written::Stale | Written::Held) => "unchanged",
            Ok(Written::NotFound) => "not_found",
            Err(e) => e.label(),
        };
        if let Some(hook) = &self.opts.on_result {
            hook(label);
        }
        match result {
            Ok(written) => {
                tracing::debug!(object = %target, result = label, "status");
                Some(written)
            }
            Err(e) => {
                tracing::warn!(object = %target, error = %e, "status write failed; will retry");
                None
            }
        }
    }

    /// Whether the GatewayClass `name` exists with our `controllerName`, read as the API server
    /// has it (not decoded: one our types cannot read is still ours).
    async fn class_is_ours(&self, name: &str) -> Result<bool, WriteError> {
        let (api, _) = Target::GatewayClass(name.to_string()).api(&self.client);
        let class = tokio::time::timeout(self.opts.call_timeout, api.get_opt(name))
            .await
            .map_err(|_| WriteError::Timeout)??;
        let ours = self.opts.ownership.controller_name();
        Ok(class.is_some_and(|c| c.data["spec"]["controllerName"].as_str() == Some(ours)))
    }

    /// Reads the object and writes its merged status, again after a conflict. Leadership is
    /// checked before each read and each write: a replica deposed meanwhile must not overwrite
    /// what the new leader wrote.
    async fn write_object(
        &self,
        target: &Target,
        action: Action<'_>,
        leader: &watch::Receiver<bool>,
    ) -> Result<Written, WriteError> {
        let (api, name) = target.api(&self.client);
        let limit = self.opts.call_timeout;
        let leading = || if *leader.borrow() { Ok(()) } else { Err(WriteError::NotLeader) };
        for _ in 0..ATTEMPTS {
            leading()?;
            let object =
                tokio::time::timeout(limit, api.get_opt(name)).await.map_err(|_| WriteError::Timeout)??;
            let Some(object) = object else { return Ok(Written::NotFound) };
            let current = object.data.get("status").cloned().unwrap_or(Value::Null);
            let ours = &self.opts.ownership;
            // Only a Gateway's is kept: normalising every route's status would be work for nothing.
            let kept = |status: &Value| matches!(target, Target::Gateway { .. }).then(|| normal(status));
            let class = object.data["spec"]["gatewayClassName"].as_str().unwrap_or_default();
            let merged = match (action, target) {
                (Action::Write(want), _) if want.is_stale_for(&object) => return Ok(Written::Stale),
                (Action::Write(want), _) => merged_status(want, &current, ours, &now()),
                (Action::Retract, Target::Route { namespace, .. }) => {
                    retracted_status(&current, ours, namespace)
                }
                (Action::Release(left, classes), Target::Gateway { .. })
                    if normal(&current) == *left && !classes.contains(&class) =>
                {
                    if self.class_is_ours(class).await? {
                        return Ok(Written::Held);
                    }
                    released_gateway_status(&current, &now())
                }
                (Action::Release(..), _) => return Ok(Written::NotOurs),
                // Only routes are ever retracted.
                (Action::Retract, _) => return Ok(Written::Unchanged(kept(&current))),
            };
            if same_status(&current, &merged) {
                return Ok(Written::Unchanged(kept(&current)));
            }
            let resource_version = object.metadata.resource_version.unwrap_or_default();
            let patch = Patch::Merge(patch_body(&current, merged, &resource_version));
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..Default::default() };
            leading()?;
            match tokio::time::timeout(limit, api.patch_status(name, &params, &patch)).await {
                Err(_) => return Err(WriteError::Timeout),
                // The status as the API server stored it: what a release compares with.
                Ok(Ok(stored)) => return Ok(Written::Applied(kept(&stored.data["status"]))),
                Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                    tracing::debug!(object = %target, "status changed under us (409); reading it again");
                }
                Ok(Err(kube::Error::Api(status))) if status.code == 404 => return Ok(Written::NotFound),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        Err(WriteError::Conflict)
    }
}

#[cfg(test)]
#[path = "status_writer_tests.rs"]
mod tests;
