use super::*;
use crate::ingress::{IngressRule, OriginRequest, RuleSource};
use crate::model::RouteKind;
use proptest::prelude::*;

/// [`super::render_rules`] of `rules` given in full, one by one ([`IngressRules::push`]).
fn render_rules(rules: &[IngressRule], uses_grpc: bool, base: &BaseConfig, tunnel: &Tunnel) -> Rendered {
    super::render_rules(&rules.iter().collect(), uses_grpc, base, tunnel)
}

fn rule(hostname: Option<&str>, path: Option<&str>, service: &str) -> IngressRule {
    IngressRule::new(
        hostname,
        path,
        service.into(),
        OriginRequest::default().into(),
        RuleSource::Route {
            route: crate::ingress::RouteName::new(RouteKind::Http, "default", "web"),
            rule: 0,
            match_index: 0,
        },
    )
}

fn tunnel() -> Tunnel {
    Tunnel {
        id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()),
        credentials_file: Some("/etc/cloudflared/creds/credentials.json".into()),
    }
}

fn parse(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{text}"))
}

#[test]
fn renders_rules_comments_and_default_catch_all() {
    let rules = vec![rule(
        Some("*.example.com"),
        Some("^/v1(?s:/.*)?$"),
        "http://api.default.svc.cluster.local:8080",
    )];
    let r = render_rules(&rules, false, &BaseConfig::default(), &tunnel());
    assert!(
        r.text.contains("  # HTTPRoute default/web rule 0 match 0\n  - hostname: '*.example.com'\n"),
        "{}",
        r.text
    );
    let v = parse(&r.text);
    assert_eq!(v["tunnel"], "6ff42ae2-765d-4adf-8112-31c55c1551ef");
    assert_eq!(v["credentials-file"], "/etc/cloudflared/creds/credentials.json");
    assert_eq!(v["ingress"][0]["path"], "^/v1(?s:/.*)?$");
    assert_eq!(v["ingress"][1]["service"], "http_status:404");
    assert_eq!(v["ingress"].as_array().unwrap().len(), 2);
    assert_eq!(r.rule_count, 2);
    assert!(v.get("protocol").is_none(), "no gRPC, no protocol override");
}

