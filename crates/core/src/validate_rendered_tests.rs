//! `validate_rendered`: what is validated is what is written.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::ingress::{IngressRule, OriginRequest, RuleSource};
use crate::model::RouteKind;
use crate::render::{BaseConfig, Tunnel};

/// [`crate::render::render_rules`] of `rules` given in full, one by one
/// ([`crate::ingress::IngressRules::push`]).
fn render_rules(
    rules: &[IngressRule],
    uses_grpc: bool,
    base: &BaseConfig,
    tunnel: &Tunnel,
) -> crate::render::Rendered {
    crate::render::render_rules(&rules.iter().collect(), uses_grpc, base, tunnel)
}

/// [`super::validate_rendered`] of `rules` given in full, one by one.
fn validate_rendered(rules: &[IngressRule], frame: &str) -> Report {
    super::validate_rendered(&rules.iter().collect(), frame)
}

/// Strings of every shape a scalar writer can get wrong: YAML indicators and keywords,
/// numbers, quotes, comment and mapping markers, surrounding and inner whitespace, tabs,
/// line breaks (YAML 1.1's too), control characters, a BOM, non-ASCII; and the valid and
/// invalid values the checks are about (regexes, services, wildcard hostnames, ports).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", " ", "a", "api.example.com", "*.example.com", "*", "a.*.com", "*example.com",
            "a.example.com:443", "10.0.0.1", "[::1]", "^/v1(?:/.*)?$", "^/a\\.b$", "(?=x)", "^/x{1001}$",
            "http://svc.ns.svc.cluster.local:80", "https://a:443/", "h2c://g:50051", "http_status:404",
            "http_status:99", "http_status:four", "hello_world", "bastion", "socks-proxy", "unix:/run/s",
            "svc:80", "http://a b:80", "true", "no", "Off", "y", "null", "~", "1", "-1", "1.5", "0x1F",
            "1e3", ".inf", ".NaN", "0o17", "12:30", "- a", "? a", ": a", "a: b", "a #b", "#a", "a#b",
            "'a'", "\"a\"", "a'b", "a\"b", "\\", "&a", "*a", "!a", "!!str a", "|", ">", "%a", "@a", "`a",
            "{a}", "[a]", "a,b", "---", "...", " a", "a ", "a\tb", "\ta", "a\nb", "a\r\nb", "a\n", "\n",
            "a\u{85}b", "a\u{2028}b", "a\u{2029}b", "\u{feff}a", "a\u{0}b", "a\u{7}b", "a\u{7f}b",
            "a\u{9b}b", "bücher.example", "/ü/ñ", "日本", "a\u{1F600}b", "\u{a0}",
        ]).prop_map(str::to_string),
        1 => "\\PC{0,12}",
        1 => any::<String>(),
    ]
}

fn source() -> impl Strategy<Value = RuleSource> {
    prop_oneof![
        4 => ("[a-z0-9-]{1,12}", "[a-z0-9.-]{1,20}", 0u32..4, 0u32..4, any::<bool>()).prop_map(
            |(namespace, name, rule, match_index, grpc)| RuleSource::Route {
                route: crate::ingress::RouteName::new(if grpc { RouteKind::Grpc } else { RouteKind::Http }, &namespace, &name),
                rule,
                match_index,
            }
        ),
        1 => text().prop_map(|name| RuleSource::Route {
            route: crate::ingress::RouteName::new(RouteKind::Http, "default", &name),
            rule: 0,
            match_index: 0,
        }),
        1 => text().prop_map(|hostname| RuleSource::ListenerFence { hostname: hostname.as_str().into() }),
        1 => Just(RuleSource::CatchAll),
    ]
}

