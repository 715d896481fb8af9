//! Reading files: documents, kinds, versions, lists, directories, and what is fatal.

use super::*;
use routes_core::model::{PathKind, RouteMatch};
use std::fs;

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: apps
spec:
  rules:
  - backendRefs: [{name: web, port: 80}]
";

fn load(text: &str) -> Loaded {
    let mut loaded = Loaded::default();
    load_str("x.yaml", text, &mut loaded).unwrap_or_else(|e| panic!("{e}"));
    loaded
}

fn route_keys(loaded: &Loaded) -> Vec<String> {
    loaded.snapshot.routes.iter().map(|r| format!("{} {}", r.kind, r.meta.key())).collect()
}

#[test]
fn multi_document_file_loads_every_known_kind() {
    let text = format!(
        "---\n{ROUTE}---\n# only a comment\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: cloudflared}}\n\
         spec: {{controllerName: example.com/cloudflared}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: tunnel, namespace: infra}}\n\
         spec: {{gatewayClassName: cloudflared, listeners: [{{name: http, port: 80, protocol: HTTP}}]}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: rpc, namespace: apps}}\nspec: {{}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: tls, namespace: apps}}\n\
         spec: {{targetRefs: [{{group: '', kind: Service, name: web}}], validation: {{hostname: web.internal}}}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: apps}}\nspec: {{ports: [{{port: 80}}]}}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {{name: apps, labels: {{team: a}}}}\n"
    );
    let loaded = load(&text);
    let s = &loaded.snapshot;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/web", "GRPCRoute apps/rpc"]);
    assert_eq!(s.gateway_classes[0].meta.key(), "cloudflared");
    assert_eq!(s.gateways[0].meta.key(), "infra/tunnel");
    assert_eq!(s.backend_tls_policies[0].hostname, "web.internal");
    assert_eq!(s.services[0].meta.key(), "apps/web");
    assert_eq!(s.namespaces[0].name, "apps");
}

#[test]
fn documents_without_api_version_or_kind_and_other_kinds_are_ignored() {
    let text = "tunnel: 6ff42ae2\ningress:\n- service: http_status:404\n---\n- a list\n---\nplain scalar\n---\n\
                apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n---\n\
                apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata: {name: t}\nspec: {}\n---\n\
                apiVersion: example.com/v1\nkind: Service\nmetadata: {name: not-core}\n---\n~\n";
    let loaded = load(text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(loaded.snapshot.routes.is_empty() && loaded.snapshot.services.is_empty());
}

#[test]
fn versions_are_read_into_the_v1_types() {
    let cases = [
        ("referencegrant_v1beta1_is_read", "v1beta1", "ReferenceGrant"),
        ("referencegrant_v1alpha2_is_read", "v1alpha2", "ReferenceGrant"),
        ("referencegrant_v1_is_read", "v1", "ReferenceGrant"),
        ("httproute_v1beta1_is_read", "v1beta1", "HTTPRoute"),
        ("grpcroute_v1alpha2_is_read", "v1alpha2", "GRPCRoute"),
        ("gateway_v1beta1_is_read", "v1beta1", "Gateway"),
    ];
    for (name, version, kind) in cases {
        let spec = match kind {
            "ReferenceGrant" => "{from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}], to: [{group: '', kind: Service}]}",
            "Gateway" => "{gatewayClassName: c, listeners: []}",
            _ => "{}",
        };
        let loaded = load(&format!(
            "apiVersion: gateway.networking.k8s.io/{version}\nkind: {kind}\nmetadata: {{name: o, namespace: ns}}\nspec: {spec}\n"
        ));
        let s = &loaded.snapshot;
        let count = s.reference_grants.len() + s.routes.len() + s.gateways.len();
        assert_eq!((count, loaded.warnings.len()), (1, 0), "{name}: {:?}", loaded.warnings);
    }
}

#[test]
fn namespaced_objects_without_namespace_land_in_default() {
    let loaded = load(&ROUTE.replace("  namespace: apps\n", ""));
    assert_eq!(route_keys(&loaded), ["HTTPRoute default/web"]);
    // Cluster-scoped objects never carry one.
    let loaded = load("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c, namespace: x}\nspec: {controllerName: a/b}\n");
    assert_eq!(loaded.snapshot.gateway_classes[0].meta.namespace, "");
}

#[test]
fn a_namespace_that_is_not_a_string_refuses_the_object() {
    for namespace in ["2024", "no", "[a]"] {
        let loaded = load(&ROUTE.replace("  namespace: apps\n", &format!("  namespace: {namespace}\n")));
        assert!(route_keys(&loaded).is_empty(), "{namespace}: {:?}", route_keys(&loaded));
        assert_eq!(
            loaded.refused,
            ["x.yaml:1: HTTPRoute web: metadata.namespace is not a string (quote it)"]
        );
    }
}

#[test]
fn defaults_apply_to_routes_read_from_files() {
    let loaded = load(ROUTE);
    let rule = &loaded.snapshot.routes[0].rules[0];
    let RouteMatch::Http(m) = &rule.matches[0] else { panic!("not an HTTP match") };
    assert_eq!((m.path.kind, m.path.value.as_str()), (PathKind::PathPrefix, "/"));
    assert_eq!((rule.backends[0].kind(), rule.backends[0].weight), ("Service", 1));
}

#[test]
fn list_is_expanded() {
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {{name: apps}}\n",
        ROUTE.trim_end().replace('\n', "\n  ")
    );
    let loaded = load(&text);
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/web"]);
    assert_eq!(loaded.snapshot.namespaces.len(), 1);
}

