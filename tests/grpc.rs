//! The GRPCRoute behaviour promised by the seed documentation page (basic, service and method
//! routing, cross-namespace with and without ReferenceGrant, weights, multiple hostnames),
//! rendered by `cloudflared-routes render` and served through the cloudflared model. Fixtures:
//! `tests/fixtures/grpc` (format: `support::fixtures`); one test per fixture.

mod support;

use support::fixtures::{self, ids_on_disk};
use support::status::Statuses;

macro_rules! fixture_tests {
    ($($name:ident => $id:literal,)*) => {
        $(
            #[test]
            fn $name() {
                fixtures::check($id);
            }
        )*
    };
}

macro_rules! fixture_ids {
    ($($name:ident => $id:literal,)*) => {
        [$($id),*]
    };
}

fixtures::grpc_fixtures!(fixture_tests);

#[test]
fn every_grpc_fixture_has_a_test() {
    let mut listed: Vec<String> = fixtures::grpc_fixtures!(fixture_ids).map(String::from).to_vec();
    listed.sort();
    assert_eq!(listed, ids_on_disk("grpc"), "tests/support/fixtures.rs must list every *.expect.yaml");
    fixtures::check_tables("grpc");
}

const GATEWAY: &str = "cloudflare-tunnel";

#[test]
fn status_cross_namespace_with_and_without_grant() {
    let route = ("app-namespace", "cross-ns-grpc-route");
    let s = Statuses::of_fixture("grpc", "cross-namespace.yaml");
    let parent = s.route_parent("GRPCRoute", route, GATEWAY, None);
    s.assert_condition("GRPCRoute with grant", parent, "Accepted", "True", Some("Accepted"));
    s.assert_condition("GRPCRoute with grant", parent, "ResolvedRefs", "True", Some("ResolvedRefs"));

    let s = Statuses::of_fixture("grpc", "cross-namespace-no-grant.yaml");
    let parent = s.route_parent("GRPCRoute", route, GATEWAY, None);
    s.assert_condition("GRPCRoute without grant", parent, "Accepted", "True", Some("Accepted"));
    s.assert_condition("GRPCRoute without grant", parent, "ResolvedRefs", "False", Some("RefNotPermitted"));
}

#[test]
fn status_seed_routes_are_accepted() {
    for (manifest, routes) in [
        ("basic.yaml", &["my-grpc-service"][..]),
        ("service-routing.yaml", &["grpc-service-routes"][..]),
        ("method-routing.yaml", &["grpc-method-routes"][..]),
        ("weights.yaml", &["weighted-grpc", "weighted-grpc-edge-cases"][..]),
        ("multiple-hostnames.yaml", &["multi-host-grpc"][..]),
    ] {
        let s = Statuses::of_fixture("grpc", manifest);
        for route in routes {
            let parent = s.route_parent("GRPCRoute", ("default", route), GATEWAY, None);
            let what = format!("GRPCRoute default/{route}");
            s.assert_condition(&what, parent, "Accepted", "True", Some("Accepted"));
            s.assert_condition(&what, parent, "ResolvedRefs", "True", Some("ResolvedRefs"));
        }
        let listener = s.listener("cloudflare-tunnel-system", GATEWAY, "http");
        assert_eq!(
            listener["attachedRoutes"].as_u64(),
            Some(routes.len() as u64),
            "[{}] attachedRoutes\n{listener:#}",
            s.label
        );
    }
}
