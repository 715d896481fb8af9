use std::sync::Arc;

use crate::build::*;
use crate::hostname::Hostname;
use crate::model::{ParentRef, Route, Snapshot};
use crate::translate::{gateways, index::Index, status, Settings};

use super::{attach, parent_gateway, same_parent_ref, Attacher, ParentOutcome};

/// An outcome as text: the parentRef's place, the Gateway's, and each listener with the
/// hostnames taken there, or the reason and message.
type Seen = (usize, usize, Result<Vec<(usize, Vec<Option<String>>)>, (super::Reason, String)>);

fn seen(outcome: &ParentOutcome<'_>) -> Seen {
    let result = match &outcome.result {
        Ok(attachments) => Ok(attachments
            .iter()
            .map(|a| (a.listener, a.hostnames.iter().map(|h| h.map(Hostname::as_string)).collect()))
            .collect()),
        Err(e) => Err(e.clone()),
    };
    (outcome.index, outcome.gateway, result)
}

/// What every parentRef of `route` reaches, each worked out on its own: the Gateway named,
/// then [`attach`] on it.
fn general(
    route: &Route,
    hostnames: &[&Hostname],
    gateways: &[gateways::GatewayView<'_>],
    index: &Index<'_>,
) -> Vec<Seen> {
    let mut all = Vec::new();
    for (i, parent_ref) in route.parent_refs.iter().enumerate() {
        if let Some(g) = parent_gateway(route, parent_ref, gateways) {
            let result = attach(route, parent_ref, hostnames, &gateways[g], index);
            let outcome =
                ParentOutcome { index: i, shared: Some(Arc::new(parent_ref.clone())), gateway: g, result };
            all.push(seen(&outcome));
        }
    }
    all
}

fn parent(
    namespace: Option<&str>,
    name: &str,
    section: Option<&str>,
    port: Option<i32>,
    kind: Option<&str>,
) -> ParentRef {
    ParentRef {
        kind: kind.map(crate::model::name),
        namespace: namespace.map(Arc::from),
        name: name.into(),
        section_name: section.map(Arc::from),
        port,
        ..ParentRef::default()
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// [`same_parent_ref`] says what `==` says, for parentRefs differing in any field: texts
    /// of the same length and different ones, around the lengths its loads cover.
    #[test]
    fn same_parent_ref_is_equality(
        refs in proptest::collection::vec(
            (
                proptest::option::of("(gateway\\.networking\\.k8s\\.io|g)"),
                proptest::option::of("(Gateway|Service)"),
                proptest::option::of("(a|b|infra|infrb|a-long-namespace-name|a-long-namespace-namf)"),
                "(gw|gx|g|a-gateway-of-some-length-x|a-gateway-of-some-length-y)",
                proptest::option::of("(l1|l2)"),
                proptest::option::of(80i32..82),
            ),
            2..6,
        ),
    ) {
        // Each made twice: equal parentRefs with texts of their own, as routes have.
        let make = || -> Vec<ParentRef> {
            refs.iter()
                .map(|(group, kind, namespace, name, section, port)| ParentRef {
                    group: group.as_deref().map(crate::model::name),
                    ..parent(namespace.as_deref(), name, section.as_deref(), *port, kind.as_deref())
                })
                .collect()
        };
        let (first, again) = (make(), make());
        for a in &first {
            for b in first.iter().chain(&again) {
                proptest::prop_assert_eq!(same_parent_ref(a, b), a == b);
            }
        }
    }

    /// The outcomes a route gets from the [`Attacher`] (what a parentRef reaches kept per
    /// group, a route then only intersecting its hostnames) are those of the general path,
    /// for routes of both kinds in several namespaces, parentRefs with and without namespace,
    /// sectionName, port or another kind, more distinct parentRefs than are kept, Gateways
    /// refused for their addresses, listeners of every `from`, kinds, hostnames and ports;
    /// and each shared parentRef is the one written.
    #[test]
    fn attacher_outcomes_are_the_general_ones(
        listeners in proptest::collection::vec(
            (
                0usize..3,
                proptest::option::of("(a\\.example\\.com|\\*\\.example\\.com|\\*\\.b\\.example\\.com|b\\.example\\.com)"),
                0usize..3,
                proptest::bool::ANY,
                proptest::option::of(proptest::bool::ANY),
            ),
            0..6,
        ),
        addresses in proptest::bool::ANY,
        routes in proptest::collection::vec(
            (
                proptest::bool::ANY,
                "(apps|infra|team)",
                proptest::collection::vec(
                    (
                        proptest::option::of("(infra|apps)"),
                        "(gw|gw2|other)",
                        proptest::option::of("l[0-5]"),
                        proptest::option::of(80i32..82),
                        proptest::option::of("(Gateway|Service)"),
                    ),
                    0..3,
                ),
                proptest::collection::vec(
                    "(a\\.example\\.com|x\\.b\\.example\\.com|\\*\\.example\\.com|\\*\\.b\\.example\\.com|c\\.org)",
                    0..3,
                ),
            ),
            0..40,
        ),
    ) {
        let mut gw = gateway("infra", "gw", "cf");
        gw.requested_addresses = addresses;
        let mut gw2 = gateway("apps", "gw2", "cf");
        for (i, (on, hostname, from, port81, grpc_only)) in listeners.into_iter().enumerate() {
            let mut l = listener(&format!("l{i}"));
            if let Some(h) = hostname {
                l = l.hostname(&h);
            }
            l = match from {
                0 => l,
                1 => l.from_all(),
                _ => l.from_selector("team", "yes"),
            };
            if port81 {
                l = l.port(81);
            }
            match grpc_only {
                Some(true) => l = l.kinds(&[("gateway.networking.k8s.io", "GRPCRoute")]),
                Some(false) => l = l.kinds(&[("gateway.networking.k8s.io", "HTTPRoute")]),
                None => {}
            }
            if on == 1 { gw2 = gw2.listener(l) } else { gw = gw.listener(l) }
        }
        let mut snapshot = Snapshot::default()
            .with_class(gateway_class("cf", crate::translate::DEFAULT_CONTROLLER_NAME))
            .with_gateway(gw)
            .with_gateway(gw2)
            .with_namespace(namespace("team", &[("team", "yes")]));
        for (n, (grpc, ns, parents, hostnames)) in routes.into_iter().enumerate() {
            let name = format!("r{n}");
            let mut route = if grpc { grpc_route(&ns, &name) } else { http_route(&ns, &name) };
            for (namespace, name, section, port, kind) in &parents {
                route = route.parent_ref(parent(namespace.as_deref(), name, section.as_deref(), *port, kind.as_deref()));
            }
            for h in &hostnames {
                route = route.hostname(h);
            }
            snapshot = snapshot.with_route(route);
        }
        let settings = Settings::default();
        let index = Index::new(&snapshot);
        let classes = gateways::our_classes(&snapshot, &settings);
        let views = gateways::our_gateways(&snapshot, &classes, &settings);
        let routes: Vec<&Route> = snapshot.routes.iter().collect();
        let (names, parsed) = status::names(&routes, |r| {
            r.hostnames.iter().map(|h| Hostname::parse(h).unwrap()).collect::<Vec<_>>()
        });
        let mut attacher = Attacher::new(&views, &index, names.namespaces.len());
        for ((route, hostnames), n) in routes.iter().zip(&parsed).zip(&names.routes) {
            let hostnames: Vec<&Hostname> = hostnames.iter().collect();
            let hostnames = hostnames.as_slice();
            let mut outcomes = super::Outcomes::new();
            attacher.resolve(route, n.group, hostnames, &mut outcomes);
            for outcome in &outcomes {
                proptest::prop_assert_eq!(outcome.shared.as_deref(), Some(&route.parent_refs[outcome.index]));
            }
            let got: Vec<Seen> = outcomes.iter().map(seen).collect();
            proptest::prop_assert_eq!(got, general(route, hostnames, &views, &index));
        }
    }
}

/// A parentRef written again is the kept copy; past [`Attacher::KEPT`] distinct ones, each
/// gets a copy of its own, still as written.
#[test]
fn kept_parent_refs_are_shared_and_the_rest_copied() {
    let mut snapshot = Snapshot::default()
        .with_class(gateway_class("cf", crate::translate::DEFAULT_CONTROLLER_NAME))
        .with_gateway(gateway("infra", "gw", "cf").listener(listener("l").from_all()));
    let ports = Attacher::KEPT as i32 + 2;
    for round in 0..2 {
        for port in 0..ports {
            let route = http_route("apps", &format!("r{round}-{port}")).parent_ref(parent(
                Some("infra"),
                "gw",
                None,
                Some(port),
                None,
            ));
            snapshot = snapshot.with_route(route);
        }
    }
    let index = Index::new(&snapshot);
    let settings = Settings::default();
    let classes = gateways::our_classes(&snapshot, &settings);
    let views = gateways::our_gateways(&snapshot, &classes, &settings);
    let mut attacher = Attacher::new(&views, &index, 1);
    let mut first: Vec<Arc<ParentRef>> = Vec::new();
    for (n, route) in snapshot.routes.iter().enumerate() {
        let mut outcomes = super::Outcomes::new();
        attacher.resolve(route, 0, &[], &mut outcomes);
        assert_eq!(outcomes.len(), 1);
        let shared = outcomes[0].shared.as_ref().unwrap();
        assert_eq!(**shared, route.parent_refs[0]);
        let port = n % ports as usize;
        if n < ports as usize {
            first.push(Arc::clone(shared));
        } else {
            assert_eq!(Arc::ptr_eq(&first[port], shared), port < Attacher::KEPT, "port {port}");
        }
    }
}
