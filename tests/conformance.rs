//! Gateway API conformance, host+path part: every case of the conformance suite whose outcome
//! depends only on Host and path (`HP` in the reference EXPECTATIONS), rendered by
//! `cloudflared-routes render` and served through a model of cloudflared's matcher
//! (`support::cloudflared`). The fixtures and their request tables are in
//! `tests/fixtures/conformance` (format: `support::fixtures`); one test per fixture.
//!
//! Also: the status that `cloudflared-routes status` computes for the same fixtures, the
//! `examples/` quick start, and the unit tests of the cloudflared model itself.

mod support;

#[path = "support/cloudflared_tests.rs"]
mod cloudflared_model;

use support::fixtures::{self, ids_on_disk};
use support::status::{supported_kinds, Statuses};

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

fixtures::conformance_fixtures!(fixture_tests);
fixtures::example_fixtures!(fixture_tests);

#[test]
fn every_conformance_fixture_has_a_test() {
    let mut listed: Vec<String> = fixtures::conformance_fixtures!(fixture_ids).map(String::from).to_vec();
    listed.sort();
    assert_eq!(listed, ids_on_disk("conformance"), "tests/support/fixtures.rs must list every *.expect.yaml");
    fixtures::check_tables("conformance");
    let mut listed: Vec<String> = fixtures::example_fixtures!(fixture_ids).map(String::from).to_vec();
    listed.sort();
    assert_eq!(listed, ids_on_disk("examples"), "tests/support/fixtures.rs must list every *.expect.yaml");
    fixtures::check_tables("examples");
}

const INFRA: &str = "gateway-conformance-infra";
const WEB: &str = "gateway-conformance-web-backend";
const TUNNEL_ID: &str = "6ff42ae2-765d-4adf-8112-31c55c1551ef";

fn conformance_status(manifest: &str) -> Statuses {
    Statuses::of_fixture("conformance", manifest)
}

/// Asserts `Accepted` (and `ResolvedRefs` when given) on an HTTPRoute's entry for a Gateway.
fn assert_route(
    s: &Statuses,
    route: (&str, &str),
    gateway: &str,
    accepted: (&str, &str),
    resolved_refs: Option<(&str, &str)>,
) {
    let what = format!("HTTPRoute {}/{} parent {gateway}", route.0, route.1);
    let parent = s.route_parent("HTTPRoute", route, gateway, None);
    s.assert_condition(&what, parent, "Accepted", accepted.0, Some(accepted.1));
    if let Some((status, reason)) = resolved_refs {
        s.assert_condition(&what, parent, "ResolvedRefs", status, Some(reason));
    }
}

fn assert_attached_routes(s: &Statuses, gateway: &str, listener: &str, expected: u64) {
    let l = s.listener(INFRA, gateway, listener);
    assert_eq!(
        l["attachedRoutes"].as_u64(),
        Some(expected),
        "[{}] Gateway {gateway} listener {listener}: attachedRoutes\n{l:#}",
        s.label
    );
}

#[test]
fn status_hostname_intersection() {
    let s = conformance_status("httproute-hostname-intersection.yaml");
    let gw = "httproute-hostname-intersection";
    assert_route(&s, (INFRA, "no-intersecting-hosts"), gw, ("False", "NoMatchingListenerHostname"), None);
    for route in [
        "specific-host-matches-listener-specific-host",
        "specific-host-matches-listener-wildcard-host",
        "wildcard-host-matches-listener-specific-host",
        "wildcard-host-matches-listener-wildcard-host",
    ] {
        assert_route(&s, (INFRA, route), gw, ("True", "Accepted"), Some(("True", "ResolvedRefs")));
    }
    for (listener, attached) in [("listener-1", 2), ("listener-2", 1), ("listener-3", 1)] {
        assert_attached_routes(&s, gw, listener, attached);
        let l = s.listener(INFRA, gw, listener);
        let what = format!("Gateway {gw} listener {listener}");
        s.assert_condition(&what, l, "Accepted", "True", None);
        s.assert_condition(&what, l, "ResolvedRefs", "True", None);
        assert!(
            supported_kinds(l).contains(&"HTTPRoute".to_string()),
            "[{}] {what}: supportedKinds lacks HTTPRoute\n{l:#}",
            s.label
        );
    }
    assert_attached_routes(&s, "httproute-hostname-intersection-all", "listener-1", 1);
}

/// The conformance suite compares `parentRef` with group, kind, namespace and name set: the API
/// server defaults group and kind, so a reader of raw files applies them itself.
#[test]
fn status_parent_ref_carries_api_server_defaults() {
    let s = conformance_status("httproute-hostname-intersection.yaml");
    let parent = s.route_parent(
        "HTTPRoute",
        (INFRA, "no-intersecting-hosts"),
        "httproute-hostname-intersection",
        None,
    );
    let r = &parent["parentRef"];
    assert_eq!(r["group"], "gateway.networking.k8s.io", "[{}] parentRef.group\n{parent:#}", s.label);
    assert_eq!(r["kind"], "Gateway", "[{}] parentRef.kind\n{parent:#}", s.label);
    assert_eq!(r["namespace"], INFRA, "[{}] parentRef.namespace\n{parent:#}", s.label);
    assert_eq!(r["name"], "httproute-hostname-intersection", "[{}] parentRef.name\n{parent:#}", s.label);
    assert!(
        parent["controllerName"] == "cloudflared-routes/gateway-controller",
        "[{}] controllerName\n{parent:#}",
        s.label
    );
}

