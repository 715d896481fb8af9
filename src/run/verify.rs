//! Verify that cloudflared runs the config we rendered, through its metrics server.
//!
//! cloudflared's `/config` returns the ingress it actually loaded (DOMAIN.md §2):
//! `{"version":-1,"config":{"ingress":[{"hostname":"…","path":"…","service":"…",…}],
//! "originRequest":{…}}}`, one JSON object per rule as `ingress.Rule` marshals it: a rule
//! without hostname has `"hostname":""`, a rule without path `"path":null`, and `service` is the
//! origin service's `String()` (a parsed URL for URL services, `http_status:N`, `hello_world`,
//! …). Every rule's `originRequest` there is the one in effect (the rule's keys over the
//! top-level ones over cloudflared's defaults), with durations as numbers of seconds. So
//! hostname, path and service are compared, in order (where a request goes), and of
//! `originRequest` the keys we render per rule (how it is sent there: `httpHostHeader`,
//! `originServerName`, `http2Origin`, `noTLSVerify`), where the file sets them, against the
//! values in effect. A change of those alone is then not taken for running before cloudflared
//! has reloaded it.
//!
//! The module also holds the small HTTP/1 GET this crate uses against that server (`/ready`,
//! `/config`), so the reloaders and `verify` probe cloudflared the same way.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};

/// How often `/config` and `/ready` are polled while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// An upper bound for one request, so a hung connection cannot eat a whole wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The same for `/config`, whose answer grows with the config: about 700 bytes a rule, so
/// 30 MB for 40,000 rules, which a cloudflared with little CPU takes seconds to write. It is
/// cloudflared's own limit: its metrics server (`metrics.ServeMetrics`) is an `http.Server`
/// with `WriteTimeout: 10 * time.Second`, so an answer not written within 10 s of reading the
/// request is cut by cloudflared itself (and its `tunnel diag` gives a collector 10 s too).
/// Waiting longer only waits on a connection nothing more will come from.
const CONFIG_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why cloudflared was not shown to run the rendered config.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The rendered file itself could not be read as a cloudflared config (a bug upstream).
    #[error("the rendered config has no readable ingress: {0}")]
    Rendered(String),
    /// Nothing usable answered on `/config` before the deadline.
    #[error("cloudflared's /config at {addr} did not answer within {timeout:?}: {last}")]
    Unreachable { addr: SocketAddr, timeout: Duration, last: String },
    /// cloudflared answered, but with other rules than the rendered ones until the deadline.
    #[error("cloudflared at {addr} still runs other ingress rules after {timeout:?}: {difference}")]
    Mismatch { addr: SocketAddr, timeout: Duration, difference: String },
}

/// One ingress rule as far as routing is concerned, and the `originRequest` keys we render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleKey {
    pub hostname: String,
    pub path: String,
    pub service: String,
    pub origin: OriginKeys,
}

/// The `originRequest` keys the rules we render set. On the file's side, each is the rule's
/// value, else the top level's, else `None`: a key the file does not set is not compared (a
/// cloudflared flag may give it a default). On cloudflared's side, the value in effect
/// (`None` when `/config` does not say, which stands for cloudflared's default: empty, false).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OriginKeys {
    #[serde(rename = "httpHostHeader")]
    pub http_host_header: Option<String>,
    #[serde(rename = "originServerName")]
    pub origin_server_name: Option<String>,
    #[serde(rename = "http2Origin")]
    pub http2_origin: Option<bool>,
    #[serde(rename = "noTLSVerify")]
    pub no_tls_verify: Option<bool>,
    /// Not compared: it changes how cloudflared reports the rule's service (`bastion`).
    #[serde(rename = "bastionMode")]
    pub bastion_mode: Option<bool>,
}

impl OriginKeys {
    /// `self` (a rule's keys) over `defaults` (the file's top level).
    fn over(self, defaults: &OriginKeys) -> OriginKeys {
        OriginKeys {
            http_host_header: self.http_host_header.or_else(|| defaults.http_host_header.clone()),
            origin_server_name: self.origin_server_name.or_else(|| defaults.origin_server_name.clone()),
            http2_origin: self.http2_origin.or(defaults.http2_origin),
            no_tls_verify: self.no_tls_verify.or(defaults.no_tls_verify),
            bastion_mode: self.bastion_mode.or(defaults.bastion_mode),
        }
    }

    /// Whether cloudflared's keys in effect (`got`) agree with every key the file sets.
    fn satisfied_by(&self, got: &OriginKeys) -> bool {
        fn agrees<T: Default + PartialEq + Clone>(want: &Option<T>, got: &Option<T>) -> bool {
            want.as_ref().is_none_or(|want| got.clone().unwrap_or_default() == *want)
        }
        agrees(&self.http_host_header, &got.http_host_header)
            && agrees(&self.origin_server_name, &got.origin_server_name)
            && agrees(&self.http2_origin, &got.http2_origin)
            && agrees(&self.no_tls_verify, &got.no_tls_verify)
    }
}