#[test]
fn base_config_keys_are_kept_in_order_and_its_catch_all_replaces_ours() {
    let base = BaseConfig::parse(
        "metrics: 0.0.0.0:2000\noriginRequest:\n  connectTimeout: 10s\n  noTLSVerify: false\nwarp-routing:\n  enabled: true\ningress:\n  - hostname: legacy.example.com\n    service: http://legacy:80\n  - service: http://old-ingress-controller.ingress.svc:80\n",
    )
    .unwrap();
    let r = render_rules(
        &[rule(Some("a.example.com"), None, "http://a.b.svc.cluster.local:80")],
        false,
        &base,
        &tunnel(),
    );
    let v = parse(&r.text);
    let keys: Vec<&str> =
        r.text.lines().filter(|l| !l.starts_with([' ', '#'])).map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(keys, ["tunnel", "credentials-file", "metrics", "originRequest", "warp-routing", "ingress"]);
    assert_eq!(v["originRequest"]["connectTimeout"], "10s", "durations stay strings");
    assert_eq!(v["warp-routing"]["enabled"], true);
    let ingress = v["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 3, "{}", r.text);
    assert_eq!(ingress[1]["hostname"], "legacy.example.com");
    assert_eq!(
        ingress[2]["service"], "http://old-ingress-controller.ingress.svc:80",
        "the base catch-all is last"
    );
}

#[test]
fn base_without_catch_all_gets_ours_after_its_rules() {
    let base =
        BaseConfig::parse("ingress:\n  - hostname: legacy.example.com\n    service: http://legacy:80\n")
            .unwrap();
    let v = parse(&render_rules(&[], false, &base, &Tunnel::default()).text);
    assert_eq!(v["ingress"][0]["hostname"], "legacy.example.com");
    assert_eq!(v["ingress"][1]["service"], "http_status:404");
}

#[test]
fn base_rules_a_generated_rule_takes_every_request_of_are_reported() {
    let base = BaseConfig::parse(
        "ingress:\n  - {hostname: ssh.example.com, service: 'ssh://localhost:22'}\n  - {hostname: '*.a.example.com', service: 'http://x:80'}\n  - {hostname: api.example.com, path: ^/old, service: 'http://y:80'}\n  - {hostname: other.org, service: 'http://z:80'}\n  - {hostname: Mail.Example.com, service: 'http://m:80'}\n  - service: http_status:404\n",
    )
    .unwrap();
    let mut fence = rule(Some("*.example.com"), None, "http_status:404");
    fence.source = RuleSource::ListenerFence { hostname: "*.example.com".into() };
    // A rule with a path hides nothing; the fence after it hides every host under it.
    let rules = [rule(Some("api.example.com"), Some("^/api$"), "http://a:80"), fence];
    let r = render_rules(&rules, false, &base, &tunnel());
    assert_eq!(
        r.warnings,
        [
            "the base config's ingress[0] (ssh.example.com) is never reached: listener *.example.com: nothing else on this hostname comes first and takes every request for it",
            "the base config's ingress[1] (*.a.example.com) is never reached: listener *.example.com: nothing else on this hostname comes first and takes every request for it",
            "the base config's ingress[2] (api.example.com) is never reached: listener *.example.com: nothing else on this hostname comes first and takes every request for it",
            // cloudflared also tries it lower-cased, which the fence takes first.
            "the base config's ingress[4] (Mail.Example.com) is never reached: listener *.example.com: nothing else on this hostname comes first and takes every request for it",
        ]
    );
    assert_eq!(
        parse(&r.text)["ingress"].as_array().map(Vec::len),
        Some(8),
        "still written as the user wrote them"
    );
}

#[test]
fn grpc_sets_protocol_http2_unless_the_base_says_otherwise() {
    let v = parse(&render_rules(&[], true, &BaseConfig::default(), &tunnel()).text);
    assert_eq!(v["protocol"], "http2");
    let base = BaseConfig::parse("protocol: quic\n").unwrap();
    let r = render_rules(&[], true, &base, &tunnel());
    assert_eq!(parse(&r.text)["protocol"], "quic", "the user's choice is kept");
    assert!(r.warnings.iter().any(|w| w.contains("http2")), "{:?}", r.warnings);
    // Written without a value, or not a string: ours, once (a second key would be refused).
    for (base, warned) in [("protocol:\n", false), ("protocol: ~\n", false), ("protocol: [http2]\n", true)] {
        let r = render_rules(&[], true, &BaseConfig::parse(base).unwrap(), &tunnel());
        assert_eq!(parse(&r.text)["protocol"], "http2", "{base:?}\n{}", r.text);
        assert_eq!(r.text.matches("protocol:").count(), 1, "{base:?}\n{}", r.text);
        assert_eq!(r.warnings.len(), usize::from(warned), "{base:?}: {:?}", r.warnings);
    }
}

#[test]
fn command_line_tunnel_replaces_the_base_and_says_so() {
    let base =
        BaseConfig::parse("tunnel: 00000000-0000-0000-0000-000000000000\ncredentials-file: /old.json\n")
            .unwrap();
    let r = render_rules(&[], false, &base, &tunnel());
    let v = parse(&r.text);
    assert_eq!(v["tunnel"], "6ff42ae2-765d-4adf-8112-31c55c1551ef");
    assert_eq!(r.text.matches("tunnel:").count(), 1);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
}

#[test]
fn a_route_matching_everything_ends_the_list() {
    let base = BaseConfig::parse("ingress:\n  - service: http://old:80\n").unwrap();
    let r =
        render_rules(&[rule(None, None, "http://all.default.svc.cluster.local:80")], false, &base, &tunnel());
    let v = parse(&r.text);
    assert_eq!(v["ingress"].as_array().unwrap().len(), 1);
    assert!(r.warnings.iter().any(|w| w.contains("left out")), "{:?}", r.warnings);
}

#[test]
fn origin_request_keys_render_under_the_rule() {
    let mut r =
        rule(Some("grpc.example.com"), Some("^/a\\.B/[^/]+$"), "https://g.default.svc.cluster.local:443");
    r.origin_request = OriginRequest {
        http_host_header: Some("internal".into()),
        origin_server_name: Some("g.internal".into()),
        http2_origin: true,
        no_tls_verify: true,
    }
    .into();
    let v = parse(&render_rules(&[r], true, &BaseConfig::default(), &tunnel()).text);
    let o = &v["ingress"][0]["originRequest"];
    assert_eq!(
        (o["httpHostHeader"].as_str(), o["originServerName"].as_str()),
        (Some("internal"), Some("g.internal"))
    );
    assert_eq!((o["http2Origin"].as_bool(), o["noTLSVerify"].as_bool()), (Some(true), Some(true)));
    assert_eq!(v["ingress"][0]["path"], "^/a\\.B/[^/]+$");
}

#[test]
fn a_backend_tls_policy_rule_checks_the_certificate_whatever_the_base_says() {
    // The base config turns verification off for every rule; the rule of a BackendTLSPolicy
    // (originServerName) turns it back on for itself.
    let base = BaseConfig::parse("originRequest:\n  noTLSVerify: true\n").unwrap();
    let mut r = rule(Some("a.example.com"), None, "https://a.default.svc.cluster.local:443");
    r.origin_request =
        OriginRequest { origin_server_name: Some("a.internal".into()), ..Default::default() }.into();
    let plain = rule(Some("b.example.com"), None, "https://b.default.svc.cluster.local:443");
    let v = parse(&render_rules(&[r, plain], false, &base, &tunnel()).text);
    assert_eq!(v["originRequest"]["noTLSVerify"], true);
    assert_eq!(v["ingress"][0]["originRequest"]["noTLSVerify"], false);
    assert!(v["ingress"][1].get("originRequest").is_none(), "the others inherit the base's choice");
}

#[test]
fn base_config_yaml_errors_give_the_position_never_the_text_nor_library_hints() {
    let secret = r#"{"AccountTag":"acc","TunnelSecret":"SUPERSECRETVALUE1234567890abc","TunnelID":"x""#;
    for (name, text, location, want) in [
        ("credentials_file_with_a_syntax_error", secret, (1, 1), "unclosed bracket '{'"),
        ("duplicate_key", "a: 1\na: 2\n", (2, 1), "duplicate mapping key: a not allowed here"),
        ("alias_inside_its_anchor", "a: &x\n  b: *x\n", (2, 6), "Recursive reference not allowed here"),
    ] {
        let Err(BaseConfigError::Yaml(error)) = BaseConfig::parse(text) else {
            panic!("{name}: not a YAML error");
        };
        assert_eq!(error.location, Some(location), "{name}");
        assert_eq!(error.message, want, "{name}");
        assert_eq!(error.in_file("base.yml"), format!("base.yml:{}:{}: {want}", location.0, location.1));
        for never in crate::yaml::NEVER_IN_AN_ERROR {
            assert!(!error.to_string().contains(never), "{name}: {never:?} in {error}");
        }
    }
}

#[test]
fn base_config_errors_are_reported() {
    assert_eq!(BaseConfig::parse("- a\n- b\n"), Err(BaseConfigError::NotAMapping));
    assert_eq!(BaseConfig::parse("ingress: 3\n"), Err(BaseConfigError::IngressNotAList));
    assert!(matches!(BaseConfig::parse("a: [\n"), Err(BaseConfigError::Yaml(_))));
    // A credentials file given as the base config: its secret would be copied into config.yml.
    let credentials = r#"{"AccountTag": "a", "TunnelSecret": "c2VjcmV0", "TunnelID": "6ff42ae2-765d-4adf-8112-31c55c1551ef"}"#;
    let refused = BaseConfig::parse(credentials).unwrap_err();
    assert_eq!(refused, BaseConfigError::HoldsTunnelSecret);
    assert!(!refused.to_string().contains("c2VjcmV0"));
    assert_eq!(BaseConfig::parse("").unwrap(), BaseConfig::default());
    // Copied as we read them, these would change meaning: `path: nULL` is a regex to
    // cloudflared and would be written as `null` (every path); `caPool: 0x10` names a file.
    for (text, what) in [
        ("ingress:\n- {hostname: a.example.com, path: nULL, service: http://a:80}\n", "`nULL` as the string"),
        ("originRequest: {caPool: 0x10}\n", "`0x10` would be copied as `16`"),
        ("originRequest: {noTLSVerify: tRUE}\n", "`tRUE` as the string"),
    ] {
        match BaseConfig::parse(text) {
            Err(BaseConfigError::Misread(m)) => assert!(m.contains(what), "{text}: {m}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    // Only the first document, as cloudflared reads its config.
    let base = BaseConfig::parse("protocol: http2\n---\nprotocol: quic\n---\n- a list\n").unwrap();
    assert_eq!(base.keys, [("protocol".to_string(), serde_json::json!("http2"))]);
    // What both readers take alike is copied: yaml.v3 decodes `yes` into a boolean setting.
    let base = BaseConfig::parse("originRequest: {noTLSVerify: yes, connectTimeout: 30s, caPool: '0x10'}\n");
    assert!(base.is_ok(), "{base:?}");
}

#[test]
fn scalars_that_plain_yaml_would_misread_are_quoted() {
    for (input, expected) in [
        ("http_status:404", "http_status:404"),
        ("http://a.b.svc.cluster.local:80", "http://a.b.svc.cluster.local:80"),
        ("*.example.com", "'*.example.com'"),
        ("true", "'true'"),
        ("No", "'No'"),
        ("8080", "'8080'"),
        ("it's", "'it''s'"),
        ("a\nb", "\"a\\nb\""),
        ("a: b", "'a: b'"),
        ("#x", "'#x'"),
        ("", "''"),
    ] {
        assert_eq!(scalar(input), expected, "{input:?}");
    }
}

proptest! {
    /// Whatever the string, the emitted scalar reads back as exactly that string, and holds
    /// nothing Go's yaml.v3 refuses (which would keep cloudflared from reading the file).
    #[test]
    fn scalar_round_trips(
        s in "\\PC*|[\\x00-\\x7f]*|[ :#'\"\\\\\n\t-]*|[\\x00-\\xff\u{2028}\u{2029}\u{feff}\u{fffe}\u{ffff}\u{10ffff}]*"
    ) {
        let yaml = format!("k: {}\n", scalar(&s));
        prop_assert!(yaml.chars().all(crate::yaml::go_yaml_reads), "{:?}", yaml);
        let v: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml:?}: {e}"));
        prop_assert_eq!(v["k"].as_str(), Some(s.as_str()), "{}", yaml);
    }
}

#[test]
fn rendered_text_fits_the_estimate_without_growing() {
    // The estimate sizes the output once; a config that outgrew it would be copied while
    // being written.
    let mut r =
        rule(Some("*.apps.example.com"), Some("^/api(?s:/.*)?$"), "http://web.default.svc.cluster.local:80");
    r.origin_request =
        OriginRequest { http2_origin: true, no_tls_verify: true, ..OriginRequest::default() }.into();
    let rules: IngressRules = vec![r; 1000].iter().collect();
    let rendered = super::render_rules(&rules, false, &BaseConfig::default(), &tunnel());
    let estimate = 4096 + rules.iter().map(estimated_len).sum::<usize>();
    assert_eq!(rendered.text.capacity(), estimate, "the text outgrew its estimate of {estimate} bytes");
    assert!(rendered.text.len() * 2 > estimate, "the estimate is more than twice the text");
}

#[test]
fn source_comments_stay_one_line_whatever_the_names_hold() {
    // An object name read from a file may hold a line break: it must not become YAML.
    let mut r = rule(Some("a.example.com"), None, "http://a:80");
    r.source = RuleSource::Route {
        route: crate::ingress::RouteName::new(
            RouteKind::Http,
            "default",
            "web\n  - service: http://evil:80\u{2028}x\u{85}y\u{7}",
        ),
        rule: 0,
        match_index: 0,
    };
    let rendered = render_rules(&[r], false, &BaseConfig::default(), &tunnel());
    assert!(
        rendered.text.contains(
            "# HTTPRoute default/web\\u{a}  - service: http://evil:80\\u{2028}x\\u{85}y\\u{7} rule 0"
        ),
        "{}",
        rendered.text
    );
    let config = parse(&rendered.text);
    assert_eq!(config["ingress"].as_array().map(Vec::len), Some(2), "{}", rendered.text);
    assert!(crate::validate::validate_str(&rendered.text).is_valid());
}

#[test]
fn yaml_line_breaks_and_characters_go_yaml_refuses_are_escaped() {
    for c in
        ['\u{85}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{7f}', '\u{80}', '\u{9f}', '\u{fffe}', '\u{ffff}']
    {
        let value = format!("http://a{c}b:80");
        let mut out = String::new();
        push_scalar(&mut out, &value);
        assert!(!out.contains(c), "{c:?} written raw: {out}");
        let parsed: String = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(parsed, value, "{out}");
    }
}

#[test]
fn a_top_level_access_or_ip_rules_is_warned_about() {
    // cloudflared builds the Access check from a rule's own originRequest only.
    let base = BaseConfig::parse(
        "originRequest:\n  access: {required: true, teamName: t, audTag: [a]}\n  ipRules: [{prefix: 10.0.0.0/8, allow: true}]\n",
    )
    .unwrap();
    let warnings = render_rules(&[], false, &base, &tunnel()).warnings;
    assert!(warnings.iter().any(|w| w.contains("`originRequest.access` is not enforced")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("`originRequest.ipRules` is not enforced")), "{warnings:?}");
    let rule_level = BaseConfig::parse(
        "ingress:\n- {hostname: a.example.com, service: http://a:80, originRequest: {access: {required: true, teamName: t, audTag: [a]}}}\n",
    )
    .unwrap();
    assert!(render_rules(&[], false, &rule_level, &tunnel()).warnings.is_empty());
}

#[test]
fn a_base_credentials_file_of_another_tunnel_is_warned_about() {
    let base =
        BaseConfig::parse("tunnel: old-tunnel\ncredentials-file: /etc/cloudflared/old.json\n").unwrap();
    let ours = Tunnel { id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()), credentials_file: None };
    let warnings = render_rules(&[], false, &base, &ours).warnings;
    assert!(
        warnings.iter().any(|w| w.contains("`credentials-file` (\"/etc/cloudflared/old.json\") is kept")),
        "{warnings:?}"
    );
    let same = BaseConfig::parse("tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\ncredentials-file: /c.json\n")
        .unwrap();
    assert!(render_rules(&[], false, &same, &ours).warnings.is_empty());
}
