//! Route attachment: which of our listeners a parentRef reaches, and with which hostnames.
//!
//! Gateway API: a parentRef names a Gateway (group `gateway.networking.k8s.io`, kind `Gateway`
//! by default), optionally one listener by `sectionName` and/or `port` (both must match when
//! both are set). The route attaches to every such listener that allows its namespace
//! (`allowedRoutes.namespaces.from`: Same, All, Selector) and its kind, and whose hostname
//! intersects the route's hostnames.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::hostname::{intersect, Hostname};
use crate::model::{ParentRef, Route, RouteNamespaces, GATEWAY_GROUP};

use super::gateways::{GatewayView, ListenerView};
use super::hosts::Short;
use super::index::Index;
use super::Reason;

/// One parentRef of a route that names a Gateway we own.
pub(crate) struct ParentOutcome<'r> {
    pub index: usize,
    /// The parentRef as the status holds it: one copy per distinct parentRef of the
    /// translation ([`Attacher`]), shared by every route that writes it. The status takes it
    /// (`None` after): moved, not counted up once more and down again.
    pub shared: Option<Arc<ParentRef>>,
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

/// What a parentRef reaches for the routes of one kind and namespace (a group of
/// [`super::status::names`]): all that attachment decides without the route's hostnames.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reach {
    /// Not worked out yet.
    Unknown,
    /// Another kind of parent, or a Gateway that is not ours.
    NotOurs,
    /// The Gateway at this place among ours, and the listeners the parentRef names that allow
    /// the route's kind and namespace (bit `i`: listener `i`), at least one.
    Listeners { gateway: usize, allowed: u64 },
    /// The Gateway at this place, where the route is refused whatever its hostnames (the
    /// Gateway's addresses, no listener named, none allowing it), or which has more listeners
    /// than a mask holds: [`attach`] answers, and says why.
    Each { gateway: usize },
}

/// One distinct parentRef of the translation, and what it reaches per group.
struct Known {
    parent_ref: Arc<ParentRef>,
    /// By group, [`Reach::Unknown`] until a route of the group writes the parentRef.
    reach: Vec<Reach>,
}

/// Route attachment for a translation. Routes mostly write the same one or two parentRefs, and
/// whether a parentRef names one of our Gateways, which of its listeners it names and which of
/// those allow the route depend only on the parentRef and the route's kind and namespace: the
/// first [`Attacher::KEPT`] distinct parentRefs are kept with that answer per group, so a route
/// finds its parentRef among them, then intersects its hostnames with the listeners given,
/// and nothing else. The kept copy is also the one the statuses share
/// ([`ParentOutcome::shared`]): the parentRef is compared once per route, not once more there.
pub(crate) struct Attacher<'g, 'a> {
    gateways: &'g [GatewayView<'a>],
    index: &'g Index<'a>,
    groups: usize,
    known: Vec<Known>,
}

impl<'g, 'a> Attacher<'g, 'a> {
    /// The distinct parentRefs kept, so that finding one stays a short search whatever the
    /// routes write (other Gateways, `sectionName`s, ports, spellings of the defaults). A
    /// parentRef past them takes the general path, and its status a copy of its own.
    const KEPT: usize = 8;

