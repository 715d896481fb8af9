//! Table-driven tests of the translation, each named after the rule it pins. Requests are
//! answered by a small first-match model of cloudflared over the produced rules (host exact or
//! `*.` suffix, unanchored regex search on the path), the final catch-all being 404.

use super::*;
use crate::build::*;
use crate::model::{BackendRef, Filter, Snapshot, TargetPort};
use crate::status::ConditionStatus;

const CTRL: &str = DEFAULT_CONTROLLER_NAME;

fn base() -> Snapshot {
    Snapshot::default()
        .with_class(gateway_class("cf", CTRL))
        .with_gateway(gateway("infra", "gw", "cf").listener(listener("http").from_all()))
        .with_service(service("infra", "v1").port(8080))
        .with_service(service("infra", "v2").port(8080))
        .with_service(service("infra", "v3").port(8080))
}

fn run(snapshot: &Snapshot) -> Translation {
    translate(snapshot, &Settings::default())
}

/// The service cloudflared would pick for `host` + `path` (first match; 404 when none).
fn serve(t: &Translation, host: &str, path: &str) -> String {
    for rule in &t.rules {
        let host_ok = match rule.hostname.as_deref() {
            None | Some("") | Some("*") => true,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => host.ends_with(suffix),
                None => h == host,
            },
        };
        let path_ok = rule.path.as_ref().is_none_or(|p| regex::Regex::new(p).unwrap().is_match(path));
        if host_ok && path_ok {
            return short(&rule.service);
        }
    }
    "404".to_string()
}

/// `http://v1.infra.svc.cluster.local:8080` → `v1`; `http_status:404` → `404`.
fn short(service: &str) -> String {
    if let Some(code) = service.strip_prefix("http_status:") {
        return code.to_string();
    }
    let host = service.split("://").nth(1).unwrap_or(service);
    host.split('.').next().unwrap_or(host).to_string()
}

fn check(name: &str, t: &Translation, requests: &[(&str, &str, &str)]) {
    for (host, path, expected) in requests {
        let got = serve(t, host, path);
        assert_eq!(
            got, *expected,
            "{name}: {host}{path} served by {got}, expected {expected}\nrules: {:#?}",
            t.rules
        );
    }
}

fn parent_condition<'a>(t: &'a Translation, name: &str, type_: &str) -> &'a crate::status::Condition {
    let route =
        t.statuses.routes.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no status for {name}"));
    route.parents[0]
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("{name}: no {type_}"))
}

#[test]
fn exact_beats_longer_prefix_and_longest_prefix_wins() {
    // Conformance HTTPRoutePathMatchOrder.
    let route = http_route("infra", "order")
        .parent("infra", "gw")
        .rule(rule().exact("/match").backend("v1", 8080))
        .rule(rule().exact("/match/exact").backend("v2", 8080))
        .rule(rule().exact("/match/exact/one").backend("v3", 8080))
        .rule(rule().prefix("/match/").backend("v3", 8080))
        .rule(rule().prefix("/match/prefix/").backend("v1", 8080))
        .rule(rule().prefix("/match/prefix/one").backend("v2", 8080));
    let t = run(&base().with_route(route));
    check(
        "path_match_order",
        &t,
        &[
            ("a", "/match/exact/one", "v3"),
            ("a", "/match/exact", "v2"),
            ("a", "/match", "v1"),
            ("a", "/match/prefix/one/any", "v2"),
            ("a", "/match/prefix/any", "v1"),
            ("a", "/match/any", "v3"),
            ("a", "/matchx", "404"),
        ],
    );
}

#[test]
fn older_route_wins_tie() {
    let young = http_route("infra", "a-young")
        .parent("infra", "gw")
        .created(200)
        .rule(rule().prefix("/x").backend("v1", 8080));
    let old = http_route("infra", "z-old")
        .parent("infra", "gw")
        .created(100)
        .rule(rule().prefix("/x").backend("v2", 8080));
    let t = run(&base().with_route(young).with_route(old));
    check("older_route_wins_tie", &t, &[("a", "/x", "v2")]);
    assert_eq!(t.shadowed.len(), 1, "the younger identical rule is unreachable and dropped");
}

