//! The resolver's remembered answers against [`resolve`] asked afresh for every backendRef.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::build::{grpc_route, http_route, reference_grant, service};
use crate::model::{BackendTlsPolicy, Meta, PolicyTarget, Snapshot};

/// What `backends` of `route` come to without anything remembered: every backendRef resolved
/// on its own, the valid one with the highest weight chosen (the first of equals).
fn fresh(
    route: &Route,
    backends: &[BackendRef],
    index: &Index<'_>,
    settings: &Settings,
) -> (Option<Origin>, Vec<(usize, Unresolved)>, bool) {
    let mut best: Option<(i32, Origin)> = None;
    let mut unresolved = Vec::new();
    for (i, backend) in backends.iter().enumerate() {
        match resolve(route, backend, index, settings) {
            Ok(origin) if backend.weight > 0 && best.as_ref().is_none_or(|(w, _)| backend.weight > *w) => {
                best = Some((backend.weight, origin))
            }
            Ok(_) => {}
            Err(why) => unresolved.push((i, why)),
        }
    }
    let weighted = backends.iter().filter(|b| b.weight > 0).count();
    let split = best.is_some() && weighted > 1;
    (best.map(|(_, origin)| origin), unresolved, split)
}

const NAMESPACES: [&str; 3] = ["a", "b", "a-namespace-longer-than-16"];
const NAMES: [&str; 6] =
    ["web", "api", "svc-a", "Bad_Name", "a-service-name-longer-than-16-1", "a-service-name-longer-than-16-2"];
const PORTS: [i32; 5] = [80, 443, 8080, 0, 70000];
const PROTOCOLS: [Option<&str>; 6] =
    [None, Some("https"), Some("kubernetes.io/h2c"), Some("kubernetes.io/wss"), Some("h2c"), Some("http")];

/// A Service: namespace, name, ports (number, appProtocol, target), headless, ExternalName.
type ServiceShape = (usize, usize, Vec<(usize, usize, Option<i32>)>, bool, bool);
/// A backendRef: group, name, namespace (none or one of [`NAMESPACES`]), port, weight, filters.
type BackendShape = (bool, usize, Option<usize>, Option<usize>, i32, u32);
/// A route: HTTP or gRPC, namespace, its rules' backendRefs.
type RouteShape = (bool, usize, Vec<Vec<BackendShape>>);

fn services() -> impl Strategy<Value = Vec<ServiceShape>> {
    let port = (0..PORTS.len(), 0..PROTOCOLS.len(), proptest::option::of(select(vec![3000, 0])));
    vec(
        (0..NAMESPACES.len(), 0..NAMES.len(), vec(port, 0..3), any::<bool>(), proptest::bool::weighted(0.1)),
        0..12,
    )
}

fn routes() -> impl Strategy<Value = Vec<RouteShape>> {
    let backend = (
        proptest::bool::weighted(0.9),
        0..NAMES.len(),
        proptest::option::of(0..NAMESPACES.len()),
        proptest::option::weighted(0.9, 0..PORTS.len()),
        0..3,
        select(vec![0, 0, 0, 0, 1, 2]),
    );
    vec((any::<bool>(), 0..NAMESPACES.len(), vec(vec(backend, 0..4), 1..4)), 1..12)
}

fn snapshot(
    shapes: &[ServiceShape],
    grants: &[(usize, usize, bool, Option<usize>)],
    policy: bool,
) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for (ns, name, ports, headless, external) in shapes {
        let mut s = service(NAMESPACES[*ns], NAMES[*name]);
        for (port, protocol, target) in ports {
            let target =
                target.map(|t| if t == 0 { TargetPort::Name("http".into()) } else { TargetPort::Number(t) });
            s = s.port_with(PORTS[*port], Some("http"), PROTOCOLS[*protocol], target);
        }
        s.headless = *headless;
        s.external_name = *external;
        snapshot = snapshot.with_service(s);
    }
    for (to, from, grpc, name) in grants {
        let kind = if *grpc { "GRPCRoute" } else { "HTTPRoute" };
        snapshot = snapshot.with_grant(reference_grant(
            NAMESPACES[*to],
            "g",
            kind,
            NAMESPACES[*from],
            name.map(|n| NAMES[n]),
        ));
    }
    if policy {
        snapshot.backend_tls_policies.push(BackendTlsPolicy {
            meta: Meta::new("a", "tls"),
            targets: vec![PolicyTarget {
                group: String::new(),
                kind: "Service".into(),
                name: "web".into(),
                section_name: None,
            }],
            hostname: "web.example".into(),
        });
    }
    snapshot
}

fn backend_ref((core, name, namespace, port, weight, filters): BackendShape) -> BackendRef {
    let backend = BackendRef {
        other_kind: None,
        name: NAMES[name].into(),
        namespace: namespace.map(|n| NAMESPACES[n].into()),
        port: port.map(|p| PORTS[p]),
        weight,
        filters,
    };
    backend.with_kind(if core { "" } else { "example.com" }, "Service")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]
    /// Routes of both kinds in several namespaces, one resolver for all of them (as in a
    /// translation, so that answers remembered for one route are found by the next): every
    /// rule's selection is what resolving each backendRef afresh gives, whether it was found
    /// in the same-namespace table, in the general cache or not remembered at all.
    #[test]
    fn remembered_answers_are_fresh_answers(
        services in services(),
        grants in vec((0..NAMESPACES.len(), 0..NAMESPACES.len(), any::<bool>(), proptest::option::of(0..NAMES.len())), 0..3),
        policy in any::<bool>(),
        shapes in routes(),
    ) {
        let snapshot = snapshot(&services, &grants, policy);
        let routes: Vec<(Route, u32, Vec<Vec<BackendRef>>)> = shapes
            .into_iter()
            .map(|(grpc, ns, rules)| {
                let route = if grpc { grpc_route(NAMESPACES[ns], "r") } else { http_route(NAMESPACES[ns], "r") };
                // The route's (kind, namespace) group, as the names pass numbers it: one number
                // per pair.
                let group = (2 * ns + usize::from(grpc)) as u32;
                (route, group, rules.into_iter().map(|rule| rule.into_iter().map(backend_ref).collect()).collect())
            })
            .collect();
        let settings = Settings::default();
        let index = Index::new(&snapshot);
        let mut resolver = Resolver::new(&index, &settings);
        for (route, group, rules) in &routes {
            let scope = Scope::of_group(*group);
            for backends in rules {
                let expected = fresh(route, backends, &index, &settings);
                let mut unresolved = Vec::new();
                let selection = resolver.select(scope, route, backends, |b, why| unresolved.push((b, why.clone())));
                let (origin, split) = (selection.origin.cloned(), selection.split_collapsed);
                prop_assert_eq!(selection.filtered, backends.iter().position(|b| b.filters > 0));
                // The remembered URL is a service id: the resolver's services say which.
                let origin = origin.map(|Origin { url, server_name, tls }| Origin {
                    url: resolver.service(url).to_string(),
                    server_name,
                    tls,
                });
                prop_assert_eq!(origin, expected.0);
                prop_assert_eq!(&unresolved, &expected.1);
                prop_assert_eq!(split, expected.2);
            }
        }
    }
}
