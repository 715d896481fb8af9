//! The top-level keys of a config that are cloudflared command-line flags: cloudflared applies
//! them through urfave/cli's `altsrc`, which insists on the YAML type of each flag, and refuses
//! to start on a mismatch ("Mismatched type for flag 'grace-period'. Expected 'duration' but
//! actual is 'int'"). So `grace-period: 30` (no unit), `edge-ip-version: 4` (a string flag) and
//! `no-autoupdate: "true"` each stop cloudflared; a config that restarts a cloudflared into one
//! takes its connector down.
//!
//! The flags of `cloudflared tunnel run` (cmd/cloudflared/tunnel: `tunnelFlags`,
//! `configureCloudflaredFlags`, `configureProxyFlags`, `sshFlags`, `configureProxyDNSFlags`,
//! and the logging flags), as they are from 2023.7 on. A key that is no flag is not checked
//! (cloudflared ignores it).

use serde_json::Value;

use crate::gostd::go_parse_duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    Str,
    Bool,
    Int,
    Duration,
    StrList,
}

const FLAGS: &[(Flag, &str)] = &[
    (
        Flag::Str,
        "credentials-file origincert metrics pidfile url unix-socket origin-ca-pool http-host-header \
         origin-server-name management-hostname service-op-ip region edge-ip-version edge-bind-address \
         cacert hostname id lb-pool api-key api-email api-ca-key api-url connector-label name \
         quick-service protocol proxy-address proxy-dns-address loglevel transport-loglevel \
         proto-loglevel logfile log-directory trace-output output",
    ),
    (
        Flag::Bool,
        "no-autoupdate is-autoupdated hello-world socks5 proxy-no-happy-eyeballs no-tls-verify \
         no-chunked-encoding http2-origin ssh-server bastion proxy-dns use-reconnect-token \
         stdin-control ui post-quantum management-diagnostics overwrite-dns",
    ),
    (
        Flag::Int,
        "proxy-keepalive-connections proxy-port heartbeat-count max-edge-addr-retries retries \
         ha-connections compression-quality max-fetch-size proxy-dns-port proxy-dns-max-upstream-conns",
    ),
    (
        Flag::Duration,
        "autoupdate-freq proxy-connect-timeout proxy-tls-timeout proxy-tcp-keepalive proxy-keepalive-timeout \
         proxy-connection-timeout proxy-expect-continue-timeout metrics-update-freq heartbeat-interval \
         grace-period dial-edge-timeout",
    ),
    (Flag::StrList, "edge tag proxy-dns-upstream proxy-dns-bootstrap"),
];

fn flag(key: &str) -> Option<Flag> {
    FLAGS.iter().find(|(_, names)| names.split_whitespace().any(|n| n == key)).map(|(kind, _)| *kind)
}

/// The Go type yaml.v3 gives `value` in a `map[string]interface{}`, as `reflect` names it
/// (a list or a mapping has no name).
fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(n) if n.as_i64().is_some() => "int",
        Value::Number(_) => "uint64",
        Value::String(_) => "string",
        Value::Array(_) | Value::Object(_) => "",
    }
}

/// cloudflared's refusal of the top-level `key: value`, if `key` is a flag whose type `value`
/// does not have.
pub(crate) fn check(key: &str, value: &Value) -> Option<String> {
    let kind = flag(key)?;
    let ok = match (kind, value) {
        (Flag::Str, Value::String(_)) | (Flag::Bool, Value::Bool(_)) => true,
        // Go's int is 64 bits; a larger integer is a uint64 to yaml.v3.
        (Flag::Int, Value::Number(n)) => n.as_i64().is_some(),
        (Flag::Duration, Value::String(s)) => go_parse_duration(s).is_ok(),
        (Flag::StrList, Value::Array(items)) => {
            if let Some(i) = items.iter().position(|v| !v.is_string()) {
                return Some(mismatch(&format!("{key}[{i}]"), "string", &items[i]));
            }
            true
        }
        _ => false,
    };
    let expected = match kind {
        Flag::Str => "string",
        Flag::Bool => "bool",
        Flag::Int => "int",
        Flag::Duration => "duration",
        Flag::StrList => "[]interface{}",
    };
    (!ok).then(|| mismatch(key, expected, value))
}

fn mismatch(key: &str, expected: &str, value: &Value) -> String {
    let hint = match (expected, value) {
        ("duration", Value::Number(_)) => " (a duration needs a unit: `30s`)",
        ("duration", Value::String(_)) => " (not a Go duration such as `30s`, `1m30s`)",
        ("string", Value::Number(_) | Value::Bool(_)) => " (quote it)",
        _ => "",
    };
    format!(
        "Mismatched type for flag '{key}'. Expected '{expected}' but actual is '{}'{hint}: cloudflared reads \
         this top-level key as its command-line flag, and refuses to start",
        go_type_name(value)
    )
}

#[cfg(test)]
mod tests {
    use super::check;
    use serde_json::json;

    #[test]
    fn flags_of_the_wrong_yaml_type_are_refused_as_cloudflared_refuses_them() {
        for (key, value, refused) in [
            ("grace-period", json!("30s"), false),
            ("grace-period", json!(30), true),
            ("grace-period", json!("30"), true),
            ("grace-period", json!(null), true),
            ("edge-ip-version", json!("4"), false),
            ("edge-ip-version", json!(4), true),
            ("protocol", json!("http2"), false),
            ("protocol", json!(["http2"]), true),
            ("no-autoupdate", json!(true), false),
            ("no-autoupdate", json!("true"), true),
            ("ha-connections", json!(4), false),
            ("ha-connections", json!("two"), true),
            ("ha-connections", json!(4.0), true),
            ("retries", json!("5"), true),
            ("tag", json!(["env=prod"]), false),
            ("tag", json!("env=prod"), true),
            ("tag", json!(["env", 1]), true),
            ("metrics", json!("0.0.0.0:2000"), false),
            // Not flags: not checked.
            ("warp-routing-x", json!(5), false),
            ("my-setting", json!([1]), false),
        ] {
            assert_eq!(check(key, &value).is_some(), refused, "{key}: {value}: {:?}", check(key, &value));
        }
        let message = check("grace-period", &json!(30)).unwrap();
        assert!(message
            .starts_with("Mismatched type for flag 'grace-period'. Expected 'duration' but actual is 'int'"));
        assert!(check("tag", &json!(["a", 1])).unwrap().contains("flag 'tag[1]'"));
    }
}