#[test]
fn namespace_breaks_timestamp_tie() {
    let b = http_route("b-ns", "r")
        .parent("infra", "gw")
        .created(100)
        .rule(rule().prefix("/x").backend("v1", 8080));
    let a = http_route("a-ns", "r")
        .parent("infra", "gw")
        .created(100)
        .rule(rule().prefix("/x").backend("v2", 8080));
    let snapshot = base()
        .with_service(service("a-ns", "v2").port(8080))
        .with_service(service("b-ns", "v1").port(8080))
        .with_route(b)
        .with_route(a);
    check("namespace_breaks_timestamp_tie", &run(&snapshot), &[("a", "/x", "v2")]);
}

#[test]
fn first_rule_wins_within_a_route() {
    let route = http_route("infra", "r")
        .parent("infra", "gw")
        .rule(rule().prefix("/x").backend("v1", 8080))
        .rule(rule().prefix("/x").backend("v2", 8080));
    check("first_rule_wins_within_a_route", &run(&base().with_route(route)), &[("a", "/x/y", "v1")]);
}

#[test]
fn exact_hostname_beats_wildcard_route_hostname() {
    let wild = http_route("infra", "wild")
        .parent("infra", "gw")
        .hostname("*.example.com")
        .rule(rule().backend("v1", 8080));
    let exact = http_route("infra", "exact")
        .parent("infra", "gw")
        .hostname("a.example.com")
        .rule(rule().prefix("/p").backend("v2", 8080));
    let t = run(&base().with_route(wild).with_route(exact));
    check(
        "exact_hostname_beats_wildcard",
        &t,
        &[
            ("a.example.com", "/p", "v2"),
            ("a.example.com", "/other", "v1"),
            ("b.example.com", "/p", "v1"),
            ("example.com", "/", "404"),
        ],
    );
}

#[test]
fn wildcard_never_matches_apex() {
    let snapshot = Snapshot::default()
        .with_class(gateway_class("cf", CTRL))
        .with_gateway(gateway("infra", "gw", "cf").listener(listener("w").hostname("*.foo.com")))
        .with_service(service("infra", "v3").port(8080))
        .with_route(http_route("infra", "r").parent("infra", "gw").rule(rule().backend("v3", 8080)));
    check(
        "wildcard_never_matches_apex",
        &run(&snapshot),
        &[("foo.com", "/", "404"), ("a.foo.com", "/", "v3"), ("multiple.prefixes.foo.com", "/", "v3")],
    );
}

#[test]
fn listener_isolation_fences_each_listener_hostname() {
    // Conformance GatewayHTTPListenerIsolation.
    let gw = gateway("infra", "iso", "cf")
        .listener(listener("empty-hostname"))
        .listener(listener("wildcard-example-com").hostname("*.example.com"))
        .listener(listener("wildcard-foo-example-com").hostname("*.foo.example.com"))
        .listener(listener("abc-foo-example-com").hostname("abc.foo.example.com"));
    let mut snapshot = base().with_gateway(gw);
    for l in ["empty-hostname", "wildcard-example-com", "wildcard-foo-example-com", "abc-foo-example-com"] {
        snapshot = snapshot.with_route(
            http_route("infra", l)
                .parent_section("infra", "iso", l)
                .rule(rule().prefix(&format!("/{l}")).backend("v1", 8080)),
        );
    }
    let t = translate(
        &snapshot,
        &Settings {
            gateways: vec![ObjectRef { namespace: "infra".into(), name: "iso".into() }],
            ..Settings::default()
        },
    );
    let hosts = ["bar.com", "bar.example.com", "bar.foo.example.com", "abc.foo.example.com"];
    let paths =
        ["/empty-hostname", "/wildcard-example-com", "/wildcard-foo-example-com", "/abc-foo-example-com"];
    for (i, host) in hosts.iter().enumerate() {
        for (j, path) in paths.iter().enumerate() {
            let expected = if i == j { "v1" } else { "404" };
            check("listener_isolation", &t, &[(host, path, expected)]);
        }
    }
}

