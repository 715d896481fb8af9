//! Each test pins one default or mapping rule; objects are written as the YAML they stand for.

use super::*;
use routes_core::model::{
    AllowedRoutes, BackendRef, Filter, GroupKind, GrpcMatch, GrpcMethodMatch, HttpMatch, LabelSelector, Meta,
    MethodKind, ParentRef, PathKind, PathMatch, RouteMatch, RouteNamespaces, RouteRule, TargetPort,
};
use std::collections::BTreeMap;

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// An HTTPRoute `ns/r` with `spec` written in flow style.
fn http(spec: &str) -> model::Route {
    http_route(&parse(&format!("metadata: {{name: r, namespace: ns}}\nspec: {spec}\n")))
}

fn grpc(spec: &str) -> model::Route {
    grpc_route(&parse(&format!("metadata: {{name: r, namespace: ns}}\nspec: {spec}\n")))
}

fn gateway_listener(listener: &str) -> model::Listener {
    let yaml = format!(
        "metadata: {{name: g, namespace: ns}}\nspec: {{gatewayClassName: c, listeners: [{listener}]}}\n"
    );
    gateway(&parse(&yaml)).listeners.remove(0)
}

fn path_match(kind: PathKind, value: &str) -> RouteMatch {
    RouteMatch::Http(HttpMatch {
        path: PathMatch { kind, value: value.into() },
        headers: 0,
        query_params: 0,
        method: None,
    })
}

fn prefix_slash() -> RouteMatch {
    path_match(PathKind::PathPrefix, "/")
}

#[test]
fn http_match_defaults() {
    use PathKind::*;
    let cases: &[(&str, &str, Vec<RouteMatch>)] = &[
        ("match_without_path_defaults_to_prefix_slash", "{rules: [{matches: [{}]}]}", vec![prefix_slash()]),
        ("empty_matches_default_to_one_prefix_match", "{rules: [{matches: []}]}", vec![prefix_slash()]),
        ("absent_matches_default_to_one_prefix_match", "{rules: [{backendRefs: []}]}", vec![prefix_slash()]),
        ("path_type_defaults_to_prefix", "{rules: [{matches: [{path: {value: /api}}]}]}", vec![path_match(PathPrefix, "/api")]),
        ("path_value_defaults_to_slash", "{rules: [{matches: [{path: {type: Exact}}]}]}", vec![path_match(Exact, "/")]),
        ("empty_path_is_prefix_slash", "{rules: [{matches: [{path: {}}]}]}", vec![prefix_slash()]),
        (
            "path_kinds_and_values_are_kept_as_written",
            "{rules: [{matches: [{path: {type: RegularExpression, value: '/a.*'}}, {path: {type: Exact, value: /x%20y}}]}]}",
            vec![path_match(RegularExpression, "/a.*"), path_match(Exact, "/x%20y")],
        ),
    ];
    for (name, spec, want) in cases {
        let route = http(spec);
        assert_eq!(route.rules[0].matches.as_slice(), want.as_slice(), "{name}");
    }
}

#[test]
fn route_without_rules_gets_the_crd_default_rule() {
    let route = http("{hostnames: [a.example.com]}");
    assert_eq!(route.rules, vec![RouteRule { matches: vec![prefix_slash()].into(), ..Default::default() }]);
    // An explicit empty list is not defaulted by the API server either.
    assert!(http("{rules: []}").rules.is_empty());
}

#[test]
fn header_query_and_method_conditions_are_counted() {
    let route = http(
        "{rules: [{matches: [{path: {value: /a}, method: GET, headers: [{name: x, value: y}, {name: z, value: w}], \
         queryParams: [{name: q, value: v}]}]}]}",
    );
    assert_eq!(
        route.rules[0].matches.as_slice(),
        vec![RouteMatch::Http(HttpMatch {
            path: PathMatch { kind: PathKind::PathPrefix, value: "/a".into() },
            headers: 2,
            query_params: 1,
            method: Some("GET".into()),
        })]
        .as_slice()
    );
}

#[test]
fn backend_ref_defaults() {
    let cases: &[(&str, &str, BackendRef)] = &[
        ("backend_weight_defaults_to_one", "{name: web, port: 80}", BackendRef::service("web", 80)),
        (
            "backend_kind_defaults_to_service_and_group_to_core",
            "{name: web}",
            BackendRef { port: None, ..BackendRef::service("web", 0) },
        ),
        (
            "backend_group_core_means_empty",
            "{group: core, kind: Service, name: web, port: 80}",
            BackendRef::service("web", 80),
        ),
        (
            "backend_fields_are_kept_as_written",
            "{group: example.com, kind: Bucket, name: b, namespace: other, port: 9, weight: 0, \
             filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}}]}",
            BackendRef {
                other_kind: None,
                name: "b".into(),
                namespace: Some("other".into()),
                port: Some(9),
                weight: 0,
                filters: 1,
            }
            .with_kind("example.com", "Bucket"),
        ),
    ];
    for (name, backend, want) in cases {
        let route = http(&format!("{{rules: [{{backendRefs: [{backend}]}}]}}"));
        assert_eq!(&route.rules[0].backends[0], want, "{name}");
        let route = grpc(&format!("{{rules: [{{backendRefs: [{backend}]}}]}}"));
        assert_eq!(&route.rules[0].backends[0], want, "grpc {name}");
    }
}

