//! The snapshot: small domain types the translation works on.
//!
//! The binary converts the generated Gateway API and core types into these once, at the edge
//! (applying the defaults the API server would), so nothing below sees a generated struct.
//! Values are kept as the user wrote them (hostnames, paths, regexes): checking them is the
//! translation's job, because a bad value is a status condition, not a load error.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use compact_str::CompactString;
use smallvec::SmallVec;

/// Group of the Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A name, hostname or path of the snapshot: 24 bytes like a `String`, but up to 24 bytes of
/// text are kept inline (a longer one on the heap, as a `String` would). A snapshot holds
/// every route of the cluster, kept between translations, and each translation reads them
/// all: a short value in an allocation of its own is 32 bytes of heap more and, when the
/// routes were not made in the order the translation walks them (a cluster lists them by
/// name), a cache miss of its own; inline, it comes with the line that holds it. The price is
/// a few instructions per read (the pointer and length are chosen by the last byte).
pub type Text = CompactString;

/// Identity and bookkeeping every object carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Empty for cluster-scoped objects (GatewayClass, Namespace).
    pub namespace: Text,
    pub name: Text,
    /// `metadata.generation`; 0 when the manifest does not say (files written by hand).
    pub generation: i64,
    /// `metadata.creationTimestamp` as seconds since the Unix epoch. `None` (hand-written
    /// files) sorts after every known timestamp, so the name decides among such objects.
    pub created: Option<i64>,
    /// A hash of `metadata.uid` (0 when unknown, as in hand-written files): an object deleted
    /// and created again under its name is another object, with a status of its own. A hash,
    /// not the text: 8 bytes in every object and status instead of a string on the heap.
    pub incarnation: u64,
}