#[test]
fn status_gateway_class_gateway_and_address() {
    let s = Statuses::of_fixture_with(
        "conformance",
        "httproute-simple-same-namespace.yaml",
        &["--tunnel-id", TUNNEL_ID],
    );
    let class = s.object("GatewayClass", "", "cloudflared-routes");
    s.assert_condition("GatewayClass cloudflared-routes", &class["status"], "Accepted", "True", None);
    let gw = s.object("Gateway", INFRA, "same-namespace");
    s.assert_condition("Gateway same-namespace", &gw["status"], "Accepted", "True", None);
    let addresses = gw["status"]["addresses"].as_array().cloned().unwrap_or_default();
    let want = serde_json::json!({"type": "Hostname", "value": format!("{TUNNEL_ID}.cfargotunnel.com")});
    assert!(
        addresses.contains(&want),
        "[{}] Gateway same-namespace: status.addresses should contain {want}\n{gw:#}",
        s.label
    );
    assert_route(
        &s,
        (INFRA, "gateway-conformance-infra-test"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("True", "ResolvedRefs")),
    );
    assert_attached_routes(&s, "same-namespace", "http", 1);
}

#[test]
fn status_invalid_cross_namespace_backend_ref() {
    let s = conformance_status("httproute-invalid-cross-namespace-backend-ref.yaml");
    assert_route(
        &s,
        (INFRA, "invalid-cross-namespace-backend-ref"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("False", "RefNotPermitted")),
    );
}

#[test]
fn status_invalid_reference_grant() {
    let s = conformance_status("httproute-invalid-reference-grant.yaml");
    assert_route(
        &s,
        (INFRA, "reference-grant"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("False", "RefNotPermitted")),
    );
}

#[test]
fn status_reference_grant_present_and_missing() {
    let s = conformance_status("httproute-reference-grant.yaml");
    assert_route(
        &s,
        (INFRA, "reference-grant"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("True", "ResolvedRefs")),
    );
    let s = conformance_status("httproute-reference-grant-missing.yaml");
    assert_route(
        &s,
        (INFRA, "reference-grant"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("False", "RefNotPermitted")),
    );
}

#[test]
fn status_partially_invalid_via_invalid_reference_grant() {
    let s = conformance_status("httproute-partially-invalid-via-invalid-reference-grant.yaml");
    assert_route(
        &s,
        (INFRA, "invalid-reference-grant"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("False", "RefNotPermitted")),
    );
}

#[test]
fn status_nonexistent_backend_ref() {
    let s = conformance_status("httproute-invalid-nonexistent-backendref.yaml");
    assert_route(
        &s,
        (INFRA, "invalid-nonexistent-backend-ref"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("False", "BackendNotFound")),
    );
}

#[test]
fn status_backend_ref_unknown_kind() {
    let s = conformance_status("httproute-invalid-backendref-unknown-kind.yaml");
    assert_route(
        &s,
        (INFRA, "invalid-backend-ref-unknown-kind"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("False", "InvalidKind")),
    );
}

#[test]
fn status_omitted_backend_refs_resolve() {
    let s = conformance_status("httproute-omitted-backendrefs.yaml");
    assert_route(
        &s,
        (INFRA, "omitted-backendrefs"),
        "same-namespace",
        ("True", "Accepted"),
        Some(("True", "ResolvedRefs")),
    );
}

#[test]
fn status_cross_namespace_selector() {
    let s = conformance_status("httproute-cross-namespace.yaml");
    assert_route(
        &s,
        (WEB, "cross-namespace"),
        "backend-namespaces",
        ("True", "Accepted"),
        Some(("True", "ResolvedRefs")),
    );
    assert_attached_routes(&s, "backend-namespaces", "http", 1);
}

#[test]
fn status_invalid_cross_namespace_parent_ref() {
    let s = conformance_status("httproute-invalid-cross-namespace-parent-ref.yaml");
    assert_route(
        &s,
        (WEB, "invalid-cross-namespace-parent-ref"),
        "same-namespace",
        ("False", "NotAllowedByListeners"),
        None,
    );
    assert_attached_routes(&s, "same-namespace", "http", 0);
}

#[test]
fn status_disallowed_kind() {
    let s = conformance_status("httproute-disallowed-kind.yaml");
    assert_route(&s, (INFRA, "disallowed-kind"), "tlsroutes-only", ("False", "NotAllowedByListeners"), None);
}

