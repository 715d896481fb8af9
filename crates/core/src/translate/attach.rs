//! Route attachment: which of our listeners a parentRef reaches, and with which hostnames.
//!
//! Gateway API: a parentRef names a Gateway (group `gateway.networking.k8s.io`, kind `Gateway`
//! by default), optionally one listener by `sectionName` and/or `port` (both must match when
//! both are set). The route attaches to every such listener that allows its namespace
//! (`allowedRoutes.namespaces.from`: Same, All, Selector) and its kind, and whose hostname
//! intersects the route's hostnames.

use smallvec::SmallVec;

use crate::hostname::{intersect, Hostname};
use crate::model::{ParentRef, Route, RouteNamespaces, GATEWAY_GROUP};

use super::gateways::{GatewayView, ListenerView};
use super::index::Index;
use super::Reason;

/// One parentRef of a route that names a Gateway we own.
pub(crate) struct ParentOutcome<'r> {
    pub index: usize,
    pub parent_ref: &'r ParentRef,
    pub gateway: usize,
    /// The listeners reached and the hostnames the route takes on each, or why none.
    pub result: Result<Attachments<'r>, (Reason, String)>,
}

/// Inline: a parentRef usually reaches one or two listeners, with one or two hostnames, and
/// these are made for every route on every translation.
pub(crate) type Attachments<'r> = SmallVec<[Attachment<'r>; 2]>;
pub(crate) type Outcomes<'r> = SmallVec<[ParentOutcome<'r>; 1]>;

/// The route on one listener: `hostnames` are the intersections (`None` = every host), each
/// the listener's hostname or one of the route's.
#[derive(Clone, Debug)]
pub(crate) struct Attachment<'r> {
    pub listener: usize,
    pub hostnames: SmallVec<[Option<&'r Hostname>; 2]>,
}

/// The parentRefs of `route` that name one of `gateways`, in parentRef order. Those naming
/// other Gateways (or other kinds) are not ours: no status entry, no rules.
#[inline(never)]
pub(crate) fn resolve<'r>(
    route: &'r Route,
    hostnames: &'r [Hostname],
    gateways: &'r [GatewayView<'_>],
    index: &Index<'_>,
) -> Outcomes<'r> {
    let mut outcomes = Outcomes::new();
    for (i, parent_ref) in route.parent_refs.iter().enumerate() {
        let group = parent_ref.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = parent_ref.kind.as_deref().unwrap_or("Gateway");
        if group != GATEWAY_GROUP || kind != "Gateway" {
            continue;
        }
        let namespace = parent_ref.namespace.as_deref().unwrap_or(&route.meta.namespace);
        let Some(g) =
            gateways.iter().position(|g| g.id.namespace == namespace && *g.id.name == *parent_ref.name)
        else {
            continue;
        };
        let result = attach(route, parent_ref, hostnames, &gateways[g], index);
        outcomes.push(ParentOutcome { index: i, parent_ref, gateway: g, result });
    }
    outcomes
}

fn attach<'r>(
    route: &Route,
    parent_ref: &ParentRef,
    hostnames: &'r [Hostname],
    gateway: &'r GatewayView<'_>,
    index: &Index<'_>,
) -> Result<Attachments<'r>, (Reason, String)> {
    // A Gateway refused for its requested addresses has no usable listener at all; one with
    // only invalid listeners is answered listener by listener below (NotAllowedByListeners).
    if let Some(("UnsupportedAddress", message)) = &gateway.rejected {
        return Err((Reason::NoMatchingParent, format!("Gateway {} is not accepted: {message}", gateway.id)));
    }
    let named = || {
        gateway
            .listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| parent_ref.section_name.as_ref().is_none_or(|s| **s == *l.listener.name))
            .filter(|(_, l)| parent_ref.port.is_none_or(|p| p == l.listener.port))
    };
    // One pass for the usual answer; the errors below walk the listeners again to say why.
    let (mut any_named, mut any_allowed) = (false, false);
    let mut attachments = Attachments::new();
    for (i, l) in named() {
        any_named = true;
        if allows(route, gateway, l, index).is_err() {
            continue;
        }
        any_allowed = true;
        let mut taken: SmallVec<[Option<&Hostname>; 2]> = if hostnames.is_empty() {
            smallvec::smallvec![l.hostname.as_ref()]
        } else {
            hostnames.iter().filter_map(|h| intersect(l.hostname.as_ref(), h)).map(Some).collect()
        };
        if taken.len() > 1 {
            taken.sort();
            taken.dedup();
        }
        if !taken.is_empty() {
            attachments.push(Attachment { listener: i, hostnames: taken });
        }
    }
    if !any_named {
        let wanted = match (&parent_ref.section_name, parent_ref.port) {
            (Some(s), Some(p)) => format!("named {s:?} on port {p}"),
            (Some(s), None) => format!("named {s:?}"),
            (None, Some(p)) => format!("on port {p}"),
            (None, None) => "at all".to_string(),
        };
        return Err((Reason::NoMatchingParent, format!("Gateway {} has no listener {wanted}", gateway.id)));
    }
    if !any_allowed {
        let refusals: Vec<String> = named()
            .filter_map(|(_, l)| allows(route, gateway, l, index).err().map(|why| (l, why)))
            .map(|(l, why)| format!("listener {:?} {why}", l.listener.name))
            .collect();
        return Err((Reason::NotAllowedByListeners, refusals.join("; ")));
    }
    if attachments.is_empty() {
        let listed: Vec<String> = named()
            .filter(|(_, l)| allows(route, gateway, l, index).is_ok())
            .map(|(_, l)| format!("{:?}", l.hostname.as_ref().map_or("*".to_string(), Hostname::as_string)))
            .collect();
        return Err((
            Reason::NoMatchingListenerHostname,
            format!("No route hostname intersects the listener hostnames {}", listed.join(", ")),
        ));
    }
    Ok(attachments)
}

/// Does this listener accept this route (its protocol is ours, its kind and its namespace)?
fn allows(
    route: &Route,
    gateway: &GatewayView<'_>,
    l: &ListenerView<'_>,
    index: &Index<'_>,
) -> Result<(), String> {
    if let Some((_, message)) = &l.rejected {
        return Err(format!("is not accepted: {message}"));
    }
    if !l.kinds.contains(&route.kind) {
        return Err(format!("does not allow kind {}", route.kind));
    }
    let route_ns = &route.meta.namespace;
    match &l.listener.allowed_routes.namespaces {
        RouteNamespaces::All => Ok(()),
        RouteNamespaces::Same if *route_ns == gateway.id.namespace => Ok(()),
        RouteNamespaces::Same => {
            Err(format!("allows routes from namespace {:?} only (from: Same)", gateway.id.namespace))
        }
        RouteNamespaces::Selector(selector) if selector.matches(&index.namespace_labels(route_ns)) => Ok(()),
        RouteNamespaces::Selector(_) => {
            Err(format!("does not select namespace {route_ns:?} (from: Selector)"))
        }
    }
}