    /// For routes whose groups are below `groups`.
    pub fn new(gateways: &'g [GatewayView<'a>], index: &'g Index<'a>, groups: usize) -> Self {
        Attacher { gateways, index, groups, known: Vec::new() }
    }

    /// The parentRefs of `route` (of `group`) that name one of our Gateways, in parentRef order,
    /// each with what it reaches, in `outcomes` (emptied first: one buffer serves every route,
    /// and each outcome is made where it stays rather than moved there). Those naming other
    /// Gateways (or other kinds) are not ours: no status entry, no rules.
    pub fn resolve<'r>(
        &mut self,
        route: &'r Route,
        group: u32,
        hostnames: &[&'r Hostname],
        outcomes: &mut Outcomes<'r>,
    ) where
        'g: 'r,
    {
        outcomes.clear();
        for (i, parent_ref) in route.parent_refs.iter().enumerate() {
            let (reach, shared) =
                match self.known.iter().position(|k| same_parent_ref(&k.parent_ref, parent_ref)) {
                    Some(k) => (self.reach(k, route, group), Arc::clone(&self.known[k].parent_ref)),
                    None if self.known.len() < Self::KEPT => {
                        let shared = Arc::new(parent_ref.clone());
                        let reach = vec![Reach::Unknown; self.groups];
                        self.known.push(Known { parent_ref: Arc::clone(&shared), reach });
                        (self.reach(self.known.len() - 1, route, group), shared)
                    }
                    None => match parent_gateway(route, parent_ref, self.gateways) {
                        Some(gateway) => (Reach::Each { gateway }, Arc::new(parent_ref.clone())),
                        None => continue,
                    },
                };
            match reach {
                Reach::NotOurs | Reach::Unknown => continue,
                Reach::Listeners { gateway, allowed } => {
                    let result = Ok(Attachments::new());
                    outcomes.push(ParentOutcome { index: i, shared: Some(shared), gateway, result });
                    let outcome = outcomes.last_mut().expect("just pushed");
                    let g = &self.gateways[gateway];
                    if let Ok(attachments) = &mut outcome.result {
                        attach_allowed(allowed, hostnames, g, attachments);
                        if attachments.is_empty() {
                            outcome.result = attach(route, parent_ref, hostnames, g, self.index);
                        }
                    }
                }
                Reach::Each { gateway } => {
                    let result = attach(route, parent_ref, hostnames, &self.gateways[gateway], self.index);
                    outcomes.push(ParentOutcome { index: i, shared: Some(shared), gateway, result });
                }
            }
        }
    }

    /// What the known parentRef `k` reaches for `route`'s group, worked out on first use.
    #[inline]
    fn reach(&mut self, k: usize, route: &Route, group: u32) -> Reach {
        match self.known[k].reach[group as usize] {
            Reach::Unknown => self.work_out(k, route, group),
            known => known,
        }
    }

    /// [`Attacher::reach`] the first time.
    #[cold]
    fn work_out(&mut self, k: usize, route: &Route, group: u32) -> Reach {
        let known = &mut self.known[k];
        let reach = match parent_gateway(route, &known.parent_ref, self.gateways) {
            None => Reach::NotOurs,
            Some(gateway) => allowed(route, &known.parent_ref, &self.gateways[gateway], self.index)
                .map_or(Reach::Each { gateway }, |allowed| Reach::Listeners { gateway, allowed }),
        };
        known.reach[group as usize] = reach;
        reach
    }
}

/// `a == b`, with the Gateway's namespace and name (short texts) compared as [`Short`] ones:
/// every route's parentRefs are compared with the kept ones ([`Attacher`]), each with texts
/// of its own. Every field is named (no `..`): a field added to `ParentRef` does not compile
/// until it is compared here too.
fn same_parent_ref(a: &ParentRef, b: &ParentRef) -> bool {
    let ParentRef { group, kind, namespace, name, section_name, port } = a;
    *port == b.port
        && Short(name) == Short(&b.name)
        && namespace.as_deref().map(Short) == b.namespace.as_deref().map(Short)
        && *section_name == b.section_name
        && *group == b.group
        && *kind == b.kind
}

/// The place among `gateways` of the Gateway `parent_ref` (of `route`) names, if it names one
/// of ours.
pub(super) fn parent_gateway(
    route: &Route,
    parent_ref: &ParentRef,
    gateways: &[GatewayView<'_>],
) -> Option<usize> {
    let group = parent_ref.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent_ref.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return None;
    }
    let namespace = parent_ref.namespace.as_deref().unwrap_or(&route.meta.namespace);
    gateways.iter().position(|g| g.id.namespace == namespace && *g.id.name == *parent_ref.name)
}