#[test]
fn listener_hostname_matching_prefers_exact_listener() {
    // Conformance HTTPRouteListenerHostnameMatching.
    let gw = gateway("infra", "lh", "cf")
        .listener(listener("listener-1").hostname("bar.com"))
        .listener(listener("listener-2").hostname("foo.bar.com"))
        .listener(listener("listener-3").hostname("*.bar.com"))
        .listener(listener("listener-4").hostname("*.foo.com"));
    let snapshot = base()
        .with_gateway(gw)
        .with_route(
            http_route("infra", "backend-v1")
                .parent_section("infra", "lh", "listener-1")
                .rule(rule().backend("v1", 8080)),
        )
        .with_route(
            http_route("infra", "backend-v2")
                .parent_section("infra", "lh", "listener-2")
                .rule(rule().backend("v2", 8080)),
        )
        .with_route(
            http_route("infra", "backend-v3")
                .parent_section("infra", "lh", "listener-3")
                .parent_section("infra", "lh", "listener-4")
                .rule(rule().backend("v3", 8080)),
        );
    let settings = Settings {
        gateways: vec![ObjectRef { namespace: "infra".into(), name: "lh".into() }],
        ..Settings::default()
    };
    let t = translate(&snapshot, &settings);
    check(
        "listener_hostname_matching",
        &t,
        &[
            ("bar.com", "/", "v1"),
            ("foo.bar.com", "/", "v2"),
            ("baz.bar.com", "/", "v3"),
            ("multiple.prefixes.bar.com", "/", "v3"),
            ("multiple.prefixes.foo.com", "/", "v3"),
            ("foo.com", "/", "404"),
            ("no.matching.host", "/", "404"),
        ],
    );
}

#[test]
fn no_hostname_intersection_is_not_accepted() {
    let gw = gateway("infra", "hi", "cf").listener(listener("l1").hostname("very.specific.com"));
    let route = http_route("infra", "r5")
        .parent("infra", "hi")
        .hostname("specific.but.wrong.com")
        .rule(rule().backend("v2", 8080));
    let t = run(&base().with_gateway(gw).with_route(route));
    let accepted = parent_condition(&t, "r5", "Accepted");
    assert_eq!(
        (accepted.status, accepted.reason.as_str()),
        (ConditionStatus::False, "NoMatchingListenerHostname")
    );
    check("no_intersection_renders_nothing", &t, &[("specific.but.wrong.com", "/", "404")]);
}

#[test]
fn attachment_failures_have_the_spec_reasons() {
    let same_only = gateway("infra", "same", "cf").listener(listener("http"));
    let cases: &[(&str, crate::model::Route, &str)] = &[
        (
            "other_namespace_with_from_same",
            http_route("web", "r").parent("infra", "same").rule(rule().backend("v1", 8080)),
            "NotAllowedByListeners",
        ),
        (
            "section_name_not_found",
            http_route("infra", "r")
                .parent_section("infra", "same", "http1")
                .rule(rule().backend("v1", 8080)),
            "NoMatchingParent",
        ),
        (
            "port_not_found",
            http_route("infra", "r")
                .parent_ref(crate::model::ParentRef {
                    namespace: Some("infra".into()),
                    name: "same".into(),
                    port: Some(81),
                    ..Default::default()
                })
                .rule(rule().backend("v1", 8080)),
            "NoMatchingParent",
        ),
        (
            "section_and_port_disagree",
            http_route("infra", "r")
                .parent_ref(crate::model::ParentRef {
                    namespace: Some("infra".into()),
                    name: "same".into(),
                    section_name: Some("http".into()),
                    port: Some(81),
                    ..Default::default()
                })
                .rule(rule().backend("v1", 8080)),
            "NoMatchingParent",
        ),
    ];
    for (name, route, reason) in cases {
        let snapshot = base().with_service(service("web", "v1").port(8080)).with_gateway(same_only.clone());
        let t = run(&snapshot.with_route(route.clone()));
        let accepted = parent_condition(&t, "r", "Accepted");
        assert_eq!((accepted.status, accepted.reason.as_str()), (ConditionStatus::False, *reason), "{name}");
        let resolved = parent_condition(&t, "r", "ResolvedRefs");
        assert_eq!(resolved.status, ConditionStatus::True, "{name}: ResolvedRefs stays True");
        let gw = t.statuses.gateways.iter().find(|g| g.name == "same").unwrap();
        assert_eq!(gw.listeners[0].attached_routes, 0, "{name}: not counted");
    }
}

