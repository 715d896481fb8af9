//! Generated Gateway API and core types → the core's [`model`]: the only module that reads a
//! generated struct.
//!
//! Hand-written manifests lack the defaults the API server's CRD schema would fill in, so they
//! are applied here (DOMAIN.md §4 "Defaults the API server applies"); objects read from a
//! cluster already carry them, and applying a default twice changes nothing. Values are
//! otherwise kept as written: checking them is the translation's job, because a bad value is a
//! status condition, not a load error.

use gateway_api::backendtlspolicies::BackendTlsPolicy;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutes, GatewayListenersAllowedRoutesNamespacesFrom,
    GatewayListenersAllowedRoutesNamespacesSelector,
};
use gateway_api::grpcroutes::{
    GrpcRoute, GrpcRouteParentRefs, GrpcRouteRules, GrpcRouteRulesBackendRefs, GrpcRouteRulesFiltersType,
    GrpcRouteRulesMatches, GrpcRouteRulesMatchesMethodType,
};
use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
    HttpRouteRulesFiltersType, HttpRouteRulesMatches, HttpRouteRulesMatchesMethod,
    HttpRouteRulesMatchesPathType,
};
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use routes_core::model::{self, GATEWAY_GROUP};

#[path = "convert_raw.rs"]
mod raw;
pub use raw::{route, route_listing_unknown};

/// A converted object of any kind we read, before it takes its place in a [`model::Snapshot`]
/// (from the Kubernetes source's events, or a manifest file); equality decides whether an
/// event changed anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    GatewayClass(model::GatewayClass),
    Gateway(model::Gateway),
    Route(model::Route),
    ReferenceGrant(model::ReferenceGrant),
    BackendTlsPolicy(model::BackendTlsPolicy),
    Service(model::Service),
    Namespace(model::Namespace),
}

impl Object {
    /// Puts the object at `pos` of its vector of `snapshot` (replacing what is there), or at
    /// its end; where it is now.
    pub fn put_at(self, snapshot: &mut model::Snapshot, pos: Option<usize>) -> usize {
        fn put<T>(objects: &mut Vec<T>, pos: Option<usize>, object: T) -> usize {
            match pos {
                Some(pos) => {
                    objects[pos] = object;
                    pos
                }
                None => {
                    objects.push(object);
                    objects.len() - 1
                }
            }
        }
        match self {
            Object::GatewayClass(o) => put(&mut snapshot.gateway_classes, pos, o),
            Object::Gateway(o) => put(&mut snapshot.gateways, pos, o),
            Object::Route(o) => put(&mut snapshot.routes, pos, o),
            Object::ReferenceGrant(o) => put(&mut snapshot.reference_grants, pos, o),
            Object::BackendTlsPolicy(o) => put(&mut snapshot.backend_tls_policies, pos, o),
            Object::Service(o) => put(&mut snapshot.services, pos, o),
            Object::Namespace(o) => put(&mut snapshot.namespaces, pos, o),
        }
    }
}

/// Identity and bookkeeping. `creationTimestamp` becomes seconds since the epoch; a missing
/// `generation` (hand-written files) is 0.
pub fn meta(o: &ObjectMeta) -> model::Meta {
    model::Meta {
        namespace: o.namespace.as_deref().unwrap_or_default().into(),
        name: o.name.as_deref().unwrap_or_default().into(),
        generation: o.generation.unwrap_or(0),
        created: o.creation_timestamp.as_ref().map(|t| t.0.as_second()),
        incarnation: o.uid.as_deref().map_or(0, incarnation),
    }
}

/// [`model::Meta::incarnation`]: a hash of `metadata.uid`, never 0.
pub fn incarnation(uid: &str) -> u64 {
    use std::hash::BuildHasher;
    std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(uid).max(1)
}

pub fn gateway_class(o: &GatewayClass) -> model::GatewayClass {
    model::GatewayClass { meta: meta(&o.metadata), controller_name: o.spec.controller_name.clone() }
}

pub fn gateway(o: &Gateway) -> model::Gateway {
    model::Gateway {
        meta: meta(&o.metadata),
        class_name: o.spec.gateway_class_name.clone(),
        listeners: o.spec.listeners.iter().map(listener).collect(),
        requested_addresses: o.spec.addresses.as_ref().is_some_and(|a| !a.is_empty()),
    }
}

fn listener(l: &GatewayListeners) -> model::Listener {
    model::Listener {
        name: l.name.clone(),
        hostname: l.hostname.clone(),
        port: l.port,
        protocol: l.protocol.clone(),
        allowed_routes: l.allowed_routes.as_ref().map(allowed_routes).unwrap_or_default(),
    }
}