#[test]
fn typed_list_items_take_the_list_kind() {
    // What the API returns for `GET .../httproutes`: items without apiVersion and kind.
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRouteList\nmetadata: {}\nitems:\n\
                - metadata: {name: a, namespace: apps}\n  spec: {}\n\
                - metadata: {name: b, namespace: apps}\n  spec: {rules: [{matches: [{path: {type: Glob}}]}]}\n";
    let loaded = load(text);
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/a"]);
    assert_eq!(loaded.refused.len(), 1);
    assert!(
        loaded.refused[0]
            .starts_with("x.yaml:1 items[1]: HTTPRoute apps/b: spec.rules[0].matches[0].path.type: "),
        "{}",
        loaded.refused[0]
    );
}

#[test]
fn unknown_enum_value_refuses_that_object_alone() {
    // A value no channel of the CRD allows (the API server would refuse the object).
    let bad = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: glob, namespace: apps}\n\
               spec:\n  rules:\n  - matches:\n    - path: {type: Glob, value: /x*}\n";
    let loaded = load(&format!("{bad}---\n{ROUTE}"));
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/web"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let refused = &loaded.refused[..];
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("x.yaml:1: HTTPRoute apps/glob: spec.rules[0].matches[0].path.type: "),
        "{}",
        refused[0]
    );
    assert!(refused[0].contains("Glob"), "{}", refused[0]);
}

#[test]
fn an_object_that_cannot_be_decoded_is_refused_naming_the_field() {
    let gateway = |spec: &str| {
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: g, namespace: infra}}\nspec: {spec}\n")
    };
    let cases = [
        (
            "port_as_a_string",
            gateway("{gatewayClassName: c, listeners: [{name: web, port: \"80\", protocol: HTTP}]}"),
            "x.yaml:1: Gateway infra/g: spec.listeners[0].port: invalid type: string \"80\", expected i32",
        ),
        ("spec_not_a_mapping", gateway("5"), "x.yaml:1: Gateway infra/g: spec: invalid type: integer `5`"),
        (
            "timestamp_out_of_range",
            ROUTE.replace(
                "  namespace: apps\n",
                "  namespace: apps\n  creationTimestamp: \"9999-12-31T23:59:59Z\"\n",
            ),
            "x.yaml:1: HTTPRoute apps/web: metadata.creationTimestamp: ",
        ),
    ];
    for (name, text, want) in cases {
        let loaded = load(&text);
        let s = &loaded.snapshot;
        assert_eq!((s.gateways.len(), s.routes.len()), (0, 0), "{name}");
        assert_eq!(loaded.refused.len(), 1, "{name}: {:?}", loaded.refused);
        assert!(loaded.refused[0].starts_with(want), "{name}: {}", loaded.refused[0]);
    }
}

