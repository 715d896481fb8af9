//! The output side: cloudflared ingress rules in first-match order.
//!
//! Strings are shared (`Arc<str>`): one hostname or service typically appears in many rules,
//! and a config of tens of thousands of rules should not copy them all. Hostnames and paths,
//! most of them distinct, share one string per translation ([`SharedText`]).

use std::sync::Arc;

use crate::model::RouteKind;

/// One cloudflared ingress rule (DOMAIN.md §1). `hostname` is lower case; `path` is an
/// anchored RE2 expression tested against the percent-decoded path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressRule {
    /// A range of the string the hostnames and paths of a translation's rules share, like
    /// `path`: no heap object of its own to make and free per distinct hostname. Make one
    /// with `"a.example.com".into()`.
    pub hostname: Option<SharedText>,
    pub path: Option<RulePath>,
    pub service: Arc<str>,
    pub origin_request: SharedOriginRequest,
    pub source: RuleSource,
}

impl IngressRule {
    /// Matches every request: cloudflared accepts such a rule only in last place.
    pub fn is_catch_all(&self) -> bool {
        self.hostname.as_deref().is_none_or(|h| h.is_empty() || h == "*") && self.path.is_none()
    }
}

/// A rule's `path`: a range of a string that the paths of all the rules of one translation
/// share ([`SharedText`]). Tens of thousands of rules, each with its own path, then hold one
/// heap object between them rather than one each, which is that many fewer allocations to make
/// and, above all, to free. (A rule kept after its translation keeps that string alive: all the
/// paths and hostnames, the rule list's total, some tens of bytes a rule.) Make one with
/// `"^/a$".into()`; paths compare, hash and print as their text.
pub type RulePath = SharedText;

/// A string read through `Deref<Target = str>` that is a range of a larger one, which many
/// such values share: the paths and hostnames of a translation's rules ([`RulePath`],
/// [`IngressRule::hostname`]), the names of its routes ([`RouteName::name`]). Compares, hashes
/// and prints as its text (`Debug` as a `str`).
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
    fn a_rule_path_is_its_text_wherever_it_is_held() {
        let shared = Arc::new("^/a$^/b$^/a$".to_string());
        let (a, b, a_again) =
            (RulePath::new(&shared, 0..4), RulePath::new(&shared, 4..8), RulePath::new(&shared, 8..12));
        assert_eq!((&*a, &*b, a.len(), b.len()), ("^/a$", "^/b$", 4, 4));
        assert_eq!(a, a_again);
        assert_eq!(a, RulePath::from("^/a$"));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?} {b}"), format!("{:?} ^/b$", "^/a$"));
    }
}
