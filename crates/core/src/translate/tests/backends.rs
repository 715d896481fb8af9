//! Backends, filters, gRPC, conflicts and status.

use super::*;
use crate::model::{BackendRef, Filter, TargetPort};
use crate::status::ConditionStatus;
use crate::translate::{translate, GrpcBackendTls, Settings};

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
    let host_rule = t.rules.iter().find(|r| r.service().contains("v2")).unwrap();
    assert_eq!(host_rule.origin_request().http_host_header.as_deref(), Some("internal.example"));
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
                .rule(rule().exact("/kind").backend_ref(
                    BackendRef::service("x", 1).with_kind("unknownkind.example.com", "NonExistent"),
                ))
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
        t.rules.iter().find(|r| r.path() == Some(&format!("^{path}$"))).unwrap().service().to_string()
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
fn external_name_services_are_never_backends() {
    // An ExternalName aliasing a Service in another namespace would reach it without a
    // ReferenceGrant; one aliasing `localhost` would publish the pod's own ports.
    let snapshot = base()
        .with_service(service("infra", "alias").port(80).external_name())
        .with_service(service("infra", "plain").port(80))
        .with_route(
            http_route("infra", "r")
                .parent("infra", "gw")
                .hostname("a.example.com")
                .rule(rule().exact("/alias").backend("alias", 80))
                .rule(
                    rule()
                        .exact("/fallback")
                        .backend_ref(BackendRef::service("alias", 80).weight(9))
                        .backend_ref(BackendRef::service("plain", 80).weight(1)),
                ),
        )
        .with_route(
            grpc_route("infra", "g")
                .parent("infra", "gw")
                .hostname("grpc.example.com")
                .rule(rule().grpc(Some("pkg.S"), None).backend("alias", 80)),
        );
    let t = run(&snapshot);
    check(
        "external_name",
        &t,
        &[
            ("a.example.com", "/alias", "500"),
            ("a.example.com", "/fallback", "plain"),
            ("grpc.example.com", "/pkg.S/M", "503"),
        ],
    );
    assert!(t.rules.iter().all(|r| !r.service().contains("alias")), "{:#?}", t.rules);
    for route in ["r", "g"] {
        let resolved = parent_condition(&t, route, "ResolvedRefs");
        assert_eq!((resolved.status, resolved.reason), (ConditionStatus::False, "InvalidKind"), "{route}");
        assert!(resolved.message.contains("infra/alias is of type ExternalName"), "{}", resolved.message);
    }
}

#[test]
fn service_names_that_are_not_dns_labels_never_reach_the_url() {
    // Only a file can hold such a Service; in a URL, `ev@il.com#` would make `il.com` the host.
    for name in ["ev@il.com#", "Upper", "a.b", "-a", &"a".repeat(64)] {
        let snapshot = base().with_service(service("infra", name).port(80)).with_route(
            http_route("infra", "r").parent("infra", "gw").rule(rule().exact("/x").backend(name, 80)),
        );
        let t = run(&snapshot);
        check(name, &t, &[("a", "/x", "500")]);
        let resolved = parent_condition(&t, "r", "ResolvedRefs");
        assert_eq!((resolved.status, resolved.reason), (ConditionStatus::False, "BackendNotFound"), "{name}");
        assert!(resolved.message.contains("cannot exist"), "{name}: {}", resolved.message);
    }
}

#[test]
fn no_weight_note_when_no_backend_takes_the_traffic() {
    let weighted = |a: &str, b: &str| {
        rule()
            .backend_ref(BackendRef::service(a, 8080).weight(70))
            .backend_ref(BackendRef::service(b, 8080).weight(30))
    };
    let route = http_route("infra", "r")
        .parent("infra", "gw")
        .rule(weighted("v1", "v2").exact("/both"))
        .rule(weighted("v1", "missing").exact("/one"))
        .rule(weighted("missing", "gone").exact("/none"));
    let t = run(&base().with_route(route));
    check("weights", &t, &[("a", "/both", "v1"), ("a", "/one", "v1"), ("a", "/none", "500")]);
    // Rules 0 and 1 have their split collapsed onto v1; rule 2 has no backend to take it, and
    // no note says "http_status:500 takes all traffic".
    assert_eq!(t.notes.len(), 2, "{:?}", t.notes);
    for (note, rule) in t.notes.iter().zip(0..) {
        assert!(
            note.starts_with(&format!(
                "HTTPRoute infra/r spec.rules[{rule}]: weighted backends cannot be split"
            )),
            "{note}"
        );
        assert!(note.ends_with("v1.infra.svc.cluster.local:8080 takes all traffic"), "{note}");
    }
}