#[test]
fn parent_refs_to_other_gateways_get_no_status() {
    let route = http_route("infra", "r").parent("infra", "someone-else").rule(rule().backend("v1", 8080));
    let t = run(&base().with_route(route));
    assert!(t.statuses.routes.is_empty());
    assert!(t.rules.is_empty());
}

#[test]
fn selector_namespaces_follow_namespace_labels() {
    let gw = gateway("infra", "sel", "cf")
        .listener(listener("http").from_selector("gateway-conformance", "backend"));
    let snapshot = base()
        .with_gateway(gw)
        .with_namespace(namespace("web", &[("gateway-conformance", "backend")]))
        .with_namespace(namespace("other", &[]))
        .with_service(service("web", "web-backend").port(8080))
        .with_service(service("other", "o").port(8080))
        .with_route(
            http_route("web", "ok")
                .parent("infra", "sel")
                .hostname("ok.com")
                .rule(rule().backend("web-backend", 8080)),
        )
        .with_route(
            http_route("other", "no")
                .parent("infra", "sel")
                .hostname("no.com")
                .rule(rule().backend("o", 8080)),
        );
    let t = run(&snapshot);
    check("selector", &t, &[("ok.com", "/", "web-backend"), ("no.com", "/", "404")]);
    assert_eq!(parent_condition(&t, "no", "Accepted").reason, "NotAllowedByListeners");
}

#[test]
fn unexpressible_matches_are_dropped_never_widened() {
    let route = http_route("infra", "r")
        .parent("infra", "gw")
        .rule(rule().with_headers("/", 1).backend("v2", 8080))
        .rule(rule().with_method("/m", "POST").backend("v2", 8080))
        .rule(rule().prefix("/ok").backend("v1", 8080));
    let t = run(&base().with_route(route));
    check("never_widened", &t, &[("a", "/", "404"), ("a", "/m", "404"), ("a", "/ok", "v1")]);
    let partial = parent_condition(&t, "r", "PartiallyInvalid");
    assert_eq!((partial.status, partial.reason.as_str()), (ConditionStatus::True, "UnsupportedValue"));
    assert!(partial.message.contains("spec.rules[0].matches[0].headers"), "{}", partial.message);
    assert!(partial.message.contains("spec.rules[1].matches[0].method"), "{}", partial.message);
    assert_eq!(parent_condition(&t, "r", "Accepted").status, ConditionStatus::True);
}

#[test]
fn route_with_only_unexpressible_rules_is_not_accepted() {
    let route =
        http_route("infra", "r").parent("infra", "gw").rule(rule().with_headers("/", 2).backend("v1", 8080));
    let t = run(&base().with_route(route));
    let accepted = parent_condition(&t, "r", "Accepted");
    assert_eq!((accepted.status, accepted.reason.as_str()), (ConditionStatus::False, "UnsupportedValue"));
    assert!(t.rules.is_empty());
    assert_eq!(t.statuses.gateways[0].listeners[0].attached_routes, 0);
}

