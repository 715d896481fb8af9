//! Routing fixtures: Kubernetes manifests plus a `<name>.expect.yaml` table of requests and the
//! backend (or status) that must serve each one, checked through the cloudflared model.
//!
//! # The expectations format
//!
//! `tests/fixtures/<dir>/<name>.expect.yaml` (the fixture id is `<dir>/<name>`):
//!
//! ```yaml
//! description: what the fixture shows            # optional
//! manifests: [base.yaml, <name>.yaml]            # optional; this is the default. Paths are
//!                                                #   relative to this file (files or dirs)
//! namespace: gateway-conformance-infra           # default namespace of `name:port` backends
//! scheme: http                                   # scheme of backend services (default http)
//! origin_request: {http2Origin: true}            # optional: keys the served rule's effective
//!                                                #   originRequest must have when a backend
//!                                                #   serves (`false` = absent or false)
//! top_level: {metrics: 0.0.0.0:2000}             # optional: subset of the whole config
//! gateway: ns/name                               # optional: --gateway
//! args: [--base-config, examples/b.yml]          # optional extra CLI args, passed as written
//!                                                #   (the binary runs in the repository root)
//! requests:
//!   - {host: a.example.com, path: /x, expect: infra-backend-v1:8080}   # backend in `namespace`
//!   - {host: a.example.com, path: /y, expect: other-ns/svc:8080}       # backend elsewhere
//!   - {host: a.example.com, path: /z, expect: 404}                     # http_status:404
//!   - {host: a.example.com, path: /w, expect: hello_world}             # any literal service
//!   - {host: a.example.com, path: /v, expect: 404, rule_hostname: a.example.com}
//! ```
//!
//! `renders: [{gateway, args, origin_request, top_level, requests}, ...]` renders the same
//! manifests several times (one tunnel per Gateway, or other options); the top-level
//! `requests` are then checked in every rendering, besides each rendering's own (and a
//! top-level `gateway` is not allowed). A backend `ns/name:port` means the service
//! `<scheme>://name.ns.svc.cluster.local:port`; `rule_hostname` additionally pins the
//! `hostname` of the rule that serves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::cli;
use super::cloudflared::Model;

/// The conformance fixtures (`tests/fixtures/conformance`), as `test_name => "id"`. Passes the
/// list to the macro named by the caller, so every test file shares one list.
macro_rules! conformance_fixtures {
    ($callback:ident) => {
        $callback! {
            httproute_simple_same_namespace => "conformance/httproute-simple-same-namespace",
            httproute_exact_path_matching => "conformance/httproute-exact-path-matching",
            httproute_path_match_order => "conformance/httproute-path-match-order",
            httproute_matching => "conformance/httproute-matching",
            httproute_matching_across_routes => "conformance/httproute-matching-across-routes",
            httproute_hostname_intersection => "conformance/httproute-hostname-intersection",
            httproute_listener_hostname_matching => "conformance/httproute-listener-hostname-matching",
            gateway_http_listener_isolation => "conformance/gateway-http-listener-isolation",
            gateway_http_listener_isolation_with_hostname_intersection =>
                "conformance/gateway-http-listener-isolation-with-hostname-intersection",
            httproute_https_listener => "conformance/httproute-https-listener",
            httproute_multiple_gateways => "conformance/httproute-multiple-gateways",
            httproute_named_rule => "conformance/httproute-named-rule",
            httproute_omitted_backendrefs => "conformance/httproute-omitted-backendrefs",
            httproute_cross_namespace => "conformance/httproute-cross-namespace",
            httproute_reference_grant => "conformance/httproute-reference-grant",
            httproute_reference_grant_missing => "conformance/httproute-reference-grant-missing",
            httproute_invalid_reference_grant => "conformance/httproute-invalid-reference-grant",
            httproute_invalid_cross_namespace_backend_ref =>
                "conformance/httproute-invalid-cross-namespace-backend-ref",
            httproute_partially_invalid_via_invalid_reference_grant =>
                "conformance/httproute-partially-invalid-via-invalid-reference-grant",
            httproute_invalid_nonexistent_backendref => "conformance/httproute-invalid-nonexistent-backendref",
            httproute_invalid_backendref_unknown_kind =>
                "conformance/httproute-invalid-backendref-unknown-kind",
            httproute_header_matching_not_widened => "conformance/httproute-header-matching",
            httproute_method_matching_not_widened => "conformance/httproute-method-matching",
            httproute_query_param_matching_not_widened => "conformance/httproute-query-param-matching",
            grpcroute_exact_method_matching => "conformance/grpcroute-exact-method-matching",
            grpcroute_named_rule => "conformance/grpcroute-named-rule",
            grpcroute_listener_hostname_matching => "conformance/grpcroute-listener-hostname-matching",
            grpcroute_header_matching_not_widened => "conformance/grpcroute-header-matching",
            grpcroute_h2c_backend_unsupported => "conformance/grpcroute-h2c-backend",
        }
    };
}
pub(crate) use conformance_fixtures;

