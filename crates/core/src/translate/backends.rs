//! backendRefs → one cloudflared `service` URL.
//!
//! A cloudflared rule has exactly one service, so of several backends the valid one with the
//! highest weight takes all traffic (ties: the first listed; weight 0 is never selected).
//! Service `http://<svc>.<ns>.svc.<clusterDomain>:<port>`; `https://` for a port whose
//! appProtocol is `https` or `kubernetes.io/wss`, a Service targeted by a BackendTLSPolicy,
//! and every GRPCRoute backend (cloudflared speaks HTTP/2 to an origin only over TLS).
//! ExternalName Services are refused (`InvalidKind`).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::hostname::dns_label;
use crate::model::{BackendRef, Route, RouteKind, Service, ServicePort, TargetPort, GATEWAY_GROUP};

use super::index::Index;
use crate::ingress::Services;
use name_table::NameTable;

#[path = "name_table.rs"]
mod name_table;
use super::{GrpcBackendTls, Reason, Settings};

/// A backend cloudflared can dial: its URL as [`resolve`] writes it, or, as a [`Resolver`]
/// remembers it, the id of that URL in the translation's [`Services`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin<Url = String> {
    pub url: Url,
    /// `validation.hostname` of a BackendTLSPolicy: the SNI and certificate name to check.
    pub server_name: Option<Arc<str>>,
    pub tls: bool,
}

/// Why a backendRef cannot be used; `reason` is the ResolvedRefs reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub reason: Reason,
    pub message: String,
}

/// An [`Unresolved`] backendRef of a route: which one (`spec.rules[0].backendRefs[1]`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnresolvedRef {
    pub field: String,
    pub why: Unresolved,
}

pub(crate) fn resolve(
    route: &Route,
    backend: &BackendRef,
    index: &Index<'_>,
    settings: &Settings,
) -> Result<Origin, Unresolved> {
    let fail = |reason, message: String| Err(Unresolved { reason, message });
    if !backend.is_service() {
        let group = if backend.group().is_empty() { "core" } else { backend.group() };
        return fail(
            Reason::InvalidKind,
            format!(
                "backendRef {:?} has kind {group}/{}; only core Services are supported",
                backend.name,
                backend.kind()
            ),
        );
    }
    let namespace = backend.namespace.as_deref().unwrap_or(&route.meta.namespace);
    if namespace != route.meta.namespace && !granted(route, backend, namespace, index) {
        return fail(
            Reason::RefNotPermitted,
            format!(
                "Service {namespace}/{} is in another namespace and no ReferenceGrant in {namespace:?} allows {} from {:?}",
                backend.name,
                route.kind,
                route.meta.namespace
            ),
        );
    }
    let Some(port) = backend.port else {
        return fail(
            Reason::BackendNotFound,
            format!("backendRef Service {namespace}/{} has no port", backend.name),
        );
    };
    // The API server holds ports to 1-65535; a file may not, and `:-5` or `:70000` in the URL
    // would make cloudflared refuse the whole config.
    let valid_port = |p: i32| (1..=65535).contains(&p);
    if !valid_port(port) {
        return fail(
            Reason::BackendNotFound,
            format!("backendRef Service {namespace}/{} port {port} is not a port (1-65535)", backend.name),
        );
    }
    // Both end up in the URL: the API server lets no other name exist, but a file may hold
    // anything (`a@b#` would turn the URL's host into `b`).
    if !dns_label(namespace) || !dns_label(&backend.name) {
        return fail(
            Reason::BackendNotFound,
            format!(
                "Service {namespace:?}/{:?} cannot exist: a Service name and a namespace are DNS labels \
                 (lower-case letters, digits and '-', at most 63)",
                backend.name
            ),
        );
    }
    let Some(service) = index.service(namespace, &backend.name) else {
        return fail(Reason::BackendNotFound, format!("Service {namespace}/{} not found", backend.name));
    };
    if service.external_name {
        // Gateway API: "Implementations SHOULD NOT support ExternalName Services"
        // (CVE-2021-25740). Its name is a DNS alias the route's author chooses: another
        // namespace's Service (past ReferenceGrant) or `localhost` (the pod's own ports).
        return fail(
            Reason::InvalidKind,
            format!(
                "Service {namespace}/{} is of type ExternalName, which is not supported: its DNS alias could lead \
                 to another namespace without a ReferenceGrant, or to this pod's own ports",
                backend.name
            ),
        );
    }
    let Some(service_port) = service.ports.iter().find(|p| p.port == port) else {
        return fail(
            Reason::BackendNotFound,
            format!("Service {namespace}/{} has no port {port}", backend.name),
        );
    };
    let app_protocol = service_port.app_protocol.as_deref().unwrap_or("");
    let policy = tls_policy(service, service_port, index);
    let tls = match route.kind {
        RouteKind::Grpc => {
            if matches!(app_protocol, "kubernetes.io/h2c" | "h2c" | "http" | "kubernetes.io/ws") {
                return fail(
                    Reason::UnsupportedProtocol,
                    format!(
                        "Service {namespace}/{} port {port} speaks plaintext ({app_protocol}); cloudflared reaches gRPC \
                         origins only over TLS (it negotiates HTTP/2 through TLS ALPN), so the backend must serve TLS",
                        backend.name
                    ),
                );
            }
            true
        }
        RouteKind::Http => {
            if matches!(app_protocol, "kubernetes.io/h2c" | "h2c") {
                return fail(
                    Reason::UnsupportedProtocol,
                    format!(
                        "Service {namespace}/{} port {port} speaks HTTP/2 without TLS (h2c), which cloudflared cannot \
                         dial: it uses HTTP/1.1 for http:// origins",
                        backend.name
                    ),
                );
            }
            matches!(app_protocol, "https" | "kubernetes.io/wss") || policy.is_some()
        }
    };
    // A headless Service resolves to pod addresses, which listen on the target port.
    let dial_port = match (service.headless, &service_port.target_port) {
        (true, Some(TargetPort::Number(n))) => *n,
        (true, Some(TargetPort::Name(name))) => {
            return fail(
                Reason::BackendNotFound,
                format!(
                    "Service {namespace}/{} is headless and its port {port} targets the named port {name:?}, which \
                     cannot be resolved without reading Pods",
                    backend.name
                ),
            )
        }
        _ => port,
    };
    if !valid_port(dial_port) {
        return fail(
            Reason::BackendNotFound,
            format!(
                "Service {namespace}/{} is headless and its port {port} targets {dial_port}, which is not a port \
                 (1-65535)",
                backend.name
            ),
        );
    }
    let scheme = if tls { "https" } else { "http" };
    Ok(Origin {
        url: format!("{scheme}://{}.{namespace}.svc.{}:{dial_port}", backend.name, settings.cluster_domain),
        server_name: policy.map(Arc::from),
        tls,
    })
}