#[test]
fn filters_other_than_host_rewrite_drop_the_rule() {
    let route = http_route("infra", "r")
        .parent("infra", "gw")
        .rule(rule().prefix("/mod").filter(Filter::Other("RequestHeaderModifier".into())).backend("v1", 8080))
        .rule(
            rule()
                .prefix("/path")
                .filter(Filter::UrlRewrite { hostname: None, rewrites_path: true })
                .backend("v1", 8080),
        )
        .rule(
            rule()
                .prefix("/host")
                .filter(Filter::UrlRewrite {
                    hostname: Some("internal.example".into()),
                    rewrites_path: false,
                })
                .backend("v2", 8080),
        );
    let t = run(&base().with_route(route));
    check("filters", &t, &[("a", "/mod", "404"), ("a", "/path", "404"), ("a", "/host", "v2")]);
    let host_rule = t.rules.iter().find(|r| r.service.contains("v2")).unwrap();
    assert_eq!(host_rule.origin_request.http_host_header.as_deref(), Some("internal.example"));
}

#[test]
fn backends_resolve_with_weights_grants_and_protocols() {
    let snapshot = base()
        .with_service(service("infra", "tls").port_with(443, Some("https"), Some("https"), None))
        .with_service(service("infra", "h2c").port_with(8081, None, Some("kubernetes.io/h2c"), None))
        .with_service(
            service("infra", "headless")
                .port_with(8080, None, None, Some(TargetPort::Number(3000)))
                .headless(),
        )
        .with_service(service("web", "web-backend").port(8080))
        .with_service(service("app", "granted").port(8080))
        .with_grant(reference_grant("app", "g", "HTTPRoute", "infra", Some("granted")))
        .with_route(
            http_route("infra", "r")
                .parent("infra", "gw")
                .rule(
                    rule()
                        .exact("/weights")
                        .backend_ref(BackendRef::service("v1", 8080).weight(70))
                        .backend_ref(BackendRef::service("v2", 8080).weight(30)),
                )
                .rule(rule().exact("/zero").backend_ref(BackendRef::service("v1", 8080).weight(0)))
                .rule(rule().exact("/none"))
                .rule(rule().exact("/missing").backend("nonexistent", 8080))
                .rule(rule().exact("/kind").backend_ref(BackendRef {
                    group: "unknownkind.example.com".into(),
                    kind: "NonExistent".into(),
                    ..BackendRef::service("x", 1)
                }))
                .rule(
                    rule()
                        .exact("/cross")
                        .backend_ref(BackendRef::service("web-backend", 8080).in_namespace("web")),
                )
                .rule(
                    rule()
                        .exact("/granted")
                        .backend_ref(BackendRef::service("granted", 8080).in_namespace("app")),
                )
                .rule(rule().exact("/tls").backend("tls", 443))
                .rule(rule().exact("/h2c").backend("h2c", 8081))
                .rule(rule().exact("/headless").backend("headless", 8080)),
        );
    let t = run(&snapshot);
    check(
        "backends",
        &t,
        &[
            ("a", "/weights", "v1"),
            ("a", "/zero", "500"),
            ("a", "/none", "500"),
            ("a", "/missing", "500"),
            ("a", "/kind", "500"),
            ("a", "/cross", "500"),
            ("a", "/granted", "granted"),
            ("a", "/h2c", "500"),
        ],
    );
    let service_of = |path: &str| {
        t.rules.iter().find(|r| r.path.as_deref() == Some(&format!("^{path}$"))).unwrap().service.to_string()
    };
    assert_eq!(service_of("/tls"), "https://tls.infra.svc.cluster.local:443");
    assert_eq!(
        service_of("/headless"),
        "http://headless.infra.svc.cluster.local:3000",
        "headless Services dial the target port"
    );
    assert_eq!(service_of("/granted"), "http://granted.app.svc.cluster.local:8080");
    let resolved = parent_condition(&t, "r", "ResolvedRefs");
    assert_eq!(resolved.status, ConditionStatus::False);
    for needle in ["nonexistent", "unknownkind.example.com", "web/web-backend", "h2c"] {
        assert!(
            resolved.message.contains(needle),
            "ResolvedRefs message lacks {needle}: {}",
            resolved.message
        );
    }
    assert_eq!(
        parent_condition(&t, "r", "Accepted").status,
        ConditionStatus::True,
        "invalid backends keep the route accepted"
    );
}

