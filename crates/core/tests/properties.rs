//! Properties over arbitrary snapshots, hostile strings included (regex metacharacters,
//! unicode, upper case, ports, `%2F`, newlines):
//! - the rendered config always passes cloudflared's validation (our `validate`);
//! - the same objects in another order give the same bytes;
//! - every generated rule is anchored and lower case, so nothing matches more than it says.

use proptest::prelude::*;
use routes_core::build::*;
use routes_core::ingress::SourceRef;
use routes_core::model::{BackendRef, Filter, Gateway, Route, RouteKind, Snapshot, TargetPort};
use routes_core::render::{render, BaseConfig, Tunnel};
use routes_core::translate::{translate, Settings, DEFAULT_CONTROLLER_NAME};
use routes_core::validate::validate_str;

/// Mostly valid hostnames that overlap in every way, and now and then a hostile one.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["a.example.com", "*.example.com", "b.a.example.com", "*.a.example.com", "example.com", "other.org"]).prop_map(str::to_string),
        1 => hostile_only(),
    ]
}

fn hostile_only() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("API.example.com".to_string()),
        Just("a.example.com:8443".to_string()),
        Just("*".to_string()),
        Just("a.*.com".to_string()),
        Just("bücher.example".to_string()),
        Just("10.0.0.1".to_string()),
        Just("a\n.example.com".to_string()),
        "[a-z*.:A-Z0-9-]{0,20}",
    ]
}

fn path_value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["/", "/api", "/api/", "/api/v1", "/a.b", "/a%20b", "/ü/ñ"]).prop_map(str::to_string),
        4 => path_hostile(),
    ]
}

fn path_hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just("/api".to_string()),
        Just("/api/".to_string()),
        Just("/a.b".to_string()),
        Just("/a%2Fb".to_string()),
        Just("/a%20b".to_string()),
        Just("/a%0Ab".to_string()),
        Just("/v1/(x)+[y]*?{2}|$^".to_string()),
        Just("/ü/ñ".to_string()),
        Just("/a\nb".to_string()),
        Just("(?=x)".to_string()),
        Just("/x{1001}".to_string()),
        "/[a-zA-Z0-9%./_()*+?|^$\\[\\]{}\\\\-]{0,12}",
        "\\PC{0,8}",
        // What Go's yaml.v3 refuses or reads as a line break, raw in a regular expression.
        Just("/a\u{7f}b\u{85}c\u{fffe}\u{2028}d".to_string()),
        "/[\\x00-\\xa0\u{2028}\u{feff}\u{fffe}\u{ffff}a]{0,8}",
    ]
}

fn route_strategy() -> impl Strategy<Value = Route> {
    route_of(any::<bool>())
}

/// A route, a GRPCRoute when `grpc` says so.
fn route_of(grpc: impl Strategy<Value = bool>) -> impl Strategy<Value = Route> {
    let rule_strategy = (
        prop::collection::vec((0u8..5, path_value(), 0u32..2), 0..3),
        prop::collection::vec((0usize..4, 0i32..3, 0u8..4), 0..3),
        0u8..6,
    );
    (
        grpc,
        0usize..3,
        "[a-c]",
        prop::collection::vec(hostile(), 0..3),
        prop::collection::vec(rule_strategy, 1..4),
        prop::option::of(0i64..5),
        prop::collection::vec(
            (0u8..4, prop::option::of(prop_oneof![Just("l1".to_string()), "[a-c0-9]{1,8}"])),
            1..3,
        ),
    )
        .prop_map(|(grpc, ns, name, hostnames, rules, created, parents)| {
            let namespace = ["infra", "web", "app"][ns];
            let mut route = if grpc { grpc_route(namespace, &name) } else { http_route(namespace, &name) };
            route.meta.created = created;
            for (which, section) in parents {
                route = match which {
                    0 => route.parent("infra", "gw"),
                    1 => route.parent_section("infra", "gw", section.as_deref().unwrap_or("web")),
                    2 => route.parent("infra", "gw2"),
                    _ => route.parent("infra", "not-ours"),
                };
            }
            for h in hostnames {
                route = route.hostname(&h);
            }
            for (matches, backends, filter) in rules {
                let mut r = rule();
                for (kind, value, headers) in matches {
                    r = match (grpc, kind) {
                        (true, 0) => r.grpc(Some(&value), None),
                        (true, 1) => r.grpc(Some("pkg.Svc"), Some(&value)),
                        (true, _) => r.grpc(Some("pkg.Svc"), Some("Get")),
                        (false, 0) => r.exact(&value),
                        (false, 1) => r.regex(&value),
                        (false, 2) => r.with_headers(&value, headers),
                        (false, _) => r.prefix(&value),
                    };
                }
                for (svc, weight, ns) in backends {
                    let mut b = BackendRef::service(["v1", "v2", "tls", "missing"][svc], 8080).weight(weight);
                    if ns > 1 {
                        b = b.in_namespace(["infra", "web", "app", "infra"][ns as usize]);
                    }
                    r = r.backend_ref(b);
                }
                r = match filter {
                    0 => r.filter(Filter::UrlRewrite {
                        hostname: Some("internal.example".into()),
                        rewrites_path: false,
                    }),
                    1 => r.filter(Filter::Other("RequestHeaderModifier".into())),
                    _ => r,
                };
                route = route.rule(r);
            }
            route
        })
}