/// The GRPCRoute fixtures from the seed documentation page (`tests/fixtures/grpc`).
macro_rules! grpc_fixtures {
    ($callback:ident) => {
        $callback! {
            grpc_basic => "grpc/basic",
            grpc_service_routing => "grpc/service-routing",
            grpc_method_routing => "grpc/method-routing",
            grpc_method_routing_rules_reversed => "grpc/method-routing-reversed",
            grpc_cross_namespace_with_reference_grant => "grpc/cross-namespace",
            grpc_cross_namespace_without_reference_grant => "grpc/cross-namespace-no-grant",
            grpc_weights => "grpc/weights",
            grpc_multiple_hostnames => "grpc/multiple-hostnames",
        }
    };
}
pub(crate) use grpc_fixtures;

/// The `examples/` directory, rendered the way the README's quick start does.
macro_rules! example_fixtures {
    ($callback:ident) => {
        $callback! {
            examples_quick_start => "examples/quick-start",
        }
    };
}
pub(crate) use example_fixtures;

/// One `<name>.expect.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub manifests: Option<Vec<String>>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub origin_request: Option<Value>,
    #[serde(default)]
    pub top_level: Option<Value>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub requests: Vec<Request>,
    #[serde(default)]
    pub renders: Vec<RenderSpec>,
}

/// One rendering of the fixture's manifests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderSpec {
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub origin_request: Option<Value>,
    #[serde(default)]
    pub top_level: Option<Value>,
    #[serde(default)]
    pub requests: Vec<Request>,
}

/// One request and what must serve it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub host: String,
    pub path: String,
    pub expect: Value,
    #[serde(default)]
    pub rule_hostname: Option<String>,
}

/// A loaded fixture.
#[derive(Debug)]
pub struct Fixture {
    pub id: String,
    pub dir: PathBuf,
    pub spec: Spec,
}

/// One rendering to check: its label (for messages), its CLI args and its requests.
#[derive(Debug, Clone)]
pub struct Variant {
    pub label: String,
    pub args: Vec<String>,
    pub origin_request: Option<Value>,
    pub top_level: Option<Value>,
    pub requests: Vec<Request>,
}

/// A request's expectation, resolved to the exact `service:` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Status(u16),
    Backend(String),
    Literal(String),
}

impl Expected {
    pub fn service(&self) -> String {
        match self {
            Expected::Status(code) => format!("http_status:{code}"),
            Expected::Backend(s) | Expected::Literal(s) => s.clone(),
        }
    }
}