#[test]
fn deleting_the_grant_revokes_the_backend() {
    let route = http_route("infra", "r")
        .parent("infra", "gw")
        .rule(rule().backend_ref(BackendRef::service("web-backend", 8080).in_namespace("web")));
    let without = base().with_service(service("web", "web-backend").port(8080)).with_route(route);
    let with = without.clone().with_grant(reference_grant("web", "g", "HTTPRoute", "infra", None));
    check("with_grant", &run(&with), &[("a", "/", "web-backend")]);
    check("without_grant", &run(&without), &[("a", "/", "500")]);
    assert_eq!(parent_condition(&run(&without), "r", "ResolvedRefs").reason, "RefNotPermitted");
    // A grant for GRPCRoutes does not cover HTTPRoutes; nor one from another namespace.
    let wrong_kind = without.clone().with_grant(reference_grant("web", "g", "GRPCRoute", "infra", None));
    let wrong_ns = without.clone().with_grant(reference_grant("web", "g", "HTTPRoute", "elsewhere", None));
    let wrong_name = without.with_grant(reference_grant("web", "g", "HTTPRoute", "infra", Some("other")));
    for (name, s) in [("wrong_kind", wrong_kind), ("wrong_ns", wrong_ns), ("wrong_name", wrong_name)] {
        check(name, &run(&s), &[("a", "/", "500")]);
    }
}

#[test]
fn grpc_routes_render_tls_http2_and_method_precedence() {
    let snapshot = base()
        .with_service(service("infra", "read").port(50051))
        .with_service(service("infra", "write").port(50051))
        .with_route(
            grpc_route("infra", "g")
                .parent("infra", "gw")
                .hostname("api.example.com")
                .rule(rule().grpc(Some("pkg.UserService"), None).backend("write", 50051))
                .rule(rule().grpc(Some("pkg.UserService"), Some("GetUser")).backend("read", 50051)),
        );
    let t = run(&snapshot);
    assert!(t.uses_grpc);
    check(
        "grpc_method_precedence",
        &t,
        &[
            ("api.example.com", "/pkg.UserService/GetUser", "read"),
            ("api.example.com", "/pkg.UserService/Delete", "write"),
            ("api.example.com", "/pkg.OrderService/Get", "404"),
        ],
    );
    let rule = t.rules.iter().find(|r| r.service.contains("read")).unwrap();
    assert!(rule.service.starts_with("https://"));
    assert!(rule.origin_request.http2_origin && rule.origin_request.no_tls_verify);
}

#[test]
fn grpc_without_valid_backend_answers_503_and_h2c_is_unsupported() {
    let snapshot = base()
        .with_service(service("infra", "plain").port_with(8080, None, Some("kubernetes.io/h2c"), None))
        .with_route(
            grpc_route("infra", "g")
                .parent("infra", "gw")
                .rule(rule().grpc(Some("a.B"), None).backend("plain", 8080)),
        );
    let t = run(&snapshot);
    check("grpc_503", &t, &[("x", "/a.B/C", "503")]);
    let resolved = parent_condition(&t, "g", "ResolvedRefs");
    assert_eq!(resolved.reason, "UnsupportedProtocol");
}

#[test]
fn older_route_keeps_hostname_in_http_grpc_conflict() {
    let http = http_route("infra", "web")
        .parent("infra", "gw")
        .hostname("api.example.com")
        .created(100)
        .rule(rule().backend("v1", 8080));
    let grpc = grpc_route("infra", "rpc")
        .parent("infra", "gw")
        .hostname("*.example.com")
        .created(200)
        .rule(rule().backend("v2", 8080));
    let t = run(&base().with_route(grpc).with_route(http));
    let accepted = parent_condition(&t, "rpc", "Accepted");
    assert_eq!((accepted.status, accepted.reason.as_str()), (ConditionStatus::False, "Conflicted"));
    assert_eq!(parent_condition(&t, "web", "Accepted").status, ConditionStatus::True);
    check("conflict", &t, &[("api.example.com", "/x", "v1"), ("b.example.com", "/a.B/C", "404")]);
}

