//! The output side: cloudflared ingress rules in first-match order.
//!
//! A translation's rules are an [`IngressRules`]: one list that holds what its rules share
//! once (the text of their hostnames and paths, their services, routes and `originRequest`
//! keys), and each rule as a record of ranges and ids, read through a [`Rule`]. One hostname or
//! service typically appears in many rules, and a config of tens of thousands of rules should
//! neither copy them nor count references to them once per rule. An [`IngressRule`] is one
//! rule given in full, as a value of its own (tests, rules made by hand), which
//! [`IngressRules::push`] adds to a list.

use std::sync::Arc;

use crate::model::RouteKind;

#[path = "ingress_rules.rs"]
mod rules;
pub use rules::{IngressRules, Iter, Rule, SourceRef};
pub(crate) use rules::{Services, SourceRecord, NO_ORIGIN};

/// One cloudflared ingress rule (DOMAIN.md §1), as a value of its own. Its hostname (lower
/// case) and its path (an anchored RE2 expression tested against the percent-decoded path) are
/// read with [`IngressRule::hostname`] and [`IngressRule::path`], ranges of one string the rule
/// holds. Make one with [`IngressRule::new`]; a list of them is an [`IngressRules`].
#[derive(Clone)]
pub struct IngressRule {
    /// What [`IngressRule::hostname`] and [`IngressRule::path`] are ranges of.
    text: Arc<String>,
    hostname: Span,
    path: Span,
    pub service: Arc<str>,
    pub origin_request: SharedOriginRequest,
    pub source: RuleSource,
}

/// A range of a string (a rule's text, an [`IngressRules`]' text or services), or none
/// (`start > end`): 8 bytes, where an `Option<(u32, u32)>` takes 12.
#[derive(Clone, Copy)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NONE: Span = Span { start: u32::MAX, end: 0 };

    fn of(range: Option<std::ops::Range<u32>>) -> Span {
        range.map_or(Span::NONE, |r| {
            debug_assert!(r.start <= r.end);
            Span { start: r.start, end: r.end }
        })
    }

    fn len(self) -> Option<usize> {
        (self.start <= self.end).then(|| (self.end - self.start) as usize)
    }
}

impl IngressRule {
    /// A rule with its own copy of `hostname` and `path`.
    pub fn new(
        hostname: Option<&str>,
        path: Option<&str>,
        service: Arc<str>,
        origin_request: SharedOriginRequest,
        source: RuleSource,
    ) -> IngressRule {
        let mut text = String::with_capacity(hostname.map_or(0, str::len) + path.map_or(0, str::len));
        let hostname = hostname.map(|h| SharedText::append(&mut text, h));
        let path = path.map(|p| SharedText::append(&mut text, p));
        IngressRule {
            text: Arc::new(text),
            hostname: Span::of(hostname),
            path: Span::of(path),
            service,
            origin_request,
            source,
        }
    }

    fn get(&self, span: Span) -> Option<&str> {
        span.len().map(|_| &self.text[span.start as usize..span.end as usize])
    }

    /// The `hostname:`, lower case; `None`: every host.
    pub fn hostname(&self) -> Option<&str> {
        self.get(self.hostname)
    }

    /// The `path:`, an anchored RE2 expression; `None`: every path.
    pub fn path(&self) -> Option<&str> {
        self.get(self.path)
    }

    /// The length in bytes of [`IngressRule::hostname`], without reading the text.
    pub fn hostname_len(&self) -> Option<usize> {
        self.hostname.len()
    }

    /// The length in bytes of [`IngressRule::path`], without reading the text.
    pub fn path_len(&self) -> Option<usize> {
        self.path.len()
    }

    /// Matches every request: cloudflared accepts such a rule only in last place.
    pub fn is_catch_all(&self) -> bool {
        self.path.len().is_none() && self.hostname().is_none_or(|h| h.is_empty() || h == "*")
    }
}