#[test]
fn a_route_that_renders_no_rule_claims_no_hostname() {
    // The older GRPCRoute has no rules (the CRD gives it none by default): it serves nothing,
    // so the younger HTTPRoute on the same hostname is not refused for it.
    let empty = grpc_route("infra", "empty").parent("infra", "gw").hostname("x.org").created(100);
    let http = http_route("infra", "web")
        .parent("infra", "gw")
        .hostname("x.org")
        .created(200)
        .rule(rule().backend("v1", 8080));
    let t = run(&base().with_route(empty).with_route(http));
    check("no_rules_no_claim", &t, &[("x.org", "/", "v1")]);
    assert_eq!(parent_condition(&t, "web", "Accepted").status, ConditionStatus::True);
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
    let rule = t.rules.iter().find(|r| r.service().contains("read")).unwrap();
    assert!(rule.service().starts_with("https://"));
    assert!(rule.origin_request().http2_origin && rule.origin_request().no_tls_verify);
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
    assert_eq!((accepted.status, accepted.reason), (ConditionStatus::False, "Conflicted"));
    assert_eq!(parent_condition(&t, "web", "Accepted").status, ConditionStatus::True);
    check("conflict", &t, &[("api.example.com", "/x", "v1"), ("b.example.com", "/a.B/C", "404")]);
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
    assert_eq!((programmed.status, programmed.reason), (ConditionStatus::Unknown, "Pending"));
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
    for c in t.statuses.routes[0].parents[0].conditions.iter() {
        assert_eq!(c.observed_generation, 7, "{c:?}");
    }
}

#[test]
fn grpc_backend_tls_verify_leaves_certificate_checks_on() {
    let snapshot = base().with_route(
        grpc_route("infra", "g")
            .parent("infra", "gw")
            .rule(rule().grpc(Some("a.B"), None).backend("v1", 8080)),
    );
    let insecure = run(&snapshot);
    assert!(
        insecure.rules.get(0).unwrap().origin_request().no_tls_verify,
        "insecure is the documented default"
    );
    let verify =
        translate(&snapshot, &Settings { grpc_backend_tls: GrpcBackendTls::Verify, ..Settings::default() });
    let o = verify.rules.get(0).unwrap().origin_request();
    assert!(o.http2_origin && !o.no_tls_verify, "{o:?}");
    assert!(verify.rules.get(0).unwrap().service().starts_with("https://"));
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
        let rule = t.rules.get(0).unwrap();
        assert_eq!(rule.service().starts_with("https://"), tls, "{name}: {}", rule.service());
        let expected = tls.then_some("v1.internal.example");
        assert_eq!(rule.origin_request().origin_server_name.as_deref(), expected, "{name}");
    }
}

#[test]
fn listeners_of_a_gateway_refused_for_its_addresses_are_never_programmed() {
    let mut gw = gateway("infra", "addr", "cf").listener(listener("http").hostname("a.example.com"));
    gw.requested_addresses = true;
    let mut t = run(&base().with_gateway(gw));
    t.statuses.set_programmed(&crate::status::Programmed::Yes);
    let status = t.statuses.gateways.iter().find(|g| g.name == "addr").unwrap();
    let programmed = |conditions: &[crate::status::Condition]| {
        conditions.iter().find(|c| c.type_ == "Programmed").map(|c| c.status)
    };
    assert_eq!(programmed(&status.conditions), Some(ConditionStatus::False));
    assert_eq!(programmed(&status.listeners[0].conditions), Some(ConditionStatus::False));
    assert!(t.rules.iter().all(|r| r.hostname() != Some("a.example.com")), "nothing rendered");
    let ok = t.statuses.gateways.iter().find(|g| g.name == "gw").unwrap();
    assert_eq!(programmed(&ok.listeners[0].conditions), Some(ConditionStatus::True));
}