/// ReferenceGrant: lives in the target namespace; `from` must name the route's group, kind
/// and namespace exactly; `to` the core Service kind, and the Service's name when it has one.
fn granted(route: &Route, backend: &BackendRef, namespace: &str, index: &Index<'_>) -> bool {
    index.grants_in(namespace).iter().any(|grant| {
        grant.from.iter().any(|f| {
            f.group == GATEWAY_GROUP && f.kind == route.kind.kind() && f.namespace == route.meta.namespace
        }) && grant.to.iter().any(|t| {
            t.group.is_empty() && t.kind == "Service" && t.name.as_ref().is_none_or(|n| *n == backend.name)
        })
    })
}

/// The oldest BackendTLSPolicy targeting this Service (and, with `sectionName`, this port).
fn tls_policy(service: &Service, port: &ServicePort, index: &Index<'_>) -> Option<String> {
    let mut policies: Vec<_> = index
        .tls_policies_in(&service.meta.namespace)
        .iter()
        .filter(|p| {
            p.targets.iter().any(|t| {
                t.group.is_empty()
                    && t.kind == "Service"
                    && t.name == service.meta.name
                    && t.section_name.as_ref().is_none_or(|s| port.name.as_ref() == Some(s))
            })
        })
        .collect();
    policies.sort_by(|a, b| {
        (a.meta.created.is_none(), a.meta.created, &a.meta.name).cmp(&(
            b.meta.created.is_none(),
            b.meta.created,
            &b.meta.name,
        ))
    });
    policies.first().map(|p| p.hostname.clone())
}

/// What a rule's backendRefs come to: the origin for all its traffic, or `None` when no valid
/// backend with a weight above 0 remains (the rule then answers 500, or 503 for gRPC). The
/// backendRefs that cannot be used are not in it: [`Resolver::select`] gives each to its
/// caller as it finds it, so that a rule without one (almost every rule) makes, reads and
/// drops no list of them.
pub(crate) struct Selection<'r> {
    /// Borrowed from the resolver: moving an `Origin` out by value from rule to rule cost more
    /// on the clock than its instructions (copies of its tail through the stack). Its URL is
    /// a service id ([`Resolver::into_services`]).
    pub origin: Option<&'r Origin<u32>>,
    /// More than one backend had weight and one was chosen: it gets all the traffic.
    pub split_collapsed: bool,
    /// The first backendRef with filters, which cloudflared cannot apply (the rule is then not
    /// rendered): found in the pass that resolves them, not in a second one over the list.
    pub filtered: Option<usize>,
}

/// A remembered answer: an origin or why not, as its place in the resolver's lists.
#[derive(Clone, Copy, Default)]
enum Answer {
    #[default]
    Unknown,
    Origin(u32),
    Unresolved(u32),
}