fn allowed_routes(a: &GatewayListenersAllowedRoutes) -> model::AllowedRoutes {
    use GatewayListenersAllowedRoutesNamespacesFrom as From;
    let namespaces = match a.namespaces.as_ref() {
        // `from` defaults to Same, both when `namespaces` is absent and when it is `{}`.
        None => model::RouteNamespaces::Same,
        Some(ns) => match (&ns.from, &ns.selector) {
            (None | Some(From::Same), _) => model::RouteNamespaces::Same,
            (Some(From::All), _) => model::RouteNamespaces::All,
            (Some(From::Selector), Some(selector)) => {
                model::RouteNamespaces::Selector(label_selector(selector))
            }
            // The API server rejects `from: Selector` without a selector ("Selector must be
            // specified when From is set to Selector"). Never widen: admit no namespace.
            (Some(From::Selector), None) => model::RouteNamespaces::Selector(match_nothing()),
        },
    };
    // "When unspecified or empty, the kinds of Routes selected are determined using the
    // Listener protocol": an empty list means the same as an absent one.
    let kinds = a.kinds.as_ref().filter(|k| !k.is_empty()).map(|kinds| {
        kinds
            .iter()
            .map(|k| model::GroupKind::new(k.group.as_deref().unwrap_or(GATEWAY_GROUP), &k.kind))
            .collect()
    });
    model::AllowedRoutes { namespaces, kinds }
}

fn label_selector(s: &GatewayListenersAllowedRoutesNamespacesSelector) -> model::LabelSelector {
    model::LabelSelector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        match_expressions: s
            .match_expressions
            .iter()
            .flatten()
            .map(|e| model::LabelRequirement {
                key: e.key.clone(),
                operator: e.operator.clone(),
                values: e.values.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

/// A selector no label set satisfies: `LabelSelector::matches` treats an unknown operator as
/// false, as the API server would have refused it.
fn match_nothing() -> model::LabelSelector {
    model::LabelSelector {
        match_labels: Default::default(),
        match_expressions: vec![model::LabelRequirement {
            key: String::new(),
            operator: "Invalid".to_string(),
            values: Vec::new(),
        }],
    }
}

pub fn http_route(o: &HttpRoute) -> model::Route {
    let rules = match &o.spec.rules {
        Some(rules) => rules.iter().map(http_rule).collect(),
        // CRD: `+kubebuilder:default={{matches: {{path: {type: "PathPrefix", value: "/"}}}}}`
        // on `spec.rules`: a route without rules has one rule matching every path and no
        // backends (which the translation answers with a 500).
        None => {
            vec![model::RouteRule { matches: std::iter::once(all_paths()).collect(), ..Default::default() }]
        }
    };
    model::Route {
        kind: model::RouteKind::Http,
        meta: meta(&o.metadata),
        parent_refs: each(&o.spec.parent_refs, http_parent_ref),
        hostnames: o.spec.hostnames.iter().flatten().map(|h| h.as_str().into()).collect(),
        rules,
    }
}

fn http_parent_ref(p: &HttpRouteParentRefs) -> model::ParentRef {
    parent_ref(&p.group, &p.kind, &p.namespace, &p.name, &p.section_name, p.port)
}

/// A parentRef with the defaults the CRD schema gives `group` (`gateway.networking.k8s.io`)
/// and `kind` (`Gateway`): status echoes the parentRef as the API server stored it.
fn parent_ref(
    group: &Option<String>,
    kind: &Option<String>,
    namespace: &Option<String>,
    name: &str,
    section_name: &Option<String>,
    port: Option<i32>,
) -> model::ParentRef {
    model::ParentRef {
        group: Some(model::name(group.as_deref().unwrap_or(model::GATEWAY_GROUP))),
        kind: Some(model::name(kind.as_deref().unwrap_or("Gateway"))),
        namespace: namespace.as_deref().map(Into::into),
        name: name.into(),
        section_name: section_name.as_deref().map(Into::into),
        port,
    }
}

fn http_rule(r: &HttpRouteRules) -> model::RouteRule {
    let mut matches: model::Matches = each(&r.matches, http_match);
    // "If no matches are specified, the default is a prefix path match on "/", which has the
    // effect of matching every HTTP request."
    if matches.is_empty() {
        matches.push(all_paths());
    }
    let mut unsupported_fields = Vec::new();
    if r.timeouts.is_some() {
        unsupported_fields.push("timeouts".to_string());
    }
    let extras = model::RuleExtras {
        name: r.name.clone(),
        filters: each(&r.filters, http_filter),
        unsupported_fields,
    };
    model::RouteRule::new(matches, each(&r.backend_refs, http_backend), extras)
}

fn all_paths() -> model::RouteMatch {
    model::RouteMatch::Http(model::HttpMatch {
        path: model::PathMatch::all(),
        headers: 0,
        query_params: 0,
        method: None,
    })
}

fn http_match(m: &HttpRouteRulesMatches) -> model::RouteMatch {
    // CRD: `path` defaults to `{type: PathPrefix, value: "/"}`, and inside it `type` defaults
    // to PathPrefix and `value` to "/".
    let path = match &m.path {
        None => model::PathMatch::all(),
        Some(p) => model::PathMatch {
            kind: match p.r#type {
                None | Some(HttpRouteRulesMatchesPathType::PathPrefix) => model::PathKind::PathPrefix,
                Some(HttpRouteRulesMatchesPathType::Exact) => model::PathKind::Exact,
                Some(HttpRouteRulesMatchesPathType::RegularExpression) => model::PathKind::RegularExpression,
            },
            value: p.value.as_deref().unwrap_or("/").into(),
        },
    };
    model::RouteMatch::Http(model::HttpMatch {
        path,
        headers: count(&m.headers),
        query_params: count(&m.query_params),
        method: m.method.as_ref().map(|method| http_method(method).into()),
    })
}

fn http_method(m: &HttpRouteRulesMatchesMethod) -> &'static str {
    use HttpRouteRulesMatchesMethod as M;
    match m {
        M::Get => "GET",
        M::Head => "HEAD",
        M::Post => "POST",
        M::Put => "PUT",
        M::Delete => "DELETE",
        M::Connect => "CONNECT",
        M::Options => "OPTIONS",
        M::Trace => "TRACE",
        M::Patch => "PATCH",
    }
}

fn http_filter(f: &HttpRouteRulesFilters) -> model::Filter {
    use HttpRouteRulesFiltersType as T;
    // Names as they appear in YAML, so status messages quote what the user wrote.
    let name = match f.r#type {
        T::UrlRewrite => {
            let rewrite = f.url_rewrite.as_ref();
            return model::Filter::UrlRewrite {
                hostname: rewrite.and_then(|r| r.hostname.clone()),
                rewrites_path: rewrite.is_some_and(|r| r.path.is_some()),
            };
        }
        T::RequestHeaderModifier => "RequestHeaderModifier",
        T::ResponseHeaderModifier => "ResponseHeaderModifier",
        T::RequestMirror => "RequestMirror",
        T::RequestRedirect => "RequestRedirect",
        T::ExtensionRef => "ExtensionRef",
        T::Cors => "CORS",
    };
    model::Filter::Other(name.to_string())
}