#[test]
fn hostnames_the_schema_refuses_reject_the_route() {
    for (name, bad) in [
        ("port", "api.example.com:443"),
        ("ip", "10.1.2.3"),
        ("uppercase", "API.example.com"),
        ("star_inside", "a.*.com"),
    ] {
        let route =
            http_route("infra", "r").parent("infra", "gw").hostname(bad).rule(rule().backend("v1", 8080));
        let t = run(&base().with_route(route));
        let accepted = parent_condition(&t, "r", "Accepted");
        assert_eq!(
            (accepted.status, accepted.reason.as_str()),
            (ConditionStatus::False, "UnsupportedValue"),
            "{name}"
        );
        assert!(accepted.message.contains("spec.hostnames[0]"), "{name}: {}", accepted.message);
        assert!(t.rules.is_empty(), "{name}: nothing rendered");
    }
}

#[test]
fn route_matching_every_request_is_the_last_rule() {
    let all = http_route("infra", "all").parent("infra", "gw").rule(rule().backend("v1", 8080));
    let gw2 = gateway("infra", "gw2", "cf").listener(listener("h").hostname("x.com"));
    let t = run(&base().with_gateway(gw2).with_route(all));
    assert!(t.rules.last().unwrap().is_catch_all());
    assert_eq!(t.rules.iter().filter(|r| r.is_catch_all()).count(), 1);
    check("catch_all_route", &t, &[("x.com", "/", "404"), ("y.com", "/", "v1")]);
}

#[test]
fn listeners_differing_only_by_port_share_one_hostname_block() {
    let gw = gateway("infra", "ports", "cf")
        .listener(listener("l80").hostname("foo.com"))
        .listener(listener("l8080").hostname("foo.com").port(8080));
    let snapshot = base()
        .with_gateway(gw)
        .with_route(
            http_route("infra", "a")
                .parent_section("infra", "ports", "l80")
                .created(1)
                .rule(rule().prefix("/a").backend("v1", 8080)),
        )
        .with_route(
            http_route("infra", "b")
                .parent_section("infra", "ports", "l8080")
                .created(2)
                .rule(rule().prefix("/b").backend("v2", 8080)),
        );
    let t = run(&snapshot);
    check("merged_ports", &t, &[("foo.com", "/a", "v1"), ("foo.com", "/b", "v2"), ("foo.com", "/c", "404")]);
    assert_eq!(
        t.rules.iter().filter(|r| &*r.service == "http_status:404").count(),
        1,
        "one fence for the shared hostname"
    );
}

#[test]
fn listener_kinds_and_protocols_are_checked() {
    let gw = gateway("infra", "k", "cf").listener(listener("tcp").protocol("TCP")).listener(
        listener("bad-kinds").kinds(&[
            ("gateway.networking.k8s.io", "InvalidRoute"),
            ("gateway.networking.k8s.io", "HTTPRoute"),
        ]),
    );
    let t = run(&base().with_gateway(gw));
    let status = t.statuses.gateways.iter().find(|g| g.name == "k").unwrap();
    let tcp = &status.listeners[0];
    assert_eq!(tcp.conditions[0].reason, "UnsupportedProtocol");
    assert!(tcp.supported_kinds.is_empty());
    let kinds = &status.listeners[1];
    assert_eq!(kinds.conditions[1].reason, "InvalidRouteKinds");
    assert_eq!(kinds.supported_kinds.iter().map(|k| k.kind.as_str()).collect::<Vec<_>>(), ["HTTPRoute"]);
}