/// Resolves backendRefs, remembering each answer: the same backend is typically referenced by
/// many rules, and its URL is then written once, into the translation's [`Services`], and
/// named by its id there rather than built again or shared by reference count.
pub(crate) struct Resolver<'a> {
    index: &'a Index<'a>,
    settings: &'a Settings,
    /// (route namespace number and port, name) → the answer per route kind to a backendRef
    /// with a port naming a Service of the route's own namespace. That answer depends on
    /// nothing else (no ReferenceGrant is involved), so a rule finds it with a hash of four
    /// words and no string comparison, where a hash map keyed by every string the answer
    /// depends on cost about 300 instructions a rule.
    own: NameTable<'a, [Answer; 2]>,
    /// Every other core Service backendRef (another namespace, no port):
    /// (route namespace, route kind, namespace, name, port) → answer.
    cache: FxHashMap<BackendKey<'a>, Answer>,
    origins: Vec<Origin<u32>>,
    unresolved: Vec<Unresolved>,
    /// The origins' URLs, after the statuses [`NOT_FOUND`], [`SERVER_ERROR`], [`UNAVAILABLE`].
    services: Services,
}

/// The service id of `http_status:404` (a listener's fence) in [`Resolver::into_services`].
pub(crate) const NOT_FOUND: u32 = 0;
/// `http_status:500`: an HTTP rule without a backend to send its traffic to.
pub(crate) const SERVER_ERROR: u32 = 1;
/// `http_status:503`: the same for gRPC, whose clients read it as UNAVAILABLE.
pub(crate) const UNAVAILABLE: u32 = 2;

/// What a route's remembered answers depend on besides the backendRef and the route's kind:
/// its namespace, as the number of the route's (kind, namespace) group
/// ([`super::status::RouteNames::group`]), which the names pass gave every route already: no
/// namespace read and looked up again per route. One word, so that it stays in a register
/// from rule to rule.
#[derive(Clone, Copy)]
pub(crate) struct Scope {
    number: u32,
}

impl Scope {
    /// The scope of the routes of group `group`: a number the same for the routes of one
    /// (kind, namespace) and for no other route.
    pub(crate) fn of_group(group: u32) -> Scope {
        Scope { number: group }
    }
}

/// A cache key and its hash: [`Hash`] writes the hash alone, [`Eq`] compares the fields.
#[derive(PartialEq, Eq)]
struct BackendKey<'a> {
    hash: u64,
    namespace: &'a str,
    kind: RouteKind,
    backend_namespace: Option<&'a str>,
    name: &'a str,
    port: Option<i32>,
}

