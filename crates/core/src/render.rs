//! Rules + base config → the bytes of a locally-managed cloudflared `config.yml`.
//!
//! Layout: a header comment, `tunnel`, `credentials-file`, `protocol: http2` when gRPC needs
//! it and the base config does not say, every other key of the base config as written (in its
//! order), then `ingress`: the generated rules, each under a comment naming its source, the base
//! config's own rules, and a catch-all (the base config's own last rule when it is one,
//! `http_status:404` otherwise). The generated part is written by hand so it can carry the
//! comments; values are quoted whenever plain YAML could misread them.

use std::fmt::Write;

use rustc_hash::FxHashMap;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::ingress::{IngressRules, OriginRequest, Rule, RuleSource, SourceRef};
use crate::translate::Translation;

/// The user's cloudflared YAML (`--base-config`), split into its top-level keys (in order)
/// and its ingress rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BaseConfig {
    pub keys: Vec<(String, Value)>,
    pub ingress: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BaseConfigError {
    /// Its position and wording only, never the text around it (`yaml::ErrorMessage`).
    #[error("{0}")]
    Yaml(crate::yaml::ErrorMessage),
    #[error("the base config must be a YAML mapping of cloudflared settings")]
    NotAMapping,
    #[error("the base config's `ingress` must be a list of rules")]
    IngressNotAList,
    /// Plain scalars cloudflared reads otherwise than we would write them back.
    #[error(
        "the base config holds values cloudflared's YAML reader (Go's yaml.v3) takes otherwise than ours, so \
         they cannot be copied into config.yml as written: {0}"
    )]
    Misread(String),
    /// Its content is never quoted: it holds the tunnel's secret.
    #[error(
        "the base config has a `TunnelSecret` key: it looks like the tunnel's credentials file; give \
         that file as --credentials-file (the base config is copied into config.yml, and the secret \
         with it)"
    )]
    HoldsTunnelSecret,
}

/// A mapping that keeps its keys in document order (serde_json's map sorts them).
struct OrderedMap(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entries.push((key, value));
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl BaseConfig {
    pub fn parse(text: &str) -> Result<BaseConfig, BaseConfigError> {
        // cloudflared reads the first YAML document of its config; so does the base config's
        // reader (the rendered config holds only what that document says).
        let text = crate::yaml::first_document(text);
        if text.trim().is_empty() {
            return Ok(BaseConfig::default());
        }
        let value: Value = serde_saphyr::from_str_with_options(text, crate::yaml::options())
            .map_err(|e| BaseConfigError::Yaml(crate::yaml::ErrorMessage::new(&e)))?;
        if value.is_null() {
            return Ok(BaseConfig::default());
        }
        if !value.is_object() {
            return Err(BaseConfigError::NotAMapping);
        }
        let OrderedMap(entries) = serde_saphyr::from_str_with_options(text, crate::yaml::options())
            .map_err(|e| BaseConfigError::Yaml(crate::yaml::ErrorMessage::new(&e)))?;
        let mut base = BaseConfig::default();
        if entries.iter().any(|(key, _)| key == "TunnelSecret") {
            return Err(BaseConfigError::HoldsTunnelSecret);
        }
        let misread = crate::yaml::misread_plain_scalars(text, true);
        if !misread.is_empty() {
            let each: Vec<String> = misread.iter().map(ToString::to_string).collect();
            return Err(BaseConfigError::Misread(each.join("; ")));
        }
        for (key, value) in entries {
            if key == "ingress" {
                match value {
                    Value::Array(rules) => base.ingress = rules,
                    Value::Null => {}
                    _ => return Err(BaseConfigError::IngressNotAList),
                }
            } else {
                base.keys.push((key, value));
            }
        }
        Ok(base)
    }

    /// The value of a top-level key other than `ingress`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Who the tunnel is: from `--tunnel-id` / the credentials file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tunnel {
    pub id: Option<String>,
    pub credentials_file: Option<String>,
}

/// The config text and what the user should know about how it was put together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub warnings: Vec<String>,
    /// Number of ingress rules in the file.
    pub rule_count: usize,
}

pub fn render(translation: &Translation, base: &BaseConfig, tunnel: &Tunnel) -> Rendered {
    render_rules(&translation.rules, translation.uses_grpc, base, tunnel)
}