#[test]
fn filters_keep_url_rewrite_hostname_and_name_the_others() {
    let route = http(
        "{rules: [{filters: [
            {type: URLRewrite, urlRewrite: {hostname: api.internal}},
            {type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /x}}},
            {type: RequestRedirect, requestRedirect: {scheme: https}},
            {type: CORS, cors: {}},
            {type: ExtensionRef, extensionRef: {group: g, kind: k, name: n}}]}]}",
    );
    assert_eq!(
        route.rules[0].filters(),
        vec![
            Filter::UrlRewrite { hostname: Some("api.internal".into()), rewrites_path: false },
            Filter::UrlRewrite { hostname: None, rewrites_path: true },
            Filter::Other("RequestRedirect".into()),
            Filter::Other("CORS".into()),
            Filter::Other("ExtensionRef".into()),
        ]
    );
}

#[test]
fn experimental_filters_drop_their_rule_not_the_route() {
    // `ExternalAuth` (experimental channel) is unknown to the generated types: decoding the
    // route as it stands fails, and the route would vanish without a status.
    let raw: serde_json::Value = parse(
        "metadata: {name: r, namespace: ns}
spec:
  rules:
  - filters:
    - {type: URLRewrite, urlRewrite: {hostname: api.internal}}
    - {type: ExternalAuth, externalAuth: {protocol: HTTP, backendRef: {name: auth, port: 80}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}}}
    backendRefs: [{name: web, port: 80}]
  - backendRefs: [{name: web, port: 80, filters: [{type: ExternalAuth, externalAuth: {protocol: HTTP}}]}]
  - backendRefs: [{name: web, port: 80}]
  - {sessionPersistence: {}, backendRefs: [{name: web, port: 80}]}
",
    );
    assert!(serde_json::from_value::<HttpRoute>(raw.clone()).is_err(), "the generated types refuse it");
    let route = super::route(model::RouteKind::Http, raw).unwrap();
    assert_eq!(
        route.rules[0].filters(),
        vec![
            Filter::UrlRewrite { hostname: Some("api.internal".into()), rewrites_path: false },
            Filter::Other("ExternalAuth".into()),
            Filter::Other("RequestMirror".into()),
        ],
        "in place"
    );
    assert_eq!(route.rules[1].backends[0].filters, 1);
    assert!(route.rules[2].filters().is_empty() && route.rules[2].backends[0].filters == 0);
    assert_eq!(route.rules[3].unsupported_fields(), ["sessionPersistence"]);
}

#[test]
fn unknown_match_fields_drop_the_rule_rather_than_widen_the_match() {
    let raw: serde_json::Value = parse(
        "metadata: {name: r, namespace: ns}
spec:
  rules:
  - matches: [{path: {type: Exact, vlaue: /admin}}]
  - matches: [{path: {value: /ok}}, {mehtod: GET}]
  - matches: [{path: {type: PathPrefix, value: /fine}, method: GET}]
",
    );
    let route = super::route(model::RouteKind::Http, raw).unwrap();
    assert_eq!(route.rules[0].unsupported_fields(), ["matches[0].path.vlaue"]);
    assert_eq!(route.rules[1].unsupported_fields(), ["matches[1].mehtod"]);
    assert!(route.rules[2].unsupported_fields().is_empty());
    let raw: serde_json::Value =
        parse("metadata: {name: g, namespace: ns}\nspec:\n  rules:\n  - matches: [{method: {servcie: admin.Admin}}]\n");
    let route = super::route(model::RouteKind::Grpc, raw).unwrap();
    assert_eq!(route.rules[0].unsupported_fields(), ["matches[0].method.servcie"]);
}

#[test]
fn rule_timeouts_are_unsupported() {
    let route = http("{rules: [{name: slow, timeouts: {request: 10s}}, {}]}");
    assert_eq!(route.rules[0].unsupported_fields(), vec!["timeouts".to_string()]);
    assert_eq!(route.rules[0].name(), Some("slow"));
    assert!(route.rules[1].unsupported_fields().is_empty());
}