/// The listeners of `gateway` that `parent_ref` names and that allow `route` (by its kind and
/// namespace), as a mask; `None` when [`attach`] would refuse the route whatever its
/// hostnames, or the Gateway has more listeners than the mask holds.
fn allowed(
    route: &Route,
    parent_ref: &ParentRef,
    gateway: &GatewayView<'_>,
    index: &Index<'_>,
) -> Option<u64> {
    if gateway.rejected.as_ref().is_some_and(|(reason, _)| *reason == "UnsupportedAddress")
        || gateway.listeners.len() > 64
    {
        return None;
    }
    let mut mask = 0u64;
    for (i, l) in named(parent_ref, gateway) {
        if allows(route, gateway, l, index).is_ok() {
            mask |= 1 << i;
        }
    }
    (mask != 0).then_some(mask)
}

/// The listeners of `gateway` that `parent_ref` names (by `sectionName` and `port`), with
/// their places.
pub(super) fn named<'p, 'g, 'l>(
    parent_ref: &'p ParentRef,
    gateway: &'g GatewayView<'l>,
) -> impl Iterator<Item = (usize, &'g ListenerView<'l>)> + use<'p, 'g, 'l> {
    gateway
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| parent_ref.section_name.as_ref().is_none_or(|s| **s == *l.listener.name))
        .filter(|(_, l)| parent_ref.port.is_none_or(|p| p == l.listener.port))
}

/// The route's attachments to the listeners of `allowed` (a mask of [`Reach::Listeners`]),
/// added to `attachments`: on each, the hostnames it takes there; a listener where it takes
/// none is left out.
fn attach_allowed<'r>(
    allowed: u64,
    hostnames: &[&'r Hostname],
    gateway: &'r GatewayView<'_>,
    attachments: &mut Attachments<'r>,
) {
    let mut rest = allowed;
    while rest != 0 {
        let i = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        if let Some(hostnames) = taken(gateway.listeners[i].hostname.as_ref(), hostnames) {
            attachments.push(Attachment { listener: i, hostnames });
        }
    }
}

/// The hostnames a route with `hostnames` takes on a listener with `listener` (none: every
/// host), each once, sorted; `None` when it takes none.
///
/// Inline: it runs for every route on every listener its parentRef reaches, and most routes
/// have one hostname, where the answer is one [`intersect`]; called, it returned its list
/// through memory, for the caller to copy once more.
#[inline(always)]
fn taken<'r>(
    listener: Option<&'r Hostname>,
    hostnames: &[&'r Hostname],
) -> Option<SmallVec<[Option<&'r Hostname>; 2]>> {
    let mut taken: SmallVec<[Option<&Hostname>; 2]> = match hostnames {
        [] => smallvec::smallvec![listener],
        // Most routes have one: nothing to gather, sort or repeat.
        [one] => return intersect(listener, one).map(|h| smallvec::smallvec![Some(h)]),
        _ => hostnames.iter().filter_map(|h| intersect(listener, h)).map(Some).collect(),
    };
    if taken.len() > 1 {
        taken.sort();
        taken.dedup();
    }
    (!taken.is_empty()).then_some(taken)
}

fn attach<'r>(
    route: &Route,
    parent_ref: &ParentRef,
    hostnames: &[&'r Hostname],
    gateway: &'r GatewayView<'_>,
    index: &Index<'_>,
) -> Result<Attachments<'r>, (Reason, String)> {
    // A Gateway refused for its requested addresses has no usable listener at all; one with
    // only invalid listeners is answered listener by listener below (NotAllowedByListeners).
    if let Some(("UnsupportedAddress", message)) = &gateway.rejected {
        return Err((Reason::NoMatchingParent, format!("Gateway {} is not accepted: {message}", gateway.id)));
    }
    let named = || named(parent_ref, gateway);
    // One pass for the usual answer; the errors below walk the listeners again to say why.
    let (mut any_named, mut any_allowed) = (false, false);
    let mut attachments = Attachments::new();
    for (i, l) in named() {
        any_named = true;
        if allows(route, gateway, l, index).is_err() {
            continue;
        }
        any_allowed = true;
        if let Some(hostnames) = taken(l.hostname.as_ref(), hostnames) {
            attachments.push(Attachment { listener: i, hostnames });
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

#[cfg(test)]
#[path = "attach_tests.rs"]
mod tests;
