//! `translate(&Snapshot, &Settings) -> Translation`: the ordered ingress rules and the status
//! of every object we own. Pure: the same snapshot, in any order, gives the same result.

mod attach;
mod backends;
mod claims;
mod gateways;
mod hosts;
mod index;
mod order;
mod rules;
mod status;
mod walk;

use smallvec::SmallVec;

use crate::hostname::{self, Hostname};
use crate::ingress::{IngressRules, RouteName, RuleSource};
use crate::model::{ObjectRef, Route, RouteKind, Snapshot};
use crate::status::{Programmed, Statuses};

pub use gateways::SUPPORTED_FEATURES;

/// The default `--controller-name`: GatewayClasses with this `spec.controllerName` are ours.
pub const DEFAULT_CONTROLLER_NAME: &str = "cloudflared-routes/gateway-controller";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub controller_name: String,
    /// Only these Gateways (one config is one tunnel); empty: every Gateway of our classes.
    pub gateways: Vec<ObjectRef>,
    pub cluster_domain: String,
    /// For the Gateway address `<TunnelID>.cfargotunnel.com`.
    pub tunnel_id: Option<String>,
    pub grpc_backend_tls: GrpcBackendTls,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            controller_name: DEFAULT_CONTROLLER_NAME.to_string(),
            gateways: Vec::new(),
            cluster_domain: "cluster.local".to_string(),
            tunnel_id: None,
            grpc_backend_tls: GrpcBackendTls::Insecure,
        }
    }
}

/// How cloudflared checks the TLS certificate of gRPC backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GrpcBackendTls {
    /// `noTLSVerify: true` on gRPC rules: in-cluster gRPC servers rarely have a certificate a
    /// public CA signed; the traffic still stays inside the cluster network.
    #[default]
    Insecure,
    /// Emit nothing: the base config supplies `caPool` (and `originServerName`).
    Verify,
}

/// Status reasons, doubling as the reason of a rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    NoMatchingParent,
    NotAllowedByListeners,
    NoMatchingListenerHostname,
    UnsupportedValue,
    /// Gateway API defines no reason for the route that loses an HTTPRoute/GRPCRoute hostname
    /// conflict; `Conflicted` is what implementations use.
    Conflicted,
    BackendNotFound,
    InvalidKind,
    RefNotPermitted,
    UnsupportedProtocol,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoMatchingParent => "NoMatchingParent",
            Reason::NotAllowedByListeners => "NotAllowedByListeners",
            Reason::NoMatchingListenerHostname => "NoMatchingListenerHostname",
            Reason::UnsupportedValue => "UnsupportedValue",
            Reason::Conflicted => "Conflicted",
            Reason::BackendNotFound => "BackendNotFound",
            Reason::InvalidKind => "InvalidKind",
            Reason::RefNotPermitted => "RefNotPermitted",
            Reason::UnsupportedProtocol => "UnsupportedProtocol",
        }
    }
}

/// Something of a route that is not rendered, with the object, the field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// `HTTPRoute default/web`.
    pub object: String,
    /// `spec.rules[1].matches[0].headers`.
    pub field: String,
    pub reason: Reason,
    pub message: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {} ({})", self.object, self.field, self.message, self.reason.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The generated rules in first-match order. No final catch-all unless a route matches
    /// every request (then it is the last rule): rendering appends the base config's rules and
    /// the catch-all.
    pub rules: IngressRules,
    pub statuses: Statuses,
    /// Some GRPCRoute rule was rendered: cloudflared needs `protocol: http2`.
    pub uses_grpc: bool,
    /// Routes and rules not rendered, and why.
    pub rejections: Vec<Rejection>,
    /// The backendRefs of our routes that cannot be used, and why: a rule left without any
    /// serves `http_status:500` (503 for gRPC), which the config alone does not explain.
    pub unresolved_backends: Vec<Rejection>,
    /// Rules left out because an earlier rule serves all their traffic: (rule, shadowed by).
    pub shadowed: Vec<(RuleSource, RuleSource)>,
    /// Other facts worth a line in the summary (collapsed weights).
    pub notes: Vec<String>,
    pub routes_accepted: usize,
    pub routes_rejected: usize,
}

