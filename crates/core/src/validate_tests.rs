use super::*;

/// One config and what cloudflared would say about it: (rule index, part of the message).
struct Case {
    name: &'static str,
    yaml: &'static str,
    errors: &'static [(Option<usize>, &'static str)],
    warnings: &'static [(Option<usize>, &'static str)],
}

const VALID: &[Case] = &[
    Case {
        name: "domain_example_is_valid",
        yaml: r#"
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef      # TunnelID from credentials.json
credentials-file: /etc/cloudflared/creds/credentials.json
protocol: http2            # process-wide; needed for gRPC (QUIC drops trailers)
metrics: 0.0.0.0:2000      # always set explicitly
originRequest: {connectTimeout: 10s}             # defaults for every rule
ingress:
  - hostname: api.example.com
    path: ^/v1(?:/.*)?$
    service: http://api.default.svc.cluster.local:8080
    originRequest: {httpHostHeader: api.internal}
  - service: http_status:404                     # exactly one catch-all, last
"#,
        errors: &[],
        warnings: &[],
    },
    Case { name: "single_catch_all_is_valid", yaml: "ingress:\n  - service: http_status:404\n", errors: &[], warnings: &[] },
    Case {
        name: "star_hostname_catch_all_last_is_valid",
        yaml: "ingress:\n  - hostname: '*.example.com'\n    service: https://web:443\n  - hostname: '*'\n    service: http_status:503\n",
        errors: &[],
        warnings: &[],
    },
    Case {
        name: "path_only_rule_mid_list_is_allowed",
        yaml: "ingress:\n  - path: ^/static/\n    service: http://static:80\n  - service: http_status:404\n",
        errors: &[],
        warnings: &[],
    },
    Case {
        name: "every_service_kind_is_valid",
        yaml: r#"
ingress:
  - {hostname: a.example.com, service: "unix:/run/app.sock"}
  - {hostname: b.example.com, service: "unix+tls:/run/app.sock"}
  - {hostname: c.example.com, service: hello_world}
  - {hostname: d.example.com, service: hello-world}
  - {hostname: e.example.com, service: bastion}
  - {hostname: f.example.com, service: socks-proxy, originRequest: {ipRules: [{prefix: 10.0.0.0/8, ports: [80, 443], allow: true}, {prefix: "::/0", allow: false}]}}
  - {hostname: g.example.com, service: "ws://chat:8080"}
  - {hostname: h.example.com, service: "wss://chat:8443"}
  - {hostname: i.example.com, service: "ssh://git:22"}
  - {hostname: j.example.com, service: "tcp://db:5432"}
  - {hostname: k.example.com, service: "rdp://desktop"}
  - {hostname: l.example.com, service: "http://[::1]:8080"}
  - {hostname: m.example.com, service: "https://user:pa%20ss@web:443?x=1#top"}
  - {hostname: n.example.com, service: "http_status:100"}
  - service: "http_status:999"
"#,
        errors: &[],
        warnings: &[],
    },
    Case {
        name: "go_durations_and_typed_values_are_valid",
        yaml: r#"
originRequest:
  connectTimeout: 30s
  tlsTimeout: 1m30s
  tcpKeepAlive: 300ms
  keepAliveTimeout: 1h
  keepAliveConnections: 100
  proxyPort: 1080
  noTLSVerify: yes
  http2Origin: false
  matchSNItoHost: true
  access: {required: true, teamName: team, audTag: [abc]}
warp-routing: {enabled: true, connectTimeout: "0", tcpKeepAlive: 1.5h}
ingress:
  - hostname: a.example.com
    service: https://a:443
    originRequest: {connectTimeout: 2h45m, caPool: /ca.pem, originServerName: a.internal}
  - service: http_status:404
"#,
        errors: &[],
        warnings: &[],
    },
    Case {
        name: "bastion_mode_skips_the_service_check",
        yaml: "ingress:\n  - hostname: ssh.example.com\n    originRequest: {bastionMode: true}\n  - service: http_status:404\n",
        errors: &[],
        warnings: &[],
    },
];

