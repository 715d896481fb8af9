//! Check a cloudflared `config.yml` the way cloudflared does when it starts.
//!
//! cloudflared reads the file with `gopkg.in/yaml.v3` into typed structs (`config.Configuration`:
//! a type mismatch fails the start), then `ingress.validateIngress` checks every rule in order
//! and stops at the first problem. We report every problem instead, each with the wording of
//! cloudflared's own message, and keep cloudflared's rule numbering: its messages count rules
//! from 1 ("Rule #1"), while [`Finding::rule`] is the 0-based index into `ingress`.
//! Unknown keys are only warnings, as in cloudflared (a second, strict decode whose errors it
//! prints as "unused keys"); unknown top-level keys are not even that, since cloudflared keeps
//! them as command-line settings, so we only warn about near-misses of the keys it parses.
//!
//! Two ways in, one set of checks:
//! - [`validate_str`] / [`validate_value`]: any config file, parsed as cloudflared parses it
//!   (the `validate` command, `render`);
//! - [`validate_rendered`]: a config we are about to write, checked from what it was rendered
//!   from, the generated rules and the rest of the file (its *frame*, small enough to parse),
//!   instead of parsing back thousands of rules we have just written. The rendered text parses
//!   back to exactly that structure, and both ways give the same report: the tests of
//!   `validate_tests.rs` (every kind of hostile string) and of the runtime (every fixture)
//!   prove it, so what is validated is what is written.

use std::borrow::Cow;
use std::num::IntErrorKind;

use rustc_hash::FxHashMap;

use serde_json::{Map, Value};

use crate::gostd::{go_parse_cidr, go_parse_duration, go_split_host_port, go_url_hostname, go_url_parse};
use crate::ingress::IngressRule;
use crate::re2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// 0-based index into `ingress`; `None` for the top level.
    pub rule: Option<usize>,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl Report {
    /// No errors: cloudflared would start with this config (warnings do not stop it).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, rule: Option<usize>, message: impl Into<String>) {
        self.errors.push(Finding { rule, message: message.into() });
    }

    fn warning(&mut self, rule: Option<usize>, message: impl Into<String>) {
        self.warnings.push(Finding { rule, message: message.into() });
    }
}

/// Parse YAML text (serde_saphyr::from_str into serde_json::Value) and validate; a YAML error is
/// one error Finding.
pub fn validate_str(yaml: &str) -> Report {
    match parse(yaml) {
        Ok(config) => validate_value(&config),
        Err(report) => report,
    }
}

/// Validate a config we rendered, without parsing its generated rules back: `generated` are
/// the rules rendered first under `ingress`, and `frame` is the text of the same config
/// rendered without them (`render::render_rules(&[], uses_grpc, base, tunnel)`: the top-level
/// keys, then the base config's rules and the catch-all). The whole config holds the frame's
/// top-level keys and, under `ingress`, `generated` followed by the frame's rules, or by
/// nothing when the last generated rule already matches everything (the renderer leaves the
/// rest out then).
///
/// The report is the one [`validate_str`] gives for the whole rendered text; a generated rule
/// is made of strings and booleans only, so it cannot have a type error or an unknown key, and
/// its checks need no parse. The comment the renderer writes above each generated rule (its
/// source) is escaped so that it stays one comment line whatever the names hold.
///
/// Each distinct service is checked once per validation (thousands of rules share a hundred
/// services). Every path is checked: re2.rs vouches for a plain pattern in one pass (40,000
/// paths in about 2.5 ms), so remembering the ones found valid last time saved less than it
/// held in memory.
pub fn validate_rendered(generated: &[IngressRule], frame: &str) -> Report {
    let config = match parse(frame) {
        Ok(config) => config,
        Err(report) => return report,
    };
    validate_config(&config, generated, Some(&mut Memo::default()))
}

/// The outcome of each service's check during one validation.
#[derive(Default)]
struct Memo {
    services: FxHashMap<String, Result<(), String>>,
}

/// The YAML text as cloudflared reads it, or the report of its YAML error.
fn parse(yaml: &str) -> Result<Value, Report> {
    serde_saphyr::from_str_with_options::<Value>(yaml, crate::yaml::options()).map_err(|err| {
        let message = err.to_string();
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        let mut report = Report::default();
        report.error(None, format!("error parsing YAML in config file: {message}"));
        report
    })
}

