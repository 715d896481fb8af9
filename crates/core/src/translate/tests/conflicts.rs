//! When no HTTPRoute hostname can overlap a GRPCRoute's, the translation skips the conflict
//! checks and walks the routes as stored ([`claims::conflicts_possible`]): it must give exactly
//! what checking every conflict, oldest first, gives.

use proptest::prelude::*;

use super::*;
use crate::hostname::Hostname;
use crate::model::{Route, RouteKind};
use crate::translate::claims::conflicts_possible;

/// Hostnames that overlap in every way: equal, under a wildcard, a wildcard under another,
/// an apex beside its wildcard, and unrelated ones.
const HOSTNAMES: [&str; 8] = [
    "a.example.com",
    "b.example.com",
    "x.a.example.com",
    "*.example.com",
    "*.a.example.com",
    "example.com",
    "c.org",
    "*.c.org",
];

fn route_strategy() -> impl Strategy<Value = Route> {
    (
        any::<bool>(),
        "[a-d]",
        prop::collection::vec(0usize..HOSTNAMES.len(), 0..3),
        prop::option::of(0i64..4),
        any::<bool>(),
    )
        .prop_map(|(grpc, name, hostnames, created, section)| {
            let mut route = if grpc { grpc_route("infra", &name) } else { http_route("infra", &name) };
            route =
                if section { route.parent_section("infra", "gw", "l0") } else { route.parent("infra", "gw") };
            for h in hostnames {
                route = route.hostname(HOSTNAMES[h]);
            }
            route.meta.created = created;
            let target = if grpc { rule().grpc(Some("pkg.Svc"), None) } else { rule().prefix("/x") };
            route.rule(target.backend("v1", 8080))
        })
}

fn snapshot_strategy() -> impl Strategy<Value = Snapshot> {
    (
        prop::collection::vec(prop::option::weighted(0.8, 0usize..HOSTNAMES.len()), 1..3),
        prop::collection::vec(route_strategy(), 0..10),
    )
        .prop_map(|(listeners, routes)| {
            let mut gw = gateway("infra", "gw", "cf");
            for (i, h) in listeners.into_iter().enumerate() {
                let mut l = listener(&format!("l{i}")).from_all();
                if let Some(h) = h {
                    l = l.hostname(HOSTNAMES[h]);
                }
                gw = gw.listener(l);
            }
            let mut s = Snapshot::default()
                .with_class(gateway_class("cf", CTRL))
                .with_gateway(gw)
                .with_service(service("infra", "v1").port(8080));
            let mut seen = std::collections::HashSet::new();
            for r in routes {
                if seen.insert((r.kind, r.meta.name.clone())) {
                    s = s.with_route(r);
                }
            }
            s
        })
}

/// Pair by pair: an HTTPRoute hostname and a GRPCRoute hostname that overlap, a route without
/// hostnames taking every listener's (any listener without one: every host).
fn some_pair_overlaps(routes: &[Route], listeners: &[Option<Hostname>]) -> bool {
    let of = |kind: RouteKind| -> Option<Vec<Hostname>> {
        let mut all = Vec::new();
        for r in routes.iter().filter(|r| r.kind == kind) {
            if r.hostnames.is_empty() {
                for l in listeners {
                    all.push(l.clone()?);
                }
            } else {
                all.extend(r.hostnames.iter().map(|h| Hostname::parse(h).unwrap()));
            }
        }
        Some(all)
    };
    match (of(RouteKind::Http), of(RouteKind::Grpc)) {
        (Some(http), Some(grpc)) => http.iter().any(|h| grpc.iter().any(|g| h.overlaps(g))),
        (http, grpc) => {
            // A listener without hostname is taken by a route without any: that route's kind
            // overlaps any route of the other kind.
            let kinds = |kind| routes.iter().any(|r: &Route| r.kind == kind);
            (http.is_none() || grpc.is_none()) && kinds(RouteKind::Http) && kinds(RouteKind::Grpc)
        }
    }
}

proptest! {
    /// `conflicts_possible` is the pairwise answer, for every mix of exact names, wildcards,
    /// apexes and routes without hostnames.
    #[test]
    fn conflicts_are_possible_exactly_when_some_pair_overlaps(snapshot in snapshot_strategy()) {
        let listeners: Vec<Option<Hostname>> =
            snapshot.gateways[0].listeners.iter().map(|l| l.hostname.as_deref().map(|h| Hostname::parse(h).unwrap())).collect();
        let both = [RouteKind::Http, RouteKind::Grpc].iter().all(|k| snapshot.routes.iter().any(|r| r.kind == *k));
        let got = conflicts_possible(&snapshot.routes, listeners.iter().map(Option::as_ref));
        prop_assert_eq!(got && both, some_pair_overlaps(&snapshot.routes, &listeners) && both);
    }

    /// Skipping the conflict checks when none is possible changes nothing: the same rules,
    /// statuses, rejections and notes as checking every one, oldest first.
    #[test]
    fn skipping_impossible_conflicts_changes_nothing(snapshot in snapshot_strategy()) {
        let settings = Settings::default();
        let chosen = translate(&snapshot, &settings);
        CHECK_EVERY_CONFLICT.with(|c| c.set(true));
        let every = translate(&snapshot, &settings);
        CHECK_EVERY_CONFLICT.with(|c| c.set(false));
        prop_assert_eq!(chosen, every);
    }
}
