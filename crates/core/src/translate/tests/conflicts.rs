//! The translation checks for HTTPRoute/GRPCRoute conflicts only the routes with a hostname a
//! route of the other kind may serve too ([`claims::may_conflict`]), walking the others as
//! stored: it must give exactly what checking every route, all oldest first, gives.

use proptest::prelude::*;

use super::*;
use crate::hostname::Hostname;
use crate::model::Route;
use crate::translate::claims::may_conflict;

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
        prop::collection::vec(0usize..5, 1..3),
    )
        .prop_map(|(grpc, name, hostnames, created, parents)| {
            let mut route = if grpc { grpc_route("infra", &name) } else { http_route("infra", &name) };
            // The Gateway, one of its listeners (l9: none), or a Gateway not ours.
            for p in parents {
                route = match p {
                    0 => route.parent("infra", "gw"),
                    1 => route.parent_section("infra", "gw", "l0"),
                    2 => route.parent_section("infra", "gw", "l1"),
                    3 => route.parent_section("infra", "gw", "l9"),
                    _ => route.parent("infra", "other"),
                };
            }
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

/// The hostnames `route` may serve, `None` for every host: its own, or, without any, those of
/// the listeners its parentRefs name (`l9` and the Gateway `other` name none).
fn served(route: &Route, listeners: &[Option<Hostname>]) -> Vec<Option<Hostname>> {
    if !route.hostnames.is_empty() {
        return route.hostnames.iter().map(|h| Some(Hostname::parse(h).unwrap())).collect();
    }
    let mut all = Vec::new();
    for p in route.parent_refs.iter().filter(|p| *p.name == *"gw") {
        for (i, l) in listeners.iter().enumerate() {
            if p.section_name.as_deref().is_none_or(|s| *s == format!("l{i}")) {
                all.push(l.clone());
            }
        }
    }
    all
}

/// Pair by pair: whether `route` may serve a hostname a route of the other kind may serve.
fn overlaps_the_other_kind(route: &Route, routes: &[Route], listeners: &[Option<Hostname>]) -> bool {
    let mine = served(route, listeners);
    routes.iter().filter(|r| r.kind != route.kind).any(|other| {
        served(other, listeners).iter().any(|theirs| {
            mine.iter().any(|h| match (h, theirs) {
                (Some(a), Some(b)) => a.overlaps(b),
                _ => true,
            })
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `may_conflict` is the pairwise answer, route by route, for every mix of exact names,
    /// wildcards, apexes, routes without hostnames and listeners with and without one.
    #[test]
    fn a_route_may_conflict_exactly_when_it_overlaps_a_route_of_the_other_kind(snapshot in snapshot_strategy()) {
        let listeners: Vec<Option<Hostname>> =
            snapshot.gateways[0].listeners.iter().map(|l| l.hostname.as_deref().map(|h| Hostname::parse(h).unwrap())).collect();
        let settings = Settings::default();
        let classes = gateways::our_classes(&snapshot, &settings);
        let gateways = gateways::our_gateways(&snapshot, &classes, &settings);
        let got = may_conflict(&snapshot.routes, &gateways);
        let expected: Vec<bool> =
            snapshot.routes.iter().map(|r| overlaps_the_other_kind(r, &snapshot.routes, &listeners)).collect();
        prop_assert_eq!(got, expected);
    }

    /// Checking only the routes that may conflict, the others walked as stored, changes
    /// nothing: the same rules, statuses, rejections and notes as checking every route, all
    /// oldest first.
    #[test]
    fn checking_only_the_routes_that_may_conflict_changes_nothing(snapshot in snapshot_strategy()) {
        let settings = Settings::default();
        let chosen = translate(&snapshot, &settings);
        CHECK_EVERY_CONFLICT.with(|c| c.set(true));
        let every = translate(&snapshot, &settings);
        CHECK_EVERY_CONFLICT.with(|c| c.set(false));
        prop_assert_eq!(chosen, every);
    }
}