/// The rules of an accepted route: each of its matches on each hostname it takes on each
/// listener it is attached to, with the route's shared parts.
///
/// A hostname the route also takes through a more specific listener (or through another
/// listener with the same hostname) gets no rules here: they would repeat, in a later
/// listener block, the rules that block already has, so they could never serve a request,
/// and reporting them as unreachable would only say the route is shadowed by itself.
///
/// The route's matches are at `from..` in `candidates`, pending
/// ([`order::Candidates::push_pending`]): the first (listener, hostname) takes them where they
/// are, each further one gets a copy, and a route with none has them dropped.
fn add_rules<'a>(
    candidates: &mut order::Candidates,
    hosts: &mut order::HostIds<'a>,
    listeners: &[Vec<ListenerKey>],
    outcomes: &[attach::ParentOutcome<'a>],
    from: usize,
) {
    // (listener's place, its hostname's id, route hostname id) of every attachment.
    let mut pairs: SmallVec<[(u32, u32, u32); 4]> = SmallVec::new();
    for outcome in outcomes {
        let Ok(attachments) = &outcome.result else { continue };
        for a in attachments {
            let ListenerKey { place, id } = listeners[outcome.gateway][a.listener];
            // Pushed one at a time: `extend` reserves by the size hint first, costing more
            // than the push of the one hostname most attachments have.
            for h in &a.hostnames {
                pairs.push((place, id, hosts.id(*h)));
            }
        }
    }
    // A pair is repeated by another with the same route hostname on a more specific listener,
    // or on one of the same place and before it. (One pair, the common route, repeats none.)
    // The pairs kept go to `place_each` as they are found: no list of them is made.
    let kept = pairs.iter().enumerate().filter(|(i, &(place, _, host))| {
        !pairs
            .iter()
            .enumerate()
            .any(|(j, other)| j != *i && other.2 == host && (other.0 < place || (other.0 == place && j < *i)))
    });
    // The hostname and path are given in `order::finish`, to the rules it keeps.
    candidates.place_each(from, kept.map(|(_, &(_, id, host))| (id, host)));
}

impl Translation {
    /// The route rules left out as unreachable, one line each: `HTTPRoute ns/a rule 0 match 0
    /// (by HTTPRoute ns/b rule 1 match 0)`. Fences left out are not listed: nobody wrote them.
    pub fn unreachable(&self) -> impl Iterator<Item = String> + '_ {
        self.shadowed
            .iter()
            .filter(|(source, _)| matches!(source, RuleSource::Route { .. }))
            .map(|(source, by)| format!("{source} (by {by})"))
    }
}

/// What [`add_rules`] needs of a listener, worked out once per translation: its place in
/// [`hostname::listener_cmp`] order (the same for the same hostname) and its hostname's id.
#[derive(Clone, Copy)]
struct ListenerKey {
    place: u32,
    id: u32,
}

fn listener_keys<'a>(
    gateways: &'a [gateways::GatewayView<'_>],
    hosts: &mut order::HostIds<'a>,
) -> Vec<Vec<ListenerKey>> {
    let mut order: Vec<Option<&Hostname>> =
        gateways.iter().flat_map(|g| g.listeners.iter().map(|l| l.hostname.as_ref())).collect();
    order.sort_by(|a, b| hostname::listener_cmp(*a, *b));
    order.dedup();
    gateways
        .iter()
        .map(|g| {
            g.listeners
                .iter()
                .map(|l| {
                    let h = l.hostname.as_ref();
                    let place = order.partition_point(|x| hostname::listener_cmp(*x, h).is_lt()) as u32;
                    ListenerKey { place, id: hosts.id(h) }
                })
                .collect()
        })
        .collect()
}

/// Whether `snapshot` holds a Gateway that [`translate`] renders: one of a GatewayClass of
/// ours, and named by `settings.gateways` when that is given.
pub fn renders_a_gateway(snapshot: &Snapshot, settings: &Settings) -> bool {
    let classes = gateways::our_classes(snapshot, settings);
    !gateways::our_gateways(snapshot, &classes, settings).is_empty()
}

/// `HTTPRoute ns/name`: how rejections and notes name a route.
fn object_name(route: &Route) -> String {
    format!("{} {}", route.kind, route.meta.key())
}