/// Render an already ordered rule list (also used by the benchmark to time serialisation alone).
pub fn render_rules(rules: &IngressRules, uses_grpc: bool, base: &BaseConfig, tunnel: &Tunnel) -> Rendered {
    let mut warnings = Vec::new();
    // Sized once: growing a string of megabytes copies it and touches fresh memory each time.
    let mut out = String::with_capacity(4096 + rules.iter().map(estimated_len).sum::<usize>());
    out.push_str(
        "# Generated by cloudflared-routes from Gateway API objects. Do not edit: it is rewritten\n",
    );
    out.push_str("# whenever they change. Put your own settings in the base config instead.\n");

    let mut overridden = |key: &str, ours: &Option<String>| {
        if let (Some(ours), Some(theirs)) = (ours, base.get(key)) {
            if theirs.as_str() != Some(ours.as_str()) {
                warnings
                    .push(format!("the base config's `{key}` is replaced by {ours:?} from the command line"));
            }
        }
    };
    overridden("tunnel", &tunnel.id);
    overridden("credentials-file", &tunnel.credentials_file);
    // `--tunnel-id` alone replaces the base config's tunnel but keeps its credentials file:
    // if that tunnel was another one, its credentials are another tunnel's.
    let base_tunnel = base.get("tunnel").and_then(Value::as_str);
    if let (Some(ours), Some(theirs), None, Some(Value::String(file))) =
        (&tunnel.id, base_tunnel, &tunnel.credentials_file, base.get("credentials-file"))
    {
        if ours != theirs {
            warnings.push(format!(
                "the base config's `credentials-file` ({file:?}) is kept, but it names tunnel {theirs:?}, \
                 which is replaced by {ours:?}: cloudflared needs the credentials of {ours:?} (give them \
                 with --credentials-file)"
            ));
        }
    }
    if let Some(id) = &tunnel.id {
        line(&mut out, 0, "tunnel", &scalar(id));
    }
    if let Some(path) = &tunnel.credentials_file {
        line(&mut out, 0, "credentials-file", &scalar(path));
    }
    // Whether our `protocol: http2` takes the place of the base config's key.
    let mut protocol_taken = false;
    if uses_grpc {
        match base.get("protocol") {
            // Absent, or written without a value (`protocol:`, `protocol: ~`).
            None | Some(Value::Null) => {
                line(&mut out, 0, "protocol", "http2");
                protocol_taken = true;
            }
            Some(Value::String(p)) if p == "http2" => {}
            Some(Value::String(other)) => warnings.push(format!(
                "the base config sets `protocol: {other}`, but gRPC through cloudflared needs `protocol: http2` \
                 (QUIC drops the trailers gRPC relies on)"
            )),
            // Not a string: cloudflared could not read the file; ours replaces it.
            Some(other) => {
                warnings.push(format!(
                    "the base config's `protocol` is not a string ({other}); replaced by `http2`, which gRPC needs"
                ));
                line(&mut out, 0, "protocol", "http2");
                protocol_taken = true;
            }
        }
    }
    // cloudflared copies these into every rule's settings (and `/config` shows them there), but
    // builds the Access check and the IP rules only from a rule's own `originRequest`.
    if let Some(Value::Object(top)) = base.get("originRequest") {
        for key in ["access", "ipRules"].into_iter().filter(|k| top.contains_key(*k)) {
            warnings.push(format!(
                "the base config's top-level `originRequest.{key}` is not enforced by cloudflared, which applies \
                 `{key}` only from a rule's own `originRequest`: no rule is protected by it"
            ));
        }
    }
    for (key, value) in &base.keys {
        let taken = match key.as_str() {
            "tunnel" => tunnel.id.is_some(),
            "credentials-file" => tunnel.credentials_file.is_some(),
            "protocol" => protocol_taken,
            _ => false,
        };
        if !taken {
            value_entry(&mut out, 0, key, value);
        }
    }

    out.push_str("ingress:\n");
    let mut count = 0;
    for rule in rules {
        out.push_str("  # ");
        // Writing into a String cannot fail.
        let _ = write!(Comment(&mut out), "{}", rule.source());
        out.push('\n');
        rule_entry(&mut out, rule);
        count += 1;
    }
    let terminated = rules.last().is_some_and(Rule::is_catch_all);
    if terminated {
        if !base.ingress.is_empty() {
            warnings.push(format!(
                "the base config's {} ingress rule(s) are left out: {} matches every request",
                base.ingress.len(),
                rules.last().map(|r| r.source().to_string()).unwrap_or_default()
            ));
        }
    } else {
        warnings.extend(hidden_base_rules(rules, &base.ingress));
        for (i, rule) in base.ingress.iter().enumerate() {
            out.push_str(&format!("  # base config ingress[{i}]\n"));
            list_item(&mut out, rule);
            count += 1;
        }
        let base_catch_all = base.ingress.last().is_some_and(is_catch_all_value);
        if !base_catch_all {
            out.push_str("  # ");
            out.push_str(&RuleSource::CatchAll.to_string());
            out.push('\n');
            out.push_str("  - service: http_status:404\n");
            count += 1;
        }
    }
    Rendered { text: out, warnings, rule_count: count }
}

