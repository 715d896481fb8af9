use serde_json::json;

use super::*;

const US: &str = "example.com/cloudflared";

fn gateway(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef { namespace: namespace.into(), name: name.into() }
}

fn entry(controller: &str, parent_ref: Value) -> Value {
    json!({"controllerName": controller, "parentRef": parent_ref, "conditions": []})
}

#[test]
fn without_a_selection_every_entry_with_our_controller_name_is_ours() {
    let all = Ownership::new(US, &[]);
    assert!(all.owns("apps", &entry(US, json!({"name": "tunnel"}))));
    assert!(all.owns("apps", &entry(US, json!({"namespace": "gone", "name": "deleted"}))));
    assert!(!all.owns("apps", &entry("other.example/controller", json!({"name": "tunnel"}))));
    assert!(!all.owns("apps", &json!({"parentRef": {"name": "tunnel"}})), "no controllerName");
}

#[test]
fn with_a_selection_only_entries_for_the_selected_gateways_are_ours() {
    let one = Ownership::new(US, &[gateway("infra", "a")]);
    let cases = [
        ("explicit namespace", entry(US, json!({"namespace": "infra", "name": "a"})), "apps", true),
        ("namespace defaults to the route's", entry(US, json!({"name": "a"})), "infra", true),
        ("defaulted to another namespace", entry(US, json!({"name": "a"})), "apps", false),
        (
            "group and kind written out",
            entry(US, json!({"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": "infra", "name": "a"})),
            "apps",
            true,
        ),
        ("another instance's Gateway", entry(US, json!({"namespace": "infra", "name": "b"})), "apps", false),
        (
            "not a Gateway",
            entry(US, json!({"kind": "Service", "namespace": "infra", "name": "a"})),
            "apps",
            false,
        ),
        (
            "another group",
            entry(US, json!({"group": "example.com", "namespace": "infra", "name": "a"})),
            "apps",
            false,
        ),
        ("no name", entry(US, json!({"namespace": "infra"})), "apps", false),
        ("another controller", entry("x/y", json!({"namespace": "infra", "name": "a"})), "apps", false),
    ];
    for (case, parent, route_namespace, owned) in cases {
        assert_eq!(one.owns(route_namespace, &parent), owned, "{case}");
    }
    let status = json!({"parents": [entry(US, json!({"namespace": "infra", "name": "b"}))]});
    assert!(!one.owns_any("apps", &status));
    assert!(Ownership::new(US, &[gateway("infra", "b")]).owns_any("apps", &status));
}

fn route(namespace: &str, name: &str, status: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"parentRefs": [{"name": "a", "namespace": "infra"}]},
        "status": status,
    }))
    .unwrap()
}

fn with_entry_for(gateway: &str) -> Value {
    json!({"parents": [entry(US, json!({"namespace": "infra", "name": gateway}))]})
}

fn names(owned: &OwnedRoutes) -> Vec<String> {
    owned.routes().into_iter().map(|(kind, ns, name)| format!("{kind} {ns}/{name}")).collect()
}

#[test]
fn the_watch_notes_routes_holding_our_entries() {
    let owned = OwnedRoutes::new(Ownership::new(US, &[gateway("infra", "a")]));
    owned.observe(RouteKind::Http, &Event::Apply(route("apps", "web", with_entry_for("a"))));
    owned.observe(RouteKind::Grpc, &Event::Apply(route("apps", "web", with_entry_for("a"))));
    owned.observe(RouteKind::Http, &Event::Apply(route("apps", "other", with_entry_for("b"))));
    owned.observe(RouteKind::Http, &Event::Apply(route("apps", "bare", Value::Null)));
    assert_eq!(names(&owned), ["HTTPRoute apps/web", "GRPCRoute apps/web"]);

    // Our entry retracted, then the route deleted.
    owned.observe(RouteKind::Http, &Event::Apply(route("apps", "web", json!({"parents": []}))));
    assert_eq!(names(&owned), ["GRPCRoute apps/web"]);
    owned.observe(RouteKind::Grpc, &Event::Delete(route("apps", "web", with_entry_for("a"))));
    assert!(names(&owned).is_empty());
}

#[test]
fn a_relist_is_swapped_in_whole_per_kind() {
    let owned = OwnedRoutes::new(Ownership::new(US, &[]));
    owned.observe(RouteKind::Http, &Event::Apply(route("apps", "deleted-meanwhile", with_entry_for("a"))));
    owned.observe(RouteKind::Grpc, &Event::Apply(route("apps", "grpc", with_entry_for("a"))));
    owned.observe(RouteKind::Http, &Event::Init);
    owned.observe(RouteKind::Http, &Event::InitApply(route("apps", "web", with_entry_for("a"))));
    owned.observe(RouteKind::Http, &Event::InitApply(route("apps", "bare", json!({}))));
    assert_eq!(
        names(&owned),
        ["HTTPRoute apps/deleted-meanwhile", "GRPCRoute apps/grpc"],
        "nothing changes before the list completes"
    );
    owned.observe(RouteKind::Http, &Event::InitDone);
    assert_eq!(names(&owned), ["HTTPRoute apps/web", "GRPCRoute apps/grpc"]);
}