/// One rule of the config: one we generated (typed), or one read from YAML.
#[derive(Clone, Copy)]
enum Rule<'a> {
    Generated(&'a IngressRule),
    Written(&'a Value),
}

// cloudflared's messages, from ingress/ingress.go.
const NO_INGRESS_RULES: &str = "The config file doesn't contain any ingress rules (`ingress validate` fails \
    with this; `tunnel run` logs \"No ingress rules were defined in provided config (if any) nor from \
    the cli, cloudflared will return 503 for all incoming HTTP requests\")";
const LAST_RULE_NOT_CATCH_ALL: &str =
    "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)";
const BAD_WILDCARD: &str = "Hostname patterns can have at most one wildcard character (\"*\") and it can \
    only be used for subdomains, e.g. \"*.example.com\"";
const HOSTNAME_CONTAINS_PORT: &str = "Hostname cannot contain a port";
// Ours.
const NO_SERVICE: &str = "the rule has no service (cloudflared reads \"\" and fails with \" is an invalid \
    address, please make sure it has a scheme and a hostname\")";
const NOT_HTTP: &str = "is not an HTTP origin: cloudflared serves every scheme but http, https, ws and wss \
    as a raw TCP stream for `cloudflared access` clients";

/// Validate an already parsed config (the YAML document as JSON values).
pub fn validate_value(config: &Value) -> Report {
    validate_config(config, &[], None)
}

/// `config` with `generated` in front of its own ingress rules (see [`validate_rendered`]).
fn validate_config(config: &Value, generated: &[IngressRule], mut memo: Option<&mut Memo>) -> Report {
    let mut report = Report::default();
    let empty = Map::new();
    let top = match config {
        Value::Object(top) => top,
        // An empty file: cloudflared logs "Configuration file ... was empty" and goes on.
        Value::Null => &empty,
        other => {
            report.error(None, type_error("", other, "config.configFileSettings"));
            return report;
        }
    };
    for (key, value) in top {
        match key.as_str() {
            "tunnel" => check_value(value, &Kind::Str, key, None, &mut report),
            "warp-routing" => check_value(value, &Kind::Struct(&WARP_ROUTING), key, None, &mut report),
            "originRequest" => check_value(value, &Kind::Struct(&ORIGIN_REQUEST), key, None, &mut report),
            // Each rule is decoded in check_rule, so that its findings carry its index.
            "ingress" if !value.is_array() && !value.is_null() => {
                report.error(None, type_error(key, value, "[]config.UnvalidatedIngressRule"));
            }
            "ingress" => {}
            // Anything else is a command-line setting to cloudflared: not an error, not a warning.
            _ => {
                let hint = near_miss(key, TOP_LEVEL_KEYS.iter().copied(), 1);
                if !hint.is_empty() {
                    report.warning(None, format!("top-level key {key} is not read by cloudflared{hint}"));
                }
            }
        }
    }
    // Rule-level `originRequest` fields override the top-level ones one by one (setConfig).
    let default_bastion = top.get("originRequest").and_then(|o| o.get("bastionMode")).and_then(go_bool);
    // A last generated rule that matches everything ends the list: the rest is not rendered.
    let terminated = generated.last().is_some_and(IngressRule::is_catch_all);
    let written: &[Value] = match top.get("ingress") {
        Some(Value::Array(rules)) if !terminated => rules,
        Some(Value::Array(_) | Value::Null) | None => &[],
        Some(_) => return report, // a type error, reported above
    };
    let total = generated.len() + written.len();
    if total == 0 {
        report.error(None, NO_INGRESS_RULES);
        return report;
    }
    let rules = generated.iter().map(Rule::Generated).chain(written.iter().map(Rule::Written));
    for (index, rule) in rules.enumerate() {
        check_rule(index, total, rule, default_bastion, memo.as_deref_mut(), &mut report);
    }
    report
}

/// A rule's fields as cloudflared decodes them; `None` for a field of the wrong type.
struct RuleFields<'a> {
    hostname: Option<Cow<'a, str>>,
    path: Option<Cow<'a, str>>,
    service: Option<Cow<'a, str>>,
    /// The rule's own `originRequest`, where the keys a generated rule never has are looked up
    /// (`bastionMode`, `ipRules`, `access`).
    origin_request: Option<&'a Value>,
}