fn gateway_strategy(name: &'static str) -> impl Strategy<Value = Gateway> {
    prop::collection::vec((prop::option::weighted(0.6, hostile()), 0u8..5, any::<bool>()), 0..4).prop_map(
        move |listeners| {
            let mut g = gateway("infra", name, "cf");
            for (i, (hostname, protocol, all)) in listeners.into_iter().enumerate() {
                let mut l = listener(if i == 0 { "web" } else { ["l1", "l2", "l3", "l4"][i] })
                    .protocol(["HTTP", "HTTPS", "TCP", "HTTP", "HTTP"][protocol as usize]);
                if let Some(h) = hostname {
                    l = l.hostname(&h);
                }
                if all {
                    l = l.from_all();
                }
                g = g.listener(l);
            }
            g
        },
    )
}

fn snapshot_strategy() -> impl Strategy<Value = Snapshot> {
    snapshot_of(route_strategy())
}

fn snapshot_of(route: impl Strategy<Value = Route>) -> impl Strategy<Value = Snapshot> {
    (gateway_strategy("gw"), gateway_strategy("gw2"), prop::collection::vec(route, 0..12), any::<bool>())
        .prop_map(|(gw, gw2, routes, grant)| {
            let mut s = Snapshot::default()
                .with_class(gateway_class("cf", DEFAULT_CONTROLLER_NAME))
                .with_gateway(gw)
                .with_gateway(gw2);
            for ns in ["infra", "web", "app"] {
                s = s
                    .with_service(service(ns, "v1").port(8080))
                    .with_service(service(ns, "v2").port_with(8080, None, Some("kubernetes.io/h2c"), None))
                    .with_service(service(ns, "tls").port_with(
                        8080,
                        Some("https"),
                        Some("https"),
                        Some(TargetPort::Number(8443)),
                    ));
            }
            if grant {
                s = s.with_grant(reference_grant("web", "g", "HTTPRoute", "infra", None));
            }
            // Object identities are unique in a cluster (and the manifest loader keeps one).
            let mut seen = std::collections::HashSet::new();
            for r in routes {
                if seen.insert((r.kind, r.meta.namespace.clone(), r.meta.name.clone())) {
                    s = s.with_route(r);
                }
            }
            s
        })
}

fn render_text(snapshot: &Snapshot) -> String {
    let settings =
        Settings { tunnel_id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()), ..Settings::default() };
    let t = translate(snapshot, &settings);
    render(&t, &BaseConfig::default(), &Tunnel { id: settings.tunnel_id.clone(), credentials_file: None })
        .text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rendered_config_always_passes_cloudflared_validation(snapshot in snapshot_strategy()) {
        let text = render_text(&snapshot);
        let report = validate_str(&text);
        prop_assert!(report.is_valid(), "{:?}\n{}", report.errors, text);
    }

    #[test]
    fn shuffling_the_input_never_changes_a_byte(snapshot in snapshot_strategy(), seed in any::<u64>()) {
        let mut shuffled = snapshot.clone();
        // A deterministic permutation from the seed (rotation + reversal).
        let rotate = |len: usize| if len == 0 { 0 } else { (seed as usize) % len };
        let n = rotate(shuffled.routes.len());
        shuffled.routes.rotate_left(n);
        if seed % 2 == 0 {
            shuffled.routes.reverse();
            shuffled.services.reverse();
            shuffled.gateways.reverse();
        }
        prop_assert_eq!(render_text(&snapshot), render_text(&shuffled));
    }

    /// With one kind of route, `translate` takes the routes in the order they are stored, not
    /// oldest first (no outcome depends on an older route's), so this is where an order
    /// showing through would be seen: every part of the translation (rules, statuses,
    /// rejections, notes), in any permutation of the routes, is the same.
    #[test]
    fn one_kind_of_route_translates_the_same_in_any_order(
        snapshot in snapshot_of(route_of(Just(false))),
        seed in any::<u64>(),
    ) {
        let mut shuffled = snapshot.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.routes.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.routes.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let settings = Settings::default();
        prop_assert_eq!(translate(&snapshot, &settings), translate(&shuffled, &settings));
        prop_assert_eq!(render_text(&snapshot), render_text(&shuffled));
    }

    /// A route on several listeners has its rules written once, where they serve: never a copy
    /// that the summary would report as shadowed by the very rule it copies.
    #[test]
    fn no_rule_is_reported_as_shadowed_by_itself(snapshot in snapshot_strategy()) {
        let t = translate(&snapshot, &Settings::default());
        for (source, by) in &t.shadowed {
            prop_assert_ne!(source, by);
        }
    }

    #[test]
    fn generated_rules_are_anchored_and_lower_case(snapshot in snapshot_strategy()) {
        let t = translate(&snapshot, &Settings::default());
        for rule in &t.rules {
            if let Some(path) = rule.path() {
                prop_assert!(path.starts_with('^') && path.ends_with('$'), "unanchored {path:?}");
            }
            if let Some(host) = rule.hostname() {
                prop_assert_eq!(host.to_lowercase(), host.to_string());
                prop_assert!(!host.contains(':') && !host.contains('\n'));
            }
            if matches!(rule.source(), SourceRef::Route { route, .. } if route.kind == RouteKind::Grpc) && !rule.service().starts_with("http_status:") {
                prop_assert!(rule.service().starts_with("https://"), "gRPC origin must be TLS: {}", rule.service());
            }
        }
    }
}