/// The base config's rules that a generated rule before them takes every request of: one
/// without a path whose hostname is theirs or a wildcard over it, typically the fence of a
/// wildcard listener (`*.example.com` closes its block with a 404, so a base rule for
/// `ssh.example.com` is never reached). Such a rule is still written, as the user wrote it;
/// the warning says why it is dead.
fn hidden_base_rules(rules: &IngressRules, base: &[Value]) -> Vec<String> {
    if base.is_empty() {
        return Vec::new();
    }
    // The first generated rule without a path for each hostname.
    let mut first: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.path_len().is_none()) {
        if let Some(h) = rule.hostname() {
            first.entry(h).or_insert(i);
        }
    }
    let mut warnings = Vec::new();
    for (b, rule) in base.iter().enumerate() {
        let Some(host) = rule.get("hostname").and_then(Value::as_str).filter(|h| !h.is_empty() && *h != "*")
        else {
            continue;
        };
        // `host` itself, then `*.` and every suffix after one of its dots. Lower case: ours
        // is, requests' hosts are, and cloudflared also tries an upper-case rule's name
        // lower-cased.
        let folded = host.to_ascii_lowercase();
        let wildcards = folded.match_indices('.').map(|(i, _)| format!("*{}", &folded[i..]));
        let by = std::iter::once(folded.clone())
            .chain(wildcards)
            .filter_map(|h| first.get(h.as_str()).copied())
            .min();
        if let Some(by) = by {
            warnings.push(format!(
                "the base config's ingress[{b}] ({host}) is never reached: {} comes first and takes every request for it",
                rules.get(by).expect("a rule of the list").source()
            ));
        }
    }
    warnings
}

/// A character that may stand in a YAML comment line: one both serde-saphyr and cloudflared's
/// yaml.v3 accept and neither reads as a line break.
fn comment_char(c: char) -> bool {
    crate::yaml::go_yaml_reads(c)
        && !matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A character a single-quoted scalar holds as it is (and a double-quoted one needs no escape
/// for): a comment character that is not white space, or a plain space.
fn single_quotable(c: char) -> bool {
    c == ' ' || (comment_char(c) && !c.is_whitespace())
}

/// Writes text into a comment line, escaping (`\u{2028}`) every character that could end the
/// line or that a YAML reader refuses: an object name read from a file may hold anything, and
/// must never turn into YAML of its own.
struct Comment<'a>(&'a mut String);

impl std::fmt::Write for Comment<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            self.0.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            if comment_char(c) {
                self.0.push(c);
            } else {
                write!(self.0, "\\u{{{:x}}}", c as u32)?;
            }
        }
        Ok(())
    }
}

fn is_catch_all_value(rule: &Value) -> bool {
    let hostname = rule.get("hostname").and_then(Value::as_str).unwrap_or("");
    (hostname.is_empty() || hostname == "*")
        && rule.get("path").and_then(Value::as_str).unwrap_or("").is_empty()
}

/// About the bytes [`rule_entry`] and its comment write for `rule` (string lengths are in the
/// rule and the fat pointers: no string is read), a little more when quoting is needed.
fn estimated_len(rule: Rule<'_>) -> usize {
    let strings = rule.hostname_len().map_or(0, |h| h + 16)
        + rule.path_len().map_or(0, |p| p + 12)
        + rule.service().len()
        + 16;
    let source = match rule.source() {
        SourceRef::Route { route, .. } => route.text_len() + 40,
        SourceRef::ListenerFence { hostname } => hostname.len() + 48,
        SourceRef::CatchAll => 16,
    };
    let origin = if rule.origin_request().is_empty() { 0 } else { 160 };
    strings + source + origin + strings / 8
}

