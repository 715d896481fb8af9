//! The typed structs cloudflared decodes its config into (config/configuration.go), and
//! yaml.v3's view of a value: type errors, unknown keys and their near-misses, Go's booleans.

use std::borrow::Cow;

use serde_json::Value;

use super::Report;
use crate::gostd::go_parse_duration;

#[derive(Clone, Copy)]
pub(super) enum Kind {
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
pub(super) struct Struct {
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
pub(super) const TOP_LEVEL_KEYS: &[&str] = &["tunnel", "ingress", "warp-routing", "originRequest"];

pub(super) const INGRESS_RULE: Struct = Struct {
    go_type: "config.UnvalidatedIngressRule",
    fields: &[(Kind::Str, "hostname path service"), (Kind::Struct(&ORIGIN_REQUEST), "originRequest")],
};

pub(super) const ORIGIN_REQUEST: Struct = Struct {
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

pub(super) const IP_RULE: Struct = Struct {
    go_type: "config.IngressIPRule",
    fields: &[(Kind::Str, "prefix"), (Kind::Seq(&Kind::Int, "[]int"), "ports"), (Kind::Bool, "allow")],
};

pub(super) const ACCESS: Struct = Struct {
    go_type: "config.AccessConfig",
    fields: &[
        (Kind::Bool, "required"),
        (Kind::Str, "teamName"),
        (Kind::Seq(&Kind::Str, "[]string"), "audTag"),
    ],
};

pub(super) const WARP_ROUTING: Struct = Struct {
    go_type: "config.WarpRoutingConfig",
    fields: &[
        (Kind::Bool, "enabled"),
        (Kind::Duration, "connectTimeout tcpKeepAlive"),
        (Kind::Uint, "maxActiveFlows"),
    ],
};

/// Decode `value` as yaml.v3 would into `kind`: type errors are errors, unknown struct fields
/// warnings. `path` names the field in messages ("originRequest.connectTimeout").
pub(super) fn check_value(value: &Value, kind: &Kind, path: &str, rule: Option<usize>, report: &mut Report) {
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

pub(super) fn go_type(kind: &Kind) -> &'static str {
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
pub(super) fn type_error(path: &str, value: &Value, go_type: &str) -> String {
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

pub(super) fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// The text yaml.v3 puts in a Go string field: any scalar, `None` for a sequence or mapping.
pub(super) fn scalar_text(value: Option<&Value>) -> Option<Cow<'_, str>> {
    match value {
        None | Some(Value::Null) => Some(Cow::Borrowed("")),
        Some(Value::String(s)) => Some(Cow::Borrowed(s)),
        Some(Value::Bool(b)) => Some(Cow::Owned(b.to_string())),
        Some(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
        Some(Value::Array(_) | Value::Object(_)) => None,
    }
}

/// A Go bool as yaml.v3 decodes it, including its YAML 1.1 words ("yes", "off", …).
pub(super) fn go_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        _ => value.as_str().and_then(crate::yaml::go_bool_word),
    }
}

/// " (did you mean NAME?)" when `key` has the letters of a known name ignoring case, `-` and
/// `_`, or is at most `max_edits` edits away from one.
pub(super) fn near_miss(key: &str, names: impl Iterator<Item = &'static str>, max_edits: usize) -> String {
    let normalize = |s: &str| s.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_lowercase();
    let key = normalize(key);
    let mut near = names.filter(|name| edit_distance(&normalize(name), &key) <= max_edits);
    near.next().map(|name| format!(" (did you mean {name}?)")).unwrap_or_default()
}

/// Levenshtein distance.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