impl Fixture {
    pub fn load(id: &str) -> Fixture {
        let (dir, name) = id.rsplit_once('/').expect("fixture id is <dir>/<name>");
        let dir = cli::fixtures_dir().join(dir);
        let file = dir.join(format!("{name}.expect.yaml"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut spec: Spec = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: invalid expectations: {e}", file.display()));
        if spec.manifests.is_none() {
            spec.manifests = Some(vec!["base.yaml".into(), format!("{name}.yaml")]);
        }
        assert!(
            spec.renders.is_empty() || spec.gateway.is_none(),
            "{id}: with `renders`, name the gateway in each rendering"
        );
        Fixture { id: id.to_string(), dir, spec }
    }

    /// The manifest paths, absolute.
    pub fn manifest_paths(&self) -> Vec<PathBuf> {
        let manifests = self.spec.manifests.as_ref().expect("defaulted in load");
        manifests.iter().map(|m| self.dir.join(m)).collect()
    }

    pub fn variants(&self) -> Vec<Variant> {
        let renders = if self.spec.renders.is_empty() {
            vec![RenderSpec {
                gateway: self.spec.gateway.clone(),
                args: Vec::new(),
                origin_request: None,
                top_level: None,
                requests: Vec::new(),
            }]
        } else {
            self.spec.renders.clone()
        };
        renders
            .into_iter()
            .map(|r| {
                let mut args = self.spec.args.clone();
                args.extend(r.args.iter().cloned());
                if let Some(gw) = &r.gateway {
                    args.extend(["--gateway".to_string(), gw.clone()]);
                }
                let mut label = self.id.clone();
                if let Some(gw) = &r.gateway {
                    let _ = write!(label, " (gateway {gw})");
                }
                if !r.args.is_empty() {
                    let _ = write!(label, " [{}]", r.args.join(" "));
                }
                let mut requests = self.spec.requests.clone();
                requests.extend(r.requests);
                Variant {
                    label,
                    args,
                    origin_request: r.origin_request.or_else(|| self.spec.origin_request.clone()),
                    top_level: r.top_level.or_else(|| self.spec.top_level.clone()),
                    requests,
                }
            })
            .collect()
    }

    /// Renders one variant, with extra CLI args (e.g. `--tunnel-id`).
    pub fn render(&self, variant: &Variant, extra_args: &[&str]) -> String {
        self.render_paths(variant, extra_args, &self.manifest_paths())
    }

    /// Renders one variant from the given manifest paths.
    pub fn render_paths(&self, variant: &Variant, extra_args: &[&str], manifests: &[PathBuf]) -> String {
        let mut args: Vec<&str> = variant.args.iter().map(String::as_str).collect();
        args.extend_from_slice(extra_args);
        args.extend(manifests.iter().map(|p| p.to_str().expect("UTF-8 path")));
        cli::render(&args)
    }

    /// What a request must be served by.
    pub fn expected(&self, request: &Request) -> Expected {
        match &request.expect {
            Value::Number(n) => {
                let code = n.as_u64().and_then(|c| u16::try_from(c).ok());
                Expected::Status(code.unwrap_or_else(|| panic!("{}: bad status {n}", self.id)))
            }
            Value::String(s) => {
                let shorthand =
                    Regex::new(r"^(?:([a-z0-9][a-z0-9-]*)/)?([a-z0-9][a-z0-9.-]*):([0-9]+)$").expect("regex");
                match shorthand.captures(s) {
                    Some(c) => {
                        let ns = c.get(1).map(|m| m.as_str()).or(self.spec.namespace.as_deref());
                        let ns = ns.unwrap_or_else(|| panic!("{}: {s} has no namespace", self.id));
                        let scheme = self.spec.scheme.as_deref().unwrap_or("http");
                        Expected::Backend(format!("{scheme}://{}.{ns}.svc.cluster.local:{}", &c[2], &c[3]))
                    }
                    None => Expected::Literal(s.clone()),
                }
            }
            other => panic!("{}: `expect` must be a status code or a string, not {other}", self.id),
        }
    }
}

/// `expected` is a subset of `actual`: objects key by key, everything else equal.
pub fn is_subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            e.iter().all(|(k, v)| a.get(k).is_some_and(|av| is_subset(v, av)))
        }
        _ => expected == actual,
    }
}

