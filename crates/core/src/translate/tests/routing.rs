//! Attachment, hostnames and precedence.

use super::*;
use crate::model::ObjectRef;
use crate::status::ConditionStatus;
use crate::translate::{translate, Settings};

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
fn longest_prefix_is_measured_decoded() {
    // `/%61%70%69` is `/api` (4 characters), shorter than `/api/v1` though its text is longer.
    let route = http_route("infra", "r")
        .parent("infra", "gw")
        .rule(rule().prefix("/%61%70%69").backend("v1", 8080))
        .rule(rule().prefix("/api/v1").backend("v2", 8080));
    check(
        "decoded_prefix",
        &run(&base().with_route(route)),
        &[("a", "/api/v1/x", "v2"), ("a", "/api/x", "v1")],
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
fn timestamp_ties_go_to_the_first_namespace_slash_name_string() {
    // `team-b/r` < `team/r` as strings (`-` < `/`), though `team` < `team-b` as namespaces.
    let team = http_route("team", "r")
        .parent("infra", "gw")
        .created(100)
        .rule(rule().prefix("/x").backend("v1", 8080));
    let team_b = http_route("team-b", "r")
        .parent("infra", "gw")
        .created(100)
        .rule(rule().prefix("/x").backend("v2", 8080));
    let snapshot = base()
        .with_service(service("team", "v1").port(8080))
        .with_service(service("team-b", "v2").port(8080))
        .with_route(team)
        .with_route(team_b);
    check("namespace_slash_name", &run(&snapshot), &[("a", "/x", "v2")]);
    // The same order decides an HTTPRoute/GRPCRoute conflict.
    let grpc = grpc_route("team", "r")
        .parent("infra", "gw")
        .hostname("c.example.com")
        .created(100)
        .rule(rule().backend("v1", 8080));
    let http = http_route("team-b", "r")
        .parent("infra", "gw")
        .hostname("c.example.com")
        .created(100)
        .rule(rule().backend("v2", 8080));
    let snapshot = base()
        .with_service(service("team", "v1").port(8080))
        .with_service(service("team-b", "v2").port(8080))
        .with_route(grpc)
        .with_route(http);
    let t = run(&snapshot);
    let conflicted = t.statuses.routes.iter().find(|r| r.route.kind == RouteKind::Grpc).unwrap();
    assert_eq!(conflicted.parents[0].conditions.get(0).unwrap().reason, "Conflicted", "{:#?}", conflicted);
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
    assert_eq!((accepted.status, accepted.reason), (ConditionStatus::False, "NoMatchingListenerHostname"));
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
        assert_eq!((accepted.status, accepted.reason), (ConditionStatus::False, *reason), "{name}");
        let resolved = parent_condition(&t, "r", "ResolvedRefs");
        assert_eq!(resolved.status, ConditionStatus::True, "{name}: ResolvedRefs stays True");
        let gw = t.statuses.gateways.iter().find(|g| g.name == "same").unwrap();
        assert_eq!(gw.listeners[0].attached_routes, 0, "{name}: not counted");
    }
}

#[test]
fn a_gateway_selection_that_renders_nothing_says_why() {
    let snapshot = base()
        .with_class(gateway_class("theirs", "example.com/other"))
        .with_gateway(gateway("infra", "foreign", "theirs"));
    let settings = Settings {
        gateways: vec![
            ObjectRef { namespace: "infra".into(), name: "nope".into() },
            ObjectRef { namespace: "infra".into(), name: "foreign".into() },
            ObjectRef { namespace: "infra".into(), name: "gw".into() },
        ],
        ..Settings::default()
    };
    let t = translate(&snapshot, &settings);
    assert_eq!(
        t.notes,
        [
            "--gateway infra/foreign: its GatewayClass \"theirs\" is not one with controllerName \"cloudflared-routes/gateway-controller\"",
            "--gateway infra/nope: no such Gateway",
        ]
    );
    assert_eq!(t.statuses.gateways.len(), 1, "infra/gw is rendered");
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
fn the_namespace_name_label_is_always_the_namespace_name() {
    // The API server sets `kubernetes.io/metadata.name` itself; a file can claim any value.
    let gw = gateway("infra", "sel", "cf")
        .listener(listener("http").from_selector("kubernetes.io/metadata.name", "web"));
    let snapshot = base()
        .with_gateway(gw)
        .with_namespace(namespace("evil", &[("kubernetes.io/metadata.name", "web")]))
        .with_service(service("web", "w").port(8080))
        .with_service(service("evil", "e").port(8080))
        .with_route(
            http_route("web", "ok").parent("infra", "sel").hostname("ok.com").rule(rule().backend("w", 8080)),
        )
        .with_route(
            http_route("evil", "no")
                .parent("infra", "sel")
                .hostname("no.com")
                .rule(rule().backend("e", 8080)),
        );
    let t = run(&snapshot);
    check("metadata_name_label", &t, &[("ok.com", "/", "w"), ("no.com", "/", "404")]);
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
    assert_eq!((partial.status, partial.reason), (ConditionStatus::True, "UnsupportedValue"));
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
    assert_eq!((accepted.status, accepted.reason), (ConditionStatus::False, "UnsupportedValue"));
    assert!(t.rules.is_empty());
    assert_eq!(t.statuses.gateways[0].listeners[0].attached_routes, 0);
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
            (accepted.status, accepted.reason),
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
        t.rules.iter().filter(|r| r.service() == "http_status:404").count(),
        1,
        "one fence for the shared hostname"
    );
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
fn a_route_on_several_listeners_is_not_reported_as_shadowed_by_itself() {
    // `web` attaches to both listeners (no sectionName), and to both listeners with the same
    // hostname: its rules belong to the most specific block, once. `stray` takes a hostname of
    // the wildcard listener through the listener without one: the wildcard's fence makes it
    // unreachable, which the user must hear about.
    let gw = gateway("infra", "gw", "cf")
        .listener(listener("apps").hostname("*.apps.example.com").from_all())
        .listener(listener("apps-8080").hostname("*.apps.example.com").port(8080).from_all())
        .listener(listener("any").from_all());
    let snapshot = Snapshot::default()
        .with_class(gateway_class("cf", CTRL))
        .with_gateway(gw)
        .with_service(service("infra", "v1").port(8080))
        .with_route(
            http_route("infra", "web")
                .parent("infra", "gw")
                .hostname("web.apps.example.com")
                .rule(rule().prefix("/api").backend("v1", 8080)),
        )
        .with_route(
            http_route("infra", "stray")
                .parent_section("infra", "gw", "any")
                .hostname("stray.apps.example.com")
                .rule(rule().prefix("/x").backend("v1", 8080)),
        );
    let t = run(&snapshot);
    check(
        "several_listeners",
        &t,
        &[
            ("web.apps.example.com", "/api", "v1"),
            ("web.apps.example.com", "/b", "404"),
            ("stray.apps.example.com", "/x", "404"),
        ],
    );
    let web = |s: crate::ingress::SourceRef<'_>| matches!(s, crate::ingress::SourceRef::Route { route, .. } if route.name() == "web");
    assert_eq!(t.rules.iter().filter(|r| web(r.source())).count(), 1, "{:#?}", t.rules);
    let shadowed: Vec<_> = t.shadowed.iter().map(|(s, by)| (s.to_string(), by.to_string())).collect();
    assert_eq!(
        shadowed,
        [(
            "HTTPRoute infra/stray rule 0 match 0".to_string(),
            "listener *.apps.example.com: nothing else on this hostname".to_string()
        )]
    );
}

#[test]
fn attached_routes_counts_a_route_once_per_listener() {
    // Two parentRefs reach listener `a` (one by sectionName, one without); `b` only through
    // the second. Each listener has one route attached.
    let gw = gateway("infra", "two", "cf")
        .listener(listener("a").hostname("a.example.com").from_all())
        .listener(listener("b").from_all());
    let route = http_route("infra", "r")
        .parent_section("infra", "two", "a")
        .parent("infra", "two")
        .rule(rule().backend("v1", 8080));
    let t = run(&base().with_gateway(gw).with_route(route));
    let gw = t.statuses.gateways.iter().find(|g| g.name == "two").unwrap();
    let counts: Vec<(&str, i32)> =
        gw.listeners.iter().map(|l| (l.name.as_str(), l.attached_routes)).collect();
    assert_eq!(counts, [("a", 1), ("b", 1)]);
}