#[test]
fn parent_refs_get_the_crd_defaults_for_group_and_kind() {
    let route = http("{parentRefs: [{name: g}, {group: gateway.networking.k8s.io, kind: Gateway, namespace: infra, name: t, sectionName: https, port: 443}]}");
    let defaulted = ParentRef {
        group: Some("gateway.networking.k8s.io".into()),
        kind: Some("Gateway".into()),
        name: "g".into(),
        ..Default::default()
    };
    assert_eq!(
        route.parent_refs.as_slice(),
        [
            defaulted.clone(),
            ParentRef {
                group: Some("gateway.networking.k8s.io".into()),
                kind: Some("Gateway".into()),
                namespace: Some("infra".into()),
                name: "t".into(),
                section_name: Some("https".into()),
                port: Some(443),
            },
        ]
    );
    assert_eq!(grpc("{parentRefs: [{name: g}]}").parent_refs.as_slice(), [defaulted]);
}

#[test]
fn grpc_match_defaults() {
    let all = RouteMatch::Grpc(GrpcMatch { method: None, headers: 0 });
    let method = |kind, service: Option<&str>, method: Option<&str>, headers| {
        RouteMatch::Grpc(GrpcMatch {
            method: Some(GrpcMethodMatch {
                kind,
                service: service.map(Into::into),
                method: method.map(Into::into),
            }),
            headers,
        })
    };
    let cases: &[(&str, &str, Vec<RouteMatch>)] = &[
        ("grpc_absent_matches_default_to_all_methods", "{rules: [{}]}", vec![all.clone()]),
        ("grpc_empty_matches_default_to_all_methods", "{rules: [{matches: []}]}", vec![all.clone()]),
        ("grpc_match_without_method_matches_all_methods", "{rules: [{matches: [{}]}]}", vec![all.clone()]),
        (
            "grpc_method_type_defaults_to_exact",
            "{rules: [{matches: [{method: {service: pkg.Svc}}]}]}",
            vec![method(MethodKind::Exact, Some("pkg.Svc"), None, 0)],
        ),
        (
            "grpc_regex_method_and_headers",
            "{rules: [{matches: [{method: {type: RegularExpression, method: 'Get.*'}, headers: [{name: a, value: b}]}]}]}",
            vec![method(MethodKind::RegularExpression, None, Some("Get.*"), 1)],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(grpc(spec).rules[0].matches.as_slice(), want.as_slice(), "{name}");
    }
}

#[test]
fn grpc_route_without_rules_has_none_and_filters_are_named() {
    let route = grpc("{hostnames: [rpc.example.com]}");
    assert_eq!((route.kind, route.rules.len()), (model::RouteKind::Grpc, 0));
    let route = grpc("{rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m}}}]}]}");
    assert_eq!(route.rules[0].filters(), vec![Filter::Other("RequestMirror".into())]);
}

#[test]
fn listener_allowed_routes_defaults() {
    let selector = |labels: &[(&str, &str)]| LabelSelector {
        match_labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        match_expressions: vec![],
    };
    let cases: &[(&str, &str, AllowedRoutes)] = &[
        ("listener_allowed_routes_default_to_same_namespace", "", AllowedRoutes::default()),
        ("empty_namespaces_default_to_same", ", allowedRoutes: {namespaces: {}}", AllowedRoutes::default()),
        (
            "from_all",
            ", allowedRoutes: {namespaces: {from: All}}",
            AllowedRoutes { namespaces: RouteNamespaces::All, kinds: None },
        ),
        (
            "from_selector_keeps_its_selector",
            ", allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: a}}}}",
            AllowedRoutes { namespaces: RouteNamespaces::Selector(selector(&[("team", "a")])), kinds: None },
        ),
        ("empty_kinds_mean_protocol_default", ", allowedRoutes: {kinds: []}", AllowedRoutes::default()),
        (
            "kind_group_defaults_to_gateway_group",
            ", allowedRoutes: {kinds: [{kind: HTTPRoute}, {group: example.com, kind: X}]}",
            AllowedRoutes {
                namespaces: RouteNamespaces::Same,
                kinds: Some(vec![
                    GroupKind::new(GATEWAY_GROUP, "HTTPRoute"),
                    GroupKind::new("example.com", "X"),
                ]),
            },
        ),
    ];
    for (name, allowed, want) in cases {
        let listener = gateway_listener(&format!("{{name: l, port: 80, protocol: HTTP{allowed}}}"));
        assert_eq!(&listener.allowed_routes, want, "{name}");
    }
}

#[test]
fn selector_expressions_are_kept() {
    let listener = gateway_listener(
        "{name: l, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, selector: \
         {matchExpressions: [{key: env, operator: In, values: [prod]}, {key: x, operator: Exists}]}}}}",
    );
    let RouteNamespaces::Selector(selector) = listener.allowed_routes.namespaces else {
        panic!("not a selector")
    };
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    assert!(selector.matches(&labels(&[("env", "prod"), ("x", "")])));
    assert!(!selector.matches(&labels(&[("env", "prod")])));
}

#[test]
fn selector_from_without_selector_matches_no_namespace() {
    let listener = gateway_listener(
        "{name: l, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector}}}",
    );
    let RouteNamespaces::Selector(selector) = listener.allowed_routes.namespaces else {
        panic!("not a selector")
    };
    assert!(!selector.matches(&BTreeMap::new()));
    assert!(!selector.matches(&[("a".to_string(), "b".to_string())].into()));
}

#[test]
fn gateway_fields() {
    let g = gateway(&parse(
        "metadata: {name: g, namespace: infra, generation: 4, creationTimestamp: '2024-01-01T00:00:10Z'}\n\
         spec: {gatewayClassName: cloudflared, addresses: [{value: 1.2.3.4}], \
         listeners: [{name: https, hostname: '*.example.com', port: 443, protocol: HTTPS}]}\n",
    ));
    assert_eq!(
        g.meta,
        Meta {
            namespace: "infra".into(),
            name: "g".into(),
            generation: 4,
            created: Some(1_704_067_210),
            incarnation: 0
        }
    );
    assert_eq!(g.class_name, "cloudflared");
    assert!(g.requested_addresses);
    let l = &g.listeners[0];
    assert_eq!(
        (l.name.as_str(), l.hostname.as_deref(), l.port, l.protocol.as_str()),
        ("https", Some("*.example.com"), 443, "HTTPS")
    );
}

#[test]
fn meta_generation_defaults_to_zero_and_time_to_none() {
    let route = http("{}");
    assert_eq!(route.meta, Meta::new("ns", "r"));
}

#[test]
fn gateway_class_and_reference_grant() {
    let class = gateway_class(&parse("metadata: {name: c}\nspec: {controllerName: example.com/x}\n"));
    assert_eq!((class.meta.key(), class.controller_name.as_str()), ("c".to_string(), "example.com/x"));
    let grant = reference_grant(&parse(
        "metadata: {name: g, namespace: backends}\nspec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, \
         namespace: apps}], to: [{group: '', kind: Service}, {group: '', kind: Service, name: web}]}\n",
    ));
    assert_eq!(
        grant.from,
        vec![model::GrantFrom {
            group: GATEWAY_GROUP.into(),
            kind: "HTTPRoute".into(),
            namespace: "apps".into()
        }]
    );
    assert_eq!(grant.to[0], model::GrantTo { group: String::new(), kind: "Service".into(), name: None });
    assert_eq!(grant.to[1].name.as_deref(), Some("web"));
}

#[test]
fn service_ports_target_ports_and_headless() {
    let svc = service(&parse(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: apps}\nspec: {clusterIP: None, ports: [\
         {name: http, port: 80, targetPort: 8080}, {name: h2, port: 443, targetPort: grpc, appProtocol: kubernetes.io/h2c}, \
         {port: 9000}]}\n",
    ));
    assert!(svc.headless);
    let ports: Vec<_> = svc
        .ports
        .iter()
        .map(|p| (p.name.as_deref(), p.port, p.app_protocol.as_deref(), p.target_port.clone()))
        .collect();
    assert_eq!(
        ports,
        vec![
            (Some("http"), 80, None, Some(TargetPort::Number(8080))),
            (Some("h2"), 443, Some("kubernetes.io/h2c"), Some(TargetPort::Name("grpc".into()))),
            // targetPort_defaults_to_port, as the API server would.
            (None, 9000, None, Some(TargetPort::Number(9000))),
        ]
    );
    let svc =
        service(&parse("apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {clusterIP: 10.0.0.1}\n"));
    assert!(!svc.headless && svc.ports.is_empty() && !svc.external_name);
    let svc = service(&parse(
        "apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {type: ExternalName, externalName: db.example.com}\n",
    ));
    assert!(svc.external_name);
}

#[test]
fn namespace_labels_and_backend_tls_policy() {
    let ns =
        namespace(&parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps, labels: {team: a}}\n"));
    assert_eq!((ns.name.as_str(), ns.labels.get("team").map(String::as_str)), ("apps", Some("a")));
    let policy = backend_tls_policy(&parse(
        "metadata: {name: p, namespace: apps}\nspec: {targetRefs: [{group: '', kind: Service, name: web, sectionName: https}], \
         validation: {hostname: web.internal, wellKnownCACertificates: System}}\n",
    ));
    assert_eq!(policy.hostname, "web.internal");
    assert_eq!(
        policy.targets,
        vec![model::PolicyTarget {
            group: String::new(),
            kind: "Service".into(),
            name: "web".into(),
            section_name: Some("https".into()),
        }]
    );
}
