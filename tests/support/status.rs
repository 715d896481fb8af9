//! Reading the output of `cloudflared-routes status`: one YAML document per object we own, with
//! Gateway API status (`status.parents[].conditions[]` for routes, `status.listeners[]` and
//! `status.conditions[]` for Gateways).

use std::path::PathBuf;

use serde_json::Value;

use super::cli;

/// The status documents for a set of manifests.
pub struct Statuses {
    pub label: String,
    pub docs: Vec<Value>,
}

/// A condition as `(status, reason)`.
pub type Condition = (String, String);

impl Statuses {
    /// Runs `status` on manifests under `tests/fixtures` (`base.yaml` of that directory first).
    pub fn of_fixture(dir: &str, manifest: &str) -> Statuses {
        Self::of_fixture_with(dir, manifest, &[])
    }

    /// Runs `status` on files or directories (relative to the repository root).
    pub fn of_paths(label: &str, paths: &[&str]) -> Statuses {
        Statuses { label: label.to_string(), docs: cli::status(paths) }
    }

    /// Same as [`Self::of_fixture`], with options before the paths (`--tunnel-id`, ...).
    pub fn of_fixture_with(dir: &str, manifest: &str, options: &[&str]) -> Statuses {
        let root = cli::fixtures_dir().join(dir);
        let files: Vec<PathBuf> = vec![root.join("base.yaml"), root.join(manifest)];
        let mut args = options.to_vec();
        args.extend(files.iter().map(|p| p.to_str().expect("UTF-8 path")));
        Statuses { label: format!("{dir}/{manifest}"), docs: cli::status(&args) }
    }

    fn dump(&self) -> String {
        self.docs
            .iter()
            .map(|d| serde_json::to_string_pretty(d).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// The document of `kind namespace/name`; panics listing what exists.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| {
                // Cluster-scoped objects (GatewayClass) are looked up with namespace "".
                let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
                d["kind"] == kind && d["metadata"]["name"] == name && ns == namespace
            })
            .unwrap_or_else(|| {
                let have: Vec<String> = self
                    .docs
                    .iter()
                    .map(|d| {
                        format!("{} {}/{}", d["kind"], d["metadata"]["namespace"], d["metadata"]["name"])
                    })
                    .collect();
                panic!("[{}] no status for {kind} {namespace}/{name}; have: {have:?}", self.label)
            })
    }

    /// The `status.parents[]` entry of a route for a Gateway (and listener, when given).
    pub fn route_parent(
        &self,
        kind: &str,
        route: (&str, &str),
        gateway: &str,
        section: Option<&str>,
    ) -> &Value {
        let doc = self.object(kind, route.0, route.1);
        let parents = doc["status"]["parents"].as_array().map(Vec::as_slice).unwrap_or_default();
        parents
            .iter()
            .find(|p| {
                let r = &p["parentRef"];
                r["name"] == gateway && section.is_none_or(|s| r["sectionName"] == s)
            })
            .unwrap_or_else(|| {
                panic!(
                    "[{}] {kind} {}/{} has no parent entry for Gateway {gateway} section {section:?}:\n{}",
                    self.label,
                    route.0,
                    route.1,
                    serde_json::to_string_pretty(doc).unwrap_or_default()
                )
            })
    }

    /// A Gateway listener's status.
    pub fn listener(&self, namespace: &str, gateway: &str, listener: &str) -> &Value {
        let doc = self.object("Gateway", namespace, gateway);
        let listeners = doc["status"]["listeners"].as_array().map(Vec::as_slice).unwrap_or_default();
        listeners.iter().find(|l| l["name"] == listener).unwrap_or_else(|| {
            panic!(
                "[{}] Gateway {namespace}/{gateway} has no listener status {listener}:\n{}",
                self.label,
                serde_json::to_string_pretty(doc).unwrap_or_default()
            )
        })
    }

    /// Asserts a condition's status and (when given) reason on a status fragment.
    pub fn assert_condition(
        &self,
        what: &str,
        owner: &Value,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) {
        let found = condition(owner, type_);
        let ok = match &found {
            Some((s, r)) => s == status && reason.is_none_or(|want| r == want),
            None => false,
        };
        assert!(
            ok,
            "[{}] {what}: expected condition {type_}={status} reason {}, found {found:?} in\n{}\n--- all status ---\n{}",
            self.label,
            reason.unwrap_or("(any)"),
            serde_json::to_string_pretty(owner).unwrap_or_default(),
            self.dump()
        );
    }
}

/// The `(status, reason)` of condition `type_` in `owner.conditions[]`.
pub fn condition(owner: &Value, type_: &str) -> Option<Condition> {
    owner["conditions"].as_array()?.iter().find(|c| c["type"] == type_).map(|c| {
        (
            c["status"].as_str().unwrap_or_default().to_string(),
            c["reason"].as_str().unwrap_or_default().to_string(),
        )
    })
}

/// The kinds in a listener's `supportedKinds` (`[{group?, kind}]`).
pub fn supported_kinds(listener: &Value) -> Vec<String> {
    listener["supportedKinds"]
        .as_array()
        .map(|ks| ks.iter().filter_map(|k| k["kind"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}
