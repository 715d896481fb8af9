//! The Prometheus metrics of `run`, served as text on the admin server's `/metrics`.
//!
//! Every family is created here, once, and shared as `Arc<Metrics>`: the pipeline and the
//! manifests source update theirs, and the Kubernetes source and status writer update
//! [`Metrics::watch_events`] and [`Metrics::status_patches`]. Names carry the
//! `cloudflared_routes_` prefix; counters get OpenMetrics' `_total` suffix when encoded.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::reload::ReloadError;
use super::supervise::ChildExit;

/// `result` label: `ok`, or the name of what went wrong (an error variant name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

impl ResultLabel {
    pub fn new(result: impl Into<String>) -> Self {
        ResultLabel { result: result.into() }
    }
}

/// `outcome` label of the routes gauge: `accepted` or `rejected`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

/// `kind` label of watch events: the object kind for the Kubernetes source (`HTTPRoute`,
/// `Service`, …), or the file that changed for files (`ManifestFile`, `CredentialsFile`,
/// `BaseConfig`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

impl KindLabel {
    pub fn new(kind: impl Into<String>) -> Self {
        KindLabel { kind: kind.into() }
    }
}

/// `expected` label of the child exits counter: `true` for a child cloudflared-routes stopped,
/// `false` for one that ended on its own.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExpectedLabel {
    pub expected: String,
}

/// The `result` values of the renders counter (`panic`: the render task itself failed).
pub const RENDER_RESULTS: &[&str] = &["ok", "invalid", "panic"];

/// `reason` label of the admin server's dropped connections: `timeout` (no complete request
/// head within the header timeout, or open past the connection limit) or `evicted` (closed to
/// make room under the connection cap).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// The `reason` values of [`Metrics::admin_connections_dropped`].
pub const ADMIN_DROP_REASONS: &[&str] = &["timeout", "evicted"];

/// The `result` values of the status writer (`status_writer::ResultHook`).
pub const STATUS_PATCH_RESULTS: &[&str] =
    &["applied", "unchanged", "not_found", "conflict", "timeout", "error"];

pub struct Metrics {
    registry: Registry,
    /// Renders (translate + render + validate), by result ([`RENDER_RESULTS`]): `ok`, `invalid`
    /// (cloudflared would refuse the result: nothing written), `panic`.
    pub renders: Family<ResultLabel, Counter>,
    /// Seconds spent in translate + render + validate.
    pub render_duration: Histogram,
    /// Times `config.yml` was replaced, and the bytes written.
    pub config_writes: Counter,
    pub config_write_bytes: Counter,
    /// Writes that failed (disk full, permissions): the old file stays.
    pub config_write_errors: Counter,
    /// Ingress rules in the last rendered config (catch-all and base config rules included).
    pub ingress_rules: Gauge,
    /// Routes of our Gateways in the last render, by `outcome`: `accepted` or `rejected`.
    pub routes: Family<OutcomeLabel, Gauge>,
    /// Reloads by result: `ok`, or the `ReloadError` variant (`NotReady`, `NoProcess`, …).
    pub reloads: Family<ResultLabel, Counter>,
    /// Unix time (seconds) of the last successful reload.
    pub last_reload_timestamp: Gauge,
    /// Verifications of cloudflared's `/config` by result: `ok` or `failed`.
    pub verifications: Family<ResultLabel, Counter>,
    /// Status writes by result ([`STATUS_PATCH_RESULTS`]: `applied`, `unchanged` for a no-op
    /// that sent no PATCH, …); the status writer increments it.
    pub status_patches: Family<ResultLabel, Counter>,
    /// Watch events by `kind`.
    pub watch_events: Family<KindLabel, Counter>,
    /// Objects or files the source could not read in its latest state (kept out or kept at
    /// their last good content).
    pub source_warnings: Gauge,
    /// `supervise` only ([`Metrics::supervising`]): cloudflared children that ended, by
    /// `expected` (`true`: stopped by us, `false`: on their own).
    pub child_exits: Family<ExpectedLabel, Counter>,
    /// `supervise` only: 1 while the serving child runs the config, 0 while none does (before
    /// the first one serves, and from its exit until a restarted one runs the config).
    pub child_serving: Gauge,
    /// Connections open on the admin server.
    pub admin_connections: Gauge,
    /// Admin connections the server closed before they were done, by `reason`
    /// ([`ADMIN_DROP_REASONS`]).
    pub admin_connections_dropped: Family<ReasonLabel, Counter>,
}

