//! Unit tests of the cloudflared matcher model ([`super::support::cloudflared`]). Included by
//! `tests/conformance.rs` only, so they run once.

use crate::support::cloudflared::{decode_request_path, host_matches, split_host_port, strip_port, Model};

const SERVICE_A: &str = "http://a.default.svc.cluster.local:80";
const SERVICE_B: &str = "http://b.default.svc.cluster.local:80";

fn model(rules: &str) -> Model {
    let m = Model::parse(&format!("ingress:\n{rules}"));
    assert!(m.errors.is_empty(), "test config should be valid: {:?}", m.errors);
    m
}

fn served(m: &Model, host: &str, path: &str) -> usize {
    m.serve(host, path).index
}

#[test]
fn path_regex_is_searched_unanchored() {
    let m = model(&format!(
        "  - {{hostname: a.com, path: /api, service: '{SERVICE_A}'}}\n  - service: http_status:404\n"
    ));
    assert_eq!(served(&m, "a.com", "/api"), 0);
    assert_eq!(served(&m, "a.com", "/v2/api"), 0, "an unanchored search finds /api inside /v2/api");
    assert_eq!(served(&m, "a.com", "/apix"), 0, "an unanchored search finds /api in /apix");
    assert_eq!(served(&m, "a.com", "/ap"), 1);
}

#[test]
fn anchored_regex_needs_the_whole_path() {
    let m = model(&format!(
        "  - {{hostname: a.com, path: '^/api$', service: '{SERVICE_A}'}}\n  - service: http_status:404\n"
    ));
    assert_eq!(served(&m, "a.com", "/api"), 0);
    assert_eq!(served(&m, "a.com", "/v2/api"), 1);
    assert_eq!(served(&m, "a.com", "/api/"), 1);
}

#[test]
fn hostname_and_path_are_case_sensitive() {
    let m = model(&format!(
        "  - {{hostname: api.example.com, path: '^/One$', service: '{SERVICE_A}'}}\n  - service: http_status:404\n"
    ));
    assert_eq!(served(&m, "api.example.com", "/One"), 0);
    assert_eq!(served(&m, "API.example.com", "/One"), 1, "hostnames compare case-sensitively");
    assert_eq!(served(&m, "api.example.com", "/one"), 1, "paths compare case-sensitively");
}

#[test]
fn an_upper_case_rule_hostname_also_matches_its_lower_case_form() {
    // cloudflared's punycode fallback (`idna.Lookup.ToASCII`) lower-cases the rule's name; the
    // request's host is never folded, and a wildcard fails IDNA's rules.
    let m = model(&format!(
        "  - {{hostname: App.example.com, service: '{SERVICE_A}'}}\n  - {{hostname: '*.Example.com', service: '{SERVICE_A}'}}\n  - service: http_status:404\n"
    ));
    assert_eq!(served(&m, "app.example.com", "/"), 0);
    assert_eq!(served(&m, "App.example.com", "/"), 0);
    assert_eq!(served(&m, "APP.example.com", "/"), 2, "the request's host is not folded");
    assert_eq!(served(&m, "x.example.com", "/"), 2, "a wildcard rule is compared as written");
    assert!(!host_matches(Some("A_b.example.com"), "a_b.example.com"), "STD3 refuses '_': no fallback");
}

#[test]
fn wildcard_never_matches_apex_but_spans_labels() {
    let m = model(&format!(
        "  - {{hostname: '*.example.com', service: '{SERVICE_A}'}}\n  - service: http_status:404\n"
    ));
    assert_eq!(served(&m, "a.example.com", "/"), 0);
    assert_eq!(served(&m, "a.b.example.com", "/"), 0, "a wildcard spans several labels");
    assert_eq!(served(&m, "example.com", "/"), 1, "a wildcard never matches the apex");
    assert_eq!(served(&m, "badexample.com", "/"), 1, "the suffix starts at a label boundary");
    assert!(!host_matches(Some("*.example.com"), "example.com"));
}

#[test]
fn empty_or_star_hostname_matches_every_host() {
    assert!(host_matches(None, "anything.test"));
    assert!(host_matches(Some(""), "anything.test"));
    assert!(host_matches(Some("*"), "anything.test"));
    assert!(!host_matches(Some("a.test"), "b.test"));
}