#[test]
fn lists_longer_than_the_crds_allow_are_refused() {
    // The API server holds them to the CRDs' maxItems; a file could hold a route of 1,000
    // hostnames and 1,000 matches, a million rules.
    let route = |kind: &str, hostnames: usize, rules: usize, matches: usize| {
        let matched = if kind == "GRPCRoute" { "{method: {service: s}}" } else { "{path: {value: /x}}" };
        let rule = format!("  - matches: [{}]\n", vec![matched; matches].join(", "));
        let hosts: Vec<String> = (0..hostnames).map(|i| format!("h{i}.example.com")).collect();
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {{name: r, namespace: apps}}\n\
             spec:\n  hostnames: [{}]\n  rules:\n{}",
            hosts.join(", "),
            rule.repeat(rules)
        )
    };
    for (name, text, want) in [
        ("hostnames", route("HTTPRoute", 17, 1, 1), "spec.hostnames: 17 items, the CRD allows at most 16"),
        ("rules", route("HTTPRoute", 1, 17, 1), "spec.rules: 17 items, the CRD allows at most 16"),
        (
            "matches",
            route("HTTPRoute", 1, 1, 65),
            "spec.rules[0].matches: 65 items, the CRD allows at most 64",
        ),
        (
            "all_matches",
            route("HTTPRoute", 1, 3, 43),
            "spec.rules: 129 matches in all, the CRD allows at most 128",
        ),
        (
            "grpc_matches",
            route("GRPCRoute", 1, 1, 9),
            "spec.rules[0].matches: 9 items, the CRD allows at most 8",
        ),
    ] {
        let loaded = load(&text);
        assert!(loaded.snapshot.routes.is_empty(), "{name}");
        assert_eq!(loaded.refused.len(), 1, "{name}: {:?}", loaded.refused);
        assert!(loaded.refused[0].ends_with(want), "{name}: {}", loaded.refused[0]);
    }
    for (name, text) in
        [("at_the_limits", route("HTTPRoute", 16, 2, 64)), ("grpc", route("GRPCRoute", 16, 16, 8))]
    {
        let loaded = load(&text);
        assert_eq!(loaded.snapshot.routes.len(), 1, "{name}: {:?}", loaded.refused);
    }
}

#[test]
fn experimental_filter_types_drop_their_rules_not_the_route() {
    let auth = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: auth, namespace: apps}\n\
                spec:\n  rules:\n  - filters:\n    - type: ExternalAuth\n      externalAuth: {protocol: HTTP}\n\
                \x20 - backendRefs: [{name: web, port: 80}]\n";
    let loaded = load(&format!("{auth}---\n{ROUTE}"));
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/auth", "HTTPRoute apps/web"]);
    assert!(loaded.warnings.is_empty() && loaded.refused.is_empty(), "{loaded:?}");
    let rules = &loaded.snapshot.routes[0].rules;
    assert_eq!(rules[0].filters(), [routes_core::model::Filter::Other("ExternalAuth".into())]);
    assert!(rules[1].filters().is_empty());
}

