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
        name: "characters_go_yaml_refuses_fail_the_file",
        yaml: "ingress:\n  - hostname: a.example.com\n    path: '^/a\u{7f}b$'\n    service: http://a:80\n  - service: http_status:404\n",
        errors: &[(None, "yaml: control characters are not allowed (U+007F on line 3)")],
        warnings: &[],
    },
    Case {
        name: "only_the_first_document_is_read",
        yaml: "ingress:\n  - service: http_status:404\n---\ningress: [{hostname: 'a:80', service: nope}]\n",
        errors: &[],
        warnings: &[],
    },
    Case {
        name: "duplicate_yaml_key_is_rejected",
        yaml: "ingress:\n  - service: http_status:404\n    service: http_status:503\n",
        errors: &[(None, "error parsing YAML in config file")],
        warnings: &[],
    },
    // serde-saphyr would take `nULL` for null (a catch-all mid-list to us, a regex to
    // cloudflared, which then has no catch-all last) and `tRUE` for true (a type error to Go).
    Case {
        name: "plain_scalars_read_otherwise_than_by_yaml_v3_are_refused",
        yaml: "ingress:\n  - {hostname: a.example.com, service: http://s:80}\n  - {path: nULL, service: http_status:404}\n",
        errors: &[(None, "takes `nULL` as the string \"nULL\", ours as `null`")],
        warnings: &[],
    },
    // A top-level key that is a cloudflared flag, of another YAML type than the flag's.
    Case {
        name: "a_flag_of_the_wrong_yaml_type_is_refused",
        yaml: "grace-period: 30\nedge-ip-version: 4\ningress:\n  - service: http_status:404\n",
        errors: &[
            (None, "Mismatched type for flag 'grace-period'. Expected 'duration' but actual is 'int'"),
            (None, "Mismatched type for flag 'edge-ip-version'. Expected 'string' but actual is 'int'"),
        ],
        warnings: &[],
    },
    Case {
        name: "a_yaml_1_1_bool_for_a_flag_is_refused",
        yaml: "no-autoupdate: yes\ningress:\n  - service: http_status:404\n",
        errors: &[(None, "takes `yes` as the string")],
        warnings: &[],
    },
    Case {
        name: "a_bool_spelt_otherwise_than_yaml_v3_spells_it_is_refused",
        yaml: "originRequest: {noTLSVerify: tRUE}\ningress:\n  - service: http_status:404\n",
        errors: &[(None, "takes `tRUE` as the string")],
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

#[test]
fn yaml_errors_give_the_position_never_the_text_nor_library_hints() {
    let secret = r#"{"AccountTag":"acc","TunnelSecret":"SUPERSECRETVALUE1234567890abc","TunnelID":"x""#;
    for (name, yaml, want) in [
        ("credentials_file_with_a_syntax_error", secret, "line 1, column 1: unclosed bracket '{'"),
        (
            "duplicate_key",
            "ingress:\n  - service: http_status:404\n    service: http_status:503\n",
            "line 3, column 5: duplicate mapping key: service not allowed here",
        ),
        (
            "alias_inside_its_anchor",
            "a: &x\n  b: *x\n",
            "line 2, column 6: Recursive reference not allowed here",
        ),
    ] {
        let report = validate_str(yaml);
        let messages: Vec<&str> = report.errors.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages, [format!("error parsing YAML in config file: {want}")], "{name}");
        for never in crate::yaml::NEVER_IN_AN_ERROR {
            assert!(!messages[0].contains(never), "{name}: {never:?} in {}", messages[0]);
        }
    }
}

// ---- validate_rendered: the rendered config, validated from what it was rendered from ----

#[path = "validate_rendered_tests.rs"]
mod rendered;
