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

/// The places in `routes` by creation time (unknown last), then `namespace/name`, then kind.
///
/// Sorted on integers (no route read by a comparison), and only routes created in the same
/// second are compared by name. The times, relative to the oldest, and the place usually fit
/// one 64-bit key (the routes of a cluster span a few years: some 26 bits, and the place 14 at
/// 10,000 routes), sorted by a few radix passes where a comparison sort took about 150
/// instructions per route when the routes are not stored oldest first (a cluster lists them
/// by namespace and name); times too far apart for that are sorted as 128-bit keys.
/// Also says whether that is the order they are stored in, when it is found without sorting.
fn oldest_first(routes: &[Route]) -> (Vec<u32>, bool) {
    // Order-preserving: the sign bit flipped; `None` (unknown) is past every known time.
    let times: Vec<Option<u64>> = routes.iter().map(|r| r.meta.created.map(|t| t as u64 ^ 1 << 63)).collect();
    // Stored oldest first, no two of the same time (as when decoded from a list made so):
    // the order is the stored one.
    if times.windows(2).all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if a < b)) {
        return ((0..routes.len() as u32).collect(), true);
    }
    let (min, max) = times.iter().flatten().fold((u64::MAX, 0), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    // The relative time of an unknown one: one past the newest (none when that overflows).
    let unknown = if min > max { Some(0) } else { (max - min).checked_add(1) };
    let index_bits = u64::BITS - (routes.len().max(1) as u64 - 1).leading_zeros();
    let packed = unknown.filter(|u| u64::BITS - u.leading_zeros() + index_bits <= u64::BITS);
    let mut sorted: Vec<u32> = match packed {
        Some(unknown) => {
            let keys: Vec<u64> = times
                .iter()
                .enumerate()
                .map(|(i, t)| t.map_or(unknown, |t| t - min) << index_bits | i as u64)
                .collect();
            if keys.windows(2).all(|w| w[0] < w[1]) {
                (0..routes.len() as u32).collect()
            } else {
                let bits = index_bits + u64::BITS - unknown.leading_zeros();
                order::radix_sorted_low(keys, index_bits, bits)
            }
        }
        None => {
            let mut keys: Vec<u128> = times
                .iter()
                .enumerate()
                .map(|(i, t)| t.map_or(1 << 96, |t| u128::from(t) << 32) | i as u128)
                .collect();
            keys.sort_unstable();
            keys.iter().map(|k| *k as u32).collect()
        }
    };
    // Runs of one time, found on the times (the routes are not read again for it).
    for same_time in sorted.chunk_by_mut(|a, b| times[*a as usize] == times[*b as usize]) {
        if same_time.len() > 1 {
            same_time.sort_unstable_by(|a, b| {
                let (a, b) = (&routes[*a as usize], &routes[*b as usize]);
                a.meta.key_cmp(&b.meta).then(a.kind.cmp(&b.kind))
            });
        }
    }
    (sorted, false)
}