#[test]
fn first_match_wins_in_file_order() {
    let m = model(&format!(
        "  - {{hostname: a.com, path: '^/', service: '{SERVICE_A}'}}\n  \
         - {{hostname: a.com, path: '^/exact$', service: '{SERVICE_B}'}}\n  - service: http_status:404\n"
    ));
    let s = m.serve("a.com", "/exact");
    assert_eq!((s.index, s.service.as_str()), (0, SERVICE_A), "the earlier, broader rule wins");
}

#[test]
fn request_port_is_stripped() {
    let m = model(&format!(
        "  - {{hostname: very.specific.com, service: '{SERVICE_A}'}}\n  - service: http_status:404\n"
    ));
    assert_eq!(served(&m, "very.specific.com:1234", "/s1"), 0);
    assert_eq!(strip_port("[::1]:80"), "::1");
    assert_eq!(strip_port("a.com"), "a.com");
    assert_eq!(strip_port("a:b:c"), "a:b:c", "like net.SplitHostPort: too many colons, kept");
}

#[test]
fn path_is_percent_decoded_without_query() {
    let m = model(&format!(
        "  - {{hostname: a.com, path: '^/a b/c$', service: '{SERVICE_A}'}}\n  \
         - {{hostname: a.com, path: '^/x\\+y$', service: '{SERVICE_B}'}}\n  - service: http_status:404\n"
    ));
    assert_eq!(served(&m, "a.com", "/a%20b/c"), 0);
    assert_eq!(served(&m, "a.com", "/a%20b%2Fc"), 0, "%2F decodes to / like Go's url.Path");
    assert_eq!(served(&m, "a.com", "/a%20b/c?q=1"), 0, "the query string is not part of the path");
    assert_eq!(served(&m, "a.com", "/a%20b/c#frag"), 0, "nor is the fragment");
    assert_eq!(served(&m, "a.com", "/x+y"), 1, "`+` is not a space in a path");
    assert_eq!(decode_request_path("/%41%62?%20"), b"/Ab");
}

#[test]
#[should_panic(expected = "invalid percent escape")]
fn malformed_escape_is_refused() {
    decode_request_path("/a%zz");
}

#[test]
fn nothing_matching_falls_back_to_the_last_rule() {
    // Only reachable in a config cloudflared would refuse (the last rule is not a catch-all).
    let m = Model::parse(&format!("ingress:\n  - {{hostname: a.com, service: '{SERVICE_A}'}}\n"));
    assert_eq!(m.serve("b.com", "/").index, 0);
    assert!(!m.errors.is_empty());
}

#[test]
fn effective_origin_request_overrides_key_by_key() {
    let m = Model::parse(&format!(
        "originRequest: {{connectTimeout: 10s, noTLSVerify: false}}\ningress:\n  \
         - {{hostname: a.com, service: '{SERVICE_A}', originRequest: {{noTLSVerify: true}}}}\n  \
         - service: http_status:404\n"
    ));
    let o = m.effective_origin_request(0);
    assert_eq!(o["connectTimeout"], "10s");
    assert_eq!(o["noTLSVerify"], true);
}