/// Compares the hostname and path as text, wherever each rule holds them.
impl PartialEq for IngressRule {
    fn eq(&self, other: &Self) -> bool {
        self.hostname() == other.hostname()
            && self.path() == other.path()
            && self.service == other.service
            && self.origin_request == other.origin_request
            && self.source == other.source
    }
}

impl Eq for IngressRule {}

/// As a struct of the fields it is read as: the hostname and path as strings.
impl std::fmt::Debug for IngressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressRule")
            .field("hostname", &self.hostname())
            .field("path", &self.path())
            .field("service", &self.service)
            .field("origin_request", &self.origin_request)
            .field("source", &self.source)
            .finish()
    }
}

/// Strings of many texts one after the other, which values then hold as ranges: the names of
/// a translation's routes ([`RouteName`]), the hostnames, paths and services of its rules
/// ([`IngressRules`]).
pub(crate) struct SharedText;

impl SharedText {
    /// Appends `s` to `text`, and says where it is.
    pub(crate) fn append(text: &mut String, s: &str) -> std::ops::Range<u32> {
        let start = text.len();
        text.push_str(s);
        // The start is below the end: it fits too.
        let end = u32::try_from(text.len()).expect("a shared text under 4 GiB");
        start as u32..end
    }
}

/// The rule-level `originRequest` keys we emit. Everything else comes from the base config's
/// top-level `originRequest`, which cloudflared applies to every rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginRequest {
    pub http_host_header: Option<Arc<str>>,
    pub origin_server_name: Option<Arc<str>>,
    pub http2_origin: bool,
    pub no_tls_verify: bool,
}

impl OriginRequest {
    pub fn is_empty(&self) -> bool {
        *self == OriginRequest::default()
    }
}

/// The [`OriginRequest`] of an [`IngressRule`] (a rule as a value of its own), read through
/// `Deref`. Empty keys (most rules) take no memory beyond a null pointer, and copies of a rule
/// share one value. (An [`IngressRules`] holds each rule's keys once in a list of its own.)
/// Make one with `OriginRequest { .. }.into()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedOriginRequest(Option<Arc<OriginRequest>>);

static NO_KEYS: OriginRequest = OriginRequest {
    http_host_header: None,
    origin_server_name: None,
    http2_origin: false,
    no_tls_verify: false,
};

impl std::ops::Deref for SharedOriginRequest {
    type Target = OriginRequest;
    fn deref(&self) -> &OriginRequest {
        self.0.as_deref().unwrap_or(&NO_KEYS)
    }
}

impl From<OriginRequest> for SharedOriginRequest {
    fn from(keys: OriginRequest) -> Self {
        SharedOriginRequest((!keys.is_empty()).then(|| Arc::new(keys)))
    }
}

/// A route as its rules and its status name it: its kind, namespace and name. The namespace
/// and the name are ranges of one string that the names of all the routes of a translation
/// share (each namespace written once): a name is 32 bytes held by value, with one reference
/// count between its two texts, and no heap object of its own to make and to free per route.
/// Compares, hashes and prints (`Debug`) as its kind and two texts.
#[derive(Clone)]
pub struct RouteName {
    pub kind: RouteKind,
    text: Arc<String>,
    namespace: [u32; 2],
    name: [u32; 2],
}

impl RouteName {
    /// The route of this kind, namespace and name, in a string of its own.
    pub fn new(kind: RouteKind, namespace: &str, name: &str) -> RouteName {
        let mut text = String::with_capacity(namespace.len() + name.len());
        let (namespace, name) =
            (SharedText::append(&mut text, namespace), SharedText::append(&mut text, name));
        RouteName::shared(kind, &Arc::new(text), namespace, name)
    }

    /// The route whose namespace and name are `text[namespace]` and `text[name]` (ranges of
    /// char boundaries, written with [`SharedText::append`]).
    pub(crate) fn shared(
        kind: RouteKind,
        text: &Arc<String>,
        namespace: std::ops::Range<u32>,
        name: std::ops::Range<u32>,
    ) -> RouteName {
        debug_assert!(text.get(namespace.start as usize..namespace.end as usize).is_some());
        debug_assert!(text.get(name.start as usize..name.end as usize).is_some());
        RouteName {
            kind,
            text: Arc::clone(text),
            namespace: [namespace.start, namespace.end],
            name: [name.start, name.end],
        }
    }