/// The order [`translate`] takes `routes` in, each with its place oldest first
/// ([`oldest_first`]), and where in that order the routes that may conflict begin
/// (`may_conflict`: [`claims::may_conflict`]). Those are taken last, oldest first: a conflict
/// goes to the older route, so each one's outcome depends on the older ones'. The others'
/// outcomes depend on no other route's, and the candidates carry their route's place for the
/// ties of precedence ([`order::Candidates::age`]): they are taken first, in the order they are
/// stored, which is the order their data lies in memory when they were decoded as listed (a
/// cluster's list, a file), where the order of age reads them at random. When none may
/// conflict and the routes are stored oldest first but for a few (one out of place breaks the
/// order twice; two breaks and one per 64 routes are allowed), they are taken oldest first:
/// memory is read in order all the same, and the places then follow the order the candidates
/// are made in, so the sort key needs no bits for them.
fn walk_order<'r>(routes: &'r [Route], may_conflict: &[bool]) -> (Vec<&'r Route>, Vec<u32>, usize) {
    let (by_age, as_stored) = oldest_first(routes);
    let checked_from = may_conflict.iter().filter(|m| !**m).count();
    let nearly_oldest_first = || {
        // Counted up to one past the most allowed: in a cluster's list order, a few routes in.
        let allowed = 2 + routes.len() / 64;
        as_stored || by_age.windows(2).filter(|w| w[1] != w[0] + 1).take(allowed + 1).count() <= allowed
    };
    if checked_from == 0 || (checked_from == routes.len() && nearly_oldest_first()) {
        // All of them oldest first: the walk's place is the age.
        let walk = by_age.iter().map(|i| &routes[*i as usize]).collect();
        return (walk, (0..routes.len() as u32).collect(), checked_from);
    }
    let mut ages = vec![0u32; routes.len()];
    for (age, i) in by_age.iter().enumerate() {
        ages[*i as usize] = age as u32;
    }
    if checked_from == routes.len() {
        return (routes.iter().collect(), ages, checked_from);
    }
    let later = by_age.iter().map(|i| *i as usize).filter(|i| may_conflict[*i]);
    let order: Vec<usize> = (0..routes.len()).filter(|i| !may_conflict[*i]).chain(later).collect();
    (order.iter().map(|i| &routes[*i]).collect(), order.iter().map(|i| ages[*i]).collect(), checked_from)
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
    let (routes, ages, checked_from) = walk_order(&snapshot.routes, &may_conflict);
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

#[cfg(test)]
mod oldest_first_tests {
    use crate::build::{grpc_route, http_route};
    use crate::model::Route;

    proptest::proptest! {
        /// The same order as comparing the routes themselves: time (unknown last, times of
        /// either sign), then `namespace/name`, then kind. With the extremes, the times are too
        /// far apart for a 64-bit key (sorted as 128-bit keys); without, radix-sorted (or found
        /// in order already).
        #[test]
        fn oldest_first_is_the_order_of_the_routes(
            routes in proptest::collection::vec(
                (proptest::option::of(-3i64..3), proptest::bool::ANY, "(a|a-b|ab)", "(r|r/x|s)"),
                0..40,
            ),
            extremes in proptest::bool::ANY,
            sorted in proptest::bool::ANY,
            may_conflict in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let routes: Vec<Route> = routes
                .into_iter()
                .map(|(created, grpc, ns, name)| {
                    let mut r = if grpc { grpc_route(&ns, &name) } else { http_route(&ns, &name) };
                    r.meta.created = created.map(|t| match t {
                        2 if extremes => i64::MAX,
                        -2 if extremes => i64::MIN,
                        t => t * 1_000_000,
                    });
                    r
                })
                .collect();
            let mut routes = routes;
            if sorted {
                routes.sort_by_key(|r| (r.meta.created.is_none(), r.meta.created));
            }
            let mut expected: Vec<&Route> = routes.iter().collect();
            expected.sort_by(|a, b| {
                (a.meta.created.is_none(), a.meta.created)
                    .cmp(&(b.meta.created.is_none(), b.meta.created))
                    .then_with(|| a.meta.key_cmp(&b.meta))
                    .then(a.kind.cmp(&b.kind))
            });
            let got: Vec<&Route> = super::oldest_first(&routes).0.into_iter().map(|i| &routes[i as usize]).collect();
            let key = |r: &&Route| (r.meta.created, r.meta.key(), r.kind);
            proptest::prop_assert_eq!(got.iter().map(key).collect::<Vec<_>>(), expected.iter().map(key).collect::<Vec<_>>());

            // The walk: all oldest first, or the routes that cannot conflict as stored, then
            // those that may, oldest first; with none that may, stored oldest first, as stored.
            // Each route with its place oldest first and whether it is checked (the last ones).
            // None, some or all may conflict.
            let some: Vec<bool> = routes.iter().zip(&may_conflict).map(|(_, m)| *m).collect();
            for may in [vec![false; routes.len()], some, vec![true; routes.len()]] {
                let (walk, ages, checked_from) = super::walk_order(&routes, &may);
                let place = |r: &Route| routes.iter().position(|x| std::ptr::eq(x, r)).unwrap();
                proptest::prop_assert!(walk.iter().enumerate().all(|(k, w)| may[place(w)] == (k >= checked_from)));
                let by_age = walk.iter().zip(&got).all(|(w, g)| std::ptr::eq(*w, *g));
                if !by_age {
                    let stored: Vec<&Route> = routes.iter().zip(&may).filter(|(_, m)| !**m).map(|(r, _)| r).collect();
                    let later: Vec<&Route> = got.iter().copied().filter(|r| may[place(r)]).collect();
                    let expected = stored.into_iter().chain(later);
                    proptest::prop_assert!(walk.iter().zip(expected).all(|(w, e)| std::ptr::eq(*w, e)));
                }
                if got.iter().zip(&routes).all(|(g, r)| std::ptr::eq(*g, r)) && !may.contains(&true) {
                    proptest::prop_assert!(by_age, "none checked, stored oldest first: as stored");
                }
                let mut by_age: Vec<(u32, &Route)> = ages.iter().copied().zip(walk).collect();
                by_age.sort_by_key(|(age, _)| *age);
                proptest::prop_assert!(by_age.iter().enumerate().all(|(i, (age, _))| *age == i as u32));
                proptest::prop_assert!(by_age.iter().zip(&got).all(|((_, w), g)| std::ptr::eq(*w, *g)));
            }
        }
    }
}