/// `ingress.validateIngress` for one rule: service, access, hostname, path, in that order.
fn check_rule(
    index: usize,
    total: usize,
    rule: Rule<'_>,
    default_bastion: Option<bool>,
    memo: Option<&mut Memo>,
    report: &mut Report,
) {
    let here = Some(index);
    let fields = match rule {
        // Strings and booleans under known keys (render.rs writes each string so that it
        // reads back as itself): nothing for check_value to find.
        Rule::Generated(rule) => RuleFields {
            hostname: Some(Cow::Borrowed(rule.hostname.as_deref().unwrap_or(""))),
            path: Some(Cow::Borrowed(rule.path.as_deref().unwrap_or(""))),
            service: Some(Cow::Borrowed(&rule.service)),
            origin_request: None,
        },
        Rule::Written(rule) => {
            check_value(rule, &Kind::Struct(&INGRESS_RULE), "", here, report);
            // A null rule has the zero value of every field.
            let field = |key: &str| match rule {
                Value::Object(fields) => fields.get(key),
                _ => None,
            };
            if !rule.is_object() && !rule.is_null() {
                return; // a type error, reported just above
            }
            RuleFields {
                hostname: scalar_text(field("hostname")),
                path: scalar_text(field("path")),
                service: scalar_text(field("service")),
                origin_request: field("originRequest"),
            }
        }
    };
    check_rule_fields(index, total, fields, default_bastion, memo, report);
}

fn check_rule_fields(
    index: usize,
    total: usize,
    fields: RuleFields<'_>,
    default_bastion: Option<bool>,
    memo: Option<&mut Memo>,
    report: &mut Report,
) {
    let here = Some(index);
    // `None` when the field has the wrong type (already reported): skip what depends on it.
    let RuleFields { hostname, path, service, origin_request } = fields;
    let bastion = origin_request.and_then(|o| o.get("bastionMode")).and_then(go_bool).or(default_bastion);
    if let Some(service) = service {
        let checked = match (memo, origin_request) {
            // Without a rule-level originRequest, the outcome depends on the service alone (and
            // the config-wide bastion mode): thousands of rules share a hundred services.
            (Some(memo), None) => match memo.services.get(&*service) {
                Some(known) => known.clone(),
                None => {
                    let checked = check_service(&service, bastion.unwrap_or(false), None);
                    memo.services.insert(service.to_string(), checked.clone());
                    checked
                }
            },
            _ => check_service(&service, bastion.unwrap_or(false), origin_request),
        };
        match checked {
            Err(message) => report.error(here, message),
            // isHTTPService: only http, https, ws and wss are HTTP origins; h2c is a likely mistake.
            Ok(()) if service.get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("h2c://")) => {
                report.warning(here, format!("{service} {NOT_HTTP}"));
            }
            Ok(()) => {}
        }
    }
    check_access(here, origin_request.and_then(|o| o.get("access")), report);
    if let Some(hostname) = &hostname {
        // Go's net.SplitHostPort succeeding means "the hostname has a port".
        if go_split_host_port(hostname) {
            report.error(here, HOSTNAME_CONTAINS_PORT);
        }
        // "Ensure that there are no wildcards anywhere except the first character".
        if hostname.rfind('*').is_some_and(|at| at > 0) {
            report.error(here, BAD_WILDCARD);
        } else if hostname.starts_with('*') && hostname != "*" && !hostname.starts_with("*.") {
            // Passes validation, but matchHost only treats a leading "*." as a wildcard.
            report.warning(here, format!("hostname '{hostname}' never matches: only \"*.\" is a wildcard"));
        }
    }
    if let (Some(hostname), Some(path)) = (&hostname, &path) {
        let catch_all = (hostname.is_empty() || hostname == "*") && path.is_empty();
        let last = index + 1 == total;
        if last && !catch_all {
            report.error(here, LAST_RULE_NOT_CATCH_ALL);
        }
        if !last && catch_all {
            report.error(
                here,
                format!(
                    "Rule #{} is matching the hostname '{hostname}', but this will match every hostname, \
                     meaning the rules which follow it will never be triggered.",
                    index + 1
                ),
            );
        }
    }
    if let Some(path) = path.filter(|path| !path.is_empty()) {
        // cloudflared compiles it with Go's regexp.Compile.
        if let Err(err) = re2::check(&path) {
            report.error(here, format!("Rule #{} has an invalid regex: {err}", index + 1));
        }
    }
}

