//! Computed statuses ([`routes_core::status`]) → Gateway API status objects.
//!
//! The per-object functions build the generated status structs, so the cluster runtime can
//! patch exactly these values; [`to_yaml`] prints them as one YAML document per object for the
//! offline command. Stamping `lastTransitionTime` is the caller's business: the same time goes
//! on every condition here, and keeping an unchanged condition's older time is the cluster
//! writer's job (DOMAIN.md §5).

use gateway_api::gatewayclasses::{GatewayClassStatus, GatewayClassStatusSupportedFeatures};
use gateway_api::gateways::{
    GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners, GatewayStatusListenersSupportedKinds,
};
use gateway_api::grpcroutes::{GrpcRouteStatus, GrpcRouteStatusParents, GrpcRouteStatusParentsParentRef};
use gateway_api::httproutes::{HttpRouteStatus, HttpRouteStatusParents, HttpRouteStatusParentsParentRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use routes_core::model::{ParentRef, RouteKind};
use routes_core::status::{self, RouteStatus, Statuses};
use serde::{Deserialize, Serialize};

/// `apiVersion` of every document we write.
const API_VERSION: &str = "gateway.networking.k8s.io/v1";

/// One object's status as a document: enough identity to find the object, and its status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDocument<S> {
    pub api_version: String,
    pub kind: String,
    pub metadata: StatusMetadata,
    pub status: S,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusMetadata {
    pub name: String,
    /// Absent for cluster-scoped objects (GatewayClass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub generation: i64,
}

/// Parses an RFC 3339 time (`2026-01-01T00:00:00Z`) for `lastTransitionTime`.
pub fn parse_time(text: &str) -> Result<Time, k8s_openapi::jiff::Error> {
    text.parse::<Timestamp>().map(Time)
}

/// Every status as YAML documents separated by `---`: GatewayClasses, Gateways, HTTPRoutes,
/// then GRPCRoutes, each list in the order given (the core sorts them).
///
/// `transition_time` is RFC 3339; an unparsable one is written as the Unix epoch, so callers
/// that take it from a user should check it with [`parse_time`] first.
pub fn to_yaml(statuses: &Statuses, controller_name: &str, transition_time: &str) -> String {
    let time = parse_time(transition_time).unwrap_or(Time(Timestamp::UNIX_EPOCH));
    let mut documents = Vec::new();
    for class in &statuses.gateway_classes {
        let status = gateway_class_status(class, &time);
        documents.push(render("GatewayClass", &class.name, None, class.generation, status));
    }
    for gateway in &statuses.gateways {
        let status = gateway_status(gateway, &time);
        documents.push(render(
            "Gateway",
            &gateway.name,
            Some(&gateway.namespace),
            gateway.generation,
            status,
        ));
    }
    for route in statuses.routes.iter().filter(|r| r.route.kind == RouteKind::Http) {
        let status = http_route_status(route, controller_name, &time);
        documents.push(render(
            "HTTPRoute",
            route.route.name(),
            Some(route.route.namespace()),
            route.generation,
            status,
        ));
    }
    for route in statuses.routes.iter().filter(|r| r.route.kind == RouteKind::Grpc) {
        let status = grpc_route_status(route, controller_name, &time);
        documents.push(render(
            "GRPCRoute",
            route.route.name(),
            Some(route.route.namespace()),
            route.generation,
            status,
        ));
    }
    documents.join("---\n")
}

fn render<S: Serialize>(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    generation: i64,
    status: S,
) -> String {
    let document = StatusDocument {
        api_version: API_VERSION.to_string(),
        kind: kind.to_string(),
        metadata: StatusMetadata {
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
            generation,
        },
        status,
    };
    // Plain structs with string keys and scalar leaves: serialising them cannot fail.
    let mut text = serde_saphyr::to_string(&document).expect("status documents serialise");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A condition with `lastTransitionTime` set to `time`.
pub fn condition(c: &status::Condition, time: &Time) -> Condition {
    Condition {
        type_: c.type_.to_string(),
        status: c.status.as_str().to_string(),
        reason: c.reason.to_string(),
        message: c.message.to_string(),
        observed_generation: Some(c.observed_generation),
        last_transition_time: time.clone(),
    }
}

fn conditions(cs: &[status::Condition], time: &Time) -> Vec<Condition> {
    cs.iter().map(|c| condition(c, time)).collect()
}

pub fn gateway_class_status(c: &status::GatewayClassStatus, time: &Time) -> GatewayClassStatus {
    let features: Vec<_> = c
        .supported_features
        .iter()
        .map(|name| GatewayClassStatusSupportedFeatures { name: name.clone() })
        .collect();
    GatewayClassStatus {
        conditions: Some(conditions(&c.conditions, time)),
        supported_features: (!features.is_empty()).then_some(features),
    }
}

pub fn gateway_status(g: &status::GatewayStatus, time: &Time) -> GatewayStatus {
    let addresses: Vec<_> = g
        .addresses
        .iter()
        .map(|a| GatewayStatusAddresses { r#type: Some("Hostname".to_string()), value: a.clone() })
        .collect();
    GatewayStatus {
        // Omitted rather than empty when the tunnel is unknown: an apply then removes stale ones.
        addresses: (!addresses.is_empty()).then_some(addresses),
        attached_listener_sets: None,
        conditions: Some(conditions(&g.conditions, time)),
        listeners: Some(
            g.listeners
                .iter()
                .map(|l| GatewayStatusListeners {
                    name: l.name.clone(),
                    attached_routes: l.attached_routes,
                    conditions: conditions(&l.conditions, time),
                    // The group is always written: absent means gateway.networking.k8s.io,
                    // which would misname a core-group kind.
                    supported_kinds: Some(
                        l.supported_kinds
                            .iter()
                            .map(|k| GatewayStatusListenersSupportedKinds {
                                group: Some(k.group.clone()),
                                kind: k.kind.clone(),
                            })
                            .collect(),
                    ),
                })
                .collect(),
        ),
    }
}

pub fn http_route_status(r: &RouteStatus, controller_name: &str, time: &Time) -> HttpRouteStatus {
    HttpRouteStatus {
        parents: r
            .parents
            .iter()
            .map(|p| {
                let ParentRef { group, kind, namespace, name, section_name, port } = &*p.parent_ref;
                HttpRouteStatusParents {
                    conditions: p.conditions.iter().map(|c| condition(&c, time)).collect(),
                    controller_name: controller_name.to_string(),
                    parent_ref: HttpRouteStatusParentsParentRef {
                        group: group.as_deref().map(String::from),
                        kind: kind.as_deref().map(String::from),
                        name: name.to_string(),
                        namespace: namespace.as_deref().map(String::from),
                        port: *port,
                        section_name: section_name.as_deref().map(String::from),
                    },
                }
            })
            .collect(),
    }
}

pub fn grpc_route_status(r: &RouteStatus, controller_name: &str, time: &Time) -> GrpcRouteStatus {
    GrpcRouteStatus {
        parents: r
            .parents
            .iter()
            .map(|p| {
                let ParentRef { group, kind, namespace, name, section_name, port } = &*p.parent_ref;
                GrpcRouteStatusParents {
                    conditions: p.conditions.iter().map(|c| condition(&c, time)).collect(),
                    controller_name: controller_name.to_string(),
                    parent_ref: GrpcRouteStatusParentsParentRef {
                        group: group.as_deref().map(String::from),
                        kind: kind.as_deref().map(String::from),
                        name: name.to_string(),
                        namespace: namespace.as_deref().map(String::from),
                        port: *port,
                        section_name: section_name.as_deref().map(String::from),
                    },
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routes_core::ingress::RouteName;
    use routes_core::model::{GroupKind, GATEWAY_GROUP};
    use routes_core::status::{
        ConditionStatus, GatewayClassStatus as CoreClass, GatewayStatus as CoreGateway, ListenerStatus,
        RouteParentStatus,
    };

    const TIME: &str = "2026-01-01T00:00:00Z";

    fn accepted(generation: i64) -> status::Condition {
        status::Condition::new(
            "Accepted",
            ConditionStatus::True,
            "Accepted",
            "Accepted: yes, on \"*\"",
            generation,
        )
    }

    fn sample() -> Statuses {
        let route = |kind, name: &str| RouteStatus {
            route: RouteName::new(kind, "apps", name),
            incarnation: 0,
            generation: 3,
            parents: vec![RouteParentStatus {
                parent_ref: ParentRef {
                    name: "tunnel".into(),
                    namespace: Some("infra".into()),
                    section_name: Some("https".into()),
                    ..Default::default()
                }
                .into(),
                conditions: vec![
                    accepted(3),
                    status::Condition::new("ResolvedRefs", ConditionStatus::False, "BackendNotFound", "", 3),
                ]
                .into(),
            }]
            .into(),
        };
        Statuses {
            gateway_classes: vec![CoreClass {
                name: "cloudflared".to_string(),
                incarnation: 0,
                generation: 1,
                conditions: vec![accepted(1)],
                supported_features: vec!["GRPCRoute".to_string(), "HTTPRoute".to_string()],
            }],
            gateways: vec![CoreGateway {
                namespace: "infra".to_string(),
                name: "tunnel".to_string(),
                incarnation: 0,
                generation: 2,
                addresses: vec!["6ff42ae2.cfargotunnel.com".to_string()],
                conditions: vec![accepted(2)],
                listeners: vec![ListenerStatus {
                    name: "https".to_string(),
                    supported_kinds: vec![GroupKind::new(GATEWAY_GROUP, "HTTPRoute")],
                    attached_routes: 2,
                    conditions: vec![accepted(2)],
                }],
            }],
            // Given out of kind order: the output still puts HTTPRoutes first.
            routes: vec![route(RouteKind::Grpc, "rpc"), route(RouteKind::Http, "web")],
        }
    }

    fn split(yaml: &str) -> Vec<&str> {
        yaml.split("---\n").collect()
    }

    #[test]
    fn status_yaml_round_trips_into_generated_types() {
        let statuses = sample();
        let yaml = to_yaml(&statuses, "example.com/cloudflared", TIME);
        let docs = split(&yaml);
        assert_eq!(docs.len(), 4, "{yaml}");
        let time = parse_time(TIME).unwrap();

        let class: StatusDocument<GatewayClassStatus> = serde_saphyr::from_str(docs[0]).unwrap();
        assert_eq!(class.kind, "GatewayClass");
        assert_eq!(
            class.metadata,
            StatusMetadata { name: "cloudflared".into(), namespace: None, generation: 1 }
        );
        assert_eq!(class.status, gateway_class_status(&statuses.gateway_classes[0], &time));

        let gateway: StatusDocument<GatewayStatus> = serde_saphyr::from_str(docs[1]).unwrap();
        assert_eq!(gateway.api_version, API_VERSION);
        assert_eq!(gateway.metadata.namespace.as_deref(), Some("infra"));
        assert_eq!(gateway.status, gateway_status(&statuses.gateways[0], &time));

        let http: StatusDocument<HttpRouteStatus> = serde_saphyr::from_str(docs[2]).unwrap();
        assert_eq!((http.kind.as_str(), http.metadata.name.as_str()), ("HTTPRoute", "web"));
        assert_eq!(http.status, http_route_status(&statuses.routes[1], "example.com/cloudflared", &time));

        let grpc: StatusDocument<GrpcRouteStatus> = serde_saphyr::from_str(docs[3]).unwrap();
        assert_eq!((grpc.kind.as_str(), grpc.metadata.name.as_str()), ("GRPCRoute", "rpc"));
        assert_eq!(grpc.status, grpc_route_status(&statuses.routes[0], "example.com/cloudflared", &time));
    }

    #[test]
    fn conditions_carry_time_generation_and_status_words() {
        let time = parse_time(TIME).unwrap();
        let c = condition(&accepted(7), &time);
        assert_eq!((c.status.as_str(), c.observed_generation), ("True", Some(7)));
        let yaml = to_yaml(&sample(), "c", TIME);
        assert!(yaml.contains("lastTransitionTime: 2026-01-01T00:00:00Z"), "{yaml}");
        // "True" must stay a string for YAML 1.1 readers.
        assert!(yaml.contains("status: \"True\""), "{yaml}");
    }

    #[test]
    fn parent_ref_is_echoed_as_written() {
        let statuses = sample();
        let status = http_route_status(&statuses.routes[1], "c", &parse_time(TIME).unwrap());
        let p = &status.parents[0];
        assert_eq!(p.controller_name, "c");
        assert_eq!(
            p.parent_ref,
            HttpRouteStatusParentsParentRef {
                name: "tunnel".into(),
                namespace: Some("infra".into()),
                section_name: Some("https".into()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn gateway_address_is_a_hostname_and_omitted_when_unknown() {
        let mut statuses = sample();
        let time = parse_time(TIME).unwrap();
        let status = gateway_status(&statuses.gateways[0], &time);
        let address = &status.addresses.as_ref().unwrap()[0];
        assert_eq!(
            (address.r#type.as_deref(), address.value.as_str()),
            (Some("Hostname"), "6ff42ae2.cfargotunnel.com")
        );
        statuses.gateways[0].addresses.clear();
        assert_eq!(gateway_status(&statuses.gateways[0], &time).addresses, None);
    }

    #[test]
    fn empty_statuses_give_empty_yaml() {
        assert_eq!(to_yaml(&Statuses::default(), "c", TIME), "");
    }

    #[test]
    fn unparsable_time_falls_back_to_epoch() {
        assert!(parse_time("yesterday").is_err());
        assert!(to_yaml(&sample(), "c", "yesterday").contains("lastTransitionTime: 1970-01-01T00:00:00Z"));
    }
}
