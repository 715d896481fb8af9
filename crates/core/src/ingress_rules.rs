//! [`IngressRules`]: a list of rules that holds each shared part once, and its rules as small
//! records of ranges and ids, read through [`Rule`] views.

use std::sync::Arc;

use super::{IngressRule, OriginRequest, RouteName, RuleSource, SharedText, Span};

/// The services of a list of rules, each a range of one string and known by its place
/// (`u32`): a rule names its service by that id, where a reference-counted string per rule
/// cost an atomic increment when the rule was made and a decrement when it was dropped.
#[derive(Clone, Default)]
pub(crate) struct Services {
    text: String,
    spans: Vec<Span>,
}

impl Services {
    /// Adds `service`; its id.
    pub(crate) fn push(&mut self, service: &str) -> u32 {
        let range = SharedText::append(&mut self.text, service);
        self.spans.push(Span::of(Some(range)));
        u32::try_from(self.spans.len() - 1).expect("under 4 G services")
    }

    /// The service `id`.
    pub(crate) fn get(&self, id: u32) -> &str {
        let span = self.spans[id as usize];
        &self.text[span.start as usize..span.end as usize]
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.spans.shrink_to_fit();
    }
}

/// The `origin` of a [`Record`] without `originRequest` keys (most rules).
pub(crate) const NO_ORIGIN: u32 = u32::MAX;

/// One rule: ranges of [`IngressRules::text`] and ids into the lists of its [`IngressRules`].
/// Plain integers: making, moving and dropping a rule touches no reference count.
#[derive(Clone, Copy)]
struct Record {
    hostname: Span,
    path: Span,
    service: u32,
    /// A place in [`IngressRules::origins`], or [`NO_ORIGIN`].
    origin: u32,
    source: SourceRecord,
}

/// A [`RuleSource`] as ids: a route's place in [`IngressRules::routes`], a fence's hostname
/// as a range of [`IngressRules::text`].
#[derive(Clone, Copy)]
pub(crate) enum SourceRecord {
    Route { route: u32, rule: u32, match_index: u32 },
    ListenerFence { hostname: Span },
    CatchAll,
}

/// Cloudflared ingress rules in first-match order (DOMAIN.md §1), as a translation makes
/// them. The list owns what its rules share, once: the text of their hostnames and paths (one
/// string), their services (each distinct one once), their non-empty `originRequest` keys,
/// the routes they come from (one name per route, not per rule). A rule is a record of ranges
/// and ids, read through a [`Rule`] ([`IngressRules::iter`], [`IngressRules::get`]); building
/// the list moves no reference count per rule, and dropping it frees a few vectors.
/// [`IngressRules::push`] adds a rule given in full ([`IngressRule`]).
#[derive(Clone, Default)]
pub struct IngressRules {
    text: String,
    services: Services,
    origins: Vec<OriginRequest>,
    routes: Vec<RouteName>,
    records: Vec<Record>,
}

impl SourceRecord {
    /// The fence of the listener whose hostname is `text[hostname]` (`None`: an empty one).
    pub(crate) fn fence(hostname: Option<std::ops::Range<u32>>) -> SourceRecord {
        SourceRecord::ListenerFence { hostname: Span::of(hostname) }
    }
}

impl IngressRules {
    /// An empty list whose rules will be made of these parts ([`IngressRules::push_record`]):
    /// `text` holds their hostnames and paths, `origins` their `originRequest` keys, `routes`
    /// their routes. Room for `capacity` rules.
    pub(crate) fn with_parts(
        text: String,
        services: Services,
        origins: Vec<OriginRequest>,
        routes: Vec<RouteName>,
        capacity: usize,
    ) -> IngressRules {
        IngressRules { text, services, origins, routes, records: Vec::with_capacity(capacity) }
    }

    /// Adds the rule whose hostname and path are `text[hostname]` and `text[path]` (ranges of
    /// char boundaries), and whose service, keys and source are ids into the list's parts.
    pub(crate) fn push_record(
        &mut self,
        hostname: Option<std::ops::Range<u32>>,
        path: Option<std::ops::Range<u32>>,
        service: u32,
        origin: u32,
        source: SourceRecord,
    ) {
        debug_assert!(hostname
            .as_ref()
            .is_none_or(|r| self.text.get(r.start as usize..r.end as usize).is_some()));
        debug_assert!(path
            .as_ref()
            .is_none_or(|r| self.text.get(r.start as usize..r.end as usize).is_some()));
        debug_assert!((service as usize) < self.services.spans.len());
        debug_assert!(origin == NO_ORIGIN || (origin as usize) < self.origins.len());
        self.records.push(Record {
            hostname: Span::of(hostname),
            path: Span::of(path),
            service,
            origin,
            source,
        });
    }

