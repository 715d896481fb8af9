//! Raw routes → the model ([`route`]): what the generated (standard-channel) types cannot
//! hold, an experimental filter or rule field, is set aside before decoding and reported on its
//! rule, so that the route is not lost for it.

use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use routes_core::model;

use super::{grpc_route, http_route};
use crate::decode::{decode, decode_listing_unknown, DecodeError};

/// A raw HTTPRoute or GRPCRoute (a JSON value, as read from a file or the API) → the model:
/// decoded into the generated types, with what they cannot hold still reported on its rule.
/// A filter of a type they do not know (the experimental channel's `ExternalAuth`) would fail
/// the whole decode, and the route would vanish without a status; it is taken out first and
/// put back as [`model::Filter::Other`] at its place, which drops its rule, as every filter
/// but a URLRewrite of the hostname does. Rule fields they do not know are marked too
/// ([`unknown_rule_fields`]).
pub fn route(kind: model::RouteKind, raw: serde_json::Value) -> Result<model::Route, DecodeError> {
    convert(kind, raw, false).map(|(route, _)| route)
}

/// [`route`], and the fields of the raw route the generated types do not know, but for those
/// it marks on their rule (a rule's or a match's, and anything in a rule that holds an unknown
/// filter: that rule is dropped anyway). kubectl refuses an object with unknown fields (strict
/// field validation), and reading files we do too: a typo such as `hostname:` for
/// `hostnames:` or `sectionname:` would otherwise widen the route to the whole listener. From
/// the API, which prunes what its CRDs do not know, [`route`] is enough.
pub fn route_listing_unknown(
    kind: model::RouteKind,
    raw: serde_json::Value,
) -> Result<(model::Route, Vec<String>), DecodeError> {
    convert(kind, raw, true)
}

fn convert(
    kind: model::RouteKind,
    mut raw: serde_json::Value,
    list_unknown: bool,
) -> Result<(model::Route, Vec<String>), DecodeError> {
    let unknown = take_unknown_filters(&mut raw, kind);
    // Read before the decode takes the value (no copy of the whole route is needed).
    let unknown_fields = unknown_rule_fields(&raw, kind);
    let (mut route, mut dropped) = match (kind, list_unknown) {
        (model::RouteKind::Http, false) => (http_route(&decode::<HttpRoute>(raw)?), Vec::new()),
        (model::RouteKind::Grpc, false) => (grpc_route(&decode::<GrpcRoute>(raw)?), Vec::new()),
        (model::RouteKind::Http, true) => {
            let (typed, dropped) = decode_listing_unknown::<HttpRoute>(raw)?;
            (http_route(&typed), dropped)
        }
        (model::RouteKind::Grpc, true) => {
            let (typed, dropped) = decode_listing_unknown::<GrpcRoute>(raw)?;
            (grpc_route(&typed), dropped)
        }
    };
    // What the rules report (and the rules an unknown filter drops) is not refused as well.
    let marked: std::collections::BTreeSet<String> = (unknown_fields.iter().enumerate())
        .flat_map(|(r, fields)| fields.iter().map(move |f| format!("spec.rules[{r}].{f}")))
        .collect();
    let filtered: std::collections::BTreeSet<usize> = (unknown.rule_filters.iter().map(|(r, _, _)| *r))
        .chain(unknown.backend_filters.iter().map(|(r, _, _)| *r))
        .collect();
    dropped.retain(|path| {
        !marked.contains(path) && !filtered.iter().any(|r| path.starts_with(&format!("spec.rules[{r}].")))
    });
    for (rule, fields) in route.rules.iter_mut().zip(unknown_fields).filter(|(_, f)| !f.is_empty()) {
        rule.extras_mut().unsupported_fields.extend(fields);
    }
    for (r, at, filter) in unknown.rule_filters {
        if let Some(rule) = route.rules.get_mut(r) {
            let filters = &mut rule.extras_mut().filters;
            filters.insert(at.min(filters.len()), model::Filter::Other(filter));
        }
    }
    for (r, b, count) in unknown.backend_filters {
        if let Some(backend) = route.rules.get_mut(r).and_then(|rule| rule.backends.get_mut(b)) {
            backend.filters = backend.filters.saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
        }
    }
    Ok((route, dropped))
}

/// Filter types of the generated (standard-channel) types.
const HTTP_FILTER_TYPES: &[&str] = &[
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
];
const GRPC_FILTER_TYPES: &[&str] =
    &["ResponseHeaderModifier", "RequestHeaderModifier", "RequestMirror", "ExtensionRef"];

