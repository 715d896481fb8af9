//! A model of cloudflared's ingress matcher, written from DOMAIN.md §1 and cloudflared's
//! `ingress/ingress.go` / `ingress/rule.go`, so integration tests can ask "which rule serves
//! this request?" without a real cloudflared.
//!
//! What it models, as cloudflared does it:
//! - `Ingress.FindMatchingRule`: the request host's `:port` is stripped (`net.SplitHostPort`),
//!   then the FIRST rule in file order whose hostname AND path match wins; when none matches,
//!   the last rule serves (cloudflared's validation makes that the catch-all anyway).
//! - `matchHost`: exact, case-sensitive string compare; `*.suffix` matches any host ending in
//!   `.suffix` (any number of labels, never the apex); absent, empty or `*` matches all hosts.
//!   A rule's hostname is also tried as `idna.Lookup.ToASCII` gives it (`punycodeHostname`),
//!   which lower-cases an ASCII name: `App.example.com` serves `app.example.com` (the
//!   request's host is never folded; a wildcard fails IDNA's rules and is not tried).
//!   (Older releases trimmed `*.` and so also matched the apex and `xsuffix`; an open
//!   upstream PR, cloudflare/cloudflared#1716, would compare case-insensitively. Rendering lower
//!   case and never relying on the apex works with all of them.)
//! - `path`: a regex searched UNANCHORED (`MatchString`, not a full match) in the
//!   percent-decoded URL path (Go's `url.URL.Path`): the fragment and query are cut first,
//!   `%XX` is decoded (also `%2F`), `+` is kept.
//! - [`Model::errors`]: the checks that make `cloudflared tunnel ingress validate` fail.
//!
//! Knowingly simplified:
//! - Regexes are compiled by Rust's `regex` crate, not Go's RE2. They agree on the syntax a
//!   translator emits (anchors, escapes, groups, classes, `(?s)`), but Rust's `\d`, `\w`, `\s`
//!   and `\b` are Unicode-aware where RE2's are ASCII-only, Rust lacks RE2's `\Q...\E` (such a
//!   config fails here as an invalid regex), and a decoded path that is not UTF-8 is matched
//!   byte-wise where RE2 reads each bad byte as U+FFFD.
//! - No punycode: cloudflared also matches a unicode rule hostname against its punycode form.
//! - No internal (management) rules: cloudflared may add those before the user's rules, with
//!   negative indexes; they never take user traffic.
//! - The validation covers the rules DOMAIN.md lists, not every origin-specific check.

use regex::bytes::{Regex, RegexBuilder};
use serde_json::{Map, Value};

/// One ingress rule, as parsed from the config.
#[derive(Debug, Clone)]
pub struct Rule {
    pub hostname: Option<String>,
    pub path: Option<String>,
    path_regex: Option<Regex>,
    pub service: String,
    /// The rule's own `originRequest` (not merged with the top-level one).
    pub origin_request: Map<String, Value>,
}

/// Which rule served a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// 0-based, as `cloudflared tunnel ingress rule` prints `Matched rule #N`.
    pub index: usize,
    pub service: String,
}

/// A parsed cloudflared config with its ingress rules.
#[derive(Debug, Clone)]
pub struct Model {
    /// The whole config document.
    pub config: Value,
    pub rules: Vec<Rule>,
    /// Reasons cloudflared would refuse to start with this config (empty when valid).
    pub errors: Vec<String>,
}

/// The duration keys of `originRequest`; cloudflared fails to start on a bare integer.
const DURATION_KEYS: &[&str] = &["connectTimeout", "tlsTimeout", "tcpKeepAlive", "keepAliveTimeout"];