    pub fn namespace(&self) -> &str {
        &self.text[self.namespace[0] as usize..self.namespace[1] as usize]
    }

    pub fn name(&self) -> &str {
        &self.text[self.name[0] as usize..self.name[1] as usize]
    }

    /// The lengths in bytes of the namespace and the name, without reading (nor slicing) the
    /// text.
    pub fn text_len(&self) -> usize {
        (self.namespace[1] - self.namespace[0]) as usize + (self.name[1] - self.name[0]) as usize
    }
}

impl PartialEq for RouteName {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.namespace() == other.namespace() && self.name() == other.name()
    }
}

impl Eq for RouteName {}

impl std::hash::Hash for RouteName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.kind, self.namespace(), self.name()).hash(state)
    }
}

impl std::fmt::Debug for RouteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteName")
            .field("kind", &self.kind)
            .field("namespace", &self.namespace())
            .field("name", &self.name())
            .finish()
    }
}

/// Where a rule came from, for the comment above it and the render summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleSource {
    Route {
        /// The route (an [`IngressRules`] holds it once for all of the route's rules).
        route: RouteName,
        rule: u32,
        match_index: u32,
    },
    /// The `http_status:404` rule closing a listener hostname's block, so that a request for
    /// that hostname never falls through to a less specific listener's routes.
    ListenerFence { hostname: Arc<str> },
    /// The final rule when nothing else matched.
    CatchAll,
}

impl RuleSource {
    /// The same source, borrowed, as a [`Rule`] gives it.
    pub fn as_ref(&self) -> SourceRef<'_> {
        match self {
            RuleSource::Route { route, rule, match_index } => {
                SourceRef::Route { route, rule: *rule, match_index: *match_index }
            }
            RuleSource::ListenerFence { hostname } => SourceRef::ListenerFence { hostname },
            RuleSource::CatchAll => SourceRef::CatchAll,
        }
    }
}

/// `HTTPRoute ns/name rule 1 match 0`, `listener a.example.com: nothing else on this
/// hostname`, `catch-all`: as its [`SourceRef`].
impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.as_ref(), f)
    }
}