fn rule_entry(out: &mut String, rule: Rule<'_>) {
    let mut first = true;
    let mut field = |out: &mut String, key: &str, value: &str| {
        out.push_str(if first { "  - " } else { "    " });
        first = false;
        out.push_str(key);
        out.push_str(": ");
        push_scalar(out, value);
        out.push('\n');
    };
    if let Some(h) = rule.hostname() {
        field(out, "hostname", h);
    }
    if let Some(p) = rule.path() {
        field(out, "path", p);
    }
    field(out, "service", rule.service());
    origin_request(out, rule.origin_request());
}

fn origin_request(out: &mut String, o: &OriginRequest) {
    if o.is_empty() {
        return;
    }
    out.push_str("    originRequest:\n");
    if let Some(h) = &o.http_host_header {
        line(out, 6, "httpHostHeader", &scalar(h));
    }
    if let Some(s) = &o.origin_server_name {
        line(out, 6, "originServerName", &scalar(s));
    }
    if o.http2_origin {
        line(out, 6, "http2Origin", "true");
    }
    if o.no_tls_verify {
        line(out, 6, "noTLSVerify", "true");
    } else if o.origin_server_name.is_some() {
        // A BackendTLSPolicy asks for the certificate to be checked: said here, so that a base
        // config's top-level `noTLSVerify: true` (which every rule inherits) does not undo it.
        line(out, 6, "noTLSVerify", "false");
    }
}

fn line(out: &mut String, indent: usize, key: &str, value: &str) {
    out.extend(std::iter::repeat_n(' ', indent));
    out.push_str(key);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

/// `key: value` for any JSON value: scalars inline, collections as an indented block
/// serialised by serde-saphyr.
fn value_entry(out: &mut String, indent: usize, key: &str, value: &Value) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str(&format!("{pad}{}:\n", scalar(key)));
            block(out, indent + 2, value);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str(&format!("{pad}{}:\n", scalar(key)));
            block(out, indent + 2, value);
        }
        _ => out.push_str(&format!("{pad}{}: {}\n", scalar(key), inline(value))),
    }
}

fn block(out: &mut String, indent: usize, value: &Value) {
    let text = serde_saphyr::to_string(value).unwrap_or_default();
    for l in text.lines() {
        out.extend(std::iter::repeat_n(' ', indent));
        out.push_str(l);
        out.push('\n');
    }
}

/// A base-config ingress rule as a list item.
fn list_item(out: &mut String, value: &Value) {
    let text = serde_saphyr::to_string(value).unwrap_or_default();
    for (i, l) in text.lines().enumerate() {
        out.push_str(if i == 0 { "  - " } else { "    " });
        out.push_str(l);
        out.push('\n');
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A string as a YAML scalar that reads back as exactly that string: plain when it is
/// unmistakable, single-quoted when it is printable, double-quoted with escapes otherwise.
pub fn scalar(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_scalar(&mut out, s);
    out
}

fn push_scalar(out: &mut String, s: &str) {
    const KEYWORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf"];
    let bytes = s.as_bytes();
    let plain = bytes.first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'/')
        && bytes.iter().all(|c| PLAIN[usize::from(*c)])
        && !s.ends_with(':')
        && (s.len() > 5 || !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s)));
    if plain {
        out.push_str(s);
    } else if s.bytes().all(|b| (b' '..=b'~').contains(&b)) || s.chars().all(single_quotable) {
        // Printable ASCII (the first test, quick), or nothing a single-quoted scalar cannot hold.
        out.push('\'');
        for (i, part) in s.split('\'').enumerate() {
            if i > 0 {
                out.push_str("''");
            }
            out.push_str(part);
        }
        out.push('\'');
    } else {
        // Double-quoted, escaping what a single-quoted scalar cannot hold: line breaks (YAML
        // readers also take U+0085, U+2028 and U+2029 for them, and fold them), other white
        // space, U+FEFF (a byte-order mark), and what Go's yaml.v3 refuses in a file (C0 and
        // C1 controls, DEL, U+FFFE, U+FFFF), which would keep cloudflared from reading it.
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if single_quotable(c) => out.push(c),
                c if u32::from(c) <= 0xff => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c if u32::from(c) <= 0xffff => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => {
                    let _ = write!(out, "\\U{:08x}", u32::from(c));
                }
            }
        }
        out.push('"');
    }
}

/// Bytes a plain scalar may hold: `[A-Za-z0-9._/:-]`.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b':' | b'-');
        b += 1;
    }
    table
};

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