/// The service branch of `validateIngress`; the first problem, as cloudflared stops there.
fn check_service(service: &str, bastion: bool, origin_request: Option<&Value>) -> Result<(), String> {
    // "No validation necessary for unix socket filepath services".
    let unix = service.starts_with("unix:") || service.starts_with("unix+tls:");
    if unix || service == "hello_world" || service == "hello-world" {
        return Ok(());
    }
    if let Some(code) = service.strip_prefix("http_status:") {
        // strconv.Atoi, then `statusCode < 100 || statusCode > 999`.
        let status = code.parse::<i64>().map_err(|err| {
            let overflow = matches!(err.kind(), IntErrorKind::PosOverflow | IntErrorKind::NegOverflow);
            let why = if overflow { "value out of range" } else { "invalid syntax" };
            format!("invalid HTTP status code: strconv.Atoi: parsing {code:?}: {why}")
        })?;
        return match status {
            100..=999 => Ok(()),
            _ => Err(format!("invalid HTTP status code: {status}")),
        };
    }
    if service == "socks-proxy" {
        // Only the rule's own ipRules, through ipaccess.NewRuleByCIDR.
        let ip_rules = origin_request.and_then(|o| o.get("ipRules")).and_then(Value::as_array);
        return ip_rules
            .into_iter()
            .flatten()
            .filter(|ip_rule| ip_rule.is_object()) // anything else is a type error
            .try_for_each(check_ip_rule)
            .map_err(|why| format!("unable to create ip rule for socks-proxy: {why}"));
    }
    // `r.Service == ServiceBastion || cfg.BastionMode`: bastion mode ignores the service value.
    if service == "bastion" || bastion {
        return Ok(());
    }
    if service.is_empty() {
        return Err(NO_SERVICE.into());
    }
    let url = go_url_parse(service)?;
    if url.scheme.is_empty() || go_url_hostname(&url.host).is_empty() {
        return Err(format!(
            "{service} is an invalid address, please make sure it has a scheme and a hostname"
        ));
    }
    if !url.path_is_empty {
        return Err(format!(
            "{service} is an invalid address, ingress rules don't support proxying to a different path on \
             the origin service. The path will be the same as the eyeball request's path"
        ));
    }
    Ok(())
}

/// ingress.validateAccessConfiguration, on the rule's own `originRequest.access`.
fn check_access(here: Option<usize>, access: Option<&Value>, report: &mut Report) {
    let Some(Value::Object(access)) = access else { return };
    let required = access.get("required").and_then(go_bool).unwrap_or(false);
    let team_name = scalar_text(access.get("teamName")).unwrap_or_default();
    let has_aud_tags = access.get("audTag").and_then(Value::as_array).is_some_and(|tags| !tags.is_empty());
    if required && team_name.is_empty() && has_aud_tags {
        report.error(here, "access.TeamName cannot be blank when access.audTags are present");
    }
}

/// ipaccess.NewRuleByCIDR: a prefix that net.ParseCIDR accepts, ports in 1..=65535.
fn check_ip_rule(ip_rule: &Value) -> Result<(), String> {
    let prefix = scalar_text(ip_rule.get("prefix")).unwrap_or_default();
    if prefix.is_empty() {
        return Err("no prefix provided".into());
    }
    if !go_parse_cidr(&prefix) {
        return Err(format!("unable to parse cidr: {prefix}"));
    }
    let ports = ip_rule.get("ports").and_then(Value::as_array).into_iter().flatten();
    match ports.filter_map(Value::as_f64).find(|port| !(1.0..65536.0).contains(port)) {
        Some(port) => Err(format!("invalid port {port}, needs to be between 1 and 65535")),
        None => Ok(()),
    }
}