/// Mostly rules cloudflared accepts (so that whole configs pass too), with hostile
/// `originRequest` strings and sources; now and then anything.
fn rule() -> impl Strategy<Value = IngressRule> {
    let hostname = prop::sample::select(vec!["api.example.com", "*.example.com", "a.b.example.org", "*"]);
    let path = prop::sample::select(vec!["^/v1(?:/.*)?$", "^/a\\.b$", "^/(x|y)+[0-9]{2}$", "^/ü/ñ$", ""]);
    let service = prop::sample::select(vec![
        "http://svc.ns.svc.cluster.local:80",
        "https://[::1]:8443",
        "http_status:404",
        "hello_world",
    ]);
    prop_oneof![
        3 => (prop::option::of(hostname), prop::option::of(path), service).prop_map(|(h, p, s)| {
            (h.map(str::to_string), p.map(str::to_string), s.to_string())
        }),
        1 => (prop::option::of(text()), prop::option::of(text()), text()),
    ]
    .prop_flat_map(|(hostname, path, service)| any_rule(Just(hostname), Just(path), Just(service)))
}

fn any_rule(
    hostname: impl Strategy<Value = Option<String>>,
    path: impl Strategy<Value = Option<String>>,
    service: impl Strategy<Value = String>,
) -> impl Strategy<Value = IngressRule> {
    (
        hostname,
        path,
        service,
        (prop::option::of(text()), prop::option::of(text()), any::<bool>(), any::<bool>()),
        source(),
    )
        .prop_map(|(hostname, path, service, (host_header, server_name, http2, no_verify), source)| {
            IngressRule::new(
                hostname.as_deref(),
                path.as_deref(),
                service.as_str().into(),
                OriginRequest {
                    http_host_header: host_header.map(Into::into),
                    origin_server_name: server_name.map(Into::into),
                    http2_origin: http2,
                    no_tls_verify: no_verify,
                }
                .into(),
                source,
            )
        })
}

/// A base config as a user writes one: top-level keys (valid, wrongly typed, unknown) and
/// ingress rules (valid, invalid, a catch-all or not).
fn base() -> impl Strategy<Value = BaseConfig> {
    let keys = prop::sample::subsequence(
        vec![
            "metrics: 0.0.0.0:2000",
            "metrics: localhost:",
            "protocol: quic",
            "protocol: http2",
            "loglevel: debug",
            "tunnel: from-base",
            "credentials-file: /base/creds.json",
            "originRequest: {connectTimeout: 10s, noTLSVerify: true}",
            "originRequest: {connectTimeout: 30, bastionMode: true}",
            "originRequest: {connectTimout: 10s}",
            "warp-routing: {enabled: true}",
            "originrequest: {a: 1}",
            "no-autoupdate: true",
            "grace-period: 30s",
            "retries: 5",
            "edge-ip-version: auto",
            "tag: [a=b, 'c: d']",
            "weird: \"a\\u2028b\\u0085c\"",
            "'quoted key': '#x'",
        ],
        0..5,
    );
    let rules = prop::sample::subsequence(
        vec![
            "{hostname: legacy.example.com, service: 'http://legacy:80'}",
            "{hostname: 'a.example.com:80', path: '(?<=x)', service: 'http://a/'}",
            "{service: nope}",
            "{hostname: s.example.com, service: socks-proxy, originRequest: {ipRules: [{prefix: 10.0.0.0/33}]}}",
            "{hostname: ssh.example.com, originRequest: {bastionMode: true}}",
            "{service: http_status:503}",
            "{hostname: '*', service: http_status:404}",
            "{hostname: b.example.com, service: 'http://b:80', originRequest: {acess: {}}}",
        ],
        0..4,
    );
    (keys, rules).prop_filter_map("a base config that parses", |(keys, rules)| {
        let mut text = keys.join("\n");
        if !rules.is_empty() {
            text.push_str("\ningress:\n");
            for rule in rules {
                text.push_str(&format!("  - {rule}\n"));
            }
        }
        BaseConfig::parse(&text).ok()
    })
}

fn tunnel() -> impl Strategy<Value = Tunnel> {
    (prop::option::of(text()), prop::option::of(text()))
        .prop_map(|(id, credentials_file)| Tunnel { id, credentials_file })
}