#[test]
fn validation_mirrors_cloudflared() {
    let cases: &[(&str, &str)] = &[
        ("no rules", "ingress: []\n"),
        ("last rule not catch-all", "ingress:\n  - {hostname: a.com, service: http_status:404}\n"),
        ("last rule with path", "ingress:\n  - {path: '^/', service: http_status:404}\n"),
        (
            "catch-all not last",
            "ingress:\n  - service: http_status:404\n  - service: http_status:404\n",
        ),
        (
            "hostname with port",
            "ingress:\n  - {hostname: 'a.com:80', service: http_status:404}\n  - service: http_status:404\n",
        ),
        (
            "wildcard not first",
            "ingress:\n  - {hostname: 'a.*.com', service: http_status:404}\n  - service: http_status:404\n",
        ),
        (
            "invalid regex",
            "ingress:\n  - {hostname: a.com, path: '^/(', service: http_status:404}\n  - service: http_status:404\n",
        ),
        (
            "service with a lone /",
            "ingress:\n  - {hostname: a.com, service: 'http://a:80/'}\n  - service: http_status:404\n",
        ),
        ("service without scheme", "ingress:\n  - service: 'a.default.svc:80'\n"),
        ("status out of range", "ingress:\n  - service: http_status:1000\n"),
        (
            "bare integer duration",
            "originRequest: {connectTimeout: 10}\ningress:\n  - service: http_status:404\n",
        ),
    ];
    for (name, yaml) in cases {
        let m = Model::parse(yaml);
        assert!(!m.errors.is_empty(), "{name}: cloudflared refuses this config, the model accepted it");
    }
    let ok = Model::parse(
        "ingress:\n  - {path: '^/only-path', service: hello_world}\n  \
         - {hostname: '*', path: '^/x', service: 'https://a.b:443'}\n  - {hostname: '*', service: http_status:404}\n",
    );
    assert!(ok.errors.is_empty(), "a path-only rule mid-list is allowed: {:?}", ok.errors);
}

/// A config with `rule` (a flow mapping) first, then the catch-all; `top` is written above.
fn with_rule(top: &str, rule: &str) -> String {
    format!("{top}ingress:\n  - {rule}\n  - service: http_status:404\n")
}