/// What [`take_unknown_filters`] took out of a raw route.
#[derive(Default)]
struct UnknownFilters {
    /// (rule index, index in the rule's `filters`, type).
    rule_filters: Vec<(usize, usize, String)>,
    /// (rule index, backendRef index, how many).
    backend_filters: Vec<(usize, usize, usize)>,
}

fn take_unknown_filters(raw: &mut serde_json::Value, kind: model::RouteKind) -> UnknownFilters {
    let known = match kind {
        model::RouteKind::Http => HTTP_FILTER_TYPES,
        model::RouteKind::Grpc => GRPC_FILTER_TYPES,
    };
    // Removes the unknown filters of one list; (index, type) of each, in order.
    let take = |filters: &mut serde_json::Value| -> Vec<(usize, String)> {
        let Some(list) = filters.as_array_mut() else { return Vec::new() };
        let mut taken = Vec::new();
        let mut index = 0;
        list.retain(|f| {
            let kind = f.get("type").and_then(serde_json::Value::as_str);
            let keep = kind.is_none_or(|t| known.contains(&t));
            if !keep {
                taken.push((index, kind.unwrap_or_default().to_string()));
            }
            index += 1;
            keep
        });
        taken
    };
    let mut unknown = UnknownFilters::default();
    let Some(rules) = raw.pointer_mut("/spec/rules").and_then(serde_json::Value::as_array_mut) else {
        return unknown;
    };
    for (r, rule) in rules.iter_mut().enumerate() {
        if let Some(filters) = rule.get_mut("filters") {
            unknown.rule_filters.extend(take(filters).into_iter().map(|(at, t)| (r, at, t)));
        }
        let backends = rule.get_mut("backendRefs").and_then(serde_json::Value::as_array_mut);
        for (b, backend) in backends.into_iter().flatten().enumerate() {
            if let Some(filters) = backend.get_mut("filters") {
                let taken = take(filters).len();
                if taken > 0 {
                    unknown.backend_filters.push((r, b, taken));
                }
            }
        }
    }
    unknown
}

/// Rule fields of the generated (standard-channel) types; anything else in a raw rule was
/// dropped by deserialisation.
const HTTP_RULE_FIELDS: &[&str] = &["backendRefs", "filters", "matches", "name", "timeouts"];
const GRPC_RULE_FIELDS: &[&str] = &["backendRefs", "filters", "matches", "name"];

/// For each raw rule, its fields and its matches' fields the generated types do not know
/// (experimental `retry`, `sessionPersistence`, or a typo), to mark unsupported on the converted
/// route: deserialisation drops them silently, and a rule must not be served as if they were
/// absent.
fn unknown_rule_fields(raw: &serde_json::Value, kind: model::RouteKind) -> Vec<Vec<String>> {
    let known = match kind {
        model::RouteKind::Http => HTTP_RULE_FIELDS,
        model::RouteKind::Grpc => GRPC_RULE_FIELDS,
    };
    // A match's fields, and those of the object that narrows it: a typo there (`vlaue`,
    // `mehtod`) would leave the match wider than written (kubectl refuses such a manifest).
    let (match_fields, narrowing, narrowing_fields): (&[&str], &str, &[&str]) = match kind {
        model::RouteKind::Http => (&["path", "headers", "queryParams", "method"], "path", &["type", "value"]),
        model::RouteKind::Grpc => (&["method", "headers"], "method", &["type", "service", "method"]),
    };
    let Some(raw_rules) = raw.pointer("/spec/rules").and_then(serde_json::Value::as_array) else {
        return Vec::new();
    };
    let rule_fields = |raw_rule: &serde_json::Value| {
        let Some(raw_rule) = raw_rule.as_object() else { return Vec::new() };
        let mut unknown: Vec<_> = raw_rule.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
        unknown.sort();
        let raw_matches = raw_rule.get("matches").and_then(serde_json::Value::as_array);
        for (m, raw_match) in raw_matches.into_iter().flatten().enumerate() {
            let Some(raw_match) = raw_match.as_object() else { continue };
            let mut fields: Vec<String> = (raw_match.keys())
                .filter(|k| !match_fields.contains(&k.as_str()))
                .map(|k| format!("matches[{m}].{k}"))
                .collect();
            if let Some(inner) = raw_match.get(narrowing).and_then(serde_json::Value::as_object) {
                fields.extend(
                    (inner.keys())
                        .filter(|k| !narrowing_fields.contains(&k.as_str()))
                        .map(|k| format!("matches[{m}].{narrowing}.{k}")),
                );
            }
            fields.sort();
            unknown.extend(fields);
        }
        unknown
    };
    raw_rules.iter().map(rule_fields).collect()
}
