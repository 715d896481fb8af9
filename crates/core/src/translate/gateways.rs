//! Which GatewayClasses and Gateways are ours, and what each listener accepts.

use crate::hostname::Hostname;
use crate::model::{
    Gateway, GatewayClass, GroupKind, Listener, ObjectRef, RouteKind, Snapshot, GATEWAY_GROUP,
};
use crate::status::{Condition, ConditionStatus, GatewayClassStatus};

use super::Settings;

/// Features of `GatewayClass.status.supportedFeatures`: only what we implement, sorted.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "GRPCRoute",
    "Gateway",
    "GatewayHTTPListenerIsolation",
    "HTTPRoute",
    "HTTPRouteHostRewrite",
    "HTTPRouteNamedRouteRule",
    "ReferenceGrant",
];

/// A Gateway we own, with its listeners checked.
pub(crate) struct GatewayView<'a> {
    pub gateway: &'a Gateway,
    pub id: ObjectRef,
    /// `None` when the Gateway is accepted; otherwise (reason, message).
    pub rejected: Option<(&'static str, String)>,
    pub listeners: Vec<ListenerView<'a>>,
}

pub(crate) struct ListenerView<'a> {
    pub listener: &'a Listener,
    pub hostname: Option<Hostname>,
    /// Route kinds this listener accepts (its `supportedKinds`).
    pub kinds: Vec<RouteKind>,
    /// Kinds listed in `allowedRoutes.kinds` that we do not serve.
    pub invalid_kinds: Vec<GroupKind>,
    /// `None` when accepted; otherwise (reason, message).
    pub rejected: Option<(&'static str, String)>,
    /// Routes attached and accepted (filled by the translation).
    pub attached: std::cell::Cell<i32>,
}

pub(crate) fn our_classes<'a>(snapshot: &'a Snapshot, settings: &Settings) -> Vec<&'a GatewayClass> {
    let mut classes: Vec<_> =
        snapshot.gateway_classes.iter().filter(|c| c.controller_name == settings.controller_name).collect();
    classes.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    classes
}

pub(crate) fn class_status(class: &GatewayClass) -> GatewayClassStatus {
    let generation = class.meta.generation;
    GatewayClassStatus {
        name: class.meta.name.to_string(),
        incarnation: class.meta.incarnation,
        generation,
        conditions: vec![Condition::new(
            "Accepted",
            ConditionStatus::True,
            "Accepted",
            "Handled by cloudflared-routes: Gateways of this class are rendered into a locally-managed cloudflared configuration",
            generation,
        )],
        supported_features: SUPPORTED_FEATURES.iter().map(|f| f.to_string()).collect(),
    }
}

/// The Gateways we render: of our classes, narrowed to `settings.gateways` when given, sorted.
pub(crate) fn our_gateways<'a>(
    snapshot: &'a Snapshot,
    classes: &[&GatewayClass],
    settings: &Settings,
) -> Vec<GatewayView<'a>> {
    let mut gateways: Vec<GatewayView<'a>> = snapshot
        .gateways
        .iter()
        .filter(|g| classes.iter().any(|c| c.meta.name == g.class_name))
        .map(|g| (ObjectRef { namespace: g.meta.namespace.to_string(), name: g.meta.name.to_string() }, g))
        .filter(|(id, _)| settings.gateways.is_empty() || settings.gateways.contains(id))
        .map(|(id, gateway)| view(gateway, id))
        .collect();
    gateways.sort_by(|a, b| a.id.cmp(&b.id));
    gateways
}

/// A note for each `--gateway` (`settings.gateways`) that is not rendered: a typo there would
/// otherwise leave the tunnel with no routes, and nothing saying why.
pub(crate) fn unrendered_selection(
    snapshot: &Snapshot,
    classes: &[&GatewayClass],
    settings: &Settings,
) -> Vec<String> {
    settings
        .gateways
        .iter()
        .filter_map(|id| {
            let found =
                snapshot.gateways.iter().find(|g| g.meta.namespace == id.namespace && g.meta.name == id.name);
            match found {
                None => Some(format!("--gateway {id}: no such Gateway")),
                Some(g) if !classes.iter().any(|c| c.meta.name == g.class_name) => Some(format!(
                    "--gateway {id}: its GatewayClass {:?} is not one with controllerName {:?}",
                    g.class_name, settings.controller_name
                )),
                Some(_) => None,
            }
        })
        .collect()
}

