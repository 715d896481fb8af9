//! The kinds of object cloudflared-routes reads: from files (`manifests`) and from the API
//! server (`run::kube`, which adds how each is watched).

use routes_core::model::GATEWAY_GROUP;

/// The kinds we read, in the order their warnings are listed. Any served version is read
/// into the v1 types: the fields we read are the same in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    GatewayClass,
    Gateway,
    HttpRoute,
    GrpcRoute,
    ReferenceGrant,
    BackendTlsPolicy,
    Service,
    Namespace,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::GatewayClass,
        Kind::Gateway,
        Kind::HttpRoute,
        Kind::GrpcRoute,
        Kind::ReferenceGrant,
        Kind::BackendTlsPolicy,
        Kind::Service,
        Kind::Namespace,
    ];

    /// The kind of an object of API group `group` (empty: core) and kind `kind`, if we read it.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.group() == group && k.name() == kind)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::GatewayClass => "GatewayClass",
            Kind::Gateway => "Gateway",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
            Kind::BackendTlsPolicy => "BackendTLSPolicy",
            Kind::Service => "Service",
            Kind::Namespace => "Namespace",
        }
    }

    /// The API group (empty: core).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Service | Kind::Namespace => "",
            _ => GATEWAY_GROUP,
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::GatewayClass | Kind::Namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_found_by_its_group_and_name_only() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_group_kind(kind.group(), kind.name()), Some(kind));
            assert_eq!(Kind::from_group_kind("example.com", kind.name()), None, "{kind:?} in another group");
        }
        assert_eq!(Kind::from_group_kind("", "Secret"), None);
        assert_eq!(Kind::from_group_kind(GATEWAY_GROUP, "TCPRoute"), None);
    }
}