impl RuleKey {
    /// cloudflared's rule `got` is this rendered rule: the same routing, and the
    /// `originRequest` keys the file sets in effect.
    pub fn satisfied_by(&self, got: &RuleKey) -> bool {
        (&self.hostname, &self.path, &self.service) == (&got.hostname, &got.path, &got.service)
            && self.origin.satisfied_by(&got.origin)
    }
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{hostname: {:?}, path: {:?}, service: {:?}", self.hostname, self.path, self.service)?;
        let o = &self.origin;
        let keys = [
            ("httpHostHeader", o.http_host_header.as_ref().map(|v| format!("{v:?}"))),
            ("originServerName", o.origin_server_name.as_ref().map(|v| format!("{v:?}"))),
            ("http2Origin", o.http2_origin.map(|v| v.to_string())),
            ("noTLSVerify", o.no_tls_verify.map(|v| v.to_string())),
        ];
        for (key, value) in keys.iter().filter_map(|(k, v)| Some((k, v.as_ref()?))) {
            write!(f, ", {key}: {value}")?;
        }
        f.write_str("}")
    }
}

/// Polls `GET http://addr/config` until its ingress equals the ingress of `rendered_yaml`
/// (hostname, path, service and the `originRequest` keys of [`OriginKeys`], in order), or
/// `timeout` passes.
pub async fn verify(addr: SocketAddr, rendered_yaml: &str, timeout: Duration) -> Result<(), VerifyError> {
    let expected = rendered_rules(rendered_yaml)?;
    let deadline = Instant::now() + timeout;
    loop {
        // Ok(difference) when cloudflared answered with other rules, Err(why) when it did not.
        let last = match loaded_rules(addr, remaining(deadline)).await {
            Ok(loaded) => match difference(&expected, &loaded) {
                None => return Ok(()),
                Some(difference) => Ok(difference),
            },
            Err(e) => Err(e),
        };
        if Instant::now() + POLL_INTERVAL > deadline {
            return Err(match last {
                Ok(difference) => VerifyError::Mismatch { addr, timeout, difference },
                Err(last) => VerifyError::Unreachable { addr, timeout, last },
            });
        }
        sleep(POLL_INTERVAL).await;
    }
}

/// The routing part of a rendered (or any) cloudflared YAML config.
pub fn rendered_rules(yaml: &str) -> Result<Vec<RuleKey>, VerifyError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        ingress: Vec<Rule>,
        #[serde(default, rename = "originRequest")]
        origin_request: OriginKeys,
    }
    #[derive(Deserialize)]
    struct Rule {
        hostname: Option<String>,
        path: Option<String>,
        service: Option<String>,
        #[serde(default, rename = "originRequest")]
        origin_request: OriginKeys,
    }
    let file: File = serde_saphyr::from_str_with_options(yaml, routes_core::yaml::options())
        .map_err(|e| VerifyError::Rendered(e.to_string()))?;
    if file.ingress.is_empty() {
        return Err(VerifyError::Rendered("no ingress rules".into()));
    }
    let defaults = file.origin_request;
    Ok(file
        .ingress
        .into_iter()
        .map(|r| {
            let origin = r.origin_request.over(&defaults);
            let mut service = normalize_service(r.service.as_deref().unwrap_or_default());
            // cloudflared serves (and reports) a URL rule in bastion mode as `bastion`
            // (`validateIngress`: checked after the special services, before the URL).
            let special = service.starts_with("http_status:")
                || service.starts_with("unix:")
                || service.starts_with("unix+tls:")
                || matches!(service.as_str(), "hello_world" | "socks-proxy");
            if origin.bastion_mode == Some(true) && !special {
                service = "bastion".into();
            }
            RuleKey {
                hostname: r.hostname.unwrap_or_default(),
                path: r.path.unwrap_or_default(),
                service,
                origin,
            }
        })
        .collect())
}

/// The ingress cloudflared reports on `/config`, or why it could not be had.
pub async fn loaded_rules(addr: SocketAddr, within: Duration) -> Result<Vec<RuleKey>, String> {
    let (status, body) = http_get(addr, "/config", within).await?;
    if status != StatusCode::OK {
        return Err(format!("/config answered {status}"));
    }
    parse_loaded(&body)
}

