use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use routes_core::ingress::RouteName;
use routes_core::model::{ObjectRef, ParentRef};
use routes_core::status::{Condition, ConditionStatus, ListenerStatus, RouteParentStatus};
use serde_json::json;

use super::*;
use crate::status_yaml;

const US: &str = "example.com/cloudflared";
const OLD: &str = "2020-01-01T00:00:00Z";

/// An instance rendering every Gateway of our classes.
fn all_gateways() -> Ownership {
    Ownership::new(US, &[])
}

fn time(text: &str) -> Time {
    status_yaml::parse_time(text).unwrap()
}

fn accepted(generation: i64) -> Condition {
    Condition::route_accepted(generation)
}

fn resolved(generation: i64) -> Condition {
    Condition::refs_resolved(generation)
}

fn route(generation: i64, conditions: Vec<Condition>) -> RouteStatus {
    RouteStatus {
        route: RouteName::new(RouteKind::Http, "apps", "web"),
        incarnation: 0,
        generation,
        parents: vec![RouteParentStatus {
            parent_ref: ParentRef {
                group: Some(GATEWAY_GROUP.into()),
                kind: Some("Gateway".into()),
                namespace: Some("infra".into()),
                name: "tunnel".into(),
                section_name: Some("https".into()),
                port: None,
            }
            .into(),
            conditions: conditions.into(),
        }]
        .into(),
    }
}

/// `status` as a GRPCRoute's of the same name.
fn as_grpc(mut status: RouteStatus) -> RouteStatus {
    status.route.kind = RouteKind::Grpc;
    status
}

fn foreign_parent() -> Value {
    json!({
        "controllerName": "other.example/controller",
        "parentRef": {"group": GATEWAY_GROUP, "kind": "Gateway", "name": "istio"},
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                        "observedGeneration": 1, "lastTransitionTime": OLD}],
    })
}

/// The status we would have written at `OLD`.
fn written_at_old(want: &RouteStatus) -> Value {
    to_json(&status_yaml::http_route_status(want, US, &time(OLD)))
}

