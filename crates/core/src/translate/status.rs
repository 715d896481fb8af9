//! Route and Gateway status from the translation's outcomes (DOMAIN.md §5).

use std::sync::Arc;

use smallvec::{smallvec, SmallVec};

use crate::model::Route;
use crate::status::{
    Condition, ConditionStatus, GatewayStatus, ListenerStatus, RouteParentStatus, RouteStatus,
};

use super::attach::ParentOutcome;
use super::gateways::GatewayView;
use super::rules::RouteOut;
use super::{Reason, Settings};

/// `namespace` and `name` are the route's, shared with its rules.
pub(crate) fn route_status(
    route: &Route,
    namespace: &Arc<str>,
    name: &Arc<str>,
    outcomes: &[ParentOutcome<'_>],
    out: &RouteOut,
    all_rules_dropped: bool,
) -> RouteStatus {
    let generation = route.meta.generation;
    let dropped: Vec<String> = out.rejections.iter().map(|r| format!("{}: {}", r.field, r.message)).collect();
    let parents = outcomes
        .iter()
        .map(|outcome| {
            let accepted = match &outcome.result {
                Err((reason, message)) => Condition::new(
                    "Accepted",
                    ConditionStatus::False,
                    reason.as_str(),
                    message.clone(),
                    generation,
                ),
                Ok(_) if all_rules_dropped => Condition::new(
                    "Accepted",
                    ConditionStatus::False,
                    Reason::UnsupportedValue.as_str(),
                    format!("No rule can be expressed as a cloudflared ingress rule: {}", dropped.join("; ")),
                    generation,
                ),
                Ok(_) => Condition::new(
                    "Accepted",
                    ConditionStatus::True,
                    "Accepted",
                    "Route accepted",
                    generation,
                ),
            };
            let resolved = match out.unresolved.first() {
                None => Condition::new(
                    "ResolvedRefs",
                    ConditionStatus::True,
                    "ResolvedRefs",
                    "All references resolved",
                    generation,
                ),
                Some(first) => {
                    let all: Vec<String> =
                        out.unresolved.iter().map(|u| format!("{}: {}", u.field, u.why.message)).collect();
                    Condition::new(
                        "ResolvedRefs",
                        ConditionStatus::False,
                        first.why.reason.as_str(),
                        all.join("; "),
                        generation,
                    )
                }
            };
            let mut conditions: SmallVec<[Condition; 2]> = smallvec![accepted, resolved];
            if !dropped.is_empty() && !all_rules_dropped && outcome.result.is_ok() {
                conditions.push(Condition::new(
                    "PartiallyInvalid",
                    ConditionStatus::True,
                    Reason::UnsupportedValue.as_str(),
                    format!("Not rendered: {}", dropped.join("; ")),
                    generation,
                ));
            }
            RouteParentStatus { parent_ref: outcome.parent_ref.clone(), conditions }
        })
        .collect();
    RouteStatus {
        kind: route.kind,
        namespace: Arc::clone(namespace),
        name: Arc::clone(name),
        incarnation: route.meta.incarnation,
        generation,
        parents,
    }
}

/// Puts `items` in `order` in place: `items[k]` becomes the old `items[order[k]]`. `order`
/// must be a permutation of the indices. Each item is moved by one swap at most.
pub(crate) fn reorder<T>(items: &mut [T], order: &[u32]) {
    debug_assert_eq!(items.len(), order.len());
    // Where the item now at each index goes.
    let mut to = vec![0u32; order.len()];
    for (k, &from) in order.iter().enumerate() {
        to[from as usize] = k as u32;
    }
    for i in 0..items.len() {
        while to[i] as usize != i {
            let j = to[i] as usize;
            items.swap(i, j);
            to.swap(i, j);
        }
    }
}

pub(crate) fn gateway_status(g: &GatewayView<'_>, settings: &Settings) -> GatewayStatus {
    let generation = g.gateway.meta.generation;
    let accepted = match &g.rejected {
        None => Condition::new("Accepted", ConditionStatus::True, "Accepted", "Gateway accepted", generation),
        Some((reason, message)) => {
            Condition::new("Accepted", ConditionStatus::False, reason, message.clone(), generation)
        }
    };
    GatewayStatus {
        namespace: g.id.namespace.clone(),
        name: g.id.name.clone(),
        incarnation: g.gateway.meta.incarnation,
        generation,
        addresses: settings.tunnel_id.iter().map(|id| format!("{id}.cfargotunnel.com")).collect(),
        conditions: vec![accepted],
        listeners: g
            .listeners
            .iter()
            .map(|l| ListenerStatus {
                name: l.listener.name.clone(),
                supported_kinds: l.supported_kinds(),
                attached_routes: l.attached.get(),
                conditions: l.conditions(generation),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn reorder_puts_items_in_the_given_order(keys in proptest::collection::vec(0u16..1000, 0..300)) {
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            order.sort_by_key(|i| (keys[*i as usize], *i));
            let expected: Vec<(u16, u32)> = order.iter().map(|&i| (keys[i as usize], i)).collect();
            let mut items: Vec<(u16, u32)> = keys.iter().copied().zip(0..).collect();
            super::reorder(&mut items, &order);
            proptest::prop_assert_eq!(items, expected);
        }
    }
}