/// A generated rule as the YAML it is rendered to reads back.
fn rule_value(rule: &IngressRule) -> Value {
    let mut value = json!({"service": &*rule.service});
    if let Some(hostname) = rule.hostname() {
        value["hostname"] = json!(hostname);
    }
    if let Some(path) = rule.path() {
        value["path"] = json!(path);
    }
    let o = &rule.origin_request;
    if !o.is_empty() {
        let mut origin = json!({});
        if let Some(h) = &o.http_host_header {
            origin["httpHostHeader"] = json!(&**h);
        }
        if let Some(s) = &o.origin_server_name {
            origin["originServerName"] = json!(&**s);
        }
        if o.http2_origin {
            origin["http2Origin"] = json!(true);
        }
        if o.no_tls_verify {
            origin["noTLSVerify"] = json!(true);
        } else if o.origin_server_name.is_some() {
            origin["noTLSVerify"] = json!(false);
        }
        value["originRequest"] = origin;
    }
    value
}

/// What `validate_rendered(rules, frame)` validates, as one document: the frame's
/// top-level keys, and under `ingress` the rules followed by the frame's own (unless the
/// last rule matches everything).
fn assembled(rules: &[IngressRule], frame: &Value) -> Value {
    let mut config = frame.clone();
    let terminated = rules.last().is_some_and(IngressRule::is_catch_all);
    let tail = if terminated { Vec::new() } else { frame["ingress"].as_array().cloned().unwrap_or_default() };
    config["ingress"] = Value::Array(rules.iter().map(rule_value).chain(tail).collect());
    config
}

fn parse(text: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, crate::yaml::options())
}

