//! Lookups over a snapshot, built once per translation.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use crate::model::{BackendTlsPolicy, Namespace, ReferenceGrant, Service, Snapshot};

pub(crate) struct Index<'a> {
    namespaces: HashMap<&'a str, &'a Namespace>,
    /// (namespace, name) → the Service; of two with the same name, the later. Asked once per
    /// distinct backendRef ([`super::backends::Resolver`] remembers the answers).
    services: FxHashMap<(&'a str, &'a str), &'a Service>,
    grants: HashMap<&'a str, Vec<&'a ReferenceGrant>>,
    tls_policies: HashMap<&'a str, Vec<&'a BackendTlsPolicy>>,
    empty_labels: BTreeMap<String, String>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(snapshot: &'a Snapshot) -> Self {
        let mut grants: HashMap<&str, Vec<&ReferenceGrant>> = HashMap::new();
        for grant in &snapshot.reference_grants {
            grants.entry(grant.meta.namespace.as_str()).or_default().push(grant);
        }
        let mut tls_policies: HashMap<&str, Vec<&BackendTlsPolicy>> = HashMap::new();
        for policy in &snapshot.backend_tls_policies {
            tls_policies.entry(policy.meta.namespace.as_str()).or_default().push(policy);
        }
        Index {
            namespaces: snapshot.namespaces.iter().map(|n| (n.name.as_str(), n)).collect(),
            services: snapshot
                .services
                .iter()
                .map(|s| ((s.meta.namespace.as_str(), s.meta.name.as_str()), s))
                .collect(),
            grants,
            tls_policies,
            empty_labels: BTreeMap::new(),
        }
    }

    /// Labels of a namespace. A namespace that no object defines exists with no labels. The
    /// `kubernetes.io/metadata.name` label is always the namespace's name, as the API server
    /// sets it: a file cannot give namespace `evil` the label `apps` and so pass a listener's
    /// selector for `apps`.
    pub(crate) fn namespace_labels(&self, name: &str) -> std::borrow::Cow<'_, BTreeMap<String, String>> {
        let mut labels =
            std::borrow::Cow::Borrowed(self.namespaces.get(name).map_or(&self.empty_labels, |n| &n.labels));
        if labels.get("kubernetes.io/metadata.name").map(String::as_str) != Some(name) {
            labels.to_mut().insert("kubernetes.io/metadata.name".to_string(), name.to_string());
        }
        labels
    }

    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        self.services.get(&(namespace, name)).copied()
    }

    pub(crate) fn grants_in(&self, namespace: &str) -> &[&'a ReferenceGrant] {
        self.grants.get(namespace).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn tls_policies_in(&self, namespace: &str) -> &[&'a BackendTlsPolicy] {
        self.tls_policies.get(namespace).map_or(&[], Vec::as_slice)
    }
}