fn parse_loaded(body: &[u8]) -> Result<Vec<RuleKey>, String> {
    #[derive(Deserialize)]
    struct Versioned {
        config: Config,
    }
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        ingress: Option<Vec<Rule>>,
    }
    #[derive(Deserialize)]
    struct Rule {
        hostname: Option<String>,
        path: Option<String>,
        service: Option<serde_json::Value>,
        /// In effect for the rule; a key absent (an older cloudflared, a stand-in) means its default.
        #[serde(default, rename = "originRequest")]
        origin_request: OriginKeys,
    }
    let versioned: Versioned =
        serde_json::from_slice(body).map_err(|e| format!("/config is not the expected JSON: {e}"))?;
    Ok(versioned
        .config
        .ingress
        .unwrap_or_default()
        .into_iter()
        .map(|r| RuleKey {
            hostname: r.hostname.unwrap_or_default(),
            path: r.path.unwrap_or_default(),
            service: normalize_service(&match r.service {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            }),
            origin: r.origin_request,
        })
        .collect())
}

/// The first difference between what was rendered and what cloudflared runs, for the log.
pub fn difference(expected: &[RuleKey], loaded: &[RuleKey]) -> Option<String> {
    for (i, (want, got)) in expected.iter().zip(loaded).enumerate() {
        if !want.satisfied_by(got) {
            return Some(format!("rule #{i}: rendered {want}, cloudflared runs {got}"));
        }
    }
    if expected.len() != loaded.len() {
        return Some(format!("{} rules rendered, cloudflared runs {}", expected.len(), loaded.len()));
    }
    None
}

/// Brings a `service:` value to the form cloudflared reports it in: Go's `url.Parse` lowercases
/// the scheme, the hello-world aliases report as `hello_world`, an `http_status` code as the
/// number it is (`0404` as `404`), and the `ssh`, `rdp`, `smb` and
/// `tcp` services get their default port (`addPortIfMissing` in cloudflared's
/// `origin_service.go`). Applied to both sides, so it only needs to be idempotent.
pub fn normalize_service(service: &str) -> String {
    match service {
        "hello-world" | "helloworld" => return "hello_world".into(),
        _ => {}
    }
    // The code as `%d` of Go's `strconv.Atoi` reads it: `http_status:0404` is reported as 404.
    if let Some(code) = service.strip_prefix("http_status:") {
        let digits = code.strip_prefix(['+', '-']).unwrap_or(code);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = code.parse::<i64>() {
                return format!("http_status:{n}");
            }
        }
        return service.to_string();
    }
    let Some((scheme, rest)) = service.split_once("://") else {
        return service.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "ssh" => Some(22),
        "rdp" => Some(3389),
        "smb" => Some(445),
        "tcp" => Some(7864),
        _ => None,
    };
    let has_port = match rest.rfind(']') {
        // `[v6]` or `[v6]:port`
        Some(close) => rest[close..].contains(':'),
        None => rest.contains(':'),
    };
    match default_port {
        Some(port) if !has_port && !rest.is_empty() => format!("{scheme}://{rest}:{port}"),
        _ => format!("{scheme}://{rest}"),
    }
}

/// What one `GET /ready` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// 200: at least one edge connection is registered.
    Ready,
    /// Any other status (cloudflared says 503 while it has no connection or is draining).
    NotReady,
    /// Nothing answered: not started yet, exited, or restarting.
    Unreachable,
}

/// One probe of cloudflared's `/ready`.
pub async fn readiness(addr: SocketAddr, within: Duration) -> Readiness {
    match http_get(addr, "/ready", within).await {
        Ok((StatusCode::OK, _)) => Readiness::Ready,
        Ok(_) => Readiness::NotReady,
        Err(_) => Readiness::Unreachable,
    }
}

/// Polls `/ready` until it is 200 or `timeout` passes.
pub async fn wait_ready(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if readiness(addr, remaining(deadline)).await == Readiness::Ready {
            return true;
        }
        if Instant::now() + POLL_INTERVAL > deadline {
            return false;
        }
        sleep(POLL_INTERVAL).await;
    }
}

/// A plain HTTP/1.1 GET on a fresh connection (the metrics server is local and polled rarely,
/// so there is nothing to gain from pooling), bounded by `within`.
pub async fn http_get(addr: SocketAddr, path: &str, within: Duration) -> Result<(StatusCode, Bytes), String> {
    let cap = if path == "/config" { CONFIG_REQUEST_TIMEOUT } else { REQUEST_TIMEOUT };
    let within = within.min(cap).max(Duration::from_millis(50));
    let request = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {addr}: {e}"))?;
        let driver = tokio::spawn(connection);
        let request = Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("GET {path}: {e}"))?;
        driver.abort();
        Ok((status, body.to_bytes()))
    };
    timeout(within, request).await.map_err(|_| format!("GET http://{addr}{path} timed out"))?
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