impl Model {
    /// Parses a rendered config. Panics when the YAML does not parse or has no `ingress` list:
    /// those are not configs at all. Everything cloudflared would reject lands in `errors`.
    pub fn parse(yaml: &str) -> Model {
        let config: Value = serde_saphyr::from_str(yaml)
            .unwrap_or_else(|e| panic!("the config is not YAML: {e}\n--- config ---\n{yaml}"));
        let entries = config
            .get("ingress")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("the config has no `ingress` list\n--- config ---\n{yaml}"))
            .clone();
        let mut errors = Vec::new();
        if entries.is_empty() {
            errors.push("the ingress list has no rules".to_string());
        }
        if let Some(top) = config.get("originRequest") {
            check_origin_request("top-level originRequest", top, &mut errors);
        }
        let mut rules = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            rules.push(parse_rule(i, entry, &mut errors));
        }
        check_rule_order(&rules, &mut errors);
        Model { config, rules, errors }
    }

    /// The rule cloudflared picks for a request to `host` (may carry `:port`) and `raw_path`
    /// (as sent: percent-encoded, may carry `?query`).
    pub fn serve(&self, host: &str, raw_path: &str) -> Served {
        assert!(!self.rules.is_empty(), "a config without rules serves nothing");
        let host = strip_port(host);
        let path = decode_request_path(raw_path);
        let index = self
            .rules
            .iter()
            .position(|rule| host_matches(rule.hostname.as_deref(), host) && rule.path_matches(&path))
            .unwrap_or(self.rules.len() - 1);
        Served { index, service: self.rules[index].service.clone() }
    }

    /// The `originRequest` in force for a rule: the top-level one, overridden key by key by the
    /// rule's own (cloudflared replaces `access` and `ipRules` whole, which a key-wise merge does).
    pub fn effective_origin_request(&self, index: usize) -> Map<String, Value> {
        let mut merged =
            self.config.get("originRequest").and_then(Value::as_object).cloned().unwrap_or_default();
        for (k, v) in &self.rules[index].origin_request {
            merged.insert(k.clone(), v.clone());
        }
        merged
    }

    /// One line describing a rule, for failure messages.
    pub fn describe(&self, index: usize) -> String {
        let r = &self.rules[index];
        format!(
            "rule #{index} {{hostname: {}, path: {}, service: {}}}",
            r.hostname.as_deref().unwrap_or("-"),
            r.path.as_deref().unwrap_or("-"),
            r.service
        )
    }
}

impl Rule {
    fn path_matches(&self, decoded_path: &[u8]) -> bool {
        match (&self.path, &self.path_regex) {
            (None, _) => true,
            // An invalid regex: cloudflared would not start; here the rule never matches.
            (Some(_), None) => false,
            (Some(_), Some(re)) => re.is_match(decoded_path),
        }
    }

    /// cloudflared's `isCatchAllRule`: no hostname (or `*`) and no path.
    fn is_catch_all(&self) -> bool {
        matches!(self.hostname.as_deref(), None | Some("") | Some("*")) && self.path.is_none()
    }
}

fn parse_rule(i: usize, entry: &Value, errors: &mut Vec<String>) -> Rule {
    let Some(obj) = entry.as_object() else {
        errors.push(format!("rule #{i} is not a mapping"));
        return Rule {
            hostname: None,
            path: None,
            path_regex: None,
            service: String::new(),
            origin_request: Map::new(),
        };
    };
    let string_field = |key: &str, errors: &mut Vec<String>| match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(format!("rule #{i}: `{key}` is not a string: {other}"));
            None
        }
    };
    let hostname = string_field("hostname", errors);
    // cloudflared treats `path: ""` as no path.
    let path = string_field("path", errors).filter(|p| !p.is_empty());
    let service = string_field("service", errors).unwrap_or_default();
    let origin_request = match obj.get("originRequest") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            check_origin_request(&format!("rule #{i} originRequest"), &Value::Object(m.clone()), errors);
            m.clone()
        }
        Some(other) => {
            errors.push(format!("rule #{i}: originRequest is not a mapping: {other}"));
            Map::new()
        }
    };

    if let Some(h) = &hostname {
        if h.rfind('*').is_some_and(|pos| pos > 0) {
            errors.push(format!("rule #{i}: hostname {h:?} has a `*` that is not its first character"));
        }
        if h.contains(':') {
            errors.push(format!("rule #{i}: hostname {h:?} carries a port"));
        }
    }
    let path_regex = path.as_deref().and_then(|p| match RegexBuilder::new(p).build() {
        Ok(re) => Some(re),
        Err(e) => {
            errors.push(format!("rule #{i}: path {p:?} is not a valid regex: {e}"));
            None
        }
    });
    if let Err(e) = check_service(&service) {
        errors.push(format!("rule #{i}: service {service:?}: {e}"));
    }
    for key in obj.keys() {
        if !matches!(key.as_str(), "hostname" | "path" | "service" | "originRequest") {
            errors.push(format!("rule #{i}: unknown key `{key}`"));
        }
    }
    Rule { hostname, path, path_regex, service, origin_request }
}