#[test]
fn unresolved_backend_refs_are_listed_with_their_route_field_and_reason() {
    // A rule whose backends all fail serves 500: the list says why, beside the statuses.
    let snapshot = base().with_service(service("other", "web").port(80)).with_route(
        http_route("infra", "r")
            .parent("infra", "gw")
            .rule(rule().exact("/missing").backend("missing", 80))
            .rule(rule().exact("/other").backend_ref(BackendRef::service("web", 80).in_namespace("other"))),
    );
    let t = run(&snapshot);
    let listed: Vec<(&str, &str, Reason)> =
        t.unresolved_backends.iter().map(|r| (r.object.as_str(), r.field.as_str(), r.reason)).collect();
    assert_eq!(
        listed,
        [
            ("HTTPRoute infra/r", "spec.rules[0].backendRefs[0]", Reason::BackendNotFound),
            ("HTTPRoute infra/r", "spec.rules[1].backendRefs[0]", Reason::RefNotPermitted),
        ]
    );
    assert!(t.unresolved_backends[0].message.contains("infra/missing"), "{:?}", t.unresolved_backends);
    let resolved = parent_condition(&t, "r", "ResolvedRefs");
    assert!(resolved.message.starts_with("spec.rules[0].backendRefs[0]: "), "{}", resolved.message);
}

#[test]
fn ports_outside_1_to_65535_never_reach_the_url() {
    // Only a file can hold them; `http://…:-5` would make cloudflared refuse the whole config.
    let snapshot = base()
        .with_service(service("infra", "neg").port(-1))
        .with_service(service("infra", "big").port(70000))
        .with_service(service("infra", "hl").headless().port_with(
            80,
            None,
            None,
            Some(TargetPort::Number(-5)),
        ))
        .with_route(
            http_route("infra", "r")
                .parent("infra", "gw")
                .rule(rule().exact("/neg").backend("neg", -1))
                .rule(rule().exact("/big").backend("big", 70000))
                .rule(rule().exact("/hl").backend("hl", 80)),
        );
    let t = run(&snapshot);
    check("ports", &t, &[("a", "/neg", "500"), ("a", "/big", "500"), ("a", "/hl", "500")]);
    let reasons: Vec<(&str, Reason)> =
        t.unresolved_backends.iter().map(|u| (u.field.as_str(), u.reason)).collect();
    assert_eq!(
        reasons,
        [
            ("spec.rules[0].backendRefs[0]", Reason::BackendNotFound),
            ("spec.rules[1].backendRefs[0]", Reason::BackendNotFound),
            ("spec.rules[2].backendRefs[0]", Reason::BackendNotFound),
        ]
    );
    assert!(t.unresolved_backends[2].message.contains("targets -5"), "{:?}", t.unresolved_backends);
}

#[test]
fn a_grant_serves_the_namespace_it_names_and_no_other_whatever_the_order() {
    // Answers are remembered from rule to rule: one Service, reached from three namespaces
    // (its own, named or not; a granted one; another), is answered for each of them.
    let web = |ns: &str, name: &str, host: &str, named: bool| {
        let backend = BackendRef::service("web-backend", 8080);
        let backend = if named { backend.in_namespace("web") } else { backend };
        http_route(ns, name).parent("infra", "gw").hostname(host).rule(rule().backend_ref(backend))
    };
    let routes = [
        web("infra", "granted", "a.example.com", true),
        web("other", "refused", "b.example.com", true),
        web("web", "own", "c.example.com", false),
        web("web", "own-named", "d.example.com", true),
    ];
    for order in [[0, 1, 2, 3], [1, 0, 3, 2], [3, 2, 1, 0]] {
        let mut snapshot = base()
            .with_service(service("web", "web-backend").port(8080))
            .with_grant(reference_grant("web", "g", "HTTPRoute", "infra", None));
        for (created, i) in order.into_iter().enumerate() {
            snapshot = snapshot.with_route(routes[i].clone().created(created as i64));
        }
        let t = run(&snapshot);
        let name = format!("{order:?}");
        check(
            &name,
            &t,
            &[
                ("a.example.com", "/", "web-backend"),
                ("b.example.com", "/", "500"),
                ("c.example.com", "/", "web-backend"),
                ("d.example.com", "/", "web-backend"),
            ],
        );
        let listed: Vec<(&str, Reason)> =
            t.unresolved_backends.iter().map(|r| (r.object.as_str(), r.reason)).collect();
        assert_eq!(listed, [("HTTPRoute other/refused", Reason::RefNotPermitted)], "{name}");
        assert!(
            t.unresolved_backends[0].message.contains("from \"other\""),
            "{name}: {:?}",
            t.unresolved_backends
        );
    }
}