impl std::hash::Hash for BackendKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(index: &'a Index<'a>, settings: &'a Settings) -> Self {
        Resolver {
            index,
            settings,
            own: NameTable::with_capacity(64),
            cache: FxHashMap::default(),
            origins: Vec::new(),
            unresolved: Vec::new(),
            services: {
                let mut services = Services::default();
                for (id, status) in [
                    (NOT_FOUND, "http_status:404"),
                    (SERVER_ERROR, "http_status:500"),
                    (UNAVAILABLE, "http_status:503"),
                ] {
                    let pushed = services.push(status);
                    debug_assert_eq!(pushed, id);
                }
                services
            },
        }
    }

    /// The services named by the origins it gave, and the statuses: the translation's rules'
    /// services.
    pub(crate) fn into_services(self) -> Services {
        self.services
    }

    /// The settings it resolves with (those of the translation).
    pub(crate) fn settings(&self) -> &'a Settings {
        self.settings
    }

    /// The service `id` (of an origin it gave, or a status).
    pub(crate) fn service(&self, id: u32) -> &str {
        self.services.get(id)
    }

    /// `scope` is [`Scope::of_group`] of `route`'s group. Each backendRef that cannot be used
    /// is given to `unresolved` (its place among `backends` and why), in their order.
    pub(crate) fn select(
        &mut self,
        scope: Scope,
        route: &'a Route,
        backends: &'a [BackendRef],
        mut unresolved: impl FnMut(usize, &Unresolved),
    ) -> Selection<'_> {
        if let [backend] = backends {
            // One backend, as most rules have: no weights to compare, never a split.
            let filtered = (backend.filters > 0).then_some(0);
            return match self.answer(scope, route, backend) {
                Answer::Origin(origin) if backend.weight > 0 => Selection {
                    origin: Some(&self.origins[origin as usize]),
                    split_collapsed: false,
                    filtered,
                },
                Answer::Origin(_) | Answer::Unknown => {
                    Selection { origin: None, split_collapsed: false, filtered }
                }
                Answer::Unresolved(u) => {
                    unresolved(0, &self.unresolved[u as usize]);
                    Selection { origin: None, split_collapsed: false, filtered }
                }
            };
        }
        let mut best: Option<(i32, u32)> = None;
        let mut filtered = None;
        for (i, backend) in backends.iter().enumerate() {
            if backend.filters > 0 && filtered.is_none() {
                filtered = Some(i);
            }
            match self.answer(scope, route, backend) {
                Answer::Origin(origin)
                    if backend.weight > 0 && best.as_ref().is_none_or(|(w, _)| backend.weight > *w) =>
                {
                    best = Some((backend.weight, origin));
                }
                Answer::Origin(_) | Answer::Unknown => {}
                Answer::Unresolved(u) => unresolved(i, &self.unresolved[u as usize]),
            }
        }
        // A split collapsed onto the chosen backend; with none chosen, the rule's 500 (503) is
        // not a backend taking all traffic.
        let weighted = if best.is_some() { backends.iter().filter(|b| b.weight > 0).count() } else { 0 };
        let origin = best.map(|(_, o)| &self.origins[o as usize]);
        Selection { origin, split_collapsed: weighted > 1, filtered }
    }

    /// The answer for `backend` of `route`, resolved the first time it is asked.
    #[inline(always)]
    fn answer(&mut self, scope: Scope, route: &'a Route, backend: &'a BackendRef) -> Answer {
        if !backend.is_service() {
            // Another kind: refused at once, nothing worth looking up.
            return remember(
                &mut self.origins,
                &mut self.unresolved,
                &mut self.services,
                resolve(route, backend, self.index, self.settings),
            );
        }
        let own_namespace = backend.namespace.as_ref().is_none_or(|n| in_namespace_of(n, route));
        if let (true, Some(port)) = (own_namespace, backend.port) {
            let number = u64::from(scope.number) << 32 | u64::from(port as u32);
            let kind = route.kind as usize;
            let answers = self.own.get_or_insert(number, &backend.name, [Answer::Unknown; 2]);
            if let Answer::Unknown = answers[kind] {
                let resolved = resolve(route, backend, self.index, self.settings);
                answers[kind] =
                    remember(&mut self.origins, &mut self.unresolved, &mut self.services, resolved);
            }
            return answers[kind];
        }
        self.cached_answer(route, backend)
    }

    /// [`Resolver::answer`] of a Service backendRef of another namespace or without a port,
    /// found by every string it depends on. Out of line, as [`in_namespace_of`]: the only
    /// uses of the route's namespace in [`Resolver::select`], which the compiler otherwise
    /// decodes (a compact string) before the rules of every route.
    #[inline(never)]
    fn cached_answer(&mut self, route: &'a Route, backend: &'a BackendRef) -> Answer {
        let key = cache_key(route, backend);
        if let Some(answer) = self.cache.get(&key) {
            return *answer;
        }
        let answer = remember(
            &mut self.origins,
            &mut self.unresolved,
            &mut self.services,
            resolve(route, backend, self.index, self.settings),
        );
        self.cache.insert(key, answer);
        answer
    }
}

/// Whether `namespace` (a backendRef's) is `route`'s own.
#[inline(never)]
fn in_namespace_of(namespace: &str, route: &Route) -> bool {
    namespace == route.meta.namespace
}

/// `resolved` as an [`Answer`], the origin (its URL added to `services`) or the reason kept in
/// `origins` or `unresolved`.
fn remember(
    origins: &mut Vec<Origin<u32>>,
    unresolved: &mut Vec<Unresolved>,
    services: &mut Services,
    resolved: Result<Origin, Unresolved>,
) -> Answer {
    let place = |n: usize| u32::try_from(n).expect("under 4 G answers");
    match resolved {
        Ok(Origin { url, server_name, tls }) => {
            origins.push(Origin { url: services.push(&url), server_name, tls });
            Answer::Origin(place(origins.len() - 1))
        }
        Err(why) => {
            unresolved.push(why);
            Answer::Unresolved(place(unresolved.len() - 1))
        }
    }
}

fn cache_key<'a>(route: &'a Route, backend: &'a BackendRef) -> BackendKey<'a> {
    use std::hash::BuildHasher;
    let (backend_namespace, name, port) = (backend.namespace.as_deref(), backend.name.as_str(), backend.port);
    BackendKey {
        hash: rustc_hash::FxBuildHasher.hash_one((
            route.meta.namespace.as_str(),
            route.kind,
            backend_namespace,
            name,
            port,
        )),
        namespace: &route.meta.namespace,
        kind: route.kind,
        backend_namespace,
        name,
        port,
    }
}

impl Settings {
    pub(crate) fn grpc_no_tls_verify(&self) -> bool {
        self.grpc_backend_tls == GrpcBackendTls::Insecure
    }
}

#[cfg(test)]
#[path = "resolver_tests.rs"]
mod tests;