    /// The bytes `start..end` of the text its rules' hostnames and paths are ranges of.
    pub(crate) fn text_bytes(&self, start: u32, end: u32) -> &[u8] {
        &self.text.as_bytes()[start as usize..end as usize]
    }

    /// `source` as a rule of this list would give it.
    pub(crate) fn source_of(&self, source: SourceRecord) -> SourceRef<'_> {
        match source {
            SourceRecord::Route { route, rule, match_index } => {
                SourceRef::Route { route: &self.routes[route as usize], rule, match_index }
            }
            SourceRecord::ListenerFence { hostname } => SourceRef::ListenerFence {
                hostname: hostname
                    .len()
                    .map_or("", |_| &self.text[hostname.start as usize..hostname.end as usize]),
            },
            SourceRecord::CatchAll => SourceRef::CatchAll,
        }
    }

    /// Gives back the spare room of the parts: a translation keeps its rules for as long as it
    /// runs.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.services.shrink_to_fit();
        self.records.shrink_to_fit();
    }

    /// Adds `rule` at the end, its parts copied into the list's.
    pub fn push(&mut self, rule: &IngressRule) {
        let hostname = rule.hostname().map(|h| SharedText::append(&mut self.text, h));
        let path = rule.path().map(|p| SharedText::append(&mut self.text, p));
        let service = self.services.push(&rule.service);
        let origin = if rule.origin_request.is_empty() {
            NO_ORIGIN
        } else {
            self.origins.push((*rule.origin_request).clone());
            (self.origins.len() - 1) as u32
        };
        let source = match &rule.source {
            RuleSource::Route { route, rule, match_index } => {
                // The rules of one route, pushed one after the other, share its entry.
                if self.routes.last() != Some(route) {
                    self.routes.push(route.clone());
                }
                SourceRecord::Route {
                    route: (self.routes.len() - 1) as u32,
                    rule: *rule,
                    match_index: *match_index,
                }
            }
            RuleSource::ListenerFence { hostname } => SourceRecord::ListenerFence {
                hostname: Span::of(Some(SharedText::append(&mut self.text, hostname))),
            },
            RuleSource::CatchAll => SourceRecord::CatchAll,
        };
        self.push_record(hostname, path, service, origin, source);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The rule at `index`.
    pub fn get(&self, index: usize) -> Option<Rule<'_>> {
        self.records.get(index).map(|record| Rule { list: self, record })
    }

    pub fn last(&self) -> Option<Rule<'_>> {
        self.records.last().map(|record| Rule { list: self, record })
    }

    /// The rules in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { list: self, records: self.records.iter() }
    }
}

impl<R: std::borrow::Borrow<IngressRule>> FromIterator<R> for IngressRules {
    fn from_iter<I: IntoIterator<Item = R>>(rules: I) -> Self {
        let mut list = IngressRules::default();
        for rule in rules {
            list.push(rule.borrow());
        }
        list
    }
}

impl<'a> IntoIterator for &'a IngressRules {
    type Item = Rule<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The rules of an [`IngressRules`], in order.
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a IngressRules,
    records: std::slice::Iter<'a, Record>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Rule<'a>;
    #[inline]
    fn next(&mut self) -> Option<Rule<'a>> {
        self.records.next().map(|record| Rule { list: self.list, record })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.records.next_back().map(|record| Rule { list: self.list, record })
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Equal when their rules are, one by one, as text ([`Rule`]'s `PartialEq`), however each list
/// holds them.
impl PartialEq for IngressRules {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl Eq for IngressRules {}

/// As a list of its rules.
impl std::fmt::Debug for IngressRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One rule of an [`IngressRules`], read in place: its hostname (lower case), its path (an
/// anchored RE2 expression tested against the percent-decoded path), its service, its
/// `originRequest` keys and its source.
#[derive(Clone, Copy)]
pub struct Rule<'a> {
    list: &'a IngressRules,
    record: &'a Record,
}

impl<'a> Rule<'a> {
    fn text(self, span: Span) -> Option<&'a str> {
        span.len().map(|_| &self.list.text[span.start as usize..span.end as usize])
    }

    /// The `hostname:`, lower case; `None`: every host.
    pub fn hostname(self) -> Option<&'a str> {
        self.text(self.record.hostname)
    }

    /// The `path:`, an anchored RE2 expression; `None`: every path.
    pub fn path(self) -> Option<&'a str> {
        self.text(self.record.path)
    }