#[test]
fn gateway_status_reports_tunnel_address_and_pending_programmed() {
    let settings =
        Settings { tunnel_id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()), ..Settings::default() };
    let t = translate(&base(), &settings);
    let gw = &t.statuses.gateways[0];
    assert_eq!(gw.addresses, ["6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com"]);
    let programmed = gw.conditions.iter().find(|c| c.type_ == "Programmed").unwrap();
    assert_eq!((programmed.status, programmed.reason.as_str()), (ConditionStatus::Unknown, "Pending"));
    let class = &t.statuses.gateway_classes[0];
    let mut sorted = class.supported_features.clone();
    sorted.sort();
    assert_eq!(class.supported_features, sorted, "supportedFeatures sorted");
}

#[test]
fn observed_generation_is_on_every_condition() {
    let route = http_route("infra", "r")
        .parent("infra", "gw")
        .generation(7)
        .rule(rule().with_headers("/", 1).backend("v1", 8080))
        .rule(rule().backend("v1", 8080));
    let t = run(&base().with_route(route));
    for c in &t.statuses.routes[0].parents[0].conditions {
        assert_eq!(c.observed_generation, 7, "{c:?}");
    }
}

#[test]
fn same_objects_in_any_order_give_the_same_rules() {
    let routes = vec![
        http_route("infra", "a")
            .parent("infra", "gw")
            .hostname("a.com")
            .rule(rule().prefix("/x").backend("v1", 8080)),
        http_route("infra", "b")
            .parent("infra", "gw")
            .hostname("*.com")
            .rule(rule().exact("/y").backend("v2", 8080)),
        grpc_route("infra", "c")
            .parent("infra", "gw")
            .hostname("c.com")
            .rule(rule().grpc(Some("p.S"), None).backend("v3", 8080)),
    ];
    let mut forward = base();
    let mut backward = base();
    for r in &routes {
        forward = forward.with_route(r.clone());
    }
    for r in routes.iter().rev() {
        backward = backward.with_route(r.clone());
    }
    backward.services.reverse();
    assert_eq!(run(&forward), run(&backward));
}

#[test]
fn grpc_backend_tls_verify_leaves_certificate_checks_on() {
    let snapshot = base().with_route(
        grpc_route("infra", "g")
            .parent("infra", "gw")
            .rule(rule().grpc(Some("a.B"), None).backend("v1", 8080)),
    );
    let insecure = run(&snapshot);
    assert!(insecure.rules[0].origin_request.no_tls_verify, "insecure is the documented default");
    let verify =
        translate(&snapshot, &Settings { grpc_backend_tls: GrpcBackendTls::Verify, ..Settings::default() });
    let o = &verify.rules[0].origin_request;
    assert!(o.http2_origin && !o.no_tls_verify, "{o:?}");
    assert!(verify.rules[0].service.starts_with("https://"));
}

#[test]
fn backend_tls_policy_makes_an_https_origin_with_its_server_name() {
    use crate::model::{BackendTlsPolicy, Meta, PolicyTarget};
    let policy = |section: Option<&str>| BackendTlsPolicy {
        meta: Meta::new("infra", "tls"),
        targets: vec![PolicyTarget {
            group: String::new(),
            kind: "Service".into(),
            name: "v1".into(),
            section_name: section.map(str::to_string),
        }],
        hostname: "v1.internal.example".into(),
    };
    let route = http_route("infra", "r").parent("infra", "gw").rule(rule().backend("v1", 8080));
    for (name, p, tls) in
        [("whole_service", policy(None), true), ("other_port_name", policy(Some("metrics")), false)]
    {
        let mut snapshot = base().with_route(route.clone());
        snapshot.backend_tls_policies.push(p);
        let t = run(&snapshot);
        let rule = &t.rules[0];
        assert_eq!(rule.service.starts_with("https://"), tls, "{name}: {}", rule.service);
        let expected = tls.then(|| "v1.internal.example".to_string());
        assert_eq!(rule.origin_request.origin_server_name, expected, "{name}");
    }
}