fn view(gateway: &Gateway, id: ObjectRef) -> GatewayView<'_> {
    let listeners: Vec<ListenerView<'_>> = gateway.listeners.iter().map(listener_view).collect();
    let rejected = if gateway.requested_addresses {
        Some((
            "UnsupportedAddress",
            "spec.addresses cannot be honoured: the Gateway's address is the tunnel's \
             <TunnelID>.cfargotunnel.com hostname"
                .to_string(),
        ))
    } else if !listeners.is_empty() && listeners.iter().all(|l| l.rejected.is_some()) {
        Some(("ListenersNotValid", "No listener is valid (see the listener conditions)".to_string()))
    } else {
        None
    };
    GatewayView { gateway, id, rejected, listeners }
}

fn listener_view(listener: &Listener) -> ListenerView<'_> {
    let http = matches!(listener.protocol.as_str(), "HTTP" | "HTTPS");
    let served = |gk: &GroupKind| {
        if gk.group != GATEWAY_GROUP {
            return None;
        }
        match gk.kind.as_str() {
            "HTTPRoute" => Some(RouteKind::Http),
            "GRPCRoute" => Some(RouteKind::Grpc),
            _ => None,
        }
    };
    let (mut kinds, invalid_kinds) = match (&listener.allowed_routes.kinds, http) {
        (_, false) => (Vec::new(), Vec::new()),
        (None, true) => (vec![RouteKind::Http, RouteKind::Grpc], Vec::new()),
        (Some(listed), true) => (
            listed.iter().filter_map(served).collect(),
            listed.iter().filter(|gk| served(gk).is_none()).cloned().collect(),
        ),
    };
    kinds.sort();
    kinds.dedup();
    let hostname = listener.hostname.as_deref().map(Hostname::parse);
    let rejected = if !http {
        Some((
            "UnsupportedProtocol",
            format!(
                "Protocol {:?} is not supported: a Cloudflare Tunnel serves HTTP and HTTPS (TLS ends at Cloudflare's edge)",
                listener.protocol
            ),
        ))
    } else if let Some(Err(e)) = &hostname {
        Some(("UnsupportedValue", format!("spec.listeners[{}].hostname: {e}", listener.name)))
    } else {
        None
    };
    ListenerView {
        listener,
        hostname: hostname.and_then(Result::ok),
        kinds,
        invalid_kinds,
        rejected,
        attached: std::cell::Cell::new(0),
    }
}

impl ListenerView<'_> {
    pub(crate) fn supported_kinds(&self) -> Vec<GroupKind> {
        self.kinds.iter().map(|k| GroupKind::new(GATEWAY_GROUP, k.kind())).collect()
    }

    /// Accepted and ResolvedRefs conditions (Programmed is set once cloudflared is checked).
    pub(crate) fn conditions(&self, generation: i64) -> Vec<Condition> {
        let accepted = match &self.rejected {
            None => {
                Condition::new("Accepted", ConditionStatus::True, "Accepted", "Listener accepted", generation)
            }
            Some((reason, message)) => {
                Condition::new("Accepted", ConditionStatus::False, reason, message.clone(), generation)
            }
        };
        let resolved = if self.invalid_kinds.is_empty() {
            Condition::refs_resolved(generation)
        } else {
            let names: Vec<String> =
                self.invalid_kinds.iter().map(|gk| format!("{}/{}", gk.group, gk.kind)).collect();
            Condition::new(
                "ResolvedRefs",
                ConditionStatus::False,
                "InvalidRouteKinds",
                format!("Route kinds not supported: {}; supported: HTTPRoute, GRPCRoute", names.join(", ")),
                generation,
            )
        };
        vec![accepted, resolved]
    }
}