/// Counts one open admin connection for as long as it lives.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cloudflared_routes");
        let renders = Family::<ResultLabel, Counter>::default();
        registry.register("renders", "Renders of the config, by result", renders.clone());
        // 1 ms to ~16 s: 10,000 routes render in well under a second on one core.
        let render_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register_with_unit(
            "render_duration",
            "Time spent translating, rendering and validating the config",
            Unit::Seconds,
            render_duration.clone(),
        );
        let config_writes = Counter::default();
        registry.register("config_writes", "Times config.yml was replaced", config_writes.clone());
        let config_write_bytes = Counter::default();
        registry.register_with_unit(
            "config_write",
            "Bytes written to config.yml",
            Unit::Bytes,
            config_write_bytes.clone(),
        );
        let config_write_errors = Counter::default();
        registry.register(
            "config_write_errors",
            "Failed writes of config.yml (the previous file stays)",
            config_write_errors.clone(),
        );
        let ingress_rules = Gauge::default();
        registry.register(
            "ingress_rules",
            "Ingress rules in the last rendered config",
            ingress_rules.clone(),
        );
        let routes = Family::<OutcomeLabel, Gauge>::default();
        registry.register("routes", "Routes of our Gateways in the last render, by outcome", routes.clone());
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("reloads", "Reloads of cloudflared, by result", reloads.clone());
        let last_reload_timestamp = Gauge::default();
        registry.register_with_unit(
            "last_successful_reload_timestamp",
            "Unix time of the last successful reload of cloudflared",
            Unit::Seconds,
            last_reload_timestamp.clone(),
        );
        let verifications = Family::<ResultLabel, Counter>::default();
        registry.register(
            "verifications",
            "Checks that cloudflared's /config shows the rendered ingress, by result",
            verifications.clone(),
        );
        let status_patches = Family::<ResultLabel, Counter>::default();
        registry.register("status_patches", "Status patches, by result", status_patches.clone());
        let watch_events = Family::<KindLabel, Counter>::default();
        registry.register("watch_events", "Watch events received, by kind", watch_events.clone());
        let source_warnings = Gauge::default();
        registry.register(
            "source_warnings",
            "Objects or files the source could not read in its latest state",
            source_warnings.clone(),
        );
        let admin_connections = Gauge::default();
        registry.register(
            "admin_connections",
            "Connections open on the admin server",
            admin_connections.clone(),
        );
        let admin_connections_dropped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "admin_connections_dropped",
            "Admin server connections closed before they were done, by reason",
            admin_connections_dropped.clone(),
        );
        // Families without a series are not exposed at all, and a series that appears only with
        // its first event (at 1) hides that event from `increase()` and `rate()`, which need
        // two samples. So every known label value starts at zero, from the first scrape.
        for result in RENDER_RESULTS {
            let _ = renders.get_or_create(&ResultLabel::new(*result));
        }
        for result in std::iter::once("ok").chain(ReloadError::LABELS) {
            let _ = reloads.get_or_create(&ResultLabel::new(result));
        }
        for result in ["ok", "failed"] {
            let _ = verifications.get_or_create(&ResultLabel::new(result));
        }
        for result in STATUS_PATCH_RESULTS {
            let _ = status_patches.get_or_create(&ResultLabel::new(*result));
        }
        for reason in ADMIN_DROP_REASONS {
            let _ = admin_connections_dropped.get_or_create(&ReasonLabel { reason: reason.to_string() });
        }
        Metrics {
            registry,
            renders,
            render_duration,
            config_writes,
            config_write_bytes,
            config_write_errors,
            ingress_rules,
            routes,
            reloads,
            last_reload_timestamp,
            verifications,
            status_patches,
            watch_events,
            source_warnings,
            child_exits: Family::default(),
            child_serving: Gauge::default(),
            admin_connections,
            admin_connections_dropped,
        }
    }

    /// Registers the families of `--reload supervise`, where cloudflared-routes runs cloudflared
    /// itself, their series at zero. Without it they are not exposed: the other modes know
    /// nothing of cloudflared's process, and a series stuck at 0 would look like an outage.
    pub fn supervising(mut self) -> Metrics {
        self.registry.register(
            "child_exits",
            "cloudflared children that ended, by whether cloudflared-routes stopped them",
            self.child_exits.clone(),
        );
        self.registry.register(
            "child_serving",
            "1 while the supervised cloudflared serving the config runs it, else 0",
            self.child_serving.clone(),
        );
        for expected in ["true", "false"] {
            let _ = self.child_exits.get_or_create(&ExpectedLabel { expected: expected.to_string() });
        }
        self
    }

    pub fn child_exited(&self, how: ChildExit) {
        let expected = matches!(how, ChildExit::Stopped).to_string();
        self.child_exits.get_or_create(&ExpectedLabel { expected }).inc();
    }

    /// The OpenMetrics text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn watch_event(&self, kind: &str) {
        self.watch_events.get_or_create(&KindLabel::new(kind)).inc();
    }

    /// Starts the watch events series of `kinds` at zero: a source calls it with every kind it
    /// watches, before the first event, so that the first events count in `increase()`.
    pub fn watching<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) {
        for kind in kinds {
            let _ = self.watch_events.get_or_create(&KindLabel::new(kind));
        }
    }

    /// Counts an admin connection as open until the returned guard is dropped.
    pub fn admin_connection_opened(&self) -> OpenConnection {
        self.admin_connections.inc();
        OpenConnection(self.admin_connections.clone())
    }

    pub fn admin_connection_dropped(&self, reason: &str) {
        self.admin_connections_dropped.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
    }

    pub fn set_routes(&self, accepted: usize, rejected: usize) {
        let set = |outcome: &str, n: usize| {
            self.routes.get_or_create(&OutcomeLabel { outcome: outcome.to_string() }).set(n as i64);
        };
        set("accepted", accepted);
        set("rejected", rejected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value a counter's label can take is exposed at zero before anything happened:
    /// `increase()` ignores a series' first sample, so a series born at 1 would hide the first
    /// failure from the alerts of docs/metrics.md.
    #[test]
    fn every_label_value_of_a_counter_starts_at_zero() {
        let metrics = Metrics::new();
        metrics.watching(["HTTPRoute", "Service"]);
        let text = metrics.encode();
        let mut expected: Vec<String> = Vec::new();
        for result in RENDER_RESULTS {
            expected.push(format!("cloudflared_routes_renders_total{{result=\"{result}\"}} 0"));
        }
        for result in ["ok", "NotReady", "NoProcess", "Spawn", "Other"] {
            expected.push(format!("cloudflared_routes_reloads_total{{result=\"{result}\"}} 0"));
        }
        for result in ["ok", "failed"] {
            expected.push(format!("cloudflared_routes_verifications_total{{result=\"{result}\"}} 0"));
        }
        for result in STATUS_PATCH_RESULTS {
            expected.push(format!("cloudflared_routes_status_patches_total{{result=\"{result}\"}} 0"));
        }
        for kind in ["HTTPRoute", "Service"] {
            expected.push(format!("cloudflared_routes_watch_events_total{{kind=\"{kind}\"}} 0"));
        }
        let missing: Vec<&String> =
            expected.iter().filter(|line| !text.lines().any(|l| l == *line)).collect();
        assert!(missing.is_empty(), "not exposed at zero: {missing:#?}\n{text}");
    }

    #[test]
    fn the_families_of_supervise_exist_only_with_it_and_start_at_zero() {
        let other = Metrics::new().encode();
        assert!(!other.contains("child_"), "{other}");
        let metrics = Metrics::new().supervising();
        let text = metrics.encode();
        for line in [
            "cloudflared_routes_child_exits_total{expected=\"true\"} 0",
            "cloudflared_routes_child_exits_total{expected=\"false\"} 0",
            "cloudflared_routes_child_serving 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        metrics.child_exited(ChildExit::Unexpected);
        metrics.child_exited(ChildExit::Unexpected);
        metrics.child_exited(ChildExit::Stopped);
        let text = metrics.encode();
        assert!(text.contains("cloudflared_routes_child_exits_total{expected=\"false\"} 2"), "{text}");
        assert!(text.contains("cloudflared_routes_child_exits_total{expected=\"true\"} 1"), "{text}");
    }

    #[test]
    fn every_reload_error_has_its_label() {
        let errors = [
            ReloadError::NotReady(std::time::Duration::from_secs(1)),
            ReloadError::NoProcess(String::new()),
            ReloadError::Spawn(String::new()),
            ReloadError::Other(String::new()),
        ];
        let labels: Vec<&str> = errors.iter().map(ReloadError::label).collect();
        assert_eq!(labels, ReloadError::LABELS);
    }
}