#[test]
fn unknown_fields_refuse_the_object_naming_them() {
    // Dropped silently, each of these typos would widen the route to the whole listener (or
    // change a listener): kubectl refuses them (strict field validation).
    let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: infra}\n\
                   spec: {gatewayClassName: c, listeners: [{name: web, port: 80, protocol: HTTP, hostnme: a.example.com}]}\n";
    let route = |from: &str, to: &str| {
        assert!(ROUTE.contains(from), "{from}");
        ROUTE.replace(from, to)
    };
    let cases = [
        (
            "hostname_for_hostnames",
            route("spec:\n", "spec:\n  hostname: [a.example.com]\n"),
            "unknown field spec.hostname",
        ),
        (
            "section_name_in_lower_case",
            route("spec:\n", "spec:\n  parentRefs: [{name: gw, sectionname: web}]\n"),
            "unknown field spec.parentRefs[0].sectionname",
        ),
        (
            "backend_ref_port",
            route("{name: web, port: 80}", "{name: web, prot: 80}"),
            "unknown field spec.rules[0].backendRefs[0].prot",
        ),
        (
            "two",
            route("spec:\n", "spec:\n  hostname: [a.example.com]\n  parentref: [{name: gw}]\n"),
            "unknown fields spec.hostname, spec.parentref",
        ),
        (
            "metadata",
            route("  namespace: apps\n", "  namespace: apps\n  label: {a: b}\n"),
            "unknown field metadata.label",
        ),
    ];
    for (name, text, want) in cases {
        let loaded = load(&text);
        assert!(loaded.snapshot.routes.is_empty(), "{name}");
        assert_eq!(loaded.refused, [format!("x.yaml:1: HTTPRoute apps/web: {want}")], "{name}");
    }
    let loaded = load(gateway);
    assert!(loaded.snapshot.gateways.is_empty());
    assert_eq!(loaded.refused, ["x.yaml:1: Gateway infra/g: unknown field spec.listeners[0].hostnme"]);
}

#[test]
fn what_a_rule_reports_and_the_status_do_not_refuse_the_route() {
    // Unknown rule and match fields (experimental `retry`, a `vlaue` typo) and a rule with an
    // experimental filter are reported on their rule, which is dropped; the status is not read.
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: a}\n\
                spec:\n  rules:\n  - retry: {attempts: 2}\n    matches: [{path: {vlaue: /x}}]\n\
                \x20 - filters: [{type: ExternalAuth, externalAuth: {protocol: HTTP}}, {type: URLRewrite, urlRewrite: {hostnme: x}}]\n\
                status: {parents: [{parentRef: {name: gw}, controllerName: a/b, conditions: [], experimental: 1}]}\n";
    let loaded = load(text);
    assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
    let rules = &loaded.snapshot.routes[0].rules;
    assert_eq!(rules[0].unsupported_fields(), ["retry", "matches[0].path.vlaue"]);
    assert_eq!(rules[1].filters()[0], routes_core::model::Filter::Other("ExternalAuth".into()));
}

#[test]
fn misspelt_kinds_and_groups_of_ours_are_warned_about() {
    let doc = |head: &str| format!("{head}\nmetadata: {{name: r, namespace: a}}\nspec: {{}}\n");
    let warned = [
        (
            "apiVersion: gateway.networking.k8s.io.v1\nkind: HTTPRoute",
            "apiVersion \"gateway.networking.k8s.io.v1\", kind \"HTTPRoute\"",
        ),
        (
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HttpRoute",
            "apiVersion \"gateway.networking.k8s.io/v1\", kind \"HttpRoute\"",
        ),
        (
            "apiversion: gateway.networking.k8s.io/v1\nkind: HTTPRoute",
            "kind \"HTTPRoute\" without apiVersion",
        ),
    ];
    for (head, written) in warned {
        let loaded = load(&doc(head));
        assert!(loaded.snapshot.routes.is_empty(), "{head}");
        let want = format!(
            "x.yaml:1: ignored: {written} is not an object we read (apiVersion gateway.networking.k8s.io/v1, kind HTTPRoute?)"
        );
        assert_eq!(loaded.warnings, [want], "{head}");
    }
    let loaded = load(&doc("apiVersion: V1\nkind: service"));
    assert!(loaded.warnings[0].ends_with("(apiVersion v1, kind Service?)"), "{:?}", loaded.warnings);
    // Someone else's kinds of the same name: not ours, not a typo.
    for head in [
        "apiVersion: networking.istio.io/v1\nkind: Gateway",
        "apiVersion: serving.knative.dev/v1\nkind: Service",
    ] {
        let loaded = load(&doc(head));
        assert!(loaded.warnings.is_empty() && loaded.refused.is_empty(), "{head}: {:?}", loaded.warnings);
    }
}