fn http_backend(b: &HttpRouteRulesBackendRefs) -> model::BackendRef {
    backend_ref(
        b.group.as_deref(),
        b.kind.as_deref(),
        &b.name,
        b.namespace.as_deref(),
        b.port,
        b.weight,
        count(&b.filters),
    )
}

/// backendRef defaults: group "" (the core group; "core" is accepted as a spelling of it),
/// kind Service, weight 1.
fn backend_ref(
    group: Option<&str>,
    kind: Option<&str>,
    name: &str,
    namespace: Option<&str>,
    port: Option<i32>,
    weight: Option<i32>,
    filters: u32,
) -> model::BackendRef {
    model::BackendRef {
        other_kind: None,
        name: name.into(),
        namespace: namespace.map(Into::into),
        port,
        weight: weight.unwrap_or(1),
        filters,
    }
    .with_kind(
        match group {
            None | Some("core") => "",
            Some(g) => g,
        },
        kind.unwrap_or("Service"),
    )
}

pub fn grpc_route(o: &GrpcRoute) -> model::Route {
    model::Route {
        kind: model::RouteKind::Grpc,
        meta: meta(&o.metadata),
        parent_refs: each(&o.spec.parent_refs, grpc_parent_ref),
        hostnames: o.spec.hostnames.iter().flatten().map(|h| h.as_str().into()).collect(),
        // Unlike HTTPRoute, GRPCRoute's `spec.rules` has no CRD default.
        rules: each(&o.spec.rules, grpc_rule),
    }
}

fn grpc_parent_ref(p: &GrpcRouteParentRefs) -> model::ParentRef {
    parent_ref(&p.group, &p.kind, &p.namespace, &p.name, &p.section_name, p.port)
}

/// How many conditions or filters a list holds: only whether there is any matters, so a count
/// past `u32::MAX` (which the API server's limits never allow) stays at it.
fn count<T>(list: &Option<Vec<T>>) -> u32 {
    list.as_ref().map_or(0, |l| u32::try_from(l.len()).unwrap_or(u32::MAX))
}