#[test]
fn route_merge_keeps_foreign_parents_and_replaces_ours() {
    let want = route(3, vec![accepted(3), resolved(3)]);
    let mut stale = written_at_old(&route(2, vec![accepted(2)]));
    stale["parents"].as_array_mut().unwrap().insert(0, foreign_parent());
    let merged =
        merged_status(&Desired::Route(&want), &stale, &all_gateways(), &time("2026-01-01T00:00:00Z"));
    let parents = merged["parents"].as_array().unwrap();
    assert_eq!(parents.len(), 2, "{merged:#}");
    assert_eq!(parents[0], foreign_parent());
    let ours = &parents[1];
    assert_eq!(ours["controllerName"], US);
    assert_eq!(
        ours["parentRef"],
        json!({"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": "infra", "name": "tunnel",
               "sectionName": "https"})
    );
    let conditions = ours["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 2);
    for c in conditions {
        assert_eq!(c["observedGeneration"], 3, "{c}");
    }
    // Accepted stayed True through the new generation: no transition (metav1.Condition).
    assert_eq!(conditions[0]["lastTransitionTime"], OLD, "{}", conditions[0]);
    // ResolvedRefs is new.
    assert_eq!(conditions[1]["lastTransitionTime"], "2026-01-01T00:00:00Z", "{}", conditions[1]);
    assert!(!same_status(&stale, &merged));
}

#[test]
fn unchanged_conditions_keep_their_time_and_the_write_is_a_no_op() {
    let want = route(3, vec![accepted(3), resolved(3)]);
    let mut current = written_at_old(&want);
    current["parents"].as_array_mut().unwrap().push(foreign_parent());
    let merged =
        merged_status(&Desired::Route(&want), &current, &all_gateways(), &time("2026-01-01T00:00:00Z"));
    assert!(same_status(&current, &merged), "{current:#}\n{merged:#}");
}

#[test]
fn only_the_changed_condition_gets_a_new_time() {
    let current = written_at_old(&route(3, vec![accepted(3), resolved(3)]));
    let broken = Condition::new("ResolvedRefs", ConditionStatus::False, "BackendNotFound", "no web", 3);
    let merged = merged_status(
        &Desired::Route(&route(3, vec![accepted(3), broken])),
        &current,
        &all_gateways(),
        &time("2026-01-01T00:00:00Z"),
    );
    let conditions = &merged["parents"][0]["conditions"];
    assert_eq!(conditions[0]["lastTransitionTime"], OLD);
    assert_eq!(conditions[1]["lastTransitionTime"], "2026-01-01T00:00:00Z");
}

#[test]
fn a_parent_order_difference_alone_is_no_change() {
    let want = route(3, vec![accepted(3)]);
    let ours = written_at_old(&want)["parents"][0].clone();
    let current = json!({"parents": [ours, foreign_parent()]});
    let merged =
        merged_status(&Desired::Route(&want), &current, &all_gateways(), &time("2026-01-01T00:00:00Z"));
    assert_eq!(merged["parents"][0], foreign_parent(), "ours go after the others'");
    assert!(same_status(&current, &merged));
}

#[test]
fn retraction_removes_only_our_entries() {
    let mut current = written_at_old(&route(3, vec![accepted(3)]));
    current["parents"].as_array_mut().unwrap().push(foreign_parent());
    let retracted = retracted_status(&current, &all_gateways(), "apps");
    assert_eq!(retracted, json!({"parents": [foreign_parent()]}));
    assert!(same_status(&retracted, &retracted_status(&retracted, &all_gateways(), "apps")));
}

fn gateway(addresses: Vec<String>, programmed: ConditionStatus) -> GatewayStatus {
    let programmed = Condition::new("Programmed", programmed, "Programmed", "", 1);
    GatewayStatus {
        namespace: "infra".into(),
        name: "tunnel".into(),
        incarnation: 0,
        generation: 1,
        addresses,
        conditions: vec![accepted(1), programmed.clone()],
        listeners: vec![ListenerStatus {
            name: "https".into(),
            supported_kinds: vec![],
            attached_routes: 1,
            conditions: vec![accepted(1), programmed],
        }],
    }
}

#[test]
fn gateway_merge_keeps_times_per_listener_and_condition() {
    let before = gateway(vec!["t.cfargotunnel.com".into()], ConditionStatus::Unknown);
    let current = to_json(&status_yaml::gateway_status(&before, &time(OLD)));
    let after = gateway(vec!["t.cfargotunnel.com".into()], ConditionStatus::True);
    let merged =
        merged_status(&Desired::Gateway(&after), &current, &all_gateways(), &time("2026-01-01T00:00:00Z"));
    assert_eq!(merged["conditions"][0]["lastTransitionTime"], OLD, "Accepted did not change");
    assert_eq!(merged["conditions"][1]["lastTransitionTime"], "2026-01-01T00:00:00Z");
    assert_eq!(merged["listeners"][0]["conditions"][0]["lastTransitionTime"], OLD);
    assert_eq!(merged["listeners"][0]["conditions"][1]["lastTransitionTime"], "2026-01-01T00:00:00Z");
    assert_eq!(merged["addresses"], json!([{"type": "Hostname", "value": "t.cfargotunnel.com"}]));
}

#[test]
fn patch_deletes_keys_we_no_longer_write_and_carries_the_resource_version() {
    let with_address = gateway(vec!["t.cfargotunnel.com".into()], ConditionStatus::True);
    let current = to_json(&status_yaml::gateway_status(&with_address, &time(OLD)));
    let without = gateway(vec![], ConditionStatus::True);
    let merged = merged_status(&Desired::Gateway(&without), &current, &all_gateways(), &time(OLD));
    assert!(!same_status(&current, &merged));
    let body = patch_body(&current, merged, "42");
    assert_eq!(body["metadata"], json!({"resourceVersion": "42"}));
    assert_eq!(body["status"]["addresses"], Value::Null);
    assert!(body["status"].as_object().unwrap().contains_key("addresses"));
    assert!(body["status"]["conditions"].is_array());
}

#[test]
fn gateway_class_merge_writes_features_and_keeps_time() {
    let class = GatewayClassStatus {
        name: "cloudflared".into(),
        incarnation: 0,
        generation: 1,
        conditions: vec![accepted(1)],
        supported_features: vec!["GRPCRoute".into(), "HTTPRoute".into()],
    };
    let fresh = merged_status(&Desired::GatewayClass(&class), &Value::Null, &all_gateways(), &time(OLD));
    assert_eq!(fresh["supportedFeatures"], json!([{"name": "GRPCRoute"}, {"name": "HTTPRoute"}]));
    let again =
        merged_status(&Desired::GatewayClass(&class), &fresh, &all_gateways(), &time("2026-01-01T00:00:00Z"));
    assert!(same_status(&fresh, &again));
}

#[test]
fn an_empty_current_status_is_no_status() {
    assert!(same_status(&Value::Null, &json!({})));
    assert!(!same_status(&Value::Null, &json!({"parents": []})));
}

#[test]
fn targets_cover_every_object_once() {
    let statuses = Statuses {
        gateway_classes: vec![GatewayClassStatus {
            name: "c".into(),
            incarnation: 0,
            generation: 1,
            conditions: vec![],
            supported_features: vec![],
        }],
        gateways: vec![gateway(vec![], ConditionStatus::True)],
        routes: vec![route(1, vec![]), as_grpc(route(1, vec![]))],
    };
    let targets: Vec<String> = desired(&statuses).keys().map(ToString::to_string).collect();
    assert_eq!(
        targets,
        ["GatewayClass c", "Gateway infra/tunnel", "HTTPRoute apps/web", "GRPCRoute apps/web"]
    );
}

#[test]
fn the_fingerprint_changes_with_any_part_of_the_status() {
    let base = route(3, vec![accepted(3), resolved(3)]);
    let fingerprint = |r: &RouteStatus| Desired::Route(r).fingerprint();
    assert_eq!(fingerprint(&base), fingerprint(&base.clone()), "the same status, the same fingerprint");
    let mut message = vec![accepted(3), resolved(3)];
    message[1].message = "Service apps/web not found".into();
    let mut status = vec![accepted(3), resolved(3)];
    status[0].status = ConditionStatus::False;
    let mut parent = base.clone();
    std::sync::Arc::make_mut(&mut parent.parents[0].parent_ref).section_name = Some("http".into());
    let changed = [
        route(4, vec![accepted(4), resolved(4)]),
        route(3, message),
        route(3, status),
        parent,
        route(3, vec![resolved(3), accepted(3)]),
        route(3, vec![]),
    ];
    for other in &changed {
        assert_ne!(fingerprint(other), fingerprint(&base), "{other:?}");
    }
    // Another kind of object with the same fields is another status.
    let grpc = as_grpc(base.clone());
    assert_ne!(fingerprint(&grpc), fingerprint(&base));
}

#[test]
fn a_condition_keeps_its_time_while_its_status_stays() {
    let current = written_at_old(&route(3, vec![accepted(3), resolved(3)]));
    let cases = [
        ("new generation", route(4, vec![accepted(4), resolved(4)]), [OLD, OLD]),
        (
            "new message and reason, same status",
            route(
                3,
                vec![
                    Condition::new(
                        "Accepted",
                        ConditionStatus::True,
                        "Accepted",
                        "Accepted on 2 listeners",
                        3,
                    ),
                    resolved(3),
                ],
            ),
            [OLD, OLD],
        ),
        (
            "status changed",
            route(
                3,
                vec![
                    Condition::new("Accepted", ConditionStatus::False, "NotAllowedByListeners", "no", 3),
                    resolved(3),
                ],
            ),
            ["2026-01-01T00:00:00Z", OLD],
        ),
    ];
    for (case, want, times) in cases {
        let merged =
            merged_status(&Desired::Route(&want), &current, &all_gateways(), &time("2026-01-01T00:00:00Z"));
        let conditions = &merged["parents"][0]["conditions"];
        assert_eq!(
            [&conditions[0]["lastTransitionTime"], &conditions[1]["lastTransitionTime"]],
            times,
            "{case}"
        );
        // What did change is written.
        assert_eq!(conditions[0]["observedGeneration"], want.generation, "{case}");
        assert!(!same_status(&current, &merged), "{case}");
    }
}

fn gateway_ref(name: &str) -> ObjectRef {
    ObjectRef { namespace: "infra".into(), name: name.into() }
}

/// Route `apps/web` naming Gateways `infra/a` and `infra/b`, as the instance rendering only
/// `gateway` computes it (an entry for its own Gateway).
fn route_on(gateway: &str, message: &'static str) -> RouteStatus {
    let mut status =
        route(3, vec![Condition::new("Accepted", ConditionStatus::True, "Accepted", message, 3)]);
    let parent_ref = std::sync::Arc::make_mut(&mut status.parents[0].parent_ref);
    parent_ref.name = gateway.into();
    parent_ref.section_name = None;
    status
}

#[test]
fn instances_sharing_a_controller_name_keep_each_others_entries() {
    let (a, b) = (Ownership::new(US, &[gateway_ref("a")]), Ownership::new(US, &[gateway_ref("b")]));
    let now = time("2026-01-01T00:00:00Z");
    let (want_a, want_b) = (route_on("a", "via a"), route_on("b", "via b"));
    let mut status = json!({"parents": [foreign_parent()]});
    status = merged_status(&Desired::Route(&want_a), &status, &a, &now);
    status = merged_status(&Desired::Route(&want_b), &status, &b, &now);
    let gateways: Vec<&Value> =
        status["parents"].as_array().unwrap().iter().map(|p| &p["parentRef"]["name"]).collect();
    assert_eq!(gateways, ["istio", "a", "b"], "{status:#}");
    // Each writes again (a resync, a new leader): nothing to change, so no flapping.
    let again_a = merged_status(&Desired::Route(&want_a), &status, &a, &time("2027-01-01T00:00:00Z"));
    assert!(same_status(&status, &again_a), "{status:#}\n{again_a:#}");
    let again_b = merged_status(&Desired::Route(&want_b), &status, &b, &time("2027-01-01T00:00:00Z"));
    assert!(same_status(&status, &again_b), "{status:#}\n{again_b:#}");

    // A's route no longer names `infra/a`: A takes out its entry only.
    let retracted = retracted_status(&status, &a, "apps");
    let gateways: Vec<&Value> =
        retracted["parents"].as_array().unwrap().iter().map(|p| &p["parentRef"]["name"]).collect();
    assert_eq!(gateways, ["istio", "b"]);
    // Without a selection, every entry with our controller name is ours.
    assert_eq!(retracted_status(&status, &all_gateways(), "apps"), json!({"parents": [foreign_parent()]}));
}

/// A writer whose client is never called.
fn idle_writer(owned_routes: Option<OwnedRoutes>) -> Writer {
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = Client::try_from(config).unwrap();
    let opts = StatusWriterOptions { owned_routes, ..StatusWriterOptions::new(US) };
    Writer::new(client, opts)
}

#[tokio::test]
async fn a_replica_that_is_no_longer_leader_sends_nothing() {
    // Its client points at a closed port: any request would fail with a connection error.
    let writer = idle_writer(None);
    let (_tx, deposed) = watch::channel(false);
    let result = writer.write_object(&http("web"), Action::Retract, &deposed).await;
    assert!(matches!(result, Err(WriteError::NotLeader)), "{result:?}");
}

fn http(name: &str) -> Target {
    Target::Route { kind: RouteKind::Http, namespace: "apps".into(), name: name.into() }
}

#[tokio::test]
async fn a_resync_keeps_what_was_written_so_a_route_gone_meanwhile_is_still_retracted() {
    let mut writer = idle_writer(None);
    let gateway = Target::Gateway { namespace: "infra".into(), name: "tunnel".into() };
    writer.written.insert(http("web"), Some(1));
    writer.written.insert(gateway.clone(), Some(2));
    // The resync timer and a change that drops `apps/web` wake the writer together.
    writer.resync();
    assert_eq!(writer.written.get(&gateway), Some(&None), "read again at the next pass");
    let statuses = Statuses::default();
    assert_eq!(writer.to_retract(&desired(&statuses)), BTreeSet::from([http("web")]));
}

#[tokio::test]
async fn routes_seen_holding_our_entries_are_retracted_once_per_resync() {
    let owned = OwnedRoutes::new(Ownership::new(US, &[]));
    let mut writer = idle_writer(Some(owned.clone()));
    let entry =
        json!({"parents": [{"controllerName": US, "parentRef": {"name": "tunnel"}, "conditions": []}]});
    for name in ["web", "stale"] {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"namespace": "apps", "name": name}, "status": entry,
        }))
        .unwrap();
        owned.observe(RouteKind::Http, &kube::runtime::watcher::Event::Apply(object));
    }
    // A new term: nothing written yet, `apps/web` still computed, `apps/stale` no longer.
    let statuses = Statuses { routes: vec![route(3, vec![accepted(3)])], ..Statuses::default() };
    let desired = desired(&statuses);
    assert_eq!(writer.to_retract(&desired), BTreeSet::from([http("stale")]));
    // Retracted: not read again until the watch shows it, or the next resync.
    writer.retracted.insert(http("stale"));
    assert!(writer.to_retract(&desired).is_empty());
    writer.resync();
    assert_eq!(writer.to_retract(&desired), BTreeSet::from([http("stale")]));
}
