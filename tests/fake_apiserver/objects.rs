//! Objects as a user would write them (without the defaults the CRD schemas would add).

use serde_json::{json, Value};

pub const CONTROLLER: &str = "cloudflared-routes/gateway-controller";
pub const V1: &str = "gateway.networking.k8s.io/v1";

pub fn gateway_class(name: &str) -> Value {
    json!({"apiVersion": V1, "kind": "GatewayClass", "metadata": {"name": name},
           "spec": {"controllerName": CONTROLLER}})
}

/// One HTTP listener `http` for `*.example.com`, admitting routes from every namespace.
pub fn gateway(namespace: &str, name: &str, class: &str) -> Value {
    json!({"apiVersion": V1, "kind": "Gateway", "metadata": {"namespace": namespace, "name": name},
           "spec": {"gatewayClassName": class, "listeners": [{
               "name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
               "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
}

/// `host` + `PathPrefix path` → Service `backend` port 80, attached to Gateway infra/tunnel.
pub fn http_route(namespace: &str, name: &str, host: &str, path: &str, backend: &str) -> Value {
    json!({"apiVersion": V1, "kind": "HTTPRoute", "metadata": {"namespace": namespace, "name": name},
           "spec": {"parentRefs": [{"name": "tunnel", "namespace": "infra"}], "hostnames": [host],
                    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                               "backendRefs": [{"name": backend, "port": 80}]}]}})
}

pub fn grpc_route(namespace: &str, name: &str, host: &str, backend: &str) -> Value {
    json!({"apiVersion": V1, "kind": "GRPCRoute", "metadata": {"namespace": namespace, "name": name},
           "spec": {"parentRefs": [{"name": "tunnel", "namespace": "infra"}], "hostnames": [host],
                    "rules": [{"backendRefs": [{"name": backend, "port": 443}]}]}})
}

pub fn service(namespace: &str, name: &str, port: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": namespace, "name": name},
           "spec": {"ports": [{"name": "http", "port": port}]}})
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}})
}

/// A Gateway, its class, a namespace and a Service `web` for routes in `apps`.
pub fn base() -> Vec<Value> {
    vec![
        gateway_class("cloudflared"),
        gateway("infra", "tunnel", "cloudflared"),
        namespace("infra"),
        namespace("apps"),
        service("apps", "web", 80),
    ]
}