#[test]
fn missing_required_field_refuses_that_object() {
    let loaded = load(&format!("{ROUTE}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: g}}\nspec: {{}}\n"));
    assert_eq!(loaded.snapshot.gateways.len(), 0);
    assert_eq!(loaded.refused, ["x.yaml:10: Gateway default/g: spec: missing field `gatewayClassName`"]);
    let loaded = load("apiVersion: v1\nkind: Service\nmetadata: {namespace: a}\n");
    assert_eq!(loaded.refused, ["x.yaml:1: Service: metadata.name is missing or not a string"]);
}

#[test]
fn duplicate_object_keeps_the_last_and_warns() {
    let second = ROUTE.replace("name: web, port: 80", "name: web2, port: 81");
    let loaded = load(&format!("{ROUTE}---\n{second}"));
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/web"]);
    assert_eq!(loaded.snapshot.routes[0].rules[0].backends[0].name, "web2");
    assert_eq!(
        loaded.warnings,
        ["x.yaml:10: HTTPRoute apps/web is defined again; this later definition wins"]
    );
    // Same name, other kind: not a duplicate.
    let loaded = load(&format!(
        "{ROUTE}---\n{}",
        ROUTE.replace("HTTPRoute", "GRPCRoute").replace("web, port", "g, port")
    ));
    assert_eq!(loaded.snapshot.routes.len(), 2);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn a_later_definition_takes_the_earlier_ones_place_by_kind_namespace_and_name() {
    let class = |controller: &str| {
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: c}}\nspec: {{controllerName: {controller}}}\n")
    };
    let service = |ns: &str, port: u16| {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: {ns}}}\nspec: {{ports: [{{port: {port}}}]}}\n")
    };
    let other = ROUTE.replace("name: web\n", "name: other\n");
    let text = [
        ROUTE.to_string(),
        service("a", 1),
        other,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HttpRoute\nmetadata: {name: typo}\n".to_string(),
        service("b", 2),
        class("x/one"),
        ROUTE.replace("port: 80", "port: 8080"),
        class("x/two"),
        service("a", 3),
    ]
    .join("---\n");
    let loaded = load(&text);
    // Replaced where it stood, not moved to the end; same name in another namespace is another.
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/web", "HTTPRoute apps/other"]);
    assert_eq!(loaded.snapshot.routes[0].rules[0].backends[0].port, Some(8080));
    let services: Vec<_> =
        loaded.snapshot.services.iter().map(|s| (s.meta.namespace.as_str(), s.ports[0].port)).collect();
    assert_eq!(services, [("a", 3), ("b", 2)]);
    assert_eq!(loaded.snapshot.gateway_classes.len(), 1);
    assert_eq!(loaded.snapshot.gateway_classes[0].controller_name, "x/two");
    // Warnings in the order of the documents that caused them.
    let lines: Vec<&str> = loaded.warnings.iter().map(|w| w.split(':').nth(1).unwrap()).collect();
    assert_eq!(lines, ["24", "38", "47", "52"], "{:#?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("ignored: apiVersion"), "{}", loaded.warnings[0]);
    assert!(loaded.warnings[1].contains("HTTPRoute apps/web is defined again"), "{}", loaded.warnings[1]);
    assert!(loaded.warnings[2].contains("GatewayClass c is defined again"), "{}", loaded.warnings[2]);
    assert!(loaded.warnings[3].contains("Service a/s is defined again"), "{}", loaded.warnings[3]);
}

