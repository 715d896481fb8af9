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

use crate::gostd::{go_parse_cidr, go_split_host_port, go_url_hostname, go_url_parse};
use crate::ingress::{IngressRules, Rule as GeneratedRule};
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
pub fn validate_rendered(generated: &IngressRules, frame: &str) -> Report {
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
    /// The same for the services of the generated rules, by their id in the rule list
    /// ([`GeneratedRule::service_id`]): found without hashing the text, rule after rule.
    by_id: Vec<Option<Result<(), String>>>,
}

impl Memo {
    /// The outcome of `check` for `service` (of id `id` in the generated rules' list, if one
    /// of theirs), the one remembered if it was checked before.
    fn get_or_check(
        &mut self,
        id: Option<u32>,
        service: &str,
        check: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        if let Some(id) = id.map(|id| id as usize) {
            if self.by_id.len() <= id {
                self.by_id.resize(id + 1, None);
            }
            return self.by_id[id].get_or_insert_with(check).clone();
        }
        match self.services.get(service) {
            Some(known) => known.clone(),
            None => {
                let checked = check();
                self.services.insert(service.to_string(), checked.clone());
                checked
            }
        }
    }
}

/// The YAML text as cloudflared reads it, or the report of its YAML error.
fn parse(yaml: &str) -> Result<Value, Report> {
    // Go's yaml.v3 refuses these before it parses anything; serde-saphyr takes them.
    if let Some((line, c)) = yaml
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.chars().find(|c| !crate::yaml::go_yaml_reads(*c)).map(|c| (i, c)))
    {
        let mut report = Report::default();
        report.error(
            None,
            format!(
                "error parsing YAML in config file: yaml: control characters are not allowed (U+{:04X} on line {})",
                u32::from(c),
                line + 1
            ),
        );
        return Err(report);
    }
    // cloudflared decodes the first document of the file and ignores the rest.
    let yaml = crate::yaml::first_document(yaml);
    let config =
        serde_saphyr::from_str_with_options::<Value>(yaml, crate::yaml::options()).map_err(|err| {
            let mut report = Report::default();
            let message = crate::yaml::ErrorMessage::new(&err);
            report.error(None, format!("error parsing YAML in config file: {message}"));
            report
        })?;
    // A value we read otherwise than cloudflared would be checked as something it is not.
    let misread = crate::yaml::misread_plain_scalars(yaml, false);
    if !misread.is_empty() {
        let mut report = Report::default();
        for m in misread {
            report.error(None, format!("cannot be checked as cloudflared reads it: {m}"));
        }
        return Err(report);
    }
    Ok(config)
}

/// One rule of the config: one we generated (typed), or one read from YAML.
#[derive(Clone, Copy)]
enum Rule<'a> {
    Generated(GeneratedRule<'a>),
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
    validate_config(config, &IngressRules::default(), None)
}

/// `config` with `generated` in front of its own ingress rules (see [`validate_rendered`]).
fn validate_config(config: &Value, generated: &IngressRules, mut memo: Option<&mut Memo>) -> Report {
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
            // Anything else is a command-line setting to cloudflared: a flag of the wrong type
            // stops it; any other key is ignored.
            _ => match flags::check(key, value) {
                Some(refused) => report.error(None, refused),
                None => {
                    let hint = near_miss(key, TOP_LEVEL_KEYS.iter().copied(), 1);
                    if !hint.is_empty() {
                        report.warning(None, format!("top-level key {key} is not read by cloudflared{hint}"));
                    }
                }
            },
        }
    }
    // Rule-level `originRequest` fields override the top-level ones one by one (setConfig).
    let default_bastion = top.get("originRequest").and_then(|o| o.get("bastionMode")).and_then(go_bool);
    // A last generated rule that matches everything ends the list: the rest is not rendered.
    let terminated = generated.last().is_some_and(GeneratedRule::is_catch_all);
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
    /// The id of `service` in the generated rules' list, for one of theirs.
    service_id: Option<u32>,
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
            hostname: Some(Cow::Borrowed(rule.hostname().unwrap_or(""))),
            path: Some(Cow::Borrowed(rule.path().unwrap_or(""))),
            service: Some(Cow::Borrowed(rule.service())),
            service_id: Some(rule.service_id()),
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
                service_id: None,
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
    let RuleFields { hostname, path, service, service_id, origin_request } = fields;
    let bastion = origin_request.and_then(|o| o.get("bastionMode")).and_then(go_bool).or(default_bastion);
    if let Some(service) = service {
        let checked = match (memo, origin_request) {
            // Without a rule-level originRequest, the outcome depends on the service alone (and
            // the config-wide bastion mode): thousands of rules share a hundred services.
            (Some(memo), None) => memo.get_or_check(service_id, &service, || {
                check_service(&service, bastion.unwrap_or(false), None)
            }),
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

#[path = "validate_flags.rs"]
mod flags;

#[path = "validate_decode.rs"]
mod decode;
use decode::*;

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
