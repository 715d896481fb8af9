//! The output side: cloudflared ingress rules in first-match order.
//!
//! Strings are shared (`Arc<str>`): one hostname, path or service typically appears in many
//! rules, and a config of tens of thousands of rules should not copy them all.

use std::sync::Arc;

use crate::model::RouteKind;

/// One cloudflared ingress rule (DOMAIN.md §1). `hostname` is lower case; `path` is an
/// anchored RE2 expression tested against the percent-decoded path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressRule {
    pub hostname: Option<Arc<str>>,
    pub path: Option<Arc<str>>,
    pub service: Arc<str>,
    pub origin_request: OriginRequest,
    pub source: RuleSource,
}

impl IngressRule {
    /// Matches every request: cloudflared accepts such a rule only in last place.
    pub fn is_catch_all(&self) -> bool {
        self.hostname.as_deref().is_none_or(|h| h.is_empty() || h == "*") && self.path.is_none()
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

/// A route as its rules name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteName {
    pub kind: RouteKind,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// Where a rule came from, for the comment above it and the render summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleSource {
    Route {
        /// Shared by all of the route's rules.
        route: Arc<RouteName>,
        rule: usize,
        match_index: usize,
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