impl PartialEq<SourceRef<'_>> for RuleSource {
    fn eq(&self, other: &SourceRef<'_>) -> bool {
        self.as_ref() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_name_is_its_kind_and_texts_wherever_they_are_held() {
        let text = Arc::new("nsappnsweb".to_string());
        let shared = RouteName::shared(RouteKind::Http, &text, 0..2, 2..5);
        let own = RouteName::new(RouteKind::Http, "ns", "app");
        assert_eq!((shared.namespace(), shared.name(), shared.text_len()), ("ns", "app", 5));
        assert_eq!(shared, own);
        let state = std::collections::hash_map::RandomState::new();
        use std::hash::BuildHasher;
        assert_eq!(state.hash_one(&shared), state.hash_one(&own));
        assert_ne!(shared, RouteName::shared(RouteKind::Http, &text, 0..2, 7..10));
        assert_ne!(shared, RouteName::new(RouteKind::Grpc, "ns", "app"));
        // The texts split elsewhere are other names: "nsa"/"pp" is not "ns"/"app".
        assert_ne!(shared, RouteName::new(RouteKind::Http, "nsa", "pp"));
        assert_eq!(
            format!("{shared:?}"),
            format!("RouteName {{ kind: Http, namespace: {:?}, name: {:?} }}", "ns", "app")
        );
    }

    #[test]
    fn a_rule_reads_its_parts_from_its_list() {
        let mut services = Services::default();
        let (a, status) = (services.push("http://a:80"), services.push("http_status:404"));
        let keys = OriginRequest { http2_origin: true, ..OriginRequest::default() };
        let route = RouteName::new(RouteKind::Http, "ns", "r");
        let text = "a.example.com^/a$^/b$".to_string();
        let mut list = IngressRules::with_parts(text, services, vec![keys.clone()], vec![route.clone()], 4);
        let source = |rule| SourceRecord::Route { route: 0, rule, match_index: 1 };
        list.push_record(Some(0..13), Some(13..17), a, 0, source(0));
        list.push_record(None, Some(17..21), a, NO_ORIGIN, source(1));
        list.push_record(
            Some(0..13),
            None,
            status,
            NO_ORIGIN,
            SourceRecord::ListenerFence { hostname: Span::of(Some(0..13)) },
        );
        list.push_record(Some(13..13), None, a, NO_ORIGIN, SourceRecord::CatchAll);
        list.push_record(None, None, a, NO_ORIGIN, SourceRecord::CatchAll);
        let rules: Vec<Rule<'_>> = list.iter().collect();
        let [both, path_only, fence, empty, none] = rules[..] else { panic!("five rules") };
        assert_eq!((both.hostname(), both.path()), (Some("a.example.com"), Some("^/a$")));
        assert_eq!((both.hostname_len(), both.path_len()), (Some(13), Some(4)));
        assert_eq!((both.service(), both.origin_request()), ("http://a:80", &keys));
        assert_eq!(
            (path_only.hostname(), path_only.path(), path_only.hostname_len(), path_only.origin_request()),
            (None, Some("^/b$"), None, &OriginRequest::default())
        );
        assert_eq!((none.hostname(), none.path(), none.path_len()), (None, None, None));
        assert_eq!((empty.hostname(), empty.hostname_len()), (Some(""), Some(0)));
        assert!(none.is_catch_all() && empty.is_catch_all());
        assert!(!both.is_catch_all() && !path_only.is_catch_all() && !fence.is_catch_all());
        // Sources borrowed from the list print as the sources they stand for.
        assert_eq!(both.source().to_string(), "HTTPRoute ns/r rule 0 match 1");
        assert_eq!(fence.source().to_string(), "listener a.example.com: nothing else on this hostname");
        assert_eq!((fence.service(), none.source().to_string()), ("http_status:404", "catch-all".into()));
        assert_eq!(both.source(), RuleSource::Route { route: route.clone(), rule: 0, match_index: 1 });
        assert_eq!(fence.source().to_owned(), RuleSource::ListenerFence { hostname: "a.example.com".into() });
        assert_eq!((list.len(), list.last().map(Rule::is_catch_all), list.get(5)), (5, Some(true), None));
        // The same rules given in full, one by one: an equal list, and each rule is its own.
        let owned: Vec<IngressRule> = list.iter().map(Rule::to_owned).collect();
        let again: IngressRules = owned.iter().collect();
        assert_eq!(again, list);
        assert!(again.iter().zip(&owned).all(|(r, o)| r.to_owned() == *o));
        assert_ne!(list.get(0), list.get(1));
        // `Debug` as the strings.
        assert_eq!(
            format!("{:?}", list.get(4).expect("five")),
            format!("IngressRule {{ hostname: None, path: None, service: {:?}, origin_request: {:?}, source: CatchAll }}", "http://a:80", OriginRequest::default())
        );
        let own = IngressRule::new(
            Some("a.example.com"),
            Some("^/a$"),
            Arc::from("http://a:80"),
            Default::default(),
            RuleSource::CatchAll,
        );
        assert_eq!(
            (own.hostname(), own.path(), own.hostname_len(), own.path_len()),
            (Some("a.example.com"), Some("^/a$"), Some(13), Some(4))
        );
        assert_eq!(
            format!("{own:?}"),
            format!("IngressRule {{ hostname: Some({:?}), path: Some({:?}), service: {:?}, origin_request: SharedOriginRequest(None), source: CatchAll }}", "a.example.com", "^/a$", "http://a:80")
        );
    }
}