    /// The length in bytes of [`Rule::hostname`], without reading the text.
    pub fn hostname_len(self) -> Option<usize> {
        self.record.hostname.len()
    }

    /// The length in bytes of [`Rule::path`], without reading the text.
    pub fn path_len(self) -> Option<usize> {
        self.record.path.len()
    }

    pub fn service(self) -> &'a str {
        self.list.services.get(self.record.service)
    }

    /// The id of [`Rule::service`] in its list: rules with the same id have the same service
    /// (rules of one backend share one; the same text may also have several ids).
    pub(crate) fn service_id(self) -> u32 {
        self.record.service
    }

    /// The rule-level `originRequest` keys (empty for most rules).
    pub fn origin_request(self) -> &'a OriginRequest {
        match self.record.origin {
            NO_ORIGIN => &super::NO_KEYS,
            i => &self.list.origins[i as usize],
        }
    }

    pub fn source(self) -> SourceRef<'a> {
        self.list.source_of(self.record.source)
    }

    /// Matches every request: cloudflared accepts such a rule only in last place.
    pub fn is_catch_all(self) -> bool {
        self.record.path.len().is_none() && self.hostname().is_none_or(|h| h.is_empty() || h == "*")
    }

    /// The rule as a value of its own.
    pub fn to_owned(self) -> IngressRule {
        IngressRule::new(
            self.hostname(),
            self.path(),
            Arc::from(self.service()),
            self.origin_request().clone().into(),
            self.source().to_owned(),
        )
    }
}

/// Compares the parts as text and values, wherever each list holds them.
impl PartialEq for Rule<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hostname() == other.hostname()
            && self.path() == other.path()
            && self.service() == other.service()
            && self.origin_request() == other.origin_request()
            && self.source() == other.source()
    }
}

impl Eq for Rule<'_> {}

/// As a struct of the fields it is read as, as [`IngressRule`]'s.
impl std::fmt::Debug for Rule<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressRule")
            .field("hostname", &self.hostname())
            .field("path", &self.path())
            .field("service", &self.service())
            .field("origin_request", self.origin_request())
            .field("source", &self.source())
            .finish()
    }
}

/// Where a [`Rule`] came from, borrowed from its list: a [`RuleSource`] without a reference
/// count. Prints as the [`RuleSource`] it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceRef<'a> {
    Route { route: &'a RouteName, rule: u32, match_index: u32 },
    ListenerFence { hostname: &'a str },
    CatchAll,
}

impl SourceRef<'_> {
    /// The [`RuleSource`] this stands for (the route shared, the fence's hostname copied).
    pub fn to_owned(self) -> RuleSource {
        match self {
            SourceRef::Route { route, rule, match_index } => {
                RuleSource::Route { route: route.clone(), rule, match_index }
            }
            SourceRef::ListenerFence { hostname } => {
                RuleSource::ListenerFence { hostname: Arc::from(hostname) }
            }
            SourceRef::CatchAll => RuleSource::CatchAll,
        }
    }
}

impl PartialEq<RuleSource> for SourceRef<'_> {
    fn eq(&self, other: &RuleSource) -> bool {
        *self == other.as_ref()
    }
}

impl std::fmt::Display for SourceRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceRef::Route { route, rule, match_index } => {
                // Pieces rather than one format string: this runs once per rule of a config.
                f.write_str(route.kind.kind())?;
                f.write_str(" ")?;
                f.write_str(route.namespace())?;
                f.write_str("/")?;
                f.write_str(route.name())?;
                f.write_str(" rule ")?;
                std::fmt::Display::fmt(rule, f)?;
                f.write_str(" match ")?;
                std::fmt::Display::fmt(match_index, f)
            }
            SourceRef::ListenerFence { hostname } => {
                write!(f, "listener {hostname}: nothing else on this hostname")
            }
            SourceRef::CatchAll => f.write_str("catch-all"),
        }
    }
}