#[test]
fn status_parent_ref_not_matching_port_or_section() {
    for (manifest, route, gateway) in [
        (
            "httproute-invalid-parentref-not-matching-listener-port.yaml",
            "httproute-listener-not-matching-route-port",
            "same-namespace",
        ),
        (
            "httproute-invalid-parentref-not-matching-section-name.yaml",
            "httproute-listener-not-matching-section-name",
            "same-namespace",
        ),
        (
            "httproute-invalid-parentref-section-name-not-matching-port.yaml",
            "httproute-listener-section-name-not-matching-port",
            "gateway-with-one-not-matching-port-and-section-name-route",
        ),
    ] {
        let s = conformance_status(manifest);
        assert_route(&s, (INFRA, route), gateway, ("False", "NoMatchingParent"), None);
        assert_attached_routes(&s, gateway, "http", 0);
    }
}

#[test]
fn status_gateway_invalid_route_kind() {
    let s = conformance_status("gateway-invalid-route-kind.yaml");
    for (gateway, kinds) in [
        ("gateway-only-invalid-route-kind", vec![]),
        ("gateway-supported-and-invalid-route-kind", vec!["HTTPRoute".to_string()]),
    ] {
        let l = s.listener(INFRA, gateway, "http");
        let what = format!("Gateway {gateway} listener http");
        s.assert_condition(&what, l, "ResolvedRefs", "False", Some("InvalidRouteKinds"));
        assert_eq!(supported_kinds(l), kinds, "[{}] {what}: supportedKinds\n{l:#}", s.label);
        assert_attached_routes(&s, gateway, "http", 0);
    }
}

#[test]
fn status_gateway_with_attached_routes() {
    let s = conformance_status("gateway-with-attached-routes.yaml");
    assert_attached_routes(&s, "gateway-with-one-attached-route", "http", 1);
    assert_attached_routes(&s, "gateway-with-two-attached-routes", "http", 2);
    assert_route(
        &s,
        (INFRA, "http-route-not-accepted"),
        "gateway-with-two-attached-routes",
        ("False", "NoMatchingListenerHostname"),
        None,
    );
    let parent = s.route_parent(
        "HTTPRoute",
        (INFRA, "http-route-4"),
        "unresolved-gateway-with-one-attached-unresolved-route",
        Some("tls"),
    );
    s.assert_condition("HTTPRoute http-route-4", parent, "ResolvedRefs", "False", Some("BackendNotFound"));
}

#[test]
fn status_header_only_matches_are_rejected() {
    let s = conformance_status("httproute-header-matching.yaml");
    assert_route(&s, (INFRA, "header-matching"), "same-namespace", ("False", "UnsupportedValue"), None);
    assert_attached_routes(&s, "same-namespace", "http", 0);
}

#[test]
fn status_method_matches_make_the_route_partially_invalid() {
    let s = conformance_status("httproute-method-matching.yaml");
    assert_route(&s, (INFRA, "method-matching"), "same-namespace", ("True", "Accepted"), None);
    let parent = s.route_parent("HTTPRoute", (INFRA, "method-matching"), "same-namespace", None);
    s.assert_condition(
        "HTTPRoute method-matching",
        parent,
        "PartiallyInvalid",
        "True",
        Some("UnsupportedValue"),
    );
}

#[test]
fn status_grpc_h2c_backend_is_unsupported() {
    let s = conformance_status("grpcroute-h2c-backend.yaml");
    let parent = s.route_parent("GRPCRoute", (INFRA, "h2c-backend"), "same-namespace", None);
    s.assert_condition("GRPCRoute h2c-backend", parent, "Accepted", "True", Some("Accepted"));
    s.assert_condition("GRPCRoute h2c-backend", parent, "ResolvedRefs", "False", Some("UnsupportedProtocol"));
}

#[test]
fn status_examples_all_accepted() {
    let s = Statuses::of_paths("examples/", &["examples/"]);
    let routes: Vec<&serde_json::Value> =
        s.docs.iter().filter(|d| d["kind"] == "HTTPRoute" || d["kind"] == "GRPCRoute").collect();
    assert_eq!(routes.len(), 7, "[{}] the examples hold 1 HTTPRoute and 6 GRPCRoutes", s.label);
    for route in routes {
        let (kind, ns, name) = (
            route["kind"].as_str().unwrap_or_default(),
            route["metadata"]["namespace"].as_str().unwrap_or_default(),
            route["metadata"]["name"].as_str().unwrap_or_default(),
        );
        let parent = s.route_parent(kind, (ns, name), "cloudflare-tunnel", None);
        let what = format!("{kind} {ns}/{name}");
        s.assert_condition(&what, parent, "Accepted", "True", Some("Accepted"));
        s.assert_condition(&what, parent, "ResolvedRefs", "True", Some("ResolvedRefs"));
    }
    for (listener, attached) in [("web", 5), ("grpc", 2)] {
        let l = s.listener("cloudflare-tunnel-system", "cloudflare-tunnel", listener);
        assert_eq!(l["attachedRoutes"].as_u64(), Some(attached), "[{}] listener {listener}\n{l:#}", s.label);
    }
}
