//! The output side: cloudflared ingress rules in first-match order.
//!
//! Strings are shared (`Arc<str>`): one hostname or service typically appears in many rules,
//! and a config of tens of thousands of rules should not copy them all. Hostnames and paths,
//! most of them distinct, share one string per translation ([`IngressRule`]).

use std::sync::Arc;

use crate::model::RouteKind;

/// One cloudflared ingress rule (DOMAIN.md §1). Its hostname (lower case) and its path (an
/// anchored RE2 expression tested against the percent-decoded path) are read with
/// [`IngressRule::hostname`] and [`IngressRule::path`].
///
/// Both are ranges of one string that all the rules of a translation share: one reference
/// count per rule for the two (counted up when the rule is made, down when it is dropped,
/// atomics), not one each, and no heap object per rule. (A rule kept after its translation
/// keeps that string alive: all the paths and hostnames, some tens of bytes a rule.) Make one
/// with [`IngressRule::new`].
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

/// A range of [`IngressRule::text`], or none (`start > end`): 8 bytes, where an
/// `Option<(u32, u32)>` takes 12.
#[derive(Clone, Copy)]
struct Span {
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
        IngressRule::in_text(&Arc::new(text), hostname, path, service, origin_request, source)
    }

    /// A rule whose hostname and path are `text[hostname]` and `text[path]` (ranges of char
    /// boundaries): a translation's rules share one `text`.
    pub(crate) fn in_text(
        text: &Arc<String>,
        hostname: Option<std::ops::Range<u32>>,
        path: Option<std::ops::Range<u32>>,
        service: Arc<str>,
        origin_request: SharedOriginRequest,
        source: RuleSource,
    ) -> IngressRule {
        debug_assert!(hostname.as_ref().is_none_or(|r| text.get(r.start as usize..r.end as usize).is_some()));
        debug_assert!(path.as_ref().is_none_or(|r| text.get(r.start as usize..r.end as usize).is_some()));
        IngressRule {
            text: Arc::clone(text),
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

/// A string read through `Deref<Target = str>` that is a range of a larger one, which many
/// such values share: the names of a translation's routes ([`RouteName::name`]). Compares,
/// hashes and prints as its text (`Debug` as a `str`). [`SharedText::append`] also writes the
/// string the rules' hostnames and paths are ranges of ([`IngressRule::in_text`]).
#[derive(Clone)]
pub struct SharedText {
    text: Arc<String>,
    start: u32,
    end: u32,
}

impl SharedText {
    /// `text[range]` (a range of char boundaries).
    pub(crate) fn new(text: &Arc<String>, range: std::ops::Range<u32>) -> SharedText {
        debug_assert!(text.get(range.start as usize..range.end as usize).is_some());
        SharedText { text: Arc::clone(text), start: range.start, end: range.end }
    }

    /// Appends `s` to `text`, a string [`SharedText::new`] will take ranges of, and says where
    /// it is.
    pub(crate) fn append(text: &mut String, s: &str) -> std::ops::Range<u32> {
        let start = text.len();
        text.push_str(s);
        // The start is below the end: it fits too.
        let end = u32::try_from(text.len()).expect("a shared text under 4 GiB");
        start as u32..end
    }

    /// The length in bytes, without reading the text.
    #[allow(clippy::len_without_is_empty)] // `is_empty` comes through `Deref`
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
}

impl std::ops::Deref for SharedText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text[self.start as usize..self.end as usize]
    }
}

impl From<&str> for SharedText {
    fn from(path: &str) -> Self {
        SharedText::from(path.to_string())
    }
}

impl From<String> for SharedText {
    fn from(path: String) -> Self {
        let end = u32::try_from(path.len()).expect("a text under 4 GiB");
        SharedText { text: Arc::new(path), start: 0, end }
    }
}

