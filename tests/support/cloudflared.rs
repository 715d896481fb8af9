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
//! - [`Model::errors`]: the checks that make `cloudflared tunnel ingress validate` fail:
//!   yaml.v3's decoding into cloudflared's structs (`config.UnvalidatedIngressRule`,
//!   `config.OriginRequestConfig`: a value of the wrong type stops it; a string field takes
//!   any scalar as text; a duration is a string `time.ParseDuration` accepts), then
//!   `validateIngress`: the service (`unix:`, `http_status:`, `hello_world`/`hello-world`,
//!   `socks-proxy`, then bastion mode, then `url.Parse` with a scheme, a host and no path), the
//!   hostname (`net.SplitHostPort` succeeding means a port; `*` only first), the catch-all
//!   placement and the path regex. An unknown key is only a warning ([`Model::warnings`]):
//!   cloudflared prints what its second, strict decode finds, and starts.
//!
//! Knowingly simplified:
//! - Regexes are compiled by Rust's `regex` crate, not Go's RE2. They agree on the syntax a
//!   translator emits (anchors, escapes, groups, classes, `(?s)`), but Rust's `\d`, `\w`, `\s`
//!   and `\b` are Unicode-aware where RE2's are ASCII-only, Rust lacks RE2's `\Q...\E` (such a
//!   config fails here as an invalid regex), and a decoded path that is not UTF-8 is matched
//!   byte-wise where RE2 reads each bad byte as U+FFFD. Rust's parser also refuses the flag
//!   groups Go takes and regex-syntax does not (`(?)`, `(?ii)`, `(?i-i)`): a config with one
//!   fails here as an invalid regex too.
//! - No punycode: cloudflared also matches a unicode rule hostname against its punycode form.
//! - No internal (management) rules: cloudflared may add those before the user's rules, with
//!   negative indexes; they never take user traffic.
//! - Scalars are typed by serde-saphyr, not yaml.v3: a number or boolean under a string key
//!   reads as its canonical text (`12`, `true`), where yaml.v3 keeps the text as written
//!   (`0x10`, `1e3`, `True`).
//! - The validation covers the rules DOMAIN.md lists, not every origin-specific check:
//!   `socks-proxy`'s `ipRules` and `access` are checked for their shape only, and `url.Parse`
//!   only for what decides a scheme, a host and a path.

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
    /// What cloudflared warns about and starts anyway: keys it does not know.
    pub warnings: Vec<String>,
}

/// The keys of `config.OriginRequestConfig`, by Go type. A duration must be a string such as
/// `"30s"`: a bare integer makes cloudflared fail to start.
const DURATION_KEYS: &[&str] = &["connectTimeout", "tlsTimeout", "tcpKeepAlive", "keepAliveTimeout"];
const BOOL_KEYS: &[&str] = &[
    "noHappyEyeballs",
    "matchSNItoHost",
    "noTLSVerify",
    "disableChunkedEncoding",
    "bastionMode",
    "http2Origin",
];
const STRING_KEYS: &[&str] = &["httpHostHeader", "originServerName", "caPool", "proxyAddress", "proxyType"];

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
        let mut found = Found::default();
        if entries.is_empty() {
            found.errors.push("the ingress list has no rules".to_string());
        }
        let top = config.get("originRequest").unwrap_or(&Value::Null);
        check_origin_request("top-level originRequest", top, &mut found);
        // `setConfig`: a rule's own bastionMode, else the top-level one.
        let top_bastion = top.get("bastionMode").and_then(go_bool).unwrap_or(false);
        let mut rules = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            rules.push(parse_rule(i, entry, top_bastion, &mut found));
        }
        check_rule_order(&rules, &mut found.errors);
        Model { config, rules, errors: found.errors, warnings: found.warnings }
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

/// What cloudflared would refuse, and what it would only warn about.
#[derive(Default)]
struct Found {
    errors: Vec<String>,
    warnings: Vec<String>,
}