const INVALID: &[Case] = &[
    Case { name: "no_ingress_rules_is_rejected", yaml: "tunnel: x\n", errors: &[(None, "doesn't contain any ingress rules")], warnings: &[] },
    Case { name: "empty_ingress_list_is_rejected", yaml: "ingress: []\n", errors: &[(None, "No ingress rules were defined")], warnings: &[] },
    Case { name: "empty_file_is_rejected", yaml: "", errors: &[(None, "doesn't contain any ingress rules")], warnings: &[] },
    Case {
        name: "hostname_with_port_is_rejected",
        yaml: "ingress:\n  - {hostname: 'a.example.com:443', service: 'http://a:80'}\n  - service: http_status:404\n",
        errors: &[(Some(0), "Hostname cannot contain a port")],
        warnings: &[],
    },
    Case {
        name: "wildcard_not_first_is_rejected",
        yaml: "ingress:\n  - {hostname: 'a.*.example.com', service: 'http://a:80'}\n  - {hostname: '**.example.com', service: 'http://a:80'}\n  - service: http_status:404\n",
        errors: &[
            (Some(0), "at most one wildcard character (\"*\") and it can only be used for subdomains"),
            (Some(1), "Hostname patterns can have at most one wildcard"),
        ],
        warnings: &[],
    },
    Case {
        name: "wildcard_without_dot_is_only_a_warning",
        yaml: "ingress:\n  - {hostname: '*example.com', service: 'http://a:80'}\n  - service: http_status:404\n",
        errors: &[],
        warnings: &[(Some(0), "never matches")],
    },
    Case {
        name: "last_rule_with_hostname_is_rejected",
        yaml: "ingress:\n  - {hostname: a.example.com, service: 'http://a:80'}\n",
        errors: &[(Some(0), "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)")],
        warnings: &[],
    },
    Case {
        name: "last_rule_with_path_is_rejected",
        yaml: "ingress:\n  - {hostname: '*', path: ^/, service: http_status:404}\n",
        errors: &[(Some(0), "The last ingress rule must match all URLs")],
        warnings: &[],
    },
    Case {
        name: "catch_all_not_last_is_rejected",
        yaml: "ingress:\n  - service: http_status:404\n  - {hostname: '*', service: http_status:503}\n  - service: http_status:404\n",
        errors: &[
            (Some(0), "Rule #1 is matching the hostname '', but this will match every hostname, meaning the rules which follow it will never be triggered."),
            (Some(1), "Rule #2 is matching the hostname '*'"),
        ],
        warnings: &[],
    },
    Case {
        name: "invalid_path_regex_is_rejected",
        yaml: "ingress:\n  - {hostname: a.example.com, service: 'http://a:80'}\n  - {path: '^/(?=x)', service: 'http://a:80'}\n  - service: http_status:404\n",
        errors: &[(Some(1), "Rule #2 has an invalid regex: error parsing regexp: invalid or unsupported Perl syntax")],
        warnings: &[],
    },
    Case {
        name: "service_with_path_is_rejected",
        yaml: "ingress:\n  - service: http://a:80/api\n",
        errors: &[(Some(0), "http://a:80/api is an invalid address, ingress rules don't support proxying to a different path on the origin service. The path will be the same as the eyeball request's path")],
        warnings: &[],
    },
    Case {
        name: "service_with_lone_slash_path_is_rejected",
        yaml: "ingress:\n  - service: https://a:443/\n",
        errors: &[(Some(0), "https://a:443/ is an invalid address, ingress rules don't support proxying")],
        warnings: &[],
    },
    Case {
        name: "service_without_scheme_is_rejected",
        yaml: "ingress:\n  - {hostname: a.example.com, service: 'svc.default:8080'}\n  - {hostname: b.example.com, service: '127.0.0.1:8080'}\n  - service: web\n",
        errors: &[
            (Some(0), "svc.default:8080 is an invalid address, please make sure it has a scheme and a hostname"),
            (Some(1), "parse \"127.0.0.1:8080\": first path segment in URL cannot contain colon"),
            (Some(2), "web is an invalid address, please make sure it has a scheme and a hostname"),
        ],
        warnings: &[],
    },
    Case {
        name: "service_without_host_is_rejected",
        yaml: "ingress:\n  - {hostname: a.example.com, service: 'http://:8080'}\n  - {hostname: b.example.com, service: 'tcp://'}\n  - service: 'http:web'\n",
        errors: &[
            (Some(0), "http://:8080 is an invalid address, please make sure it has a scheme and a hostname"),
            (Some(1), "tcp:// is an invalid address"),
            (Some(2), "http:web is an invalid address"),
        ],
        warnings: &[],
    },
    Case {
        name: "unparsable_service_url_is_rejected",
        yaml: "ingress:\n  - {hostname: a.example.com, service: 'http://a:http'}\n  - {hostname: b.example.com, service: 'http://a b:80'}\n  - service: 'http://a:80:80'\n",
        errors: &[
            (Some(0), "parse \"http://a:http\": invalid port \":http\" after host"),
            (Some(1), "invalid character \" \" in host name"),
            (Some(2), "invalid port"),
        ],
        warnings: &[],
    },
    Case {
        name: "rule_without_service_is_rejected",
        yaml: "ingress:\n  - hostname: a.example.com\n  - service: http_status:404\n",
        errors: &[(Some(0), "the rule has no service")],
        warnings: &[],
    },
    Case {
        name: "http_status_outside_100_to_999_is_rejected",
        yaml: "ingress:\n  - {hostname: a.example.com, service: 'http_status:99'}\n  - {hostname: b.example.com, service: 'http_status:1000'}\n  - service: 'http_status:four'\n",
        errors: &[
            (Some(0), "invalid HTTP status code: 99"),
            (Some(1), "invalid HTTP status code: 1000"),
            (Some(2), "invalid HTTP status code: strconv.Atoi: parsing \"four\": invalid syntax"),
        ],
        warnings: &[],
    },
    Case {
        name: "helloworld_without_separator_is_rejected",
        yaml: "ingress:\n  - service: helloworld\n",
        errors: &[(Some(0), "helloworld is an invalid address")],
        warnings: &[],
    },
    Case {
        name: "h2c_service_is_a_tcp_stream_warning",
        yaml: "ingress:\n  - service: h2c://grpc:50051\n",
        errors: &[],
        warnings: &[(Some(0), "is not an HTTP origin")],
    },
    Case {
        name: "socks_proxy_ip_rules_are_checked",
        yaml: "ingress:\n  - {hostname: a.example.com, service: socks-proxy, originRequest: {ipRules: [{prefix: 10.0.0.0/33}]}}\n  - {hostname: b.example.com, service: socks-proxy, originRequest: {ipRules: [{prefix: 10.0.0.0/8, ports: [0]}]}}\n  - {service: socks-proxy, originRequest: {ipRules: [{allow: true}]}}\n",
        errors: &[
            (Some(0), "unable to create ip rule for socks-proxy: unable to parse cidr: 10.0.0.0/33"),
            (Some(1), "invalid port 0, needs to be between 1 and 65535"),
            (Some(2), "no prefix provided"),
        ],
        warnings: &[],
    },
    Case {
        name: "access_aud_tags_without_team_name_are_rejected",
        yaml: "ingress:\n  - service: http://a:80\n    originRequest: {access: {required: true, audTag: [abc]}}\n",
        errors: &[(Some(0), "access.TeamName cannot be blank when access.audTags are present")],
        warnings: &[],
    },
    Case {
        name: "integer_duration_is_rejected",
        yaml: "originRequest:\n  connectTimeout: 30\n  tlsTimeout: 0\nwarp-routing: {tcpKeepAlive: 15}\ningress:\n  - service: http_status:404\n",
        errors: &[
            (None, "originRequest.connectTimeout: cannot unmarshal !!int `30` into time.Duration (durations must be strings"),
            (None, "originRequest.tlsTimeout: cannot unmarshal !!int `0` into time.Duration"),
            (None, "warp-routing.tcpKeepAlive: cannot unmarshal !!int `15` into time.Duration"),
        ],
        warnings: &[],
    },
    Case {
        name: "rule_level_integer_duration_is_rejected",
        yaml: "ingress:\n  - service: http://a:80\n    originRequest: {keepAliveTimeout: 90, connectTimeout: 1.5}\n",
        errors: &[
            (Some(0), "originRequest.keepAliveTimeout: cannot unmarshal !!int `90` into time.Duration"),
            (Some(0), "originRequest.connectTimeout: cannot unmarshal !!float `1.5` into time.Duration"),
        ],
        warnings: &[],
    },
    Case {
        name: "duration_string_not_in_go_syntax_is_rejected",
        yaml: "originRequest: {connectTimeout: '30', tlsTimeout: 30sec, tcpKeepAlive: 1m 30s, keepAliveTimeout: ''}\ningress:\n  - service: http_status:404\n",
        errors: &[
            (None, "time: missing unit in duration \"30\""),
            (None, "time: unknown unit \"sec\" in duration \"30sec\""),
            (None, "time: unknown unit \"m \" in duration \"1m 30s\""),
            (None, "time: invalid duration \"\""),
        ],
        warnings: &[],
    },
    Case {
        name: "integer_and_boolean_fields_must_have_their_types",
        yaml: "originRequest: {keepAliveConnections: '100', proxyPort: -1, noTLSVerify: 'true', http2Origin: 1, httpHostHeader: [a]}\ningress:\n  - service: http_status:404\n",
        errors: &[
            (None, "originRequest.keepAliveConnections: cannot unmarshal !!str `100` into int"),
            (None, "originRequest.proxyPort: cannot unmarshal !!int `-1` into uint"),
            (None, "originRequest.noTLSVerify: cannot unmarshal !!str `true` into bool"),
            (None, "originRequest.http2Origin: cannot unmarshal !!int `1` into bool"),
            (None, "originRequest.httpHostHeader: cannot unmarshal !!seq into string"),
        ],
        warnings: &[],
    },
    Case {
        name: "misspelled_origin_request_key_is_only_a_warning",
        yaml: "originRequest: {connectTimout: 10s}\ningress:\n  - service: http_status:404\n    originRequest: {noTlsVerify: true, acess: {}}\n",
        errors: &[],
        warnings: &[
            (None, "originRequest: field connectTimout not found in type config.OriginRequestConfig (did you mean connectTimeout?)"),
            (Some(0), "field noTlsVerify not found in type config.OriginRequestConfig (did you mean noTLSVerify?)"),
            (Some(0), "field acess not found in type config.OriginRequestConfig (did you mean access?)"),
        ],
    },
    Case {
        name: "misspelled_rule_and_top_level_keys_are_only_warnings",
        yaml: "originrequest: {connectTimeout: 10s}\nmetrics: 0.0.0.0:2000\ningress:\n  - servce: http://a:80\n    service: http_status:404\n",
        errors: &[],
        warnings: &[
            (None, "top-level key originrequest is not read by cloudflared (did you mean originRequest?)"),
            (Some(0), "field servce not found in type config.UnvalidatedIngressRule (did you mean service?)"),
        ],
    },
    Case {
        name: "wrongly_typed_rule_fields_are_rejected",
        yaml: "ingress: [\"http://a:80\", {hostname: [a], service: 'http://a:80'}, {service: {a: 1}}]\n",
        errors: &[
            (Some(0), "cannot unmarshal !!str `http://...` into config.UnvalidatedIngressRule"),
            (Some(1), "hostname: cannot unmarshal !!seq into string"),
            (Some(2), "service: cannot unmarshal !!map into string"),
        ],
        warnings: &[],
    },
    Case {
        name: "ingress_must_be_a_list",
        yaml: "ingress: {service: http_status:404}\n",
        errors: &[(None, "ingress: cannot unmarshal !!map into []config.UnvalidatedIngressRule")],
        warnings: &[],
    },
    Case {
        name: "every_error_is_reported",
        yaml: "ingress:\n  - {hostname: 'a.example.com:80', path: '(?<=x)', service: 'http://a/'}\n  - {hostname: b.example.com, service: 'http_status:42'}\n",
        errors: &[
            (Some(0), "http://a/ is an invalid address"),
            (Some(0), "Hostname cannot contain a port"),
            (Some(0), "Rule #1 has an invalid regex"),
            (Some(1), "invalid HTTP status code: 42"),
            (Some(1), "The last ingress rule must match all URLs"),
        ],
        warnings: &[],
    },
    Case {
        name: "yaml_syntax_error_is_one_error",
        yaml: "ingress: [{service: http_status:404}\n",
        errors: &[(None, "error parsing YAML in config file")],
        warnings: &[],
    },
    Case {
        name: "duplicate_yaml_key_is_rejected",
        yaml: "ingress:\n  - service: http_status:404\n    service: http_status:503\n",
        errors: &[(None, "error parsing YAML in config file")],
        warnings: &[],
    },
];