// ---- The typed structs cloudflared decodes into (config/configuration.go) ----

#[derive(Clone, Copy)]
enum Kind {
    /// `*CustomDuration`: yaml.v3 decodes a `time.Duration` only from a string ParseDuration accepts.
    Duration,
    Bool,
    Int,
    Uint,
    Str,
    Seq(&'static Kind, &'static str),
    Struct(&'static Struct),
}

/// A Go struct cloudflared decodes: its type name and its yaml field names, grouped by kind.
struct Struct {
    go_type: &'static str,
    fields: &'static [(Kind, &'static str)],
}

impl Struct {
    fn field(&self, name: &str) -> Option<&Kind> {
        self.fields.iter().find_map(|(kind, names)| names.split(' ').any(|n| n == name).then_some(kind))
    }

    fn names(&self) -> impl Iterator<Item = &'static str> {
        self.fields.iter().flat_map(|(_, names)| names.split(' '))
    }
}

/// The top-level keys cloudflared decodes into `config.Configuration`.
const TOP_LEVEL_KEYS: &[&str] = &["tunnel", "ingress", "warp-routing", "originRequest"];

const INGRESS_RULE: Struct = Struct {
    go_type: "config.UnvalidatedIngressRule",
    fields: &[(Kind::Str, "hostname path service"), (Kind::Struct(&ORIGIN_REQUEST), "originRequest")],
};

const ORIGIN_REQUEST: Struct = Struct {
    go_type: "config.OriginRequestConfig",
    fields: &[
        (Kind::Duration, "connectTimeout tlsTimeout tcpKeepAlive keepAliveTimeout"),
        (
            Kind::Bool,
            "noHappyEyeballs matchSNItoHost noTLSVerify disableChunkedEncoding bastionMode http2Origin",
        ),
        (Kind::Str, "httpHostHeader originServerName caPool proxyAddress proxyType"),
        (Kind::Int, "keepAliveConnections"),
        (Kind::Uint, "proxyPort"),
        (Kind::Seq(&Kind::Struct(&IP_RULE), "[]config.IngressIPRule"), "ipRules"),
        (Kind::Struct(&ACCESS), "access"),
    ],
};

const IP_RULE: Struct = Struct {
    go_type: "config.IngressIPRule",
    fields: &[(Kind::Str, "prefix"), (Kind::Seq(&Kind::Int, "[]int"), "ports"), (Kind::Bool, "allow")],
};

const ACCESS: Struct = Struct {
    go_type: "config.AccessConfig",
    fields: &[
        (Kind::Bool, "required"),
        (Kind::Str, "teamName"),
        (Kind::Seq(&Kind::Str, "[]string"), "audTag"),
    ],
};

const WARP_ROUTING: Struct = Struct {
    go_type: "config.WarpRoutingConfig",
    fields: &[
        (Kind::Bool, "enabled"),
        (Kind::Duration, "connectTimeout tcpKeepAlive"),
        (Kind::Uint, "maxActiveFlows"),
    ],
};