fn parse_rule(i: usize, entry: &Value, top_bastion: bool, found: &mut Found) -> Rule {
    let empty = Map::new();
    let obj = match entry {
        Value::Object(obj) => obj,
        // yaml.v3 leaves a null rule at its zero value: every field empty.
        Value::Null => &empty,
        other => {
            found.errors.push(format!("rule #{i} is not a mapping: {other}"));
            &empty
        }
    };
    // yaml.v3 puts any scalar into a string field, as text; a list or mapping is a type error.
    let mut string_field = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(scalar @ (Value::Number(_) | Value::Bool(_))) => Some(scalar.to_string()),
        Some(other) => {
            found.errors.push(format!("rule #{i}: `{key}` is not a string: {other}"));
            None
        }
    };
    let hostname = string_field("hostname");
    // cloudflared treats `path: ""` as no path.
    let path = string_field("path").filter(|p| !p.is_empty());
    let service = string_field("service").unwrap_or_default();
    let own = obj.get("originRequest").unwrap_or(&Value::Null);
    check_origin_request(&format!("rule #{i} originRequest"), own, found);
    let origin_request = own.as_object().cloned().unwrap_or_default();
    let bastion = own.get("bastionMode").and_then(go_bool).unwrap_or(top_bastion);

    if let Some(h) = &hostname {
        if h.rfind('*').is_some_and(|pos| pos > 0) {
            found.errors.push(format!("rule #{i}: hostname {h:?} has a `*` that is not its first character"));
        }
        if split_host_port(h).is_some() {
            found.errors.push(format!("rule #{i}: hostname {h:?} carries a port"));
        }
    }
    let path_regex = path.as_deref().and_then(|p| match RegexBuilder::new(p).build() {
        Ok(re) => Some(re),
        Err(e) => {
            found.errors.push(format!("rule #{i}: path {p:?} is not a valid regex: {e}"));
            None
        }
    });
    if let Err(e) = check_service(&service, bastion) {
        found.errors.push(format!("rule #{i}: service {service:?}: {e}"));
    }
    for key in obj.keys() {
        if !matches!(key.as_str(), "hostname" | "path" | "service" | "originRequest") {
            found.warnings.push(format!("rule #{i}: unknown key `{key}`"));
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

/// `validateIngress`'s service checks, in its order: in bastion mode (the rule's service is
/// `bastion`, or its `originRequest.bastionMode` is true) any service that is not one of the
/// forms before it is fine, even none.
fn check_service(service: &str, bastion: bool) -> Result<(), String> {
    if service.starts_with("unix:") || service.starts_with("unix+tls:") {
        return Ok(());
    }
    if let Some(code) = service.strip_prefix("http_status:") {
        return match code.parse::<u16>() {
            Ok(n) if (100..=999).contains(&n) => Ok(()),
            _ => Err("status code outside 100..999".into()),
        };
    }
    if matches!(service, "hello_world" | "hello-world" | "socks-proxy") || service == "bastion" || bastion {
        return Ok(());
    }
    if service.is_empty() {
        return Err("missing".into());
    }
    check_url(service)
}

/// `url.Parse(service)`, then `u.Scheme == "" || u.Hostname() == ""` and `u.Path != ""`.
/// Go cuts the fragment first and the query next, so `http://h:80?x` and `http://h:80#f`
/// have no path; a URL without `//` is opaque and has no host (`localhost:8080` is the
/// scheme `localhost`).
fn check_url(service: &str) -> Result<(), String> {
    // `parse` looks for control characters after the fragment is cut: one in it is fine.
    let (rest, fragment) = service.split_once('#').unwrap_or((service, ""));
    if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    if !valid_escapes(fragment) {
        return Err(format!("invalid URL escape in fragment {fragment:?}"));
    }
    // getScheme: a letter, then letters, digits, `+`, `-`, `.`, up to the first `:`.
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')));
    let scheme_ok = |s: &str| s.starts_with(|c: char| c.is_ascii_alphabetic());
    let rest = match end.map(|at| rest.split_at(at)) {
        Some((scheme, rest)) if rest.starts_with(':') && scheme_ok(scheme) => &rest[1..],
        _ => return Err("no scheme".into()),
    };
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let Some(rest) = rest.strip_prefix("//") else { return Err("no host".into()) };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c);
            if !userinfo.chars().all(allowed) || !valid_escapes(userinfo) {
                return Err("net/url: invalid userinfo".into());
            }
            host
        }
        None => authority,
    };
    // parseHost: after the last `]` (or the last `:`), an optional `:digits` port.
    let valid_port = |port: &str| {
        port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
    };
    let port_at = if host.starts_with('[') { host.rfind(']').map(|at| at + 1) } else { host.rfind(':') };
    match port_at {
        None if host.starts_with('[') => return Err("missing ']' in host".into()),
        Some(at) if !valid_port(&host[at..]) => {
            return Err(format!("invalid port {:?} after host", &host[at..]))
        }
        _ => {}
    }
    // unescape(host, encodeHost): sub-delimiters and `:[]<>"` pass; `%XX` only for non-ASCII
    // bytes and `%25`.
    let bytes = host.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        let ok = match b {
            b'%' => {
                let hex = bytes.get(at + 1..at + 3).and_then(|h| std::str::from_utf8(h).ok());
                hex.and_then(|h| u8::from_str_radix(h, 16).ok()).is_some_and(|v| v >= 0x80 || v == 0x25)
            }
            _ => b >= 0x80 || b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]<>\"".contains(&b),
        };
        if !ok {
            return Err(format!("invalid host {host:?}"));
        }
    }
    // u.Hostname(): the host without a valid `:port`, without brackets.
    let mut hostname = host;
    if let Some(at) = hostname.rfind(':').filter(|at| valid_port(&hostname[*at..])) {
        hostname = &hostname[..at];
    }
    if let Some(inner) = hostname.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        hostname = inner;
    }
    if hostname.is_empty() {
        return Err("no host".into());
    }
    if !path.is_empty() {
        return Err("an origin URL cannot have a path (even `/`)".into());
    }
    Ok(())
}

