//! Table-driven tests of the translation, each named after the rule it pins (helpers here;
//! cases in `routing` and `backends`). Requests are answered by a small first-match model of cloudflared over the produced rules (host exact or
//! `*.` suffix, unanchored regex search on the path), the final catch-all being 404.

use super::*;
use crate::build::*;
use crate::model::Snapshot;

pub(super) const CTRL: &str = DEFAULT_CONTROLLER_NAME;

pub(super) fn base() -> Snapshot {
    Snapshot::default()
        .with_class(gateway_class("cf", CTRL))
        .with_gateway(gateway("infra", "gw", "cf").listener(listener("http").from_all()))
        .with_service(service("infra", "v1").port(8080))
        .with_service(service("infra", "v2").port(8080))
        .with_service(service("infra", "v3").port(8080))
}

pub(super) fn run(snapshot: &Snapshot) -> Translation {
    translate(snapshot, &Settings::default())
}

/// The service cloudflared would pick for `host` + `path` (first match; 404 when none).
pub(super) fn serve(t: &Translation, host: &str, path: &str) -> String {
    for rule in &t.rules {
        let host_ok = match rule.hostname() {
            None | Some("") | Some("*") => true,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => host.ends_with(suffix),
                None => h == host,
            },
        };
        let path_ok = rule.path().is_none_or(|p| regex::Regex::new(p).unwrap().is_match(path));
        if host_ok && path_ok {
            return short(rule.service());
        }
    }
    "404".to_string()
}

/// `http://v1.infra.svc.cluster.local:8080` → `v1`; `http_status:404` → `404`.
pub(super) fn short(service: &str) -> String {
    if let Some(code) = service.strip_prefix("http_status:") {
        return code.to_string();
    }
    let host = service.split("://").nth(1).unwrap_or(service);
    host.split('.').next().unwrap_or(host).to_string()
}

pub(super) fn check(name: &str, t: &Translation, requests: &[(&str, &str, &str)]) {
    for (host, path, expected) in requests {
        let got = serve(t, host, path);
        assert_eq!(
            got, *expected,
            "{name}: {host}{path} served by {got}, expected {expected}\nrules: {:#?}",
            t.rules
        );
    }
}

pub(super) fn parent_condition(t: &Translation, name: &str, type_: &str) -> crate::status::Condition {
    let route = t
        .statuses
        .routes
        .iter()
        .find(|r| *r.route.name() == *name)
        .unwrap_or_else(|| panic!("no status for {name}"));
    route.parents[0]
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("{name}: no {type_}"))
        .into_owned()
}

mod backends;
mod conflicts;
mod routing;