/// Renders every variant of a fixture, then checks that the same documents in reverse order
/// render the same bytes, that the config passes cloudflared's rules (the model and
/// `cloudflared-routes validate`), and every request against the expectations. All failures
/// are reported together, each naming the fixture, host, path and the served rule.
pub fn check(id: &str) {
    let fixture = Fixture::load(id);
    let mut failures = Vec::new();
    let mut configs = String::new();
    for variant in fixture.variants() {
        if variant.requests.is_empty() {
            failures.push(format!("[{}] checks no request", variant.label));
        }
        let config = fixture.render(&variant, &[]);
        let _ = writeln!(configs, "--- rendered for {} ---\n{config}", variant.label);
        // "The same objects in any order give the same bytes."
        if let Some(reversed) = reversed_documents(&fixture.manifest_paths()) {
            let paths = [reversed.path().to_path_buf()];
            if fixture.render_paths(&variant, &[], &paths) != config {
                failures.push(format!(
                    "[{}] the same documents in reverse order render other bytes",
                    variant.label
                ));
            }
        }
        let model = Model::parse(&config);
        for e in &model.errors {
            failures.push(format!("[{}] cloudflared would refuse the config: {e}", variant.label));
        }
        let file = tempfile::Builder::new().suffix(".yml").tempfile().expect("tempfile");
        std::fs::write(file.path(), &config).expect("write config");
        if let Err(e) = cli::validate(file.path()) {
            failures.push(format!("[{}] `validate` refused the rendered config:\n{e}", variant.label));
        }
        if let Some(top) = &variant.top_level {
            if !is_subset(top, &model.config) {
                failures.push(format!("[{}] the config lacks top-level settings {top}", variant.label));
            }
        }
        for request in &variant.requests {
            if let Err(e) = check_request(&fixture, &variant, &model, request) {
                failures.push(e);
            }
        }
    }
    if !failures.is_empty() {
        panic!("fixture {id}: {} failure(s):\n  {}\n{configs}", failures.len(), failures.join("\n  "));
    }
}

fn check_request(
    fixture: &Fixture,
    variant: &Variant,
    model: &Model,
    request: &Request,
) -> Result<(), String> {
    let expected = fixture.expected(request);
    let served = model.serve(&request.host, &request.path);
    let what = format!(
        "[{}] host {} path {}: expected {} ({})",
        variant.label,
        request.host,
        request.path,
        request.expect,
        expected.service()
    );
    if served.service != expected.service() {
        return Err(format!("{what}, served by {}", model.describe(served.index)));
    }
    if let Some(h) = &request.rule_hostname {
        if model.rules[served.index].hostname.as_deref() != Some(h.as_str()) {
            return Err(format!(
                "{what} from a rule with hostname {h}, served by {}",
                model.describe(served.index)
            ));
        }
    }
    if let (Expected::Backend(_), Some(Value::Object(want))) = (&expected, &variant.origin_request) {
        let have = model.effective_origin_request(served.index);
        for (key, value) in want {
            let ok = match value {
                Value::Bool(false) => have.get(key).is_none_or(|v| v == &Value::Bool(false)),
                _ => have.get(key) == Some(value),
            };
            if !ok {
                return Err(format!(
                    "{what}: originRequest.{key} should be {value}, is {:?}; served by {}",
                    have.get(key),
                    model.describe(served.index)
                ));
            }
        }
    }
    Ok(())
}

/// All YAML documents of the manifest files, in reverse order, in one temporary file (`None`
/// when a manifest is a directory).
fn reversed_documents(manifests: &[PathBuf]) -> Option<tempfile::NamedTempFile> {
    let mut docs = Vec::new();
    for path in manifests {
        if path.is_dir() {
            return None;
        }
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut doc = String::new();
        for line in text.lines() {
            if line.trim_end() == "---" {
                docs.push(std::mem::take(&mut doc));
            } else {
                doc.push_str(line);
                doc.push('\n');
            }
        }
        docs.push(doc);
    }
    docs.retain(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    docs.reverse();
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().expect("tempfile");
    std::fs::write(file.path(), docs.join("---\n")).expect("write manifests");
    Some(file)
}

/// The ids of every `*.expect.yaml` under `tests/fixtures/<dir>`, sorted.
pub fn ids_on_disk(dir: &str) -> Vec<String> {
    let path: &Path = &cli::fixtures_dir().join(dir);
    let mut ids: Vec<String> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(format!("{dir}/{}", name.strip_suffix(".expect.yaml")?))
        })
        .collect();
    ids.sort();
    ids
}

/// Loads every fixture of a directory and resolves every expectation, without rendering: the
/// tables are well-formed and every listed manifest exists.
pub fn check_tables(dir: &str) {
    for id in ids_on_disk(dir) {
        let fixture = Fixture::load(&id);
        for path in fixture.manifest_paths() {
            assert!(path.exists(), "{id}: manifest {} does not exist", path.display());
        }
        for variant in fixture.variants() {
            assert!(!variant.requests.is_empty(), "[{}] checks no request", variant.label);
            for request in &variant.requests {
                fixture.expected(request);
            }
        }
    }
}
