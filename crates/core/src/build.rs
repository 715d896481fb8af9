//! Builders for snapshots, so that a test or a benchmark reads like the YAML it stands for:
//!
//! ```
//! use routes_core::build::*;
//! let route = http_route("default", "web")
//!     .parent("infra", "gw")
//!     .hostname("api.example.com")
//!     .rule(rule().prefix("/api").backend("api", 8080));
//! ```

use std::collections::BTreeMap;

use crate::model::*;

pub fn gateway_class(name: &str, controller: &str) -> GatewayClass {
    GatewayClass { meta: Meta::new("", name), controller_name: controller.to_string() }
}

pub fn gateway(namespace: &str, name: &str, class: &str) -> Gateway {
    Gateway {
        meta: Meta::new(namespace, name),
        class_name: class.to_string(),
        listeners: Vec::new(),
        requested_addresses: false,
    }
}

impl Gateway {
    pub fn listener(mut self, listener: Listener) -> Self {
        self.listeners.push(listener);
        self
    }
}

/// An HTTP listener on port 80 allowing routes from the Gateway's namespace.
pub fn listener(name: &str) -> Listener {
    Listener {
        name: name.to_string(),
        hostname: None,
        port: 80,
        protocol: "HTTP".to_string(),
        allowed_routes: AllowedRoutes::default(),
    }
}

impl Listener {
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostname = Some(hostname.to_string());
        self
    }
    pub fn port(mut self, port: i32) -> Self {
        self.port = port;
        self
    }
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocol = protocol.to_string();
        self
    }
    pub fn from_all(mut self) -> Self {
        self.allowed_routes.namespaces = RouteNamespaces::All;
        self
    }
    pub fn from_selector(mut self, key: &str, value: &str) -> Self {
        let selector = LabelSelector {
            match_labels: BTreeMap::from([(key.to_string(), value.to_string())]),
            match_expressions: vec![],
        };
        self.allowed_routes.namespaces = RouteNamespaces::Selector(selector);
        self
    }
    pub fn kinds(mut self, kinds: &[(&str, &str)]) -> Self {
        self.allowed_routes.kinds = Some(kinds.iter().map(|(g, k)| GroupKind::new(g, k)).collect());
        self
    }
}

pub fn http_route(namespace: &str, name: &str) -> Route {
    Route {
        kind: RouteKind::Http,
        meta: Meta::new(namespace, name),
        parent_refs: Default::default(),
        hostnames: Default::default(),
        rules: Vec::new(),
    }
}

pub fn grpc_route(namespace: &str, name: &str) -> Route {
    Route { kind: RouteKind::Grpc, ..http_route(namespace, name) }
}

impl Route {
    /// A parentRef to the whole Gateway `namespace/name`.
    pub fn parent(mut self, namespace: &str, name: &str) -> Self {
        self.parent_refs.push(ParentRef {
            namespace: Some(namespace.into()),
            name: name.into(),
            ..ParentRef::default()
        });
        self
    }
    /// A parentRef to one listener (`sectionName`).
    pub fn parent_section(mut self, namespace: &str, name: &str, section: &str) -> Self {
        self.parent_refs.push(ParentRef {
            namespace: Some(namespace.into()),
            name: name.into(),
            section_name: Some(section.into()),
            ..ParentRef::default()
        });
        self
    }
    pub fn parent_ref(mut self, parent_ref: ParentRef) -> Self {
        self.parent_refs.push(parent_ref);
        self
    }
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostnames.push(hostname.into());
        self
    }
    pub fn rule(mut self, rule: RouteRule) -> Self {
        // A rule built without matches gets the API default for the route's kind.
        let mut rule = rule;
        if rule.matches.is_empty() {
            rule.matches.push(match self.kind {
                RouteKind::Http => RouteMatch::Http(HttpMatch {
                    path: PathMatch::all(),
                    headers: 0,
                    query_params: 0,
                    method: None,
                }),
                RouteKind::Grpc => RouteMatch::Grpc(GrpcMatch::default()),
            });
        }
        self.rules.push(rule);
        self
    }
    pub fn created(mut self, seconds: i64) -> Self {
        self.meta.created = Some(seconds);
        self
    }
    pub fn generation(mut self, generation: i64) -> Self {
        self.meta.generation = generation;
        self
    }
}

pub fn rule() -> RouteRule {
    RouteRule::default()
}

fn http_match(kind: PathKind, value: &str) -> RouteMatch {
    RouteMatch::Http(HttpMatch {
        path: PathMatch { kind, value: value.into() },
        headers: 0,
        query_params: 0,
        method: None,
    })
}