/// Every `%` starts a two-hex-digit escape (Go's `unescape`).
fn valid_escapes(text: &str) -> bool {
    text.split('%')
        .skip(1)
        .all(|after| after.len() >= 2 && after.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit))
}

/// yaml.v3 decoding `config.OriginRequestConfig`: each key cloudflared knows must have its Go
/// type; an unknown key is a warning.
fn check_origin_request(what: &str, value: &Value, found: &mut Found) {
    let map = match value {
        Value::Null => return,
        Value::Object(map) => map,
        other => return found.errors.push(format!("{what} is not a mapping: {other}")),
    };
    for (key, v) in map {
        let key = key.as_str();
        let ok = match key {
            _ if DURATION_KEYS.contains(&key) => v.as_str().is_some_and(|d| go_parse_duration(d).is_ok()),
            _ if BOOL_KEYS.contains(&key) => go_bool(v).is_some(),
            _ if STRING_KEYS.contains(&key) => !v.is_array() && !v.is_object(),
            // `*int`: yaml.v3 takes an integer, or truncates a float; not a string.
            "keepAliveConnections" => v.is_i64() || v.as_f64().is_some_and(|f| f.abs() < 9.2e18),
            "proxyPort" => v.is_u64() || v.as_f64().is_some_and(|f| (0.0..1.8e19).contains(&f)),
            "ipRules" => v.as_array().is_some_and(|rules| rules.iter().all(|r| r.is_object() || r.is_null())),
            "access" => v.is_object(),
            _ => {
                found.warnings.push(format!("{what}: unknown key `{key}`"));
                true
            }
        };
        // A null is a nil pointer or slice: as good as absent.
        if !ok && !v.is_null() {
            found.errors.push(format!("{what}.{key}: cannot decode {v} into its Go type"));
        }
    }
}

/// A Go `bool` as yaml.v3 decodes it: a YAML boolean, or one of YAML 1.1's words, which
/// yaml.v3 accepts only when decoding into a bool (`noTLSVerify: "true"` or `1` are errors).
fn go_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`; each number needs a
/// unit (`"30"` is "missing unit in duration"), and the total must fit 2^63-1 nanoseconds.
fn go_parse_duration(text: &str) -> Result<(), String> {
    let invalid = || Err(format!("time: invalid duration {text:?}"));
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if unsigned == "0" {
        return Ok(());
    }
    if unsigned.is_empty() {
        return invalid();
    }
    let (mut rest, mut total) = (unsigned, 0f64);
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return invalid();
        }
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        total += format!("0{whole}.{fraction}0").parse::<f64>().map_err(|e| e.to_string())? * nanos;
        rest = next;
    }
    if total >= 2f64.powi(63) {
        return invalid();
    }
    Ok(())
}

/// The host part of `host` when Go's `net.SplitHostPort` splits it, else `host` itself.
pub fn strip_port(host: &str) -> &str {
    split_host_port(host).map_or(host, |(h, _)| h)
}

/// Go's `net.SplitHostPort`: `Some((host, port))` when it succeeds. The port follows the last
/// `:`; a host in brackets ends right before it; a bare host has no other `:` (so `::1` and
/// `[::1]` have no port, `h:` has an empty one); no stray `[` or `]`.
pub fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let colon = hostport.rfind(':')?;
    let (host, after_host) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != colon {
            return None;
        }
        (&hostport[1..end], end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(':') {
            return None;
        }
        (host, 0)
    };
    let opened_at = usize::from(hostport.starts_with('['));
    if hostport[opened_at..].contains('[') || hostport[after_host..].contains(']') {
        return None;
    }
    Some((host, &hostport[colon + 1..]))
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