fn grpc_rule(r: &GrpcRouteRules) -> model::RouteRule {
    let mut matches: model::Matches = each(&r.matches, grpc_match);
    // "If no matches are specified, the implementation MUST match every gRPC request."
    if matches.is_empty() {
        matches.push(model::RouteMatch::Grpc(model::GrpcMatch { method: None, headers: 0 }));
    }
    let filters =
        r.filters.iter().flatten().map(|f| model::Filter::Other(grpc_filter_name(&f.r#type))).collect();
    let extras = model::RuleExtras { name: r.name.clone(), filters, unsupported_fields: Vec::new() };
    model::RouteRule::new(matches, each(&r.backend_refs, grpc_backend), extras)
}

fn grpc_match(m: &GrpcRouteRulesMatches) -> model::RouteMatch {
    let method = m.method.as_ref().map(|method| model::GrpcMethodMatch {
        // CRD: `type` defaults to Exact.
        kind: match method.r#type {
            None | Some(GrpcRouteRulesMatchesMethodType::Exact) => model::MethodKind::Exact,
            Some(GrpcRouteRulesMatchesMethodType::RegularExpression) => model::MethodKind::RegularExpression,
        },
        service: method.service.as_deref().map(Into::into),
        method: method.method.as_deref().map(Into::into),
    });
    model::RouteMatch::Grpc(model::GrpcMatch { method, headers: count(&m.headers) })
}

fn grpc_filter_name(t: &GrpcRouteRulesFiltersType) -> String {
    use GrpcRouteRulesFiltersType as T;
    match t {
        T::ResponseHeaderModifier => "ResponseHeaderModifier",
        T::RequestHeaderModifier => "RequestHeaderModifier",
        T::RequestMirror => "RequestMirror",
        T::ExtensionRef => "ExtensionRef",
    }
    .to_string()
}

fn grpc_backend(b: &GrpcRouteRulesBackendRefs) -> model::BackendRef {
    backend_ref(
        b.group.as_deref(),
        b.kind.as_deref(),
        &b.name,
        b.namespace.as_deref(),
        b.port,
        b.weight,
        count(&b.filters),
    )
}

pub fn reference_grant(o: &ReferenceGrant) -> model::ReferenceGrant {
    model::ReferenceGrant {
        meta: meta(&o.metadata),
        from: o
            .spec
            .from
            .iter()
            .map(|f| model::GrantFrom {
                group: f.group.clone(),
                kind: f.kind.clone(),
                namespace: f.namespace.clone(),
            })
            .collect(),
        to: o
            .spec
            .to
            .iter()
            .map(|t| model::GrantTo { group: t.group.clone(), kind: t.kind.clone(), name: t.name.clone() })
            .collect(),
    }
}

pub fn service(o: &Service) -> model::Service {
    let spec = o.spec.as_ref();
    model::Service {
        meta: meta(&o.metadata),
        ports: spec
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| model::ServicePort {
                name: p.name.clone(),
                port: p.port,
                app_protocol: p.app_protocol.clone(),
                // The API server defaults `targetPort` to `port`.
                target_port: Some(match &p.target_port {
                    None => model::TargetPort::Number(p.port),
                    Some(IntOrString::Int(n)) => model::TargetPort::Number(*n),
                    Some(IntOrString::String(name)) => model::TargetPort::Name(name.clone()),
                }),
            })
            .collect(),
        headless: spec.and_then(|s| s.cluster_ip.as_deref()) == Some("None"),
        external_name: spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName"),
    }
}

pub fn namespace(o: &Namespace) -> model::Namespace {
    model::Namespace {
        name: o.metadata.name.clone().unwrap_or_default(),
        labels: o.metadata.labels.clone().unwrap_or_default(),
    }
}

pub fn backend_tls_policy(o: &BackendTlsPolicy) -> model::BackendTlsPolicy {
    model::BackendTlsPolicy {
        meta: meta(&o.metadata),
        targets: o
            .spec
            .target_refs
            .iter()
            .map(|t| model::PolicyTarget {
                group: t.group.clone(),
                kind: t.kind.clone(),
                name: t.name.clone(),
                section_name: t.section_name.clone(),
            })
            .collect(),
        hostname: o.spec.validation.hostname.clone(),
    }
}

/// Converts every element of an optional list. Collecting from the slice (not from a
/// flattened `Option`) sizes each vector exactly: with tens of thousands of rules, the spare
/// capacity of vectors grown from an unknown length was a third of the cached objects.
fn each<T, U, C: FromIterator<U>>(list: &Option<Vec<T>>, convert: impl Fn(&T) -> U) -> C {
    list.as_deref().unwrap_or_default().iter().map(convert).collect()
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
