//! The JSON side of a status write: what we compute, merged with what the object holds
//! (other controllers' route entries, the `lastTransitionTime` of conditions whose status did
//! not change), compared with it, and turned into a merge patch.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use routes_core::model::RouteKind;
use serde_json::{json, Map, Value};

use super::{Desired, Ownership};
use crate::status_yaml;

/// Now, to the second (`lastTransitionTime` has no finer precision).
pub(super) fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// The whole new `status` of an object: `current` (its `status`, or null) with our part
/// replaced by `want`, keeping route parents we do not own and unchanged conditions' times.
pub(super) fn merged_status(want: &Desired<'_>, current: &Value, ours: &Ownership, now: &Time) -> Value {
    let controller_name = ours.controller_name();
    // Compared field by field below with values that never hold nulls.
    let mut current = current.clone();
    strip_nulls(&mut current);
    match want {
        Desired::GatewayClass(c) => {
            let mut new = to_json(&status_yaml::gateway_class_status(c, now));
            keep_times(&mut new["conditions"], &current["conditions"]);
            new
        }
        Desired::Gateway(g) => {
            let mut new = to_json(&status_yaml::gateway_status(g, now));
            keep_times(&mut new["conditions"], &current["conditions"]);
            if let Some(listeners) = new.get_mut("listeners").and_then(Value::as_array_mut) {
                for listener in listeners {
                    let old = current["listeners"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|old| old["name"] == listener["name"]);
                    if let Some(old) = old {
                        keep_times(&mut listener["conditions"], &old["conditions"]);
                    }
                }
            }
            new
        }
        Desired::Route(r) => {
            let new = match r.route.kind {
                RouteKind::Http => to_json(&status_yaml::http_route_status(r, controller_name, now)),
                RouteKind::Grpc => to_json(&status_yaml::grpc_route_status(r, controller_name, now)),
            };
            let owned = |parent: &Value| ours.owns(r.route.namespace(), parent);
            let old_parents: Vec<&Value> = current["parents"].as_array().into_iter().flatten().collect();
            let mut parents: Vec<Value> =
                old_parents.iter().filter(|p| !owned(p)).map(|p| (*p).clone()).collect();
            for mut entry in new["parents"].as_array().cloned().unwrap_or_default() {
                let old = old_parents.iter().find(|old| owned(old) && old["parentRef"] == entry["parentRef"]);
                if let Some(old) = old {
                    keep_times(&mut entry["conditions"], &old["conditions"]);
                }
                parents.push(entry);
            }
            let mut status = current.as_object().cloned().unwrap_or_default();
            status.insert("parents".to_string(), Value::Array(parents));
            Value::Object(status)
        }
    }
}

/// `current` (the status of a route in `route_namespace`) without the parent entries we own:
/// the route no longer names our Gateways.
pub(super) fn retracted_status(current: &Value, ours: &Ownership, route_namespace: &str) -> Value {
    let mut status = current.as_object().cloned().unwrap_or_default();
    if let Some(Value::Array(parents)) = status.get_mut("parents") {
        parents.retain(|p| !ours.owns(route_namespace, p));
    }
    Value::Object(status)
}

/// Serialised without nulls: in a merge patch a null deletes, and the API server stores no
/// nulls, so comparisons with what it returns must not see them either.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Value {
    // Generated status structs have string keys and plain leaves: this cannot fail.
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    strip_nulls(&mut value);
    value
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Gives each condition of `new` the `lastTransitionTime` of the same-typed condition of `old`
/// when its status did not change, whatever its reason, message or observedGeneration:
/// metav1.Condition defines it as the time "the condition transitioned from one status to
/// another", and apimachinery's `meta.SetStatusCondition` changes it only with `status`.
fn keep_times(new: &mut Value, old: &Value) {
    let (Some(new), Some(old)) = (new.as_array_mut(), old.as_array()) else { return };
    for condition in new {
        let same = old.iter().find(|o| o["type"] == condition["type"] && o["status"] == condition["status"]);
        if let Some(time) = same.and_then(|o| o.get("lastTransitionTime")) {
            condition["lastTransitionTime"] = time.clone();
        }
    }
}

/// Equal up to the order of route parents (each controller appends its own entries) and nulls.
pub(super) fn same_status(current: &Value, merged: &Value) -> bool {
    normal(current) == normal(merged)
}

/// `status` as [`same_status`] compares it: no nulls, route parents in one order, none as `{}`.
pub(super) fn normal(status: &Value) -> Value {
    let mut status = status.clone();
    strip_nulls(&mut status);
    if let Some(Value::Array(parents)) = status.get_mut("parents") {
        parents.sort_by_cached_key(|p| p.to_string());
    }
    match status {
        Value::Null => Value::Object(Map::new()),
        other => other,
    }
}

/// The status of a Gateway no controller has taken, as the CRD's default gives a new one:
/// `Accepted` and `Programmed` `Unknown`, reason `Pending`, "Waiting for controller"; no
/// addresses, no listeners. What a Gateway that stops being ours is given back
/// (docs/status.md). A condition that was `Unknown` already keeps its time.
pub(super) fn released_gateway_status(current: &Value, now: &Time) -> Value {
    let waiting = |kind: &str| {
        json!({"type": kind, "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
               "lastTransitionTime": now})
    };
    let mut status = json!({"conditions": [waiting("Accepted"), waiting("Programmed")]});
    keep_times(&mut status["conditions"], &current["conditions"]);
    status
}

/// The merge patch turning `current` into `merged`: every key of `merged`, and a null for each
/// key of `current` that `merged` no longer has (e.g. `addresses` once the tunnel is unknown);
/// lists are replaced whole.
pub(super) fn patch_body(current: &Value, merged: Value, resource_version: &str) -> Value {
    let mut status = match merged {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in current.as_object().into_iter().flat_map(Map::keys) {
        status.entry(key.clone()).or_insert(Value::Null);
    }
    json!({ "metadata": { "resourceVersion": resource_version }, "status": status })
}