impl Meta {
    pub fn new(namespace: &str, name: &str) -> Self {
        Meta { namespace: namespace.into(), name: name.into(), generation: 0, created: None, incarnation: 0 }
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub fn key(&self) -> String {
        if self.namespace.is_empty() {
            self.name.to_string()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    /// The order of [`Meta::key`] strings, without building them: Gateway API breaks ties
    /// between routes "in alphabetical order by {namespace}/{name}", which is not the order of
    /// (namespace, name) pairs when one namespace starts another (`team-b/r` < `team/r`, as
    /// `-` < `/`).
    pub fn key_cmp(&self, other: &Meta) -> std::cmp::Ordering {
        if self.namespace == other.namespace {
            return self.name.cmp(&other.name);
        }
        fn key(m: &Meta) -> impl Iterator<Item = &u8> {
            let slash: &[u8] = if m.namespace.is_empty() { b"" } else { b"/" };
            m.namespace.as_bytes().iter().chain(slash).chain(m.name.as_bytes())
        }
        key(self).cmp(key(other))
    }
}

/// A group or kind name. Nearly every route names the same few (`Service`, the core group,
/// `gateway.networking.k8s.io`, `Gateway`): those are borrowed, not allocated for each
/// reference of each route.
pub type Name = std::borrow::Cow<'static, str>;

/// `value` as a [`Name`]: borrowed when it is one of the usual names.
pub fn name(value: &str) -> Name {
    match value {
        "" => Name::Borrowed(""),
        "Service" => Name::Borrowed("Service"),
        "Gateway" => Name::Borrowed("Gateway"),
        GATEWAY_GROUP => Name::Borrowed(GATEWAY_GROUP),
        other => Name::Owned(other.to_string()),
    }
}

/// A `namespace/name` pair naming a namespaced object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Everything the translation reads. Order of the vectors does not matter: the translation
/// sorts what reaches the output. Identities are unique within each vector (kind, namespace
/// and name), as in a cluster; the manifest loader keeps the last of duplicates.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub gateway_classes: Vec<GatewayClass>,
    pub gateways: Vec<Gateway>,
    pub routes: Vec<Route>,
    pub reference_grants: Vec<ReferenceGrant>,
    pub services: Vec<Service>,
    pub namespaces: Vec<Namespace>,
    pub backend_tls_policies: Vec<BackendTlsPolicy>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayClass {
    pub meta: Meta,
    pub controller_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub meta: Meta,
    pub class_name: String,
    pub listeners: Vec<Listener>,
    /// `spec.addresses` was set: a tunnel cannot take a requested address.
    pub requested_addresses: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// As written; checked by the translation.
    pub hostname: Option<String>,
    pub port: i32,
    pub protocol: String,
    pub allowed_routes: AllowedRoutes,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AllowedRoutes {
    pub namespaces: RouteNamespaces,
    /// `None`: the listener's default kinds for its protocol.
    pub kinds: Option<Vec<GroupKind>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RouteNamespaces {
    #[default]
    Same,
    All,
    Selector(LabelSelector),
}

/// A Kubernetes label selector (`matchLabels` AND `matchExpressions`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<LabelRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`; anything else never matches.
    pub operator: String,
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Kubernetes semantics: every `matchLabels` entry and every expression must hold; an
    /// unknown operator matches nothing (the API server would have refused it).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator.as_str() {
                    "In" => value.is_some_and(|v| req.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !req.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKind {
    /// Empty for the core group.
    pub group: String,
    pub kind: String,
}

impl GroupKind {
    pub fn new(group: &str, kind: &str) -> Self {
        GroupKind { group: group.to_string(), kind: kind.to_string() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    Http,
    Grpc,
}

impl RouteKind {
    /// The Kubernetes kind name, as used in status and ReferenceGrants.
    pub fn kind(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }
}

impl std::fmt::Display for RouteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// An HTTPRoute or a GRPCRoute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    pub meta: Meta,
    /// Inline when there is one, as there usually is (see [`RouteRule::matches`]).
    pub parent_refs: SmallVec<[ParentRef; 1]>,
    /// As written; checked by the translation.
    pub hostnames: SmallVec<[Text; 1]>,
    pub rules: Vec<RouteRule>,
}

/// A `spec.parentRefs[]` entry exactly as written (status echoes it back).
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct ParentRef {
    pub group: Option<Name>,
    pub kind: Option<Name>,
    // Shared: every route status repeats its parentRefs.
    pub namespace: Option<Arc<str>>,
    pub name: Arc<str>,
    pub section_name: Option<Arc<str>>,
    pub port: Option<i32>,
}

/// A rule's matches: inline when there is one.
pub type Matches = SmallVec<[RouteMatch; 1]>;
/// A rule's backendRefs: inline when there is one.
pub type Backends = SmallVec<[BackendRef; 1]>;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RouteRule {
    /// Never empty: the edge turns "no matches" into the API default (one match of all
    /// paths for HTTPRoute; one match without a method for GRPCRoute).
    ///
    /// Matches and backends are inline when there is one, as there usually is: a snapshot
    /// holds every route of the cluster, and each translation reads them all, so a separate
    /// allocation for each list is memory and, above all, a cache miss per rule.
    pub matches: Matches,
    pub backends: Backends,
    /// What most rules do not have, apart ([`RouteRule::extras_mut`]): `None` when it would be
    /// empty, so a rule takes 8 bytes for it instead of 72.
    pub extras: Option<Box<RuleExtras>>,
}

/// The parts of a [`RouteRule`] that most rules leave empty.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleExtras {
    pub name: Option<String>,
    pub filters: Vec<Filter>,
    /// Rule fields we cannot honour, by field name (e.g. `timeouts`): the rule is dropped.
    pub unsupported_fields: Vec<String>,
}

impl RuleExtras {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.filters.is_empty() && self.unsupported_fields.is_empty()
    }
}

impl RouteRule {
    pub fn new(matches: Matches, backends: Backends, extras: RuleExtras) -> Self {
        let extras = (!extras.is_empty()).then(|| Box::new(extras));
        RouteRule { matches, backends, extras }
    }

    /// `spec.rules[].name`.
    pub fn name(&self) -> Option<&str> {
        self.extras.as_ref().and_then(|e| e.name.as_deref())
    }

    pub fn filters(&self) -> &[Filter] {
        self.extras.as_ref().map_or(&[], |e| &e.filters)
    }

    /// Rule fields we cannot honour, by field name (e.g. `timeouts`): the rule is dropped.
    pub fn unsupported_fields(&self) -> &[String] {
        self.extras.as_ref().map_or(&[], |e| &e.unsupported_fields)
    }

    /// The extras, made when the rule has none. Add something to them: a rule holding empty
    /// extras is not equal to the same rule without.
    pub fn extras_mut(&mut self) -> &mut RuleExtras {
        self.extras.get_or_insert_with(Default::default)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteMatch {
    Http(HttpMatch),
    Grpc(GrpcMatch),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpMatch {
    pub path: PathMatch,
    /// Header, query and method conditions cannot be expressed by cloudflared: any of them
    /// makes the match unsupported. Only their presence is kept.
    pub headers: u32,
    pub query_params: u32,
    pub method: Option<Text>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathKind {
    Exact,
    PathPrefix,
    RegularExpression,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathMatch {
    pub kind: PathKind,
    pub value: Text,
}

impl PathMatch {
    /// The API default: `PathPrefix /`.
    pub fn all() -> Self {
        PathMatch { kind: PathKind::PathPrefix, value: Text::const_new("/") }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GrpcMatch {
    /// `None`: every method of every service.
    pub method: Option<GrpcMethodMatch>,
    pub headers: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MethodKind {
    Exact,
    RegularExpression,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcMethodMatch {
    pub kind: MethodKind,
    pub service: Option<Text>,
    pub method: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `URLRewrite`: only a hostname rewrite is expressible (`httpHostHeader`).
    UrlRewrite { hostname: Option<String>, rewrites_path: bool },
    /// Any other filter type, by its `type` name.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendRef {
    /// The group and kind when they are not the defaults, the core group's `Service`
    /// ([`BackendRef::with_kind`]); `None` for the defaults, as nearly every backendRef has.
    /// Apart, because a rule holds its backend inline and each translation reads every rule:
    /// 8 bytes of the rule instead of 48 for two names that almost never vary.
    pub other_kind: Option<Box<BackendKind>>,
    pub name: Text,
    pub namespace: Option<Text>,
    pub port: Option<i32>,
    /// 1 by default.
    pub weight: i32,
    /// Number of per-backend filters (none can be honoured).
    pub filters: u32,
}

/// A backendRef's group and kind, as written, when they are not the core `Service`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendKind {
    /// Empty for the core group.
    pub group: String,
    pub kind: String,
}

impl BackendRef {
    pub fn service(name: &str, port: i32) -> Self {
        BackendRef {
            other_kind: None,
            name: name.into(),
            namespace: None,
            port: Some(port),
            weight: 1,
            filters: 0,
        }
    }

    /// `self` naming `group` (empty for the core group) and `kind`: kept apart only when they
    /// are not the defaults, so that equal backendRefs are equal values.
    pub fn with_kind(mut self, group: &str, kind: &str) -> Self {
        self.other_kind = (!is_core_service(group, kind))
            .then(|| Box::new(BackendKind { group: group.to_string(), kind: kind.to_string() }));
        self
    }

    /// The group: empty for the core group (the default).
    pub fn group(&self) -> &str {
        self.other_kind.as_ref().map_or("", |k| &k.group)
    }

    /// The kind: `Service` by default.
    pub fn kind(&self) -> &str {
        self.other_kind.as_ref().map_or("Service", |k| &k.kind)
    }

    /// A core `Service`, the one kind of backend there is: true without reading further when
    /// the kind is not kept apart (also for a [`BackendKind`] of the defaults, made by hand).
    pub fn is_service(&self) -> bool {
        self.other_kind.as_ref().is_none_or(|k| is_core_service(&k.group, &k.kind))
    }
}

/// Whether `group` and `kind` name the core group's `Service`, the defaults of a backendRef.
fn is_core_service(group: &str, kind: &str) -> bool {
    group.is_empty() && kind == "Service"
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceGrant {
    pub meta: Meta,
    pub from: Vec<GrantFrom>,
    pub to: Vec<GrantTo>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantFrom {
    pub group: String,
    pub kind: String,
    pub namespace: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantTo {
    pub group: String,
    pub kind: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub meta: Meta,
    pub ports: Vec<ServicePort>,
    /// `spec.clusterIP: None`: DNS answers with pod addresses, so the target port is dialled.
    pub headless: bool,
    /// `spec.type: ExternalName`: its DNS name is an alias for a name of the author's choice,
    /// so it is never used as a backend (docs/limitations.md).
    pub external_name: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: i32,
    pub app_protocol: Option<String>,
    pub target_port: Option<TargetPort>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(i32),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A BackendTLSPolicy: its target Services (optionally one port by name) are dialled over TLS
/// with `validation.hostname` as SNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendTlsPolicy {
    pub meta: Meta,
    pub targets: Vec<PolicyTarget>,
    pub hostname: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyTarget {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub section_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_keeps_no_extras_when_it_has_none() {
        let matches: Matches = std::iter::once(RouteMatch::Grpc(GrpcMatch::default())).collect();
        let plain = RouteRule::new(matches.clone(), Backends::new(), RuleExtras::default());
        assert!(plain.extras.is_none(), "empty extras take no allocation");
        assert_eq!(plain, RouteRule { matches: matches.clone(), ..Default::default() });
        assert_eq!((plain.name(), plain.filters(), plain.unsupported_fields()), (None, &[][..], &[][..]));

        let extras = RuleExtras {
            name: Some("slow".into()),
            filters: Vec::new(),
            unsupported_fields: vec!["timeouts".into()],
        };
        let rule = RouteRule::new(matches, Backends::new(), extras);
        assert_eq!((rule.name(), rule.unsupported_fields()), (Some("slow"), &["timeouts".to_string()][..]));
        assert_ne!(rule, plain);
        // A large rule list is most of a snapshot's memory: keep the rare parts out of line.
        assert!(std::mem::size_of::<RouteRule>() <= 184, "{}", std::mem::size_of::<RouteRule>());
    }

    #[test]
    fn a_backend_keeps_its_group_and_kind_apart_only_when_they_are_not_the_defaults() {
        let plain = BackendRef::service("web", 80);
        assert_eq!((plain.group(), plain.kind(), plain.is_service()), ("", "Service", true));
        assert_eq!(plain.clone().with_kind("", "Service"), plain, "the defaults are not kept");
        for (group, kind) in [("example.com", "Bucket"), ("", "Secret"), ("example.com", "Service")] {
            let other = plain.clone().with_kind(group, kind);
            assert_eq!((other.group(), other.kind(), other.is_service()), (group, kind, false));
            assert_eq!(other.clone().with_kind("", "Service"), plain, "and set back");
        }
        // Written out by hand, the defaults still name a Service.
        let kind = BackendKind { group: String::new(), kind: "Service".into() };
        let by_hand = BackendRef { other_kind: Some(Box::new(kind)), ..plain };
        assert_eq!((by_hand.group(), by_hand.kind(), by_hand.is_service()), ("", "Service", true));
        assert!(std::mem::size_of::<BackendRef>() <= 72, "{}", std::mem::size_of::<BackendRef>());
    }

    #[test]
    fn short_names_and_paths_take_no_allocation() {
        let meta = Meta::new("team-apps", "route-1234");
        let path = PathMatch { kind: PathKind::PathPrefix, value: "/api/v1/users/profile".into() };
        for text in [&meta.namespace, &meta.name, &path.value, &BackendRef::service("svc-web", 80).name] {
            assert!(!text.is_heap_allocated(), "{text}");
        }
        assert!(!PathMatch::all().value.is_heap_allocated());
        let long: Text = "a-hostname-longer-than-24.example.com".into();
        assert!(long.is_heap_allocated(), "and a long one is kept whole");
        assert_eq!(long, "a-hostname-longer-than-24.example.com");
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<String>());
    }
}
