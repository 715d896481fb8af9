//! How YAML is read everywhere (manifests, the base config, rendered configs).
//!
//! serde-saphyr guards against hostile input with budgets whose defaults (250,000 nodes,
//! 1,024 documents) are below what real inputs reach: a rendered config of 10,000 routes has
//! some 300,000 nodes, and `kubectl get httproutes -A -o yaml` of a large cluster holds more
//! than that. cloudflared's own YAML reader has no such limits. The budget here still bounds
//! work and memory (about ten times the largest configuration we have measured), keeps the
//! nesting limit, and leaves alias limits at their defaults (the "billion laughs" guard).

/// Options for `serde_saphyr::from_str_with_options` and friends.
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 40_000_000,
            max_nodes: 10_000_000,
            max_documents: 1_000_000,
            max_total_scalar_bytes: 512 * 1024 * 1024,
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_configs_and_exports_fit_the_budget() {
        // 40,000 rules (10,000 routes of 4 rules): about 280,000 nodes, above the default 250,000.
        let mut text = String::from("ingress:\n");
        for i in 0..40_000 {
            text.push_str(&format!(
                "  - hostname: h{i}.example.com\n    path: ^/p{i}$\n    service: http://s:80\n"
            ));
        }
        text.push_str("  - service: http_status:404\n");
        let value: serde_json::Value = serde_saphyr::from_str_with_options(&text, super::options()).unwrap();
        assert_eq!(value["ingress"].as_array().unwrap().len(), 40_001);
        // More documents than the default 1,024.
        let docs = "a: 1\n---\n".repeat(5_000);
        let values: Vec<serde_json::Value> =
            serde_saphyr::from_multiple_with_options(&docs, super::options()).unwrap();
        assert!(values.len() >= 5_000);
    }
}
