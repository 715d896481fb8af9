//! `translate(&Snapshot, &Settings) -> Translation`: the ordered ingress rules and the status
//! of every object we own. Pure: the same snapshot, in any order, gives the same result.

mod attach;
mod backends;
mod claims;
mod gateways;
mod index;
mod order;
mod rules;
mod status;

use std::sync::Arc;

use crate::hostname::Hostname;
use crate::ingress::{IngressRule, RouteName, RuleSource};
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
    pub rules: Vec<IngressRule>,
    pub statuses: Statuses,
    /// Some GRPCRoute rule was rendered: cloudflared needs `protocol: http2`.
    pub uses_grpc: bool,
    /// Routes and rules not rendered, and why.
    pub rejections: Vec<Rejection>,
    /// Rules left out because an earlier rule serves all their traffic: (rule, shadowed by).
    pub shadowed: Vec<(RuleSource, RuleSource)>,
    /// Other facts worth a line in the summary (collapsed weights).
    pub notes: Vec<String>,
    pub routes_accepted: usize,
    pub routes_rejected: usize,
}

/// One route after attachment and rule translation, kept until its rules are ordered.
struct RouteWork<'r> {
    id: Arc<RouteName>,
    outcomes: Vec<attach::ParentOutcome<'r>>,
    out: rules::RouteOut,
    /// Rendered: accepted on some parent and some rule survived.
    rendered: bool,
}

/// `HTTPRoute ns/name`: how rejections and notes name a route.
fn object_name(route: &Route) -> String {
    format!("{} {}", route.kind, route.meta.key())
}

pub fn translate(snapshot: &Snapshot, settings: &Settings) -> Translation {
    let index = index::Index::new(snapshot);
    let classes = gateways::our_classes(snapshot, settings);
    let gateways = gateways::our_gateways(snapshot, &classes, settings);

    let mut routes: Vec<&Route> = snapshot.routes.iter().collect();
    // Oldest first: the HTTPRoute/GRPCRoute conflict goes to the older route.
    routes.sort_unstable_by(|a, b| {
        (a.meta.created.is_none(), a.meta.created, &a.meta.namespace, &a.meta.name, a.kind).cmp(&(
            b.meta.created.is_none(),
            b.meta.created,
            &b.meta.namespace,
            &b.meta.name,
            b.kind,
        ))
    });

    // Every route's hostnames, parsed once and borrowed by its attachments.
    let parsed: Vec<Result<Vec<Hostname>, (usize, String)>> = routes
        .iter()
        .map(|route| {
            route
                .hostnames
                .iter()
                .enumerate()
                .map(|(i, h)| Hostname::parse(h).map_err(|e| (i, e.to_string())))
                .collect()
        })
        .collect();

    let mut works: Vec<RouteWork<'_>> = Vec::with_capacity(routes.len());
    let mut route_statuses = Vec::with_capacity(routes.len());
    let mut rejections = Vec::new();
    let mut notes = Vec::new();
    let (mut routes_accepted, mut routes_rejected) = (0, 0);
    let mut claims = claims::Claims::default();
    // Conflicts need both kinds; with one, indexing every hostname would be wasted work.
    let both_kinds = [RouteKind::Http, RouteKind::Grpc].iter().all(|k| routes.iter().any(|r| r.kind == *k));
    let mut resolver = backends::Resolver::new(&index, settings);

    for (route, hostnames) in routes.into_iter().zip(&parsed) {
        let hostnames_ok = hostnames.as_ref().map(Vec::as_slice).unwrap_or(&[]);
        let mut outcomes = attach::resolve(route, hostnames_ok, &gateways, &index);
        if outcomes.is_empty() {
            continue; // not ours
        }
        // A hostname the schema refuses rejects the whole route: dropping only that hostname
        // could leave none, which would mean "every host".
        if let Err((i, message)) = hostnames {
            for outcome in &mut outcomes {
                outcome.result = Err((Reason::UnsupportedValue, format!("spec.hostnames[{i}]: {message}")));
            }
        }
        let out = rules::route_out(route, &mut resolver, settings);
        notes.extend(out.notes.iter().cloned());
        let all_rules_dropped = !route.rules.is_empty() && out.rules_kept == 0;

        // HTTPRoute and GRPCRoute on the same listener hostname: the older route keeps it.
        for outcome in outcomes.iter_mut().filter(|_| both_kinds) {
            let Ok(attachments) = &outcome.result else { continue };
            let listeners = &gateways[outcome.gateway].listeners;
            let conflict = attachments.iter().find_map(|a| {
                let block = listeners[a.listener].hostname.as_ref();
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
        // Who claims the hostnames below: built once per route, and only when claims are kept.
        let claimant = if both_kinds { object_name(route) } else { String::new() };
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
                        listener.attached.set(listener.attached.get() + 1);
                        for h in a.hostnames.iter().filter(|_| both_kinds) {
                            claims.claim(listener.hostname.as_ref(), route.kind, *h, &claimant);
                        }
                    }
                }
                Ok(_) => {}
            }
        }
        rejections.extend(out.rejections.iter().cloned());
        route_statuses.push(status::route_status(route, &outcomes, &out, all_rules_dropped));
        let id = Arc::new(RouteName {
            kind: route.kind,
            namespace: route.meta.namespace.clone(),
            name: route.meta.name.clone(),
        });
        works.push(RouteWork { id, outcomes, out, rendered: accepted });
    }

    let count: usize = works
        .iter()
        .filter(|w| w.rendered)
        .map(|w| {
            let hosts: usize = w
                .outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().ok())
                .flatten()
                .map(|a| a.hostnames.len())
                .sum();
            hosts * w.out.matches.len()
        })
        .sum();
    let mut candidates = Vec::with_capacity(count + 64);
    let mut hosts = order::HostIds::default();
    // `works` is in route order (oldest, then namespace/name, then kind): its index ranks routes.
    for (rank, work) in works.iter().enumerate().filter(|(_, w)| w.rendered) {
        for outcome in &work.outcomes {
            let Ok(attachments) = &outcome.result else { continue };
            for a in attachments {
                let block = hosts.id(gateways[outcome.gateway].listeners[a.listener].hostname.as_ref());
                for h in &a.hostnames {
                    let host = hosts.id(*h);
                    candidates.extend(work.out.matches.iter().map(|m| order::Candidate {
                        listener: block,
                        host,
                        route: Some((rank as u32, &work.id, m)),
                    }));
                }
            }
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
        candidates.push(order::Candidate::fence(id));
    }

    let (rules, shadowed) = order::finish(candidates, &hosts);
    let uses_grpc = rules
        .iter()
        .any(|r| matches!(&r.source, RuleSource::Route { route, .. } if route.kind == RouteKind::Grpc));

    // Identities are unique: an unstable sort is deterministic.
    route_statuses
        .sort_unstable_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    rejections.sort_by(|a, b| (&a.object, &a.field).cmp(&(&b.object, &b.field)));
    notes.sort();
    let mut statuses = Statuses {
        gateway_classes: classes.iter().map(|c| gateways::class_status(c)).collect(),
        gateways: gateways.iter().map(|g| status::gateway_status(g, settings)).collect(),
        routes: route_statuses,
    };
    statuses.set_programmed(&Programmed::Pending);
    Translation {
        rules,
        statuses,
        uses_grpc,
        rejections,
        shadowed: shadowed.into_iter().map(|s| (s.source, s.by)).collect(),
        notes,
        routes_accepted,
        routes_rejected,
    }
}

#[cfg(test)]
mod tests;