/// Decode `value` as yaml.v3 would into `kind`: type errors are errors, unknown struct fields
/// warnings. `path` names the field in messages ("originRequest.connectTimeout").
fn check_value(value: &Value, kind: &Kind, path: &str, rule: Option<usize>, report: &mut Report) {
    if value.is_null() {
        return; // yaml.v3 leaves the zero value (a nil pointer)
    }
    let ok = match (kind, value) {
        (Kind::Duration, Value::String(text)) => match go_parse_duration(text) {
            Ok(()) => true,
            Err(why) => {
                report.error(rule, format!("{}; {why}", type_error(path, value, "time.Duration")));
                return;
            }
        },
        (Kind::Duration, _) => {
            let hint = "durations must be strings in Go syntax such as \"30s\", \"1m30s\", \"300ms\"";
            report.error(rule, format!("{} ({hint})", type_error(path, value, "time.Duration")));
            return;
        }
        (Kind::Bool, _) => go_bool(value).is_some(),
        // yaml.v3 also truncates a float into an integer field.
        (Kind::Int, Value::Number(n)) => {
            n.is_i64() || n.as_f64().is_some_and(|f| f.is_finite() && f.abs() < 9.2e18)
        }
        (Kind::Uint, Value::Number(n)) => {
            n.is_u64() || n.as_f64().is_some_and(|f| f.is_finite() && (0.0..1.8e19).contains(&f))
        }
        (Kind::Str, _) => !value.is_array() && !value.is_object(),
        (Kind::Seq(element, _), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_value(item, element, &format!("{path}[{i}]"), rule, report);
            }
            true
        }
        (Kind::Struct(shape), Value::Object(fields)) => {
            for (key, field) in fields {
                let field_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match shape.field(key) {
                    Some(field_kind) => check_value(field, field_kind, &field_path, rule, report),
                    None => {
                        let (go_type, hint) = (shape.go_type, near_miss(key, shape.names(), 2));
                        let message =
                            format!("field {key} not found in type {go_type}{hint}; cloudflared ignores it");
                        report.warning(rule, format!("{}{message}", prefix(path)));
                    }
                }
            }
            true
        }
        _ => false,
    };
    if !ok {
        report.error(rule, type_error(path, value, go_type(kind)));
    }
}

fn go_type(kind: &Kind) -> &'static str {
    match kind {
        Kind::Duration => "time.Duration",
        Kind::Bool => "bool",
        Kind::Int => "int",
        Kind::Uint => "uint",
        Kind::Str => "string",
        Kind::Seq(_, name) => name,
        Kind::Struct(shape) => shape.go_type,
    }
}

/// yaml.v3's `terror`: "cannot unmarshal !!int `30` into time.Duration", long values cut.
fn type_error(path: &str, value: &Value, go_type: &str) -> String {
    let tag = match value {
        Value::Null => "!!null",
        Value::Bool(_) => "!!bool",
        Value::Number(n) if n.is_f64() => "!!float",
        Value::Number(_) => "!!int",
        Value::String(_) => "!!str",
        Value::Array(_) => "!!seq",
        Value::Object(_) => "!!map",
    };
    let shown = match scalar_text(Some(value)) {
        Some(text) if text.chars().count() > 10 => {
            format!(" `{}...`", text.chars().take(7).collect::<String>())
        }
        Some(text) => format!(" `{text}`"),
        None => String::new(),
    };
    format!("{}cannot unmarshal {tag}{shown} into {go_type}", prefix(path))
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// The text yaml.v3 puts in a Go string field: any scalar, `None` for a sequence or mapping.
fn scalar_text(value: Option<&Value>) -> Option<Cow<'_, str>> {
    match value {
        None | Some(Value::Null) => Some(Cow::Borrowed("")),
        Some(Value::String(s)) => Some(Cow::Borrowed(s)),
        Some(Value::Bool(b)) => Some(Cow::Owned(b.to_string())),
        Some(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
        Some(Value::Array(_) | Value::Object(_)) => None,
    }
}

/// A Go bool as yaml.v3 decodes it, including its YAML 1.1 words ("yes", "off", …).
fn go_bool(value: &Value) -> Option<bool> {
    match (value, value.as_str().unwrap_or_default()) {
        (Value::Bool(b), _) => Some(*b),
        (_, "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON") => Some(true),
        (_, "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF") => Some(false),
        _ => None,
    }
}

/// " (did you mean NAME?)" when `key` has the letters of a known name ignoring case, `-` and
/// `_`, or is at most `max_edits` edits away from one.
fn near_miss(key: &str, names: impl Iterator<Item = &'static str>, max_edits: usize) -> String {
    let normalize = |s: &str| s.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_lowercase();
    let key = normalize(key);
    let mut near = names.filter(|name| edit_distance(&normalize(name), &key) <= max_edits);
    near.next().map(|name| format!(" (did you mean {name}?)")).unwrap_or_default()
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let (mut diagonal, mut left) = (row[0], i + 1);
        row[0] = left;
        for (j, cb) in b.iter().enumerate() {
            left = (diagonal + usize::from(ca != *cb)).min(left + 1).min(row[j + 1] + 1);
            (diagonal, row[j + 1]) = (row[j + 1], left);
        }
    }
    row[b.len()]
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
