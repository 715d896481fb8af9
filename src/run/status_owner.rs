//! Whose route status entries are whose: the parent entries this instance may replace or take
//! out ([`Ownership`]), and the routes whose status holds some, as the Kubernetes source's watch
//! last delivered them ([`OwnedRoutes`]).
//!
//! ```text
//! watch event (HTTPRoute, GRPCRoute) → status.parents holds an entry we own? → OwnedRoutes
//! status writer pass: OwnedRoutes − routes with a computed status → retract our entries
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use routes_core::model::{ObjectRef, RouteKind, GATEWAY_GROUP};
use serde_json::Value;

/// The route parent entries one instance owns: our `controllerName`, and a parentRef naming a
/// Gateway the instance renders.
///
/// With `--gateway`, that is the selection: instances sharing a controller name, one per
/// Gateway (docs/limitations.md), each replace and retract their own entries and leave the
/// others' alone, so a route naming two of those Gateways keeps one entry from each. Without
/// it, the instance renders every Gateway of our classes and owns every entry with our
/// controller name, including those for a Gateway since deleted or given another class, which
/// are taken out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    controller_name: String,
    /// The `--gateway` selection; empty: every Gateway.
    gateways: BTreeSet<ObjectRef>,
}

impl Ownership {
    pub fn new(controller_name: &str, gateways: &[ObjectRef]) -> Self {
        Ownership {
            controller_name: controller_name.to_string(),
            gateways: gateways.iter().cloned().collect(),
        }
    }

    /// Our `status.parents[].controllerName`.
    pub fn controller_name(&self) -> &str {
        &self.controller_name
    }

    /// Whether `parent`, a `status.parents[]` entry of a route in `route_namespace`, is ours.
    /// The parentRef's namespace defaults to the route's, its group and kind to the Gateway's
    /// (Gateway API `ParentReference`).
    pub fn owns(&self, route_namespace: &str, parent: &Value) -> bool {
        if parent["controllerName"].as_str() != Some(self.controller_name.as_str()) {
            return false;
        }
        if self.gateways.is_empty() {
            return true;
        }
        let parent_ref = &parent["parentRef"];
        let group = parent_ref["group"].as_str().unwrap_or(GATEWAY_GROUP);
        let kind = parent_ref["kind"].as_str().unwrap_or("Gateway");
        let Some(name) = parent_ref["name"].as_str() else { return false };
        let namespace = parent_ref["namespace"].as_str().unwrap_or(route_namespace);
        group == GATEWAY_GROUP
            && kind == "Gateway"
            && self.gateways.iter().any(|g| g.namespace == namespace && g.name == name)
    }

    /// Whether a route's `status` holds an entry we own.
    pub fn owns_any(&self, route_namespace: &str, status: &Value) -> bool {
        status["parents"].as_array().into_iter().flatten().any(|p| self.owns(route_namespace, p))
    }
}

/// The routes whose `status.parents` holds an entry we own, as the watch last delivered them,
/// shared by the Kubernetes source (which notes them) and the status writer (which takes out
/// the entries no computed status covers any more, e.g. of a route changed while no replica of
/// ours was leading).
///
/// The source drops every object's `status` on arrival; this keeps only the kind and
/// `namespace/name` of the routes that hold such an entry: no extra API call, and memory in
/// proportion to the routes attached to our Gateways.
#[derive(Clone, Debug)]
pub struct OwnedRoutes {
    ownership: Arc<Ownership>,
    index: Arc<Mutex<Index>>,
}

#[derive(Debug, Default)]
struct Index {
    routes: BTreeSet<(RouteKind, String)>,
    /// A (re-)list in progress per route kind (HTTPRoute, GRPCRoute): swapped in whole when it
    /// completes, so routes deleted while the watch was down leave.
    relist: [Option<BTreeSet<String>>; 2],
}

fn slot(kind: RouteKind) -> usize {
    match kind {
        RouteKind::Http => 0,
        RouteKind::Grpc => 1,
    }
}

impl OwnedRoutes {
    pub fn new(ownership: Ownership) -> Self {
        OwnedRoutes { ownership: Arc::new(ownership), index: Arc::default() }
    }

    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // Every change below leaves the index whole: a panic elsewhere cannot tear it.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes one watch event of routes of `kind`.
    pub fn observe(&self, kind: RouteKind, event: &Event<DynamicObject>) {
        let owned = |object: &DynamicObject| {
            let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
            let key = format!("{namespace}/{}", object.metadata.name.as_deref().unwrap_or_default());
            (key, object.data.get("status").is_some_and(|s| self.ownership.owns_any(namespace, s)))
        };
        let mut index = self.lock();
        match event {
            Event::Init => index.relist[slot(kind)] = Some(BTreeSet::new()),
            Event::InitApply(object) => {
                if let (key, true) = owned(object) {
                    index.relist[slot(kind)].get_or_insert_with(BTreeSet::new).insert(key);
                }
            }
            Event::InitDone => {
                if let Some(listed) = index.relist[slot(kind)].take() {
                    index.routes.retain(|(k, _)| *k != kind);
                    index.routes.extend(listed.into_iter().map(|key| (kind, key)));
                }
            }
            Event::Apply(object) => match owned(object) {
                (key, true) => {
                    index.routes.insert((kind, key));
                }
                (key, false) => {
                    index.routes.remove(&(kind, key));
                }
            },
            Event::Delete(object) => {
                index.routes.remove(&(kind, owned(object).0));
            }
        }
    }

    /// The routes holding an entry we own: kind, namespace, name.
    pub fn routes(&self) -> Vec<(RouteKind, String, String)> {
        let index = self.lock();
        index
            .routes
            .iter()
            .filter_map(|(kind, key)| {
                let (namespace, name) = key.split_once('/')?;
                Some((*kind, namespace.to_string(), name.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "status_owner_tests.rs"]
mod tests;