#[test]
fn malformed_yaml_is_fatal_and_names_file_line_and_column() {
    let mut loaded = Loaded::default();
    let err =
        load_str("examples/x.yaml", &format!("{ROUTE}---\nkind: X\n  b: [1, 2\n"), &mut loaded).unwrap_err();
    assert!(matches!(err, LoadError::MalformedYaml { location: Some((11, 4)), .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("examples/x.yaml:11:4: "), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn directories_are_walked_sorted_recursively_for_yaml_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("sub")).unwrap();
    let named = |name: &str| ROUTE.replace("name: web\n", &format!("name: {name}\n"));
    fs::write(root.join("b.yml"), named("b")).unwrap();
    fs::write(root.join("a.yaml"), named("a")).unwrap();
    fs::write(root.join("sub/c.yaml"), named("c")).unwrap();
    fs::write(root.join("notes.txt"), named("txt")).unwrap();
    fs::write(root.join("config.json"), named("json")).unwrap();
    let loaded = load_paths(&[root.to_path_buf()]).unwrap();
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/a", "HTTPRoute apps/b", "HTTPRoute apps/c"]);

    // A file named explicitly is read whatever its extension.
    let loaded = load_paths(&[root.join("notes.txt")]).unwrap();
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/txt"]);
}

#[test]
fn later_files_replace_earlier_duplicates_in_walk_order() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), ROUTE).unwrap();
    fs::write(dir.path().join("b.yaml"), ROUTE.replace("port: 80", "port: 8080")).unwrap();
    let loaded = load_paths(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(loaded.snapshot.routes[0].rules[0].backends[0].port, Some(8080));
    assert!(
        loaded.warnings[0].contains("b.yaml:1: HTTPRoute apps/web is defined again"),
        "{:?}",
        loaded.warnings
    );
}

#[cfg(unix)]
#[test]
fn configmap_dot_dot_data_is_read_once() {
    use std::os::unix::fs::symlink;
    // The layout kubelet writes for a ConfigMap volume.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("..2026_01_01_00_00_00.000000001")).unwrap();
    fs::write(root.join("..2026_01_01_00_00_00.000000001/routes.yaml"), ROUTE).unwrap();
    symlink("..2026_01_01_00_00_00.000000001", root.join("..data")).unwrap();
    symlink("..data/routes.yaml", root.join("routes.yaml")).unwrap();
    let loaded = load_paths(&[root.to_path_buf()]).unwrap();
    assert_eq!(route_keys(&loaded), ["HTTPRoute apps/web"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[cfg(unix)]
#[test]
fn symlinked_directories_are_not_followed() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), ROUTE).unwrap();
    symlink(".", dir.path().join("loop")).unwrap();
    let loaded = load_paths(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(loaded.snapshot.routes.len(), 1);
    assert!(loaded.warnings[0].ends_with("loop: symlinked directory not followed"), "{:?}", loaded.warnings);
}

#[test]
fn unreadable_path_is_fatal_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let err = load_paths(std::slice::from_ref(&missing)).unwrap_err();
    assert!(matches!(err, LoadError::Unreadable { .. }));
    assert!(err.to_string().starts_with(&missing.display().to_string()), "{err}");
}

#[test]
fn malformed_file_in_a_directory_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bad.yaml"), "a: [1\n").unwrap();
    let err = load_paths(&[dir.path().to_path_buf()]).unwrap_err();
    let bad = dir.path().join("bad.yaml").display().to_string();
    assert!(err.to_string().starts_with(&format!("{bad}:")), "{err}");
}

#[test]
fn rule_fields_the_standard_types_drop_are_marked_unsupported() {
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: a}\n\
                spec: {rules: [{retry: {attempts: 2}, sessionPersistence: {}}, {timeouts: {request: 1s}}, {}]}\n---\n\
                apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g, namespace: a}\n\
                spec: {rules: [{sessionPersistence: {}}]}\n";
    let loaded = load(text);
    assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
    let fields: Vec<Vec<Vec<String>>> = loaded
        .snapshot
        .routes
        .iter()
        .map(|r| r.rules.iter().map(|rule| rule.unsupported_fields().to_vec()).collect())
        .collect();
    let strings = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        fields,
        vec![
            vec![strings(&["retry", "sessionPersistence"]), strings(&["timeouts"]), vec![]],
            vec![strings(&["sessionPersistence"])],
        ]
    );
}
