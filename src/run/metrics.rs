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
    /// Renders (translate + render + validate), by result: `ok`, `invalid` (cloudflared would
    /// refuse the result: nothing written).
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
        // Families without a series are not exposed at all: start the usual series at zero so
        // that dashboards and alerts see every family from the first scrape.
        for result in ["ok", "invalid"] {
            let _ = renders.get_or_create(&ResultLabel::new(result));
        }
        let _ = reloads.get_or_create(&ResultLabel::new("ok"));
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
            admin_connections,
            admin_connections_dropped,
        }
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