impl PartialEq for SharedText {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SharedText {}

impl std::hash::Hash for SharedText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl std::fmt::Debug for SharedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::fmt::Display for SharedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
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

/// A rule's [`OriginRequest`], read through `Deref`. Empty keys (most rules) take no memory
/// beyond a null pointer, and the ingress rules made from one route rule share one value: a
/// list of tens of thousands of rules stays small, which is what makes it quick to build,
/// sort and write. Make one with `OriginRequest { .. }.into()`.
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

/// A route as its rules name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteName {
    pub kind: RouteKind,
    pub namespace: Arc<str>,
    /// A range of one string holding the names of all the routes of a translation: one heap
    /// object between them, not one more per route to make and to free.
    pub name: SharedText,
}

/// Where a rule came from, for the comment above it and the render summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleSource {
    Route {
        /// Shared by all of the route's rules.
        route: Arc<RouteName>,
        rule: u32,
        match_index: u32,
    },
    /// The `http_status:404` rule closing a listener hostname's block, so that a request for
    /// that hostname never falls through to a less specific listener's routes.
    ListenerFence { hostname: Arc<str> },
    /// The final rule when nothing else matched.
    CatchAll,
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Route { route, rule, match_index } => {
                // Pieces rather than one format string: this runs once per rule of a config.
                f.write_str(route.kind.kind())?;
                f.write_str(" ")?;
                f.write_str(&route.namespace)?;
                f.write_str("/")?;
                f.write_str(&route.name)?;
                f.write_str(" rule ")?;
                std::fmt::Display::fmt(rule, f)?;
                f.write_str(" match ")?;
                std::fmt::Display::fmt(match_index, f)
            }
            RuleSource::ListenerFence { hostname } => {
                write!(f, "listener {hostname}: nothing else on this hostname")
            }
            RuleSource::CatchAll => f.write_str("catch-all"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_text_is_its_text_wherever_it_is_held() {
        let shared = Arc::new("^/a$^/b$^/a$".to_string());
        let (a, b, a_again) =
            (SharedText::new(&shared, 0..4), SharedText::new(&shared, 4..8), SharedText::new(&shared, 8..12));
        assert_eq!((&*a, &*b, a.len(), b.len()), ("^/a$", "^/b$", 4, 4));
        assert_eq!(a, a_again);
        assert_eq!(a, SharedText::from("^/a$"));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?} {b}"), format!("{:?} ^/b$", "^/a$"));
    }

    #[test]
    fn a_rule_reads_its_hostname_and_path_from_the_shared_text() {
        let text = Arc::new("a.example.com^/a$^/b$".to_string());
        let service: Arc<str> = Arc::from("http://a:80");
        let rule = |hostname, path| {
            IngressRule::in_text(
                &text,
                hostname,
                path,
                service.clone(),
                Default::default(),
                RuleSource::CatchAll,
            )
        };
        let (both, path_only, none, empty) = (
            rule(Some(0..13), Some(13..17)),
            rule(None, Some(17..21)),
            rule(None, None),
            rule(Some(13..13), None),
        );
        assert_eq!((both.hostname(), both.path()), (Some("a.example.com"), Some("^/a$")));
        assert_eq!((both.hostname_len(), both.path_len()), (Some(13), Some(4)));
        assert_eq!(
            (path_only.hostname(), path_only.path(), path_only.hostname_len()),
            (None, Some("^/b$"), None)
        );
        assert_eq!((none.hostname(), none.path(), none.path_len()), (None, None, None));
        assert_eq!((empty.hostname(), empty.hostname_len()), (Some(""), Some(0)));
        assert!(
            none.is_catch_all() && empty.is_catch_all() && !both.is_catch_all() && !path_only.is_catch_all()
        );
        // Equal as text, wherever each is held; `Debug` as the strings.
        let own = IngressRule::new(
            Some("a.example.com"),
            Some("^/a$"),
            service.clone(),
            Default::default(),
            RuleSource::CatchAll,
        );
        assert_eq!(both, own);
        assert_ne!(both, path_only);
        assert_ne!(none, empty);
        assert_eq!(
            format!("{own:?}"),
            format!("IngressRule {{ hostname: Some({:?}), path: Some({:?}), service: {:?}, origin_request: SharedOriginRequest(None), source: CatchAll }}", "a.example.com", "^/a$", "http://a:80")
        );
    }
}