#[cfg(test)]
thread_local! {
    /// For the tests, on their own thread: check every route for HTTPRoute/GRPCRoute conflicts,
    /// walking them all oldest first, whenever both kinds exist, even those that
    /// [`claims::may_conflict`] finds cannot conflict, to compare the two. Not in other builds.
    static CHECK_EVERY_CONFLICT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub fn translate(snapshot: &Snapshot, settings: &Settings) -> Translation {
    #[cfg(test)]
    let check_every_conflict = CHECK_EVERY_CONFLICT.with(std::cell::Cell::get);
    #[cfg(not(test))]
    let check_every_conflict = false;
    let index = index::Index::new(snapshot);
    let classes = gateways::our_classes(snapshot, settings);
    let gateways = gateways::our_gateways(snapshot, &classes, settings);
    let mut notes = gateways::unrendered_selection(snapshot, &classes, settings);

    // Conflicts need both kinds, and hostnames of the two that can overlap: only the routes
    // that have such hostnames claim theirs and are checked, walked oldest first after the
    // others (claiming every hostname of every route would be wasted work).
    // (The tests' switch first: outside tests it is `false`, and the kinds are not counted.)
    let both_kinds =
        || [RouteKind::Http, RouteKind::Grpc].iter().all(|k| snapshot.routes.iter().any(|r| r.kind == *k));
    let may_conflict = if check_every_conflict && both_kinds() {
        vec![true; snapshot.routes.len()]
    } else {
        claims::may_conflict(&snapshot.routes, &gateways)
    };
    let (routes, ages, checked_from) = walk::walk_order(&snapshot.routes, &may_conflict);
    drop(may_conflict);

    // Each route's namespace and name, the place of its status in identity order, and its
    // hostnames, each distinct one parsed once and borrowed by the attachments.
    // A hostname per route, as most routes have: more make the table grow.
    let mut route_hosts = hosts::RouteHosts::with_capacity(routes.len());
    let (names, parsed) = status::names(&routes, |route| route_hosts.parse(route));

    let mut route_statuses = status::InPlace::new(routes.len());
    let mut rejections = Vec::new();
    let mut unresolved_backends = Vec::new();
    let (mut routes_accepted, mut routes_rejected) = (0, 0);
    let mut claims = claims::Claims::default();
    let mut resolver = backends::Resolver::new(&index, settings);
    // Reused from route to route.
    let mut out = rules::RouteOut::default();
    // At least one rule per route rule (each has a match), plus the fences; `add_rules` makes
    // room for more. Counting the matches would read every rule of every route once more.
    let route_rules: usize = routes.iter().map(|r| r.rules.len()).sum();
    let mut candidates = order::Candidates::with_capacity(route_rules + 64);
    // Room for a path of 24 bytes per route rule (`^/api(?:/.*)?$` is 14): the string of all
    // the paths then rarely grows, a copy of it each time; `order::finish` gives back the rest.
    let mut paths = String::with_capacity(route_rules * 24);
    // At most every listener's and every route's hostname, and "none": the table never grows.
    let most_hosts = gateways.iter().map(|g| g.listeners.len()).sum::<usize>() + route_hosts.parsed.len() + 1;
    let mut hosts = order::HostIds::with_capacity(most_hosts);
    candidates.reserve_hosts(most_hosts);
    let listeners = listener_keys(&gateways, &mut hosts);
    hosts.add_routes(&route_hosts.parsed);

    let status::Names { text: names_text, routes: names, namespaces } = names;
    let mut attacher = attach::Attacher::new(&gateways, &index, namespaces.len());
    // Every route's hostnames, each route's a range of them.
    let route_hostnames = route_hosts.all();
    let mut outcomes = attach::Outcomes::new();
    for ((((walked, route), age), hostnames), status::RouteNames { name, group, place }) in
        routes.into_iter().enumerate().zip(ages).zip(parsed).zip(names)
    {
        // Whether this route may conflict: it is checked, and claims its hostnames.
        let conflicts = walked >= checked_from;
        let hostnames_ok: &[&Hostname] = match hostnames {
            Ok((from, to)) => &route_hostnames[from as usize..to as usize],
            Err(_) => &[],
        };
        attacher.resolve(route, group, hostnames_ok, &mut outcomes);
        if outcomes.is_empty() {
            continue; // not ours
        }
        // A hostname the schema refuses rejects the whole route: dropping only that hostname
        // could leave none, which would mean "every host".
        if let Err(refused) = hostnames {
            let (i, message) = route_hosts.refused(refused);
            for outcome in &mut outcomes {
                outcome.result = Err((Reason::UnsupportedValue, format!("spec.hostnames[{i}]: {message}")));
            }
        }
        // The route as its status and its rules name it: the status holds it, and the rule
        // list one copy for all its rules (`route_out` gives it at the route's first match).
        let namespace = namespaces[group as usize].clone();
        let id = RouteName::shared(route.kind, &names_text, namespace, name);
        candidates.age(age);
        rules::route_out(route, &id, group, &mut resolver, &mut out, &mut candidates, &mut paths);
        // Most routes have neither: nothing to reserve or move.
        if !out.notes.is_empty() {
            notes.append(&mut out.notes);
        }
        if !out.unresolved.is_empty() {
            unresolved_backends.extend(out.unresolved.iter().map(|u| Rejection {
                object: object_name(route),
                field: u.field.clone(),
                reason: u.why.reason,
                message: u.why.message.clone(),
            }));
        }
        let all_rules_dropped = !route.rules.is_empty() && out.rules_kept == 0;

        // HTTPRoute and GRPCRoute on the same listener hostname: the older route keeps it.
        for outcome in outcomes.iter_mut().filter(|_| conflicts) {
            let Ok(attachments) = &outcome.result else { continue };
            let conflict = attachments.iter().find_map(|a| {
                let block = listeners[outcome.gateway][a.listener].id;
                a.hostnames.iter().find_map(|h| claims.conflict(block, route.kind, *h))
            });
            if let Some(message) = conflict {
                outcome.result = Err((Reason::Conflicted, message));
            }
        }

        let accepted = outcomes.iter().any(|o| o.result.is_ok()) && !all_rules_dropped;
        if accepted {
            routes_accepted += 1;
        } else {
            routes_rejected += 1;
        }
        // The listeners this route attaches to, each once: several parentRefs (one with a
        // sectionName, one without) can reach the same listener, which still has one route.
        // One parentRef (most routes) reaches each listener once: nothing to look up.
        let one_parent = outcomes.len() == 1;
        let mut attached_to: SmallVec<[(usize, usize); 4]> = SmallVec::new();
        for outcome in &outcomes {
            match &outcome.result {
                Err((reason, message)) => rejections.push(Rejection {
                    object: object_name(route),
                    field: format!("spec.parentRefs[{}]", outcome.index),
                    reason: *reason,
                    message: message.clone(),
                }),
                Ok(attachments) if !all_rules_dropped => {
                    for a in attachments {
                        let listener = &gateways[outcome.gateway].listeners[a.listener];
                        if one_parent {
                            listener.attached.set(listener.attached.get() + 1);
                        } else if !attached_to.contains(&(outcome.gateway, a.listener)) {
                            attached_to.push((outcome.gateway, a.listener));
                            listener.attached.set(listener.attached.get() + 1);
                        }
                        // A route that renders no rule (a GRPCRoute without rules) serves
                        // nothing on its hostnames: it does not keep the other kind off them.
                        if conflicts && !out.matches.is_empty() {
                            for h in &a.hostnames {
                                claims.claim(
                                    listeners[outcome.gateway][a.listener].id,
                                    route.kind,
                                    *h,
                                    route,
                                );
                            }
                        }
                    }
                }
                Ok(_) => {}
            }
        }
        let slot = route_statuses.slot(place);
        status::route_status(slot, route, id, &mut outcomes, &out);
        if !out.rejections.is_empty() {
            rejections.append(&mut out.rejections);
        }
        if accepted {
            add_rules(&mut candidates, &mut hosts, &listeners, &outcomes, out.matches.start);
        } else {
            candidates.truncate(out.matches.start);
        }
    }

    // Every accepted listener with a hostname closes its block, routes or not: its hostname
    // belongs to it and must not fall through to a broader listener.
    let mut fenced: Vec<&Hostname> = gateways
        .iter()
        .filter(|g| g.rejected.is_none())
        .flat_map(|g| g.listeners.iter())
        .filter(|l| l.rejected.is_none())
        .filter_map(|l| l.hostname.as_ref())
        .collect();
    fenced.sort();
    fenced.dedup();
    for listener in fenced {
        let id = hosts.id(Some(listener));
        candidates.push_fence(id, backends::NOT_FOUND);
    }

    let (rules, shadowed, uses_grpc) = order::finish(candidates, &hosts, paths, resolver.into_services());

    rejections.sort_by(|a, b| (&a.object, &a.field).cmp(&(&b.object, &b.field)));
    unresolved_backends.sort_by(|a, b| (&a.object, &a.field).cmp(&(&b.object, &b.field)));
    notes.sort();
    let mut statuses = Statuses {
        gateway_classes: classes.iter().map(|c| gateways::class_status(c)).collect(),
        gateways: gateways.iter().map(|g| status::gateway_status(g, settings)).collect(),
        routes: route_statuses.into_vec(),
    };
    statuses.set_programmed(&Programmed::Pending);
    Translation {
        rules,
        statuses,
        uses_grpc,
        rejections,
        unresolved_backends,
        shadowed: shadowed.into_iter().map(|s| (s.source, s.by)).collect(),
        notes,
        routes_accepted,
        routes_rejected,
    }
}

#[cfg(test)]
mod tests;