impl RouteRule {
    pub fn prefix(mut self, value: &str) -> Self {
        self.matches.push(http_match(PathKind::PathPrefix, value));
        self
    }
    pub fn exact(mut self, value: &str) -> Self {
        self.matches.push(http_match(PathKind::Exact, value));
        self
    }
    pub fn regex(mut self, value: &str) -> Self {
        self.matches.push(http_match(PathKind::RegularExpression, value));
        self
    }
    /// A match with `headers` header conditions on `path` (a prefix).
    pub fn with_headers(mut self, path: &str, headers: u32) -> Self {
        self.matches.push(RouteMatch::Http(HttpMatch {
            path: PathMatch { kind: PathKind::PathPrefix, value: path.into() },
            headers,
            query_params: 0,
            method: None,
        }));
        self
    }
    pub fn with_method(mut self, path: &str, method: &str) -> Self {
        self.matches.push(RouteMatch::Http(HttpMatch {
            path: PathMatch { kind: PathKind::PathPrefix, value: path.into() },
            headers: 0,
            query_params: 0,
            method: Some(method.into()),
        }));
        self
    }
    /// A GRPCRoute match on service and/or method (Exact).
    pub fn grpc(mut self, service: Option<&str>, method: Option<&str>) -> Self {
        self.matches.push(RouteMatch::Grpc(GrpcMatch {
            method: Some(GrpcMethodMatch {
                kind: MethodKind::Exact,
                service: service.map(Into::into),
                method: method.map(Into::into),
            }),
            headers: 0,
        }));
        self
    }
    pub fn backend(mut self, name: &str, port: i32) -> Self {
        self.backends.push(BackendRef::service(name, port));
        self
    }
    pub fn backend_ref(mut self, backend: BackendRef) -> Self {
        self.backends.push(backend);
        self
    }
    pub fn filter(mut self, filter: Filter) -> Self {
        self.extras_mut().filters.push(filter);
        self
    }
    pub fn named(mut self, name: &str) -> Self {
        self.extras_mut().name = Some(name.to_string());
        self
    }
}

impl BackendRef {
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
    pub fn weight(mut self, weight: i32) -> Self {
        self.weight = weight;
        self
    }
}

pub fn service(namespace: &str, name: &str) -> Service {
    Service { meta: Meta::new(namespace, name), ports: Vec::new(), headless: false, external_name: false }
}

impl Service {
    pub fn port(mut self, port: i32) -> Self {
        self.ports.push(ServicePort { name: None, port, app_protocol: None, target_port: None });
        self
    }
    pub fn port_with(
        mut self,
        port: i32,
        name: Option<&str>,
        app_protocol: Option<&str>,
        target: Option<TargetPort>,
    ) -> Self {
        self.ports.push(ServicePort {
            name: name.map(str::to_string),
            port,
            app_protocol: app_protocol.map(str::to_string),
            target_port: target,
        });
        self
    }
    pub fn headless(mut self) -> Self {
        self.headless = true;
        self
    }
    pub fn external_name(mut self) -> Self {
        self.external_name = true;
        self
    }
}

pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    Namespace {
        name: name.to_string(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// A ReferenceGrant in `namespace` letting `from_kind`s of `from_namespace` reference Services
/// (all of them, or the one named).
pub fn reference_grant(
    namespace: &str,
    name: &str,
    from_kind: &str,
    from_namespace: &str,
    to_name: Option<&str>,
) -> ReferenceGrant {
    ReferenceGrant {
        meta: Meta::new(namespace, name),
        from: vec![GrantFrom {
            group: GATEWAY_GROUP.to_string(),
            kind: from_kind.to_string(),
            namespace: from_namespace.to_string(),
        }],
        to: vec![GrantTo {
            group: String::new(),
            kind: "Service".to_string(),
            name: to_name.map(str::to_string),
        }],
    }
}

impl Snapshot {
    pub fn with_class(mut self, class: GatewayClass) -> Self {
        self.gateway_classes.push(class);
        self
    }
    pub fn with_gateway(mut self, gateway: Gateway) -> Self {
        self.gateways.push(gateway);
        self
    }
    pub fn with_route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }
    pub fn with_service(mut self, service: Service) -> Self {
        self.services.push(service);
        self
    }
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespaces.push(namespace);
        self
    }
    pub fn with_grant(mut self, grant: ReferenceGrant) -> Self {
        self.reference_grants.push(grant);
        self
    }
}