/// Every expected finding matches a distinct actual one with the same rule, and nothing else
/// was found.
fn mismatches(kind: &str, actual: &[Finding], expected: &[(Option<usize>, &str)]) -> Vec<String> {
    let mut left: Vec<&Finding> = actual.iter().collect();
    let mut problems = Vec::new();
    for (rule, part) in expected {
        match left.iter().position(|f| f.rule == *rule && f.message.contains(part)) {
            Some(at) => {
                left.remove(at);
            }
            None => problems.push(format!("missing {kind} {rule:?} {part:?}")),
        }
    }
    problems.extend(left.iter().map(|f| format!("unexpected {kind} {:?} {:?}", f.rule, f.message)));
    problems
}

#[test]
fn valid_configs_pass_and_invalid_ones_report_cloudflared_messages() {
    let mut failures = Vec::new();
    for case in VALID.iter().chain(INVALID) {
        let report = validate_str(case.yaml);
        let mut problems = mismatches("error", &report.errors, case.errors);
        problems.extend(mismatches("warning", &report.warnings, case.warnings));
        if report.is_valid() != case.errors.is_empty() {
            problems.push(format!("is_valid() = {}", report.is_valid()));
        }
        failures.extend(problems.into_iter().map(|p| format!("{}: {p}", case.name)));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn validate_value_takes_an_already_parsed_config() {
    let config = serde_json::json!({"ingress": [{"hostname": "a.example.com", "service": "http://a:80"}]});
    let report = validate_value(&config);
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(report.errors[0].rule, Some(0));
    assert!(report.errors[0].message.starts_with("The last ingress rule"));
    assert!(!validate_value(&serde_json::json!(["not", "a", "mapping"])).is_valid());
}

// ---- validate_rendered: the rendered config, validated from what it was rendered from ----

mod rendered {
    use std::sync::Arc;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::super::*;
    use crate::ingress::{IngressRule, OriginRequest, RuleSource};
    use crate::model::RouteKind;
    use crate::render::{render_rules, BaseConfig, Tunnel};

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
            4 => ("[a-z0-9-]{1,12}", "[a-z0-9.-]{1,20}", 0usize..4, 0usize..4, any::<bool>()).prop_map(
                |(namespace, name, rule, match_index, grpc)| RuleSource::Route {
                    route: std::sync::Arc::new(crate::ingress::RouteName {
                        kind: if grpc { RouteKind::Grpc } else { RouteKind::Http },
                        namespace,
                        name,
                    }),
                    rule,
                    match_index,
                }
            ),
            1 => text().prop_map(|name| RuleSource::Route {
                route: std::sync::Arc::new(crate::ingress::RouteName {
                    kind: RouteKind::Http,
                    namespace: "default".into(),
                    name,
                }),
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
            .prop_map(
                |(hostname, path, service, (host_header, server_name, http2, no_verify), source)| {
                    IngressRule {
                        hostname: hostname.map(|h| Arc::from(h.as_str())),
                        path: path.map(|p| Arc::from(p.as_str())),
                        service: service.as_str().into(),
                        origin_request: OriginRequest {
                            http_host_header: host_header.map(Into::into),
                            origin_server_name: server_name.map(Into::into),
                            http2_origin: http2,
                            no_tls_verify: no_verify,
                        },
                        source,
                    }
                },
            )
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
        if let Some(hostname) = &rule.hostname {
            value["hostname"] = json!(&**hostname);
        }
        if let Some(path) = &rule.path {
            value["path"] = json!(&**path);
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
        let tail =
            if terminated { Vec::new() } else { frame["ingress"].as_array().cloned().unwrap_or_default() };
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
        let rule = |name: &str| IngressRule {
            hostname: Some("a.example.com".into()),
            path: None,
            service: "http://a:80".into(),
            origin_request: OriginRequest::default(),
            source: RuleSource::Route {
                route: std::sync::Arc::new(crate::ingress::RouteName {
                    kind: RouteKind::Http,
                    namespace: "web".into(),
                    name: name.into(),
                }),
                rule: 0,
                match_index: 0,
            },
        };
        let (base, tunnel) = (BaseConfig::default(), Tunnel::default());
        let frame = render_rules(&[], false, &base, &tunnel).text;
        // A newline would let the name's text be read as YAML; U+2028 ends the line for
        // cloudflared's reader only; a control character makes it refuse the whole file. The
        // renderer escapes them all, so the text holds exactly the rules validated.
        for name in [
            "web",
            "a\n  - service: http://evil:80",
            "a\u{2028}b",
            "a\u{85}b",
            "a\rb",
            "a\u{1}b",
            "a\u{feff}",
        ] {
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
        let rule = |hostname: Option<&str>, service: &str| IngressRule {
            hostname: hostname.map(Into::into),
            path: None,
            service: service.into(),
            origin_request: OriginRequest::default(),
            source: RuleSource::CatchAll,
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
        let rule = |path: &str| IngressRule {
            hostname: Some("a.example.com".into()),
            path: Some(path.into()),
            service: "http://a:80".into(),
            origin_request: OriginRequest::default(),
            source: RuleSource::CatchAll,
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
        let rule = |hostname: &str, service: &str| IngressRule {
            hostname: Some(hostname.into()),
            path: None,
            service: service.into(),
            origin_request: OriginRequest::default(),
            source: RuleSource::CatchAll,
        };
        let rules = [
            rule("a.example.com", "nope"),
            rule("b.example.com", "h2c://g:1"),
            rule("c.example.com", "nope"),
        ];
        let rules = [rules.as_slice(), &[rule("d.example.com", "h2c://g:1")]].concat();
        let report = validate_rendered(&rules, "ingress:\n  - service: http_status:404\n");
        let errors: Vec<Option<usize>> = report.errors.iter().map(|f| f.rule).collect();
        assert_eq!(errors, [Some(0), Some(2)], "{report:?}");
        let warnings: Vec<Option<usize>> = report.warnings.iter().map(|f| f.rule).collect();
        assert_eq!(warnings, [Some(1), Some(3)], "{report:?}");
    }
}