/// "The last rule must be a catch-all; a catch-all that is not last is an error."
fn check_rule_order(rules: &[Rule], errors: &mut Vec<String>) {
    let last = rules.len().saturating_sub(1);
    for (i, rule) in rules.iter().enumerate() {
        if i == last && !rule.is_catch_all() {
            errors.push(format!("the last rule (#{i}) is not a catch-all (it has a hostname or path)"));
        }
        if i != last && rule.is_catch_all() {
            errors.push(format!("rule #{i} is a catch-all but not the last rule"));
        }
    }
}

fn check_service(service: &str) -> Result<(), String> {
    if service.is_empty() {
        return Err("missing".into());
    }
    if let Some(code) = service.strip_prefix("http_status:") {
        return match code.parse::<u16>() {
            Ok(n) if (100..=999).contains(&n) => Ok(()),
            _ => Err("status code outside 100..999".into()),
        };
    }
    if matches!(service, "hello_world" | "bastion" | "socks-proxy") {
        return Ok(());
    }
    if service.starts_with("unix:") || service.starts_with("unix+tls:") {
        return Ok(());
    }
    let Some((scheme, rest)) = service.split_once("://") else {
        return Err("no scheme".into());
    };
    if scheme.is_empty() {
        return Err("no scheme".into());
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(pos) => rest.split_at(pos),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err("no host".into());
    }
    if !path.is_empty() {
        return Err("an origin URL cannot have a path (even `/`)".into());
    }
    Ok(())
}

fn check_origin_request(what: &str, value: &Value, errors: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        errors.push(format!("{what} is not a mapping"));
        return;
    };
    for key in DURATION_KEYS {
        if let Some(v) = map.get(*key) {
            if !v.is_string() {
                errors.push(format!("{what}.{key} must be a duration string like \"30s\", not {v}"));
            }
        }
    }
}

/// Like Go's `net.SplitHostPort`, keeping the input when it has no port.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find("]:") {
            Some(end) => &rest[..end],
            None => host,
        };
    }
    match host.split_once(':') {
        Some((h, port)) if !port.contains(':') => h,
        _ => host,
    }
}

/// cloudflared's `matchHost`, plus the "no hostname / `*` matches everything" rule.
pub fn host_matches(rule_host: Option<&str>, host: &str) -> bool {
    if rule_host.and_then(lookup_to_ascii).is_some_and(|folded| folded == host) {
        return true;
    }
    match rule_host {
        None | Some("") | Some("*") => true,
        Some(rule) if rule == host => true,
        Some(rule) => match rule.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') => host.ends_with(suffix),
            _ => false,
        },
    }
}

/// `idna.Lookup.ToASCII(hostname)` when it differs from `hostname`, for the ASCII names this
/// model covers: letters, digits, `-` and `.` in labels that neither start nor end with `-`
/// (IDNA's STD3 rules; anything else fails, and cloudflared keeps no fallback).
fn lookup_to_ascii(hostname: &str) -> Option<String> {
    let std3 = hostname.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let folded = hostname.to_ascii_lowercase();
    (std3 && folded != hostname).then_some(folded)
}

/// The path cloudflared matches: `url.Parse(...).Path` (fragment and query cut, percent-decoded).
/// Panics on a malformed escape, where `url.Parse` fails and no rule would be consulted.
pub fn decode_request_path(raw_path: &str) -> Vec<u8> {
    let without_fragment = raw_path.split('#').next().unwrap_or_default();
    let path = without_fragment.split('?').next().unwrap_or_default();
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            let hex = hex.unwrap_or_else(|| panic!("invalid percent escape in request path {raw_path:?}"));
            let hex = std::str::from_utf8(hex).expect("ASCII hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