/// (case, config, whether cloudflared starts with it). Each row is what cloudflared's source
/// says: config/configuration.go (yaml.v3 decode, then a strict decode whose errors are only
/// warnings), ingress/ingress.go `validateIngress` and `validateHostname`, Go's
/// `net.SplitHostPort`, `url.Parse` and `time.ParseDuration`.
fn cloudflared_verdicts() -> Vec<(&'static str, String, bool)> {
    let rule = |rule: &str| with_rule("", rule);
    let origin = |top: &str| {
        with_rule(&format!("originRequest: {{{top}}}\n"), "{hostname: a.com, service: http_status:404}")
    };
    vec![
        ("unknown_rule_key_only_warns", rule("{hostname: a.com, service: http_status:404, foo: 1}"), true),
        ("unknown_origin_request_key_only_warns", origin("connectTimeot: 30s"), true),
        ("ipv6_hostname_has_no_port", rule("{hostname: '::1', service: http_status:404}"), true),
        ("bracketed_ipv6_hostname_has_no_port", rule("{hostname: '[::1]', service: http_status:404}"), true),
        (
            "bracketed_ipv6_hostname_with_port",
            rule("{hostname: '[::1]:80', service: http_status:404}"),
            false,
        ),
        ("hostname_with_empty_port", rule("{hostname: 'a.com:', service: http_status:404}"), false),
        ("numeric_hostname_is_text", rule("{hostname: 12, service: http_status:404}"), true),
        ("numeric_path_is_text", rule("{path: 123, service: http_status:404}"), true),
        ("hostname_list_is_a_type_error", rule("{hostname: [a.com], service: http_status:404}"), false),
        ("hello_dash_world", rule("{hostname: a.com, service: hello-world}"), true),
        ("hello_underscore_world", rule("{hostname: a.com, service: hello_world}"), true),
        ("url_with_query_has_no_path", rule("{hostname: a.com, service: 'http://h:80?x'}"), true),
        ("url_with_fragment_has_no_path", rule("{hostname: a.com, service: 'http://h:80#f'}"), true),
        ("url_with_lone_slash_has_a_path", rule("{hostname: a.com, service: 'http://h:80/'}"), false),
        ("url_without_hostname", rule("{hostname: a.com, service: 'http://:80'}"), false),
        ("url_with_brackets_only", rule("{hostname: a.com, service: 'http://[]:80'}"), false),
        ("url_with_ipv6_host", rule("{hostname: a.com, service: 'http://[::1]:80'}"), true),
        ("url_with_userinfo", rule("{hostname: a.com, service: 'http://u:p@h:80'}"), true),
        ("url_with_bad_port", rule("{hostname: a.com, service: 'http://h:8a'}"), false),
        ("url_with_space_in_host", rule("{hostname: a.com, service: 'http://a b:80'}"), false),
        ("url_with_bad_fragment_escape", rule("{hostname: a.com, service: 'http://h:80#%zz'}"), false),
        // Go's `parse` looks for control characters once the fragment is cut.
        (
            "url_with_control_character_in_fragment",
            rule(r#"{hostname: a.com, service: "http://h:80#\x01"}"#),
            true,
        ),
        (
            "url_with_control_character_in_host",
            rule(r#"{hostname: a.com, service: "http://h\x01:80"}"#),
            false,
        ),
        ("opaque_url_has_no_host", rule("{hostname: a.com, service: 'localhost:8080'}"), false),
        (
            "bastion_mode_takes_any_service",
            rule("{hostname: a.com, service: 'http://h:80/x', originRequest: {bastionMode: true}}"),
            true,
        ),
        (
            "top_level_bastion_mode_takes_any_service",
            with_rule("originRequest: {bastionMode: true}\n", "{hostname: a.com, service: 'no scheme'}"),
            true,
        ),
        (
            "rule_bastion_mode_false_overrides_top_level",
            with_rule(
                "originRequest: {bastionMode: true}\n",
                "{hostname: a.com, service: 'http://h:80/x', originRequest: {bastionMode: false}}",
            ),
            false,
        ),
        (
            "bastion_mode_still_checks_http_status",
            rule("{hostname: a.com, service: 'http_status:99', originRequest: {bastionMode: true}}"),
            false,
        ),
        ("duration_without_unit", origin("connectTimeout: '30'"), false),
        ("duration_as_integer", origin("connectTimeout: 30"), false),
        ("duration_with_unit", origin("connectTimeout: 30s"), true),
        ("duration_zero", origin("tlsTimeout: '0'"), true),
        ("duration_fraction", origin("tcpKeepAlive: .5s"), true),
        ("duration_compound", origin("keepAliveTimeout: 1h1m30.5s"), true),
        ("duration_trailing_number", origin("keepAliveTimeout: 1h1"), false),
        ("duration_micro_sign", origin("connectTimeout: 1µs"), true),
        ("duration_unknown_unit", origin("connectTimeout: 5sec"), false),
        ("bool_as_integer", origin("noTLSVerify: 1"), false),
        ("bool_as_quoted_true", origin("noTLSVerify: 'true'"), false),
        ("bool_as_yaml_1_1_word", origin("noTLSVerify: yes"), true),
        ("bool", origin("noTLSVerify: true"), true),
        ("int_as_string", origin("keepAliveConnections: '5'"), false),
        ("int", origin("keepAliveConnections: 5"), true),
        ("string_key_takes_a_number", origin("httpHostHeader: 5"), true),
        ("null_origin_request_key", origin("caPool: null"), true),
    ]
}

#[test]
fn validation_agrees_with_cloudflared_row_by_row() {
    let mut failures = Vec::new();
    for (name, config, starts) in cloudflared_verdicts() {
        let model = Model::parse(&config);
        if model.errors.is_empty() != starts {
            failures.push(format!(
                "{name}: cloudflared starts: {starts}; the model: {:?}\n{config}",
                model.errors
            ));
        }
        // The production validator, checked against the same verdicts.
        let report = routes_core::validate::validate_str(&config);
        if report.is_valid() != starts {
            failures.push(format!(
                "{name}: cloudflared starts: {starts}; validate: {:?}\n{config}",
                report.errors
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_keys_are_warnings() {
    let m = Model::parse(&with_rule(
        "originRequest: {connectTimeot: 30s}\n",
        "{hostname: a.com, service: http_status:404, foo: 1}",
    ));
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
}

#[test]
fn split_host_port_succeeds_where_go_does() {
    for (hostport, split) in [
        ("a.com:80", Some(("a.com", "80"))),
        ("a.com:", Some(("a.com", ""))),
        ("[::1]:80", Some(("::1", "80"))),
        ("a.com", None),
        ("::1", None),
        ("[::1]", None),
        ("a:b:c", None),
        ("[a]b:80", None),
        ("a]:80", None),
        ("[a:80", None),
    ] {
        assert_eq!(split_host_port(hostport), split, "{hostport}");
    }
}