fn is_yaml_error(report: &Report) -> bool {
    report.errors.iter().any(|f| f.message.starts_with("error parsing YAML"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// What is validated is what is written: the rendered text reads back as the rules and
    /// the frame, and validating those gives the report validating the text gives.
    #[test]
    fn the_rendered_text_is_what_validate_rendered_checked(
        rules in prop::collection::vec(rule(), 0..6),
        uses_grpc in any::<bool>(),
        base in base(),
        tunnel in tunnel(),
    ) {
        let text = render_rules(&rules, uses_grpc, &base, &tunnel).text;
        let frame = render_rules(&[], uses_grpc, &base, &tunnel).text;
        let from_parts = validate_rendered(&rules, &frame);
        let from_text = validate_str(&text);
        if is_yaml_error(&from_text) || is_yaml_error(&from_parts) {
            // The same verdict; the messages differ by line numbers.
            prop_assert!(is_yaml_error(&from_text) && is_yaml_error(&from_parts),
                "{:?}\n{:?}\n{}", from_text, from_parts, text);
            return Ok(());
        }
        prop_assert_eq!(&from_parts, &from_text, "{}", text);
        let read_back = parse(&text).unwrap();
        prop_assert_eq!(read_back, assembled(&rules, &parse(&frame).unwrap()), "{}", text);
    }
}

#[test]
fn a_source_with_line_breaks_is_written_escaped_and_accepted() {
    let rule = |name: &str| {
        IngressRule::new(
            Some("a.example.com"),
            None,
            "http://a:80".into(),
            OriginRequest::default().into(),
            RuleSource::Route {
                route: crate::ingress::RouteName::new(RouteKind::Http, "web", name),
                rule: 0,
                match_index: 0,
            },
        )
    };
    let (base, tunnel) = (BaseConfig::default(), Tunnel::default());
    let frame = render_rules(&[], false, &base, &tunnel).text;
    // A newline would let the name's text be read as YAML; U+2028 ends the line for
    // cloudflared's reader only; a control character makes it refuse the whole file. The
    // renderer escapes them all, so the text holds exactly the rules validated.
    for name in
        ["web", "a\n  - service: http://evil:80", "a\u{2028}b", "a\u{85}b", "a\rb", "a\u{1}b", "a\u{feff}"]
    {
        let rules = [rule(name)];
        let report = validate_rendered(&rules, &frame);
        assert!(report.is_valid(), "{name:?}: {report:?}");
        let text = render_rules(&rules, false, &base, &tunnel).text;
        assert_eq!(validate_str(&text), report, "{name:?}\n{text}");
        assert_eq!(parse(&text).unwrap(), assembled(&rules, &parse(&frame).unwrap()), "{text}");
    }
}

#[test]
fn generated_rules_come_before_the_frame_rules_unless_one_matches_everything() {
    let rule = |hostname: Option<&str>, service: &str| {
        IngressRule::new(
            hostname,
            None,
            service.into(),
            OriginRequest::default().into(),
            RuleSource::CatchAll,
        )
    };
    let frame = "tunnel: x\ningress:\n  - {hostname: legacy.example.com, service: nope}\n  - service: http_status:404\n";
    // The frame's rule is numbered after the generated ones.
    let report = validate_rendered(&[rule(Some("a.example.com"), "http://a:80")], frame);
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(report.errors[0].rule, Some(1));
    assert!(report.errors[0].message.starts_with("nope is an invalid address"), "{report:?}");
    // A generated catch-all ends the list: the frame's rules are not rendered, nor checked.
    assert!(validate_rendered(&[rule(None, "http://all:80")], frame).is_valid());
    // No rules at all, and a frame that does not parse.
    assert!(!validate_rendered(&[], "tunnel: x\n").is_valid());
    let report = validate_rendered(&[rule(None, "http://all:80")], "ingress: [\n");
    assert!(report.errors[0].message.starts_with("error parsing YAML"), "{report:?}");
}

#[test]
fn an_invalid_generated_path_is_refused_every_time() {
    let rule = |path: &str| {
        IngressRule::new(
            Some("a.example.com"),
            Some(path),
            "http://a:80".into(),
            OriginRequest::default().into(),
            RuleSource::CatchAll,
        )
    };
    let frame = "ingress:\n  - {path: '^/base$', service: 'http://b:80'}\n  - service: http_status:404\n";
    for _ in 0..2 {
        let report = validate_rendered(&[rule("^/a$"), rule("^/(?=b)$"), rule("^/c$")], frame);
        assert_eq!(report.errors.len(), 1, "{report:?}");
        assert!(report.errors[0].message.contains("Rule #2 has an invalid regex"), "{report:?}");
    }
}

#[test]
fn a_service_shared_by_rules_is_reported_on_each() {
    let rule = |hostname: &str, service: &str| {
        IngressRule::new(
            Some(hostname),
            None,
            service.into(),
            OriginRequest::default().into(),
            RuleSource::CatchAll,
        )
    };
    let rules =
        [rule("a.example.com", "nope"), rule("b.example.com", "h2c://g:1"), rule("c.example.com", "nope")];
    let rules = [rules.as_slice(), &[rule("d.example.com", "h2c://g:1")]].concat();
    let report = validate_rendered(&rules, "ingress:\n  - service: http_status:404\n");
    let errors: Vec<Option<usize>> = report.errors.iter().map(|f| f.rule).collect();
    assert_eq!(errors, [Some(0), Some(2)], "{report:?}");
    let warnings: Vec<Option<usize>> = report.warnings.iter().map(|f| f.rule).collect();
    assert_eq!(warnings, [Some(1), Some(3)], "{report:?}");
    // The same rules as a translation makes them, rules of one service sharing its id (each
    // service's outcome remembered by id): the same report.
    let mut services = crate::ingress::Services::default();
    let (nope, h2c) = (services.push("nope"), services.push("h2c://g:1"));
    let text = "a.example.comb.example.comc.example.comd.example.com".to_string();
    let mut shared = crate::ingress::IngressRules::with_parts(text, services, Vec::new(), Vec::new(), 4);
    for (i, service) in [nope, h2c, nope, h2c].into_iter().enumerate() {
        let at = 13 * i as u32;
        shared.push_record(
            Some(at..at + 13),
            None,
            service,
            crate::ingress::NO_ORIGIN,
            crate::ingress::SourceRecord::CatchAll,
        );
    }
    assert_eq!(shared, rules.iter().collect());
    assert_eq!(super::validate_rendered(&shared, "ingress:\n  - service: http_status:404\n"), report);
}
